"""The scripted kubelet (tests/cluster/scripted_kubelet.py, a TEST DOUBLE of the kubelet and the in-pod
entrypoint) made lean enough for a thousand pods.

Run as its own process (``python -m bench.kubelet KUBECONFIG``) so its CPU time and GIL are not the
operator's nor the observer's. The model — every container running from the pod's creation, the steps
sequenced inside the pod by ``stepping.decide``, each ending with its result as its termination message —
is the test double's, unchanged; only its plumbing is replaced, because at bench sizes the original is the
bottleneck (measured: it re-computes every pod's status on every event, deserialises watch events into
client model objects and writes statuses one by one):

- the watch reads raw JSON lines;
- only pods an event or a timer touched are looked at when writing (a "dirty" set);
- a pass takes every queued event before it writes, and its writes go out in parallel (as many kubelets
  on many nodes would write them).

Steps are scripted by the command their entrypoint runs: ``sleep S`` then exit 0. podline echoes every
command before running it (``printf '+ sleep S'``), so the double sees each ``sleep`` twice: the bench runs
it with ``time_factor`` 0.5 to get back the written duration.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import heapq
import json
import logging
import os
import queue
import signal
import threading
import time
from typing import Any

import kubernetes.client
import kubernetes.config

from bench import watching
from tests.cluster import scripted_kubelet, scripted_statuses

logger = logging.getLogger("bench.kubelet")

TIME_FACTOR = 0.5  # each "sleep S" is seen twice (the echo and the command)
WRITERS = 8
BATCH = 2000  # events taken in one pass at most
WRITE_TIMEOUT = 30.0  # seconds; a hung request must not stall the double


class BenchKubelet(scripted_kubelet.ScriptedKubelet):
    def __init__(self, api: kubernetes.client.ApiClient, **kwargs: Any) -> None:
        super().__init__(api, **kwargs)
        self._dirty: set[tuple[str, str]] = set()
        self._shadow: list[
            tuple[float, tuple[str, str]]
        ] = []  # the timers again, to know which pods they touch
        self._writers = concurrent.futures.ThreadPoolExecutor(WRITERS, thread_name_prefix="status")
        self._next_sweep = 0.0
        self._seen: dict[
            tuple[str, str], tuple[Any, ...]
        ] = {}  # each pod's containers as the server last said
        self._written_at: dict[tuple[str, str], float] = {}
        self.writes = 0
        self.failed_writes = 0

    # ---- which pods changed ------------------------------------------------------------------------

    def _handle(self, kind: str, body: scripted_kubelet.Body) -> None:
        if kind in ("ADDED", "MODIFIED"):
            key = (body["metadata"]["namespace"], body["metadata"]["name"])
            self._dirty.add(key)
            self._seen[key] = _outline((body.get("status") or {}).get("containerStatuses") or [])
        elif kind == "DELETED":
            key = (body["metadata"]["namespace"], body["metadata"]["name"])
            self._seen.pop(key, None)
            self._written_at.pop(key, None)
        elif kind == "TERMINATE":
            self._dirty.add(body["key"])
        elif kind == "RESUME":
            self._dirty.update(self._pods)
        super()._handle(kind, body)

    def _schedule(self, when: float, key: tuple[str, str]) -> None:
        super()._schedule(when, key)
        heapq.heappush(self._shadow, (when, key))

    def _run_timers(self) -> None:
        super()._run_timers()
        now = time.monotonic()  # later than the base class's "now": every timer it ran is popped here too
        while self._shadow and self._shadow[0][0] <= now:
            self._dirty.add(heapq.heappop(self._shadow)[1])
        if now >= self._next_sweep:  # a safety net: a step whose end passed is ended, timer or not
            self._next_sweep = now + 1.0
            for pod in self._pods.values():
                if pod.failure:
                    continue
                # The server must come to say what the model says: a status the model holds but the server does
                # not show ten seconds after the last write (the double's own watch lags under a burst) is
                # written again. Seen in 100-pipeline runs: a few pods whose step never ended on the server;
                # the cause in the double was not found.
                if (
                    _outline([c.status for c in pod.containers.values() if c.status])
                    != self._seen.get(pod.key)
                    and now - self._written_at.get(pod.key, now) > 10.0
                ):
                    logger.warning(
                        "sweep: %s/%s: the server does not show the status last written; writing again",
                        pod.namespace,
                        pod.name,
                    )
                    pod.written = None
                    self._written_at[pod.key] = now
                    self._dirty.add(pod.key)
                for container in pod.containers.values():
                    if (
                        container.role == "step"
                        and container.command == "running"
                        and container.ends_at is None
                    ):
                        logger.warning(
                            "sweep: %s/%s %s runs a step command with no end (%s)",
                            pod.namespace,
                            pod.name,
                            container.name,
                            container.status.get("containerID"),
                        )
                if any(c.ends_at is not None and c.ends_at <= now for c in pod.containers.values()):
                    logger.warning(
                        "sweep: %s/%s: a process had passed its end without its timer",
                        pod.namespace,
                        pod.name,
                    )
                    self._sequence(pod)
                    self._dirty.add(pod.key)

    # ---- the work loop: every queued event, then one write per changed pod -----------------------------

    def _work(self) -> None:
        """As the base class's, but a pass takes every event already queued (up to ``BATCH``) before it
        writes: under a burst the base class writes after each single event and falls behind (measured:
        new pods waited seconds to be reported running). The kubelet's status manager coalesces the same
        way: it syncs each pod's latest status."""
        while not self._stopping.is_set():
            timeout = max(0.0, self._timers[0][0] - time.monotonic()) if self._timers else 1.0
            try:
                items = [self._events.get(timeout=timeout)]
            except queue.Empty:
                items = [("TICK", {})]
            while len(items) < BATCH:
                try:
                    items.append(self._events.get_nowait())
                except queue.Empty:
                    break
            idle = False
            with self._lock:
                for item in items:
                    if item is None:
                        return
                    kind, body = item
                    self._handle(kind, body)
                    idle = idle or kind == "IDLE"
                self._run_timers()
                self._flush()
            if idle:
                self._idle.set()

    # ---- writing -----------------------------------------------------------------------------------

    def _flush(self) -> None:
        if self._paused:
            return
        keys, self._dirty = self._dirty, set()
        jobs = []
        for key in keys:
            pod = self._pods.get(key)
            if pod is None:
                continue
            status = scripted_statuses.pod_status(
                pod.start_time, [c.status for c in pod.containers.values()], pod.failure
            )
            if status == pod.written:
                continue
            jobs.append((pod, status, self._writers.submit(self._write, pod, status)))
        for pod, status, job in jobs:
            try:
                job.result(timeout=WRITE_TIMEOUT + 5)
                pod.written = status
                self._written_at[pod.key] = time.monotonic()
                self.writes += 1
            except kubernetes.client.ApiException as error:
                self.failed_writes += 1
                if error.status == 404:
                    logger.warning(
                        "status of %s/%s not written (404): the pod is gone", pod.namespace, pod.name
                    )
                    self._pods.pop(pod.key, None)
                else:
                    logger.warning(
                        "status of %s/%s not written (%s); trying again",
                        pod.namespace,
                        pod.name,
                        error.status,
                    )
                    self._dirty.add(pod.key)  # the next pass (≤ 1 s) tries again
            except Exception as error:  # noqa: BLE001 - connection errors, timeouts: try again
                self.failed_writes += 1
                logger.warning(
                    "status of %s/%s not written (%r); trying again", pod.namespace, pod.name, error
                )
                self._dirty.add(pod.key)

    def _write(self, pod: Any, status: dict[str, Any]) -> None:
        response = self.core.patch_namespaced_pod_status(
            pod.name,
            pod.namespace,
            {"status": status},
            _content_type="application/merge-patch+json",
            _preload_content=False,
            _request_timeout=WRITE_TIMEOUT,
        )
        response.read()  # type: ignore[attr-defined]
        response.release_conn()  # type: ignore[attr-defined]

    # ---- watching ----------------------------------------------------------------------------------

    def _watch(self) -> None:
        version = None
        while not self._stopping.is_set():
            try:
                if version is None:
                    version = self._list()
                response = self._lister()(
                    label_selector=self.selector,
                    resource_version=version,
                    watch=True,
                    allow_watch_bookmarks=True,
                    timeout_seconds=240,
                    _preload_content=False,
                )
                for line in watching.lines(response):
                    if self._stopping.is_set():
                        return
                    event = json.loads(line)
                    body = event.get("object") or {}
                    if event.get("type") == "ERROR":
                        version = None
                        break
                    version = body.get("metadata", {}).get("resourceVersion", version)
                    if event.get("type") != "BOOKMARK":
                        self._events.put((event["type"], body))
            except Exception:  # noqa: BLE001 - an apiserver hiccup must not end the double
                version = None
                self._stopping.wait(0.5)


def _outline(container_statuses: list[dict[str, Any]]) -> tuple[Any, ...]:
    """What matters of a pod's container statuses: which instance each container runs, in which state."""
    return tuple(
        sorted(
            (cs.get("name"), next(iter(cs.get("state") or {"": 0})), cs.get("containerID"))
            for cs in container_statuses
        )
    )


def client(kubeconfig: str, pool: int = 8) -> kubernetes.client.ApiClient:
    """An API client for ``kubeconfig`` whose connection pool holds ``pool`` connections."""
    config = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(config_file=kubeconfig, client_configuration=config)  # type: ignore[no-untyped-call]
    config.connection_pool_maxsize = pool
    return kubernetes.client.ApiClient(config)


def main() -> None:
    parser = argparse.ArgumentParser(description="the scripted kubelet for the bench (until SIGTERM)")
    parser.add_argument("kubeconfig")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    api = client(args.kubeconfig, pool=WRITERS + 4)
    kubelet = BenchKubelet(api, time_factor=TIME_FACTOR)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    parent = os.getppid()
    kubelet.start()
    print("scripted kubelet running", flush=True)
    while not done.wait(1.0) and os.getppid() == parent:  # ends with the bench, even if it was killed
        pass
    kubelet.stop()
    print(
        f"scripted kubelet stopped after {kubelet.writes} status writes ({kubelet.failed_writes} failed)",
        flush=True,
    )


if __name__ == "__main__":
    main()
