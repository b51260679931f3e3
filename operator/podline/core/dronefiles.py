"""Drone's YAML text, read and written as Drone and kubectl read it.

Reading: Drone splits a ``.drone.yml`` into documents at every line that starts with ``---`` and stops at a
line that starts with ``...`` (drone/drone-yaml ``yaml/parse.go`` ``ParseRaw``; drone/runner-go
``manifest/parse.go``), then unmarshals each document with Go's YAML (github.com/buildkite/yaml, a fork of
gopkg.in/yaml.v2). Go's YAML keeps a scalar's text when the field it fills is a string (``GO111MODULE: on``
stays ``on``, ``1.10`` stays ``1.10``, ``0755`` stays ``0755``) and resolves it as YAML 1.1 only where the field
takes any value (plugin ``settings``). ``load`` therefore reads every untagged plain scalar as a ``Plain``: its
text, with the value Go's resolver gives it beside (``resolved``); ``leniency`` picks one per field. A tab at
the end of a line, which Go's YAML accepts and PyYAML's scanner does not, is dropped before a retry.

Writing: kubectl reads YAML 1.1 too (sigs.k8s.io/yaml), where ``y``, ``n``, ``yes``, ``on``, ``off``, ``~`` are
not text: ``dump`` quotes every string Go's resolver would read as anything but that string, so
``podline convert … | kubectl apply -f -`` means to kubectl what it means to podline.
"""

from __future__ import annotations

import math
import re
from typing import Any, Self

import yaml

_TRUE = {"y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"}
_FALSE = {"n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"}
_NULL = {"", "~", "null", "Null", "NULL"}
_SPECIAL_FLOATS = {
    **{s: math.inf for s in (".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF")},
    **{s: -math.inf for s in ("-.inf", "-.Inf", "-.INF")},
    **{s: math.nan for s in (".nan", ".NaN", ".NAN")},
}
_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
_OCTAL = re.compile(r"^[-+]?0[0-7_]+$")
_PLAIN_TAG = "tag:podline.dev,2026:plain"
_MAX_INT = 2**63 - 1


class Plain(str):
    """An untagged plain scalar: its text (the ``str``), and what Go's YAML resolves it to (``resolved``)."""

    resolved: Any

    def __new__(cls, text: str) -> Self:
        plain = super().__new__(cls, text)
        plain.resolved = go_resolve(text)
        return plain


def go_resolve(text: str) -> Any:
    """The value gopkg.in/yaml.v2 (``resolve.go``) gives an untagged plain scalar read into ``interface{}``."""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    if text in _NULL:
        return None
    if text in _SPECIAL_FLOATS:
        return _SPECIAL_FLOATS[text]
    if not text or text[0] not in "+-.0123456789":
        return text
    number = _go_int(text)
    if number is not None:
        return number
    if _FLOAT.match(text):
        return float(text)
    return text


def _go_int(text: str) -> int | None:
    """strconv.ParseInt(text, 0, 64) as yaml.v2 calls it (underscores removed; 0x, 0o, 0b, leading-0 octal)."""
    digits = text.replace("_", "")
    try:
        if _OCTAL.match(digits) and digits.lstrip("+-") != "0":
            value = int(digits, 8)
        elif digits.lstrip("+-")[:2].lower() == "0b":
            value = int(digits, 0)
        else:
            value = int(digits, 0)
    except ValueError:
        return None
    return value if -_MAX_INT - 1 <= value <= 2**64 - 1 else None


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader with plain scalars read as ``Plain`` (merge keys ``<<`` keep their meaning)."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        tag = super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]
        if kind is yaml.ScalarNode and implicit[0] and tag != "tag:yaml.org,2002:merge":
            return _PLAIN_TAG
        return tag


def _plain(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    text = loader.construct_scalar(node)
    return None if text in _NULL and go_resolve(str(text)) is None else Plain(str(text))


_Loader.add_constructor(_PLAIN_TAG, _plain)


def split(text: str) -> list[tuple[int, str]]:
    """Drone's documents, each with the line (from 0) it starts after: split at lines that start with
    ``---``, up to a line that starts with ``...``."""
    docs: list[tuple[int, list[str]]] = []
    current: list[str] | None = None
    for number, line in enumerate(text.splitlines()):
        if line.startswith("---"):
            current = None
        if current is None:
            current = []
            docs.append((number + 1 if line.startswith("---") else number, current))
        if line.startswith("---"):
            continue
        if line.startswith("..."):
            break
        current.append(line)
    return [(start, "\n".join(lines) + "\n") for start, lines in docs]


def load(text: str) -> list[tuple[int, Any]]:
    """Each non-empty document of a Drone file with its index, scalars as ``Plain``. Raises
    ``yaml.YAMLError`` (its ``problem_mark`` counted within the file)."""
    out: list[tuple[int, Any]] = []
    for index, (start, doc) in enumerate(split(text)):
        try:
            value = _load_one(doc)
        except yaml.MarkedYAMLError as exc:
            if exc.problem_mark is not None:
                exc.problem_mark.line += start
            raise
        if value is not None:
            out.append((index, value))
    return out


def _load_one(doc: str) -> Any:
    try:
        return yaml.load(doc, Loader=_Loader)
    except yaml.scanner.ScannerError as exc:
        if "'\\t'" not in str(exc.problem):
            raise
    return yaml.load(re.sub(r"[ \t]+$", "", doc, flags=re.MULTILINE), Loader=_Loader)


class _Dumper(yaml.SafeDumper):
    """PyYAML's safe dumper, quoting every string that Go's YAML 1.1 reader would not read back as itself."""


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    if go_resolve(data) != data or data != data.strip():
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="'" if "\n" not in data else '"')
    return dumper.represent_str(data)


_Dumper.add_representer(str, _represent_str)


def dump(docs: list[Any]) -> str:
    """YAML documents that kubectl (YAML 1.1) and podline read alike."""
    return yaml.dump_all(docs, Dumper=_Dumper, sort_keys=False, allow_unicode=True)
