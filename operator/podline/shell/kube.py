"""The Kubernetes API as the operator uses it: a handful of calls, each run off the event loop.

Wraps the official client. Errors are classified (``Conflict``, ``NotFound``, ``Transient``) so the
reconciler can retry a 409 with fresh state, treat 404 as absence, and back off on anything else.
Every call here needs a verb the Helm chart grants; the RBAC tests prove nothing more is needed.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import datetime
import functools
import json
from collections.abc import Callable
from typing import Any, TypeVar

import kubernetes
from kubernetes.client import ApiException

from podline.core import auths, conventions

T = TypeVar("T")
Manifest = dict[str, Any]
STRATEGIC_MERGE = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"


class Conflict(Exception):
    """409: someone else changed or created the object first."""


class NotFound(Exception):
    """404."""


class Transient(Exception):
    """Any other API failure: retry later."""


class Rejected(Transient):
    """The apiserver refuses the object itself (400, 422, or Pod Security admission's 403): sending it again
    cannot succeed. A Transient, so a caller that does not handle it keeps retrying as before."""


def load_config() -> None:
    try:
        kubernetes.config.load_incluster_config()
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config()


class Kube:
    def __init__(self, workers: int = 8, api_client: kubernetes.client.ApiClient | None = None) -> None:
        self.client = api_client or kubernetes.client.ApiClient()
        self.core = kubernetes.client.CoreV1Api(self.client)
        self.custom = kubernetes.client.CustomObjectsApi(self.client)
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kube")

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))
        except ApiException as exc:
            if exc.status == 409:
                raise Conflict(_reason(exc)) from None
            if exc.status == 404:
                raise NotFound(_reason(exc)) from None
            reason = _reason(exc)
            if exc.status in (400, 422) or (exc.status == 403 and "violates PodSecurity" in reason):
                raise Rejected(f"{exc.status} {reason}") from None
            raise Transient(f"{exc.status} {reason}") from None
        except Exception as exc:  # noqa: BLE001 - connection refused, timeouts, …: the apiserver may be restarting
            raise Transient(f"{type(exc).__name__}: {exc}") from None

    async def get_pod(self, namespace: str, name: str) -> Manifest:
        pod = await self._call(self.core.read_namespaced_pod, name, namespace, _preload_content=False)
        return _json(pod)

    async def create(self, manifest: Manifest) -> Manifest:
        ns = manifest["metadata"]["namespace"]
        if manifest["kind"] == "Pod":
            return _json(await self._call(self.core.create_namespaced_pod, ns, manifest, _preload_content=False))
        if manifest["kind"] == "Secret":
            return _json(await self._call(self.core.create_namespaced_secret, ns, manifest, _preload_content=False))
        raise ValueError(f"cannot create {manifest['kind']}")

    async def patch_pod(self, namespace: str, name: str, patch: Manifest) -> Manifest:
        return _json(await self._call(self.core.patch_namespaced_pod, name, namespace, patch, _preload_content=False,
                                      _content_type=STRATEGIC_MERGE))

    async def delete_pod(self, namespace: str, name: str) -> None:
        await self._call(self.core.delete_namespaced_pod, name, namespace, _preload_content=False)

    async def read_secret(self, namespace: str, name: str) -> auths.SourceSecret:
        raw = _json(await self._call(self.core.read_namespaced_secret, name, namespace, _preload_content=False))
        data = {k: base64.b64decode(v) for k, v in (raw.get("data") or {}).items()}
        return auths.SourceSecret(name=name, type=raw.get("type", "Opaque"), data=data)

    async def patch_status(self, namespace: str, name: str, status: Manifest) -> None:
        await self._call(
            self.custom.patch_namespaced_custom_object_status,
            conventions.GROUP, conventions.VERSION, namespace, conventions.PLURAL, name,
            {"status": status}, _preload_content=False, _content_type=MERGE,
        )

    async def list_pipelines(self, namespace: str | None) -> list[Manifest]:
        if namespace:
            fn = functools.partial(self.custom.list_namespaced_custom_object, conventions.GROUP,
                                   conventions.VERSION, namespace, conventions.PLURAL)
        else:
            fn = functools.partial(self.custom.list_cluster_custom_object, conventions.GROUP,
                                   conventions.VERSION, conventions.PLURAL)
        return list(_json(await self._call(fn, _preload_content=False)).get("items", []))

    async def event(
        self, involved: Manifest, type_: str, reason: str, message: str, *, name: str | None = None
    ) -> None:
        """Record an Event. Named, a second one of the same name (from another replica) gets 409, not a copy."""
        meta = involved["metadata"]
        now = datetime.datetime.now(datetime.UTC)
        naming = {"name": name} if name else {"generateName": f"{meta['name']}."}
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {**naming, "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": conventions.API_VERSION, "kind": conventions.KIND, "name": meta["name"],
                "namespace": meta["namespace"], "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": "podline"},
            "firstTimestamp": now.isoformat(),
            "lastTimestamp": now.isoformat(),
            "count": 1,
            "reportingComponent": "podline.dev/operator",
        }
        await self._call(self.core.create_namespaced_event, meta["namespace"], body, _preload_content=False)


def _json(response: Any) -> Manifest:
    data = response.data if hasattr(response, "data") else response
    return dict(json.loads(data)) if data else {}


def _reason(exc: ApiException) -> str:
    try:
        return str(json.loads(exc.body).get("message", exc.reason))
    except (TypeError, ValueError):
        return str(exc.reason)
