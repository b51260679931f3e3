"""Reading an image's ENTRYPOINT/CMD from its registry: the requests behind ``core.imageconfigs`` (what is
read) and ``core.registries`` (where, with which credentials, and what the answers mean).

``ImageConfigs.resolve(reference, credentials)`` resolves the reference's tag (or digest) to a manifest
digest on every call (one HEAD), and on a cache miss reads the manifest, follows an index to the manifest of
the platform, and reads the config blob, verifying every digest; the result is cached by digest and
platform (bounded, LRU); resolves of one config at the same time share one read (a burst of runs of one
plugin image costs the registry one read, and Docker Hub, which counts manifest GETs, not HEADs, one pull).
It runs on the event loop (aiohttp, kopf's own HTTP client) with one overall
timeout per call, over a session of its own: the operator's Kubernetes session never talks to registries.

Why no registry library: the candidates did not fit. python-dxf (sync, requests) refuses to send credentials
over plain HTTP (``DXFAuthInsecureError``), which loopback and mirror registries need, and requires a
``mediaType`` field that OCI manifests may omit. oras-py (sync, requests, jsonschema) sends no request
timeout, reads ``~/.docker/config.json``, holds one token per client whatever the repository, and answers a
``Basic`` challenge by asking its realm for a token. docker-registry-client-async (aiohttp) reads
``~/.docker/config.json`` and ``DRCA_*`` variables by default, keeps tokens forever (no expiry), and brings
aiodns, aiofiles and canonicaljson. None chooses credentials by the kubelet's rules, which must be ours
anyway. What is needed is five requests (HEAD/GET manifest, GET blob, GET token) and the two challenge
schemes; that is this module.

Credentials are tried in the kubelet's order; a refused one gives way to the next. They go only to the
registry (or a token realm over https, or plain http on loopback), are dropped on a redirect to another
host, and never appear in a log line or an error.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import ssl as ssl_
import time
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp
import multidict

from podline.core import auths, errors, images, registries
from podline.core import imageconfigs as core
from podline.shell import settings as settings_

log = logging.getLogger("podline")
Reason = errors.RegistryReason

MAX_REDIRECTS = 5
TOKEN_LIMIT = 64 * 1024
ERROR_BODY_LIMIT = 64 * 1024
BASIC_SECONDS = 3600.0  # how long a host's wish for Basic auth is remembered
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class ImageConfigs:
    """Reads image configs; one per operator (it holds the cache, remembered tokens and connections).

    ``mirrors``: from ``PODLINE_REGISTRY_MIRRORS``. ``platform``: the default of ``resolve``. ``timeout``:
    seconds one ``resolve`` may take in all. ``cache_size``: configs kept. ``ssl``: an SSL context for
    registries with private CAs (default: the system's); ``ca_file``: where its extra CAs came from
    (``PODLINE_REGISTRY_CA_FILE``), for messages only. Use it from one event loop; ``close()`` at shutdown.
    """

    def __init__(
        self,
        *,
        mirrors: Sequence[registries.Mirror] = (),
        platform: str = core.DEFAULT_PLATFORM,
        timeout: float = 15.0,
        cache_size: int = 1024,
        connections: int = 8,
        ssl: ssl_.SSLContext | None = None,
        ca_file: str = "",
    ) -> None:
        self.mirrors = tuple(mirrors)
        self.platform = core.parse_platform(platform)
        self.timeout = timeout
        self.cache_size = cache_size
        self.requests = 0  # HTTP requests sent, for metrics and tests
        self.cache_hits = 0
        self.proxies = urllib.request.getproxies_environment()  # HTTPS_PROXY, NO_PROXY, … as containerd reads
        self._connections = connections
        self._ssl = ssl
        self.ca_file = ca_file
        self._cache: collections.OrderedDict[tuple[str, str], core.ImageConfig] = collections.OrderedDict()
        # (registry base, repository, credential fingerprint) -> (Authorization value, monotonic expiry)
        self._auth: collections.OrderedDict[tuple[str, str, str], tuple[str, float]] = (
            collections.OrderedDict()
        )
        # registries that asked for Basic: credentials go with the first request, no anonymous round trip
        self._basic: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._pending: dict[tuple[str, str], asyncio.Future[core.ImageConfig]] = {}
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_settings(cls, config: settings_.Settings, **options: Any) -> ImageConfigs:
        """The operator's reader: its mirrors and registry CAs (``PODLINE_REGISTRY_*``) and the platform read
        for runs that name none (``PODLINE_PLATFORM``); ``options``: the rest."""
        return cls(mirrors=config.registry_mirrors, ssl=config.registry_ssl(), ca_file=config.registry_ca_file,
                   platform=config.platform, **options)  # fmt: skip

    async def resolve(
        self,
        reference: str,
        credentials: auths.Credentials | None,
        *,
        platform: str | core.Platform | None = None,
        path: str = "",
    ) -> core.ImageConfig:
        """The ENTRYPOINT/CMD of ``reference`` for ``platform`` (``linux/arm64`` or a ``core.Platform``;
        default: the constructor's), read with the run's pull ``credentials`` (None: anonymously).

        Raises ``errors.InvalidImageReference`` for a bad reference, ValueError for a bad platform, and
        ``errors.ImageConfigUnavailable`` (``reason``; ``transient`` for unreachable, 429 and 5xx) when the
        registry cannot or will not say; both at ``path`` (a field path) when given. Costs one HEAD when the
        digest is cached (plus a token request when no token is remembered), else two to four requests more.
        """
        image = images.parse(reference, path=path or "image")
        if platform is None:
            wanted = self.platform
        elif isinstance(platform, core.Platform):
            wanted = core.normalize_platform(platform.os, platform.architecture, platform.variant)
        else:
            wanted = core.parse_platform(platform)
        where = registries.endpoint(image, self.mirrors)
        reader = _Reader(self, reference, where, registries.credentials_for(credentials, image, where))
        try:
            async with asyncio.timeout(self.timeout):
                return await self._resolve(reader, image, wanted)
        except TimeoutError:
            detail = f"{where.host} did not answer within {self.timeout:g} s"
            raise errors.ImageConfigUnavailable.because(
                reference, Reason.UNREACHABLE, detail, path=path
            ) from None
        except errors.ImageConfigUnavailable as error:
            if not path or error.reason is None:
                raise
            raise errors.ImageConfigUnavailable.because(
                error.image, error.reason, error.detail, path=path
            ) from None

    async def config(
        self, image: str, credentials: auths.Credentials | None, *, platform: core.Platform | None = None
    ) -> core.ImageConfig:
        """``resolve`` for the run's ``platform`` (None: the default one): ``reconciling.ImageConfigSource``."""
        return await self.resolve(image, credentials, platform=platform)

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def _resolve(
        self, reader: _Reader, image: images.ImageRef, wanted: core.Platform
    ) -> core.ImageConfig:
        top = image.digest or image.tag or images.LATEST
        digest, body, content_type = await reader.resolve_digest(top)
        if image.digest is not None and digest != image.digest:
            raise reader.bad("the registry answered with another digest than the one asked for")
        key = (digest, str(wanted))  # an index: its answer depends on the platform; a manifest: (digest, "")
        for known in (key, (digest, "")):
            cached = self._cache.get(known)
            if cached is not None:
                self._cache.move_to_end(known)
                self.cache_hits += 1
                return cached
        pending = self._pending.get(key)
        if pending is not None:  # another resolve is reading this very config: one read for a burst of runs
            try:
                return await asyncio.shield(pending)
            except (errors.ImageConfigUnavailable, _Abandoned):
                pass  # its failure may be its own (its credentials, its timeout): read for ourselves
        future: asyncio.Future[core.ImageConfig] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_retrieved)
        self._pending.setdefault(key, future)
        try:
            stored, result = await self._read(reader, digest, body, content_type, wanted)
        except errors.ImageConfigUnavailable as error:
            future.set_exception(error)
            raise
        except BaseException:
            future.set_exception(_Abandoned())
            raise
        finally:
            if self._pending.get(key) is future:
                del self._pending[key]
        future.set_result(result)
        self._cache[stored] = result
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return result

    async def _read(
        self, reader: _Reader, digest: str, body: bytes | None, content_type: str, wanted: core.Platform
    ) -> tuple[tuple[str, str], core.ImageConfig]:
        """The config behind manifest ``digest`` (its ``body``, if already read), and its cache key."""
        if body is None:
            body, content_type = await reader.manifest(digest)
        manifest_digest = digest
        document = reader.parse(body, content_type, digest)
        key = (digest, "") if isinstance(document, core.Manifest) else (digest, str(wanted))
        depth = 0
        while isinstance(document, core.Index):
            depth += 1
            if depth > core.MAX_INDEX_DEPTH:
                raise reader.bad("its indexes are nested too deeply")
            chosen = core.choose(reader.image, document, wanted)
            body, content_type = await reader.manifest(chosen.digest)
            manifest_digest = chosen.digest
            document = reader.parse(body, content_type, chosen.digest)
        config = await reader.blob(document.config.digest)
        core.verify(reader.image, config, document.config.digest, "image config")
        entrypoint, cmd = core.parse_config(reader.image, config)
        return key, core.ImageConfig(entrypoint=entrypoint, cmd=cmd, digest=manifest_digest)

    # ---- remembered authorization (per registry, repository and credential) -----------------------------

    def _remembered(self, key: tuple[str, str, str]) -> str | None:
        found = self._auth.get(key)
        if found is None or found[1] <= time.monotonic():
            self._auth.pop(key, None)
            return None
        return found[0]

    def _remember(self, key: tuple[str, str, str], value: str, seconds: float) -> None:
        self._auth[key] = (value, time.monotonic() + max(seconds - 5.0, 1.0))  # renew a little early
        self._auth.move_to_end(key)
        while len(self._auth) > self.cache_size:
            self._auth.popitem(last=False)

    def _forget(self, key: tuple[str, str, str]) -> None:
        self._auth.pop(key, None)

    def _wants_basic(self, base: str) -> None:
        self._basic[base] = None
        self._basic.move_to_end(base)
        while len(self._basic) > self.cache_size:
            self._basic.popitem(last=False)

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._connections, ssl=self._ssl if self._ssl else True),
                headers={"User-Agent": "podline"},
                trust_env=False,  # it would also send ~/.netrc credentials; proxies: see proxy_for
            )
        return self._session


class _Reader:
    """The requests of one ``resolve``: which credential is being tried, and what each answer means."""

    def __init__(
        self,
        owner: ImageConfigs,
        image: str,
        where: registries.Endpoint,
        credentials: Sequence[registries.Credential],
    ) -> None:
        self.owner = owner
        self.image = image
        self.where = where
        self.credentials = tuple(credentials)
        self._current = 0

    def bad(self, detail: str) -> errors.ImageConfigUnavailable:
        return errors.ImageConfigUnavailable.because(self.image, Reason.BAD_RESPONSE, detail)

    def parse(self, body: bytes, content_type: str, digest: str) -> core.Index | core.Manifest:
        core.verify(self.image, body, digest, "manifest")
        return core.parse_manifest(self.image, body, content_type)

    async def resolve_digest(self, reference: str) -> tuple[str, bytes | None, str]:
        """The manifest digest ``reference`` (tag or digest) names now: from a HEAD's Docker-Content-Digest,
        else from the manifest itself (then returned too, with its Content-Type)."""
        url = self.where.url("manifests", reference)
        what = f"manifest {json.dumps(reference)} in repository {json.dumps(self.where.repository)}"
        headers, _ = await self._fetch("HEAD", url, what, core.ACCEPT, 0)
        digest = headers.get("Docker-Content-Digest", "")
        if core.is_digest(digest):
            return digest, None, ""
        headers, body = await self._fetch("GET", url, what, core.ACCEPT, core.MANIFEST_LIMIT)
        return core.digest_of(body), body, headers.get("Content-Type", "")

    async def manifest(self, digest: str) -> tuple[bytes, str]:
        what = f"manifest {digest} in repository {json.dumps(self.where.repository)}"
        headers, body = await self._fetch("GET", self.where.url("manifests", digest), what, core.ACCEPT,
                                          core.MANIFEST_LIMIT)  # fmt: skip
        return body, headers.get("Content-Type", "")

    async def blob(self, digest: str) -> bytes:
        what = f"image config blob {digest}"
        _, body = await self._fetch("GET", self.where.url("blobs", digest), what, "*/*", core.CONFIG_LIMIT)
        return body

    async def _fetch(
        self, method: str, url: str, what: str, accept: str, limit: int
    ) -> tuple[Mapping[str, str], bytes]:
        """One registry request, authenticated as the registry asks; tries the next credential when one is
        refused. Returns the headers and body of a success; raises for anything else."""
        while True:
            credential = self.credentials[self._current] if self.credentials else None
            key = (self.where.base, self.where.repository, credential.fingerprint if credential else "")
            sent = self.owner._remembered(key)
            if sent is None and credential is not None and self.where.base in self.owner._basic:
                sent = credential.basic  # this registry asked for Basic before: no anonymous round trip
            status, headers, body = await self._send(method, url, accept, sent, limit)
            if status in (401, 403) and "WWW-Authenticate" in headers:
                fresh = await self._answer(headers["WWW-Authenticate"], credential)
                if fresh is not None and fresh[0] != sent:
                    self.owner._remember(key, *fresh)
                    status, headers, body = await self._send(method, url, accept, fresh[0], limit)
            if status not in (401, 403):
                break
            self.owner._forget(key)
            if self._current + 1 < len(self.credentials):
                self._current += 1
                continue
            break
        if status >= 300:
            codes = registries.error_codes(body)
            mirror = self.where.host if self.where.mirror else ""
            raise registries.refusal(
                self.image, status, what, tried=self.credentials, codes=codes, mirror=mirror
            )
        return headers, body

    async def _answer(
        self, header: str, credential: registries.Credential | None
    ) -> tuple[str, float] | None:
        """The Authorization value that answers a challenge, and how long it holds; None when there is none
        (Basic without a credential, a token service that refuses the credential)."""
        challenges = registries.parse_challenges(header)
        for challenge in challenges:
            if challenge.scheme != "bearer":
                continue
            url = registries.token_url(challenge, self.where.repository, self.where)
            if url is None:
                raise self.bad("its token service is not an https URL (or plain http on this machine)")
            basic = credential.basic if credential else None
            status, _, body = await self._send("GET", url, "application/json", basic, TOKEN_LIMIT)
            if status in (401, 403):
                return None
            if status >= 300:
                raise registries.refusal(self.image, status, "a token")
            token = registries.parse_token(body)
            if token is None:
                raise self.bad("its token service answered without a token")
            return f"Bearer {token[0]}", token[1]
        if credential is not None and any(c.scheme == "basic" for c in challenges):
            self.owner._wants_basic(self.where.base)
            return credential.basic, BASIC_SECONDS
        return None

    async def _send(
        self, method: str, url: str, accept: str, authorization: str | None, limit: int
    ) -> tuple[int, Mapping[str, str], bytes]:
        """Send one request, following redirects (Authorization only to the same origin, never to plain http
        from https). A success body is read up to ``limit`` bytes (more is a bad response)."""
        session = self.owner._open()
        headers = {"Accept": accept}
        if authorization is not None:
            headers["Authorization"] = authorization
        for _ in range(MAX_REDIRECTS + 1):
            self.owner.requests += 1
            try:
                proxy = proxy_for(url, self.owner.proxies)
                async with session.request(
                    method, url, headers=headers, allow_redirects=False, proxy=proxy
                ) as response:
                    status = response.status
                    log.debug('registry "%s %s" %d', method, _shown_url(url), status)
                    location = response.headers.get("Location")
                    if status in _REDIRECTS and location:
                        target = urllib.parse.urljoin(url, location)
                        if not target.startswith(("https://", "http://")) or (
                            url.startswith("https://") and target.startswith("http://")
                        ):
                            raise self.bad("it redirected to a URL that is not https")
                        if _origin(target) != _origin(url):
                            headers.pop("Authorization", None)
                        url = target
                        continue
                    body = (
                        b"" if method == "HEAD" else await self._read(response, limit if status < 300 else 0)
                    )
                    return status, multidict.CIMultiDict(response.headers), body  # any case
            except aiohttp.ClientConnectorCertificateError as exc:
                raise self._untrusted(url, exc.certificate_error) from None
            except aiohttp.ClientSSLError:
                raise self._unreachable(url, "the TLS handshake failed") from None
            except aiohttp.ClientConnectorError:
                raise self._unreachable(url, "cannot connect") from None
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError):
                raise self._unreachable(url, "the connection closed early") from None
            except (aiohttp.ClientError, OSError) as exc:
                raise self._unreachable(url, type(exc).__name__) from None
        raise self.bad(f"more than {MAX_REDIRECTS} redirects")

    async def _read(self, response: aiohttp.ClientResponse, limit: int) -> bytes:
        """The body, up to ``limit`` bytes (0: an error answer, read up to ERROR_BODY_LIMIT, cut silently)."""
        cap = limit or ERROR_BODY_LIMIT
        declared = response.content_length
        if limit and declared is not None and declared > limit:
            raise self.bad(f"it answered with {declared} bytes, more than the {_size(limit)} allowed")
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_chunked(65536):
            chunks.append(chunk)
            size += len(chunk)
            if size > cap:
                if limit:
                    raise self.bad(f"it answered with more than the {_size(limit)} allowed")
                break
        return b"".join(chunks)[:cap]

    def _untrusted(self, url: str, cause: Exception) -> errors.ImageConfigUnavailable:
        host = urllib.parse.urlsplit(url).netloc
        code = getattr(cause, "verify_code", None)
        why = getattr(cause, "verify_message", None) or str(cause)
        return registries.untrusted(
            self.image, host, code if isinstance(code, int) else None, str(why), ca_file=self.owner.ca_file
        )

    def _unreachable(self, url: str, why: str) -> errors.ImageConfigUnavailable:
        host = urllib.parse.urlsplit(url).netloc
        return errors.ImageConfigUnavailable.because(self.image, Reason.UNREACHABLE, f"{host}: {why}")


class _Abandoned(Exception):
    """The resolve others waited for stopped without an answer of its own (cancelled, timed out, a bug)."""


def _retrieved(future: asyncio.Future[core.ImageConfig]) -> None:
    """Mark a failed read's exception as seen when nobody waited for it (asyncio would log it)."""
    if not future.cancelled():
        future.exception()


def proxy_for(url: str, proxies: Mapping[str, str]) -> str | None:
    """The proxy of ``url`` by the environment's ``http_proxy``/``https_proxy``/``no_proxy`` (``proxies``
    as ``urllib.request.getproxies_environment`` reads them: ``no`` is a list of host names, each with its
    subdomains, or ``*``); loopback never goes through a proxy."""
    parts = urllib.parse.urlsplit(url)
    proxy = proxies.get(parts.scheme)
    if not proxy or registries.is_loopback(parts.netloc):
        return None
    host = parts.hostname or ""
    for entry in (e.strip().lower().lstrip(".") for e in proxies.get("no", "").split(",")):
        if entry == "*" or (entry and (host == entry or host.endswith("." + entry))):
            return None
    return proxy


def _origin(url: str) -> tuple[str, str]:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme, parts.netloc


def _shown_url(url: str) -> str:
    """A URL for a log line: scheme, host and path (a token request's query names only service and scope,
    but no query is logged at all)."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def _size(limit: int) -> str:
    return f"{limit // (1024 * 1024)} MiB" if limit >= 1024 * 1024 else f"{limit} bytes"
