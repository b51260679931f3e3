"""One watch of Pipelines shared by every open page: the dashboard's only reader of the API's state.

``Hub.run`` lists the Pipelines (of all namespaces, or of each namespace given), then watches from the
list's resourceVersion; a watch the server ends is resumed from the last version seen, a 410 (too old) or
an error lists again after a pause. Every change goes to every subscriber (a page's server-sent event
stream) as the changed object; a subscriber that cannot keep up is dropped (its page reconnects and gets a
fresh snapshot), so a slow browser never holds the others back. Pages never make the server call the API
in a loop: with 10 pages open there is still one watch per namespace (``UserApi.counts`` shows it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from podline.dashboard import kubeapi
from podline.shell import kube

log = logging.getLogger("podline.dashboard")
QUEUE_LIMIT = 2000  # changes a subscriber may fall behind before it is dropped


@dataclass(frozen=True)
class Change:
    """A Pipeline added or changed (``body``), or deleted (``body`` None)."""

    key: str  # namespace/name
    body: Mapping[str, Any] | None


def key_of(body: Mapping[str, Any]) -> str:
    meta = body.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


class Hub:
    def __init__(self, api: kubeapi.UserApi, namespaces: tuple[str, ...] = (), *, retry_seconds: float = 2.0):
        self.api = api
        self.namespaces: tuple[str | None, ...] = namespaces or (None,)
        self.objects: dict[str, Mapping[str, Any]] = {}
        self.ready = asyncio.Event()
        self.problem: str | None = None  # why nothing can be shown (403 on the list), for the page
        self._subscribers: set[asyncio.Queue[Change | None]] = set()
        self._retry = retry_seconds

    def subscribe(self) -> asyncio.Queue[Change | None]:
        queue: asyncio.Queue[Change | None] = asyncio.Queue(QUEUE_LIMIT)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Change | None]) -> None:
        self._subscribers.discard(queue)

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def _publish(self, change: Change) -> None:
        for queue in list(self._subscribers):
            try:
                queue.put_nowait(change)
            except asyncio.QueueFull:  # too slow: dropped; None tells its stream to end (the page reconnects)
                self._subscribers.discard(queue)
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait(None)

    def _set(self, body: Mapping[str, Any]) -> None:
        key = key_of(body)
        self.objects[key] = body
        self._publish(Change(key, body))

    def _drop(self, key: str) -> None:
        if self.objects.pop(key, None) is not None:
            self._publish(Change(key, None))

    async def run(self) -> None:
        await asyncio.gather(*(self._follow(ns) for ns in self.namespaces))

    async def _follow(self, namespace: str | None) -> None:
        """List, then watch; again after a 410 or an error, forever."""
        while True:
            try:
                version = await self._list(namespace)
                self.problem = None
                self.ready.set()
                while True:
                    version = await self._watch(namespace, version)
            except kubeapi.Forbidden as exc:
                self.problem = f"cannot list Pipelines in {_where(namespace)}: {exc}"
                self.ready.set()
                log.warning("%s", self.problem)
            except kubeapi.Gone:
                log.info("the watch of %s is too old; listing again", _where(namespace))
                continue
            except (kube.Transient, kube.NotFound, kube.Conflict) as exc:
                log.warning(
                    "reading Pipelines in %s failed (%s); again in %.0fs", _where(namespace), exc, self._retry
                )
            await asyncio.sleep(self._retry)

    async def _list(self, namespace: str | None) -> str:
        items, version = await self.api.list_pipelines(namespace)
        seen = {key_of(item) for item in items}
        for key in [k for k in self.objects if _in(k, namespace) and k not in seen]:
            self._drop(key)
        for item in items:
            if self.objects.get(key_of(item)) != item:
                self._set(item)
        return version

    async def _watch(self, namespace: str | None, version: str) -> str:
        """One watch request; returns the version to resume from."""
        async for kind, obj in self.api.watch_pipelines(namespace, version):
            version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
            if kind in ("ADDED", "MODIFIED"):
                self._set(obj)
            elif kind == "DELETED":
                self._drop(key_of(obj))
        return version


def _in(key: str, namespace: str | None) -> bool:
    return namespace is None or key.startswith(namespace + "/")


def _where(namespace: str | None) -> str:
    return f'namespace "{namespace}"' if namespace else "all namespaces"
