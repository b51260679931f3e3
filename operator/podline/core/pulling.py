"""Pull policy: when the kubelet should pull a step's image.

Decides how Drone's ``pull:`` values (``always``, ``if-not-exists``, ``never``; unset, ``""`` or
``default`` meaning "let the runner choose") map to a container's Kubernetes ``imagePullPolicy``, and
what "let the runner choose" means. Purely computational.

The default follows Drone's documentation ("if the image is tagged with latest, Drone will always
attempt to pull"), not drone-runner-kube's code, which falls back to IfNotPresent for every image:

* an explicit ``pull:`` value wins;
* a digest-pinned image never changes, so it is pulled only if absent, whatever its tag says;
* an image tagged ``latest``, or not tagged at all, floats, so it is always pulled;
* any other tag is pulled only if absent.

This is Kubernetes' own default for an unset ``imagePullPolicy`` except for ``name:latest@sha256:…``,
which Kubernetes always pulls because of the tag; podline always sets the field explicitly. Leaves to others:
parsing the image (``images``), credentials (``auths``), and whether a pull succeeds (the kubelet pulls each
step's own image; ``observing`` reads the outcome, and ``scheduling`` gives up on an image that cannot be
pulled, the runner image standing in for the step to record its failure).
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping

from podline.core import errors, images


class Pull(enum.StrEnum):
    """A step's ``pull:`` value, as Drone spells it."""

    ALWAYS = "always"
    IF_NOT_EXISTS = "if-not-exists"
    NEVER = "never"


class PullPolicy(enum.StrEnum):
    """A container's ``imagePullPolicy``, as Kubernetes spells it."""

    ALWAYS = "Always"
    IF_NOT_PRESENT = "IfNotPresent"
    NEVER = "Never"


# Drone accepts these for "no preference" (drone-runner-kube engine/const.go lists "" and "default").
UNSET_SPELLINGS = frozenset({"", "default"})

_POLICIES: Mapping[Pull, PullPolicy] = {
    Pull.ALWAYS: PullPolicy.ALWAYS,
    Pull.IF_NOT_EXISTS: PullPolicy.IF_NOT_PRESENT,
    Pull.NEVER: PullPolicy.NEVER,
}


def parse_pull(value: str | None, *, path: str = "pull") -> Pull | None:
    """Read a ``pull:`` value: None when unset, else a ``Pull``.

    Values are exact and case-sensitive, as in Drone. Unlike drone-runner-kube, which silently treats
    an unknown value as unset, an unknown value raises ``errors.InvalidPipeline`` at ``path``.
    """
    if value is None or value in UNSET_SPELLINGS:
        return None
    try:
        return Pull(value)
    except ValueError:
        expected = ", ".join(p.value for p in Pull)
        shown = json.dumps(value) if isinstance(value, str) else repr(value)
        raise errors.InvalidPipeline.at(
            path, f"unknown pull value {shown}; expected one of {expected}"
        ) from None


def pull_policy(pull: Pull | None, image: images.ImageRef) -> PullPolicy:
    """The ``imagePullPolicy`` for a step with this ``pull:`` value and image (rules in the module doc)."""
    if pull is not None:
        return _POLICIES[pull]
    if image.digest is not None:
        return PullPolicy.IF_NOT_PRESENT
    return PullPolicy.ALWAYS if image.is_latest else PullPolicy.IF_NOT_PRESENT
