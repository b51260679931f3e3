"""A run page's earlier runs: the status' history merged with the archive's records (pure, no store)."""

from __future__ import annotations

from typing import Any

import pytest
from podline.dashboard import earlier

from tests.dashboard.test_views import T0, pipeline

MS0 = 1_796_547_600_000  # 2026-12-06T09:00:00Z (T0) in ms


def record(
    run: str, result: str = "Succeeded", start: int | None = 0, end: int | None = 5000, **extra: Any
) -> Any:
    """A record.json as ``core.records.record`` writes it (times in ms since the epoch)."""
    steps = [
        {
            "name": "build",
            "container": "step-build",
            "state": "succeeded",
            "exitCode": 0,
            "reason": "Succeeded",
            "startedAt": MS0 + 100,
            "finishedAt": MS0 + 1600,
            "image": "busybox",
            "failing": False,
        },
        {
            "name": "test",
            "container": "step-test",
            "state": "failed",
            "exitCode": 2,
            "reason": "Error",
            "startedAt": MS0 + 1700,
            "finishedAt": None,
            "failing": True,
        },
    ]
    return {
        "namespace": "ci",
        "pipeline": "build",
        "run": run,
        "pod": f"build-{run}",
        "result": result,
        "startedAt": None if start is None else MS0 + start,
        "finishedAt": None if end is None else MS0 + end,
        "steps": steps,
        **extra,
    }


def kept(run: str, phase: str = "Failed", completed: str | None = T0) -> dict[str, Any]:
    out: dict[str, Any] = {"run": run, "phase": phase, "podName": f"build-{run}"}
    if completed:
        out["completionTime"] = completed
    return out


def body(run: str | None = "g9", phase: str = "Running", history: list[Any] | None = None) -> dict[str, Any]:
    return pipeline(status={"run": run, "phase": phase, "history": history or []})


def runs(merged: dict[str, Any]) -> list[str]:
    return [e["run"] for e in merged["runs"]]


def test_without_an_archive_the_status_history_is_listed_as_kept() -> None:
    merged = earlier.merge(body(history=[kept("g2", "Succeeded"), kept("g1")]), [])
    assert merged == {
        "runs": [
            {
                "run": "g2",
                "phase": "Succeeded",
                "pod": "build-g2",
                "completed": T0,
                "duration_s": None,
                "kept": True,
                "archived": False,
                "steps": None,
            },
            {**merged["runs"][1], "run": "g1", "phase": "Failed", "pod": "build-g1"},
        ],
        "more": 0,
    }


def test_a_run_only_in_the_archive_is_listed_with_its_steps_duration_and_end() -> None:
    (entry,) = earlier.merge(body(), [record("g0-old", "Failed", start=0, end=4250)])["runs"]
    assert entry["run"] == "g0-old" and entry["phase"] == "Failed" and entry["pod"] == "build-g0-old"
    assert entry["kept"] is False and entry["archived"] is True
    assert entry["completed"] == "2026-12-06T09:00:04.250Z" and entry["duration_s"] == 4.25
    assert entry["steps"] == [
        {
            "name": "build",
            "container": "step-build",
            "state": "succeeded",
            "exitCode": 0,
            "reason": "Succeeded",
            "startedAt": "2026-12-06T09:00:00.100Z",
            "finishedAt": "2026-12-06T09:00:01.600Z",
            "took_ms": 1500,
        },
        {
            "name": "test",
            "container": "step-test",
            "state": "failed",
            "exitCode": 2,
            "reason": "Error",
            "startedAt": "2026-12-06T09:00:01.700Z",
            "finishedAt": None,
            "took_ms": None,
        },
    ]


def test_a_run_in_both_is_one_entry_with_the_status_phase_and_the_records_steps() -> None:
    merged = earlier.merge(
        body(history=[kept("g1", "Cancelled", "2026-12-06T09:00:09Z")]),
        [record("g1", "Succeeded", end=8000)],
    )
    (entry,) = merged["runs"]
    assert entry["phase"] == "Cancelled" and entry["completed"] == "2026-12-06T09:00:09Z"
    assert entry["kept"] is True and entry["archived"] is True
    assert entry["duration_s"] == 8.0 and [s["name"] for s in entry["steps"]] == ["build", "test"]


def test_newest_first_by_end_whether_kept_or_archived() -> None:
    merged = earlier.merge(
        body(
            history=[
                kept("g3", completed="2026-12-06T09:00:30Z"),
                kept("g2", completed="2026-12-06T09:00:10Z"),
            ]
        ),
        [record("g1", end=5000), record("g4", end=40_000), record("g2", end=9000)],
    )
    assert runs(merged) == ["g4", "g3", "g2", "g1"]


def test_runs_without_a_known_end_come_last_kept_ones_in_the_status_order() -> None:
    merged = earlier.merge(
        body(history=[kept("k2", completed=None), kept("k1", completed="not a time"), kept("g1")]),
        [record("a-open", "Running", end=None), record("b-open", "Running", end=None)],
    )
    assert runs(merged) == ["g1", "k2", "k1", "a-open", "b-open"]


def test_the_current_run_is_not_an_earlier_run() -> None:
    merged = earlier.merge(
        body(run="g2", phase="Succeeded", history=[kept("g2"), kept("g1")]), [record("g2"), record("g1")]
    )
    assert runs(merged) == ["g1"]


def test_at_most_shown_runs_the_rest_counted() -> None:
    records = [record(f"r{n:02d}", end=n * 1000) for n in range(12)]
    merged = earlier.merge(body(), records, shown=5)
    assert runs(merged) == ["r11", "r10", "r09", "r08", "r07"] and merged["more"] == 7


@pytest.mark.parametrize(
    "bad",
    [
        "not a record",
        {"result": "Succeeded"},  # no run
        {"run": ""},
    ],
)
def test_records_without_a_run_are_left_out(bad: Any) -> None:
    assert runs(earlier.merge(body(), [bad, record("g1")])) == ["g1"]


def test_odd_record_fields_show_as_unknown_not_as_an_error() -> None:
    odd = {"run": "g1", "startedAt": "yesterday", "finishedAt": True, "steps": ["x", {"exitCode": "1"}]}
    (entry,) = earlier.merge(body(), [odd])["runs"]
    assert entry["phase"] == "unknown" and entry["completed"] is None and entry["duration_s"] is None
    assert entry["steps"] == [
        {
            "name": "",
            "container": "",
            "state": "unknown",
            "exitCode": None,
            "reason": None,
            "startedAt": None,
            "finishedAt": None,
            "took_ms": None,
        }
    ]


def test_a_status_history_entry_twice_or_odd_is_listed_once_or_not_at_all() -> None:
    merged = earlier.merge(body(history=[kept("g1"), kept("g1", "Succeeded"), {"phase": "x"}, "junk"]), [])
    assert runs(merged) == ["g1"] and merged["runs"][0]["phase"] == "Failed"


def test_a_pipeline_without_a_status_has_only_archived_runs() -> None:
    assert runs(earlier.merge(pipeline(), [record("g1")])) == ["g1"]


def test_the_version_changes_when_a_run_starts_or_ends_and_not_otherwise() -> None:
    running = earlier.version(body(run="g2", phase="Running", history=[kept("g1")]))
    assert earlier.version(body(run="g2", phase="Pending", history=[kept("g1")])) == running
    assert earlier.version(body(run="g2", phase="Succeeded", history=[kept("g1")])) != running  # it ended
    assert earlier.version(body(run="g3", phase="Pending", history=[kept("g2"), kept("g1")])) != running
    assert earlier.version(pipeline()) == earlier.version(pipeline(status={"history": "junk"}))
