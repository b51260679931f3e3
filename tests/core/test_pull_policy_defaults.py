"""Pull policy: Drone's ``pull:`` values, and the default when a step sets none."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from podline.core import errors, images, pulling

Pull = pulling.Pull
Policy = pulling.PullPolicy

D64 = "sha256:" + "0123456789abcdef" * 4

# Every image form, with the policy it gets when the step sets no pull value.
DEFAULTS = [
    ("golang", Policy.ALWAYS),  # untagged means latest
    ("golang:latest", Policy.ALWAYS),
    ("index.docker.io/library/golang", Policy.ALWAYS),
    ("docker.company.com/golang", Policy.ALWAYS),
    ("localhost:5000/x", Policy.ALWAYS),
    ("registry.example.com/team/app:latest", Policy.ALWAYS),
    ("golang:1.7", Policy.IF_NOT_PRESENT),
    ("library/golang:1.7", Policy.IF_NOT_PRESENT),
    ("index.docker.io/library/golang:1.7", Policy.IF_NOT_PRESENT),
    ("10.0.0.1:5000/x:v2", Policy.IF_NOT_PRESENT),
    ("golang:Latest", Policy.IF_NOT_PRESENT),  # tags are case-sensitive: this one is pinned
    ("golang:latest-alpine", Policy.IF_NOT_PRESENT),
    (f"golang@{D64}", Policy.IF_NOT_PRESENT),  # a digest never changes
    (f"golang:1.7@{D64}", Policy.IF_NOT_PRESENT),
    (f"golang:latest@{D64}", Policy.IF_NOT_PRESENT),  # the digest wins over the tag
    (f"registry:5000/a/b@{D64}", Policy.IF_NOT_PRESENT),
]

# An explicit pull value decides alone, whatever the image.
EXPLICIT = {Pull.ALWAYS: Policy.ALWAYS, Pull.IF_NOT_EXISTS: Policy.IF_NOT_PRESENT, Pull.NEVER: Policy.NEVER}

MATRIX = [
    pytest.param(image, pull, EXPLICIT[pull] if pull is not None else default, id=f"{image}|{pull}")
    for image, default in DEFAULTS
    for pull in [None, Pull.ALWAYS, Pull.IF_NOT_EXISTS, Pull.NEVER]
]


@pytest.mark.parametrize(("image", "pull", "expected"), MATRIX)
def test_pull_policy_for_every_image_form_and_pull_value(
    image: str, pull: pulling.Pull | None, expected: pulling.PullPolicy
) -> None:
    assert pulling.pull_policy(pull, images.parse(image)) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("default", None),
        ("always", Pull.ALWAYS),
        ("if-not-exists", Pull.IF_NOT_EXISTS),
        ("never", Pull.NEVER),
        (Pull.NEVER, Pull.NEVER),
    ],
)
def test_parse_pull_reads_drones_values(value: str | None, expected: pulling.Pull | None) -> None:
    assert pulling.parse_pull(value) is expected


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("Always", '"Always"'),  # Drone's values are exact and lower-case
        ("IfNotPresent", '"IfNotPresent"'),  # a Kubernetes spelling is not a Drone value
        ("if_not_exists", '"if_not_exists"'),
        ("if-not-present", '"if-not-present"'),
        (" always", '" always"'),
        ("Default", '"Default"'),
        ("true", '"true"'),
        (True, "True"),
        (1, "1"),
    ],
)
def test_unknown_pull_values_are_rejected(value: str, shown: str) -> None:
    with pytest.raises(errors.InvalidPipeline) as caught:
        pulling.parse_pull(value, path="spec.steps[0].pull")
    assert caught.value.lines() == [
        f"spec.steps[0].pull: unknown pull value {shown}; expected one of always, if-not-exists, never"
    ]


def test_the_error_path_defaults_to_pull() -> None:
    with pytest.raises(errors.InvalidPipeline) as caught:
        pulling.parse_pull("x")
    assert caught.value.problems[0].path == "pull"


def test_values_print_as_their_drone_and_kubernetes_spellings() -> None:
    assert [str(p) for p in Pull] == ["always", "if-not-exists", "never"]
    assert [str(p) for p in Policy] == ["Always", "IfNotPresent", "Never"]
    assert pulling.pull_policy(pulling.parse_pull("if-not-exists"), images.parse("golang")) == "IfNotPresent"


_images = st.sampled_from([image for image, _ in DEFAULTS])


@settings(deadline=None)
@given(_images, st.sampled_from(list(Pull)))
def test_an_explicit_pull_value_always_wins(image: str, pull: pulling.Pull) -> None:
    assert pulling.pull_policy(pull, images.parse(image)) is EXPLICIT[pull]


@settings(deadline=None)
@given(
    st.sampled_from(["golang", "registry.example.com/team/x", "localhost:5000/x"]),
    st.one_of(
        st.just(""), st.just(":latest"), st.from_regex(r":[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)
    ),
    st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
)
def test_pinning_a_digest_stops_the_default_from_pulling_always(name: str, tag: str, hexdigest: str) -> None:
    pinned = images.parse(f"{name}{tag}@sha256:{hexdigest}")
    assert pulling.pull_policy(None, pinned) is Policy.IF_NOT_PRESENT


@settings(deadline=None)
@given(st.sampled_from([None, *Pull]), _images)
def test_the_policy_is_a_function_of_pull_value_and_normalised_image(
    pull: pulling.Pull | None, image: str
) -> None:
    ref = images.parse(image)
    assert pulling.pull_policy(pull, images.parse(ref.normalized)) is pulling.pull_policy(pull, ref)
    assert pulling.pull_policy(pull, images.parse(ref.familiar)) is pulling.pull_policy(pull, ref)
