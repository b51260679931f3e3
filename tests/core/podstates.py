"""Small builders of observed pod states, for the scheduler's tests.

A run's pod is what the scheduler reads: its annotations (what podline started, skipped, killed,
stopped) and its status (what the kubelet reports per container). These helpers build exactly those
parts, in the shapes the kubelet uses, with times as seconds after ``T0``.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from podline.core import conventions, plans, policies, scheduling

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
PLACEHOLDER = policies.DEFAULT_PLACEHOLDER_IMAGE
Status = dict[str, Any]
Notes = dict[str, str]


def ts(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def kubelet_image(image: str) -> str:
    """The kubelet reports fully qualified names: ``alpine:3.19`` → ``docker.io/library/alpine:3.19``."""
    name = image
    if "/" not in name.split(":")[0].split("@")[0]:
        name = "library/" + name
    first = name.split("/")[0]
    if "." not in first and ":" not in first and first != "localhost":
        name = "docker.io/" + name
    return name


def ph_id(container: str) -> str:
    return f"containerd://ph-{container}"


def step_id(container: str) -> str:
    return f"containerd://run-{container}"


# --- container statuses ------------------------------------------------------------------------------------------


def placeholder(name: str, *, cid: str | None = None, since: float = 0) -> Status:
    """The placeholder sleeping in a step's container (not started yet)."""
    return {
        "name": name,
        "image": kubelet_image(PLACEHOLDER),
        "containerID": cid or ph_id(name),
        "state": {"running": {"startedAt": ts(since)}},
        "restartCount": 0,
    }


def placeholder_waiting(name: str, reason: str, message: str = "") -> Status:
    return {
        "name": name,
        "image": PLACEHOLDER,
        "state": {"waiting": {"reason": reason, "message": message}},
        "restartCount": 0,
    }


def placeholder_exited(
    name: str,
    code: int = 127,
    *,
    reason: str = "Error",
    cid: str | None = None,
    message: str | None = None,
    finished: float = 1,
) -> Status:
    """The placeholder's own termination: before a start (it died) or right after a swap (killed by the kubelet)."""
    term: dict[str, Any] = {
        "exitCode": code,
        "reason": reason,
        "containerID": cid or ph_id(name),
        "startedAt": ts(0),
        "finishedAt": ts(finished),
    }
    if message:
        term["message"] = message
    return {
        "name": name,
        "image": kubelet_image(PLACEHOLDER),
        "containerID": cid or ph_id(name),
        "state": {"terminated": term},
        "restartCount": 0,
    }


def running(name: str, image: str, *, since: float = 1, cid: str | None = None) -> Status:
    return {
        "name": name,
        "image": kubelet_image(image),
        "containerID": cid or step_id(name),
        "state": {"running": {"startedAt": ts(since)}},
        "lastState": {"terminated": {"exitCode": 137, "reason": "Error", "containerID": ph_id(name)}},
        "restartCount": 0,
    }


def exited(
    name: str,
    image: str,
    code: int = 0,
    *,
    reason: str | None = None,
    started: float = 1,
    finished: float = 2,
    cid: str | None = None,
    message: str | None = None,
) -> Status:
    term: dict[str, Any] = {
        "exitCode": code,
        "reason": reason or ("Completed" if code == 0 else "Error"),
        "containerID": cid or step_id(name),
        "startedAt": ts(started),
        "finishedAt": ts(finished),
    }
    if message:
        term["message"] = message
    return {
        "name": name,
        "image": kubelet_image(image),
        "containerID": cid or step_id(name),
        "state": {"terminated": term},
        "restartCount": 0,
    }


def waiting(name: str, image: str, reason: str, message: str = "") -> Status:
    """A step whose image is being pulled (or cannot be): the kubelet reports the step's image, no container."""
    return {
        "name": name,
        "image": image,
        "state": {"waiting": {"reason": reason, "message": message}},
        "lastState": {"terminated": {"exitCode": 137, "reason": "Error", "containerID": ph_id(name)}},
        "restartCount": 0,
    }


def service_running(name: str, image: str) -> Status:
    return {
        "name": name,
        "image": kubelet_image(image),
        "containerID": step_id(name),
        "state": {"running": {"startedAt": ts(0)}},
        "restartCount": 0,
    }


# --- annotations ---------------------------------------------------------------------------------------------------


def started(name: str, *, when: float = 0, placeholder_id: str | None = None) -> Notes:
    """What podline wrote when it started a step; ``placeholder_id=""`` for steps started at pod creation."""
    value = json.dumps(
        {"at": ts(when), "from": ph_id(name) if placeholder_id is None else placeholder_id},
        separators=(",", ":"),
        sort_keys=True,
    )
    return {conventions.ANNOTATION_STARTED_PREFIX + name: value}


def skipped(name: str, reason: str = "Skipped") -> Notes:
    return {scheduling.SKIPPED_PREFIX + name: reason}


def killed(name: str, reason: str) -> Notes:
    return {conventions.ANNOTATION_KILLED_PREFIX + name: reason}


def stopped(reason: str) -> Notes:
    return {conventions.ANNOTATION_STOPPED: reason}


# --- pods -----------------------------------------------------------------------------------------------------------


def pod(
    plan: plans.RunPlan,
    *statuses: Status,
    notes: Notes | None = None,
    phase: str = "Running",
    reason: str | None = None,
    rv: str = "100",
    start: float | None = 0,
    deleting: bool = False,
    name: str | None = None,
    created: float = 0,
) -> dict[str, Any]:
    """The run's pod as the API returns it: metadata (annotations, resourceVersion) and status."""
    metadata: dict[str, Any] = {
        "name": name or plan.pod_name,
        "namespace": plan.namespace,
        "resourceVersion": rv,
        "creationTimestamp": ts(created),
        "annotations": {conventions.ANNOTATION_GENERATION: str(plan.generation), **(notes or {})},
    }
    if deleting:
        metadata["deletionTimestamp"] = ts(created + 1)
    status: dict[str, Any] = {"phase": phase, "containerStatuses": list(statuses)}
    if start is not None:
        status["startTime"] = ts(start)
    if reason:
        status["reason"] = reason
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "status": status}


def apply_patch(pod_: dict[str, Any], patch: dict[str, Any] | None) -> dict[str, Any]:
    """What the apiserver does with podline's strategic-merge patch (annotations and images only), plus a new
    resourceVersion. Container statuses stay as they were: the kubelet has not seen the change yet."""
    out = copy.deepcopy(pod_)
    if not patch:
        return out
    out["metadata"].setdefault("annotations", {}).update(patch.get("metadata", {}).get("annotations", {}))
    out["metadata"]["resourceVersion"] = str(int(out["metadata"].get("resourceVersion", "0")) + 1)
    spec = out.setdefault("spec", {})
    images = spec.setdefault("images", {})
    for c in patch.get("spec", {}).get("containers", []):
        images[c["name"]] = c["image"]
    if "activeDeadlineSeconds" in patch.get("spec", {}):
        spec["activeDeadlineSeconds"] = patch["spec"]["activeDeadlineSeconds"]
    return out
