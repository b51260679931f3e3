"""A run of a Pipeline object: its id and its plan, built here and only here.

The operator and ``podline render`` both call ``plan_of``, so what ``render`` prints is what the operator
creates: the same annotations read the same way (``podline.dev/build``, ``podline.dev/timeout``,
``podline.dev/rerun``), the same errors for the same bad input.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pydantic

from podline.core import compiling, conventions, errors, models, plans, policies


def run_of(body: Mapping[str, Any]) -> str:
    """The id of the run a Pipeline asks for now: its generation, plus the rerun token if any."""
    meta = body.get("metadata") or {}
    notes = meta.get("annotations") or {}
    return conventions.run_id(int(meta.get("generation") or 1), notes.get(conventions.ANNOTATION_RERUN))


def context_of(
    body: Mapping[str, Any], *, run: str | None = None, env: tuple[tuple[str, str], ...] = ()
) -> compiling.RunContext:
    """Who the run belongs to, from the Pipeline's metadata. Raises ``errors.InvalidPipeline`` naming the
    annotation that cannot be read."""
    meta = body.get("metadata") or {}
    notes = meta.get("annotations") or {}
    build = None
    raw_build = notes.get(conventions.ANNOTATION_BUILD)
    if raw_build:
        build = build_info(raw_build, path=f"metadata.annotations[{conventions.ANNOTATION_BUILD}]")
    try:
        timeout = conventions.parse_timeout(notes.get(conventions.ANNOTATION_TIMEOUT))
    except ValueError as exc:
        raise errors.InvalidPipeline.at(
            f"metadata.annotations[{conventions.ANNOTATION_TIMEOUT}]", str(exc)
        ) from None
    return compiling.RunContext(
        namespace=meta.get("namespace") or "default",
        pipeline=meta.get("name", ""),
        uid=meta.get("uid", ""),
        generation=int(meta.get("generation") or 1),
        rerun=notes.get(conventions.ANNOTATION_RERUN),
        build=build,
        timeout_seconds=timeout,
        build_run=run,
        build_env=env,
    )


def build_info(raw: str | bytes | Mapping[str, Any], *, path: str) -> models.BuildInfo:
    """Build metadata from JSON (the annotation, or ``podline render --build``). Raises
    ``errors.InvalidPipeline`` at ``path`` naming the field that cannot be read."""
    try:
        if isinstance(raw, Mapping):
            return models.BuildInfo.model_validate(dict(raw))
        return models.BuildInfo.model_validate_json(raw)
    except pydantic.ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False, include_input=False):
            if err["type"] != "value_error" and (err["type"] in _NOT_AN_OBJECT or not err["loc"]):
                message = "must be a JSON object (number, event, branch, tag, ref, commit, repo, remote, …)"
                problems.append(errors.Problem(path, message + _detail(err)))
            else:
                where = path + "".join(f".{part}" for part in err["loc"])
                problems.append(errors.Problem(where, str(err["msg"]).removeprefix("Value error, ")))
        raise errors.InvalidPipeline(problems) from None


_NOT_AN_OBJECT = ("json_invalid", "json_type", "model_type", "model_attributes_type")


def _detail(err: Mapping[str, Any]) -> str:
    return f" ({err['msg']})" if err["type"] == "json_invalid" else ""


def plan_of(
    body: Mapping[str, Any],
    policy: policies.Policy,
    *,
    run: str | None = None,
    env: tuple[tuple[str, str], ...] = (),
) -> plans.RunPlan | errors.PodlineError:
    """The plan of the Pipeline's current run, or the error that says why there can be none. A build's
    member passes its ``run`` and the ``env`` its dependencies give it (``builds``)."""
    try:
        return compiling.compile_spec(body.get("spec"), context_of(body, run=run, env=env), policy)
    except errors.PodlineError as exc:
        return exc
