"""A run page's "earlier runs": the Pipeline's ``status.history`` merged with the runs in its archive.

Purely computational. The operator keeps the last runs in the status (run, phase, pod, end time: their pods may
still exist); the archive keeps every run's ``record.json`` (``core.records``: result, start and end in ms, and
each step's name, container, state, exit code and times), also of runs long gone from the status. One entry per
run, newest first by its end, the current run left out (the page shows it above): what the status says of a run
(its phase, its pod) with what its record adds (its duration and steps). ``version`` says when the list may have
changed (a run started or ended), so the server reads the archive again then and not at every page open.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from podline.core import observing, statuses

SHOWN = 50  # entries listed at most; the rest are counted (`podline get` lists them all)


def version(body: Mapping[str, Any]) -> str:
    """What of the Pipeline decides its earlier runs: the current run, whether it ended, and the kept runs."""
    status = body.get("status") if isinstance(body.get("status"), Mapping) else {}
    status = status or {}
    kept = [h.get("run") for h in status.get("history") or [] if isinstance(h, Mapping)]
    ended = status.get("phase") in statuses.TERMINAL_PHASES
    return json.dumps([status.get("run"), ended, kept])


def _end_ms(stamp: Any) -> int | None:
    if isinstance(stamp, bool):
        return None
    if isinstance(stamp, int | float):
        return int(stamp)
    if not isinstance(stamp, str) or not stamp:
        return None
    try:
        return round(datetime.fromisoformat(stamp).timestamp() * 1000)
    except ValueError:
        return None


def _ms(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def step_of(step: Mapping[str, Any]) -> dict[str, Any]:
    """A step as its record has it: name, container, state, exit code, start and end (RFC 3339, ms)."""
    started, finished = _ms(step.get("startedAt")), _ms(step.get("finishedAt"))
    code = step.get("exitCode")
    return {
        "name": str(step.get("name") or step.get("container") or ""),
        "container": str(step.get("container") or ""),
        "state": str(step.get("state") or "unknown"),
        "exitCode": code if isinstance(code, int) and not isinstance(code, bool) else None,
        "reason": step.get("reason") if isinstance(step.get("reason"), str) else None,
        "startedAt": observing.ms_time(started),
        "finishedAt": observing.ms_time(finished),
        "took_ms": finished - started if started is not None and finished is not None else None,
    }


def from_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """An archived run's entry."""
    started, finished = _ms(record.get("startedAt")), _ms(record.get("finishedAt"))
    return {
        "run": str(record.get("run") or ""),
        "phase": str(record.get("result") or "unknown"),
        "pod": record.get("pod") if isinstance(record.get("pod"), str) else None,
        "completed": observing.ms_time(finished),
        "duration_s": (finished - started) / 1000 if started is not None and finished is not None else None,
        "kept": False,
        "archived": True,
        "steps": [step_of(s) for s in record.get("steps") or [] if isinstance(s, Mapping)],
    }


def from_status(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A run the operator keeps in the status (its steps are not there: the page offers the current run's)."""
    return {
        "run": str(entry.get("run")),
        "phase": str(entry.get("phase") or ""),
        "pod": entry.get("podName"),
        "completed": entry.get("completionTime"),
        "duration_s": None,
        "kept": True,
        "archived": False,
        "steps": None,
    }


def _both(kept: dict[str, Any], archived: dict[str, Any]) -> dict[str, Any]:
    """A run in the status and in the archive: the status' phase, pod and end; the record's duration and steps."""
    return {
        **archived,
        "phase": kept["phase"] or archived["phase"],
        "pod": kept["pod"] or archived["pod"],
        "completed": kept["completed"] or archived["completed"],
        "kept": True,
    }


def merge(
    body: Mapping[str, Any], records: Sequence[Mapping[str, Any]], *, shown: int = SHOWN
) -> dict[str, Any]:
    """The earlier runs of the Pipeline ``body`` with its archived ``records``: ``{"runs": [...], "more": N}``,
    at most ``shown`` runs, newest first (by end; runs without a known end last, in the status' order, then by
    run), N the runs left out."""
    status = body.get("status") if isinstance(body.get("status"), Mapping) else {}
    status = status or {}
    current = status.get("run")
    entries: dict[str, dict[str, Any]] = {}
    for h in status.get("history") or []:
        if (
            isinstance(h, Mapping)
            and h.get("run")
            and h.get("run") != current
            and str(h["run"]) not in entries
        ):
            entries[str(h["run"])] = from_status(h)
    for record in records:
        if not isinstance(record, Mapping) or not record.get("run") or record.get("run") == current:
            continue
        archived = from_record(record)
        kept = entries.get(archived["run"])
        if kept is None or kept["archived"]:
            entries.setdefault(archived["run"], archived)
        else:
            entries[archived["run"]] = _both(kept, archived)
    order = {run: i for i, run in enumerate(entries)}
    ranked = sorted(
        entries.values(),
        key=lambda e: (
            -(_end_ms(e["completed"]) or 0),
            order[e["run"]] if e["kept"] else len(order),
            e["run"],
        ),
    )
    return {"runs": ranked[:shown], "more": max(0, len(ranked) - shown)}
