"""Image configs: what an image runs by itself (its ENTRYPOINT and CMD), as its registry describes it.

A plugin step (no ``commands``, no ``entrypoint``) or a ``command:``-only step runs the image's own
ENTRYPOINT/CMD, and in-pod hand-off wraps that command, so the operator must read it from the registry, as
Tekton and Argo do. This module decides, with no I/O:

* where a reference's registry API is: Docker Hub's API host, a mirror (``PODLINE_REGISTRY_MIRRORS``), TLS
  or plain HTTP (only for a mirror given as ``http://`` and for loopback registries, as containerd does);
* which credentials of a run's ``auths.Credentials`` go there, by the kubelet's keyring rules
  (``auths.Credentials.keys_for``), in the kubelet's order;
* how manifests, indexes and config blobs are read and verified (digests), which manifest of an index fits
  a platform (containerd's normalisation: ``aarch64`` is ``arm64/v8``, …), and what a config's
  ``Entrypoint``/``Cmd`` mean when missing, null or a bare string;
* how a registry's ``WWW-Authenticate`` challenge is answered (Basic, or the Bearer token flow);
* the errors (``errors.ImageConfigUnavailable``), in words, never with a credential.

The requests, the cache and the timeouts are ``podline.shell.imageconfigs``'s.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from podline.core import auths, errors, images

Reason = errors.RegistryReason

DEFAULT_PLATFORM = "linux/amd64"
DOCKER_HUB_API = "registry-1.docker.io"  # where Docker Hub's registry API answers (docker.io does not)
MANIFEST_LIMIT = 4 * 1024 * 1024  # containerd's limit on a manifest or index
CONFIG_LIMIT = 8 * 1024 * 1024
MAX_INDEX_DEPTH = 2  # an index of indexes is allowed once; deeper nesting is a bad response

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_SCHEMA1 = ("application/vnd.docker.distribution.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.v1+prettyjws")  # fmt: skip
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
CONFIG_TYPES = frozenset(
    {"application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json"}
)
ACCEPT = f"{OCI_INDEX}, {DOCKER_LIST}, {OCI_MANIFEST}, {DOCKER_MANIFEST}"

_GENERIC_TYPES = frozenset({"application/json", "application/octet-stream", "text/plain"})  # say nothing
_DIGEST = re.compile(r"(sha256:[a-f0-9]{64}|sha384:[a-f0-9]{96}|sha512:[a-f0-9]{128})")
_ERROR_CODE = re.compile(r"[A-Z][A-Z_]{0,39}")


@dataclass(frozen=True)
class ImageConfig:
    """What an image runs by itself. ``digest`` is the image manifest's (for the platform it was read for)."""

    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...]
    digest: str

    def argv(self, command: Sequence[str] | None = None) -> tuple[str, ...]:
        """The command a container of this image runs when its spec gives only ``args`` (``command``,
        Drone's ``command:``) or nothing: ENTRYPOINT, then ``command`` if given (it replaces CMD), else
        CMD. Empty when the image says nothing and nothing was given; the caller reports that."""
        return self.entrypoint + (tuple(command) if command is not None else self.cmd)


# ---- platforms -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Platform:
    """An OS/architecture/variant, normalised (``parse_platform``), so equal platforms compare equal."""

    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        return "/".join(part for part in (self.os, self.architecture, self.variant) if part)


_ARCHITECTURES = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "i386": "386", "i686": "386",
                  "armhf": "arm", "armel": "arm"}  # fmt: skip
_ARCH_VARIANTS = {"armhf": "v7", "armel": "v6"}


def normalize_platform(os: str, architecture: str, variant: str = "") -> Platform:
    """containerd's ``platforms.Normalize``: lower case, ``x86_64`` → ``amd64``, ``aarch64`` → ``arm64/v8``,
    ``arm`` without a variant → ``arm/v7``, ``amd64/v1`` → ``amd64``, variant ``8`` → ``v8``."""
    os, architecture, variant = os.strip().lower(), architecture.strip().lower(), variant.strip().lower()
    os = "darwin" if os == "macos" else os
    variant = variant or _ARCH_VARIANTS.get(architecture, "")
    architecture = _ARCHITECTURES.get(architecture, architecture)
    if variant.isdigit():
        variant = f"v{variant}"
    if architecture == "amd64" and variant == "v1":
        variant = ""
    elif architecture == "arm64" and not variant:
        variant = "v8"
    elif architecture == "arm" and not variant:
        variant = "v7"
    return Platform(os, architecture, variant)


def parse_platform(text: str) -> Platform:
    """``os/architecture[/variant]`` (``linux/amd64``, ``linux/arm64/v8``), normalised. Raises ValueError."""
    parts = text.strip().split("/")
    if not 2 <= len(parts) <= 3 or not all(re.fullmatch(r"[A-Za-z0-9_.-]+", part) for part in parts):
        raise ValueError(
            f"platform {json.dumps(text[:100])} is not os/architecture[/variant], e.g. linux/amd64"
        )
    return normalize_platform(*parts)


# ---- where the registry is -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mirror:
    """Requests for images of ``registry`` (a registry host as references name it, ``docker.io``) go to
    ``url`` (``scheme://host[:port]``) instead, and never to the registry itself."""

    registry: str
    url: str


def parse_mirrors(text: str) -> tuple[Mirror, ...]:
    """``PODLINE_REGISTRY_MIRRORS``: comma-separated ``registry=url`` pairs, ``docker.io=http://host:5101``.

    Registry hosts are normalised as config.json keys are (``index.docker.io`` is ``docker.io``); a URL is
    ``http://`` or ``https://`` with a host, an optional port, and no user, path (but ``/`` or ``/v2``), query
    or fragment. Raises ValueError naming the first bad pair (without a URL's user information).
    """
    mirrors: dict[str, Mirror] = {}
    for raw in (part.strip() for part in text.split(",")):
        if not raw:
            continue
        name, equals, url = (piece.strip() for piece in raw.partition("="))
        registry = auths.registry_key(name).lower()  # host names are case-insensitive
        if not equals or not registry or "/" in registry or not url:
            shown = _shown(raw) if "@" not in raw else "an entry"  # never repeat user information
            raise ValueError(f"{shown} is not registry=url (e.g. docker.io=http://localhost:5101)")
        mirrors[registry] = Mirror(registry, _mirror_url(registry, url))
    return tuple(mirrors.values())


def _mirror_url(registry: str, url: str) -> str:
    where = f"the mirror of {json.dumps(registry)}"
    try:
        parsed = urllib.parse.urlsplit(url)
        port = parsed.port
    except ValueError:
        raise ValueError(f"{where} is not a URL") from None
    if "@" in parsed.netloc:
        raise ValueError(f"{where} must not contain user information; give credentials in image_pull_secrets")
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError(f"{where} must be an http:// or https:// URL with a host")
    if parsed.path.rstrip("/") not in ("", "/v2") or parsed.query or parsed.fragment:
        raise ValueError(f"{where} must be scheme://host[:port], without a path")
    host = f"[{parsed.hostname}]" if ":" in parsed.hostname else parsed.hostname
    return f"{parsed.scheme}://{host}" + (f":{port}" if port is not None else "")


@dataclass(frozen=True)
class Endpoint:
    """Where one image's registry API is: ``base`` (``https://registry-1.docker.io``), the ``repository``
    (``library/busybox``), and whether that is a mirror."""

    base: str
    repository: str
    mirror: bool = False

    @property
    def host(self) -> str:
        """``host[:port]`` requests go to."""
        return urllib.parse.urlsplit(self.base).netloc

    @property
    def plain_http(self) -> bool:
        return self.base.startswith("http://")

    def url(self, kind: str, reference: str) -> str:
        """``/v2/<repository>/<kind>/<reference>`` (``kind``: ``manifests`` or ``blobs``)."""
        return f"{self.base}/v2/{self.repository}/{kind}/{urllib.parse.quote(reference, safe=':')}"


def endpoint(image: images.ImageRef, mirrors: Sequence[Mirror] = ()) -> Endpoint:
    """The registry API of ``image``: its mirror if one is set for its registry; Docker Hub's API host for
    ``docker.io``; plain HTTP for loopback registries (``localhost``, 127.0.0.0/8, ``[::1]``), else TLS."""
    for mirror in mirrors:
        if mirror.registry == image.domain.lower():
            return Endpoint(mirror.url, image.path, mirror=True)
    if image.domain == images.DOCKER_HUB:
        return Endpoint(f"https://{DOCKER_HUB_API}", image.path)
    scheme = "http" if is_loopback(image.domain) else "https"
    return Endpoint(f"{scheme}://{image.domain}", image.path)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (``name[:port]``, ``[v6]:port``) is this machine: ``localhost`` or a loopback IP."""
    name = urllib.parse.urlsplit(f"//{host}").hostname or ""
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


# ---- credentials -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Credential:
    """One registry credential of a run; ``key`` and ``secret`` (where it came from) are for messages."""

    key: str
    secret: str
    username: str = field(repr=False)
    password: str = field(repr=False)

    @property
    def basic(self) -> str:
        """The ``Authorization`` header value of HTTP Basic."""
        return "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()

    @property
    def fingerprint(self) -> str:
        """A stand-in for the credential in cache keys (not reversible)."""
        return hashlib.sha256(f"{self.username}\0{self.password}".encode()).hexdigest()[:32]

    def describe(self) -> str:
        origin = f" (secret {json.dumps(self.secret)})" if self.secret else ""
        return f"registry key {json.dumps(self.key)}{origin}"


def credentials_for(
    credentials: auths.Credentials | None, image: images.ImageRef, where: Endpoint
) -> tuple[Credential, ...]:
    """The credentials to try, in order, for reading ``image`` at ``where``: those the kubelet would send for
    the image (its keyring rules and order). At a mirror, only those whose key matches the mirror's own host
    (and the repository): a Docker Hub credential is never sent to a mirror. Empty: read anonymously."""
    if credentials is None:
        return ()
    name = f"{where.host}/{where.repository}" if where.mirror else image.name
    entries: Mapping[str, Any] = credentials.config.get("auths", {})
    found: list[Credential] = []
    for key in credentials.keys_for(name):
        entry = entries.get(key) or {}
        username, password = entry.get("username"), entry.get("password")
        if isinstance(username, str) and isinstance(password, str) and username:
            found.append(Credential(key, credentials.origins.get(key, ""), username, password))
    return tuple(found)


# ---- documents -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: Platform | None = None


@dataclass(frozen=True)
class Index:
    """An OCI image index or a Docker manifest list."""

    manifests: tuple[Descriptor, ...]


@dataclass(frozen=True)
class Manifest:
    """An image manifest (OCI or Docker schema 2): only its config matters here."""

    config: Descriptor


def digest_of(body: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, body).hexdigest()}"


def is_digest(text: str) -> bool:
    return _DIGEST.fullmatch(text) is not None


def verify(image: str, body: bytes, digest: str, what: str) -> None:
    """Raise BAD_RESPONSE unless ``body`` has ``digest`` (content addressing: what the cache relies on)."""
    algorithm = digest.partition(":")[0]
    if not is_digest(digest) or digest_of(body, algorithm) != digest:
        raise errors.ImageConfigUnavailable.because(
            image, Reason.BAD_RESPONSE, f"the {what} does not match its digest"
        )


def parse_manifest(image: str, body: bytes, content_type: str = "") -> Index | Manifest:
    """An index or an image manifest, by its ``mediaType`` (else the response's Content-Type, else its
    fields). Raises ``ImageConfigUnavailable`` (BAD_RESPONSE) saying what is wrong with it."""
    document = _json_object(image, body, "manifest")
    header = content_type.partition(";")[0].strip().lower()
    media_type = document.get("mediaType") or ("" if header in _GENERIC_TYPES else header)
    if not isinstance(media_type, str):
        raise _bad(image, 'the manifest\'s "mediaType" is not a string')
    if document.get("schemaVersion") == 1 or media_type in DOCKER_SCHEMA1:
        raise _bad(image, "the registry only has a schema 1 manifest (deprecated); push the image again")
    if media_type in INDEX_TYPES or (media_type not in MANIFEST_TYPES and "manifests" in document):
        entries = document.get("manifests")
        if not isinstance(entries, list):
            raise _bad(image, 'the index has no "manifests" list')
        return Index(tuple(_descriptor(image, entry, f"manifests[{i}]") for i, entry in enumerate(entries)))
    if media_type in MANIFEST_TYPES or (not media_type and "config" in document):
        config = _descriptor(image, document.get("config"), "config")
        if config.media_type and config.media_type not in CONFIG_TYPES:
            raise _bad(image, f"it is an artifact of type {_shown(config.media_type)}, not a container image")
        return Manifest(config)
    raise _bad(image, f"unsupported manifest type {_shown(media_type or '(none)')}")


def choose(image: str, index: Index, platform: Platform) -> Descriptor:
    """The manifest of ``index`` for ``platform``: the first whose normalised platform equals it, else the
    first without a platform; raises NO_PLATFORM listing what the index has."""
    for entry in index.manifests:
        if entry.platform == platform:
            return entry
    for entry in index.manifests:
        if entry.platform is None:
            return entry
    offered = sorted({str(e.platform) for e in index.manifests if e.platform and e.platform.os != "unknown"})
    listed = ", ".join(offered[:12]) + (", …" if len(offered) > 12 else "")
    raise errors.ImageConfigUnavailable.because(
        image, Reason.NO_PLATFORM, f"{platform}; the image is for {listed or 'no platform'}"
    )


def parse_config(image: str, body: bytes) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(entrypoint, cmd)`` from an image config blob. A missing or null ``config``, ``Entrypoint`` or
    ``Cmd`` is empty; a bare string is one word (Docker's ``StrSlice`` reads it so); anything else is
    BAD_RESPONSE."""
    document = _json_object(image, body, "image config")
    config = document.get("config")
    if config is None:
        return (), ()
    if not isinstance(config, dict):
        raise _bad(image, 'the image config\'s "config" is not an object')
    return _words(image, config, "Entrypoint"), _words(image, config, "Cmd")


def _words(image: str, config: Mapping[str, Any], name: str) -> tuple[str, ...]:
    value = config.get(name)
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(word, str) for word in value):
        return tuple(value)
    raise _bad(image, f'the image config\'s "{name}" is not a list of strings')


def _json_object(image: str, body: bytes, what: str) -> Mapping[str, Any]:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):  # JSON and UTF-8 errors are ValueErrors
        raise _bad(image, f"the {what} is not JSON") from None
    if not isinstance(document, dict):
        raise _bad(image, f"the {what} is not a JSON object")
    return document


def _descriptor(image: str, raw: Any, where: str) -> Descriptor:
    if not isinstance(raw, dict):
        raise _bad(image, f"the manifest's {where} is not an object")
    media_type, digest, size = raw.get("mediaType", ""), raw.get("digest"), raw.get("size", 0)
    if not isinstance(media_type, str):
        raise _bad(image, f'the manifest\'s {where} "mediaType" is not a string')
    if not isinstance(digest, str) or not is_digest(digest):
        raise _bad(image, f"the manifest's {where} has no valid digest")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise _bad(image, f'the manifest\'s {where} "size" is not a size')
    platform = raw.get("platform")
    if platform is None:
        return Descriptor(media_type, digest, size)
    os, architecture, variant = (platform.get(k, "") if isinstance(platform, dict) else None
                                 for k in ("os", "architecture", "variant"))  # fmt: skip
    if not (isinstance(os, str) and isinstance(architecture, str) and isinstance(variant, str)):
        raise _bad(image, f'the manifest\'s {where} "platform" is not an object of strings')
    return Descriptor(media_type, digest, size, normalize_platform(os, architecture, variant))


# ---- authentication --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Challenge:
    """One challenge of a ``WWW-Authenticate`` header: ``scheme`` in lower case and its parameters."""

    scheme: str
    params: Mapping[str, str]


_CHALLENGE_PART = re.compile(
    r'\s*(?:(?P<key>[A-Za-z0-9_.-]+)\s*=\s*(?:"(?P<quoted>(?:[^"\\]|\\.)*)"|(?P<bare>[^\s,"]*))'
    r"|(?P<scheme>[A-Za-z0-9_.-]+))\s*,?"
)


def parse_challenges(header: str) -> tuple[Challenge, ...]:
    """The challenges of a ``WWW-Authenticate`` value: ``Bearer realm="…",service="…"``, ``Basic realm=x``."""
    found: list[tuple[str, dict[str, str]]] = []
    position = 0
    while position < len(header):
        match = _CHALLENGE_PART.match(header, position)
        if match is None or match.end() == position:
            break
        position = match.end()
        if match["scheme"]:
            found.append((match["scheme"].lower(), {}))
        elif found:
            value = match["bare"] if match["quoted"] is None else re.sub(r"\\(.)", r"\1", match["quoted"])
            found[-1][1][match["key"].lower()] = value or ""
    return tuple(Challenge(scheme, params) for scheme, params in found)


def token_url(challenge: Challenge, repository: str, where: Endpoint) -> str | None:
    """The token request of a Bearer challenge, for pulling ``repository``; None when its realm is no URL the
    credential may go to: https, or plain http only to a loopback host or the plain-http registry itself."""
    realm = challenge.params.get("realm", "")
    try:
        parsed = urllib.parse.urlsplit(realm)
    except ValueError:
        return None
    if not parsed.hostname or parsed.scheme not in ("http", "https") or "@" in parsed.netloc:
        return None
    if parsed.scheme == "http" and not (
        is_loopback(parsed.netloc) or (where.plain_http and parsed.netloc == where.host)
    ):
        return None
    query = urllib.parse.parse_qsl(parsed.query)
    if "service" in challenge.params:
        query.append(("service", challenge.params["service"]))
    query.append(("scope", f"repository:{repository}:pull"))
    return urllib.parse.urlunsplit(parsed._replace(query=urllib.parse.urlencode(query)))


def parse_token(body: bytes) -> tuple[str, float] | None:
    """``(token, seconds it is valid)`` from a token response (``token`` or ``access_token``; ``expires_in``
    defaults to 60 s, the spec's minimum); None when it holds no token."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(document, dict):
        return None
    token = document.get("token") or document.get("access_token")
    expires = document.get("expires_in")
    if not isinstance(token, str) or not token or any(c.isspace() or not c.isprintable() for c in token):
        return None
    seconds = float(expires) if isinstance(expires, (int, float)) and not isinstance(expires, bool) else 60.0
    return token, max(seconds, 1.0)


# ---- what a registry's answer means ----------------------------------------------------------------------


def error_codes(body: bytes) -> tuple[str, ...]:
    """The ``errors[].code`` values of a registry's error answer (``MANIFEST_UNKNOWN``, ``DENIED``); only
    codes, never messages or details, so nothing the registry echoes reaches a message."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return ()
    raw = document.get("errors") if isinstance(document, dict) else None
    codes: list[str] = []
    for entry in raw if isinstance(raw, list) else ():
        code = entry.get("code") if isinstance(entry, dict) else None
        if isinstance(code, str) and _ERROR_CODE.fullmatch(code) and code not in codes:
            codes.append(code)
    return tuple(codes[:4])


def refusal(
    image: str, status: int, what: str, *, tried: Sequence[Credential] = (), codes: Sequence[str] = (),
    mirror: str = "",
) -> errors.ImageConfigUnavailable:  # fmt: skip
    """The error for a registry's non-success answer ``status`` to a request for ``what`` (``the manifest
    "1.36"``), after trying the credentials ``tried`` (none: anonymously); ``mirror``: the host of the
    mirror that answered, if one did."""
    coded = f" ({', '.join(codes)})" if codes else ""
    if status in (401, 403):
        verb = "refused" if status == 401 else "denied access to"
        if tried:
            detail = f"the registry {verb} the credentials of " + " and ".join(c.describe() for c in tried)
        elif mirror:
            detail = (
                f"the mirror {mirror} {verb} an anonymous request and no image_pull_secrets entry "
                "has credentials for it (those for the image's own registry never go to a mirror)"
            )
        else:
            detail = (f"the registry {verb} an anonymous request and no image_pull_secrets entry "
                      "has credentials for it")  # fmt: skip
        return errors.ImageConfigUnavailable.because(image, Reason.UNAUTHORIZED, detail + coded)
    if status == 404:
        return errors.ImageConfigUnavailable.because(
            image, Reason.NOT_FOUND, f"the registry has no {what}{coded}"
        )
    if status == 429 or status >= 500:
        return errors.ImageConfigUnavailable.because(
            image, Reason.UNREACHABLE, f"the registry answered {status}{coded}"
        )
    return errors.ImageConfigUnavailable.because(
        image, Reason.BAD_RESPONSE, f"the registry answered {status} to a request for {what}{coded}"
    )


def _bad(image: str, detail: str) -> errors.ImageConfigUnavailable:
    return errors.ImageConfigUnavailable.because(image, Reason.BAD_RESPONSE, detail)


def _shown(text: str, limit: int = 100) -> str:
    return json.dumps(text[:limit]) + ("…" if len(text) > limit else "")
