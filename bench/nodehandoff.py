"""The in-pod hand-off where it is not bounded by the kubelet: the next step's container already waits.

``python -m bench.nodehandoff`` (node tier, ~2 min). Trivial steps end before the kubelet has created the
next container (it creates a pod's containers one after another, ~0.1 s each here), so the node bench's
hand-offs of back-to-back `echo` steps measure the kubelet's pace. Here a first step sleeps 3 s, long enough
for every container of the pod to be started and waiting, and 9 steps of `sleep 0.2` follow: each hand-off
is step N's end → step N+1's command start, from the entrypoints' own ms timestamps (the status), checked
against containerd's task exit of step N (the entrypoint writes its result, then exits, so the next command
may start before containerd reports that exit). Every hand-off is checked to be one whose next container had
started before the previous step ended. Prints the figures and writes ``bench/results/node-handoff.json``.
"""

from __future__ import annotations

import datetime
import itertools
import json
import pathlib
import statistics
import time
from typing import Any

from bench import taskevents
from tests.cluster import clusters, images, nodetier
from tests.e2e import conftest, operating

REPEATS = 5
NAMESPACE = "handoff"
OUT = pathlib.Path(__file__).resolve().parent / "results" / "node-handoff.json"


def _seconds(timestamp: str) -> float:
    return datetime.datetime.fromisoformat(timestamp).timestamp()


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(repeats: int = REPEATS) -> dict[str, Any]:
    cluster = clusters.start("node", owner="bench")
    assert isinstance(cluster, nodetier.NodeCluster)
    try:
        conftest.install_crd(cluster)
        env = {
            "PODLINE_RUNNER_IMAGE": cluster.registry.runner,
            "PODLINE_REGISTRY_MIRRORS": images.operator_mirrors(),
        }
        op = operating.OperatorProcess(cluster.kubeconfig, cluster.log_dir, name="operator-handoff", env=env)
        op.start()
        events = taskevents.TaskEvents(cluster.programs["ctr"], str(cluster.containerd_address))
        events.start()
        cluster.kubectl("create", "namespace", NAMESPACE)
        own: list[float] = []
        after_exit: list[float] = []
        try:
            for repeat in range(repeats):
                name = f"handoff-{repeat}"
                steps = [{"name": "s00", "image": images.BUSYBOX, "commands": ["sleep 3"]}] + [
                    {"name": f"s{i:02d}", "image": images.BUSYBOX, "commands": ["sleep 0.2"]}
                    for i in range(1, 10)
                ]
                operating.apply(cluster, NAMESPACE, operating.pipeline(name, {"steps": steps}))
                status = operating.wait_for_phase(cluster, NAMESPACE, name, timeout=180, operator=op)
                if status["phase"] != "Succeeded":
                    raise RuntimeError(f"{name} ended {status['phase']}: {status.get('message')}")
                time.sleep(1.0)  # containerd's events arrive a moment after the status
                tasks = taskevents.step_tasks(events.tasks(NAMESPACE, status["podName"]))
                for before, after in itertools.pairwise(status["steps"]):
                    ended = _seconds(before["finishedAt"])
                    started = tasks[after["container"]].started
                    if started is None or not started < ended:
                        raise RuntimeError(f"{after['name']}'s container was not waiting yet")
                    own.append(_seconds(after["startedAt"]) - ended)
                    after_exit.append(
                        _seconds(after["startedAt"]) - (tasks[before["container"]].exited or ended)
                    )
        finally:
            events.stop()
            op.stop()
    finally:
        cluster.stop()
    ms = [x * 1000 for x in own]
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "repeats": repeats,
        "n": len(ms),
        "handoff_ms": {
            "p50": statistics.median(ms),
            "p95": _quantile(ms, 0.95),
            "p99": _quantile(ms, 0.99),
            "max": max(ms),
            "min": min(ms),
        },
        "from_containerd_exit_ms": {
            "p50": statistics.median(x * 1000 for x in after_exit),
            "max": max(x * 1000 for x in after_exit),
        },
        "samples_ms": ms,
    }


def main() -> None:
    result = measure()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=1) + "\n")
    h, c = result["handoff_ms"], result["from_containerd_exit_ms"]
    print(
        f"in-pod hand-off, next container waiting ({result['n']} over {result['repeats']} runs): "
        f"p50 {h['p50']:.1f} ms, p95 {h['p95']:.1f} ms, p99 {h['p99']:.1f} ms, max {h['max']:.1f} ms; "
        f"from containerd's exit of the step before: p50 {c['p50']:.1f} ms, max {c['max']:.1f} ms"
    )
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
