"""Spec changes: a new run replaces the old one; history."""

from __future__ import annotations

import dataclasses
from typing import Any

from podline.core import (
    compiling,
    records,
    scheduling,
    statuses,
)

from tests.core import podstates as ps
from tests.core.decision_rows import (
    DEADLINE,
    ok,
    up,
)
from tests.core.decisions import (
    CONTEXT,
    IMG,
    PLANS,
    POLICY,
    A,
    B,
    C,
    Manifest,
    event_reasons,
    running_status,
    snapshot,
    step,
)
from tests.core.podstates import stopped


def old_pod(run: str, *, created: float, phase: str = "Running", notes: ps.Notes | None = None) -> Manifest:
    return ps.pod(PLANS["seq"], name=f"demo-{run}", created=created, phase=phase, notes=notes)


def spec_changed(**changes: Any) -> scheduling.Snapshot:
    """The look after a spec change (generation 2, one step ``a``) while run g1 of ``seq`` runs."""
    new_plan = compiling.compile_spec(
        {"steps": [step("a")]}, dataclasses.replace(CONTEXT, generation=2), POLICY
    )
    return scheduling.Snapshot(
        plan=new_plan,
        pod=None,
        now=ps.at(100),
        generation=2,
        run=new_plan.run,
        status=running_status(PLANS["seq"]),
        other_pods=[old_pod("g1", created=0)],
        **changes,
    )


def test_a_spec_change_stops_the_old_run_and_records_it_in_history() -> None:
    decision = scheduling.decide(spec_changed())
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
    history = [{"run": f"g0-r{i}", "phase": "Succeeded"} for i in range(scheduling.STATUS_HISTORY_LENGTH)]
    other = compiling.compile_spec({"steps": [step("a")]}, dataclasses.replace(CONTEXT, rerun="x"), POLICY)
    decision = scheduling.decide(snapshot(plan, None, now=100, status=running_status(other, history=history)))
    assert len(decision.status.history) == scheduling.STATUS_HISTORY_LENGTH
    assert decision.status.history[0]["phase"] == "Superseded"
    assert decision.status.history[1:] == history[:-1]


def test_an_unchanged_pod_does_nothing_new() -> None:
    plan = PLANS["seq"]
    pod = ps.pod(plan, up(A), up(B), up(C))
    first = scheduling.decide(snapshot(plan, pod))
    again = scheduling.decide(snapshot(plan, pod, now=20, status=first.status.to_patch()))
    assert again.status == first.status
    assert again.create == () and again.pod_patch is None and again.events == ()


def test_a_pipeline_being_deleted_starts_no_run_and_stops_none() -> None:
    """The apiserver raises the generation of an object with finalizers when it sets its deletionTimestamp
    (k8s.io/apiserver ``pkg/registry/generic/registry/store.go`` markAsDeleting; a foreground deletion adds
    the finalizer ``foregroundDeletion``):
    seen on the node tier as a second run started in a Pipeline Argo CD-style deleted mid-run."""
    snap = spec_changed(deleting=True)
    decision = scheduling.decide(snap)
    assert (decision.create, decision.other_patches, decision.delete_pods) == ((), (), ())
    assert decision.status == statuses.PipelineStatus.model_validate(running_status(PLANS["seq"]))
    undeleted = scheduling.decide(dataclasses.replace(snap, deleting=False))
    assert [m["metadata"]["name"] for m in undeleted.create] == ["demo-g2"]  # the same look, not deleting
