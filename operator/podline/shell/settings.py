"""Operator configuration: environment variables (the Helm chart sets them), grouped by topic.

Every option is one ``PODLINE_*`` variable; README's configuration reference lists the same table.
``Settings.from_env`` reports every bad value at once, naming the variable, and never starts half-configured.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from podline.core import policies, registries


class SettingsError(ValueError):
    """One or more PODLINE_* variables have bad values."""


@dataclass(frozen=True)
class Settings:
    namespaces: tuple[str, ...] = ()
    """Namespaces to watch (PODLINE_NAMESPACES, comma-separated); empty: all namespaces."""

    policy: policies.Policy = field(default_factory=policies.Policy)
    """What pipelines may ask for, and defaults (runner image, timeouts, …)."""

    max_running: int = 0
    """PODLINE_MAX_RUNNING: runs at once across the operator; 0: no limit. The rest queue as Pending."""

    history_limit: int = 3
    """PODLINE_HISTORY_LIMIT: pods of earlier runs kept per Pipeline (for kubectl logs)."""

    resync_seconds: float = 30.0
    """PODLINE_RESYNC_SECONDS: every unfinished run is re-read this often, whatever the watch said."""

    status_interval_ms: int = 1000
    """PODLINE_STATUS_INTERVAL_MS: a run's status is written when it starts and ends; step progress in between
    at most once per this many milliseconds per Pipeline (0: at every change)."""

    log_format: str = "text"
    """PODLINE_LOG_FORMAT: text or json."""

    log_level: str = "INFO"
    """PODLINE_LOG_LEVEL: DEBUG, INFO, WARNING."""

    metrics_port: int = 9090
    """PODLINE_METRICS_PORT: Prometheus metrics on this port (0: off)."""

    liveness_port: int = 8080
    """PODLINE_LIVENESS_PORT: kopf's liveness endpoint /healthz on this port (0: off)."""

    api_workers: int = 8
    """PODLINE_API_WORKERS: Kubernetes API requests the operator makes at once (its connections)."""

    registry_mirrors: tuple[registries.Mirror, ...] = ()
    """PODLINE_REGISTRY_MIRRORS: registry=url pairs; image configs of that registry are read at the mirror."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        problems: list[str] = []

        def text(name: str, default: str) -> str:
            return env.get(name, "").strip() or default

        def number(name: str, default: int, minimum: int = 0) -> int:
            raw = env.get(name, "").strip()
            if not raw:
                return default
            try:
                value = int(raw)
            except ValueError:
                problems.append(f"{name}: {raw!r} is not a whole number")
                return default
            if value < minimum:
                problems.append(f"{name}: must be at least {minimum}")
            return value

        def flag(name: str) -> bool:
            raw = env.get(name, "").strip().lower()
            if raw in ("", "0", "false", "no", "off"):
                return False
            if raw in ("1", "true", "yes", "on"):
                return True
            problems.append(f"{name}: {raw!r} is not true or false")
            return False

        def names(name: str) -> tuple[str, ...]:
            return tuple(sorted({n.strip() for n in env.get(name, "").split(",") if n.strip()}))

        def mirrors(name: str) -> tuple[registries.Mirror, ...]:
            try:
                return registries.parse_mirrors(env.get(name, ""))
            except ValueError as error:
                problems.append(f"{name}: {error}")
                return ()

        step_timeout = number("PODLINE_STEP_TIMEOUT", 0)
        policy = policies.Policy(
            runner_image=text("PODLINE_RUNNER_IMAGE", policies.DEFAULT_RUNNER_IMAGE),
            clone_image=text("PODLINE_CLONE_IMAGE", policies.DEFAULT_CLONE_IMAGE),
            secret_store=text("PODLINE_SECRET_STORE", policies.DEFAULT_SECRET_STORE),
            allow_privileged=flag("PODLINE_ALLOW_PRIVILEGED"),
            allow_host_volumes=flag("PODLINE_ALLOW_HOST_VOLUMES"),
            allowed_service_accounts=frozenset(names("PODLINE_ALLOWED_SERVICE_ACCOUNTS")),
            default_service_account=text("PODLINE_DEFAULT_SERVICE_ACCOUNT", "") or None,
            automount_service_account_token=flag("PODLINE_AUTOMOUNT_TOKEN"),
            run_timeout_seconds=number("PODLINE_RUN_TIMEOUT", 3600, 1),
            step_timeout_seconds=step_timeout or None,
            pull_timeout_seconds=number("PODLINE_PULL_TIMEOUT", 300, 1),
            max_steps=number("PODLINE_MAX_STEPS", 200, 1),
        )
        log_format = text("PODLINE_LOG_FORMAT", "text")
        if log_format not in ("text", "json"):
            problems.append(f"PODLINE_LOG_FORMAT: {log_format!r} is not text or json")
        log_level = text("PODLINE_LOG_LEVEL", "INFO").upper()
        if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            problems.append(f"PODLINE_LOG_LEVEL: {log_level!r} is not DEBUG, INFO, WARNING or ERROR")
        settings = cls(
            namespaces=names("PODLINE_NAMESPACES"),
            policy=policy,
            max_running=number("PODLINE_MAX_RUNNING", 0),
            history_limit=number("PODLINE_HISTORY_LIMIT", 3),
            resync_seconds=float(number("PODLINE_RESYNC_SECONDS", 30, 1)),
            status_interval_ms=number("PODLINE_STATUS_INTERVAL_MS", 1000),
            log_format=log_format,
            log_level=log_level,
            metrics_port=number("PODLINE_METRICS_PORT", 9090),
            liveness_port=number("PODLINE_LIVENESS_PORT", 8080),
            api_workers=number("PODLINE_API_WORKERS", 8, 1),
            registry_mirrors=mirrors("PODLINE_REGISTRY_MIRRORS"),
        )
        if problems:
            raise SettingsError("; ".join(problems))
        return settings
