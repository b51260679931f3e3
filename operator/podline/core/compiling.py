"""Compile a validated Pipeline spec into a ``plans.RunPlan``: Drone semantics decided once, as data.

Decides: container names and order (services, then the clone step, then steps), each step's image pull
policy, how ``commands`` become a shell script, the environment (``DRONE_*``, pipeline, step, plugin
settings, ``from_secret`` references), the dependency graph (sequential unless ``depends_on`` is used),
``when`` conditions on build metadata, volumes and the workspace, the run's platform and the node labels it
implies (``platforms``). Leaves the Kubernetes object shapes to ``pods`` and everything that happens at run
time to ``scheduling``.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from podline.core import (
    conventions,
    environs,
    images,
    kubenames,
    leniency,
    models,
    plans,
    platforms,
    policies,
    pulling,
    quantities,
    substitution,
    validation,
    whens,
)


@dataclass(frozen=True)
class RunContext:
    """Who the run belongs to: everything compiling needs that is not the spec or the policy."""

    namespace: str
    pipeline: str
    uid: str
    generation: int
    rerun: str | None = None
    build: models.BuildInfo | None = None
    timeout_seconds: int | None = None
    build_run: str | None = None  # a build member's run id, which includes its dependencies' (builds)
    build_env: tuple[tuple[str, str], ...] = ()  # DRONE_BUILD_STATUS, … from its dependencies (builds)

    @property
    def run(self) -> str:
        return self.build_run or conventions.run_id(self.generation, self.rerun)


def compile_spec(
    raw: Mapping[str, Any] | None, context: RunContext, policy: policies.Policy
) -> plans.RunPlan:
    """Substitute, read leniently, parse, validate and compile. Raises ``errors.InvalidPipeline`` listing every
    problem.

    Drone substitutes ``${…}`` before it parses the configuration, so substitution comes first here too:
    with this run's variables, so every run of a Pipeline gets its own values (see ``substitution``)."""
    if isinstance(raw, Mapping):
        raw = substitution.apply(raw, environs.substitution_lookup(_variables_of_raw(raw, context)))
    reading = leniency.read(raw) if isinstance(raw, Mapping) else None
    spec = validation.parse(reading.spec if reading else raw)
    warnings = [*(reading.warnings if reading else ()), *validation.check(spec, policy)]
    return compile_model(spec, context, policy, warnings=warnings)


def compile_model(
    spec: models.PipelineSpec,
    context: RunContext,
    policy: policies.Policy,
    *,
    warnings: Iterable[str] = (),
) -> plans.RunPlan:
    workspace = validation.workspace_path(spec)
    volumes = _volume_names(spec)
    base_env = _drone_env(spec, context, workspace)
    service = plans.Kind.SERVICE
    containers = [
        _container(s, service, spec, policy, workspace, volumes, base_env, context, ()) for s in spec.services
    ]
    clone = _clone(spec, context, policy, workspace, base_env)
    if clone:
        containers.append(clone)
    containers += _steps(spec, policy, workspace, volumes, base_env, context, clone)
    containers = _number_steps(_spread_requests(containers))
    meta = spec.metadata or models.PodMetadata()
    return plans.RunPlan(
        namespace=context.namespace,
        pipeline=context.pipeline,
        pipeline_uid=context.uid,
        generation=context.generation,
        run=context.run,
        pod_name=conventions.pod_name(context.pipeline, context.run),
        pull_secret_name=(
            conventions.pull_secret_name(context.pipeline, context.run) if spec.image_pull_secrets else None
        ),
        pull_secret_sources=tuple(spec.image_pull_secrets),
        runner_image=policy.runner_image,
        containers=tuple(containers),
        volumes=tuple(_volumes(spec, volumes)),
        workspace=workspace,
        node_selector=tuple(sorted(platforms.node_selector(spec).items())),
        platform=platforms.target(spec),
        tolerations=tuple(_toleration(t) for t in spec.tolerations),
        service_account=spec.service_account_name or policy.default_service_account,
        automount_token=policy.automount_service_account_token,
        pod_labels=tuple(sorted(meta.labels.items())),
        pod_annotations=tuple(sorted(meta.annotations.items())),
        timeout_seconds=context.timeout_seconds or policy.run_timeout_seconds,
        step_timeout_seconds=policy.step_timeout_seconds,
        pull_timeout_seconds=policy.pull_timeout_seconds,
        log_limit_bytes=policy.log_limit_bytes,
        triggered=whens.build_matches(spec.trigger, context.build),
        host_aliases=host_aliases(spec),
        warnings=tuple(warnings),
    )


def host_aliases(spec: models.PipelineSpec) -> tuple[str, ...]:
    """The host names that reach the pod's own containers, as drone-runner-kube gives them (engine/compiler/
    compiler.go: every service, and every detached step, whose name is a DNS-1123 subdomain): in Drone,
    ``mariadb:3306`` reaches the service ``mariadb``; in one pod every container listens on 127.0.0.1."""
    names = [s.name for s in spec.services] + [s.name for s in spec.steps if s.detach]
    return tuple(dict.fromkeys(n for n in names if kubenames.is_dns1123_subdomain(n)))


def _steps(
    spec: models.PipelineSpec,
    policy: policies.Policy,
    workspace: str,
    volumes: dict[str, str],
    base_env: dict[str, plans.EnvVar],
    context: RunContext,
    clone: plans.ContainerPlan | None,
) -> list[plans.ContainerPlan]:
    """The steps' containers: each after the one before (after the clone), or after its ``depends_on``."""
    out: list[plans.ContainerPlan] = []
    sequential = not any(step.depends_on for step in spec.steps)
    previous: str | None = clone.name if clone else None
    for step in spec.steps:
        if sequential:
            deps: tuple[str, ...] = (previous,) if previous else ()
        else:
            named = tuple(conventions.step_container(d) for d in _known_deps(step, spec, clone))
            deps = named or ((clone.name,) if clone else ())
        plan = _container(step, plans.Kind.STEP, spec, policy, workspace, volumes, base_env, context, deps)
        out.append(plan)
        if sequential:
            previous = plan.name
    return out


def _known_deps(step: models.Step, spec: models.PipelineSpec, clone: plans.ContainerPlan | None) -> list[str]:
    """A step's depends_on, with Drone's implicit "clone" step dropped when this run has none (no remote in
    the build metadata): Drone's clone step always exists unless disabled (drone-yaml linter.go)."""
    steps = {s.name for s in spec.steps}
    return [d for d in step.depends_on or () if d != validation.CLONE_STEP or d in steps or clone]


def script(commands: Iterable[str]) -> str:
    """The POSIX shell script for ``commands``: ``set -e``, each command echoed as ``+ cmd`` first.

    Commands are inserted verbatim; only the echoed copy is quoted, so nothing is interpreted twice.
    """
    lines = ["set -e"]
    for command in commands:
        lines.append(f"printf '%s\\n' {shlex.quote('+ ' + command)}")
        lines.append(command)
    return "\n".join(lines) + "\n"


SHELL = "/bin/sh"


def _command(step: models.Step) -> tuple[tuple[str, ...] | None, tuple[str, ...] | None]:
    """Kubernetes' (command, args) of a step or service, Drone's way: ``commands`` become one shell script,
    ``entrypoint`` replaces the image's ENTRYPOINT and ``command`` its CMD. A step's entrypoint wrapper then
    runs exactly this (see ``stepping.command_of``), so no image needs ``/bin/sh`` but for ``commands``."""
    if step.commands is not None:
        return (step.shell or SHELL, "-c", script(step.commands)), None
    if step.entrypoint:
        return tuple(step.entrypoint), tuple(step.command) if step.command else None
    if step.command:
        return None, tuple(step.command)
    return None, None


def _variables_of_raw(raw: Mapping[str, Any], context: RunContext) -> dict[str, str]:
    """The run's Drone variables, read from the spec before it is parsed (substitution comes first)."""

    def text(value: Any) -> str | None:
        return value if isinstance(value, str) and value else None

    found_platform, found_depends = raw.get("platform"), raw.get("depends_on")
    platform: Mapping[str, Any] = found_platform if isinstance(found_platform, Mapping) else {}
    depends: list[Any] = found_depends if isinstance(found_depends, list) else []
    values = environs.variables(
        context.build,
        stage=text(raw.get("name")) or context.pipeline,
        stage_type=text(raw.get("type")) or "kubernetes",
        depends_on=tuple(str(d) for d in depends),
        platform=(text(platform.get("os")), text(platform.get("arch"))),
    )
    return {**values, **dict(context.build_env)}  # what its dependencies give it (builds) is substituted too


def _drone_env(spec: models.PipelineSpec, context: RunContext, workspace: str) -> dict[str, plans.EnvVar]:
    platform = spec.platform or models.Platform()
    values = environs.variables(
        context.build,
        stage=spec.name or context.pipeline,
        stage_type=spec.type or "kubernetes",
        depends_on=tuple(spec.depends_on or ()),
        platform=(platform.os, platform.arch),
    )
    values.update(
        {
            "DRONE_WORKSPACE": workspace,
            "DRONE_WORKSPACE_PATH": workspace,
            "DRONE_PIPELINE_NAME": context.pipeline,
            "PODLINE_RUN": context.run,
        }
    )
    values.update(context.build_env)
    return {k: plans.EnvVar(k, v) for k, v in values.items()}


def _env(values: Mapping[str, Any], policy: policies.Policy) -> dict[str, plans.EnvVar]:
    out = {}
    for name, value in values.items():
        if isinstance(value, models.FromSecret):
            secret, key = validation.secret_ref(value.from_secret, policy)
            out[name] = plans.EnvVar(name, secret=plans.SecretRef(secret, key))
        else:
            out[name] = plans.EnvVar(name, str(value))
    return out


def setting_value(value: Any) -> str:
    """Drone's plugin setting encoding: scalars as text, lists of scalars comma-joined, the rest as JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, list) and all(isinstance(v, (str, int, float, bool)) for v in value):
        return ",".join(setting_value(v) for v in value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _settings(settings: Mapping[str, Any], policy: policies.Policy) -> dict[str, plans.EnvVar]:
    out = {}
    for name, value in settings.items():
        env = "PLUGIN_" + name.upper().replace("-", "_").replace(".", "_")
        if isinstance(value, Mapping) and set(value) == {"from_secret"}:
            secret, key = validation.secret_ref(str(value["from_secret"]), policy)
            out[env] = plans.EnvVar(env, secret=plans.SecretRef(secret, key))
        else:
            out[env] = plans.EnvVar(env, setting_value(value))
    return out


def _container(
    step: models.Step,
    kind: plans.Kind,
    spec: models.PipelineSpec,
    policy: policies.Policy,
    workspace: str,
    volumes: Mapping[str, str],
    base_env: Mapping[str, plans.EnvVar],
    context: RunContext,
    depends_on: tuple[str, ...],
) -> plans.ContainerPlan:
    name = (
        conventions.service_container(step.name)
        if kind is plans.Kind.SERVICE
        else conventions.step_container(step.name)
    )
    env = {
        **base_env,
        "DRONE_STEP_NAME": plans.EnvVar("DRONE_STEP_NAME", step.name),
        **_env(spec.environment, policy),
        **_env(step.environment, policy),
        **_settings(step.settings, policy),
    }
    command, args = _command(step)
    image = images.parse(step.image)
    limits, requests = _resources(step)
    return plans.ContainerPlan(
        name=name,
        step=step.name,
        kind=kind,
        image=step.image,
        pull_policy=pulling.pull_policy(pulling.parse_pull(step.pull), image),
        command=command,
        args=args,
        env=tuple(env.values()),
        working_dir=step.working_dir or workspace,
        mounts=tuple(plans.Mount(volumes[m.name], m.path) for m in step.volumes),
        privileged=step.privileged or policies.runs_privileged(policy, step),
        user=int(step.user) if step.user is not None else None,
        group=int(step.group) if step.group is not None else None,
        limits=limits,
        requests=requests,
        depends_on=depends_on,
        run_on_success=whens.runs_on(step.when, failing=False),
        run_on_failure=whens.runs_on(step.when, failing=True),
        ignore_failure=step.ignores_failure,
        detach=step.detach,
        excluded=not whens.build_matches(step.when, context.build),
        ports=tuple((p.port, (p.protocol or "TCP").upper()) for p in step.ports),
    )


def _resources(step: models.Step) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    def one(rl: models.ResourceList | None) -> tuple[tuple[str, str], ...]:
        if rl is None:
            return ()
        pairs = [(r, getattr(rl, r)) for r in ("cpu", "memory") if getattr(rl, r) is not None]
        return tuple((r, quantities.parse(r, v)) for r, v in pairs)

    res = step.resources
    return (one(res.limits), one(res.requests)) if res else ((), ())


def _spread_requests(containers: list[plans.ContainerPlan]) -> list[plans.ContainerPlan]:
    """Steps run one after another, so the pod needs the largest step's request, not their sum.

    The largest request of each resource stays on its step; other steps that have a limit get an
    explicit zero request (otherwise Kubernetes would default their request to the limit). Services run
    alongside the steps and keep their own requests.
    """
    steps = [c for c in containers if c.is_step]
    keep: dict[str, str] = {}
    for resource in ("cpu", "memory"):
        best, best_amount = None, None
        for c in steps:
            value = dict(c.requests).get(resource)
            if value is not None and (best_amount is None or quantities.amount(value) > best_amount):
                best, best_amount = c.name, quantities.amount(value)
        if best:
            keep[resource] = best
    out = []
    for c in containers:
        if not c.is_step:
            out.append(c)
            continue
        limited = {r for r, _ in c.limits}
        requests = {r: v for r, v in c.requests if keep.get(r) == c.name}
        for resource in ("cpu", "memory"):
            if resource not in requests and (resource in limited or resource in dict(c.requests)):
                requests[resource] = "0"
        out.append(_replace(c, requests=tuple(sorted(requests.items()))))
    return out


def _number_steps(containers: list[plans.ContainerPlan]) -> list[plans.ContainerPlan]:
    """``DRONE_STEP_NUMBER``: the place of each container that runs, in Drone's order (clone, services, then
    steps), counting from 1; skipped ones get none (drone/runner-go ``pipeline/runtime/runner.go`` and
    ``execer.go``: ``environ.Step``)."""
    order = {plans.Kind.CLONE: 0, plans.Kind.SERVICE: 1, plans.Kind.STEP: 2}
    numbers: dict[str, int] = {}
    for c in sorted((c for c in containers if not c.excluded), key=lambda c: order[c.kind]):
        numbers[c.name] = len(numbers) + 1
    return [
        _replace(c, env=(*c.env, plans.EnvVar("DRONE_STEP_NUMBER", str(numbers[c.name]))))
        if c.name in numbers
        else c
        for c in containers
    ]


def _replace(c: plans.ContainerPlan, **changes: Any) -> plans.ContainerPlan:
    return dataclasses.replace(c, **changes)


def _volume_names(spec: models.PipelineSpec) -> dict[str, str]:
    return {v.name: conventions.volume_name(v.name) for v in spec.volumes}


def _volumes(spec: models.PipelineSpec, names: Mapping[str, str]) -> list[plans.VolumePlan]:
    out = [plans.VolumePlan(conventions.WORKSPACE_VOLUME, "temp")]
    for v in spec.volumes:
        name = names[v.name]
        if v.temp is not None:
            size = v.temp.size_limit
            out.append(
                plans.VolumePlan(
                    name,
                    "temp",
                    memory=v.temp.medium == "memory",
                    size_limit=quantities.parse("memory", size) if size is not None else None,
                )
            )
        elif v.host is not None:
            out.append(plans.VolumePlan(name, "host", path=v.host.path))
        elif v.claim is not None:
            out.append(plans.VolumePlan(name, "claim", source=v.claim.name, read_only=v.claim.read_only))
        elif v.config_map is not None:
            cm = v.config_map
            out.append(
                plans.VolumePlan(
                    name, "config_map", source=cm.name, optional=cm.optional, default_mode=cm.default_mode
                )
            )
    return out


def _toleration(t: models.Toleration) -> plans.TolerationPlan:
    return plans.TolerationPlan(
        operator=t.operator, key=t.key, value=t.value, effect=t.effect or None, seconds=t.toleration_seconds
    )


def _clone(
    spec: models.PipelineSpec,
    context: RunContext,
    policy: policies.Policy,
    workspace: str,
    base_env: Mapping[str, plans.EnvVar],
) -> plans.ContainerPlan | None:
    """Drone clones first when it knows the repository; podline does when build metadata names a remote."""
    if context.build is None or not context.build.remote or (spec.clone and spec.clone.disable):
        return None
    name = conventions.step_container(validation.CLONE_STEP)
    if any(conventions.step_container(step.name) == name for step in spec.steps):
        return None  # the pipeline clones by itself (a step "clone", or one whose container would clash)
    env = dict(base_env)
    env["DRONE_STEP_NAME"] = plans.EnvVar("DRONE_STEP_NAME", "clone")
    if spec.clone and spec.clone.depth:
        env["PLUGIN_DEPTH"] = plans.EnvVar("PLUGIN_DEPTH", str(spec.clone.depth))
    if spec.clone and spec.clone.skip_verify:
        env["PLUGIN_SKIP_VERIFY"] = plans.EnvVar("PLUGIN_SKIP_VERIFY", "true")
    image = images.parse(policy.clone_image)
    return plans.ContainerPlan(
        name=name,
        step="clone",
        kind=plans.Kind.CLONE,
        image=policy.clone_image,
        pull_policy=pulling.pull_policy(None, image),
        env=tuple(env.values()),
        working_dir=workspace,
    )
