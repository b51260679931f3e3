"""The table of observed pod states and what the run logic must decide for each (``test_scheduler_table.py``
checks every row; ``test_scheduler_conditions.py`` checks the conditions of every row's phase)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from podline.core import plans
from podline.core.stepping import ResultState

from tests.core import podstates as ps
from tests.core.decisions import (
    IMG,
    RUNNER,
    A,
    B,
    C,
    D,
    Manifest,
)
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
