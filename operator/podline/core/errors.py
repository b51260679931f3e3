"""Classified errors of the core.

Every error names *where* the problem is (a field path such as ``spec.steps[2].image``, or a Secret name
and registry key) and *why*, and never carries a secret value. The shell maps these to permanent failures
of a run; transient API errors are the shell's business, not the core's.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One validation finding: a field path and a human reason."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class PodlineError(Exception):
    """Base class of every error the core raises on bad input."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__("; ".join(str(p) for p in self.problems))

    @classmethod
    def at(cls, path: str, message: str) -> PodlineError:
        return cls([Problem(path, message)])

    def lines(self) -> list[str]:
        """One line per problem, the form the CLI prints and the status condition carries."""
        return [str(p) for p in self.problems]


class InvalidPipeline(PodlineError):
    """The Pipeline spec breaks a rule (schema, names, dependencies, policy)."""


class InvalidDroneFile(PodlineError):
    """A Drone configuration file (``.drone.yml``, ``.jsonnet``, ``.star``, 0.8) that cannot be converted."""


class InvalidImageReference(PodlineError):
    """An image reference does not follow the distribution/reference grammar."""


class BadRegistryAuth(PodlineError):
    """A Secret named in image_pull_secrets cannot be turned into registry credentials.

    Messages name the Secret and the registry key, never the credential.
    """


class MissingSecret(PodlineError):
    """A Secret the pipeline refers to does not exist in the Pipeline's namespace."""


class PolicyViolation(InvalidPipeline):
    """The spec asks for something the operator's configuration forbids (privileged, host paths, …)."""


class RegistryReason(enum.StrEnum):
    """Why an image's config could not be read from its registry."""

    UNAUTHORIZED = "unauthorized"
    NOT_FOUND = "not found"
    UNREACHABLE = "unreachable"
    UNTRUSTED = "untrusted TLS certificate"
    BAD_RESPONSE = "bad response"
    NO_PLATFORM = "no manifest for the platform"


class ImageConfigUnavailable(PodlineError):
    """The registry would not tell what an image runs (its ENTRYPOINT/CMD): refused, not found, unreachable.

    Made by ``because``: ``image`` is the reference as written, ``reason`` a `RegistryReason`, and the
    message adds what happened in words (the registry key and Secret a refused credential came from, a status
    code, a registry error code) — never a credential, a token or a response body. ``transient``: trying
    again later may succeed. (Made by ``at``, it has only its message.)
    """

    image: str = ""
    reason: RegistryReason | None = None
    detail: str = ""

    @classmethod
    def because(
        cls, image: str, reason: RegistryReason, detail: str = "", *, path: str = ""
    ) -> ImageConfigUnavailable:
        text = json.dumps(image[:300]) + ("…" if len(image) > 300 else "")
        message = f"cannot read the config of image {text}: {reason}" + (f": {detail}" if detail else "")
        error = cls([Problem(path, message)])
        error.image, error.reason, error.detail = image, reason, detail
        return error

    @property
    def transient(self) -> bool:
        return self.reason is RegistryReason.UNREACHABLE
