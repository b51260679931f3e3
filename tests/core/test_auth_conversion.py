"""Registry auth: image_pull_secrets → one kubernetes.io/dockerconfigjson document."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from podline.core import auths, errors

DOCKERCONFIGJSON = "kubernetes.io/dockerconfigjson"
DOCKERCFG = "kubernetes.io/dockercfg"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def doc(value: Any) -> bytes:
    return json.dumps(value).encode()


def secret(name: str = "dockerconfig", type_: str = "Opaque", **data: bytes) -> auths.SourceSecret:
    return auths.SourceSecret(name=name, type=type_, data=data)


def keyed(data: dict[str, bytes], type_: str = "Opaque") -> auths.SourceSecret:
    """A Secret whose key names are no Python identifiers."""
    return auths.SourceSecret(name="dockerconfig", type=type_, data=data)


def opaque(value: Any, *, name: str = "dockerconfig", key: str = "dockerconfig") -> auths.SourceSecret:
    return auths.SourceSecret(name=name, type="Opaque", data={key: doc(value)})


def entry(user: str = "user", password: str = "pass") -> dict[str, str]:
    """An entry as podline writes it."""
    return {"auth": b64(f"{user}:{password}"), "username": user, "password": password}


def auths_of(credentials: auths.Credentials) -> dict[str, Any]:
    return dict(credentials.config["auths"])


# ---- accepted formats ---------------------------------------------------------------------------------

CONFIG = {"auths": {"registry.example.com": {"auth": b64("user:pass")}}}
EXPECTED = {"registry.example.com": entry()}


@pytest.mark.parametrize(
    "source",
    [
        pytest.param(keyed({".dockerconfigjson": doc(CONFIG)}, DOCKERCONFIGJSON), id="dockerconfigjson"),
        pytest.param(keyed({".dockerconfigjson": doc(CONFIG)}), id="opaque-.dockerconfigjson"),
        pytest.param(keyed({"config.json": doc(CONFIG)}), id="opaque-config.json"),
        pytest.param(secret(dockerconfig=doc(CONFIG)), id="opaque-dockerconfig"),
        pytest.param(secret(whatever=doc(CONFIG)), id="opaque-only-key"),
        pytest.param(
            secret(dockerconfig=doc(CONFIG), README=b"not json"), id="opaque-candidate-beside-others"
        ),
        pytest.param(keyed({".dockercfg": doc(CONFIG["auths"])}, DOCKERCFG), id="dockercfg-legacy"),
        pytest.param(keyed({".dockercfg": doc(CONFIG["auths"])}), id="opaque-.dockercfg-legacy"),
        pytest.param(secret(dockerconfig=doc(CONFIG["auths"])), id="opaque-bare-legacy-map"),
        pytest.param(keyed({".dockercfg": doc(CONFIG)}, DOCKERCFG), id="dockercfg-holding-auths"),
        pytest.param(secret(type_="kubernetes.io/basic-auth", cfg=doc(CONFIG)), id="other-type-only-key"),
    ],
)
def test_every_secret_shape_gives_the_same_credentials(source: auths.SourceSecret) -> None:
    credentials = auths.convert([source])
    assert auths_of(credentials) == EXPECTED
    assert credentials.origins == {"registry.example.com": "dockerconfig"}
    assert credentials.warnings == ()


@pytest.mark.parametrize(
    ("raw_entry", "user", "password"),
    [
        ({"auth": b64("user:pass")}, "user", "pass"),
        ({"auth": b64("user:pa:ss")}, "user", "pa:ss"),  # only the first ":" separates
        ({"auth": b64("user:")}, "user", ""),
        ({"auth": b64("user:passw").rstrip("=")}, "user", "passw"),  # unpadded, as the kubelet accepts
        ({"auth": " " + b64("user:pass") + "\n"}, "user", "pass"),
        ({"auth": b64("üser:pässword")}, "üser", "pässword"),
        ({"username": "user", "password": "pass"}, "user", "pass"),
        ({"username": "user", "password": "pass", "auth": ""}, "user", "pass"),
        ({"username": "user", "password": "pass", "auth": None}, "user", "pass"),
        ({"auth": b64("user:pass"), "username": "user", "password": "pass"}, "user", "pass"),
        ({"auth": b64("user:pass"), "email": "me@example.com"}, "user", "pass"),
        ({"auth": b64("user:pass"), "identitytoken": "tok", "registrytoken": "tok"}, "user", "pass"),
        ({"auth": b64("user:pass"), "serveraddress": "https://registry.example.com"}, "user", "pass"),
    ],
)
def test_entries_keep_only_what_the_kubelet_uses(raw_entry: dict[str, Any], user: str, password: str) -> None:
    credentials = auths.convert([opaque({"auths": {"r.example.com": raw_entry}})])
    assert auths_of(credentials) == {"r.example.com": entry(user, password)}
    assert credentials.warnings == ()


def test_a_utf8_byte_order_mark_is_tolerated() -> None:
    credentials = auths.convert([secret(dockerconfig=b"\xef\xbb\xbf" + doc(CONFIG))])
    assert auths_of(credentials) == EXPECTED


def test_one_secret_may_hold_several_registries() -> None:
    config = {
        "auths": {
            "https://index.docker.io/v1/": {"auth": b64("hub:1")},
            "ghcr.io": {"username": "gh", "password": "2"},
            "localhost:5000": {"auth": b64("local:3")},
            "registry.example.com/team": {"auth": b64("team:4")},
        },
        "HttpHeaders": {"User-Agent": "Docker-Client"},
        "psFormat": "table",
    }
    credentials = auths.convert([opaque(config)])
    assert auths_of(credentials) == {
        "docker.io": entry("hub", "1"),
        "ghcr.io": entry("gh", "2"),
        "localhost:5000": entry("local", "3"),
        "registry.example.com/team": entry("team", "4"),
    }
    assert set(credentials.origins.values()) == {"dockerconfig"}


def test_no_secrets_give_empty_credentials() -> None:
    credentials = auths.convert([])
    assert credentials.config == {"auths": {}}
    assert credentials.origins == {}
    assert credentials.warnings == ()
    assert credentials.to_json_bytes() == b'{"auths":{}}'


# ---- output -------------------------------------------------------------------------------------------


def test_the_document_is_compact_sorted_json() -> None:
    credentials = auths.convert([opaque({"auths": {"r.io": {"username": "u", "password": "p"}}})])
    assert credentials.to_json_bytes() == b'{"auths":{"r.io":{"auth":"dTpw","password":"p","username":"u"}}}'


def test_the_document_does_not_depend_on_input_order() -> None:
    forward = {"auths": {"a.io": {"auth": b64("a:1")}, "b.io": {"username": "b", "password": "2"}}}
    backward = {"auths": {"b.io": {"password": "2", "username": "b"}, "a.io": {"auth": b64("a:1")}}}
    assert (
        auths.convert([opaque(forward)]).to_json_bytes() == auths.convert([opaque(backward)]).to_json_bytes()
    )


def test_the_document_is_what_the_kubelet_reads() -> None:
    payload = auths.convert([opaque({"auths": {"r.io": {"auth": b64("user:pa:ss")}}})]).to_json_bytes()
    parsed = json.loads(payload)
    (only,) = parsed["auths"].values()
    assert base64.b64decode(only["auth"]).decode() == "user:pa:ss"
    assert (only["username"], only["password"]) == ("user", "pa:ss")


# ---- merging and warnings -----------------------------------------------------------------------------


def test_secrets_merge_in_order_and_the_later_one_wins_a_clash() -> None:
    first = opaque({"auths": {"docker.io": {"auth": b64("a:1")}, "a.io": {"auth": b64("a:2")}}}, name="a")
    second = opaque({"auths": {"https://index.docker.io/v1/": {"auth": b64("b:1")}}}, name="b")
    credentials = auths.convert([first, second])
    assert auths_of(credentials) == {"docker.io": entry("b", "1"), "a.io": entry("a", "2")}
    assert credentials.origins == {"docker.io": "b", "a.io": "a"}
    assert credentials.warnings == ('registry "docker.io" is in secrets "a" and "b"; using "b"',)


def test_the_same_credential_in_two_secrets_is_no_clash() -> None:
    same = {"auths": {"r.io": {"auth": b64("u:p")}}}
    credentials = auths.convert([opaque(same, name="a"), opaque(same, name="b")])
    assert credentials.origins == {"r.io": "b"}
    assert credentials.warnings == ()


def test_two_spellings_of_one_registry_in_one_secret() -> None:
    config = {
        "auths": {"https://index.docker.io/v1/": {"auth": b64("a:1")}, "docker.io": {"auth": b64("b:2")}}
    }
    credentials = auths.convert([opaque(config)])
    assert auths_of(credentials) == {"docker.io": entry("b", "2")}
    assert credentials.warnings == (
        (
            'secret "dockerconfig": registry keys "https://index.docker.io/v1/" and "docker.io" both mean '
            '"docker.io" and differ; using "docker.io"'
        ),
    )


def test_two_equal_spellings_of_one_registry_are_quiet() -> None:
    config = {
        "auths": {"https://index.docker.io/v1/": {"auth": b64("a:1")}, "docker.io": {"auth": b64("a:1")}}
    }
    assert auths.convert([opaque(config)]).warnings == ()


def test_credential_stores_are_ignored_with_warnings() -> None:
    config = {
        "auths": {"https://index.docker.io/v1/": {}, "ghcr.io": {}, "r.io": {"auth": b64("u:p")}},
        "credsStore": "desktop",
        "credHelpers": {"gcr.io": "gcloud", "123.dkr.ecr.us-east-1.amazonaws.com": "ecr-login"},
    }
    credentials = auths.convert([opaque(config, name="mac")])
    assert auths_of(credentials) == {"r.io": entry("u", "p")}
    assert credentials.warnings == (
        'secret "mac": credsStore "desktop" cannot be used on Kubernetes; ignored',
        (
            'secret "mac": credHelpers for "123.dkr.ecr.us-east-1.amazonaws.com", "gcr.io" cannot be used on '
            "Kubernetes; ignored"
        ),
        (
            'secret "mac": registry "https://index.docker.io/v1/" has an empty entry (its credential lives in a '
            "credential store); ignored"
        ),
        'secret "mac": registry "ghcr.io" has an empty entry (its credential lives in a credential store); ignored',
    )


def test_a_secret_with_nothing_usable_is_skipped_when_another_has_credentials() -> None:
    mac = opaque({"auths": {"docker.io": {}}, "credsStore": "osxkeychain"}, name="mac")
    good = opaque({"auths": {"r.io": {"auth": b64("u:p")}}}, name="good")
    credentials = auths.convert([mac, good])
    assert auths_of(credentials) == {"r.io": entry("u", "p")}
    assert 'secret "mac": no usable registry credentials; ignored' in credentials.warnings


def test_auth_wins_over_disagreeing_username_and_password() -> None:
    raw = {"auth": b64("user:pass"), "username": "other", "password": "other"}
    credentials = auths.convert([opaque({"auths": {"r.io": raw}})])
    assert auths_of(credentials) == {"r.io": entry("user", "pass")}
    assert credentials.warnings == (
        'secret "dockerconfig": registry "r.io": "username"/"password" differ from "auth"; using "auth"',
    )


@pytest.mark.parametrize(
    ("store", "shown"),
    [
        ("osxkeychain", ' "osxkeychain"'),
        ("ecr-login", ' "ecr-login"'),
        ("my-helper", ""),
        ("some thing/odd", ""),
    ],
)
def test_only_well_known_credential_helpers_are_named(store: str, shown: str) -> None:
    config = {"auths": {"r.io": {"auth": b64("u:p")}}, "credsStore": store}
    assert auths.convert([opaque(config)]).warnings == (
        f'secret "dockerconfig": credsStore{shown} cannot be used on Kubernetes; ignored',
    )


# ---- errors -------------------------------------------------------------------------------------------

WHERE = 'image_pull_secrets[0] (secret "dockerconfig")'

MALFORMED = [
    (secret(), "secret has no data"),
    (secret(dockerconfig=b""), 'key "dockerconfig" is empty'),
    (secret(dockerconfig=b"  \n"), 'key "dockerconfig" is empty'),
    (secret(dockerconfig=b"\xff\xfe{}"), 'key "dockerconfig" is not UTF-8 text'),
    (secret(dockerconfig=b"{auths:"), 'key "dockerconfig" is not JSON (Expecting property name'),
    (secret(dockerconfig=b'{"auths": {}} trailing'), 'key "dockerconfig" is not JSON (Extra data at line 1'),
    (secret(dockerconfig=b64(json.dumps(CONFIG)).encode()), "it looks base64-encoded twice"),
    (secret(dockerconfig=b"[" * 100_000), "nested too deeply"),
    (secret(dockerconfig=b"[]"), 'key "dockerconfig" holds JSON an array, not an object'),
    (secret(dockerconfig=b'"text"'), 'key "dockerconfig" holds JSON a string, not an object'),
    (secret(dockerconfig=b"null"), 'key "dockerconfig" holds JSON null, not an object'),
    (
        secret(dockerconfig=b"{}"),
        'key "dockerconfig" has no "auths" object and is not a legacy .dockercfg map',
    ),
    (secret(dockerconfig=doc({"auth": "x"})), 'has no "auths" object'),
    (secret(dockerconfig=doc({"psFormat": "table"})), 'has no "auths" object'),
    (secret(dockerconfig=doc({"HttpHeaders": {"A": "b"}})), 'has no "auths" object'),
    (secret(dockerconfig=doc({"auths": []})), '"auths" holds JSON an array, not an object'),
    (secret(dockerconfig=doc({"auths": "r.io"})), '"auths" holds JSON a string, not an object'),
    (opaque({"auths": {"r.io": "x"}}), 'registry "r.io": entry holds JSON a string, not an object'),
    (opaque({"auths": {"r.io": {"auth": "not base64!"}}}), 'registry "r.io": "auth" is not valid base64'),
    (opaque({"auths": {"r.io": {"auth": "abcde"}}}), 'registry "r.io": "auth" is not valid base64'),
    (
        opaque({"auths": {"r.io": {"auth": b64("nocolon")}}}),
        'registry "r.io": "auth" does not decode to "user:pa',
    ),
    (
        opaque({"auths": {"r.io": {"auth": b64(":pass")}}}),
        'registry "r.io": "auth" decodes to an empty user name',
    ),
    (opaque({"auths": {"r.io": {"auth": base64.b64encode(b"\xffu:p").decode()}}}), "does not decode to text"),
    (opaque({"auths": {"r.io": {"auth": 5}}}), 'registry "r.io": "auth" holds JSON a number, not a string'),
    (opaque({"auths": {"r.io": {"username": ["u"]}}}), '"username" holds JSON an array, not a string'),
    (opaque({"auths": {"r.io": {"username": "u"}}}), 'registry "r.io": has "username" but no "password"'),
    (opaque({"auths": {"r.io": {"password": "p"}}}), 'registry "r.io": has "password" but no "username"'),
    (opaque({"auths": {"r.io": {"username": "u:x", "password": "p"}}}), '"username" contains ":"'),
    (
        opaque({"auths": {"r.io": {"email": "me@example.com"}}}),
        'registry "r.io": has no credential; give "auth"',
    ),
    (opaque({"auths": {"r.io": {"auth": ""}}}), 'registry "r.io": has no credential'),
    (
        opaque({"auths": {"r.io": {"identitytoken": "t"}}}),
        'registry "r.io": has only "identitytoken", which the kubelet ignores in pull secrets',
    ),
    (
        opaque({"auths": {"r.io": {"identitytoken": "t", "registrytoken": "t"}}}),
        'has only "identitytoken" and "registrytoken"',
    ),
    (opaque({"auths": {"": {"auth": b64("u:p")}}}), 'registry key "" has no host'),
    (opaque({"auths": {"https:///v2/": {"auth": b64("u:p")}}}), 'registry key "https:///v2/" has no host'),
    (opaque({"auths": {"r.io?x": {"auth": b64("u:p")}}}), 'registry key "r.io?x" is not a registry host'),
    (
        opaque({"auths": {"my registry": {"auth": b64("u:p")}}}),
        'registry key "my registry" is not a registry host',
    ),
    (
        opaque({"auths": {"r[a-z].io": {"auth": b64("u:p")}}}),
        "brackets are only allowed around an IPv6 address",
    ),
    (
        secret(type_=DOCKERCONFIGJSON, dockerconfig=doc(CONFIG)),
        'secret of type "kubernetes.io/dockerconfigjson" has no key ".dockerconfigjson"',
    ),
    (
        secret(type_=DOCKERCFG, dockerconfig=doc(CONFIG)),
        'secret of type "kubernetes.io/dockercfg" has no key ".dockercfg"',
    ),
    (
        keyed({".dockerconfigjson": doc(CONFIG), "config.json": doc(CONFIG)}),
        'several keys could hold the Docker config (".dockerconfigjson", "config.json"); keep only one',
    ),
    (
        secret(username=b"u", password=b"p"),
        (
            'no key named ".dockerconfigjson", "config.json", "dockerconfig" or ".dockercfg", and several other keys '
            '("password", "username"); cannot tell which holds the Docker config'
        ),
    ),
]


@pytest.mark.parametrize(("source", "message"), MALFORMED)
def test_malformed_secrets_are_reported_by_secret_registry_and_reason(
    source: auths.SourceSecret, message: str
) -> None:
    with pytest.raises(errors.BadRegistryAuth) as caught:
        auths.convert([source])
    (problem,) = caught.value.problems
    assert problem.path == WHERE
    assert message in problem.message


def test_every_finding_is_its_own_problem() -> None:
    good = opaque({"auths": {"ok.io": {"auth": b64("u:p")}}}, name="good")
    bad = opaque(
        {"auths": {"a.io": {"auth": "!!"}, "b.io": {"username": "u"}, "c.io": {"auth": b64("u:p")}}},
        name="bad",
    )
    with pytest.raises(errors.BadRegistryAuth) as caught:
        auths.convert([good, bad, secret(name="empty")])
    assert caught.value.lines() == [
        'image_pull_secrets[1] (secret "bad"): registry "a.io": "auth" is not valid base64',
        'image_pull_secrets[1] (secret "bad"): registry "b.io": has "username" but no "password"',
        'image_pull_secrets[2] (secret "empty"): secret has no data',
    ]


def test_only_credential_stores_left_is_an_error_that_says_what_to_do() -> None:
    mac = opaque({"auths": {"https://index.docker.io/v1/": {}}, "credsStore": "desktop"}, name="mac")
    with pytest.raises(errors.BadRegistryAuth) as caught:
        auths.convert([mac, opaque({"auths": {}}, name="blank")])
    assert caught.value.lines() == [
        (
            'image_pull_secrets[0] (secret "mac"): no usable registry credentials (credsStore "desktop" cannot be '
            'used on Kubernetes; registry "https://index.docker.io/v1/" has an empty entry (its credential lives '
            "in a credential store))"
        ),
        'image_pull_secrets[1] (secret "blank"): no usable registry credentials (no registries)',
        (
            "image_pull_secrets: none of the secrets holds a credential the kubelet can use; create one with "
            "`kubectl create secret docker-registry`, or from a config.json written by `docker login` with no "
            "credsStore"
        ),
    ]


@pytest.mark.parametrize("store", ["desktop", ["desktop"], {"a": 1}, 7])
def test_a_config_with_only_a_credsstore_and_no_auths_is_an_error_not_a_crash(store: object) -> None:
    with pytest.raises(errors.BadRegistryAuth, match="no usable registry credentials"):
        auths.convert([opaque({"credsStore": store, "credHelpers": ["not", "a", "map"]})])


def test_problems_are_placed_under_the_path_the_caller_gives() -> None:
    with pytest.raises(errors.BadRegistryAuth) as caught:
        auths.convert([opaque({"auths": {}}, name="blank")], path="spec.image_pull_secrets")
    assert [p.path for p in caught.value.problems] == [
        'spec.image_pull_secrets[0] (secret "blank")',
        "spec.image_pull_secrets",
    ]
