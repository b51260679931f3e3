"""Image configs, the pure part (``imageconfigs`` and ``registries``): where a registry's API is, which credentials go there, how manifests, indexes
and config blobs are read, which manifest fits a platform, how challenges are answered, and what errors say
(never a credential)."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
from podline.core import auths, errors, images, plans, pulling, registries, stepping
from podline.core import imageconfigs as ic

Reason = errors.RegistryReason
IMAGE = "registry.example.com/team/app:1"
CANARY = "canary-pw-3kq"
D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
D3 = "sha256:" + "3" * 64


def body(document: Any) -> bytes:
    return json.dumps(document).encode()


def raises(reason: Reason, call: Any, *args: Any) -> errors.ImageConfigUnavailable:
    with pytest.raises(errors.ImageConfigUnavailable) as caught:
        call(*args)
    assert caught.value.reason is reason
    return caught.value


# ---- endpoints and mirrors ---------------------------------------------------------------------------------

MIRRORS = "docker.io=http://localhost:5101,quay.io=https://mirror.example"


@pytest.mark.parametrize(
    ("reference", "mirrors", "base", "repository", "mirror"),
    [
        ("busybox", "", "https://registry-1.docker.io", "library/busybox", False),
        ("index.docker.io/library/golang:1.7", "", "https://registry-1.docker.io", "library/golang", False),
        ("docker.io/team/app@" + D1, "", "https://registry-1.docker.io", "team/app", False),
        ("registry.example.com/team/app", "", "https://registry.example.com", "team/app", False),
        ("registry.example.com:5000/app", "", "https://registry.example.com:5000", "app", False),
        ("localhost:5000/app", "", "http://localhost:5000", "app", False),
        ("localhost/app", "", "http://localhost", "app", False),
        ("127.0.0.1:5000/app", "", "http://127.0.0.1:5000", "app", False),
        ("127.1.2.3:5000/app", "", "http://127.1.2.3:5000", "app", False),
        ("[::1]:5000/app", "", "http://[::1]:5000", "app", False),
        ("localhost.example.com/app", "", "https://localhost.example.com", "app", False),  # not loopback
        ("10.0.0.1:5000/app", "", "https://10.0.0.1:5000", "app", False),  # private is not loopback
        ("busybox", MIRRORS, "http://localhost:5101", "library/busybox", True),
        ("docker.io/team/app:2", MIRRORS, "http://localhost:5101", "team/app", True),
        ("quay.io/org/app", MIRRORS, "https://mirror.example", "org/app", True),
        ("ghcr.io/org/app", MIRRORS, "https://ghcr.io", "org/app", False),
        (
            "busybox",
            "index.docker.io=https://hub-mirror.example:8443",
            "https://hub-mirror.example:8443",
            "library/busybox",
            True,
        ),
        ("localhost:5000/app", "localhost:5000=https://other.example", "https://other.example", "app", True),
        (
            "Registry.Example.com/app",
            "registry.example.COM=https://m.example",
            "https://m.example",
            "app",
            True,
        ),
    ],
)
def test_where_a_references_registry_api_is(
    reference: str, mirrors: str, base: str, repository: str, mirror: bool
) -> None:
    where = registries.endpoint(images.parse(reference), registries.parse_mirrors(mirrors))
    assert (where.base, where.repository, where.mirror) == (base, repository, mirror)
    assert where.plain_http == base.startswith("http://")


def test_urls_of_manifests_and_blobs() -> None:
    where = registries.endpoint(images.parse("localhost:5000/team/app"))
    assert where.url("manifests", "1.2") == "http://localhost:5000/v2/team/app/manifests/1.2"
    assert where.url("blobs", D1) == f"http://localhost:5000/v2/team/app/blobs/{D1}"
    assert where.host == "localhost:5000"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ()),
        (" , ", ()),
        ("docker.io=http://localhost:5101", (("docker.io", "http://localhost:5101"),)),
        ("https://index.docker.io/v1/=http://localhost:5101/", (("docker.io", "http://localhost:5101"),)),
        ("docker.io = https://mirror.example/v2/ ", (("docker.io", "https://mirror.example"),)),
        ("quay.io=https://[::1]:8443", (("quay.io", "https://[::1]:8443"),)),
        ("Quay.IO=HTTPS://Mirror.Example", (("quay.io", "https://mirror.example"),)),
        ("docker.io=http://a.example,docker.io=http://b.example", (("docker.io", "http://b.example"),)),
        (MIRRORS, (("docker.io", "http://localhost:5101"), ("quay.io", "https://mirror.example"))),
    ],
)
def test_mirror_settings_are_parsed(text: str, expected: tuple[tuple[str, str], ...]) -> None:
    assert tuple((m.registry, m.url) for m in registries.parse_mirrors(text)) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("docker.io", "is not registry=url"),
        ("=http://localhost:5101", "is not registry=url"),
        ("docker.io=", "is not registry=url"),
        ("docker.io/team=http://localhost:5101", "is not registry=url"),
        ("docker.io=localhost:5101", "must be an http:// or https:// URL"),
        ("docker.io=ftp://mirror.example", "must be an http:// or https:// URL"),
        ("docker.io=http://", "must be an http:// or https:// URL"),
        ("docker.io=http://mirror.example/docker", "without a path"),
        ("docker.io=http://mirror.example/?x=1", "without a path"),
        ("docker.io=http://mirror.example:99999", "is not a URL"),
        (f"docker.io=http://user:{CANARY}@mirror.example", "must not contain user information"),
        (f"docker.io http://user:{CANARY}@mirror.example", "an entry is not registry=url"),
    ],
)
def test_bad_mirror_settings_say_why_without_user_information(text: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        registries.parse_mirrors(text)
    assert message in str(caught.value)
    assert CANARY not in str(caught.value)


# ---- platforms ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("linux/amd64", "linux/amd64"),
        ("Linux/AMD64", "linux/amd64"),
        ("linux/x86_64", "linux/amd64"),
        ("linux/amd64/v1", "linux/amd64"),
        ("linux/amd64/v3", "linux/amd64/v3"),
        ("linux/arm64", "linux/arm64/v8"),
        ("linux/aarch64", "linux/arm64/v8"),
        ("linux/arm64/8", "linux/arm64/v8"),
        ("linux/arm", "linux/arm/v7"),
        ("linux/armhf", "linux/arm/v7"),
        ("linux/armel", "linux/arm/v6"),
        ("linux/arm/6", "linux/arm/v6"),
        ("linux/i386", "linux/386"),
        ("windows/amd64", "windows/amd64"),
        ("macos/arm64", "darwin/arm64/v8"),
    ],
)
def test_platforms_are_normalised_as_containerd_does(text: str, expected: str) -> None:
    assert str(ic.parse_platform(text)) == expected


@pytest.mark.parametrize(
    "text",
    ["", "linux", "linux/", "/amd64", "linux/amd64/v8/x", "linux/am d64", "linux /amd64", "linux/amd64\x00"],
)
def test_bad_platforms_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not os/architecture"):
        ic.parse_platform(text)


# ---- manifests and indexes ---------------------------------------------------------------------------------


def descriptor(
    digest: str, platform: dict[str, str] | None = None, media_type: str = ic.OCI_MANIFEST
) -> dict[str, Any]:
    entry: dict[str, Any] = {"mediaType": media_type, "digest": digest, "size": 500}
    if platform is not None:
        entry["platform"] = platform
    return entry


AMD64 = {"os": "linux", "architecture": "amd64"}
ARM64 = {"os": "linux", "architecture": "arm64", "variant": "v8"}
ATTESTATION = {"os": "unknown", "architecture": "unknown"}
CONFIG = {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": D3, "size": 100}


@pytest.mark.parametrize(
    ("document", "content_type", "kind"),
    [
        ({"schemaVersion": 2, "mediaType": ic.OCI_INDEX, "manifests": [descriptor(D1, AMD64)]}, "", ic.Index),
        (
            {"schemaVersion": 2, "mediaType": ic.DOCKER_LIST, "manifests": [descriptor(D1, AMD64)]},
            "",
            ic.Index,
        ),
        ({"schemaVersion": 2, "manifests": [descriptor(D1, AMD64)]}, ic.OCI_INDEX, ic.Index),
        ({"schemaVersion": 2, "manifests": []}, "", ic.Index),  # no mediaType, no header: by its fields
        ({"schemaVersion": 2, "mediaType": ic.OCI_MANIFEST, "config": CONFIG, "layers": []}, "", ic.Manifest),
        (
            {"schemaVersion": 2, "mediaType": ic.DOCKER_MANIFEST, "config": CONFIG, "layers": []},
            "",
            ic.Manifest,
        ),
        (
            {"schemaVersion": 2, "config": CONFIG, "layers": []},
            f"{ic.OCI_MANIFEST}; charset=utf-8",
            ic.Manifest,
        ),
        ({"schemaVersion": 2, "config": CONFIG}, "", ic.Manifest),
        ({"schemaVersion": 2, "config": {"digest": D3, "size": 1}}, "application/json", ic.Manifest),
    ],
)
def test_manifests_and_indexes_are_told_apart(
    document: dict[str, Any], content_type: str, kind: type
) -> None:
    assert isinstance(ic.parse_manifest(IMAGE, body(document), content_type), kind)


def test_a_manifest_gives_its_config_and_an_index_its_platforms() -> None:
    manifest = ic.parse_manifest(IMAGE, body({"mediaType": ic.OCI_MANIFEST, "config": CONFIG}))
    assert manifest == ic.Manifest(ic.Descriptor(CONFIG["mediaType"], D3, 100))
    index = ic.parse_manifest(
        IMAGE,
        body(
            {
                "manifests": [
                    descriptor(D1, AMD64),
                    descriptor(D2, {"os": "linux", "architecture": "aarch64"}),
                    descriptor(D3),
                ]
            }
        ),
    )
    assert isinstance(index, ic.Index)
    assert [e.platform for e in index.manifests] == [
        ic.Platform("linux", "amd64"),
        ic.Platform("linux", "arm64", "v8"),
        None,
    ]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "the manifest is not JSON"),
        (b"{", "the manifest is not JSON"),
        (b"\xff\xfe", "the manifest is not JSON"),
        (b"[" * 100000, "the manifest is not JSON"),
        (b"[]", "is not a JSON object"),
        (b'"text"', "is not a JSON object"),
        (body({"schemaVersion": 1, "name": "x", "fsLayers": []}), "schema 1 manifest"),
        (body({"mediaType": ic.DOCKER_SCHEMA1[1]}), "schema 1 manifest"),
        (body({"mediaType": 7}), '"mediaType" is not a string'),
        (body({"mediaType": ic.OCI_INDEX}), 'no "manifests" list'),
        (body({"mediaType": ic.OCI_INDEX, "manifests": {}}), 'no "manifests" list'),
        (body({"manifests": ["x"]}), "manifests[0] is not an object"),
        (body({"manifests": [{"digest": "sha256:abc", "size": 1}]}), "manifests[0] has no valid digest"),
        (body({"manifests": [{"digest": "md5:" + "1" * 32, "size": 1}]}), "has no valid digest"),
        (body({"manifests": [{"digest": D1.upper(), "size": 1}]}), "has no valid digest"),
        (body({"manifests": [{"digest": D1, "size": -1}]}), '"size" is not a size'),
        (body({"manifests": [{"digest": D1, "size": True}]}), '"size" is not a size'),
        (body({"manifests": [{"digest": D1, "size": "5"}]}), '"size" is not a size'),
        (body({"manifests": [{"digest": D1, "mediaType": 3}]}), '"mediaType" is not a string'),
        (body({"manifests": [{"digest": D1, "platform": "linux/amd64"}]}), '"platform" is not an object'),
        (
            body({"manifests": [{"digest": D1, "platform": {"os": "linux", "architecture": 64}}]}),
            '"platform" is not',
        ),
        (body({"mediaType": ic.OCI_MANIFEST}), "config is not an object"),
        (body({"mediaType": ic.OCI_MANIFEST, "config": {"size": 3}}), "config has no valid digest"),
        (
            body(
                {
                    "mediaType": ic.OCI_MANIFEST,
                    "config": {
                        "mediaType": "application/vnd.cncf.helm.config.v1+json",
                        "digest": D3,
                        "size": 1,
                    },
                }
            ),
            "an artifact of type",
        ),
        (
            body({"mediaType": "application/vnd.example+json", "layers": []}),
            'unsupported manifest type "application',
        ),
        (body({"schemaVersion": 2}), 'unsupported manifest type "(none)"'),
    ],
)
def test_malformed_manifests_are_bad_responses_saying_why(raw: bytes, message: str) -> None:
    error = raises(Reason.BAD_RESPONSE, ic.parse_manifest, IMAGE, raw, "")
    assert message in str(error)
    assert str(error).startswith(f'cannot read the config of image "{IMAGE}": bad response: ')


INDEX = ic.Index((
    ic.Descriptor(ic.OCI_MANIFEST, D1, 1, ic.normalize_platform("linux", "amd64")),
    ic.Descriptor(ic.OCI_MANIFEST, D2, 1, ic.normalize_platform("linux", "arm64")),
    ic.Descriptor(ic.OCI_MANIFEST, D3, 1, ic.normalize_platform("unknown", "unknown")),
))  # fmt: skip


@pytest.mark.parametrize(
    ("index", "platform", "digest"),
    [
        (INDEX, "linux/amd64", D1),
        (INDEX, "linux/x86_64", D1),
        (INDEX, "linux/arm64", D2),
        (INDEX, "linux/aarch64", D2),
        (INDEX, "linux/arm64/v8", D2),
        # the first exact match wins, in the index's order
        (
            ic.Index(
                (
                    INDEX.manifests[1],
                    INDEX.manifests[0],
                    ic.Descriptor("", D3, 1, ic.normalize_platform("linux", "amd64")),
                )
            ),
            "linux/amd64",
            D1,
        ),
        # entries without a platform are taken only when none matches
        (ic.Index((ic.Descriptor("", D3, 1), INDEX.manifests[0])), "linux/amd64", D1),
        (ic.Index((ic.Descriptor("", D3, 1), INDEX.manifests[0])), "linux/arm64", D3),
    ],
)
def test_the_manifest_for_the_platform_is_chosen(index: ic.Index, platform: str, digest: str) -> None:
    assert ic.choose(IMAGE, index, ic.parse_platform(platform)).digest == digest


@pytest.mark.parametrize(
    ("index", "platform", "message"),
    [
        (
            INDEX,
            "linux/s390x",
            "no manifest for the platform: linux/s390x; the image is for linux/amd64, linux/arm64/v8",
        ),
        (INDEX, "linux/amd64/v3", "linux/amd64/v3; the image is for linux/amd64, linux/arm64/v8"),
        (INDEX, "windows/amd64", "windows/amd64; the image is for"),
        (ic.Index(()), "linux/amd64", "linux/amd64; the image is for no platform"),
        (
            ic.Index(INDEX.manifests[2:]),
            "linux/amd64",
            "the image is for no platform",
        ),  # attestations are no platform
    ],
)
def test_an_index_without_the_platform_lists_what_it_has(
    index: ic.Index, platform: str, message: str
) -> None:
    error = raises(Reason.NO_PLATFORM, ic.choose, IMAGE, index, ic.parse_platform(platform))
    assert message in str(error)
    assert not error.transient


# ---- config blobs ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "entrypoint", "cmd"),
    [
        ({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]}}, (), ("sh",)),
        ({"config": {"Entrypoint": ["/bin/plugin"], "Cmd": ["--help"]}}, ("/bin/plugin",), ("--help",)),
        ({"config": {"Entrypoint": ["/bin/plugin"]}}, ("/bin/plugin",), ()),
        ({"config": {"Entrypoint": None, "Cmd": None}}, (), ()),
        ({"config": {"Entrypoint": [], "Cmd": []}}, (), ()),
        ({"config": {}}, (), ()),
        ({"config": None}, (), ()),
        ({}, (), ()),
        (
            {"config": {"Entrypoint": "/entry.sh", "Cmd": "run"}},
            ("/entry.sh",),
            ("run",),
        ),  # Docker's StrSlice
        ({"config": {"Cmd": ["sh", "-c", "echo 'a b'"], "Env": ["A=1"]}}, (), ("sh", "-c", "echo 'a b'")),
        ({"config": {"Cmd": ["ünïcode", ""]}}, (), ("ünïcode", "")),
    ],
)
def test_entrypoint_and_cmd_are_read_from_the_config(
    document: dict[str, Any], entrypoint: tuple[str, ...], cmd: tuple[str, ...]
) -> None:
    assert ic.parse_config(IMAGE, body(document)) == (entrypoint, cmd)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"not json", "the image config is not JSON"),
        (b"[1]", "the image config is not a JSON object"),
        (body({"config": ["sh"]}), '"config" is not an object'),
        (body({"config": {"Cmd": 5}}), '"Cmd" is not a list of strings'),
        (body({"config": {"Cmd": ["sh", 5]}}), '"Cmd" is not a list of strings'),
        (body({"config": {"Entrypoint": {"a": 1}}}), '"Entrypoint" is not a list of strings'),
        (body({"config": {"Entrypoint": [None]}}), '"Entrypoint" is not a list of strings'),
    ],
)
def test_malformed_configs_are_bad_responses(raw: bytes, message: str) -> None:
    assert message in str(raises(Reason.BAD_RESPONSE, ic.parse_config, IMAGE, raw))


@pytest.mark.parametrize(
    ("entrypoint", "cmd", "command", "argv"),
    [
        ((), ("sh",), None, ("sh",)),
        (("/bin/plugin",), ("--help",), None, ("/bin/plugin", "--help")),
        (("/bin/plugin",), ("--help",), ["--verbose"], ("/bin/plugin", "--verbose")),  # command replaces CMD
        (("/bin/plugin",), ("--help",), [], ("/bin/plugin",)),
        ((), ("sh",), ["echo", "hi"], ("echo", "hi")),
        ((), (), None, ()),
    ],
)
def test_what_a_container_runs(
    entrypoint: tuple[str, ...], cmd: tuple[str, ...], command: list[str] | None, argv: tuple[str, ...]
) -> None:
    step = plans.ContainerPlan(
        "step-a", "a", plans.Kind.STEP, "plugin", pulling.PullPolicy.IF_NOT_PRESENT,
        args=None if command is None else tuple(command),
    )  # fmt: skip
    assert stepping.command_of(step, ic.ImageConfig(entrypoint, cmd, D1)) == argv


def test_documents_must_match_their_digests() -> None:
    content = b'{"config": {}}'
    right = "sha256:" + hashlib.sha256(content).hexdigest()
    ic.verify(IMAGE, content, right, "image config")
    assert ic.digest_of(content) == right
    assert "the image config does not match its digest" in str(
        raises(Reason.BAD_RESPONSE, ic.verify, IMAGE, content + b" ", right, "image config")
    )
    raises(Reason.BAD_RESPONSE, ic.verify, IMAGE, content, "sha256:xyz", "manifest")
    sha512 = "sha512:" + hashlib.sha512(content).hexdigest()
    ic.verify(IMAGE, content, sha512, "manifest")


# ---- credentials -------------------------------------------------------------------------------------------


def credentials(*keys: str, password: str = "pw") -> auths.Credentials:
    secrets = []
    for index, key in enumerate(keys):
        config = {"auths": {key: {"username": f"user{index}", "password": password}}}
        secrets.append(
            auths.SourceSecret(f"secret{index}", "Opaque", {"config.json": json.dumps(config).encode()})
        )
    return auths.convert(secrets)


@pytest.mark.parametrize(
    ("keys", "reference", "mirrors", "chosen"),
    [
        (["registry.example.com"], "registry.example.com/team/app", "", ["registry.example.com"]),
        (["registry.example.com"], "other.example.com/team/app", "", []),
        (["registry.example.com:5000"], "registry.example.com/team/app", "", []),  # the port must match
        (["*.example.com"], "registry.example.com/team/app", "", ["*.example.com"]),
        # every matching key, the most specific first (the kubelet's reverse lexical order)
        (
            ["registry.example.com", "registry.example.com/team", "registry.example.com/team/app"],
            "registry.example.com/team/app:1",
            "",
            ["registry.example.com/team/app", "registry.example.com/team", "registry.example.com"],
        ),
        (["registry.example.com/other"], "registry.example.com/team/app", "", []),
        (["https://index.docker.io/v1/"], "busybox", "", ["docker.io"]),
        (["docker.io"], "docker.io/team/app", "", ["docker.io"]),
        (["localhost:5100"], "localhost:5100/private/busybox:1", "", ["localhost:5100"]),
        # at a mirror, only keys for the mirror's own host: Docker Hub credentials never go there
        (["docker.io"], "busybox", MIRRORS, []),
        (["docker.io", "localhost:5101"], "busybox", MIRRORS, ["localhost:5101"]),
        (["localhost:5101/library"], "busybox", MIRRORS, ["localhost:5101/library"]),
        (["localhost:5101/other"], "busybox", MIRRORS, []),
    ],
)
def test_the_credentials_tried_are_the_kubelets(
    keys: list[str], reference: str, mirrors: str, chosen: list[str]
) -> None:
    image = images.parse(reference)
    found = registries.credentials_for(
        credentials(*keys), image, registries.endpoint(image, registries.parse_mirrors(mirrors))
    )
    assert [c.key for c in found] == chosen


def test_a_credential_says_where_it_came_from_and_hides_its_values() -> None:
    image = images.parse("localhost:5100/private/busybox:1")
    (credential,) = registries.credentials_for(
        credentials("localhost:5100", password=CANARY), image, registries.endpoint(image)
    )
    assert credential.describe() == 'registry key "localhost:5100" (secret "secret0")'
    assert credential.basic == "Basic " + base64.b64encode(f"user0:{CANARY}".encode()).decode()
    assert (
        CANARY not in repr(credential)
        and "user0" not in repr(credential)
        and CANARY not in credential.fingerprint
    )
    assert registries.credentials_for(None, image, registries.endpoint(image)) == ()
    assert registries.credentials_for(auths.convert([]), image, registries.endpoint(image)) == ()


# ---- challenges and tokens ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('Basic realm="podline-test"', [("basic", {"realm": "podline-test"})]),
        (
            'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"',
            [
                (
                    "bearer",
                    {
                        "realm": "https://auth.docker.io/token",
                        "service": "registry.docker.io",
                        "scope": "repository:library/busybox:pull",
                    },
                )
            ],
        ),
        (
            'bearer realm="https://a.example/t", scope="repository:x:pull,push"',
            [("bearer", {"realm": "https://a.example/t", "scope": "repository:x:pull,push"})],
        ),
        (
            "Bearer realm=https://a.example/t,service=reg",
            [("bearer", {"realm": "https://a.example/t", "service": "reg"})],
        ),
        ('Bearer realm="a\\"b"', [("bearer", {"realm": 'a"b'})]),
        (
            'Basic realm="x", Bearer realm="https://a.example/t"',
            [("basic", {"realm": "x"}), ("bearer", {"realm": "https://a.example/t"})],
        ),
        ("Negotiate", [("negotiate", {})]),
        ("", []),
        ('realm="orphan"', []),
    ],
)
def test_challenges_are_parsed(header: str, expected: list[tuple[str, dict[str, str]]]) -> None:
    assert [(c.scheme, dict(c.params)) for c in registries.parse_challenges(header)] == expected


TLS = registries.endpoint(images.parse("registry.example.com/team/app"))
PLAIN = registries.endpoint(images.parse("localhost:5000/team/app"))


@pytest.mark.parametrize(
    ("realm", "where", "url"),
    [
        (
            "https://auth.example.com/token",
            TLS,
            "https://auth.example.com/token?service=svc&scope=repository%3Ateam%2Fapp%3Apull",
        ),
        (
            "https://auth.example.com/token?account=x",
            TLS,
            "https://auth.example.com/token?account=x&service=svc&scope=repository%3Ateam%2Fapp%3Apull",
        ),
        (
            "http://127.0.0.1:9000/token",
            TLS,
            "http://127.0.0.1:9000/token?service=svc&scope=repository%3Ateam%2Fapp%3Apull",
        ),
        (
            "http://localhost:5000/token",
            PLAIN,
            "http://localhost:5000/token?service=svc&scope=repository%3Ateam%2Fapp%3Apull",
        ),
        ("http://auth.example.com/token", TLS, None),  # a credential never goes to a plain-http token service
        ("https://user:pw@auth.example.com/token", TLS, None),
        ("ftp://auth.example.com/token", TLS, None),
        ("/token", TLS, None),
        ("", TLS, None),
        ("https://[::1/token", TLS, None),
    ],
)
def test_token_requests_go_only_where_a_credential_may(
    realm: str, where: registries.Endpoint, url: str | None
) -> None:
    challenge = registries.Challenge(
        "bearer", {"realm": realm, "service": "svc", "scope": "repository:other:push"}
    )
    assert registries.token_url(challenge, where.repository, where) == url


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (body({"token": "abc"}), ("abc", 60.0)),
        (body({"access_token": "abc", "expires_in": 300}), ("abc", 300.0)),
        (body({"token": "abc", "access_token": "abc", "expires_in": 0}), ("abc", 1.0)),
        (body({"token": "", "access_token": "def"}), ("def", 60.0)),
        (body({"token": "abc", "expires_in": "300"}), ("abc", 60.0)),
        (body({"token": "abc", "expires_in": True}), ("abc", 60.0)),
        (body({"token": 5}), None),
        (body({"token": "a b"}), None),
        (body({"token": "a\r\nX-Injected: 1"}), None),
        (body({}), None),
        (body([]), None),
        (b"<html>", None),
    ],
)
def test_token_answers_are_read(raw: bytes, expected: tuple[str, float] | None) -> None:
    assert registries.parse_token(raw) == expected


# ---- what registries' answers mean, in words ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "codes"),
    [
        (
            body(
                {
                    "errors": [
                        {"code": "MANIFEST_UNKNOWN", "message": "manifest unknown", "detail": {"Tag": "x"}}
                    ]
                }
            ),
            ("MANIFEST_UNKNOWN",),
        ),
        (
            body({"errors": [{"code": "UNAUTHORIZED"}, {"code": "UNAUTHORIZED"}, {"code": "DENIED"}]}),
            ("UNAUTHORIZED", "DENIED"),
        ),
        (body({"errors": [{"code": f"secret {CANARY}"}, {"code": 5}, "x"]}), ()),
        (body({"errors": {"code": "X"}}), ()),
        (body(["x"]), ()),
        (b"<html>502</html>", ()),
    ],
)
def test_only_registry_error_codes_are_repeated(raw: bytes, codes: tuple[str, ...]) -> None:
    assert registries.error_codes(raw) == codes


KEYED = registries.Credential("localhost:5100", "team-pull", "podline", CANARY)


@pytest.mark.parametrize(
    ("status", "tried", "codes", "reason", "transient", "message"),
    [
        (
            401,
            (),
            (),
            Reason.UNAUTHORIZED,
            False,
            "unauthorized: the registry refused an anonymous request and no image_pull_secrets entry has credentials for it",
        ),
        (
            401,
            (KEYED,),
            ("UNAUTHORIZED",),
            Reason.UNAUTHORIZED,
            False,
            'unauthorized: the registry refused the credentials of registry key "localhost:5100" (secret "team-pull") (UNAUTHORIZED)',
        ),
        (
            403,
            (KEYED,),
            ("DENIED",),
            Reason.UNAUTHORIZED,
            False,
            "denied access to the credentials of registry key",
        ),
        (
            404,
            (),
            ("MANIFEST_UNKNOWN",),
            Reason.NOT_FOUND,
            False,
            'not found: the registry has no manifest "1" (MANIFEST_UNKNOWN)',
        ),
        (
            429,
            (),
            ("TOOMANYREQUESTS",),
            Reason.UNREACHABLE,
            True,
            "unreachable: the registry answered 429 (TOOMANYREQUESTS)",
        ),
        (503, (), (), Reason.UNREACHABLE, True, "unreachable: the registry answered 503"),
        (
            400,
            (),
            (),
            Reason.BAD_RESPONSE,
            False,
            'bad response: the registry answered 400 to a request for manifest "1"',
        ),
    ],
)
def test_refusals_say_what_happened(
    status: int,
    tried: tuple[registries.Credential, ...],
    codes: tuple[str, ...],
    reason: Reason,
    transient: bool,
    message: str,
) -> None:
    error = registries.refusal(IMAGE, status, 'manifest "1"', tried=tried, codes=codes)
    assert (error.reason, error.transient, error.image) == (reason, transient, IMAGE)
    assert message in str(error)
    assert CANARY not in str(error) + repr(error) + repr(error.problems)


@pytest.mark.parametrize(
    ("code", "why", "ca_file", "message"),
    [
        (20, "unable to get local issuer certificate", "",
         ("registry.example.com: its certificate is not signed by a CA the operator trusts (unable to get local "
          "issuer certificate); if the registry uses a private CA, give the operator that CA's certificate in "
          "PODLINE_REGISTRY_CA_FILE (a PEM file; Helm: operator.registryCA)")),
        (19, "self-signed certificate in certificate chain", "/etc/podline/registry-ca/ca.pem",
         'add the CA that signed it to the bundle in PODLINE_REGISTRY_CA_FILE ("/etc/podline/registry-ca/ca.pem")'),
        (None, "certificate verify failed.", "", "(certificate verify failed); if the registry uses a private CA"),
        (10, "certificate has expired", "/ca.pem",
         ("registry.example.com: its certificate failed verification (certificate has expired); the registry's "
          "certificate must be fixed (PODLINE_REGISTRY_CA_FILE adds trusted CAs, it cannot cure this)")),
        (62, "Hostname mismatch, certificate is not valid for 'registry.example.com'.", "",
         "(Hostname mismatch, certificate is not valid for 'registry.example.com'); the registry's certificate"),
    ],
)  # fmt: skip
def test_an_untrusted_certificate_says_whether_the_ca_file_can_cure_it(
    code: int | None, why: str, ca_file: str, message: str
) -> None:
    error = registries.untrusted(IMAGE, "registry.example.com", code, why, ca_file=ca_file)
    assert (error.reason, error.transient, error.image) == (Reason.UNTRUSTED, False, IMAGE)
    assert str(error).startswith(f'cannot read the config of image "{IMAGE}": untrusted TLS certificate: ')
    assert message in str(error)


def test_a_mirrors_refusal_says_the_images_own_credentials_are_not_sent_there() -> None:
    error = registries.refusal(IMAGE, 401, 'manifest "1"', mirror="localhost:5101")
    assert "the mirror localhost:5101 refused an anonymous request" in str(error)
    assert "never go to a mirror" in str(error)


def test_errors_can_name_the_field() -> None:
    error = errors.ImageConfigUnavailable.because(IMAGE, Reason.NOT_FOUND, "x", path="spec.steps[1].image")
    assert error.lines() == [f'spec.steps[1].image: cannot read the config of image "{IMAGE}": not found: x']
    assert isinstance(error, errors.PodlineError)
