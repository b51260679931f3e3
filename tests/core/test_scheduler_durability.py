"""Failures decided from transient evidence are recorded in the pod, so they survive the pod stopping.

Found on the node tier: a `pull: never` step waiting on ErrImageNeverPull failed the run, the operator
stopped the pod, and the kubelet then reported the container as terminated with ContainerStatusUnknown
and no container id. Re-deriving the step from that status said "still starting" and the run went back
to Running. The failure note (`killed.podline.dev/<container>`) written with the decision prevents it.
"""

from __future__ import annotations

import datetime

from podline.core import compiling, conventions, pods, policies, scheduling

NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
SPEC = {"steps": [{"name": "s", "image": "localhost:5101/busybox:absent", "pull": "never", "commands": ["true"]}]}


def plan():
    context = compiling.RunContext(namespace="ns", pipeline="p", uid="u", generation=1)
    return compiling.compile_spec(SPEC, context, policies.Policy())


def pod(notes: dict[str, str], state: dict, phase: str = "Running") -> dict:
    return {
        "metadata": {"name": "p-g1", "resourceVersion": "7", "annotations": notes,
                     "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"containers": [{"name": "step-s", "image": SPEC["steps"][0]["image"]}]},
        "status": {"phase": phase, "startTime": "2026-01-01T00:00:00Z", "containerStatuses": [
            {"name": "step-s", "image": SPEC["steps"][0]["image"], "state": state}]},
    }


def decide(p, observed, status=None):
    return scheduling.decide(scheduling.Snapshot(plan=p, pod=observed, now=NOW, generation=1, run="g1",
                                                 status=status or {}))


def apply_annotations(notes: dict[str, str], patch: dict | None) -> dict[str, str]:
    return {**notes, **((patch or {}).get("metadata", {}).get("annotations") or {})}


def test_a_never_pull_failure_stays_failed_after_the_pod_is_stopped() -> None:
    p = plan()
    started = {conventions.ANNOTATION_STARTED_PREFIX + "step-s": pods.started_annotation("2026-01-01T00:00:00Z", "")}
    waiting = {"waiting": {"reason": "ErrImageNeverPull", "message": 'image "x" is not present'}}
    first = decide(p, pod(started, waiting))
    assert first.status.phase == "Failed"
    notes = apply_annotations(started, first.pod_patch)
    assert pods.parse_failure_note(notes[conventions.ANNOTATION_KILLED_PREFIX + "step-s"])[0] == "ErrImageNeverPull"
    gone = {"terminated": {"exitCode": 137, "reason": "ContainerStatusUnknown",
                           "message": "The container could not be located when the pod was terminated"}}
    later = decide(p, pod(notes, gone, phase="Failed"), status=first.status.to_patch())
    assert later.status.phase == "Failed"
    [step] = later.status.steps
    assert step.state == "failed" and step.reason == "ErrImageNeverPull"
    assert "pull" in (step.message or "")
    assert later.events == ()
