"""Builds on the node tier (issue 17's "Done when"): a real kubelet, containerd and registries run the
Pipelines `podline convert` makes of a .drone.yml, applied with kubectl — all at once, or one by one in
reverse order.

- test → publish, publish's password from a ``kind: secret`` document (key ``password`` of the Secret
  ``docker``): in order, with the right value, which never reaches the operator's log or the status;
- test failing: publish never gets a pod, and a ``trigger.status: [failure]`` notify pipeline runs;
- a three-level fan-in (amd64 and arm64 tests → publish → announce), applied in reverse order.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e import conftest, operating
from tests.e2e.operating import status, wait_for, wait_for_phase

pytestmark = pytest.mark.node
ENDED = ("Succeeded", "Failed", "Error", "Cancelled", "Skipped")
PASSWORD = "CANARY-build-s3cr3t-41d"  # a test value: must reach the step, and nothing else


@pytest.fixture(scope="module")
def builds_operator(node_cluster: Any) -> Iterator[operating.OperatorProcess]:
    conftest.install_crd(node_cluster)
    op = operating.OperatorProcess(
        node_cluster.kubeconfig,
        node_cluster.log_dir,
        name="operator-builds",
        env={"PODLINE_RUNNER_IMAGE": node_cluster.registry.runner, "PODLINE_PULL_TIMEOUT": "600"},
    )
    op.start()
    yield op
    op.stop()


@pytest.fixture
def env(node_cluster: Any, node_namespace: str, builds_operator: operating.OperatorProcess):
    yield node_cluster, node_namespace, builds_operator, node_cluster.registry
    assert builds_operator.alive(), builds_operator.log()[-3000:]


def podline(cluster: Any, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "podline", *args],
        env={"KUBECONFIG": str(cluster.kubeconfig), "PATH": "/usr/bin:/bin"},
        cwd=operating.ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def convert(cluster: Any, tmp_path: Any, drone_yml: str, build: str) -> list[str]:
    """`podline convert` of the file: the Pipelines' YAML documents, one string each."""
    path = tmp_path / ".drone.yml"
    path.write_text(drone_yml)
    result = podline(cluster, "convert", "--build-name", build, str(path))
    assert result.returncode == 0, result.stderr
    return ["---\n" + doc for doc in result.stdout.split("---\n") if doc.strip()]


def pipe(name: str, image: str, *commands: str, deps: tuple[str, ...] = (), **extra: str) -> str:
    lines = [f"kind: pipeline\nname: {name}\nclone: {{disable: true}}"]
    if deps:
        lines.append(f"depends_on: [{', '.join(deps)}]")
    lines += [f"{k}: {v}" for k, v in extra.items()]
    quoted = ", ".join(f"'{c}'" for c in commands)
    lines.append(f"steps:\n- name: run\n  image: {image}\n  commands: [{quoted}]")
    return "\n".join(lines) + "\n"


def pods_of(cluster: Any, ns: str, pipeline: str) -> list[dict[str, Any]]:
    out = cluster.kubectl("get", "pods", "-n", ns, "-l", f"podline.dev/pipeline={pipeline}", "-o", "json")
    return list(json.loads(out.stdout)["items"])


def test_test_then_publish_with_a_kind_secret_password(env, tmp_path) -> None:
    cluster, ns, op, registry = env
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "docker"},
              "stringData": {"password": PASSWORD}}  # fmt: skip
    operating.apply(cluster, ns, secret)
    # $${…}: Drone substitutes ${…} in the file before any shell sees it, so the shell's own needs the escape
    drone = (
        pipe("test", registry.busybox, "sleep 1", "echo tested")
        + "---\n"
        + pipe("publish", registry.busybox, 'test -n "$PASSWORD"', "echo password-length=$${#PASSWORD}",
               "echo status=$DRONE_BUILD_STATUS", deps=("test",),
               environment="{PASSWORD: {from_secret: docker_password}}")
        + "---\nkind: secret\nname: docker_password\nget: {path: docker, name: password}\n"
    )  # fmt: skip
    docs = convert(cluster, tmp_path, drone, "release")
    assert PASSWORD not in "".join(docs)  # the file names the Secret; the value stays in it
    cluster.kubectl("apply", "-n", ns, "-f", "-", input="".join(docs))
    test = wait_for_phase(cluster, ns, "test", operator=op, timeout=180)
    publish = wait_for_phase(cluster, ns, "publish", operator=op, timeout=180)
    assert (test["phase"], publish["phase"]) == ("Succeeded", "Succeeded"), publish
    [pod] = pods_of(cluster, ns, "publish")
    assert pod["metadata"]["creationTimestamp"] >= test["completionTime"]
    [step] = [c for c in pod["spec"]["containers"] if c["name"] == "step-run"]
    [password] = [e for e in step["env"] if e["name"] == "PASSWORD"]
    assert password["valueFrom"]["secretKeyRef"] == {"name": "docker", "key": "password"}
    out = podline(cluster, "logs", "publish", "-n", ns).stdout
    assert f"password-length={len(PASSWORD)}" in out and "status=success" in out
    got = podline(cluster, "get", "--build", "release", "-n", ns).stdout.splitlines()
    assert got[0].startswith("build release  Succeeded  pipelines=2"), got
    heads = [line for line in got if line[:1].isdigit()]
    assert heads[0].startswith("1. test  Succeeded") and heads[1].startswith(
        "2. (after test) publish  Succeeded"
    )
    assert PASSWORD not in op.log() and PASSWORD not in str(status(cluster, ns, "publish"))


def test_a_failing_test_gives_publish_no_pod_and_runs_notify(env, tmp_path) -> None:
    cluster, ns, op, registry = env
    drone = "---\n".join(
        [
            pipe("test", registry.busybox, "exit 1"),
            pipe("publish", registry.busybox, "echo never", deps=("test",)),
            pipe("notify", registry.busybox, "echo failed=$DRONE_FAILED_STAGES", deps=("publish",),
                 trigger="{status: [failure]}"),
        ]
    )  # fmt: skip
    cluster.kubectl("apply", "-n", ns, "-f", "-", input="".join(convert(cluster, tmp_path, drone, "broken")))
    for name in ("test", "publish", "notify"):
        wait_for_phase(cluster, ns, name, phases=ENDED, operator=op, timeout=180)
    assert status(cluster, ns, "test")["phase"] == "Failed"
    publish = status(cluster, ns, "publish")
    assert (publish["phase"], publish["reason"]) == ("Skipped", "DependencyFailed"), publish
    assert not pods_of(cluster, ns, "publish")
    assert status(cluster, ns, "notify")["phase"] == "Succeeded"
    assert "failed=test" in podline(cluster, "logs", "notify", "-n", ns).stdout
    got = podline(cluster, "get", "--build", "broken", "-n", ns)
    assert got.stdout.startswith("build broken  Failed  pipelines=3"), got.stdout


def test_a_three_level_fan_in_applied_in_reverse_order(env, tmp_path) -> None:
    cluster, ns, op, registry = env
    drone = "---\n".join(
        [
            pipe("test-amd64", registry.busybox, "sleep 1", "echo amd64"),
            pipe("test-arm64", registry.busybox, "echo arm64"),
            pipe("publish", registry.busybox, "echo publish", deps=("test-amd64", "test-arm64")),
            pipe("announce", registry.busybox, "echo announce", deps=("publish",)),
        ]
    )
    docs = convert(cluster, tmp_path, drone, "fan-in")
    for doc in reversed(docs):  # as a GitOps sync might: the dependents first, each alone for a moment
        cluster.kubectl("apply", "-n", ns, "-f", "-", input=doc)
    waiting = wait_for(
        lambda: (s := status(cluster, ns, "announce")).get("reason") == "WaitingForDependencies" and s,
        what="announce to wait",
    )
    assert waiting["waitingFor"] == ["publish"]
    ended = {name: wait_for_phase(cluster, ns, name, operator=op, timeout=180) for name in
             ("test-amd64", "test-arm64", "publish", "announce")}  # fmt: skip
    assert {s["phase"] for s in ended.values()} == {"Succeeded"}, ended
    last_test = max(ended["test-amd64"]["completionTime"], ended["test-arm64"]["completionTime"])
    [publish_pod] = pods_of(cluster, ns, "publish")
    [announce_pod] = pods_of(cluster, ns, "announce")
    assert publish_pod["metadata"]["creationTimestamp"] >= last_test
    assert announce_pod["metadata"]["creationTimestamp"] >= ended["publish"]["completionTime"]
