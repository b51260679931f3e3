"""The ``${…}`` expressions of a string, parsed as drone/envsubst v1.0.3 parses them (``parse/scan.go``,
``parse/parse.go``): text, and function nodes naming a variable, an operation and its arguments.

``substitution`` evaluates the nodes (with ``expansions``' operations); this module only reads the syntax,
with envsubst's quirks: a scanner over UTF-8 bytes whose escapes (``$$``, ``\\\\``, ``\\/``) are cut out of
the buffer, accept functions that count bytes, and envsubst's error messages.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from podline.core import expansions

_EOF = ""  # Go uses rune 0; a distinct sentinel keeps a NUL in a value from ending the text

# envsubst's messages (parse/parse.go), so a user searching for them finds Drone's documentation.
BAD_SUBSTITUTION = "bad substitution"
MISSING_CLOSING_BRACE = "missing closing brace"
BAD_VARIABLE_NAME = "unable to parse variable name"
BAD_FUNCTION_ARGUMENT = "unable to parse substitution within function"
BAD_DEFAULT = "unable to parse default function"


class ExpressionError(ValueError):
    """A ``${…}`` expression envsubst cannot parse (the run fails, as in Drone), with envsubst's message."""


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
class Text:
    value: bytes


@dataclass
class Func:
    param: str
    name: str = ""
    args: list[Text | Func] = field(default_factory=list)


Node = Text | Func


def parse(text: str) -> tuple[Node, ...]:
    """The nodes of ``text``; raises ``ExpressionError`` for a malformed expression."""
    return tuple(_Parser(text).parse())


class _Parser:
    """envsubst's parser (parse/parse.go): text and ``${…}`` function nodes."""

    def __init__(self, text: str) -> None:
        self.s = _Scanner(text.encode("utf-8", "surrogatepass"))

    def parse(self) -> list[Node]:
        """Text and expressions. Outside ``${`` envsubst's scanner accepts every rune, so its text tokens end
        only at ``${`` or the end, with ``$$``, ``\\\\`` and ``\\/`` cut to their second character: the same,
        found with a search instead of rune by rune (``$`` and ``\\`` are single bytes in UTF-8)."""
        s, text = self.s, bytearray()
        nodes: list[Node] = []
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
                    nodes.append(Text(bytes(text)))
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
            nodes.append(Text(bytes(text)))
        return nodes

    def _scan(self, accept: Accept, mode: int) -> _Token:
        self.s.accept, self.s.mode = accept, mode
        return self.s.scan()

    def _name(self, accept: Accept, message: str = BAD_SUBSTITUTION) -> str:
        if self._scan(accept, _Mode.IDENT) is not _Token.IDENT:
            raise ExpressionError(message)
        return self.s.text().decode("utf-8", "replace")

    def function(self) -> Func:
        if self.s.peek() == "#":
            return self._length()
        node = Func(self._name(_ident, BAD_VARIABLE_NAME))
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
            raise ExpressionError(MISSING_CLOSING_BRACE)
        return node

    def _argument(self, accept: Accept, mode: int) -> Node:
        token = self._scan(accept, mode | _Mode.LBRACK)
        if token is _Token.LBRACK:
            return self.function()
        if token in (_Token.IDENT, _Token.RBRACK):
            return Text(self.s.text())
        raise ExpressionError(BAD_FUNCTION_ARGUMENT)

    def _close(self, node: Func) -> Func:
        self.s.mode = _Mode.RBRACK
        if self.s.scan() is not _Token.RBRACK:
            raise ExpressionError(BAD_SUBSTITUTION)
        return node

    def _length(self) -> Func:
        node = Func("", name=self._name(_one_hash))
        node.param = self._name(_ident)
        return self._close(node)

    def _substring(self, node: Func) -> Func:
        node.name = self._name(_one_colon)
        node.args.append(self._argument(_not_colon_or_closing, _Mode.IDENT))
        token = self._scan(_colons, _Mode.IDENT | _Mode.RBRACK)
        if token is _Token.RBRACK:
            return node
        if token is not _Token.IDENT:
            raise ExpressionError(BAD_SUBSTITUTION)
        node.args.append(self._argument(_not_closing, _Mode.IDENT))
        return self._close(node)

    def _replace(self, node: Func) -> Func:
        node.name = self._name(_replace_op)
        node.args.append(self._argument(_not_slash, _Mode.IDENT | _Mode.ESCAPE))
        if self._scan(_slashes, _Mode.IDENT) is not _Token.IDENT:
            raise ExpressionError(BAD_SUBSTITUTION)
        if self.s.peek() != "}":
            node.args.append(self._argument(_not_closing, _Mode.IDENT | _Mode.ESCAPE))
        return self._close(node)

    def _default(self, node: Func) -> Func:
        node.name = self._name(_one_equal if self.s.peek() == "=" else _default_op, BAD_DEFAULT)
        while self.s.peek() != "}":
            node.args.append(self._argument(_not_closing, _Mode.IDENT))
        return self._close(node)
