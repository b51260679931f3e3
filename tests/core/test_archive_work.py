"""What of a run pod is due for archiving (``records.work``), step by step as its steps end: each step's log
once its container has terminated (once: what was archived is remembered), the running steps' output so far
while the pod is being deleted, the record with every log, and the final record, mark and release of the
archive's finalizer once the run is over; a record of a run not over yet says so; the finalizer on run pods
while the archive is on, and a deleted pod kept by it is not deleted again (docs/archive.md)."""

from __future__ import annotations

from typing import Any

import pytest
from podline.core import conventions, pods, records, scheduling

from tests.core import podstates as ps
from tests.core.decisions import snapshot
from tests.core.test_run_records import PLAN, run_pod
from tests.core.test_scheduler_spec_changes import old_pod

IMG = "golang:1.22"
WAIT = 3600
GONE = b"unable to retrieve container logs for containerd://abc"
COMPILE, LINT, TEST, NOTIFY = "step-compile", "step-lint", "step-test", "step-notify"


def held(pod: dict[str, Any], *, deleting_at: float | None = None) -> dict[str, Any]:
    """The pod with the archive's finalizer (as the operator makes it with the archive on), maybe deleted."""
    pod["metadata"]["finalizers"] = [conventions.FINALIZER_ARCHIVE]
    if deleting_at is not None:
        pod["metadata"]["deletionTimestamp"] = ps.ts(deleting_at)
    return pod


def work(pod: dict[str, Any], done: dict[str, str] | None = None, now: float = 100) -> records.Work:
    return records.work(pod, done or {}, now=ps.at(now), archive_wait_seconds=WAIT)


def mid_run() -> dict[str, Any]:
    """compile ended, lint runs, test and notify wait for their turn."""
    return held(run_pod(ps.succeeded(COMPILE, IMG), ps.entry(LINT, IMG), ps.entry(TEST, IMG),
                        ps.entry(NOTIFY, "alpine:3"), phase="Running"))  # fmt: skip


def test_a_step_is_archived_as_soon_as_its_container_ends_not_when_the_run_does() -> None:
    w = work(mid_run())
    assert w == records.Work(complete=(COMPILE,), record=True)
    assert not w.finish and not w.partial


def test_a_step_archived_already_is_not_read_again() -> None:
    """One pods/log read per ended step: the archiver remembers the instance it archived."""
    done = {COMPILE: ps.cid(COMPILE)}
    assert work(mid_run(), done).idle


def test_another_instance_of_a_container_is_archived_again() -> None:
    assert work(mid_run(), {COMPILE: "containerd://an-earlier-one"}).complete == (COMPILE,)


def test_the_end_of_the_run_archives_what_is_left_then_marks_and_releases() -> None:
    over = held(run_pod(ps.succeeded(COMPILE, IMG), ps.succeeded(LINT, IMG), ps.succeeded(TEST, IMG),
                        ps.skipped(NOTIFY, "alpine:3")))  # fmt: skip
    w = work(over, {COMPILE: ps.cid(COMPILE), LINT: ps.cid(LINT)})
    assert w == records.Work(complete=(TEST, NOTIFY), record=True, finish=True)
    everything = {n: ps.cid(n) for n in (COMPILE, LINT, TEST, NOTIFY)}
    assert work(over, everything) == records.Work(record=True, finish=True)  # only the mark is left


def test_an_archived_pod_is_left_alone_or_only_released() -> None:
    over = run_pod(ps.succeeded(COMPILE, IMG))
    marked = ps.apply_patch(over, records.archived_patch(ps.at(10)))
    assert work(marked).idle  # no finalizer (made with the archive off, or released)
    assert work(held(marked)) == records.Work(release=True)


def test_a_pod_being_deleted_mid_run_has_its_running_steps_output_read_at_once() -> None:
    """The kubelet removes a deleted pod's containers, logs and all, once they have stopped: the running
    step's output so far is archived while it is being stopped, at every pass (it grows)."""
    deleting = mid_run()
    deleting["metadata"]["deletionTimestamp"] = ps.ts(50)
    w = work(deleting, {COMPILE: ps.cid(COMPILE)})
    assert w == records.Work(partial=(LINT, TEST, NOTIFY), record=True)
    assert work(deleting, {COMPILE: ps.cid(COMPILE)}) == w  # again at the next pass


def test_a_deleted_pod_never_scheduled_is_over_at_once() -> None:
    never = held(ps.pod(PLAN, prepare=None, phase="Pending"), deleting_at=50)
    assert records.is_over(never)
    assert work(never) == records.Work(record=True, finish=True)


def test_a_deleted_pod_is_released_unarchived_archive_wait_seconds_after_its_deletion() -> None:
    """A store down for good does not keep a deleted pod (and a foreground-deleted Pipeline) for ever."""
    deleting = held(run_pod(ps.succeeded(COMPILE, IMG)), deleting_at=50)
    assert work(deleting, now=50 + WAIT - 1).finish
    late = work(deleting, now=50 + WAIT)
    assert late.release and not (late.record or late.complete or late.finish) and late.notes
    deleting["metadata"]["finalizers"] = []
    assert work(deleting, now=50 + WAIT).idle  # nothing holds it: it goes by itself


def test_a_record_of_a_run_not_over_says_so() -> None:
    rec = records.record(mid_run())
    assert rec["result"] == "Running" and rec["finishedAt"] is None
    states = {s["name"]: (s["state"], s["failing"], s["exitCode"]) for s in rec["steps"]}
    assert states == {"compile": ("succeeded", False, 0), "lint": ("running", False, None),
                      "test": ("running", False, None), "notify": ("running", False, None)}  # fmt: skip
    waiting = held(run_pod(ps.succeeded(COMPILE, IMG), ps.waiting(LINT, IMG), phase="Running"))
    assert records.record(waiting)["steps"][1]["state"] == "waiting"


def test_a_run_cut_short_by_its_pods_deletion_is_recorded_as_deleted() -> None:
    cut = held(run_pod(ps.succeeded(COMPILE, IMG), ps.stopped_running(LINT, IMG), ps.stopped_waiting(TEST, IMG),
                       ps.stopped_waiting(NOTIFY, "alpine:3"), phase="Failed"), deleting_at=50)  # fmt: skip
    assert records.record(cut)["result"] == "Deleted"
    ended = held(run_pod(ps.succeeded(COMPILE, IMG), ps.succeeded(LINT, IMG), ps.succeeded(TEST, IMG),
                         ps.skipped(NOTIFY, "alpine:3")), deleting_at=50)  # fmt: skip
    assert records.record(ended)["result"] == "Succeeded"  # deleted after it ended (pruned): its own result


def test_the_mark_releases_the_finalizer_with_a_strategic_merge_patch() -> None:
    patch = records.archived_patch(ps.at(10))
    assert patch["metadata"]["$deleteFromPrimitiveList/finalizers"] == [conventions.FINALIZER_ARCHIVE]
    assert patch["metadata"]["annotations"][conventions.ANNOTATION_ARCHIVED] == ps.ts(10).replace(
        "Z", "+00:00"
    )
    assert records.release_patch() == {
        "metadata": {"$deleteFromPrimitiveList/finalizers": ["podline.dev/archive"]}
    }


@pytest.mark.parametrize(
    ("body", "gone"),
    [(GONE, True),
     (b"unable to retrieve container logs for containerd://abc\n", True),
     (b"unable to retrieve container logs for containerd://other", False),
     (b"+ echo " + GONE + b"\n" + GONE + b"\n", False),
     (b"", False)],
)  # fmt: skip
def test_a_log_the_kubelet_no_longer_has_is_told_from_output(body: bytes, gone: bool) -> None:
    assert records.log_gone(body, "containerd://abc") is gone
    assert not records.log_gone(body, "")


def test_run_pods_carry_the_archives_finalizer_only_with_the_archive_on() -> None:
    assert "finalizers" not in pods.build_pod(PLAN)["metadata"]
    made = pods.build_pod(PLAN, finalizers=(conventions.FINALIZER_ARCHIVE,))
    assert made["metadata"]["finalizers"] == ["podline.dev/archive"]
    on = scheduling.decide(snapshot(PLAN, None, now=0, archive=True))
    off = scheduling.decide(snapshot(PLAN, None, now=0))
    [pod_on] = [m for m in on.create if m["kind"] == "Pod"]
    [pod_off] = [m for m in off.create if m["kind"] == "Pod"]
    assert records.holds(pod_on) and not records.holds(pod_off)


def test_a_pod_beyond_the_history_held_by_the_finalizer_is_not_deleted_again() -> None:
    from tests.core.decisions import PLANS

    gone = old_pod("g0-r0", created=0, phase="Succeeded")
    gone["metadata"]["deletionTimestamp"] = ps.ts(90)
    other = old_pod("g0-r1", created=1, phase="Succeeded")
    decision = scheduling.decide(
        snapshot(PLANS["seq"], None, now=100, other_pods=[gone, other], history_limit=0)
    )
    assert decision.delete_pods == ("demo-g0-r1",)


def test_a_container_terminated_with_no_container_never_ran() -> None:
    pod = run_pod(
        ps.succeeded(COMPILE, IMG), ps.lost(LINT, IMG), ps.waiting(TEST, IMG), ps.entry(NOTIFY, IMG)
    )
    assert [c for c in (COMPILE, LINT, TEST, NOTIFY) if records.never_ran(pod, c)] == [LINT]
