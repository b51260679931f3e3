"""Where a step's log comes from: the run's pod, else the operator's archive (a real file:// store here)."""

from __future__ import annotations

import asyncio
import pathlib
from collections.abc import AsyncGenerator

import pytest
from podline.core import records
from podline.dashboard import logsources
from podline.shell import archiving

LOG = logsources.StepLog(
    namespace="ci", pipeline="web", run="g1-rabc", pod="web-g1-rabc", container="step-test"
)


class PodGone:
    """A source without the log, as PodLogs is once the run's pod was pruned."""

    async def read(self, log: logsources.StepLog, *, follow: bool) -> AsyncGenerator[bytes, None]:
        raise logsources.Unavailable(f"the run's pod {log.pod} is gone")
        yield b""  # an async generator, like every source


async def _all(source: logsources.LogSource) -> bytes:
    return b"".join([chunk async for chunk in source.read(LOG, follow=False)])


def _store(tmp_path: pathlib.Path) -> archiving.Store:
    return archiving.open_store(f"file://{tmp_path}/archive")


def test_the_archive_gives_a_steps_output_as_archived(tmp_path: pathlib.Path) -> None:
    store = _store(tmp_path)
    key = records.log_key("ci", "web", "g1-rabc", "step-test")
    asyncio.run(store.put(key, b"\x1b[32mok\x1b[0m\n"))
    assert asyncio.run(_all(logsources.ArchiveLogs(store))) == b"\x1b[32mok\x1b[0m\n"


def test_a_run_not_in_the_archive_is_unavailable_saying_so(tmp_path: pathlib.Path) -> None:
    with pytest.raises(logsources.Unavailable, match="run g1-rabc is not in the archive"):
        asyncio.run(_all(logsources.ArchiveLogs(_store(tmp_path))))


def test_first_of_falls_back_to_the_archive_when_the_pod_is_gone(tmp_path: pathlib.Path) -> None:
    store = _store(tmp_path)
    asyncio.run(store.put(records.log_key("ci", "web", "g1-rabc", "step-test"), b"from the archive\n"))
    assert (
        asyncio.run(_all(logsources.FirstOf([PodGone(), logsources.ArchiveLogs(store)])))
        == b"from the archive\n"
    )


def test_first_of_says_why_no_source_has_the_log(tmp_path: pathlib.Path) -> None:
    both = logsources.FirstOf([PodGone(), logsources.ArchiveLogs(_store(tmp_path))])
    with pytest.raises(logsources.Unavailable) as missing:
        asyncio.run(_all(both))
    assert "web-g1-rabc is gone" in str(missing.value) and "not in the archive" in str(missing.value)
