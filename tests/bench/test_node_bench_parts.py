"""The node bench's pure parts: reading ``ctr events``, computing hand-offs, the floor's pod, the table and the
timeline plot. No cluster: the node-tier smoke run (`test_node_bench_smoke`) drives the whole thing."""

from __future__ import annotations

import json
import math
import pathlib
import subprocess
import time

import pytest

from bench import nodebench, nodereport, nodesystems, peer, taskevents, tekton
from bench.nodesystems import Interval, Outcome


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            '2026-12-01 09:30:00.123456789 +0000 UTC k8s.io /tasks/start {"container_id":"abc","pid":42}',
            (1796117400.123456789, "/tasks/start", {"container_id": "abc", "pid": 42}),
        ),
        (
            '2026-12-01 10:30:00.5 +0100 CET k8s.io /tasks/exit {"container_id":"abc","id":"abc","exit_status":3}',
            (1796117400.5, "/tasks/exit", {"container_id": "abc", "id": "abc", "exit_status": 3}),
        ),
        (
            '2026-12-01 09:30:00 +0000 UTC k8s.io /images/update {"name":"x"}',
            (1796117400.0, "/images/update", {"name": "x"}),
        ),
    ],
)
def test_ctr_event_lines_are_read_with_their_full_precision(line: str, expected: tuple) -> None:
    found = taskevents.parse(line)
    assert found is not None
    assert found[0] == pytest.approx(expected[0], abs=1e-6) and found[1:] == expected[1:]


@pytest.mark.parametrize(
    "line",
    [
        "",
        "garbage",
        '2026-12-01 09:30:00.1 +0000 UTC moby /tasks/start {"container_id":"abc"}',  # not the CRI's
        "2026-12-01 09:30:00.1 +0000 UTC k8s.io /tasks/start {not json}",
    ],
)
def test_other_lines_are_ignored(line: str) -> None:
    assert taskevents.parse(line) is None


def test_rfc3339_times_and_their_precision() -> None:
    assert taskevents.rfc3339("2026-12-01T09:30:00.250Z") == pytest.approx(1796117400.25)
    assert taskevents.rfc3339("2026-12-01T10:30:00+01:00") == pytest.approx(1796117400.0)
    assert taskevents.rfc3339("yesterday") is None
    assert taskevents.has_fraction("2026-12-01T09:30:00.250Z")
    assert not taskevents.has_fraction("2026-12-01T09:30:00Z") and not taskevents.has_fraction(None)


def _task(name: str, image: str, started: float) -> taskevents.Task:
    return taskevents.Task(
        taskevents.Container(f"id-{name}-{started}", "ns", "pod", name, image, False), started, started + 1
    )


def test_a_step_is_its_last_process_that_is_not_the_placeholder() -> None:
    tasks = [
        _task("step-a", "docker.io/drone/placeholder:1", 1.0),
        _task("step-a", "docker.io/library/busybox:1.36", 5.0),
        _task("step-b", "docker.io/drone/placeholder:1", 1.1),
    ]
    found = taskevents.step_tasks(tasks, placeholders=(peer.PLACEHOLDER,))
    assert set(found) == {"step-a"} and found["step-a"].started == 5.0


def _outcome(intervals: list[tuple[float, float]]) -> Outcome:
    return Outcome(
        "x",
        "p",
        0.0,
        10.0,
        "Succeeded",
        [Interval(f"c{i}", start, end) for i, (start, end) in enumerate(intervals)],
    )


def test_handoffs_of_a_chain_in_start_order() -> None:
    steps = nodesystems.echo_steps(3)
    found = nodesystems.handoffs(_outcome([(4.0, 4.5), (1.0, 2.0), (2.5, 3.0)]), steps)
    assert found == pytest.approx([0.5, 1.0])


def test_handoffs_of_a_fan_out_wait_for_the_later_branch() -> None:
    steps = nodesystems.fanout_steps()
    found = nodesystems.handoffs(_outcome([(0.0, 1.0), (1.2, 2.0), (1.1, 3.0), (3.4, 3.5)]), steps)
    assert sorted(found) == pytest.approx([0.1, 0.2, 0.4])


def test_handoffs_need_every_step() -> None:
    assert nodesystems.handoffs(_outcome([(0.0, 1.0)]), nodesystems.echo_steps(2)) == []


def test_the_floor_pod_chains_its_containers_on_files(tmp_path: pathlib.Path) -> None:
    pod = nodesystems.floor_pod("f", nodesystems.fanout_steps(), shell=False)
    containers = {c["name"]: c["command"][2] for c in pod["spec"]["containers"]}
    assert "until [ -e /w/b ]" not in containers["a"] and "until [ -e /w/d.up ]" in containers["a"]
    assert "until [ -e /w/b ]" in containers["d"] and "until [ -e /w/c ]" in containers["d"]
    assert all(c["image"] == nodesystems.STEP_IMAGE for c in pod["spec"]["containers"])
    shell = nodesystems.floor_pod("f", nodesystems.echo_steps(3), shell=True)
    assert (
        len(shell["spec"]["containers"]) == 1
        and shell["spec"]["containers"][0]["command"][2].count("echo step") == 3
    )


def test_the_floor_script_runs_in_a_shell(tmp_path: pathlib.Path) -> None:
    """The chained container's script, run by busybox here with /w in a temporary directory."""
    pod = nodesystems.floor_pod("f", nodesystems.echo_steps(2), shell=False)
    first, second = (c["command"][2].replace("/w/", f"{tmp_path}/") for c in pod["spec"]["containers"])
    (tmp_path / "s01.up").touch()  # the second container is up: the first step may start
    done = subprocess.run(
        ["busybox", "sh", "-c", first], capture_output=True, text=True, timeout=30, check=True
    )
    assert "step 0" in done.stdout and (tmp_path / "s00").exists()
    line = next(x for x in done.stdout.splitlines() if x.startswith("bench-times "))
    t0, t1 = (float(x) for x in line.split()[1:3])
    assert 0 <= t1 - t0 < 5 and abs(t0 - time.time()) < 60
    done = subprocess.run(
        ["busybox", "sh", "-c", second], capture_output=True, text=True, timeout=30, check=True
    )
    assert "step 1" in done.stdout


def _results() -> dict:
    raw = {"e2e": {}, "fanout": {}, "concurrent": {}}
    for system, per_step in (
        ("podline", 2.0),
        ("drone-runner-kube", 2.3),
        ("floor: chained containers", 0.1),
        ("floor: one shell", 0.0),
    ):
        for size in (1, 3):
            raw["e2e"].setdefault(system, {})[str(size)] = [
                {"seconds": 1.0 + per_step * size + r * 0.1, "handoffs": [per_step] * (size - 1)}
                for r in range(2)
            ]
        raw["fanout"][system] = [{"seconds": 1 + 3 * per_step, "handoffs": [per_step] * 3}]
        raw["concurrent"][system] = [{"total": 9.0, "each": [8.0, 9.0], "succeeded": 2}]
    timeline = {
        "podline": {
            "seconds": 7.0,
            "steps": [{"name": "s00", "start": 1.0, "end": 1.01}, {"name": "s01", "start": 3.0, "end": None}],
        }
    }
    return {
        "mode": "quick",
        "date": "2026-12-01",
        "config": {"sizes": [1, 3], "concurrent": 2, "repeats": 2, "timeline_size": 3},
        "summary": nodebench.summarise(raw),
        "timeline": timeline,
        "machine": {},
        "versions": {"drone-runner-kube": {"not run": "no source"}},
        "seconds": 1.0,
    }


def test_the_table_gives_medians_ranges_and_ratios() -> None:
    text = nodereport.table(_results())
    rows = {line.split(" | ")[0]: line for line in text.splitlines()}
    three = rows["| 1. 3 step(s) of `echo`: submit → result"]
    assert "7.05 s [7.00–7.10]" in three and "7.95 s [7.90–8.00]" in three  # podline, drone
    assert "| 0.89× | 5.22× |" in three
    handoff = rows["| 2. step hand-off p50 (end of step → start of the next, containerd)"]
    assert "2000 ms" in handoff and "2300 ms" in handoff
    assert "no source" in nodereport.header(_results())


def test_the_written_table_is_the_one_its_json_renders(tmp_path: pathlib.Path) -> None:
    # 1.234951 formats as 1.23, but the JSON keeps 1.235, which formats as 1.24: the file must show the
    # JSON's figure, or README tables regenerated from the JSON would disagree with the bench's own table.
    results = _results()
    results["summary"]["e2e"]["podline"]["1"]["median"] = 1.234951
    nodebench.write(results, tmp_path)
    kept = json.loads((tmp_path / "node-latest.json").read_text())
    written = (tmp_path / "node-table.md").read_text()
    assert nodereport.table(kept) in written
    assert "| 1.24 s [" in written


def test_the_timeline_plot_is_written(tmp_path: pathlib.Path) -> None:
    path = nodereport.timeline_plot(_results(), tmp_path / "t.png")
    assert path.stat().st_size > 1000 and path.read_bytes()[:4] == b"\x89PNG"


def test_summaries_leave_out_runs_that_did_not_end() -> None:
    summary = nodebench.summarise(
        {
            "e2e": {
                "podline": {"1": [{"seconds": math.nan, "handoffs": []}, {"seconds": 2.0, "handoffs": []}]}
            },
            "fanout": {},
            "concurrent": {},
        }
    )
    assert summary["e2e"]["podline"]["1"]["median"] == 2.0 and summary["e2e"]["podline"]["1"]["repeats"] == 1


def test_without_a_source_the_peer_says_why(tmp_path: pathlib.Path) -> None:
    found, why = peer.find(tmp_path)
    assert found is None and str(tmp_path) in why and "--peer-src" in why


# ---- Tekton's entrypoint ------------------------------------------------------------------------------


def test_the_tekton_pod_is_shaped_as_its_controller_shapes_a_taskrun_pod() -> None:
    steps = nodesystems.echo_steps(3)
    pod = nodesystems.tekton_pod("t", steps, "registry/tekton/entrypoint:x")
    spec = pod["spec"]
    assert pod["metadata"]["name"] == "t-pod" and spec["restartPolicy"] == "Never"
    assert "tekton.dev/ready" not in pod["metadata"]["annotations"]  # the controller sets it once running
    (prepare,) = spec["initContainers"]
    assert prepare["image"] == "registry/tekton/entrypoint:x"
    assert prepare["command"] == [
        "/ko-app/entrypoint",
        "init",
        "/ko-app/entrypoint",
        "/tekton/bin/entrypoint",
        "step-s00",
        "step-s01",
        "step-s02",
    ]
    containers = spec["containers"]
    assert [c["name"] for c in containers] == ["step-s00", "step-s01", "step-s02"]
    assert all(c["image"] == nodesystems.STEP_IMAGE for c in containers)
    assert all(c["command"] == ["/tekton/bin/entrypoint"] for c in containers)
    first, second = containers[0]["args"], containers[1]["args"]
    assert first[:3] == ["-wait_file", "/tekton/downward/ready", "-wait_file_content"]
    assert second[:2] == ["-wait_file", "/tekton/run/0/out"]
    assert second[second.index("-post_file") + 1] == "/tekton/run/1/out"
    assert second[second.index("-step_metadata_dir") + 1] == "/tekton/run/1/status"
    assert second[second.index("-entrypoint") :] == ["-entrypoint", "sh", "--", "-c", "echo step 1"]
    mounts = {m["mountPath"]: m for m in containers[1]["volumeMounts"]}
    assert not mounts["/tekton/run/1"].get("readOnly") and mounts["/tekton/run/0"]["readOnly"]
    assert mounts["/tekton/bin"]["readOnly"] and "/tekton/downward" not in mounts
    assert "/tekton/downward" in {m["mountPath"] for m in containers[0]["volumeMounts"]}
    volumes = {v["name"] for v in spec["volumes"]}
    used = {m["name"] for c in [*containers, prepare] for m in c["volumeMounts"]}
    assert used <= volumes


def test_a_tekton_step_starts_at_its_termination_messages_started_at() -> None:
    message = '[{"key":"StartedAt","value":"2026-12-01T09:30:00.123Z","type":3}]'
    assert nodesystems.tekton_started_at(message) == pytest.approx(1796117400.123)
    assert nodesystems.tekton_started_at(None) is None
    assert nodesystems.tekton_started_at("not json") is None
    assert nodesystems.tekton_started_at('[{"key":"ExitCode","value":"1","type":3}]') is None


def test_tekton_runs_chains_only() -> None:
    tekton = nodesystems.Tekton(None, "x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="depends_on"):
        tekton.run("ns", [("f", nodesystems.fanout_steps())], 1.0)
    assert nodebench.skipped([tekton]) == {"tekton entrypoint": ["fanout", "concurrent"]}
    assert nodebench.takes_part(tekton, "wait") and nodebench.takes_part(object(), "fanout")


def test_without_a_tekton_source_the_bench_says_why(tmp_path: pathlib.Path) -> None:
    found, why = tekton.find(tmp_path)
    assert found is None and str(tmp_path) in why and "--tekton-src" in why


def test_an_unbuilt_tekton_entrypoint_is_not_built_when_told_not_to(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PODLINE_CACHE", str(tmp_path / "cache"))
    source = tmp_path / "pipeline"
    (source / "cmd/entrypoint").mkdir(parents=True)
    (source / "go.mod").write_text("module github.com/tektoncd/pipeline\n\ngo 1.26\n")
    (source / ".podline-commit").write_text("3ee1745ae5b2d9175b11917d7c1935eaad44910c\n")
    found, why = tekton.find(source, build=False)
    assert found is None and "not built yet" in why and "3ee1745ae5b2" in why
    assert not (tmp_path / "cache").exists()


def test_the_wait_scenarios_steps() -> None:
    steps = nodesystems.wait_steps(3.0, 2, 0.2)
    assert [s["commands"] for s in steps] == [["sleep 3"], ["sleep 0.2"], ["sleep 0.2"]]
    assert nodesystems.dependencies(steps) == {"s00": [], "s01": ["s00"], "s02": ["s01"]}


def test_the_table_has_tekton_and_its_ratio() -> None:
    results = _results()
    raw = {"e2e": {}, "fanout": {}, "concurrent": {}, "wait": {}}
    for system, per_step in (("podline", 2.0), ("tekton entrypoint", 0.5)):
        raw["e2e"][system] = {"3": [{"seconds": 1.0 + 3 * per_step, "handoffs": [per_step] * 2}]}
        raw["wait"][system] = [
            {"seconds": 5.0, "handoffs": [per_step] * 9, "handoffs_waiting": [per_step] * 9}
        ]
    results["summary"] = nodebench.summarise(raw)
    results["skipped"] = {"tekton entrypoint": ["fanout", "concurrent"]}
    results["versions"]["tekton"] = {"commit": "3ee1745ae5b2d9175b", "go": "go1.26.8"}
    text = nodereport.table(results)
    rows = {line.split(" | ")[0]: line for line in text.splitlines()}
    assert "podline / tekton entrypoint |" in text.splitlines()[0]
    three = rows["| 1. 3 step(s) of `echo`: submit → result"]
    assert three.endswith("| 7.00 s | – | 2.50 s | – | – | – | – | 2.80× |")
    waited = rows["| 5. a `sleep 3` step, then 9 of `sleep 0.2`: hand-off p50"]
    assert "| 2000 ms |" in waited and "| 500 ms |" in waited and waited.endswith("| 4.00× |")
    header = nodereport.header(results)
    assert "Tekton's entrypoint 3ee1745ae5b2" in header and "fanout skipped" in header


def test_a_hand_off_below_zero_has_no_ratio() -> None:
    # podline's next command can start a few ms before containerd reports the previous container's exit
    assert nodereport._ratio({"median": -0.4}, {"median": 3.0}) == "–"
    assert nodereport._ratio({"median": 6.0}, {"median": 3.0}) == "2.00×"


def test_build_handoff_figures_are_medians_with_ranges_and_a_ratio_to_the_floor() -> None:
    from bench import nodebuilds

    figures = nodebuilds.summarise(
        {"reported": [0.5, 0.5, 0.5], "operator": [0.1, 0.3, 0.2], "kubelet": [1.0, 1.2, 1.1], "total": [1.1, 1.5, 1.3],
         "floor": [1.0, 1.4, 1.2]},
        3,
    )  # fmt: skip
    assert figures["operator_ms"]["median"] == pytest.approx(200)
    assert (figures["total_ms"]["min"], figures["total_ms"]["max"]) == (
        pytest.approx(1100),
        pytest.approx(1500),
    )
    assert figures["total_over_floor"] == pytest.approx(1300 / 1200)
    text = nodebuilds.report(figures)
    assert "(operator)            median 200 ms (range 100–300)" in text and "total / floor (medians)" in text
