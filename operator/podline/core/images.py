"""Image references: what a step's ``image:`` names, in one normalised form.

Decides whether a reference is valid, how it normalises (Docker Hub names gain ``docker.io/`` and, for
official images, ``library/``; ``index.docker.io`` becomes ``docker.io``), how it is shown back to users,
and when two references name the same image. The grammar is distribution/reference's, as implemented by
the pinned ``docker-image-py``; this module only adds the checks that library misses (see ``parse``) and
turns its exceptions into ``errors.InvalidImageReference`` with a human reason.

Leaves to others: the pull policy (``pulling``), registry credentials (``auths``), and whether the image
exists at all (only the kubelet can find out).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import docker_image  # type: ignore[import-untyped]  # no type hints; used through the two aliases below

from podline.core import errors

_digest = docker_image.digest
_reference = docker_image.reference

DOCKER_HUB = "docker.io"
LATEST = "latest"
LOCALHOST = "localhost"
OFFICIAL_NAMESPACE = "library"
NAME_MAX = 255  # distribution/reference's limit on the path, without the registry host

_regexps = _reference.ImageRegexps


@dataclass(frozen=True)
class ImageRef:
    """A parsed, normalised image reference.

    Two refs compare equal when they normalise to the same name, tag and digest; ``original`` (kept
    for messages) does not take part, so ``parse("golang") == parse("docker.io/library/golang")``.
    """

    original: str = field(compare=False)
    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """The repository without tag or digest: ``docker.io/library/golang``."""
        return f"{self.domain}/{self.path}"

    @property
    def is_latest(self) -> bool:
        """Whether the reference floats: untagged and undigested, or tagged ``latest`` without a digest."""
        return self.digest is None and self.tag in (None, LATEST)

    @property
    def normalized(self) -> str:
        """Fully qualified, with the implicit ``:latest`` spelled out unless a digest pins the image."""
        tag = self.tag if self.tag is not None or self.digest is not None else LATEST
        return self.name + (f":{tag}" if tag is not None else "") + (f"@{self.digest}" if self.digest else "")

    @property
    def familiar(self) -> str:
        """The short form ``docker`` prints (``golang:1.7``); adds no tag that was not written.

        Unlike Go's ``FamiliarString``, keeps ``docker.io/`` when the short form would read as another
        registry (``docker.io/my.org/app``, not ``my.org/app``), so ``parse(ref.familiar) == ref``.
        """
        short = self.name
        if self.domain == DOCKER_HUB:
            namespace, _, rest = self.path.partition("/")
            short = rest if namespace == OFFICIAL_NAMESPACE and rest and "/" not in rest else self.path
            if _is_registry_host(short.partition("/")[0]) and "/" in short:
                short = self.name
        return (
            short
            + (f":{self.tag}" if self.tag is not None else "")
            + (f"@{self.digest}" if self.digest else "")
        )

    def __str__(self) -> str:
        return self.normalized


def parse(reference: str, *, path: str = "image") -> ImageRef:
    """Parse and normalise an image reference as ``docker pull`` would.

    Stricter than docker-image-py in three places:

    * whitespace, control and non-ASCII characters anywhere: Go rejects them too, but the library's
      ``$`` lets ``"golang\\n"`` pass;
    * a first component that is not a registry host (no ``.``/``:``, not ``localhost``) yet has
      upper-case letters, such as ``Library/golang``: Go reads ``Library`` as a host name, users meant a
      repository, so this is reported as "repository name must be lowercase";
    * a first component with a ``.`` that is no valid host, such as ``a__b.io/x``: Go and the library
      make the whole name a path with no registry at all; this is reported as an invalid registry host.

    Raises ``errors.InvalidImageReference`` at ``path`` with a reason naming the reference.
    """
    if not isinstance(reference, str):
        raise errors.InvalidImageReference.at(
            path, f"image reference must be a string, not {type(reference).__name__}"
        )
    reason = _precheck(reference)
    if reason is None:
        try:
            raw = _reference.Reference.parse_normalized_named(reference)
        except (_reference.InvalidReference, _digest.InvalidDigest):
            reason = _diagnose(reference)
        else:
            domain: str = raw.repository["domain"]
            if _is_registry_host(domain):
                return ImageRef(
                    original=reference,
                    domain=domain,
                    path=raw.repository["path"],
                    tag=raw["tag"],
                    digest=raw["digest"],
                )
            reason = _unusable_domain(reference, domain)
    raise errors.InvalidImageReference.at(path, f"invalid reference {_quote(reference)}: {reason}")


def _unusable_domain(reference: str, domain: str) -> str:
    """Why a name the library accepted cannot be pulled: its first component is no registry host."""
    if not domain:  # e.g. "a__b.example/x": looks like a host, is not one, so the library made it a path
        return f"invalid registry host {_quote(reference.partition('/')[0])}"
    return "repository name must be lowercase"  # e.g. "Library/golang": Go reads "Library" as a host


def _is_registry_host(domain: str) -> bool:
    return domain == LOCALHOST or "." in domain or ":" in domain


def _precheck(reference: str) -> str | None:
    """Reasons the library would miss or word badly; None when the library should decide."""
    if not reference:
        return "reference is empty"
    if not reference.isascii():
        return "contains a non-ASCII character"
    if any(c.isspace() or not c.isprintable() for c in reference):
        return "contains whitespace or a control character"
    return None


def _diagnose(reference: str) -> str:
    """Explain, part by part, why the library rejected a reference.

    Only picks the words: the verdict is the library's. Falls back to its generic message.
    """
    name, at, digest = reference.partition("@")
    if at:
        reason = _digest_problem(digest)
        if reason:
            return reason
    tag: str | None = None
    colon, slash = name.rfind(":"), name.rfind("/")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
    if tag is not None and not _regexps.ANCHORED_TAG_REGEXP.match(tag):
        return (
            f"invalid tag {_quote(tag)}: a tag is 1 to 128 letters, digits, '_', '.' or '-', "
            "and does not start with '.' or '-'"
        )
    if not name:
        return "repository name is empty"
    if _regexps.ANCHORED_IDENTIFIER_REGEXP.match(name):
        return "a 64-character hexadecimal string is an image ID, not a repository name"
    first, sep, rest = name.partition("/")
    domain, remainder = (first, rest) if sep and _is_registry_host(first) else ("", name)
    if domain and not _regexps.ANCHORED_DOMAIN_REGEXP.match(domain):
        return f"invalid registry host {_quote(domain)}"
    if remainder != remainder.lower():
        return "repository name must be lowercase"
    on_hub = domain in ("", DOCKER_HUB, _reference.LEGACY_DEFAULT_DOMAIN)
    full_path = f"{OFFICIAL_NAMESPACE}/{remainder}" if on_hub and "/" not in remainder else remainder
    if len(full_path) > NAME_MAX:
        return f"repository name must not be more than {NAME_MAX} characters"
    if not _anchored_remote_name(remainder):
        return (
            "repository name must be '/'-separated components of lowercase letters and digits, "
            "joined inside a component by '.', '_', '__' or '-'"
        )
    return "invalid reference format"


def _anchored_remote_name(remainder: str) -> bool:
    matched = _regexps.REMOTE_NAME_REGEXP.fullmatch(remainder)
    return matched is not None


def _digest_problem(digest: str) -> str | None:
    if not digest:
        return "digest is empty"
    if "@" in digest:
        return "only one digest is allowed"
    algorithm = digest.partition(":")[0]
    try:
        _digest.validate_digest(digest)
    except _digest.DigestUnsupported:
        return f"unsupported digest algorithm {_quote(algorithm)}; expected sha256, sha384 or sha512"
    except _digest.DigestInvalidLength:
        return f"{algorithm} digest has the wrong length"
    except _digest.InvalidDigest:
        return "digest must be <algorithm>:<lowercase hex>, e.g. sha256:<64 hex digits>"
    if not _regexps.ANCHORED_DIGEST_REGEXP.match(digest):
        return "digest must be <algorithm>:<lowercase hex>, e.g. sha256:<64 hex digits>"
    return None


def _quote(text: str, limit: int = 100) -> str:
    """Quote user input for a message: escaped (control characters stay visible) and bounded."""
    if len(text) > limit:
        return json.dumps(text[:limit]) + "…"
    return json.dumps(text)
