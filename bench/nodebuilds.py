"""The pipeline-to-pipeline hand-off of a build: how long after pipeline A ends pipeline B starts.

``python -m bench.nodebuilds [--repeats N]`` (node tier, ~1 min per 5 repeats). Each repeat applies a build
of two Pipelines, ``a`` and ``b`` (``depends_on: [a]``), one ``echo`` step each, and measures on one clock
(this machine's; the entrypoints' ms timestamps, the bench's own watch of the pods):

- reported: A's step ended (its entrypoint's ``finishedAt``) → the bench's watch sees A's step container
  terminated: the kubelet's report of the end (its pod status update), which the operator waits for too;
- operator: that → B's pod seen created by the bench's watch: the operator's part (A's pod event, A's
  status, B's reconcile, B's pod create);
- kubelet: B's pod seen created → B's step command started: what any new pod costs on this node;
- total: A's step ended → B's step command started;
- floor, measured in the same run: A's pod seen created → A's step command started (the kubelet's part for
  a pod nothing waits for), so ``total / floor`` says how much a build's hand-off adds to a pod start.

Prints medians with ranges and writes ``bench/results/node-build-handoff.json``. Numbers, not a test.
"""

from __future__ import annotations

import argparse
import datetime
import json
import pathlib
import statistics
import threading
import time
from typing import Any

import kubernetes

from tests.cluster import clusters, images, nodetier
from tests.e2e import conftest, operating

NAMESPACE = "build-handoff"
OUT = pathlib.Path(__file__).resolve().parent / "results" / "node-build-handoff.json"


def _seconds(timestamp: str) -> float:
    return datetime.datetime.fromisoformat(timestamp).timestamp()


class PodsSeen:
    """When the bench's own watch first saw each pod of a namespace (this machine's clock)."""

    def __init__(self, api: Any, namespace: str) -> None:
        self.api, self.namespace = api, namespace
        self.seen: dict[str, float] = {}
        self.ended: dict[str, float] = {}  # when its step containers were all seen terminated
        self._watch = kubernetes.watch.Watch()  # type: ignore[no-untyped-call]
        self._thread = threading.Thread(target=self._run, name="pods-seen", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._watch.stop()  # type: ignore[no-untyped-call]

    def _run(self) -> None:
        core = kubernetes.client.CoreV1Api(self.api)
        try:
            for event in self._watch.stream(core.list_namespaced_pod, self.namespace, timeout_seconds=3600):  # type: ignore[no-untyped-call]
                pod, now = event["object"], time.time()
                self.seen.setdefault(pod.metadata.name, now)
                states = [
                    c.state for c in (pod.status.container_statuses or []) if c.name.startswith("step-")
                ]
                if states and all(s.terminated for s in states):
                    self.ended.setdefault(pod.metadata.name, now)
        except Exception:  # noqa: BLE001 - the cluster goes away at the end: the watch ends with it
            return


def _build(repeat: int) -> list[dict[str, Any]]:
    out = []
    for name, deps in (("a", []), ("b", ["a"])):
        spec = {"name": name, "clone": {"disable": True}, "depends_on": deps,
                "steps": [{"name": "s", "image": images.BUSYBOX, "commands": [f"echo {name}"]}]}  # fmt: skip
        body = operating.pipeline(f"r{repeat}-{name}", spec)
        body["metadata"]["labels"] = {"podline.dev/build": f"r{repeat}"}
        out.append(body)
    return out


def measure(repeats: int) -> dict[str, Any]:
    cluster = clusters.start("node", owner="bench")
    assert isinstance(cluster, nodetier.NodeCluster)
    samples: dict[str, list[float]] = {
        "reported": [],
        "operator": [],
        "kubelet": [],
        "total": [],
        "floor": [],
    }
    try:
        conftest.install_crd(cluster)
        env = {
            "PODLINE_RUNNER_IMAGE": cluster.registry.runner,
            "PODLINE_REGISTRY_MIRRORS": images.operator_mirrors(),
        }
        op = operating.OperatorProcess(
            cluster.kubeconfig, cluster.log_dir, name="operator-build-handoff", env=env
        )
        op.start()
        cluster.kubectl("create", "namespace", NAMESPACE)
        api = cluster.api_client()
        pods = PodsSeen(api, NAMESPACE)
        pods.start()
        try:
            for repeat in range(-1, repeats):  # repeat -1 pulls the images: not counted
                operating.apply(cluster, NAMESPACE, *_build(repeat + 1))
                a = operating.wait_for_phase(cluster, NAMESPACE, f"r{repeat + 1}-a", timeout=180, operator=op)
                b = operating.wait_for_phase(cluster, NAMESPACE, f"r{repeat + 1}-b", timeout=180, operator=op)
                if (a["phase"], b["phase"]) != ("Succeeded", "Succeeded"):
                    raise RuntimeError(f"repeat {repeat}: {a['phase']}, {b['phase']}: {b.get('message')}")
                if repeat < 0:
                    continue
                a_end = _seconds(a["steps"][0]["finishedAt"])
                b_start = _seconds(b["steps"][0]["startedAt"])
                a_seen, b_seen = pods.seen[a["podName"]], pods.seen[b["podName"]]
                samples["reported"].append(pods.ended[a["podName"]] - a_end)
                samples["operator"].append(b_seen - pods.ended[a["podName"]])
                samples["kubelet"].append(b_start - b_seen)
                samples["total"].append(b_start - a_end)
                samples["floor"].append(_seconds(a["steps"][0]["startedAt"]) - a_seen)
        finally:
            pods.stop()
            api.close()  # type: ignore[no-untyped-call]
            op.stop()
    finally:
        cluster.stop()
    return summarise(samples, repeats)


def summarise(samples: dict[str, list[float]], repeats: int) -> dict[str, Any]:
    figures: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "repeats": repeats,
    }
    for part, values in samples.items():
        ms = [v * 1000 for v in values]
        figures[f"{part}_ms"] = {
            "median": statistics.median(ms),
            "min": min(ms),
            "max": max(ms),
            "samples": ms,
        }
    figures["total_over_floor"] = figures["total_ms"]["median"] / figures["floor_ms"]["median"]
    return figures


def report(figures: dict[str, Any]) -> str:
    def one(part: str) -> str:
        f = figures[f"{part}_ms"]
        return f"median {f['median']:.0f} ms (range {f['min']:.0f}–{f['max']:.0f})"

    return "\n".join([
        f"build hand-off, pipeline A ends → pipeline B ({figures['repeats']} repeats):",
        f"  A's step ended → the kubelet reports it          {one('reported')}",
        f"  reported → B's pod created (operator)            {one('operator')}",
        f"  B's pod created → B's step started (kubelet)     {one('kubelet')}",
        f"  A's step ended → B's step started (total)        {one('total')}",
        f"  floor: a pod created → its step started          {one('floor')}",
        f"  total / floor (medians)                          {figures['total_over_floor']:.2f}",
    ])  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.nodebuilds", description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    figures = measure(parser.parse_args().repeats)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(figures, indent=1) + "\n")
    print(report(figures))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
