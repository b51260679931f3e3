"""Operator configuration: environment variables (the Helm chart sets them), grouped by topic.

Every option is one ``PODLINE_*`` variable; README's configuration reference lists the same table.
``Settings.from_env`` reports every bad value at once, naming the variable, and never starts half-configured.
"""

from __future__ import annotations

import json
import os
import platform as platform_
import re
import ssl
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field

from podline.core import imageconfigs, policies, records, registries


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

    platform: str = field(default_factory=lambda: own_platform())
    """PODLINE_PLATFORM: the platform (``os/arch[/variant]``) whose manifest of a multi-arch image is read for
    runs that name none (no ``platform``, no ``kubernetes.io/arch`` node selector); default: the operator's
    own, as its pod runs on the cluster's nodes."""

    registry_ca_file: str = ""
    """PODLINE_REGISTRY_CA_FILE: a PEM bundle of CA certificates trusted, on top of the system's, for registries,
    mirrors and their token services; empty: the system's alone."""

    archive_url: str = ""
    """PODLINE_ARCHIVE: where ended runs' records and step output are archived: ``file:///dir`` or
    ``s3://bucket/prefix`` (credentials and endpoint from ``AWS_*`` variables); empty: no archive."""

    archive_wait_seconds: int = 3600
    """PODLINE_ARCHIVE_WAIT: how long a pod beyond the history limit is kept for the archive when the store
    fails (seconds after its run ended); then it is deleted, archived or not."""

    log_retention: records.Retention = field(default_factory=records.Retention)
    """PODLINE_LOG_RETENTION: archived runs kept: ``30d`` (age), ``20runs`` (per Pipeline), both
    (``30d,20runs``); empty: all."""

    archive_on_delete: str = "keep"
    """PODLINE_ARCHIVE_ON_DELETE: ``keep`` a deleted Pipeline's archived runs (retention still ages them out
    only when the Pipeline is archived again; remove them by hand) or ``delete`` them with it."""

    registry_ca: str = field(default="", repr=False)
    """The certificates of ``registry_ca_file`` as read (and checked) at start: the file is read once."""

    def registry_ssl(self) -> ssl.SSLContext | None:
        """The TLS context for registries: the system's trust plus ``registry_ca``; None: the system's alone."""
        return registry_context(self.registry_ca) if self.registry_ca else None

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

        def ca_bundle(name: str) -> tuple[str, str]:
            path = env.get(name, "").strip()
            if not path:
                return "", ""
            try:
                return path, read_ca_bundle(path)
            except ValueError as error:
                problems.append(f"{name}: {error}")
                return path, ""

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
            log_limit_bytes=number("PODLINE_LOG_LIMIT", policies.DEFAULT_LOG_LIMIT, 1),
        )
        log_format = text("PODLINE_LOG_FORMAT", "text")
        if log_format not in ("text", "json"):
            problems.append(f"PODLINE_LOG_FORMAT: {log_format!r} is not text or json")
        log_level = text("PODLINE_LOG_LEVEL", "INFO").upper()
        if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            problems.append(f"PODLINE_LOG_LEVEL: {log_level!r} is not DEBUG, INFO, WARNING or ERROR")
        ca_file, ca = ca_bundle("PODLINE_REGISTRY_CA_FILE")
        archive_url = text("PODLINE_ARCHIVE", "")
        if archive_url and not archive_url.startswith(("file:///", "s3://")):
            problems.append(
                f"PODLINE_ARCHIVE: {archive_url!r} is neither file:///path nor s3://bucket/prefix"
            )
        try:
            retention = records.parse_retention(env.get("PODLINE_LOG_RETENTION", ""))
        except ValueError as error:
            problems.append(f"PODLINE_LOG_RETENTION: {error}")
            retention = records.Retention()
        on_delete = text("PODLINE_ARCHIVE_ON_DELETE", "keep").lower()
        if on_delete not in ("keep", "delete"):
            problems.append(f"PODLINE_ARCHIVE_ON_DELETE: {on_delete!r} is neither keep nor delete")
        platform = text("PODLINE_PLATFORM", "") or own_platform()
        try:
            platform = str(imageconfigs.parse_platform(platform))
        except ValueError as error:
            problems.append(f"PODLINE_PLATFORM: {error}")
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
            platform=platform,
            registry_ca_file=ca_file,
            registry_ca=ca,
            archive_url=archive_url,
            archive_wait_seconds=number("PODLINE_ARCHIVE_WAIT", 3600, 1),
            log_retention=retention,
            archive_on_delete=on_delete,
        )
        if problems:
            raise SettingsError("; ".join(problems))
        return settings


def own_platform() -> str:
    """The platform this process runs on, as containerd names it (``linux/amd64``, ``linux/arm64/v8``)."""
    return str(imageconfigs.normalize_platform(sys.platform, platform_.machine()))


_PEM_CERTIFICATE = "-----BEGIN CERTIFICATE-----"
_PEM_PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")
CA_BUNDLE_LIMIT = 4 * 1024 * 1024  # far more than any CA bundle (the system's is about 200 kB)


def read_ca_bundle(path: str) -> str:
    """The PEM certificates in the file at ``path``, checked to load. Raises ValueError saying what is wrong
    (missing, unreadable, not PEM, a private key inside), never with the file's content."""
    shown = json.dumps(path)
    try:
        with open(path, "rb") as file:
            raw = file.read(CA_BUNDLE_LIMIT + 1)
    except FileNotFoundError:
        raise ValueError(f"{shown} does not exist") from None
    except IsADirectoryError:
        raise ValueError(f"{shown} is a directory, not a PEM file") from None
    except PermissionError:
        raise ValueError(f"{shown} cannot be read (permission denied for uid {os.getuid()})") from None
    except OSError as error:
        raise ValueError(f"{shown} cannot be read: {error.strerror or type(error).__name__}") from None
    if len(raw) > CA_BUNDLE_LIMIT:
        raise ValueError(f"{shown} is larger than {CA_BUNDLE_LIMIT // (1024 * 1024)} MiB; it is no CA bundle")
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise ValueError(
            f"{shown} is not a PEM file (binary content: a DER certificate? "
            "convert it with `openssl x509 -inform der -in FILE -out FILE.pem`)"
        ) from None
    if _PEM_PRIVATE_KEY.search(text):
        raise ValueError(f"{shown} holds a private key: give only the CA certificates")
    if _PEM_CERTIFICATE not in text:
        raise ValueError(f"{shown} holds no PEM certificate (no {_PEM_CERTIFICATE} line)")
    try:
        registry_context(text)
    except ssl.SSLError as error:
        raise ValueError(f"{shown} is not a valid PEM certificate bundle ({error.reason or error})") from None
    return text


def registry_context(certificates: str) -> ssl.SSLContext:
    """A client TLS context trusting the system's CAs and the PEM ``certificates`` (verifying host names)."""
    context = ssl.create_default_context()
    context.load_verify_locations(cadata=certificates)
    return context
