"""Drone's ``kind: secret`` documents, turned into references to Kubernetes Secrets by ``podline convert``.

A ``.drone.yml`` may name a secret by a document of its own::

    kind: secret
    name: docker_password
    get: {path: docker, name: password}

which drone-kubernetes-secrets (``plugin/plugin.go``) answers with key ``name`` of the Secret ``path`` in
its namespace. ``convert`` rewrites every ``from_secret: docker_password`` of the file's pipelines
(pipeline, step and service ``environment``, step ``settings``) to ``from_secret: docker/password``, which
the Pipeline reads with a ``secretKeyRef`` (``compiling``): the value never passes through the operator.
``image_pull_secrets: [X]`` becomes the Secret ``path`` when ``name`` is a key ``auths`` reads a Docker
config from. What has no Kubernetes form is refused, naming the document and what to do instead: ``data:``
(Drone's encrypted secrets), Vault-style paths (``secret/data/docker``, ``path#key``), Secret names or keys
Kubernetes does not allow. Reading the files is the CLI's business; this module only transforms documents.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from podline.core import auths, errors, kubenames

_SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")  # the apiserver's rule for a Secret's data keys
KIND = "secret"


@dataclass(frozen=True)
class SecretDoc:
    """One ``kind: secret`` document: Drone's ``name`` reads key ``key`` of the Secret ``secret``."""

    name: str
    secret: str
    key: str

    @property
    def reference(self) -> str:
        return f"{self.secret}/{self.key}"


def parse(doc: Mapping[str, Any], where: str) -> SecretDoc:
    """The document's reference, or ``errors.InvalidPipeline`` naming the document and what to do instead."""
    name = doc.get("name")
    label = f'{where} (kind: secret "{name}")' if isinstance(name, str) and name else where
    if not isinstance(name, str) or not name:
        raise errors.InvalidPipeline.at(label, "name is required: it is what from_secret refers to")
    if doc.get("data"):
        raise _refuse(
            label,
            "data: holds a value encrypted with the Drone server's key, which only that server can read; "
            "put the value in a Kubernetes Secret and write get: {path: <secret>, name: <key>} instead",
        )
    get = doc.get("get")
    if not isinstance(get, Mapping) or not get.get("path") or not get.get("name"):
        raise _refuse(label, "get: {path: <Secret name>, name: <key>} is required")
    path, key = str(get["path"]), str(get["name"])
    if "/" in path or "#" in path or "#" in key:
        raise _refuse(
            label,
            f'get.path "{path}" is a Vault-style path; podline reads Kubernetes Secrets of the Pipeline\'s '
            "namespace: copy the value into a Secret (e.g. with the External Secrets Operator) and name it "
            "in get.path",
        )
    if not kubenames.is_dns1123_subdomain(path):
        raise _refuse(
            label,
            f'get.path "{path}" is no Kubernetes Secret name (lower-case letters, digits, "-" and "."); '
            f'rename the Secret, e.g. to "{_suggest(path)}", and get.path with it',
        )
    if not _SECRET_KEY.match(key):
        raise _refuse(label, f'get.name "{key}" is no Secret key (letters, digits, "-", "_" and "." only)')
    return SecretDoc(name=name, secret=path, key=key)


def apply(pipeline: Mapping[str, Any], secrets: Mapping[str, SecretDoc], where: str) -> dict[str, Any]:
    """``pipeline`` (a ``kind: pipeline`` document) with its ``from_secret`` names and
    ``image_pull_secrets`` read through ``secrets``; names no document defines are left as they are."""
    out = dict(pipeline)
    if isinstance(out.get("environment"), Mapping):
        out["environment"] = _values(out["environment"], secrets)
    for field in ("steps", "services"):
        if isinstance(out.get(field), list):
            out[field] = [_step(s, secrets) for s in out[field]]
    pulls = out.get("image_pull_secrets")
    if isinstance(pulls, list):
        out["image_pull_secrets"] = [_pull(p, i, secrets, where) for i, p in enumerate(pulls)]
    return out


def collect(docs: Sequence[tuple[str, Mapping[str, Any]]]) -> dict[str, SecretDoc]:
    """The ``kind: secret`` documents of ``docs`` ((where, document) pairs) by name; raises
    ``errors.InvalidPipeline`` listing every document that cannot be used."""
    found: dict[str, SecretDoc] = {}
    problems: list[errors.Problem] = []
    for where, doc in docs:
        try:
            secret = parse(doc, where)
        except errors.PodlineError as exc:
            problems.extend(exc.problems)
            continue
        if secret.name in found and found[secret.name] != secret:
            label = f'{where} (kind: secret "{secret.name}")'
            problems.append(errors.Problem(label, "a second document of this name, reading another key"))
        found[secret.name] = secret
    if problems:
        raise errors.InvalidPipeline(problems)
    return found


def _refuse(where: str, message: str) -> errors.PodlineError:
    return errors.InvalidPipeline.at(where, message)


def _suggest(path: str) -> str:
    mapped = re.sub(r"[^a-z0-9.-]+", "-", path.lower()).strip("-.")
    return mapped[: kubenames.DNS1123_SUBDOMAIN_MAX] or "my-secret"


def _step(step: Any, secrets: Mapping[str, SecretDoc]) -> Any:
    if not isinstance(step, Mapping):
        return step
    out = dict(step)
    for field in ("environment", "settings"):
        if isinstance(out.get(field), Mapping):
            out[field] = _values(out[field], secrets)
    return out


def _values(values: Mapping[str, Any], secrets: Mapping[str, SecretDoc]) -> dict[str, Any]:
    out = {}
    for name, value in values.items():
        ref = (
            value.get("from_secret") if isinstance(value, Mapping) and set(value) == {"from_secret"} else None
        )
        out[name] = (
            {"from_secret": secrets[ref].reference} if isinstance(ref, str) and ref in secrets else value
        )
    return out


def _pull(name: Any, index: int, secrets: Mapping[str, SecretDoc], where: str) -> Any:
    secret = secrets.get(name) if isinstance(name, str) else None
    if secret is None:
        return name
    if secret.key not in auths.CANDIDATE_KEYS:
        keys = ", ".join(auths.CANDIDATE_KEYS)
        raise _refuse(
            f"{where}.image_pull_secrets[{index}]",
            f'kind: secret "{secret.name}" reads key "{secret.key}" of Secret "{secret.secret}", but an image '
            f"pull Secret's Docker config is read from one of the keys {keys}; store it under one of them "
            "(`kubectl create secret docker-registry` writes .dockerconfigjson) and name that key in get.name",
        )
    return secret.secret
