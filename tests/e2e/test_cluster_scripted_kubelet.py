"""The scripted kubelet (a TEST DOUBLE of the kubelet and the in-pod entrypoint) drives plain pods on the api
tier the way the real ones do (docs/in-pod.md).

No podline operator here: these tests create pods of podline's shape (a prepare container, services, step
containers whose command is the entrypoint with its arguments) and read back what the double wrote: every
container running from the start, steps sequenced by ``stepping.decide``, results as termination messages.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from podline.core import stepping

from tests.cluster import apitier, components
from tests.cluster import scripted_kubelet as scripted
from tests.cluster import scripted_statuses as statuses

pytestmark = pytest.mark.api

RUNNER = "podline/runner:test"
BUSYBOX = "busybox:1.36"
LABELS = {"app.kubernetes.io/managed-by": "podline"}


def make_pod(name: str, *containers: dict[str, Any], deadline: int | None = None) -> dict[str, Any]:
    prepare = {"name": stepping.PREPARE_CONTAINER, "image": RUNNER,
               "command": [stepping.RUNNER_BINARY, "prepare", stepping.TOOLS_DIR]}  # fmt: skip
    spec: dict[str, Any] = {"restartPolicy": "Never", "containers": [prepare, *containers]}
    if deadline is not None:
        spec["activeDeadlineSeconds"] = deadline
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": LABELS}, "spec": spec}


def step(name: str, script: str = "true", *flags: str, after: Sequence[str] = (), image: str = BUSYBOX,
         on: str = "success", **extra: Any) -> dict[str, Any]:  # fmt: skip
    """A step container as podline builds it: the entrypoint, told its turn, wrapping ``sh -c script``."""
    args = ["run", f"--name=step-{name}"]
    if after:
        args.append("--after=" + ",".join(f"step-{a}" for a in after))
    args += [f"--on={on}", *flags, "--", "/bin/sh", "-c", script]
    return {"name": f"step-{name}", "image": image, "command": [stepping.BINARY], "args": args, **extra}


def service(name: str, image: str) -> dict[str, Any]:
    return {"name": f"svc-{name}", "image": image}


class Pods:
    """Create, patch and read pods of one namespace."""

    def __init__(self, cluster: apitier.ApiCluster, namespace: str) -> None:
        self.cluster, self.namespace = cluster, namespace

    def create(self, pod: dict[str, Any]) -> None:
        self.cluster.kubectl("create", "-n", self.namespace, "-f", "-", input=json.dumps(pod))

    def patch(self, pod: str, patch: dict[str, Any]) -> None:
        self.cluster.kubectl("patch", "pod", pod, "-n", self.namespace, "-p", json.dumps(patch))

    def set_image(self, pod: str, container_name: str, image: str) -> None:
        self.patch(pod, {"spec": {"containers": [{"name": container_name, "image": image}]}})

    def get(self, pod: str) -> dict[str, Any]:
        return dict(
            json.loads(self.cluster.kubectl("get", "pod", pod, "-n", self.namespace, "-o", "json").stdout)
        )

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

    def wait_phase(self, pod: str, phase: str, timeout: float = 20) -> dict[str, Any]:
        return self.wait(pod, lambda p: p["status"].get("phase") == phase, f"in phase {phase}", timeout)


def state_of(pod: dict[str, Any], container_name: str) -> dict[str, Any]:
    """The container's status; an empty state while the (scripted) kubelet has not reported it yet."""
    found = pod.get("status", {}).get("containerStatuses") or []
    return dict(next((s for s in found if s["name"] == container_name), {"state": {}}))


def terminated(pod: dict[str, Any], container_name: str) -> dict[str, Any]:
    return dict(state_of(pod, container_name)["state"].get("terminated") or {})


def result_of(pod: dict[str, Any], name: str) -> stepping.Result:
    """A step's result, from its termination message, as the operator reads it (``failing`` is not in it)."""
    result = stepping.parse_message(f"step-{name}", terminated(pod, f"step-{name}").get("message"))
    assert result is not None, f"step-{name} has no result: {state_of(pod, f'step-{name}')}"
    return result


def ended(*names: str) -> Callable[[dict[str, Any]], bool]:
    return lambda p: all(terminated(p, n) for n in names)


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


def test_every_container_runs_from_the_start_and_prepare_exits_0(make_kubelet, pods: Pods,  # type: ignore[no-untyped-def]
                                                                  api_namespace: str) -> None:  # fmt: skip
    kubelet = make_kubelet()
    pods.create(make_pod("p", service("db", "localhost:5101/db:1"), step("a", "sleep 30"),
                         step("b", after=["a"], image="alpine:3")))  # fmt: skip
    pod = pods.wait("p", ended(stepping.PREPARE_CONTAINER), "prepared")
    uid = pod["metadata"]["uid"]
    assert pod["status"]["phase"] == "Running" and pod["status"]["startTime"]
    assert terminated(pod, stepping.PREPARE_CONTAINER)["exitCode"] == 0
    for name, image in (("svc-db", "localhost:5101/db:1"), ("step-a", "docker.io/library/busybox:1.36"),
                        ("step-b", "docker.io/library/alpine:3")):  # fmt: skip
        status = state_of(pod, name)
        assert status["containerID"] == f"scripted://{uid}/{name}/1"
        assert status["image"] == image, "each step runs its own image from the pod's creation"
        assert "running" in status["state"], "step-b's entrypoint runs, waiting for its turn"
        assert status["ready"] is True and status["started"] is True and status["restartCount"] == 0
    containers = kubelet.instances(api_namespace, "p", kind="container")
    assert [i.container for i in containers] == [stepping.PREPARE_CONTAINER, "svc-db", "step-a", "step-b"]
    assert kubelet.commands(api_namespace, "p") == ["step-a"], "only step-a's command has started"


def test_steps_run_in_turn_and_end_with_their_results(make_kubelet, pods: Pods, api_namespace: str) -> None:  # type: ignore[no-untyped-def]
    kubelet = make_kubelet()
    pods.create(make_pod("p", step("one", "sleep 0.2; echo ok"),
                         step("flaky", "exit 1", "--ignore-failure", after=["one"]),
                         step("two", "sleep 0.1; exit 3", after=["flaky"]), step("three", after=["two"]),
                         step("notify", "true", after=["three"], on="failure")))  # fmt: skip
    pod = pods.wait_phase("p", "Failed")
    one, flaky, two, three = (result_of(pod, n) for n in ("one", "flaky", "two", "three"))
    assert (one.state, one.exit_code, one.reason, one.message) == (
        stepping.ResultState.SUCCEEDED,
        0,
        None,
        None,
    )
    assert (flaky.state, flaky.exit_code) == (stepping.ResultState.FAILED, 1)
    assert (two.state, two.exit_code, two.message) == (stepping.ResultState.FAILED, 3,
                                                       "The command exited with code 3.")  # fmt: skip
    assert one.started_at and one.finished_at and two.started_at and two.finished_at
    assert two.started_at >= flaky.finished_at >= one.finished_at, "each ran after the one before ended"
    assert two.finished_at - two.started_at >= 100, "it ran for its sleep"
    # --ignore-failure: flaky's failure did not make the run fail, so two ran; two's did, so three is skipped
    assert (three.state, three.exit_code, three.reason, three.started_at) == (
        stepping.ResultState.SKIPPED,
        None,
        stepping.Why.SKIPPED,
        None,
    )
    assert three.message == "Skipped: the run is failing (step-two failed) and the step runs only on success."
    assert three.finished_at, "a skip records when"
    assert result_of(pod, "notify").state is stepping.ResultState.SUCCEEDED, (
        "a failure step runs once failing"
    )
    codes = {n: terminated(pod, f"step-{n}")["exitCode"] for n in ("one", "flaky", "two", "three", "notify")}
    assert codes == {"one": 0, "flaky": 1, "two": 3, "three": 0, "notify": 0}
    assert (
        terminated(pod, "step-two")["reason"] == "Error"
        and terminated(pod, "step-three")["reason"] == "Completed"
    )
    message = json.loads(terminated(pod, "step-two")["message"])
    assert message == {
        "s": "failed",
        "x": 3,
        "a": two.started_at,
        "d": two.finished_at - two.started_at,
        "m": "The command exited with code 3.",
    }, "the compact form (docs/in-pod.md)"
    assert kubelet.commands(api_namespace, "p") == ["step-one", "step-flaky", "step-two", "step-notify"]


def test_the_termination_message_fits_the_message_limit(make_kubelet, pods: Pods) -> None:  # type: ignore[no-untyped-def]
    make_kubelet()
    pods.create(make_pod("p", step("a", "exit 3", "--message-limit=50")))
    pod = pods.wait("p", ended("step-a"), "done")
    message = terminated(pod, "step-a")["message"]
    assert len(message.encode()) <= 50 and "m" not in json.loads(message), message
    assert result_of(pod, "a").exit_code == 3


def test_exit_78_skips_every_later_step(make_kubelet, pods: Pods) -> None:  # type: ignore[no-untyped-def]
    make_kubelet()
    pods.create(make_pod("p", step("check", "exit 78"), step("deploy", after=["check"]),
                         step("notify", after=["deploy"], on="success,failure")))  # fmt: skip
    pod = pods.wait("p", ended("step-check", "step-deploy", "step-notify"), "done")
    check = result_of(pod, "check")
    assert (check.state, check.exit_code) == (stepping.ResultState.SUCCEEDED, 78)
    assert terminated(pod, "step-check")["exitCode"] == 78
    assert result_of(pod, "deploy").message == "Skipped: step-check exited with code 78 (early exit)."
    for name in ("deploy", "notify"):
        assert (result_of(pod, name).state, result_of(pod, name).reason) == (stepping.ResultState.SKIPPED,
                                                                              stepping.Why.EARLY_EXIT)  # fmt: skip


def test_ready_steps_run_together_and_a_detached_step_counts_once_started(make_kubelet, pods: Pods,  # type: ignore[no-untyped-def]
                                                                          api_namespace: str) -> None:  # fmt: skip
    kubelet = make_kubelet()
    pods.create(make_pod(
        "p", step("a", "sleep 1"), step("b", "sleep 1"), step("c", after=["a", "b"]),
        step("d", "sleep 600", "--detach", after=["c"]),
        {**step("e", after=["d"]), "args": ["run", "--name=step-e", "--after=step-d", "--detached=step-d",
                                            "--on=success", "--", "/bin/sh", "-c", "true"]},
    ))  # fmt: skip
    pod = pods.wait("p", ended("step-e"), "done with e")
    a, b, c, e = (result_of(pod, n) for n in "abce")
    assert a.started_at and b.started_at and a.finished_at and b.finished_at and c.started_at and e.started_at
    assert b.started_at < a.finished_at and a.started_at < b.finished_at, "a and b ran at the same time"
    assert c.started_at >= max(a.finished_at, b.finished_at)
    assert "running" in state_of(pod, "step-d")["state"], "the detached step still runs"
    assert e.state is stepping.ResultState.SUCCEEDED, "e ran once d had started, without waiting for its end"
    assert kubelet.commands(api_namespace, "p")[-2:] == ["step-d", "step-e"]


def test_a_step_timeout_kills_the_command(make_kubelet, pods: Pods) -> None:  # type: ignore[no-untyped-def]
    make_kubelet()
    pods.create(make_pod("p", step("slow", "sleep 600", "--timeout=1"), step("next", after=["slow"])))
    pod = pods.wait_phase("p", "Failed")
    slow = result_of(pod, "slow")
    assert (slow.state, slow.exit_code, slow.reason) == (
        stepping.ResultState.FAILED,
        143,
        stepping.Why.STEP_TIMEOUT,
    )
    assert slow.started_at and slow.finished_at and slow.finished_at - slow.started_at >= 1000
    assert terminated(pod, "step-slow")["exitCode"] == 143
    assert result_of(pod, "next").state is stepping.ResultState.SKIPPED


def test_image_pull_failures_wait_with_the_kubelets_reasons(make_kubelet, pods: Pods) -> None:  # type: ignore[no-untyped-def]
    make_kubelet(present_images=[BUSYBOX, RUNNER], pull_backoff_after=0.1)
    pods.create(make_pod(
        "p",
        step("missing", image="example.com/team/notfound:1"),
        step("away", image="localhost:1/unreachable:1"),
        step("never", image="alpine:3", imagePullPolicy="Never"),
        step("present", "sleep 30", imagePullPolicy="Never"),
    ))  # fmt: skip

    def waiting(name: str, reason: str) -> Callable[[dict[str, Any]], bool]:
        return lambda p: state_of(p, name)["state"].get("waiting", {}).get("reason") == reason

    pod = pods.wait("p", lambda p: waiting("step-missing", "ImagePullBackOff")(p)
                    and waiting("step-away", "ImagePullBackOff")(p), "backing off the pulls")  # fmt: skip
    missing = state_of(pod, "step-missing")["state"]["waiting"]["message"]
    assert missing.startswith('Back-off pulling image "example.com/team/notfound:1": ErrImagePull: ')
    assert missing.endswith("example.com/team/notfound:1: not found"), missing
    assert (
        "dial tcp 127.0.0.1:1: connect: connection refused"
        in state_of(pod, "step-away")["state"]["waiting"]["message"]
    )
    assert waiting("step-never", "ErrImageNeverPull")(pod)
    assert (
        'Container image "alpine:3" is not present'
        in state_of(pod, "step-never")["state"]["waiting"]["message"]
    )
    assert "running" in state_of(pod, "step-present")["state"]
    assert pod["status"]["phase"] == "Pending"  # containers that never started keep the pod pending


def test_the_first_pull_error_is_errimagepull_with_containerds_words(make_kubelet, pods: Pods) -> None:  # type: ignore[no-untyped-def]
    make_kubelet(pull_backoff_after=600)
    pods.create(make_pod("p", step("missing", image="notfound:1")))
    pod = pods.wait("p", lambda p: "waiting" in state_of(p, "step-missing")["state"], "waiting for its image")
    waiting = state_of(pod, "step-missing")["state"]["waiting"]
    assert waiting["reason"] == "ErrImagePull"
    assert waiting["message"] == (
        "rpc error: code = NotFound desc = failed to pull and unpack image "
        '"docker.io/library/notfound:1": failed to resolve reference '
        '"docker.io/library/notfound:1": docker.io/library/notfound:1: not found'
    )


def test_the_runner_image_stands_in_for_an_unpullable_step(
    make_kubelet, pods: Pods, api_namespace: str
) -> None:  # type: ignore[no-untyped-def]
    kubelet = make_kubelet(pull_backoff_after=0.1)
    pods.create(make_pod("p", step("first", "sleep 0.5"), step("build", after=["first"], image="notfound:1"),
                         step("notify", after=["build"], on="failure")))  # fmt: skip
    pods.wait("p", lambda p: "waiting" in state_of(p, "step-build")["state"], "build waiting for its image")
    pods.set_image("p", "step-build", RUNNER)  # what the operator does
    pod = pods.wait("p", ended("step-notify"), "done")
    build = result_of(pod, "build")
    assert (build.state, build.exit_code, build.reason) == (stepping.ResultState.FAILED, 1,
                                                            stepping.Why.IMAGE_PULL_FAILED)  # fmt: skip
    assert build.started_at is not None and build.started_at >= result_of(pod, "first").finished_at, (
        "in its turn"
    )
    assert build.finished_at == build.started_at
    assert result_of(pod, "notify").state is stepping.ResultState.SUCCEEDED
    assert state_of(pod, "step-build")["image"] == statuses.normalise(RUNNER)
    assert kubelet.commands(api_namespace, "p") == ["step-first", "step-notify"], (
        "the stand-in runs no command"
    )
    assert pod["status"]["phase"] == "Failed"


def test_active_deadline_stops_every_container(make_kubelet, pods: Pods) -> None:  # type: ignore[no-untyped-def]
    make_kubelet()
    pods.create(make_pod("p", service("db", "redis:7"), step("a", "sleep 600"), step("b", after=["a"]),
                         step("c", image="notfound:1"), deadline=2))  # fmt: skip
    pod = pods.wait_phase("p", "Failed")
    assert pod["status"]["reason"] == "DeadlineExceeded"
    a, b = result_of(pod, "a"), result_of(pod, "b")
    assert (a.state, a.exit_code, a.reason) == (stepping.ResultState.FAILED, 143, stepping.Why.STOPPED)
    assert terminated(pod, "step-a")["exitCode"] == 143
    assert (b.state, b.reason) == (stepping.ResultState.SKIPPED, stepping.Why.STOPPED)
    assert terminated(pod, "step-b")["exitCode"] == 0
    assert terminated(pod, "svc-db")["exitCode"] == 137
    assert terminated(pod, "step-c")["reason"] == "ContainerStatusUnknown", "never started"


def test_lowering_the_deadline_stops_the_pod(make_kubelet, pods: Pods) -> None:  # type: ignore[no-untyped-def]
    """How the operator stops a pod (cancel, the run's end with services still up): activeDeadlineSeconds 1."""
    make_kubelet()
    pods.create(make_pod("p", service("db", "redis:7"), step("a", "true"), deadline=3600))
    pods.wait("p", ended("step-a"), "done with a")
    assert pods.get("p")["status"]["phase"] == "Running", "the service runs on"
    pods.patch("p", {"spec": {"activeDeadlineSeconds": 1}})
    pod = pods.wait_phase("p", "Failed")
    assert pod["status"]["reason"] == "DeadlineExceeded"
    assert result_of(pod, "a").state is stepping.ResultState.SUCCEEDED, "a finished result stays as it was"


def test_a_terminated_container_is_never_restarted(make_kubelet, pods: Pods, api_namespace: str) -> None:  # type: ignore[no-untyped-def]
    kubelet = make_kubelet()
    pods.create(make_pod("p", step("a", "exit 0"), service("x", BUSYBOX)))
    pods.wait("p", ended("step-a"), "done with step-a")
    pods.set_image("p", "step-a", "alpine:3")
    assert kubelet.wait_idle()
    status = state_of(pods.get("p"), "step-a")
    assert status["image"] == "docker.io/library/busybox:1.36" and "terminated" in status["state"]
    assert (
        len(kubelet.instances(api_namespace, "p", kind="container")) == 3
    )  # prepare, step-a, svc-x: once each
    assert kubelet.commands(api_namespace, "p") == ["step-a"]
    assert "running" in state_of(pods.get("p"), "svc-x")["state"]  # a service runs until killed


def test_pause_withholds_statuses_until_resume(make_kubelet, pods: Pods, api_namespace: str) -> None:  # type: ignore[no-untyped-def]
    kubelet = make_kubelet()
    kubelet.pause()
    pods.create(make_pod("p", step("a", "exit 5"), step("b", after=["a"], on="failure")))
    assert kubelet.wait_idle()
    assert "containerStatuses" not in pods.get("p")["status"]
    assert components.poll(
        lambda: kubelet.commands(api_namespace, "p") == ["step-a", "step-b"], timeout=10
    ), "the steps ran while paused"
    kubelet.resume()
    pod = pods.wait_phase("p", "Failed")  # resume reports where it is now
    assert result_of(pod, "a").exit_code == 5 and result_of(pod, "b").state is stepping.ResultState.SUCCEEDED


def test_overrides_hooks_and_terminate_make_races_deterministic(make_kubelet, pods: Pods,  # type: ignore[no-untyped-def]
                                                                api_namespace: str) -> None:  # fmt: skip
    kubelet = make_kubelet()
    kubelet.override(api_namespace, "p", lambda c: scripted.Behaviour(exit_code=9, duration=0)
                     if c["name"] == "step-a" else None)  # fmt: skip

    def oom_killed(status: dict[str, Any]) -> dict[str, Any] | None:
        for found in status["containerStatuses"]:
            if found["name"] == "step-b" and "terminated" in found["state"]:
                found["state"]["terminated"]["reason"] = "OOMKilled"
        return status

    kubelet.hook(api_namespace, "p", oom_killed)
    pods.create(make_pod("p", step("a", "exit 0"), step("b", "sleep 600", after=["a"], on="success,failure"),
                         step("c", after=["b"], on="success,failure")))  # fmt: skip
    pod = pods.wait("p", ended("step-a"), "done with a")
    assert result_of(pod, "a").exit_code == 9, "the override, not the script's exit 0"
    assert components.poll(lambda: "step-b" in kubelet.commands(api_namespace, "p"), timeout=10)

    kubelet.terminate(api_namespace, "p", "step-b", exit_code=137)  # killed before its entrypoint could write
    pod = pods.wait("p", ended("step-b"), "step-b ended")
    ended_b = terminated(pod, "step-b")
    assert ended_b["exitCode"] == 137 and "message" not in ended_b, (
        "no result: the entrypoint never wrote one"
    )
    assert ended_b["reason"] == "OOMKilled"  # as edited by the hook
    assert kubelet.wait_idle()
    assert "running" in state_of(pods.get("p"), "step-c")["state"], "c waits for a result that never comes"
    assert kubelet.commands(api_namespace, "p") == ["step-a", "step-b"]


def test_a_step_container_starts_without_its_entrypoint_if_prepare_cannot(make_kubelet, pods: Pods) -> None:  # type: ignore[no-untyped-def]
    make_kubelet()
    pod = make_pod("p", step("a"))
    pod["spec"]["containers"][0]["image"] = "notfound/runner:1"
    pods.create(pod)
    pod = pods.wait("p", ended("step-a"), "step-a failed to start")
    assert (
        terminated(pod, "step-a")["reason"] == "StartError" and terminated(pod, "step-a")["exitCode"] == 128
    )
    assert stepping.BINARY in terminated(pod, "step-a")["message"]
    assert state_of(pod, stepping.PREPARE_CONTAINER)["state"]["waiting"]["reason"] == "ErrImagePull"
