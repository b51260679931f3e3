"""Where a step's log comes from: one small interface, so an archive of past runs can be plugged in.

``LogSource.read`` yields a step's output as bytes, following it while the step runs. ``PodLogs`` reads the
run's pod (``pods/log``, with the dashboard's credentials), which holds the logs of the runs whose pods are
kept (the current run, and the earlier ones in ``status.history`` while their pods exist). ``ArchiveLogs``
reads the operator's archive (``shell.archiving``: the step's output as archived when its run ended, already
masked by the entrypoint) and ``OperatorArchiveLogs`` the same through the operator's read-only endpoint
(the API server's service proxy, with the dashboard's credentials); ``FirstOf`` asks each in turn until one
has the log.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Protocol

from podline.core import archivepaths, records
from podline.dashboard import kubeapi
from podline.shell import archiving, kube


@dataclass(frozen=True)
class StepLog:
    """Which log: a step (its container) of one run (its pod) of a Pipeline."""

    namespace: str
    pipeline: str
    run: str
    pod: str
    container: str


class Unavailable(Exception):
    """This source does not have the log (the message says why, for the page)."""


class LogSource(Protocol):
    def read(self, log: StepLog, *, follow: bool) -> AsyncGenerator[bytes, None]:
        """The log's bytes as they come; raises ``Unavailable`` before the first chunk if there is none."""
        ...


class PodLogs:
    def __init__(self, api: kubeapi.UserApi) -> None:
        self.api = api

    async def read(self, log: StepLog, *, follow: bool) -> AsyncGenerator[bytes, None]:
        try:
            stream = self.api.log_stream(log.namespace, log.pod, log.container, follow=follow)
            async with contextlib.aclosing(stream) as chunks:  # the request ends when the reader stops
                async for chunk in chunks:
                    yield chunk
        except kubeapi.Forbidden as exc:
            raise Unavailable(f"not allowed to read the log: {exc}") from None
        except kubeapi.NotFoundError:
            raise Unavailable(f"the run's pod {log.pod} is gone") from None
        except kube.Transient as exc:
            raise Unavailable(f"the log cannot be read: {exc}") from None


class ArchiveLogs:
    """A step's output from the operator's archive (a run that has ended; never followed)."""

    def __init__(self, store: archiving.Store) -> None:
        self.store = store

    async def read(self, log: StepLog, *, follow: bool) -> AsyncGenerator[bytes, None]:
        key = records.log_key(log.namespace, log.pipeline, log.run, log.container)
        try:
            data = await self.store.get(key)
        except Exception as exc:  # noqa: BLE001 - the store's own errors: said, never a traceback
            raise Unavailable(f"the archive cannot be read: {archiving.describe_error(exc)}") from None
        if data is None:
            raise Unavailable(f"run {log.run} is not in the archive")
        yield data


class OperatorArchiveLogs:
    """A step's output from the operator's archive endpoint (``shell.archiveserving``), through the API
    server's service proxy with the dashboard's credentials: the same source as ``podline logs --run``."""

    def __init__(self, api: kubeapi.UserApi, operator: archivepaths.Operator) -> None:
        self.api, self.operator = api, operator

    async def read(self, log: StepLog, *, follow: bool) -> AsyncGenerator[bytes, None]:
        query = archivepaths.Query(log.namespace, log.pipeline, log.run, log.container)
        try:
            stream = self.api.get_stream(self.operator.proxy_path(query))
            async with contextlib.aclosing(stream) as chunks:
                async for chunk in chunks:
                    yield chunk
        except kubeapi.Refused as exc:
            if exc.status == 404 and '"error"' in exc.body:
                raise Unavailable(f"run {log.run} is not in the archive") from None
            raise Unavailable(archivepaths.explain(self.operator, exc.status, exc.body)) from None
        except kube.Transient as exc:
            raise Unavailable(f"the operator's archive cannot be read: {exc}") from None


class FirstOf:
    """The first source that has the log."""

    def __init__(self, sources: Sequence[LogSource]) -> None:
        self.sources = tuple(sources)

    async def read(self, log: StepLog, *, follow: bool) -> AsyncGenerator[bytes, None]:
        reasons = []
        for source in self.sources:
            started = False
            try:
                async with contextlib.aclosing(source.read(log, follow=follow)) as chunks:
                    async for chunk in chunks:
                        started = True
                        yield chunk
                return
            except Unavailable as exc:
                if started:
                    raise
                reasons.append(str(exc))
        raise Unavailable("; ".join(reasons) or "no log source")
