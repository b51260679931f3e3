"""``concurrency.limit`` (``core.concurrency``): at most N runs of the pipeline of one name in a namespace.

Drone: drone/drone ``trigger/trigger.go`` (``Limit: match.Concurrency.Limit`` per stage) and its
scheduler, which starts a stage only while fewer stages of the same name run.
"""

from __future__ import annotations

from typing import Any

import pytest
from podline.core import concurrency

Key = tuple[str, str]


def pipeline(
    name: str,
    *,
    drone_name: str = "deploy",
    limit: Any = 1,
    created: str = "2026-01-01T00:00:00Z",
    status: dict[str, Any] | None = None,
    namespace: str = "ci",
) -> tuple[Key, dict[str, Any]]:
    spec: dict[str, Any] = {"name": drone_name, "steps": []}
    if limit is not None:
        spec["concurrency"] = {"limit": limit}
    meta = {"name": name, "namespace": namespace, "creationTimestamp": created}
    return (namespace, name), {"metadata": meta, "spec": spec, "status": status or {}}


def waits(key: Key, *items: tuple[Key, dict[str, Any]], running: set[Key] = frozenset()) -> str | None:  # type: ignore[assignment]
    return concurrency.waits_for_a_slot(key, dict(items), running)


def test_without_a_limit_nothing_waits() -> None:
    a, b = pipeline("a", limit=None), pipeline("b", limit=None)
    assert waits(a[0], a, b, running={b[0]}) is None


@pytest.mark.parametrize("limit", [0, None, "2", True, -1])
def test_no_usable_limit_is_no_limit(limit: Any) -> None:
    a, b = pipeline("a", limit=limit), pipeline("b", limit=limit)
    assert waits(a[0], a, b, running={b[0]}) is None


def test_a_run_of_the_same_name_takes_the_only_slot() -> None:
    a, b = pipeline("a"), pipeline("b", created="2026-01-01T00:00:05Z")
    why = waits(b[0], a, b, running={a[0]})
    assert why == 'concurrency.limit: 1 run of pipeline "deploy" at once in this namespace'


def test_the_queue_is_in_creation_order() -> None:
    old = pipeline("old", created="2026-01-01T00:00:01Z")
    new = pipeline("new", created="2026-01-01T00:00:02Z")
    assert waits(new[0], old, new) is not None
    assert waits(old[0], old, new) is None


def test_a_limit_of_two_lets_two_run() -> None:
    a, b, c = (pipeline(n, limit=2, created=f"2026-01-01T00:00:0{i}Z") for i, n in enumerate("abc"))
    assert waits(b[0], a, b, c, running={a[0]}) is None
    assert waits(c[0], a, b, c, running={a[0]}) is not None
    assert waits(c[0], a, b, c, running={a[0], b[0]}) is not None


def test_other_names_and_other_namespaces_do_not_count() -> None:
    a = pipeline("a")
    other_name = pipeline("b", drone_name="test")
    other_ns = pipeline("a", namespace="prod")
    assert waits(a[0], a, other_name, other_ns, running={other_name[0], other_ns[0]}) is None


def test_a_pipeline_waiting_for_its_build_holds_no_place_in_the_queue() -> None:
    early = pipeline("early", status={"phase": "Pending", "reason": "WaitingForDependencies"})
    late = pipeline("late", created="2026-01-01T00:00:09Z")
    assert waits(late[0], early, late) is None


def test_a_pipeline_whose_status_is_about_an_older_run_still_asks_for_a_slot() -> None:
    rerun = pipeline("a", status={"phase": "Succeeded"})
    assert waits(rerun[0], rerun) is None


def test_a_pipeline_gone_from_the_cache_waits_for_nothing() -> None:
    """Deleted while its reconcile was queued (the node tier's in-cluster operator met it): no KeyError."""
    a = pipeline("a")
    assert waits(("ci", "deleted"), a, running={a[0]}) is None
