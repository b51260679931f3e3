"""The archive: every ended run's record and each step's output, written to a store off the critical path.

A background task (started with the operator) looks at the run pods the watch delivered; a pod whose run is
over and that is not marked ``podline.dev/archived`` is archived: each step container's log is read through
``pods/log`` (already masked by the entrypoint, at most ``PODLINE_LOG_LIMIT`` bytes plus the note), then the
run record (``core.records``) is written, then the pod is marked. The scheduler deletes a pod beyond the
history limit only once it is marked, or ``PODLINE_ARCHIVE_WAIT`` seconds after its run ended (bounded). A
store that fails is tried again with back-off; an operator that was down archives what ended meanwhile when it
is back (the pods are still there: not marked, not pruned). Steps never wait for any of this.

Stores, through obstore (``PODLINE_ARCHIVE``): ``file:///dir`` (a directory; the chart mounts a PVC there, or
an emptyDir that keeps nothing across restarts) and ``s3://bucket/prefix`` (credentials and endpoint from the
standard ``AWS_*`` variables, which the chart fills from a Secret). Retention (``PODLINE_LOG_RETENTION``) is
applied to a Pipeline's runs after each archived run.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import obstore
from obstore.store import LocalStore, ObjectStore, S3Store

from podline.core import records
from podline.shell import caches as caches_
from podline.shell import kube

if TYPE_CHECKING:  # typed dicts of obstore's stubs only
    from obstore.store import ClientConfig, S3Config

log = logging.getLogger("podline.archive")

BACKOFF_FIRST, BACKOFF_MAX = 1.0, 60.0


class Store:
    """The archive's store: bytes under ``/``-separated keys."""

    def __init__(self, store: ObjectStore, url: str) -> None:
        self._store, self.url = store, url

    async def put(self, key: str, data: bytes) -> None:
        await obstore.put_async(self._store, key, data)

    async def get(self, key: str) -> bytes | None:
        try:
            result = await obstore.get_async(self._store, key)
        except FileNotFoundError:
            return None
        return bytes(await result.bytes_async())

    async def open(self, key: str, chunk_bytes: int = 256 * 1024) -> tuple[int, AsyncIterator[bytes]] | None:
        """The object's size and its bytes as a stream of chunks (a 64 MiB log is never held whole), or
        None when there is no such key. Read-only: for the archive's endpoint (``archiveserving``)."""
        try:
            result = await obstore.get_async(self._store, key)
        except FileNotFoundError:
            return None
        return int(result.meta["size"]), aiter(result.stream(min_chunk_size=chunk_bytes))

    async def keys(self, prefix: str) -> list[str]:
        out: list[str] = []
        async for batch in obstore.list(self._store, prefix):
            out.extend(str(item["path"]) for item in batch)
        return sorted(out)

    async def delete(self, keys: list[str]) -> None:
        if keys:
            await obstore.delete_async(self._store, keys)


def open_store(url: str) -> Store:
    """The store at ``url``: ``file:///dir`` (created if missing) or ``s3://bucket[/prefix]``. Raises ValueError
    naming what is wrong (never credentials: they come from the environment, not the URL)."""
    parsed = urlparse(url)
    if parsed.username or parsed.password:
        raise ValueError("credentials do not belong in the URL: use AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY")
    if parsed.scheme == "file":
        if parsed.netloc or not parsed.path.startswith("/"):
            raise ValueError(f"{url!r}: a file URL needs an absolute path (file:///var/lib/podline/archive)")
        return Store(LocalStore(parsed.path, mkdir=True), url)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise ValueError(f"{url!r}: no bucket (s3://bucket/prefix)")
        endpoint = os.environ.get("AWS_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT") or ""
        options: ClientConfig = {"allow_http": endpoint.startswith("http://")}
        # Path-style requests for a custom endpoint (MinIO, Ceph, s3proxy), and one DELETE per key: S3's
        # multi-object delete is missing from some S3-compatible stores (GCS's S3 API, s3proxy); a run has
        # a few files. AWS_DISABLE_BULK_DELETE=false turns bulk deletes back on.
        bulk = os.environ.get("AWS_DISABLE_BULK_DELETE", "true").lower() == "false"
        config: S3Config = {"disable_bulk_delete": not bulk}
        if endpoint:
            config["virtual_hosted_style_request"] = False
        return Store(S3Store.from_url(url, config=config, client_options=options), url)
    raise ValueError(f"{url!r}: the archive is file:///path or s3://bucket/prefix")


class Archiver:
    """Archives ended runs' pods: one pass over the cached pods per ``poke`` (or every ``interval`` s)."""

    def __init__(
        self,
        api: kube.Kube,
        caches: caches_.Caches,
        store: Store,
        *,
        log_limit_bytes: int,
        retention: records.Retention,
        interval: float = 2.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.api, self.caches, self.store = api, caches, store
        self.log_limit_bytes, self.retention, self.interval, self.clock = (
            log_limit_bytes,
            retention,
            interval,
            clock,
        )
        self._wake = asyncio.Event()
        self._retry_at: dict[caches_.Key, tuple[float, float]] = {}  # pod → (monotonic time, backoff)

    def poke(self) -> None:
        self._wake.set()

    async def run_forever(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self.interval)
            except TimeoutError:
                pass
            self._wake.clear()
            await self.pass_once()

    def due(self) -> list[caches_.Key]:
        """Pods whose run is over and not archived, not waiting for a retry."""
        now = time.monotonic()
        return [
            key
            for key, pod in list(self.caches.pods.items())
            if records.is_over(pod)
            and not records.is_archived(pod)
            and self._retry_at.get(key, (0, 0))[0] <= now
        ]

    async def pass_once(self) -> None:
        for key in self.due():
            try:
                await self.archive(key)
                self._retry_at.pop(key, None)
            except kube.NotFound:
                self._retry_at.pop(key, None)  # the pod is gone: nothing left to archive
            except Exception as exc:  # noqa: BLE001 - a store or API failure: tried again later
                backoff = min(BACKOFF_MAX, self._retry_at.get(key, (0, BACKOFF_FIRST / 2))[1] * 2)
                self._retry_at[key] = (time.monotonic() + backoff, backoff)
                log.warning(
                    "archiving %s/%s failed (%s); again in %.0f s", *key, describe_error(exc), backoff
                )

    async def archive(self, key: caches_.Key) -> None:
        namespace, name = key
        pod = await self.api.get_pod(namespace, name)  # the whole pod: the cache keeps no spec
        ns, pipeline, run = records.identity(pod)
        record = records.record(pod)
        written = {s["container"]: s["outputBytes"] for s in record["steps"]}
        for container in records.step_containers(pod):
            limit = self.log_limit_bytes
            data = await self.api.read_log(namespace, name, container, limit_bytes=limit + 1)
            archived = records.limited(data, limit, written.get(container))
            await self.store.put(records.log_key(ns, pipeline, run, container), archived)
        await self.store.put(records.run_prefix(ns, pipeline, run) + records.RECORD, records.encode(record))
        updated = await self.api.patch_pod(namespace, name, records.archived_patch(self.clock()))
        self.caches.put_pod(key, updated)
        log.info("archived run %s of %s/%s (%s)", run, ns, pipeline, self.store.url)
        await self.prune(ns, pipeline)

    async def prune(self, namespace: str, pipeline: str) -> None:
        if self.retention.keeps_all:
            return
        runs = await self.runs(namespace, pipeline)
        now_ms = int(self.clock().timestamp() * 1000)
        finished = [(r["run"], r.get("finishedAt")) for r in runs]
        for run in records.to_prune(finished, retention=self.retention, now_ms=now_ms):
            await self.store.delete(await self.store.keys(records.run_prefix(namespace, pipeline, run)))
            log.info("retention: removed run %s of %s/%s from the archive", run, namespace, pipeline)

    async def forget_pipeline(self, namespace: str, pipeline: str) -> None:
        """``PODLINE_ARCHIVE_ON_DELETE=delete``: a deleted Pipeline's archived runs go with it."""
        try:
            await self.store.delete(await self.store.keys(f"{namespace}/{pipeline}/"))
            log.info("removed the archived runs of deleted Pipeline %s/%s", namespace, pipeline)
        except Exception as exc:  # noqa: BLE001 - said, not fatal: the next deletion of the name tries again
            log.warning(
                "could not remove the archived runs of %s/%s (%s)", namespace, pipeline, describe_error(exc)
            )

    async def runs(self, namespace: str, pipeline: str) -> list[dict[str, Any]]:
        """The records of a Pipeline's archived runs."""
        out = []
        for key in await self.store.keys(f"{namespace}/{pipeline}/"):
            if key.endswith("/" + records.RECORD):
                data = await self.store.get(key)
                if data:
                    out.append(json.loads(data))
        return out


def describe_error(exc: BaseException) -> str:
    """A failure, said without its details (an S3 error may quote a request; never a secret)."""
    return f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}" if str(exc) else type(exc).__name__
