"""Registry credentials: the Secrets named in ``image_pull_secrets`` → one dockerconfigjson document.

Decides which key of a Secret holds a Docker config, which shapes are accepted (``config.json`` with
``auths``; the legacy ``.dockercfg`` bare map), which entries the kubelet can use, how registry keys are
normalised, which Secret wins when two name the same registry, and whether the result has credentials
for an image (by the kubelet's keyring rules, ``pkg/credentialprovider/keyring.go`` in Kubernetes 1.33).

The kubelet builds the credential of a pull from ``username`` and ``password`` only, decoding ``auth``
into them when present; it drops ``identitytoken``, ``registrytoken`` and ``email`` from pull secrets,
and cannot run ``credsStore`` or ``credHelpers`` programs. So the output keeps ``auth``, ``username`` and
``password`` and nothing else, and an entry without them is an error (an empty ``{}`` is a warning:
it is what a credential store leaves behind).

No message, warning, ``origins`` entry or ``repr`` ever carries a credential: messages name the Secret,
the registry key and the reason. Reading the Secrets (and reporting missing ones) and writing the
resulting Secret are the shell's business.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from podline.core import errors, images

TYPE_DOCKERCONFIGJSON = "kubernetes.io/dockerconfigjson"
TYPE_DOCKERCFG = "kubernetes.io/dockercfg"
KEY_DOCKERCONFIGJSON = ".dockerconfigjson"
KEY_DOCKERCFG = ".dockercfg"
# Keys of any other Secret (Opaque, usually) that may hold a Docker config, in no particular order.
CANDIDATE_KEYS = (KEY_DOCKERCONFIGJSON, "config.json", "dockerconfig", KEY_DOCKERCFG)

# The one spelling of Docker Hub in the output. The kubelet passes it the normalised image name
# ("docker.io/library/golang"): a "docker.io" key matches that host directly, path-prefix keys such as
# "docker.io/team" included, while "index.docker.io" only works through a host-only fallback and
# "registry-1.docker.io" never matches. (That fallback also hands Docker Hub credentials to dot-less
# hosts such as "localhost/x"; with "docker.io" it never fires.) Checked against kubelet v1.33.13.
DOCKER_HUB_KEY = images.DOCKER_HUB
DOCKER_HUB_SPELLINGS = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
_KUBELET_DEFAULT_HOST = "index.docker.io"  # the host-only fallback key of the kubelet's Lookup

# Top-level fields of a config.json that are not registries, so a map holding them is no legacy map.
_CONFIG_JSON_FIELDS = frozenset(
    {
        "auths",
        "credsStore",
        "credHelpers",
        "HttpHeaders",
        "psFormat",
        "imagesFormat",
        "detachKeys",
        "proxies",
        "experimental",
        "stackOrchestrator",
        "kubernetes",
        "currentContext",
        "plugins",
        "aliases",
        "features",
    }
)
_TOKEN_FIELDS = ("identitytoken", "registrytoken")
# The kubelet reads a key as a URL: "?" and "#" would end its host, "@" would end user information.
_URL_SPECIALS = "?#@%\\"
_IPV6_HOST = re.compile(r"\[[0-9A-Fa-f:.]+\](:[0-9]*)?")
# Credential helpers messages may name; any other credsStore value is not repeated, in case it is no name.
KNOWN_HELPERS = frozenset(
    {
        "desktop",
        "desktop.exe",
        "osxkeychain",
        "wincred",
        "pass",
        "secretservice",
        "ecr-login",
        "gcloud",
        "gcr",
    }
)
_NOTHING_USABLE = (
    "none of the secrets holds a credential the kubelet can use; create one with "
    "`kubectl create secret docker-registry`, or from a config.json written by `docker login` "
    "with no credsStore"
)


@dataclass(frozen=True)
class SourceSecret:
    """A Secret as the shell read it, values already base64-decoded. ``repr`` hides the data."""

    name: str
    type: str
    data: Mapping[str, bytes] = field(repr=False)


@dataclass(frozen=True)
class Credentials:
    """The merged credentials: ``config`` is the dockerconfigjson document (its ``repr`` is hidden)."""

    config: Mapping[str, Any] = field(repr=False)
    origins: Mapping[str, str]
    warnings: tuple[str, ...] = ()

    def to_json_bytes(self) -> bytes:
        """The ``.dockerconfigjson`` value: sorted keys, compact, so equal inputs give equal bytes."""
        return json.dumps(self.config, sort_keys=True, separators=(",", ":")).encode()

    def keys_for(self, name: str) -> tuple[str, ...]:
        """The registry keys whose credentials the kubelet would try for a pull of ``name`` (a normalised
        repository such as ``docker.io/library/golang``), in its order: every matching key, reverse lexical
        (so ``r.io/team/app`` before ``r.io/team`` before ``r.io``); else the host-only Docker Hub fallback."""
        keys = sorted(self.config.get("auths", {}), reverse=True)
        matching = tuple(key for key in keys if _kubelet_key_matches(key, name))
        if matching:
            return matching
        if _KUBELET_DEFAULT_HOST in keys and _kubelet_default_registry_match(name):
            return (_KUBELET_DEFAULT_HOST,)
        return ()


def convert(secrets: Sequence[SourceSecret], *, path: str = "image_pull_secrets") -> Credentials:
    """Merge the Secrets, in ``image_pull_secrets`` order, into one set of credentials.

    A later Secret wins a registry both provide (with a warning when their credentials differ).
    Raises ``errors.BadRegistryAuth`` with one problem per finding, at ``{path}[i] (secret "name")``;
    also when Secrets were given but none of them holds a usable credential. No Secrets give empty
    credentials.
    """
    problems: list[errors.Problem] = []
    warnings: list[str] = []
    auths: dict[str, dict[str, str]] = {}
    origins: dict[str, str] = {}
    empty: list[errors.Problem] = []
    for index, secret in enumerate(secrets):
        where = f'{path}[{index}] (secret "{secret.name}")'
        findings = _Findings()
        entries = _read_secret(secret, findings)
        problems.extend(errors.Problem(where, message) for message in findings.problems)
        warnings.extend(f'secret "{secret.name}": {note}' for note in findings.notes)
        if findings.problems:
            continue
        if not entries:
            why = "; ".join(note.removesuffix("; ignored") for note in findings.notes) or "no registries"
            empty.append(errors.Problem(where, f"no usable registry credentials ({why})"))
            warnings.append(f'secret "{secret.name}": no usable registry credentials; ignored')
        for key, entry in entries.items():
            previous = origins.get(key)
            if previous is not None and previous != secret.name and auths[key] != entry:
                warnings.append(
                    f'registry "{key}" is in secrets "{previous}" and "{secret.name}"; using "{secret.name}"'
                )
            auths[key] = entry
            origins[key] = secret.name
    if not problems and secrets and not auths:
        problems.extend(empty)
        problems.append(errors.Problem(path, _NOTHING_USABLE))
    if problems:
        raise errors.BadRegistryAuth(problems)
    return Credentials(config={"auths": auths}, origins=origins, warnings=tuple(warnings))


def registry_key(raw: str) -> str:
    """Normalise a config.json registry key to the form podline writes.

    Strips spaces, an ``http(s)://`` scheme, leading ``/v1`` or ``/v2`` API path segments and trailing slashes; spells
    every Docker Hub host as ``docker.io``; keeps ports and repository paths (``registry.example.com/team``).
    Returns ``""`` for a key with no host; ``convert`` reports that.
    """
    key = raw.strip()
    for scheme in ("https://", "http://"):
        if key[: len(scheme)].lower() == scheme:
            key = key[len(scheme) :]
            break
    host, _, rest = key.partition("/")
    rest = rest.strip("/")
    while rest in ("v1", "v2") or rest.startswith(("v1/", "v2/")):  # every API segment, so it is idempotent
        rest = rest[3:].strip("/")
    if host.lower() in DOCKER_HUB_SPELLINGS:
        host = DOCKER_HUB_KEY
    return f"{host}/{rest}" if host and rest else host


@dataclass
class _Findings:
    """What reading one Secret found: errors and notes (warnings), both free of values."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _read_secret(secret: SourceSecret, findings: _Findings) -> dict[str, dict[str, str]]:
    key = _pick_key(secret, findings)
    if key is None:
        return {}
    document = _decode_document(key, secret.data[key], findings)
    if document is None:
        return {}
    raw_entries = _raw_entries(key, document, findings)
    entries: dict[str, dict[str, str]] = {}
    spelled: dict[str, str] = {}
    for raw_key, raw_entry in raw_entries.items():
        normal = registry_key(raw_key)
        problem = _key_problem(raw_key, normal)
        if problem:
            findings.problems.append(problem)
            continue
        entry = _entry(raw_key, raw_entry, findings)
        if entry is None:
            continue
        if normal in entries and entries[normal] != entry:
            findings.notes.append(
                f'registry keys {_shown_key(spelled[normal])} and {_shown_key(raw_key)} both mean "{normal}" '
                f"and differ; using {_shown_key(raw_key)}"
            )
        entries[normal] = entry
        spelled[normal] = raw_key
    return entries


def _pick_key(secret: SourceSecret, findings: _Findings) -> str | None:
    data = secret.data
    if not data:
        findings.problems.append("secret has no data")
        return None
    typed = {TYPE_DOCKERCONFIGJSON: KEY_DOCKERCONFIGJSON, TYPE_DOCKERCFG: KEY_DOCKERCFG}.get(secret.type)
    if typed is not None:
        if typed not in data:
            findings.problems.append(f'secret of type "{secret.type}" has no key "{typed}"')
            return None
        return typed
    candidates = [k for k in CANDIDATE_KEYS if k in data]
    if len(candidates) == 1:
        return candidates[0]
    if candidates:
        findings.problems.append(
            f"several keys could hold the Docker config ({_names(candidates)}); keep only one"
        )
        return None
    if len(data) == 1:
        return next(iter(data))
    findings.problems.append(
        f"no key named {_names(CANDIDATE_KEYS, ' or ')}, and several other keys ({_names(sorted(data))}); "
        "cannot tell which holds the Docker config"
    )
    return None


def _decode_document(key: str, value: bytes, findings: _Findings) -> Mapping[str, Any] | None:
    where = f"key {_quote(key)}"
    if not value.strip():
        findings.problems.append(f"{where} is empty")
        return None
    try:
        text = value.decode("utf-8-sig")
    except UnicodeDecodeError:
        findings.problems.append(f"{where} is not UTF-8 text")
        return None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        hint = "; it looks base64-encoded twice" if _is_json_in_base64(text) else ""
        findings.problems.append(
            f"{where} is not JSON ({error.msg} at line {error.lineno} column {error.colno}){hint}"
        )
        return None
    except RecursionError:
        findings.problems.append(f"{where} holds JSON nested too deeply to be a Docker config")
        return None
    if not isinstance(document, dict):
        findings.problems.append(f"{where} holds JSON {_json_kind(document)}, not an object")
        return None
    return document


def _raw_entries(key: str, document: Mapping[str, Any], findings: _Findings) -> Mapping[str, Any]:
    store = document.get("credsStore")
    helpers = document.get("credHelpers")
    if store:
        shown = f" {_quote(store)}" if isinstance(store, str) and store in KNOWN_HELPERS else ""
        findings.notes.append(f"credsStore{shown} cannot be used on Kubernetes; ignored")
    if isinstance(helpers, dict) and helpers:
        findings.notes.append(
            f"credHelpers for {_names(sorted(helpers))} cannot be used on Kubernetes; ignored"
        )
    if "auths" in document:
        auths = document["auths"]
        if not isinstance(auths, dict):
            findings.problems.append(
                f'key {_quote(key)}: "auths" holds JSON {_json_kind(auths)}, not an object'
            )
            return {}
        return auths
    if store or helpers:
        return {}
    legacy = bool(document) and not (_CONFIG_JSON_FIELDS & document.keys())
    if legacy and all(isinstance(v, dict) for v in document.values()):
        return document  # .dockercfg: registry → entry, no "auths"
    findings.problems.append(
        f'key {_quote(key)} has no "auths" object and is not a legacy .dockercfg map of registry → credentials'
    )
    return {}


def _entry(raw_key: str, raw: Any, findings: _Findings) -> dict[str, str] | None:
    """The kubelet-usable form of one entry, or None (with a problem or a note saying why)."""
    where = f"registry {_shown_key(raw_key)}"
    if not isinstance(raw, dict):
        findings.problems.append(f"{where}: entry holds JSON {_json_kind(raw)}, not an object")
        return None
    if not raw:
        findings.notes.append(
            f"{where} has an empty entry (its credential lives in a credential store); ignored"
        )
        return None
    for name in ("auth", "username", "password"):
        if raw.get(name) is not None and not isinstance(raw[name], str):
            findings.problems.append(f'{where}: "{name}" holds JSON {_json_kind(raw[name])}, not a string')
            return None
    auth, username, password = (raw.get(name) or "" for name in ("auth", "username", "password"))
    if auth.strip():
        decoded = _decode_auth(auth)
        if isinstance(decoded, str):
            findings.problems.append(f"{where}: {decoded}")
            return None
        if (username and username != decoded[0]) or (password and password != decoded[1]):
            findings.notes.append(f'{where}: "username"/"password" differ from "auth"; using "auth"')
        username, password = decoded
    elif username or password:
        if not (username and password):
            given, missing = ("username", "password") if username else ("password", "username")
            findings.problems.append(f'{where}: has "{given}" but no "{missing}"')
            return None
        if ":" in username:
            findings.problems.append(f'{where}: "username" contains ":", which "auth" cannot represent')
            return None
    else:
        tokens = [name for name in _TOKEN_FIELDS if raw.get(name)]
        reason = (
            f"has only {_names(tokens, ' and ')}, which the kubelet ignores in pull secrets"
            if tokens
            else "has no credential"
        )
        findings.problems.append(f'{where}: {reason}; give "auth", or "username" and "password"')
        return None
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"auth": token, "username": username, "password": password}


def _decode_auth(auth: str) -> tuple[str, str] | str:
    """``(user, password)`` from an ``auth`` field, padded or not (as the kubelet accepts); or a reason."""
    text = auth.strip()
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return '"auth" is not valid base64'
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError:
        return '"auth" does not decode to text'
    user, colon, password = decoded.partition(":")
    if not colon:
        return '"auth" does not decode to "user:password" (no ":")'
    if not user:
        return '"auth" decodes to an empty user name'
    return user, password


def _key_problem(raw_key: str, key: str) -> str | None:
    """Why the kubelet could not use a (normalised) key; it parses keys as URLs."""
    host = key.partition("/")[0]
    if not host:
        return f"registry key {_shown_key(raw_key)} has no host"
    if any(c.isspace() or not c.isprintable() or c in _URL_SPECIALS for c in key):
        return (
            f"registry key {_shown_key(raw_key)} is not a registry host (no spaces or any of {_URL_SPECIALS})"
        )
    if ("[" in host or "]" in host) and not _IPV6_HOST.fullmatch(host):
        return f"registry key {_shown_key(raw_key)}: brackets are only allowed around an IPv6 address"
    return None


def _shown_key(raw_key: str) -> str:
    """A key quoted for a message, without any ``user:password@`` in front of the host."""
    return _quote(raw_key if "@" not in raw_key else "…@" + raw_key.rpartition("@")[2])


def _is_json_in_base64(text: str) -> bool:
    try:
        inner = base64.b64decode("".join(text.split()), validate=True)
        return isinstance(json.loads(inner), dict)
    except (binascii.Error, ValueError, RecursionError):  # ValueError covers JSON and UTF-8 errors
        return False


def _kubelet_key_matches(key: str, target: str) -> bool:
    """The kubelet's ``URLsMatchStr``: same port, same number of host labels each matching as a glob,
    and the key's path a string prefix of the image's path (so "r.io/team" also matches "r.io/teams/x")."""
    key_host, _, key_path = key.partition("/")
    target_host, _, target_path = target.partition("/")
    key_labels, key_port = _split_host_port(key_host)
    target_labels, target_port = _split_host_port(target_host)
    if key_port != target_port or len(key_labels) != len(target_labels):
        return False
    if key_path and not ("/" + target_path).startswith("/" + key_path):
        return False
    return all(fnmatch.fnmatchcase(t, k) for k, t in zip(key_labels, target_labels))


def _split_host_port(host: str) -> tuple[list[str], str]:
    """Go's ``net.SplitHostPort``, falling back to (whole host, no port) where Go reports an error."""
    name, port = host, ""
    if host.startswith("["):
        end = host.find("]")
        if end > 0 and host[end + 1 : end + 2] == ":" and ":" not in host[end + 2 :]:
            name, port = host[1:end], host[end + 2 :]
    elif host.count(":") == 1:
        name, _, port = host.partition(":")
    return name.split("."), port


def _kubelet_default_registry_match(target: str) -> bool:
    """The kubelet's ``isDefaultRegistryMatch``: when a host-only Docker Hub key is a fallback."""
    first, slash, _ = target.partition("/")
    if not first:
        return False
    if not slash or first in ("docker.io", "index.docker.io"):
        return True
    return "." not in first and ":" not in first


def _json_kind(value: Any) -> str:
    kinds = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "an array"}
    return "null" if value is None else kinds.get(type(value), "an object")


def _quote(text: str, limit: int = 120) -> str:
    return json.dumps(text[:limit], ensure_ascii=False) + ("…" if len(text) > limit else "")


def _names(items: Sequence[str], last: str = ", ") -> str:
    """``"a", "b" or "c"``: quoted, at most eight, the last joined by ``last``."""
    quoted = [_quote(item, 60) for item in items[:8]] + (["…"] if len(items) > 8 else [])
    if len(quoted) < 2:
        return "".join(quoted)
    return ", ".join(quoted[:-1]) + last + quoted[-1]
