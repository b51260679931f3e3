"""The bench's quick mode runs end to end: every scenario reports finite, positive numbers.

A smoke test that keeps the bench working, not a benchmark: no timing is judged here (the bench only
prints numbers). It starts its own api-tier cluster, operator and scripted kubelet through
``python -m bench.run --quick``, like a user would.
"""

from __future__ import annotations

import importlib.util
import json
import math
import pathlib
import subprocess
import sys
from typing import Any

import pytest
from podline.core import stepping

from bench import run
from tests.cluster import binaries, fixtures

pytestmark = pytest.mark.api
ROOT = pathlib.Path(__file__).resolve().parents[2]


def _positive(value: Any) -> bool:
    return (
        isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    )


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], pathlib.Path]:
    try:
        binaries.require("api")
    except binaries.MissingBinaries as error:
        if fixtures.in_ci():
            pytest.fail(f"{error} (CI=true: cluster tiers must not be skipped)", pytrace=False)
        pytest.skip(str(error))
    out = tmp_path_factory.mktemp("bench")
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert done.returncode == 0, f"the quick bench failed:\n{done.stdout[-6000:]}\n{done.stderr[-4000:]}"
    return json.loads((out / "latest.json").read_text()), out


@pytest.mark.timeout(1300)
def test_every_scenario_is_reported(results: tuple[dict[str, Any], pathlib.Path]) -> None:
    data, _ = results
    assert set(data["scenarios"]) == set(run.SCENARIOS)
    assert data["errors"] == []
    assert data["mode"] == "quick" and data["machine"]["nproc"] >= 1


@pytest.mark.timeout(1300)
def test_the_numbers_are_finite_and_positive(results: tuple[dict[str, Any], pathlib.Path]) -> None:
    sc = results[0]["scenarios"]
    numbers = {
        "floor p50": sc["floor"]["round_trip"]["p50"],
        "start p50": sc["start"]["summary"]["p50"]["median"],
        "start p99": sc["start"]["summary"]["p99"]["median"],
        "burst all pods": sc["burst"]["summary"]["all_pods_seconds"]["median"],
        "memory idle": sc["memory"]["idle_mb"],
        "memory at largest": sc["memory"]["at_largest_mb"],
    }
    if not any(run["never_ended"] for run in sc["burst"]["runs"]):  # see the test below
        numbers["burst pipelines/s (99 %)"] = sc["burst"]["summary"]["pipelines_per_second_99"]["median"]
    for level, found in sc["handoff"].items():
        for key in ("p50", "p95", "p99"):
            numbers[f"hand-off {key} at {level}"] = found["summary"][key]["median"]
        numbers[f"floor under load at {level}"] = found["floor_round_trip"]["p50"]["median"]
    for steps, cost in sc["api_cost"].items():
        numbers[f"writes per pipeline of {steps} steps"] = cost["operator_writes_per_pipeline"]
    for label, rate in sc["render"].items():
        numbers[f"render {label}"] = rate["median"]
    for label, spread in sc["cli"].items():
        numbers[f"start-up {label}"] = spread["median"]
    for variant in ("off", "file"):
        numbers[f"archive {variant}: operator CPU per step"] = sc["archive"]["summary"][variant][
            "cpu_ms_per_step"
        ]["median"]
    numbers["archive: all archived after"] = sc["archive"]["summary"]["file"]["seconds_to_archived"]["median"]
    bad = {name: value for name, value in numbers.items() if not _positive(value)}
    assert not bad, f"not finite and positive: {bad}"


@pytest.mark.timeout(1300)
def test_the_archive_scenario_archives_every_run_with_the_archive_on_only(
    results: tuple[dict[str, Any], pathlib.Path],
) -> None:
    runs = results[0]["scenarios"]["archive"]["runs"]
    assert [r["records"] for r in runs["file"]] == [r["pipelines"] for r in runs["file"]]
    assert all(r["all_ended"] and r["all_archived"] for r in runs["file"] + runs["off"])
    assert [r["records"] for r in runs["off"]] == [0] * len(runs["off"])


@pytest.mark.timeout(1300)
def test_a_run_that_never_ended_waits_on_a_step_its_pod_shows_running(
    results: tuple[dict[str, Any], pathlib.Path],
) -> None:
    """The bench's kubelet double sometimes never reports a step's end (bench/README.md, limits). Such a run
    must be the double's doing: the operator shows the step running exactly as the pod does, and waits. A
    step runs in the pod when its container runs and every step it comes after (``--after``) has ended."""
    _, out = results
    for evidence in (out / "logs").glob("stuck-*.json"):
        for item in json.loads(evidence.read_text()):
            pod, status = item["pod"], item["status"]
            states = {c["name"]: next(iter(c["state"])) for c in pod["status"]["containerStatuses"]}
            running = {
                name
                for name, state in states.items()
                if name.startswith("step-")
                and state == "running"
                and all(states.get(a) == "terminated" for a in stepping.parse_args(pod["args"][name]).after)
            }
            assert running, f"{item['pipeline']}: no step runs in its pod, yet the run did not end: {item}"
            assert status["phase"] == "Running", item
            shown = {s["container"] for s in status["steps"] if s["state"] == "running"}
            assert shown == running, f"{item['pipeline']}: the status shows {shown}, the pod runs {running}"


@pytest.mark.timeout(1300)
def test_the_table_and_plots_are_written(results: tuple[dict[str, Any], pathlib.Path]) -> None:
    _, out = results
    assert "step end → status shows it" in (out / "table.md").read_text()
    if importlib.util.find_spec("matplotlib") is not None:  # the bench extra draws them
        for name in ("latency_cdf.png", "throughput.png", "memory.png"):
            assert (out / name).read_bytes().startswith(b"\x89PNG"), name
