"""The scripted kubelet (a TEST DOUBLE) drives plain pods on the api tier the way the real kubelet does.

No podline here: these tests create pods with the podline label and read back what the double wrote.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.cluster import apitier, components
from tests.cluster import scripted_kubelet as scripted
from tests.cluster import scripted_statuses as statuses

pytestmark = pytest.mark.api

PLACEHOLDER = "drone/placeholder:1"
LABELS = {"app.kubernetes.io/managed-by": "podline"}


def make_pod(name: str, *containers: dict[str, Any], deadline: int | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"restartPolicy": "Never", "containers": list(containers)}
    if deadline is not None:
        spec["activeDeadlineSeconds"] = deadline
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": LABELS}, "spec": spec}


def container(name: str, image: str, script: str | None = None, **extra: Any) -> dict[str, Any]:
    found: dict[str, Any] = {"name": name, "image": image, **extra}
    if script is not None:
        found["command"] = ["/bin/sh", "-c", script]
    return found


class Pods:
    """Create, patch and read pods of one namespace."""

    def __init__(self, cluster: apitier.ApiCluster, namespace: str) -> None:
        self.cluster, self.namespace = cluster, namespace

    def create(self, pod: dict[str, Any]) -> None:
        self.cluster.kubectl("create", "-n", self.namespace, "-f", "-", input=json.dumps(pod))

    def set_image(self, pod: str, container_name: str, image: str) -> None:
        patch = {"spec": {"containers": [{"name": container_name, "image": image}]}}
        self.cluster.kubectl("patch", "pod", pod, "-n", self.namespace, "-p", json.dumps(patch))

    def get(self, pod: str) -> dict[str, Any]:
        return dict(
            json.loads(self.cluster.kubectl("get", "pod", pod, "-n", self.namespace, "-o", "json").stdout)
        )

    def status(self, pod: str, container_name: str) -> dict[str, Any]:
        found = self.get(pod)["status"].get("containerStatuses", [])
        return next((s for s in found if s["name"] == container_name), {})

    def wait(
        self, pod: str, check: Callable[[dict[str, Any]], bool], what: str, timeout: float = 20
    ) -> dict[str, Any]:
        seen: dict[str, Any] = {}

        def done() -> bool:
            seen.update(self.get(pod))
            return check(seen)

        assert components.poll(done, timeout=timeout), (
            f"{pod}: not {what} after {timeout}s: {seen.get('status')}"
        )
        return seen

    def wait_phase(self, pod: str, phase: str) -> dict[str, Any]:
        return self.wait(pod, lambda p: p["status"].get("phase") == phase, f"in phase {phase}")


def state_of(pod: dict[str, Any], container_name: str) -> dict[str, Any]:
    """The container's status; an empty state while the (scripted) kubelet has not reported it yet."""
    statuses = pod.get("status", {}).get("containerStatuses") or []
    found = next((s for s in statuses if s["name"] == container_name), {"state": {}})
    return dict(found)


@pytest.fixture
def pods(api_cluster: apitier.ApiCluster, api_namespace: str) -> Pods:
    return Pods(api_cluster, api_namespace)


@pytest.fixture
def make_kubelet(
    api_cluster: apitier.ApiCluster, api_namespace: str
) -> Iterator[Callable[..., scripted.ScriptedKubelet]]:
    """Start a scripted kubelet for this test's namespace with the given options."""
    started: list[scripted.ScriptedKubelet] = []
    client = api_cluster.api_client()

    def make(**options: Any) -> scripted.ScriptedKubelet:
        kubelet = scripted.ScriptedKubelet(client, namespace=api_namespace, **options)
        kubelet.start()
        started.append(kubelet)
        return kubelet

    yield make
    for kubelet in started:
        kubelet.stop()
    client.close()


@pytest.mark.parametrize(
    ("reference", "reported"),
    [
        ("busybox", "docker.io/library/busybox:latest"),
        ("busybox:1.36", "docker.io/library/busybox:1.36"),
        ("drone/git", "docker.io/drone/git:latest"),
        ("docker.io/library/alpine:3", "docker.io/library/alpine:3"),
        ("quay.io/org/tool:2", "quay.io/org/tool:2"),
        ("localhost:5101/podline/busybox:1", "localhost:5101/podline/busybox:1"),
        ("registry:5000/x", "registry:5000/x:latest"),
        ("alpine@sha256:" + "a" * 64, "docker.io/library/alpine@sha256:" + "a" * 64),
    ],
)
def test_image_references_are_reported_as_containerd_does(reference: str, reported: str) -> None:
    assert statuses.normalise(reference) == reported


def test_new_pod_runs_every_container(make_kubelet, pods: Pods, api_namespace: str) -> None:  # type: ignore[no-untyped-def]
    kubelet = make_kubelet()
    pods.create(make_pod("p", container("step-a", PLACEHOLDER), container("svc-db", "localhost:5101/db:1")))
    pod = pods.wait_phase("p", "Running")
    uid = pod["metadata"]["uid"]
    assert pod["status"]["startTime"]
    for name, image in (("step-a", "docker.io/drone/placeholder:1"), ("svc-db", "localhost:5101/db:1")):
        status = state_of(pod, name)
        assert status["containerID"] == f"scripted://{uid}/{name}/1"
        assert status["image"] == image
        assert "running" in status["state"]
        assert status["ready"] is True and status["started"] is True and status["restartCount"] == 0
    ledger = kubelet.instances(api_namespace, "p")
    assert [(i.container, i.container_id) for i in ledger] == [
        ("step-a", f"scripted://{uid}/step-a/1"),
        ("svc-db", f"scripted://{uid}/svc-db/1"),
    ]


@pytest.mark.parametrize(("script", "phase", "exit_code"), [("sleep 0.2; echo ok", "Succeeded", 0),
                                                            ("sleep 0.1; exit 3", "Failed", 3)])  # fmt: skip
def test_a_step_exits_with_the_code_in_its_script(make_kubelet, pods: Pods, script: str, phase: str,  # type: ignore[no-untyped-def]
                                                  exit_code: int) -> None:  # fmt: skip
    make_kubelet()
    pods.create(make_pod("p", container("step-a", "busybox:1.36", script)))
    pod = pods.wait_phase("p", phase)
    terminated = state_of(pod, "step-a")["state"]["terminated"]
    assert terminated["exitCode"] == exit_code
    assert terminated["reason"] == ("Completed" if exit_code == 0 else "Error")


def test_swapping_the_image_of_a_running_container_starts_a_new_instance(make_kubelet, pods: Pods,  # type: ignore[no-untyped-def]
                                                                        api_namespace: str) -> None:  # fmt: skip
    kubelet = make_kubelet()
    pods.create(
        make_pod("p", container("step-a", PLACEHOLDER, "sleep 0.2; exit 4"), container("step-b", PLACEHOLDER))
    )
    pods.wait_phase("p", "Running")
    first_id = pods.status("p", "step-a")["containerID"]

    pods.set_image("p", "step-a", "busybox:1.36")
    pod = pods.wait("p", lambda p: "terminated" in state_of(p, "step-a")["state"], "done with step-a")
    status = state_of(pod, "step-a")
    assert status["state"]["terminated"]["exitCode"] == 4
    assert status["image"] == "docker.io/library/busybox:1.36"
    assert status["restartCount"] == 1
    assert status["containerID"].endswith("/step-a/2") and status["containerID"] != first_id
    # the placeholder exits 0 on SIGTERM, and its end is reported as the last state
    assert status["lastState"]["terminated"]["containerID"] == first_id
    assert status["lastState"]["terminated"]["exitCode"] == 0
    assert pod["status"]["phase"] == "Running"  # step-b still sleeps
    assert [i.image for i in kubelet.instances(api_namespace, "p") if i.container == "step-a"] == [
        PLACEHOLDER,
        "busybox:1.36",
    ]


def test_a_terminated_container_is_never_restarted(make_kubelet, pods: Pods, api_namespace: str) -> None:  # type: ignore[no-untyped-def]
    kubelet = make_kubelet()
    pods.create(
        make_pod("p", container("step-a", "busybox:1.36", "exit 0"), container("svc-x", "busybox:1.36"))
    )
    pods.wait("p", lambda p: "terminated" in state_of(p, "step-a")["state"], "done with step-a")
    pods.set_image("p", "step-a", "alpine:3")
    assert kubelet.wait_idle()
    status = pods.status("p", "step-a")
    assert status["image"] == "docker.io/library/busybox:1.36" and "terminated" in status["state"]
    assert len(kubelet.instances(api_namespace, "p")) == 2  # step-a and svc-x, once each
    assert "running" in pods.status("p", "svc-x")["state"]  # a service runs until killed


def test_image_pull_failures_wait_with_the_kubelets_reasons(make_kubelet, pods: Pods) -> None:  # type: ignore[no-untyped-def]
    make_kubelet(present_images=["busybox:1.36"], pull_backoff_after=0.1)
    pods.create(make_pod(
        "p",
        container("step-missing", "example.com/notfound:1"),
        container("step-never", "alpine:3", imagePullPolicy="Never"),
        container("step-present", "busybox:1.36", "sleep 30", imagePullPolicy="Never"),
    ))  # fmt: skip

    def waiting(name: str, reason: str) -> Callable[[dict[str, Any]], bool]:
        return lambda p: state_of(p, name)["state"].get("waiting", {}).get("reason") == reason

    pod = pods.wait("p", waiting("step-missing", "ImagePullBackOff"), "backing off the pull")
    assert waiting("step-never", "ErrImageNeverPull")(pod)
    assert (
        'Container image "alpine:3" is not present'
        in state_of(pod, "step-never")["state"]["waiting"]["message"]
    )
    assert "running" in state_of(pod, "step-present")["state"]
    assert pod["status"]["phase"] == "Pending"  # containers that never started keep the pod pending


def test_active_deadline_fails_the_pod(make_kubelet, pods: Pods) -> None:  # type: ignore[no-untyped-def]
    make_kubelet()
    pods.create(make_pod("p", container("step-a", "busybox:1.36", "sleep 600"), container("step-b", PLACEHOLDER),
                         deadline=1))  # fmt: skip
    pod = pods.wait_phase("p", "Failed")
    assert pod["status"]["reason"] == "DeadlineExceeded"
    assert state_of(pod, "step-a")["state"]["terminated"]["exitCode"] == 137
    assert state_of(pod, "step-b")["state"]["terminated"]["exitCode"] == 0  # the placeholder ends on SIGTERM


def test_pause_withholds_statuses_until_resume(make_kubelet, pods: Pods) -> None:  # type: ignore[no-untyped-def]
    kubelet = make_kubelet()
    kubelet.pause()
    pods.create(make_pod("p", container("step-a", "busybox:1.36", "exit 5")))
    assert kubelet.wait_idle()
    assert "containerStatuses" not in pods.get("p")["status"]
    kubelet.resume()
    pod = pods.wait_phase("p", "Failed")  # it ran while paused; resume reports where it is now
    assert state_of(pod, "step-a")["state"]["terminated"]["exitCode"] == 5


def test_overrides_hooks_and_terminate_make_races_deterministic(make_kubelet, pods: Pods,  # type: ignore[no-untyped-def]
                                                                api_namespace: str) -> None:  # fmt: skip
    kubelet = make_kubelet()
    kubelet.override(api_namespace, "p", lambda c: scripted.Behaviour(exit_code=9, duration=0)
                     if c["image"] == "busybox:1.36" else None)  # fmt: skip

    def oom_killed(status: dict[str, Any]) -> dict[str, Any] | None:
        for found in status["containerStatuses"]:
            if found["name"] == "step-b" and "terminated" in found["state"]:
                found["state"]["terminated"]["reason"] = "OOMKilled"
        return status

    kubelet.hook(api_namespace, "p", oom_killed)
    pods.create(make_pod("p", container("step-a", PLACEHOLDER, "exit 0"), container("step-b", PLACEHOLDER)))
    pods.wait_phase("p", "Running")

    kubelet.terminate(api_namespace, "p", "step-b", exit_code=137)  # the placeholder dies on its own
    pod = pods.wait("p", lambda p: "terminated" in state_of(p, "step-b")["state"], "step-b ended")
    assert state_of(pod, "step-b")["state"]["terminated"]["exitCode"] == 137
    assert state_of(pod, "step-b")["state"]["terminated"]["reason"] == "OOMKilled"  # as edited by the hook

    pods.set_image("p", "step-a", "busybox:1.36")  # the override makes it exit 9, not the script's 0
    pod = pods.wait_phase("p", "Failed")
    assert state_of(pod, "step-a")["state"]["terminated"]["exitCode"] == 9
