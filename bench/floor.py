"""The floor: the fastest any watch-driven controller written with the same Python client can react.

A responder process (``python -m bench.floor KUBECONFIG NAMESPACE``) watches the ConfigMaps of one namespace
(raw JSON lines, like the bench's observer) and, whenever one's annotation ``bench.podline.dev/ping``
differs from its ``…/pong``, PATCHes ``pong`` to the same value: one watch event in, one PATCH out, nothing
else. The bench writes ``ping`` and measures, on its own watch, the time from the event carrying ``ping=i``
to the event carrying ``pong=i``: one watch event in, one write out. This is the floor of any hand-off that goes
through a controller (drone-runner-kube's launcher starts each step by updating the pod); podline's steps
sequence themselves in the pod, so its hand-offs do not go through the operator, and the floor is the
reference for what the operator does still do in reply to an event (a stand-in, a stop, a status write).

The floor under load uses a ConfigMap, not a pod: the operator watches every pod of the cluster (kopf
filters labels on its side), so pinging a pod all along would load the operator being measured (see the
``foreign_pods`` scenario). Idle, the floor is also measured on a pod the size of a run pod.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import threading
import time
from typing import Any

import kubernetes.client

from bench import kubelet as kubelet_
from bench import stats, watching

PING = watching.NOTE_PREFIX + "ping"
PONG = watching.NOTE_PREFIX + "pong"
NAME = "floor"
STRATEGIC_MERGE = "application/strategic-merge-patch+json"


def floor_object() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": NAME, "annotations": {PING: "", PONG: ""}},
        "data": {},
    }


def floor_pod(steps: int = 8) -> dict[str, Any]:
    """A pod the size of a run pod of ``steps`` steps (built by podline's core), without podline's labels
    and owner: the floor of a PATCH to an object that size. The operator receives its events (its pod watch
    is not filtered on the server) and drops them, at a cost the ``foreign_pods`` scenario measures."""
    from podline.core import compiling, pods, policies

    from bench import harness

    spec = harness.pipeline("floor", [1.0] * steps)["spec"]
    context = compiling.RunContext(namespace="floor", pipeline="floor", uid="floor", generation=1)
    pod = pods.build_pod(compiling.compile_spec(spec, context, policies.Policy()))
    pod["metadata"] = {"name": NAME, "annotations": {PING: "", PONG: ""}}
    return pod


def annotate(
    core: kubernetes.client.CoreV1Api, namespace: str, key: str, value: str, kind: str = "configmap"
) -> None:
    patch = core.patch_namespaced_pod if kind == "pod" else core.patch_namespaced_config_map
    patch(
        NAME,
        namespace,
        {"metadata": {"annotations": {key: value}}},
        _content_type=STRATEGIC_MERGE,
        _preload_content=False,
    )


def respond(kubeconfig: str, namespace: str, kind: str, stop: threading.Event) -> None:
    api = kubelet_.client(kubeconfig)
    core = kubernetes.client.CoreV1Api(api)
    lister: Any = core.list_namespaced_pod if kind == "pod" else core.list_namespaced_config_map
    version = None
    while not stop.is_set():
        try:
            if version is None:
                version = json.loads(lister(namespace, _preload_content=False).data)["metadata"][
                    "resourceVersion"
                ]
            response = lister(
                namespace, watch=True, resource_version=version, timeout_seconds=240, _preload_content=False
            )
            for line in watching.lines(response):
                event = json.loads(line)
                obj = event.get("object") or {}
                if event.get("type") == "ERROR":
                    version = None
                    break
                version = obj.get("metadata", {}).get("resourceVersion", version)
                notes = obj.get("metadata", {}).get("annotations") or {}
                if event.get("type") == "MODIFIED" and notes.get(PING) and notes.get(PING) != notes.get(PONG):
                    annotate(core, namespace, PONG, notes[PING], kind)
        except Exception:  # noqa: BLE001 - reconnect
            version = None
            stop.wait(0.2)


class Pinger:
    """Writes ``ping=i`` and waits for ``pong=i`` on the recorder, ``count`` times (or until stopped)."""

    def __init__(
        self, api: kubernetes.client.ApiClient, recorder: watching.Recorder, kind: str = "configmap"
    ) -> None:
        self.core = kubernetes.client.CoreV1Api(api)
        self.kind = kind
        self.recorder = recorder
        self.namespace = recorder.namespace
        self._pongs: dict[str, threading.Event] = {}
        self.sent: dict[str, float] = {}  # ping value -> time the PATCH was sent
        self.timeouts = 0
        recorder.listen(self._on_pod)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._prefix = f"{random.randrange(10**6)}-"

    def _on_pod(self, event: watching.PodEvent) -> None:
        pong = event.notes.get(PONG)
        if pong and pong in self._pongs:
            self._pongs[pong].set()

    def run(self, count: int, gap: tuple[float, float] = (0.02, 0.05), timeout: float = 5.0) -> None:
        for i in range(count):
            if self._stop.is_set():
                return
            value = f"{self._prefix}{i}"
            self._pongs[value] = threading.Event()
            self.sent[value] = time.monotonic()
            annotate(self.core, self.namespace, PING, value, self.kind)
            if not self._pongs[value].wait(timeout):
                self.timeouts += 1
            self._stop.wait(random.uniform(*gap))

    def background(self, gap: tuple[float, float] = (0.08, 0.12), count: int = 100000) -> None:
        """Keep pinging in a thread (bounded by ``count``) until `stop`: the floor under the same load."""
        self._thread = threading.Thread(target=self.run, args=(count, gap), name="pinger", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def samples(self, since: float = 0.0, until: float = float("inf")) -> dict[str, list[float]]:
        """Seconds per ping, in the window: ``round_trip`` (event ping=i → event pong=i: the floor of a
        hand-off) and ``patch_to_event`` (PATCH sent → its event seen: one write plus one watch delivery)."""
        ping_seen: dict[str, float] = {}
        pong_seen: dict[str, float] = {}
        for e in self.recorder.pods:
            if e.name != NAME:
                continue
            ping, pong = e.notes.get(PING), e.notes.get(PONG)
            if ping:
                ping_seen.setdefault(ping, e.t)
            if pong:
                pong_seen.setdefault(pong, e.t)
        round_trip, one_way = [], []
        for value, sent in self.sent.items():
            if not since <= sent <= until:
                continue
            if value in ping_seen and value in pong_seen:
                round_trip.append(pong_seen[value] - ping_seen[value])
            if value in ping_seen:
                one_way.append(ping_seen[value] - sent)
        return {"round_trip": round_trip, "patch_to_event": one_way}


def summarise(samples: dict[str, list[float]]) -> dict[str, Any]:
    return {key: stats.summary(values, scale=1000.0) for key, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description="the floor's responder: pong every ping (until SIGTERM)")
    parser.add_argument("kubeconfig")
    parser.add_argument("namespace")
    args = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    threads = [
        threading.Thread(target=respond, args=(args.kubeconfig, args.namespace, kind, stop), daemon=True)
        for kind in ("configmap", "pod")
    ]
    parent = os.getppid()
    for thread in threads:
        thread.start()
    print("floor responder running", flush=True)
    while not stop.wait(1.0) and os.getppid() == parent:  # ends with the bench, even if it was killed
        pass


if __name__ == "__main__":
    main()
