"""The Kubernetes API as the operator uses it: a handful of calls over one aiohttp session.

aiohttp is kopf's own HTTP client, and the session is built from the credentials kopf logs in with
(``login``), so the operator's calls need neither a second client library nor threads: they run on the
event loop, over kept-alive connections. Errors are classified (``Conflict``, ``NotFound``, ``Transient``)
so the reconciler can retry a 409 with fresh state, treat 404 as absence, and back off on anything else.
Every call here needs a verb the Helm chart grants; the RBAC tests prove nothing more is needed.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import json
import logging
import os
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
import kopf

from podline.core import auths, conventions

Manifest = dict[str, Any]
STRATEGIC_MERGE = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"
log = logging.getLogger("podline")


class Conflict(Exception):
    """409: someone else changed or created the object first."""


class NotFound(Exception):
    """404."""


class Transient(Exception):
    """Any other API failure: retry later."""


class Rejected(Transient):
    """The apiserver refuses the object itself (400, 422, or Pod Security admission's 403): sending it again
    cannot succeed. A Transient, so a caller that does not handle it keeps retrying as before."""


def in_cluster_server(environ: Mapping[str, str], default: str) -> str:
    """The API server as a pod reaches it: the ``kubernetes`` Service's address from the variables the
    kubelet sets in every container (as client-go's in-cluster config reads them), else ``default``.
    kopf's service-account login names ``https://kubernetes.default.svc``, which needs cluster DNS."""
    host, port = environ.get("KUBERNETES_SERVICE_HOST", ""), environ.get("KUBERNETES_SERVICE_PORT", "")
    if not host or not port:
        return default
    return f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"


def login(**kwargs: Any) -> kopf.ConnectionInfo:
    """Credentials for kopf's watches and podline's calls: the pod's service account, else the kubeconfig.

    kopf's own readers cover tokens, client certificates and basic auth; a kubeconfig whose user runs an
    exec plugin or an auth provider (cloud clusters) is left to the official client, imported only then.
    """
    info = kopf.login_with_service_account(**kwargs)
    if info is not None:
        info = dataclasses.replace(info, server=in_cluster_server(os.environ, info.server))
    info = info or kopf.login_with_kubeconfig(**kwargs)
    if info is None or not (info.token or info.certificate_path or info.certificate_data or info.username):
        info = kopf.login_via_client(**kwargs)
    if info is None:
        raise kopf.LoginError(
            "no Kubernetes credentials: not in a pod with a service account, and no kubeconfig"
        )
    return info


class Kube:
    def __init__(
        self, connect: Callable[[], kopf.ConnectionInfo], *, connections: int = 8, timeout: float = 60.0
    ) -> None:
        """``connect`` gives the credentials; it is called again after a 401 (a rotated token)."""
        self._connect = connect
        self._connections = connections
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._server = ""

    def _open(self) -> aiohttp.ClientSession:
        info = self._connect()
        self._server = info.server.rstrip("/")
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self._connections, ssl=info.as_ssl_context()),
            headers={**info.as_http_headers(), "User-Agent": "podline"},
            timeout=self._timeout,
            proxy=info.proxy_url,
            trust_env=info.trust_env,
        )
        return self._session

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def _request(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> Manifest:
        session = self._session or self._open()
        headers = {"Content-Type": content_type} if body is not None else None
        data = json.dumps(body) if body is not None else None
        try:
            async with session.request(method, self._server + path, data=data, headers=headers) as response:
                raw = await response.read()
                status, reason = response.status, response.reason or ""
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            log.debug('API "%s %s HTTP/1.1" failed: %s', method, path, type(exc).__name__)
            raise Transient(f"{type(exc).__name__}: {exc}") from None
        log.debug('API "%s %s HTTP/1.1" %d', method, path, status)
        if status < 300:
            return lean(json.loads(raw)) if raw else {}
        message = _message(raw, reason)
        if status == 409:
            raise Conflict(message)
        if status == 404:
            raise NotFound(message)
        if status == 401:  # the token was rotated or expired: log in again for the next call
            log.info("the API answered 401 Unauthorized; logging in again")
            await self.close()
        if status in (400, 422) or (status == 403 and "violates PodSecurity" in message):
            raise Rejected(f"{status} {message}")
        raise Transient(f"{status} {message}")

    async def get_pod(self, namespace: str, name: str) -> Manifest:
        return await self._request("GET", _core(namespace, "pods", name))

    async def create(self, manifest: Manifest) -> Manifest:
        kinds = {"Pod": "pods", "Secret": "secrets"}
        if manifest["kind"] not in kinds:
            raise ValueError(f"cannot create {manifest['kind']}")
        return await self._request(
            "POST", _core(manifest["metadata"]["namespace"], kinds[manifest["kind"]]), manifest
        )

    async def patch_pod(self, namespace: str, name: str, patch: Manifest) -> Manifest:
        return await self._request("PATCH", _core(namespace, "pods", name), patch, STRATEGIC_MERGE)

    async def read_log(self, namespace: str, name: str, container: str, *, limit_bytes: int) -> bytes:
        """A container's log as the kubelet keeps it (``pods/log``), at most ``limit_bytes``."""
        session = self._session or self._open()
        path = _core(namespace, "pods", name) + f"/log?container={container}&limitBytes={limit_bytes}"
        try:
            async with session.get(self._server + path) as response:
                raw, status, reason = await response.read(), response.status, response.reason or ""
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise Transient(f"{type(exc).__name__}: {exc}") from None
        log.debug('API "GET %s HTTP/1.1" %d', path, status)
        if status == 404:
            raise NotFound(_message(raw, reason))
        if status >= 300:
            raise Transient(f"{status} {_message(raw, reason)}")
        return raw

    async def delete_pod(self, namespace: str, name: str) -> None:
        await self._request("DELETE", _core(namespace, "pods", name))

    async def read_secret(self, namespace: str, name: str) -> auths.SourceSecret:
        raw = await self._request("GET", _core(namespace, "secrets", name))
        data = {k: base64.b64decode(v) for k, v in (raw.get("data") or {}).items()}
        return auths.SourceSecret(name=name, type=raw.get("type", "Opaque"), data=data)

    async def patch_status(self, namespace: str, name: str, status: Manifest) -> Manifest:
        path = (
            f"/apis/{conventions.GROUP}/{conventions.VERSION}/namespaces/{_q(namespace)}/"
            f"{conventions.PLURAL}/{_q(name)}/status"
        )
        return await self._request("PATCH", path, {"status": status}, MERGE)

    async def event(
        self, involved: Mapping[str, Any], type_: str, reason: str, message: str, *, name: str | None = None
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
                "apiVersion": conventions.API_VERSION,
                "kind": conventions.KIND,
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta.get("uid"),
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
        await self._request("POST", _core(meta["namespace"], "events"), body)


def lean(obj: Mapping[str, Any]) -> Manifest:
    """The object without ``metadata.managedFields``: podline never reads them, and on a run's pod (written by
    the operator and the kubelet, field by field) they are a large share of what the caches would hold."""
    meta = obj.get("metadata")
    if isinstance(meta, Mapping) and "managedFields" in meta:
        return {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}
    return obj if isinstance(obj, dict) else dict(obj)


def _q(part: str) -> str:
    return urllib.parse.quote(part, safe="")


def _core(namespace: str, plural: str, name: str | None = None) -> str:
    path = f"/api/v1/namespaces/{_q(namespace)}/{plural}"
    return f"{path}/{_q(name)}" if name else path


def _message(raw: bytes, reason: str) -> str:
    """The apiserver's Status message (never the request body: that may hold a Secret's data)."""
    try:
        return str(json.loads(raw).get("message") or reason)
    except (ValueError, AttributeError):
        return reason
