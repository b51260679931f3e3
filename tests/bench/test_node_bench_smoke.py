"""The node bench's quick mode runs end to end on the node tier: every system and scenario reports finite,
positive numbers, and the table, JSON and timeline plot are written.

A smoke test that keeps `python -m bench.run --tier node` working, not a benchmark: no timing is judged
here. It runs in this session's node tier (one per machine) with one repeat at tiny sizes; the peer
(drone-runner-kube) and Tekton's entrypoint take part only if already built here, as the full bench builds
them from source checkouts — where there is none (a fresh machine), the results must say so.
"""

from __future__ import annotations

import json
import math
import pathlib
from typing import Any

import pytest

from bench import nodebench, nodereport
from tests.cluster import fixtures

pytestmark = pytest.mark.node


def _positive(value: Any) -> bool:
    return (
        isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    )


@pytest.fixture(scope="module")
def results(
    node_cluster: Any, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, Any], pathlib.Path]:
    out = tmp_path_factory.mktemp("node-bench")
    data = nodebench.run(
        nodebench.NodeConfig.quick(),
        "quick",
        nodebench.SCENARIOS,
        out,
        print,
        None,
        True,
        cluster=node_cluster,
        build_peer=False,
    )
    nodebench.write(data, out)
    return json.loads((out / "node-latest.json").read_text()), out


@pytest.mark.timeout(600)
def test_every_system_reports_every_scenario(results: tuple[dict[str, Any], pathlib.Path]) -> None:
    data, _ = results
    assert data["errors"] == [], data["errors"]
    summary = data["summary"]
    systems = data["systems"]
    assert {"podline", "floor: chained containers", "floor: one shell"} <= set(systems)
    peer = data["versions"]["drone-runner-kube"]
    assert ("drone-runner-kube" in systems) == ("commit" in peer), peer
    if "commit" not in peer:
        assert peer["not run"], "the results say why the peer did not run"
    tekton = data["versions"]["tekton"]
    assert ("tekton entrypoint" in systems) == ("commit" in tekton), tekton
    if "commit" not in tekton:
        assert tekton["not run"], "the results say why Tekton's entrypoint did not run"
    else:
        assert data["skipped"] == {"tekton entrypoint": ["fanout", "concurrent"]}
    for system in systems:
        left_out = data["skipped"].get(system, ())
        for size in data["config"]["sizes"]:
            assert _positive(summary["e2e"][system][str(size)]["median"]), (system, size)
        assert _positive(summary["wait"][system]["seconds"]["median"]), system
        if "fanout" not in left_out:
            assert _positive(summary["fanout"][system]["seconds"]["median"]), system
        if "concurrent" not in left_out:
            assert _positive(summary["concurrent"][system]["total"]["median"]), system
            assert summary["concurrent"][system]["succeeded"] == [data["config"]["concurrent"]], system


@pytest.mark.timeout(600)
def test_hand_offs_come_from_containerd_and_are_finite(results: tuple[dict[str, Any], pathlib.Path]) -> None:
    data, _ = results
    for system in data["systems"]:
        if system == "floor: one shell":
            continue  # one container: no hand-off
        for handoff in (
            data["summary"]["handoff"][system]["pooled_ms"],
            data["summary"]["wait"][system]["pooled_ms"],
        ):
            assert handoff["n"] >= 1 and all(math.isfinite(handoff[q]) for q in ("p50", "p99", "max")), (
                system,
                handoff,
            )
    run = data["timeline"]["podline"]
    assert len(run["steps"]) == data["config"]["timeline_size"]
    assert all(0 < s["start"] <= s["end"] < run["seconds"] for s in run["steps"]), run


@pytest.mark.timeout(600)
def test_the_archive_is_measured_off_and_on(results: tuple[dict[str, Any], pathlib.Path]) -> None:
    """Every run of the ``archive`` scenario succeeds; with the archive on, its final record reaches the store
    (read back through the store's API) after the run's end, and the pod is marked archived."""
    data, out = results
    archive, repeats = data["archive"], data["config"]["repeats"]
    assert archive["variants"][:2] == ["off", "file"], archive["variants"]
    if "s3" not in archive["variants"]:
        assert not fixtures.in_ci(), archive["not_run"]
        assert archive["not_run"]["s3"], "the results say why the S3 variant did not run"
    for variant in archive["variants"]:
        summary = archive["summary"][variant]
        assert summary["succeeded"] == repeats and _positive(summary["seconds"]["median"]), variant
        if variant != "off":
            assert summary["archived"] == repeats, variant
            assert _positive(summary["lag_from_end_ms"]["median"]), variant
            assert all(s["marked"] and s["record_result"] == "Succeeded" for s in archive["raw"][variant])
    assert "| archive lag: the run's end" in (out / "node-table.md").read_text()


@pytest.mark.timeout(600)
def test_the_table_json_and_plot_are_written(results: tuple[dict[str, Any], pathlib.Path]) -> None:
    data, out = results
    table = (out / "node-table.md").read_text()
    assert nodereport.table(data) in table
    e2e = next(line for line in table.splitlines() if line.startswith("| 1. "))
    assert e2e.split(" | ")[1].endswith(" s"), f"podline's end-to-end time is in the table: {e2e}"
    plot = out / "node-timeline.png"
    assert plot.read_bytes()[:4] == b"\x89PNG"
    assert any(out.glob("*-node-quick.json"))
