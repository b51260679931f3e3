"""What a step container is told, and what it decides in the pod: the core's half of the in-pod contract.

Every step container runs ``podline-entrypoint run`` (a static Go binary, ``operator/entrypoint/``) with the
arguments built here (``args_for``). The binary waits for the results of the steps it comes after, decides
run or skip with the same rules as ``decide`` below, runs the command and records a ``Result``. The tests
feed the binary and ``decide`` the same generated cases and require the same answers; the scripted kubelet
(the api tier's test double) sequences steps with ``decide`` itself. ``docs/in-pod.md`` is the contract.

Leaves the pod's shape to ``pods`` and reading results back from the pod status to ``observing``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from podline.core import plans

EXIT_EARLY = 78  # Drone: end the run now, as a success
TOOLS_VOLUME = "podline-tools"
TOOLS_DIR = "/podline"
BINARY = f"{TOOLS_DIR}/bin/entrypoint"  # where the prepare container's postStart hook installs it
RUN_DIR = f"{TOOLS_DIR}/run"
LOG_DIR = f"{TOOLS_DIR}/logs"  # <LOG_DIR>/<container>.log: the copy of a step's (masked) output
DEFAULT_LOG_LIMIT = 64 * 1024 * 1024  # the binary's --log-limit when not given
RUNNER_BINARY = "/podline-entrypoint"  # where every runner image has it
PREPARE_CONTAINER = "podline-prepare"
TERMINATION_LOG = "/dev/termination-log"
MESSAGE_LIMIT = 1000
# The kubelet keeps at most 4 KiB of a container's termination message and 12 KiB for the whole pod, split
# evenly over its containers (kubelet status_manager.go, normalizeStatus): a 200-step pod has 61 bytes each.
POD_MESSAGES_BYTES = 12 * 1024
CONTAINER_MESSAGE_BYTES = 4 * 1024


class Action(StrEnum):
    WAIT = "wait"
    RUN = "run"
    SKIP = "skip"


class ResultState(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"


class Why(StrEnum):
    """The reasons a result can carry (the binary writes the same words)."""

    EARLY_EXIT = "EarlyExit"
    SKIPPED = "Skipped"
    STEP_TIMEOUT = "StepTimeout"
    STOPPED = "Stopped"
    IMAGE_PULL_FAILED = "ImagePullFailed"
    COMMAND_NOT_FOUND = "CommandNotFound"
    COMMAND_NOT_EXECUTABLE = "CommandNotExecutable"


@dataclass(frozen=True)
class StepArgs:
    """Everything one step container is told (the flags of ``podline-entrypoint run``)."""

    name: str
    after: tuple[str, ...] = ()
    detached: tuple[str, ...] = ()  # those of ``after`` that are detached: waited for until they start
    on_success: bool = True
    on_failure: bool = False
    ignore_failure: bool = False
    detach: bool = False
    excluded: bool = False
    timeout_seconds: float = 0
    run_dir: str = RUN_DIR
    termination_log: str = TERMINATION_LOG  # where the termination message is written (tests change it)
    message_limit: int = CONTAINER_MESSAGE_BYTES  # bytes of termination message the kubelet keeps for it
    log_dir: str = ""  # where the copy of its output goes; "": none
    log_limit: int = DEFAULT_LOG_LIMIT  # bytes of output the copy keeps
    mask: tuple[str, ...] = ()  # environment variables whose values are masked in its output
    command: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class Result:
    """A step's outcome as the entrypoint records it: its result file and its termination message."""

    name: str
    state: ResultState
    exit_code: int | None = None
    started_at: int | None = None  # ms since the epoch
    finished_at: int | None = None
    reason: str | None = None
    message: str | None = None
    failing: bool = False
    output_bytes: int | None = None  # bytes of (masked) output the entrypoint relayed; None: it ran nothing

    def to_message(self, limit: int = CONTAINER_MESSAGE_BYTES) -> str:
        """The termination message: short keys, null fields left out, the start in ms since the epoch and the
        duration in ms, the output's bytes (``o``); the message, then the reason, then ``o`` are dropped if it
        would not fit in ``limit`` bytes."""
        fields: dict[str, Any] = {"s": str(self.state), "x": self.exit_code, "a": self.started_at}
        if self.started_at is not None and self.finished_at is not None:
            fields["d"] = self.finished_at - self.started_at
        elif self.finished_at is not None:
            fields["f"] = self.finished_at
        fields["r"], fields["m"], fields["o"] = self.reason, self.message, self.output_bytes
        compact = {k: v for k, v in fields.items() if v is not None}
        for drop in ("m", "r", "o"):
            text = json.dumps(compact, separators=(",", ":"))
            if len(text.encode()) <= limit:
                return text
            compact.pop(drop, None)
        return json.dumps(compact, separators=(",", ":"))

    def to_json(self) -> str:
        return json.dumps(
            {
                "name": self.name,
                "state": str(self.state),
                "exitCode": self.exit_code,
                "startedAt": self.started_at,
                "finishedAt": self.finished_at,
                "reason": self.reason,
                "message": self.message,
                "failing": self.failing,
                "outputBytes": self.output_bytes,
            },
            separators=(",", ":"),
        )


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str | None = None


class ImageCommand(Protocol):
    """What the registry says an image runs (``imageconfigs.ImageConfig`` is one)."""

    @property
    def entrypoint(self) -> tuple[str, ...]: ...

    @property
    def cmd(self) -> tuple[str, ...]: ...


def command_of(c: plans.ContainerPlan, image: ImageCommand | None) -> tuple[str, ...]:
    """What the entrypoint runs for step ``c``: Kubernetes' rules for command and args over the image's own
    ENTRYPOINT and CMD (``command`` replaces ENTRYPOINT and drops CMD; ``args`` replaces CMD)."""
    if c.command is not None:
        return (*c.command, *(c.args or ()))
    if image is None:
        raise ValueError(f"{c.name}: the image's ENTRYPOINT/CMD are needed and were not given")
    return (*image.entrypoint, *(c.args if c.args is not None else image.cmd))


def step_args(plan: plans.RunPlan, c: plans.ContainerPlan, command: Sequence[str]) -> StepArgs:
    """What step ``c``'s entrypoint is told, ending with the command it runs."""
    return StepArgs(
        name=c.name,
        after=tuple(c.depends_on),
        detached=tuple(d for d in c.depends_on if plan.container(d).detach),
        on_success=c.run_on_success,
        on_failure=c.run_on_failure,
        ignore_failure=c.ignore_failure,
        detach=c.detach,
        excluded=c.excluded,
        timeout_seconds=plan.step_timeout_seconds or 0,
        message_limit=message_limit(len(plan.containers) + 1),  # + the prepare container
        log_dir=LOG_DIR,
        log_limit=plan.log_limit_bytes,
        mask=masked_variables(c),
        command=tuple(command),
    )


def args_for(plan: plans.RunPlan, c: plans.ContainerPlan, command: Sequence[str]) -> list[str]:
    """The arguments of step ``c``'s entrypoint, ending with the command it runs."""
    return argv_of(step_args(plan, c, command))


def argv_of(step: StepArgs) -> list[str]:
    """The ``run`` arguments that tell a step container ``step`` (``parse_args`` reads them back)."""
    args = ["run", f"--name={step.name}"]
    if step.after:
        args.append("--after=" + ",".join(step.after))
    if step.detached:
        args.append("--detached=" + ",".join(step.detached))
    on = [word for word, yes in (("success", step.on_success), ("failure", step.on_failure)) if yes]
    args.append("--on=" + ",".join(on))
    args += [flag for flag, yes in (("--ignore-failure", step.ignore_failure), ("--detach", step.detach),
                                    ("--excluded", step.excluded)) if yes]  # fmt: skip
    if step.timeout_seconds:
        args.append(f"--timeout={step.timeout_seconds}")
    if step.run_dir != RUN_DIR:
        args.append(f"--run-dir={step.run_dir}")
    if step.termination_log != TERMINATION_LOG:
        args.append(f"--termination-log={step.termination_log}")
    args.append(f"--message-limit={step.message_limit}")
    if step.log_dir:
        args.append(f"--log-dir={step.log_dir}")
    if step.log_dir or step.log_limit != DEFAULT_LOG_LIMIT:
        args.append(f"--log-limit={step.log_limit}")
    args.extend(f"--mask={name}" for name in step.mask)
    return [*args, "--", *step.command]


def masked_variables(c: plans.ContainerPlan) -> tuple[str, ...]:
    """The environment variables whose values the entrypoint masks in the step's output: every ``from_secret``
    one (``environment`` and plugin ``settings``), as Drone masks a step's secrets. Only the names reach the
    pod's arguments; the values come from the Secret into the container's environment."""
    return tuple(var.name for var in c.env if var.secret is not None)


def message_limit(containers: int) -> int:
    """Bytes of termination message the kubelet keeps per container of a pod with this many containers."""
    return min(CONTAINER_MESSAGE_BYTES, POD_MESSAGES_BYTES // max(1, containers))


class BadArgs(ValueError):
    pass


_VALUE_FLAGS = frozenset(
    {"name", "after", "detached", "on", "timeout", "run-dir", "termination-log", "message-limit", "log-dir",
     "log-limit", "mask"}
)  # fmt: skip
_BOOL_FLAGS = frozenset({"ignore-failure", "detach", "excluded"})
_LIST_FLAGS = frozenset({"after", "detached"})
_BOOLS = {"1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True,
          "0": False, "f": False, "F": False, "FALSE": False, "false": False, "False": False}  # fmt: skip
_CONTAINER_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def parse_args(argv: Sequence[str]) -> StepArgs:
    """The inverse of ``argv_of``, read as the entrypoint's ``ParseRun`` (step.go) reads them: ``--flag=VALUE``
    or ``--flag VALUE``; lists comma-separated and repeatable; switches bare or ``=true``/``=false``."""
    if not argv or argv[0] != "run":
        raise BadArgs("the first argument must be run")
    values: dict[str, Any] = {}
    rest = list(argv[1:])
    command: tuple[str, ...] = ()
    if "--" in rest:
        cut = rest.index("--")
        rest, command = rest[:cut], tuple(rest[cut + 1 :])
    seen: set[str] = set()
    while rest:
        name, value = _next_flag(rest)
        if name in seen and name not in _LIST_FLAGS and name != "mask":
            raise BadArgs(f"flag --{name} given twice")
        seen.add(name)
        _set(values, name, value)
    if not values.get("name"):
        raise BadArgs("flag --name is required")
    step = StepArgs(command=command, **values)
    _validate(step)
    return step


def _next_flag(rest: list[str]) -> tuple[str, str]:
    """The next flag's name and value, taken off ``rest``."""
    arg = rest.pop(0)
    if not arg.startswith("--") or arg == "--":
        raise BadArgs(f"unexpected argument {arg!r}: flags come first, then --, then the command")
    name, has_value, value = arg[2:].partition("=")
    if name in _VALUE_FLAGS:
        if not has_value:
            if not rest:
                raise BadArgs(f"flag --{name} needs a value (--{name}=VALUE)")
            value = rest.pop(0)
        return name, value
    if name in _BOOL_FLAGS:
        if has_value and value not in _BOOLS:
            raise BadArgs(f"flag --{name} takes no value or true/false, not {value!r}")
        return name, str(_BOOLS[value] if has_value else True)
    raise BadArgs(f"unknown flag --{name}")


def _set(values: dict[str, Any], name: str, value: str) -> None:
    items = tuple(v.strip() for v in value.split(",") if v.strip())
    if name in _LIST_FLAGS:
        values[name] = values.get(name, ()) + items
    elif name == "on":
        if set(items) - {"success", "failure"}:
            raise BadArgs(f"flag --on: unknown {sorted(set(items) - {'success', 'failure'})}")
        values["on_success"], values["on_failure"] = "success" in items, "failure" in items
    elif name in _BOOL_FLAGS:
        values[name.replace("-", "_")] = value == "True"
    elif name == "timeout":
        values["timeout_seconds"] = _number(name, value, float)
    elif name == "message-limit":
        values["message_limit"] = _number(name, value, int)
    elif name == "log-limit":
        values["log_limit"] = _number(name, value, int)
    elif name == "mask":  # one variable name each, repeated (a name may hold a comma)
        if not value or "=" in value:
            raise BadArgs(f"flag --mask: {value!r} is not an environment variable name")
        values["mask"] = (*values.get("mask", ()), value)
    elif name == "run-dir" and not value:
        raise BadArgs("flag --run-dir: empty")
    else:
        values[name.replace("-", "_")] = value


def _number(name: str, value: str, kind: type[float | int]) -> Any:
    try:
        number = kind(value)
    except ValueError:
        raise BadArgs(f"flag --{name}: {value!r} is not a number (0 or more)") from None
    if not 0 <= number < math.inf:  # also NaN
        raise BadArgs(f"flag --{name}: {value!r} is not a number (0 or more)")
    return int(number) if number == int(number) else number


def _validate(step: StepArgs) -> None:
    for flag, name in (("name", step.name), *(("after", a) for a in step.after)):
        if len(name) > 63 or not _CONTAINER_NAME.fullmatch(name):
            raise BadArgs(f"flag --{flag}: {name!r} is not a container name")
    if step.name in step.after:
        raise BadArgs(f"flag --after: {step.name} cannot wait for itself")
    if len(set(step.after)) < len(step.after):
        raise BadArgs("flag --after: a name given twice")
    if set(step.detached) - set(step.after):
        raise BadArgs(f"flag --detached: {sorted(set(step.detached) - set(step.after))} not in --after")


def decide(step: StepArgs, results: Mapping[str, Result], started: Collection[str] = ()) -> Decision:
    """Run, skip or keep waiting, given the results present in the run directory (and the started markers)."""
    if any(r.exit_code == EXIT_EARLY for r in results.values()):
        return Decision(Action.SKIP, Why.EARLY_EXIT)
    ready = all(name in results or (name in step.detached and name in started) for name in step.after)
    if not ready:
        return Decision(Action.WAIT)
    if step.excluded:
        return Decision(Action.SKIP, Why.SKIPPED)
    failing = any(r.failing for r in results.values())
    if step.on_failure if failing else step.on_success:
        return Decision(Action.RUN)
    return Decision(Action.SKIP, Why.SKIPPED)


def fails_the_run(step: StepArgs | plans.ContainerPlan) -> bool:
    """Whether a failure of this step fails the run: Drone's rule, unless ``failure: ignore``; and a
    detached step's never does. The entrypoint's ``isFailing`` (result.go) is the same rule."""
    return not step.ignore_failure and not step.detach


def is_failing(step: StepArgs | plans.ContainerPlan, state: ResultState) -> bool:
    """Whether a step that ended in ``state`` makes the run fail (the ``failing`` of its result)."""
    return state is ResultState.FAILED and fails_the_run(step)


def parse_message(name: str, text: str | None) -> Result | None:
    """Container ``name``'s termination message as a result (``Result.to_message``, or a whole result file's
    JSON), or None if it is not one: the entrypoint never wrote it, or the kubelet cut it short."""
    if not text or not text.lstrip().startswith("{"):
        return None
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or "s" not in data:
            return parse_result(text)
        started = _int_or_none(data.get("a"))
        duration = _int_or_none(data.get("d"))
        finished = (
            started + duration
            if started is not None and duration is not None
            else _int_or_none(data.get("f"))
        )
        return Result(
            name=name,
            state=ResultState(data["s"]),
            exit_code=_int_or_none(data.get("x")),
            started_at=started,
            finished_at=finished,
            reason=_str_or_none(data.get("r")),
            message=_str_or_none(data.get("m")),
            failing=False,
            output_bytes=_int_or_none(data.get("o")),
        )
    except (ValueError, KeyError, TypeError):
        return None


def parse_result(text: str | None) -> Result | None:
    """A result file's JSON (``Result.to_json``) as a result, or None if it is not one."""
    if not text or not text.lstrip().startswith("{"):
        return None
    try:
        data = json.loads(text)
        return Result(
            name=str(data["name"]),
            state=ResultState(data["state"]),
            exit_code=_int_or_none(data.get("exitCode")),
            started_at=_int_or_none(data.get("startedAt")),
            finished_at=_int_or_none(data.get("finishedAt")),
            reason=_str_or_none(data.get("reason")),
            message=_str_or_none(data.get("message")),
            failing=bool(data.get("failing", False)),
            output_bytes=_int_or_none(data.get("outputBytes")),
        )
    except (ValueError, KeyError, TypeError):
        return None


def _int_or_none(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    return int(value)


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)[:MESSAGE_LIMIT]
