"""The node tier bench: what a pipeline takes on a real kubelet, next to drone-runner-kube and the floor.

``python -m bench.run --tier node`` starts the node tier (its own cluster slot: it waits while another
session holds the node tier), the operator as a process (production defaults, the placeholder
``drone/placeholder:1`` from the node tier's docker.io mirror), containerd's task events, and builds the
peer if its source is there. Then, each scenario repeated and the systems alternated (the order rotates
every repeat), images already present (a warm-up run of podline and the peer pulls every image the systems use):

1. ``e2e``: N steps of ``echo`` in order, one pipeline at a time: submit → result (podline: ``kubectl
   apply`` → final phase on the bench's watch; the peer: ``exec`` started → it decided; the floor:
   ``kubectl apply`` of its pod → the pod's final phase). Its step hand-offs (end of step N → start of step
   N + 1, containerd's clocks) are scenario 2, pooled per repeat.
3. ``fanout``: a → (b, c) → d, one at a time.
4. ``concurrent``: that many fan-outs submitted at once: until the last one ends, and each one's own time.
5. ``wait``: a first step of ``sleep 3``, then 9 steps of ``sleep 0.2``: long enough for the kubelet to
   have started every container before the steps come, so the hand-offs are the systems' own where their
   next container waits (the ``echo`` chains of 1. end faster than the kubelet starts containers).
6. The floor runs in every scenario, in the same run; Tekton's entrypoint (`nodesystems.Tekton`, if built)
   in the scenarios that map to a Task's pod (its steps run in order: 1., 2. and 5.).
7. ``archive``: podline alone, ``archive_steps`` steps of ``echo`` with the archive off, on with a directory
   and on with S3, interleaved (`nodearchive`): end to end, hand-offs, the archive's lag, the operator's CPU.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import pathlib
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from bench import harness, nodearchive, nodesystems, peer, proc, stats, taskevents, tekton
from bench.nodesystems import Outcome
from tests.cluster import images

SYSTEM_SCENARIOS = ("e2e", "fanout", "concurrent", "wait")  # the systems side by side
SCENARIOS = (*SYSTEM_SCENARIOS, "archive")  # `archive`: podline alone, its archive off and on


@dataclasses.dataclass(frozen=True)
class NodeConfig:
    repeats: int
    sizes: tuple[int, ...]
    concurrent: int
    timeline_size: int
    wait: tuple[float, int, float] = (3.0, 9, 0.2)  # the `wait` scenario: first step, then N steps of
    archive_steps: int = 10  # the `archive` scenario's pipeline

    @classmethod
    def full(cls) -> NodeConfig:
        return cls(repeats=5, sizes=(1, 3, 10, 30), concurrent=20, timeline_size=10)

    @classmethod
    def quick(cls) -> NodeConfig:
        return cls(repeats=1, sizes=(3,), concurrent=2, timeline_size=3, wait=(2.0, 3, 0.2), archive_steps=3)


def _timeout(steps: int, pipelines: int = 1) -> float:
    return 120.0 + 8.0 * steps * max(1, pipelines // 2)


class Bench:
    def __init__(
        self,
        say: Callable[[str], None],
        peer_src: pathlib.Path | None,
        with_peer: bool,
        cluster: Any = None,
        build_peer: bool = True,
        tekton_src: pathlib.Path | None = None,
        with_tekton: bool = True,
    ) -> None:
        self.say = say
        self.peer_src, self.with_peer, self.build_peer = peer_src, with_peer, build_peer
        self.tekton_src, self.with_tekton = tekton_src, with_tekton
        self.tekton: tekton.Entrypoint | None = None
        self.tekton_note = ""
        self.cluster: Any = cluster
        self.own_cluster = cluster is None
        self.operator: harness.Process | None = None
        self.events: taskevents.TaskEvents | None = None
        self.node: nodesystems.Node | None = None
        self.systems: list[Any] = []
        self.floors: list[Any] = []
        self.peer: peer.Peer | None = None
        self.peer_note = ""
        self.scratch = tempfile.TemporaryDirectory(prefix="podline-node-bench-")

    # ---- lifecycle ---------------------------------------------------------------------------------

    def open(self) -> None:
        from tests.cluster import clusters

        if self.with_peer:
            self.say("building drone-runner-kube (once per source commit)")
            self.peer, self.peer_note = peer.find(self.peer_src, build=self.build_peer)
            if self.peer is None:
                self.say(f"the peer does not run: {self.peer_note}")
        else:
            self.peer_note = "left out (--no-peer)"
        if self.with_tekton:
            self.say("building Tekton's entrypoint (once per source commit)")
            self.tekton, self.tekton_note = tekton.find(self.tekton_src, build=self.build_peer)
            if self.tekton is None:
                self.say(f"Tekton's entrypoint does not run: {self.tekton_note}")
        else:
            self.tekton_note = "left out (--no-tekton)"
        if self.cluster is None:
            began = time.monotonic()
            self.cluster = clusters.start("node", owner="bench")
            self.say(
                f"node tier up in {time.monotonic() - began:.1f}s ({self.cluster.server}; "
                f"logs {self.cluster.log_dir})"
            )
        harness.install_crd(self.cluster)
        if self.tekton is not None:
            self.tekton.push()  # the registry's store is the cluster start's
        port = 0
        env = {
            "KUBECONFIG": str(self.cluster.kubeconfig),
            "PODLINE_METRICS_PORT": str(port),
            "PODLINE_LIVENESS_PORT": "0",
        }
        runner = getattr(self.cluster.registry, "runner", None)  # the in-pod design's runner image, if built
        if runner:
            env["PODLINE_RUNNER_IMAGE"] = runner
            env["PODLINE_REGISTRY_MIRRORS"] = (
                images.operator_mirrors()
            )  # image configs from the local registries
        self.operator = harness.Process("operator", harness.operator_argv(), self.cluster.log_dir, env)
        self.operator.start()
        if not self.operator.wait_log("podline operator started", 60):
            raise RuntimeError("the operator did not start:\n" + self.operator.log()[-3000:])
        self.events = taskevents.TaskEvents(
            self.cluster.programs["ctr"], str(self.cluster.containerd_address)
        )
        self.events.start()
        from bench import kubelet as kubelet_

        api = kubelet_.client(str(self.cluster.kubeconfig), pool=8)
        self.node = nodesystems.Node(
            self.cluster.programs["kubectl"],
            self.cluster.kubeconfig,
            api,
            self.events,
            pathlib.Path(self.scratch.name),
        )
        self.systems = [nodesystems.Podline(self.node)]
        if self.peer is not None:
            self.systems.append(nodesystems.Drone(self.node, self.peer))
        if self.tekton is not None:
            self.systems.append(nodesystems.Tekton(self.node, self.tekton.image))
        self.floors = [nodesystems.Floor(self.node, shell=False), nodesystems.Floor(self.node, shell=True)]

    def close(self, logs: pathlib.Path | None) -> None:
        if self.events is not None:
            self.events.stop()
        if self.operator is not None:
            self.operator.stop()
        if self.node is not None:
            self.node.api.close()  # type: ignore[no-untyped-call]
        if self.cluster is not None:
            if logs is not None:
                logs.mkdir(parents=True, exist_ok=True)
                for log in [
                    *self.cluster.log_dir.glob("*.log"),
                    *pathlib.Path(self.scratch.name).glob("*.log"),
                ]:
                    (logs / log.name).write_bytes(log.read_bytes())
            if self.own_cluster:
                self.cluster.stop()
        self.scratch.cleanup()

    def versions(self) -> dict[str, Any]:
        from tests.cluster import binaries

        def out(*argv: str) -> str:
            try:
                return subprocess.run(
                    argv, check=False, capture_output=True, text=True, timeout=30
                ).stdout.strip()
            except OSError:
                return ""

        found: dict[str, Any] = {
            "kubernetes": binaries.KUBERNETES_VERSION,
            "containerd": out(self.cluster.programs["containerd"], "--version") if self.cluster else "",
            "runc": out("runc", "--version").splitlines()[0] if out("runc", "--version") else "",
        }
        if self.peer is not None:
            found["drone-runner-kube"] = {
                "commit": self.peer.commit,
                "source": str(self.peer.source),
                "go": peer.go_version(self.peer.go),
            }
        else:
            found["drone-runner-kube"] = {"not run": self.peer_note}
        if self.tekton is not None:
            found["tekton"] = {
                "commit": self.tekton.commit,
                "source": str(self.tekton.source),
                "go": peer.go_version(self.tekton.go),
                "image": self.tekton.image,
                "scenarios": list(nodesystems.Tekton.SCENARIOS),
            }
        else:
            found["tekton"] = {"not run": self.tekton_note}
        return found

    # ---- one run of one system ---------------------------------------------------------------------

    def run(
        self, system: Any, label: str, pipelines: list[tuple[str, list[dict[str, Any]]]]
    ) -> list[Outcome]:
        """Run ``pipelines`` at once on ``system``, in fresh namespaces, then delete them."""
        assert self.cluster is not None
        steps = max(len(s) for _, s in pipelines)
        timeout = _timeout(steps, len(pipelines))
        short = {"podline": "pl", "drone-runner-kube": "drone", nodesystems.TEKTON: "tkn"}.get(
            system.name, "floor"
        )
        if isinstance(system, nodesystems.Drone):
            namespaces = [self.cluster.new_namespace(f"{short}-{label}") for _ in pipelines]
            outcomes = system.run(namespaces, pipelines, timeout)
        else:
            namespaces = [self.cluster.new_namespace(f"{short}-{label}")]
            outcomes = system.run(namespaces[0], pipelines, timeout)
        for namespace in namespaces:
            self.cluster.kubectl(
                "delete",
                "pods",
                "--all",
                "-n",
                namespace,
                "--grace-period=0",
                "--force",
                "--wait=true",
                "--timeout=60s",
                check=False,
            )
            self.cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
        bad = [o for o in outcomes if o.phase != "Succeeded" or o.done is None]
        if bad:
            self.say(
                f"  {system.name} {label}: {len(bad)} of {len(outcomes)} did not succeed "
                f"({', '.join(sorted({o.phase for o in bad}))})"
            )
        return outcomes

    def all_systems(self, repeat: int) -> list[Any]:
        order = [*self.systems, *self.floors]
        shift = repeat % len(order)
        return order[shift:] + order[:shift]


def takes_part(system: Any, scenario: str) -> bool:
    """Whether ``system`` runs ``scenario`` (Tekton's Task pod maps chains only)."""
    return scenario in getattr(system, "SCENARIOS", SYSTEM_SCENARIOS)


def skipped(systems: Sequence[Any]) -> dict[str, list[str]]:
    """System -> the scenarios it leaves out."""
    found = {s.name: [x for x in SYSTEM_SCENARIOS if not takes_part(s, x)] for s in systems}
    return {name: left for name, left in found.items() if left}


def _e2e_seconds(outcomes: Sequence[Outcome]) -> float:
    values = [o.seconds for o in outcomes]
    return math.nan if any(v is None for v in values) else max(v for v in values if v is not None)


def measure(bench: Bench, cfg: NodeConfig, only: Sequence[str], say: Callable[[str], None]) -> dict[str, Any]:
    """Every scenario, every repeat, every system; raw outcomes and their summaries."""
    raw: dict[str, Any] = {"e2e": {}, "fanout": {}, "concurrent": {}, "wait": {}}
    timeline: dict[str, Any] = {}
    say(
        "warm-up: one run of podline and of the peer (pulls busybox:1.36 and drone/placeholder:1, every image "
        "the systems use)"
    )
    for system in bench.systems:
        bench.run(system, "warm", [("warm", nodesystems.echo_steps(2))])
    for repeat in range(cfg.repeats):
        order = bench.all_systems(repeat)
        for size in cfg.sizes if "e2e" in only else ():
            steps = nodesystems.echo_steps(size)
            for system in (s for s in order if takes_part(s, "e2e")):
                outcomes = bench.run(system, f"n{size}", [(f"echo-{size}", steps)])
                sample: dict[str, Any] = {
                    "seconds": _e2e_seconds(outcomes),
                    "handoffs": nodesystems.handoffs(outcomes[0], steps),
                    "handoffs_waiting": nodesystems.handoffs(outcomes[0], steps, waiting=True),
                    "outcome": nodesystems.outcome_json(outcomes[0]),
                }
                raw["e2e"].setdefault(system.name, {}).setdefault(str(size), []).append(sample)
                say(
                    f"  repeat {repeat + 1}/{cfg.repeats} {system.name:<26} {size:>2} steps: {sample['seconds']:.2f} s"
                )
                if size == cfg.timeline_size:
                    timeline[system.name] = sample["outcome"]
        for system in (s for s in order if takes_part(s, "fanout")) if "fanout" in only else ():
            steps = nodesystems.fanout_steps()
            outcomes = bench.run(system, "fan", [("fanout", steps)])
            sample = {"seconds": _e2e_seconds(outcomes), "handoffs": nodesystems.handoffs(outcomes[0], steps)}
            raw["fanout"].setdefault(system.name, []).append(sample)
            say(f"  repeat {repeat + 1}/{cfg.repeats} {system.name:<26} fan-out: {sample['seconds']:.2f} s")
        # last in a repeat: it leaves the most behind
        for system in (s for s in order if takes_part(s, "concurrent")) if "concurrent" in only else ():
            steps = nodesystems.fanout_steps()
            pipelines = [(f"fan-{i:02d}", steps) for i in range(cfg.concurrent)]
            outcomes = bench.run(system, "many", pipelines)
            each = [o.seconds for o in outcomes]
            sample = {
                "total": _e2e_seconds(outcomes),
                "each": [math.nan if v is None else v for v in each],
                "succeeded": sum(1 for o in outcomes if o.phase == "Succeeded"),
            }
            raw["concurrent"].setdefault(system.name, []).append(sample)
            say(
                f"  repeat {repeat + 1}/{cfg.repeats} {system.name:<26} {cfg.concurrent} at once: {sample['total']:.2f} s"
            )
        for system in (s for s in order if takes_part(s, "wait")) if "wait" in only else ():
            steps = nodesystems.wait_steps(*cfg.wait)
            outcomes = bench.run(system, "wait", [("wait", steps)])
            sample = {
                "seconds": _e2e_seconds(outcomes),
                "handoffs": nodesystems.handoffs(outcomes[0], steps),
                "handoffs_waiting": nodesystems.handoffs(outcomes[0], steps, waiting=True),
                "outcome": nodesystems.outcome_json(outcomes[0]),
            }
            raw["wait"].setdefault(system.name, []).append(sample)
            say(
                f"  repeat {repeat + 1}/{cfg.repeats} {system.name:<26} wait: {sample['seconds']:.2f} s, "
                f"{len(sample['handoffs_waiting'])} of {len(sample['handoffs'])} hand-offs waited"
            )
    found: dict[str, Any] = {"raw": raw, "timeline": timeline, "summary": summarise(raw)}
    if "archive" in only:  # its own operators: after the others, so their runs see the bench's operator only
        found["archive"] = nodearchive.measure(bench, cfg, say)
    return found


def summarise(raw: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"e2e": {}, "handoff": {}, "fanout": {}, "concurrent": {}, "wait": {}}
    for system, sizes in raw["e2e"].items():
        out["e2e"][system] = {
            size: stats.spread(s["seconds"] for s in samples) for size, samples in sizes.items()
        }
        repeats = max(len(samples) for samples in sizes.values())
        per_repeat = []
        pooled: list[float] = []
        for r in range(repeats):
            values = [h for samples in sizes.values() if len(samples) > r for h in samples[r]["handoffs"]]
            pooled += values
            per_repeat.append(stats.summary(values, 1000.0))
        if pooled:
            waiting = [
                h for samples in sizes.values() for s in samples for h in s.get("handoffs_waiting", ())
            ]
            out["handoff"][system] = {
                "per_repeat": stats.over_repeats(per_repeat, ("p50", "p95", "p99", "max")),
                "pooled_ms": stats.summary(pooled, 1000.0),
                "waiting_pooled_ms": stats.summary(waiting, 1000.0),
            }
    for system, samples in raw["fanout"].items():
        joins = [stats.summary(s["handoffs"], 1000.0) for s in samples]
        out["fanout"][system] = {
            "seconds": stats.spread(s["seconds"] for s in samples),
            "handoff_ms": stats.over_repeats(joins, ("p50", "max")),
        }
    for system, samples in raw["concurrent"].items():
        each = [stats.summary([v for v in s["each"] if not math.isnan(v)]) for s in samples]
        out["concurrent"][system] = {
            "total": stats.spread(s["total"] for s in samples),
            "each": stats.over_repeats(each, ("p50", "max")),
            "succeeded": [s["succeeded"] for s in samples],
        }
    for system, samples in raw.get("wait", {}).items():
        per_repeat = [stats.summary(s["handoffs"], 1000.0) for s in samples]
        waiting = [h for s in samples for h in s.get("handoffs_waiting", ())]
        out["wait"][system] = {
            "seconds": stats.spread(s["seconds"] for s in samples),
            "handoff_ms": stats.over_repeats(per_repeat, ("p50", "p95", "p99", "max")),
            "pooled_ms": stats.summary([h for s in samples for h in s["handoffs"]], 1000.0),
            "waiting_pooled_ms": stats.summary(waiting, 1000.0),
        }
    return out


def run(
    cfg: NodeConfig,
    mode: str,
    only: Sequence[str],
    out: pathlib.Path,
    say: Callable[[str], None],
    peer_src: pathlib.Path | None,
    with_peer: bool,
    *,
    cluster: Any = None,
    build_peer: bool = True,
    tekton_src: pathlib.Path | None = None,
    with_tekton: bool = True,
) -> dict[str, Any]:
    """The whole node bench; ``cluster``: a running node tier to use (a test's) instead of starting one;
    ``build_peer=False``: run the peer and Tekton's entrypoint only if they are already built."""
    began = time.monotonic()
    results: dict[str, Any] = {
        "tier": "node",
        "mode": mode,
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": proc.machine(),
        "source": proc.source(),
        "load_before": proc.uptime_line(),
        "config": dataclasses.asdict(cfg),
        "only": list(only),
        "errors": [],
    }
    bench = Bench(
        say,
        peer_src,
        with_peer,
        cluster=cluster,
        build_peer=build_peer,
        tekton_src=tekton_src,
        with_tekton=with_tekton,
    )
    try:
        bench.open()
        results["versions"] = bench.versions()
        results["systems"] = [s.name for s in [*bench.systems, *bench.floors]]
        results["skipped"] = skipped([*bench.systems, *bench.floors])
        results.update(measure(bench, cfg, only, say))
        if bench.operator is not None and not bench.operator.alive():
            results["errors"].append(
                {"scenario": "operator", "error": "operator died:\n" + bench.operator.log()[-3000:]}
            )
    except Exception:  # noqa: BLE001 - write what there is, and say what went wrong
        results["errors"].append({"scenario": "node bench", "error": traceback.format_exc()})
        say("the node bench failed:\n" + traceback.format_exc())
    finally:
        bench.close(out / "logs" / "node")
    results["load_after"] = proc.uptime_line()
    results["seconds"] = time.monotonic() - began
    return results


def write(results: dict[str, Any], out: pathlib.Path) -> list[pathlib.Path]:
    import json

    from bench import nodereport

    out.mkdir(parents=True, exist_ok=True)
    # The table and plot are drawn from the numbers the JSON keeps (rounded), so a table rendered later from
    # the JSON is the same text: formatting 4-place-rounded values again may round differently.
    results = stats.json_ready(results)
    text = json.dumps(results, indent=1) + "\n"
    stamp = datetime.datetime.now().strftime("%Y-%m-%d-%H%M")
    paths = [out / "node-latest.json", out / f"{stamp}-node-{results['mode']}.json"]
    for path in paths:
        path.write_text(text)
    (out / "node-table.md").write_text(nodereport.document(results))
    paths.append(out / "node-table.md")
    try:
        if results.get("timeline"):
            paths.append(nodereport.timeline_plot(results, out / "node-timeline.png"))
    except Exception:  # noqa: BLE001 - the numbers are in the JSON
        print("could not draw the timeline:\n" + traceback.format_exc(), file=sys.stderr)
    return paths
