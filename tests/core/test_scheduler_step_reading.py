"""The run logic reading steps: results, times, the current step."""

from __future__ import annotations

import pytest
from podline.core import scheduling

from tests.core import podstates as ps
from tests.core.decision_rows import (
    bad,
    ok,
    up,
)
from tests.core.decisions import (
    IMG,
    PLANS,
    RUNNER,
    A,
    B,
    C,
    D,
    snapshot,
    step_status,
)
from tests.core.podstates import (
    crashed,
    skipped,
    waiting,
)


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
