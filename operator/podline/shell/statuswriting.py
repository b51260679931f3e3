"""Writing a run's status: at once when a run begins or ends, step progress at most once per interval.

Step progress of a Pipeline is coalesced: changes within ``PODLINE_STATUS_INTERVAL_MS`` are kept as pending
(and read back by the next reconcile as the current status, ``pending``) and written together when the
interval ends. Nothing depends on the written status but readers (the run record is the pod), so a write the
operator dies before making is only decided and made again by the next one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any

from podline.core import statuses
from podline.shell import caches as caches_
from podline.shell import kube, metrics

Key = tuple[str, str]  # (namespace, name)


class StatusWriter:
    def __init__(
        self, api: kube.Kube, caches: caches_.Caches, interval_ms: int, wake: Callable[[Key], None]
    ) -> None:
        self.api = api
        self.caches = caches
        self.interval_ms = interval_ms
        self.wake = wake  # reconcile again: the pending status is written by the next pass
        self._pending: dict[Key, dict[str, Any]] = {}
        self._written_at: dict[Key, float] = {}
        self._flushes: dict[Key, asyncio.TimerHandle] = {}

    def pending(self, key: Key, run: str | None) -> dict[str, Any] | None:
        """The status this operator decided last for ``run`` and has not written yet."""
        pending = self._pending.get(key)
        return pending if pending is not None and pending.get("run") == run else None

    def forget(self, key: Key) -> None:
        metrics.note_queue(key, None)
        self._pending.pop(key, None)
        self._written_at.pop(key, None)
        handle = self._flushes.pop(key, None)
        if handle:
            handle.cancel()

    async def write(self, key: Key, body: Mapping[str, Any], new_status: dict[str, Any]) -> None:
        """Write ``new_status`` now, or keep it pending until the interval since the last write ends."""
        namespace, name = key
        old_status = body.get("status") or {}
        metrics.note_queue(key, new_status)
        if new_status == old_status:
            self._pending.pop(key, None)
            return
        wait = self._wait(key, old_status, new_status)
        if wait > 0:
            self._pending[key] = new_status
            if key not in self._flushes:
                self._flushes[key] = asyncio.get_running_loop().call_later(wait, self._flush, key)
            return
        patch = {**{k: None for k in old_status if k not in new_status}, **new_status}
        try:
            written = await self.api.patch_status(namespace, name, patch)
        except kube.NotFound:
            self._pending.pop(key, None)
            return
        self._pending.pop(key, None)  # kept until written: a failed write is retried from it
        self._written_at[key] = time.monotonic()
        self.caches.pipelines[key] = written  # the server's own answer: its watch echo is then no news
        metrics.note_status(old_status, new_status)

    def _wait(self, key: Key, old: Mapping[str, Any], new: Mapping[str, Any]) -> float:
        interval = self.interval_ms / 1000
        phase = new.get("phase")
        if interval <= 0 or new.get("run") != old.get("run") or (phase and statuses.Phase(phase).is_terminal):
            return 0.0
        last = self._written_at.get(key)
        return 0.0 if last is None else last + interval - time.monotonic()

    def _flush(self, key: Key) -> None:
        self._flushes.pop(key, None)
        if key in self._pending:
            self.wake(key)
