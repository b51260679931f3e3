"""The ``DRONE_*`` and ``CI_*`` variables of a run, derived from its build metadata as Drone derives them.

One home for them: ``compiling`` puts ``variables`` (plus the workspace and step variables) into every
container's environment, and ``substitution`` evaluates ``${…}`` against the same values, as Drone's runner
does with drone/runner-go's ``environ`` package (``environ.go``: ``System``, ``Repo``, ``Build``, ``Stage``,
``Link``; ``semver.go``; ``calver.go``). ``DRONE_TAG`` comes from a ``refs/tags/…`` ref; the ``DRONE_SEMVER*``
family is coreos/go-semver v0.3.0's reading of it (runner-go's pinned parser), the ``DRONE_CALVER*`` family
runner-go's own. A variable whose source the metadata does not give is left out (Drone would set an empty
string or ``0``; in ``${…}`` both read as empty, and a shell test ``[ -z "$X" ]`` holds either way).
Times are the metadata's (``created``, ``started``): the core reads no clock.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from podline.core import models, substitution

_INT64 = 2**63
_IDENTIFIER = re.compile(r"^[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*$")
_GO_INT = re.compile(r"[+-]?[0-9]+\Z")
_PULL_NUMBER = re.compile(r"\d+")
TAG_PREFIX = "refs/tags/"


def variables(
    build: models.BuildInfo | None,
    *,
    stage: str,
    stage_type: str,
    depends_on: tuple[str, ...] = (),
    platform: tuple[str | None, str | None] = (None, None),
) -> dict[str, str]:
    """Every Drone variable of the run: system, repository, build, stage and link, in Drone's precedence."""
    out = {"CI": "true", "DRONE": "true", "DRONE_CARD_PATH": "/dev/stdout"}
    out.update(_stage(stage, stage_type, depends_on, platform))
    if build is not None:
        out.update(_system(build))
        out.update(_repo(build))
        out.update(_build(build))
        if build.system_proto and build.instance and build.repo and build.number is not None:
            out["DRONE_BUILD_LINK"] = f"{build.system_proto}://{build.instance}/{build.repo}/{build.number}"
    return out


def _known(values: Mapping[str, str | None]) -> dict[str, str]:
    return {name: value for name, value in values.items() if value is not None}


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _stage(
    name: str, stage_type: str, depends_on: tuple[str, ...], platform: tuple[str | None, str | None]
) -> dict[str, str]:
    os_, arch = platform
    return _known(
        {
            "DRONE_STAGE_NAME": name,
            "DRONE_STAGE_KIND": "pipeline",
            "DRONE_STAGE_TYPE": stage_type,
            "DRONE_STAGE_NUMBER": "1",
            "DRONE_STAGE_OS": os_,
            "DRONE_STAGE_ARCH": arch,
            "DRONE_STAGE_DEPENDS_ON": ",".join(depends_on) or None,
        }
    )


def _system(build: models.BuildInfo) -> dict[str, str]:
    return _known(
        {
            "DRONE_SYSTEM_PROTO": build.system_proto,
            "DRONE_SYSTEM_HOST": build.instance,
            "DRONE_SYSTEM_HOSTNAME": build.instance,
        }
    )


def _repo(build: models.BuildInfo) -> dict[str, str]:
    slug = build.repo
    namespace, name = (slug.rsplit("/", 1) if "/" in slug else ("", slug)) if slug else (None, None)
    private = _text(build.private)
    return _known(
        {
            "DRONE_REPO": slug,
            "DRONE_REPO_OWNER": namespace,
            "DRONE_REPO_NAMESPACE": namespace,
            "DRONE_REPO_NAME": name,
            "DRONE_REPO_LINK": build.repo_link,
            "DRONE_REPO_BRANCH": build.repo_branch,
            "DRONE_REPO_VISIBILITY": build.visibility,
            "DRONE_REPO_PRIVATE": private,
            "DRONE_REMOTE_URL": build.remote,
            "DRONE_GIT_HTTP_URL": build.remote,
            "DRONE_GIT_SSH_URL": build.ssh_url,
            "CI_REPO": slug,
            "CI_REPO_NAME": slug,
            "CI_REPO_LINK": build.repo_link,
            "CI_REPO_REMOTE": build.remote,
            "CI_REMOTE_URL": build.remote,
            "CI_REPO_PRIVATE": private,
        }
    )


def _build(build: models.BuildInfo) -> dict[str, str]:
    number, parent = _text(build.number), _text(build.parent)
    created, started = _text(build.created), _text(build.started)
    out = _known(
        {
            "DRONE_BRANCH": build.branch,
            "DRONE_SOURCE_BRANCH": build.source_branch or build.branch,
            "DRONE_TARGET_BRANCH": build.branch,
            "DRONE_COMMIT": build.commit,
            "DRONE_COMMIT_SHA": build.commit,
            "DRONE_COMMIT_BEFORE": build.before,
            "DRONE_COMMIT_AFTER": build.commit,
            "DRONE_COMMIT_REF": build.ref,
            "DRONE_COMMIT_BRANCH": build.branch,
            "DRONE_COMMIT_LINK": build.link,
            "DRONE_COMMIT_MESSAGE": build.message,
            "DRONE_COMMIT_AUTHOR": build.author,
            "DRONE_COMMIT_AUTHOR_EMAIL": build.author_email,
            "DRONE_COMMIT_AUTHOR_AVATAR": build.author_avatar,
            "DRONE_COMMIT_AUTHOR_NAME": build.author_name,
            "DRONE_BUILD_NUMBER": number,
            "DRONE_BUILD_PARENT": parent,
            "DRONE_BUILD_EVENT": build.event,
            "DRONE_BUILD_ACTION": build.action,
            "DRONE_BUILD_DEBUG": _text(build.debug),
            "DRONE_BUILD_CREATED": created,
            "DRONE_BUILD_STARTED": started,
            "DRONE_BUILD_TRIGGER": build.trigger,
            "DRONE_DEPLOY_TO": build.target,
            "DRONE_DEPLOY_ID": _text(build.deploy_id),
            "DRONE_CRON": build.cron,
            "CI_BUILD_NUMBER": number,
            "CI_PARENT_BUILD_NUMBER": parent,
            "CI_BUILD_CREATED": created,
            "CI_BUILD_STARTED": started,
            "CI_BUILD_EVENT": build.event,
            "CI_BUILD_LINK": build.link,
            "CI_BUILD_TARGET": build.target,
            "CI_COMMIT_SHA": build.commit,
            "CI_COMMIT_REF": build.ref,
            "CI_COMMIT_BRANCH": build.branch,
            "CI_COMMIT_MESSAGE": build.message,
            "CI_COMMIT_AUTHOR": build.author,
            "CI_COMMIT_AUTHOR_NAME": build.author_name,
            "CI_COMMIT_AUTHOR_EMAIL": build.author_email,
            "CI_COMMIT_AUTHOR_AVATAR": build.author_avatar,
        }
    )
    if build.event == "pull_request":
        out.update(
            _known(
                {"DRONE_PULL_REQUEST": pull_request_of(build.ref), "DRONE_PULL_REQUEST_TITLE": build.title}
            )
        )
    if build.ref and build.ref.startswith(TAG_PREFIX):
        tag = build.ref.removeprefix(TAG_PREFIX)
        out["DRONE_TAG"] = tag
        out.update(semver(tag))
        out.update(calver(tag))
    return out


def pull_request_of(ref: str | None) -> str:
    """The pull request number, as Drone finds it: the first run of digits in the ref (``refs/pull/42/head``)."""
    found = _PULL_NUMBER.search(ref or "")
    return found.group() if found else ""


def substitution_lookup(values: Mapping[str, str]) -> substitution.Lookup:
    """What ``${NAME}`` reads: the run's Drone variables (not the pipeline's own ``environment``), as in Drone."""
    return substitution.lookup_of(values)


# --- DRONE_SEMVER*: runner-go environ/semver.go with coreos/go-semver v0.3.0 ---------------------------------


class _SemverError(ValueError):
    pass


def _parse_int(text: str) -> int:
    """Go's ``strconv.ParseInt(text, 10, 64)``, with its error messages."""
    if not _GO_INT.match(text):
        raise _SemverError(f"strconv.ParseInt: parsing {substitution.go_quote(text)}: invalid syntax")
    value = int(text)
    if not -_INT64 <= value < _INT64:
        raise _SemverError(f"strconv.ParseInt: parsing {substitution.go_quote(text)}: value out of range")
    return value


def _parse_semver(text: str) -> tuple[tuple[int, int, int], str, str]:
    version, _, metadata = text.partition("+") if "+" in text else (text, "", "")
    version, _, prerelease = version.partition("-") if "-" in version else (version, "", "")
    parts = version.split(".", 2)
    if len(parts) != 3:
        raise _SemverError(f"{version} is not in dotted-tri format")
    for kind, identifier in (("pre-release", prerelease), ("metadata", metadata)):
        if identifier and not _IDENTIFIER.match(identifier):
            raise _SemverError(f"failed to validate {kind}: {identifier} is not a valid semver identifier")
    major, minor, patch = (_parse_int(p) for p in parts)
    return (major, minor, patch), prerelease, metadata


def semver(tag: str) -> dict[str, str]:
    """``DRONE_SEMVER``, ``_MAJOR``, ``_MINOR``, ``_PATCH``, ``_PRERELEASE``, ``_BUILD``, ``_SHORT``, or
    ``DRONE_SEMVER_ERROR`` saying why the tag (less one leading ``v``) is no semantic version."""
    try:
        (major, minor, patch), prerelease, metadata = _parse_semver(tag.removeprefix("v"))
    except _SemverError as exc:
        return {"DRONE_SEMVER_ERROR": str(exc)}
    short = f"{major}.{minor}.{patch}"
    out = {
        "DRONE_SEMVER": short
        + (f"-{prerelease}" if prerelease else "")
        + (f"+{metadata}" if metadata else ""),
        "DRONE_SEMVER_MAJOR": str(major),
        "DRONE_SEMVER_MINOR": str(minor),
        "DRONE_SEMVER_PATCH": str(patch),
        "DRONE_SEMVER_SHORT": short,
    }
    if prerelease:
        out["DRONE_SEMVER_PRERELEASE"] = prerelease
    if metadata:
        out["DRONE_SEMVER_BUILD"] = metadata
    return out


# --- DRONE_CALVER*: runner-go environ/calver.go ---------------------------------------------------------------


def _go_atoi(text: str) -> int | None:
    try:
        return _parse_int(text)
    except _SemverError:
        return None


def calver(tag: str) -> dict[str, str]:
    """``DRONE_CALVER*`` for a tag whose first two parts are numbers and the first a year (19–99 or 2019–9998)."""
    parts = tag.removeprefix("v").split(".", 2)
    if len(parts) < 2:
        return {}
    major, minor = parts[0], parts[1]
    micro = parts[2] if len(parts) > 2 else ""
    micro, _, modifier = micro.partition("-")
    year = _go_atoi(major)
    if year is None or _go_atoi(minor) is None or not (18 < year < 100 or 2018 < year < 9999):
        return {}
    short = f"{major}.{minor}" + (f".{micro}" if micro else "")
    out = {
        "DRONE_CALVER": short + (f"-{modifier}" if modifier else ""),
        "DRONE_CALVER_MAJOR_MINOR": f"{major}.{minor}",
        "DRONE_CALVER_MAJOR": major,
        "DRONE_CALVER_MINOR": minor,
        "DRONE_CALVER_MICRO": micro,
        "DRONE_CALVER_SHORT": short,
    }
    if modifier:
        out["DRONE_CALVER_MODIFIER"] = modifier
    return out
