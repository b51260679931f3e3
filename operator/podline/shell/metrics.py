"""Prometheus metrics of the operator (served on PODLINE_METRICS_PORT).

podline_runs_total{phase}            runs that reached a terminal phase
podline_runs_started_total           run pods created
podline_pod_patch_seconds            duration of pod patches
podline_queue_length                 Pipelines waiting for a run slot
podline_conflicts_total              409s answered by re-reading
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import prometheus_client as prom

from podline.core import statuses

RUNS = prom.Counter("podline_runs_total", "Runs that reached a terminal phase.", ["phase"])
RUNS_STARTED = prom.Counter("podline_runs_started_total", "Run pods created.")
PATCH = prom.Histogram(
    "podline_pod_patch_seconds",
    "Duration of pod patches.",
    buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1),
)
QUEUE = prom.Gauge("podline_queue_length", "Pipelines waiting for a run slot.")
# The Pipelines the gauge counts, by (namespace, name): a set, not increments, so that a Pipeline queued before
# an operator restart is counted once its status is seen, and one that leaves the queue after it never
# takes the gauge below zero.
_queued: set[tuple[str, str]] = set()
CONFLICTS = prom.Counter("podline_conflicts_total", "Conflicts (409) answered by reading again.")


def note_created(manifest: Mapping[str, Any]) -> None:
    RUNS_STARTED.inc()


def note_patch(pod: Mapping[str, Any], patch: Mapping[str, Any], seconds: float) -> None:
    PATCH.observe(seconds)


def note_status(old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
    terminal = statuses.TERMINAL_PHASES
    if new.get("phase") in terminal and (
        old.get("phase") != new.get("phase") or old.get("run") != new.get("run")
    ):
        RUNS.labels(phase=new["phase"]).inc()


def note_queue(key: tuple[str, str], status: Mapping[str, Any] | None) -> None:
    """Count the Pipeline ``key`` as waiting for a run slot while its status (as decided) says Queued; None
    when the Pipeline is gone."""
    if status is not None and status.get("reason") == statuses.Reason.QUEUED:
        _queued.add(key)
    else:
        _queued.discard(key)
    QUEUE.set(len(_queued))


def serve(port: int) -> None:
    if port:
        prom.start_http_server(port)
