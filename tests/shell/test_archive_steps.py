"""The archiver (``shell.archiving.Archiver``) over a run's life, against a real file store and a small double
of the API (the pod as the kubelet reports it, each container's log): each step's log lands in the archive as
its container ends, read once; the record says Running until the run is over; then the mark and the release
of the finalizer. A pod deleted mid-run keeps the output its running step wrote until then, and a step whose
log the kubelet removed says so (the node tier shows the kubelet's side: tests/e2e/test_archive_node.py)."""

from __future__ import annotations

import asyncio
import copy
import json
import pathlib
from typing import Any

from podline.core import conventions, records
from podline.shell import archiving, caches, kube

from tests.core import podstates as ps
from tests.core.test_archive_work import COMPILE, IMG, LINT, NOTIFY, TEST, held
from tests.core.test_run_records import run_pod


class Api:
    """The pod and its containers' logs; counts pods/log reads."""

    def __init__(self, pod: dict[str, Any], logs: dict[str, bytes]) -> None:
        self.pod, self.logs, self.reads, self.patches = pod, logs, 0, 0

    async def get_pod(self, namespace: str, name: str) -> dict[str, Any]:
        return copy.deepcopy(self.pod)

    async def read_log(self, namespace: str, name: str, container: str, *, limit_bytes: int) -> bytes:
        self.reads += 1
        if records.never_ran(self.pod, container):  # as the kubelet answers (seen on the node tier)
            raise kube.Transient(f'400 container "{container}" in pod "{name}" is terminated')
        return self.logs.get(container, b"")[:limit_bytes]

    async def patch_pod(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        self.patches += 1
        meta = patch["metadata"]
        self.pod["metadata"].setdefault("annotations", {}).update(meta.get("annotations", {}))
        gone = meta.get("$deleteFromPrimitiveList/finalizers", [])
        self.pod["metadata"]["finalizers"] = [
            f for f in self.pod["metadata"].get("finalizers", []) if f not in gone
        ]
        return copy.deepcopy(self.pod)


def setup(
    tmp_path: pathlib.Path, pod: dict[str, Any], logs: dict[str, bytes]
) -> tuple[archiving.Archiver, Api]:
    api = Api(pod, logs)
    cache = caches.Caches()
    store = archiving.open_store(f"file://{tmp_path}/archive")
    archiver = archiving.Archiver(api, cache, store, log_limit_bytes=1024, retention=records.Retention(),  # type: ignore[arg-type]
                                  clock=lambda: ps.at(100))  # fmt: skip
    return archiver, api


def step_pass(archiver: archiving.Archiver, api: Api) -> None:
    """A pod event: the watch delivers the pod, the archiver passes."""
    meta = api.pod["metadata"]
    archiver.caches.put_pod((meta["namespace"], meta["name"]), api.pod)
    asyncio.run(archiver.pass_once())


def stored(archiver: archiving.Archiver, name: str) -> bytes | None:
    ns, pipeline, run = records.identity(archiver.caches.pods[next(iter(archiver.caches.pods))])
    return asyncio.run(archiver.store.get(f"{ns}/{pipeline}/{run}/{name}"))


def record(archiver: archiving.Archiver) -> dict[str, Any]:
    return dict(json.loads(stored(archiver, "record.json") or b"null"))


LOGS = {c: f"+ {c}\n".encode() for c in (COMPILE, LINT, TEST, NOTIFY)}


def test_each_step_is_archived_as_it_ends_read_once_and_the_run_marked_at_its_end(
    tmp_path: pathlib.Path,
) -> None:
    first = held(run_pod(ps.succeeded(COMPILE, IMG), ps.entry(LINT, IMG), ps.entry(TEST, IMG),
                         ps.entry(NOTIFY, "alpine:3"), phase="Running"))  # fmt: skip
    archiver, api = setup(tmp_path, first, LOGS)
    kicked: list[tuple[str, str]] = []
    archiver.on_archived = kicked.append  # the reconciler's kick: the pod may now be pruned
    step_pass(archiver, api)
    assert (
        stored(archiver, "step-compile.log") == b"+ step-compile\n"
        and stored(archiver, "step-lint.log") is None
    )
    assert record(archiver)["result"] == "Running" and api.reads == 1 and kicked == []
    step_pass(archiver, api)
    step_pass(archiver, api)  # nothing new ended: nothing read, nothing written
    assert api.reads == 1 and api.patches == 0
    api.pod = held(run_pod(ps.succeeded(COMPILE, IMG), ps.succeeded(LINT, IMG), ps.entry(TEST, IMG),
                           ps.entry(NOTIFY, "alpine:3"), phase="Running"))  # fmt: skip
    step_pass(archiver, api)
    assert stored(archiver, "step-lint.log") == b"+ step-lint\n" and api.reads == 2
    api.pod = held(run_pod(ps.succeeded(COMPILE, IMG), ps.succeeded(LINT, IMG), ps.succeeded(TEST, IMG),
                           ps.skipped(NOTIFY, "alpine:3")))  # fmt: skip
    step_pass(archiver, api)
    assert api.reads == 4, "one pods/log read per step"
    assert record(archiver)["result"] == "Succeeded"
    assert records.is_archived(api.pod) and not records.holds(api.pod), "marked, finalizer released"
    assert kicked == [records.identity(api.pod)[:2]], "its Pipeline reconciled once, after the mark"
    step_pass(archiver, api)
    assert api.reads == 4 and api.patches == 1 and len(kicked) == 1


def test_a_pod_deleted_mid_run_keeps_its_running_steps_output_so_far(tmp_path: pathlib.Path) -> None:
    running = held(run_pod(ps.succeeded(COMPILE, IMG), ps.entry(LINT, IMG), ps.waiting(TEST, IMG),
                           ps.entry(NOTIFY, "alpine:3"), phase="Running"), deleting_at=50)  # fmt: skip
    archiver, api = setup(tmp_path, running, dict(LOGS, **{LINT: b"+ step-lint\nhalf"}))
    step_pass(archiver, api)
    assert stored(archiver, "step-lint.log") == b"+ step-lint\nhalf" + records.partial_note()
    assert record(archiver)["result"] == "Running" and records.holds(api.pod)
    gone = {c: b"unable to retrieve container logs for " + ps.cid(c).encode() for c in LOGS}
    api.logs = gone  # stopped: the kubelet removed the containers, logs and all
    api.pod = held(run_pod(ps.succeeded(COMPILE, IMG), ps.stopped_running(LINT, IMG), ps.stopped_waiting(TEST, IMG),
                           ps.stopped_waiting(NOTIFY, "alpine:3"), phase="Failed"), deleting_at=50)  # fmt: skip
    step_pass(archiver, api)
    assert stored(archiver, "step-compile.log") == b"+ step-compile\n", "archived when it ended, kept"
    assert stored(archiver, "step-lint.log") == b"+ step-lint\nhalf" + records.partial_note(), "kept"
    assert stored(archiver, "step-test.log") == records.gone_note(), "not started when the pod was deleted"
    assert stored(archiver, "step-notify.log") == b"+ step-notify\n" + records.partial_note()
    assert record(archiver)["result"] == "Deleted"
    assert not records.holds(api.pod), "released: the pod may go"


def test_with_the_archive_off_the_finalizer_is_released(tmp_path: pathlib.Path) -> None:
    pod = held(run_pod(ps.succeeded(COMPILE, IMG), phase="Running"))
    api = Api(pod, {})
    cache = caches.Caches()
    cache.put_pod(("ci", pod["metadata"]["name"]), pod)
    asyncio.run(archiving.Releaser(api, cache).pass_once())  # type: ignore[arg-type]
    assert conventions.FINALIZER_ARCHIVE not in api.pod["metadata"]["finalizers"] and api.reads == 0


def test_on_delete_delete_a_deleted_pod_of_a_gone_pipeline_is_released_unarchived(
    tmp_path: pathlib.Path,
) -> None:
    """``PODLINE_ARCHIVE_ON_DELETE=delete``: the Pipeline's runs went with it; a pod it left is not archived."""
    pod = held(run_pod(ps.succeeded(COMPILE, IMG)), deleting_at=50)
    archiver, api = setup(tmp_path, pod, LOGS)
    archiver.forget_deleted = True
    step_pass(archiver, api)
    assert api.reads == 0 and stored(archiver, "record.json") is None and not records.holds(api.pod)
    kept, api2 = setup(tmp_path / "kept", held(run_pod(ps.succeeded(COMPILE, IMG)), deleting_at=50), LOGS)
    step_pass(kept, api2)  # keep (the default): archived all the same
    assert api2.reads == 1 and stored(kept, "record.json") is not None and not records.holds(api2.pod)


def test_a_step_that_never_started_gets_a_note_without_a_read(tmp_path: pathlib.Path) -> None:
    """A Pipeline deleted before its run's later steps started (node tier: a foreground deletion): the kubelet
    reports them terminated with no container, and ``pods/log`` answers 400 for them, every time. The archive
    says they never started, and the pod is released at once (not held until ``PODLINE_ARCHIVE_WAIT``)."""
    pod = held(run_pod(ps.succeeded(COMPILE, IMG), ps.stopped_running(LINT, IMG), ps.lost(TEST, IMG),
                       ps.lost(NOTIFY, "alpine:3"), phase="Failed"), deleting_at=50)  # fmt: skip
    archiver, api = setup(tmp_path, pod, LOGS)
    step_pass(archiver, api)
    assert (
        stored(archiver, "step-test.log") == stored(archiver, "step-notify.log") == records.never_ran_note()
    )
    assert stored(archiver, "step-compile.log") == b"+ step-compile\n" and api.reads == 2
    assert record(archiver)["result"] == "Deleted" and not records.holds(api.pod)
