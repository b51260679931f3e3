"""Drone's ``when`` and ``trigger`` conditions, evaluated against build metadata and the run's state.

A condition matches when one ``include`` glob matches (or there are none) and no ``exclude`` glob does.
A condition on a field the build metadata does not provide is not evaluated (it matches): without
metadata a Pipeline simply runs all its steps, which is what ``kubectl apply`` of a pipeline means.
``status`` is special: it is the run's state so far and defaults to ``success`` only.
"""

from __future__ import annotations

import fnmatch

from podline.core import models

_BUILD_FIELDS = ("branch", "event", "ref", "repo", "target", "cron", "action", "instance")


def matches(condition: models.Condition, value: str | None) -> bool:
    if condition.is_empty or value is None:
        return True
    if condition.include and not any(fnmatch.fnmatchcase(value, p) for p in condition.include):
        return False
    return not any(fnmatch.fnmatchcase(value, p) for p in condition.exclude)


def build_matches(conditions: models.Conditions, build: models.BuildInfo | None) -> bool:
    """Every condition but ``status`` (and ``paths``, which needs a diff podline does not have)."""
    if build is None:
        return True
    return all(matches(getattr(conditions, name), getattr(build, name)) for name in _BUILD_FIELDS)


def runs_on(conditions: models.Conditions, *, failing: bool) -> bool:
    """Whether a step whose dependencies are done runs, given whether the run has failed so far."""
    status = conditions.status
    if status.is_empty:
        return not failing
    return matches(status, "failure" if failing else "success")
