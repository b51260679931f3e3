"""The archive's cost to the operator on the api tier: CPU and RSS per archived step, archive on beside off.

``python -m bench.run --only archive`` (part of the full api bench). Each repeat runs the same load twice,
the order alternating: a fresh operator (restarted, warmed up with one run) with the archive off, and one
with ``PODLINE_ARCHIVE=file://…`` (a directory). The load: ``archive_pipelines`` Pipelines of
``archive_steps`` steps created at once; the bench waits until every run has ended and, with the archive
on, until every run's ``record.json`` is in the directory, then `SETTLE` s (both), and reads the
operator's CPU time and RSS (``/proc``) against their values before the load. The difference on − off, per
step of the load, is what archiving costs the operator per archived step (paired by repeat).

What the api tier can and cannot say: its pods are scripted (`bench.kubelet`) and scheduled to no node, so
the apiserver answers every ``pods/log`` request at once with an empty log (it has no kubelet to ask). The
archiver does everything else as in production — the whole pod read, one ``pods/log`` request per step, a
store write per step and the record, the pod's annotation — but no log bytes travel. The node bench's
``archive`` scenario (`nodearchive`) measures the operator's CPU per archived step with real logs.
"""

from __future__ import annotations

import math
import pathlib
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from bench import harness, proc, stats, watching

Say = Callable[[str], None]
VARIANTS = ("off", "file")
SETTLE = 2.0  # s after the last run ended (off) or was archived (on), before CPU and RSS are read


def records(store: pathlib.Path, namespace: str) -> list[pathlib.Path]:
    """The ``record.json`` files of a namespace's runs in a directory store."""
    return sorted((store / namespace).glob("*/*/record.json")) if (store / namespace).is_dir() else []


def _wait(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _terminal(recorder: watching.Recorder, names: set[str]) -> int:
    return len(set(recorder.pipeline_phase_times(watching.TERMINAL)) & names)


def _start(h: harness.Harness, store: pathlib.Path | None, defaults: Mapping[str, str], say: Say) -> None:
    """A fresh operator, archive on (``store``) or off, warmed up by one run (archived, if on)."""
    h.operator.env = {**defaults, **({"PODLINE_ARCHIVE": f"file://{store}"} if store else {})}
    h.restart_operator()
    ns = h.namespace("archive-warm")
    recorder = watching.Recorder(h.api, ns)
    recorder.start()
    h.create_pipeline(ns, harness.pipeline("warm", [0.1, 0.1]))
    ended = recorder.wait(lambda: _terminal(recorder, {"warm"}) == 1, 60)
    recorder.stop()
    if store is not None and ended and not _wait(lambda: bool(records(store, ns)), 60):
        say("archive: the warm-up run was not archived within 60 s")
    h.delete_namespace(ns)


def archive_once(
    h: harness.Harness, cfg: Any, store: pathlib.Path | None, repeat: int, say: Say
) -> dict[str, Any]:
    """One load on a fresh operator; ``store`` None: the archive off."""
    ns = h.namespace(f"archive-{'on' if store else 'off'}")
    recorder = watching.Recorder(h.api, ns)
    recorder.start()
    bodies = [
        harness.pipeline(f"a{i:04d}", [cfg.archive_step_seconds] * cfg.archive_steps)
        for i in range(cfg.archive_pipelines)
    ]
    names = {b["metadata"]["name"] for b in bodies}
    steps = cfg.archive_pipelines * cfg.archive_steps
    time.sleep(SETTLE)
    rss0, cpu0 = proc.rss_median_mb(h.operator.pid, gap=0.3), h.cpu()
    began = time.monotonic()
    h.create_pipelines(ns, bodies)
    budget = (60 + cfg.archive_pipelines * cfg.archive_steps * cfg.archive_step_seconds) * cfg.wait_factor
    ended = recorder.wait(lambda: _terminal(recorder, names) >= len(names), budget)
    ran = time.monotonic() - began
    archived = store is None or _wait(lambda: len(records(store, ns)) >= len(names), budget)
    archived_after = time.monotonic() - began
    time.sleep(SETTLE)
    cpu1, rss1 = h.cpu(), proc.rss_median_mb(h.operator.pid, gap=0.3)
    recorder.stop()
    kept = records(store, ns) if store else []
    log_bytes = sum(p.stat().st_size for r in kept for p in r.parent.glob("*.log"))
    h.delete_namespace(ns)
    h.cluster.kubectl("wait", "--for=delete", f"namespace/{ns}", "--timeout=300s", check=False)
    cpu_ms = 1000.0 * (cpu1.get("operator", 0.0) - cpu0.get("operator", 0.0))
    result = {
        "archive": "file" if store else "off",
        "repeat": repeat,
        "pipelines": cfg.archive_pipelines,
        "steps": steps,
        "ended": _terminal(recorder, names),
        "all_ended": ended,
        "all_archived": archived,
        "records": len(kept),
        "log_bytes_archived": log_bytes,
        "seconds_to_end": ran,
        "seconds_to_archived": archived_after if store else math.nan,
        "operator_cpu_ms": cpu_ms,
        "operator_cpu_ms_per_step": cpu_ms / steps,
        "rss_mb_before": rss0,
        "rss_mb_after": rss1,
        "rss_kb_per_step": 1024.0 * (rss1 - rss0) / steps,
    }
    say(
        f"archive {result['archive']:<4} (repeat {repeat + 1}): {steps} steps ended after {ran:.1f} s"
        + (
            f", {len(kept)} runs archived after {archived_after:.1f} s ({log_bytes} log bytes)"
            if store
            else ""
        )
        + f"; operator CPU {cpu_ms / steps:.2f} ms per step, RSS {rss0:.1f} → {rss1:.1f} MB"
    )
    return result


def archive(h: harness.Harness, cfg: Any, say: Say) -> dict[str, Any]:
    """Every repeat: the load with the archive off and on (order alternating), each on a fresh operator."""
    defaults = dict(h.operator.env)
    root = pathlib.Path(tempfile.mkdtemp(prefix="podline-bench-archive-"))
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in VARIANTS}
    try:
        for repeat in range(cfg.archive_repeats):
            for variant in VARIANTS if repeat % 2 == 0 else VARIANTS[::-1]:
                store = root / f"r{repeat}" if variant == "file" else None
                _start(h, store, defaults, say)
                runs[variant].append(archive_once(h, cfg, store, repeat, say))
    finally:
        h.operator.env = defaults
        h.restart_operator()
        shutil.rmtree(root, ignore_errors=True)
    return {"summary": summarise(runs), "runs": runs}


def summarise(runs: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, Any]:
    off, on = runs.get("off", []), runs.get("file", [])
    pairs = list(zip(on, off, strict=False))
    out: dict[str, Any] = {
        variant: {
            "cpu_ms_per_step": stats.spread(r["operator_cpu_ms_per_step"] for r in found),
            "rss_kb_per_step": stats.spread(r["rss_kb_per_step"] for r in found),
            "rss_mb_after": stats.spread(r["rss_mb_after"] for r in found),
        }
        for variant, found in runs.items()
    }
    out["file"] = out.get("file", {}) | {
        "seconds_to_archived": stats.spread(r["seconds_to_archived"] for r in on),
        "records": [r["records"] for r in on],
        "log_bytes_archived": [r["log_bytes_archived"] for r in on],
    }
    out["archived_step"] = {
        "cpu_ms": stats.spread(
            a["operator_cpu_ms_per_step"] - b["operator_cpu_ms_per_step"] for a, b in pairs
        ),
        "rss_kb": stats.spread(a["rss_kb_per_step"] - b["rss_kb_per_step"] for a, b in pairs),
        "cpu_ratio": stats.spread(
            a["operator_cpu_ms"] / b["operator_cpu_ms"] for a, b in pairs if b["operator_cpu_ms"]
        ),
    }
    return out
