"""Operator configuration: ``PODLINE_*`` environment variables (the Helm chart sets them), one table.

``VARIABLES`` is the one source of every setting: its variable name, the ``Settings`` field it fills, how its
value is read, its Helm value and what it means. ``Settings.from_env`` reads the environment through it,
``docs/configuration.md`` is generated from it (``python -m podline.shell.settings --markdown``; a test fails
when the committed file is stale) and a test checks it against the chart (``charts/podline``). Unset or
empty variables keep the ``Settings`` field's default. Every bad value is reported at once, naming its
variable, and the operator never starts half-configured.

Adding a setting is one entry in ``VARIABLES`` (plus the ``Settings`` or ``Policy`` field it fills, and the
chart value that sets it), then regenerating ``docs/configuration.md``.
"""

from __future__ import annotations

import json
import os
import platform as platform_
import re
import ssl
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from podline.core import errors, imageconfigs, images, policies, records, registries


class SettingsError(ValueError):
    """One or more PODLINE_* variables have bad values."""


@dataclass(frozen=True)
class Settings:
    """The operator's configuration; each field is filled by one entry of ``VARIABLES`` (which documents it)."""

    namespaces: tuple[str, ...] = ()
    policy: policies.Policy = field(default_factory=policies.Policy)
    """What pipelines may ask for, and defaults (runner image, timeouts, …)."""
    max_running: int = 0
    history_limit: int = 3
    resync_seconds: float = 30.0
    status_interval_ms: int = 1000
    log_format: str = "text"
    log_level: str = "INFO"
    metrics_port: int = 9090
    liveness_port: int = 8080
    api_workers: int = 8
    registry_mirrors: tuple[registries.Mirror, ...] = ()
    platform: str = field(default_factory=lambda: own_platform())
    registry_ca_file: str = ""
    archive_url: str = ""
    archive_port: int = 0
    archive_wait_seconds: int = 3600
    log_retention: records.Retention = field(default_factory=records.Retention)
    archive_on_delete: str = "keep"
    registry_ca: str = field(default="", repr=False)
    """The certificates of ``registry_ca_file`` as read (and checked) at start: the file is read once."""

    def registry_ssl(self) -> ssl.SSLContext | None:
        """The TLS context for registries: the system's trust plus ``registry_ca``; None: the system's alone."""
        return registry_context(self.registry_ca) if self.registry_ca else None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """The settings from ``env`` (default: the process's), or SettingsError listing every bad variable."""
        env = os.environ if env is None else env
        problems: list[str] = []
        values: dict[str, Any] = {}
        for variable in VARIABLES:
            raw = env.get(variable.name, "").strip()
            if not raw:
                continue
            try:
                value = variable.read(raw)
            except ValueError as error:
                problems.append(f"{variable.name}: {error}")
                continue
            values.update(zip(variable.fields, value if len(variable.fields) > 1 else (value,), strict=True))
        if problems:
            raise SettingsError("; ".join(problems))
        policy = {name.removeprefix("policy."): v for name, v in values.items() if name.startswith("policy.")}
        own = {name: v for name, v in values.items() if not name.startswith("policy.")}
        return cls(policy=policies.Policy(**policy), **own)


# ---- how values are read: each reader gets the stripped, non-empty value and returns the field's value, or
# raises ValueError with a message that follows "PODLINE_X: " -------------------------------------------------


def text(raw: str) -> str:
    return raw


def whole(minimum: int = 0) -> Callable[[str], int]:
    """A whole number, at least ``minimum``."""

    def read(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"{raw!r} is not a whole number") from None
        if value < minimum:
            raise ValueError(f"must be at least {minimum}")
        return value

    return read


def flag(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("0", "false", "no", "off"):
        return False
    if lowered in ("1", "true", "yes", "on"):
        return True
    raise ValueError(f"{lowered!r} is not true or false")


def names(raw: str) -> tuple[str, ...]:
    """Comma-separated names, sorted, without duplicates."""
    return tuple(sorted({n.strip() for n in raw.split(",") if n.strip()}))


def one_of(*choices: str, upper: bool = False) -> Callable[[str], str]:
    """One of ``choices`` (upper-cased first when ``upper``)."""
    listed = ", ".join(choices[:-1]) + f" or {choices[-1]}" if len(choices) > 1 else choices[0]

    def read(raw: str) -> str:
        value = raw.upper() if upper else raw
        if value not in choices:
            raise ValueError(f"{value!r} is not {listed}")
        return value

    return read


def ca_bundle(raw: str) -> tuple[str, str]:
    """The path and the certificates read from it (``registry_ca_file``, ``registry_ca``)."""
    return raw, read_ca_bundle(raw)


def a_platform(raw: str) -> str:
    return str(imageconfigs.parse_platform(raw))


def image_names(raw: str) -> tuple[str, ...]:
    """Comma-separated image references, in order, without duplicates; ``none``: no image at all."""
    if raw == "none":
        return ()
    found = tuple(dict.fromkeys(n.strip() for n in raw.split(",") if n.strip()))
    for image in found:
        try:
            images.parse(image)
        except errors.InvalidImageReference as error:
            raise ValueError("; ".join(p.message for p in error.problems)) from None
    return found


def step_timeout(raw: str) -> int | None:
    return whole()(raw) or None


def archive_url(raw: str) -> str:
    if not raw.startswith(("file:///", "s3://")):
        raise ValueError(f"{raw!r} is neither file:///path nor s3://bucket/prefix")
    return raw


# ---- the table ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Variable:
    """One ``PODLINE_*`` environment variable."""

    name: str
    fields: tuple[str, ...]
    """The ``Settings`` fields it fills (``policy.x``: a field of ``Settings.policy``); several: ``read``
    returns a tuple of their values, in this order."""
    read: Callable[[str], Any]
    """The value from the variable's stripped, non-empty text; raises ValueError saying what is wrong."""
    chart: str
    """The Helm value (path in ``charts/podline/values.yaml``) that sets it."""
    doc: str
    """What it means, for ``docs/configuration.md`` (Markdown, one paragraph)."""
    default: str = ""
    """The default as the docs show it; empty: the field's own default, as code."""


VARIABLES: tuple[Variable, ...] = (
    Variable(
        name="PODLINE_NAMESPACES",
        fields=("namespaces",),
        read=names,
        chart="watchNamespaces",
        default="(all)",
        doc=(
            "comma-separated namespaces to watch. Helm sets it from `watchNamespaces` when `rbac.scope` is "
            "`namespaces`"
        ),
    ),
    Variable(
        name="PODLINE_RUNNER_IMAGE",
        fields=("policy.runner_image",),
        read=text,
        chart="runner.image",
        doc=(
            "image holding the entrypoint binary at `/podline-entrypoint` (the operator image does; the chart "
            "defaults to the operator's own image): each run pod's first container copies it into the pod, "
            "and it stands in for a step whose image cannot be pulled"
        ),
    ),
    Variable(
        name="PODLINE_CLONE_IMAGE",
        fields=("policy.clone_image",),
        read=text,
        chart="operator.cloneImage",
        doc="image of the implicit clone step",
    ),
    Variable(
        name="PODLINE_SECRET_STORE",
        fields=("policy.secret_store",),
        read=text,
        chart="operator.secretStore",
        doc="Secret read by a bare `from_secret: key`",
    ),
    Variable(
        name="PODLINE_ALLOW_PRIVILEGED",
        fields=("policy.allow_privileged",),
        read=flag,
        chart="operator.allowPrivileged",
        doc="allow `privileged: true` steps",
    ),
    Variable(
        name="PODLINE_PRIVILEGED_IMAGES",
        fields=("policy.privileged_images",),
        read=image_names,
        chart="operator.privilegedImages",
        default="`" + ",".join(policies.DEFAULT_PRIVILEGED_IMAGES) + "`",
        doc=(
            "images whose plugin steps (no `commands`, `command`, `entrypoint`, `volumes`) run privileged without "
            "asking, as in Drone (`DRONE_RUNNER_PRIVILEGED_IMAGES`; the tag does not matter), comma-separated; "
            "`none`: no image. Only where `PODLINE_ALLOW_PRIVILEGED` is true: otherwise a Pipeline using one is "
            "refused, naming the step and the image (docs/drone-runtime.md)"
        ),
    ),
    Variable(
        name="PODLINE_ALLOW_HOST_VOLUMES",
        fields=("policy.allow_host_volumes",),
        read=flag,
        chart="operator.allowHostVolumes",
        doc="allow `host:` volumes",
    ),
    Variable(
        name="PODLINE_ALLOWED_SERVICE_ACCOUNTS",
        fields=("policy.allowed_service_accounts",),
        read=lambda raw: frozenset(names(raw)),
        chart="operator.allowedServiceAccounts",
        default="(none)",
        doc="ServiceAccounts pipelines may name, comma-separated; `*` for any",
    ),
    Variable(
        name="PODLINE_DEFAULT_SERVICE_ACCOUNT",
        fields=("policy.default_service_account",),
        read=text,
        chart="operator.defaultServiceAccount",
        default="(namespace default)",
        doc="ServiceAccount of run pods",
    ),
    Variable(
        name="PODLINE_AUTOMOUNT_TOKEN",
        fields=("policy.automount_service_account_token",),
        read=flag,
        chart="operator.automountServiceAccountToken",
        doc="mount an API token into run pods",
    ),
    Variable(
        name="PODLINE_RUN_TIMEOUT",
        fields=("policy.run_timeout_seconds",),
        read=whole(1),
        chart="operator.runTimeoutSeconds",
        doc="seconds; per Pipeline: annotation `podline.dev/timeout`",
    ),
    Variable(
        name="PODLINE_STEP_TIMEOUT",
        fields=("policy.step_timeout_seconds",),
        read=step_timeout,
        chart="operator.stepTimeoutSeconds",
        default="`0` (none)",
        doc="seconds a step may run",
    ),
    Variable(
        name="PODLINE_PULL_TIMEOUT",
        fields=("policy.pull_timeout_seconds",),
        read=whole(1),
        chart="operator.pullTimeoutSeconds",
        doc=(
            "seconds a step may wait for its image, from its turn, while the registry fails in a way that may "
            "heal; not found / unauthorized / `ErrImageNeverPull` fail the step at once"
        ),
    ),
    Variable(
        name="PODLINE_MAX_STEPS",
        fields=("policy.max_steps",),
        read=whole(1),
        chart="operator.maxSteps",
        doc="steps + services per pipeline (all are containers of one pod)",
    ),
    Variable(
        name="PODLINE_MAX_RUNNING",
        fields=("max_running",),
        read=whole(),
        chart="operator.maxRunning",
        default="`0` (no limit)",
        doc="runs at once; the rest wait as `Pending`/`Queued`, in creation order",
    ),
    Variable(
        name="PODLINE_HISTORY_LIMIT",
        fields=("history_limit",),
        read=whole(),
        chart="operator.historyLimit",
        doc="pods of earlier runs kept per Pipeline, for `kubectl logs`",
    ),
    Variable(
        name="PODLINE_RESYNC_SECONDS",
        fields=("resync_seconds",),
        read=lambda raw: float(whole(1)(raw)),
        chart="operator.resyncSeconds",
        default="`30`",
        doc="every unfinished run is re-read this often, whatever the watch said",
    ),
    Variable(
        name="PODLINE_STATUS_INTERVAL_MS",
        fields=("status_interval_ms",),
        read=whole(),
        chart="operator.statusIntervalMs",
        doc=(
            "a run's status is written at once when it starts and when it ends; step progress in between at "
            "most once per this many ms per Pipeline (0: every change)"
        ),
    ),
    Variable(
        name="PODLINE_API_WORKERS",
        fields=("api_workers",),
        read=whole(1),
        chart="operator.apiWorkers",
        doc="Kubernetes API requests the operator makes at once (its connections)",
    ),
    Variable(
        name="PODLINE_PLATFORM",
        fields=("platform",),
        read=a_platform,
        chart="operator.platform",
        default="the operator's own (e.g. `linux/amd64`)",
        doc=(
            "`os/arch[/variant]`: the manifest of a multi-arch image whose ENTRYPOINT/CMD is read for plugin "
            "steps of runs that name no platform (no `platform`, no `kubernetes.io/arch` in `node_selector`); "
            "a run's own platform wins"
        ),
    ),
    Variable(
        name="PODLINE_REGISTRY_MIRRORS",
        fields=("registry_mirrors",),
        read=registries.parse_mirrors,
        chart="operator.registryMirrors",
        default="(none)",
        doc=(
            "`registry=url` pairs, comma-separated "
            "(`docker.io=http://localhost:5101,quay.io=https://mirror.example`): image configs "
            "(ENTRYPOINT/CMD) of that registry's images are read at the mirror, never at the registry; "
            "credentials go to a mirror only from `image_pull_secrets` keys naming the mirror's host; plain "
            "`http://` only for a mirror given so and for loopback registries"
        ),
    ),
    Variable(
        name="PODLINE_REGISTRY_CA_FILE",
        fields=("registry_ca_file", "registry_ca"),
        read=ca_bundle,
        chart="operator.registryCA",
        default="(none)",
        doc=(
            "path of a PEM bundle of CA certificates trusted, besides the system's, for registries, mirrors "
            "and their token services (registries behind a private CA); read once at start: a missing, "
            "unreadable or non-PEM file, or one holding a private key, stops the operator naming the "
            "variable. A certificate that fails verification fails the step at once, saying whether this "
            "setting can cure it. Only the operator's trust: nodes pull with containerd's own configuration. "
            "Helm names a ConfigMap key (`operator.registryCA.configMap.name`/`.key`), mounted read-only at "
            "`/etc/podline/registry-ca/ca.pem`"
        ),
    ),
    Variable(
        name="PODLINE_LOG_FORMAT",
        fields=("log_format",),
        read=one_of("text", "json"),
        chart="logging.format",
        doc="`json` for JSON logs",
    ),
    Variable(
        name="PODLINE_LOG_LEVEL",
        fields=("log_level",),
        read=one_of("DEBUG", "INFO", "WARNING", "ERROR", upper=True),
        chart="logging.level",
        doc="`DEBUG`, `INFO`, `WARNING` or `ERROR` (any case)",
    ),
    Variable(
        name="PODLINE_METRICS_PORT",
        fields=("metrics_port",),
        read=whole(),
        chart="metrics.port",
        doc=(
            "Prometheus metrics (`podline_runs_total`, `podline_runs_started_total`, `podline_queue_length`, "
            "`podline_conflicts_total`, …); 0: off (Helm: `metrics.enabled: false`)"
        ),
    ),
    Variable(
        name="PODLINE_LIVENESS_PORT",
        fields=("liveness_port",),
        read=whole(),
        chart="livenessProbe.port",
        doc="kopf's liveness endpoint `/healthz`; 0: off",
    ),
    Variable(
        name="PODLINE_LOG_LIMIT",
        fields=("policy.log_limit_bytes",),
        read=whole(1),
        chart="operator.logLimitBytes",
        doc=(
            "bytes of each step's (masked) output kept in its copy on the run pod's volume, and so in the "
            "archive; past it the copy ends with a line saying how much was cut ([archive.md](archive.md))"
        ),
    ),
    Variable(
        name="PODLINE_ARCHIVE",
        fields=("archive_url",),
        read=archive_url,
        chart="archive.url",
        default="empty (off; the chart: `file:///var/lib/podline/archive`)",
        doc=(
            "where ended runs' records and step output are archived: `file:///dir` or `s3://bucket/prefix` "
            "(`AWS_*` variables: credentials, `AWS_ENDPOINT_URL`, `AWS_REGION`); the chart sets it only with "
            "`archive.enabled` ([archive.md](archive.md))"
        ),
    ),
    Variable(
        name="PODLINE_ARCHIVE_PORT",
        fields=("archive_port",),
        read=whole(),
        chart="archive.serve.port",
        default="`0` (off; the chart: `8081`)",
        doc=(
            "port of the archive's read-only HTTP endpoint (runs, records, step logs), which `podline logs "
            "--run`, `podline get` and the dashboard read through the API server's service proxy; 0: off "
            "(Helm: `archive.serve.enabled: false`) ([archive.md](archive.md#reading-it))"
        ),
    ),
    Variable(
        name="PODLINE_ARCHIVE_WAIT",
        fields=("archive_wait_seconds",),
        read=whole(1),
        chart="archive.waitSeconds",
        doc="seconds after its run ended that a pod beyond the history limit is kept while it is not archived, "
        "and after its deletion that a deleted pod is held (finalizer `podline.dev/archive`) while it is not",
    ),
    Variable(
        name="PODLINE_LOG_RETENTION",
        fields=("log_retention",),
        read=records.parse_retention,
        chart="archive.retention",
        default="empty (keep all)",
        doc="archived runs kept: `30d` (age: s, m, h, d), `20runs` (newest per Pipeline), or `30d,20runs`",
    ),
    Variable(
        name="PODLINE_ARCHIVE_ON_DELETE",
        fields=("archive_on_delete",),
        read=one_of("keep", "delete"),
        chart="archive.onPipelineDelete",
        doc="`keep` a deleted Pipeline's archived runs, or `delete` them with it",
    ),
)
"""Every setting, in the order the docs list them."""


def default_of(variable: Variable) -> str:
    """The default as ``docs/configuration.md`` shows it."""
    if variable.default:
        return variable.default
    name = variable.fields[0]
    owner: object = Settings()
    if name.startswith("policy."):
        owner, name = policies.Policy(), name.removeprefix("policy.")
    value = getattr(owner, name)
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    return f"`{value}`"


def markdown(variables: Sequence[Variable] = VARIABLES) -> str:
    """``docs/configuration.md``: the reference table, generated from ``VARIABLES``."""
    rows = [f"| `{v.name}` | {default_of(v)} | `{v.chart}` | {v.doc} |" for v in variables]
    return "\n".join([*MARKDOWN_HEAD, *rows, *MARKDOWN_TAIL]) + "\n"


MARKDOWN_HEAD = (
    "# Configuration",
    "",
    "<!-- Generated by `python -m podline.shell.settings --markdown > docs/configuration.md` from",
    "     `operator/podline/shell/settings.py` (VARIABLES); edit that table, not this file. -->",
    "",
    "The operator reads `PODLINE_*` environment variables; the Helm chart sets each from the value named",
    "here (`charts/podline/values.yaml` describes them, `values.schema.json` rejects bad ones at install",
    "time). An unset or empty variable takes its default. Bad values are reported together, each naming its",
    "variable, and the operator does not start.",
    "",
    "| variable | default | Helm value | meaning |",
    "|---|---|---|---|",
)
MARKDOWN_TAIL = (
    "",
    "Per Pipeline, annotations override some of these: `podline.dev/timeout` (the run timeout, e.g. `30m`).",
    "Settings of the in-pod entrypoint for tests only (`PODLINE_RUNNER_MARKER`, `PODLINE_TERMINATION_LOG`)",
    "are in [in-pod.md](in-pod.md#details-the-binary-settles); the test cluster's (`PODLINE_TIERS`,",
    "`PODLINE_CACHE`, …) in [development.md](development.md).",
)


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


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m podline.shell.settings --markdown``: print ``docs/configuration.md``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args != ["--markdown"]:
        print("usage: python -m podline.shell.settings --markdown", file=sys.stderr)
        return 2
    sys.stdout.write(markdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
