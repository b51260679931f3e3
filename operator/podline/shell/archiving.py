"""The archive: each step's output as it ends and the run's record, written to a store off the critical path.

A background task (started with the operator) looks at the run pods the watch delivered and archives what
``records.work`` says is due: a step container's log once the container has terminated (read once through
``pods/log``, already masked by the entrypoint, at most ``PODLINE_LOG_LIMIT`` bytes plus the note), the run
record (``core.records``) with it, and once the run is over the final record, then the pod is marked
``podline.dev/archived`` and its ``podline.dev/archive`` finalizer removed. The finalizer (put on the pod when
it is made) keeps a deleted pod — its Pipeline deleted, ``kubectl delete pod``, history pruning — until its
run is archived; while it is being deleted, its running steps' output so far is archived at once (the kubelet
removes a deleted pod's containers, logs and all, as soon as they have stopped). What was archived of each
pod is remembered (an operator restart archives again: the same bytes). The scheduler deletes a pod beyond
the history limit only once it is marked, or ``PODLINE_ARCHIVE_WAIT`` seconds after its run ended (bounded). A
store that fails is tried again with back-off; an operator that was down archives what ended meanwhile when it
is back (the pods are still there: not marked, not pruned). Steps never wait for any of this. With the archive
off, ``Releaser`` removes the finalizer from pods made while it was on.

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
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import obstore
from obstore.store import LocalStore, ObjectStore, S3Store

from podline.core import conventions, records
from podline.shell import caches as caches_
from podline.shell import kube

if TYPE_CHECKING:  # typed dicts of obstore's stubs only
    from obstore.store import ClientConfig, S3Config

log = logging.getLogger("podline.archive")

BACKOFF_FIRST, BACKOFF_MAX = 1.0, 60.0
SWEEP_SECONDS = 3600.0  # retention over the whole archive: at the first pass, then this often


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

    async def exists(self, key: str) -> bool:
        try:
            await obstore.head_async(self._store, key)
        except FileNotFoundError:
            return False
        return True

    async def open(self, key: str, chunk_bytes: int = 256 * 1024) -> tuple[int, AsyncIterator[bytes]] | None:
        """The object's size and its bytes as a stream of chunks (a 64 MiB log is never held whole), or
        None when there is no such key. Read-only: for the archive's endpoint (``archiveserving``)."""
        try:
            result = await obstore.get_async(self._store, key)
        except FileNotFoundError:
            return None
        return int(result.meta["size"]), aiter(result.stream(min_chunk_size=chunk_bytes))

    async def listing(self, prefix: str) -> list[tuple[str, int]]:
        """(key, last modified in ms) of every object under ``prefix`` ("": the whole store), listed only."""
        out: list[tuple[str, int]] = []
        async for batch in obstore.list(self._store, prefix or None):
            out.extend((str(item["path"]), int(item["last_modified"].timestamp() * 1000)) for item in batch)
        return sorted(out)

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


class Loop:
    """A background pass over the cached pods per ``poke`` (a pod event) or every ``interval`` s."""

    interval = 2.0

    def __init__(self) -> None:
        self._wake = asyncio.Event()

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

    async def pass_once(self) -> None:
        raise NotImplementedError


class Releaser(Loop):
    """With the archive off: removes the archive's finalizer from run pods that still carry it (made while
    the archive was on), so none is kept for ever."""

    def __init__(self, api: kube.Kube, caches: caches_.Caches) -> None:
        super().__init__()
        self.api, self.caches = api, caches

    async def pass_once(self) -> None:
        for key, pod in list(self.caches.pods.items()):
            if not records.holds(pod):
                continue
            try:
                self.caches.put_pod(key, await self.api.patch_pod(*key, records.release_patch()))
            except kube.NotFound:
                self.caches.drop_pod(key)
            except Exception as exc:  # noqa: BLE001 - tried again at the next pass
                log.warning("releasing %s/%s failed (%s)", *key, describe_error(exc))


class Archiver(Loop):
    """Archives each step's log as its container ends, the run's record with it, and the final record, mark
    and release of the finalizer when the run is over (``records.work`` decides)."""

    def __init__(
        self,
        api: kube.Kube,
        caches: caches_.Caches,
        store: Store,
        *,
        log_limit_bytes: int,
        retention: records.Retention,
        archive_wait_seconds: float = 3600,
        forget_deleted: bool = False,
        interval: float = 2.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_archived: Callable[[tuple[str, str]], None] = lambda pipeline: None,
    ) -> None:
        super().__init__()
        self.api, self.caches, self.store = api, caches, store
        self.log_limit_bytes, self.retention, self.interval, self.clock = (
            log_limit_bytes,
            retention,
            interval,
            clock,
        )
        self.archive_wait_seconds = archive_wait_seconds
        # (namespace, Pipeline) of a run just marked archived: its reconcile may now prune the pod (the watch's
        # echo of the mark is not news to it, the cache holds the patch's response already)
        self.on_archived = on_archived
        self.forget_deleted = forget_deleted  # PODLINE_ARCHIVE_ON_DELETE=delete
        self._retry_at: dict[caches_.Key, tuple[float, float]] = {}  # pod → (monotonic time, backoff)
        self._done: dict[caches_.Key, dict[str, str]] = {}  # pod → container → instance whose log is archived
        self._next_sweep = 0.0  # monotonic time of the next retention sweep (``sweep``)
        self.log_reads = 0  # pods/log requests made (for tests and benchmarks)

    def work(self, key: caches_.Key, pod: Mapping[str, Any]) -> records.Work:
        return records.work(
            pod, self._done.get(key, {}), now=self.clock(), archive_wait_seconds=self.archive_wait_seconds
        )

    def due(self) -> list[caches_.Key]:
        """Pods with something to archive (``records.work``), not waiting for a retry."""
        now = time.monotonic()
        return [
            key
            for key, pod in list(self.caches.pods.items())
            if not self.work(key, pod).idle and self._retry_at.get(key, (0, 0))[0] <= now
        ]

    async def pass_once(self) -> None:
        for key in self.due():
            try:
                await self.archive(key)
                self._retry_at.pop(key, None)
            except kube.NotFound:
                self._retry_at.pop(key, None)  # the pod is gone: nothing left to archive
                self._done.pop(key, None)
            except Exception as exc:  # noqa: BLE001 - a store or API failure: tried again later
                backoff = min(BACKOFF_MAX, self._retry_at.get(key, (0, BACKOFF_FIRST / 2))[1] * 2)
                self._retry_at[key] = (time.monotonic() + backoff, backoff)
                log.warning(
                    "archiving %s/%s failed (%s); again in %.0f s", *key, describe_error(exc), backoff
                )
        for key in [k for k in self._done if k not in self.caches.pods]:
            del self._done[key]  # the pod is gone: its memory goes with it
        if time.monotonic() >= self._next_sweep:
            self._next_sweep = time.monotonic() + SWEEP_SECONDS
            try:
                await self.sweep()
            except Exception as exc:  # noqa: BLE001 - a store failure: the next sweep tries again
                log.warning(
                    "retention over the archive failed (%s); again in %.0f s",
                    describe_error(exc),
                    SWEEP_SECONDS,
                )

    async def archive(self, key: caches_.Key) -> None:
        namespace, name = key
        pod = await self.api.get_pod(namespace, name)  # the whole pod: the cache keeps no spec
        work = self.work(key, pod)
        if self.forget_deleted and records.is_deleting(pod) and not self.pipeline_exists(pod):
            # PODLINE_ARCHIVE_ON_DELETE=delete: its Pipeline's runs went with it, so does this one
            work = records.Work(release=records.holds(pod))
        if work.release and not work.record:
            self.caches.put_pod(key, await self.api.patch_pod(namespace, name, records.release_patch()))
            if work.notes:
                log.warning("released pod %s/%s unarchived: %s", namespace, name, "; ".join(work.notes))
            return
        ns, pipeline, run = records.identity(pod)
        record = records.record(pod)
        written = {s["container"]: s["outputBytes"] for s in record["steps"]}
        done = self._done.setdefault(key, {})
        for container in work.complete:
            await self.archive_log(pod, container, written.get(container), partial=False)
            done[container] = records.container_id(pod, container)
        for container in work.partial:
            await self.archive_log(pod, container, None, partial=True)
        if work.record:
            await self.store.put(
                records.run_prefix(ns, pipeline, run) + records.RECORD, records.encode(record)
            )
        if not work.finish:
            return
        updated = await self.api.patch_pod(namespace, name, records.archived_patch(self.clock()))
        self.caches.put_pod(key, updated)
        self._done.pop(key, None)
        log.info("archived run %s of %s/%s (%s)", run, ns, pipeline, self.store.url)
        self.on_archived((ns, pipeline))
        await self.prune(ns, pipeline)

    def pipeline_exists(self, pod: Mapping[str, Any]) -> bool:
        namespace, pipeline, _ = records.identity(pod)
        cached = self.caches.pipelines.get((namespace, pipeline))
        uid = ((pod.get("metadata") or {}).get("labels") or {}).get(conventions.LABEL_PIPELINE_UID)
        return cached is not None and (cached.get("metadata") or {}).get("uid") == uid

    async def archive_log(
        self, pod: Mapping[str, Any], container: str, written: int | None, *, partial: bool
    ) -> None:
        """One step's log, read once (``limitBytes``: the limit + 1, to see a longer one). A log the kubelet
        no longer has (its pod deleted mid-run) keeps what was archived of it while it ran, else says so; a step
        that never started has no log to read (``records.never_ran``): a note says so."""
        meta = pod["metadata"]
        key = records.log_key(*records.identity(pod), container)
        if records.never_ran(pod, container):
            await self.store.put(key, records.never_ran_note())
            return
        limit = self.log_limit_bytes
        self.log_reads += 1
        data = await self.api.read_log(meta["namespace"], meta["name"], container, limit_bytes=limit + 1)
        if records.log_gone(data, records.container_id(pod, container)):
            if not partial and not await self.store.exists(key):
                await self.store.put(key, records.gone_note())
            return
        if partial:
            await self.store.put(key, records.limited(data, limit) + records.partial_note())
        else:
            await self.store.put(key, records.limited(data, limit, written))

    async def prune(self, namespace: str, pipeline: str) -> None:
        """Retention over one Pipeline's runs, from the store's listing (no record is read)."""
        if not self.retention.keeps_all:
            await self._prune(await self.store.listing(f"{namespace}/{pipeline}/"))

    async def sweep(self) -> None:
        """Retention over the whole archive, every ``SWEEP_SECONDS``: also the runs of Pipelines that no longer
        run, or were deleted (``PODLINE_ARCHIVE_ON_DELETE=keep``), which ``prune`` never sees."""
        if not self.retention.keeps_all:
            await self._prune(await self.store.listing(""))

    async def _prune(self, listing: list[tuple[str, int]]) -> None:
        now_ms = int(self.clock().timestamp() * 1000)
        for (namespace, pipeline), runs in records.archived_runs(listing).items():
            finished: list[tuple[str, int | None]] = list(runs)
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
