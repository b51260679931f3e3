"""Drone 0.8 files, converted as the Drone 2 server converts them before it runs them.

The server (drone/drone ``trigger/trigger.go``) passes every configuration through drone/drone-yaml's
``converter.ConvertString``, which converts a file matching ``^pipeline:\\s*$`` (``converter/legacy/match.go``)
with ``converter/legacy/internal/config.go``. This module does what that code does, on the YAML read by
``dronefiles`` (scalars as ``dronefiles.Plain``; merge keys expanded by the reader):

* one pipeline named ``default`` (``matrix-N`` per matrix axis), platform linux/amd64 (the pretty printer's
  default), workspace from ``workspace.base``/``path`` (``.`` is no path) or, given the repository's link, base
  ``/drone`` and path ``src/<host>/<path>``;
* ``clone:`` containers become the first steps and disable the implicit clone; ``services:`` stay services;
  ``pipeline:`` containers become steps (a repeated name gets ``_<index>``);
* per container: name (its key), image, detach, command, commands, dns, dns_search, entrypoint, environment
  (a map, or a list of ``K=V``), extra_hosts, pull (``true``: always, else if-not-exists), privileged,
  volumes (``src:dst`` → a host volume named by the hex of ``src``), ``secrets`` (``[name]`` or
  ``[{source, target}]``) → environment ``TARGET: {from_secret: source}``, ``when`` (ref, repo, instance,
  environment → target, event with deploy/deployment → promote, branch, status), and every other key a
  plugin setting; ``allow_failure``, ``devices``, ``tmpfs``, ``shell`` are read and dropped, as there;
* ``branches:`` becomes ``trigger.branch``; an include-only list becomes ``trigger.ref`` (pull-request refs,
  ``refs/heads/<branch>``, and ``refs/tags/**`` when a step runs on tag events) so tags still build;
* top-level ``secrets:`` become ``kind: secret`` documents (which ``podline convert`` does not turn into
  Pipelines);
* ``matrix:`` (a map of lists, or ``include:`` a list of maps) gives one pipeline per axis (at most 27 axes of
  12 variables, Drone's limits), each keeping the steps without ``when.matrix`` and those whose
  ``when.matrix`` shares a variable's value with the axis, with ``${VAR}`` replaced by the axis' value.

Server options that change the conversion (``DRONE_CONVERT_YAML_LEGACY_TO_KUBERNETES``,
``DRONE_CONVERT_YAML_LEGACY_CLONE``, ``DRONE_CONVERT_YAML_DEFAULT_PULL_SECRETS``) are off by default and not
modelled. Go iterates the matrix's variables in random order; here they keep the file's order.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Mapping
from typing import Any

from podline.core import dronefiles

_MATCH = re.compile(r"^pipeline:(\s+)?$", re.MULTILINE)
_CONTAINER_KEYS = {
    "command", "commands", "detach", "devices", "allow_failure", "tmpfs", "dns", "dns_search", "entrypoint",
    "environment", "extra_hosts", "image", "name", "privileged", "pull", "shell", "volumes", "secrets", "when",
}  # fmt: skip
_PULL_REQUEST_REFS = ["refs/pull/**", "refs/pull-requests/**", "refs/merge-requests/**"]
_LIMIT_TAGS, _LIMIT_AXIS = 10, 25
_MATRIX = "\0matrix"  # a step's when.matrix while converting; Drone's printer leaves it out


def matches(text: str) -> bool:
    """Whether Drone would read ``text`` as a 0.8 file (``converter/legacy/match.go``)."""
    return bool(_MATCH.search(text))


def convert(doc: Any, *, link: str = "") -> list[dict[str, Any]]:
    """The Drone 1 documents of a 0.8 document; ``link`` is the repository's web address (Drone's
    ``repo.Link``), which names the workspace. Raises ``ValueError`` for a file Drone could not convert."""
    if not isinstance(doc, Mapping):
        raise ValueError("a Drone 0.8 file must be a mapping")  # noqa: TRY004 (the caller reports ValueError)
    pipeline = _pipeline(doc, link)
    axes = _axes(doc.get("matrix"))
    docs = [_for_axis(pipeline, axis, n) for n, axis in enumerate(axes, 1)] if axes else [pipeline]
    for converted in docs:
        for item in [*converted.get("steps", []), *converted.get("services", [])]:
            when = item.get("when", {})
            when.pop(_MATRIX, None)
            if "when" in item and not when:
                del item["when"]
    return docs + _secrets(doc.get("secrets"))


def _pipeline(doc: Mapping[str, Any], link: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "kind": "pipeline",
        "name": "default",
        "platform": {"os": "linux", "arch": "amd64"},
    }
    workspace = _workspace(_map(doc.get("workspace")), link)
    if workspace:
        out["workspace"] = workspace
    clones = _containers(doc.get("clone"))
    steps = [_container(c) for c in clones] + [_container(c) for c in _containers(doc.get("pipeline"))]
    if clones:
        out["clone"] = {"disable": True}
    seen: set[str] = set()
    for index, step in enumerate(steps):
        if step["name"] in seen:
            step["name"] = f"{step['name']}_{index}"
        seen.add(step["name"])
    if steps:
        out["steps"] = steps
    services = [_container(c) for c in _containers(doc.get("services"))]
    if services:
        out["services"] = services
    volumes = _volumes([*_containers(doc.get("pipeline")), *_containers(doc.get("services"))])
    if volumes:
        out["volumes"] = volumes
    trigger = _trigger(_constraint(doc.get("branches")), steps)
    if trigger:
        out["trigger"] = trigger
    return out


def _workspace(workspace: Mapping[str, Any], link: str) -> dict[str, str]:
    base, path = _text(workspace.get("base")), _text(workspace.get("path"))
    path = "" if path == "." else path
    if link:
        base = base or "/drone"
        path = path or _workspace_path(link)
    return {k: v for k, v in (("base", base), ("path", path)) if v}


def _workspace_path(link: str) -> str:
    try:
        parsed = urllib.parse.urlsplit(link)
        host = parsed.hostname
    except ValueError:
        return "src"
    if not host:
        return "src"
    return f"src/{host}/{parsed.path.strip('/')}"


def _containers(section: Any) -> list[tuple[str, Mapping[str, Any]]]:
    """A 0.8 section (``pipeline:``, ``services:``, ``clone:``): containers keyed by name, in order."""
    if not isinstance(section, Mapping):
        return []
    return [(_text(k), v if isinstance(v, Mapping) else {}) for k, v in section.items()]


def _container(item: tuple[str, Mapping[str, Any]]) -> dict[str, Any]:
    name, raw = item
    out: dict[str, Any] = {"name": name, "image": _text(raw.get("image"))}
    out["pull"] = "always" if _bool(raw.get("pull")) else "if-not-exists"
    for key, target in (("detach", "detach"), ("privileged", "privileged")):
        if _bool(raw.get(key)):
            out[target] = True
    for key in ("command", "commands", "dns", "dns_search", "entrypoint"):
        if raw.get(key) is not None:
            out[key] = _strings(raw[key])
    if raw.get("extra_hosts"):
        out["extra_hosts"] = [_text(h) for h in raw["extra_hosts"]]
    settings = {_text(k): _resolved(v) for k, v in raw.items() if _text(k) not in _CONTAINER_KEYS}
    if settings:
        out["settings"] = settings
    environment = _environment(raw)
    if environment:
        out["environment"] = environment
    mounts = [_mount(v) for v in raw.get("volumes") or []]
    if mounts:
        out["volumes"] = [{"name": m[0].encode().hex(), "path": m[1]} for m in mounts]
    when = _when(_map(raw.get("when")))
    if when:
        out["when"] = when
    return out


def _environment(raw: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    env = raw.get("environment")
    if isinstance(env, Mapping):
        out.update({_text(k): _text(v) for k, v in env.items()})
    elif isinstance(env, list):
        for entry in env:
            key, sep, value = _text(entry).partition("=")
            if sep:
                out[key] = value
    secrets = raw.get("secrets")
    for secret in secrets if isinstance(secrets, list) else []:
        if isinstance(secret, Mapping):
            source, target = _text(secret.get("source")), _text(secret.get("target"))
        else:
            source = target = _text(secret)
        out[target.upper()] = {"from_secret": source}
    return out


def _mount(volume: Any) -> tuple[str, str]:
    parts = _text(volume).split(":", 2)
    return (parts[0], parts[1]) if len(parts) >= 2 else ("", "")


def _volumes(containers: list[tuple[str, Mapping[str, Any]]]) -> list[dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for _, raw in containers:
        for volume in raw.get("volumes") or []:
            source, _dest = _mount(volume)
            out.setdefault(source.encode().hex(), {"name": source.encode().hex(), "host": {"path": source}})
    return list(out.values())


def _when(raw: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, target in (("ref", "ref"), ("repo", "repo"), ("instance", "instance"), ("environment", "target"),
                        ("event", "event"), ("branch", "branch"), ("status", "status")):  # fmt: skip
        condition = _constraint(raw.get(key))
        if key == "event":
            condition = {k: [_promote(e) for e in v] for k, v in condition.items()}
        if condition:
            out[target] = condition
    if isinstance(raw.get("matrix"), Mapping):
        out[_MATRIX] = {_text(k): _text(v) for k, v in raw["matrix"].items()}
    return out


def _promote(event: str) -> str:
    return "promote" if event in ("deploy", "deployment") else event


def _constraint(raw: Any) -> dict[str, list[str]]:
    """A 0.8 constraint: a string, a list, or ``{include, exclude}`` (``internal/constraint.go``)."""
    include: list[str] = []
    exclude: list[str] = []
    if isinstance(raw, Mapping):
        include = _strings(raw.get("include"))
        exclude = _strings(raw.get("exclude"))
    elif raw is not None:
        include = _strings(raw)
    return {k: v for k, v in (("include", include), ("exclude", exclude)) if v}


def _trigger(branches: dict[str, list[str]], steps: list[dict[str, Any]]) -> dict[str, Any]:
    include, exclude = branches.get("include", []), branches.get("exclude", [])
    if include and not exclude:  # tags and pull requests still build (config.go)
        refs = [*_PULL_REQUEST_REFS, *(f"refs/heads/{b}" for b in include)]
        if any("tag" in step.get("when", {}).get("event", {}).get("include", []) for step in steps):
            refs.append("refs/tags/**")
        return {"ref": {"include": refs}}
    return {"branch": branches} if branches else {}


def _secrets(raw: Any) -> list[dict[str, Any]]:
    out = []
    entries = {_text(k): _map(v) for k, v in raw.items()} if isinstance(raw, Mapping) else {}
    for name, value in sorted(entries.items()):
        get: dict[str, str] = {}
        if _text(value.get("driver")) == "vault":
            opts = _map(value.get("driver_opts"))
            get = {"path": _text(opts.get("path")), "name": _text(opts.get("key"))}
        else:
            get = {"path": _text(value.get("path")) or _text(value.get("vault"))}
        out.append({"kind": "secret", "name": name, "get": {k: v for k, v in get.items() if v}})
    return out


def _axes(raw: Any) -> list[dict[str, str]]:
    """The matrix's axes (``converter/legacy/matrix/matrix.go``): ``include:`` a list, else every combination
    of the variables' values, within Drone's limits."""
    if not isinstance(raw, Mapping):
        return []
    include = raw.get("include")
    if isinstance(include, list) and include:
        return [{_text(k): _text(v) for k, v in _map(axis).items()} for axis in include]
    matrix = {_text(k): _strings(v) for k, v in raw.items() if isinstance(v, list)}
    total = 1
    for values in matrix.values():
        total *= len(values)
    if not matrix or total == 0:
        return []
    axes = []
    for p in range(total):
        axis, decr = {}, total
        for i, (tag, values) in enumerate(matrix.items()):
            decr //= len(values)
            axis[tag] = values[p // decr % len(values)]
            if i > _LIMIT_TAGS:
                break
        axes.append(axis)
        if p > _LIMIT_AXIS:
            break
    return axes


def _for_axis(pipeline: dict[str, Any], axis: Mapping[str, str], number: int) -> dict[str, Any]:
    current = {**pipeline, "name": f"matrix-{number}"}
    for field in ("services", "steps"):
        kept = []
        for item in pipeline.get(field, []):
            wanted = item.get("when", {}).get(_MATRIX, {})
            if not wanted:
                kept.append(item)
                continue
            # as config.go: once per variable whose value matches
            kept += [item for k, v in wanted.items() for ek, ev in axis.items() if k == ek and v == ev]
        if field in current:
            current[field] = kept
    replaced: dict[str, Any] = _replace(current, {f"${{{k}}}": v for k, v in axis.items()})
    return replaced


def _replace(value: Any, pairs: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        for old, new in pairs.items():
            value = value.replace(old, new)
        return value
    if isinstance(value, list):
        return [_replace(item, pairs) for item in value]
    if isinstance(value, Mapping):
        return {_replace(k, pairs): _replace(v, pairs) for k, v in value.items()}
    return value


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: Any) -> str:
    """Go's YAML reading a scalar into a string: its text ("" for null)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, bool):
        return json.dumps(value)
    return str(value)


def _strings(value: Any) -> list[str]:
    """A 0.8 string-or-list (``internal/string_slice.go``)."""
    if value is None:
        return []
    if isinstance(value, list):
        return [_text(v) for v in value]
    return [_text(value)]


def _bool(value: Any) -> bool:
    return (value.resolved if isinstance(value, dronefiles.Plain) else value) is True


def _resolved(value: Any) -> Any:
    if isinstance(value, dronefiles.Plain):
        return value.resolved
    if isinstance(value, list):
        return [_resolved(v) for v in value]
    if isinstance(value, Mapping):
        return {_text(k): _resolved(v) for k, v in value.items()}
    return value
