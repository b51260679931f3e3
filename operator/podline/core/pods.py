"""Kubernetes manifests of a run: the pod, the generated pull Secret, and the pod patches that drive it.

A set of small ``to_x`` mappers from ``plans.RunPlan`` to plain dicts, with no I/O. Services start with
their own image; steps start with the placeholder image and are started later by ``start_patch``, which
swaps in the step's image (the one container field mutable after creation) and records the swap in a pod
annotation in the same request, so the pod itself says which steps were started.

Site policy can be added without flags: ``build_pod(plan, transformers=[...])`` runs each transformer
(pod dict in, pod dict out) last.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from podline.core import auths, compiling, conventions, plans

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


def _metadata(plan: plans.RunPlan, name: str, component: str, extra_labels: Iterable[tuple[str, str]] = ()) -> Manifest:
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


def to_container(plan: plans.RunPlan, c: plans.ContainerPlan, *, started: bool = False) -> Manifest:
    container: Manifest = {
        "name": c.name,
        "image": c.image if c.kind is plans.Kind.SERVICE or started else plan.placeholder_image,
        "imagePullPolicy": str(c.pull_policy),
    }
    if c.command is not None:
        container["command"] = list(c.command)
    if c.args is not None:
        container["args"] = list(c.args)
    container["env"] = to_env(c.env)
    container["workingDir"] = c.working_dir or plan.workspace
    container["volumeMounts"] = [{"name": compiling.WORKSPACE_VOLUME, "mountPath": plan.workspace}] + [
        {"name": m.volume, "mountPath": m.path} for m in c.mounts
    ]
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
    return container


def build_pod(
    plan: plans.RunPlan,
    *,
    started: Mapping[str, str] | None = None,
    at: str = "",
    transformers: Sequence[Transformer] = (),
) -> Manifest:
    """The run's pod. Steps in ``started`` (those ready at once) get their image at creation, recorded
    like any start, which saves the first step a round trip."""
    started = started or {}
    spec: Manifest = {
        "restartPolicy": "Never",
        "activeDeadlineSeconds": plan.timeout_seconds,
        "terminationGracePeriodSeconds": 10,
        "enableServiceLinks": False,
        "automountServiceAccountToken": plan.automount_token,
        "containers": [to_container(plan, c, started=c.name in started) for c in plan.containers],
        "volumes": [dict(v) for v in plan.volumes],
    }
    if plan.service_account:
        spec["serviceAccountName"] = plan.service_account
    if plan.pull_secret_name:
        spec["imagePullSecrets"] = [{"name": plan.pull_secret_name}]
    if plan.node_selector:
        spec["nodeSelector"] = dict(plan.node_selector)
    if plan.tolerations:
        spec["tolerations"] = [dict(t) for t in plan.tolerations]
    metadata = _metadata(plan, plan.pod_name, "run-pod", plan.pod_labels)
    metadata["annotations"].update(dict(plan.pod_annotations))
    metadata["annotations"][conventions.ANNOTATION_GENERATION] = str(plan.generation)
    for name, placeholder in started.items():
        metadata["annotations"][conventions.ANNOTATION_STARTED_PREFIX + name] = started_annotation(at, placeholder)
    pod: Manifest = {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}
    for transform in transformers:
        pod = transform(pod)
    return pod


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


def started_annotation(at: str, placeholder_id: str) -> str:
    return json.dumps({"at": at, "from": placeholder_id}, separators=(",", ":"), sort_keys=True)


def parse_started(value: str | None) -> tuple[str, str] | None:
    """(when, placeholder container id) recorded when a step was started, or None."""
    if not value:
        return None
    try:
        data = json.loads(value)
        return str(data.get("at", "")), str(data.get("from", ""))
    except (ValueError, AttributeError):
        return "", ""


def start_patch(
    plan: plans.RunPlan, starts: Mapping[str, str], *, at: str, resource_version: str | None
) -> Manifest:
    """One strategic-merge patch that starts several steps: ``starts`` maps container → placeholder id.

    With ``resource_version`` the patch is conditional: if anyone changed the pod since it was read, the
    apiserver answers 409 and nothing is started twice.
    """
    metadata: Manifest = {
        "annotations": {
            conventions.ANNOTATION_STARTED_PREFIX + name: started_annotation(at, placeholder)
            for name, placeholder in starts.items()
        }
    }
    if resource_version:
        metadata["resourceVersion"] = resource_version
    containers = [{"name": name, "image": plan.container(name).image} for name in starts]
    return {"metadata": metadata, "spec": {"containers": containers}}


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


def kill_patch(
    plan: plans.RunPlan, kills: Mapping[str, str], *, swap: Iterable[str] | None = None, resource_version: str | None
) -> Manifest:
    """Record why steps failed; those in ``swap`` (default: all) are stopped by swapping the placeholder back."""
    metadata: Manifest = {
        "annotations": {conventions.ANNOTATION_KILLED_PREFIX + name: reason for name, reason in kills.items()}
    }
    if resource_version:
        metadata["resourceVersion"] = resource_version
    swapped = set(kills if swap is None else swap)
    containers = [{"name": name, "image": plan.placeholder_image} for name in kills if name in swapped]
    return {"metadata": metadata, "spec": {"containers": containers}} if containers else {"metadata": metadata}


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
