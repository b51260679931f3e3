"""The bench's one entry point: ``python -m bench.run [--tier api|node] [--quick] [--out DIR] [--profile]``.

``--tier node`` runs the node tier's bench instead (`bench.nodebench`: real kubelet and containerd,
podline next to drone-runner-kube and the floor); what follows is the api tier's.

Starts the api tier of the test cluster (etcd, kube-apiserver, kube-controller-manager), installs the CRD,
starts the operator (``python -m podline operator``), the scripted kubelet and the floor's responder as
separate processes, runs the scenarios, prints the table, writes ``latest.json`` and a dated copy and the
plots into DIR, and tears everything down. ``--quick``: tiny sizes (the CI smoke mode). ``--profile``: run
the operator under pyinstrument through one 100-pipeline hand-off load and write its profile instead.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import pathlib
import signal
import sys
import time
import traceback
from typing import Any

from bench import apiarchive, harness, proc, report, scenarios, stats

RESULTS = pathlib.Path(__file__).resolve().parent / "results"
SCENARIOS = (
    "render",
    "cli",
    "floor",
    "foreign_pods",
    "start",
    "handoff",
    "api_cost",
    "burst",
    "memory",
    "archive",
)

_began = time.monotonic()


def say(message: str) -> None:
    print(f"[bench {time.monotonic() - _began:6.1f}s] {message}", flush=True)


def warm_up(h: harness.Harness, cfg: scenarios.Config) -> None:
    """One small pipeline end to end, so imports, connections and caches are warm before measuring."""
    from bench import watching

    ns = h.namespace("warmup")
    recorder = watching.Recorder(h.api, ns)
    recorder.start()
    h.create_pipeline(ns, harness.pipeline("warm", [0.1, 0.1, 0.1]))
    ok = recorder.wait(lambda: bool(recorder.pipeline_phase_times(watching.TERMINAL)), 60 * cfg.wait_factor)
    recorder.stop()
    h.delete_namespace(ns)
    if not ok:
        raise RuntimeError("the warm-up pipeline did not finish; operator log:\n" + h.operator.log()[-3000:])


def run(cfg: scenarios.Config, mode: str, only: tuple[str, ...], out: pathlib.Path) -> dict[str, Any]:
    from tests.cluster import binaries

    results: dict[str, Any] = {
        "mode": mode,
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": proc.machine(),
        "kubernetes": binaries.KUBERNETES_VERSION,
        "source": proc.source(),
        "load_before": proc.uptime_line(),
        "config": cfg.__dict__ | {"levels": [lv.__dict__ for lv in cfg.levels]},
        "scenarios": {},
        "errors": [],
    }
    sc = results["scenarios"]
    if "render" in only:
        sc["render"] = scenarios.render(cfg, say)
    if "cli" in only:
        sc["cli"] = scenarios.cli_startup(cfg, say)
    scenarios.STUCK_DIR[:] = [out / "logs"]
    cluster_scenarios = [s for s in only if s not in ("render", "cli")]
    if cluster_scenarios:
        h = harness.Harness.open(say)
        try:
            warm_up(h, cfg)
            fl = scenarios.Floor(h)
            steps = {
                "floor": lambda: scenarios.idle_floor(fl, cfg, say),
                "foreign_pods": lambda: scenarios.foreign_pods(h, say, 200 if mode == "full" else 30),
                "start": lambda: scenarios.start_latency(h, cfg, say),
                "handoff": lambda: scenarios.handoff(h, fl, cfg, say),
                "api_cost": lambda: scenarios.api_cost(h, cfg, say),
                "burst": lambda: scenarios.burst(h, cfg, say),
                "memory": lambda: scenarios.memory(h, cfg, say),
                "archive": lambda: apiarchive.archive(h, cfg, say),
            }
            for name in cluster_scenarios:
                try:
                    sc[name] = steps[name]()
                except Exception as error:  # noqa: BLE001 - report it and go on with the other scenarios
                    say(f"scenario {name} failed: {error}")
                    results["errors"].append({"scenario": name, "error": traceback.format_exc()})
                if not h.operator.alive():
                    results["errors"].append(
                        {"scenario": name, "error": "operator died:\n" + h.operator.log()[-3000:]}
                    )
                    h.start_operator()
            fl.stop()
        finally:
            results["logs"] = h.keep_logs(out / "logs")
            h.close()
    results["load_after"] = proc.uptime_line()
    results["seconds"] = time.monotonic() - _began
    return results


def write(results: dict[str, Any], out: pathlib.Path) -> list[pathlib.Path]:
    out.mkdir(parents=True, exist_ok=True)
    clean = stats.json_ready(results)
    text = json.dumps(clean, indent=1, sort_keys=False) + "\n"
    stamp = datetime.datetime.now().strftime("%Y-%m-%d-%H%M")
    paths = [out / "latest.json", out / f"{stamp}-{results['mode']}.json"]
    for path in paths:
        path.write_text(text)
    try:
        paths += report.plots(results, out)
    except Exception:  # noqa: BLE001 - plots are a nicety; the numbers are in the JSON
        say("could not draw the plots:\n" + traceback.format_exc())
    table = report.header(clean) + "\n\n" + report.table(clean) + "\n"  # as the JSON has the numbers
    (out / "table.md").write_text(table)
    paths.append(out / "table.md")
    return paths


def profile(cfg: scenarios.Config, out: pathlib.Path) -> None:
    """The operator under pyinstrument (bench.profiled) through one hand-off load of 100 pipelines."""
    out.mkdir(parents=True, exist_ok=True)
    h = harness.Harness.open(say)
    level = scenarios.Level(100, 8, 2.0, 4.0)
    runs = {}
    try:
        warm_up(h, cfg)
        fl = scenarios.Floor(h)
        say("the same load without the profiler first, to see what profiling costs")
        runs["plain"] = scenarios.handoff_once(h, fl, level, 0, cfg, say)
        h.restart_operator([sys.executable, "-m", "bench.profiled", str(out)])
        warm_up(h, cfg)
        runs["profiled"] = scenarios.handoff_once(h, fl, level, 0, cfg, say)
        fl.stop()
        h.operator.stop(timeout=300)  # SIGTERM: the wrapper writes the profiles on the way out
        summary: dict[str, Any] = {
            name: {k: v for k, v in run.items() if k != "samples_ms"} for name, run in runs.items()
        }
        summary["load"] = proc.uptime_line()
        summary["logs"] = h.keep_logs(out / "logs")
        (out / "profiled-run.json").write_text(json.dumps(stats.json_ready(summary), indent=1) + "\n")
    finally:
        h.close()
    for path in sorted(out.iterdir()):
        say(f"wrote {path}")


def compare(cfg: scenarios.Config, out: pathlib.Path, variants: list[str], burst: int, quick: bool) -> None:
    """The same loads against the operator under different settings: each variant is a list of
    ``PODLINE_*=value`` assignments (empty: the defaults), applied to the operator's environment."""
    out.mkdir(parents=True, exist_ok=True)
    scenarios.STUCK_DIR[:] = [out / "logs"]
    level = scenarios.Level(3, 3, 0.1, 0.2) if quick else scenarios.Level(100, 6, 8.0, 16.0)
    burst_cfg = dataclasses.replace(cfg, burst_pipelines=burst)
    results: dict[str, Any] = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": proc.machine(),
        "load_before": proc.uptime_line(),
        "variants": {},
    }
    h = harness.Harness.open(say)
    defaults = dict(h.operator.env)
    try:
        fl = scenarios.Floor(h)
        for variant in variants:
            label = variant.strip() or "defaults"
            say(f"compare: {label}")
            h.operator.env = {**defaults, **_assignments(variant)}
            h.restart_operator()
            warm_up(h, cfg)
            hand = scenarios.handoff_once(h, fl, level, 0, cfg, say)
            hand.pop("samples_ms", None)
            run = scenarios.burst_once(h, burst_cfg, 0, say)
            run.pop("series", None)
            results["variants"][label] = {"handoff_100": hand, "burst": run}
        fl.stop()
        results["logs"] = h.keep_logs(out / "logs")
    finally:
        h.close()
    results["load_after"] = proc.uptime_line()
    (out / "compare.json").write_text(json.dumps(stats.json_ready(results), indent=1) + "\n")
    lines = [
        (
            "| operator settings | hand-off p50 / p99 (ms) | floor p50 (ms) | operator CPU per hand-off (ms) | "
            f"burst of {burst}: pipelines/s (99 %) | operator CPU per pipeline (ms) |"
        ),
        "|---|---|---|---|---|---|",
    ]
    for label, r in results["variants"].items():
        hand, run = r["handoff_100"], r["burst"]
        lines.append(
            f"| {label} | {hand['handoff_ms']['p50']:.0f} / {hand['handoff_ms']['p99']:.0f} | "
            f"{hand['floor_ms']['round_trip']['p50']:.0f} | {hand['operator_cpu_ms_per_handoff']:.1f} | "
            f"{run['pipelines_per_second_99']:.1f} | {run['operator_cpu_ms_per_pipeline']:.0f} |"
        )
    (out / "compare.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _assignments(variant: str) -> dict[str, str]:
    pairs = {}
    for item in filter(None, (part.strip() for part in variant.split(","))):
        name, sep, value = item.partition("=")
        if not sep or not name.startswith("PODLINE_"):
            raise SystemExit(f"--compare: {item!r} is not PODLINE_NAME=value")
        pairs[name] = value
    return pairs


def node_main(args: argparse.Namespace, mode: str) -> int:
    from bench import nodebench

    only = (
        tuple(s.strip() for s in args.only.split(",") if s.strip())
        if args.only != ",".join(SCENARIOS)
        else nodebench.SCENARIOS
    )
    unknown = set(only) - set(nodebench.SCENARIOS)
    if unknown:
        raise SystemExit(
            f"--tier node: unknown scenarios {', '.join(sorted(unknown))} "
            f"(choose from {','.join(nodebench.SCENARIOS)})"
        )
    cfg = nodebench.NodeConfig.quick() if args.quick else nodebench.NodeConfig.full()
    if args.repeats is not None:
        cfg = dataclasses.replace(cfg, repeats=args.repeats)
    out = args.out or (RESULTS / "quick" if args.quick else RESULTS)
    results = nodebench.run(
        cfg,
        mode,
        only,
        out,
        say,
        args.peer_src,
        not args.no_peer,
        tekton_src=args.tekton_src,
        with_tekton=not args.no_tekton,
    )
    paths = nodebench.write(results, out)
    print()
    print((out / "node-table.md").read_text())
    for path in paths:
        say(f"wrote {path}")
    for error in results["errors"]:
        say(f"ERROR in {error['scenario']}:\n{error['error']}")
    return 1 if results["errors"] else 0


def _interrupted(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")  # so every finally runs and the cluster is torn down


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _interrupted)
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--tier",
        choices=("api", "node"),
        default="api",
        help="api: the operator and the apiserver with a scripted kubelet (default); node: what "
        "pipelines take on a real kubelet, next to drone-runner-kube and the floor",
    )
    parser.add_argument(
        "--peer-src",
        type=pathlib.Path,
        default=None,
        help="--tier node: a drone-runner-kube source checkout (default "
        "~/.cache/podline/peers/drone-runner-kube)",
    )
    parser.add_argument("--no-peer", action="store_true", help="--tier node: leave drone-runner-kube out")
    parser.add_argument(
        "--tekton-src",
        type=pathlib.Path,
        default=None,
        help="--tier node: a tektoncd/pipeline source checkout whose entrypoint is run (default "
        "~/.cache/podline/peers/tekton-pipeline)",
    )
    parser.add_argument("--no-tekton", action="store_true", help="--tier node: leave Tekton's entrypoint out")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run of every scenario")
    parser.add_argument(
        "--repeats", type=int, default=None, help="--tier node: repeats per scenario (default 5; --quick 1)"
    )
    parser.add_argument(
        "--out",
        type=pathlib.Path,
        default=None,
        help="where to write results (default bench/results, or bench/results/quick)",
    )
    parser.add_argument(
        "--only", default=",".join(SCENARIOS), help=f"comma-separated subset of {','.join(SCENARIOS)}"
    )
    parser.add_argument("--profile", action="store_true", help="profile the operator instead (pyinstrument)")
    parser.add_argument(
        "--compare",
        metavar="VARIANTS",
        default=None,
        help="compare operator settings instead: ';'-separated variants, each a comma-separated "
        "list of PODLINE_*=value (empty: defaults), e.g. ';PODLINE_STATUS_INTERVAL_MS=0'",
    )
    args = parser.parse_args(argv)
    mode = "quick" if args.quick else "full"
    if args.tier == "node":
        return node_main(args, mode)
    cfg = scenarios.Config.quick() if args.quick else scenarios.Config.full()
    if args.profile:
        profile(cfg, args.out or RESULTS / "profile")
        return 0
    if args.compare is not None:
        compare(
            cfg,
            args.out or (RESULTS / "quick" if args.quick else RESULTS) / "compare",
            args.compare.split(";"),
            30 if args.quick else 300,
            args.quick,
        )
        return 0
    only = tuple(s.strip() for s in args.only.split(",") if s.strip())
    unknown = set(only) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    out = args.out or (RESULTS / "quick" if args.quick else RESULTS)
    results = run(cfg, mode, only, out)
    paths = write(results, out)
    print()
    print((out / "table.md").read_text())
    for path in paths:
        say(f"wrote {path}")
    for error in results["errors"]:
        say(f"ERROR in {error['scenario']}:\n{error['error']}")
    return 1 if results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
