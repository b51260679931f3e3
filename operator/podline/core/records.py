"""The run record: what the archive keeps of a run, step by step as its steps end, and when archived runs go.

Pure: from a run pod (as the API shows it) to the record (every step's state, exit code, reason, start and end
in ms, the image and the digest it ran; a run not over yet says ``Running``), the store keys of the record and
of each step's output, what of a pod is due for archiving given what was archived already (``work``: each step
container's log once it has terminated, a running step's output so far once its pod is being deleted, the
final record, the mark and the release of the pod's ``podline.dev/archive`` finalizer), and which archived runs
retention prunes. The shell (``shell.archiving``) reads the logs, writes the store and patches the pod; the
scheduler keeps a pod beyond the history limit until it is marked (``must_keep``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
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


def status_steps(pod: Mapping[str, Any]) -> list[str]:
    """The step containers the kubelet reports on (the cached pod has no spec), in its order."""
    return [n for n in observing.container_statuses(pod) if n.startswith(conventions.CONTAINER_STEP_PREFIX)]


def is_over(pod: Mapping[str, Any]) -> bool:
    """The run's pod has ended (or every step container has): its output is complete. A pod being deleted
    before the kubelet reported any container (never scheduled) is over too: nothing in it ever ran."""
    if observing.pod_phase(pod) in FINISHED:
        return True
    statuses = observing.container_statuses(pod)
    names = step_containers(pod) or status_steps(pod)
    if is_deleting(pod) and not statuses:
        return True
    return bool(names) and all("terminated" in (statuses.get(n, {}).get("state") or {}) for n in names)


def is_archived(pod: Mapping[str, Any]) -> bool:
    return bool(observing.annotations(pod).get(conventions.ANNOTATION_ARCHIVED))


def is_deleting(pod: Mapping[str, Any]) -> bool:
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def holds(pod: Mapping[str, Any]) -> bool:
    """The pod carries the archive's finalizer."""
    return conventions.FINALIZER_ARCHIVE in ((pod.get("metadata") or {}).get("finalizers") or ())


def archived_patch(at: datetime) -> dict[str, Any]:
    """Marks the pod archived and releases the archive's finalizer (a no-op on a pod without it)."""
    return {
        "metadata": {
            "annotations": {conventions.ANNOTATION_ARCHIVED: at.isoformat(timespec="seconds")},
            "$deleteFromPrimitiveList/finalizers": [conventions.FINALIZER_ARCHIVE],
        }
    }


def release_patch() -> dict[str, Any]:
    """Removes the archive's finalizer only (the archive is off, or was given up on)."""
    return {"metadata": {"$deleteFromPrimitiveList/finalizers": [conventions.FINALIZER_ARCHIVE]}}


def container_id(pod: Mapping[str, Any], container: str) -> str:
    """The instance of a container the kubelet reports (``containerd://…``; empty if none ran)."""
    status = observing.container_statuses(pod).get(container, {})
    terminated = (status.get("state") or {}).get("terminated") or {}
    return str(terminated.get("containerID") or status.get("containerID") or "")


@dataclass(frozen=True)
class Work:
    """What of one pod is due for archiving now, given what was archived of it (``work``)."""

    complete: tuple[str, ...] = ()  # terminated step containers whose whole log is read and archived
    partial: tuple[str, ...] = ()  # running steps of a pod being deleted: their output so far, at once
    record: bool = False  # (re)write record.json
    finish: bool = False  # the run is over: mark the pod archived, release the finalizer
    release: bool = False  # only remove the finalizer (archived already, or given up on)
    notes: tuple[str, ...] = field(default=())  # for the log: why it was given up on

    @property
    def idle(self) -> bool:
        return not (self.complete or self.partial or self.record or self.finish or self.release)


def work(
    pod: Mapping[str, Any],
    done: Mapping[str, str],
    *,
    now: datetime,
    archive_wait_seconds: float,
) -> Work:
    """What to archive of ``pod`` now. ``done``: container → the instance (``container_id``) whose complete
    log this operator has archived already (its memory; empty after a restart: archiving again rewrites the
    same bytes). Each step's log is read once, when its container has terminated; while the pod is being
    deleted, the running steps' output so far is read at every pass (the kubelet removes a deleted pod's
    containers, logs and all, as soon as the last one has stopped); the record is rewritten with every log;
    once the run is over, the final record, the mark and the release of the finalizer. A pod still not
    archived ``archive_wait_seconds`` after its deletion (a store down) is released all the same (bounded)."""
    if is_archived(pod):
        return Work(release=holds(pod))
    deleting = is_deleting(pod)
    waited = observing.seconds_since((pod.get("metadata") or {}).get("deletionTimestamp"), now)
    if deleting and waited is not None and waited >= archive_wait_seconds:
        return Work(release=holds(pod), notes=("not archived within PODLINE_ARCHIVE_WAIT of its deletion",))
    statuses = observing.container_statuses(pod)
    steps = status_steps(pod)
    ended = [n for n in steps if "terminated" in (statuses[n].get("state") or {})]
    complete = tuple(n for n in ended if done.get(n) != container_id(pod, n))
    partial = tuple(n for n in steps if deleting and "running" in (statuses[n].get("state") or {}))
    over = is_over(pod)
    return Work(complete=complete, partial=partial, record=bool(complete or partial or over), finish=over)


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
    """The run's record, as JSON-ready data. A run not over yet (archived as each step ends) has the result
    ``Running``, no ``finishedAt``, and its steps not ended yet ``running`` or ``waiting``."""
    namespace, pipeline, run = identity(pod)
    statuses = observing.container_statuses(pod)
    specs = {c["name"]: c for c in (pod.get("spec") or {}).get("containers") or []}
    over = is_over(pod)
    steps = [
        _step(name, statuses.get(name, {}), specs.get(name, {}), live=not over)
        for name in step_containers(pod)
    ]
    started = [s["startedAt"] for s in steps if s["startedAt"] is not None]
    finished = [s["finishedAt"] for s in steps if s["finishedAt"] is not None]
    stopped = observing.annotations(pod).get(conventions.ANNOTATION_STOPPED)
    return {
        "namespace": namespace,
        "pipeline": pipeline,
        "run": run,
        "pod": (pod.get("metadata") or {}).get("name"),
        "result": result_of(steps, stopped, deleted=is_deleting(pod)) if over else "Running",
        "startedAt": min(started) if started else None,
        "finishedAt": max(finished) if finished and over else None,
        "steps": steps,
    }


def _step(name: str, status: Mapping[str, Any], spec: Mapping[str, Any], *, live: bool) -> dict[str, Any]:
    state = status.get("state") or {}
    terminated = state.get("terminated") or {}
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
    # no result: a live run's container not ended yet (running, waiting); else it never ran its entrypoint to
    # the end (the kubelet's reason, if any)
    if live and not terminated:
        return (
            out
            | dict.fromkeys(("exitCode", "reason", "startedAt", "finishedAt", "outputBytes"))
            | {
                "failing": False,
                "state": "running" if "running" in state else "waiting",
            }
        )
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


def result_of(steps: Sequence[Mapping[str, Any]], stopped: str | None, *, deleted: bool = False) -> str:
    """Why the pod was stopped (Cancelled, Timeout, Superseded, …) if that cut a step short (a result with
    reason ``Stopped``, or none at all); ``Deleted`` if its deletion did; else Succeeded unless a step failed in
    a way that fails the run (not ``failure: ignore``, not detached). A pod stopped or deleted after its run
    ended (superseded by a rerun, pruned) keeps the run's own result."""
    cut_short = any(s["reason"] == "Stopped" or s["state"] == "unknown" for s in steps)
    if stopped and stopped not in ("Completed", "StepFailed") and cut_short:
        return str(stopped)
    if deleted and cut_short and stopped != "StepFailed":
        return "Deleted"
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


def partial_note() -> bytes:
    return (
        b"\n[podline: the pod was deleted while this step ran: this is its output until then; what it wrote "
        b"while being stopped may be missing]\n"
    )


def never_ran(pod: Mapping[str, Any], container: str) -> bool:
    """A step container the kubelet reports terminated with no container at all (its pod was deleted or
    stopped before its turn): it has no log, and ``pods/log`` answers 400 "container … is terminated"
    (kubelet ``validateContainerLogStatus``; seen on the node tier)."""
    state = observing.container_statuses(pod).get(container, {}).get("state") or {}
    return "terminated" in state and not container_id(pod, container)


def never_ran_note() -> bytes:
    return b"[podline: this step never started (its pod was deleted or stopped first): no output]\n"


def gone_note() -> bytes:
    return b"[podline: this step's output was removed with its pod (deleted mid-run) before it could be archived]\n"


def log_gone(body: bytes, container: str) -> bool:
    """The kubelet's answer for a container whose log it no longer has (a deleted pod's containers are
    removed once they have all stopped): HTTP 200, and this sentence as the log (kuberuntime ``ReadLogs``;
    seen on the node tier, ``tests/e2e/test_archive_node.py``)."""
    return bool(container) and body.strip() == f"unable to retrieve container logs for {container}".encode()


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


def archived_runs(listing: Iterable[tuple[str, int]]) -> dict[tuple[str, str], list[tuple[str, int]]]:
    """A store's listing (key, last modified ms) → per (namespace, Pipeline), its runs and when each one's
    record was last written: ``<namespace>/<pipeline>/<run>/record.json`` keys only, nothing read. The final
    record is written as the run ends (plus the archive's lag); a running run's, as each of its steps ends."""
    out: dict[tuple[str, str], list[tuple[str, int]]] = {}
    for key, modified in listing:
        parts = key.split("/")
        if len(parts) == 4 and parts[3] == RECORD and all(parts[:3]):
            out.setdefault((parts[0], parts[1]), []).append((parts[2], modified))
    return out


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
