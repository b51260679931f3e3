"""A Pipeline's archived runs for the run page: read from a real file:// store, and cached per Pipeline."""

from __future__ import annotations

import asyncio
import json
import pathlib
from typing import Any

import pytest
from podline.core import records
from podline.dashboard import archived
from podline.shell import archiving

from tests.dashboard.test_earlier import record


def seeded(tmp_path: pathlib.Path, *found: dict[str, Any]) -> archiving.Store:
    """A real file store holding these records (and a log each, which is not a record)."""
    store = archiving.open_store(f"file://{tmp_path}/archive")
    for r in found:
        prefix = records.run_prefix(r["namespace"], r["pipeline"], r["run"])
        asyncio.run(store.put(prefix + records.RECORD, records.encode(r)))
        asyncio.run(store.put(prefix + "step-build.log", b"built\n"))
    return store


def test_a_store_gives_the_pipelines_records_newest_first(tmp_path: pathlib.Path) -> None:
    other = {**record("x1"), "pipeline": "other"}
    store = seeded(tmp_path, record("g1", end=1000), record("g3", end=3000), record("g2", end=2000), other)
    found = asyncio.run(archived.StoreRecords(store).runs("ci", "build"))
    assert [r["run"] for r in found] == ["g3", "g2", "g1"]
    assert found[0]["steps"][0]["container"] == "step-build"


def test_a_pipeline_with_nothing_archived_has_no_runs(tmp_path: pathlib.Path) -> None:
    assert asyncio.run(archived.StoreRecords(seeded(tmp_path)).runs("ci", "build")) == []


def test_a_store_that_fails_is_said_in_one_line(tmp_path: pathlib.Path) -> None:
    store = seeded(tmp_path)
    (tmp_path / "archive").rmdir()
    (tmp_path / "archive").write_text("a file where the archive's directory belongs")
    with pytest.raises(archived.Unreadable) as failed:
        asyncio.run(archived.StoreRecords(store).runs("ci", "build"))
    said = str(failed.value)
    assert said.startswith(f"cannot read the archive file://{tmp_path}/archive: ") and "\n" not in said


def test_a_record_that_is_not_json_is_said(tmp_path: pathlib.Path) -> None:
    store = seeded(tmp_path)
    asyncio.run(store.put(records.run_prefix("ci", "build", "g1") + records.RECORD, b"{not json"))
    with pytest.raises(archived.Unreadable) as failed:
        asyncio.run(archived.StoreRecords(store).runs("ci", "build"))
    assert str(failed.value) == f"the archive file://{tmp_path}/archive holds a record that is not JSON"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_pages_asking_at_once_share_one_read(tmp_path: pathlib.Path) -> None:
    cache = archived.Cache(archived.StoreRecords(seeded(tmp_path, record("g1"))))

    async def main() -> list[archived.Answer]:
        return await asyncio.gather(*(cache.runs("ci", "build", "v1") for _ in range(10)))

    answers = asyncio.run(main())
    assert cache.reads == 1 and all(a == answers[0] for a in answers)
    assert [r["run"] for r in answers[0].runs] == ["g1"] and answers[0].problem is None


def test_an_answer_is_reused_for_ttl_seconds_then_read_again(tmp_path: pathlib.Path) -> None:
    store = seeded(tmp_path, record("g1"))
    clock = Clock()
    cache = archived.Cache(archived.StoreRecords(store), ttl=5.0, clock=clock)

    async def main() -> None:
        await cache.runs("ci", "build", "v1")
        later = record("g2", end=9000)  # archived meanwhile: not seen before the ttl is over
        await store.put(records.run_prefix("ci", "build", "g2") + records.RECORD, records.encode(later))
        clock.now += 4.9
        assert [r["run"] for r in (await cache.runs("ci", "build", "v1")).runs] == ["g1"]
        clock.now += 0.2
        assert [r["run"] for r in (await cache.runs("ci", "build", "v1")).runs] == ["g2", "g1"]

    asyncio.run(main())
    assert cache.reads == 2


def test_a_run_that_started_or_ended_reads_again_at_once(tmp_path: pathlib.Path) -> None:
    cache = archived.Cache(archived.StoreRecords(seeded(tmp_path, record("g1"))), clock=Clock())

    async def main() -> None:
        await cache.runs("ci", "build", "v1")
        await cache.runs("ci", "build", "v2")  # another version of the Pipeline's earlier runs
        await cache.runs("ci", "other", "v2")  # another Pipeline

    asyncio.run(main())
    assert cache.reads == 3


def test_a_failure_is_an_answer_with_the_problem_and_is_cached_too(tmp_path: pathlib.Path) -> None:
    store = seeded(tmp_path)
    asyncio.run(store.put(records.run_prefix("ci", "build", "g1") + records.RECORD, b"{not json"))
    cache = archived.Cache(archived.StoreRecords(store), clock=Clock())

    async def main() -> list[archived.Answer]:
        return [await cache.runs("ci", "build", "v1") for _ in range(3)]

    answers = asyncio.run(main())
    assert answers[0] == archived.Answer(
        problem=f"the archive file://{tmp_path}/archive holds a record that is not JSON"
    )
    assert cache.reads == 1


class Silent:
    """An archive that never answers (an operator that hangs)."""

    async def runs(self, namespace: str, pipeline: str) -> list[dict[str, Any]]:
        await asyncio.Event().wait()
        return []


def test_an_archive_that_does_not_answer_is_given_up_on_after_the_timeout() -> None:
    cache = archived.Cache(Silent(), timeout=0.05)
    answer = asyncio.run(cache.runs("ci", "build", "v1"))
    assert answer == archived.Answer(problem="the archive did not answer within 0.05 s")


def test_a_page_that_goes_does_not_cancel_the_read_for_the_others(tmp_path: pathlib.Path) -> None:
    cache = archived.Cache(archived.StoreRecords(seeded(tmp_path, record("g1"))))

    async def main() -> archived.Answer:
        gone = asyncio.create_task(cache.runs("ci", "build", "v1"))
        await asyncio.sleep(0)
        gone.cancel()
        return await cache.runs("ci", "build", "v1")

    assert [r["run"] for r in asyncio.run(main()).runs] == ["g1"]
    assert cache.reads == 1


def test_records_written_by_the_operator_read_back_whole(tmp_path: pathlib.Path) -> None:
    store = seeded(tmp_path, record("g1"))
    (found,) = asyncio.run(archived.StoreRecords(store).runs("ci", "build"))
    assert found == json.loads(records.encode(record("g1")))
