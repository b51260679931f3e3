"""The entrypoint on a real kubelet: a pod shaped as docs/in-pod.md says, made by hand (not by the
operator), whose steps sequence themselves through the entrypoint, and whose outcome is read the way the
operator reads it — termination messages in the pod status, output from ``kubectl logs``.

The prepare container runs the runner image (``images.RUNNER``) with the postStart hook that installs the
binary; the steps run busybox, wrapped by ``/podline/bin/entrypoint``. step-b fails, so step-c (on success)
is skipped and step-d (on failure, as user 65534) runs; step-e runs on the runner image, so it stands in for an image that
could not be pulled and records ImagePullFailed in its turn.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from podline.core import stepping

from tests.cluster import components, images, nodetier

pytestmark = pytest.mark.node

TOOLS = {"name": "podline-tools", "mountPath": "/podline"}


def step(name: str, image: str, script: str, *flags: str, user: int = 0) -> dict[str, Any]:
    return {
        "name": name,
        "image": image,
        "command": ["/podline/bin/entrypoint"],
        "args": ["run", f"--name={name}", *flags, "--", "/bin/sh", "-c", script],
        "volumeMounts": [TOOLS],
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "securityContext": {"allowPrivilegeEscalation": False, "runAsUser": user},
    }


def test_steps_hand_off_through_the_entrypoint(
    node_cluster: nodetier.NodeCluster, node_namespace: str
) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "in-pod"},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "terminationGracePeriodSeconds": 5,
            "volumes": [{"name": "podline-tools", "emptyDir": {}}],
            "containers": [
                {
                    "name": "podline-prepare",
                    "image": images.RUNNER,
                    "command": ["/podline-entrypoint", "prepare", "/podline"],
                    "lifecycle": {
                        "postStart": {"exec": {"command": ["/podline-entrypoint", "install", "/podline"]}}
                    },
                    "volumeMounts": [TOOLS],
                    "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
                },
                step("step-a", images.BUSYBOX, "echo one", "--on=success"),
                step(
                    "step-b",
                    images.BUSYBOX,
                    "echo oops >&2; echo again >&2; exit 3",
                    "--after=step-a",
                    "--on=success",
                ),
                step("step-c", images.BUSYBOX, "echo never", "--after=step-b", "--on=success"),
                step("step-d", images.BUSYBOX, "id -u", "--after=step-c", "--on=failure", user=65534),
                step(
                    "step-e",
                    images.RUNNER,
                    "echo never",
                    "--after=step-d",
                    "--on=failure",
                    "--ignore-failure",
                ),
            ],
        },
    }
    node_cluster.kubectl("create", "-n", node_namespace, "-f", "-", input=json.dumps(pod))
    seen: dict[str, Any] = {}

    def done() -> bool:
        seen.clear()
        seen.update(
            json.loads(
                node_cluster.kubectl("get", "pod", "in-pod", "-n", node_namespace, "-o", "json").stdout
            )
        )
        return seen.get("status", {}).get("phase") in ("Succeeded", "Failed")

    assert components.poll(done, timeout=120, interval=0.5), f"the pod did not finish: {seen.get('status')}"
    assert seen["status"]["phase"] == "Failed"  # step-b exited 3
    statuses = {s["name"]: s for s in seen["status"]["containerStatuses"]}
    ended = {name: s["state"]["terminated"] for name, s in statuses.items()}
    assert ended["podline-prepare"]["exitCode"] == 0

    # The termination messages, in the compact form (docs/in-pod.md), read as the operator reads them.
    results = {}
    for name in ("step-a", "step-b", "step-c", "step-d", "step-e"):
        text = ended[name]["message"]
        assert set(json.loads(text)) <= {"s", "x", "a", "d", "f", "r", "m", "o"}, text
        result = stepping.parse_message(name, text)
        assert result is not None and result.to_message() == text  # byte for byte as the core writes it
        results[name] = result

    def outcome(name: str) -> tuple[Any, ...]:
        r = results[name]
        return str(r.state), r.exit_code, r.reason, ended[name]["exitCode"]

    assert outcome("step-a") == ("succeeded", 0, None, 0)
    assert outcome("step-b") == ("failed", 3, None, 3)
    assert outcome("step-c") == ("skipped", None, "Skipped", 0)
    assert outcome("step-d") == ("succeeded", 0, None, 0)
    assert outcome("step-e") == ("failed", 1, "ImagePullFailed", 1)
    assert results["step-c"].started_at is None and results["step-b"].message
    a, b, d = results["step-a"], results["step-b"], results["step-d"]
    assert a.finished_at is not None and b.started_at is not None and b.finished_at is not None
    assert d.started_at is not None
    assert a.finished_at <= b.started_at and b.finished_at <= d.started_at

    def logs(container: str) -> str:
        return node_cluster.kubectl("logs", "in-pod", "-n", node_namespace, "-c", container).stdout

    assert logs("step-a") == "one\n"
    # stderr, unchanged; the entrypoint adds nothing. (Each step writes one stream only: containerd reads
    # stdout and stderr through separate pipes, so their order relative to each other is not kept.)
    assert logs("step-b") == "oops\nagain\n"
    assert logs("step-c") == ""
    assert logs("step-d") == "65534\n"  # a step running as another user records its result too
    assert logs("step-e") == ""
    assert logs("podline-prepare") == ""
