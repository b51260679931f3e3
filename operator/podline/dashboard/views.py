"""What the dashboard shows of Pipelines: the runs list's rows, its filters, and a run's timeline.

Purely computational: a Pipeline object (as the API returns it) and the time in, plain data out, so the
pages and the tests see the same thing. What a run holds is the operator's (``core.statuses``): the phase,
the run's start and end (whole seconds), and each step's state with its start and end in milliseconds, as
the step's entrypoint recorded them. Who triggered the run is the ``podline.dev/build`` annotation
(``core.models.BuildInfo``). Which step waits for which is the run plan's (``core.compiling``), built from
the spec as the operator builds it, so parallel ``depends_on`` branches are drawn as they ran.

A step's bar on the timeline has up to three parts, from the run's start:
  * wait: until its turn (every step it comes after has ended; the run's start for a first step);
  * pull: from its turn until it started (its image pulled, its container created: milliseconds when the
    container was already there, the pull when it was not);
  * run: from its start until it ended (or now, while it runs).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from podline.core import (
    compiling,
    conventions,
    errors,
    models,
    observing,
    policies,
    runs,
    statuses,
    validation,
)

PENDING = str(statuses.Phase.PENDING)


def parse_time(stamp: Any) -> datetime | None:
    """An RFC 3339 time of the status (``…Z``, with or without milliseconds), None when absent or bad."""
    if not isinstance(stamp, str) or not stamp:
        return None
    try:
        return datetime.fromisoformat(stamp)
    except ValueError:
        return None


def epoch_ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def _ms(stamp: Any) -> int | None:
    moment = parse_time(stamp)
    return None if moment is None else epoch_ms(moment)


@dataclass(frozen=True)
class Trigger:
    """What started the run, from the ``podline.dev/build`` annotation."""

    event: str | None = None
    branch: str | None = None
    commit: str | None = None
    author: str | None = None
    number: int | None = None
    message: str | None = None


def trigger_of(body: Mapping[str, Any]) -> Trigger:
    """The build metadata; an unreadable annotation shows as none (the operator reports it on the run)."""
    notes = (body.get("metadata") or {}).get("annotations") or {}
    raw = notes.get(conventions.ANNOTATION_BUILD)
    if not raw:
        return Trigger()
    try:
        info = models.BuildInfo.model_validate_json(raw)
    except ValueError:
        return Trigger()
    return Trigger(
        event=info.event,
        branch=info.branch,
        commit=info.commit,
        author=info.author,
        number=info.number,
        message=info.message,
    )


@dataclass(frozen=True)
class StepCell:
    """A step at a glance: its name and state."""

    name: str
    container: str
    state: str


@dataclass(frozen=True)
class Row:
    """One Pipeline's current run in the runs list."""

    namespace: str
    name: str
    phase: str
    run: str | None
    trigger: Trigger
    started: str | None
    duration_s: float | None
    steps: tuple[StepCell, ...]
    current_step: str | None = None
    reason: str | None = None
    message: str | None = None
    pod: str | None = None

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, **asdict(self)}


def _status(body: Mapping[str, Any]) -> Mapping[str, Any]:
    status = body.get("status")
    return status if isinstance(status, Mapping) else {}


def duration_s(status: Mapping[str, Any], now: datetime) -> float | None:
    """How long the run took; while it runs, how long so far; None before it started."""
    begin = parse_time(status.get("startTime"))
    if begin is None:
        return None
    end = parse_time(status.get("completionTime"))
    if end is None and status.get("phase") in statuses.TERMINAL_PHASES:
        return None  # ended without a recorded end: unknown, not growing
    return max(0.0, ((end or now) - begin).total_seconds())


def row_of(body: Mapping[str, Any], now: datetime) -> Row:
    meta = body.get("metadata") or {}
    status = _status(body)
    steps = tuple(
        StepCell(
            name=str(s.get("name", "")),
            container=str(s.get("container", "")),
            state=str(s.get("state", statuses.StepState.WAITING)),
        )
        for s in status.get("steps") or []
        if isinstance(s, Mapping)
    )
    return Row(
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        phase=str(status.get("phase") or PENDING),
        run=status.get("run"),
        trigger=trigger_of(body),
        started=status.get("startTime"),
        duration_s=duration_s(status, now),
        steps=steps,
        current_step=status.get("currentStep"),
        reason=status.get("reason"),
        message=status.get("message"),
        pod=status.get("podName"),
    )


@dataclass(frozen=True)
class Filters:
    """The list's filters: each empty one matches everything, each other one matches exactly."""

    namespace: str = ""
    phase: str = ""
    branch: str = ""
    event: str = ""

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> Filters:
        return cls(
            **{name: query.get(name, "").strip() for name in ("namespace", "phase", "branch", "event")}
        )

    def matches(self, row: Row) -> bool:
        wanted = (
            (self.namespace, row.namespace),
            (self.phase, row.phase),
            (self.branch, row.trigger.branch or ""),
            (self.event, row.trigger.event or ""),
        )
        return all(not want or want == have for want, have in wanted)


def rows(bodies: Iterable[Mapping[str, Any]], now: datetime, filters: Filters = Filters()) -> list[Row]:
    """The list: matching rows, the latest start first (runs not started yet, newest of all, on top)."""
    return ordered(row for row in (row_of(b, now) for b in bodies) if filters.matches(row))


def ordered(found: Iterable[Row]) -> list[Row]:
    """Rows in the list's order: the latest start first, then by namespace/name."""
    result = sorted(found, key=lambda r: r.key)
    result.sort(key=lambda r: r.started or "~", reverse=True)  # "~" sorts after every digit: not started
    return result


def choices(all_rows: Sequence[Row]) -> dict[str, list[str]]:
    """The values each filter can take in these rows, for the filters' drop-downs."""
    return {
        "namespace": sorted({r.namespace for r in all_rows}),
        "phase": [str(p) for p in statuses.Phase if any(r.phase == p for r in all_rows)],
        "branch": sorted({r.trigger.branch for r in all_rows if r.trigger.branch}),
        "event": sorted({r.trigger.event for r in all_rows if r.trigger.event}),
    }


# --- a run's timeline ------------------------------------------------------------------------------------


class Part(StrEnum):
    WAIT = "wait"
    PULL = "pull"
    RUN = "run"


@dataclass(frozen=True)
class Span:
    part: Part
    start_ms: int  # from the run's start
    end_ms: int


@dataclass(frozen=True)
class Bar:
    """One step on the timeline: its parts, and its level (0: it waits for nothing; steps of one level that
    wait for the same steps ran side by side)."""

    name: str
    container: str
    state: str
    level: int
    after: tuple[str, ...]  # the steps it waited for (names)
    spans: tuple[Span, ...]
    exit_code: int | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Timeline:
    origin: str | None  # the run's start, which the spans count from
    total_ms: int  # the axis' length
    bars: tuple[Bar, ...]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def dependencies(body: Mapping[str, Any]) -> dict[str, tuple[str, ...]] | None:
    """Each step container's dependencies, as the operator plans them (Drone's rule: in order, unless any
    step names ``depends_on``; the implicit clone step first); None when the spec cannot be planned."""
    try:
        spec = validation.parse(body.get("spec"))
        plan = compiling.compile_model(spec, runs.context_of(body), policies.Policy())
    except (errors.PodlineError, ValueError):
        return None
    return {c.name: c.depends_on for c in plan.steps}


def timeline_of(
    body: Mapping[str, Any], now: datetime, deps: Mapping[str, tuple[str, ...]] | None = None
) -> Timeline:
    """The run's steps on one axis. ``deps`` (container → containers) defaults to ``dependencies(body)``;
    steps it does not know wait for the step before them in the status."""
    status = _status(body)
    steps = [s for s in status.get("steps") or [] if isinstance(s, Mapping)]
    known = dependencies(body) if deps is None else deps
    walk = _Walk(names={str(s.get("container", "")): str(s.get("name", "")) for s in steps})
    for index, s in enumerate(steps):
        previous = (str(steps[index - 1].get("container", "")),) if index else ()
        walk.graph[str(s.get("container", ""))] = tuple(
            (known or {}).get(str(s.get("container", "")), previous)
        )
    run_start = _ms(status.get("startTime"))
    origin = min(
        (m for m in (run_start, *(_ms(s.get("startedAt")) for s in steps)) if m is not None), default=None
    )
    if origin is None:  # not started: the steps, without bars
        return Timeline(origin=None, total_ms=0, bars=tuple(walk.bar(s, origin=0, horizon=0) for s in steps))
    ended = status.get("phase") in statuses.TERMINAL_PHASES
    horizon = (_ms(status.get("completionTime")) if ended else None) or epoch_ms(now)
    horizon = max([horizon, *(_ms(s.get("finishedAt")) or origin for s in steps)])
    bars = tuple(walk.bar(s, origin=origin, horizon=horizon) for s in steps)
    total = max([1, *(span.end_ms for bar in bars for span in bar.spans)])
    return Timeline(origin=observing.ms_time(origin), total_ms=total, bars=bars)


@dataclass
class _Walk:
    """The steps seen so far, in status order (a step only waits for steps declared before it)."""

    names: dict[str, str]  # container → step name
    graph: dict[str, tuple[str, ...]] = field(default_factory=dict)
    ends: dict[str, int | None] = field(default_factory=dict)  # when each step ended (None: not yet)
    levels: dict[str, int] = field(default_factory=dict)

    def bar(self, s: Mapping[str, Any], *, origin: int, horizon: int) -> Bar:
        container = str(s.get("container", ""))
        after = self.graph.get(container, ())
        state = str(s.get("state", statuses.StepState.WAITING))
        started, finished = _ms(s.get("startedAt")), _ms(s.get("finishedAt"))
        dep_ends = [self.ends.get(d) for d in after]
        turn = origin if not after else max((e for e in dep_ends if e is not None), default=None)
        if None in dep_ends:
            turn = None  # a step it waits for has not ended: not its turn yet
        self.levels[container] = 1 + max((self.levels.get(d, 0) for d in after), default=-1)
        self.ends[container] = finished
        code = s.get("exitCode")
        return Bar(
            name=str(s.get("name", "")),
            container=container,
            state=state,
            level=self.levels[container],
            after=tuple(self.names.get(d, d) for d in after),
            spans=_spans(state, turn, started, finished, origin=origin, horizon=horizon) if origin else (),
            exit_code=code if isinstance(code, int) else None,
            reason=s.get("reason"),
        )


def _spans(
    state: str, turn: int | None, started: int | None, finished: int | None, *, origin: int, horizon: int
) -> tuple[Span, ...]:
    """Wait until its turn, pull until it started, run until it ended (see the module's docstring)."""
    skipped = state == statuses.StepState.SKIPPED
    spans: list[Span] = []
    wait_end = turn if turn is not None else (finished if skipped and finished else horizon)
    if wait_end > origin:
        spans.append(Span(Part.WAIT, 0, wait_end - origin))
    if turn is not None and not skipped:
        until = started if started is not None else (finished or horizon)
        if until > turn:
            spans.append(Span(Part.PULL, turn - origin, until - origin))
    if started is not None and not skipped:
        spans.append(Span(Part.RUN, started - origin, max(started, finished or horizon) - origin))
    return tuple(spans)


def history_of(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Earlier runs of the Pipeline, newest first, as the operator keeps them in its status."""
    found = []
    for entry in _status(body).get("history") or []:
        if isinstance(entry, Mapping) and entry.get("run"):
            found.append(
                {
                    "run": str(entry["run"]),
                    "phase": str(entry.get("phase") or ""),
                    "pod": entry.get("podName"),
                    "completed": entry.get("completionTime"),
                }
            )
    return found
