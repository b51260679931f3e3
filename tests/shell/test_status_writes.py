"""How the reconciler writes a Pipeline's status: at once when a run begins or ends, step progress coalesced.

The status is for readers (the run record is the pod), so progress within ``PODLINE_STATUS_INTERVAL_MS`` is
kept and written once, with the latest content, when the interval is over. The clock is the test's.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from podline.shell import reconciling, statuswriting
from podline.shell import settings as settings_

KEY = ("ci", "hello")


class FakeApi:
    """Records status writes and answers like the apiserver: the object as merged, with a new resourceVersion;
    404 once the Pipeline is gone."""

    def __init__(self) -> None:
        self.writes: list[dict[str, Any]] = []
        self.status: dict[str, Any] = {}
        self.gone = False

    async def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        if self.gone:
            raise reconciling.kube.NotFound('pipelines.podline.dev "hello" not found')
        self.writes.append(status)
        self.status = {k: v for k, v in {**self.status, **status}.items() if v is not None}
        return {
            **body(),
            "metadata": {**body()["metadata"], "resourceVersion": str(len(self.writes))},
            "status": self.status,
        }


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(statuswriting.time, "monotonic", c)
    return c


def body(status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "ci", "name": "hello", "uid": "u1", "generation": 1},
        "spec": {"steps": []},
        **({"status": status} if status is not None else {}),
    }


def status(phase: str, step: str = "waiting", run: str = "g1") -> dict[str, Any]:
    return {
        "phase": phase,
        "run": run,
        "podName": f"hello-{run}",
        "steps": [{"name": "build", "container": "step-build", "state": step}],
    }


def reconciler(interval_ms: int) -> tuple[reconciling.Reconciler, FakeApi]:
    api = FakeApi()
    r = reconciling.Reconciler(api, settings_.Settings(status_interval_ms=interval_ms))  # type: ignore[arg-type]
    return r, api


def write(r: reconciling.Reconciler, new: dict[str, Any]) -> None:
    """One reconcile's status step, against what the cache says the server has."""

    async def go() -> None:
        r.caches.pipelines.setdefault(KEY, body())
        await r.statuses.write(KEY, r.caches.pipelines[KEY], new)
        for handle in list(r.statuses._flushes.values()):
            handle.cancel()  # the test plays the timer itself (see flush)

    asyncio.run(go())


def flush(r: reconciling.Reconciler) -> None:
    """What the flush timer does: a reconcile that decides the same status again."""
    pending = r.statuses._pending.get(KEY)
    r.statuses._flushes.pop(KEY, None)
    if pending is not None:
        write(r, pending)


def test_the_first_status_of_a_run_is_written_at_once(clock: Clock) -> None:
    r, api = reconciler(1000)
    write(r, status("Pending"))
    assert api.writes == [status("Pending")]
    assert r.caches.pipelines[KEY]["status"] == status("Pending")


def test_progress_within_the_interval_is_kept_and_written_once_with_the_latest_content(clock: Clock) -> None:
    r, api = reconciler(1000)
    write(r, status("Pending"))
    clock.now += 0.2
    write(r, status("Running", "running"))
    clock.now += 0.2
    latest = status("Running", "succeeded")
    write(r, latest)
    assert len(api.writes) == 1, "progress within the interval must not be written yet"
    assert r.statuses._pending[KEY] == latest  # and the next reconcile decides from it
    clock.now += 0.7  # the interval since the last write is over
    flush(r)
    assert api.writes[1:] == [latest]
    assert KEY not in r.statuses._pending


def test_the_end_of_a_run_is_written_at_once_even_within_the_interval(clock: Clock) -> None:
    r, api = reconciler(1000)
    write(r, status("Pending"))
    clock.now += 0.1
    write(r, status("Running", "running"))
    clock.now += 0.1
    write(r, status("Succeeded", "succeeded"))
    assert [w["phase"] for w in api.writes] == ["Pending", "Succeeded"]
    assert KEY not in r.statuses._pending


def test_a_new_run_is_written_at_once(clock: Clock) -> None:
    r, api = reconciler(1000)
    write(r, status("Running", "running"))
    clock.now += 0.1
    write(r, status("Pending", run="g2"))
    assert [w["run"] for w in api.writes] == ["g1", "g2"]


def test_an_unchanged_status_is_not_written_and_clears_what_was_pending(clock: Clock) -> None:
    r, api = reconciler(1000)
    write(r, status("Running", "running"))
    clock.now += 0.1
    write(r, status("Running", "succeeded"))
    assert KEY in r.statuses._pending
    write(r, status("Running", "running"))  # back to what the server has: nothing to write
    assert len(api.writes) == 1 and KEY not in r.statuses._pending


def test_interval_zero_writes_every_change(clock: Clock) -> None:
    r, api = reconciler(0)
    for step in ("waiting", "running", "succeeded"):
        write(r, status("Running", step))
    assert [w["steps"][0]["state"] for w in api.writes] == ["waiting", "running", "succeeded"]


def test_fields_that_disappear_are_removed_by_the_merge_patch(clock: Clock) -> None:
    r, api = reconciler(0)
    write(r, {**status("Running"), "currentStep": "build"})
    write(r, status("Succeeded"))
    assert api.writes[1]["currentStep"] is None


def test_a_deleted_pipeline_drops_its_pending_status(clock: Clock) -> None:
    r, api = reconciler(1000)
    write(r, status("Running", "running"))
    clock.now += 0.1
    write(r, status("Running", "succeeded"))
    api.gone = True
    clock.now += 1
    flush(r)
    assert KEY not in r.statuses._pending
    r.forget(KEY)
    assert KEY not in r.caches.pipelines and KEY not in r.statuses._written_at


def queue_length() -> float:
    from podline.shell import metrics

    return metrics.QUEUE._value.get()  # type: ignore[attr-defined,no-any-return]


def queued() -> dict[str, Any]:
    return {**status("Pending"), "reason": "Queued"}


def test_the_queue_gauge_never_goes_below_zero_after_a_restart(clock: Clock) -> None:
    # A Pipeline queued before the operator restarted leaves the queue after it: the new process never
    # counted it in, so taking it out must not take the gauge below zero.
    r, _api = reconciler(0)
    r.caches.pipelines[KEY] = body(queued())
    before = queue_length()
    write(r, {**status("Pending"), "reason": "Creating"})
    assert queue_length() == before >= 0


def test_the_queue_gauge_counts_a_pipeline_once_while_it_is_queued(clock: Clock) -> None:
    r, _api = reconciler(0)
    before = queue_length()
    write(r, queued())
    write(r, queued())  # decided again, unchanged: still one
    assert queue_length() == before + 1
    r.forget(KEY)  # the Pipeline is deleted while it waits
    assert queue_length() == before
