"""Builds: the Pipelines of one ``.drone.yml``, run in the order their pipeline-level ``depends_on`` gives.

A build is the Pipelines of a namespace that carry the same label ``podline.dev/build`` (``podline convert``
sets it to the file's build name). Within a build, ``spec.depends_on`` names other members by their Drone
name (``spec.name``, else the resource's name). Nothing else links them: no owner object, so the members
may be created in any order (``kubectl apply`` of a converted file, a GitOps sync), and each one decides
alone, from the statuses of the members it depends on (``gate``).

Drone's rules (drone/drone ``trigger/trigger.go``, ``operator/manager/teardown.go`` and ``util.go``): a
stage waits until every stage it depends on is done; then it is skipped if the build is failing and its
``trigger.status`` does not include ``failure``, or if the build is passing and ``trigger.status`` does not
include ``success`` (an empty ``trigger.status`` means ``success`` only); otherwise it runs. A stage without
``depends_on`` runs at once, whatever its ``trigger.status``. Failing means a stage ended failed, errored or
killed (``core/stage.go`` ``IsFailed``); a skipped stage is done and not failing. Where Drone looks at every
stage of the build that has failed by then (which depends on timing), podline looks at the stages this one
depends on, directly or not: the same answer whenever the graph orders them, and never a race.

The run of a member (``current_runs``) is its own generation and rerun token plus the runs of the members it
depends on: rerunning or editing one member changes the runs of everything after it, which then run again,
each waiting for the CURRENT run of its dependencies. A dependency that does not exist yet is waited for.
``DRONE_BUILD_STATUS``, ``DRONE_FAILED_STAGES`` are given as runner-go's ``environ.Build`` does.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from podline.core import conventions, errors, models, statuses, validation, whens

FAILED_PHASES = frozenset({"Failed", "Error", "Cancelled"})
DONE_PHASES = FAILED_PHASES | {"Succeeded", "Skipped"}


class Verdict(enum.StrEnum):
    WAIT = "wait"  # a dependency's current run has not ended (or it does not exist yet)
    START = "start"
    SKIP = "skip"  # Drone's skipped stage: its dependencies failed (or passed, for trigger.status: [failure])
    INVALID = "invalid"  # a cycle: it can never start


@dataclass(frozen=True)
class Member:
    """What a Pipeline contributes to its build's decisions (from its object: spec, metadata and status)."""

    name: str  # the Drone name others' depends_on use
    resource: str  # metadata.name
    depends_on: tuple[str, ...]
    own_run: str  # generation and rerun token (``conventions.run_id``), without the dependencies' runs
    status_run: str | None = None
    phase: str | None = None
    status_reason: str | None = None
    on_success: bool = True
    on_failure: bool = False


@dataclass(frozen=True)
class Gate:
    verdict: Verdict
    message: str = ""
    reason: str = ""  # statuses.Reason of a skip
    waiting_for: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()  # DRONE_BUILD_STATUS, DRONE_FAILED_STAGES

    @property
    def opens(self) -> bool:
        return self.verdict is Verdict.START


def build_of(body: Mapping[str, Any]) -> str | None:
    """The build a Pipeline belongs to (its ``podline.dev/build`` label), or None."""
    labels = (body.get("metadata") or {}).get("labels") or {}
    value = labels.get(conventions.LABEL_BUILD)
    return str(value) if value else None


def member_of(body: Mapping[str, Any]) -> Member:
    """The build member of a Pipeline object. Lenient: a spec too broken to read contributes no dependencies
    (its own run fails as invalid, and its dependents then skip)."""
    meta = body.get("metadata") or {}
    spec = body.get("spec") if isinstance(body.get("spec"), Mapping) else {}
    assert isinstance(spec, Mapping)
    status = body.get("status") or {}
    raw_deps = spec.get("depends_on")
    deps = tuple(str(d) for d in raw_deps) if isinstance(raw_deps, list) else ()
    try:
        trigger = models.Conditions.model_validate(spec.get("trigger") or {})
    except ValidationError:
        trigger = models.Conditions()
    notes = meta.get("annotations") or {}
    return Member(
        name=str(spec.get("name") or meta.get("name", "")),
        resource=str(meta.get("name", "")),
        depends_on=deps,
        own_run=conventions.run_id(int(meta.get("generation") or 1), notes.get(conventions.ANNOTATION_RERUN)),
        status_run=status.get("run"),
        phase=status.get("phase"),
        status_reason=status.get("reason"),
        on_success=whens.runs_on(trigger, failing=False),
        on_failure=not trigger.status.is_empty and whens.runs_on(trigger, failing=True),
    )


def current_runs(members: Mapping[str, Member]) -> dict[str, str]:
    """Each member's current run id: its own, plus a digest of its dependencies' current runs (a missing
    dependency counts as "-"). Members on a cycle keep their own run id.

    A member some of whose dependencies (directly or not) are missing keeps the run its status is about, if
    that run has begun (it is neither waiting nor about an older spec of its own): a dependency deleted after
    it ran, or not yet seen by an operator that has just started, must not turn its run into another one,
    which would stop it (superseded) and run it again."""
    out: dict[str, str] = {}
    incomplete: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> str:
        if name in out:
            return out[name]
        member = members[name]
        parts = []
        for dep in sorted(set(member.depends_on)):
            if dep in path or dep == name:
                out[name] = member.own_run  # a cycle: never starts (gate), so its id is moot
                return out[name]
            if dep not in members or dep in incomplete:
                incomplete.add(name)
            parts.append(f"{dep}={visit(dep, (*path, name)) if dep in members else '-'}")
            if dep in incomplete:
                incomplete.add(name)
        if not parts:
            out[name] = member.own_run
        elif name in incomplete and _begun(member):
            out[name] = str(member.status_run)
        else:
            out[name] = f"{member.own_run}-d{hashlib.sha256(chr(10).join(parts).encode()).hexdigest()[:6]}"
        return out[name]

    for name in members:
        visit(name, ())
    return out


def _begun(member: Member) -> bool:
    """Whether the member's status is about a run of its current spec that has begun (not only waited)."""
    run = member.status_run or ""
    return run.startswith(f"{member.own_run}-d") and member.status_reason != statuses.Reason.WAITING


def cycle_through(name: str, members: Mapping[str, Member]) -> list[str] | None:
    """A dependency cycle among ``name`` and the members it depends on, as a path ``[a, b, …, a]``."""
    reachable = [name, *ancestors(name, members)]
    graph = {n: [d for d in members[n].depends_on if d in members] for n in reachable}
    return validation.find_cycle(graph)


def ancestors(name: str, members: Mapping[str, Member]) -> list[str]:
    """Every member ``name`` depends on, directly or not, in a stable order (cycles are walked once)."""
    seen: list[str] = []
    stack = list(reversed(members[name].depends_on))
    while stack:
        dep = stack.pop()
        if dep in seen or dep not in members:
            continue
        seen.append(dep)
        stack.extend(reversed(members[dep].depends_on))
    return seen


def gate(name: str, members: Mapping[str, Member], runs: Mapping[str, str]) -> Gate:
    """Whether member ``name`` may start its current run now, must wait, or ends skipped; ``runs`` is
    ``current_runs(members)``."""
    member = members[name]
    cycle = cycle_through(name, members)
    if cycle:
        return Gate(
            Verdict.INVALID,
            "spec.depends_on: a dependency cycle: " + " -> ".join(cycle),
            statuses.Reason.INVALID,
        )
    waiting = []
    for dep in dict.fromkeys(member.depends_on):
        other = members.get(dep)
        if other is None:
            waiting.append((dep, "not created yet"))
        elif other.status_run != runs[dep] or other.phase not in DONE_PHASES:
            state = other.phase if other.status_run == runs[dep] and other.phase else "not started"
            waiting.append((dep, state))
    if waiting:
        return Gate(
            Verdict.WAIT,
            "waiting for " + ", ".join(f"{d} ({why})" for d, why in waiting),
            waiting_for=tuple(d for d, _ in waiting),
        )
    failed = [
        a
        for a in ancestors(name, members)
        if members[a].phase in FAILED_PHASES and members[a].status_run == runs[a]
    ]
    env: tuple[tuple[str, str], ...] = (("DRONE_BUILD_STATUS", "failure" if failed else "success"),)
    if failed:
        env += (("DRONE_FAILED_STAGES", ",".join(failed)),)
    if not member.depends_on:
        return Gate(Verdict.START, env=env)
    if failed and not member.on_failure:
        return Gate(Verdict.SKIP, f"skipped: {_pipelines(failed)} failed", statuses.Reason.DEPENDENCY_FAILED)
    if not failed and not member.on_success:
        return Gate(
            Verdict.SKIP,
            "skipped: trigger.status does not include success, and the pipelines it depends on did not fail",
            statuses.Reason.TRIGGER_STATUS,
        )
    return Gate(Verdict.START, env=env)


def twins(name: str, resources: Sequence[str], build: str) -> Gate:
    """The gate of Pipelines of one build that share a Drone name: depends_on cannot tell them apart."""
    listed = ", ".join(resources)
    return Gate(
        Verdict.INVALID,
        f'spec.name: Pipelines {listed} of build "{build}" are all named "{name}"; depends_on could not tell '
        "them apart",
        statuses.Reason.INVALID,
    )


def dependents(name: str, members: Mapping[str, Member]) -> list[str]:
    """The members that list ``name`` in their depends_on (by resource name, for the operator to wake)."""
    return [m.resource for m in members.values() if name in m.depends_on]


def _pipelines(names: list[str]) -> str:
    quoted = ", ".join(f'"{n}"' for n in names)
    return f"pipeline {quoted}" if len(names) == 1 else f"pipelines {quoted}"


def check_file(pipelines: Sequence[tuple[str, Mapping[str, Any]]]) -> list[errors.Problem]:
    """What ``podline convert`` refuses in one file's ``kind: pipeline`` documents ((where, document) pairs):
    two pipelines of one name (or of one resource name), a depends_on naming no pipeline of the file, a
    cycle. (Drone's linter refuses the first and last; it ignores unknown names, which podline would wait
    for forever.)"""
    problems: list[errors.Problem] = []
    seen: dict[str, str] = {}
    graph: dict[str, list[str]] = {}
    for where, doc in pipelines:
        name = str(doc.get("name") or "default")
        resource = conventions.dns1123_label(name)
        if resource in seen:
            problems.append(
                errors.Problem(
                    f"{where}.name", f'"{name}" is the name of {seen[resource]} too (as a resource)'
                )
            )
        seen[resource] = where
        deps = doc.get("depends_on")
        graph[name] = [str(d) for d in deps] if isinstance(deps, list) else []
    for where, doc in pipelines:
        name = str(doc.get("name") or "default")
        for index, dep in enumerate(graph[name]):
            if dep not in graph:
                problems.append(errors.Problem(f"{where}.depends_on[{index}]", f'unknown pipeline "{dep}"'))
    cycle = validation.find_cycle({n: [d for d in deps if d in graph] for n, deps in graph.items()})
    if cycle:
        where = next(w for w, d in pipelines if str(d.get("name") or "default") == cycle[0])
        problems.append(errors.Problem(f"{where}.depends_on", "a dependency cycle: " + " -> ".join(cycle)))
    return problems


def order(members: Mapping[str, Member]) -> list[str]:
    """The members in an order their depends_on allow (Kahn's, ties by name); members on a cycle last."""
    done: list[str] = []
    left = dict(members)
    while left:
        ready = sorted(n for n, m in left.items() if all(d in done or d not in members for d in m.depends_on))
        if not ready:
            return done + sorted(left)
        done.extend(ready)
        for name in ready:
            del left[name]
    return done


def outcome(phases: Sequence[str | None]) -> str:
    """A build's one result from its pipelines' phases, as Drone's build status: Running while one has not
    ended, Failed if one failed (errored, was cancelled), else Succeeded (skipped pipelines do not fail it)."""
    if any(p not in DONE_PHASES for p in phases):
        return "Running"
    return "Failed" if any(p in FAILED_PHASES for p in phases) else "Succeeded"


Env = tuple[tuple[str, str], ...]


def runs_if_passing(bodies: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str], tuple[str, Env]]:
    """For ``podline render``: each build member's run id, and the variables it gets if the pipelines it
    depends on succeed, by (namespace, name). ``bodies`` are Pipeline objects with their metadata."""
    groups: dict[tuple[str, str], dict[str, tuple[Member, Mapping[str, Any]]]] = {}
    for body in bodies:
        build = build_of(body)
        if build is not None:
            meta = body.get("metadata") or {}
            member = member_of(body)
            groups.setdefault((meta.get("namespace") or "default", build), {})[member.name] = (member, body)
    out: dict[tuple[str, str], tuple[str, Env]] = {}
    for (namespace, _), found in groups.items():
        members = {name: member for name, (member, _) in found.items()}
        current = current_runs(members)
        for name, member in members.items():
            env: Env = (("DRONE_BUILD_STATUS", "success"),) if member.depends_on else ()
            out[(namespace, member.resource)] = (current[name], env)
    return out
