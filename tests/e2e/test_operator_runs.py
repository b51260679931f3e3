"""The operator on the api tier: real apiserver, real watches, pod statuses from the scripted kubelet.

Each test applies Pipelines with kubectl and reads what the operator wrote. The scripted kubelet (a test
double, see tests/cluster/scripted_kubelet.py) runs a step by terminating its container with the exit code
found in its script (`exit N`) after the time found there (`sleep S`).
"""

from __future__ import annotations

import json

import pytest

from tests.e2e import operating
from tests.e2e.operating import apply, pipeline, status, steps, wait_for, wait_for_phase

pytestmark = pytest.mark.api
BUSYBOX = "busybox:1.36"


def step(name: str, *commands: str, **extra: object) -> dict[str, object]:
    return {"name": name, "image": BUSYBOX, "commands": list(commands) or ["true"], **extra}


def test_sequential_pipeline_succeeds_with_per_step_status(api_env) -> None:
    cluster, ns, op, kubelet = api_env
    apply(
        cluster,
        ns,
        pipeline("seq", {"steps": [step("one", "echo 1"), step("two", "echo 2"), step("three", "echo 3")]}),
    )
    st = wait_for_phase(cluster, ns, "seq", operator=op)
    assert st["phase"] == "Succeeded", st
    assert [s["state"] for s in st["steps"]] == ["succeeded"] * 3
    assert all(s["exitCode"] == 0 and s.get("startedAt") and s.get("finishedAt") for s in st["steps"])
    assert st["observedGeneration"] == 1 and st["podName"] == "seq-g1"
    ready = {c["type"]: c["status"] for c in st["conditions"]}
    assert ready["Ready"] == "True" and ready["Succeeded"] == "True" and ready["Stalled"] == "False"
    # started strictly in order: each step's container instance started after the previous one's
    started = [i for i in kubelet.instances(ns, "seq-g1") if not i.image.endswith("placeholder:1")]
    assert [i.container for i in started] == ["step-one", "step-two", "step-three"]
    events = json.loads(cluster.kubectl("get", "events", "-n", ns, "-o", "json").stdout)["items"]
    reasons = [e["reason"] for e in events if e["involvedObject"]["name"] == "seq"]
    assert sorted(reasons) == ["Started", "Succeeded"]


def test_failure_runs_failure_steps_and_skips_the_rest(api_env) -> None:
    cluster, ns, op, _ = api_env
    spec = {
        "steps": [
            step("build", "exit 2"),
            step("test", "echo never"),
            step("ignored", "exit 1", failure="ignore", when={"status": ["success", "failure"]}),
            step("notify", "echo failed", when={"status": ["failure"]}),
        ]
    }
    apply(cluster, ns, pipeline("fails", spec))
    st = wait_for_phase(cluster, ns, "fails", operator=op)
    by = steps(st)
    assert st["phase"] == "Failed" and 'step "build" failed (exit code 2)' in st["message"]
    assert by["build"]["state"] == "failed" and by["build"]["exitCode"] == 2
    assert by["test"]["state"] == "skipped"
    assert by["ignored"]["state"] == "failed" and by["ignored"]["exitCode"] == 1
    assert by["notify"]["state"] == "succeeded"


def test_failure_ignore_does_not_fail_the_run(api_env) -> None:
    cluster, ns, op, _ = api_env
    apply(
        cluster,
        ns,
        pipeline("lenient", {"steps": [step("flaky", "exit 1", failure="ignore"), step("after", "true")]}),
    )
    st = wait_for_phase(cluster, ns, "lenient", operator=op)
    assert st["phase"] == "Succeeded"
    assert steps(st)["after"]["state"] == "succeeded"


def test_exit_78_ends_the_run_early_as_success(api_env) -> None:
    cluster, ns, op, _ = api_env
    apply(cluster, ns, pipeline("early", {"steps": [step("check", "exit 78"), step("deploy", "true")]}))
    st = wait_for_phase(cluster, ns, "early", operator=op)
    assert st["phase"] == "Succeeded" and st["reason"] == "EarlyExit"
    assert steps(st)["deploy"]["state"] == "skipped"


def test_depends_on_runs_ready_steps_together(api_env) -> None:
    cluster, ns, op, kubelet = api_env
    spec = {
        "steps": [
            step("a", "sleep 1"),
            step("b", "sleep 1"),
            step("c", "true", depends_on=["a", "b"]),
        ]
    }
    apply(cluster, ns, pipeline("dag", spec))
    st = wait_for_phase(cluster, ns, "dag", operator=op)
    assert st["phase"] == "Succeeded"
    pod = operating.get(cluster, ns, "pod", "dag-g1")
    notes = pod["metadata"]["annotations"]
    at = {
        k.split("/")[1]: json.loads(v)["at"] for k, v in notes.items() if k.startswith("started.podline.dev/")
    }
    assert at["step-a"] == at["step-b"], "a and b are ready at once and start in the same request"
    by = steps(st)
    assert by["c"]["startedAt"] >= max(by["a"]["finishedAt"], by["b"]["finishedAt"])


def test_services_are_started_first_and_not_waited_for(api_env) -> None:
    cluster, ns, op, _ = api_env
    apply(
        cluster,
        ns,
        pipeline("svc", {"services": [{"name": "db", "image": "redis:7"}], "steps": [step("use", "true")]}),
    )
    st = wait_for_phase(cluster, ns, "svc", operator=op)
    assert st["phase"] == "Succeeded"
    assert st["services"][0]["name"] == "db"
    pod = operating.get(cluster, ns, "pod", "svc-g1")
    assert pod["spec"]["activeDeadlineSeconds"] == 1, "the finished run's pod is stopped, services with it"


def test_run_timeout_fails_the_run(api_env) -> None:
    cluster, ns, op, _ = api_env
    apply(
        cluster, ns, pipeline("slow", {"steps": [step("wait", "sleep 600")]}, {"podline.dev/timeout": "3s"})
    )
    st = wait_for_phase(cluster, ns, "slow", operator=op)
    assert st["phase"] == "Failed" and st["reason"] == "Timeout"
    assert steps(st)["wait"]["state"] == "failed"


def test_cancel_annotation_stops_the_run(api_env) -> None:
    cluster, ns, op, _ = api_env
    apply(cluster, ns, pipeline("cancel-me", {"steps": [step("wait", "sleep 600"), step("next", "true")]}))
    wait_for(
        lambda: steps(status(cluster, ns, "cancel-me")).get("wait", {}).get("state") == "running",
        what="the first step to run",
    )
    cluster.kubectl("annotate", "-n", ns, "pipeline", "cancel-me", "podline.dev/cancel=true")
    st = wait_for_phase(cluster, ns, "cancel-me", operator=op)
    assert st["phase"] == "Cancelled"
    assert steps(st)["next"]["state"] == "skipped"
    pod = operating.get(cluster, ns, "pod", "cancel-me-g1")
    assert pod["spec"]["activeDeadlineSeconds"] == 1


def test_spec_change_starts_a_new_run_and_stops_the_old(api_env) -> None:
    cluster, ns, op, _ = api_env
    apply(cluster, ns, pipeline("evolve", {"steps": [step("wait", "sleep 600")]}))
    wait_for(lambda: status(cluster, ns, "evolve").get("phase") == "Running", what="first run running")
    apply(cluster, ns, pipeline("evolve", {"steps": [step("quick", "true")]}))
    st = wait_for(
        lambda: (
            (s := status(cluster, ns, "evolve")).get("run") == "g2" and s.get("phase") == "Succeeded" and s
        ),
        timeout=60,
        what="second run to succeed",
    )
    assert st["history"][0]["run"] == "g1"
    old = operating.get(cluster, ns, "pod", "evolve-g1")
    assert old["metadata"]["annotations"]["podline.dev/stopped"] == "Superseded"


def test_reapplying_an_unchanged_spec_does_nothing(api_env) -> None:
    cluster, ns, op, kubelet = api_env
    obj = pipeline("same", {"steps": [step("one", "true")]})
    apply(cluster, ns, obj)
    first = wait_for_phase(cluster, ns, "same", operator=op)
    apply(cluster, ns, obj)
    wait_for(lambda: True, timeout=1)
    again = status(cluster, ns, "same")
    assert again["run"] == first["run"] == "g1" and again["completionTime"] == first["completionTime"]
    pods = json.loads(cluster.kubectl("get", "pods", "-n", ns, "-o", "json").stdout)["items"]
    assert [p["metadata"]["name"] for p in pods if p["metadata"]["name"].startswith("same-")] == ["same-g1"]


def test_rerun_annotation_starts_a_new_run_of_the_same_spec(api_env) -> None:
    cluster, ns, op, _ = api_env
    apply(cluster, ns, pipeline("again", {"steps": [step("one", "true")]}))
    wait_for_phase(cluster, ns, "again", operator=op)
    cluster.kubectl("annotate", "-n", ns, "pipeline", "again", "podline.dev/rerun=1")
    st = wait_for(
        lambda: (
            (s := status(cluster, ns, "again")).get("run", "").startswith("g1-r")
            and s.get("phase") == "Succeeded"
            and s
        ),
        what="the rerun to succeed",
    )
    assert st["history"][0]["run"] == "g1"


def test_invalid_spec_fails_with_the_field_named(api_env) -> None:
    cluster, ns, op, _ = api_env
    spec = {"steps": [step("a", "true"), step("b", "true", depends_on=["tset"])]}
    apply(cluster, ns, pipeline("typo", spec))
    st = wait_for_phase(cluster, ns, "typo", operator=op)
    assert st["phase"] == "Failed" and st["reason"] == "Invalid"
    assert 'spec.steps[1].depends_on: unknown step "tset"' in st["message"]
    pods = cluster.kubectl("get", "pods", "-n", ns, "-o", "name").stdout
    assert "typo-" not in pods


def test_missing_pull_secret_fails_fast_and_a_rerun_works_once_it_exists(api_env) -> None:
    cluster, ns, op, _ = api_env
    apply(
        cluster,
        ns,
        pipeline(
            "private",
            {
                "image_pull_secrets": ["regcred"],
                "steps": [step("a", "true", image="registry.example.com/team/app:1")],
            },
        ),
    )
    st = wait_for_phase(cluster, ns, "private", operator=op)
    assert st["phase"] == "Failed" and st["reason"] == "PullSecretError"
    assert 'Secret "regcred" not found' in st["message"]
    assert "private-g1" not in cluster.kubectl("get", "pods", "-n", ns, "-o", "name").stdout
    config = {"auths": {"registry.example.com": {"username": "ci", "password": "CANARY-e2e-pw"}}}
    cluster.kubectl(
        "create", "secret", "generic", "regcred", "-n", ns, f"--from-literal=config.json={json.dumps(config)}"
    )
    cluster.kubectl("annotate", "-n", ns, "pipeline", "private", "podline.dev/rerun=1")
    st = wait_for(
        lambda: (
            (s := status(cluster, ns, "private")).get("run", "").startswith("g1-r")
            and s.get("phase") == "Succeeded"
            and s
        ),
        what="the rerun to succeed",
    )
    pod = operating.get(cluster, ns, "pod", st["podName"])
    [ref] = pod["spec"]["imagePullSecrets"]
    secret = operating.get(cluster, ns, "secret", ref["name"])
    assert secret["type"] == "kubernetes.io/dockerconfigjson"
    assert secret["metadata"]["ownerReferences"][0]["kind"] == "Pipeline"
    assert "CANARY-e2e-pw" not in json.dumps(st) and "CANARY-e2e-pw" not in op.log()


def test_deleting_the_pipeline_removes_pod_and_generated_secret(api_env) -> None:
    cluster, ns, op, _ = api_env
    config = {"auths": {"registry.example.com": {"auth": "Y2k6cHc="}}}
    cluster.kubectl(
        "create", "secret", "generic", "reg2", "-n", ns, f"--from-literal=config.json={json.dumps(config)}"
    )
    apply(
        cluster, ns, pipeline("gone", {"image_pull_secrets": ["reg2"], "steps": [step("wait", "sleep 600")]})
    )
    wait_for(lambda: status(cluster, ns, "gone").get("phase") == "Running", what="run to start")
    cluster.kubectl("delete", "-n", ns, "pipeline", "gone", "--wait=true")
    wait_for(
        lambda: "gone-g1" not in cluster.kubectl("get", "pods,secrets", "-n", ns, "-o", "name").stdout,
        timeout=60,
        what="garbage collection of the pod and the pull Secret",
    )


def test_pod_deleted_underneath_the_run_ends_it_as_error(api_env) -> None:
    cluster, ns, op, _ = api_env
    apply(cluster, ns, pipeline("victim", {"steps": [step("wait", "sleep 600")]}))
    wait_for(lambda: status(cluster, ns, "victim").get("phase") == "Running", what="run to start")
    cluster.kubectl("delete", "pod", "-n", ns, "victim-g1", "--grace-period=0", "--force")
    st = wait_for_phase(cluster, ns, "victim", operator=op)
    assert st["phase"] == "Error" and st["reason"] == "PodDeleted"
