"""Classified errors of the core.

Every error names *where* the problem is (a field path such as ``spec.steps[2].image``, or a Secret name
and registry key) and *why*, and never carries a secret value. The shell maps these to permanent failures
of a run; transient API errors are the shell's business, not the core's.
"""

from __future__ import annotations

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


class ImageConfigUnavailable(PodlineError):
    """The registry would not tell what an image runs (its ENTRYPOINT/CMD): refused, not found, unreachable."""
