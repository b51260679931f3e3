"""Names, labels and annotations: the one place podline's naming scheme lives.

Everything that links a Pipeline to the objects made for it (pod, generated Secret), the names of the pod's
containers and pipeline volumes, and every annotation the operator reads or writes, is defined here. Two
neighbours keep their own names, each beside the code that gives them meaning: the in-pod layout the
entrypoint shares with the core (the tools volume, the prepare container, the run directory: ``stepping``,
the in-pod contract) and the value of a ``killed.`` annotation (``pods.failure_note``, with its parser).
"""

from __future__ import annotations

import hashlib
import re

GROUP = "podline.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "Pipeline"
PLURAL = "pipelines"
SINGULAR = "pipeline"
SHORT_NAMES = ("pl",)

# Labels on every object podline creates.
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "podline"
LABEL_PIPELINE = f"{GROUP}/pipeline"  # the Pipeline's name
LABEL_PIPELINE_UID = f"{GROUP}/pipeline-uid"  # the Pipeline's uid
LABEL_RUN = f"{GROUP}/run"  # the run id (see run_id)
LABEL_COMPONENT = f"{GROUP}/component"  # "run-pod" or "pull-secret"

# Labels on the Pipeline, set by users (or `podline convert`).
LABEL_BUILD = f"{GROUP}/build"  # the build (one .drone.yml) the Pipeline belongs to; see core/builds.py

# Annotations on the Pipeline, set by users.
ANNOTATION_RERUN = f"{GROUP}/rerun"  # any new value starts a new run of the same spec
ANNOTATION_CANCEL = f"{GROUP}/cancel"  # "true" cancels the current run
ANNOTATION_TIMEOUT = f"{GROUP}/timeout"  # run timeout, e.g. "30m", overrides the operator default
ANNOTATION_BUILD = f"{GROUP}/build"  # JSON build metadata: branch, event, ref, commit, number, repo

# Annotations on the pod, written by the operator, so the pod itself records what the operator decided
# (see scheduling) and an operator restart reads it back.
ANNOTATION_KILLED_PREFIX = (
    f"killed.{GROUP}/"  # + container name → why its image was given up on (pods.failure_note)
)
ANNOTATION_STOPPED = f"{GROUP}/stopped"  # why the operator ended the pod (Completed, Cancelled, …)
ANNOTATION_GENERATION = f"{GROUP}/generation"  # the Pipeline generation the pod was built from
ANNOTATION_PIPELINE_NAME = f"{GROUP}/pipeline-name"  # the Pipeline's full name (the label may be shortened)
ANNOTATION_SOURCES = f"{GROUP}/sources"  # on the pull Secret: the Secrets it was made from
ANNOTATION_ARCHIVED = f"{GROUP}/archived"  # on the pod: when its run's record and logs were archived
# On the run pod while the archive is on: a deleted pod stays (Terminating) until its run is archived.
FINALIZER_ARCHIVE = f"{GROUP}/archive"

CONTAINER_STEP_PREFIX = "step-"
CONTAINER_SERVICE_PREFIX = "svc-"

WORKSPACE_VOLUME = "podline-workspace"  # the pod volume every step mounts at the workspace
DEFAULT_WORKSPACE = "/drone/src"  # Drone's workspace when the Pipeline sets none

_DNS1123_LABEL_MAX = 63
_NOT_ALLOWED = re.compile(r"[^a-z0-9-]+")


def dns1123_label(name: str, *, max_length: int = _DNS1123_LABEL_MAX) -> str:
    """Map any step name to a DNS-1123 label, deterministically.

    Lower-cases, replaces runs of disallowed characters with ``-``, trims dashes. If the result had to be
    shortened, or is empty, a short hash of the original keeps different names apart.
    """
    mapped = _NOT_ALLOWED.sub("-", name.lower()).strip("-")
    if mapped and len(mapped) <= max_length:
        return mapped
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    head = mapped[: max_length - len(digest) - 1].rstrip("-")
    return f"{head}-{digest}" if head else f"x-{digest}"


def step_container(step_name: str) -> str:
    return CONTAINER_STEP_PREFIX + dns1123_label(
        step_name, max_length=_DNS1123_LABEL_MAX - len(CONTAINER_STEP_PREFIX)
    )


def service_container(service_name: str) -> str:
    return CONTAINER_SERVICE_PREFIX + dns1123_label(
        service_name, max_length=_DNS1123_LABEL_MAX - len(CONTAINER_SERVICE_PREFIX)
    )


def volume_name(volume: str) -> str:
    """The pod volume of a pipeline volume (the workspace volume has no ``v-`` prefix, so never clashes)."""
    return "v-" + dns1123_label(volume, max_length=_DNS1123_LABEL_MAX - 2)


def run_id(generation: int, rerun: str | None) -> str:
    """The identity of one run of a Pipeline: its spec generation, plus the rerun token if any."""
    if not rerun:
        return f"g{generation}"
    return f"g{generation}-r{hashlib.sha256(rerun.encode()).hexdigest()[:6]}"


def pod_name(pipeline_name: str, run: str) -> str:
    """Deterministic pod name of a run: creating it twice yields 409, never a second pod."""
    return _bounded(f"{pipeline_name}-{run}", 253)


def pull_secret_name(pipeline_name: str, run: str) -> str:
    return _bounded(f"{pipeline_name}-{run}-pull", 253)


def _bounded(name: str, limit: int) -> str:
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: limit - 9].rstrip('-.')}-{digest}"


# --- annotation codecs: what the Pipeline's annotations mean ---------------------------------------------------------

MAX_TIMEOUT_SECONDS = 2**31 - 1  # the most a pod's activeDeadlineSeconds can hold
_UNITS = {"s": 1, "m": 60, "h": 3600}


def parse_timeout(raw: str | None) -> int | None:
    """The run timeout of ``podline.dev/timeout`` in seconds (``90s``, ``30m``, ``2h`` or whole seconds).

    Raises ``ValueError`` with the reason in words; None when the annotation is absent or empty."""
    if not raw:
        return None
    try:
        seconds = float(raw[:-1]) * _UNITS[raw[-1]] if raw[-1] in _UNITS else float(int(raw))
    except ValueError:
        raise ValueError(f'"{raw}" is not a duration like 90s, 30m or 2h') from None
    if not 1 <= seconds <= MAX_TIMEOUT_SECONDS:  # also NaN and infinity, which int() cannot take
        raise ValueError(f'"{raw}" is out of range: from 1s to {MAX_TIMEOUT_SECONDS}s')
    return int(seconds)
