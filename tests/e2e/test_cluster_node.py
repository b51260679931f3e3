"""The node tier runs real containers: real shells, exit codes, logs, authenticated pulls, and the image
swap of a container stuck pulling that podline's stand-in relies on."""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.cluster import components, images, nodetier

pytestmark = pytest.mark.node


def run_pod(cluster: nodetier.NodeCluster, namespace: str, name: str, image: str, script: str,
            **spec: Any) -> None:  # fmt: skip
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "terminationGracePeriodSeconds": 5,
            "containers": [{"name": "main", "image": image, "command": ["/bin/sh", "-c", script]}],
            **spec,
        },
    }
    cluster.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(pod))


def container_status(cluster: nodetier.NodeCluster, namespace: str, name: str) -> dict[str, Any]:
    pod = json.loads(cluster.kubectl("get", "pod", name, "-n", namespace, "-o", "json").stdout)
    statuses = pod["status"].get("containerStatuses") or [{}]
    return {"phase": pod["status"].get("phase"), **statuses[0]}


def wait_for_state(cluster: nodetier.NodeCluster, namespace: str, name: str, predicate: Any, what: str,
                   timeout: float = 90) -> dict[str, Any]:  # fmt: skip
    seen: dict[str, Any] = {}

    def check() -> bool:
        seen.clear()
        seen.update(container_status(cluster, namespace, name))
        return bool(predicate(seen))

    assert components.poll(check, timeout=timeout), f"pod {name}: not {what} after {timeout:.0f}s: {seen}"
    return seen


def terminated(status: dict[str, Any]) -> dict[str, Any] | None:
    return (status.get("state") or {}).get("terminated")


def finished(status: dict[str, Any]) -> bool:
    """The container terminated and the pod's phase says so (the kubelet may write the phase a moment later)."""
    return terminated(status) is not None and status.get("phase") in ("Succeeded", "Failed")


def waiting_reason(status: dict[str, Any]) -> str | None:
    return ((status.get("state") or {}).get("waiting") or {}).get("reason")


def test_busybox_runs_real_commands_with_exit_code_and_logs(node_cluster: nodetier.NodeCluster,
                                                             node_namespace: str) -> None:  # fmt: skip
    script = 'echo "answer $((6 * 7))"; echo to-stderr >&2; test -d /proc/self && exit 3'
    run_pod(node_cluster, node_namespace, "shell", images.BUSYBOX, script)
    status = wait_for_state(node_cluster, node_namespace, "shell", finished, "finished")
    assert terminated(status)["exitCode"] == 3  # type: ignore[index]
    assert status["phase"] == "Failed"
    logs = node_cluster.kubectl("logs", "shell", "-n", node_namespace).stdout
    assert sorted(logs.splitlines()) == [
        "answer 42",
        "to-stderr",
    ]  # stdout and stderr may interleave either way

    run_pod(
        node_cluster,
        node_namespace,
        "ok",
        images.BUSYBOX,
        "wget --help >/dev/null 2>&1; cat /etc/passwd | head -1",
    )
    status = wait_for_state(node_cluster, node_namespace, "ok", finished, "finished")
    assert terminated(status)["exitCode"] == 0 and status["phase"] == "Succeeded"  # type: ignore[index]
    assert (
        node_cluster.kubectl("logs", "ok", "-n", node_namespace).stdout == "root:x:0:0:root:/root:/bin/sh\n"
    )


def test_private_image_needs_an_image_pull_secret(
    node_cluster: nodetier.NodeCluster, node_namespace: str
) -> None:
    registry = node_cluster.registry
    node_cluster.remove_node_image(registry.private_busybox)  # so that nothing can skip the pull
    since = registry.private.offset()
    run_pod(node_cluster, node_namespace, "anonymous", registry.private_busybox, "echo never",
            containers=[{"name": "main", "image": registry.private_busybox, "imagePullPolicy": "Always"}])  # fmt: skip
    status = wait_for_state(node_cluster, node_namespace, "anonymous",
                            lambda s: waiting_reason(s) in ("ErrImagePull", "ImagePullBackOff"), "failing to pull")  # fmt: skip
    assert status["phase"] == "Pending"
    manifests = registry.private.manifest_requests("private/busybox", since)
    assert manifests and all(r.status == 401 for r in manifests)

    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "registry-auth"},
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": base64.b64encode(registry.docker_config_json().encode()).decode()},
    }
    node_cluster.kubectl("create", "-n", node_namespace, "-f", "-", input=json.dumps(secret))
    run_pod(node_cluster, node_namespace, "authenticated", registry.private_busybox, "echo private ok",
            imagePullSecrets=[{"name": "registry-auth"}],
            containers=[{"name": "main", "image": registry.private_busybox, "imagePullPolicy": "Always",
                         "command": ["/bin/sh", "-c", "echo private ok"]}])  # fmt: skip
    status = wait_for_state(node_cluster, node_namespace, "authenticated", finished, "finished")
    assert terminated(status)["exitCode"] == 0  # type: ignore[index]
    assert node_cluster.kubectl("logs", "authenticated", "-n", node_namespace).stdout == "private ok\n"
    assert any(r.status == 200 for r in registry.private.manifest_requests("private/busybox", since))


def test_private_registry_refuses_unauthenticated_reads(node_cluster: nodetier.NodeCluster) -> None:
    registry = node_cluster.registry
    url = f"http://{registry.private.address}/v2/private/busybox/manifests/1"
    accept = "application/vnd.oci.image.manifest.v1+json"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(urllib.request.Request(url, headers={"Accept": accept}), timeout=10)
    assert refused.value.code == 401
    credentials = base64.b64encode(f"{registry.username}:{registry.password}".encode()).decode()
    request = urllib.request.Request(url, headers={"Accept": accept, "Authorization": f"Basic {credentials}"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 200
        assert json.loads(answer.read())["schemaVersion"] == 2
    public = f"http://{registry.public.address}/v2/podline/busybox/manifests/1"
    with urllib.request.urlopen(
        urllib.request.Request(public, headers={"Accept": accept}), timeout=10
    ) as answer:
        assert answer.status == 200


def test_pull_policy_never_uses_only_what_the_node_has(node_cluster: nodetier.NodeCluster,
                                                       node_namespace: str) -> None:  # fmt: skip
    registry = node_cluster.registry
    node_cluster.remove_node_image(images.BUSYBOX)
    never = [{"name": "main", "image": images.BUSYBOX, "imagePullPolicy": "Never", "command": ["true"]}]
    run_pod(node_cluster, node_namespace, "absent", images.BUSYBOX, "true", containers=never)
    status = wait_for_state(node_cluster, node_namespace, "absent",
                            lambda s: waiting_reason(s) == "ErrImageNeverPull", "refusing to pull")  # fmt: skip
    assert status["phase"] == "Pending"

    run_pod(node_cluster, node_namespace, "puller", images.BUSYBOX, "true")  # IfNotPresent: pulls it
    wait_for_state(node_cluster, node_namespace, "puller", finished, "finished")
    assert images.BUSYBOX in node_cluster.node_images()
    since = registry.public.offset()
    run_pod(node_cluster, node_namespace, "present", images.BUSYBOX, "true", containers=never)
    status = wait_for_state(node_cluster, node_namespace, "present", finished, "finished")
    assert terminated(status)["exitCode"] == 0  # type: ignore[index]
    assert registry.public.manifest_requests("podline/busybox", since) == []


def test_a_container_stuck_pulling_starts_with_the_image_it_is_patched_to(node_cluster: nodetier.NodeCluster,
                                                                          node_namespace: str) -> None:  # fmt: skip
    """podline's stand-in: a step whose image cannot be pulled gets the runner image (the one container field
    Kubernetes lets change); the kubelet then creates the container from the new image and runs it."""
    missing = images.BUSYBOX.replace("podline/busybox:1", "podline/not-there:1")
    run_pod(node_cluster, node_namespace, "stuck", missing, "echo stood in; exit 3")
    wait_for_state(node_cluster, node_namespace, "stuck",
                   lambda s: ((s.get("state") or {}).get("waiting") or {}).get("reason") in (
                       "ErrImagePull", "ImagePullBackOff"), "waiting for its image")  # fmt: skip
    patch = {"spec": {"containers": [{"name": "main", "image": images.BUSYBOX}]}}
    node_cluster.kubectl("patch", "pod", "stuck", "-n", node_namespace, "-p", json.dumps(patch))
    status = wait_for_state(node_cluster, node_namespace, "stuck", finished, "finished")
    assert terminated(status)["exitCode"] == 3  # type: ignore[index]
    # containerd names an image by the first of its references it knows: the node may also have pulled the
    # same layout as Docker Hub's busybox (images.DOCKER_HUB) earlier in the session.
    busybox_names = {images.BUSYBOX, *(ref for ref, tag in images.DOCKER_HUB.items() if tag == "busybox")}
    assert status["image"] in busybox_names and status["restartCount"] == 0
    assert node_cluster.kubectl("logs", "stuck", "-n", node_namespace).stdout == "stood in\n"


def test_the_sleeper_program_ignores_its_arguments_and_exits_0_on_sigterm() -> None:
    """The pod sandbox (pause) image's program, and the placeholder drone-runner-kube starts steps on."""
    program = images.sleeper_binary()
    assert images.is_static(program)
    for sig in (signal.SIGTERM, signal.SIGINT):
        process = subprocess.Popen([str(program), "-c", "exit 3"])
        with pytest.raises(subprocess.TimeoutExpired):
            process.wait(timeout=1)  # still sleeping: the `exit 3` it was given means nothing to it
        process.send_signal(sig)
        assert process.wait(timeout=10) == 0
