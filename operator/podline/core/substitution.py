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
holds YAML syntax (which Drone would parse; here it stays text). Leaves which variables exist to
``environs`` and where it happens (each time a run is planned, before validation) to ``compiling``.
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from podline.core import errors, expansions

Lookup = Callable[[str], str]

_EOF = ""  # Go uses rune 0; a distinct sentinel keeps a NUL in a value from ending the text

# envsubst's messages (parse/parse.go), so a user searching for them finds Drone's documentation.
BAD_SUBSTITUTION = "bad substitution"
MISSING_CLOSING_BRACE = "missing closing brace"
BAD_VARIABLE_NAME = "unable to parse variable name"
BAD_FUNCTION_ARGUMENT = "unable to parse substitution within function"
BAD_DEFAULT = "unable to parse default function"


class SubstitutionError(ValueError):
    """A ``${…}`` expression Drone cannot evaluate (the run fails, as in Drone)."""


class _Mode:
    """Which tokens the scanner recognises (plain ints: this is the inner loop)."""

    IDENT = 1
    LBRACK = 2
    RBRACK = 4
    ESCAPE = 8


class _Token(enum.Enum):
    ILLEGAL = enum.auto()
    EOF = enum.auto()
    IDENT = enum.auto()
    LBRACK = enum.auto()
    RBRACK = enum.auto()


Accept = Callable[[str, int], bool]
_SPECIAL = re.compile(rb"[$\\]")
_ASCII = tuple(chr(code) for code in range(0x80))


def _any(r: str, i: int) -> bool:
    return True


def _ident(r: str, i: int) -> bool:
    return r.isalpha() or r.isdecimal() or r == "_"  # Go's unicode.IsLetter, unicode.IsDigit


def _not_closing(r: str, i: int) -> bool:
    return r != "}"


def _not_colon_or_closing(r: str, i: int) -> bool:
    return r not in (":", "}")


def _colons(r: str, i: int) -> bool:
    return r == ":"


def _one_colon(r: str, i: int) -> bool:
    return i == 1 and r == ":"


def _one_hash(r: str, i: int) -> bool:
    return i == 1 and r == "#"


def _one_equal(r: str, i: int) -> bool:
    return i == 1 and r == "="


def _hashes(r: str, i: int) -> bool:
    return r == "#" and i < 3


def _percents(r: str, i: int) -> bool:
    return r == "%" and i < 3


def _casing(r: str, i: int) -> bool:
    return r in (",", "^") and i < 3


def _default_op(r: str, i: int) -> bool:
    return (i == 1 and r == ":") or (i == 2 and r in ("=", "-", "?", "+"))


def _replace_op(r: str, i: int) -> bool:
    return (i == 1 and r == "/") or (i == 2 and r in ("/", "#", "%"))


def _slashes(r: str, i: int) -> bool:
    return r == "/"


def _not_slash(r: str, i: int) -> bool:
    return r != "/"


class _Scanner:
    """envsubst's scanner (parse/scan.go): reads runes of a byte buffer; escapes are cut out of the buffer."""

    def __init__(self, text: bytes) -> None:
        self.buf = bytearray(text)
        self.pos = 0
        self.start = 0
        self.width = 0
        self.mode = 0
        self.accept: Accept = _any

    def read(self) -> str:
        pos, buf = self.pos, self.buf
        if pos >= len(buf):
            self.width = 0
            return _EOF
        byte = buf[pos]
        if byte < 0x80:
            self.width, self.pos = 1, pos + 1
            return _ASCII[byte]
        code, self.width = expansions.rune_at(buf, pos)
        self.pos = pos + self.width
        return chr(code)

    def unread(self) -> None:
        self.pos -= self.width

    def peek(self) -> str:
        rune = self.read()
        self.unread()
        return rune

    def skip(self) -> None:
        del self.buf[self.pos - 1]

    def text(self) -> bytes:
        return bytes(self.buf[self.start : self.pos])

    def scan(self) -> _Token:
        self.start = self.pos
        rune = self.read()
        if rune == _EOF:
            return _Token.EOF
        if self._lbrack(rune):
            return _Token.LBRACK
        if self.mode & _Mode.RBRACK and rune == "}":
            return _Token.RBRACK
        if self._ident(rune):
            return _Token.IDENT
        return _Token.ILLEGAL

    def _lbrack(self, rune: str) -> bool:
        if not self.mode & _Mode.LBRACK or rune != "$":
            return False
        if self.read() == "{":
            return True
        self.unread()
        return False

    def _escaped(self, rune: str) -> bool:
        if not self.mode & _Mode.ESCAPE:
            return False
        if rune == "$" and self.peek() == "$":
            return True
        return rune == "\\" and self.peek() in ("/", "\\")

    def _ident(self, rune: str) -> bool:
        if not self.mode & _Mode.IDENT:
            return False
        if self._escaped(rune):
            self.skip()
        elif not self.accept(rune, self.pos - self.start):
            return False
        while True:
            rune = self.read()
            if rune == _EOF:
                self.unread()
                return True
            if self._lbrack(rune):
                self.unread()
                self.unread()
                return True
            if self._escaped(rune):
                self.skip()
                continue
            if not self.accept(rune, self.pos - self.start):
                self.unread()
                return True


@dataclass
class _Text:
    value: bytes


@dataclass
class _Func:
    param: str
    name: str = ""
    args: list[_Text | _Func] = field(default_factory=list)


_Node = _Text | _Func


class _Parser:
    """envsubst's parser (parse/parse.go): text and ``${…}`` function nodes."""

    def __init__(self, text: str) -> None:
        self.s = _Scanner(text.encode("utf-8", "surrogatepass"))

    def parse(self) -> list[_Node]:
        """Text and expressions. Outside ``${`` envsubst's scanner accepts every rune, so its text tokens end
        only at ``${`` or the end, with ``$$``, ``\\\\`` and ``\\/`` cut to their second character: the same,
        found with a search instead of rune by rune (``$`` and ``\\`` are single bytes in UTF-8)."""
        s, text = self.s, bytearray()
        nodes: list[_Node] = []
        while True:
            found = _SPECIAL.search(s.buf, s.pos)
            if found is None:
                text += s.buf[s.pos :]
                break
            at = found.start()
            text += s.buf[s.pos : at]
            char, following = s.buf[at : at + 1], s.buf[at + 1 : at + 2]
            if char == b"$" and following == b"{":
                if text:
                    nodes.append(_Text(bytes(text)))
                    text = bytearray()
                s.pos = at + 2
                nodes.append(self.function())
            elif following == char or (char == b"\\" and following == b"/"):
                text += following
                s.pos = at + 2
            else:
                text += char
                s.pos = at + 1
        if text:
            nodes.append(_Text(bytes(text)))
        return nodes

    def _scan(self, accept: Accept, mode: int) -> _Token:
        self.s.accept, self.s.mode = accept, mode
        return self.s.scan()

    def _name(self, accept: Accept, message: str = BAD_SUBSTITUTION) -> str:
        if self._scan(accept, _Mode.IDENT) is not _Token.IDENT:
            raise SubstitutionError(message)
        return self.s.text().decode("utf-8", "replace")

    def function(self) -> _Func:
        if self.s.peek() == "#":
            return self._length()
        node = _Func(self._name(_ident, BAD_VARIABLE_NAME))
        following = self.s.peek()
        if following == ":":
            self.s.read()
            after = self.s.peek()
            self.s.unread()  # Go's quirk: steps back by the width of the rune peeked at
            return self._default(node) if after in ("=", "-", "?", "+") else self._substring(node)
        if following == "=":
            return self._default(node)
        if following in (",", "^"):
            node.name = self._name(_casing)
            return self._close(node)
        if following == "/":
            return self._replace(node)
        if following in ("#", "%"):
            node.name = self._name(_hashes if following == "#" else _percents)
            node.args.append(self._argument(_not_closing, _Mode.IDENT))
            return self._close(node)
        if self._scan(_ident, _Mode.RBRACK) is not _Token.RBRACK:
            raise SubstitutionError(MISSING_CLOSING_BRACE)
        return node

    def _argument(self, accept: Accept, mode: int) -> _Node:
        token = self._scan(accept, mode | _Mode.LBRACK)
        if token is _Token.LBRACK:
            return self.function()
        if token in (_Token.IDENT, _Token.RBRACK):
            return _Text(self.s.text())
        raise SubstitutionError(BAD_FUNCTION_ARGUMENT)

    def _close(self, node: _Func) -> _Func:
        self.s.mode = _Mode.RBRACK
        if self.s.scan() is not _Token.RBRACK:
            raise SubstitutionError(BAD_SUBSTITUTION)
        return node

    def _length(self) -> _Func:
        node = _Func("", name=self._name(_one_hash))
        node.param = self._name(_ident)
        return self._close(node)

    def _substring(self, node: _Func) -> _Func:
        node.name = self._name(_one_colon)
        node.args.append(self._argument(_not_colon_or_closing, _Mode.IDENT))
        token = self._scan(_colons, _Mode.IDENT | _Mode.RBRACK)
        if token is _Token.RBRACK:
            return node
        if token is not _Token.IDENT:
            raise SubstitutionError(BAD_SUBSTITUTION)
        node.args.append(self._argument(_not_closing, _Mode.IDENT))
        return self._close(node)

    def _replace(self, node: _Func) -> _Func:
        node.name = self._name(_replace_op)
        node.args.append(self._argument(_not_slash, _Mode.IDENT | _Mode.ESCAPE))
        if self._scan(_slashes, _Mode.IDENT) is not _Token.IDENT:
            raise SubstitutionError(BAD_SUBSTITUTION)
        if self.s.peek() != "}":
            node.args.append(self._argument(_not_closing, _Mode.IDENT | _Mode.ESCAPE))
        return self._close(node)

    def _default(self, node: _Func) -> _Func:
        node.name = self._name(_one_equal if self.s.peek() == "=" else _default_op, BAD_DEFAULT)
        while self.s.peek() != "}":
            node.args.append(self._argument(_not_closing, _Mode.IDENT))
        return self._close(node)


def _evaluate(node: _Node, lookup: Callable[[str], bytes]) -> bytes:
    if isinstance(node, _Text):
        return node.value
    args = [_evaluate(arg, lookup) for arg in node.args]
    return expansions.operation(node.name, len(args))(lookup(node.param), *args)


_CACHED_LENGTH = 4096  # longer strings are parsed each time: the cache holds at most 4096 × 4 KiB of text


@functools.lru_cache(maxsize=4096)
def _parsed(text: str) -> tuple[_Node, ...]:
    """The parse of ``text``, which does not depend on the variables: a Pipeline's strings are planned again
    at every reconcile of its run, and parsed once. (Nodes are never changed after parsing.)"""
    return tuple(_Parser(text).parse())


def substitute(text: str, lookup: Lookup) -> str:
    """``text`` with every ``${…}`` evaluated by ``lookup`` (name → value) and every escape resolved.

    Raises ``SubstitutionError`` with envsubst's message for a malformed expression."""
    if "$" not in text and "\\" not in text:
        return text  # nothing to scan: envsubst would copy it unchanged

    def values(name: str) -> bytes:
        return lookup(name).encode("utf-8", "surrogatepass")

    try:
        nodes = _parsed(text) if len(text) <= _CACHED_LENGTH else tuple(_Parser(text).parse())
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
