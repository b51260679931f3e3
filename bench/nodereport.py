"""The node bench's outputs: the Markdown table (printed, and put in README) and the timeline plot."""

from __future__ import annotations

import math
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

PODLINE, PEER, TEKTON = "podline", "drone-runner-kube", "tekton entrypoint"
CHAIN, SHELL = "floor: chained containers", "floor: one shell"
COLUMNS = (PODLINE, PEER, TEKTON, CHAIN, SHELL)


def _num(value: Any) -> float:
    return math.nan if value is None else float(value)


def _fmt(value: float, unit: str) -> str:
    if math.isnan(value):
        return "–"
    if unit == "ms":
        return f"{value:.0f}" if value >= 100 else f"{value:.1f}"
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def _cell(s: Mapping[str, Any] | None, unit: str) -> str:
    if not s or not s.get("repeats"):
        return "–"
    median = _fmt(_num(s["median"]), unit)
    if s["repeats"] == 1:
        return f"{median} {unit}"
    return f"{median} {unit} [{_fmt(_num(s['min']), unit)}–{_fmt(_num(s['max']), unit)}]"


def _ratio(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> str:
    if not a or not b:
        return "–"
    x, y = _num(a.get("median")), _num(b.get("median"))
    if math.isnan(x) or math.isnan(y) or x <= 0 or y <= 0:  # a hand-off below 0 (see README) has no ratio
        return "–"
    return f"{x / y:.2f}×" if x / y < 10 else f"{x / y:.0f}×"


def _pooled(s: Mapping[str, Any]) -> str:
    if not s or not s.get("n"):
        return "–"
    return f"{_fmt(_num(s['p50']), 'ms')} / {_fmt(_num(s['p99']), 'ms')} ms / {s['n']}"


def header(results: Mapping[str, Any]) -> str:
    m = results.get("machine", {})
    v = results.get("versions", {})
    peer = v.get("drone-runner-kube", {})
    peer_text = (
        f"drone-runner-kube {str(peer.get('commit', ''))[:12]} ({peer.get('go', '')})"
        if "commit" in peer
        else f"drone-runner-kube not run: {peer.get('not run', '?')}"
    )
    tekton = v.get("tekton", {})
    if "commit" in tekton:
        left = ", ".join(f"{s} skipped" for s in (results.get("skipped") or {}).get(TEKTON, ()))
        peer_text += (
            f"; Tekton's entrypoint {str(tekton['commit'])[:12]} ({tekton.get('go', '')}"
            f"{', ' + left if left else ''})"
        )
    else:
        peer_text += f"; Tekton's entrypoint not run: {tekton.get('not run', '?')}"
    return (
        f"podline node bench, {results.get('mode')} mode, {results.get('date')}, podline "
        f"{results.get('source', {}).get('commit', '?')}: {m.get('nproc')} × {m.get('cpu_model')}, "
        f"{m.get('memory_gb')} GB, kernel {m.get('kernel')}; Kubernetes {v.get('kubernetes', '?')} "
        f"(kubelet), {v.get('containerd', '?')}; {peer_text}; {results.get('config', {}).get('repeats')} "
        f"repeats; load before: {results.get('load_before', '')}; took {_num(results.get('seconds')):.0f} s"
    )


def table(results: Mapping[str, Any]) -> str:
    summary = results.get("summary") or {}
    cfg = results.get("config") or {}
    rows = [
        (
            "| scenario (median [min–max] over repeats) | podline | drone-runner-kube | tekton entrypoint "
            "| floor: chained containers | floor: one shell | podline / drone-runner-kube "
            "| podline / floor (chained) | podline / tekton entrypoint |"
        ),
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def row(label: str, cells: Mapping[str, Mapping[str, Any] | None], unit: str) -> None:
        values = [_cell(cells.get(c), unit) for c in COLUMNS]
        rows.append(
            f"| {label} | {' | '.join(values)} | {_ratio(cells.get(PODLINE), cells.get(PEER))} | "
            f"{_ratio(cells.get(PODLINE), cells.get(CHAIN))} | {_ratio(cells.get(PODLINE), cells.get(TEKTON))} |"
        )

    e2e = summary.get("e2e", {})
    for size in cfg.get("sizes", ()):
        row(
            f"1. {size} step(s) of `echo`: submit → result",
            {c: e2e.get(c, {}).get(str(size)) for c in COLUMNS},
            "s",
        )
    handoff = summary.get("handoff", {})
    for q in ("p50", "p95", "p99", "max"):
        row(
            f"2. step hand-off {q} (end of step → start of the next, containerd)",
            {c: handoff.get(c, {}).get("per_repeat", {}).get(q) for c in COLUMNS},
            "ms",
        )
    pooled = {c: handoff.get(c, {}).get("waiting_pooled_ms") or {} for c in COLUMNS}
    rows.append(
        "| 2. hand-off p50 / p99 / n, only where the next step's container was already running "
        "(all repeats pooled) | " + " | ".join(_pooled(pooled[c]) for c in COLUMNS) + " | – | – | – |"
    )
    fan = summary.get("fanout", {})
    row(
        "3. fan-out a → (b, c) → d: submit → result", {c: fan.get(c, {}).get("seconds") for c in COLUMNS}, "s"
    )
    row(
        "3. fan-out: hand-off p50 (a → b, a → c, b and c → d)",
        {c: fan.get(c, {}).get("handoff_ms", {}).get("p50") for c in COLUMNS},
        "ms",
    )
    many = summary.get("concurrent", {})
    count = cfg.get("concurrent")
    row(
        f"4. {count} fan-outs at once: until the last one ends",
        {c: many.get(c, {}).get("total") for c in COLUMNS},
        "s",
    )
    row(
        f"4. {count} fan-outs at once: each one, p50",
        {c: many.get(c, {}).get("each", {}).get("p50") for c in COLUMNS},
        "s",
    )
    row(
        f"4. {count} fan-outs at once: each one, max",
        {c: many.get(c, {}).get("each", {}).get("max") for c in COLUMNS},
        "s",
    )
    wait = summary.get("wait", {})
    first, count, each = cfg.get("wait") or (3.0, 9, 0.2)
    label = f"5. a `sleep {first:g}` step, then {count} of `sleep {each:g}`"
    row(f"{label}: submit → result", {c: wait.get(c, {}).get("seconds") for c in COLUMNS}, "s")
    for q in ("p50", "p99", "max"):
        row(
            f"{label}: hand-off {q}",
            {c: wait.get(c, {}).get("handoff_ms", {}).get(q) for c in COLUMNS},
            "ms",
        )
    waited = {c: wait.get(c, {}).get("waiting_pooled_ms") or {} for c in COLUMNS}
    rows.append(
        f"| {label}: hand-off p50 / p99 / n, only where the next step's container was already running "
        "(all repeats pooled) | " + " | ".join(_pooled(waited[c]) for c in COLUMNS) + " | – | – | – |"
    )
    return "\n".join(rows)


ARCHIVE_COLUMNS = ("off", "file", "s3")


def archive_table(results: Mapping[str, Any]) -> str:
    """The ``archive`` scenario: the same pipeline with the archive off, on (directory) and on (S3)."""
    archive = results.get("archive") or {}
    summary = archive.get("summary") or {}
    steps = archive.get("steps")
    repeats = (results.get("config") or {}).get("repeats")
    rows = [
        (
            f"| {steps} steps of `echo`, one at a time (median [min–max] over {repeats} repeats) | archive off "
            "| archive on: directory | archive on: S3 (s3proxy) | directory / off | S3 / off |"
        ),
        "|---|---|---|---|---|---|",
    ]

    def row(label: str, key: str, unit: str, ratios: bool = True) -> None:
        cells = {v: (summary.get(v) or {}).get(key) for v in ARCHIVE_COLUMNS}
        off = cells["off"] if ratios else None
        rows.append(
            f"| {label} | {' | '.join(_cell(cells[v], unit) for v in ARCHIVE_COLUMNS)} | "
            f"{_ratio(cells['file'], off)} | {_ratio(cells['s3'], off)} |"
        )

    row("submit → result", "seconds", "s")
    row("step hand-off p50 (end of step → start of the next, containerd)", "handoff_p50_ms", "ms")
    row("archive lag: the run's end (its record's `finishedAt`) → `record.json` written", "lag_from_end_ms", "ms",
        False)  # fmt: skip
    row("archive lag: the result seen by the bench's watch → `record.json` written", "lag_from_result_ms", "ms",
        False)  # fmt: skip
    row("operator CPU, submit → archived (off: ended) + 1 s", "operator_cpu_ms", "ms")
    row("operator CPU per archived step: (on − off) / steps, paired by repeat", "cpu_ms_per_archived_step", "ms",
        False)  # fmt: skip
    rss = {v: (summary.get(v) or {}).get("operator_rss_mb") or {} for v in ARCHIVE_COLUMNS}
    rows.append(
        "| operator RSS after the first → the last run (MB) | "
        + " | ".join(_rss(rss[v]) for v in ARCHIVE_COLUMNS)
        + " | – | – |"
    )
    for variant, why in (archive.get("not_run") or {}).items():
        rows.append(f"\n{LABEL.get(variant, variant)} not run: {why}")
    return "\n".join(rows)


LABEL = {"off": "archive off", "file": "archive on: directory", "s3": "archive on: S3 (s3proxy)"}


def _rss(s: Mapping[str, Any]) -> str:
    first, last = _num(s.get("first")), _num(s.get("last"))
    if math.isnan(first) or math.isnan(last):
        return "–"
    return f"{first:.1f} → {last:.1f}"


def document(results: Mapping[str, Any]) -> str:
    """``node-table.md``: the header, then the tables of the scenarios that ran."""
    only = results.get("only") or COMPARED
    parts = [header(results)]
    if any(s in only for s in COMPARED):
        parts.append(table(results))
    if results.get("archive"):
        parts.append(archive_table(results))
    return "\n\n".join(parts) + "\n"


COMPARED = ("e2e", "fanout", "concurrent", "wait")  # the scenarios of `table` (nodebench.SYSTEM_SCENARIOS)


def timeline_plot(results: Mapping[str, Any], path: pathlib.Path) -> pathlib.Path:
    """One 10-step run of each system, one above the other on one time axis (0 = submitted)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = results.get("timeline") or {}
    systems = [c for c in COLUMNS if c in runs]
    if not systems:
        raise ValueError("no timeline in the results")
    figure, axes = plt.subplots(
        len(systems), 1, sharex=True, figsize=(11, 1.0 + 1.9 * len(systems)), squeeze=False
    )
    colours = {
        PODLINE: "tab:blue",
        PEER: "tab:orange",
        TEKTON: "tab:purple",
        CHAIN: "tab:green",
        SHELL: "tab:gray",
    }
    for axis, system in zip(axes[:, 0], systems, strict=True):
        run = runs[system]
        steps: Sequence[Mapping[str, Any]] = [s for s in run["steps"] if s.get("start") is not None]
        for i, step in enumerate(steps):
            start, end = step["start"], step.get("end") or step["start"]
            ready = step.get("ready")
            if ready is not None and ready < start - 0.005:  # its container was up and waiting
                axis.broken_barh([(ready, start - ready)], (i - 0.15, 0.3), color="lightgray")
            axis.broken_barh(
                [(start, max(end - start, 0.0))], (i - 0.4, 0.8), color=colours.get(system, "tab:blue")
            )
            axis.plot([start], [i], marker="|", color="black", markersize=8)
        done = run.get("seconds")
        if done is not None:
            axis.axvline(done, color="red", linestyle="--", linewidth=1)
            axis.text(done, -0.5, f" result {done:.2f} s", color="red", va="top", fontsize=8)
        axis.axvline(0, color="black", linewidth=0.8)
        axis.set_ylim(max(len(steps), 1) - 0.2, -0.8)  # step 1 on top
        axis.set_yticks(range(len(steps)))
        axis.set_yticklabels([str(i + 1) for i in range(len(steps))], fontsize=7)
        axis.set_ylabel("step")
        size = (results.get("config") or {}).get("timeline_size")
        title = (
            f"{system}: all {size} commands in one container"
            if system == SHELL
            else f"{system}: {len(steps)} steps"
        )
        axis.set_title(title, fontsize=9, loc="left")
        axis.grid(axis="x", alpha=0.3)
    axes[-1, 0].set_xlabel(
        "seconds since submit (kubectl apply / exec started); | = step start (containerd), "
        "bar = step running, grey = its container up and waiting"
    )
    size = (results.get("config") or {}).get("timeline_size")
    figure.suptitle(
        f"{size} steps of `echo` on the node tier: where the time goes ({results.get('date', '')})",
        fontsize=10,
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
