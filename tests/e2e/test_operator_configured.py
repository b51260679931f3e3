"""The operator's settings that shape a run in the pod, on the api tier (scripted kubelet: a test double of
the kubelet and the in-pod entrypoint): the pull timeout for an image that may yet come, the step timeout the
entrypoint enforces, and a runner image that cannot be pulled.

Each operator here watches only its own namespace (``PODLINE_NAMESPACES``), on a private api-tier cluster of
this module, so no other operator does its work.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator

import pytest

from tests.cluster import apitier, scripted_kubelet
from tests.e2e import conftest as e2e_conftest
from tests.e2e import operating
from tests.e2e.operating import pipeline, steps, wait_for_phase

pytestmark = pytest.mark.api
BUSYBOX = "busybox:1.36"


def seconds(timestamp: str) -> float:
    return datetime.datetime.fromisoformat(timestamp).timestamp()


@pytest.fixture(scope="module")
def cluster(
    api_cluster: apitier.ApiCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[apitier.ApiCluster]:
    yield from e2e_conftest.private_cluster(api_cluster, tmp_path_factory, "configured")


@pytest.fixture
def run_with(cluster: apitier.ApiCluster) -> Iterator[object]:
    """``run_with(env)`` → (namespace, operator, kubelet): an operator with ``env``, for one namespace."""
    started: list[tuple[operating.OperatorProcess, scripted_kubelet.ScriptedKubelet, str]] = []

    def start(env: dict[str, str]) -> tuple[str, operating.OperatorProcess, scripted_kubelet.ScriptedKubelet]:
        namespace = cluster.new_namespace("configured")
        kubelet = scripted_kubelet.ScriptedKubelet(
            cluster.api_client(), namespace=namespace, pull_backoff_after=0.2
        )
        op = operating.OperatorProcess(cluster.kubeconfig, cluster.log_dir, name=f"operator-{namespace}",
                                       env={"PODLINE_NAMESPACES": namespace, **env})  # fmt: skip
        kubelet.start()
        op.start()
        started.append((op, kubelet, namespace))
        return namespace, op, kubelet

    yield start
    for op, kubelet, namespace in started:
        op.stop()
        kubelet.stop()
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def test_an_image_that_may_yet_come_gets_the_pull_timeout_then_a_stand_in(cluster, run_with) -> None:  # type: ignore[no-untyped-def]
    ns, op, kubelet = run_with({"PODLINE_PULL_TIMEOUT": "3"})
    spec = {"steps": [{"name": "first", "image": BUSYBOX, "commands": ["sleep 1"]},
                      {"name": "build", "image": "localhost:1/unreachable:1", "commands": ["true"]},
                      {"name": "notify", "image": BUSYBOX, "commands": ["true"], "when": {"status": ["failure"]}}]}  # fmt: skip
    operating.apply(cluster, ns, pipeline("away", spec))
    st = wait_for_phase(cluster, ns, "away", operator=op, timeout=60)
    by = steps(st)
    assert st["phase"] == "Failed", st
    assert by["build"]["state"] == "failed" and by["build"]["reason"] in (
        "ErrImagePull",
        "ImagePullBackOff",
    ), by
    assert (
        "could not be pulled in 3s" in by["build"]["message"]
        and "connection refused" in by["build"]["message"]
    )
    assert by["notify"]["state"] == "succeeded"
    # a transient error is waited for from the step's turn (first's end), not from the pod's start
    waited = seconds(by["build"]["startedAt"]) - seconds(by["first"]["finishedAt"])
    assert waited >= 3.0, by
    assert kubelet.commands(ns, "away-g1") == ["step-first", "step-notify"]


def test_the_step_timeout_is_kept_in_the_pod(cluster, run_with) -> None:  # type: ignore[no-untyped-def]
    ns, op, _ = run_with({"PODLINE_STEP_TIMEOUT": "1"})
    spec = {"steps": [{"name": "slow", "image": BUSYBOX, "commands": ["sleep 600"]},
                      {"name": "next", "image": BUSYBOX, "commands": ["true"]}]}  # fmt: skip
    operating.apply(cluster, ns, pipeline("slow", spec))
    st = wait_for_phase(cluster, ns, "slow", operator=op, timeout=60)
    by = steps(st)
    assert st["phase"] == "Failed" and st["reason"] == "StepFailed", st
    assert (
        by["slow"]["state"] == "failed"
        and by["slow"]["reason"] == "StepTimeout"
        and by["slow"]["exitCode"] == 143
    )
    assert by["next"]["state"] == "skipped"
    pod = operating.get(cluster, ns, "pod", "slow-g1")
    assert "--timeout=1" in next(c for c in pod["spec"]["containers"] if c["name"] == "step-slow")["args"]


def test_a_runner_image_that_cannot_be_pulled_ends_the_run_saying_so(cluster, run_with) -> None:  # type: ignore[no-untyped-def]
    ns, op, kubelet = run_with({"PODLINE_RUNNER_IMAGE": "registry.example.com/podline/notfound:1"})
    spec = {"steps": [{"name": "a", "image": BUSYBOX, "commands": ["true"]}]}
    operating.apply(cluster, ns, pipeline("norunner", spec))
    st = wait_for_phase(cluster, ns, "norunner", operator=op, timeout=60)
    assert st["phase"] == "Error" and st["reason"] == "RunnerUnavailable", st
    assert (
        "registry.example.com/podline/notfound:1" in st["message"] and "PODLINE_RUNNER_IMAGE" in st["message"]
    )
    assert kubelet.commands(ns, "norunner-g1") == []
