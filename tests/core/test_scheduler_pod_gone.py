"""The run logic when the pod is gone."""

from __future__ import annotations

from podline.core import scheduling

from tests.core import podstates as ps
from tests.core.decision_rows import ok
from tests.core.decisions import (
    PLANS,
    A,
    B,
    C,
    event_reasons,
    running_status,
    snapshot,
)


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
