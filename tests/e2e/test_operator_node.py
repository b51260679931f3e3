"""The operator on the node tier: real kubelet, containerd, registries; steps run real shell commands.

Images are built locally and served by two registries on loopback: a public one and a password-protected
one (see tests/cluster/images.py). The operator runs as a process with the test placeholder image.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e import conftest, operating
from tests.e2e.operating import apply, pipeline, steps, wait_for_phase

pytestmark = pytest.mark.node


@pytest.fixture(scope="module")
def node_operator(node_cluster: Any) -> Iterator[operating.OperatorProcess]:
    conftest.install_crd(node_cluster)
    op = operating.OperatorProcess(
        node_cluster.kubeconfig, node_cluster.log_dir, name="operator-node",
        env={"PODLINE_PLACEHOLDER_IMAGE": node_cluster.registry.placeholder, "PODLINE_PULL_TIMEOUT": "20"},
    )
    op.start()
    yield op
    op.stop()


@pytest.fixture
def env(node_cluster: Any, node_namespace: str, node_operator: operating.OperatorProcess):
    yield node_cluster, node_namespace, node_operator, node_cluster.registry
    assert node_operator.alive(), node_operator.log()[-3000:]


def logs(cluster: Any, namespace: str, name: str) -> str:
    result = subprocess.run([sys.executable, "-m", "podline", "logs", name, "-n", namespace],
                            env={"KUBECONFIG": str(cluster.kubeconfig), "PATH": "/usr/bin:/bin"},
                            cwd=operating.ROOT, capture_output=True, text=True, timeout=120)
    return result.stdout + result.stderr


def test_commands_run_for_real_with_exit_codes_and_logs(env) -> None:
    cluster, ns, op, registry = env
    spec = {"steps": [
        {"name": "build", "image": registry.busybox, "commands": ["echo compiling", "echo out > bin.txt"]},
        {"name": "test", "image": registry.busybox, "commands": ["cat bin.txt", "echo 'quote\"s & $(pipes) | ok'", "exit 3"]},
        {"name": "after", "image": registry.busybox, "commands": ["echo never"]},
        {"name": "on-failure", "image": registry.busybox, "commands": ["echo cleaning up"],
         "when": {"status": ["failure"]}},
    ]}
    apply(cluster, ns, pipeline("real", spec))
    st = wait_for_phase(cluster, ns, "real", timeout=180, operator=op)
    by = steps(st)
    assert st["phase"] == "Failed"
    assert by["build"]["exitCode"] == 0 and by["test"]["exitCode"] == 3
    assert by["after"]["state"] == "skipped" and by["on-failure"]["state"] == "succeeded"
    out = logs(cluster, ns, "real")
    assert "+ echo compiling\ncompiling" in out
    assert "out\n" in out, "the workspace is shared: test reads what build wrote"
    assert "quote\"s & $(pipes) | ok" in out, "commands reach the shell verbatim"
    assert "cleaning up" in out and "never" not in out.replace("echo never", "")


def test_private_image_runs_with_image_pull_secrets(env) -> None:
    cluster, ns, op, registry = env
    cluster.kubectl("create", "secret", "generic", "login", "-n", ns,
                    f"--from-literal=.dockerconfigjson={registry.docker_config_json()}")
    spec = {"image_pull_secrets": ["login"],
            "steps": [{"name": "private", "image": registry.private_busybox, "pull": "always",
                       "commands": ["echo pulled with credentials"]}]}
    apply(cluster, ns, pipeline("private", spec))
    st = wait_for_phase(cluster, ns, "private", timeout=180, operator=op)
    assert st["phase"] == "Succeeded", st
    assert "pulled with credentials" in logs(cluster, ns, "private")
    assert registry.password not in json.dumps(st) and registry.password not in op.log()


def test_private_image_without_the_secret_fails_with_a_clear_reason(env) -> None:
    cluster, ns, op, registry = env
    spec = {"steps": [{"name": "private", "image": registry.private_busybox, "pull": "always",
                       "commands": ["echo never"]}]}
    apply(cluster, ns, pipeline("noauth", spec))
    st = wait_for_phase(cluster, ns, "noauth", timeout=180, operator=op)
    step = steps(st)["private"]
    assert st["phase"] == "Failed"
    assert step["reason"] in ("ErrImagePull", "ImagePullBackOff")
    assert "image_pull_secrets" in step["message"] and "pull" in step["message"]


def test_pull_never_fails_when_the_image_is_absent(env) -> None:
    cluster, ns, op, registry = env
    absent = registry.busybox.replace("busybox:1", "busybox:never-here")
    apply(cluster, ns, pipeline("never", {"steps": [{"name": "s", "image": absent, "pull": "never", "commands": ["true"]}]}))
    st = wait_for_phase(cluster, ns, "never", timeout=180, operator=op)
    assert st["phase"] == "Failed" and steps(st)["s"]["reason"] == "ErrImageNeverPull"


def test_pull_never_uses_the_node_image_without_asking_the_registry(env) -> None:
    cluster, ns, op, registry = env
    assert registry.busybox in cluster.node_images()
    since = registry.public.offset()
    apply(cluster, ns, pipeline("cached", {"steps": [{"name": "s", "image": registry.busybox, "pull": "never",
                                                      "commands": ["echo from cache"]}]}))
    st = wait_for_phase(cluster, ns, "cached", timeout=180, operator=op)
    assert st["phase"] == "Succeeded"
    assert registry.public.manifest_requests("podline/busybox", since) == []


@pytest.mark.parametrize(("pull", "asks_registry"), [("always", True), ("if-not-exists", False)])
def test_pull_always_asks_the_registry_and_if_not_exists_does_not(env, pull: str, asks_registry: bool) -> None:
    cluster, ns, op, registry = env
    assert registry.busybox in cluster.node_images()
    since = registry.public.offset()
    apply(cluster, ns, pipeline("pulls", {"steps": [{"name": "s", "image": registry.busybox, "pull": pull,
                                                     "commands": ["true"]}]}))
    st = wait_for_phase(cluster, ns, "pulls", timeout=180, operator=op)
    assert st["phase"] == "Succeeded"
    assert bool(registry.public.manifest_requests("podline/busybox", since)) is asks_registry


def test_service_is_reachable_from_steps_and_failure_ignore(env) -> None:
    cluster, ns, op, registry = env
    spec = {
        "services": [{"name": "web", "image": registry.busybox, "commands": [
            "mkdir -p /www", "echo pong > /www/index.html", "exec httpd -f -p 8080 -h /www"]}],
        "steps": [
            {"name": "flaky", "image": registry.busybox, "commands": ["exit 1"], "failure": "ignore"},
            {"name": "call", "image": registry.busybox, "commands": [
                "for i in $(seq 1 50); do wget -qO- http://127.0.0.1:8080/index.html && exit 0; sleep 0.2; done; exit 1"]},
        ],
    }
    apply(cluster, ns, pipeline("svc", spec))
    st = wait_for_phase(cluster, ns, "svc", timeout=180, operator=op)
    assert st["phase"] == "Succeeded", st
    assert steps(st)["flaky"]["exitCode"] == 1
    assert "pong" in logs(cluster, ns, "svc")
