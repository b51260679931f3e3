"""Builders of observed run pods, in the kubelet's shapes, for the scheduler's tests (the in-pod design).

Every container of a run's pod runs from the pod's creation (``docs/in-pod.md``): the ``podline-prepare``
container installs the entrypoint and exits 0; each step container runs its own image with the entrypoint
waiting for its turn (the kubelet shows it *running* long before the step runs); a step ends with its result
as the container's termination message. What the scheduler reads is exactly what is built here: the pod's
annotations (stand-ins, stop), its phase and reason, and per container the kubelet's state. Times are
seconds after ``T0``; results carry ms since the epoch, as the entrypoint writes them.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from podline.core import conventions, observing, plans, pods, policies, stepping
from podline.core.stepping import ResultState

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
RUNNER = policies.DEFAULT_RUNNER_IMAGE
PREPARE = stepping.PREPARE_CONTAINER
Status = dict[str, Any]
Notes = dict[str, str]
Pod = dict[str, Any]

# What containerd and the kubelet say, word for word.
NOT_FOUND = (
    'failed to pull and unpack image "localhost:5101/nope:1": failed to resolve reference '
    '"localhost:5101/nope:1": localhost:5101/nope:1: not found'
)
UNAUTHORIZED = (
    'failed to pull and unpack image "ghcr.io/octo/private:1": failed to resolve reference '
    '"ghcr.io/octo/private:1": failed to authorize: failed to fetch anonymous token: unexpected status '
    "from GET request to https://ghcr.io/token?scope=repository%3Aocto%2Fprivate%3Apull&service=ghcr.io: "
    "401 Unauthorized"
)
DENIED = (
    'failed to pull and unpack image "docker.io/library/alpine:3.19": failed to resolve reference '
    '"docker.io/library/alpine:3.19": pull access denied, repository does not exist or may require '
    "authorization: server message: insufficient_scope: authorization failed"
)
REFUSED = (
    'failed to pull and unpack image "localhost:5101/app:1": failed to resolve reference "localhost:5101/app:1": '
    'failed to do request: Head "https://localhost:5101/v2/app/manifests/1": dial tcp 127.0.0.1:5101: '
    "connect: connection refused"
)
BACKOFF = 'Back-off pulling image "localhost:5101/app:1"'
NEVER_PULL = 'Container image "alpine:3.19" is not present with pull policy of Never'
INVALID_NAME = 'Failed to apply default image tag "Alpine:3.19": couldn\'t parse image name "Alpine:3.19": invalid reference format'
START_ERROR = (
    "failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create "
    'failed: unable to start container process: exec: "/podline/bin/entrypoint": stat '
    "/podline/bin/entrypoint: no such file or directory: unknown"
)
LOST = "The container could not be located when the pod was terminated"


def ts(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def ms(seconds: float) -> int:
    """Ms since the epoch, as the entrypoint records times."""
    return round((T0 + timedelta(seconds=seconds)).timestamp() * 1000)


def ms_ts(seconds: float) -> str:
    """How the status shows an entrypoint time: RFC 3339 with milliseconds."""
    shown = observing.ms_time(ms(seconds))
    assert shown is not None
    return shown


def kubelet_image(image: str) -> str:
    """The kubelet reports fully qualified names: ``alpine:3.19`` → ``docker.io/library/alpine:3.19``."""
    name = image
    if "/" not in name.split(":")[0].split("@")[0]:
        name = "library/" + name
    first = name.split("/")[0]
    if "." not in first and ":" not in first and first != "localhost":
        name = "docker.io/" + name
    return name


def cid(container: str) -> str:
    return f"containerd://{container}"


@dataclass(frozen=True)
class Config:
    """An image's config as the registry tells it (``stepping.ImageCommand``)."""

    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()


# --- the prepare container ----------------------------------------------------------------------------------------


def prepare_running(since: float = 0) -> Status:
    """Its postStart hook has run (or is running): the kubelet shows it running."""
    return {
        "name": PREPARE,
        "image": kubelet_image(RUNNER),
        "containerID": cid(PREPARE),
        "state": {"running": {"startedAt": ts(since)}},
        "ready": True,
        "restartCount": 0,
    }


def prepare_done(
    code: int = 0, *, reason: str | None = None, message: str | None = None, finished: float = 1
) -> Status:
    term: dict[str, Any] = {
        "exitCode": code,
        "reason": reason or ("Completed" if code == 0 else "Error"),
        "containerID": cid(PREPARE),
        "startedAt": ts(0),
        "finishedAt": ts(finished),
    }
    if message:
        term["message"] = message
    return {
        "name": PREPARE,
        "image": kubelet_image(RUNNER),
        "containerID": cid(PREPARE),
        "state": {"terminated": term},
        "ready": False,
        "restartCount": 0,
    }


def prepare_waiting(reason: str, message: str = "") -> Status:
    return {
        "name": PREPARE,
        "image": RUNNER,
        "state": {"waiting": {"reason": reason, "message": message}},
        "ready": False,
        "restartCount": 0,
    }


# --- step containers ------------------------------------------------------------------------------------------------


def entry(name: str, image: str, *, since: float = 0) -> Status:
    """A step container running: its entrypoint waiting for its turn, or its step running."""
    return {
        "name": name,
        "image": kubelet_image(image),
        "containerID": cid(name),
        "state": {"running": {"startedAt": ts(since)}},
        "ready": True,
        "restartCount": 0,
    }


def result(
    name: str,
    image: str,
    state: ResultState,
    code: int | None,
    *,
    started: float | None = 1,
    finished: float = 2,
    reason: str | None = None,
    message: str | None = None,
    failing: bool = False,
    kubelet_reason: str | None = None,
    whole: bool = False,
) -> Status:
    """A step container terminated with its result as its termination message (compact, as the entrypoint
    writes it; ``whole``: a result file's JSON, the other form the core reads)."""
    r = stepping.Result(
        name=name,
        state=state,
        exit_code=code,
        started_at=ms(started) if started is not None else None,
        finished_at=ms(finished),
        reason=reason,
        message=message,
        failing=failing,
    )
    exit_status = (
        code if code is not None else 1 if state is ResultState.FAILED else 0
    )  # what the entrypoint exits with
    term: dict[str, Any] = {
        "exitCode": exit_status,
        "reason": kubelet_reason or ("Completed" if exit_status == 0 else "Error"),
        "message": r.to_json() if whole else r.to_message(),
        "containerID": cid(name),
        "startedAt": ts(0),
        "finishedAt": ts(finished),
    }
    return {
        "name": name,
        "image": kubelet_image(image),
        "containerID": cid(name),
        "state": {"terminated": term},
        "ready": False,
        "restartCount": 0,
    }


def succeeded(name: str, image: str, *, started: float = 1, finished: float = 2, code: int = 0) -> Status:
    return result(name, image, ResultState.SUCCEEDED, code, started=started, finished=finished)


def failed(
    name: str,
    image: str,
    code: int = 1,
    *,
    started: float = 1,
    finished: float = 2,
    reason: str | None = None,
    message: str | None = None,
    kubelet_reason: str | None = None,
) -> Status:
    return result(
        name,
        image,
        ResultState.FAILED,
        code,
        started=started,
        finished=finished,
        reason=reason,
        message=message,
        failing=True,
        kubelet_reason=kubelet_reason,
    )


def skipped(
    name: str,
    image: str,
    reason: str = stepping.Why.SKIPPED,
    *,
    finished: float = 2,
    message: str | None = None,
) -> Status:
    return result(
        name,
        image,
        ResultState.SKIPPED,
        None,
        started=None,
        finished=finished,
        reason=reason,
        message=message,
    )


def stopped_waiting(name: str, image: str, *, finished: float = 2) -> Status:
    """What the entrypoint records when the pod is stopped before its step's turn."""
    return skipped(
        name,
        image,
        stepping.Why.STOPPED,
        finished=finished,
        message="Skipped: the pod was stopped (terminated) before the step's turn.",
    )


def stopped_running(name: str, image: str, *, started: float = 1, finished: float = 2) -> Status:
    """What the entrypoint records when the pod is stopped while its step runs (SIGTERM forwarded)."""
    return result(
        name,
        image,
        ResultState.FAILED,
        143,
        started=started,
        finished=finished,
        reason=stepping.Why.STOPPED,
        message="The step was stopped (terminated, the pod is being stopped).",
    )


def stand_in_result(name: str, *, at_: float = 2) -> Status:
    """The runner image standing in for a step whose image cannot be pulled, where it would have run."""
    return result(
        name,
        RUNNER,
        ResultState.FAILED,
        1,
        started=at_,
        finished=at_,
        reason=stepping.Why.IMAGE_PULL_FAILED,
        message=f"The image of {name} could not be pulled (the pod annotation killed.podline.dev/{name} "
        "says why); the step did not run.",
        failing=True,
    )


def crashed(
    name: str,
    image: str,
    code: int = 128,
    *,
    reason: str = "StartError",
    message: str | None = START_ERROR,
    finished: float = 2,
) -> Status:
    """A step container terminated without a result: the entrypoint never ran, or was killed before it wrote."""
    term: dict[str, Any] = {
        "exitCode": code,
        "reason": reason,
        "containerID": cid(name),
        "startedAt": ts(0),
        "finishedAt": ts(finished),
    }
    if message:
        term["message"] = message
    return {
        "name": name,
        "image": kubelet_image(image),
        "containerID": cid(name),
        "state": {"terminated": term},
        "ready": False,
        "restartCount": 0,
    }


def lost(name: str, image: str) -> Status:
    """A container that never started, after the pod was stopped: terminated with no container at all."""
    return {
        "name": name,
        "image": image,
        "state": {"terminated": {"exitCode": 137, "reason": "ContainerStatusUnknown", "message": LOST}},
        "ready": False,
        "restartCount": 0,
    }


def waiting(name: str, image: str, reason: str = "ContainerCreating", message: str = "") -> Status:
    """A container the kubelet has not started: its image being pulled, or not pullable."""
    state: dict[str, Any] = {"reason": reason}
    if message:
        state["message"] = message
    return {"name": name, "image": image, "state": {"waiting": state}, "ready": False, "restartCount": 0}


def service_running(name: str, image: str) -> Status:
    return {
        "name": name,
        "image": kubelet_image(image),
        "containerID": cid(name),
        "state": {"running": {"startedAt": ts(0)}},
        "ready": True,
        "restartCount": 0,
    }


def service_exited(name: str, image: str, code: int = 0, *, finished: float = 5) -> Status:
    return crashed(
        name, image, code, reason="Completed" if code == 0 else "Error", message=None, finished=finished
    )


# --- annotations ----------------------------------------------------------------------------------------------------


def killed(name: str, reason: str, message: str = "") -> Notes:
    """``killed.podline.dev/<container>``: the operator gave the step the runner image as a stand-in, and why."""
    return {
        conventions.ANNOTATION_KILLED_PREFIX + name: pods.failure_note(reason, message) if message else reason
    }


def stopped(reason: str) -> Notes:
    return {conventions.ANNOTATION_STOPPED: reason}


# --- pods -----------------------------------------------------------------------------------------------------------

_DEFAULT: Status = {}


def pod(
    plan: plans.RunPlan,
    *statuses: Status,
    prepare: Status | None = _DEFAULT,
    notes: Notes | None = None,
    phase: str = "Running",
    reason: str | None = None,
    rv: str = "100",
    start: float | None = 0,
    deleting: bool = False,
    name: str | None = None,
    created: float = 0,
) -> Pod:
    """The run's pod as the API returns it: metadata (annotations, resourceVersion) and status. The prepare
    container is done unless said otherwise (``prepare=None``: the kubelet reports nothing of it yet)."""
    metadata: dict[str, Any] = {
        "name": name or plan.pod_name,
        "namespace": plan.namespace,
        "resourceVersion": rv,
        "creationTimestamp": ts(created),
        "annotations": {conventions.ANNOTATION_GENERATION: str(plan.generation), **(notes or {})},
    }
    if deleting:
        metadata["deletionTimestamp"] = ts(created + 1)
    first = prepare_done() if prepare is _DEFAULT else prepare
    status: dict[str, Any] = {
        "phase": phase,
        "containerStatuses": ([first] if first else []) + list(statuses),
    }
    if start is not None:
        status["startTime"] = ts(start)
    if reason:
        status["reason"] = reason
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "status": status}


def apply_patch(pod_: Pod, patch: dict[str, Any] | None) -> Pod:
    """What the apiserver does with podline's strategic-merge patch, plus a new resourceVersion. Container
    statuses stay as they were: the kubelet has not acted on the change yet."""
    out = copy.deepcopy(pod_)
    if not patch:
        return out
    out["metadata"].setdefault("annotations", {}).update(patch.get("metadata", {}).get("annotations", {}))
    out["metadata"]["resourceVersion"] = str(int(out["metadata"].get("resourceVersion", "0")) + 1)
    spec = out.setdefault("spec", {})
    by_name = {c["name"]: c for c in spec.setdefault("containers", [])}
    for c in patch.get("spec", {}).get("containers", []):
        if c["name"] in by_name:
            by_name[c["name"]].update(c)
        else:
            spec["containers"].append(dict(c))
    if "activeDeadlineSeconds" in patch.get("spec", {}):
        spec["activeDeadlineSeconds"] = patch["spec"]["activeDeadlineSeconds"]
    return out
