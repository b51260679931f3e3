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
    timeout_seconds: int = 0
    run_dir: str = RUN_DIR
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


def args_for(plan: plans.RunPlan, c: plans.ContainerPlan, command: Sequence[str]) -> list[str]:
    """The arguments of step ``c``'s entrypoint, ending with the command it runs."""
    args = ["run", f"--name={c.name}"]
    if c.depends_on:
        args.append("--after=" + ",".join(c.depends_on))
        detached = [d for d in c.depends_on if plan.container(d).detach]
        if detached:
            args.append("--detached=" + ",".join(detached))
    on = [word for word, yes in (("success", c.run_on_success), ("failure", c.run_on_failure)) if yes]
    args.append("--on=" + ",".join(on))
    if c.ignore_failure:
        args.append("--ignore-failure")
    if c.detach:
        args.append("--detach")
    if c.excluded:
        args.append("--excluded")
    if plan.step_timeout_seconds:
        args.append(f"--timeout={plan.step_timeout_seconds}")
    args.append(f"--message-limit={message_limit(len(plan.containers) + 1)}")  # + the prepare container
    args += [f"--log-dir={LOG_DIR}", f"--log-limit={plan.log_limit_bytes}"]
    args.extend(f"--mask={name}" for name in masked_variables(c))
    return [*args, "--", *command]


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


def parse_args(argv: Sequence[str]) -> StepArgs:
    """The inverse of ``args_for`` (used by the scripted kubelet, and to check the two agree)."""
    if not argv or argv[0] != "run":
        raise BadArgs("the first argument must be run")
    values: dict[str, Any] = {}
    rest = list(argv[1:])
    command: tuple[str, ...] = ()
    if "--" in rest:
        cut = rest.index("--")
        rest, command = rest[:cut], tuple(rest[cut + 1 :])
    for arg in rest:
        key, _, value = arg.partition("=")
        if key == "--name":
            values["name"] = value
        elif key in ("--after", "--detached"):
            values[key[2:]] = tuple(v for v in value.split(",") if v)
        elif key == "--on":
            words = {v for v in value.split(",") if v}
            if words - {"success", "failure"}:
                raise BadArgs(f"--on: unknown {sorted(words - {'success', 'failure'})}")
            values["on_success"], values["on_failure"] = "success" in words, "failure" in words
        elif key in ("--ignore-failure", "--detach", "--excluded"):
            values[key[2:].replace("-", "_")] = True
        elif key == "--timeout":
            values["timeout_seconds"] = int(value)
        elif key == "--run-dir":
            values["run_dir"] = value
        elif key == "--message-limit":
            values["message_limit"] = int(value)
        elif key == "--log-dir":
            values["log_dir"] = value
        elif key == "--log-limit":
            values["log_limit"] = int(value)
        elif key == "--mask":
            values["mask"] = (*values.get("mask", ()), value)
        else:
            raise BadArgs(f"unknown flag {key}")
    if not values.get("name"):
        raise BadArgs("--name is required")
    return StepArgs(command=command, **values)


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


def is_failing(step: StepArgs | plans.ContainerPlan, state: ResultState) -> bool:
    """Whether a step that ended in ``state`` makes the run fail (the ``failing`` of its result)."""
    return state is ResultState.FAILED and not step.ignore_failure and not step.detach


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
