"""Image references: parsing, normalising, showing back, rejecting.

Expected values of the accepted forms were checked against github.com/distribution/reference v0.6.0
(ParseNormalizedNamed, Domain, Path, FamiliarString), the parser the kubelet and containerd use.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from podline.core import errors, images

D64 = "sha256:" + "0123456789abcdef" * 4

# reference, domain, path, tag, digest, normalized, familiar
FORMS = [
    # The forms on Drone's "Images" page.
    ("golang", "docker.io", "library/golang", None, None, "docker.io/library/golang:latest", "golang"),
    ("golang:1.7", "docker.io", "library/golang", "1.7", None, "docker.io/library/golang:1.7", "golang:1.7"),
    (
        "library/golang:1.7",
        "docker.io",
        "library/golang",
        "1.7",
        None,
        "docker.io/library/golang:1.7",
        "golang:1.7",
    ),
    (
        "index.docker.io/library/golang",
        "docker.io",
        "library/golang",
        None,
        None,
        "docker.io/library/golang:latest",
        "golang",
    ),
    (
        "index.docker.io/library/golang:1.7",
        "docker.io",
        "library/golang",
        "1.7",
        None,
        "docker.io/library/golang:1.7",
        "golang:1.7",
    ),
    (
        "docker.company.com/golang",
        "docker.company.com",
        "golang",
        None,
        None,
        "docker.company.com/golang:latest",
        "docker.company.com/golang",
    ),
    # Registry hosts: port, localhost, a bare host with a port, IPv4, IPv6.
    ("localhost:5000/x", "localhost:5000", "x", None, None, "localhost:5000/x:latest", "localhost:5000/x"),
    ("localhost/x", "localhost", "x", None, None, "localhost/x:latest", "localhost/x"),
    (
        f"registry:5000/a/b@{D64}",
        "registry:5000",
        "a/b",
        None,
        D64,
        f"registry:5000/a/b@{D64}",
        f"registry:5000/a/b@{D64}",
    ),
    (
        "10.0.0.1:5000/team/app:v2",
        "10.0.0.1:5000",
        "team/app",
        "v2",
        None,
        "10.0.0.1:5000/team/app:v2",
        "10.0.0.1:5000/team/app:v2",
    ),
    ("[::1]:5000/x:1", "[::1]:5000", "x", "1", None, "[::1]:5000/x:1", "[::1]:5000/x:1"),
    (
        "Docker.Company.com/golang",
        "Docker.Company.com",
        "golang",
        None,
        None,
        "Docker.Company.com/golang:latest",
        "Docker.Company.com/golang",
    ),
    # Tags and digests.
    (
        f"golang:1.7@{D64}",
        "docker.io",
        "library/golang",
        "1.7",
        D64,
        f"docker.io/library/golang:1.7@{D64}",
        f"golang:1.7@{D64}",
    ),
    (
        f"golang@{D64}",
        "docker.io",
        "library/golang",
        None,
        D64,
        f"docker.io/library/golang@{D64}",
        f"golang@{D64}",
    ),
    (
        f"golang:latest@{D64}",
        "docker.io",
        "library/golang",
        "latest",
        D64,
        f"docker.io/library/golang:latest@{D64}",
        f"golang:latest@{D64}",
    ),
    (
        "golang:latest",
        "docker.io",
        "library/golang",
        "latest",
        None,
        "docker.io/library/golang:latest",
        "golang:latest",
    ),
    (
        "golang:1.21_RC-2.x",
        "docker.io",
        "library/golang",
        "1.21_RC-2.x",
        None,
        "docker.io/library/golang:1.21_RC-2.x",
        "golang:1.21_RC-2.x",
    ),
    (
        "alpine@sha512:" + "a" * 128,
        "docker.io",
        "library/alpine",
        None,
        "sha512:" + "a" * 128,
        "docker.io/library/alpine@sha512:" + "a" * 128,
        "alpine@sha512:" + "a" * 128,
    ),
    # Docker Hub namespaces and spellings.
    (
        "plugins/docker:20",
        "docker.io",
        "plugins/docker",
        "20",
        None,
        "docker.io/plugins/docker:20",
        "plugins/docker:20",
    ),
    (
        "docker.io/golang",
        "docker.io",
        "library/golang",
        None,
        None,
        "docker.io/library/golang:latest",
        "golang",
    ),
    (
        "docker.io/library/golang:1.7",
        "docker.io",
        "library/golang",
        "1.7",
        None,
        "docker.io/library/golang:1.7",
        "golang:1.7",
    ),
    (
        "index.docker.io/team/app",
        "docker.io",
        "team/app",
        None,
        None,
        "docker.io/team/app:latest",
        "team/app",
    ),
    ("library/a/b", "docker.io", "library/a/b", None, None, "docker.io/library/a/b:latest", "library/a/b"),
    (
        "registry-1.docker.io/team/app",
        "registry-1.docker.io",
        "team/app",
        None,
        None,
        "registry-1.docker.io/team/app:latest",
        "registry-1.docker.io/team/app",
    ),
    # Separators inside path components.
    (
        "my-org/my_app.web__x:1",
        "docker.io",
        "my-org/my_app.web__x",
        "1",
        None,
        "docker.io/my-org/my_app.web__x:1",
        "my-org/my_app.web__x:1",
    ),
    ("ghcr.io/a/b/c/d:1", "ghcr.io", "a/b/c/d", "1", None, "ghcr.io/a/b/c/d:1", "ghcr.io/a/b/c/d:1"),
    ("a---b/c", "docker.io", "a---b/c", None, None, "docker.io/a---b/c:latest", "a---b/c"),
    # A first component with "." or ":" is a registry host, even when it was meant otherwise.
    ("golang:1/2", "golang:1", "2", None, None, "golang:1/2:latest", "golang:1/2"),
    ("golang.org/x", "golang.org", "x", None, None, "golang.org/x:latest", "golang.org/x"),
    # ... so the familiar form keeps docker.io/ where dropping it would name another registry.
    (
        "docker.io/my.org/app",
        "docker.io",
        "my.org/app",
        None,
        None,
        "docker.io/my.org/app:latest",
        "docker.io/my.org/app",
    ),
    (
        "docker.io/localhost/app",
        "docker.io",
        "localhost/app",
        None,
        None,
        "docker.io/localhost/app:latest",
        "docker.io/localhost/app",
    ),
    (
        "docker.io/library/my.app",
        "docker.io",
        "library/my.app",
        None,
        None,
        "docker.io/library/my.app:latest",
        "my.app",
    ),
]


@pytest.mark.parametrize(("reference", "domain", "path", "tag", "digest", "normalized", "familiar"), FORMS)
def test_accepted_forms(
    reference: str,
    domain: str,
    path: str,
    tag: str | None,
    digest: str | None,
    normalized: str,
    familiar: str,
) -> None:
    ref = images.parse(reference)
    assert (ref.original, ref.domain, ref.path, ref.tag, ref.digest) == (reference, domain, path, tag, digest)
    assert ref.name == f"{domain}/{path}"
    assert ref.normalized == normalized
    assert ref.familiar == familiar
    assert str(ref) == normalized


@pytest.mark.parametrize(
    ("reference", "latest"),
    [
        ("golang", True),
        ("golang:latest", True),
        ("docker.company.com/golang", True),
        ("golang:1.7", False),
        ("golang:Latest", False),
        ("golang:latest-alpine", False),
        (f"golang@{D64}", False),
        (f"golang:latest@{D64}", False),
        (f"golang:1.7@{D64}", False),
    ],
)
def test_is_latest_means_the_image_floats(reference: str, latest: bool) -> None:
    assert images.parse(reference).is_latest is latest


def test_refs_that_normalise_alike_are_equal_whatever_was_written() -> None:
    spellings = ["golang", "library/golang", "docker.io/golang", "index.docker.io/library/golang"]
    refs = [images.parse(s) for s in spellings]
    assert len(set(refs)) == 1
    assert [r.original for r in refs] == spellings
    assert images.parse("golang") != images.parse("golang:latest")  # equal is what was written, normalised


# reference, words the reason must contain
MALFORMED = [
    ("", "reference is empty"),
    ("Golang", "repository name must be lowercase"),
    ("golang/Tools", "repository name must be lowercase"),
    ("docker.company.com/Golang:1", "repository name must be lowercase"),
    ("Library/golang", "repository name must be lowercase"),  # Go would take "Library" for a host
    ("LOCALHOST/x", "repository name must be lowercase"),
    (" golang", "whitespace"),
    ("golang ", "whitespace"),
    ("golang\n", "whitespace"),  # docker-image-py's "$" alone would accept this
    ("golang:1.7\n", "whitespace"),
    ("gol ang", "whitespace"),
    ("golang\t:1", "whitespace"),
    ("golang\x00", "control character"),
    ("gölang", "non-ASCII"),
    ("golang:", 'invalid tag ""'),
    ("golang:-1", 'invalid tag "-1"'),
    ("golang:.1", 'invalid tag ".1"'),
    ("golang:a+b", 'invalid tag "a+b"'),
    ("golang:" + "a" * 129, "invalid tag"),
    ("golang@", "digest is empty"),
    ("golang@sha256:abc", "sha256 digest has the wrong length"),
    ("golang@sha256:" + "A" * 64, "lowercase hex"),
    ("golang@sha256:" + "g" * 64, "lowercase hex"),
    ("golang@md5:" + "a" * 32, 'unsupported digest algorithm "md5"'),
    ("golang@" + "a" * 64, "digest must be"),
    (f"golang@{D64}@{D64}", "only one digest is allowed"),
    (f"golang:1.7@{D64}x", "sha256 digest has the wrong length"),
    ("a" * 64, "image ID"),
    ("x/" + "a" * 254, "must not be more than 255 characters"),
    ("docker.io/" + "a" * 250, "must not be more than 255 characters"),  # counts "library/" too
    ("a//b", "'/'-separated components"),
    ("a/b/", "'/'-separated components"),
    ("/a", "'/'-separated components"),
    ("-a", "'/'-separated components"),
    ("a_-b", "'/'-separated components"),
    ("a___b", "'/'-separated components"),
    (":1.7", "repository name is empty"),
    ("@" + D64, "repository name is empty"),
    ("a_b.com/x:1", 'invalid registry host "a_b.com"'),
    ("b__index.docker.iob/0", 'invalid registry host "b__index.docker.iob"'),
    ("-bad.com/x", 'invalid registry host "-bad.com"'),
    ("localhost:port/x", "invalid"),
    ("a:b:c", "invalid"),
    ("golang:1.7:2", "invalid"),
    ("http://golang", "invalid"),
]


@pytest.mark.parametrize(("reference", "reason"), MALFORMED)
def test_malformed_references_are_rejected_with_the_reason(reference: str, reason: str) -> None:
    with pytest.raises(errors.InvalidImageReference) as caught:
        images.parse(reference, path="spec.steps[2].image")
    (problem,) = caught.value.problems
    assert problem.path == "spec.steps[2].image"
    assert problem.message.startswith("invalid reference ")
    assert reason in problem.message


def test_the_message_quotes_the_reference_and_states_the_reason() -> None:
    with pytest.raises(errors.InvalidImageReference) as caught:
        images.parse("Golang")
    assert caught.value.lines() == ['image: invalid reference "Golang": repository name must be lowercase']


def test_the_message_bounds_and_escapes_what_it_quotes() -> None:
    with pytest.raises(errors.InvalidImageReference) as caught:
        images.parse("x/" + "a" * 300 + "\n")
    message = caught.value.problems[0].message
    assert "\n" not in message
    assert "…: contains whitespace" in message
    assert len(message) < 200


@pytest.mark.parametrize("value", [None, 17, b"golang", ["golang"]])
def test_a_reference_that_is_no_string_is_invalid(value: object) -> None:
    with pytest.raises(errors.InvalidImageReference, match="must be a string"):
        images.parse(value)  # type: ignore[arg-type]


# ---- properties ---------------------------------------------------------------------------------------

_component = st.from_regex(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+){0,2}", fullmatch=True).filter(
    lambda c: len(c) <= 40
)
_host = st.one_of(
    st.sampled_from(
        ["docker.io", "index.docker.io", "localhost", "ghcr.io", "registry.example.com", "[::1]"]
    ),
    st.from_regex(r"[a-z0-9]{1,10}\.[a-z]{2,5}", fullmatch=True),
)
_port = st.one_of(st.just(""), st.integers(1, 65535).map(lambda p: f":{p}"))
_tag = st.one_of(st.just("latest"), st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True))
_hex = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)


@st.composite
def references(draw: st.DrawFn) -> str:
    """Valid references of every shape: with or without host, port, namespace, tag, digest."""
    components = draw(st.lists(_component, min_size=1, max_size=3))
    host = draw(st.one_of(st.just(""), st.builds(lambda h, p: f"{h}{p}/", _host, _port)))
    if not host and len(components) > 1 and ("." in components[0] or components[0] == "localhost"):
        host = "docker.io/"  # else the first component would be read as the registry host
    path = "/".join(components)
    if len(path) == 64 and all(c in "0123456789abcdef" for c in path):
        path += "x"  # a bare 64-hex name is an image ID, not a repository
    tag = draw(st.one_of(st.just(""), _tag.map(lambda t: ":" + t)))
    digest = draw(st.one_of(st.just(""), _hex.map(lambda h: "@sha256:" + h)))
    return host + path + tag + digest


@settings(deadline=None)
@given(references())
def test_normalising_is_stable(reference: str) -> None:
    ref = images.parse(reference)
    again = images.parse(ref.normalized)
    assert again.normalized == ref.normalized
    assert again.name == ref.name and again.digest == ref.digest
    assert images.parse(ref.familiar) == ref
    assert images.parse(ref.name).name == ref.name


@settings(deadline=None)
@given(references())
def test_generated_references_have_a_registry_host_and_fully_qualified_forms(reference: str) -> None:
    ref = images.parse(reference)
    first = ref.domain
    assert first == "localhost" or "." in first or ":" in first
    assert ref.normalized.startswith(ref.name)
    assert ref.is_latest == (ref.digest is None and ref.tag in (None, "latest"))


@settings(deadline=None)
@given(references())
def test_a_reference_is_the_same_image_as_its_normalised_and_familiar_forms(reference: str) -> None:
    ref = images.parse(reference)
    assert images.parse(ref.normalized).normalized == ref.normalized
    assert images.parse(ref.familiar).normalized == ref.normalized


_reference_alphabet = st.sampled_from(list("abcAZ09._-:/@[] \n\té") + ["sha256:", "localhost", "docker.io/"])


@settings(deadline=None, max_examples=300)
@given(st.one_of(st.text(), st.lists(_reference_alphabet, max_size=30).map("".join)))
def test_any_string_parses_or_raises_invalid_image_reference(text: str) -> None:
    try:
        ref = images.parse(text)
    except errors.InvalidImageReference as error:
        (problem,) = error.problems
        assert problem.path == "image"
        assert problem.message.startswith("invalid reference ")
    else:
        assert ref.original == text
        assert images.parse(ref.normalized).name == ref.name
