"""A step's output → styled text segments: colours parsed, everything else text (no cluster)."""

from __future__ import annotations

import pytest
from podline.dashboard import ansi

RED = ansi.Style(fg="c1")


def _pairs(segments: list[ansi.Segment]) -> list[tuple[str, ansi.Style]]:
    return [(s.text, s.style) for s in segments]


def test_plain_text_is_one_plain_segment() -> None:
    assert _pairs(ansi.decode("hello\nworld\n")) == [("hello\nworld\n", ansi.PLAIN)]


def test_markup_is_text_not_parsed() -> None:
    text = "<script>alert(1)</script> &amp; <b>"
    assert _pairs(ansi.decode(text)) == [(text, ansi.PLAIN)]


@pytest.mark.parametrize(
    ("raw", "style"),
    [
        ("\x1b[31m", ansi.Style(fg="c1")),
        ("\x1b[1;32m", ansi.Style(bold=True, fg="c2")),
        ("\x1b[91m", ansi.Style(fg="c9")),  # bright red
        ("\x1b[44m", ansi.Style(bg="c4")),
        ("\x1b[103m", ansi.Style(bg="c11")),
        ("\x1b[38;5;196m", ansi.Style(fg="#ff0000")),  # the 256-colour cube
        ("\x1b[38;5;3m", ansi.Style(fg="c3")),  # its first 16 are the named ones
        ("\x1b[48;5;232m", ansi.Style(bg="#080808")),  # greys
        ("\x1b[38;2;1;2;300m", ansi.Style(fg="#0102ff")),  # true colour, clamped
        ("\x1b[2;3;4m", ansi.Style(dim=True, italic=True, underline=True)),
        ("\x1b[38;5m", ansi.PLAIN),  # malformed: ignored
        ("\x1b[38;9;1m", ansi.PLAIN),
    ],
)
def test_sgr_codes_set_the_style(raw: str, style: ansi.Style) -> None:
    assert _pairs(ansi.decode(raw + "x")) == [("x", style)]


def test_reset_and_defaults_end_the_style() -> None:
    segments = ansi.decode("\x1b[1;31mred\x1b[39m bold\x1b[22m plain\x1b[0m\x1b[41mbg\x1b[mend")
    assert _pairs(segments) == [
        ("red", ansi.Style(bold=True, fg="c1")),
        (" bold", ansi.Style(bold=True)),
        (" plain", ansi.PLAIN),
        ("bg", ansi.Style(bg="c1")),
        ("end", ansi.PLAIN),
    ]


def test_other_escape_sequences_and_control_characters_are_dropped() -> None:
    raw = "a\x1b[2Kb\x1b[1Ac\x1b]0;title\x07d\x1b]8;;http://x\x1b\\e\x07f\x00g\r\nh\x1b(Bi"
    assert _pairs(ansi.decode(raw)) == [("abcdefg\nhi", ansi.PLAIN)]


def test_tabs_and_newlines_stay() -> None:
    assert ansi.decode("a\tb\n")[0].text == "a\tb\n"


@pytest.mark.parametrize("cut", range(1, len("\x1b[1;31m")))
def test_a_sequence_cut_between_chunks_is_kept_until_it_is_complete(cut: int) -> None:
    decoder = ansi.Decoder()
    code = "\x1b[1;31m"
    first = decoder.feed("a" + code[:cut])
    second = decoder.feed(code[cut:] + "b")
    assert _pairs(first) == [("a", ansi.PLAIN)]
    assert _pairs(second) == [("b", ansi.Style(bold=True, fg="c1"))]


def test_the_style_carries_over_chunks() -> None:
    decoder = ansi.Decoder()
    decoder.feed("\x1b[31mred")
    assert _pairs(decoder.feed("still")) == [("still", RED)]


def test_a_cut_sequence_at_the_very_end_is_dropped_not_shown() -> None:
    decoder = ansi.Decoder()
    assert _pairs(decoder.feed("a\x1b[3")) == [("a", ansi.PLAIN)]
    assert decoder.feed("", final=True) == []


def test_segments_serialise_only_what_is_set() -> None:
    assert ansi.Segment("x", ansi.Style(bold=True, fg="#010203")).to_json() == {
        "t": "x",
        "bold": True,
        "fg": "#010203",
    }
    assert ansi.Segment("<i>").to_json() == {"t": "<i>"}
