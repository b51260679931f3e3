"""Registry keys: how config.json keys are normalised, and which images the kubelet would send them for.

The matching cases were checked against the keyring of kubelet v1.33.13 (BasicDockerKeyring.Add and
Lookup in pkg/credentialprovider), fed with the document ``to_json_bytes`` writes.
"""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from podline.core import auths, images


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        # Docker Hub, in every spelling docker and its users write, becomes the one the kubelet matches.
        ("https://index.docker.io/v1/", "docker.io"),
        ("https://index.docker.io/v2/", "docker.io"),
        ("http://index.docker.io/v1", "docker.io"),
        ("index.docker.io", "docker.io"),
        ("docker.io", "docker.io"),
        ("https://docker.io", "docker.io"),
        ("registry-1.docker.io", "docker.io"),
        ("https://registry-1.docker.io/v2/", "docker.io"),
        ("Index.Docker.IO", "docker.io"),
        ("HTTPS://index.docker.io/v1/", "docker.io"),
        ("docker.io/team", "docker.io/team"),
        ("index.docker.io/v1/team", "docker.io/team"),
        # Other registries keep host, port and repository path.
        ("registry.example.com", "registry.example.com"),
        ("https://registry.example.com/", "registry.example.com"),
        ("https://registry.example.com/v2/", "registry.example.com"),
        ("registry.example.com/v1", "registry.example.com"),
        ("registry.example.com:5000", "registry.example.com:5000"),
        ("http://registry.example.com:5000/v2/", "registry.example.com:5000"),
        ("registry.example.com/team/", "registry.example.com/team"),
        ("registry.example.com/v2/team/app", "registry.example.com/team/app"),
        ("registry.example.com/v10", "registry.example.com/v10"),
        ("localhost:5000", "localhost:5000"),
        ("10.0.0.1:5000", "10.0.0.1:5000"),
        ("[::1]:5000", "[::1]:5000"),
        ("*.example.com", "*.example.com"),
        ("  ghcr.io  ", "ghcr.io"),
        ("Registry.Example.com", "Registry.Example.com"),
        # No host at all: convert reports these.
        ("", ""),
        ("https://", ""),
        ("/v2/", ""),
        ("0/v1/v1", "0"),  # every leading API segment goes, so a second pass changes nothing
    ],
)
def test_registry_keys_are_normalised(raw: str, key: str) -> None:
    assert auths.registry_key(raw) == key


@settings(deadline=None)
@given(
    st.from_regex(
        r"(https?://)?[a-z0-9.-]{1,20}(:[0-9]{1,5})?(/v[12])?(/[a-z0-9]{1,8}){0,2}/?", fullmatch=True
    )
)
def test_normalising_a_key_twice_changes_nothing(raw: str) -> None:
    once = auths.registry_key(raw)
    assert auths.registry_key(once) == once


def credentials(*keys: str) -> auths.Credentials:
    if not keys:
        return auths.convert([])
    config = {"auths": {key: {"auth": base64.b64encode(b"u:p").decode()} for key in keys}}
    return auths.convert([auths.SourceSecret("s", "Opaque", {"dockerconfig": json.dumps(config).encode()})])


# config.json keys, image, whether the kubelet would send a credential
MATCHES = [
    (["https://index.docker.io/v1/"], "golang", True),
    (["docker.io"], "golang", True),
    (["index.docker.io"], "library/golang:1.7", True),
    (["registry-1.docker.io"], "golang", True),  # the kubelet alone would not match this spelling
    (["docker.io"], "index.docker.io/library/golang:1.7", True),
    (["docker.io"], "team/app", True),
    (["docker.io/team"], "team/app", True),
    (["index.docker.io/team"], "team/app", True),  # ditto
    (["docker.io/team"], "other/app", False),
    (["docker.io/team"], "golang", False),
    (["https://index.docker.io/v1/"], "docker.company.com/golang", False),
    (["https://index.docker.io/v1/"], "localhost/x", False),  # the kubelet's fallback would have matched
    (["docker.company.com"], "docker.company.com/golang", True),
    (["docker.company.com"], "golang", False),
    (["https://docker.company.com/v2/"], "docker.company.com/team/golang:1", True),
    (["registry.example.com"], "registry.example.com:5000/x", False),  # ports must be equal
    (["registry.example.com:5000"], "registry.example.com/x", False),
    (["registry.example.com:5000"], "registry.example.com:5000/x", True),
    (["registry.example.com:443"], "registry.example.com/x", False),
    (["localhost:5000"], "localhost:5000/x", True),
    (["localhost"], "localhost/x", True),
    (["localhost"], "localhost:5000/x", False),
    (["10.0.0.1:5000"], "10.0.0.1:5000/team/app:1", True),
    (["[::1]:5000"], "[::1]:5000/x", True),
    (["registry.example.com/team"], "registry.example.com/team/app", True),
    (
        ["registry.example.com/team"],
        "registry.example.com/teams/app",
        True,
    ),  # a string prefix, as the kubelet
    (["registry.example.com/team"], "registry.example.com/other/app", False),
    (["registry.example.com/team/app"], "registry.example.com/team/app:1", True),
    (["*.example.com"], "registry.example.com/x", True),
    (["*.example.com"], "example.com/x", False),  # a glob matches one label
    (["*.example.com"], "a.b.example.com/x", False),
    (["*.io"], "ghcr.io/x", True),
    (["reg*.example.com"], "registry.example.com/x", True),
    (["example.com"], "registry.example.com/x", False),
    (["ghcr.io", "quay.io"], "quay.io/x", True),
    ([], "golang", False),
]


@pytest.mark.parametrize(("keys", "image", "expected"), MATCHES)
def test_has_credentials_for_follows_the_kubelet_keyring(keys: list[str], image: str, expected: bool) -> None:
    assert bool(credentials(*keys).keys_for(images.parse(image).name)) is expected
