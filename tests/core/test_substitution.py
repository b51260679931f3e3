"""Drone's ``${…}`` substitution, pinned to drone/envsubst v1.0.3 (the version drone-runner-docker's and
drone-runner-kube's ``go.mod`` require) and to runner-go's substitution function
(drone/runner-go ``pipeline/runtime/runner.go``: unknown names are empty, a value with a newline is ``%q``-quoted).

Cases are written here from the behaviour of those files (envsubst ``parse/parse.go``, ``parse/scan.go``,
``funcs.go``, ``path/match.go``); during development they were also checked against the Go library itself.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from podline.core import errors, expansions, expressions, substitution

VARS = {
    "DRONE_COMMIT_SHA": "0123456789abcdef0123456789abcdef01234567",
    "DRONE_BRANCH": "feature/login-form",
    "DRONE_TAG": "v1.2.3",
    "FILE": "bash.string.txt",
    "PATH_NAME": "/home/bozo/ideas/thoughts.for.today",
    "Z": "abcABC123ABCabc",
    "MIXED": "abcdEFGH28ij",
    "EMPTY": "",
    "UNICODE": "été",
    "LINES": 'one\n"two"\t\\',
}
LOOKUP = substitution.lookup_of(VARS)


def sub(text: str) -> str:
    return substitution.substitute(text, LOOKUP)


# envsubst funcs.go and parse/parse.go: every operation the parser knows.
OPERATIONS = [
    ("plain", "${DRONE_TAG}", "v1.2.3"),
    ("in text", "img:${DRONE_TAG}-x", "img:v1.2.3-x"),
    ("length", "${#MIXED}", "12"),
    ("length counts bytes, as Go", "${#UNICODE}", "5"),
    ("upper first", "${MIXED^}", "AbcdEFGH28ij"),
    ("upper", "${MIXED^^}", "ABCDEFGH28IJ"),
    ("lower first", "${Z,}", "abcABC123ABCabc"),
    ("lower", "${MIXED,,}", "abcdefgh28ij"),
    ("unknown casing pair is the value", "${MIXED,^}", "abcdEFGH28ij"),
    ("substring from", "${PATH_NAME:11}", "ideas/thoughts.for.today"),
    ("substring from, length", "${PATH_NAME:11:5}", "ideas"),
    ("short sha", "${DRONE_COMMIT_SHA:0:8}", "01234567"),
    ("':-' before a number is a default, not an offset", "${DRONE_TAG:-2}", "v1.2.3"),
    ("negative offset via a leading space is not a number", "${DRONE_TAG: -2}", "v1.2.3"),
    ("offset beyond the end", "${DRONE_TAG:9}", ""),
    ("length beyond the end", "${DRONE_TAG:1:99}", "1.2.3"),
    ("offset and length beyond the end", "${DRONE_TAG:9:1}", ""),
    ("unparsable offset keeps the value", "${DRONE_TAG:x}", "v1.2.3"),
    ("plus sign is a number to Go", "${DRONE_TAG:+1}", "v1.2.3"),  # ':+' is a default too
    ("shortest prefix", "${FILE#*.}", "string.txt"),
    ("longest prefix", "${FILE##*.}", "txt"),
    ("shortest suffix", "${FILE%.*}", "bash.string"),
    ("longest suffix", "${FILE%%.*}", "bash"),
    ("star matches slashes", "${PATH_NAME#*/}", "home/bozo/ideas/thoughts.for.today"),
    ("longest star matches slashes", "${PATH_NAME##*/}", "thoughts.for.today"),
    ("no match keeps the value", "${FILE#x*}", "bash.string.txt"),
    ("malformed pattern keeps the value", "${FILE#[}", "bash.string.txt"),
    ("class", "${FILE#[a-c]}", "ash.string.txt"),
    ("negated class", "${FILE#[^x]}", "ash.string.txt"),
    ("replace first", "${Z/abc/xyz}", "xyzABC123ABCabc"),
    ("replace all", "${Z//abc/xyz}", "xyzABC123ABCxyz"),
    ("replace prefix", "${Z/#abc/XYZ}", "XYZABC123ABCabc"),
    ("replace suffix", "${Z/%abc/XYZ}", "abcABC123ABCXYZ"),
    ("delete first", "${Z/abc/}", "ABC123ABCabc"),
    ("prefix without replacement keeps the value", "${Z/#abc/}", "abcABC123ABCabc"),
    ("escaped slash in a pattern", "${DRONE_BRANCH/\\//-}", "feature-login-form"),
    ("escaped slash, all", "${PATH_NAME//\\//-}", "-home-bozo-ideas-thoughts.for.today"),
    ("default unused", "${DRONE_TAG=latest}", "v1.2.3"),
    ("default used", "${NOPE=latest}", "latest"),
    ("default for empty, too", "${EMPTY=latest}", "latest"),
    (":= default", "${NOPE:=x}", "x"),
    (":- default", "${NOPE:-x}", "x"),
    (":+ is a default in envsubst", "${NOPE:+x}", "x"),
    (":? is a default in envsubst", "${NOPE:?x}", "x"),
    ("nested default", "${NOPE=${DRONE_TAG}}", "v1.2.3"),
    ("default with text around nested", "${NOPE=pre-${DRONE_TAG}-post}", "pre-v1.2.3-post"),
    ("nested operation", "${NOPE=${MIXED^^}}", "ABCDEFGH28IJ"),
    ("empty default", "${NOPE:-}", ""),
]


@pytest.mark.parametrize(("text", "want"), [c[1:] for c in OPERATIONS], ids=[c[0] for c in OPERATIONS])
def test_operations(text: str, want: str) -> None:
    assert sub(text) == want


# envsubst parse/scan.go (v1.0.3: escapes are read outside expressions too) and runner-go's lookup function.
ESCAPES_AND_UNKNOWN = [
    ("unknown variable is empty", "a${NOPE}b", "ab"),
    ("$NAME is text", "echo $HOME $DRONE_TAG", "echo $HOME $DRONE_TAG"),
    ("lone dollar", "cost: 5$", "cost: 5$"),
    ("$$ is a dollar", "echo $$HOME", "echo $HOME"),
    ("$${...} reaches the shell", "-p=$${DOCKER_PASSWORD}", "-p=${DOCKER_PASSWORD}"),
    ("$$$ then an expression", "$$${DRONE_TAG}", "$v1.2.3"),
    ("backslash backslash is one backslash", "a\\\\b", "a\\b"),
    ("backslash slash is a slash", "sed 's/\\//-/g'", "sed 's///-/g'"),
    ("other backslashes stay", 'echo "\\$x \\n"', 'echo "\\$x \\n"'),
    (
        "envsubst's own mixed case",
        "t ${MIXED}$${var$${MIXED}$MIXED${MIXED}",
        "t abcdEFGH28ij${var${MIXED}$MIXEDabcdEFGH28ij",
    ),
    ("newline value is Go-quoted", "msg: ${LINES}", 'msg: "one\\n\\"two\\"\\t\\\\"'),
    ("no dollar, no backslash: unchanged", "plain text: {}", "plain text: {}"),
]


@pytest.mark.parametrize(
    ("text", "want"), [c[1:] for c in ESCAPES_AND_UNKNOWN], ids=[c[0] for c in ESCAPES_AND_UNKNOWN]
)
def test_escapes_and_unknown_variables(text: str, want: str) -> None:
    assert sub(text) == want


# envsubst parse/parse.go's errors (v1.0.3 names them; expressions.py parses); Drone fails the run with the message.
ERRORS = [
    ("${", expressions.BAD_VARIABLE_NAME),
    ("${}", expressions.BAD_VARIABLE_NAME),
    ("${ DRONE_TAG}", expressions.BAD_VARIABLE_NAME),
    ("${DRONE_TAG", expressions.MISSING_CLOSING_BRACE),
    ("${DRONE_TAG foo}", expressions.MISSING_CLOSING_BRACE),
    ("${DRONE_TAG-default}", expressions.MISSING_CLOSING_BRACE),  # bash's '-' is not envsubst's
    ("${DRONE_TAG+alt}", expressions.MISSING_CLOSING_BRACE),
    ("${DRONE_TAG:}", expressions.BAD_FUNCTION_ARGUMENT),
    ("${DRONE_TAG/x}", expressions.BAD_SUBSTITUTION),
    ("${#}", expressions.BAD_SUBSTITUTION),
    ("${DRONE_TAG#x${FILE}y}", expressions.BAD_SUBSTITUTION),
    ("${DRONE_TAG^x}", expressions.BAD_SUBSTITUTION),
    ("${DRONE_TAG:=", expressions.BAD_FUNCTION_ARGUMENT),
]


@pytest.mark.parametrize(("text", "message"), ERRORS, ids=[t for t, _ in ERRORS])
def test_malformed_expressions_fail_with_envsubsts_message(text: str, message: str) -> None:
    with pytest.raises(substitution.SubstitutionError) as caught:
        sub(text)
    assert str(caught.value) == message


def test_a_negative_length_is_refused_where_drones_runner_would_crash() -> None:
    # funcs.go toSubstr slices s[pos:pos+length]: a negative length panics in Go.
    with pytest.raises(substitution.SubstitutionError, match="negative substring length"):
        sub("${DRONE_TAG:2:-1}")


GO_QUOTES = [
    ("a\nb", '"a\\nb"'),
    ('say "hi"', '"say \\"hi\\""'),
    ("tab\tbell\a", '"tab\\tbell\\a"'),
    ("\x01\x7f", '"\\x01\\x7f"'),
    ("été ✓", '"été ✓"'),
    ("\u200b", '"\\u200b"'),
    ("\U000e0001", '"\\U000e0001"'),
]


@pytest.mark.parametrize(("value", "quoted"), GO_QUOTES, ids=[q for _, q in GO_QUOTES])
def test_go_quote_is_strconv_quote(value: str, quoted: str) -> None:
    assert substitution.go_quote(value) == quoted


# path/match.go: Go's path.Match, except that * and ? cross slashes.
MATCHES = [
    (b"*", b"a/b", True),
    (b"a*", b"a/b/c", True),
    (b"*c", b"a/b/c", True),
    (b"a?c", b"a/c", True),
    (b"a[b-d]e", b"ace", True),
    (b"a[^b-d]e", b"ace", False),
    (b"a\\*", b"a*", True),
    (b"a\\*", b"ab", False),
    (b"*.", b"bash.", True),
    (b"", b"", True),
    (b"", b"a", False),
]


@pytest.mark.parametrize(("pattern", "name", "want"), MATCHES, ids=[repr(m[:2]) for m in MATCHES])
def test_pattern_matching(pattern: bytes, name: bytes, want: bool) -> None:
    assert expansions.match(pattern, name) is want


@pytest.mark.parametrize("pattern", [b"[", b"[]", b"a\\", b"[a-", b"[\\"])
def test_malformed_patterns(pattern: bytes) -> None:
    with pytest.raises(expansions.BadPattern):
        expansions.match(pattern, b"abc")


# --- applied to a spec --------------------------------------------------------------------------------------


def test_apply_substitutes_every_string_key_and_value() -> None:
    raw: dict[str, Any] = {
        "steps": [
            {
                "name": "build-${DRONE_TAG}",
                "image": "golang:${NOPE=1.22}",
                "commands": ["echo ${DRONE_COMMIT_SHA:0:8}", "echo $${HOME}"],
                "environment": {"TAG_${DRONE_TAG##v}": "${DRONE_TAG}", "N": 3, "B": True},
                "settings": {"tags": ["${DRONE_TAG}", "latest"], "deep": {"x": ["$$"]}},
            }
        ]
    }
    out = substitution.apply(raw, LOOKUP)
    step = out["steps"][0]
    assert step["name"] == "build-v1.2.3"
    assert step["image"] == "golang:1.22"
    assert step["commands"] == ["echo 01234567", "echo ${HOME}"]
    assert step["environment"] == {"TAG_1.2.3": "v1.2.3", "N": 3, "B": True}
    assert step["settings"] == {"tags": ["v1.2.3", "latest"], "deep": {"x": ["$"]}}
    assert raw["steps"][0]["commands"][0] == "echo ${DRONE_COMMIT_SHA:0:8}", "the input is not changed"


def test_apply_names_every_malformed_field() -> None:
    raw = {"steps": [{"name": "a", "image": "x:${", "commands": ["ok", "echo ${DRONE_TAG"]}]}
    with pytest.raises(errors.InvalidPipeline) as caught:
        substitution.apply(raw, LOOKUP)
    assert [p.path for p in caught.value.problems] == ["spec.steps[0].image", "spec.steps[0].commands[1]"]
    assert "missing closing brace" in caught.value.problems[1].message
    assert "$$" in caught.value.problems[1].message


def test_apply_refuses_two_keys_that_become_one() -> None:
    raw = {"environment": {"A${NOPE}": "1", "A": "2"}}
    with pytest.raises(errors.InvalidPipeline, match="becomes 'A' after substitution"):
        substitution.apply(raw, LOOKUP)


# --- properties -----------------------------------------------------------------------------------------------

NO_SPECIALS = st.text(st.characters(blacklist_characters="$\\", blacklist_categories=("Cs",)))


@settings(max_examples=300)
@given(NO_SPECIALS)
def test_text_without_dollar_or_backslash_is_unchanged(text: str) -> None:
    assert sub(text) == text


@settings(max_examples=300)
@given(NO_SPECIALS)
def test_doubled_dollars_become_single_dollars(text: str) -> None:
    """Escaping every ``$`` as ``$$`` gives back the text, whatever expressions it spells."""
    assert sub(text.replace("{", "${").replace("$", "$$")) == text.replace("{", "${")


@settings(max_examples=300)
@given(st.text(st.characters(blacklist_characters="\\", blacklist_categories=("Cs",))))
def test_escaped_text_round_trips(text: str) -> None:
    assert sub(text.replace("$", "$$")) == text


@settings(max_examples=200)
@given(
    st.dictionaries(st.from_regex(r"[A-Z_][A-Z0-9_]{0,8}", fullmatch=True), NO_SPECIALS, max_size=4),
    NO_SPECIALS,
)
def test_a_variable_is_its_value_and_unknown_ones_are_empty(variables: dict[str, str], other: str) -> None:
    lookup = substitution.lookup_of(variables)
    for name, value in variables.items():
        want = substitution.go_quote(value) if "\n" in value else value
        assert substitution.substitute(f"<${{{name}}}>", lookup) == f"<{want}>"
    assert substitution.substitute("${NOT_SET_ANYWHERE}" + other, lookup) == other


def test_long_text_is_substituted_like_short_text() -> None:
    """Strings above the parse cache's length limit take the uncached path, with the same result."""
    line = "echo ${DRONE_TAG##v} $${HOME}\n"
    long_text = line * (5000 // len(line) + 1)
    assert len(long_text) > 4096
    assert sub(long_text) == "echo 1.2.3 ${HOME}\n" * long_text.count("\n")
