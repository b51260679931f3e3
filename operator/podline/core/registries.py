"""Registries: where an image's registry API is, what may be sent there, and what its answers mean.

Decides, with no I/O: the API's base URL (Docker Hub's API host, a mirror from ``PODLINE_REGISTRY_MIRRORS``,
TLS or plain HTTP — only for a mirror given as ``http://`` and for loopback registries, as containerd does);
which credentials of a run's ``auths.Credentials`` go there, by the kubelet's keyring rules and order (a
mirror gets only those for its own host); how a ``WWW-Authenticate`` challenge is answered (Basic, or a
Bearer token, whose service a credential reaches only over https or on this machine); and the errors of a
refusal and of a TLS certificate that fails verification, in words, never with a credential. What is read (manifests, configs) is ``imageconfigs``'s; the
requests are ``podline.shell.imagereading``'s.
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

DOCKER_HUB_API = "registry-1.docker.io"  # where Docker Hub's registry API answers (docker.io does not)
_ERROR_CODE = re.compile(r"[A-Z][A-Z_]{0,39}")


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


# OpenSSL's verify codes that mean "signed by no CA this client trusts": a CA added to the trust cures them.
# (2 unable to get issuer certificate, 18 self-signed certificate, 19 self-signed certificate in chain,
# 20 unable to get local issuer certificate, 21 unable to verify the first certificate.)
UNKNOWN_ISSUER_CODES = frozenset({2, 18, 19, 20, 21})
CA_SETTING = "PODLINE_REGISTRY_CA_FILE"


def untrusted(
    image: str, host: str, code: int | None, why: str, *, ca_file: str = ""
) -> errors.ImageConfigUnavailable:
    """The error for a registry (or mirror, or token service) at ``host`` whose TLS certificate failed
    verification with OpenSSL's verify ``code`` and message ``why``; ``ca_file``: the operator's
    ``PODLINE_REGISTRY_CA_FILE``, if set. Not transient: the operator's trust is fixed until it restarts."""
    why = why.strip().rstrip(".") or "verification failed"
    if code is None or code in UNKNOWN_ISSUER_CODES:
        if ca_file:
            advice = (f"add the CA that signed it to the bundle in {CA_SETTING} ({json.dumps(ca_file)}), "
                      "which the operator trusts besides the system's CAs, and restart the operator")  # fmt: skip
        else:
            advice = (f"if the registry uses a private CA, give the operator that CA's certificate "
                      f"in {CA_SETTING} (a PEM file; Helm: operator.registryCA)")  # fmt: skip
        detail = f"{host}: its certificate is not signed by a CA the operator trusts ({why}); {advice}"
    else:
        detail = (f"{host}: its certificate failed verification ({why}); the registry's certificate must "
                  f"be fixed ({CA_SETTING} adds trusted CAs, it cannot cure this)")  # fmt: skip
    return errors.ImageConfigUnavailable.because(image, Reason.UNTRUSTED, detail)


def _shown(text: str, limit: int = 100) -> str:
    return json.dumps(text[:limit]) + ("…" if len(text) > limit else "")
