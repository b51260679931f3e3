"""``podline convert``: a Drone configuration file in, one Pipeline resource per pipeline it holds out.

In Drone's order (drone/drone ``trigger/trigger.go``): a ``.jsonnet`` file is evaluated first (``scripting``;
``.star`` files are refused there, saying why), a 0.8 file is converted as the server converts it
(``legacy``), then the documents are read as Drone reads them (``dronefiles``) and each ``kind: pipeline``
document's body as its runner reads it (``leniency``): what Drone ignores is dropped and reported, not
refused. ``kind: secret`` documents are resolved in the pipelines (``secretdocs``); the file's pipelines are
labelled as one build, whose depends_on must name pipelines of the file and form no cycle (``builds``). Other
documents (``signature``, ``cron``, ``registry``) are skipped with a note.
A pipeline for another runner (``type: exec``, ``ssh``…) is an error naming it, and so is a second pipeline of
one name (drone-yaml ``linter/config.go``: duplicate pipeline names), counting names as Kubernetes names; the
others still convert.

Writing the result is ``dronefiles.dump``'s: every string kubectl's YAML 1.1 would read as something else
is quoted.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

import yaml

from podline.core import (
    builds,
    conventions,
    dronefiles,
    errors,
    legacy,
    leniency,
    scripting,
    secretdocs,
    validation,
)


@dataclasses.dataclass(frozen=True)
class Converted:
    """What converting one file gave: Pipeline resources, notes (warnings) and errors, each line naming the
    file and document (``.drone.yml[1].steps[0].secrets: …``)."""

    pipelines: tuple[dict[str, Any], ...]
    notes: tuple[str, ...]
    problems: tuple[str, ...]


def convert(
    text: str, *, path: str, build: Mapping[str, Any] | None = None, build_name: str | None = None
) -> Converted:
    """Convert the text of the Drone file ``path``; its Pipelines are labelled as the build ``build_name``.
    Raises ``errors.InvalidDroneFile`` when the file as a whole cannot be read (YAML syntax, a Jsonnet error,
    a Starlark file)."""
    build = build or {}
    notes: list[str] = []
    if path.endswith(scripting.JSONNET_SUFFIXES):
        text = scripting.jsonnet(text, filename=path, build=build)
    elif path.endswith(scripting.STARLARK_SUFFIXES):
        text = scripting.starlark(text, filename=path, build=build)
    docs = _documents(text, path)
    if legacy.matches(text):
        notes.append(f"{path}: a Drone 0.8 file, converted as the Drone server converts it")
        first = docs[0][1] if docs else None
        try:
            docs = list(enumerate(legacy.convert(first, link=_link(build))))
        except ValueError as exc:
            raise errors.InvalidDroneFile.at(path, str(exc)) from None
    pipelines: list[dict[str, Any]] = []
    problems: list[str] = []
    names: dict[str, str] = {}
    for index, doc in docs:
        where = f"{path}[{index}]"
        kind = doc.get("kind") if isinstance(doc, Mapping) else None
        if kind == secretdocs.KIND:
            continue  # read by _as_build
        if not isinstance(doc, Mapping) or kind != "pipeline":
            shown = f"kind {str(kind)!r}" if kind is not None else "a document without kind"
            notes.append(f"{where}: skipping {shown} (only kind: pipeline becomes a Pipeline)")
            continue
        try:
            pipeline = _pipeline(doc, where, notes)
        except errors.PodlineError as exc:
            problems.extend(exc.lines())
            continue
        name = pipeline["metadata"]["name"]
        if name in names:
            problems.append(
                f"{where}.name: the Pipeline name {json.dumps(name)} is also {names[name]}'s; Drone refuses two "
                "pipelines of one name too: rename one"
            )
            continue
        names[name] = where
        pipelines.append(pipeline)
    secret_docs = [
        (f"{path}[{i}]", d) for i, d in docs if isinstance(d, Mapping) and d.get("kind") == "secret"
    ]
    pipelines = _as_build(pipelines, list(names.values()), secret_docs, build_name, problems)
    if build:
        pipelines = [_with_build_metadata(p, build) for p in pipelines]
    return Converted(pipelines=tuple(pipelines), notes=tuple(notes), problems=tuple(problems))


def _as_build(
    pipelines: list[dict[str, Any]],
    wheres: list[str],
    secret_docs: list[tuple[str, Mapping[str, Any]]],
    build_name: str | None,
    problems: list[str],
) -> list[dict[str, Any]]:
    """The file's Pipelines as one build: ``kind: secret`` references resolved, labelled ``build_name``;
    what cannot be (a bad secret document, an unknown depends_on name, a cycle) added to ``problems``."""
    secrets = {}
    for one in secret_docs:  # each refused one is a problem (exit 1); the others are still resolved
        try:
            secrets.update(secretdocs.collect([one]))
        except errors.PodlineError as exc:
            problems.extend(exc.lines())
    found = builds.check_file([(w, p["spec"]) for w, p in zip(wheres, pipelines, strict=True)])
    problems.extend(str(p) for p in found)
    refused = {w for w in wheres for p in found if p.path.startswith(w + ".")}
    out = []
    for where, pipeline in zip(wheres, pipelines, strict=True):
        if where in refused:
            continue
        try:
            spec = secretdocs.apply(pipeline["spec"], secrets, where)
        except errors.PodlineError as exc:
            problems.extend(exc.lines())
            continue
        meta = dict(pipeline["metadata"])
        if build_name:
            meta["labels"] = {conventions.LABEL_BUILD: build_name}
        out.append({**pipeline, "metadata": meta, "spec": spec})
    return out


def _with_build_metadata(pipeline: dict[str, Any], build: Mapping[str, Any]) -> dict[str, Any]:
    """The Pipeline run for this build: its metadata in the ``podline.dev/build`` annotation, where the
    operator reads it for substitution, ``DRONE_*`` variables and ``when``/``trigger``."""
    meta = dict(pipeline["metadata"])
    notes = {**(meta.get("annotations") or {}), conventions.ANNOTATION_BUILD: json.dumps(dict(build))}
    return {**pipeline, "metadata": {**meta, "annotations": notes}}


def _documents(text: str, path: str) -> list[tuple[int, Any]]:
    try:
        return dronefiles.load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else path
        raise errors.InvalidDroneFile.at(where, f"not valid YAML ({getattr(exc, 'problem', exc)})") from None


def _pipeline(doc: Mapping[str, Any], where: str, notes: list[str]) -> dict[str, Any]:
    kind = leniency.read({"type": doc.get("type")}, root=where).spec.get("type")
    if kind is not None and kind not in validation.RUNNER_TYPES:
        raise errors.InvalidDroneFile.at(f"{where}.type", validation.runner_problem(kind))
    reading = leniency.read(doc, root=where)
    notes.extend(reading.warnings)
    name = conventions.dns1123_label(str(reading.spec.get("name") or "default"))
    return {
        "apiVersion": conventions.API_VERSION,
        "kind": conventions.KIND,
        "metadata": {"name": name},
        "spec": reading.spec,
    }


def _link(build: Mapping[str, Any]) -> str:
    """The repository's web address (Drone's ``repo.Link``), from the build metadata's remote."""
    return str(build.get("remote") or "").removesuffix(".git")


def dump(pipelines: tuple[dict[str, Any], ...] | list[dict[str, Any]]) -> str:
    return dronefiles.dump(list(pipelines))
