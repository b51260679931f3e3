"""The work queue: one reconcile at a time per Pipeline, wake-ups coalesced, failures retried with back-off.

``kick(key)`` runs the work for ``key`` soon; a kick while it runs makes it run once more afterwards, so events
arriving meanwhile coalesce into one more pass. ``kick_later`` is a timer (a timeout coming due, a retry).
A failed pass is retried after a delay that doubles per Pipeline up to ``MAX_RETRY_SECONDS``: with the
apiserver away, a thousand Pipelines must not each retry every two seconds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from podline.shell import kube

log = logging.getLogger("podline")
Key = tuple[str, str]  # (namespace, name)
MAX_RETRY_SECONDS = 16.0


class WorkQueue:
    def __init__(self, work: Callable[[Key], Awaitable[None]], wanted: Callable[[Key], bool]) -> None:
        self.work = work
        self.wanted = wanted  # False once the key's object is gone: its task is then dropped
        self._tasks: dict[Key, asyncio.Task[None]] = {}
        self._dirty: set[Key] = set()
        self._timers: dict[Key, asyncio.TimerHandle] = {}
        self._failures: dict[Key, int] = {}  # consecutive failed passes, for the back-off

    def kick(self, key: Key) -> None:
        """Work on this key soon; coalesces with a pass already running."""
        task = self._tasks.get(key)
        if task and not task.done():
            self._dirty.add(key)
            return
        self._tasks[key] = asyncio.get_running_loop().create_task(self._loop(key), name=f"reconcile {key}")

    def kick_later(self, key: Key, delay: float) -> None:
        old = self._timers.pop(key, None)
        if old:
            old.cancel()
        self._timers[key] = asyncio.get_running_loop().call_later(max(0.05, delay), self.kick, key)

    def forget(self, key: Key) -> None:
        self._failures.pop(key, None)
        handle = self._timers.pop(key, None)
        if handle:
            handle.cancel()
        task = self._tasks.get(key)
        if task and task.done():
            del self._tasks[key]

    async def _loop(self, key: Key) -> None:
        while True:
            self._dirty.discard(key)
            try:
                await self.work(key)
                self._failures.pop(key, None)
            except kube.Transient as exc:
                log.warning(
                    "reconcile %s/%s: API error, retrying in %.0fs: %s",
                    key[0],
                    key[1],
                    self.retry_later(key, 2.0),
                    exc,
                )
            except Exception:  # a bug must not stop the operator serving other Pipelines
                log.exception(
                    "reconcile %s/%s failed; retrying in %.0fs", key[0], key[1], self.retry_later(key, 5.0)
                )
            if key not in self._dirty:
                if not self.wanted(key):
                    self._tasks.pop(key, None)
                return

    def retry_later(self, key: Key, first: float) -> float:
        """Schedule a retry, doubling the delay per consecutive failure up to MAX_RETRY_SECONDS."""
        failures = self._failures[key] = self._failures.get(key, 0) + 1
        delay = min(first * 2.0 ** (failures - 1), MAX_RETRY_SECONDS)
        self.kick_later(key, delay)
        return delay
