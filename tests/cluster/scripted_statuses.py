"""TEST DOUBLE, pure half: what the scripted kubelet reports, shaped like the real kubelet's statuses.

Everything here is computation on plain dicts (the API's JSON): container status builders, the pod phase
rule (the kubelet's ``getPhase`` for ``restartPolicy: Never``), image normalisation and pull-error messages
as containerd and the kubelet word them, what a step's command does (the default script), and the
termination message the entrypoint writes (``podline.core.stepping.Result``). The watching, timing,
in-pod sequencing and writing live in `scripted_kubelet`.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import re
from collections.abc import Sequence
from typing import Any

Body = dict[str, Any]  # a pod or a piece of one, as the JSON the API serves


@dataclasses.dataclass(frozen=True)
class Behaviour:
    """What a step's command (or a service's process) does once started. ``duration`` None: runs until killed."""

    exit_code: int = 0
    duration: float | None = 0.0


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def normalise(image: str) -> str:
    """An image reference as containerd reports it: ``busybox`` → ``docker.io/library/busybox:latest``;
    a reference naming a registry host (``localhost:5101/x:1``, ``quay.io/x``) keeps it."""
    name, at, digest = image.partition("@")
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        domain, path = first, rest
    else:
        domain, path = "docker.io", name
    if domain == "docker.io" and "/" not in path:
        path = f"library/{path}"
    if not at and ":" not in path.rsplit("/", 1)[-1]:
        path += ":latest"
    return f"{domain}/{path}{at}{digest}"


def with_default_tag(image: str) -> str:
    """The kubelet's ``applyDefaultImageTag``: ``:latest`` when the reference names no tag or digest."""
    if "@" in image or ":" in image.rsplit("/", 1)[-1]:
        return image
    return f"{image}:latest"


def pull_error(image: str) -> str | None:
    """What pulling ``image`` fails with (the CRI error containerd returns), or None if it pulls.

    ``notfound`` in the name: the registry has no such image (containerd's "not found", which podline
    treats as permanent); ``unreachable``: the registry cannot be reached (transient)."""
    ref = normalise(image)
    if "notfound" in image:
        return (
            f'rpc error: code = NotFound desc = failed to pull and unpack image "{ref}": failed to resolve '
            f'reference "{ref}": {ref}: not found'
        )
    if "unreachable" in image:
        host, _, rest = ref.partition("/")
        repo, _, tag = rest.rpartition(":")
        return (
            f'rpc error: code = Unknown desc = failed to pull and unpack image "{ref}": failed to resolve '
            f'reference "{ref}": failed to do request: Head "https://{host}/v2/{repo}/manifests/{tag}": '
            "dial tcp 127.0.0.1:1: connect: connection refused"
        )
    return None


def backoff_message(image: str, error: str) -> str:
    """The waiting message of ImagePullBackOff: kubelet 1.33 wraps the last pull error."""
    return f'Back-off pulling image "{with_default_tag(image)}": ErrImagePull: {error}'


def never_pull_message(image: str) -> str:
    return f'Container image "{image}" is not present with pull policy of Never'


def scripted_behaviour(command: Sequence[str], time_factor: float) -> Behaviour:
    """The default script of a step's command (or a service's): the ``sleep N`` in it add up to the duration
    (times ``time_factor``); the first ``exit N`` is the exit code (default 0)."""
    text = " ".join(command)
    exit_code = re.search(r"exit (\d+)", text)
    sleeps = [float(s) for s in re.findall(r"sleep (\d+(?:\.\d+)?)", text)]
    return Behaviour(int(exit_code.group(1)) if exit_code else 0, sum(sleeps) * time_factor)


def last_state(previous: Body) -> Body:
    """The ``lastState`` a container reports after ``previous`` (its status so far): the instance before,
    if that one terminated, else whatever it reported already."""
    terminated = (previous.get("state") or {}).get("terminated")
    return {"terminated": terminated} if terminated else dict(previous.get("lastState") or {})


def running(name: str, image: str, container_id: str, restart_count: int, previous: Body) -> Body:
    return {
        "name": name,
        "image": normalise(image),
        "imageID": f"{normalise(image).rpartition(':')[0]}@sha256:{_digest(image)}",
        "containerID": container_id,
        "state": {"running": {"startedAt": now()}},
        "lastState": last_state(previous),
        "ready": True,
        "started": True,
        "restartCount": restart_count,
    }


def waiting(name: str, image: str, reason: str, message: str, restart_count: int, previous: Body) -> Body:
    return {
        "name": name,
        "image": image,
        "imageID": "",
        "state": {"waiting": {"reason": reason, "message": message}},
        "lastState": last_state(previous),
        "ready": False,
        "started": False,
        "restartCount": restart_count,
    }


def terminated(status: Body, exit_code: int, message: str | None = None, reason: str | None = None) -> Body:
    """A running container's status once its process exited with ``exit_code``; ``message`` is what its
    termination-message file holds (the entrypoint's result), which the kubelet reports as is."""
    ended: Body = {
        "containerID": status["containerID"],
        "exitCode": exit_code,
        "reason": reason or ("Completed" if exit_code == 0 else "Error"),
        "startedAt": status["state"]["running"]["startedAt"],
        "finishedAt": now(),
    }
    if message:
        ended["message"] = message
    return {**status, "state": {"terminated": ended}, "ready": False, "started": False}


def start_error(status: Body, container_id: str, message: str) -> Body:
    """A container the runtime created but could not start (its command does not exist in it)."""
    ended = {"containerID": container_id, "exitCode": 128, "reason": "StartError", "message": message,
             "startedAt": "1970-01-01T00:00:00Z", "finishedAt": now()}  # fmt: skip
    return {
        **status,
        "containerID": container_id,
        "state": {"terminated": ended},
        "ready": False,
        "started": False,
    }


def never_started(status: Body) -> Body:
    """A waiting container's status once its pod was terminated (e.g. DeadlineExceeded)."""
    message = "The container could not be located when the pod was terminated"
    ended = {"exitCode": 137, "reason": "ContainerStatusUnknown", "message": message, "finishedAt": now()}
    return {**status, "state": {"terminated": ended}}


def phase(statuses: list[Body]) -> str:
    """The kubelet's getPhase for restartPolicy Never, without init containers."""
    running_ = waiting_ = stopped = succeeded = 0
    for status in statuses:
        state = status.get("state") or {}
        if "running" in state:
            running_ += 1
        elif "terminated" in state:
            stopped += 1
            succeeded += state["terminated"]["exitCode"] == 0
        elif (status.get("lastState") or {}).get("terminated"):
            stopped += 1  # waiting to restart after an earlier instance: counts as stopped, not waiting
        else:
            waiting_ += 1
    if waiting_:
        return "Pending"
    if running_:
        return "Running"
    if stopped and stopped == succeeded:
        return "Succeeded"
    return "Failed" if stopped else "Pending"


def pod_status(start_time: str, statuses: list[Body], failure: tuple[str, str] | None) -> Body:
    """A pod's whole status; ``failure`` is (reason, message) once the pod failed as a whole."""
    ready = "True" if statuses and all(s.get("ready") for s in statuses) else "False"
    conditions = (
        ("PodScheduled", "True"),
        ("Initialized", "True"),
        ("ContainersReady", ready),
        ("Ready", ready),
    )
    status: Body = {
        "phase": "Failed" if failure else phase(statuses),
        "startTime": start_time,
        "hostIP": "127.0.0.1",
        "conditions": [{"type": t, "status": s, "lastTransitionTime": start_time} for t, s in conditions],
        "containerStatuses": statuses,
    }
    if failure:
        status["reason"], status["message"] = failure
    return status


def _digest(image: str) -> str:
    return hashlib.sha256(normalise(image).encode()).hexdigest()
