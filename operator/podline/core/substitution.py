"""Drone's ``${…}`` substitution: what a run's build variables do to the strings of its pipeline.

Drone's runners (drone/runner-go ``pipeline/runtime/runner.go``, and drone-runner-docker/-kube's ``exec``
and ``compile`` commands) pass the whole configuration through ``envsubst.Eval`` before parsing it, with the
build's variables (``environs.variables``). The pinned library is drone/envsubst v1.0.3 (the
``go.mod`` of drone-runner-docker and drone-runner-kube); this module has its semantics, quirks included:

* only ``${…}`` is an expression; ``$NAME`` and a lone ``$`` are text;
* ``$$`` is a literal ``$`` everywhere, ``\\\\`` a literal ``\\`` and ``\\/`` a literal ``/`` (v1.0.3 reads these
  escapes outside expressions too: ``sed 's/\\//-/'`` reaches the container as ``sed 's///-/'``);
* an unknown variable is the empty string; a value holding a newline is inserted Go-quoted (``%q``), as
  runner-go's substitution function does, so it stays on one line;
* the operations are envsubst's (``funcs.go``): ``${#v}``, ``${v^}``, ``${v^^}``, ``${v,}``, ``${v,,}``,
  ``${v:pos}``, ``${v:pos:len}``, ``${v#p}``, ``${v##p}``, ``${v%p}``, ``${v%%p}``, ``${v/a/b}``, ``${v//a/b}``,
  ``${v/#a/b}``, ``${v/%a/b}``, and defaults ``${v=d}``, ``${v:=d}``, ``${v:-d}`` (also ``:?``/``:+``, which
  envsubst treats as a default); a default applies when the value is empty, set or not. ``${v-d}`` and
  ``${v+d}`` are errors, as are unclosed or malformed expressions.

Go strings are bytes: lengths and offsets count UTF-8 bytes, as Drone's do. Drone substitutes the file's
text before YAML parsing; a Pipeline is already parsed, so ``apply`` substitutes every string (keys and
values) of the spec. The two agree except where YAML quoting itself holds ``\\\\`` or a substituted value
holds YAML syntax (which Drone would parse; here it stays text). Leaves the syntax to ``expressions``, the
operations to ``expansions``, which variables exist to ``environs`` and where it happens (each time a run is
planned, before validation) to ``compiling``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from typing import Any

from podline.core import errors, expansions, expressions

Lookup = Callable[[str], str]

SubstitutionError = expressions.ExpressionError
"""A ``${…}`` expression Drone cannot evaluate: envsubst's parse errors, and what Drone's runner crashes on."""


def _evaluate(node: expressions.Node, lookup: Callable[[str], bytes]) -> bytes:
    if isinstance(node, expressions.Text):
        return node.value
    args = [_evaluate(arg, lookup) for arg in node.args]
    return expansions.operation(node.name, len(args))(lookup(node.param), *args)


_CACHED_LENGTH = 4096  # longer strings are parsed each time: the cache holds at most 4096 × 4 KiB of text


@functools.lru_cache(maxsize=4096)
def _parsed(text: str) -> tuple[expressions.Node, ...]:
    """The parse of ``text``, which does not depend on the variables: a Pipeline's strings are planned again
    at every reconcile of its run, and parsed once. (Nodes are never changed after parsing.)"""
    return expressions.parse(text)


def substitute(text: str, lookup: Lookup) -> str:
    """``text`` with every ``${…}`` evaluated by ``lookup`` (name → value) and every escape resolved.

    Raises ``SubstitutionError`` with envsubst's message for a malformed expression."""
    if "$" not in text and "\\" not in text:
        return text  # nothing to scan: envsubst would copy it unchanged

    def values(name: str) -> bytes:
        return lookup(name).encode("utf-8", "surrogatepass")

    try:
        nodes = _parsed(text) if len(text) <= _CACHED_LENGTH else expressions.parse(text)
        out = b"".join(_evaluate(node, values) for node in nodes)
    except expansions.Unsupported as exc:
        raise SubstitutionError(str(exc)) from None
    return out.decode("utf-8", "replace")


def lookup_of(variables: Mapping[str, str]) -> Lookup:
    """runner-go's substitution function: unknown names are empty; a value with a newline is Go-quoted."""

    def lookup(name: str) -> str:
        value = variables.get(name, "")
        return go_quote(value) if "\n" in value else value

    return lookup


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def go_quote(value: str) -> str:
    """Go's ``strconv.Quote`` (``fmt``'s ``%q``): a double-quoted literal with Go's escapes."""
    out = ['"']
    for char in value:
        code = ord(char)
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif char.isprintable():
            out.append(char)
        elif char in _GO_ESCAPES:
            out.append(_GO_ESCAPES[char])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif 0xD800 <= code <= 0xDFFF:
            out.append("\\ufffd")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


_PATH_PART = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def apply(raw: Any, lookup: Lookup, *, root: str = "spec") -> Any:
    """A copy of ``raw`` (a parsed spec) with every string, keys included, substituted.

    Raises ``errors.InvalidPipeline`` naming each field whose expression is malformed, and each mapping in
    which two keys become one."""
    problems: list[errors.Problem] = []
    result = _walk(raw, lookup, root, problems)
    if problems:
        raise errors.InvalidPipeline(problems)
    return result


def _walk(value: Any, lookup: Lookup, path: str, problems: list[errors.Problem]) -> Any:
    if isinstance(value, str):
        return _one(value, lookup, path, problems)
    if isinstance(value, list):
        return [_walk(item, lookup, f"{path}[{index}]", problems) for index, item in enumerate(value)]
    if isinstance(value, Mapping):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            where = f"{path}.{key}" if isinstance(key, str) and _PATH_PART.match(key) else f"{path}[{key!r}]"
            new_key = _one(key, lookup, where, problems) if isinstance(key, str) else key
            if new_key in out:
                problems.append(
                    errors.Problem(where, f"becomes {new_key!r} after substitution, a key already set")
                )
            out[new_key] = _walk(item, lookup, where, problems)
        return out
    return value


def _one(text: str, lookup: Lookup, path: str, problems: list[errors.Problem]) -> str:
    try:
        return substitute(text, lookup)
    except SubstitutionError as exc:
        problems.append(
            errors.Problem(path, f"cannot substitute ${{…}}: {exc} (as in Drone; write $$ for a literal $)")
        )
        return text
