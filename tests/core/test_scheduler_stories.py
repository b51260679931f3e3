"""Stories: decisions, one after another, as the pod moves."""

from __future__ import annotations

from podline.core import (
    scheduling,
    statuses,
)

from tests.core import podstates as ps
from tests.core.decision_rows import (
    DEADLINE,
    bad,
    ok,
    skip,
    up,
)
from tests.core.decisions import (
    IMG,
    PLANS,
    A,
    B,
    C,
    D,
    event_reasons,
    snapshot,
    states,
    step_status,
)
from tests.core.podstates import waiting


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
