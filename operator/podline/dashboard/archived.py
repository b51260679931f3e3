"""A Pipeline's archived runs for the run page, from the same place as the archived logs (``logsources``).

``StoreRecords`` reads the store ``--archive`` names; ``OperatorRecords`` the operator's read-only endpoint
(``/v1/runs/NS/PIPELINE``) through the API server's service proxy with the dashboard's credentials. Both
answer the records newest first, or raise ``Unreadable`` saying why in the words of ``podline get`` and
``podline logs --run`` (``core.archivepaths.explain``: which permission, which Role, which option).

``Cache`` stands between them and the pages: one read per Pipeline in flight whatever the number of pages
asking, its answer (or its failure) reused for ``ttl`` seconds, and read again sooner only when the Pipeline's
earlier runs may have changed (``earlier.version``: a run started or ended). A read is bounded by ``timeout``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from podline.core import archivepaths, records
from podline.dashboard import kubeapi
from podline.shell import archiving, kube

TTL_SECONDS = 5.0
TIMEOUT_SECONDS = 20.0
MAX_ANSWER_BYTES = 32 * 1024 * 1024  # the operator's list of a Pipeline's records; more is refused
STORE_READS = 8  # records read from a store at once


class Unreadable(Exception):
    """The archive cannot be read (the message says why, for a person)."""


class Records(Protocol):
    async def runs(self, namespace: str, pipeline: str) -> list[dict[str, Any]]:
        """The records of the Pipeline's archived runs, newest first."""
        ...


class StoreRecords:
    """An archive store read directly (``--archive``)."""

    def __init__(self, store: archiving.Store) -> None:
        self.store, self.where = store, f"the archive {store.url}"

    async def runs(self, namespace: str, pipeline: str) -> list[dict[str, Any]]:
        limit = asyncio.Semaphore(STORE_READS)

        async def one(key: str) -> bytes | None:
            async with limit:
                return await self.store.get(key)

        try:
            keys = await self.store.keys(f"{namespace}/{pipeline}/")
            wanted = [k for k in keys if k.endswith("/" + records.RECORD) and k.count("/") == 3]
            found = await asyncio.gather(*(one(k) for k in wanted))
            parsed = [json.loads(data) for data in found if data]
        except ValueError:
            raise Unreadable(f"{self.where} holds a record that is not JSON") from None
        except Exception as exc:  # noqa: BLE001 - the store's own errors: said, never a traceback
            raise Unreadable(f"cannot read {self.where}: {archiving.describe_error(exc)}") from None
        return [dict(r) for r in archivepaths.newest_first(r for r in parsed if isinstance(r, dict))]


class OperatorRecords:
    """The operator's archive endpoint, through the API server's service proxy (``--operator``)."""

    def __init__(self, api: kubeapi.UserApi, operator: archivepaths.Operator) -> None:
        self.api, self.operator = api, operator
        self.where = f"the operator's archive (Service {operator})"

    async def runs(self, namespace: str, pipeline: str) -> list[dict[str, Any]]:
        path = self.operator.proxy_path(archivepaths.Query(namespace, pipeline))
        data = bytearray()
        try:
            async for chunk in self.api.get_stream(path):
                data += chunk
                if len(data) > MAX_ANSWER_BYTES:
                    raise Unreadable(f"{self.where} answered more than {MAX_ANSWER_BYTES} bytes of records")
        except kubeapi.Refused as exc:
            raise Unreadable(archivepaths.explain(self.operator, exc.status, exc.body)) from None
        except kube.Transient as exc:
            raise Unreadable(f"cannot reach the API server for {self.where}: {exc}") from None
        try:
            answer = json.loads(data)
        except ValueError:
            raise Unreadable(f"{self.where} answered something that is not JSON") from None
        found = answer.get("runs") if isinstance(answer, dict) else None
        return [dict(r) for r in found or [] if isinstance(r, dict)]


@dataclass(frozen=True)
class Answer:
    """A Pipeline's archived runs, or why they cannot be read (then no runs)."""

    runs: tuple[dict[str, Any], ...] = ()
    problem: str | None = None


@dataclass
class _Entry:
    version: str
    at: float  # when the read ended (started, while it runs)
    task: asyncio.Task[Answer]


class Cache:
    """Each Pipeline's archived runs, read at most once per ``ttl`` seconds while its version stays."""

    def __init__(
        self,
        source: Records,
        *,
        ttl: float = TTL_SECONDS,
        timeout: float = TIMEOUT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source, self.ttl, self.timeout, self.clock = source, ttl, timeout, clock
        self.entries: dict[str, _Entry] = {}
        self.reads = 0

    async def runs(self, namespace: str, pipeline: str, version: str) -> Answer:
        key = f"{namespace}/{pipeline}"
        now = self.clock()
        entry = self.entries.get(key)
        fresh = (
            entry is not None
            and entry.version == version
            and (not entry.task.done() or now - entry.at < self.ttl)
        )
        if entry is None or not fresh:
            self._forget_old(now)
            made = _Entry(version, now, asyncio.create_task(self._read(namespace, pipeline)))
            made.task.add_done_callback(lambda _: setattr(made, "at", self.clock()))  # fresh from its end
            self.entries[key] = entry = made
        return await asyncio.shield(entry.task)  # a page that goes does not cancel the read for the others

    async def _read(self, namespace: str, pipeline: str) -> Answer:
        self.reads += 1
        try:
            found = await asyncio.wait_for(self.source.runs(namespace, pipeline), self.timeout)
        except Unreadable as exc:
            return Answer(problem=str(exc))
        except TimeoutError:
            return Answer(problem=f"the archive did not answer within {self.timeout:g} s")
        return Answer(runs=tuple(found))

    def _forget_old(self, now: float) -> None:
        for key in [k for k, e in self.entries.items() if e.task.done() and now - e.at > 10 * self.ttl]:
            del self.entries[key]
