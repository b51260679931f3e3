"""The Kubernetes API as the dashboard uses it, with the credentials of whoever started it.

Started on a laptop, that is the user's kubeconfig (so the page shows what their RBAC lets them read and
acts as them); in the chart, the dashboard's own ServiceAccount, read-only unless actions are enabled. The
calls: list and watch Pipelines, a step's log (``pods/log``, followed while it runs), a
SelfSubjectAccessReview, and a merge patch of a Pipeline's annotations (rerun, cancel). No Secret is ever
read. Built on the operator's own client (``shell.kube``: one aiohttp session, errors classified).
"""

from __future__ import annotations

import json
import logging
import urllib.parse
from collections.abc import AsyncGenerator, Mapping
from typing import Any

import aiohttp

from podline.core import conventions
from podline.shell import kube

log = logging.getLogger("podline.dashboard")
PIPELINES = f"/apis/{conventions.GROUP}/{conventions.VERSION}"


class Forbidden(kube.Transient):
    """403: the credentials may not do this."""


class Gone(kube.Transient):
    """410: the watch's resourceVersion is too old; list again."""


def _q(part: str) -> str:
    return urllib.parse.quote(part, safe="")


def pipelines_path(namespace: str | None, name: str | None = None) -> str:
    base = f"{PIPELINES}/namespaces/{_q(namespace)}/{conventions.PLURAL}" if namespace else None
    path = base or f"{PIPELINES}/{conventions.PLURAL}"
    return f"{path}/{_q(name)}" if name else path


class UserApi(kube.Kube):
    """The operator's client plus what a page needs: watches and logs as streams, access reviews."""

    def __init__(self, connect: Any, *, connections: int = 32) -> None:
        super().__init__(connect, connections=connections, timeout=0)
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=30)  # watches and logs stay open
        self.counts: dict[str, int] = {"list": 0, "watch": 0, "log": 0, "review": 0, "patch": 0}

    def _session_(self) -> aiohttp.ClientSession:
        return self._session or self._open()

    @property
    def server(self) -> str:
        self._session_()
        return self._server

    async def _json(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> Any:
        try:
            return await self._request(method, path, body, content_type)
        except kube.Transient as exc:
            if str(exc).startswith("403 "):
                raise Forbidden(str(exc)[4:]) from None
            raise

    async def list_pipelines(self, namespace: str | None) -> tuple[list[dict[str, Any]], str]:
        """Every Pipeline (of the namespace, or all) and the list's resourceVersion to watch from."""
        self.counts["list"] += 1
        listed = await self._json("GET", pipelines_path(namespace))
        items = [kube.lean(item) for item in listed.get("items") or []]
        return items, str((listed.get("metadata") or {}).get("resourceVersion") or "")

    async def watch_pipelines(
        self, namespace: str | None, resource_version: str, *, timeout_seconds: int = 300
    ) -> AsyncGenerator[tuple[str, dict[str, Any]], None]:
        """(type, object) events from ``resource_version`` until the server ends the watch. Raises ``Gone``
        when that version is too old (list again), ``kube.Transient`` for anything else."""
        self.counts["watch"] += 1
        query = urllib.parse.urlencode(
            {
                "watch": "true",
                "resourceVersion": resource_version,
                "allowWatchBookmarks": "true",
                "timeoutSeconds": str(timeout_seconds),
            }
        )
        url = f"{self.server}{pipelines_path(namespace)}?{query}"
        try:
            async with self._session_().get(url) as response:
                if response.status != 200:
                    raise await self._failed(response)
                async for line in response.content:
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    kind, obj = str(event.get("type", "")), event.get("object") or {}
                    if kind == "ERROR":
                        if obj.get("code") == 410:
                            raise Gone(str(obj.get("message", "resourceVersion too old")))
                        raise kube.Transient(f"{obj.get('code')} {obj.get('message')}")
                    yield kind, kube.lean(obj)
        except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as exc:
            raise kube.Transient(f"watch: {type(exc).__name__}: {exc}") from None

    async def log_stream(
        self, namespace: str, pod: str, container: str, *, follow: bool
    ) -> AsyncGenerator[bytes, None]:
        """A container's log as it arrives (``follow``: until the container ends)."""
        self.counts["log"] += 1
        query = urllib.parse.urlencode({"container": container, "follow": "true" if follow else "false"})
        url = f"{self.server}/api/v1/namespaces/{_q(namespace)}/pods/{_q(pod)}/log?{query}"
        try:
            async with self._session_().get(url) as response:
                if response.status != 200:
                    raise await self._failed(response)
                async for chunk in response.content.iter_any():
                    yield chunk
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise kube.Transient(f"log: {type(exc).__name__}: {exc}") from None

    async def get_stream(self, path: str) -> AsyncGenerator[bytes, None]:
        """A GET of ``path`` (the operator's archive through the service proxy) as it arrives. Raises
        ``Refused`` with the status and the start of the body for any other answer than 200."""
        self.counts["log"] += 1
        try:
            async with self._session_().get(f"{self.server}{path}") as response:
                if response.status != 200:
                    body = (await response.content.read(4096)).decode(errors="replace")
                    if response.status == 401:
                        await self.close()
                    raise Refused(response.status, body)
                async for chunk in response.content.iter_any():
                    yield chunk
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise kube.Transient(f"archive: {type(exc).__name__}: {exc}") from None

    async def _failed(self, response: aiohttp.ClientResponse) -> kube.Transient:
        error = await _error(response)
        if isinstance(error, Unauthorized):
            await self.close()  # log in again (a rotated token) at the next call
        return error

    async def may(self, verb: str, namespace: str, name: str) -> bool:
        """Whether the credentials may ``verb`` this Pipeline (a SelfSubjectAccessReview)."""
        self.counts["review"] += 1
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {
                "resourceAttributes": {
                    "group": conventions.GROUP,
                    "resource": conventions.PLURAL,
                    "verb": verb,
                    "namespace": namespace,
                    "name": name,
                }
            },
        }
        answer = await self._json("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", review)
        return bool((answer.get("status") or {}).get("allowed"))

    async def annotate(self, namespace: str, name: str, annotations: Mapping[str, str | None]) -> None:
        """Set (or, with None, remove) annotations of a Pipeline."""
        self.counts["patch"] += 1
        patch = {"metadata": {"annotations": dict(annotations)}}
        await self._json("PATCH", pipelines_path(namespace, name), patch, kube.MERGE)


async def _error(response: aiohttp.ClientResponse) -> kube.Transient:
    """The apiserver's Status message as a classified error (never a request body)."""
    try:
        message = str((await response.json(content_type=None)).get("message") or response.reason)
    except (ValueError, aiohttp.ClientError, AttributeError):
        message = response.reason or ""
    if response.status == 401:
        return Unauthorized(message)
    if response.status == 403:
        return Forbidden(message)
    if response.status == 404:
        return NotFoundError(message)
    if response.status == 410:
        return Gone(message)
    return kube.Transient(f"{response.status} {message}")


class NotFoundError(kube.Transient):
    """404 on a stream (a pod or container that is gone)."""


class Unauthorized(kube.Transient):
    """401 on a stream: the credentials expired or were rotated (the session logs in again)."""


class Refused(kube.Transient):
    """A GET answered with another status than 200: the status and the start of the body, to explain it."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"{status}")
        self.status, self.body = status, body
