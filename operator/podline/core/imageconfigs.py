"""Image configs: what an image runs by itself (its ENTRYPOINT and CMD), as its registry describes it.

A plugin step (no ``commands``, no ``entrypoint``) or a ``command:``-only step runs the image's own
ENTRYPOINT/CMD, and in-pod hand-off wraps that command, so the operator must read it from the registry, as
Tekton and Argo do. This module decides, with no I/O, how manifests, indexes and config blobs are read and
verified (digests), which manifest of an index fits a platform (containerd's normalisation: ``aarch64`` is
``arm64/v8``, …), and what a config's ``Entrypoint``/``Cmd`` mean when missing, null or a bare string;
every problem is an ``errors.ImageConfigUnavailable`` saying what is wrong.

Where the registry is and who may be sent what are ``registries``'s; the requests, the cache and the
timeouts are ``podline.shell.imagereading``'s.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from podline.core import errors

Reason = errors.RegistryReason

DEFAULT_PLATFORM = "linux/amd64"
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


@dataclass(frozen=True)
class ImageConfig:
    """What an image runs by itself. ``digest`` is the image manifest's (for the platform it was read for)."""

    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...]
    digest: str  # what a step runs from these: stepping.command_of


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


def _bad(image: str, detail: str) -> errors.ImageConfigUnavailable:
    return errors.ImageConfigUnavailable.because(image, Reason.BAD_RESPONSE, detail)


def _shown(text: str, limit: int = 100) -> str:
    return json.dumps(text[:limit]) + ("…" if len(text) > limit else "")
