"""Building snapshots for the pure run logic and reading its decisions: shared by the ``test_scheduler_*``
files (the plans they run, the previous status, the invariants every decision keeps)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from podline.core import (
    compiling,
    conventions,
    errors,
    models,
    observing,
    plans,
    pods,
    policies,
    scheduling,
    statuses,
)

from tests.core import podstates as ps

POLICY = policies.Policy()
CONTEXT = compiling.RunContext(namespace="ci", pipeline="demo", uid="uid-1", generation=1)
A, B, C, D = "step-a", "step-b", "step-c", "step-d"
IMG = {A: "alpine:3.19", B: "busybox:1.36", C: "golang:1.22", D: "python:3.12"}
RUNNER = POLICY.runner_image
Manifest = dict[str, Any]


def step(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "image": IMG["step-" + name], "commands": [f"echo {name}"], **fields}


def compile_(
    *steps: dict[str, Any],
    policy: policies.Policy = POLICY,
    build: dict[str, Any] | None = None,
    **fields: Any,
) -> plans.RunPlan:
    context = dataclasses.replace(CONTEXT, build=models.BuildInfo(**build) if build else None)
    return compiling.compile_spec({"steps": list(steps), **fields}, context, policy)


PLANS: dict[str, plans.RunPlan] = {
    "seq": compile_(step("a"), step("b"), step("c")),
    "one": compile_(step("a")),
    "on-failure": compile_(
        step("a"),
        step("b"),
        step("c", when={"status": ["failure"]}),
        step("d", when={"status": ["success", "failure"]}),
    ),
    # c depends on a but only runs on failure; b fails later.
    "dag": compile_(
        step("a"),
        step("b", depends_on=["a"]),
        step("c", depends_on=["a"], when={"status": "failure"}),
        step("d", depends_on=["b"]),
    ),
    "parallel": compile_(step("a"), step("b"), step("c", depends_on=["a", "b"]), step("d", depends_on=["a"])),
    "ignore": compile_(step("a", failure="ignore"), step("b")),
    "detach": compile_(step("a", detach=True), step("b")),
    "services": compile_(step("a"), step("b"), services=[{"name": "db", "image": "postgres:16"}]),
    "excluded": compile_(
        step("a"), step("b", when={"branch": "release/*"}), step("c"), build={"branch": "main"}
    ),
    "private": compile_(step("a"), image_pull_secrets=["dockerconfig"]),
}


def running_status(plan: plans.RunPlan, **changes: Any) -> dict[str, Any]:
    """The status a run has once its pod is running: the usual previous status of a decision."""
    base = statuses.PipelineStatus(
        phase=statuses.Phase.RUNNING,
        observed_generation=plan.generation,
        run=plan.run,
        pod_name=plan.pod_name,
        start_time=ps.ts(0),
        reason="Running",
        steps=[
            statuses.StepStatus(name=c.step, container=c.name, state=statuses.StepState.WAITING)
            for c in plan.steps
        ],
    )
    return base.model_copy(update=changes).to_patch()


def snapshot(
    plan: plans.RunPlan | errors.PodlineError,
    pod: Manifest | None,
    *,
    now: float = 10,
    status: dict[str, Any] | None = None,
    **kwargs: Any,
) -> scheduling.Snapshot:
    run = plan.run if isinstance(plan, plans.RunPlan) else CONTEXT.run
    if status is None:
        status = running_status(plan) if isinstance(plan, plans.RunPlan) and pod is not None else {}
    return scheduling.Snapshot(
        plan=plan, pod=pod, now=ps.at(now), generation=CONTEXT.generation, run=run, status=status, **kwargs
    )


# --- Reading a decision ------------------------------------------------------------------------------------------


def annotations_of(patch: Manifest | None, prefix: str) -> dict[str, str]:
    notes = (patch or {}).get("metadata", {}).get("annotations", {})
    return {k.removeprefix(prefix): v for k, v in notes.items() if k.startswith(prefix)}


def stand_ins_of(decision: scheduling.Decision) -> dict[str, str]:
    """The failures recorded in the pod (``killed.podline.dev/<container>``), by reason."""
    notes = annotations_of(decision.pod_patch, conventions.ANNOTATION_KILLED_PREFIX)
    return {name: pods.parse_failure_note(note)[0] for name, note in notes.items()}


def swaps_of(decision: scheduling.Decision) -> dict[str, str]:
    """The containers whose image the patch changes, and to what."""
    return {c["name"]: c["image"] for c in (decision.pod_patch or {}).get("spec", {}).get("containers", [])}


def stop_of(decision: scheduling.Decision) -> str | None:
    return annotations_of(decision.pod_patch, "").get(conventions.ANNOTATION_STOPPED)


def states(decision: scheduling.Decision) -> dict[str, str]:
    return {s.name: str(s.state) for s in decision.status.steps}


def step_status(decision: scheduling.Decision, name: str) -> statuses.StepStatus:
    (found,) = [s for s in decision.status.steps if s.name == name]
    return found


def event_reasons(decision: scheduling.Decision) -> list[str]:
    return [e.reason for e in decision.events]


def container_state(pod: Mapping[str, Any] | None, name: str) -> dict[str, Any]:
    for cs in (pod or {}).get("status", {}).get("containerStatuses") or []:
        if cs["name"] == name:
            return dict(cs.get("state") or {})
    return {}


def check_invariants(snap: scheduling.Snapshot, decision: scheduling.Decision) -> None:
    """What holds for every decision, whatever the pod says."""
    plan = snap.plan
    assert isinstance(plan, plans.RunPlan)
    pod = snap.pod
    notes = (pod or {}).get("metadata", {}).get("annotations", {})
    patch = decision.pod_patch
    if patch is not None:
        assert pod is not None
        # Conditional on what was read, and never on a pod that has ended.
        assert patch["metadata"]["resourceVersion"] == pod["metadata"]["resourceVersion"]
        assert observing.pod_phase(pod) not in ("Succeeded", "Failed"), "an ended pod was patched"
        assert set(patch["metadata"]) <= {"annotations", "resourceVersion"}
        assert set(patch.get("spec", {})) <= {"containers", "activeDeadlineSeconds"}
        for key in patch["metadata"].get("annotations", {}):
            assert key == conventions.ANNOTATION_STOPPED or key.startswith(
                conventions.ANNOTATION_KILLED_PREFIX
            ), key
            assert key not in notes, f"{key} written twice"
        if "activeDeadlineSeconds" in patch.get("spec", {}):
            assert patch["spec"]["activeDeadlineSeconds"] == 1 and stop_of(decision)
    # No patch touches a step that has run: only a waiting step container gets the runner image, with its note.
    for name, image in swaps_of(decision).items():
        assert image == plan.runner_image
        assert plan.container(name).is_step, name
        assert name in stand_ins_of(decision), name
        assert set(container_state(pod, name)) == {"waiting"}, (name, container_state(pod, name))
    # The status belongs to this run, and its conditions agree with the phase.
    status = decision.status
    assert status.run == snap.run and status.observed_generation == snap.generation
    assert [c.type for c in status.conditions] == ["Ready", "Succeeded", "Reconciling", "Stalled"]
    conditions = {c.type: c.status for c in status.conditions}
    phase = status.phase
    assert phase is not None
    assert conditions["Ready"] == (conditions["Succeeded"] if phase.is_terminal else "False")
    assert conditions["Reconciling"] == ("False" if phase.is_terminal else "True")
    running = [s.name for s in status.steps if s.state is statuses.StepState.RUNNING]
    if phase.is_terminal:
        assert status.completion_time is not None
        assert all(s.state.is_done for s in status.steps), states(decision)
        assert decision.requeue_after is None and status.current_step is None
    else:
        assert status.current_step == (", ".join(running) or None)
    # Deciding again on the status just written changes nothing and says nothing (idempotence).
    again = scheduling.decide(dataclasses.replace(snap, status=status.to_patch()))
    assert again.status == status
    assert again.events == ()
    assert again.pod_patch == decision.pod_patch
    assert again.create == decision.create
