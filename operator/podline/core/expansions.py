"""The operations of Drone's ``${…}`` expressions, on Go strings (UTF-8 bytes), as drone/envsubst v1.0.3 has them.

``substitution`` parses an expression into an operation name and its arguments; this module says what each
name does (envsubst ``funcs.go``) and how its patterns match (envsubst ``path/match.go``: Go's
``path.Match``, changed so that ``*`` and ``?`` also match ``/``). Lengths and offsets count bytes, as Go's do.
Where Go's code would panic (a negative substring length) the expression is refused instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable

Operation = Callable[..., bytes]

_INT64 = 2**63
_DECIMAL = re.compile(rb"[+-]?[0-9]+\Z")


class BadPattern(ValueError):
    """A malformed glob (Go's ``path.ErrBadPattern``): the trim operations then leave the value as it is."""


class Unsupported(ValueError):
    """An expression Drone's runner cannot evaluate either (its Go code would panic)."""


def _atoi(text: bytes) -> int | None:
    """Go's ``strconv.Atoi`` on a 64-bit machine: None where it returns an error."""
    if not _DECIMAL.match(text):
        return None
    value = int(text)
    return value if -_INT64 <= value < _INT64 else None


def _runes(value: bytes) -> str:
    return value.decode("utf-8", "replace")


def _bytes(value: str) -> bytes:
    return value.encode("utf-8", "surrogatepass")


def length(s: bytes, *args: bytes) -> bytes:
    return str(len(s)).encode()


def _map_runes(s: bytes, change: Callable[[str], str], *, first_only: bool = False) -> bytes:
    """Go's per-rune case mapping: a rune whose mapping is not one rune (``ß`` → ``SS``) stays as it is."""
    text = _runes(s)
    if not text:
        return s

    def one(char: str) -> str:
        mapped = change(char)
        return mapped if len(mapped) == 1 else char

    if first_only:
        code, width = rune_at(s)
        return _bytes(one(chr(code))) + s[width:]
    return _bytes("".join(one(c) for c in text))


def lower(s: bytes, *args: bytes) -> bytes:
    return _map_runes(s, str.lower)


def upper(s: bytes, *args: bytes) -> bytes:
    return _map_runes(s, str.upper)


def lower_first(s: bytes, *args: bytes) -> bytes:
    return _map_runes(s, str.lower, first_only=True)


def upper_first(s: bytes, *args: bytes) -> bytes:
    return _map_runes(s, str.upper, first_only=True)


def default(s: bytes, *args: bytes) -> bytes:
    """The value, or (when it is empty) the arguments joined: set-but-empty counts as unset."""
    return b"".join(args) if not s and args else s


def substring(s: bytes, *args: bytes) -> bytes:
    """``${v:pos}``, ``${v:pos:len}``: a negative position counts from the end; unparsable numbers keep ``s``."""
    if not args:
        return s
    pos = _atoi(args[0])
    if pos is None:
        return s
    if pos < 0:
        pos = max(len(s) + pos, 0)
    if len(args) == 1:
        return s[pos:] if pos < len(s) else b""
    size = _atoi(args[1])
    if size is None:
        return s
    if pos + size >= len(s):
        return s[pos:] if pos < len(s) else b""
    if size < 0:
        raise Unsupported("a negative substring length (Drone's runner crashes on it)")
    return s[pos : pos + size]


def _replace(s: bytes, old: bytes, new: bytes, count: int) -> bytes:
    if not old:  # Go inserts at rune boundaries, not byte boundaries
        return _bytes(_runes(s).replace("", _runes(new), count))
    return s.replace(old, new, count)


def replace_all(s: bytes, *args: bytes) -> bytes:
    if not args:
        return s
    return _replace(s, args[0], args[1] if len(args) > 1 else b"", -1)


def replace_first(s: bytes, *args: bytes) -> bytes:
    if not args:
        return s
    return _replace(s, args[0], args[1] if len(args) > 1 else b"", 1)


def replace_prefix(s: bytes, *args: bytes) -> bytes:
    """``${v/#a/b}``; without a replacement (``${v/#a}``) the value stays as it is, as in envsubst."""
    if len(args) != 2 or not s.startswith(args[0]):
        return s
    return _replace(s, args[0], args[1], 1)


def replace_suffix(s: bytes, *args: bytes) -> bytes:
    if len(args) != 2 or not s.endswith(args[0]):
        return s
    return s[: len(s) - len(args[0])] + args[1]


def _reverse(value: bytes) -> bytes:
    return _bytes(_runes(value)[::-1])


def _trim_shortest(s: bytes, pattern: bytes) -> bytes:
    shortest = b""
    for i in range(len(s)):
        try:
            if match(pattern, s[: len(s) - i]):
                shortest = s[: len(s) - i]
        except BadPattern:
            return s
    return s[len(shortest) :]


def _trim_longest(s: bytes, pattern: bytes) -> bytes:
    for i in range(len(s)):
        try:
            if match(pattern, s[: len(s) - i]):
                return s[len(s) - i :]
        except BadPattern:
            return s
    return s


def trim_shortest_prefix(s: bytes, *args: bytes) -> bytes:
    return _trim_shortest(s, args[0]) if args else s


def trim_longest_prefix(s: bytes, *args: bytes) -> bytes:
    return _trim_longest(s, args[0]) if args else s


def trim_shortest_suffix(s: bytes, *args: bytes) -> bytes:
    """Matched on the reversed value with the reversed pattern, as envsubst does (so ``[a-z]`` breaks)."""
    return _reverse(_trim_shortest(_reverse(s), _reverse(args[0]))) if args else s


def trim_longest_suffix(s: bytes, *args: bytes) -> bytes:
    return _reverse(_trim_longest(_reverse(s), _reverse(args[0]))) if args else s


_OPERATIONS: dict[str, Operation] = {
    ",": lower_first,
    ",,": lower,
    "^": upper_first,
    "^^": upper,
    "##": trim_longest_prefix,
    "%": trim_shortest_suffix,
    "%%": trim_longest_suffix,
    ":": substring,
    "/#": replace_prefix,
    "/%": replace_suffix,
    "/": replace_first,
    "//": replace_all,
}


def operation(name: str, arguments: int) -> Operation:
    """envsubst's ``lookupFunc``: ``#`` is the length without arguments; any other name is a default."""
    if name == "#":
        return length if arguments == 0 else trim_shortest_prefix
    return _OPERATIONS.get(name, default)


# --- patterns: envsubst's path.Match ----------------------------------------------------------------------


def rune_at(data: bytes | bytearray, pos: int = 0) -> tuple[int, int]:
    """(code point, width) of the rune at ``pos``; an invalid byte is U+FFFD of width 1 (Go's RuneError)."""
    first = data[pos]
    if first < 0x80:
        return first, 1
    width = 2 if first >> 5 == 0b110 else 3 if first >> 4 == 0b1110 else 4 if first >> 3 == 0b11110 else 0
    try:
        return ord(bytes(data[pos : pos + width]).decode("utf-8")), width
    except (UnicodeDecodeError, TypeError):
        return 0xFFFD, 1


def match(pattern: bytes, name: bytes) -> bool:
    """Whether ``pattern`` matches all of ``name``: ``*`` any run of bytes, ``?`` one rune, ``[…]`` a class,
    ``\\`` escapes. Raises ``BadPattern`` when matching reaches a malformed part of the pattern."""
    while pattern:
        star, chunk, pattern = _scan_chunk(pattern)
        if star and not chunk:
            return True  # a trailing * matches the rest, slashes included
        rest, ok = _match_chunk(chunk, name)
        if ok and (not rest or pattern):
            name = rest
            continue
        skipped = _after_star(chunk, name, last=not pattern) if star else None
        if skipped is not None:
            name = skipped
            continue
        return False
    return not name


def _after_star(chunk: bytes, name: bytes, *, last: bool) -> bytes | None:
    for i in range(len(name)):
        rest, ok = _match_chunk(chunk, name[i + 1 :])
        if ok and not (last and rest):
            return rest
    return None


def _scan_chunk(pattern: bytes) -> tuple[bool, bytes, bytes]:
    star = False
    while pattern[:1] == b"*":
        pattern, star = pattern[1:], True
    in_range, i = False, 0
    while i < len(pattern):
        c = pattern[i : i + 1]
        if c == b"\\":
            if i + 1 < len(pattern):
                i += 1
        elif c == b"[":
            in_range = True
        elif c == b"]":
            in_range = False
        elif c == b"*" and not in_range:
            break
        i += 1
    return star, pattern[:i], pattern[i:]


def _match_chunk(chunk: bytes, s: bytes) -> tuple[bytes, bool]:
    while chunk:
        if not s:
            return b"", False
        head = chunk[:1]
        if head == b"[":
            rune, width = rune_at(s)
            s, chunk = s[width:], chunk[1:]
            matched, chunk = _match_class(chunk, rune)
            if not matched:
                return b"", False
            continue
        if head == b"?":
            s, chunk = s[rune_at(s)[1] :], chunk[1:]
            continue
        if head == b"\\":
            chunk = chunk[1:]
            if not chunk:
                raise BadPattern("a trailing backslash")
        if chunk[:1] != s[:1]:
            return b"", False
        s, chunk = s[1:], chunk[1:]
    return s, True


def _match_class(chunk: bytes, rune: int) -> tuple[bool, bytes]:
    """Whether ``rune`` is in the class ``chunk`` starts with (after its ``[``), and the chunk after ``]``."""
    wanted = True
    if chunk[:1] == b"^":
        wanted, chunk = False, chunk[1:]
    found, ranges = False, 0
    while True:
        if chunk[:1] == b"]" and ranges > 0:
            return found == wanted, chunk[1:]
        low, chunk = _class_char(chunk)
        high = low
        if chunk[:1] == b"-":
            high, chunk = _class_char(chunk[1:])
        if low <= rune <= high:
            found = True
        ranges += 1


def _class_char(chunk: bytes) -> tuple[int, bytes]:
    if not chunk or chunk[:1] in (b"-", b"]"):
        raise BadPattern("an empty or malformed character class")
    if chunk[:1] == b"\\":
        chunk = chunk[1:]
        if not chunk:
            raise BadPattern("a trailing backslash in a character class")
    rune, width = rune_at(chunk)
    if rune == 0xFFFD and width == 1:
        raise BadPattern("an invalid character in a character class")
    rest = chunk[width:]
    if not rest:
        raise BadPattern("an unclosed character class")
    return rune, rest
