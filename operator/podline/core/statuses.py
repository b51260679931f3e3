"""The Pipeline's status: its shape, and the kstatus-compatible conditions derived from a run's state.

The operator writes ``status`` only through ``PipelineStatus.to_patch``; the CRD's status schema is
generated from these models. Phases and reasons are closed sets named here, so Argo CD / Flux health
checks and the README can rely on them.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class Phase(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    ERROR = "Error"
    CANCELLED = "Cancelled"
    SKIPPED = "Skipped"  # a build's pipeline whose dependencies' outcome rules it out (core/builds.py)

    @property
    def is_terminal(self) -> bool:
        return self in (Phase.SUCCEEDED, Phase.FAILED, Phase.ERROR, Phase.CANCELLED, Phase.SKIPPED)


TERMINAL_PHASES = frozenset(str(p) for p in Phase if p.is_terminal)  # as the status spells them


class StepState(StrEnum):
    WAITING = "waiting"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"

    @property
    def is_done(self) -> bool:
        return self in (StepState.SUCCEEDED, StepState.FAILED, StepState.SKIPPED)


class Reason(StrEnum):
    """Machine-readable reasons in conditions, step status and Events."""

    QUEUED = "Queued"
    CREATING = "Creating"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "StepFailed"
    EARLY_EXIT = "EarlyExit"  # a step exited 78: the run ends as success
    INVALID = "Invalid"  # the spec is invalid: nothing was created
    PULL_SECRET = "PullSecretError"
    POD_GONE = "PodDeleted"
    TIMEOUT = "Timeout"
    STEP_TIMEOUT = "StepTimeout"
    CANCELLED = "Cancelled"
    SUPERSEDED = "Superseded"  # the spec changed: the run was replaced by a new one
    NOT_TRIGGERED = "NotTriggered"  # trigger conditions do not match the build
    IMAGE_CONFIG = (
        "ImageConfigUnavailable"  # a step's command comes from its image, whose config could not be read
    )
    RUNNER = "RunnerUnavailable"  # the runner image (the entrypoint binary) could not be pulled or run
    SKIPPED = "Skipped"
    WAITING = "WaitingForDependencies"  # a build's pipeline waits for the pipelines it depends on to end
    DEPENDENCY_FAILED = "DependencyFailed"  # skipped: a pipeline it depends on failed
    TRIGGER_STATUS = "TriggerStatus"  # skipped: trigger.status has no success, and its dependencies passed
    DETACHED = "Detached"  # a detached step still running when the run ended: stopped with the pod
    COMPLETED = "Completed"  # on the pod (podline.dev/stopped): the run ended, what still ran was stopped


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)


class Condition(_Model):
    type: str = Field(description="Ready or Succeeded.")
    status: str = Field(description="True, False or Unknown.")
    reason: str = Field(default="", description="CamelCase reason.")
    message: str = Field(default="", description="Human-readable details.")
    last_transition_time: str | None = Field(default=None, description="When status last changed.")
    observed_generation: int | None = Field(default=None, description="Generation the condition is about.")


class StepStatus(_Model):
    name: str = Field(description="Drone step name.")
    container: str = Field(description="Container of the run's pod.")
    state: StepState = Field(description="waiting, running, succeeded, failed or skipped.")
    exit_code: int | None = Field(default=None, description="Exit code of the step's process.")
    started_at: str | None = Field(default=None, description="When the step's container started.")
    finished_at: str | None = Field(default=None, description="When it finished.")
    reason: str | None = Field(default=None, description="ImagePullBackOff, ErrImageNeverPull, OOMKilled, …")
    message: str | None = Field(default=None, description="Details, pointing at the field to change.")


class PipelineStatus(_Model):
    phase: Phase | None = Field(
        default=None, description="Pending, Running, Succeeded, Failed, Error, Cancelled, Skipped."
    )
    observed_generation: int | None = Field(default=None, description="The spec generation of this run.")
    run: str | None = Field(default=None, description="Run id: generation plus rerun token.")
    pod_name: str | None = Field(default=None, description="The run's pod.")
    current_step: str | None = Field(
        default=None, description="The step running now (comma-separated if several)."
    )
    start_time: str | None = Field(default=None, description="When the run started.")
    completion_time: str | None = Field(default=None, description="When the run finished.")
    reason: str | None = Field(default=None, description="Why the run is in this phase.")
    message: str | None = Field(default=None, description="Human-readable summary.")
    conditions: list[Condition] = Field(default_factory=list, description="Ready and Succeeded (kstatus).")
    steps: list[StepStatus] = Field(default_factory=list, description="Per-step state, in declaration order.")
    services: list[StepStatus] = Field(default_factory=list, description="Per-service state.")
    warnings: list[str] = Field(default_factory=list, description="Things that work but deserve attention.")
    waiting_for: list[str] | None = Field(
        default=None, description="Pipelines of the build this run waits for (spec.depends_on)."
    )
    history: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Earlier runs of this Pipeline: run, phase, podName, completionTime.",
        json_schema_extra={"items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
    )

    def to_patch(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, mode="json", exclude_none=True)
