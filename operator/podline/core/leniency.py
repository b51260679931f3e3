"""Read a raw Pipeline spec as Drone reads it: leniently, and say so.

Drone unmarshals each YAML document into Go structs without strict mode (drone/drone-yaml ``yaml/parse.go``,
drone/runner-go ``manifest/parse.go``, drone-runners' ``engine/resource/parser.go``): a key no struct field
has is dropped without a word, and a scalar read into a string field keeps its text as written. This module
walks a raw spec along ``models``' fields before they validate it, and:

* drops every key no model field has, each named in a warning (with the field it most resembles, so a typo
  such as ``trigger.actions`` says "did you mean action"); known Drone leftovers get their own reason;
* reads ``dronefiles.Plain`` scalars (a ``.drone.yml`` read by ``podline convert``) as their text where the
  field is text, and as YAML 1.1 values elsewhere (settings, booleans, numbers), as Go's YAML does;
* turns booleans and floats where Drone reads text (a Pipeline applied with kubectl, whose YAML 1.1 reader
  made ``on`` a boolean and ``1.10`` a float) back into text, with a warning naming the field and saying to
  quote it; integers become their digits silently;
* reads ``pull:`` as Drone does (any case; any other value is the default, with a warning) and ``user: root``
  as user id 0.

What the fields mean and which combinations are wrong is left to ``models`` and ``validation``.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import types
import typing
from collections.abc import Mapping
from typing import Any

import pydantic

from podline.core import dronefiles, models

# Drone's pull values (drone-runner-docker and drone-runner-kube engine/compiler/util.go convertPullPolicy:
# lower-cased; anything else is the default policy).
PULL_VALUES = ("always", "if-not-exists", "never", "default")

# Keys Drone ignores that deserve their own reason: (model, key) → why.
_KNOWN_IGNORED: dict[tuple[type[pydantic.BaseModel], str], str] = {
    (models.Step, "secrets"): "a Drone 0.8 field, ignored by Drone 1 and later: name secrets with "
    "{from_secret: name} in environment or settings",
    (models.PipelineSpec, "when"): "Drone ignores a pipeline-level when: a pipeline's conditions are trigger",
    (models.PipelineSpec, "pipeline"): "a Drone 0.8 key inside a Drone 1 document; run `podline convert` on "
    "the 0.8 file as a whole",
}


# Fields of Drone's runners that podline does not read (drone-runner-docker and drone-runner-kube
# engine/resource/pipeline.go): not typos, so they are named as such.
_UNSUPPORTED: dict[type[pydantic.BaseModel], tuple[str, ...]] = {
    models.PipelineSpec: ("node_name", "dns_config", "host_aliases", "resources", "version"),
    models.Step: ("devices", "memswap_limit"),
    models.Volume: ("secret",),
    models.VolumeMount: ("sub_path",),
}


@dataclasses.dataclass(frozen=True)
class Reading:
    """A spec as Drone would read it, and what reading it dropped or changed."""

    spec: dict[str, Any]
    warnings: tuple[str, ...]


def read(raw: Mapping[str, Any], *, root: str = "spec") -> Reading:
    """Read ``raw`` (a spec's body) along ``models.PipelineSpec``; see the module docstring."""
    warnings: list[str] = []
    spec = _model(raw, models.PipelineSpec, root, warnings)
    return Reading(spec=spec, warnings=tuple(warnings))


def _model(
    raw: Mapping[Any, Any], model: type[pydantic.BaseModel], path: str, warnings: list[str]
) -> dict[str, Any]:
    fields = _fields(model)
    out: dict[str, Any] = {}
    for key, value in raw.items():
        name = str(_text(key))
        if name not in fields:
            warnings.append(f"{path}.{name}: {_why_ignored(model, name)}")
            continue
        kind, required = fields[name]
        if value is None and not required:
            continue  # Go reads null as the zero value: `services: null` is no services
        if value is None and isinstance(kind, tuple):
            value = []  # `steps: null`: no steps, said as such
        out[name] = _value(value, kind, f"{path}.{name}", warnings)
    if model is models.Step:
        _step(out, path, warnings)
    return out


def _why_ignored(model: type[pydantic.BaseModel], key: str) -> str:
    if (model, key) in _KNOWN_IGNORED:
        return "ignored, " + _KNOWN_IGNORED[model, key]
    if key in _UNSUPPORTED.get(model, ()):
        return "a field of Drone's runners that podline does not support; ignored"
    if key.startswith("x-") or (model is models.PipelineSpec and key.startswith(".")):
        return "ignored, as Drone ignores it (a key that only holds YAML anchors)"
    close = difflib.get_close_matches(key, list(model.model_fields), n=1, cutoff=0.6)
    hint = f'; did you mean "{close[0]}"?' if close else ""
    return f"unknown field, ignored as Drone ignores it{hint}"


@functools.cache
def _fields(model: type[pydantic.BaseModel]) -> dict[str, tuple[Any, bool]]:
    """Each field's kind (see ``_kind``) and whether it is required, once per model."""
    return {name: (_kind(f.annotation), f.is_required()) for name, f in model.model_fields.items()}


def _value(value: Any, kind: Any, path: str, warnings: list[str]) -> Any:
    """``value`` read for a field of ``kind`` (see ``_kind``)."""
    if kind is models.Condition and not isinstance(value, Mapping):  # a pattern or a list of them
        kind = "text-list" if isinstance(value, list) else "text"
    if isinstance(kind, type) and issubclass(kind, pydantic.BaseModel):
        return _model(value, kind, path, warnings) if isinstance(value, Mapping) else _resolved(value)
    if kind == "text":
        return _as_text(value, path, warnings)
    if kind == "int-or-text":
        return _int_or_text(value)
    if kind == "text-list" and isinstance(value, list):
        return [_as_text(item, f"{path}[{i}]", warnings) for i, item in enumerate(value)]
    if kind == "text-map" and isinstance(value, Mapping):
        return {_text(k): _env(v, f"{path}.{_text(k)}", warnings) for k, v in value.items()}
    if isinstance(kind, tuple) and isinstance(value, list):  # ("list", item kind)
        return [_value(item, kind[1], f"{path}[{i}]", warnings) for i, item in enumerate(value)]
    return _resolved(value)


def _kind(annotation: Any) -> Any:
    """What a field holds: a model class, "text", "int-or-text", "text-list", "text-map" (text values or
    ``{from_secret}``), ("list", item kind), or None (any value: YAML's own types)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _kind(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return _kind(args[0])
        if str in args and models.FromSecret in args:
            return "text"
        return "int-or-text" if set(args) == {int, str} else None
    if annotation is str:
        return "text"
    if origin is list:
        (item,) = typing.get_args(annotation)
        return "text-list" if item is str else ("list", _kind(item))
    if origin is dict:
        _, item = typing.get_args(annotation)
        return "text-map" if _kind(item) == "text" else None
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        return annotation
    return None


def _text(value: Any) -> Any:
    """A ``Plain`` scalar's text as a ``str``; anything else unchanged."""
    return str.__str__(value) if isinstance(value, str) else value


def _resolved(value: Any) -> Any:
    """A value where Drone reads YAML's own types (``interface{}``): ``Plain`` scalars resolved, deeply."""
    if isinstance(value, dronefiles.Plain):
        return value.resolved
    if isinstance(value, list):
        return [_resolved(item) for item in value]
    if isinstance(value, Mapping):
        return {_text(k): _resolved(v) for k, v in value.items()}
    return value


def _as_text(value: Any, path: str, warnings: list[str]) -> Any:
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, bool):
        warnings.append(
            f"{path}: the boolean {str(value).lower()} is read as the text {str(value).lower()!r}; Drone "
            "keeps the text as written (on, yes, y…): quote it to say which"
        )
        return str(value).lower()
    if isinstance(value, float):
        warnings.append(
            f"{path}: the number {value!r} is read as the text {value!r}; Drone keeps the text as written "
            "(1.10 stays 1.10): quote it"
        )
        return repr(value)
    if isinstance(value, int):
        return str(value)
    return _resolved(value)


def _int_or_text(value: Any) -> Any:
    """A field Drone reads as a number or as text (``cpu``, ``memory``, ``user``): digits are a number,
    anything else its text (``cpu: 0.5`` is the quantity "0.5")."""
    if isinstance(value, dronefiles.Plain):
        resolved = value.resolved
        return resolved if isinstance(resolved, int) and not isinstance(resolved, bool) else _text(value)
    if isinstance(value, float):
        return repr(value)
    return _resolved(value)


def _env(value: Any, path: str, warnings: list[str]) -> Any:
    if value is None or isinstance(value, (Mapping, list)):
        return _resolved(value)
    return _as_text(value, path, warnings)


def _step(step: dict[str, Any], path: str, warnings: list[str]) -> None:
    """Drone's readings of single step fields: ``pull`` and ``user: root``."""
    pull = step.get("pull")
    if pull is not None:
        value = pull.lower() if isinstance(pull, str) else str(pull).lower()
        if value in PULL_VALUES or value == "":
            step["pull"] = value
        else:
            warnings.append(
                f"{path}.pull: {value!r} is not a pull policy; Drone treats it as the default "
                f"(one of: {', '.join(PULL_VALUES)})"
            )
            step["pull"] = "default"
    if step.get("commands") == []:
        del step["commands"]  # Drone runs commands only if there are any: else the image's own command
        warnings.append(f"{path}.commands: empty; the image's own entrypoint and command run, as in Drone")
    if step.get("user") == "root":
        step["user"] = 0  # Docker runs `user: root` as uid 0; Kubernetes needs the id
