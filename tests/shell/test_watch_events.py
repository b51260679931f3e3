"""What a watch event does to the reconciler: caches it, indexes pods by Pipeline, and wakes the Pipeline's
reconcile — unless the event only echoes the operator's own write (the version it already holds)."""

from __future__ import annotations

import asyncio
from typing import Any

from podline.core import conventions
from podline.shell import handlers, reconciling
from podline.shell import settings as settings_


class Recorder(reconciling.Reconciler):
    def __init__(self) -> None:
        super().__init__(None, settings_.Settings())  # type: ignore[arg-type]
        self.kicked: list[tuple[str, str]] = []

    def kick(self, key: tuple[str, str]) -> None:
        self.kicked.append(key)


def pod(name: str, version: str, uid: str = "uid-a", pipeline: str = "a") -> dict[str, Any]:
    return {
        "metadata": {
            "namespace": "ci",
            "name": name,
            "resourceVersion": version,
            "labels": {conventions.LABEL_PIPELINE_UID: uid},
            "annotations": {conventions.ANNOTATION_PIPELINE_NAME: pipeline},
            "managedFields": [{"manager": "kubelet"}],
        },
        "spec": {"containers": [{"name": "step-a", "image": "alpine:3.19", "args": ["run", "--", "echo a"]}]},
        "status": {"phase": "Running", "containerStatuses": [{"name": "step-a", "state": {"running": {}}}]},
    }


def deliver(r: Recorder, kind: str, obj: dict[str, Any], handler: Any = handlers.pod_event) -> None:
    asyncio.run(handler(event={"type": kind, "object": obj}, memo={"reconciler": r}))


def test_a_new_version_wakes_the_pipeline_and_its_echo_does_not() -> None:
    r = Recorder()
    deliver(r, "ADDED", pod("a-g1", "1"))
    assert r.kicked == [("ci", "a")]
    r.caches.put_pod(("ci", "a-g1"), pod("a-g1", "2"))  # what the operator stores from its patch's answer
    deliver(r, "MODIFIED", pod("a-g1", "2"))
    assert r.kicked == [("ci", "a")], "the echo of the operator's own write is no news"
    deliver(r, "MODIFIED", pod("a-g1", "3"))  # the kubelet's write
    assert r.kicked == [("ci", "a"), ("ci", "a")]


def test_the_echo_of_a_status_write_does_not_wake_the_pipeline() -> None:
    r = Recorder()
    body = {"metadata": {"namespace": "ci", "name": "a", "resourceVersion": "7"}, "spec": {}}
    deliver(r, "ADDED", body, handlers.pipeline_event)
    r.caches.pipelines[("ci", "a")] = {**body, "metadata": {**body["metadata"], "resourceVersion": "8"}}
    deliver(
        r,
        "MODIFIED",
        {**body, "metadata": {**body["metadata"], "resourceVersion": "8"}},
        handlers.pipeline_event,
    )
    assert r.kicked == [("ci", "a")]


def test_cached_pods_keep_metadata_and_status_only_and_are_found_by_pipeline() -> None:
    r = Recorder()
    deliver(r, "ADDED", pod("a-g1", "1"))
    deliver(r, "ADDED", pod("a-g2", "1"))
    deliver(r, "ADDED", pod("b-g1", "1", uid="uid-b", pipeline="b"))
    cached, delivered = r.caches.pods[("ci", "a-g1")], pod("a-g1", "1")
    assert set(cached) == {"metadata", "status"} and cached["status"] == delivered["status"]
    assert cached["metadata"] == {k: v for k, v in delivered["metadata"].items() if k != "managedFields"}
    assert [p["metadata"]["name"] for p in r.caches.pods_of("uid-a")] == ["a-g1", "a-g2"]
    deliver(r, "DELETED", pod("a-g1", "2"))
    assert [p["metadata"]["name"] for p in r.caches.pods_of("uid-a")] == ["a-g2"]
    assert r.caches.pods_of("uid-gone") == []


def test_a_pod_gone_while_deciding_is_read_again_not_reported_as_a_failure() -> None:
    r = Recorder()
    key = ("ci", "a")
    r.caches.pipelines[key] = {"metadata": {"namespace": "ci", "name": "a"}}
    seen: list[bool] = []

    async def once(k: tuple[str, str], body: Any) -> None:
        seen.append(k in r._fresh)
        if len(seen) == 1:
            raise reconciling.kube.NotFound('pods "a-g1" not found')

    r._once = once  # type: ignore[method-assign]
    asyncio.run(r.reconcile(key))
    assert seen == [False, True], "the second pass reads the pod from the API"
