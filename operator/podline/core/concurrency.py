"""``concurrency.limit``: at most N runs of the pipeline of one name in a namespace at once.

Drone counts the running stages of a repository's pipeline of that name (drone/drone ``trigger/trigger.go``
copies ``concurrency.limit`` to ``Stage.Limit``; the scheduler starts a stage only while fewer stages of that
name run). podline counts the Pipelines of the namespace whose Drone name (``spec.name``, else the
resource's name) is the same and whose run has a pod that still runs; the others wait, Pending with reason
Queued, and start in creation order as slots free up. A Pipeline waiting for its build's dependencies
(``builds``) takes no place in the queue. The operator-wide ``PODLINE_MAX_RUNNING`` is the shell's own queue
and applies as well.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from podline.core import statuses

Key = tuple[str, str]  # (namespace, name)


def name_of(body: Mapping[str, Any]) -> str:
    spec = body.get("spec") if isinstance(body.get("spec"), Mapping) else {}
    assert isinstance(spec, Mapping)
    return str(spec.get("name") or (body.get("metadata") or {}).get("name", ""))


def limit_of(body: Mapping[str, Any]) -> int:
    """The Pipeline's ``concurrency.limit``; 0 (no limit) when unset or unreadable (validation reports it)."""
    spec = body.get("spec") if isinstance(body.get("spec"), Mapping) else {}
    assert isinstance(spec, Mapping)
    concurrency = spec.get("concurrency")
    limit = concurrency.get("limit") if isinstance(concurrency, Mapping) else None
    return limit if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0 else 0


def waits_for_a_slot(
    key: Key, pipelines: Mapping[Key, Mapping[str, Any]], running: Collection[Key]
) -> str | None:
    """Why the Pipeline ``key`` (whose run has no pod yet) must wait for a slot, or None if it may start.

    ``running``: the Pipelines whose run has a pod that still runs. A Pipeline the cache no longer holds (it
    was deleted while its reconcile was queued) waits for nothing: there is nothing left to start."""
    body = pipelines.get(key)
    if body is None:
        return None
    limit = limit_of(body)
    if not limit:
        return None
    name = name_of(body)
    peers = [k for k, b in pipelines.items() if k[0] == key[0] and name_of(b) == name]
    slots = limit - sum(1 for k in peers if k in running)
    waiting = [k for k in peers if k == key or _queued(k, pipelines, running)]  # it asks: it waits, whatever
    queue = sorted((pipelines[k]["metadata"].get("creationTimestamp", ""), k) for k in waiting)
    if slots > 0 and key in [k for _, k in queue[:slots]]:
        return None
    return f'concurrency.limit: {limit} run{"s" if limit > 1 else ""} of pipeline "{name}" at once in this namespace'


def _queued(key: Key, pipelines: Mapping[Key, Mapping[str, Any]], running: Collection[Key]) -> bool:
    status = pipelines[key].get("status") or {}
    if key in running or status.get("phase") not in (None, str(statuses.Phase.PENDING)):
        return False
    return status.get("reason") not in (statuses.Reason.WAITING, statuses.Reason.CREATING)
