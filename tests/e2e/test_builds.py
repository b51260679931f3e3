"""Builds on the api tier: the Pipelines of one .drone.yml (label podline.dev/build) run in their
pipeline-level depends_on order, as Drone runs a build's stages (drone/drone operator/manager/teardown.go:
cancelDownstream, scheduleDownstream), whatever order they are created in.

The scripted kubelet runs the pods (tests/cluster/README.md); its ledger tells which step commands started,
in which pod, in which order.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.e2e import operating
from tests.e2e.operating import apply, status, wait_for, wait_for_phase

pytestmark = pytest.mark.api
BUSYBOX = "busybox:1.36"
ENDED = ("Succeeded", "Failed", "Error", "Cancelled", "Skipped")


def member(name: str, *commands: str, build: str = "app", **spec: Any) -> dict[str, Any]:
    body = operating.pipeline(
        name, {"name": name, "steps": [{"name": "run", "image": BUSYBOX, "commands": list(commands)}], **spec}
    )
    body["metadata"]["labels"] = {"podline.dev/build": build}
    return body


def pods_of(cluster: Any, ns: str, pipeline: str) -> list[dict[str, Any]]:
    out = cluster.kubectl(
        "get", "pods", "-n", ns, "-l", f"podline.dev/pipeline={pipeline}", "-o", "json"
    ).stdout
    return list(json.loads(out)["items"])


def started_pods(kubelet: Any, ns: str) -> list[str]:
    """The pods whose step commands started, in the order the first of each started."""
    return list(dict.fromkeys(i.pod for i in kubelet.instances(ns, kind="command")))


def env_of(pod: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for c in pod["spec"]["containers"] for e in c.get("env", [])}


def test_publish_waits_for_test_saying_so_then_runs_after_it(api_env) -> None:
    cluster, ns, op, kubelet = api_env
    apply(cluster, ns, member("test", "sleep 2"), member("publish", "true", depends_on=["test"]))
    waiting = wait_for(
        lambda: (s := status(cluster, ns, "publish")).get("reason") == "WaitingForDependencies" and s,
        what="publish to wait for test",
    )
    assert waiting["phase"] == "Pending" and waiting["waitingFor"] == ["test"]
    assert waiting["message"].startswith("waiting for test (")
    conditions = {c["type"]: c["status"] for c in waiting["conditions"]}
    assert conditions["Reconciling"] == "True" and conditions["Stalled"] == "False"  # kstatus: InProgress
    assert not pods_of(cluster, ns, "publish")
    test = wait_for_phase(cluster, ns, "test", operator=op)
    publish = wait_for_phase(cluster, ns, "publish", operator=op)
    assert (test["phase"], publish["phase"]) == ("Succeeded", "Succeeded"), publish
    assert started_pods(kubelet, ns) == [test["podName"], publish["podName"]]
    [pod] = pods_of(cluster, ns, "publish")
    assert pod["metadata"]["creationTimestamp"] >= test["completionTime"]
    env = env_of(pod)
    assert env["DRONE_BUILD_STATUS"] == "success" and env["DRONE_STAGE_DEPENDS_ON"] == "test"
    assert "waitingFor" not in publish and publish["history"] == []  # the wait is no run of its own


def test_a_failed_test_skips_publish_without_a_pod_and_runs_the_failure_notifier(api_env) -> None:
    cluster, ns, op, kubelet = api_env
    apply(
        cluster,
        ns,
        member("test", "exit 2"),
        member("publish", "true", depends_on=["test"]),
        member("notify", "true", depends_on=["publish"], trigger={"status": ["failure"]}),
        member("after-all", "true", depends_on=["test"], trigger={"status": ["success", "failure"]}),
    )
    for name in ("test", "publish", "notify", "after-all"):
        wait_for_phase(cluster, ns, name, phases=ENDED, operator=op)
    publish = status(cluster, ns, "publish")
    assert (publish["phase"], publish["reason"]) == ("Skipped", "DependencyFailed")
    assert publish["message"] == 'skipped: pipeline "test" failed'
    assert {c["type"]: c["status"] for c in publish["conditions"]}["Stalled"] == "False"
    assert not pods_of(cluster, ns, "publish")
    assert status(cluster, ns, "notify")["phase"] == "Succeeded"
    assert status(cluster, ns, "after-all")["phase"] == "Succeeded"
    [notify] = pods_of(cluster, ns, "notify")
    env = env_of(notify)
    assert env["DRONE_BUILD_STATUS"] == "failure" and env["DRONE_FAILED_STAGES"] == "test"
    assert "publish" not in "".join(started_pods(kubelet, ns))


def test_created_in_reverse_order_a_lone_dependent_waits_for_what_is_missing(api_env) -> None:
    cluster, ns, op, kubelet = api_env
    apply(cluster, ns, member("publish", "true", depends_on=["test-amd64", "test-arm64"]))
    lone = wait_for(
        lambda: (s := status(cluster, ns, "publish")).get("reason") == "WaitingForDependencies" and s,
        what="publish to wait",
    )
    assert lone["message"] == "waiting for test-amd64 (not created yet), test-arm64 (not created yet)"
    apply(cluster, ns, member("test-arm64", "sleep 1"))
    wait_for(lambda: status(cluster, ns, "publish").get("waitingFor") == ["test-amd64", "test-arm64"])
    apply(cluster, ns, member("test-amd64", "true"))
    publish = wait_for_phase(cluster, ns, "publish", operator=op)
    assert publish["phase"] == "Succeeded"
    assert started_pods(kubelet, ns)[-1] == publish["podName"]
    assert len(started_pods(kubelet, ns)) == 3


def test_a_cycle_fails_each_member_naming_it_and_starts_nothing(api_env) -> None:
    cluster, ns, op, kubelet = api_env
    apply(cluster, ns, member("a", "true", depends_on=["b"]), member("b", "true", depends_on=["a"]))
    for name, cycle in (("a", "a -> b -> a"), ("b", "b -> a -> b")):
        st = wait_for_phase(cluster, ns, name, operator=op)
        assert st["phase"] == "Failed" and cycle in st["message"], st
    assert started_pods(kubelet, ns) == []


def test_rerunning_the_first_pipeline_reruns_the_build_in_order(api_env) -> None:
    cluster, ns, op, kubelet = api_env
    apply(cluster, ns, member("test", "true"), member("publish", "true", depends_on=["test"]))
    first = wait_for_phase(cluster, ns, "publish", operator=op)
    cluster.kubectl("annotate", "-n", ns, "pipelines.podline.dev", "test", "podline.dev/rerun=2")
    again = wait_for(
        lambda: (
            (s := status(cluster, ns, "publish")).get("run") != first["run"]
            and s.get("phase") == "Succeeded"
            and s
        ),
        what="publish to run again",
    )
    test = status(cluster, ns, "test")
    assert test["run"].startswith("g1-r") and test["phase"] == "Succeeded"
    assert started_pods(kubelet, ns) == ["test-g1", first["podName"], test["podName"], again["podName"]]
    assert [h["run"] for h in again["history"]] == [first["run"]]


def test_concurrency_limit_queues_the_second_run_of_a_name(api_env) -> None:
    cluster, ns, op, kubelet = api_env
    spec = {"name": "deploy", "concurrency": {"limit": 1}}
    one = operating.pipeline(
        "deploy-1", {**spec, "steps": [{"name": "d", "image": BUSYBOX, "commands": ["sleep 2"]}]}
    )
    apply(cluster, ns, one)
    wait_for(lambda: status(cluster, ns, "deploy-1").get("phase") == "Running", what="deploy-1 to run")
    two = operating.pipeline(
        "deploy-2", {**spec, "steps": [{"name": "d", "image": BUSYBOX, "commands": ["true"]}]}
    )
    apply(cluster, ns, two)
    queued = wait_for(lambda: (s := status(cluster, ns, "deploy-2")).get("reason") == "Queued" and s)
    assert 'concurrency.limit: 1 run of pipeline "deploy"' in queued["message"]
    wait_for_phase(cluster, ns, "deploy-1", operator=op)
    assert wait_for_phase(cluster, ns, "deploy-2", operator=op)["phase"] == "Succeeded"
    assert started_pods(kubelet, ns) == ["deploy-1-g1", "deploy-2-g1"]
