"""The compiled run: plain, frozen data between the spec and the Kubernetes objects.

``compiling`` produces a ``RunPlan`` from a validated spec; ``pods`` turns it into manifests and
``scheduling`` drives it. A plan holds no secrets: ``from_secret`` values stay references.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from podline.core import conventions, imageconfigs, pulling


class Kind(StrEnum):
    SERVICE = "service"  # runs its image's own command from the pod's start, never waited for
    STEP = "step"  # its command wrapped by the entrypoint, which runs it when its turn comes (see stepping)
    CLONE = "clone"  # an implicit first step that clones the repository


@dataclass(frozen=True)
class SecretRef:
    secret: str
    key: str


@dataclass(frozen=True)
class EnvVar:
    name: str
    value: str | None = None
    secret: SecretRef | None = None


@dataclass(frozen=True)
class Mount:
    volume: str  # pod volume name
    path: str


@dataclass(frozen=True)
class VolumePlan:
    """A pod volume: the workspace or a pipeline volume, of one kind (``pods.to_volume`` shapes it)."""

    name: str  # pod volume name
    kind: Literal["temp", "host", "claim", "config_map"]
    memory: bool = False  # temp: backed by memory
    size_limit: str | None = None  # temp: a canonical quantity
    path: str | None = None  # host
    source: str | None = None  # claim or config_map: the object's name
    read_only: bool = False  # claim
    optional: bool = False  # config_map
    default_mode: int | None = None  # config_map


@dataclass(frozen=True)
class TolerationPlan:
    """A pod toleration, the fields Drone's ``tolerations`` set (``pods.to_toleration`` shapes it)."""

    operator: str | None = None
    key: str | None = None
    value: str | None = None
    effect: str | None = None  # "" is none
    seconds: int | None = None


@dataclass(frozen=True)
class ContainerPlan:
    name: str  # container name (DNS-1123 label)
    step: str  # the Drone step or service name
    kind: Kind
    image: str  # as written by the user
    pull_policy: pulling.PullPolicy
    command: tuple[str, ...] | None = None  # Kubernetes' meaning: replaces the image's ENTRYPOINT
    args: tuple[str, ...] | None = None  # replaces the image's CMD
    env: tuple[EnvVar, ...] = ()
    working_dir: str | None = None
    mounts: tuple[Mount, ...] = ()
    privileged: bool = False
    user: int | None = None
    group: int | None = None
    limits: tuple[tuple[str, str], ...] = ()  # (resource, quantity)
    requests: tuple[tuple[str, str], ...] = ()
    depends_on: tuple[str, ...] = ()  # container names of the steps this one waits for
    run_on_success: bool = True
    run_on_failure: bool = False
    ignore_failure: bool = False
    detach: bool = False
    excluded: bool = False  # `when` conditions on build metadata do not match: skipped from the start
    ports: tuple[tuple[int, str], ...] = ()  # (containerPort, protocol)

    @property
    def is_step(self) -> bool:
        return self.kind is not Kind.SERVICE


@dataclass(frozen=True)
class RunPlan:
    namespace: str
    pipeline: str
    pipeline_uid: str
    generation: int
    run: str
    pod_name: str
    pull_secret_name: str | None
    pull_secret_sources: tuple[str, ...]  # image_pull_secrets, in order
    runner_image: str  # holds the entrypoint binary; stands in for a step whose image cannot be pulled
    containers: tuple[ContainerPlan, ...]
    volumes: tuple[VolumePlan, ...] = ()
    workspace: str = conventions.DEFAULT_WORKSPACE
    node_selector: tuple[tuple[str, str], ...] = ()  # the user's, and platform's node labels
    platform: imageconfigs.Platform | None = None  # image configs are read for it; None: the default
    tolerations: tuple[TolerationPlan, ...] = ()
    service_account: str | None = None
    automount_token: bool = False
    pod_labels: tuple[tuple[str, str], ...] = ()
    pod_annotations: tuple[tuple[str, str], ...] = ()
    timeout_seconds: int = 3600
    step_timeout_seconds: int | None = None
    pull_timeout_seconds: int = 300
    log_limit_bytes: int = 64 * 1024 * 1024  # of each step's output copy (policies.Policy.log_limit_bytes)
    triggered: bool = True
    warnings: tuple[str, ...] = field(default=())

    @property
    def steps(self) -> tuple[ContainerPlan, ...]:
        return tuple(c for c in self.containers if c.is_step)

    @property
    def services(self) -> tuple[ContainerPlan, ...]:
        return tuple(c for c in self.containers if not c.is_step)

    def needs_image_config(self) -> tuple[str, ...]:
        """Images whose ENTRYPOINT/CMD must be read from the registry before the pod can be built: steps
        that name no command of their own (plugins, and steps with ``command`` alone), unless excluded."""
        return tuple(dict.fromkeys(c.image for c in self.steps if c.command is None and not c.excluded))

    def container(self, name: str) -> ContainerPlan:
        for c in self.containers:
            if c.name == name:
                return c
        raise KeyError(name)
