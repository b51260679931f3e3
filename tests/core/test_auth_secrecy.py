"""No credential ever leaves auths through a message, a warning, origins or a repr.

Every value below carries the marker ``s3cr3t``; base64 forms are checked too. Where a conversion
succeeds, the credentials must reach the output document, so the canaries are known to be live.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from podline.core import auths, errors

MARK = "s3cr3t"
USER = f"CANARY-{MARK}-user"
PASSWORD = f"CANARY-{MARK}-password"
TOKEN = f"CANARY-{MARK}-token"
AUTH = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def opaque(value: Any, name: str = "dockerconfig") -> auths.SourceSecret:
    return auths.SourceSecret(name, "Opaque", {"dockerconfig": json.dumps(value).encode()})


def raw(data: bytes, name: str = "dockerconfig") -> auths.SourceSecret:
    return auths.SourceSecret(name, "Opaque", {"dockerconfig": data})


FORBIDDEN = [MARK, AUTH, AUTH.rstrip("="), b64(USER), b64(PASSWORD), b64(TOKEN)]

GOOD = {"auths": {"r.io": {"auth": AUTH}}}

CASES = [
    # Conversions that succeed, some with warnings.
    opaque(GOOD),
    opaque({"auths": {"r.io": {"username": USER, "password": PASSWORD, "email": f"{MARK}@example.com"}}}),
    opaque({"auths": {"r.io": {"auth": AUTH, "identitytoken": TOKEN, "registrytoken": TOKEN}}}),
    opaque({"auths": {"r.io": {"auth": AUTH, "username": "someone-else", "password": PASSWORD}}}),
    opaque(
        {
            "auths": {"r.io": {"auth": AUTH}, "docker.io": {}},
            "credsStore": "desktop",
            "credHelpers": {"gcr.io": "gcloud"},
        }
    ),
    opaque(
        {"auths": {"https://index.docker.io/v1/": {"auth": AUTH}, "docker.io": {"auth": b64(f"x:{TOKEN}")}}}
    ),
    opaque({"r.io": {"auth": AUTH, "email": MARK}}),
    # Conversions that fail, each with a canary where the bad value is.
    opaque({"auths": {"r.io": {"auth": TOKEN}}}),  # not base64
    opaque({"auths": {"r.io": {"auth": b64(TOKEN)}}}),  # no ":"
    opaque({"auths": {"r.io": {"auth": b64(f":{PASSWORD}")}}}),  # empty user
    opaque({"auths": {"r.io": {"auth": base64.b64encode(b"\xff" + PASSWORD.encode()).decode()}}}),
    opaque({"auths": {"r.io": {"username": USER}}}),
    opaque({"auths": {"r.io": {"password": PASSWORD}}}),
    opaque({"auths": {"r.io": {"username": f"{USER}:x", "password": PASSWORD}}}),
    opaque({"auths": {"r.io": {"identitytoken": TOKEN, "registrytoken": TOKEN}}}),
    opaque({"auths": {"r.io": {"email": MARK}}}),
    opaque({"auths": {"r.io": {"auth": [AUTH]}}}),
    opaque({"auths": {"r.io": PASSWORD}}),
    opaque({"auths": [PASSWORD]}),
    opaque({"auths": PASSWORD}),
    opaque({"auth": PASSWORD}),
    opaque([USER, PASSWORD]),
    opaque(PASSWORD),
    opaque({"auths": {f"https://{USER}:{PASSWORD}@r.io/v2/": {"auth": AUTH}}}),  # credentials in the key
    opaque({"auths": {f"{USER}@r.io": {"auth": AUTH}}}),
    opaque({"credsStore": "desktop", "auths": {"r.io": {}}}),
    raw(f'{{"auths": {{"r.io": {{"auth": "{AUTH}"'.encode()),  # truncated JSON
    raw(f'{{"auths": {{"r.io": {{"auth": "{AUTH}\x01"}}}}}}'.encode()),  # control character in a string
    raw(f'{{"auths": {{"r.io": {{"auth": "{AUTH}"}}}}}} {PASSWORD}'.encode()),  # extra data
    raw(PASSWORD.encode() + b"\xff"),  # not UTF-8
    raw(b64(json.dumps(GOOD)).encode()),  # base64 twice
    raw(json.dumps(GOOD).encode() + b"\n" + b64(PASSWORD).encode()),
    auths.SourceSecret("dockerconfig", "Opaque", {"a": AUTH.encode(), "b": PASSWORD.encode()}),
    auths.SourceSecret(
        "dockerconfig", "Opaque", {"config.json": AUTH.encode(), "dockerconfig": AUTH.encode()}
    ),
    auths.SourceSecret(
        "dockerconfig", "kubernetes.io/dockerconfigjson", {"other": json.dumps(GOOD).encode()}
    ),
]


def texts_of(source: auths.SourceSecret) -> tuple[bool, list[str]]:
    """Everything convert lets out besides the document itself, and whether it succeeded."""
    shown = [repr(source), str(source)]
    try:
        credentials = auths.convert([source])
    except errors.BadRegistryAuth as error:
        shown += [str(error), repr(error), repr(error.args), *error.lines(), repr(error.problems)]
        return False, shown
    shown += [*credentials.warnings, *credentials.origins, *credentials.origins.values()]
    shown += [repr(credentials), str(credentials)]
    return True, shown


@pytest.mark.parametrize("source", CASES)
def test_no_credential_appears_in_anything_convert_reports(source: auths.SourceSecret) -> None:
    _, shown = texts_of(source)
    for text in shown:
        for canary in FORBIDDEN:
            assert canary not in text


@pytest.mark.parametrize("source", CASES)
def test_what_converts_carries_its_canaries_into_the_document_only(source: auths.SourceSecret) -> None:
    ok, _ = texts_of(source)
    if ok:
        assert MARK in auths.convert([source]).to_json_bytes().decode()


def test_the_cases_cover_both_outcomes() -> None:
    outcomes = [texts_of(source)[0] for source in CASES]
    assert outcomes.count(True) == 7
    assert outcomes.count(False) == len(CASES) - 7


def test_a_key_with_user_information_is_named_by_its_host_alone() -> None:
    with pytest.raises(errors.BadRegistryAuth) as caught:
        auths.convert([opaque({"auths": {f"https://{USER}:{PASSWORD}@r.io/v2/": {"auth": AUTH}}})])
    assert caught.value.problems[0].message == (
        'registry key "…@r.io/v2/" is not a registry host (no spaces or any of ?#@%\\)'
    )


# ---- properties ---------------------------------------------------------------------------------------

_values = st.one_of(
    st.sampled_from(
        [
            USER,
            PASSWORD,
            TOKEN,
            AUTH,
            AUTH.rstrip("="),
            b64(f"{USER}:{PASSWORD}"),
            b64(PASSWORD),
            b64(f":{PASSWORD}"),
            "",
            None,
            7,
            True,
        ]
    ),
    st.lists(st.sampled_from([USER, PASSWORD]), max_size=2),
)
_fields = st.sampled_from(["auth", "username", "password", "identitytoken", "registrytoken", "email", "x"])
_entries = st.one_of(st.dictionaries(_fields, _values, max_size=4), _values)
_keys = st.sampled_from(
    [
        "docker.io",
        "https://index.docker.io/v1/",
        "r.io",
        "r.io/team",
        "localhost:5000",
        "",
        "bad key",
        f"{USER}:{PASSWORD}@r.io",
    ]
)
_documents = st.one_of(
    st.builds(lambda a: {"auths": a}, st.dictionaries(_keys, _entries, max_size=4)),
    st.dictionaries(_keys, _entries, max_size=3),
    st.builds(
        lambda a, s: {"auths": a, "credsStore": s},
        st.dictionaries(_keys, _entries, max_size=2),
        st.sampled_from(["desktop", PASSWORD]),
    ),
    _values,
)


@settings(deadline=None, max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(_documents, st.sampled_from(["json", "twice", "truncated"]))
def test_no_credential_leaks_from_any_document(document: Any, encoding: str) -> None:
    text = json.dumps(document)
    data = {"json": text, "twice": b64(text), "truncated": text[:-1]}[encoding].encode()
    _, shown = texts_of(raw(data))
    for item in shown:
        for canary in FORBIDDEN:
            assert canary not in item
