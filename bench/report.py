"""The bench's outputs: the table (Markdown, printed and put in README) and the matplotlib plots."""

from __future__ import annotations

import math
import pathlib
from collections.abc import Mapping
from typing import Any

TARGETS = {
    "handoff_p50_ms": 20.0,
    "handoff_p99_ms": 100.0,
    "start_p50_ms": 50.0,
    "burst_pipelines_per_second": 50.0,
    "idle_mb": 60.0,
    "at_1000_mb": 150.0,
}


def _ms(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}"


def _spread(s: Mapping[str, Any], unit: str = " ms", fmt: Any = _ms) -> str:
    if not s or s.get("repeats", 0) == 0:
        return "–"
    if s["repeats"] == 1:
        return f"{fmt(s['median'])}{unit}"
    return f"{fmt(s['median'])}{unit} [{fmt(s['min'])}–{fmt(s['max'])}]"


def _met(ok: bool | None) -> str:
    return "–" if ok is None else ("met" if ok else "**not met**")


def _rate(s: Mapping[str, Any]) -> float:
    """Pipelines/s of the burst: to the last run's end, or to the 99th percentile if some never ended."""
    value = s["pipelines_per_second"]["median"]
    if value is None or (isinstance(value, float) and math.isnan(value)):
        value = s["pipelines_per_second_99"]["median"]
    return float(value) if value is not None else math.nan


def table(results: Mapping[str, Any]) -> str:
    rows: list[tuple[str, str, str, str]] = []
    sc = results["scenarios"]
    fl = sc.get("floor", {})
    if fl:
        rows.append(
            (
                "floor: watch→PATCH round trip (idle), on a ConfigMap",
                f"p50 {_ms(fl['round_trip']['p50'])} ms, p99 {_ms(fl['round_trip']['p99'])} ms",
                f"one PATCH→event: p50 {_ms(fl['patch_to_event']['p50'])} ms",
                "–",
            )
        )
        if "pod" in fl:
            rows.append(
                (
                    "floor: the same on a pod the size of an 8-step run pod",
                    f"p50 {_ms(fl['pod']['round_trip']['p50'])} ms, p99 {_ms(fl['pod']['round_trip']['p99'])} ms",
                    f"one PATCH→event: p50 {_ms(fl['pod']['patch_to_event']['p50'])} ms",
                    "–",
                )
            )
    fp = sc.get("foreign_pods")
    if fp:
        rows.append(
            (
                "diagnostic: operator CPU per event of a pod it does not own",
                f"{fp['foreign pod']:.2f} ms (control: {fp['configmap (not watched)']:.2f} ms per ConfigMap write)",
                "the pod watch carries only podline's pods (label selector on the server)",
                "–",
            )
        )
    levels = sc.get("handoff", {})
    for key, level in levels.items():
        s = level["summary"]
        floor_p50 = level["floor_round_trip"]["p50"]
        lv = level["level"]
        target = ""
        if key == "100":
            met = (
                s["p50"]["median"] <= TARGETS["handoff_p50_ms"]
                and s["p99"]["median"] <= TARGETS["handoff_p99_ms"]
            )
            target = "p50 ≤ 20 ms, p99 ≤ 100 ms: " + _met(met)
        offered = lv.get("offered_handoffs_per_second")
        rows.append(
            (
                (
                    f"1. step end → status shows it (the operator's part of a hand-off), {lv['pipelines']} "
                    f"running pipeline(s){' (stress)' if 'stress' in key else ''}: "
                    f"{lv['steps']} steps of {lv['step_seconds'][0]:g}–{lv['step_seconds'][1]:g} s; "
                    + (f"{offered:.1f} step ends/s offered, " if offered else "")
                    + f"{_ms(level['handoffs_per_second']['median'])}/s done"
                ),
                f"p50 {_spread(s['p50'])}; p95 {_spread(s['p95'])}; p99 {_spread(s['p99'])}",
                (
                    f"floor p50 {_spread(floor_p50)} under the same load; p50 = {_spread(level['ratio_p50_to_floor'], '×')} "
                    f"floor; operator CPU {_spread(level['operator_cpu_ms_per_handoff'])} per step end"
                ),
                target or "–",
            )
        )
    st = sc.get("start")
    if st:
        p50 = st["summary"]["p50"]["median"]
        rows.append(
            (
                "2. start latency: Pipeline event → pod event",
                f"p50 {_spread(st['summary']['p50'])}; p99 {_spread(st['summary']['p99'])}",
                f"from the create request: p50 {_spread(st['from_request']['p50'])}",
                f"p50 ≤ 50 ms: {_met(p50 <= TARGETS['start_p50_ms'])}",
            )
        )
    bu = sc.get("burst")
    if bu:
        s = bu["summary"]
        run = bu["runs"][0]
        rows.append(
            (
                f"3. burst: {run['pipelines']} Pipelines of {run['steps']} steps created at once",
                (
                    f"all pods after {_spread(s['all_pods_seconds'], ' s')} ({_spread(s['pods_per_second'], '/s')}); "
                    f"all finished after {_spread(s['all_finished_seconds'], ' s')} = "
                    f"{_spread(s['pipelines_per_second'], ' pipelines/s')}; 99 % after "
                    f"{_spread(s['finished_99_seconds'], ' s')}"
                    + (f"; **{run['not_finished']} never finished**" if run.get("not_finished") else "")
                ),
                (
                    f"creating them took {_spread(s['create_seconds'], ' s')}; operator CPU "
                    f"{_spread(s['operator_cpu_ms_per_pipeline'])} per pipeline"
                ),
                f"≥ 50 pipelines/s: {_met(_rate(s) >= TARGETS['burst_pipelines_per_second'])}",
            )
        )
    me = sc.get("memory")
    if me:
        points = ", ".join(f"{p['active']}: {p['rss_mb']:.0f}" for p in me["points"])
        at_1000 = me.get("at_1000_mb")
        rows.append(
            (
                "4. operator RSS (MB) by active Pipelines",
                points,
                (
                    f"{me['kb_per_active_pipeline']:.0f} kB per active pipeline; after deleting all: "
                    f"{me['after_delete_mb']:.0f} MB"
                ),
                (
                    f"idle ≤ 60: {_met(me['idle_mb'] <= TARGETS['idle_mb'])}; 1000 ≤ 150: "
                    f"{_met(None if at_1000 is None or math.isnan(at_1000) else at_1000 <= TARGETS['at_1000_mb'])}"
                ),
            )
        )
    co = sc.get("api_cost")
    if co:
        for key, cost in co.items():
            rows.append(
                (
                    f"5. API requests per pipeline of {key} step(s)",
                    f"{cost['operator_writes_per_pipeline']:g} writes, {cost['operator_reads_per_pipeline']:g} reads",
                    ", ".join(f"{k} {v:g}" for k, v in cost["operator_writes"].items())
                    + (
                        f"; operator CPU {cost['operator_cpu_ms_per_pipeline']:.0f} ms per pipeline"
                        if "operator_cpu_ms_per_pipeline" in cost
                        else ""
                    ),
                    (
                        f"≤ {cost['target_writes']} writes: "
                        f"{_met(cost['operator_writes_per_pipeline'] <= cost['target_writes'])}"
                    ),
                )
            )
    re_ = sc.get("render")
    if re_:
        rows.append(
            (
                "6. render (compile + build_pod), pipelines/s",
                "; ".join(f"{k}: {_spread(v, '/s', lambda x: f'{x:.0f}')}" for k, v in re_.items()),
                "–",
                "–",
            )
        )
    cl = sc.get("cli")
    if cl:
        rows.append(
            (
                "6. CLI start-up",
                f"podline --help {_spread(cl['podline --help'])}",
                "; ".join(f"{k} {_spread(v)}" for k, v in cl.items() if k != "podline --help"),
                "–",
            )
        )
    ar = sc.get("archive")
    if ar:
        rows.append(_archive_row(ar))
    lines = [
        "| measure | result (median [min–max] over repeats) | floor / detail | target |",
        "|---|---|---|---|",
    ]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(lines)


def _archive_row(ar: Mapping[str, Any]) -> tuple[str, str, str, str]:
    """7. what the archive (a directory store) costs the operator per archived step, beside it off."""
    s, run = ar["summary"], ar["runs"]["file"][0] if ar["runs"].get("file") else {}
    per = s["archived_step"]
    return (
        (
            f"7. the archive's cost: {run.get('pipelines', '?')} Pipelines of "
            f"{run.get('steps', 0) // max(1, run.get('pipelines', 1))} steps at once, archive on (directory) "
            "beside off, a fresh operator each"
        ),
        (
            f"operator CPU per archived step {_spread(per['cpu_ms'])} (on − off, paired); "
            f"RSS growth per archived step {_spread(per['rss_kb'], ' kB', lambda x: f'{x:.1f}')}"
        ),
        (
            f"operator CPU per step: off {_spread(s['off']['cpu_ms_per_step'])}, on "
            f"{_spread(s['file']['cpu_ms_per_step'])} (on / off {_spread(per['cpu_ratio'], '×', lambda x: f'{x:.2f}')}); "
            f"all archived after {_spread(s['file']['seconds_to_archived'], ' s', lambda x: f'{x:.1f}')}; "
            "logs read back empty here (no node: see bench/apiarchive.py)"
        ),
        "–",
    )


def header(results: Mapping[str, Any]) -> str:
    m = results["machine"]
    src = results.get("source", {})
    dirty = (
        f" + uncommitted changes in {len(src['operator_changes_not_committed'])} operator file(s)"
        if src.get("operator_changes_not_committed")
        else ""
    )
    return (
        f"podline bench, {results['mode']} mode, {results['date']}, podline {src.get('commit', '?')}{dirty}: "
        f"{m['nproc']} × {m['cpu_model']}, "
        f"{m['memory_gb']} GB, Python {m['python']}, Kubernetes {results.get('kubernetes', '?')}; "
        f"load before {results['load_before']}, after {results['load_after']}; took {results['seconds']:.0f} s"
    )


def plots(results: Mapping[str, Any], out: pathlib.Path) -> list[pathlib.Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made: list[pathlib.Path] = []
    sc = results["scenarios"]
    stamp = f"{results['date']} · {results['machine']['nproc']} CPUs · {results['mode']} mode"

    # 1. latency CDFs
    if not (sc.get("floor") or sc.get("handoff") or sc.get("start")):
        return made
    fig, ax = plt.subplots(figsize=(8, 5))

    def cdf(values: list[float], label: str, **kw: Any) -> None:
        values = sorted(v for v in values if v > 0)
        if values:
            ax.step(
                values, [(i + 1) / len(values) for i in range(len(values))], where="post", label=label, **kw
            )

    cdf(
        sc.get("floor", {}).get("samples_ms", []),
        "floor: watch→PATCH round trip (idle)",
        color="black",
        linestyle=":",
    )
    for key, level in sc.get("handoff", {}).items():
        pooled = [x for run in level["runs"] for x in run["samples_ms"]]
        lv = level["level"]
        cdf(
            pooled,
            f"step end → status, {lv['pipelines']} running pipeline(s), steps {lv['step_seconds'][0]:g}–"
            f"{lv['step_seconds'][1]:g} s",
            linestyle=":" if "stress" in key else "-",
        )
    if sc.get("start"):
        cdf(
            [x for run in sc["start"]["runs"] for x in run["samples_ms"]],
            "start: Pipeline → pod",
            linestyle="--",
        )
    ax.set_xscale("log")
    ax.set_xlabel("latency (ms, log scale)")
    ax.set_ylabel("fraction of samples")
    ax.axvline(20, color="grey", linewidth=0.5)
    ax.axvline(100, color="grey", linewidth=0.5)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(f"podline latencies (api tier, scripted kubelet)\n{stamp}", fontsize=10)
    fig.tight_layout()
    made.append(out / "latency_cdf.png")
    fig.savefig(made[-1], dpi=110)
    plt.close(fig)

    # 2. burst throughput over time
    if sc.get("burst"):
        run = sc["burst"]["runs"][0]
        series = run["series"]
        fig, ax = plt.subplots(figsize=(8, 4.5))
        ax.plot(series["second"], series["pipelines_created"], label="Pipelines created /s", color="grey")
        ax.plot(series["second"], series["pods_created"], label="pods created /s")
        ax.plot(series["second"], series["runs_finished"], label="runs finished /s")
        ax.axhline(50, color="red", linewidth=0.7, linestyle="--", label="target 50 pipelines/s")
        ax.set_xlabel("seconds since the first create request")
        ax.set_ylabel("per second")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        ax.set_title(
            f"burst: {run['pipelines']} Pipelines × {run['steps']} steps created at once\n{stamp}",
            fontsize=10,
        )
        fig.tight_layout()
        made.append(out / "throughput.png")
        fig.savefig(made[-1], dpi=110)
        plt.close(fig)

    # 3. memory
    if sc.get("memory"):
        points = sc["memory"]["points"]
        fig, ax = plt.subplots(figsize=(7, 4.5))
        ax.plot(
            [p["active"] for p in points], [p["rss_mb"] for p in points], marker="o", label="operator RSS"
        )
        ax.axhline(60, color="green", linewidth=0.7, linestyle="--", label="target idle ≤ 60 MB")
        ax.axhline(150, color="red", linewidth=0.7, linestyle="--", label="target ≤ 150 MB at 1000")
        ax.set_xlabel("active (running) Pipelines, 3 steps each")
        ax.set_ylabel("VmRSS (MB)")
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        ax.set_title(f"operator memory\n{stamp}", fontsize=10)
        fig.tight_layout()
        made.append(out / "memory.png")
        fig.savefig(made[-1], dpi=110)
        plt.close(fig)
    return made
