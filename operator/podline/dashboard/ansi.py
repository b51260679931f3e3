"""A step's output as styled text: ANSI SGR colour codes parsed into segments of plain text. Pure.

Everything a step prints stays text: the page puts each segment's ``text`` into a DOM text node, never into
markup, and a segment's colours are either a palette index (``c0``…``c15``, styled by the page's CSS) or a
``#rrggbb`` made here from numbers, so nothing a step prints can become a class, a style or an element.
Escape sequences other than SGR (cursor moves, erasing, window titles) are dropped. Output arrives in
chunks that may cut a sequence in two: ``Decoder`` keeps the unfinished tail and the style between chunks.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

# CSI (ESC [ params final), OSC (ESC ] … BEL or ESC \), charset designations (ESC ( B) and other escapes.
_SEQUENCE = re.compile(
    r"\x1b\[([0-9;:?<=>]*)([ -/]*[@-~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[ -/]+[0-~]|\x1b[@-Z\\-_]"
)
_UNFINISHED = re.compile(r"\x1b(?:\[[0-9;:?<=>]*[ -/]*|\][^\x07\x1b]*|[ -/]*)$")  # a sequence cut at the end
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # control characters left after parsing (not \t, \n)
_LEVELS = (0, 95, 135, 175, 215, 255)  # the xterm 256-colour cube


@dataclass(frozen=True)
class Style:
    bold: bool = False
    dim: bool = False
    italic: bool = False
    underline: bool = False
    fg: str | None = None  # "c0".."c15" or "#rrggbb"
    bg: str | None = None


PLAIN = Style()


@dataclass(frozen=True)
class Segment:
    text: str
    style: Style = PLAIN

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"t": self.text}
        for name in ("bold", "dim", "italic", "underline", "fg", "bg"):
            value = getattr(self.style, name)
            if value:
                out[name] = value
        return out


def colour_256(n: int) -> str:
    """The xterm colour of a 256-colour index: the 16 named ones by name, the cube and greys as hex."""
    if n < 16:
        return f"c{n}"
    if n < 232:
        n -= 16
        r, g, b = _LEVELS[n // 36], _LEVELS[n // 6 % 6], _LEVELS[n % 6]
    else:
        r = g = b = 8 + 10 * (n - 232)
    return f"#{r:02x}{g:02x}{b:02x}"


def _extended(params: list[int], at: int) -> tuple[str | None, int]:
    """``38;5;n`` / ``38;2;r;g;b`` (and 48): the colour and the index after it; None if malformed."""
    mode = params[at + 1] if at + 1 < len(params) else None
    if mode == 5 and at + 2 < len(params) and 0 <= params[at + 2] <= 255:
        return colour_256(params[at + 2]), at + 3
    if mode == 2 and at + 4 < len(params):
        r, g, b = (min(255, max(0, v)) for v in params[at + 2 : at + 5])
        return f"#{r:02x}{g:02x}{b:02x}", at + 5
    return None, len(params)  # what follows cannot be read: ignore the rest, as terminals do


_FLAGS: dict[int, tuple[str, bool]] = {1: ("bold", True), 2: ("dim", True), 3: ("italic", True)}
_FLAGS |= {4: ("underline", True), 23: ("italic", False), 24: ("underline", False)}


def apply_sgr(style: Style, raw: str) -> Style:
    """The style after one SGR sequence's parameters (``"1;31"``; empty means reset)."""
    try:
        params = [int(p) if p else 0 for p in re.split(r"[;:]", raw)] if raw else [0]
    except ValueError:
        return style
    state: dict[str, Any] = asdict(style)
    i = 0
    while i < len(params):
        p, i = params[i], i + 1
        if p == 0:
            state = asdict(PLAIN)
        elif p in _FLAGS:
            state[_FLAGS[p][0]] = _FLAGS[p][1]
        elif p == 22:  # normal intensity: neither bold nor dim
            state.update(bold=False, dim=False)
        elif 30 <= p <= 37 or 90 <= p <= 97:
            state["fg"] = f"c{p - 30 if p < 90 else p - 82}"
        elif 40 <= p <= 47 or 100 <= p <= 107:
            state["bg"] = f"c{p - 40 if p < 100 else p - 92}"
        elif p in (38, 48):
            colour, i = _extended(params, i - 1)
            if colour is not None:
                state["fg" if p == 38 else "bg"] = colour
        elif p in (39, 49):
            state["fg" if p == 39 else "bg"] = None
    return Style(**state)


class Decoder:
    """Turns a stream of output chunks into segments, carrying the style and a cut sequence over."""

    def __init__(self) -> None:
        self.style = PLAIN
        self._pending = ""

    def feed(self, chunk: str, *, final: bool = False) -> list[Segment]:
        text = self._pending + chunk
        self._pending = ""
        cut = _UNFINISHED.search(text)
        if cut:  # kept for the next chunk; at the end, dropped
            text, self._pending = text[: cut.start()], "" if final else text[cut.start() :]
        segments: list[Segment] = []
        at = 0
        for match in _SEQUENCE.finditer(text):
            self._emit(segments, text[at : match.start()])
            if match.group(2) == "m":
                self.style = apply_sgr(self.style, match.group(1) or "")
            at = match.end()
        self._emit(segments, text[at:])
        return segments

    def _emit(self, segments: list[Segment], text: str) -> None:
        text = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\x1b", ""))
        if not text:
            return
        if segments and segments[-1].style == self.style:
            segments[-1] = Segment(segments[-1].text + text, self.style)
        else:
            segments.append(Segment(text, self.style))


def decode(text: str) -> list[Segment]:
    """A whole output at once."""
    return Decoder().feed(text, final=True)
