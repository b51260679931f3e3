"""The pure scheduler: ``decide(Snapshot) -> Decision`` over a large table of observed pod states.

The steps sequence themselves inside the pod (``docs/in-pod.md``): every container runs from the pod's
creation, a step container's entrypoint waits for its turn, and a step ends with its result as the
container's termination message. The scheduler reads the pod and does only what the pod cannot: give a step
whose image cannot be pulled the runner image as a stand-in, stop the pod, keep the status and history.

Each row is a pod as the API could show it (annotations, phase, the kubelet's container states) and what the
scheduler must decide: the run's phase and reason, each step's state and reason, which steps get a stand-in,
whether the pod is stopped, when to look again, which Events to emit. Every row is also checked for what
holds whatever the pod says (``check_invariants``): a patch only ever swaps the image of a step that has not
run, an ended pod is never patched, every patch is conditional on the pod's resourceVersion, and deciding
again on the returned status changes nothing and emits nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from podline.core import (
    auths,
    compiling,
    conventions,
    errors,
    models,
    observing,
    plans,
    pods,
    policies,
    records,
    registries,
    scheduling,
    statuses,
    stepping,
)
from podline.core.stepping import ResultState

from tests.core import podstates as ps
from tests.core.podstates import (
    crashed,
    entry,
    failed,
    killed,
    result,
    skipped,
    stopped,
    succeeded,
    waiting,
)

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


# --- The table -----------------------------------------------------------------------------------------------------

PodFn = Callable[[plans.RunPlan], Manifest]
ANY: Any = object()


@dataclass(frozen=True)
class Want:
    phase: str
    reason: str | None = None
    steps: dict[str, str] | None = None  # step name → state
    stand_ins: dict[str, str] = field(
        default_factory=dict
    )  # container → reason recorded (and the runner image)
    notes: dict[str, str] = field(default_factory=dict)  # container → reason recorded without a stand-in
    stop: str | None = None
    events: list[str] = field(default_factory=list)
    requeue: Any = ANY  # seconds, None, or ANY
    step_reasons: dict[str, str | None] = field(default_factory=dict)
    message: str | None = None  # a substring of status.message


@dataclass(frozen=True)
class Row:
    desc: str
    plan: str
    pod: PodFn
    want: Want
    now: float = 10
    cancel: bool = False


def seq(*states_: str) -> dict[str, str]:
    return dict(zip("abcd", states_, strict=False))


def ok(name: str, **kw: Any) -> ps.Status:
    return succeeded(name, IMG[name], **kw)


def bad(name: str, code: int = 1, **kw: Any) -> ps.Status:
    return failed(name, IMG[name], code, **kw)


def up(name: str, **kw: Any) -> ps.Status:
    return entry(name, IMG[name], **kw)


def skip(name: str, reason: str = "Skipped", **kw: Any) -> ps.Status:
    return skipped(name, IMG[name], reason, **kw)


def note(name: str, reason: str = "ErrImagePull", message: str = ps.NOT_FOUND) -> ps.Notes:
    return killed(name, reason, message)


DEADLINE: dict[str, Any] = {"phase": "Failed", "reason": "DeadlineExceeded"}

ROWS = [
    # --- Progress: containers run from the start; a running container is a running step once in its turn ------
    Row(
        "created-nothing-reported-yet",
        "seq",
        lambda p: ps.pod(p, prepare=None, phase="Pending", start=None),
        Want(
            "Running",
            "Running",
            seq("waiting", "waiting", "waiting"),
            requeue=3590,
            message="starting the next step",
        ),
    ),
    Row(
        "runner-image-being-pulled",
        "seq",
        lambda p: ps.pod(
            p,
            waiting(A, IMG[A]),
            waiting(B, IMG[B]),
            waiting(C, IMG[C]),
            prepare=ps.prepare_waiting("ContainerCreating"),
            phase="Pending",
        ),
        Want("Running", steps=seq("waiting", "waiting", "waiting"), requeue=3590),
    ),
    Row(
        "prepare-hook-running-steps-not-created",
        "seq",
        lambda p: ps.pod(
            p,
            waiting(A, IMG[A]),
            waiting(B, IMG[B]),
            waiting(C, IMG[C]),
            prepare=ps.prepare_running(),
            phase="Pending",
        ),
        Want("Running", steps=seq("waiting", "waiting", "waiting")),
    ),
    Row(
        "first-step-running-others-wait-in-their-entrypoint",
        "seq",
        lambda p: ps.pod(p, up(A), up(B), up(C)),
        Want("Running", "Running", seq("running", "waiting", "waiting"), requeue=3590, message="running a"),
    ),
    Row(
        "first-step-pulling-its-image",
        "seq",
        lambda p: ps.pod(p, waiting(A, IMG[A], "ContainerCreating"), up(B), up(C), phase="Pending"),
        Want("Running", steps=seq("waiting", "waiting", "waiting"), step_reasons={"a": None}),
    ),
    Row(
        "first-done-second-runs",
        "seq",
        lambda p: ps.pod(p, ok(A), up(B), up(C)),
        Want("Running", steps=seq("succeeded", "running", "waiting"), requeue=3590, message="running b"),
    ),
    Row(
        "second-done-third-runs-missed-events",
        "seq",
        lambda p: ps.pod(p, ok(A), ok(B, started=3, finished=5), up(C)),
        Want("Running", steps=seq("succeeded", "succeeded", "running")),
    ),
    Row(
        "second-step-still-pulling-in-its-turn",
        "seq",
        lambda p: ps.pod(p, ok(A), waiting(B, IMG[B], "ContainerCreating"), up(C)),
        Want("Running", steps=seq("succeeded", "waiting", "waiting"), message="starting the next step"),
    ),
    # --- The end of a run -------------------------------------------------------------------------------------
    Row(
        "all-done-nothing-left-running-no-stop",
        "seq",
        lambda p: ps.pod(p, ok(A), ok(B), ok(C)),
        Want(
            "Succeeded",
            "Succeeded",
            seq("succeeded", "succeeded", "succeeded"),
            events=["Succeeded"],
            message="all steps finished",
        ),
    ),
    Row(
        "pod-succeeded-by-itself",
        "one",
        lambda p: ps.pod(p, ok(A), phase="Succeeded"),
        Want("Succeeded", "Succeeded", {"a": "succeeded"}, events=["Succeeded"]),
    ),
    Row(
        "pod-failed-by-itself-because-the-last-step-failed",
        "one",
        lambda p: ps.pod(p, bad(A), phase="Failed"),
        Want(
            "Failed",
            "StepFailed",
            {"a": "failed"},
            events=["StepFailed", "Failed"],
            message='step "a" failed (exit code 1)',
        ),
    ),
    # b's turn has come and its entrypoint is skipping it (a failed): until its skipped result shows (the
    # kubelet's next relist), it reads waiting, never running.
    Row(
        "first-fails-the-next-has-not-recorded-its-skip",
        "seq",
        lambda p: ps.pod(p, bad(A, 2), up(B), up(C)),
        Want("Running", steps=seq("failed", "waiting", "waiting"), events=["StepFailed"]),
    ),
    Row(
        "first-fails-the-others-skipped-themselves",
        "seq",
        lambda p: ps.pod(p, bad(A, 2), skip(B), skip(C), phase="Failed"),
        Want(
            "Failed",
            "StepFailed",
            seq("failed", "skipped", "skipped"),
            events=["StepFailed", "Failed"],
            step_reasons={"b": "Skipped", "c": "Skipped"},
            message='step "a" failed (exit code 2)',
        ),
    ),
    Row(
        "exit-78-the-others-not-yet-skipped",
        "seq",
        lambda p: ps.pod(p, ok(A, code=78), up(B), up(C)),
        Want("Running", steps=seq("succeeded", "waiting", "waiting")),
    ),
    Row(
        "exit-78-ends-early-as-success",
        "seq",
        lambda p: ps.pod(p, ok(A, code=78), skip(B, "EarlyExit"), skip(C, "EarlyExit"), phase="Succeeded"),
        Want(
            "Succeeded",
            "EarlyExit",
            seq("succeeded", "skipped", "skipped"),
            events=["Succeeded"],
            step_reasons={"b": "EarlyExit", "c": "EarlyExit"},
            message="ended early by exit code 78",
        ),
    ),
    # --- How a step ended: its result, or the kubelet's word when there is none --------------------------------
    # Without a result the steps after it would wait for ever (their entrypoints wait for its result file).
    Row(
        "oom-killed-before-the-entrypoint-wrote-ends-the-run",
        "seq",
        lambda p: ps.pod(p, crashed(A, IMG[A], 137, reason="OOMKilled", message=None), up(B), up(C)),
        Want(
            "Failed",
            "StepFailed",
            seq("failed", "skipped", "skipped"),
            stop="StepFailed",
            events=["StepFailed", "Failed"],
            step_reasons={"a": "OOMKilled"},
            message='step "a" failed (exit code 137)',
        ),
    ),
    Row(
        "oom-killed-command-with-a-result",
        "seq",
        lambda p: ps.pod(p, bad(A, 137, kubelet_reason="OOMKilled"), skip(B), skip(C)),
        Want(
            "Failed",
            "StepFailed",
            seq("failed", "skipped", "skipped"),
            events=["StepFailed", "Failed"],
            step_reasons={"a": "OOMKilled"},
            message='step "a" failed (exit code 137)',
        ),
    ),
    Row(
        "entrypoint-could-not-start-ends-the-run",
        "seq",
        lambda p: ps.pod(p, crashed(A, IMG[A]), up(B), up(C)),
        Want(
            "Failed",
            "StepFailed",
            seq("failed", "skipped", "skipped"),
            stop="StepFailed",
            events=["StepFailed", "Failed"],
            step_reasons={"a": "StartError"},
        ),
    ),
    Row(
        "entrypoint-could-not-start-read-again-after-the-stop",
        "seq",
        lambda p: ps.pod(
            p,
            crashed(A, IMG[A]),
            ps.stopped_waiting(B, IMG[B]),
            ps.stopped_waiting(C, IMG[C]),
            notes=stopped("StepFailed"),
            **DEADLINE,
        ),
        Want(
            "Failed",
            "StepFailed",
            seq("failed", "skipped", "skipped"),
            events=["StepFailed", "Failed"],
            step_reasons={"a": "StartError"},
            message='step "a" failed (exit code 128)',
        ),
    ),
    Row(
        "the-last-step-could-not-start-nothing-to-stop",
        "one",
        lambda p: ps.pod(p, crashed(A, IMG[A])),
        Want("Failed", "StepFailed", {"a": "failed"}, events=["StepFailed", "Failed"]),
    ),
    Row(
        "a-step-nothing-comes-after-could-not-start-the-others-go-on",
        "parallel",
        lambda p: ps.pod(p, ok(A), up(B), up(C), crashed(D, IMG[D])),
        Want(
            "Running",
            steps=seq("succeeded", "running", "waiting", "failed"),
            events=["StepFailed"],
            step_reasons={"d": "StartError"},
        ),
    ),
    Row(
        "an-ignored-step-that-could-not-start-still-holds-up-the-next",
        "ignore",
        lambda p: ps.pod(p, crashed(A, IMG[A]), up(B)),
        Want(
            "Failed",
            "StepFailed",
            {"a": "failed", "b": "skipped"},
            stop="StepFailed",
            events=["StepFailed", "Failed"],
            message='step "a" ended without a result (StartError): the steps after it cannot have their turn',
        ),
    ),
    Row(
        "an-early-exit-skips-the-steps-held-up",
        "seq",
        lambda p: ps.pod(p, ok(A, code=78), crashed(B, IMG[B]), up(C)),
        Want("Running", steps=seq("succeeded", "failed", "waiting"), events=["StepFailed"]),
    ),
    Row(
        "a-parallel-branch-could-not-start-ends-the-run",
        "parallel",
        lambda p: ps.pod(p, crashed(A, IMG[A]), up(B), up(C), up(D)),
        Want(
            "Failed",
            "StepFailed",
            seq("failed", "failed", "skipped", "skipped"),
            stop="StepFailed",
            events=["StepFailed", "StepFailed", "Failed"],
            step_reasons={"b": "Stopped"},
        ),
    ),
    Row(
        "command-not-found",
        "seq",
        lambda p: ps.pod(
            p,
            bad(A, 127, reason="CommandNotFound", message='exec: "make": not found in PATH'),
            skip(B),
            skip(C),
        ),
        Want(
            "Failed",
            "StepFailed",
            seq("failed", "skipped", "skipped"),
            events=["StepFailed", "Failed"],
            step_reasons={"a": "CommandNotFound"},
            message='step "a" failed (exit code 127)',
        ),
    ),
    Row(
        "command-not-executable",
        "one",
        lambda p: ps.pod(p, bad(A, 126, reason="CommandNotExecutable")),
        Want(
            "Failed",
            "StepFailed",
            {"a": "failed"},
            events=["StepFailed", "Failed"],
            step_reasons={"a": "CommandNotExecutable"},
        ),
    ),
    Row(
        "step-timeout-recorded-by-the-entrypoint",
        "seq",
        lambda p: ps.pod(
            p, bad(A, 143, reason="StepTimeout", message="The step timed out after 1m0s."), up(B), up(C)
        ),
        Want(
            "Running",
            steps=seq("failed", "waiting", "waiting"),
            events=["StepFailed"],
            step_reasons={"a": "StepTimeout"},
        ),
    ),
    Row(
        "a-result-in-the-result-file-form",
        "one",
        lambda p: ps.pod(p, result(A, IMG[A], ResultState.SUCCEEDED, 0, whole=True)),
        Want("Succeeded", "Succeeded", {"a": "succeeded"}, events=["Succeeded"]),
    ),
    Row(
        "a-termination-message-that-is-no-result-is-a-failure",
        "one",
        lambda p: ps.pod(p, crashed(A, IMG[A], 0, reason="Completed", message="done\n")),
        Want(
            "Failed",
            "StepFailed",
            {"a": "failed"},
            events=["StepFailed", "Failed"],
            step_reasons={"a": "Error"},
        ),
    ),
    # --- when.status and failure: ignore ------------------------------------------------------------------------
    Row(
        "failure-lets-the-on-failure-step-run",
        "on-failure",
        lambda p: ps.pod(p, ok(A), bad(B), up(C), up(D)),
        Want("Running", steps=seq("succeeded", "failed", "running", "waiting"), events=["StepFailed"]),
    ),
    Row(
        "on-failure-step-done-then-the-always-step",
        "on-failure",
        lambda p: ps.pod(p, ok(A), bad(B), ok(C), up(D)),
        Want("Running", steps=seq("succeeded", "failed", "succeeded", "running"), events=["StepFailed"]),
    ),
    Row(
        "on-failure-pipeline-ends-failed",
        "on-failure",
        lambda p: ps.pod(p, ok(A), bad(B), ok(C), ok(D)),
        Want(
            "Failed",
            "StepFailed",
            seq("succeeded", "failed", "succeeded", "succeeded"),
            events=["StepFailed", "Failed"],
            message='step "b" failed (exit code 1)',
        ),
    ),
    Row(
        "success-skips-the-on-failure-step",
        "on-failure",
        lambda p: ps.pod(p, ok(A), ok(B), skip(C), up(D)),
        Want("Running", steps=seq("succeeded", "succeeded", "skipped", "running")),
    ),
    Row(
        "ignored-failure-lets-the-run-go-on",
        "ignore",
        lambda p: ps.pod(p, bad(A), up(B)),
        Want("Running", steps={"a": "failed", "b": "running"}, events=["StepFailed"]),
    ),
    Row(
        "ignored-failure-run-succeeds",
        "ignore",
        lambda p: ps.pod(p, bad(A), ok(B)),
        Want("Succeeded", "Succeeded", {"a": "failed", "b": "succeeded"}, events=["StepFailed", "Succeeded"]),
    ),
    # --- DAG --------------------------------------------------------------------------------------------------------
    Row(
        "dag-a-done-b-runs-c-recorded-its-skip",
        "dag",
        lambda p: ps.pod(p, ok(A), up(B), skip(C), up(D)),
        Want("Running", steps=seq("succeeded", "running", "skipped", "waiting")),
    ),
    # c's turn came with a successful: its entrypoint skips it (on failure only), so it never reads running.
    Row(
        "dag-c-in-its-turn-skipping-itself-reads-waiting",
        "dag",
        lambda p: ps.pod(p, ok(A), up(B), up(C), up(D)),
        Want("Running", steps=seq("succeeded", "running", "waiting", "waiting"), message="running b"),
    ),
    Row(
        "dag-b-fails-later-c-stays-skipped",
        "dag",
        lambda p: ps.pod(p, ok(A), bad(B), skip(C), skip(D)),
        Want(
            "Failed",
            "StepFailed",
            seq("succeeded", "failed", "skipped", "skipped"),
            events=["StepFailed", "Failed"],
        ),
    ),
    Row(
        "parallel-roots-run-together",
        "parallel",
        lambda p: ps.pod(p, up(A), up(B), up(C), up(D)),
        Want("Running", steps=seq("running", "running", "waiting", "waiting"), message="running a, b"),
    ),
    Row(
        "parallel-one-root-done-its-dependant-runs-the-join-waits",
        "parallel",
        lambda p: ps.pod(p, ok(A), up(B), up(C), up(D)),
        Want("Running", steps=seq("succeeded", "running", "waiting", "running")),
    ),
    Row(
        "parallel-join-runs-when-both-are-done",
        "parallel",
        lambda p: ps.pod(p, ok(A), ok(B), up(C), up(D)),
        Want("Running", steps=seq("succeeded", "succeeded", "running", "running")),
    ),
    # d decided when a ended (9 s), before b failed (20 s): it runs, though the run is failing now; c decided
    # when b failed: it skips itself. What a step reads is what its entrypoint saw when it decided.
    Row(
        "parallel-a-later-failure-does-not-unmake-a-step-that-decided-before-it",
        "parallel",
        lambda p: ps.pod(p, ok(A, finished=9), bad(B, finished=20), up(C), up(D)),
        Want("Running", steps=seq("succeeded", "failed", "waiting", "running"), events=["StepFailed"]),
    ),
    Row(
        "excluded-step-in-its-turn-reads-waiting-until-its-skip-shows",
        "excluded",
        lambda p: ps.pod(p, ok(A), up(B), up(C)),
        Want("Running", steps=seq("succeeded", "waiting", "waiting"), message=None),
    ),
    Row(
        "parallel-failure-waits-for-the-running-step",
        "parallel",
        lambda p: ps.pod(p, bad(A), up(B), up(C), skip(D)),
        Want("Running", steps=seq("failed", "running", "waiting", "skipped"), events=["StepFailed"]),
    ),
    # --- detach and services --------------------------------------------------------------------------------------
    Row(
        "a-detached-dependency-counts-once-running",
        "detach",
        lambda p: ps.pod(p, up(A), up(B)),
        Want("Running", steps={"a": "running", "b": "running"}, message="running a, b"),
    ),
    Row(
        "a-detached-dependency-not-yet-running-holds-its-dependant",
        "detach",
        lambda p: ps.pod(p, waiting(A, IMG[A], "ContainerCreating"), up(B)),
        Want("Running", steps={"a": "waiting", "b": "waiting"}),
    ),
    Row(
        "detached-step-still-running-at-the-end-stops-the-pod",
        "detach",
        lambda p: ps.pod(p, up(A), ok(B)),
        Want(
            "Succeeded",
            "Succeeded",
            {"a": "succeeded", "b": "succeeded"},
            stop="Completed",
            events=["Succeeded"],
            step_reasons={"a": "Detached"},
        ),
    ),
    Row(
        "detached-step-stopped-with-the-pod",
        "detach",
        lambda p: ps.pod(
            p, ps.stopped_running(A, IMG[A], finished=12), ok(B), notes=stopped("Completed"), **DEADLINE
        ),
        Want(
            "Succeeded",
            "Succeeded",
            {"a": "succeeded", "b": "succeeded"},
            events=["Succeeded"],
            step_reasons={"a": "Detached"},
        ),
    ),
    Row(
        "detached-step-failing-does-not-fail-the-run",
        "detach",
        lambda p: ps.pod(p, bad(A), up(B)),
        Want("Running", steps={"a": "failed", "b": "running"}, events=["StepFailed"]),
    ),
    Row(
        "detached-step-failed-the-run-succeeds",
        "detach",
        lambda p: ps.pod(p, bad(A), ok(B)),
        Want("Succeeded", "Succeeded", {"a": "failed", "b": "succeeded"}, events=["StepFailed", "Succeeded"]),
    ),
    Row(
        "services-still-running-at-the-end-are-stopped",
        "services",
        lambda p: ps.pod(p, ps.service_running("svc-db", "postgres:16"), ok(A), ok(B)),
        Want(
            "Succeeded",
            "Succeeded",
            {"a": "succeeded", "b": "succeeded"},
            stop="Completed",
            events=["Succeeded"],
        ),
    ),
    Row(
        "services-stop-patched-not-yet-stopped-is-not-stopped-twice",
        "services",
        lambda p: ps.pod(
            p, ps.service_running("svc-db", "postgres:16"), ok(A), ok(B), notes=stopped("Completed")
        ),
        Want("Succeeded", "Succeeded", {"a": "succeeded", "b": "succeeded"}, events=["Succeeded"]),
    ),
    Row(
        "services-stopped-read-again",
        "services",
        lambda p: ps.pod(
            p,
            ps.service_exited("svc-db", "postgres:16", 143),
            ok(A),
            ok(B),
            notes=stopped("Completed"),
            **DEADLINE,
        ),
        Want("Succeeded", "Succeeded", {"a": "succeeded", "b": "succeeded"}, events=["Succeeded"]),
    ),
    Row(
        "a-crashed-service-does-not-fail-the-run",
        "services",
        lambda p: ps.pod(p, ps.service_exited("svc-db", "postgres:16", 1), up(A), up(B)),
        Want("Running", steps={"a": "running", "b": "waiting"}),
    ),
    # --- when on build metadata: the step skips itself in its turn, on the runner image -------------------------------
    Row(
        "excluded-step-skipped-in-its-turn-counts-as-done",
        "excluded",
        lambda p: ps.pod(p, ok(A), skipped(B, RUNNER), up(C)),
        Want("Running", steps=seq("succeeded", "skipped", "running"), step_reasons={"b": "Skipped"}),
    ),
    Row(
        "excluded-step-waits-its-turn",
        "excluded",
        lambda p: ps.pod(p, up(A), entry(B, RUNNER), up(C)),
        Want("Running", steps=seq("running", "waiting", "waiting")),
    ),
    # --- Images that cannot be pulled: permanent errors get a stand-in at once -------------------------------------
    Row(
        "not-found-image-gets-a-stand-in-at-once",
        "seq",
        lambda p: ps.pod(p, waiting(A, IMG[A], "ErrImagePull", ps.NOT_FOUND), up(B), up(C)),
        Want(
            "Running",
            steps=seq("waiting", "waiting", "waiting"),
            stand_ins={A: "ErrImagePull"},
            requeue=3590,
            step_reasons={"a": "ErrImagePull"},
        ),
    ),
    Row(
        "unauthorized-image-gets-a-stand-in-at-once",
        "seq",
        lambda p: ps.pod(p, waiting(A, IMG[A], "ErrImagePull", ps.UNAUTHORIZED), up(B), up(C)),
        Want("Running", stand_ins={A: "ErrImagePull"}, step_reasons={"a": "ErrImagePull"}),
    ),
    Row(
        "access-denied-image-gets-a-stand-in-at-once",
        "seq",
        lambda p: ps.pod(p, waiting(A, IMG[A], "ErrImagePull", ps.DENIED), up(B), up(C)),
        Want("Running", stand_ins={A: "ErrImagePull"}),
    ),
    Row(
        "back-off-after-not-found-gets-a-stand-in-at-once",
        "seq",
        lambda p: ps.pod(
            p,
            waiting(A, IMG[A], "ImagePullBackOff", f"{ps.BACKOFF}: ErrImagePull: {ps.NOT_FOUND}"),
            up(B),
            up(C),
        ),
        Want("Running", stand_ins={A: "ImagePullBackOff"}),
    ),
    Row(
        "never-pull-image-absent-gets-a-stand-in-at-once",
        "seq",
        lambda p: ps.pod(p, waiting(A, IMG[A], "ErrImageNeverPull", ps.NEVER_PULL), up(B), up(C)),
        Want("Running", stand_ins={A: "ErrImageNeverPull"}, step_reasons={"a": "ErrImageNeverPull"}),
    ),
    Row(
        "invalid-image-name-gets-a-stand-in-at-once",
        "seq",
        lambda p: ps.pod(p, waiting(A, IMG[A], "InvalidImageName", ps.INVALID_NAME), up(B), up(C)),
        Want("Running", stand_ins={A: "InvalidImageName"}),
    ),
    Row(
        "a-later-step-not-found-gets-a-stand-in-before-its-turn",
        "seq",
        lambda p: ps.pod(p, up(A), waiting(B, IMG[B], "ErrImagePull", ps.NOT_FOUND), up(C)),
        Want("Running", steps=seq("running", "waiting", "waiting"), stand_ins={B: "ErrImagePull"}),
    ),
    Row(
        "two-steps-not-found-one-patch",
        "seq",
        lambda p: ps.pod(
            p,
            up(A),
            waiting(B, IMG[B], "ErrImagePull", ps.NOT_FOUND),
            waiting(C, IMG[C], "ErrImageNeverPull", ps.NEVER_PULL),
        ),
        Want("Running", stand_ins={B: "ErrImagePull", C: "ErrImageNeverPull"}),
    ),
    # --- Transient pull errors: given up on after the pull timeout, counted from the step's turn ------------------
    Row(
        "transient-pull-error-in-its-turn-looks-again-at-the-pull-timeout",
        "seq",
        lambda p: ps.pod(p, waiting(A, IMG[A], "ErrImagePull", ps.REFUSED), up(B), up(C)),
        Want(
            "Running",
            steps=seq("waiting", "waiting", "waiting"),
            requeue=200,
            step_reasons={"a": "ErrImagePull"},
        ),
        now=100,
    ),
    Row(
        "back-off-in-its-turn-looks-again",
        "seq",
        lambda p: ps.pod(p, waiting(A, IMG[A], "ImagePullBackOff", ps.BACKOFF), up(B), up(C)),
        Want("Running", requeue=1, step_reasons={"a": "ImagePullBackOff"}),
        now=299,
    ),
    Row(
        "registry-unavailable-is-transient",
        "seq",
        lambda p: ps.pod(p, waiting(A, IMG[A], "RegistryUnavailable", "registry unavailable"), up(B), up(C)),
        Want("Running", requeue=250),
        now=50,
    ),
    Row(
        "transient-pull-timeout-passed-gets-a-stand-in",
        "seq",
        lambda p: ps.pod(p, waiting(A, IMG[A], "ErrImagePull", ps.REFUSED), up(B), up(C)),
        Want(
            "Running", steps=seq("waiting", "waiting", "waiting"), stand_ins={A: "ErrImagePull"}, requeue=3300
        ),
        now=300,
    ),
    Row(
        "transient-pull-timeout-counts-from-the-step's-turn",
        "seq",
        lambda p: ps.pod(p, ok(A, finished=50), waiting(B, IMG[B], "ImagePullBackOff", ps.BACKOFF), up(C)),
        Want("Running", requeue=150),
        now=200,
    ),
    Row(
        "transient-pull-timeout-from-the-turn-passed",
        "seq",
        lambda p: ps.pod(p, ok(A, finished=50), waiting(B, IMG[B], "ImagePullBackOff", ps.BACKOFF), up(C)),
        Want("Running", stand_ins={B: "ImagePullBackOff"}),
        now=350,
    ),
    Row(
        "transient-never-given-up-before-the-step's-turn",
        "seq",
        lambda p: ps.pod(p, up(A), waiting(B, IMG[B], "ErrImagePull", ps.REFUSED), up(C)),
        Want("Running", steps=seq("running", "waiting", "waiting"), requeue=2600),
        now=1000,
    ),
    # --- Stand-ins: recorded in the pod; the runner image records the failure in the step's turn ----------------------
    Row(
        "stand-in-recorded-the-kubelet-not-yet-swapped",
        "seq",
        lambda p: ps.pod(p, waiting(A, IMG[A], "ErrImagePull", ps.NOT_FOUND), up(B), up(C), notes=note(A)),
        Want("Running", steps=seq("waiting", "waiting", "waiting"), step_reasons={"a": "ErrImagePull"}),
    ),
    Row(
        "stand-in-running-is-no-running-step",
        "seq",
        lambda p: ps.pod(p, entry(A, RUNNER), up(B), up(C), notes=note(A)),
        Want("Running", steps=seq("waiting", "waiting", "waiting"), step_reasons={"a": "ErrImagePull"}),
    ),
    Row(
        "stand-in-recorded-the-failure",
        "seq",
        lambda p: ps.pod(p, ps.stand_in_result(A), up(B), up(C), notes=note(A)),
        Want(
            "Running",
            steps=seq("failed", "waiting", "waiting"),
            events=["StepFailed"],
            step_reasons={"a": "ErrImagePull"},
        ),
    ),
    Row(
        "stand-in-failure-lets-the-on-failure-step-run",
        "on-failure",
        lambda p: ps.pod(p, ok(A), ps.stand_in_result(B), up(C), up(D), notes=note(B)),
        Want(
            "Running",
            steps=seq("succeeded", "failed", "running", "waiting"),
            events=["StepFailed"],
            step_reasons={"b": "ErrImagePull"},
        ),
    ),
    Row(
        "stand-in-run-ends-failed",
        "seq",
        lambda p: ps.pod(p, ps.stand_in_result(A), skip(B), skip(C), notes=note(A), phase="Failed"),
        Want(
            "Failed",
            "StepFailed",
            seq("failed", "skipped", "skipped"),
            events=["StepFailed", "Failed"],
            step_reasons={"a": "ErrImagePull"},
            message='step "a" failed',
        ),
    ),
    Row(
        "stand-in-that-could-not-start-reads-the-note",
        "seq",
        lambda p: ps.pod(p, crashed(A, RUNNER), up(B), up(C), notes=note(A)),
        Want(
            "Failed",
            "StepFailed",
            seq("failed", "skipped", "skipped"),
            stop="StepFailed",
            events=["StepFailed", "Failed"],
            step_reasons={"a": "ErrImagePull"},
        ),
    ),
    # --- A missing Secret or key: no stand-in can help (the environment stays): the run fails --------------------------
    Row(
        "config-error-fails-the-run-at-once",
        "seq",
        lambda p: ps.pod(
            p, waiting(A, IMG[A], "CreateContainerConfigError", 'secret "tok" not found'), up(B), up(C)
        ),
        Want(
            "Failed",
            "StepFailed",
            seq("failed", "skipped", "skipped"),
            notes={A: "CreateContainerConfigError"},
            stop="StepFailed",
            events=["StepFailed", "Failed"],
            step_reasons={"a": "CreateContainerConfigError"},
            message='step "a" cannot start: secret "tok" not found; check the Secrets named by from_secret',
        ),
    ),
    Row(
        "config-error-recorded-the-pod-not-yet-stopped",
        "seq",
        lambda p: ps.pod(
            p,
            waiting(A, IMG[A], "CreateContainerConfigError", 'secret "tok" not found'),
            up(B),
            up(C),
            notes=killed(
                A,
                "CreateContainerConfigError",
                'secret "tok" not found; check the Secrets named by from_secret',
            )
            | stopped("StepFailed"),
        ),
        Want(
            "Failed",
            "StepFailed",
            seq("failed", "skipped", "skipped"),
            events=["StepFailed", "Failed"],
            step_reasons={"a": "CreateContainerConfigError"},
            message='step "a" cannot start: secret "tok" not found; check the Secrets named by from_secret',
        ),
    ),
    Row(
        "config-error-read-again-after-the-stop",
        "seq",
        lambda p: ps.pod(
            p,
            ps.lost(A, IMG[A]),
            ps.stopped_waiting(B, IMG[B]),
            ps.stopped_waiting(C, IMG[C]),
            notes=killed(
                A,
                "CreateContainerConfigError",
                'secret "tok" not found; check the Secrets named by from_secret',
            )
            | stopped("StepFailed"),
            **DEADLINE,
        ),
        Want(
            "Failed",
            "StepFailed",
            seq("failed", "skipped", "skipped"),
            events=["StepFailed", "Failed"],
            step_reasons={"a": "CreateContainerConfigError"},
            message='step "a" cannot start: secret "tok" not found; check the Secrets named by from_secret',
        ),
    ),
    # --- The runner image: it must install the entrypoint, or no step can run -----------------------------------------
    Row(
        "prepare-failed-the-run-cannot-run",
        "seq",
        lambda p: ps.pod(
            p,
            waiting(A, IMG[A]),
            waiting(B, IMG[B]),
            waiting(C, IMG[C]),
            prepare=ps.prepare_done(1, message="cannot install the binary"),
        ),
        Want(
            "Error",
            "RunnerUnavailable",
            seq("skipped", "skipped", "skipped"),
            stop="RunnerUnavailable",
            events=["Error"],
            message="did not install the entrypoint (exit code 1, Error)",
        ),
    ),
    # Its postStart hook failed: the kubelet killed it and went on, and the steps found no entrypoint.
    Row(
        "prepare-hook-failed-the-steps-could-not-start",
        "seq",
        lambda p: ps.pod(
            p,
            crashed(A, IMG[A]),
            crashed(B, IMG[B]),
            crashed(C, IMG[C]),
            prepare=ps.prepare_done(137, reason="Error"),
        ),
        Want(
            "Error",
            "RunnerUnavailable",
            seq("failed", "failed", "failed"),
            stop="RunnerUnavailable",
            events=["StepFailed", "StepFailed", "StepFailed", "Error"],
            step_reasons={"a": "StartError"},
            message=f"the runner image {RUNNER} did not install the entrypoint (exit code 137, Error); check the "
            "operator's runner image (PODLINE_RUNNER_IMAGE) and that the nodes can pull it",
        ),
    ),
    Row(
        "runner-image-not-found-at-once",
        "seq",
        lambda p: ps.pod(
            p,
            waiting(A, IMG[A]),
            waiting(B, IMG[B]),
            waiting(C, IMG[C]),
            prepare=ps.prepare_waiting("ErrImagePull", ps.NOT_FOUND),
            phase="Pending",
        ),
        Want(
            "Error",
            "RunnerUnavailable",
            seq("skipped", "skipped", "skipped"),
            stop="RunnerUnavailable",
            events=["Error"],
            message="could not be pulled",
        ),
    ),
    Row(
        "runner-image-transient-error-looks-again",
        "seq",
        lambda p: ps.pod(
            p,
            waiting(A, IMG[A]),
            waiting(B, IMG[B]),
            waiting(C, IMG[C]),
            prepare=ps.prepare_waiting("ErrImagePull", ps.REFUSED),
            phase="Pending",
        ),
        Want("Running", steps=seq("waiting", "waiting", "waiting"), requeue=180),
        now=120,
    ),
    Row(
        "runner-image-transient-error-past-the-pull-timeout",
        "seq",
        lambda p: ps.pod(
            p,
            waiting(A, IMG[A]),
            waiting(B, IMG[B]),
            waiting(C, IMG[C]),
            prepare=ps.prepare_waiting("ImagePullBackOff", ps.BACKOFF),
            phase="Pending",
        ),
        Want("Error", "RunnerUnavailable", stop="RunnerUnavailable", events=["Error"]),
        now=300,
    ),
    Row(
        "runner-unavailable-read-again",
        "seq",
        lambda p: ps.pod(
            p,
            ps.lost(A, IMG[A]),
            ps.lost(B, IMG[B]),
            ps.lost(C, IMG[C]),
            prepare=ps.prepare_waiting("ErrImagePull", ps.NOT_FOUND),
            notes=stopped("RunnerUnavailable"),
            **DEADLINE,
        ),
        Want("Error", "RunnerUnavailable", events=["Error"]),
    ),
    # --- Cancel and the run timeout: the pod is stopped; the kubelet enforces the timeout by itself too -----------------
    Row(
        "cancel-stops-the-pod",
        "seq",
        lambda p: ps.pod(p, ok(A), up(B), up(C)),
        Want(
            "Cancelled",
            "Cancelled",
            seq("succeeded", "failed", "skipped"),
            stop="Cancelled",
            events=["StepFailed", "Cancelled"],
            step_reasons={"b": "Stopped"},
        ),
        cancel=True,
    ),
    Row(
        "cancel-read-again-after-the-stop",
        "seq",
        lambda p: ps.pod(
            p,
            ok(A),
            ps.stopped_running(B, IMG[B]),
            ps.stopped_waiting(C, IMG[C]),
            notes=stopped("Cancelled"),
            **DEADLINE,
        ),
        Want(
            "Cancelled",
            "Cancelled",
            seq("succeeded", "failed", "skipped"),
            events=["StepFailed", "Cancelled"],
            step_reasons={"b": "Stopped"},
        ),
        cancel=True,
    ),
    Row(
        "cancel-before-a-stand-in's-turn",
        "seq",
        lambda p: ps.pod(p, ok(A), up(B), entry(C, RUNNER), notes=note(C)),
        Want(
            "Cancelled",
            "Cancelled",
            seq("succeeded", "failed", "skipped"),
            stop="Cancelled",
            events=["StepFailed", "Cancelled"],
            step_reasons={"c": None},
        ),
        cancel=True,
    ),
    Row(
        "cancel-before-a-stand-in-ran-read-again",
        "seq",
        lambda p: ps.pod(
            p,
            ok(A),
            ps.stopped_running(B, IMG[B]),
            ps.lost(C, RUNNER),
            notes=note(C) | stopped("Cancelled"),
            **DEADLINE,
        ),
        Want(
            "Cancelled",
            "Cancelled",
            seq("succeeded", "failed", "skipped"),
            events=["StepFailed", "Cancelled"],
        ),
        cancel=True,
    ),
    Row(
        "cancel-after-the-run-ended-changes-nothing",
        "seq",
        lambda p: ps.pod(p, ok(A), ok(B), ok(C), phase="Succeeded"),
        Want("Succeeded", "Succeeded", events=["Succeeded"]),
        cancel=True,
    ),
    Row(
        "cancel-of-an-evicted-pod-patches-nothing",
        "seq",
        lambda p: ps.pod(
            p,
            ok(A),
            ps.stopped_running(B, IMG[B]),
            ps.stopped_waiting(C, IMG[C]),
            phase="Failed",
            reason="Evicted",
        ),
        Want("Error", "PodDeleted", events=["StepFailed", "Error"]),
        cancel=True,
    ),
    Row(
        "run-timeout-not-yet-looks-again-then",
        "seq",
        lambda p: ps.pod(p, ok(A), up(B), up(C)),
        Want("Running", requeue=1),
        now=3599,
    ),
    Row(
        "run-timeout-stops-the-pod",
        "seq",
        lambda p: ps.pod(p, ok(A), up(B), up(C)),
        Want(
            "Failed",
            "Timeout",
            seq("succeeded", "failed", "skipped"),
            stop="Timeout",
            events=["StepFailed", "Failed"],
            step_reasons={"b": "Stopped"},
            message="the run exceeded its timeout of 3600s",
        ),
        now=3600,
    ),
    Row(
        "run-timeout-read-again-after-the-stop",
        "seq",
        lambda p: ps.pod(
            p,
            ok(A),
            ps.stopped_running(B, IMG[B]),
            ps.stopped_waiting(C, IMG[C]),
            notes=stopped("Timeout"),
            **DEADLINE,
        ),
        Want(
            "Failed",
            "Timeout",
            seq("succeeded", "failed", "skipped"),
            events=["StepFailed", "Failed"],
            message="the run exceeded its timeout of 3600s",
        ),
        now=3605,
    ),
    Row(
        "kubelet-deadline-exceeded-while-the-operator-was-away-is-a-timeout",
        "seq",
        lambda p: ps.pod(p, ok(A), ps.stopped_running(B, IMG[B]), ps.stopped_waiting(C, IMG[C]), **DEADLINE),
        Want(
            "Failed",
            "Timeout",
            seq("succeeded", "failed", "skipped"),
            events=["StepFailed", "Failed"],
            message="the run exceeded its timeout of 3600s",
        ),
        now=3601,
    ),
    # --- The pod ends underneath the run --------------------------------------------------------------------------
    Row(
        "pod-evicted",
        "seq",
        lambda p: ps.pod(
            p,
            ok(A),
            ps.stopped_running(B, IMG[B]),
            ps.stopped_waiting(C, IMG[C]),
            phase="Failed",
            reason="Evicted",
        ),
        Want(
            "Error",
            "PodDeleted",
            seq("succeeded", "failed", "skipped"),
            events=["StepFailed", "Error"],
            message="the pod ended underneath the run (Evicted)",
        ),
    ),
    Row(
        "pod-ended-before-its-steps-did",
        "seq",
        lambda p: ps.pod(p, ok(A), up(B), up(C), phase="Failed"),
        Want(
            "Error",
            "PodDeleted",
            seq("succeeded", "failed", "skipped"),
            events=["StepFailed", "Error"],
            message="the pod ended before the run finished (Failed)",
        ),
    ),
    Row(
        "pod-being-deleted-while-running",
        "seq",
        lambda p: ps.pod(p, ok(A), up(B), up(C), deleting=True),
        Want(
            "Error",
            "PodDeleted",
            seq("succeeded", "failed", "skipped"),
            events=["StepFailed", "Error"],
            message="was deleted",
        ),
    ),
    Row(
        "pod-being-deleted-after-the-run-ended",
        "seq",
        lambda p: ps.pod(p, ok(A), ok(B), ok(C), deleting=True, phase="Succeeded"),
        Want("Succeeded", "Succeeded", events=["Succeeded"]),
    ),
]


@pytest.mark.parametrize("row", [pytest.param(r, id=r.desc) for r in ROWS])
def test_decision(row: Row) -> None:
    plan = PLANS[row.plan]
    snap = snapshot(plan, row.pod(plan), now=row.now, cancel=row.cancel)
    decision = scheduling.decide(snap)
    status, want = decision.status, row.want
    assert (str(status.phase), status.reason) == (want.phase, want.reason or status.reason), status.message
    if want.steps is not None:
        assert states(decision) == want.steps
    assert stand_ins_of(decision) == {**want.stand_ins, **want.notes}
    assert swaps_of(decision) == {name: RUNNER for name in want.stand_ins}
    assert stop_of(decision) == want.stop
    assert event_reasons(decision) == want.events
    if want.requeue is not ANY:
        assert decision.requeue_after == want.requeue
    for name, reason in want.step_reasons.items():
        assert step_status(decision, name).reason == reason, step_status(decision, name)
    if want.message is not None:
        assert status.message is not None and want.message in status.message, status.message
    check_invariants(snap, decision)


def test_the_table_is_large() -> None:
    assert len(ROWS) >= 80
    assert len({r.desc for r in ROWS}) == len(ROWS)


# --- Reading steps: results, times, the current step --------------------------------------------------------------


def test_result_times_are_shown_in_rfc3339_with_milliseconds() -> None:
    plan = PLANS["seq"]
    decision = scheduling.decide(
        snapshot(plan, ps.pod(plan, ok(A, started=1.234, finished=5.5), up(B), up(C)))
    )
    a, b, c = decision.status.steps
    assert (a.started_at, a.finished_at, a.exit_code) == (
        "2024-05-01T12:00:01.234Z",
        "2024-05-01T12:00:05.500Z",
        0,
    )
    # A running step started when its turn came: when the step before it finished.
    assert (b.state, b.started_at, b.finished_at) == ("running", "2024-05-01T12:00:05.500Z", None)
    assert (c.state, c.started_at) == ("waiting", None)


def test_a_skipped_result_has_no_start_and_says_why() -> None:
    plan = PLANS["on-failure"]
    why = "Skipped: the run is not failing and the step runs only on failure."
    pod = ps.pod(plan, ok(A), ok(B), skipped(C, IMG[C], message=why, finished=3), up(D))
    c = step_status(scheduling.decide(snapshot(plan, pod)), "c")
    assert (c.state, c.exit_code, c.started_at, c.finished_at, c.reason, c.message) == (
        "skipped",
        None,
        None,
        ps.ms_ts(3),
        "Skipped",
        why,
    )


@pytest.mark.parametrize(
    ("desc", "statuses_", "want"),
    [
        (
            "a-failure-with-its-exit-code",
            [bad(A, 3, message="The command exited with code 3.")],
            ("failed", 3, None, "The command exited with code 3."),
        ),
        (
            "a-timeout",
            [bad(A, 143, reason="StepTimeout", message="The step timed out after 1m0s and was stopped.")],
            ("failed", 143, "StepTimeout", "The step timed out after 1m0s and was stopped."),
        ),
        (
            "oom-killed-with-a-result",
            [bad(A, 137, kubelet_reason="OOMKilled")],
            ("failed", 137, "OOMKilled", "the step ran out of memory (its memory limit)"),
        ),
        (
            "no-result-the-kubelet-says-why",
            [crashed(A, IMG[A])],
            ("failed", 128, "StartError", ps.START_ERROR),
        ),
        ("exit-78-is-a-success", [ok(A, code=78)], ("succeeded", 78, None, None)),
    ],
)
def test_how_a_step_ended(
    desc: str, statuses_: list[ps.Status], want: tuple[str, int | None, str | None, str | None]
) -> None:
    plan = PLANS["one"]
    a = step_status(scheduling.decide(snapshot(plan, ps.pod(plan, *statuses_))), "a")
    assert (a.state, a.exit_code, a.reason, a.message) == want


def test_current_step_names_every_running_step() -> None:
    plan = PLANS["parallel"]
    both = scheduling.decide(snapshot(plan, ps.pod(plan, up(A), up(B), up(C), up(D))))
    assert (both.status.current_step, both.status.message) == ("a, b", "running a, b")
    one = scheduling.decide(
        snapshot(plan, ps.pod(plan, ok(A), ok(B), up(C), ok(D)), status=both.status.to_patch())
    )
    assert one.status.current_step == "c"
    between = scheduling.decide(snapshot(plan, ps.pod(plan, ok(A), waiting(B, IMG[B]), up(C), ok(D))))
    assert (between.status.current_step, between.status.message) == (None, "starting the next step")


def test_an_excluded_step_says_why_it_was_skipped() -> None:
    plan = PLANS["excluded"]
    pod = ps.pod(plan, ok(A), skipped(B, RUNNER, message="Skipped: its when conditions do not match."), up(C))
    b = step_status(scheduling.decide(snapshot(plan, pod)), "b")
    assert (b.state, b.reason, b.message) == ("skipped", "Skipped", "when: conditions do not match the build")


def test_services_are_reported_but_do_not_decide() -> None:
    plan = PLANS["services"]
    pod = ps.pod(plan, ps.service_exited("svc-db", "postgres:16", 1), up(A), up(B))
    decision = scheduling.decide(snapshot(plan, pod))
    (db,) = decision.status.services
    assert (db.name, db.container, db.state, db.exit_code) == ("db", "svc-db", "failed", 1)
    assert decision.status.phase == "Running" and decision.pod_patch is None


# --- Images that cannot be pulled: what the stand-in records, and what the status says ---------------------------

HINT = (
    "check the image name, the step's pull setting (imagePullPolicy IfNotPresent) and the Pipeline's "
    "image_pull_secrets"
)


@pytest.mark.parametrize(
    ("desc", "reason", "message", "now", "want"),
    [
        ("not-found", "ErrImagePull", ps.NOT_FOUND, 2, f"{ps.NOT_FOUND}; {HINT}"),
        ("unauthorized", "ErrImagePull", ps.UNAUTHORIZED, 2, f"{ps.UNAUTHORIZED}; {HINT}"),
        ("never-pull", "ErrImageNeverPull", ps.NEVER_PULL, 2, f"{ps.NEVER_PULL}; {HINT}"),
        (
            "transient-past-the-pull-timeout",
            "ErrImagePull",
            ps.REFUSED,
            300,
            f"image alpine:3.19 could not be pulled in 300s (ErrImagePull: {ps.REFUSED}); {HINT}",
        ),
    ],
)
def test_a_stand_in_records_why_and_the_status_keeps_it_to_the_end(
    desc: str, reason: str, message: str, now: float, want: str
) -> None:
    plan = PLANS["seq"]
    pulling = ps.pod(plan, waiting(A, IMG[A], reason, message), up(B), up(C))
    first = scheduling.decide(snapshot(plan, pulling, now=now))
    assert first.pod_patch == {
        "metadata": {
            "annotations": {"killed.podline.dev/step-a": pods.failure_note(reason, want)},
            "resourceVersion": "100",
        },
        "spec": {"containers": [{"name": A, "image": RUNNER}]},
    }
    swapped = ps.apply_patch(pulling, first.pod_patch)
    notes = swapped["metadata"]["annotations"]
    # The kubelet runs the runner image in its place, which records the failure in the step's turn.
    stages = [
        ps.pod(plan, entry(A, RUNNER), up(B), up(C), notes=notes),
        ps.pod(plan, ps.stand_in_result(A, at_=now + 1), up(B), up(C), notes=notes),
        ps.pod(plan, ps.stand_in_result(A, at_=now + 1), skip(B), skip(C), notes=notes, phase="Failed"),
    ]
    status = first.status.to_patch()
    seen: list[statuses.StepStatus] = []
    for n, stage in enumerate(stages):
        decision = scheduling.decide(snapshot(plan, stage, now=now + 2 + n, status=status))
        assert decision.pod_patch is None
        seen.append(step_status(decision, "a"))
        status = decision.status.to_patch()
    assert [(s.state, s.reason, s.message) for s in seen] == [
        ("waiting", reason, want),
        ("failed", reason, want),
        ("failed", reason, want),
    ]
    final = statuses.PipelineStatus.model_validate(status)
    assert (final.phase, final.reason, final.message) == (
        "Failed",
        "StepFailed",
        'step "a" failed (exit code 1)',
    )


@pytest.mark.parametrize(
    ("reason", "message", "want"),
    [
        ("ErrImagePull", ps.NOT_FOUND, "permanent"),
        ("ErrImagePull", ps.UNAUTHORIZED, "permanent"),
        ("ErrImagePull", ps.DENIED, "permanent"),
        ("ErrImagePull", 'failed to resolve reference "r.io/a:1": r.io/a:1: manifest unknown', "permanent"),
        (
            "ErrImagePull",
            (
                'failed to resolve reference "r.io/a:1": unexpected status from HEAD request to '
                "https://r.io/v2/a/manifests/1: 403 Forbidden"
            ),
            "permanent",
        ),
        ("ImagePullBackOff", f"{ps.BACKOFF}: ErrImagePull: {ps.NOT_FOUND}", "permanent"),
        ("ErrImageNeverPull", ps.NEVER_PULL, "permanent"),
        ("InvalidImageName", ps.INVALID_NAME, "permanent"),
        ("CreateContainerConfigError", 'secret "tok" not found', "permanent"),
        ("ErrImagePull", ps.REFUSED, "transient"),
        (
            "ErrImagePull",
            (
                'failed to do request: Head "https://r.io/v2/a/manifests/1": dial tcp: lookup r.io on '
                "10.96.0.10:53: no such host"
            ),
            "transient",
        ),
        (
            "ErrImagePull",
            (
                "failed to copy: httpReadSeeker: failed open: unexpected status code "
                "https://r.io/v2/a/blobs/sha256:aa: 429 Too Many Requests - toomanyrequests"
            ),
            "transient",
        ),
        ("ErrImagePull", "failed to copy: read tcp 10.0.0.5:4431->10.0.0.9:443: i/o timeout", "transient"),
        ("ImagePullBackOff", ps.BACKOFF, "transient"),
        ("RegistryUnavailable", "registry unavailable", "transient"),
        ("ContainerCreating", "", None),
    ],
)
def test_which_pull_errors_no_retry_heals(reason: str, message: str, want: str | None) -> None:
    plan = PLANS["one"]
    view = observing.view_steps(plan, ps.pod(plan, waiting(A, IMG[A], reason, message)))[A]
    assert observing.pull_failure(view) == want


def test_a_transient_pull_error_waits_for_the_later_of_its_turn_and_the_pod_start() -> None:
    plan = PLANS["seq"]
    late = ps.pod(plan, ok(A, finished=5), waiting(B, IMG[B], "ErrImagePull", ps.REFUSED), up(C), start=40)
    assert (
        scheduling.decide(snapshot(plan, late, now=100)).requeue_after == 240
    )  # from the pod's start at 40 s
    early = ps.pod(plan, ok(A, finished=60), waiting(B, IMG[B], "ErrImagePull", ps.REFUSED), up(C), start=40)
    assert scheduling.decide(snapshot(plan, early, now=100)).requeue_after == 260  # from a's end at 60 s


def test_a_config_error_says_which_secret_to_check_and_reads_the_same_once_the_pod_is_stopped() -> None:
    plan = PLANS["seq"]
    pod = ps.pod(
        plan,
        waiting(A, IMG[A], "CreateContainerConfigError", "couldn't find key token in Secret ci/tok"),
        up(B),
        up(C),
    )
    first = scheduling.decide(snapshot(plan, pod))
    message = "couldn't find key token in Secret ci/tok; check the Secrets named by from_secret"
    assert first.pod_patch == {
        "metadata": {
            "annotations": {
                "killed.podline.dev/step-a": pods.failure_note("CreateContainerConfigError", message),
                "podline.dev/stopped": "StepFailed",
            },
            "resourceVersion": "100",
        },
        "spec": {"activeDeadlineSeconds": 1},
    }
    notes = ps.apply_patch(pod, first.pod_patch)["metadata"]["annotations"]
    after = ps.pod(
        plan,
        ps.lost(A, IMG[A]),
        ps.stopped_waiting(B, IMG[B]),
        ps.stopped_waiting(C, IMG[C]),
        notes=notes,
        **DEADLINE,
    )
    later = scheduling.decide(snapshot(plan, after, now=20, status=first.status.to_patch()))
    assert later.events == () and later.pod_patch is None
    assert (later.status.phase, later.status.message) == ("Failed", f'step "a" cannot start: {message}')
    assert [(s.state, s.reason) for s in later.status.steps] == [
        ("failed", "CreateContainerConfigError"),
        ("skipped", "Stopped"),
        ("skipped", "Stopped"),
    ]


# --- Creating the pod ------------------------------------------------------------------------------------------------


def pod_of(decision: scheduling.Decision) -> Manifest:
    (pod,) = [m for m in decision.create if m["kind"] == "Pod"]
    return pod


def containers_of(pod: Manifest) -> dict[str, Manifest]:
    return {c["name"]: c for c in pod["spec"]["containers"]}


PLUGIN = {"name": "publish", "image": "plugins/docker", "settings": {"repo": "x"}}
CONFIGS: dict[str, Any] = {"plugins/docker": ps.Config(entrypoint=("/bin/drone-docker",), cmd=("--debug",))}


def test_the_pod_runs_every_container_on_its_own_image_from_its_creation() -> None:
    plan = PLANS["services"]
    decision = scheduling.decide(snapshot(plan, None, now=0))
    assert (decision.status.phase, decision.status.reason) == ("Pending", "Creating")
    assert decision.pod_patch is None
    got = containers_of(pod_of(decision))
    assert list(got) == [stepping.PREPARE_CONTAINER, "svc-db", A, B]
    assert {n: c["image"] for n, c in got.items()} == {
        stepping.PREPARE_CONTAINER: RUNNER,
        "svc-db": "postgres:16",
        A: IMG[A],
        B: IMG[B],
    }
    for c in plan.steps:
        assert got[c.name]["command"] == [stepping.BINARY]
        assert got[c.name]["args"] == stepping.args_for(plan, c, c.command or ())
    assert "command" not in got["svc-db"] and "args" not in got["svc-db"]
    assert all(s.state == "waiting" for s in decision.status.steps)


@pytest.mark.parametrize(
    ("desc", "plan", "container", "want"),
    [
        (
            "first-step-waits-for-nothing",
            PLANS["seq"],
            A,
            stepping.StepArgs(A, command=("/bin/sh", "-c", compiling.script(["echo a"]))),
        ),
        (
            "a-step-waits-for-the-one-before",
            PLANS["seq"],
            B,
            stepping.StepArgs(B, after=(A,), command=("/bin/sh", "-c", compiling.script(["echo b"]))),
        ),
        ("a-join-waits-for-both", PLANS["parallel"], C, stepping.StepArgs(C, after=(A, B))),
        (
            "a-detached-dependency-is-waited-for-until-it-starts",
            PLANS["detach"],
            B,
            stepping.StepArgs(B, after=(A,), detached=(A,)),
        ),
        ("a-detached-step", PLANS["detach"], A, stepping.StepArgs(A, detach=True)),
        ("failure-ignore", PLANS["ignore"], A, stepping.StepArgs(A, ignore_failure=True)),
        (
            "on-failure-only",
            PLANS["on-failure"],
            C,
            stepping.StepArgs(C, after=(B,), on_success=False, on_failure=True),
        ),
        ("on-success-and-failure", PLANS["on-failure"], D, stepping.StepArgs(D, after=(C,), on_failure=True)),
        ("excluded-runs-nothing", PLANS["excluded"], B, stepping.StepArgs(B, after=(A,), excluded=True)),
        (
            "the-step-timeout",
            compile_(step("a"), policy=dataclasses.replace(POLICY, step_timeout_seconds=60)),
            A,
            stepping.StepArgs(A, timeout_seconds=60),
        ),
        (
            "a-plugin-runs-its-image's-entrypoint-and-cmd",
            compile_(PLUGIN),
            "step-publish",
            stepping.StepArgs("step-publish", command=("/bin/drone-docker", "--debug")),
        ),
        (
            "command-alone-replaces-the-image's-cmd",
            compile_({**PLUGIN, "command": ["--dry-run"]}),
            "step-publish",
            stepping.StepArgs("step-publish", command=("/bin/drone-docker", "--dry-run")),
        ),
        (
            "entrypoint-replaces-the-image's",
            compile_({**PLUGIN, "entrypoint": ["/bin/x"], "command": ["y"]}),
            "step-publish",
            stepping.StepArgs("step-publish", command=("/bin/x", "y")),
        ),
    ],
)
def test_each_step_is_told_when_to_run(
    desc: str, plan: plans.RunPlan, container: str, want: stepping.StepArgs
) -> None:
    pod = pod_of(scheduling.decide(snapshot(plan, None, now=0, image_configs=CONFIGS)))
    got = stepping.parse_args(containers_of(pod)[container]["args"])
    limit = stepping.message_limit(len(pod["spec"]["containers"]))
    compare = [
        "name",
        "after",
        "detached",
        "on_success",
        "on_failure",
        "ignore_failure",
        "detach",
        "excluded",
        "timeout_seconds",
    ] + (["command"] if want.command else [])
    assert {k: getattr(got, k) for k in compare} == {k: getattr(want, k) for k in compare}
    assert got.message_limit == limit


def test_an_excluded_step_runs_the_runner_image_and_needs_no_image_config() -> None:
    plan = compile_(step("a"), {**PLUGIN, "when": {"branch": "release/*"}}, build={"branch": "main"})
    assert plan.needs_image_config() == ()
    got = containers_of(pod_of(scheduling.decide(snapshot(plan, None, now=0))))["step-publish"]
    assert got["image"] == RUNNER
    assert got["args"][-1] == "--"


def test_a_step_without_a_command_of_its_own_needs_its_image_config() -> None:
    plan = compile_(step("a"), PLUGIN)
    assert plan.needs_image_config() == ("plugins/docker",)
    with pytest.raises(ValueError, match="image config of plugins/docker"):
        scheduling.decide(snapshot(plan, None, now=0))


@pytest.mark.parametrize(
    ("desc", "config", "want"),
    [
        (
            "the-registry-would-not-tell",
            errors.ImageConfigUnavailable.at("", "image plugins/docker: 401 Unauthorized"),
            (
                'step "publish": its command comes from its image, and image plugins/docker: 401 Unauthorized; '
                "set commands: or entrypoint: on the step"
            ),
        ),
        (
            "the-registrys-certificate-is-not-trusted",
            registries.untrusted(
                "plugins/docker", "registry.corp:5000", 20, "unable to get local issuer certificate"
            ),
            (
                'step "publish": its command comes from its image, and cannot read the config of image '
                '"plugins/docker": untrusted TLS certificate: registry.corp:5000: its certificate is not signed by '
                "a CA the operator trusts (unable to get local issuer certificate); if the registry uses a private "
                "CA, give the operator that CA's certificate in PODLINE_REGISTRY_CA_FILE (a PEM file; Helm: "
                "operator.registryCA); set commands: or entrypoint: on the step"
            ),
        ),
        (
            "the-image-names-no-command",
            ps.Config(),
            (
                'step "publish": its command comes from its image, and image plugins/docker names no ENTRYPOINT or CMD; '
                "set commands: or entrypoint: on the step"
            ),
        ),
    ],
)
def test_an_image_config_that_gives_no_command_fails_the_run_before_any_pod(
    desc: str, config: Any, want: str
) -> None:
    plan = compile_(step("a"), PLUGIN, image_pull_secrets=["dockerconfig"])
    snap = snapshot(
        plan, None, now=0, image_configs={"plugins/docker": config}, credentials=auths_convert(CONFIG)
    )
    decision = scheduling.decide(snap)
    assert decision.create == ()
    status = decision.status
    assert (status.phase, status.reason, status.message) == ("Failed", "ImageConfigUnavailable", want)
    assert event_reasons(decision) == ["Failed"]
    again = scheduling.decide(dataclasses.replace(snap, status=status.to_patch(), now=ps.at(5)))
    assert again.status == status and again.events == () and again.create == ()


CONFIG = b'{"auths": {"registry.example.com": {"username": "u", "password": "p"}}}'


def auths_convert(config: bytes) -> auths.Credentials:
    return auths.convert([auths.SourceSecret("dockerconfig", "Opaque", {"config.json": config})])


def test_creating_a_run_with_pull_secrets_creates_the_secret_first() -> None:
    plan = PLANS["private"]
    decision = scheduling.decide(snapshot(plan, None, now=0, credentials=auths_convert(CONFIG)))
    assert [m["kind"] for m in decision.create] == ["Secret", "Pod"]
    secret, pod = decision.create
    assert pod["spec"]["imagePullSecrets"] == [{"name": secret["metadata"]["name"]}]
    assert decision.status.phase == "Pending"


def test_credential_warnings_reach_the_status() -> None:
    plan = PLANS["private"]
    credentials = auths_convert(
        b'{"auths": {"registry.example.com": {"username": "u", "password": "p"}, "ghcr.io": {}}}'
    )
    assert credentials.warnings
    decision = scheduling.decide(snapshot(plan, None, now=0, credentials=credentials))
    assert list(credentials.warnings) == [w for w in decision.status.warnings if w in credentials.warnings]


def test_a_plan_with_pull_secrets_needs_credentials() -> None:
    with pytest.raises(ValueError, match="credentials are needed"):
        scheduling.decide(snapshot(PLANS["private"], None, now=0, credentials=None))


def test_the_created_pod_once_observed_is_not_created_or_patched_again() -> None:
    plan = PLANS["seq"]
    created = scheduling.decide(snapshot(plan, None, now=0))
    pod = pod_of(created)
    observed = dict(
        pod,
        metadata={**pod["metadata"], "resourceVersion": "1", "creationTimestamp": ps.ts(0)},
        status={"phase": "Pending"},
    )
    snap = snapshot(plan, observed, now=1, status=created.status.to_patch())
    again = scheduling.decide(snap)
    assert again.create == () and again.pod_patch is None
    assert (again.status.phase, again.status.pod_name) == ("Running", plan.pod_name)
    check_invariants(snap, again)


NO_POD = [
    ("queued", PLANS["seq"], {"may_start": False}, "Pending", "Queued", "waiting for a free run slot"),
    (
        "cancelled-before-start",
        PLANS["seq"],
        {"cancel": True},
        "Cancelled",
        "Cancelled",
        "cancelled before it started",
    ),
    (
        "not-triggered",
        compile_(step("a"), trigger={"branch": "release/*"}, build={"branch": "main"}),
        {},
        "Succeeded",
        "NotTriggered",
        "trigger does not match the build",
    ),
    (
        "pull-secret-missing",
        PLANS["private"],
        {
            "credentials": errors.MissingSecret(
                [
                    errors.Problem(
                        "spec.image_pull_secrets[0]", 'Secret "dockerconfig" not found in namespace "ci"'
                    )
                ]
            )
        },
        "Failed",
        "PullSecretError",
        'spec.image_pull_secrets[0]: Secret "dockerconfig" not found in namespace "ci"',
    ),
    (
        "pull-secret-malformed",
        PLANS["private"],
        {
            "credentials": errors.BadRegistryAuth(
                [
                    errors.Problem(
                        'image_pull_secrets[0] (secret "dockerconfig")', 'registry "x.io": auth is not base64'
                    )
                ]
            )
        },
        "Failed",
        "PullSecretError",
        'image_pull_secrets[0] (secret "dockerconfig"): registry "x.io": auth is not base64',
    ),
]


@pytest.mark.parametrize(
    ("plan", "kwargs", "phase", "reason", "message"),
    [pytest.param(p, k, ph, r, m, id=i) for i, p, k, ph, r, m in NO_POD],
)
def test_no_pod_is_created(
    plan: plans.RunPlan, kwargs: dict[str, Any], phase: str, reason: str, message: str
) -> None:
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
    assert queued.status.pod_name == plan.pod_name and queued.status.reason == "Queued"
    created = scheduling.decide(snapshot(plan, None, now=50, may_start=True, status=queued.status.to_patch()))
    assert [m["kind"] for m in created.create] == ["Pod"]
    assert created.status.reason == "Creating"
    assert created.status.start_time == queued.status.start_time


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        pytest.param(
            errors.InvalidPipeline(
                [
                    errors.Problem("spec.steps[2].depends_on", 'unknown step "tset"'),
                    errors.Problem("spec.steps[0].image", 'invalid reference "Golang"'),
                ]
            ),
            "Invalid",
            id="invalid",
        ),
        pytest.param(
            errors.PolicyViolation.at("spec.steps[0].privileged", "privileged steps are not allowed"),
            "Invalid",
            id="policy",
        ),
        pytest.param(
            errors.MissingSecret.at("spec.image_pull_secrets[0]", 'Secret "x" not found'),
            "PullSecretError",
            id="missing-secret",
        ),
    ],
)
def test_a_plan_that_cannot_be_compiled_fails_the_run_naming_the_field(
    error: errors.PodlineError, reason: str
) -> None:
    snap = snapshot(error, None, now=0)
    decision = scheduling.decide(snap)
    assert decision.create == () and decision.pod_patch is None
    status = decision.status
    assert (status.phase, status.reason, status.message) == ("Failed", reason, "\n".join(error.lines()))
    assert event_reasons(decision) == ["Failed"]
    assert {c.type: c.status for c in status.conditions} == {
        "Ready": "False",
        "Succeeded": "False",
        "Reconciling": "False",
        "Stalled": "True",
    }
    again = scheduling.decide(dataclasses.replace(snap, status=status.to_patch(), now=ps.at(100)))
    assert again.status == status and again.events == ()


# --- The pod gone ----------------------------------------------------------------------------------------------------


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


def test_a_pod_removed_after_the_run_ended_changes_nothing() -> None:
    plan = PLANS["seq"]
    done = scheduling.decide(snapshot(plan, ps.pod(plan, ok(A), ok(B), ok(C))))
    assert done.status.phase == "Succeeded"
    later = scheduling.decide(snapshot(plan, None, now=5000, status=done.status.to_patch()))
    assert later.status == done.status and later.events == () and later.create == ()


# --- Spec changes: a new run replaces the old one ----------------------------------------------------------------


def old_pod(run: str, *, created: float, phase: str = "Running", notes: ps.Notes | None = None) -> Manifest:
    return ps.pod(PLANS["seq"], name=f"demo-{run}", created=created, phase=phase, notes=notes)


def test_a_spec_change_stops_the_old_run_and_records_it_in_history() -> None:
    old_plan = PLANS["seq"]
    new_plan = compiling.compile_spec(
        {"steps": [step("a")]}, dataclasses.replace(CONTEXT, generation=2), POLICY
    )
    snap = scheduling.Snapshot(
        plan=new_plan,
        pod=None,
        now=ps.at(100),
        generation=2,
        run=new_plan.run,
        status=running_status(old_plan),
        other_pods=[old_pod("g1", created=0)],
    )
    decision = scheduling.decide(snap)
    assert decision.other_patches == (
        (
            "demo-g1",
            {
                "metadata": {"annotations": {"podline.dev/stopped": "Superseded"}},
                "spec": {"activeDeadlineSeconds": 1},
            },
        ),
    )
    assert decision.delete_pods == ()
    assert [m["metadata"]["name"] for m in decision.create] == ["demo-g2"]
    status = decision.status
    assert (status.run, status.observed_generation, status.phase, status.pod_name) == (
        "g2",
        2,
        "Pending",
        "demo-g2",
    )
    assert status.history == [
        {"run": "g1", "phase": "Superseded", "podName": "demo-g1", "completionTime": ps.ts(100)}
    ]
    assert [s.name for s in status.steps] == ["a"]
    assert status.start_time == ps.ts(100)
    assert event_reasons(decision) == []


def test_a_superseded_pod_reads_back_as_superseded() -> None:
    plan = PLANS["seq"]
    pod = ps.pod(
        plan,
        ok(A),
        ps.stopped_running(B, IMG[B]),
        ps.stopped_waiting(C, IMG[C]),
        notes=stopped("Superseded"),
        **DEADLINE,
    )
    decision = scheduling.decide(snapshot(plan, pod))
    assert (decision.status.phase, decision.status.reason) == ("Cancelled", "Superseded")
    assert decision.pod_patch is None


def test_a_finished_run_keeps_its_phase_in_history() -> None:
    old_plan = PLANS["seq"]
    new_plan = compiling.compile_spec(
        {"steps": [step("a")]}, dataclasses.replace(CONTEXT, rerun="again"), POLICY
    )
    previous = running_status(old_plan, phase=statuses.Phase.FAILED, completion_time=ps.ts(50))
    snap = scheduling.Snapshot(
        plan=new_plan,
        pod=None,
        now=ps.at(100),
        generation=1,
        run=new_plan.run,
        status=previous,
        other_pods=[old_pod("g1", created=0, phase="Failed")],
    )
    decision = scheduling.decide(snap)
    assert decision.other_patches == ()  # nothing to stop
    assert decision.status.history == [
        {"run": "g1", "phase": "Failed", "podName": "demo-g1", "completionTime": ps.ts(50)}
    ]


def test_old_pods_beyond_the_history_limit_are_deleted_oldest_first() -> None:
    plan = PLANS["seq"]
    others = [old_pod(f"g0-r{i}", created=i, phase="Succeeded") for i in range(6)]
    others.append(old_pod("g0-stopped", created=10, notes=ps.stopped("Superseded")))
    decision = scheduling.decide(snapshot(plan, None, now=100, other_pods=others[::-1], history_limit=3))
    assert decision.other_patches == ()  # finished or already stopped
    assert set(decision.delete_pods) == {"demo-g0-r0", "demo-g0-r1", "demo-g0-r2", "demo-g0-r3"}


def test_with_an_archive_old_pods_are_deleted_only_once_archived_or_waited_for() -> None:
    """The archive (``records.must_keep``): a pod beyond the history limit stays until the archiver marked it
    ``podline.dev/archived``, or ``archive_wait_seconds`` after its run ended (the store is down: bounded)."""
    plan = PLANS["seq"]
    archived = records.archived_patch(ps.at(5))["metadata"]["annotations"]
    others = [
        old_pod("g0-r0", created=0, phase="Succeeded", notes=archived),
        old_pod("g0-r1", created=1, phase="Succeeded"),
        old_pod("g0-r2", created=2, phase="Succeeded"),
    ]
    kept = scheduling.decide(snapshot(plan, None, now=100, other_pods=others, history_limit=0,
                                      archive_wait_seconds=3600))  # fmt: skip
    assert set(kept.delete_pods) == {"demo-g0-r0"}
    late = scheduling.decide(snapshot(plan, None, now=4000, other_pods=others, history_limit=0,
                                      archive_wait_seconds=3600))  # fmt: skip
    assert set(late.delete_pods) == {"demo-g0-r0", "demo-g0-r1", "demo-g0-r2"}
    off = scheduling.decide(snapshot(plan, None, now=100, other_pods=others, history_limit=0))
    assert set(off.delete_pods) == {"demo-g0-r0", "demo-g0-r1", "demo-g0-r2"}


def test_history_is_bounded_and_newest_first() -> None:
    plan = PLANS["seq"]
    history = [{"run": f"g0-r{i}", "phase": "Succeeded"} for i in range(scheduling.HISTORY_LIMIT)]
    other = compiling.compile_spec({"steps": [step("a")]}, dataclasses.replace(CONTEXT, rerun="x"), POLICY)
    decision = scheduling.decide(snapshot(plan, None, now=100, status=running_status(other, history=history)))
    assert len(decision.status.history) == scheduling.HISTORY_LIMIT
    assert decision.status.history[0]["phase"] == "Superseded"
    assert decision.status.history[1:] == history[:-1]


def test_an_unchanged_pod_does_nothing_new() -> None:
    plan = PLANS["seq"]
    pod = ps.pod(plan, up(A), up(B), up(C))
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


@pytest.mark.parametrize("row", [pytest.param(r, id=r.desc) for r in ROWS])
def test_conditions_follow_the_phase(row: Row) -> None:
    plan = PLANS[row.plan]
    decision = scheduling.decide(snapshot(plan, row.pod(plan), now=row.now, cancel=row.cancel))
    status = decision.status
    assert {c.type: c.status for c in status.conditions} == CONDITIONS[str(status.phase)]
    assert all(
        (c.reason, c.message, c.observed_generation) == (status.reason, status.message, 1)
        for c in status.conditions
    )


def test_conditions_keep_their_transition_time_while_unchanged() -> None:
    plan = PLANS["seq"]
    created = scheduling.decide(snapshot(plan, None, now=0))
    running_ = scheduling.decide(
        snapshot(plan, ps.pod(plan, up(A), up(B), up(C)), now=5, status=created.status.to_patch())
    )
    later = scheduling.decide(
        snapshot(plan, ps.pod(plan, ok(A), up(B), up(C)), now=50, status=running_.status.to_patch())
    )
    times = {c.type: c.last_transition_time for c in later.status.conditions}
    assert times == {"Ready": ps.ts(0), "Succeeded": ps.ts(0), "Reconciling": ps.ts(0), "Stalled": ps.ts(0)}
    done = scheduling.decide(
        snapshot(plan, ps.pod(plan, ok(A), ok(B), ok(C)), now=90, status=later.status.to_patch())
    )
    times = {c.type: c.last_transition_time for c in done.status.conditions}
    assert times == {
        "Ready": ps.ts(90),
        "Succeeded": ps.ts(90),
        "Reconciling": ps.ts(90),
        "Stalled": ps.ts(0),
    }
    assert done.status.completion_time == ps.ts(90)
    after = scheduling.decide(
        snapshot(
            plan, ps.pod(plan, ok(A), ok(B), ok(C), phase="Succeeded"), now=200, status=done.status.to_patch()
        )
    )
    assert after.status == done.status and after.events == ()


# --- Stories: decisions, one after another, as the pod moves ----------------------------------------------------


def test_story_events_are_emitted_once_per_transition() -> None:
    plan = PLANS["one"]
    created = scheduling.decide(snapshot(plan, None, now=0))
    assert event_reasons(created) == []
    history: list[scheduling.Event] = []
    status = created.status.to_patch()
    for now, pod in [
        (1, ps.pod(plan, waiting(A, IMG[A]), prepare=ps.prepare_running(), phase="Pending")),
        (2, ps.pod(plan, up(A))),
        (3, ps.pod(plan, up(A))),
        (9, ps.pod(plan, bad(A, 3))),
        (10, ps.pod(plan, bad(A, 3), phase="Failed")),
    ]:
        decision = scheduling.decide(snapshot(plan, pod, now=now, status=status))
        history += decision.events
        status = decision.status.to_patch()
    assert [(e.type, e.reason, e.message) for e in history] == [
        ("Normal", "Started", "run g1 started in pod demo-g1"),
        ("Warning", "StepFailed", 'step "a" failed (exit code 3)'),
        ("Warning", "Failed", 'run g1 failed: step "a" failed (exit code 3)'),
    ]


def test_story_a_run_first_seen_over_after_an_operator_restart_still_says_it_started() -> None:
    plan = PLANS["seq"]
    created = scheduling.decide(snapshot(plan, None, now=0))
    decision = scheduling.decide(
        snapshot(
            plan,
            ps.pod(plan, ok(A), ok(B), ok(C), phase="Succeeded"),
            now=600,
            status=created.status.to_patch(),
        )
    )
    assert event_reasons(decision) == ["Started", "Succeeded"]
    assert decision.status.start_time == ps.ts(0) and decision.status.completion_time == ps.ts(600)


def test_story_dag_a_ok_b_fails_later_c_on_failure_stays_skipped() -> None:
    plan = PLANS["dag"]  # a; b after a; c after a, on failure only; d after b
    created = scheduling.decide(snapshot(plan, None, now=0))
    status = created.status.to_patch()
    seen: list[dict[str, str]] = []
    for now, pod in [
        (5, ps.pod(plan, up(A), up(B), up(C), up(D))),
        (10, ps.pod(plan, ok(A, finished=9), up(B), skip(C, finished=9), up(D))),
        (21, ps.pod(plan, ok(A, finished=9), bad(B, started=9, finished=20), skip(C, finished=9), up(D))),
        (
            22,
            ps.pod(
                plan,
                ok(A, finished=9),
                bad(B, started=9, finished=20),
                skip(C, finished=9),
                skip(D, finished=21),
                phase="Failed",
            ),
        ),
    ]:
        decision = scheduling.decide(snapshot(plan, pod, now=now, status=status))
        assert decision.pod_patch is None  # the pod sequences itself: nothing to patch
        seen.append(states(decision))
        status = decision.status.to_patch()
    assert seen == [
        {"a": "running", "b": "waiting", "c": "waiting", "d": "waiting"},
        {"a": "succeeded", "b": "running", "c": "skipped", "d": "waiting"},
        {"a": "succeeded", "b": "failed", "c": "skipped", "d": "waiting"},  # d is skipping itself
        {"a": "succeeded", "b": "failed", "c": "skipped", "d": "skipped"},
    ]
    final = statuses.PipelineStatus.model_validate(status)
    assert (final.phase, final.reason, final.message) == (
        "Failed",
        "StepFailed",
        'step "b" failed (exit code 1)',
    )


def test_a_stop_that_catches_a_step_skipping_itself_reads_it_skipped_like_the_waiting_ones() -> None:
    """b's turn came after a failed, so its entrypoint is skipping it, but its container still runs: a stop at
    that moment reads it skipped, as the steps still waiting, never failed (Stopped) as a running step would;
    once the pod has stopped, the status says why (Stopped)."""
    plan = PLANS["seq"]
    cancelled = scheduling.decide(snapshot(plan, ps.pod(plan, bad(A), up(B), up(C)), cancel=True))
    assert [(s.state, s.reason) for s in cancelled.status.steps] == [
        ("failed", None),
        ("skipped", None),
        ("skipped", None),
    ]
    running = scheduling.decide(snapshot(plan, ps.pod(plan, ok(A), up(B), up(C)), cancel=True))
    assert (step_status(running, "b").state, step_status(running, "b").reason) == ("failed", "Stopped")
    notes = ps.apply_patch(ps.pod(plan), cancelled.pod_patch)["metadata"]["annotations"]
    after = ps.pod(
        plan, bad(A), ps.stopped_waiting(B, IMG[B]), ps.stopped_waiting(C, IMG[C]), notes=notes, **DEADLINE
    )
    later = scheduling.decide(snapshot(plan, after, now=12, cancel=True, status=cancelled.status.to_patch()))
    assert (later.status.phase, later.events) == ("Cancelled", ())
    assert [(s.state, s.reason) for s in later.status.steps] == [
        ("failed", None),
        ("skipped", "Stopped"),
        ("skipped", "Stopped"),
    ]
