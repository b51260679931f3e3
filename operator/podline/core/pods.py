"""Kubernetes manifests of a run: the pod, the generated pull Secret, and the pod patches that drive it.

A set of small ``to_x`` mappers from ``plans.RunPlan`` to plain dicts, with no I/O. Every container runs
its own image from the pod's creation; a step's command is wrapped by the entrypoint binary, which a first
``podline-prepare`` container installs into a shared volume (the contract: ``docs/in-pod.md``). The only
patches are ``stand_in_patch`` (a step whose image cannot be pulled gets the runner image, the one
container field mutable after creation) and ``stop_patch``.

Site policy can be added without flags: ``build_pod(plan, transformers=[...])`` runs each transformer
(pod dict in, pod dict out) last.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from podline.core import auths, conventions, images, plans, pulling, stepping

Manifest = dict[str, Any]
Transformer = Callable[[Manifest], Manifest]


def owner_reference(plan: plans.RunPlan) -> Manifest:
    return {
        "apiVersion": conventions.API_VERSION,
        "kind": conventions.KIND,
        "name": plan.pipeline,
        "uid": plan.pipeline_uid,
        "controller": True,
    }


def labels(plan: plans.RunPlan, component: str) -> dict[str, str]:
    return {
        conventions.LABEL_MANAGED_BY: conventions.MANAGED_BY,
        conventions.LABEL_PIPELINE: conventions.dns1123_label(plan.pipeline),
        conventions.LABEL_PIPELINE_UID: plan.pipeline_uid,
        conventions.LABEL_RUN: plan.run,
        conventions.LABEL_COMPONENT: component,
    }


def _metadata(
    plan: plans.RunPlan, name: str, component: str, extra_labels: Iterable[tuple[str, str]] = ()
) -> Manifest:
    return {
        "name": name,
        "namespace": plan.namespace,
        "labels": {**dict(extra_labels), **labels(plan, component)},
        "annotations": {conventions.ANNOTATION_PIPELINE_NAME: plan.pipeline},
        "ownerReferences": [owner_reference(plan)],
    }


def to_env(env: Iterable[plans.EnvVar]) -> list[Manifest]:
    out: list[Manifest] = []
    for var in env:
        if var.secret is not None:
            ref = {"name": var.secret.secret, "key": var.secret.key}
            out.append({"name": var.name, "valueFrom": {"secretKeyRef": ref}})
        else:
            out.append({"name": var.name, "value": var.value or ""})
    return out


def to_container(
    plan: plans.RunPlan, c: plans.ContainerPlan, *, command: Sequence[str] | None = None
) -> Manifest:
    """A service as it is; a step (``command``: what it runs) wrapped by the entrypoint (see ``stepping``).

    A step excluded by ``when`` never runs, so its container runs the runner image, which is on the node
    already (the prepare container pulled it), instead of pulling an image nothing uses."""
    wrapped = c.is_step
    image, policy = (
        (plan.runner_image, _runner_pull_policy(plan))
        if c.is_step and c.excluded
        else (c.image, c.pull_policy)
    )
    container: Manifest = {"name": c.name, "image": image, "imagePullPolicy": str(policy)}
    if wrapped:
        container["command"] = [stepping.BINARY]
        container["args"] = stepping.args_for(plan, c, () if c.excluded else (command or ()))
    else:
        if c.command is not None:
            container["command"] = list(c.command)
        if c.args is not None:
            container["args"] = list(c.args)
    container["env"] = to_env(c.env)
    container["workingDir"] = c.working_dir or plan.workspace
    if c.ports:
        container["ports"] = [{"containerPort": port, "protocol": protocol} for port, protocol in c.ports]
    mounts = [{"name": conventions.WORKSPACE_VOLUME, "mountPath": plan.workspace}]
    if wrapped:
        mounts.append({"name": stepping.TOOLS_VOLUME, "mountPath": stepping.TOOLS_DIR})
    container["volumeMounts"] = mounts + [{"name": m.volume, "mountPath": m.path} for m in c.mounts]
    resources: Manifest = {}
    if c.limits:
        resources["limits"] = dict(c.limits)
    if c.requests:
        resources["requests"] = dict(c.requests)
    if resources:
        container["resources"] = resources
    security: Manifest = {"privileged": c.privileged}
    if not c.privileged:
        security["allowPrivilegeEscalation"] = False
    if c.user is not None:
        security["runAsUser"] = c.user
    if c.group is not None:
        security["runAsGroup"] = c.group
    container["securityContext"] = security
    if wrapped:
        container["terminationMessagePath"] = stepping.TERMINATION_LOG
        container["terminationMessagePolicy"] = "File"
    return container


def _runner_pull_policy(plan: plans.RunPlan) -> pulling.PullPolicy:
    return pulling.pull_policy(None, images.parse(plan.runner_image))


def prepare_container(plan: plans.RunPlan) -> Manifest:
    """First in the pod: its postStart hook installs the entrypoint binary into the shared volume, and the
    kubelet starts no further container until that hook has returned (docs/in-pod.md)."""
    return {
        "name": stepping.PREPARE_CONTAINER,
        "image": plan.runner_image,
        "imagePullPolicy": str(_runner_pull_policy(plan)),
        "command": [stepping.RUNNER_BINARY, "prepare", stepping.TOOLS_DIR],
        "lifecycle": {
            "postStart": {"exec": {"command": [stepping.RUNNER_BINARY, "install", stepping.TOOLS_DIR]}}
        },
        "volumeMounts": [{"name": stepping.TOOLS_VOLUME, "mountPath": stepping.TOOLS_DIR}],
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "capabilities": {"drop": ["ALL"]},
        },
    }


def step_commands(
    plan: plans.RunPlan, configs: Mapping[str, stepping.ImageCommand]
) -> dict[str, tuple[str, ...]]:
    """What each step runs, with the image configs read for ``plan.needs_image_config()``."""
    return {c.name: () if c.excluded else stepping.command_of(c, configs.get(c.image)) for c in plan.steps}


def build_pod(
    plan: plans.RunPlan,
    *,
    image_configs: Mapping[str, stepping.ImageCommand] | None = None,
    transformers: Sequence[Transformer] = (),
    finalizers: Sequence[str] = (),
) -> Manifest:
    """The run's pod: the prepare container, the services, then the steps, each with its own image.
    ``finalizers``: the archive's (``records``), when the archive is on."""
    commands = step_commands(plan, image_configs or {})
    containers = [prepare_container(plan)] + [
        to_container(plan, c, command=commands.get(c.name)) for c in plan.containers
    ]
    spec: Manifest = {
        "restartPolicy": "Never",
        "activeDeadlineSeconds": plan.timeout_seconds,
        "terminationGracePeriodSeconds": 10,
        "enableServiceLinks": False,
        "automountServiceAccountToken": plan.automount_token,
        "containers": containers,
        "volumes": [to_volume(v) for v in plan.volumes] + [{"name": stepping.TOOLS_VOLUME, "emptyDir": {}}],
    }
    if plan.service_account:
        spec["serviceAccountName"] = plan.service_account
    if plan.pull_secret_name:
        spec["imagePullSecrets"] = [{"name": plan.pull_secret_name}]
    if plan.node_selector:
        spec["nodeSelector"] = dict(plan.node_selector)
    if plan.tolerations:
        spec["tolerations"] = [to_toleration(t) for t in plan.tolerations]
    if plan.host_aliases:
        spec["hostAliases"] = [{"ip": "127.0.0.1", "hostnames": list(plan.host_aliases)}]
    metadata = _metadata(plan, plan.pod_name, "run-pod", plan.pod_labels)
    metadata["annotations"].update(dict(plan.pod_annotations))
    metadata["annotations"][conventions.ANNOTATION_GENERATION] = str(plan.generation)
    if finalizers:
        metadata["finalizers"] = list(finalizers)
    pod: Manifest = {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}
    for transform in transformers:
        pod = transform(pod)
    return pod


def to_volume(v: plans.VolumePlan) -> Manifest:
    if v.kind == "host":
        return {"name": v.name, "hostPath": {"path": v.path, "type": "DirectoryOrCreate"}}
    if v.kind == "claim":
        return {"name": v.name, "persistentVolumeClaim": {"claimName": v.source, "readOnly": v.read_only}}
    if v.kind == "config_map":
        cm: Manifest = {"name": v.source, "optional": v.optional}
        if v.default_mode is not None:
            cm["defaultMode"] = v.default_mode
        return {"name": v.name, "configMap": cm}
    empty: Manifest = {}
    if v.memory:
        empty["medium"] = "Memory"
    if v.size_limit is not None:
        empty["sizeLimit"] = v.size_limit
    return {"name": v.name, "emptyDir": empty}


def to_toleration(t: plans.TolerationPlan) -> Manifest:
    raw = {
        "key": t.key,
        "operator": t.operator,
        "value": t.value,
        "effect": t.effect,
        "tolerationSeconds": t.seconds,
    }
    return {k: v for k, v in raw.items() if v is not None}


def build_pull_secret(plan: plans.RunPlan, credentials: auths.Credentials) -> Manifest:
    """The generated ``kubernetes.io/dockerconfigjson`` Secret the run's pod pulls with."""
    if plan.pull_secret_name is None:
        raise ValueError("the plan has no image_pull_secrets")
    metadata = _metadata(plan, plan.pull_secret_name, "pull-secret")
    metadata["annotations"][conventions.ANNOTATION_SOURCES] = ",".join(plan.pull_secret_sources)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/dockerconfigjson",
        "metadata": metadata,
        "data": {".dockerconfigjson": base64.b64encode(credentials.to_json_bytes()).decode()},
    }


def failure_note(reason: str, message: str) -> str:
    """The value of a ``killed.podline.dev/<container>`` annotation that keeps the kubelet's explanation."""
    return json.dumps({"reason": reason, "message": message}, separators=(",", ":"), sort_keys=True)


def parse_failure_note(value: str) -> tuple[str, str | None]:
    """(reason, message) of a ``killed.podline.dev/<container>`` annotation: a bare reason, or JSON."""
    if value.startswith("{"):
        try:
            data = json.loads(value)
            return str(data.get("reason", "Failed")), data.get("message")
        except ValueError:
            pass
    return value, None


def stand_in_patch(plan: plans.RunPlan, notes: Mapping[str, str], *, swap: Iterable[str]) -> Manifest:
    """Record why steps failed (``notes``: container → failure note); the containers in ``swap`` get the
    runner image, whose entrypoint then records the failure in the step's turn, so its dependents go on."""
    metadata: Manifest = {
        "annotations": {conventions.ANNOTATION_KILLED_PREFIX + name: note for name, note in notes.items()}
    }
    containers = [{"name": name, "image": plan.runner_image} for name in swap]
    return (
        {"metadata": metadata, "spec": {"containers": containers}} if containers else {"metadata": metadata}
    )


def stop_patch(reason: str) -> Manifest:
    """End the pod now, keeping it (and its logs): the kubelet enforces a deadline that has passed."""
    return {
        "metadata": {"annotations": {conventions.ANNOTATION_STOPPED: reason}},
        "spec": {"activeDeadlineSeconds": 1},
    }


def merge_patches(patches: Iterable[Manifest]) -> Manifest | None:
    """Combine strategic-merge patches of the pod into one request (containers merge by name)."""
    out: Manifest = {}
    containers: dict[str, Manifest] = {}
    for patch in patches:
        for key, value in patch.get("metadata", {}).items():
            if key == "annotations":
                out.setdefault("metadata", {}).setdefault("annotations", {}).update(value)
            else:
                out.setdefault("metadata", {})[key] = value
        for key, value in patch.get("spec", {}).items():
            if key == "containers":
                for c in value:
                    containers.setdefault(c["name"], {}).update(c)
            else:
                out.setdefault("spec", {})[key] = value
    if containers:
        out.setdefault("spec", {})["containers"] = list(containers.values())
    return out or None
