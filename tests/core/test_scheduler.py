"""The pure scheduler: ``decide(Snapshot) -> Decision`` over a large table of observed pod states.

Each row is a pod as the API could show it (annotations podline wrote, container statuses the kubelet
reported) and what the scheduler must decide: the run's phase, each step's state, which steps to start,
skip or kill, whether to stop the pod, when to look again, and which Events to emit. Every row is also
checked for the invariants that hold whatever the pod says (``check_invariants``): no step is started
twice, every patch is conditional on the pod's resourceVersion, and deciding again on the returned
status changes nothing and emits nothing.

The traps of drone-runner-kube's history have their own rows: the placeholder's termination after a
swap, the placeholder still shown running after the patch, missed watch events, slow pulls.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from podline.core import compiling, conventions, errors, models, plans, pods, policies, scheduling, statuses

from tests.core import podstates as ps
from tests.core.podstates import (
    exited,
    killed,
    placeholder,
    placeholder_exited,
    placeholder_waiting,
    running,
    skipped,
    started,
    stopped,
    waiting,
)

POLICY = policies.Policy()
CONTEXT = compiling.RunContext(namespace="ci", pipeline="demo", uid="uid-1", generation=1)
A, B, C, D = "step-a", "step-b", "step-c", "step-d"
IMG = {A: "alpine:3.19", B: "busybox:1.36", C: "golang:1.22", D: "python:3.12"}


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
    # The brief's DAG: c depends on a but only runs on failure; b fails later.
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
    "never": compile_(step("a"), step("b", pull="never")),
    "excluded": compile_(
        step("a"), step("b", when={"branch": "release/*"}), step("c"), build={"branch": "main"}
    ),
    "step-timeout": compile_(
        step("a"), step("b"), policy=dataclasses.replace(POLICY, step_timeout_seconds=60)
    ),
    "same-image": compile_(
        step("a"), step("b"), policy=dataclasses.replace(POLICY, placeholder_image="busybox:1.36")
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
    pod: dict[str, Any] | None,
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


def annotations_of(patch: dict[str, Any] | None, prefix: str) -> dict[str, str]:
    notes = (patch or {}).get("metadata", {}).get("annotations", {})
    return {k.removeprefix(prefix): v for k, v in notes.items() if k.startswith(prefix)}


def starts_of(decision: scheduling.Decision, plan: plans.RunPlan) -> set[str]:
    images = {c["name"]: c["image"] for c in (decision.pod_patch or {}).get("spec", {}).get("containers", [])}
    return {n for n, image in images.items() if image != plan.placeholder_image}


def kills_of(decision: scheduling.Decision) -> dict[str, str]:
    """Failures recorded in the pod (by reason); a recorded failure reads the same after the pod stops."""
    notes = annotations_of(decision.pod_patch, conventions.ANNOTATION_KILLED_PREFIX)
    return {name: pods.parse_failure_note(note)[0] for name, note in notes.items()}


def skips_of(decision: scheduling.Decision) -> dict[str, str]:
    return annotations_of(decision.pod_patch, scheduling.SKIPPED_PREFIX)


def stop_of(decision: scheduling.Decision) -> str | None:
    return annotations_of(decision.pod_patch, "").get(conventions.ANNOTATION_STOPPED)


def states(decision: scheduling.Decision) -> dict[str, str]:
    return {s.name: str(s.state) for s in decision.status.steps}


def step_status(decision: scheduling.Decision, name: str) -> statuses.StepStatus:
    (found,) = [s for s in decision.status.steps if s.name == name]
    return found


def event_reasons(decision: scheduling.Decision) -> list[str]:
    return [e.reason for e in decision.events]


def check_invariants(snap: scheduling.Snapshot, decision: scheduling.Decision) -> None:
    """What holds for every decision, whatever the pod says."""
    plan = snap.plan
    assert isinstance(plan, plans.RunPlan)
    notes = (snap.pod or {}).get("metadata", {}).get("annotations", {})
    # No step is ever started twice: a step the pod records as started is never in a start patch again.
    for name in starts_of(decision, plan):
        assert conventions.ANNOTATION_STARTED_PREFIX + name not in notes, f"{name} started twice"
        assert annotations_of(decision.pod_patch, conventions.ANNOTATION_STARTED_PREFIX).get(name), name
    # A step is not started and skipped at once; a skip is never undone.
    assert not starts_of(decision, plan) & set(skips_of(decision))
    for name in starts_of(decision, plan):
        assert scheduling.SKIPPED_PREFIX + name not in notes, f"{name} was skipped, then started"
    # Every patch of the run's pod is conditional on what was read.
    if decision.pod_patch is not None:
        assert snap.pod is not None
        assert decision.pod_patch["metadata"]["resourceVersion"] == snap.pod["metadata"]["resourceVersion"]
    # The status belongs to this run, and its conditions agree with the phase.
    status = decision.status
    assert status.run == snap.run and status.observed_generation == snap.generation
    assert [c.type for c in status.conditions] == ["Ready", "Succeeded", "Reconciling", "Stalled"]
    conditions = {c.type: c.status for c in status.conditions}
    phase = status.phase
    assert phase is not None
    assert (
        conditions["Ready"] == conditions["Succeeded"]
        if phase.is_terminal
        else conditions["Ready"] == "False"
    )
    assert conditions["Reconciling"] == ("False" if phase.is_terminal else "True")
    if phase.is_terminal:
        assert status.completion_time is not None
        assert all(s.state.is_done for s in status.steps), states(decision)
        assert decision.requeue_after is None
    # Deciding again on the status just written changes nothing and says nothing (idempotence).
    again = scheduling.decide(dataclasses.replace(snap, status=status.to_patch()))
    assert again.status == status
    assert again.events == ()
    assert again.pod_patch == decision.pod_patch
    assert again.create == decision.create


# --- The table -----------------------------------------------------------------------------------------------------

PodFn = Callable[[plans.RunPlan], dict[str, Any]]
ANY = object()


@dataclass(frozen=True)
class Row:
    id: str
    plan: str
    pod: PodFn
    phase: str
    reason: str | None = None
    steps: dict[str, str] | None = None  # step name → state
    starts: frozenset[str] = frozenset()
    skips: dict[str, str] = field(default_factory=dict)
    kills: dict[str, str] = field(default_factory=dict)
    stop: str | None = None
    events: list[str] = field(default_factory=list)
    now: float = 10
    cancel: bool = False
    requeue: Any = ANY  # seconds, None, or ANY
    step_reasons: dict[str, str | None] = field(default_factory=dict)
    message: str | None = None  # a substring of status.message


def seq(*states_: str) -> dict[str, str]:
    return dict(zip("abcd", states_, strict=False))


ROWS = [
    # --- Progress through a sequential pipeline ----------------------------------------------------------------
    Row(
        "created-nothing-reported-yet",
        "seq",
        lambda p: ps.pod(p, notes=started(A, placeholder_id=""), phase="Pending", start=None),
        "Running",
        "Running",
        seq("running", "waiting", "waiting"),
        requeue=290,
        step_reasons={"a": "Starting"},
    ),
    Row(
        "first-step-pulling-at-creation",
        "seq",
        lambda p: ps.pod(
            p,
            waiting(A, IMG[A], "ContainerCreating"),
            placeholder(B),
            placeholder(C),
            notes=started(A, placeholder_id=""),
            phase="Pending",
        ),
        "Running",
        steps=seq("running", "waiting", "waiting"),
        requeue=290,
        step_reasons={"a": "ContainerCreating"},
    ),
    Row(
        "first-step-running",
        "seq",
        lambda p: ps.pod(
            p, running(A, IMG[A]), placeholder(B), placeholder(C), notes=started(A, placeholder_id="")
        ),
        "Running",
        "Running",
        seq("running", "waiting", "waiting"),
        requeue=3590,
        message="running a",
    ),
    Row(
        "first-done-second-starts",
        "seq",
        lambda p: ps.pod(
            p, exited(A, IMG[A]), placeholder(B), placeholder(C), notes=started(A, placeholder_id="")
        ),
        # Only the run timeout is due: the pull deadline counts once the pod shows the start.
        "Running",
        steps=seq("succeeded", "running", "waiting"),
        starts=frozenset({B}),
        requeue=3590,
        step_reasons={"b": "Starting"},
    ),
    Row(
        "second-step-placeholder-not-running-yet",
        "seq",
        lambda p: ps.pod(
            p,
            exited(A, IMG[A]),
            placeholder_waiting(B, "ContainerCreating"),
            placeholder(C),
            notes=started(A, placeholder_id=""),
        ),
        "Running",
        steps=seq("succeeded", "running", "waiting"),
        starts=frozenset({B}),
    ),
    # Trap: right after the patch the kubelet still shows the placeholder running.
    Row(
        "placeholder-still-running-after-the-swap",
        "seq",
        lambda p: ps.pod(
            p,
            exited(A, IMG[A]),
            placeholder(B),
            placeholder(C),
            notes=started(A, placeholder_id="") | started(B, when=5),
        ),
        "Running",
        steps=seq("succeeded", "running", "waiting"),
        requeue=295,
        step_reasons={"b": "Starting"},
    ),
    # Trap: the placeholder's own termination (killed for the swap) is not the step's result.
    Row(
        "placeholder-killed-by-the-swap-same-container-id",
        "seq",
        lambda p: ps.pod(
            p,
            exited(A, IMG[A]),
            placeholder_exited(B, 137),
            placeholder(C),
            notes=started(A, placeholder_id="") | started(B, when=5),
        ),
        "Running",
        steps=seq("succeeded", "running", "waiting"),
        requeue=295,
        step_reasons={"b": "Starting"},
    ),
    Row(
        # The placeholder had not started when the step was (id unknown), then started and was killed.
        "placeholder-started-late-and-killed-image-tells",
        "seq",
        lambda p: ps.pod(
            p,
            exited(A, IMG[A]),
            placeholder_exited(B, 2, cid="containerd://late"),
            placeholder(C),
            notes=started(A, placeholder_id="") | started(B, when=5, placeholder_id=""),
        ),
        "Running",
        steps=seq("succeeded", "running", "waiting"),
    ),
    Row(
        "placeholder-id-unknown-at-the-swap-image-tells",
        "seq",
        lambda p: ps.pod(
            p,
            exited(A, IMG[A]),
            placeholder_exited(B, 137),
            placeholder(C),
            notes=started(A, placeholder_id="") | started(B, when=5, placeholder_id=""),
        ),
        "Running",
        steps=seq("succeeded", "running", "waiting"),
    ),
    Row(
        "same-image-as-placeholder-container-id-tells",
        "same-image",
        lambda p: ps.pod(
            p,
            exited(A, IMG[A]),
            exited(B, IMG[B], 137, cid=ps.ph_id(B)),
            notes=started(A, placeholder_id="") | started(B, when=5),
        ),
        "Running",
        steps={"a": "succeeded", "b": "running"},
    ),
    Row(
        "same-image-as-placeholder-new-container-is-the-step",
        "same-image",
        lambda p: ps.pod(
            p,
            exited(A, IMG[A]),
            exited(B, IMG[B], 3),
            notes=started(A, placeholder_id="") | started(B, when=5),
        ),
        "Failed",
        "StepFailed",
        {"a": "succeeded", "b": "failed"},
        stop="Completed",
        events=["StepFailed", "Failed"],
    ),
    # The kubelet may name another tag of the same image: with the placeholder's id known, the id decides.
    Row(
        "step-reported-under-the-placeholder-name-but-a-new-container",
        "seq",
        lambda p: ps.pod(p, exited(A, IMG[A]), {**exited(B, IMG[B], 4), "image": ps.kubelet_image(ps.PLACEHOLDER)},
                         placeholder(C), notes=started(A, placeholder_id="") | started(B, when=5)),
        "Failed",
        "StepFailed",
        seq("succeeded", "failed", "skipped"),
        skips={C: "Skipped"},
        stop="Completed",
        events=["StepFailed", "Failed"],
    ),
    Row(
        "second-step-running",
        "seq",
        lambda p: ps.pod(
            p,
            exited(A, IMG[A]),
            running(B, IMG[B], since=6),
            placeholder(C),
            notes=started(A, placeholder_id="") | started(B, when=5),
        ),
        "Running",
        steps=seq("succeeded", "running", "waiting"),
        requeue=3590,
    ),
    # Trap: missed watch events. The pod jumps from "a running" to "b terminated"; decisions stay consistent.
    Row(
        "missed-events-b-done-c-starts",
        "seq",
        lambda p: ps.pod(
            p,
            exited(A, IMG[A]),
            exited(B, IMG[B], started=6, finished=8),
            placeholder(C),
            notes=started(A, placeholder_id="") | started(B, when=5),
        ),
        "Running",
        steps=seq("succeeded", "succeeded", "running"),
        starts=frozenset({C}),
    ),
    Row(
        "missed-events-b-failed",
        "seq",
        lambda p: ps.pod(
            p,
            exited(A, IMG[A]),
            exited(B, IMG[B], 2),
            placeholder(C),
            notes=started(A, placeholder_id="") | started(B, when=5),
        ),
        "Failed",
        "StepFailed",
        seq("succeeded", "failed", "skipped"),
        skips={C: "Skipped"},
        stop="Completed",
        events=["StepFailed", "Failed"],
        message='step "b" failed (exit code 2)',
    ),
    Row(
        "missed-everything-all-done",
        "seq",
        lambda p: ps.pod(
            p,
            exited(A, IMG[A]),
            exited(B, IMG[B]),
            exited(C, IMG[C]),
            notes=started(A, placeholder_id="") | started(B) | started(C),
        ),
        "Succeeded",
        "Succeeded",
        seq("succeeded", "succeeded", "succeeded"),
        stop="Completed",
        events=["Succeeded"],
    ),
    # --- The end of a run ------------------------------------------------------------------------------------------
    Row(
        "last-step-done-pod-still-running",
        "seq",
        lambda p: ps.pod(
            p,
            exited(A, IMG[A]),
            exited(B, IMG[B]),
            exited(C, IMG[C]),
            notes=started(A, placeholder_id="") | started(B) | started(C),
        ),
        "Succeeded",
        "Succeeded",
        stop="Completed",
        events=["Succeeded"],
        message="all steps finished",
    ),
    # When every container has terminated, the kubelet ends the pod itself: that is the run's normal end.
    Row(
        "pod-succeeded-by-itself",
        "one",
        lambda p: ps.pod(p, exited(A, IMG[A]), notes=started(A, placeholder_id=""), phase="Succeeded"),
        "Succeeded",
        "Succeeded",
        {"a": "succeeded"},
        events=["Succeeded"],
    ),
    Row(
        "pod-failed-by-itself-because-the-last-step-failed",
        "one",
        lambda p: ps.pod(p, exited(A, IMG[A], 1), notes=started(A, placeholder_id=""), phase="Failed"),
        "Failed",
        "StepFailed",
        {"a": "failed"},
        events=["StepFailed", "Failed"],
        message='step "a" failed (exit code 1)',
    ),
    Row(
        "pod-failed-by-itself-after-a-skip",
        "seq",
        lambda p: ps.pod(
            p,
            exited(A, IMG[A]),
            exited(B, IMG[B], 1),
            placeholder_exited(C, 137, finished=9),
            notes=started(A, placeholder_id="") | started(B) | skipped(C) | stopped("Completed"),
            phase="Failed",
            reason="DeadlineExceeded",
        ),
        "Failed",
        "StepFailed",
        seq("succeeded", "failed", "skipped"),
        events=["StepFailed", "Failed"],
    ),
    Row(
        "stopped-after-success-pod-deadline-exceeded",
        "seq",
        lambda p: ps.pod(
            p,
            exited(A, IMG[A]),
            exited(B, IMG[B]),
            exited(C, IMG[C]),
            notes=started(A, placeholder_id="") | started(B) | started(C) | stopped("Completed"),
            phase="Failed",
            reason="DeadlineExceeded",
        ),
        "Succeeded",
        "Succeeded",
        seq("succeeded", "succeeded", "succeeded"),
        events=["Succeeded"],
    ),
    Row(
        "first-step-fails",
        "seq",
        lambda p: ps.pod(
            p, exited(A, IMG[A], 2), placeholder(B), placeholder(C), notes=started(A, placeholder_id="")
        ),
        "Failed",
        "StepFailed",
        seq("failed", "skipped", "skipped"),
        skips={B: "Skipped", C: "Skipped"},
        stop="Completed",
        events=["StepFailed", "Failed"],
    ),
    Row(
        "oom-killed",
        "seq",
        lambda p: ps.pod(
            p,
            exited(A, IMG[A], 137, reason="OOMKilled"),
            placeholder(B),
            placeholder(C),
            notes=started(A, placeholder_id=""),
        ),
        "Failed",
        "StepFailed",
        seq("failed", "skipped", "skipped"),
        step_reasons={"a": "OOMKilled"},
        stop="Completed",
        skips={B: "Skipped", C: "Skipped"},
        events=["StepFailed", "Failed"],
    ),
    Row(
        "exit-78-ends-early-as-success",
        "seq",
        lambda p: ps.pod(
            p, exited(A, IMG[A], 78), placeholder(B), placeholder(C), notes=started(A, placeholder_id="")
        ),
        "Succeeded",
        "EarlyExit",
        seq("succeeded", "skipped", "skipped"),
        skips={B: "EarlyExit", C: "EarlyExit"},
        stop="Completed",
        events=["Succeeded"],
        message="ended early by exit code 78",
    ),
    Row(
        "exit-78-recorded-then-read-again",
        "seq",
        lambda p: ps.pod(
            p,
            exited(A, IMG[A], 78),
            placeholder(B),
            placeholder(C),
            notes=started(A, placeholder_id="")
            | skipped(B, "EarlyExit")
            | skipped(C, "EarlyExit")
            | stopped("Completed"),
        ),
        "Succeeded",
        "EarlyExit",
        seq("succeeded", "skipped", "skipped"),
        events=["Succeeded"],
    ),
    # --- when.status and failure: ignore --------------------------------------------------------------------------
    Row(
        "failure-starts-the-on-failure-step",
        "on-failure",
        lambda p: ps.pod(
            p,
            exited(A, IMG[A]),
            exited(B, IMG[B], 1),
            placeholder(C),
            placeholder(D),
            notes=started(A, placeholder_id="") | started(B),
        ),
        "Running",
        steps=seq("succeeded", "failed", "running", "waiting"),
        starts=frozenset({C}),
        events=["StepFailed"],
    ),
    Row(
        "on-failure-step-done-then-the-always-step",
        "on-failure",
        lambda p: ps.pod(
            p,
            exited(A, IMG[A]),
            exited(B, IMG[B], 1),
            exited(C, IMG[C]),
            placeholder(D),
            notes=started(A, placeholder_id="") | started(B) | started(C),
        ),
        "Running",
        steps=seq("succeeded", "failed", "succeeded", "running"),
        starts=frozenset({D}),
        events=["StepFailed"],
    ),
    Row(
        "on-failure-pipeline-ends-failed",
        "on-failure",
        lambda p: ps.pod(
            p,
            exited(A, IMG[A]),
            exited(B, IMG[B], 1),
            exited(C, IMG[C]),
            exited(D, IMG[D]),
            notes=started(A, placeholder_id="") | started(B) | started(C) | started(D),
        ),
        "Failed",
        "StepFailed",
        seq("succeeded", "failed", "succeeded", "succeeded"),
        stop="Completed",
        events=["StepFailed", "Failed"],
    ),
    Row(
        "success-skips-the-on-failure-step",
        "on-failure",
        lambda p: ps.pod(
            p,
            exited(A, IMG[A]),
            exited(B, IMG[B]),
            placeholder(C),
            placeholder(D),
            notes=started(A, placeholder_id="") | started(B),
        ),
        "Running",
        steps=seq("succeeded", "succeeded", "skipped", "running"),
        starts=frozenset({D}),
        skips={C: "Skipped"},
    ),
    Row(
        "ignored-failure-lets-the-run-go-on",
        "ignore",
        lambda p: ps.pod(p, exited(A, IMG[A], 1), placeholder(B), notes=started(A, placeholder_id="")),
        "Running",
        steps={"a": "failed", "b": "running"},
        starts=frozenset({B}),
        events=["StepFailed"],
    ),
    Row(
        "ignored-failure-run-succeeds",
        "ignore",
        lambda p: ps.pod(
            p, exited(A, IMG[A], 1), exited(B, IMG[B]), notes=started(A, placeholder_id="") | started(B)
        ),
        "Succeeded",
        "Succeeded",
        {"a": "failed", "b": "succeeded"},
        stop="Completed",
        events=["StepFailed", "Succeeded"],
    ),
    # --- DAG ---------------------------------------------------------------------------------------------------------
    Row(
        "dag-a-done-b-starts-c-skipped",
        "dag",
        lambda p: ps.pod(
            p,
            exited(A, IMG[A]),
            placeholder(B),
            placeholder(C),
            placeholder(D),
            notes=started(A, placeholder_id=""),
        ),
        "Running",
        steps=seq("succeeded", "running", "skipped", "waiting"),
        starts=frozenset({B}),
        skips={C: "Skipped"},
    ),
    # The skip is recorded in the pod; when b fails later, c (failure only) must not come back.
    Row(
        "dag-b-fails-later-c-stays-skipped",
        "dag",
        lambda p: ps.pod(
            p,
            exited(A, IMG[A]),
            exited(B, IMG[B], 1),
            placeholder(C),
            placeholder(D),
            notes=started(A, placeholder_id="") | started(B) | skipped(C),
        ),
        "Failed",
        "StepFailed",
        seq("succeeded", "failed", "skipped", "skipped"),
        skips={D: "Skipped"},
        stop="Completed",
        events=["StepFailed", "Failed"],
    ),
    Row(
        "parallel-roots-run-together",
        "parallel",
        lambda p: ps.pod(
            p,
            running(A, IMG[A]),
            running(B, IMG[B]),
            placeholder(C),
            placeholder(D),
            notes=started(A, placeholder_id="") | started(B, placeholder_id=""),
        ),
        "Running",
        steps=seq("running", "running", "waiting", "waiting"),
        message="running a, b",
    ),
    Row(
        "parallel-one-root-done-starts-its-dependant",
        "parallel",
        lambda p: ps.pod(
            p,
            exited(A, IMG[A]),
            running(B, IMG[B]),
            placeholder(C),
            placeholder(D),
            notes=started(A, placeholder_id="") | started(B, placeholder_id=""),
        ),
        "Running",
        steps=seq("succeeded", "running", "waiting", "running"),
        starts=frozenset({D}),
    ),
    Row(
        "parallel-join-starts-when-both-done",
        "parallel",
        lambda p: ps.pod(
            p,
            exited(A, IMG[A]),
            exited(B, IMG[B]),
            placeholder(C),
            running(D, IMG[D]),
            notes=started(A, placeholder_id="") | started(B, placeholder_id="") | started(D),
        ),
        "Running",
        steps=seq("succeeded", "succeeded", "running", "running"),
        starts=frozenset({C}),
    ),
    Row(
        "parallel-failure-waits-for-the-running-step",
        "parallel",
        lambda p: ps.pod(
            p,
            exited(A, IMG[A], 1),
            running(B, IMG[B]),
            placeholder(C),
            placeholder(D),
            notes=started(A, placeholder_id="") | started(B, placeholder_id=""),
        ),
        "Running",
        steps=seq("failed", "running", "waiting", "skipped"),
        skips={D: "Skipped"},
        events=["StepFailed"],
    ),
    # --- detach and services ---------------------------------------------------------------------------------------
    Row(
        "detached-step-is-not-waited-for",
        "detach",
        lambda p: ps.pod(p, running(A, IMG[A]), placeholder(B), notes=started(A, placeholder_id="")),
        "Running",
        steps={"a": "running", "b": "running"},
        starts=frozenset({B}),
    ),
    Row(
        "detached-step-still-running-at-the-end",
        "detach",
        lambda p: ps.pod(
            p, running(A, IMG[A]), exited(B, IMG[B]), notes=started(A, placeholder_id="") | started(B)
        ),
        "Succeeded",
        "Succeeded",
        {"a": "succeeded", "b": "succeeded"},
        kills={A: "Detached"},
        stop="Completed",
        events=["Succeeded"],
        step_reasons={"a": "Detached"},
    ),
    Row(
        "detached-step-stopped-with-the-pod",
        "detach",
        lambda p: ps.pod(
            p,
            exited(A, IMG[A], 137),
            exited(B, IMG[B]),
            notes=started(A, placeholder_id="") | started(B) | killed(A, "Detached") | stopped("Completed"),
            phase="Failed",
            reason="DeadlineExceeded",
        ),
        "Succeeded",
        "Succeeded",
        {"a": "succeeded", "b": "succeeded"},
        events=["Succeeded"],
        step_reasons={"a": "Detached"},
    ),
    Row(
        "detached-step-failing-does-not-fail-the-run",
        "detach",
        lambda p: ps.pod(
            p, exited(A, IMG[A], 1), running(B, IMG[B]), notes=started(A, placeholder_id="") | started(B)
        ),
        "Running",
        steps={"a": "failed", "b": "running"},
        events=["StepFailed"],
    ),
    Row(
        "services-are-never-waited-for",
        "services",
        lambda p: ps.pod(
            p,
            ps.service_running("svc-db", "postgres:16"),
            exited(A, IMG[A]),
            exited(B, IMG[B]),
            notes=started(A, placeholder_id="") | started(B),
        ),
        "Succeeded",
        "Succeeded",
        {"a": "succeeded", "b": "succeeded"},
        stop="Completed",
        events=["Succeeded"],
    ),
    Row(
        "a-crashed-service-does-not-fail-the-run",
        "services",
        lambda p: ps.pod(
            p,
            exited("svc-db", "postgres:16", 1),
            running(A, IMG[A]),
            placeholder(B),
            notes=started(A, placeholder_id=""),
        ),
        "Running",
        steps={"a": "running", "b": "waiting"},
    ),
    # --- when on build metadata ------------------------------------------------------------------------------------
    Row(
        "excluded-step-is-skipped-and-counts-as-done",
        "excluded",
        lambda p: ps.pod(
            p, exited(A, IMG[A]), placeholder(B), placeholder(C), notes=started(A, placeholder_id="")
        ),
        "Running",
        steps=seq("succeeded", "skipped", "running"),
        starts=frozenset({C}),
        skips={B: "Skipped"},
    ),
    Row(
        "excluded-step-waits-its-turn",
        "excluded",
        lambda p: ps.pod(p, running(A, IMG[A]), placeholder(B), placeholder(C), notes=started(A, placeholder_id="")),
        "Running",
        steps=seq("running", "waiting", "waiting"),
    ),
    # --- Images: slow, missing, never pulled --------------------------------------------------------------------------
    Row(
        "pulling-before-the-deadline-looks-again-later",
        "seq",
        lambda p: ps.pod(
            p,
            waiting(A, IMG[A], "ErrImagePull", "not found"),
            placeholder(B),
            placeholder(C),
            notes=started(A, placeholder_id=""),
        ),
        "Running",
        steps=seq("running", "waiting", "waiting"),
        now=100,
        requeue=200,
        step_reasons={"a": "ErrImagePull"},
    ),
    Row(
        "backoff-before-the-deadline",
        "seq",
        lambda p: ps.pod(
            p,
            waiting(A, IMG[A], "ImagePullBackOff"),
            placeholder(B),
            placeholder(C),
            notes=started(A, placeholder_id=""),
        ),
        "Running",
        steps=seq("running", "waiting", "waiting"),
        now=299,
        requeue=1,
        step_reasons={"a": "ImagePullBackOff"},
    ),
    Row(
        "pull-deadline-passed-fails-the-step",
        "seq",
        lambda p: ps.pod(
            p,
            waiting(A, IMG[A], "ErrImagePull", "pull access denied"),
            placeholder(B),
            placeholder(C),
            notes=started(A, placeholder_id=""),
        ),
        "Failed",
        "StepFailed",
        seq("failed", "skipped", "skipped"),
        now=300,
        kills={A: "ErrImagePull"},
        skips={B: "Skipped", C: "Skipped"},
        stop="Completed",
        events=["StepFailed", "Failed"],
        step_reasons={"a": "ErrImagePull"},
    ),
    Row(
        "backoff-deadline-passed-for-a-later-step",
        "seq",
        lambda p: ps.pod(
            p,
            exited(A, IMG[A]),
            waiting(B, IMG[B], "ImagePullBackOff"),
            placeholder(C),
            notes=started(A, placeholder_id="") | started(B, when=5),
        ),
        "Failed",
        "StepFailed",
        seq("succeeded", "failed", "skipped"),
        now=305,
        kills={B: "ImagePullBackOff"},
        skips={C: "Skipped"},
        stop="Completed",
        events=["StepFailed", "Failed"],
    ),
    Row(
        "pull-failure-killed-and-read-again",
        "seq",
        lambda p: ps.pod(
            p,
            placeholder(A, cid="containerd://ph2-a"),
            placeholder(B),
            placeholder(C),
            notes=started(A, placeholder_id="")
            | killed(A, "ErrImagePull")
            | skipped(B)
            | skipped(C)
            | stopped("Completed"),
        ),
        "Failed",
        "StepFailed",
        seq("failed", "skipped", "skipped"),
        now=301,
        events=["StepFailed", "Failed"],
        step_reasons={"a": "ErrImagePull"},
    ),
    Row(
        "never-pull-image-missing-fails-at-once",
        "seq",
        lambda p: ps.pod(
            p,
            waiting(A, IMG[A], "ErrImageNeverPull", 'image "alpine:3.19" is not present'),
            placeholder(B),
            placeholder(C),
            notes=started(A, placeholder_id=""),
        ),
        "Failed",
        "StepFailed",
        seq("failed", "skipped", "skipped"),
        now=2,
        skips={B: "Skipped", C: "Skipped"},
        stop="Completed",
        events=["StepFailed", "Failed"],
        kills={A: "ErrImageNeverPull"},
        step_reasons={"a": "ErrImageNeverPull"},
    ),
    Row(
        "invalid-image-name-fails-at-once",
        "seq",
        lambda p: ps.pod(
            p,
            waiting(A, IMG[A], "InvalidImageName"),
            placeholder(B),
            placeholder(C),
            notes=started(A, placeholder_id=""),
        ),
        "Failed",
        "StepFailed",
        seq("failed", "skipped", "skipped"),
        now=2,
        skips={B: "Skipped", C: "Skipped"},
        stop="Completed",
        events=["StepFailed", "Failed"],
        kills={A: "InvalidImageName"},
        step_reasons={"a": "InvalidImageName"},
    ),
    Row(
        "missing-secret-key-fails-at-once",
        "seq",
        lambda p: ps.pod(
            p,
            waiting(A, IMG[A], "CreateContainerConfigError", 'secret "tok" not found'),
            placeholder(B),
            placeholder(C),
            notes=started(A, placeholder_id=""),
        ),
        "Failed",
        "StepFailed",
        seq("failed", "skipped", "skipped"),
        now=2,
        skips={B: "Skipped", C: "Skipped"},
        stop="Completed",
        events=["StepFailed", "Failed"],
        kills={A: "CreateContainerConfigError"},
        step_reasons={"a": "CreateContainerConfigError"},
    ),
    # pull: never — the placeholder itself may be absent; that is fine until the step is started.
    Row(
        "never-pull-placeholder-absent-is-fine-until-swapped",
        "never",
        lambda p: ps.pod(
            p,
            running(A, IMG[A]),
            placeholder_waiting(B, "ErrImageNeverPull"),
            notes=started(A, placeholder_id=""),
            phase="Pending",
        ),
        "Running",
        steps={"a": "running", "b": "waiting"},
    ),
    Row(
        "never-pull-placeholder-absent-step-starts",
        "never",
        lambda p: ps.pod(
            p,
            exited(A, IMG[A]),
            placeholder_waiting(B, "ErrImageNeverPull"),
            notes=started(A, placeholder_id=""),
            phase="Pending",
        ),
        "Running",
        steps={"a": "succeeded", "b": "running"},
        starts=frozenset({B}),
    ),
    Row(
        "never-pull-swapped-step-image-present-runs",
        "never",
        lambda p: ps.pod(
            p,
            exited(A, IMG[A]),
            running(B, IMG[B]),
            notes=started(A, placeholder_id="") | started(B, placeholder_id=""),
        ),
        "Running",
        steps={"a": "succeeded", "b": "running"},
    ),
    # The placeholder died before its step started: the step fails with a reason saying why.
    Row(
        "dead-placeholder-fails-its-step",
        "seq",
        lambda p: ps.pod(
            p,
            running(A, IMG[A]),
            placeholder_exited(B, 127, reason="StartError", message="exec: /bin/sh: not found"),
            placeholder(C),
            notes=started(A, placeholder_id=""),
        ),
        "Running",
        steps=seq("running", "failed", "skipped"),
        skips={C: "Skipped"},
        events=["StepFailed"],
        kills={B: "PlaceholderExited"},
        step_reasons={"b": "PlaceholderExited"},
    ),
    Row(
        "dead-placeholder-once-the-rest-is-done",
        "seq",
        lambda p: ps.pod(
            p,
            exited(A, IMG[A]),
            placeholder_exited(B, 0, reason="Completed"),
            placeholder(C),
            notes=started(A, placeholder_id=""),
        ),
        "Failed",
        "StepFailed",
        seq("succeeded", "failed", "skipped"),
        skips={C: "Skipped"},
        stop="Completed",
        events=["StepFailed", "Failed"],
        kills={B: "PlaceholderExited"},
        step_reasons={"b": "PlaceholderExited"},
    ),
    # --- Timeouts ----------------------------------------------------------------------------------------------------
    Row(
        "step-running-within-its-timeout",
        "step-timeout",
        lambda p: ps.pod(p, running(A, IMG[A], since=1), placeholder(B), notes=started(A, placeholder_id="")),
        "Running",
        steps={"a": "running", "b": "waiting"},
        now=30,
        requeue=31,
    ),
    Row(
        "step-timeout-kills-the-step",
        "step-timeout",
        lambda p: ps.pod(p, running(A, IMG[A], since=1), placeholder(B), notes=started(A, placeholder_id="")),
        "Failed",
        "StepFailed",
        {"a": "failed", "b": "skipped"},
        now=61,
        kills={A: "StepTimeout"},
        skips={B: "Skipped"},
        stop="Completed",
        events=["StepFailed", "Failed"],
        step_reasons={"a": "StepTimeout"},
    ),
    Row(
        "step-timeout-killed-and-read-again",
        "step-timeout",
        lambda p: ps.pod(
            p,
            exited(A, IMG[A], 137, finished=62),
            placeholder(B),
            notes=started(A, placeholder_id="")
            | killed(A, "StepTimeout")
            | skipped(B)
            | stopped("Completed"),
        ),
        "Failed",
        "StepFailed",
        {"a": "failed", "b": "skipped"},
        now=63,
        events=["StepFailed", "Failed"],
        step_reasons={"a": "StepTimeout"},
    ),
    Row(
        "run-timeout-stops-the-pod",
        "seq",
        lambda p: ps.pod(
            p,
            exited(A, IMG[A]),
            running(B, IMG[B]),
            placeholder(C),
            notes=started(A, placeholder_id="") | started(B),
        ),
        "Failed",
        "Timeout",
        seq("succeeded", "failed", "skipped"),
        now=3600,
        stop="Timeout",
        events=["StepFailed", "Failed"],
        message="the run exceeded its timeout of 3600s",
        step_reasons={"b": "Stopped"},
    ),
    Row(
        "run-timeout-recorded-then-read-again",
        "seq",
        lambda p: ps.pod(
            p,
            exited(A, IMG[A]),
            exited(B, IMG[B], 137),
            placeholder_exited(C, 137),
            notes=started(A, placeholder_id="") | started(B) | stopped("Timeout"),
            phase="Failed",
            reason="DeadlineExceeded",
        ),
        "Failed",
        "Timeout",
        seq("succeeded", "failed", "skipped"),
        now=3605,
        events=["StepFailed", "Failed"],
        message="the run exceeded its timeout of 3600s",
    ),
    Row(
        "kubelet-deadline-exceeded-is-a-timeout",
        "seq",
        lambda p: ps.pod(
            p,
            exited(A, IMG[A]),
            exited(B, IMG[B], 137),
            placeholder_exited(C, 137),
            notes=started(A, placeholder_id="") | started(B),
            phase="Failed",
            reason="DeadlineExceeded",
        ),
        "Failed",
        "Timeout",
        seq("succeeded", "failed", "skipped"),
        now=3601,
        events=["StepFailed", "Failed"],
        message="the run exceeded its timeout of 3600s",
    ),
    # --- Cancellation --------------------------------------------------------------------------------------------------
    Row(
        "cancel-stops-the-pod",
        "seq",
        lambda p: ps.pod(
            p,
            exited(A, IMG[A]),
            running(B, IMG[B]),
            placeholder(C),
            notes=started(A, placeholder_id="") | started(B),
        ),
        "Cancelled",
        "Cancelled",
        seq("succeeded", "failed", "skipped"),
        cancel=True,
        stop="Cancelled",
        events=["StepFailed", "Cancelled"],
        step_reasons={"b": "Stopped"},
    ),
    Row(
        "cancel-recorded-then-read-again",
        "seq",
        lambda p: ps.pod(
            p,
            exited(A, IMG[A]),
            exited(B, IMG[B], 137),
            placeholder_exited(C, 137),
            notes=started(A, placeholder_id="") | started(B) | stopped("Cancelled"),
            phase="Failed",
            reason="DeadlineExceeded",
        ),
        "Cancelled",
        "Cancelled",
        seq("succeeded", "failed", "skipped"),
        cancel=True,
        events=["StepFailed", "Cancelled"],
    ),
    Row(
        "cancel-after-the-run-ended-changes-nothing",
        "seq",
        lambda p: ps.pod(
            p,
            exited(A, IMG[A]),
            exited(B, IMG[B]),
            exited(C, IMG[C]),
            notes=started(A, placeholder_id="") | started(B) | started(C) | stopped("Completed"),
            phase="Failed",
            reason="DeadlineExceeded",
        ),
        "Succeeded",
        "Succeeded",
        cancel=True,
        events=["Succeeded"],
    ),
    Row(
        "cancel-after-a-kubelet-timeout-changes-nothing",
        "seq",
        lambda p: ps.pod(
            p,
            exited(A, IMG[A]),
            exited(B, IMG[B], 137),
            placeholder_exited(C, 137),
            notes=started(A, placeholder_id="") | started(B),
            phase="Failed",
            reason="DeadlineExceeded",
        ),
        "Failed",
        "Timeout",
        cancel=True,
        now=3601,
        events=["StepFailed", "Failed"],
    ),
    # --- The pod ends underneath the run ----------------------------------------------------------------------------
    Row(
        "pod-evicted",
        "seq",
        lambda p: ps.pod(
            p,
            exited(A, IMG[A]),
            exited(B, IMG[B], 137),
            placeholder_exited(C, 137),
            notes=started(A, placeholder_id="") | started(B),
            phase="Failed",
            reason="Evicted",
        ),
        "Error",
        "PodDeleted",
        seq("succeeded", "failed", "skipped"),
        events=["StepFailed", "Error"],
        message="the pod ended underneath the run (Evicted)",
    ),
    Row(
        "pod-being-deleted-while-running",
        "seq",
        lambda p: ps.pod(
            p,
            exited(A, IMG[A]),
            exited(B, IMG[B], 137),
            placeholder_exited(C, 137),
            notes=started(A, placeholder_id="") | started(B),
            deleting=True,
        ),
        "Error",
        "PodDeleted",
        seq("succeeded", "failed", "skipped"),
        events=["StepFailed", "Error"],
        message="was deleted",
    ),
    Row(
        "pod-being-deleted-after-the-run-ended",
        "seq",
        lambda p: ps.pod(
            p,
            exited(A, IMG[A]),
            exited(B, IMG[B]),
            exited(C, IMG[C]),
            notes=started(A, placeholder_id="") | started(B) | started(C) | stopped("Completed"),
            deleting=True,
        ),
        "Succeeded",
        "Succeeded",
        events=["Succeeded"],
    ),
]


@pytest.mark.parametrize("row", [pytest.param(r, id=r.id) for r in ROWS])
def test_decision(row: Row) -> None:
    plan = PLANS[row.plan]
    snap = snapshot(plan, row.pod(plan), now=row.now, cancel=row.cancel)
    decision = scheduling.decide(snap)
    status = decision.status
    assert (str(status.phase), status.reason) == (row.phase, row.reason or status.reason), status.message
    if row.steps is not None:
        assert states(decision) == row.steps
    assert starts_of(decision, plan) == row.starts
    assert skips_of(decision) == row.skips
    assert kills_of(decision) == row.kills
    assert stop_of(decision) == row.stop
    assert event_reasons(decision) == row.events
    if row.requeue is not ANY:
        assert decision.requeue_after == row.requeue
    for name, reason in row.step_reasons.items():
        assert step_status(decision, name).reason == reason
    if row.message is not None:
        assert status.message is not None and row.message in status.message
    check_invariants(snap, decision)


def test_the_table_is_large() -> None:
    assert len(ROWS) >= 60


def test_a_pull_failure_points_at_pull_and_image_pull_secrets_before_and_after_the_kill() -> None:
    plan = PLANS["seq"]
    pulling = ps.pod(plan, waiting(A, IMG[A], "ErrImagePull", "pull access denied"), placeholder(B), placeholder(C),
                     notes=started(A, placeholder_id=""))
    first = scheduling.decide(snapshot(plan, pulling, now=300))
    after_kill = ps.pod(plan, placeholder(A, cid="containerd://ph2-a"), placeholder(B), placeholder(C),
                        notes=started(A, placeholder_id="") | killed(A, "ErrImagePull") | skipped(B) | skipped(C)
                        | stopped("Completed"))
    second = scheduling.decide(snapshot(plan, after_kill, now=301, status=first.status.to_patch()))
    for decision in (first, second):
        a = step_status(decision, "a")
        assert (a.state, a.reason) == ("failed", "ErrImagePull")
        assert a.message == (
            "image alpine:3.19 could not be pulled in 300s (ErrImagePull); check the image name, the step's pull "
            "setting (imagePullPolicy IfNotPresent) and the Pipeline's image_pull_secrets"
        )
        assert decision.status.message == 'step "a" failed (ErrImagePull)'
    assert second.status == first.status
    assert second.events == ()


def test_a_permanent_wait_error_says_what_to_check() -> None:
    plan = PLANS["seq"]
    never = ps.pod(plan, waiting(A, IMG[A], "ErrImageNeverPull", 'image "alpine:3.19" is not present with pull policy of Never'),
                   placeholder(B), placeholder(C), notes=started(A, placeholder_id=""))
    message = step_status(scheduling.decide(snapshot(plan, never)), "a").message
    assert message is not None and message.startswith('image "alpine:3.19" is not present')
    assert "pull setting" in message and "image_pull_secrets" in message
    config = ps.pod(plan, waiting(A, IMG[A], "CreateContainerConfigError", 'secret "tok" not found'),
                    placeholder(B), placeholder(C), notes=started(A, placeholder_id=""))
    assert step_status(scheduling.decide(snapshot(plan, config)), "a").message == (
        'secret "tok" not found; check the Secrets named by from_secret')


def test_a_step_timeout_message_survives_the_kill() -> None:
    plan = PLANS["step-timeout"]
    first = scheduling.decide(snapshot(plan, ps.pod(plan, running(A, IMG[A], since=1), placeholder(B),
                                                    notes=started(A, placeholder_id="")), now=61))
    after = ps.pod(plan, exited(A, IMG[A], 137, finished=62), placeholder(B),
                   notes=started(A, placeholder_id="") | killed(A, "StepTimeout") | skipped(B) | stopped("Completed"))
    second = scheduling.decide(snapshot(plan, after, now=63, status=first.status.to_patch()))
    for decision in (first, second):
        assert step_status(decision, "a").message == "the step exceeded its timeout of 60s"
    assert second.events == ()


def test_a_dead_placeholder_message_names_the_placeholder_setting() -> None:
    plan = PLANS["seq"]
    pod = ps.pod(plan, running(A, IMG[A]), placeholder_exited(B, 127, reason="StartError"), placeholder(C),
                 notes=started(A, placeholder_id=""))
    b = step_status(scheduling.decide(snapshot(plan, pod)), "b")
    assert b.message is not None
    assert "drone/placeholder:1" in b.message and "PODLINE_PLACEHOLDER_IMAGE" in b.message and "code 127" in b.message


def test_services_are_reported_but_do_not_decide() -> None:
    plan = PLANS["services"]
    pod = ps.pod(plan, exited("svc-db", "postgres:16", 1), running(A, IMG[A]), placeholder(B),
                 notes=started(A, placeholder_id=""))
    decision = scheduling.decide(snapshot(plan, pod))
    (db,) = decision.status.services
    assert (db.name, db.container, db.state, db.exit_code) == ("db", "svc-db", "failed", 1)
    assert decision.status.phase == "Running"


# --- Before the pod exists ---------------------------------------------------------------------------------------


def pod_of(decision: scheduling.Decision) -> dict[str, Any]:
    (pod,) = [m for m in decision.create if m["kind"] == "Pod"]
    return pod


def images_of(pod: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c["image"] for c in pod["spec"]["containers"]}


def started_in(pod: dict[str, Any]) -> set[str]:
    return set(annotations_of(pod, conventions.ANNOTATION_STARTED_PREFIX))


@pytest.mark.parametrize(
    ("plan", "first"),
    [
        pytest.param(PLANS["seq"], {A}, id="sequential-first-step"),
        pytest.param(PLANS["parallel"], {A, B}, id="dag-roots"),
        pytest.param(PLANS["detach"], {A}, id="detached-first-step"),
        pytest.param(PLANS["excluded"], {A}, id="excluded-later-step"),
        pytest.param(compile_(step("a", when={"branch": "x"}), step("b"), build={"branch": "main"}), {B},
                     id="excluded-first-step-next-starts"),
        pytest.param(compile_(step("a"), build={"remote": "https://git.example.com/x.git"}), {"step-clone"},
                     id="clone-first"),
        pytest.param(compile_(step("a", when={"status": "failure"}), step("b")), {B}, id="first-step-on-failure-only"),
    ],
)
def test_the_first_ready_steps_start_at_pod_creation(plan: plans.RunPlan, first: set[str]) -> None:
    decision = scheduling.decide(snapshot(plan, None, now=0))
    pod = pod_of(decision)
    assert started_in(pod) == first
    for c in plan.containers:
        expected = c.image if c.name in first or not c.is_step else plan.placeholder_image
        assert images_of(pod)[c.name] == expected
    assert decision.pod_patch is None
    assert (decision.status.phase, decision.status.reason) == ("Pending", "Creating")
    assert all(s.state == "waiting" for s in decision.status.steps)
    # Once the pod shows up, those steps are not started again.
    observed = dict(pod, metadata={**pod["metadata"], "resourceVersion": "1", "creationTimestamp": ps.ts(0)},
                    status={"phase": "Pending"})
    again = scheduling.decide(snapshot(plan, observed, now=1, status=decision.status.to_patch()))
    assert not starts_of(again, plan) & first
    check_invariants(snapshot(plan, observed, now=1, status=decision.status.to_patch()), again)


def test_a_skip_decided_at_pod_creation_is_recorded_with_the_next_decision() -> None:
    plan = compile_(step("a", when={"status": "failure"}), step("b"))
    created = pod_of(scheduling.decide(snapshot(plan, None, now=0)))
    assert started_in(created) == {B}
    observed = ps.pod(plan, placeholder(A), running(B, IMG[B]), notes=created["metadata"]["annotations"])
    decision = scheduling.decide(snapshot(plan, observed))
    assert skips_of(decision) == {A: "Skipped"}
    assert starts_of(decision, plan) == set()
    assert states(decision) == {"a": "skipped", "b": "running"}


def test_an_excluded_step_says_why_it_was_skipped() -> None:
    plan = PLANS["excluded"]
    pod = ps.pod(plan, exited(A, IMG[A]), placeholder(B), placeholder(C), notes=started(A, placeholder_id=""))
    decision = scheduling.decide(snapshot(plan, pod))
    assert step_status(decision, "b").message == "when: conditions do not match the build"
    later = ps.pod(plan, exited(A, IMG[A]), placeholder(B), running(C, IMG[C]),
                   notes=started(A, placeholder_id="") | skipped(B) | started(C))
    assert step_status(scheduling.decide(snapshot(plan, later)), "b").message == "when: conditions do not match the build"


def test_creating_a_run_with_pull_secrets_creates_the_secret_first() -> None:
    plan = PLANS["private"]
    config = b'{"auths": {"registry.example.com": {"username": "u", "password": "p"}}}'
    credentials = auths_convert(config)
    decision = scheduling.decide(snapshot(plan, None, now=0, credentials=credentials))
    assert [m["kind"] for m in decision.create] == ["Secret", "Pod"]
    secret, pod = decision.create
    assert pod["spec"]["imagePullSecrets"] == [{"name": secret["metadata"]["name"]}]
    assert decision.status.phase == "Pending"


def test_credential_warnings_reach_the_status() -> None:
    plan = PLANS["private"]
    config = b'{"auths": {"registry.example.com": {"username": "u", "password": "p"}, "ghcr.io": {}}}'
    credentials = auths_convert(config)
    assert credentials.warnings
    decision = scheduling.decide(snapshot(plan, None, now=0, credentials=credentials))
    assert list(credentials.warnings) == [w for w in decision.status.warnings if w in credentials.warnings]


def auths_convert(config: bytes) -> Any:
    from podline.core import auths

    return auths.convert([auths.SourceSecret("dockerconfig", "Opaque", {"config.json": config})])


def test_a_plan_with_pull_secrets_needs_credentials() -> None:
    with pytest.raises(ValueError, match="credentials are needed"):
        scheduling.decide(snapshot(PLANS["private"], None, now=0, credentials=None))


NO_POD = [
    ("queued", PLANS["seq"], {"may_start": False}, "Pending", "Queued", "waiting for a free run slot"),
    ("cancelled-before-start", PLANS["seq"], {"cancel": True}, "Cancelled", "Cancelled", "cancelled before it started"),
    ("not-triggered", compile_(step("a"), trigger={"branch": "release/*"}, build={"branch": "main"}), {},
     "Succeeded", "NotTriggered", "trigger does not match the build"),
    ("pull-secret-missing", PLANS["private"],
     {"credentials": errors.MissingSecret([errors.Problem("spec.image_pull_secrets[0]",
                                                          'Secret "dockerconfig" not found in namespace "ci"')])},
     "Failed", "PullSecretError", 'spec.image_pull_secrets[0]: Secret "dockerconfig" not found in namespace "ci"'),
    ("pull-secret-malformed", PLANS["private"],
     {"credentials": errors.BadRegistryAuth([errors.Problem('image_pull_secrets[0] (secret "dockerconfig")',
                                                            'registry "x.io": auth is not base64')])},
     "Failed", "PullSecretError", 'image_pull_secrets[0] (secret "dockerconfig"): registry "x.io": auth is not base64'),
]


@pytest.mark.parametrize(("plan", "kwargs", "phase", "reason", "message"),
                         [pytest.param(p, k, ph, r, m, id=i) for i, p, k, ph, r, m in NO_POD])
def test_no_pod_is_created(plan: plans.RunPlan, kwargs: dict[str, Any], phase: str, reason: str, message: str) -> None:
    snap = snapshot(plan, None, now=0, **kwargs)
    decision = scheduling.decide(snap)
    assert decision.create == ()
    assert (decision.status.phase, decision.status.reason) == (phase, reason)
    assert decision.status.message is not None and message in decision.status.message
    again = scheduling.decide(dataclasses.replace(snap, status=decision.status.to_patch()))
    assert again.status == decision.status and again.events == ()


def test_queued_runs_start_when_a_slot_frees() -> None:
    plan = PLANS["seq"]
    queued = scheduling.decide(snapshot(plan, None, now=0, may_start=False))
    assert event_reasons(queued) == []
    created = scheduling.decide(snapshot(plan, None, now=50, may_start=True, status=queued.status.to_patch()))
    assert [m["kind"] for m in created.create] == ["Pod"]
    assert created.status.reason == "Creating"
    assert created.status.start_time == queued.status.start_time


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        pytest.param(errors.InvalidPipeline([errors.Problem("spec.steps[2].depends_on", 'unknown step "tset"'),
                                             errors.Problem("spec.steps[0].image", 'invalid reference "Golang"')]),
                     "Invalid", id="invalid"),
        pytest.param(errors.PolicyViolation.at("spec.steps[0].privileged", "privileged steps are not allowed"),
                     "Invalid", id="policy"),
        pytest.param(errors.MissingSecret.at("spec.image_pull_secrets[0]", 'Secret "x" not found'), "PullSecretError",
                     id="missing-secret"),
    ],
)
def test_a_plan_that_cannot_be_compiled_fails_the_run_naming_the_field(error: errors.PodlineError, reason: str) -> None:
    snap = snapshot(error, None, now=0)
    decision = scheduling.decide(snap)
    assert decision.create == () and decision.pod_patch is None
    status = decision.status
    assert (status.phase, status.reason, status.message) == ("Failed", reason, "\n".join(error.lines()))
    assert event_reasons(decision) == ["Failed"]
    assert {c.type: c.status for c in status.conditions} == {
        "Ready": "False", "Succeeded": "False", "Reconciling": "False", "Stalled": "True"}
    again = scheduling.decide(dataclasses.replace(snap, status=status.to_patch(), now=ps.at(100)))
    assert again.status == status and again.events == ()


def test_a_pod_deleted_while_running_ends_the_run_as_error() -> None:
    plan = PLANS["seq"]
    decision = scheduling.decide(snapshot(plan, None, status=running_status(plan)))
    assert decision.create == ()
    status = decision.status
    assert (status.phase, status.reason) == ("Error", "PodDeleted")
    assert status.message == 'pod "demo-g1" was deleted or evicted before the run finished'
    assert [s.state for s in status.steps] == ["skipped", "skipped", "skipped"]
    assert event_reasons(decision) == ["Error"]


def test_a_pod_deleted_before_it_was_seen_running_is_not_made_again() -> None:
    plan = PLANS["seq"]
    created = scheduling.decide(snapshot(plan, None, now=0))
    assert created.status.reason == "Creating"
    gone = scheduling.decide(snapshot(plan, None, now=30, status=created.status.to_patch()))
    assert gone.create == ()
    assert (gone.status.phase, gone.status.reason) == ("Error", "PodDeleted")


def test_a_queued_run_is_created_when_its_turn_comes() -> None:
    plan = PLANS["seq"]
    queued = scheduling.decide(snapshot(plan, None, now=0, may_start=False))
    assert queued.status.pod_name == plan.pod_name and queued.status.reason == "Queued"
    assert [m["kind"] for m in scheduling.decide(snapshot(plan, None, now=9, status=queued.status.to_patch())).create] == [
        "Pod"]


def test_a_pod_removed_after_the_run_ended_changes_nothing() -> None:
    plan = PLANS["seq"]
    done = scheduling.decide(snapshot(plan, ps.pod(plan, exited(A, IMG[A]), exited(B, IMG[B]), exited(C, IMG[C]),
                                                   notes=started(A, placeholder_id="") | started(B) | started(C))))
    assert done.status.phase == "Succeeded"
    later = scheduling.decide(snapshot(plan, None, now=5000, status=done.status.to_patch()))
    assert later.status == done.status and later.events == () and later.create == ()


# --- Spec changes: a new run replaces the old one ----------------------------------------------------------------


def old_pod(run: str, *, created: float, phase: str = "Running", notes: ps.Notes | None = None) -> dict[str, Any]:
    return ps.pod(PLANS["seq"], name=f"demo-{run}", created=created, phase=phase, notes=notes)


def test_a_spec_change_stops_the_old_run_and_records_it_in_history() -> None:
    old_plan = PLANS["seq"]
    new_plan = compiling.compile_spec({"steps": [step("a")]}, dataclasses.replace(CONTEXT, generation=2), POLICY)
    previous = running_status(old_plan)
    snap = scheduling.Snapshot(plan=new_plan, pod=None, now=ps.at(100), generation=2, run=new_plan.run, status=previous,
                               other_pods=[old_pod("g1", created=0)])
    decision = scheduling.decide(snap)
    assert decision.other_patches == (("demo-g1", {"metadata": {"annotations": {"podline.dev/stopped": "Superseded"}},
                                                   "spec": {"activeDeadlineSeconds": 1}}),)
    assert decision.delete_pods == ()
    assert [m["metadata"]["name"] for m in decision.create] == ["demo-g2"]
    status = decision.status
    assert (status.run, status.observed_generation, status.phase, status.pod_name) == ("g2", 2, "Pending", "demo-g2")
    assert status.history == [{"run": "g1", "phase": "Superseded", "podName": "demo-g1",
                               "completionTime": ps.ts(100)}]
    assert [s.name for s in status.steps] == ["a"]
    assert status.start_time == ps.ts(100)
    assert event_reasons(decision) == []


def test_a_finished_run_keeps_its_phase_in_history() -> None:
    old_plan = PLANS["seq"]
    new_plan = compiling.compile_spec({"steps": [step("a")]}, dataclasses.replace(CONTEXT, rerun="again"), POLICY)
    previous = running_status(old_plan, phase=statuses.Phase.FAILED, completion_time=ps.ts(50))
    snap = scheduling.Snapshot(plan=new_plan, pod=None, now=ps.at(100), generation=1, run=new_plan.run, status=previous,
                               other_pods=[old_pod("g1", created=0, phase="Failed")])
    decision = scheduling.decide(snap)
    assert decision.other_patches == ()  # nothing to stop
    assert decision.status.history == [{"run": "g1", "phase": "Failed", "podName": "demo-g1",
                                        "completionTime": ps.ts(50)}]


def test_old_pods_beyond_the_history_limit_are_deleted_oldest_first() -> None:
    plan = PLANS["seq"]
    others = [old_pod(f"g0-r{i}", created=i, phase="Succeeded") for i in range(6)]
    others.append(old_pod("g0-stopped", created=10, notes=ps.stopped("Superseded")))
    snap = snapshot(plan, None, now=100, other_pods=others[::-1], history_limit=3)
    decision = scheduling.decide(snap)
    assert decision.other_patches == ()  # finished or already stopped
    assert set(decision.delete_pods) == {"demo-g0-r0", "demo-g0-r1", "demo-g0-r2", "demo-g0-r3"}


def test_history_is_bounded_and_newest_first() -> None:
    plan = PLANS["seq"]
    history = [{"run": f"g0-r{i}", "phase": "Succeeded"} for i in range(scheduling.HISTORY_LIMIT)]
    previous = running_status(compiling.compile_spec({"steps": [step("a")]}, dataclasses.replace(CONTEXT, rerun="x"),
                                                     POLICY), history=history)
    decision = scheduling.decide(snapshot(plan, None, now=100, status=previous))
    assert len(decision.status.history) == scheduling.HISTORY_LIMIT
    assert decision.status.history[0]["phase"] == "Superseded"
    assert decision.status.history[1:] == history[:-1]


def test_an_unchanged_spec_does_nothing_new() -> None:
    plan = PLANS["seq"]
    pod = ps.pod(plan, running(A, IMG[A]), placeholder(B), placeholder(C), notes=started(A, placeholder_id=""))
    first = scheduling.decide(snapshot(plan, pod))
    again = scheduling.decide(snapshot(plan, pod, now=20, status=first.status.to_patch()))
    assert again.status == first.status
    assert again.create == () and again.pod_patch is None and again.events == ()


# --- Status conditions per phase -----------------------------------------------------------------------------------

CONDITIONS = {
    "Pending": {"Ready": "False", "Succeeded": "Unknown", "Reconciling": "True", "Stalled": "False"},
    "Running": {"Ready": "False", "Succeeded": "Unknown", "Reconciling": "True", "Stalled": "False"},
    "Succeeded": {"Ready": "True", "Succeeded": "True", "Reconciling": "False", "Stalled": "False"},
    "Failed": {"Ready": "False", "Succeeded": "False", "Reconciling": "False", "Stalled": "True"},
    "Cancelled": {"Ready": "False", "Succeeded": "False", "Reconciling": "False", "Stalled": "True"},
    "Error": {"Ready": "False", "Succeeded": "False", "Reconciling": "False", "Stalled": "True"},
}


@pytest.mark.parametrize("row", [pytest.param(r, id=r.id) for r in ROWS])
def test_conditions_follow_the_phase(row: Row) -> None:
    plan = PLANS[row.plan]
    decision = scheduling.decide(snapshot(plan, row.pod(plan), now=row.now, cancel=row.cancel))
    status = decision.status
    assert {c.type: c.status for c in status.conditions} == CONDITIONS[str(status.phase)]
    assert all((c.reason, c.message, c.observed_generation) == (status.reason, status.message, 1)
               for c in status.conditions)


def test_conditions_keep_their_transition_time_while_unchanged() -> None:
    plan = PLANS["seq"]
    created = scheduling.decide(snapshot(plan, None, now=0))
    pod = ps.pod(plan, running(A, IMG[A]), placeholder(B), placeholder(C), notes=started(A, placeholder_id=""))
    running_ = scheduling.decide(snapshot(plan, pod, now=5, status=created.status.to_patch()))
    later = scheduling.decide(snapshot(plan, ps.pod(plan, exited(A, IMG[A]), placeholder(B), placeholder(C),
                                                    notes=started(A, placeholder_id="")),
                                       now=50, status=running_.status.to_patch()))
    times = {c.type: c.last_transition_time for c in later.status.conditions}
    assert times == {"Ready": ps.ts(0), "Succeeded": ps.ts(0), "Reconciling": ps.ts(0), "Stalled": ps.ts(0)}
    done = scheduling.decide(snapshot(plan, ps.pod(plan, exited(A, IMG[A]), exited(B, IMG[B]), exited(C, IMG[C]),
                                                   notes=started(A, placeholder_id="") | started(B) | started(C)),
                                      now=90, status=later.status.to_patch()))
    times = {c.type: c.last_transition_time for c in done.status.conditions}
    assert times == {"Ready": ps.ts(90), "Succeeded": ps.ts(90), "Reconciling": ps.ts(90), "Stalled": ps.ts(0)}
    assert done.status.completion_time == ps.ts(90)
    after = scheduling.decide(snapshot(plan, ps.pod(plan, exited(A, IMG[A]), exited(B, IMG[B]), exited(C, IMG[C]),
                                                    notes=started(A, placeholder_id="") | started(B) | started(C)
                                                    | stopped("Completed"), phase="Failed", reason="DeadlineExceeded"),
                                       now=200, status=done.status.to_patch()))
    assert after.status == done.status and after.events == ()



# --- Stories: decisions applied to the pod, one after another -----------------------------------------------------


def test_story_dag_a_ok_b_fails_later_c_on_failure_stays_skipped() -> None:
    plan = PLANS["dag"]  # a; b after a; c after a, on failure only; d after b
    created = scheduling.decide(snapshot(plan, None, now=0))
    pod = pod_of(created)
    pod["metadata"].update(resourceVersion="1", creationTimestamp=ps.ts(0))
    notes = pod["metadata"]["annotations"]
    assert started_in(pod) == {A}

    def observe(*statuses_: ps.Status, now: float, status: scheduling.Decision) -> scheduling.Decision:
        seen = {**pod, "status": {"phase": "Running", "startTime": ps.ts(0), "containerStatuses": list(statuses_)}}
        return scheduling.decide(snapshot(plan, seen, now=now, status=status.status.to_patch()))

    first = observe(running(A, IMG[A]), placeholder(B), placeholder(C), placeholder(D), now=5, status=created)
    assert event_reasons(first) == ["Started"] and first.pod_patch is None

    a_done = observe(exited(A, IMG[A]), placeholder(B), placeholder(C), placeholder(D), now=10, status=first)
    assert starts_of(a_done, plan) == {B} and skips_of(a_done) == {C: "Skipped"}
    pod = ps.apply_patch(pod, a_done.pod_patch)
    assert images_of_patched(pod) == {B: IMG[B]}

    b_failed = observe(exited(A, IMG[A]), exited(B, IMG[B], 1, started=11, finished=20), placeholder(C), placeholder(D),
                       now=21, status=a_done)
    assert starts_of(b_failed, plan) == set()
    assert skips_of(b_failed) == {D: "Skipped"}
    assert states(b_failed) == {"a": "succeeded", "b": "failed", "c": "skipped", "d": "skipped"}
    assert (b_failed.status.phase, b_failed.status.reason) == ("Failed", "StepFailed")
    assert event_reasons(b_failed) == ["StepFailed", "Failed"]
    pod = ps.apply_patch(pod, b_failed.pod_patch)
    assert notes.keys() <= pod["metadata"]["annotations"].keys()
    assert pod["spec"]["activeDeadlineSeconds"] == 1

    stopped_ = observe(exited(A, IMG[A]), exited(B, IMG[B], 1, started=11, finished=20), placeholder_exited(C, 137),
                       placeholder_exited(D, 137), now=30, status=b_failed)
    assert stopped_.status == b_failed.status and stopped_.events == () and stopped_.pod_patch is None


def images_of_patched(pod: dict[str, Any]) -> dict[str, str]:
    return dict(pod.get("spec", {}).get("images", {}))


def test_story_events_are_emitted_once_per_transition() -> None:
    plan = PLANS["one"]
    created = scheduling.decide(snapshot(plan, None, now=0))
    assert event_reasons(created) == []
    pod = pod_of(created)
    pod["metadata"].update(resourceVersion="1", creationTimestamp=ps.ts(0))
    history: list[scheduling.Event] = []
    status = created.status.to_patch()
    for now, container in [(2, running(A, IMG[A])), (3, running(A, IMG[A])), (9, exited(A, IMG[A], 3)),
                           (10, exited(A, IMG[A], 3))]:
        seen = {**pod, "status": {"phase": "Running", "startTime": ps.ts(0), "containerStatuses": [container]}}
        decision = scheduling.decide(snapshot(plan, seen, now=now, status=status))
        history += decision.events
        status = decision.status.to_patch()
    assert [(e.type, e.reason, e.message) for e in history] == [
        ("Normal", "Started", "run g1 started in pod demo-g1"),
        ("Warning", "StepFailed", 'step "a" failed (exit code 3)'),
        ("Warning", "Failed", 'run g1 failed: step "a" failed (exit code 3)'),
    ]
