"""The dashboard's view-model: Pipeline objects → runs list rows, filters, a run's timeline (no cluster)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from podline.dashboard import views

NOW = datetime(2026, 12, 6, 9, 0, 10, tzinfo=UTC)
T0 = "2026-12-06T09:00:00Z"


def at(ms: int) -> str:
    """A status time ``ms`` after T0, as the entrypoint writes it."""
    return f"2026-12-06T09:00:{ms // 1000:02d}.{ms % 1000:03d}Z"


def pipeline(
    name: str = "build",
    *,
    namespace: str = "ci",
    spec: dict[str, Any] | None = None,
    status: dict[str, Any] | None = None,
    build: dict[str, Any] | str | None = None,
) -> dict[str, Any]:
    notes = {}
    if build is not None:
        notes["podline.dev/build"] = build if isinstance(build, str) else json.dumps(build)
    return {
        "apiVersion": "podline.dev/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": name, "namespace": namespace, "generation": 1, "uid": "u", "annotations": notes},
        "spec": spec or {"steps": [{"name": "a", "image": "busybox", "commands": ["true"]}]},
        "status": status or {},
    }


def step(name: str, state: str, started: int | None = None, finished: int | None = None, **extra: Any) -> Any:
    out: dict[str, Any] = {"name": name, "container": f"step-{name}", "state": state, **extra}
    if started is not None:
        out["startedAt"] = at(started)
    if finished is not None:
        out["finishedAt"] = at(finished)
    return out


# --- rows ---------------------------------------------------------------------------------------------


def test_a_row_holds_phase_trigger_start_duration_and_each_steps_state() -> None:
    body = pipeline(
        status={
            "phase": "Succeeded",
            "run": "g1",
            "podName": "build-g1",
            "startTime": T0,
            "completionTime": "2026-12-06T09:00:07Z",
            "steps": [step("a", "succeeded", 100, 3000), step("b", "failed", 3000, 6000, exitCode=2)],
        },
        build={"event": "push", "branch": "main", "commit": "0123abcd", "author": "octo", "number": 7},
    )
    row = views.row_of(body, NOW)
    assert (row.namespace, row.name, row.phase, row.run, row.pod) == (
        "ci",
        "build",
        "Succeeded",
        "g1",
        "build-g1",
    )
    assert row.trigger == views.Trigger(
        event="push", branch="main", commit="0123abcd", author="octo", number=7
    )
    assert row.started == T0
    assert row.duration_s == 7.0
    assert [(s.name, s.state) for s in row.steps] == [("a", "succeeded"), ("b", "failed")]
    assert row.to_json()["key"] == "ci/build"
    assert row.to_json()["trigger"]["branch"] == "main"


def test_a_running_run_lasts_until_now_and_a_new_pipeline_is_pending() -> None:
    running = views.row_of(pipeline(status={"phase": "Running", "startTime": T0}), NOW)
    assert running.duration_s == 10.0
    fresh = views.row_of(pipeline(), NOW)
    assert (fresh.phase, fresh.duration_s, fresh.steps, fresh.started) == ("Pending", None, (), None)


def test_an_ended_run_without_an_end_time_has_no_duration_rather_than_a_growing_one() -> None:
    assert views.row_of(pipeline(status={"phase": "Failed", "startTime": T0}), NOW).duration_s is None


@pytest.mark.parametrize("build", ["not json", "[1, 2]", '{"number": "seven"}'])
def test_an_unreadable_build_annotation_shows_no_trigger_and_no_error(build: str) -> None:
    assert views.row_of(pipeline(build=build), NOW).trigger == views.Trigger()


def test_a_status_that_is_not_an_object_is_a_pending_row() -> None:
    body = pipeline()
    body["status"] = "garbage"
    assert views.row_of(body, NOW).phase == "Pending"


# --- filters and order ---------------------------------------------------------------------------------


def _bodies() -> list[dict[str, Any]]:
    return [
        pipeline("a", namespace="ci", status={"phase": "Running", "startTime": "2026-12-06T08:00:00Z"},
                 build={"event": "push", "branch": "main"}),
        pipeline("b", namespace="ci", status={"phase": "Failed", "startTime": "2026-12-06T08:30:00Z"},
                 build={"event": "pull_request", "branch": "feature"}),
        pipeline("c", namespace="team", status={"phase": "Succeeded", "startTime": "2026-12-06T07:00:00Z"},
                 build={"event": "push", "branch": "main"}),
        pipeline("d", namespace="team"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ({}, ["d", "b", "a", "c"]),
        ({"namespace": "team"}, ["d", "c"]),
        ({"phase": "Running"}, ["a"]),
        ({"phase": "Pending"}, ["d"]),
        ({"branch": "main"}, ["a", "c"]),
        ({"event": "push", "namespace": "ci"}, ["a"]),
        ({"event": "tag"}, []),
        ({"branch": " main "}, ["a", "c"]),
    ],
)
def test_filters_match_exactly_and_rows_come_newest_first_with_unstarted_on_top(
    query: dict[str, str], names: list[str]
) -> None:
    found = views.rows(_bodies(), NOW, views.Filters.from_query(query))
    assert [r.name for r in found] == names


def test_the_filters_choices_are_the_values_present() -> None:
    choices = views.choices(views.rows(_bodies(), NOW))
    assert choices == {
        "namespace": ["ci", "team"],
        "phase": ["Pending", "Running", "Succeeded", "Failed"],
        "branch": ["feature", "main"],
        "event": ["pull_request", "push"],
    }


# --- timeline ------------------------------------------------------------------------------------------


def _parts(bar: views.Bar) -> list[tuple[str, int, int]]:
    return [(str(s.part), s.start_ms, s.end_ms) for s in bar.spans]


SEQUENTIAL = {
    "steps": [
        {"name": "a", "image": "busybox", "commands": ["true"]},
        {"name": "b", "image": "busybox", "commands": ["true"]},
        {"name": "c", "image": "busybox", "commands": ["true"]},
    ]
}


def test_sequential_steps_wait_pull_and_run_on_one_axis_from_the_runs_start() -> None:
    # Drone runs steps in order when none names depends_on (drone-yaml's linter / runner-go's DAG: each
    # step after the one before); the plan says so, and the timeline follows the plan.
    body = pipeline(
        spec=SEQUENTIAL,
        status={
            "phase": "Running",
            "startTime": T0,
            "steps": [
                step("a", "succeeded", 200, 1200),  # its image was there at 200 ms
                step("b", "succeeded", 1700, 4200),  # 500 ms from a's end to its start: pulled
                step("c", "running", 4210),
            ],
        },
    )
    line = views.timeline_of(body, NOW)
    assert line.origin == "2026-12-06T09:00:00.000Z"
    a, b, c = line.bars
    assert _parts(a) == [("pull", 0, 200), ("run", 200, 1200)]
    assert _parts(b) == [("wait", 0, 1200), ("pull", 1200, 1700), ("run", 1700, 4200)]
    assert _parts(c) == [("wait", 0, 4200), ("pull", 4200, 4210), ("run", 4210, 10000)]  # running: until now
    assert [bar.level for bar in line.bars] == [0, 1, 2]
    assert [bar.after for bar in line.bars] == [(), ("a",), ("b",)]
    assert line.total_ms == 10000


def test_parallel_branches_share_a_level_and_overlap_in_time() -> None:
    # depends_on makes a DAG (drone-yaml: steps[].depends_on; runner-go runs ready steps at once)
    spec = {
        "steps": [
            {"name": "a", "image": "busybox", "commands": ["true"]},
            {"name": "b", "image": "busybox", "commands": ["true"], "depends_on": ["a"]},
            {"name": "c", "image": "busybox", "commands": ["true"], "depends_on": ["a"]},
            {"name": "d", "image": "busybox", "commands": ["true"], "depends_on": ["b", "c"]},
        ]
    }
    body = pipeline(
        spec=spec,
        status={
            "phase": "Succeeded",
            "startTime": T0,
            "completionTime": "2026-12-06T09:00:05Z",
            "steps": [
                step("a", "succeeded", 0, 1000),
                step("b", "succeeded", 1010, 3000),
                step("c", "succeeded", 1020, 2000),
                step("d", "succeeded", 3005, 4000),
            ],
        },
    )
    a, b, c, d = views.timeline_of(body, NOW).bars
    assert (a.level, b.level, c.level, d.level) == (0, 1, 1, 2)
    assert d.after == ("b", "c")
    assert _parts(d)[0] == ("wait", 0, 3000)  # waits for the later of b and c
    run_b, run_c = _parts(b)[-1], _parts(c)[-1]
    assert run_b[1] < run_c[2] and run_c[1] < run_b[2]  # side by side in time


def test_a_step_whose_turn_has_not_come_waits_until_now_without_pull_or_run() -> None:
    body = pipeline(
        spec=SEQUENTIAL,
        status={
            "phase": "Running",
            "startTime": T0,
            "steps": [step("a", "running", 100), step("b", "waiting")],
        },
    )
    b = views.timeline_of(body, NOW).bars[1]  # c is not in the status yet
    assert _parts(b) == [("wait", 0, 10000)]


def test_a_step_whose_image_is_still_pulling_shows_pull_until_now() -> None:
    body = pipeline(
        spec=SEQUENTIAL,
        status={
            "phase": "Running",
            "startTime": T0,
            "steps": [step("a", "succeeded", 0, 2000), step("b", "waiting")],
        },
    )
    b = views.timeline_of(body, NOW).bars[1]
    assert _parts(b) == [("wait", 0, 2000), ("pull", 2000, 10000)]


def test_a_skipped_step_waits_and_neither_pulls_nor_runs() -> None:
    body = pipeline(
        spec=SEQUENTIAL,
        status={
            "phase": "Failed",
            "startTime": T0,
            "completionTime": "2026-12-06T09:00:03Z",
            "steps": [step("a", "failed", 0, 1000, exitCode=1), step("b", "skipped", 1005, 1005)],
        },
    )
    a, b = views.timeline_of(body, NOW).bars
    assert a.exit_code == 1
    assert _parts(b) == [("wait", 0, 1000)]


def test_an_ended_runs_axis_ends_with_the_run_not_now() -> None:
    body = pipeline(
        spec=SEQUENTIAL,
        status={
            "phase": "Cancelled",
            "startTime": T0,
            "completionTime": "2026-12-06T09:00:04Z",
            "steps": [step("a", "failed", 0, 3500), step("b", "waiting")],
        },
    )
    line = views.timeline_of(body, NOW)
    assert line.total_ms == 4000
    assert _parts(line.bars[1]) == [("wait", 0, 3500), ("pull", 3500, 4000)]


def test_a_run_not_started_has_bars_without_spans() -> None:
    body = pipeline(spec=SEQUENTIAL, status={"steps": [step("a", "waiting")]})
    line = views.timeline_of(body, NOW)
    assert (line.origin, line.total_ms, line.bars[0].spans) == (None, 0, ())


def test_an_unplannable_spec_falls_back_to_status_order() -> None:
    body = pipeline(
        spec={"steps": "not a list"},
        status={
            "phase": "Running",
            "startTime": T0,
            "steps": [step("x", "succeeded", 0, 500), step("y", "running", 600)],
        },
    )
    assert views.dependencies(body) is None
    _, y = views.timeline_of(body, NOW).bars
    assert y.after == ("x",)
    assert _parts(y)[:2] == [("wait", 0, 500), ("pull", 500, 600)]


def test_the_clone_step_comes_first_when_the_build_names_a_remote() -> None:
    body = pipeline(spec=SEQUENTIAL, build={"remote": "https://git.example/x.git", "commit": "abc"})
    deps = views.dependencies(body)
    assert deps is not None
    assert deps["step-a"] == ("step-clone",)


def test_history_lists_earlier_runs_as_the_operator_keeps_them() -> None:
    body = pipeline(
        status={
            "history": [
                {"run": "g1-rabc", "phase": "Failed", "podName": "build-g1-rabc", "completionTime": T0},
                {"phase": "no run id: not shown"},
                "garbage",
            ]
        }
    )
    assert views.history_of(body) == [
        {"run": "g1-rabc", "phase": "Failed", "pod": "build-g1-rabc", "completed": T0}
    ]
