"""The archive benches' pure parts (`bench.nodearchive`, `bench.apiarchive`): when a record is final, the
summaries (medians, ranges, on − off paired by repeat) and the tables drawn from them. No cluster: the
node-tier and api-tier smoke runs (`test_node_bench_smoke`, `test_bench_smoke`) drive the whole thing."""

from __future__ import annotations

import itertools
import json
import math
import pathlib
from typing import Any

import pytest

from bench import apiarchive, nodearchive, nodebench, nodereport, report


def _record(result: str, ends: list[str | None]) -> dict[str, Any]:
    return {
        "result": result,
        "finishedAt": "2026-12-06T10:00:00.300Z",
        "steps": [{"finishedAt": e} for e in ends],
    }


def test_a_record_is_final_once_every_step_has_ended() -> None:
    assert nodearchive.is_final(_record("Succeeded", ["2026-12-06T10:00:00.1Z", "2026-12-06T10:00:00.3Z"]))
    assert nodearchive.is_final(_record("Failed", ["2026-12-06T10:00:00.1Z"]))
    # written while the run goes on (an archiver that archives each step as it ends): not yet final
    assert not nodearchive.is_final(_record("Succeeded", ["2026-12-06T10:00:00.1Z", None]))
    assert not nodearchive.is_final(_record("Succeeded", []))
    assert not nodearchive.is_final(_record("Running", ["2026-12-06T10:00:00.1Z"]))
    assert not nodearchive.is_final(None)


def test_record_times_are_read_as_rfc3339_or_epoch_ms() -> None:
    assert nodearchive.ms_time("2026-12-06T10:00:00.250Z") == pytest.approx(1796551200.25)
    assert nodearchive.ms_time(1796551200250) == pytest.approx(1796551200.25)
    assert nodearchive.ms_time(None) is None and nodearchive.ms_time(True) is None
    assert math.isnan(nodearchive.lag(None, 1.0)) and nodearchive.lag(3.5, 1.0) == 2.5


def test_a_record_is_read_through_the_store(tmp_path: pathlib.Path) -> None:
    from obstore.store import LocalStore

    store = LocalStore(str(tmp_path))
    key = nodearchive.record_key("ns", "p", "g1")
    assert key == "ns/p/g1/record.json"
    assert nodearchive.read_record(store, key) is None
    (tmp_path / "ns/p/g1").mkdir(parents=True)
    (tmp_path / key).write_text("{not json")
    assert nodearchive.read_record(store, key) is None
    (tmp_path / key).write_text(json.dumps(_record("Succeeded", ["2026-12-06T10:00:00.1Z"])))
    record, _ = nodearchive.wait_record(store, key, 1.0)
    assert record is not None and record["result"] == "Succeeded"


def test_the_variants_run_in_every_order_so_each_follows_each_other() -> None:
    variants = [nodearchive.Variant(n, n, None) for n in nodearchive.VARIANTS]  # type: ignore[arg-type]
    orders = [tuple(v.name for v in nodearchive.order(variants, r)) for r in range(7)]
    assert orders[0] == ("off", "file", "s3") and orders[6] == orders[0]
    assert len(set(orders[:6])) == 6
    before = {(a, b) for o in orders[:6] for a, b in itertools.pairwise(o)}
    assert len(before) == 6  # every variant right after every other one


def _sample(seconds: float, cpu: float, rss: float, lag: float | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {
        "seconds": seconds,
        "phase": "Succeeded",
        "handoffs": [0.1, 0.2, 0.3],
        "operator_cpu_ms": cpu,
        "operator_rss_mb": rss,
    }
    if lag is not None:
        found |= {"archived": True, "lag_from_end": lag, "lag_from_result": lag - 0.5}
    return found


def _node_raw() -> dict[str, list[dict[str, Any]]]:
    return {
        "off": [_sample(2.0, 100.0, 60.0), _sample(2.2, 120.0, 60.5), _sample(2.1, 110.0, 61.0)],
        "file": [
            _sample(2.1, 150.0, 62.0, 2.2),
            _sample(2.3, 190.0, 62.0, 2.4),
            _sample(2.0, 140.0, 62.5, 2.3),
        ],
    }


def test_the_node_summary_pairs_on_and_off_by_repeat() -> None:
    summary = nodearchive.summarise(_node_raw(), 10)
    off, on = summary["off"], summary["file"]
    assert off["seconds"] == {"median": 2.1, "min": 2.0, "max": 2.2, "repeats": 3}
    assert on["handoff_p50_ms"]["median"] == pytest.approx(200.0)
    # (150-100)/10, (190-120)/10, (140-110)/10 = 5, 7, 3
    assert on["cpu_ms_per_archived_step"] == {"median": 5.0, "min": 3.0, "max": 7.0, "repeats": 3}
    assert on["lag_from_end_ms"]["median"] == pytest.approx(2300.0)
    assert on["archived"] == 3 and "lag_from_end_ms" not in off
    assert off["operator_rss_mb"]["growth_kb_per_step"] == pytest.approx(1024.0 / 20)


def _node_results() -> dict[str, Any]:
    return {
        "mode": "full",
        "only": ["archive"],
        "config": {"repeats": 3},
        "machine": {},
        "versions": {},
        "archive": {
            "steps": 10,
            "variants": ["off", "file"],
            "not_run": {"s3": "s3proxy 2.6.0 is not fetched"},
            "raw": _node_raw(),
            "summary": nodearchive.summarise(_node_raw(), 10),
        },
    }


def test_the_node_table_gives_medians_ranges_and_ratios_to_off() -> None:
    text = nodereport.archive_table(_node_results())
    rows = {line.split(" | ")[0]: line for line in text.splitlines()}
    e2e = rows["| submit → result"]
    assert "2.10 s [2.00–2.20]" in e2e and "2.10 s [2.00–2.30]" in e2e and "| 1.00× | – |" in e2e
    assert (
        "5.0 ms [3.0–7.0]" in rows["| operator CPU per archived step: (on − off) / steps, paired by repeat"]
    )
    assert "s3proxy 2.6.0 is not fetched" in text


def test_only_the_archive_table_is_written_when_only_it_ran(tmp_path: pathlib.Path) -> None:
    results = _node_results()
    results["errors"] = []
    nodebench.write(results, tmp_path)
    kept = json.loads((tmp_path / "node-latest.json").read_text())
    written = (tmp_path / "node-table.md").read_text()
    assert nodereport.archive_table(kept) in written
    assert "fan-out" not in written and not (tmp_path / "node-timeline.png").exists()


def _api_run(archive: str, cpu: float, rss0: float, rss1: float) -> dict[str, Any]:
    steps = 100
    return {
        "archive": archive,
        "pipelines": 10,
        "steps": steps,
        "records": 10 if archive == "file" else 0,
        "log_bytes_archived": 0,
        "seconds_to_archived": 3.0 if archive == "file" else math.nan,
        "operator_cpu_ms": cpu,
        "operator_cpu_ms_per_step": cpu / steps,
        "rss_mb_after": rss1,
        "rss_kb_per_step": 1024.0 * (rss1 - rss0) / steps,
    }


def test_the_api_summary_and_its_row() -> None:
    runs = {
        "off": [_api_run("off", 500.0, 60.0, 61.0), _api_run("off", 600.0, 60.0, 61.0)],
        "file": [_api_run("file", 800.0, 60.0, 62.0), _api_run("file", 1000.0, 60.0, 61.0)],
    }
    summary = apiarchive.summarise(runs)
    per = summary["archived_step"]
    assert per["cpu_ms"] == {"median": 3.5, "min": 3.0, "max": 4.0, "repeats": 2}
    assert per["rss_kb"]["max"] == pytest.approx(10.24) and per["rss_kb"]["min"] == pytest.approx(0.0)
    row = report._archive_row({"summary": summary, "runs": runs})
    assert row[0].startswith("7. the archive's cost: 10 Pipelines of 10 steps")
    assert "3.5 ms [3.0–4.0]" in row[1] and "logs read back empty" in row[2]


def test_records_of_a_namespace_in_a_directory_store(tmp_path: pathlib.Path) -> None:
    assert apiarchive.records(tmp_path, "ns") == []
    for run in ("p/g1", "q/g1"):
        (tmp_path / "ns" / run).mkdir(parents=True)
        (tmp_path / "ns" / run / "record.json").write_text("{}")
    (tmp_path / "ns/p/g1/step-a.log").write_text("")
    assert [p.parent.name for p in apiarchive.records(tmp_path, "ns")] == ["g1", "g1"]
