"""Parse a raw ``spec`` into ``models.PipelineSpec`` and check every rule the schema cannot express.

Reports *every* problem at once, each with its field path (``spec.steps[2].depends_on: unknown step
"tset"``), as one ``errors.InvalidPipeline``. Rules here: unique names and their container-name mapping,
the dependency graph, image references, secret and variable names, volumes, and what the operator's
``policies.Policy`` forbids. Warnings (accepted but worth telling) are returned, not raised.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pydantic

from podline.core import conventions, errors, images, kubenames, models, platforms, policies, quantities

_SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_DOCKER_ONLY = ("network_mode", "extra_hosts", "dns", "dns_search", "cpu", "mem_limit", "shm_size")
CLONE_STEP = "clone"  # Drone's implicit first step, there unless clone.disable (drone-yaml linter.go)
RUNNER_TYPES = ("docker", "kubernetes", "")
_Problems = Iterator[errors.Problem]


def path_of(loc: tuple[int | str, ...], root: str = "spec") -> str:
    """A pydantic error location as a field path. The models are built so that pydantic adds no union
    member names to locations (``IntOrString`` validates before the union), so every part is a field,
    an index or a user's key: a key such as ``str`` in ``environment`` is kept."""
    out = root
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def parse(raw: Mapping[str, Any] | None, *, root: str = "spec") -> models.PipelineSpec:
    """Parse a spec, turning pydantic's errors into problems with Kubernetes-style field paths."""
    if not isinstance(raw, Mapping):
        raise errors.InvalidPipeline.at(root, "must be an object (the body of a Drone pipeline)")
    kind = raw.get("type")
    if kind is not None and kind not in RUNNER_TYPES:
        raise errors.InvalidPipeline.at(f"{root}.type", runner_problem(kind))
    try:
        return models.PipelineSpec.model_validate(dict(raw))
    except pydantic.ValidationError as exc:
        problems, seen = [], set()
        for err in exc.errors(include_url=False):  # the input is looked at, never shown
            problem = errors.Problem(path_of(err["loc"], root), _message(err))
            if problem not in seen:
                seen.add(problem)
                problems.append(problem)
        raise errors.InvalidPipeline(problems) from None


def runner_problem(kind: Any) -> str:
    """Why a pipeline for another Drone runner is not run (checked before its fields: an exec pipeline has no
    images, and saying so beats "steps[0].image: required field is missing")."""
    if not isinstance(kind, str):
        return "must be a string: docker or kubernetes"
    return (
        f"{json.dumps(kind)} pipelines are not run: podline runs Drone's docker and kubernetes pipelines as "
        f"pods (this one needs Drone's {kind} runner)"
    )


def _message(err: Mapping[str, Any]) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "required field is missing"
    if kind in ("model_type", "model_attributes_type", "dict_type") and err.get("input", "") is None:
        return "is null; must be an object"
    if kind == "literal_error":
        return "unsupported value; " + str(err["msg"]).replace("Input should be", "expected")
    return str(err["msg"]).removeprefix("Value error, ")


def check(spec: models.PipelineSpec, policy: policies.Policy, *, root: str = "spec") -> list[str]:
    """Raise ``InvalidPipeline`` listing every broken rule; return warnings for what is merely ignored."""
    problems = [
        *_names(spec, root),
        *_dependencies(spec, root),
        *_containers(spec, policy, root),
        *_secrets(spec, root),
        *_volumes(spec, policy, root),
        *_limits(spec, policy, root),
        *_pod_metadata(spec, root),
        *_unconfined(spec, policy, root),
        *_placement(spec, root),
        *_platform(spec, root),
        *_ports(spec, root),
    ]
    if spec.service_account_name and not policy.allows_service_account(spec.service_account_name):
        problems.append(
            errors.Problem(
                f"{root}.service_account_name",
                f'ServiceAccount "{spec.service_account_name}" is not allowed by the operator configuration',
            )
        )
    if problems:
        raise (
            errors.PolicyViolation(problems)
            if all(_is_policy(p) for p in problems)
            else errors.InvalidPipeline(problems)
        )
    return _warnings(spec, root)


def _is_policy(problem: errors.Problem) -> bool:
    return "not allowed by the operator configuration" in problem.message


def _names(spec: models.PipelineSpec, root: str) -> _Problems:
    services = {s.name: i for i, s in reversed(list(enumerate(spec.services)))}
    for index, step in enumerate(spec.steps):
        if step.name in services:  # as in Drone: depends_on could not tell which one it means
            yield errors.Problem(
                f"{root}.steps[{index}].name",
                f'"{step.name}" is also the name of a service (services[{services[step.name]}])',
            )
    for field, items, to_container in (
        ("steps", spec.steps, conventions.step_container),
        ("services", spec.services, conventions.service_container),
    ):
        seen: dict[str, int] = {}
        containers: dict[str, tuple[int, str]] = {}
        for index, item in enumerate(items):
            path = f"{root}.{field}[{index}].name"
            if item.name in seen:
                yield errors.Problem(path, f'duplicate name "{item.name}" (also {field}[{seen[item.name]}])')
                continue
            seen[item.name] = index
            container = to_container(item.name)
            if container in containers:
                other_index, other = containers[container]
                yield errors.Problem(
                    path,
                    f'name "{item.name}" maps to container "{container}", as does "{other}" '
                    f"({field}[{other_index}]); rename one",
                )
            containers[container] = (index, item.name)


def _dependencies(spec: models.PipelineSpec, root: str) -> _Problems:
    steps = {s.name: i for i, s in enumerate(spec.steps)}
    services = {s.name for s in spec.services}
    cloning = not (spec.clone and spec.clone.disable)
    for index, step in enumerate(spec.steps):
        for dep in step.depends_on or ():
            path = f"{root}.steps[{index}].depends_on"
            if dep == CLONE_STEP and dep not in steps:
                if not cloning:
                    yield errors.Problem(path, 'unknown step "clone": clone.disable leaves no clone step')
            elif dep == step.name:
                yield errors.Problem(path, f'step "{step.name}" depends on itself')
            elif dep in services and dep not in steps:
                yield errors.Problem(
                    path, f'"{dep}" is a service; services start first and are not waited for'
                )
            elif dep not in steps:
                yield errors.Problem(path, f'unknown step "{dep}"')
    cycle = find_cycle(
        {s.name: [d for d in s.depends_on or () if d in steps and d != s.name] for s in spec.steps}
    )
    if cycle:
        first = steps[cycle[0]]
        yield errors.Problem(f"{root}.steps[{first}].depends_on", "dependency cycle: " + " -> ".join(cycle))


def find_cycle(graph: Mapping[str, list[str]]) -> list[str] | None:
    """Return one cycle as a path ``[a, b, …, a]``, or None. Iterative, so 1000 steps cannot overflow."""
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    for start in graph:
        if state.get(start):
            continue
        stack: list[tuple[str, Iterator[str]]] = [(start, iter(graph[start]))]
        state[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
            elif state.get(child) == 1:
                names = [n for n, _ in stack]
                return [*names[names.index(child) :], child]
            elif not state.get(child):
                state[child] = 1
                stack.append((child, iter(graph[child])))
    return None


def _containers(spec: models.PipelineSpec, policy: policies.Policy, root: str) -> _Problems:
    for field, items in (("services", spec.services), ("steps", spec.steps)):
        for index, item in enumerate(items):
            path = f"{root}.{field}[{index}]"
            try:
                images.parse(item.image, path=f"{path}.image")
            except errors.InvalidImageReference as exc:
                yield from exc.problems
            if item.commands is not None and item.entrypoint:
                yield errors.Problem(
                    f"{path}.entrypoint", "cannot be combined with commands: commands run through the shell"
                )
            if item.commands is not None and item.command:
                yield errors.Problem(
                    f"{path}.command", "cannot be combined with commands; use one or the other"
                )
            if item.commands is not None and not item.commands:
                yield errors.Problem(f"{path}.commands", "is empty; remove it or add a command")
            yield from _privilege(item, policy, path)
            for attr in ("user", "group"):
                value = getattr(item, attr)
                reason = kubenames.id_problem(value) if value is not None else None
                if reason:
                    yield errors.Problem(f"{path}.{attr}", reason)
            if item.working_dir is not None and not item.working_dir.startswith("/"):
                yield errors.Problem(f"{path}.working_dir", "must be an absolute path")
            if item.resources:
                yield from _resources(item.resources, f"{path}.resources")
            for name in item.environment:
                yield from _env_name(name, f"{path}.environment")
            for name in item.settings:
                yield from _env_name(name, f"{path}.settings")
    for name in spec.environment:
        yield from _env_name(name, f"{root}.environment")


def _privilege(item: models.Step, policy: policies.Policy, path: str) -> _Problems:
    """Privileged steps: asked for (``privileged: true``), or a plugin Drone runs privileged by default."""
    if policy.allow_privileged:
        return
    if item.privileged:
        yield errors.Problem(
            f"{path}.privileged", "privileged steps are not allowed by the operator configuration"
        )
    elif policies.runs_privileged(policy, item):
        yield errors.Problem(f"{path}.image", _privileged_image_refused(item))


def _privileged_image_refused(step: models.Step) -> str:
    return (
        f'step "{step.name}": image {json.dumps(step.image)} runs privileged, as in Drone (it is one of '
        "PODLINE_PRIVILEGED_IMAGES: it runs its own Docker daemon), and privileged steps are not allowed by the "
        "operator configuration (PODLINE_ALLOW_PRIVILEGED); build without a daemon instead (e.g. plugins/kaniko), "
        "or ask the operator's administrator to allow privileged steps"
    )


def _resources(resources: models.Resources, path: str) -> _Problems:
    parsed: dict[tuple[str, str], str] = {}
    for kind in ("limits", "requests"):
        values = getattr(resources, kind)
        for resource in ("cpu", "memory"):
            value = getattr(values, resource) if values else None
            if value is None:
                continue
            try:
                parsed[kind, resource] = quantities.parse(resource, value)
            except ValueError as exc:
                yield errors.Problem(f"{path}.{kind}.{resource}", str(exc))
    for resource in ("cpu", "memory"):
        request, limit = parsed.get(("requests", resource)), parsed.get(("limits", resource))
        if (
            request is not None
            and limit is not None
            and quantities.amount(request) > quantities.amount(limit)
        ):
            # The apiserver rejects such a pod; say so before a run is started.
            yield errors.Problem(f"{path}.requests.{resource}", f"{request} is more than the limit {limit}")


def _env_name(name: str, path: str) -> _Problems:
    reason = kubenames.env_name_problem(name) or (
        None if name.strip() else "is not a valid environment variable name"
    )
    if reason:
        yield errors.Problem(f"{path}.{name}", reason)


def secret_ref(value: str, policy: policies.Policy) -> tuple[str, str]:
    """``"secret/key"`` → (secret, key); a bare ``"key"`` → (the policy's secret store, key)."""
    if "/" in value:
        name, key = value.split("/", 1)
        return name, key
    return policy.secret_store, value


def _secret_values(spec: models.PipelineSpec, root: str) -> Iterator[tuple[str, str]]:
    for name, value in spec.environment.items():
        if isinstance(value, models.FromSecret):
            yield f"{root}.environment.{name}", value.from_secret
    for field, items in (("services", spec.services), ("steps", spec.steps)):
        for index, item in enumerate(items):
            for name, value in item.environment.items():
                if isinstance(value, models.FromSecret):
                    yield f"{root}.{field}[{index}].environment.{name}", value.from_secret
            for name, setting in item.settings.items():
                if isinstance(setting, Mapping) and "from_secret" in setting:
                    ref = setting["from_secret"]
                    if not isinstance(ref, str) or set(setting) != {"from_secret"}:
                        yield f"{root}.{field}[{index}].settings.{name}", ""
                    else:
                        yield f"{root}.{field}[{index}].settings.{name}", ref


def _secrets(spec: models.PipelineSpec, root: str) -> _Problems:
    for index, name in enumerate(spec.image_pull_secrets):
        if not _valid_secret_name(name):
            yield errors.Problem(
                f"{root}.image_pull_secrets[{index}]",
                f'"{name}" is not a valid Secret name: in Drone it names a Drone secret holding a Docker '
                "config.json; here it names a Kubernetes Secret in the Pipeline's namespace (lowercase letters, "
                "digits, '-' and '.'): store the config.json in one and name that",
            )
    if len(set(spec.image_pull_secrets)) != len(spec.image_pull_secrets):
        yield errors.Problem(f"{root}.image_pull_secrets", "lists a Secret more than once")
    for path, ref in _secret_values(spec, root):
        name, _, key = ref.partition("/") if "/" in ref else ("", "", ref)
        if not ref:
            yield errors.Problem(f"{path}.from_secret", "must be a string naming a secret")
        elif "/" in ref and not _valid_secret_name(name):
            yield errors.Problem(f"{path}.from_secret", f'"{name}" is not a valid Secret name')
        elif not _SECRET_KEY.match(key):
            yield errors.Problem(f"{path}.from_secret", f'"{key}" is not a valid Secret key')


def _valid_secret_name(name: str) -> bool:
    return kubenames.is_dns1123_subdomain(name)


def workspace_path(spec: models.PipelineSpec) -> str:
    """Where the shared workspace is mounted: ``workspace.base`` joined with ``workspace.path``."""
    ws = spec.workspace
    if ws is None or (not ws.path and not ws.base):
        return conventions.DEFAULT_WORKSPACE
    if ws.base:
        return posixpath.normpath(posixpath.join(ws.base, ws.path or ""))
    return posixpath.normpath(ws.path or conventions.DEFAULT_WORKSPACE)


def _volumes(spec: models.PipelineSpec, policy: policies.Policy, root: str) -> _Problems:
    declared: dict[str, int] = {}
    pod_names: dict[str, int] = {}
    for index, volume in enumerate(spec.volumes):
        path = f"{root}.volumes[{index}]"
        if volume.name in declared:
            yield errors.Problem(f"{path}.name", f'duplicate volume "{volume.name}"')
        else:
            pod_name = conventions.volume_name(volume.name)
            if pod_name in pod_names:
                other = pod_names[pod_name]
                yield errors.Problem(
                    f"{path}.name",
                    f'name "{volume.name}" maps to pod volume "{pod_name}", as does "{spec.volumes[other].name}" '
                    f"(volumes[{other}]); rename one",
                )
            pod_names[pod_name] = index
        declared[volume.name] = index
        yield from _volume_source(volume, policy, path)
    workspace = workspace_path(spec)
    for field, items in (("services", spec.services), ("steps", spec.steps)):
        for index, item in enumerate(items):
            yield from _mounts(item.volumes, declared, workspace, f"{root}.{field}[{index}]")
    yield from _workspace(spec, root)


def _volume_source(volume: models.Volume, policy: policies.Policy, path: str) -> _Problems:
    """One pipeline volume's source: exactly one kind, and that kind's fields."""
    kinds = [k for k in ("temp", "host", "claim", "config_map") if getattr(volume, k) is not None]
    if len(kinds) != 1:
        yield errors.Problem(path, "must have exactly one of temp, host, claim, config_map")
    if volume.host is not None:
        if not policy.allow_host_volumes:
            yield errors.Problem(f"{path}.host", "host volumes are not allowed by the operator configuration")
        elif not volume.host.path.startswith("/"):
            yield errors.Problem(f"{path}.host.path", "must be an absolute path")
    if volume.temp is not None and volume.temp.size_limit is not None:
        try:
            quantities.parse("memory", volume.temp.size_limit)
        except ValueError as exc:
            yield errors.Problem(f"{path}.temp.size_limit", str(exc))
    for kind in ("claim", "config_map"):
        source = getattr(volume, kind)
        if source is not None and not kubenames.is_dns1123_subdomain(source.name):
            yield errors.Problem(f"{path}.{kind}.name", f'"{source.name}" is not a valid {_KINDS[kind]} name')
    mode = volume.config_map.default_mode if volume.config_map is not None else None
    if mode is not None and not 0 <= mode <= 0o777:
        yield errors.Problem(
            f"{path}.config_map.default_mode", "must be a file mode between 0 and 0777 (511)"
        )


def _mounts(
    mounts: Sequence[models.VolumeMount], declared: Mapping[str, int], workspace: str, root: str
) -> _Problems:
    """One step's or service's volume mounts: of declared volumes, at absolute paths, each path once."""
    mounted: dict[str, int] = {}
    for mount_index, mount in enumerate(mounts):
        path = f"{root}.volumes[{mount_index}]"
        if mount.name not in declared:
            yield errors.Problem(f"{path}.name", f'unknown volume "{mount.name}"')
        if not mount.path.startswith("/"):
            yield errors.Problem(f"{path}.path", "must be an absolute path")
            continue
        # The apiserver rejects a container with two mounts at one path; the workspace is one.
        target = posixpath.normpath(mount.path)
        if target == workspace:
            yield errors.Problem(f"{path}.path", f'"{target}" is the workspace; mount the volume elsewhere')
        elif target in mounted:
            yield errors.Problem(
                f"{path}.path", f'"{target}" is mounted twice (also volumes[{mounted[target]}])'
            )
        mounted.setdefault(target, mount_index)


def _workspace(spec: models.PipelineSpec, root: str) -> _Problems:
    ws = spec.workspace
    if ws and ws.base is not None and not ws.base.startswith("/"):
        yield errors.Problem(f"{root}.workspace.base", "must be an absolute path")
    elif ws and ws.path and ws.base is None and not ws.path.startswith("/"):
        yield errors.Problem(f"{root}.workspace.path", "must be an absolute path (or set workspace.base)")


def _limits(spec: models.PipelineSpec, policy: policies.Policy, root: str) -> _Problems:
    count = len(spec.steps) + len(spec.services)
    if count > policy.max_steps:
        yield errors.Problem(
            f"{root}.steps",
            f"{count} steps and services exceed the limit of {policy.max_steps} (one pod holds them all)",
        )
        return
    shared = _env_size(spec.environment)
    total = sum(
        shared + _env_size(item.environment) + _env_size(item.settings) for item in spec.all_containers
    )
    if total > policy.max_env_bytes:
        yield errors.Problem(
            f"{root}.environment",
            f"the pod's environment would be {total} bytes, over the limit of {policy.max_env_bytes}",
        )


def _env_size(env: Mapping[str, Any]) -> int:
    """Bytes a set of variables adds to the pod; a secret reference counts 64, a setting its JSON size
    (a bound: lists are comma-joined in the pod, a little shorter than their JSON)."""
    return sum(len(k) + _value_size(v) for k, v in env.items())


def _value_size(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, models.FromSecret) or (isinstance(value, Mapping) and "from_secret" in value):
        return 64
    return len(json.dumps(value, default=str))


_KINDS = {"claim": "PersistentVolumeClaim", "config_map": "ConfigMap"}


def _pod_metadata(spec: models.PipelineSpec, root: str) -> _Problems:
    """Valid keys and label values; the pod's podline.dev labels and annotations are the run's record
    (see scheduling), not the user's."""
    if spec.metadata is None:
        return
    for field in ("labels", "annotations"):
        for key, value in getattr(spec.metadata, field).items():
            path = f"{root}.metadata.{field}.{key}"
            prefix = key.rpartition("/")[0]
            reason = kubenames.label_key_problem(key)
            if reason:
                yield errors.Problem(path, reason)
            elif prefix == conventions.GROUP or prefix.endswith("." + conventions.GROUP):
                yield errors.Problem(path, "is reserved for the operator")
            elif field == "labels" and (reason := kubenames.label_value_problem(value)):
                yield errors.Problem(path, reason)


# Pod annotations Kubernetes reads as security profiles (an AppArmor one becomes the container's appArmorProfile).
_PROFILE_ANNOTATIONS = ("container.apparmor.security.beta.kubernetes.io/", "seccomp.security.alpha.kubernetes.io/",
                        "container.seccomp.security.alpha.kubernetes.io/")  # fmt: skip


def _unconfined(spec: models.PipelineSpec, policy: policies.Policy, root: str) -> _Problems:
    """An "unconfined" profile loosens a step as the baseline Pod Security Standard forbids: like privileged
    steps, only if the operator allows those."""
    if spec.metadata is None or policy.allow_privileged:
        return
    for key, value in spec.metadata.annotations.items():
        if key.startswith(_PROFILE_ANNOTATIONS) and value.strip().lower() == "unconfined":
            yield errors.Problem(
                f"{root}.metadata.annotations.{key}",
                "unconfined profiles are not allowed by the operator configuration (as privileged steps)",
            )


def _placement(spec: models.PipelineSpec, root: str) -> _Problems:
    for key, value in spec.node_selector.items():
        reason = kubenames.label_key_problem(key) or kubenames.label_value_problem(value)
        if reason:
            yield errors.Problem(f"{root}.node_selector.{key}", reason)
    for index, t in enumerate(spec.tolerations):
        path = f"{root}.tolerations[{index}]"
        if t.key and (reason := kubenames.label_key_problem(t.key)):
            yield errors.Problem(f"{path}.key", reason)
        if not t.key and t.operator != "Exists":
            yield errors.Problem(
                f"{path}.operator", 'must be "Exists" when key is empty (to tolerate every taint)'
            )
        if t.operator == "Exists" and t.value:
            yield errors.Problem(f"{path}.value", 'must be empty when operator is "Exists"')
        if t.toleration_seconds is not None and t.effect != "NoExecute":
            yield errors.Problem(f"{path}.toleration_seconds", 'needs effect "NoExecute"')


_LINUX_ONLY = "steps run under podline's entrypoint, a Linux binary; use linux"


def _platform(spec: models.PipelineSpec, root: str) -> _Problems:
    """``platform`` and the node selector's ``kubernetes.io/os``/``arch`` name a platform nodes have, and the
    same one: the pod goes where they say, and image configs are read for it (see ``platforms``)."""
    platform = spec.platform or models.Platform()
    valid: set[str] = set()
    if platform.os:
        if platforms.os_label(platform.os) in platforms.OPERATING_SYSTEMS:
            valid.add("os")
        else:
            yield errors.Problem(
                f"{root}.platform.os", f"{json.dumps(platform.os)} is not supported: {_LINUX_ONLY}"
            )
    if platform.arch:
        if platforms.arch_label(platform.arch):
            valid.add("arch")
        else:
            yield errors.Problem(
                f"{root}.platform.arch",
                f"unknown architecture {json.dumps(platform.arch)}; known: {', '.join(platforms.ARCHITECTURES)} "
                f"(or {', '.join(platforms.ALIASES)})",
            )
    # a value that is no label value at all is _placement's to report
    selector = {k: v for k, v in spec.node_selector.items() if not kubenames.label_value_problem(v)}
    os, arch = selector.get(platforms.OS_LABEL), selector.get(platforms.ARCH_LABEL)
    if os is not None:
        path = f"{root}.node_selector.{platforms.OS_LABEL}"
        if os in platforms.OPERATING_SYSTEMS:
            valid.add("selector-os")
        elif platforms.os_label(os) in platforms.OPERATING_SYSTEMS:
            yield errors.Problem(
                path, f'no node has {json.dumps(os)}; Kubernetes calls it "{platforms.os_label(os)}"'
            )
        else:
            yield errors.Problem(path, f"{json.dumps(os)} is not supported: {_LINUX_ONLY}")
    if arch is not None:
        path = f"{root}.node_selector.{platforms.ARCH_LABEL}"
        label = platforms.arch_label(arch)
        if label == arch:
            valid.add("selector-arch")
        elif label:
            yield errors.Problem(path, f'no node has {json.dumps(arch)}; Kubernetes calls it "{label}"')
        else:
            yield errors.Problem(
                path,
                f"unknown architecture {json.dumps(arch)}; nodes have one of: {', '.join(platforms.ARCHITECTURES)}",
            )
    if platform.variant and not platform.arch and platforms.ARCH_LABEL not in spec.node_selector:
        yield errors.Problem(
            f"{root}.platform.variant",
            f"needs an architecture (platform.arch or node_selector {platforms.ARCH_LABEL})",
        )
    for field, (label, chosen) in platforms.conflicts(spec).items():
        if {field, f"selector-{field}"} <= valid:
            value = getattr(platform, field)
            yield errors.Problem(
                f"{root}.platform.{field}",
                f"{json.dumps(value)} disagrees with node_selector {label} {json.dumps(chosen)}: the pod would run "
                f"on {chosen} nodes and its images' commands be read for {value}; make them agree or drop one",
            )


def _ports(spec: models.PipelineSpec, root: str) -> _Problems:
    """The containers of a pod share one network: two cannot listen on one port (Docker gave each service
    its own address; in the pod the second fails to bind)."""
    seen: dict[tuple[int, str], str] = {}
    for field, items in (("services", spec.services), ("steps", spec.steps)):
        for index, item in enumerate(items):
            for number, port in enumerate(item.ports):
                key = (port.port, (port.protocol or "TCP").upper())
                where = f"{root}.{field}[{index}].ports[{number}]"
                if key in seen:
                    yield errors.Problem(
                        where,
                        f'"{item.name}" and {seen[key]} both listen on {key[0]}/{key[1]}: the containers of '
                        "the run's pod share one network; give one another port",
                    )
                else:
                    seen[key] = f'"{item.name}" ({field}[{index}])'


def _warnings(spec: models.PipelineSpec, root: str) -> list[str]:
    out = []
    for field, items in (("services", spec.services), ("steps", spec.steps)):
        for index, item in enumerate(items):
            for attr in _DOCKER_ONLY:
                if getattr(item, attr) is not None:
                    out.append(f"{root}.{field}[{index}].{attr}: Docker-only field, ignored on Kubernetes")
            for number, port in enumerate(item.ports):
                if port.host is not None:
                    out.append(
                        f"{root}.{field}[{index}].ports[{number}].host: Docker-only (publishes on the host), "
                        "ignored on Kubernetes"
                    )
    return out
