"""The Pipeline spec: a Drone ``kind: pipeline`` document, as pydantic v2 models.

These models are the single source of truth for the Pipeline schema: the CRD's openAPIV3Schema is
generated from them (see ``schema``), so every ``description`` here is what ``kubectl explain`` prints.
Field names are Drone's own, so a ``.drone.yml`` pipeline pastes under ``spec`` unchanged.

This module parses and checks the *shape* of each field. Rules across fields (unique names, the
dependency graph, image references, policy) live in ``validation``, which reports every problem at once.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from podline.core import conventions

_STRICT = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


def _int_or_string(value: Any) -> Any:
    """One clear message instead of one per union member; a boolean is no number (``user: true``)."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"must be an integer or a string, not {_json_kind(value)}")  # noqa: TRY004 (pydantic reports ValueError)
    return value


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return "null" if value is None else type(value).__name__


IntOrString = Annotated[
    int | str, BeforeValidator(_int_or_string), WithJsonSchema({"x-kubernetes-int-or-string": True})
]


# A word of a command: text, though an integer is accepted as its digits (`command: [--max, 6]`), as Drone
# reads it into a string (see ``leniency``, which turns it into text before the models see it).
Word = Annotated[str, WithJsonSchema({"x-kubernetes-int-or-string": True})]


class Model(BaseModel):
    model_config = _STRICT


# --- Conditions (`when:` and `trigger:`) -----------------------------------------------------------------


def _to_condition(value: Any) -> Any:
    """Drone writes a condition as a string, a list, or ``{include: [...], exclude: [...]}``."""
    if value is None:
        return {}
    if isinstance(value, str):
        return {"include": [value]}
    if isinstance(value, list):
        return {"include": value}
    return value


class Condition(Model):
    """Glob patterns a value must match (``include``) and must not match (``exclude``)."""

    include: list[str] = Field(default_factory=list, description="Patterns of which one must match.")
    exclude: list[str] = Field(default_factory=list, description="Patterns of which none may match.")

    @property
    def is_empty(self) -> bool:
        return not self.include and not self.exclude


ConditionField = Annotated[
    Condition,
    BeforeValidator(_to_condition),
    WithJsonSchema(
        {
            "x-kubernetes-preserve-unknown-fields": True,
            "description": "A string, a list of glob patterns, or {include: [...], exclude: [...]}.",
        }
    ),
]


class Conditions(Model):
    """When a step (``when``) or the whole pipeline (``trigger``) runs, as in Drone."""

    status: ConditionField = Field(
        default_factory=Condition,
        description="Run on the pipeline's state so far: success, failure. Default: success only.",
    )
    branch: ConditionField = Field(default_factory=Condition, description="Git branch globs.")
    event: ConditionField = Field(
        default_factory=Condition, description="Build event: push, pull_request, tag, …"
    )
    ref: ConditionField = Field(
        default_factory=Condition, description="Git reference globs, e.g. refs/tags/*."
    )
    repo: ConditionField = Field(default_factory=Condition, description="Repository name globs (owner/name).")
    target: ConditionField = Field(default_factory=Condition, description="Deployment target globs.")
    cron: ConditionField = Field(default_factory=Condition, description="Cron job name globs.")
    action: ConditionField = Field(default_factory=Condition, description="Build action globs.")
    instance: ConditionField = Field(default_factory=Condition, description="Drone server host globs.")
    paths: ConditionField = Field(
        default_factory=Condition, description="Changed-file globs (recorded; podline has no diff to test)."
    )


# --- Values that may come from a Secret --------------------------------------------------------------------


class FromSecret(Model):
    """A value read from a Kubernetes Secret in the Pipeline's namespace, never seen by the operator."""

    from_secret: str = Field(
        description='"secret/key" names a Secret and its key; a bare "key" is a key of the Secret "podline-secrets".'
    )


def _env_value(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"from_secret"}:
        return FromSecret.model_validate(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    raise ValueError("must be a string, a number, a boolean or {from_secret: name}")


EnvValue = Annotated[
    str | FromSecret,
    BeforeValidator(_env_value),
    WithJsonSchema(
        {
            "x-kubernetes-preserve-unknown-fields": True,
            "description": "A plain value (string, number, boolean) or {from_secret: name}.",
        }
    ),
]

SettingValue = Annotated[
    Any,
    WithJsonSchema(
        {
            "x-kubernetes-preserve-unknown-fields": True,
            "description": "A plugin setting: any value; lists are comma-joined, maps passed as JSON, "
            "{from_secret: name} reads a Secret.",
        }
    ),
]


# --- Steps and services ------------------------------------------------------------------------------------


class ResourceList(Model):
    cpu: IntOrString | None = Field(
        default=None, description="CPU: an integer is millicores (Drone), a string a Kubernetes quantity."
    )
    memory: IntOrString | None = Field(
        default=None,
        description='Memory: an integer is bytes, a string a quantity ("512Mi", or Drone\'s "512MiB").',
    )


class Resources(Model):
    limits: ResourceList | None = Field(default=None, description="Per-container limits.")
    requests: ResourceList | None = Field(
        default=None, description="Requests; the pod asks for the largest step's, as steps run one at a time."
    )


class VolumeMount(Model):
    name: str = Field(description="Name of a pipeline-level volume.")
    path: str = Field(description="Absolute mount path in the container.")


def _to_port(value: Any) -> Any:
    """Drone writes a port as a number or as ``{port, host, protocol}`` (drone-yaml ``yaml/port.go``)."""
    if isinstance(value, bool):
        raise ValueError("must be a port number or {port: number, protocol: TCP|UDP}, not a boolean")  # noqa: TRY004 (pydantic reports ValueError)
    if isinstance(value, (int, str)):
        return {"port": value}
    return value


class Port(Model):
    """A port a step or service listens on."""

    port: int = Field(ge=1, le=65535, description="Port number.")
    host: int | None = Field(
        default=None, description="Docker only (publish on the host's port); ignored on Kubernetes."
    )
    protocol: str | None = Field(default=None, description="TCP (default) or UDP; any case.")

    @field_validator("protocol")
    @classmethod
    def _protocol(cls, value: str | None) -> str | None:
        if value is not None and value.upper() not in ("TCP", "UDP", ""):
            raise ValueError("must be TCP or UDP")
        return value


PortField = Annotated[
    Port,
    BeforeValidator(_to_port),
    WithJsonSchema(
        {"x-kubernetes-preserve-unknown-fields": True, "description": "A port number, or {port, protocol}."}
    ),
]


class Step(Model):
    """One step (or service): a container of the run's pod."""

    name: str = Field(min_length=1, description="Unique step name; the container is named after it.")
    image: str = Field(
        min_length=1, description="Image reference, e.g. golang:1.22 or registry:5000/team/app@sha256:…."
    )
    pull: Annotated[
        Literal["always", "if-not-exists", "never", "default", ""] | None,
        # Any value reaches the operator, which reads it as Drone does (see ``leniency``): `pull: true`,
        # which kubectl makes a boolean, is the default policy there, with a warning.
        WithJsonSchema({"x-kubernetes-preserve-unknown-fields": True}),
    ] = Field(
        default=None,
        description="Image pull: always, if-not-exists, never. Unset (or any other value, as in Drone): always "
        "for :latest or untagged images, otherwise if-not-exists.",
    )
    commands: list[Word] | None = Field(
        default=None,
        description="Shell commands run in order by /bin/sh with set -e, each echoed as '+ cmd'.",
    )
    entrypoint: list[Word] | None = Field(default=None, description="Overrides the image's entrypoint.")
    command: list[Word] | None = Field(default=None, description="Overrides the image's arguments (CMD).")
    environment: dict[str, EnvValue] = Field(default_factory=dict, description="Environment variables.")
    settings: dict[str, SettingValue] = Field(
        default_factory=dict, description="Plugin settings, passed as PLUGIN_<NAME> environment variables."
    )
    depends_on: list[str] | None = Field(
        default=None,
        description="Steps that must finish first. Without any depends_on in the pipeline, steps run in order.",
    )
    when: Conditions = Field(default_factory=Conditions, description="Conditions under which the step runs.")
    failure: Literal["ignore", "fail", "always", ""] | None = Field(
        default=None, description='"ignore": a failure of this step does not fail the pipeline.'
    )
    detach: bool = Field(default=False, description="Run in the background; later steps do not wait for it.")
    privileged: bool = Field(
        default=False, description="Privileged container (only if the operator allows it)."
    )
    user: IntOrString | None = Field(default=None, description="Numeric user id to run as.")
    group: IntOrString | None = Field(default=None, description="Numeric group id to run as.")
    working_dir: str | None = Field(default=None, description="Working directory; default: the workspace.")
    volumes: list[VolumeMount] = Field(default_factory=list, description="Pipeline volumes to mount.")
    resources: Resources | None = Field(default=None, description="CPU and memory.")
    shell: str | None = Field(default=None, description="Shell that runs commands; default /bin/sh.")
    ports: list[PortField] = Field(
        default_factory=list,
        description="Ports the container listens on (a number or {port, protocol}); every container of the "
        "run's pod shares one network, so no two may listen on the same port.",
    )
    # Accepted for compatibility with Docker pipelines; not meaningful in a pod (reported as warnings).
    network_mode: str | None = Field(default=None, description="Docker only; ignored on Kubernetes.")
    extra_hosts: list[str] | None = Field(default=None, description="Docker only; ignored on Kubernetes.")
    dns: list[str] | None = Field(default=None, description="Docker only; ignored on Kubernetes.")
    dns_search: list[str] | None = Field(default=None, description="Docker only; ignored on Kubernetes.")
    cpu: IntOrString | None = Field(default=None, description="Docker only; use resources.")
    mem_limit: IntOrString | None = Field(default=None, description="Docker only; use resources.")
    shm_size: IntOrString | None = Field(default=None, description="Docker only; ignored on Kubernetes.")

    @field_validator("environment", "settings")
    @classmethod
    def _names_are_strings(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            if not key:
                raise ValueError("names must not be empty")
        return value

    @property
    def ignores_failure(self) -> bool:
        return self.failure == "ignore"


# --- Pipeline-level parts ----------------------------------------------------------------------------------


class TempVolume(Model):
    medium: Literal["memory", ""] | None = Field(default=None, description='"memory" for a tmpfs.')
    size_limit: IntOrString | None = Field(default=None, description="Size limit (quantity or bytes).")


class HostVolume(Model):
    path: str = Field(description="Path on the node (only if the operator allows host volumes).")


class ClaimVolume(Model):
    name: str = Field(description="PersistentVolumeClaim name.")
    read_only: bool = Field(default=False, description="Mount read-only.")


class ConfigMapVolume(Model):
    name: str = Field(description="ConfigMap name.")
    optional: bool = Field(default=False, description="Do not fail if missing.")
    default_mode: int | None = Field(default=None, description="File mode bits.")


class Volume(Model):
    name: str = Field(min_length=1, description="Volume name, referenced by steps.")
    temp: TempVolume | None = Field(default=None, description="A temporary directory (emptyDir).")
    host: HostVolume | None = Field(default=None, description="A host path.")
    claim: ClaimVolume | None = Field(default=None, description="A PersistentVolumeClaim.")
    config_map: ConfigMapVolume | None = Field(default=None, description="A ConfigMap.")


class Workspace(Model):
    path: str | None = Field(
        default=None, description=f"Workspace directory; default {conventions.DEFAULT_WORKSPACE}."
    )
    base: str | None = Field(default=None, description="Docker pipelines: base directory (joined with path).")


class Clone(Model):
    disable: bool = Field(default=False, description="Do not clone the repository.")
    depth: int | None = Field(default=None, description="Clone depth.")
    retries: int | None = Field(default=None, description="Clone retries.")
    skip_verify: bool = Field(default=False, description="Skip TLS verification.")
    trace: bool = Field(default=False, description="Trace git commands.")


class Platform(Model):
    """Where the run's pod goes (node labels ``kubernetes.io/os``, ``kubernetes.io/arch``) and which manifest
    of a multi-arch image is read for a step that runs its image's own command. See ``platforms``."""

    os: str | None = Field(
        default=None, description="Operating system: linux, the only one (becomes kubernetes.io/os)."
    )
    arch: str | None = Field(
        default=None,
        description="Architecture: amd64, arm64, arm, … (x86_64, aarch64 accepted); becomes kubernetes.io/arch "
        "and chooses the manifest of multi-arch images.",
    )
    variant: str | None = Field(
        default=None, description="Architecture variant (arm: v6, v7; arm64: v8): chooses the manifest too."
    )
    version: str | None = Field(default=None, description="OS version (informational).")


class Toleration(Model):
    key: str | None = Field(default=None, description="Taint key.")
    operator: Literal["Exists", "Equal"] | None = Field(default=None, description="Exists or Equal.")
    value: str | None = Field(default=None, description="Taint value.")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute", ""] | None = Field(
        default=None, description="Taint effect."
    )
    toleration_seconds: int | None = Field(default=None, description="Seconds to tolerate a NoExecute taint.")


class PodMetadata(Model):
    labels: dict[str, str] = Field(default_factory=dict, description="Extra labels on the run's pod.")
    annotations: dict[str, str] = Field(
        default_factory=dict, description="Extra annotations on the run's pod."
    )
    namespace: str | None = Field(
        default=None, description="Ignored: the pod runs in the Pipeline's namespace."
    )


class Concurrency(Model):
    limit: int | None = Field(
        default=None,
        ge=0,
        description="At most this many runs of the pipeline of this name (spec.name) in the namespace at "
        "once; the others wait (Pending, Queued) in creation order. 0 or unset: no limit.",
    )


class PipelineSpec(Model):
    """The body of a Drone ``kind: pipeline`` document."""

    kind: Literal["pipeline"] | None = Field(default=None, description='Drone document kind; "pipeline".')
    type: str | None = Field(
        default=None,
        description="Drone runner type: docker or kubernetes (the same to podline); other runners' pipelines "
        "(exec, ssh, …) are refused.",
        # The apiserver refuses them saying why (validation.runner_problem says the same to render and convert)
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self in ['docker', 'kubernetes', '']",
                    "messageExpression": "'\"' + self + '\" pipelines are not run: podline runs Drone\\'s docker "
                    "and kubernetes pipelines as pods (this one needs Drone\\'s ' + self + ' runner)'",
                }
            ]
        },
    )
    name: str | None = Field(default=None, description="Drone pipeline name (informational).")
    steps: list[Step] = Field(
        min_length=1, description="The steps, run in order (or as a DAG with depends_on)."
    )
    services: list[Step] = Field(default_factory=list, description="Background services, started first.")
    image_pull_secrets: list[str] = Field(
        default_factory=list, description="Secrets in this namespace holding a Docker config.json."
    )
    environment: dict[str, EnvValue] = Field(default_factory=dict, description="Environment for every step.")
    workspace: Workspace | None = Field(default=None, description="Where the shared workspace is mounted.")
    clone: Clone | None = Field(default=None, description="Clone settings.")
    volumes: list[Volume] = Field(default_factory=list, description="Volumes steps may mount.")
    node_selector: dict[str, str] = Field(
        default_factory=dict,
        description="Node selector of the run's pod; kubernetes.io/os and kubernetes.io/arch must agree with "
        "platform, and choose the platform image configs are read for.",
    )
    tolerations: list[Toleration] = Field(default_factory=list, description="Tolerations of the run's pod.")
    service_account_name: str | None = Field(
        default=None, description="ServiceAccount of the pod (only if the operator allows it)."
    )
    platform: Platform | None = Field(
        default=None, description="Target platform: the pod's node selector, and the manifest of images read."
    )
    trigger: Conditions = Field(
        default_factory=Conditions,
        description="Conditions under which the pipeline runs; status: after its depends_on ended, on "
        "their success (default) or failure.",
    )
    depends_on: list[str] | None = Field(
        default=None,
        description="Pipelines of the same build (label podline.dev/build), by name, whose runs must end "
        "first; without the label, informational.",
    )
    node: dict[str, str] = Field(default_factory=dict, description="Drone runner labels (informational).")
    metadata: PodMetadata | None = Field(default=None, description="Labels and annotations of the run's pod.")
    concurrency: Concurrency | None = Field(default=None, description="Runs of this pipeline at once.")

    @property
    def all_containers(self) -> list[Step]:
        return [*self.services, *self.steps]


def _first_number(ref: str) -> str:
    digits = re.search(r"\d+", ref)
    return digits.group() if digits else ""


class BuildInfo(Model):
    """Optional build metadata (annotation ``podline.dev/build``): the run's ``DRONE_*`` variables (see
    ``environs``), what ``${…}`` substitutes, and what ``when``/``trigger`` conditions match.

    Names follow podline's first fields (``branch`` is Drone's target branch, ``target`` the deploy target,
    ``commit`` the ``after`` sha, ``author`` the login). Two shorthands: ``tag: v1.2.3`` means the ref
    ``refs/tags/v1.2.3`` (and event ``tag`` when none is given), ``pull_request: 42`` the ref
    ``refs/pull/42/head`` (and event ``pull_request``); Drone derives ``DRONE_TAG`` and
    ``DRONE_PULL_REQUEST`` from the ref, and so does podline."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    number: int | None = None
    event: str | None = None
    branch: str | None = None
    ref: str | None = None
    commit: str | None = None
    repo: str | None = None
    remote: str | None = None
    target: str | None = None
    cron: str | None = None
    action: str | None = None
    instance: str | None = None
    message: str | None = None
    author: str | None = None
    tag: str | None = None
    pull_request: int | None = Field(default=None, ge=1)
    source_branch: str | None = None
    title: str | None = None
    before: str | None = None
    link: str | None = None
    author_name: str | None = None
    author_email: str | None = None
    author_avatar: str | None = None
    trigger: str | None = None
    parent: int | None = None
    deploy_id: int | None = None
    created: int | None = None
    started: int | None = None
    debug: bool | None = None
    repo_link: str | None = None
    repo_branch: str | None = None
    ssh_url: str | None = None
    visibility: str | None = None
    private: bool | None = None
    system_proto: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthands(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        out = dict(value)
        for field, ref, event in (
            ("tag", "refs/tags/{}", "tag"),
            ("pull_request", "refs/pull/{}/head", "pull_request"),
        ):
            given = out.get(field)
            if given is None or given == "":
                continue
            implied = ref.format(given)
            if out.get("ref") is None:
                out["ref"] = implied
            elif field == "tag" and out["ref"] != implied:
                raise ValueError(
                    f"tag {given!r} disagrees with ref {out['ref']!r} (a tag build's ref is {implied})"
                )
            elif field == "pull_request" and _first_number(str(out["ref"])) != str(given):
                raise ValueError(f"pull_request {given!r} disagrees with ref {out['ref']!r}")
            out.setdefault("event", event)
        return out
