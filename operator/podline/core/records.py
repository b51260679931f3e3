"""The run record: what the archive keeps of a run once its pod has ended, and when archived runs go.

Pure: from a run pod (as the API shows it) to the record (every step's state, exit code, reason, start and end
in ms, the image and the digest it ran), the store keys of the record and of each step's output, whether the
pod is ready to archive or already archived, and which archived runs retention prunes. The shell
(``shell.archiving``) reads the logs, writes the store and marks the pod; the scheduler keeps a pod beyond the
history limit until it is marked (``must_keep``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from podline.core import conventions, observing, stepping

RECORD = "record.json"
FINISHED = ("Succeeded", "Failed")


def run_prefix(namespace: str, pipeline: str, run: str) -> str:
    """Where a run's files live in the store: ``<namespace>/<pipeline>/<run>/``."""
    return f"{namespace}/{pipeline}/{run}/"


def log_key(namespace: str, pipeline: str, run: str, container: str) -> str:
    return run_prefix(namespace, pipeline, run) + f"{container}.log"


def identity(pod: Mapping[str, Any]) -> tuple[str, str, str]:
    """(namespace, Pipeline name, run) of a run pod."""
    meta = pod.get("metadata") or {}
    pipeline = observing.annotations(pod).get(conventions.ANNOTATION_PIPELINE_NAME) or (
        meta.get("labels") or {}
    ).get(conventions.LABEL_PIPELINE, "")
    return meta.get("namespace", ""), pipeline, (meta.get("labels") or {}).get(conventions.LABEL_RUN, "")


def step_containers(pod: Mapping[str, Any]) -> list[str]:
    """The pod's step containers, in the pod's order."""
    containers = (pod.get("spec") or {}).get("containers") or []
    return [c["name"] for c in containers if c["name"].startswith(conventions.CONTAINER_STEP_PREFIX)]


def is_over(pod: Mapping[str, Any]) -> bool:
    """The run's pod has ended (or every step container has): its output is complete."""
    if observing.pod_phase(pod) in FINISHED:
        return True
    statuses = observing.container_statuses(pod)
    names = step_containers(pod)
    return bool(names) and all("terminated" in (statuses.get(n, {}).get("state") or {}) for n in names)


def is_archived(pod: Mapping[str, Any]) -> bool:
    return bool(observing.annotations(pod).get(conventions.ANNOTATION_ARCHIVED))


def archived_patch(at: datetime) -> dict[str, Any]:
    return {"metadata": {"annotations": {conventions.ANNOTATION_ARCHIVED: at.isoformat(timespec="seconds")}}}


def must_keep(pod: Mapping[str, Any], *, now: datetime, archive_wait_seconds: float) -> bool:
    """A pod the history limit would delete is kept while its run is not archived yet — for at most
    ``archive_wait_seconds`` after it ended (0: no archive, nothing kept)."""
    if archive_wait_seconds <= 0 or is_archived(pod):
        return False
    ended = _ended_at(pod)
    waited = observing.seconds_since(ended, now) if ended else None
    return waited is None or waited < archive_wait_seconds


def _ended_at(pod: Mapping[str, Any]) -> str | None:
    ends = [
        (s.get("state") or {}).get("terminated", {}).get("finishedAt")
        for s in observing.container_statuses(pod).values()
    ]
    known = sorted(e for e in ends if e)
    return known[-1] if known else None


def record(pod: Mapping[str, Any]) -> dict[str, Any]:
    """The run's record, as JSON-ready data."""
    namespace, pipeline, run = identity(pod)
    statuses = observing.container_statuses(pod)
    specs = {c["name"]: c for c in (pod.get("spec") or {}).get("containers") or []}
    steps = [_step(name, statuses.get(name, {}), specs.get(name, {})) for name in step_containers(pod)]
    started = [s["startedAt"] for s in steps if s["startedAt"] is not None]
    finished = [s["finishedAt"] for s in steps if s["finishedAt"] is not None]
    return {
        "namespace": namespace,
        "pipeline": pipeline,
        "run": run,
        "pod": (pod.get("metadata") or {}).get("name"),
        "result": result_of(steps, observing.annotations(pod).get(conventions.ANNOTATION_STOPPED)),
        "startedAt": min(started) if started else None,
        "finishedAt": max(finished) if finished else None,
        "steps": steps,
    }


def _step(name: str, status: Mapping[str, Any], spec: Mapping[str, Any]) -> dict[str, Any]:
    terminated = (status.get("state") or {}).get("terminated") or {}
    result = stepping.parse_message(name, terminated.get("message"))
    image_id = status.get("imageID") or ""
    out: dict[str, Any] = {
        "name": name.removeprefix(conventions.CONTAINER_STEP_PREFIX),
        "container": name,
        "image": spec.get("image"),
        "imageDigest": image_id.rpartition("@")[2] or None,
    }
    if result is not None:
        return out | {
            "failing": stepping.is_failing(_args(spec), result.state),
            "state": str(result.state),
            "exitCode": result.exit_code,
            "reason": result.reason,
            "startedAt": result.started_at,
            "finishedAt": result.finished_at,
            "outputBytes": result.output_bytes,
        }
    # no result: the container never ran its entrypoint to the end (the kubelet's reason, if any)
    return out | {
        "failing": True,
        "state": "failed" if terminated else "unknown",
        "exitCode": terminated.get("exitCode"),
        "reason": terminated.get("reason"),
        "startedAt": None,
        "finishedAt": None,
        "outputBytes": None,
    }


def _args(spec: Mapping[str, Any]) -> stepping.StepArgs:
    try:
        return stepping.parse_args(spec.get("args") or [])
    except (stepping.BadArgs, ValueError):
        return stepping.StepArgs(name=str(spec.get("name", "")))


def result_of(steps: Sequence[Mapping[str, Any]], stopped: str | None) -> str:
    """Why the pod was stopped (Cancelled, Timeout, Superseded, …) if that cut a step short (a result with
    reason ``Stopped``, or none at all); else Succeeded unless a step failed in a way that fails the run (not
    ``failure: ignore``, not detached). A pod stopped after its run ended (superseded by a rerun) keeps the
    run's own result."""
    cut_short = any(s["reason"] == "Stopped" or s["state"] == "unknown" for s in steps)
    if stopped and stopped not in ("Completed", "StepFailed") and cut_short:
        return str(stopped)
    return "Failed" if stopped == "StepFailed" or any(s["failing"] for s in steps) else "Succeeded"


def truncation_note(limit: int) -> bytes:
    return f"\n[podline: output truncated: only the first {limit} bytes were archived (PODLINE_LOG_LIMIT)]\n".encode()


def gap_note(missing: int, written: int) -> bytes:
    return (
        f"\n[podline: {missing} of the {written} bytes this step wrote are missing here: the node's log "
        "pipeline lost them (the copy on the pod's volume has them)]\n"
    ).encode()


def limited(log: bytes, limit: int, written: int | None = None) -> bytes:
    """A step's log as archived: at most ``limit`` bytes, then a note saying it was cut (the log was read with
    ``limitBytes`` = ``limit`` + 1, so a longer one shows); and a note when it is shorter than the ``written``
    bytes the entrypoint counted (its result's ``outputBytes``): the node's log pipeline lost some."""
    if len(log) > limit:
        return log[:limit] + truncation_note(limit)
    if written is not None and len(log) < min(written, limit):
        return log + gap_note(min(written, limit) - len(log), written)
    return log


def encode(data: Mapping[str, Any]) -> bytes:
    return (json.dumps(data, indent=1, sort_keys=True) + "\n").encode()


# --- retention ------------------------------------------------------------------------------------------

_AGE = re.compile(r"^(\d+)([smhd])$")
_RUNS = re.compile(r"^(\d+)\s*runs?$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Retention:
    max_age_seconds: int | None = None  # runs that finished longer ago go
    max_runs: int | None = None  # per Pipeline, the newest kept

    @property
    def keeps_all(self) -> bool:
        return self.max_age_seconds is None and self.max_runs is None


def parse_retention(text: str) -> Retention:
    """``PODLINE_LOG_RETENTION``: comma-separated ``<N>d|h|m|s`` (age) and/or ``<N>runs`` (per Pipeline);
    empty: keep everything. Raises ValueError saying what is wrong."""
    age: int | None = None
    runs: int | None = None
    for raw in (t.strip().lower() for t in text.split(",")):
        if not raw:
            continue
        if m := _AGE.match(raw):
            age = int(m.group(1)) * _SECONDS[m.group(2)]
        elif m := _RUNS.match(raw):
            runs = int(m.group(1))
        else:
            raise ValueError(f"{raw!r} is neither an age (30d, 12h, 90m) nor a count of runs (20runs)")
        if (age is not None and age <= 0) or (runs is not None and runs <= 0):
            raise ValueError(f"{raw!r}: must be more than 0")
    return Retention(age, runs)


def to_prune(runs: Sequence[tuple[str, int | None]], *, retention: Retention, now_ms: int) -> list[str]:
    """Of one Pipeline's archived runs (run id, finished ms), those retention removes: beyond the newest
    ``max_runs``, and those finished more than ``max_age_seconds`` ago. A run without an end is kept by age."""
    newest = sorted(runs, key=lambda r: r[1] if r[1] is not None else now_ms, reverse=True)
    out = []
    for i, (run, finished) in enumerate(newest):
        too_many = retention.max_runs is not None and i >= retention.max_runs
        too_old = (
            retention.max_age_seconds is not None
            and finished is not None
            and now_ms - finished > retention.max_age_seconds * 1000
        )
        if too_many or too_old:
            out.append(run)
    return out
