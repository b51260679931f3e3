"""The operator on the node tier: real kubelet, containerd, registries; steps run real shell commands.

Images are built locally and served by two registries on loopback: a public one and a password-protected
one (see tests/cluster/images.py). The operator runs as a process; its runner image (the entrypoint binary)
is built here from operator/entrypoint. Its pull timeout is long (600 s): a test that ends in time shows that
a registry's "not found" or "unauthorized" failed the step at once, not after the timeout.
"""

from __future__ import annotations

import datetime
import itertools
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
        node_cluster.kubeconfig,
        node_cluster.log_dir,
        name="operator-node",
        env={"PODLINE_RUNNER_IMAGE": node_cluster.registry.runner, "PODLINE_PULL_TIMEOUT": "600"},
    )
    op.start()
    yield op
    op.stop()


@pytest.fixture
def env(node_cluster: Any, node_namespace: str, node_operator: operating.OperatorProcess):
    yield node_cluster, node_namespace, node_operator, node_cluster.registry
    assert node_operator.alive(), node_operator.log()[-3000:]


def logs(cluster: Any, namespace: str, name: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "podline", "logs", name, "-n", namespace],
        env={"KUBECONFIG": str(cluster.kubeconfig), "PATH": "/usr/bin:/bin"},
        cwd=operating.ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return result.stdout + result.stderr


def test_commands_run_for_real_with_exit_codes_and_logs(env) -> None:
    cluster, ns, op, registry = env
    spec = {
        "steps": [
            {
                "name": "build",
                "image": registry.busybox,
                "commands": ["echo compiling", "echo out > bin.txt"],
            },
            {
                "name": "test",
                "image": registry.busybox,
                "commands": ["cat bin.txt", "echo 'quote\"s & $(pipes) | ok'", "exit 3"],
            },
            {"name": "after", "image": registry.busybox, "commands": ["echo never"]},
            {
                "name": "on-failure",
                "image": registry.busybox,
                "commands": ["echo cleaning up"],
                "when": {"status": ["failure"]},
            },
        ]
    }
    apply(cluster, ns, pipeline("real", spec))
    st = wait_for_phase(cluster, ns, "real", timeout=180, operator=op)
    by = steps(st)
    assert st["phase"] == "Failed"
    assert by["build"]["exitCode"] == 0 and by["test"]["exitCode"] == 3
    assert by["after"]["state"] == "skipped" and by["on-failure"]["state"] == "succeeded"
    out = logs(cluster, ns, "real")
    assert "+ echo compiling\ncompiling" in out
    assert "out\n" in out, "the workspace is shared: test reads what build wrote"
    assert 'quote"s & $(pipes) | ok' in out, "commands reach the shell verbatim"
    assert "cleaning up" in out and "never" not in out.replace("echo never", "")


def test_private_image_runs_with_image_pull_secrets(env) -> None:
    cluster, ns, op, registry = env
    cluster.kubectl(
        "create",
        "secret",
        "generic",
        "login",
        "-n",
        ns,
        f"--from-literal=.dockerconfigjson={registry.docker_config_json()}",
    )
    spec = {
        "image_pull_secrets": ["login"],
        "steps": [
            {
                "name": "private",
                "image": registry.private_busybox,
                "pull": "always",
                "commands": ["echo pulled with credentials"],
            }
        ],
    }
    apply(cluster, ns, pipeline("private", spec))
    st = wait_for_phase(cluster, ns, "private", timeout=180, operator=op)
    # Late in a full node-tier run the kubelet once pulled before its watch of the pull secret had synced
    # (it waits 1 s), without credentials, and got 401; the operator now waits for the kubelet's next
    # attempt (core/observing.py refused_for_credentials) instead of failing the step at once.
    assert st["phase"] == "Succeeded", (st, logs(cluster, ns, "private"))
    assert "pulled with credentials" in logs(cluster, ns, "private")
    assert registry.password not in json.dumps(st) and registry.password not in op.log()


def test_private_image_without_the_secret_fails_with_a_clear_reason(env) -> None:
    cluster, ns, op, registry = env
    spec = {
        "steps": [
            {
                "name": "private",
                "image": registry.private_busybox,
                "pull": "always",
                "commands": ["echo never"],
            }
        ]
    }
    apply(cluster, ns, pipeline("noauth", spec))
    st = wait_for_phase(cluster, ns, "noauth", timeout=180, operator=op)
    step = steps(st)["private"]
    assert st["phase"] == "Failed"
    assert step["reason"] in ("ErrImagePull", "ImagePullBackOff")
    assert "image_pull_secrets" in step["message"] and "pull" in step["message"]


def test_pull_never_fails_when_the_image_is_absent(env) -> None:
    cluster, ns, op, registry = env
    absent = registry.busybox.replace("busybox:1", "busybox:never-here")
    apply(
        cluster,
        ns,
        pipeline("never", {"steps": [{"name": "s", "image": absent, "pull": "never", "commands": ["true"]}]}),
    )
    st = wait_for_phase(cluster, ns, "never", timeout=180, operator=op)
    assert st["phase"] == "Failed" and steps(st)["s"]["reason"] == "ErrImageNeverPull"


def test_pull_never_uses_the_node_image_without_asking_the_registry(env) -> None:
    cluster, ns, op, registry = env
    assert registry.busybox in cluster.node_images()
    since = registry.public.offset()
    apply(
        cluster,
        ns,
        pipeline(
            "cached",
            {
                "steps": [
                    {"name": "s", "image": registry.busybox, "pull": "never", "commands": ["echo from cache"]}
                ]
            },
        ),
    )
    st = wait_for_phase(cluster, ns, "cached", timeout=180, operator=op)
    assert st["phase"] == "Succeeded"
    assert registry.public.manifest_requests("podline/busybox", since) == []


@pytest.mark.parametrize(("pull", "asks_registry"), [("always", True), ("if-not-exists", False)])
def test_pull_always_asks_the_registry_and_if_not_exists_does_not(
    env, pull: str, asks_registry: bool
) -> None:
    cluster, ns, op, registry = env
    assert registry.busybox in cluster.node_images()
    since = registry.public.offset()
    apply(
        cluster,
        ns,
        pipeline(
            "pulls", {"steps": [{"name": "s", "image": registry.busybox, "pull": pull, "commands": ["true"]}]}
        ),
    )
    st = wait_for_phase(cluster, ns, "pulls", timeout=180, operator=op)
    assert st["phase"] == "Succeeded"
    assert bool(registry.public.manifest_requests("podline/busybox", since)) is asks_registry


def test_service_is_reachable_from_steps_and_failure_ignore(env) -> None:
    cluster, ns, op, registry = env
    spec = {
        "services": [
            {
                "name": "web",
                "image": registry.busybox,
                "commands": ["mkdir -p /www", "echo pong > /www/index.html", "exec httpd -f -p 8080 -h /www"],
            }
        ],
        "steps": [
            {"name": "flaky", "image": registry.busybox, "commands": ["exit 1"], "failure": "ignore"},
            {
                "name": "call",
                "image": registry.busybox,
                "commands": [
                    "for i in $(seq 1 50); do wget -qO- http://127.0.0.1:8080/index.html && exit 0; sleep 0.2; done; exit 1"
                ],
            },
        ],
    }
    apply(cluster, ns, pipeline("svc", spec))
    st = wait_for_phase(cluster, ns, "svc", timeout=180, operator=op)
    assert st["phase"] == "Succeeded", st
    assert steps(st)["flaky"]["exitCode"] == 1
    assert "pong" in logs(cluster, ns, "svc")


def _ms(timestamp: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(timestamp)


def test_steps_hand_off_inside_the_pod_in_order_without_the_operator_touching_it(env) -> None:
    cluster, ns, op, registry = env
    spec = {
        "steps": [
            {"name": f"s{i}", "image": registry.busybox, "commands": [f"echo step {i}"]} for i in range(6)
        ]
    }
    apply(cluster, ns, pipeline("chain", spec))
    st = wait_for_phase(cluster, ns, "chain", timeout=180, operator=op)
    assert st["phase"] == "Succeeded", st
    ordered = [steps(st)[f"s{i}"] for i in range(6)]
    for before, after in itertools.pairwise(ordered):
        assert _ms(after["startedAt"]) >= _ms(before["finishedAt"]), (before, after)
    pod = operating.get(cluster, ns, "pod", st["podName"])
    assert pod["metadata"].get("generation", 1) == 1, "the operator changed the pod's spec during the run"
    # (podline-prepare may still linger its last second: only the steps are read)
    messages = {
        c["name"]: c["state"]["terminated"].get("message", "")
        for c in pod["status"]["containerStatuses"]
        if c["name"].startswith("step-")
    }
    assert all(json.loads(messages[f"step-s{i}"])["s"] == "succeeded" for i in range(6))  # the compact form


def test_kubectl_logs_shows_exactly_the_steps_output(env) -> None:
    cluster, ns, op, registry = env
    # one stream: the kubelet keeps no order between a container's stdout and stderr, which reach it apart
    spec = {
        "steps": [
            {"name": "hello", "image": registry.busybox, "commands": ["echo hello", "printf 'a  b\\n'"]}
        ]
    }
    apply(cluster, ns, pipeline("exact", spec))
    st = wait_for_phase(cluster, ns, "exact", timeout=180, operator=op)
    assert st["phase"] == "Succeeded", st
    out = cluster.kubectl("logs", "-n", ns, st["podName"], "-c", "step-hello").stdout
    assert out == "+ echo hello\nhello\n+ printf 'a  b\\n'\na  b\n"


def test_a_step_without_commands_runs_its_images_own_entrypoint_read_from_the_registry(env) -> None:
    cluster, ns, op, registry = env
    cluster.kubectl(
        "create",
        "secret",
        "generic",
        "login",
        "-n",
        ns,
        f"--from-literal=.dockerconfigjson={registry.docker_config_json()}",
    )
    spec = {
        "image_pull_secrets": ["login"],
        "steps": [
            # busybox's image has CMD ["sh"] and no ENTRYPOINT: `command` replaces the CMD
            {"name": "public", "image": registry.busybox, "command": ["echo", "public plugin"]},
            # the private one is read with the run's credentials; its image sets PODLINE_TEST_IMAGE=private
            {
                "name": "private",
                "image": registry.private_busybox,
                "command": ["sh", "-c", "echo private plugin $PODLINE_TEST_IMAGE"],
            },
        ],
    }
    apply(cluster, ns, pipeline("plugins", spec))
    st = wait_for_phase(cluster, ns, "plugins", timeout=180, operator=op)
    assert st["phase"] == "Succeeded", st
    out = logs(cluster, ns, "plugins")
    assert "public plugin" in out and "private plugin private" in out
    assert registry.password not in op.log() and registry.password not in json.dumps(st)


def test_an_image_that_is_not_there_fails_its_step_at_once_and_failure_steps_still_run(env) -> None:
    cluster, ns, op, registry = env
    missing = registry.busybox.replace("podline/busybox:1", "podline/not-there:1")
    spec = {
        "steps": [
            {"name": "first", "image": registry.busybox, "commands": ["echo first"]},
            {"name": "missing", "image": missing, "commands": ["echo never"]},
            {"name": "after", "image": registry.busybox, "commands": ["echo never"]},
            {
                "name": "cleanup",
                "image": registry.busybox,
                "commands": ["echo cleaning up"],
                "when": {"status": ["failure"]},
            },
        ]
    }
    apply(cluster, ns, pipeline("missing", spec))
    st = wait_for_phase(cluster, ns, "missing", timeout=120, operator=op)  # far less than the pull timeout
    by = steps(st)
    assert st["phase"] == "Failed", st
    assert by["first"]["state"] == "succeeded"
    assert by["missing"]["state"] == "failed" and by["missing"]["reason"] in (
        "ErrImagePull",
        "ImagePullBackOff",
    )
    assert "not found" in by["missing"]["message"] and "image_pull_secrets" in by["missing"]["message"]
    assert by["after"]["state"] == "skipped" and by["cleanup"]["state"] == "succeeded"
    assert "cleaning up" in logs(cluster, ns, "missing")


def test_cancel_stops_the_running_step(env) -> None:
    cluster, ns, op, registry = env
    spec = {
        "steps": [
            {"name": "long", "image": registry.busybox, "commands": ["echo started", "sleep 300"]},
            {"name": "next", "image": registry.busybox, "commands": ["echo never"]},
        ]
    }
    apply(cluster, ns, pipeline("cancel", spec))
    operating.wait_for(
        lambda: (
            "started" in cluster.kubectl("logs", "-n", ns, "cancel-g1", "-c", "step-long", check=False).stdout
        ),
        timeout=120,
        what="the step to run",
    )
    cluster.kubectl("annotate", "-n", ns, "pipeline", "cancel", "podline.dev/cancel=true")
    st = wait_for_phase(cluster, ns, "cancel", timeout=120, operator=op)
    assert st["phase"] == "Cancelled", st
    assert steps(st)["next"]["state"] == "skipped"

    def stopped() -> bool:
        pod = operating.get(cluster, ns, "pod", "cancel-g1")
        return all("terminated" in c["state"] for c in pod["status"]["containerStatuses"])

    operating.wait_for(stopped, timeout=60, what="every container of the cancelled run to stop")


def test_a_run_goes_on_while_the_operator_is_down_and_its_status_is_written_when_it_is_back(env) -> None:
    cluster, ns, op, registry = env
    spec = {
        "steps": [
            {"name": "a", "image": registry.busybox, "commands": ["sleep 2", "echo a"]},
            {"name": "b", "image": registry.busybox, "commands": ["echo b", "exit 3"]},
            {"name": "c", "image": registry.busybox, "commands": ["echo c"], "when": {"status": ["failure"]}},
        ]
    }
    apply(cluster, ns, pipeline("alone", spec))
    operating.wait_for(
        lambda: operating.status(cluster, ns, "alone").get("podName"),
        timeout=120,
        what="the run's pod to be created",
    )
    op.kill()
    try:

        def ended() -> bool:
            pod = operating.get(cluster, ns, "pod", "alone-g1")
            return pod.get("status", {}).get("phase") in ("Succeeded", "Failed")

        operating.wait_for(ended, timeout=120, what="the pod to finish on its own")
        assert operating.status(cluster, ns, "alone").get("phase") not in ("Succeeded", "Failed")
    finally:
        op.start()
    st = wait_for_phase(cluster, ns, "alone", timeout=120, operator=op)
    by = steps(st)
    assert st["phase"] == "Failed" and by["b"]["exitCode"] == 3, st
    assert by["a"]["state"] == "succeeded" and by["c"]["state"] == "succeeded"
