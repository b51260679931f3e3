"""The operator on the api tier: real apiserver, real watches, pod statuses from the scripted kubelet.

Each test applies Pipelines with kubectl and reads what the operator wrote. The scripted kubelet (a test
double of the kubelet and the in-pod entrypoint, see tests/cluster/scripted_kubelet.py) runs every container
of the pod from its creation and sequences the steps inside it as the entrypoint does (``stepping.decide``):
a step's command "runs" for the time found in its script (`sleep S`) and exits with the code found there
(`exit N`); its result reaches the operator as the container's termination message. The api tier has no
registry, so steps name their command (``commands:`` or ``entrypoint:``); a step that needs its image's own
ENTRYPOINT/CMD is tried against a loopback registry without the image (``operating.EmptyRegistry``) and fails
the run as designed (ImageConfigUnavailable).
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
    # every container ran its own image from the pod's creation, once; the commands ran once each, in order
    containers = kubelet.instances(ns, "seq-g1", kind="container")
    assert [i.container for i in containers] == ["podline-prepare", "step-one", "step-two", "step-three"]
    assert {i.image for i in containers if i.container.startswith("step-")} == {BUSYBOX}
    assert kubelet.commands(ns, "seq-g1") == ["step-one", "step-two", "step-three"]
    one, two, three = st["steps"]
    assert one["finishedAt"] <= two["startedAt"] and two["finishedAt"] <= three["startedAt"]
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
    by = steps(st)
    # a and b are ready at once and run together (times in ms, from the steps' results)
    assert by["a"]["startedAt"] < by["b"]["finishedAt"] and by["b"]["startedAt"] < by["a"]["finishedAt"], by
    assert by["c"]["startedAt"] >= max(by["a"]["finishedAt"], by["b"]["finishedAt"])
    assert sorted(kubelet.commands(ns, "dag-g1")[:2]) == ["step-a", "step-b"]


def test_services_run_from_the_start_and_are_not_waited_for(api_env) -> None:
    cluster, ns, op, kubelet = api_env
    apply(
        cluster,
        ns,
        pipeline("svc", {"services": [{"name": "db", "image": "redis:7"}], "steps": [step("use", "true")]}),
    )
    st = wait_for_phase(cluster, ns, "svc", operator=op)
    assert st["phase"] == "Succeeded"
    assert st["services"][0]["name"] == "db"
    assert kubelet.instances(ns, "svc-g1", kind="container")[1].container == "svc-db"
    pod = operating.get(cluster, ns, "pod", "svc-g1")
    assert pod["spec"]["activeDeadlineSeconds"] == 1, "the finished run's pod is stopped, services with it"
    assert pod["metadata"]["annotations"]["podline.dev/stopped"] == "Completed"


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
    cluster, ns, _op, _ = api_env
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
    cluster, ns, op, _kubelet = api_env
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
    cluster, ns, _op, _ = api_env
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


def test_a_step_whose_image_cannot_be_pulled_fails_in_its_turn(api_env) -> None:
    """The kubelet reports "not found" (permanent): the operator gives the container the runner image, which
    records the failure in the step's turn, so the steps after it go on (docs/in-pod.md, stand-in)."""
    cluster, ns, op, kubelet = api_env
    spec = {"steps": [step("first", "sleep 0.5"), step("build", image="registry.example.com/notfound:1"),
                      step("test", "true"), step("notify", "true", when={"status": ["failure"]})]}  # fmt: skip
    apply(cluster, ns, pipeline("unpullable", spec))
    st = wait_for_phase(cluster, ns, "unpullable", operator=op)
    by = steps(st)
    assert st["phase"] == "Failed" and 'step "build" failed' in st["message"], st
    assert by["first"]["state"] == "succeeded"
    assert by["build"]["state"] == "failed" and by["build"]["reason"] in (
        "ErrImagePull",
        "ImagePullBackOff",
    ), by
    assert "not found" in by["build"]["message"] and "image_pull_secrets" in by["build"]["message"]
    assert by["build"]["startedAt"] >= by["first"]["finishedAt"], "it failed in its turn, not before"
    assert by["test"]["state"] == "skipped" and by["notify"]["state"] == "succeeded"
    pod = operating.get(cluster, ns, "pod", "unpullable-g1")
    runner = pod["spec"]["containers"][0]["image"]
    assert {c["name"]: c["image"] for c in pod["spec"]["containers"]}["step-build"] == runner
    assert "killed.podline.dev/step-build" in pod["metadata"]["annotations"]
    assert kubelet.commands(ns, "unpullable-g1") == ["step-first", "step-notify"]


def test_a_step_whose_images_command_cannot_be_read_fails_the_run(api_env) -> None:
    """A plugin (no commands) runs its image's ENTRYPOINT/CMD, which only its registry can tell: a registry
    without the image (the api tier has none but this loopback one) fails the run before any pod, saying
    what to set instead."""
    cluster, ns, op, _ = api_env
    registry = operating.EmptyRegistry()
    try:
        spec = {"steps": [step("a", "true"), {"name": "publish", "image": registry.image("plugins/docker:20"),
                                              "settings": {"repo": "team/app"}}]}  # fmt: skip
        apply(cluster, ns, pipeline("plugin", spec))
        st = wait_for_phase(cluster, ns, "plugin", operator=op)
    finally:
        registry.close()
    assert st["phase"] == "Failed" and st["reason"] == "ImageConfigUnavailable", st
    assert 'step "publish"' in st["message"] and "set commands: or entrypoint: on the step" in st["message"]
    assert "plugin-g1" not in cluster.kubectl("get", "pods", "-n", ns, "-o", "name").stdout


def test_entrypoint_and_command_run_as_given(api_env) -> None:
    cluster, ns, op, kubelet = api_env
    spec = {"steps": [{"name": "tool", "image": BUSYBOX, "entrypoint": ["/bin/sh", "-c"],
                       "command": ["sleep 0.2; exit 4"]}]}  # fmt: skip
    apply(cluster, ns, pipeline("entry", spec))
    st = wait_for_phase(cluster, ns, "entry", operator=op)
    assert st["phase"] == "Failed" and steps(st)["tool"]["exitCode"] == 4, st
    pod = operating.get(cluster, ns, "pod", "entry-g1")
    [tool] = [c for c in pod["spec"]["containers"] if c["name"] == "step-tool"]
    assert tool["command"] == ["/podline/bin/entrypoint"]
    assert tool["args"][-4:] == ["--", "/bin/sh", "-c", "sleep 0.2; exit 4"]
    assert kubelet.commands(ns, "entry-g1") == ["step-tool"]


def test_a_step_excluded_by_when_is_skipped_in_its_turn(api_env) -> None:
    cluster, ns, op, kubelet = api_env
    build = json.dumps({"number": 7, "event": "push", "branch": "main"})
    spec = {"steps": [step("test", "true"), step("release", "true", when={"branch": ["release/*"]}),
                      step("after", "true")]}  # fmt: skip
    apply(cluster, ns, pipeline("excluded", spec, {"podline.dev/build": build}))
    st = wait_for_phase(cluster, ns, "excluded", operator=op)
    by = steps(st)
    assert st["phase"] == "Succeeded", st
    assert by["release"]["state"] == "skipped" and "when" in by["release"]["message"], by["release"]
    assert by["after"]["state"] == "succeeded"
    assert kubelet.commands(ns, "excluded-g1") == ["step-test", "step-after"]


def test_a_step_killed_before_it_could_record_its_result_ends_the_run(api_env) -> None:
    """A step container killed outright (the OOM killer: no termination message, no result file) leaves the
    steps after it waiting for a result that never comes; the operator stops the pod instead of letting the
    run hang until its timeout, and the run fails with the kubelet's reason."""
    cluster, ns, op, kubelet = api_env

    def oom(status: dict[str, object]) -> dict[str, object]:
        for found in status["containerStatuses"]:  # type: ignore[attr-defined]
            if found["name"] == "step-big" and "terminated" in found["state"]:
                found["state"]["terminated"]["reason"] = "OOMKilled"
        return status

    kubelet.hook(ns, "oom-g1", oom)
    apply(cluster, ns, pipeline("oom", {"steps": [step("big", "sleep 600"), step("after", "true"),
                                                  step("notify", "true", when={"status": ["failure"]})]}))  # fmt: skip
    wait_for(lambda: steps(status(cluster, ns, "oom")).get("big", {}).get("state") == "running",
             what="the big step to run")  # fmt: skip
    kubelet.terminate(ns, "oom-g1", "step-big", exit_code=137)
    st = wait_for_phase(cluster, ns, "oom", operator=op, timeout=60)
    by = steps(st)
    assert st["phase"] == "Failed" and 'step "big" failed (exit code 137)' in st["message"], st
    assert by["big"]["state"] == "failed" and by["big"]["reason"] == "OOMKilled", by["big"]
    assert by["after"]["state"] == "skipped" and by["notify"]["state"] == "skipped", by
    pod = operating.get(cluster, ns, "pod", "oom-g1")
    assert "podline.dev/stopped" in pod["metadata"]["annotations"], "the operator stopped the pod"
    assert kubelet.commands(ns, "oom-g1") == ["step-big"]


def test_a_detached_step_still_running_at_the_end_is_stopped_with_the_pod_and_no_failure(api_env) -> None:
    cluster, ns, op, kubelet = api_env
    spec = {"steps": [step("server", "sleep 600", detach=True), step("client", "sleep 0.5")]}
    apply(cluster, ns, pipeline("detached", spec))
    st = wait_for_phase(cluster, ns, "detached", operator=op)
    assert st["phase"] == "Succeeded", st
    wait_for(lambda: operating.get(cluster, ns, "pod", "detached-g1")["status"].get("phase") == "Failed",
             what="the pod to be stopped, the detached step with it")  # fmt: skip
    assert kubelet.wait_idle()
    wait_for(lambda: True, timeout=2)  # the operator's look at the stopped pod
    again = status(cluster, ns, "detached")
    by = steps(again)
    assert again["phase"] == "Succeeded" and again["completionTime"] == st["completionTime"], again
    assert by["server"]["state"] == "succeeded" and by["server"]["reason"] == "Detached", by["server"]
    assert by["client"]["state"] == "succeeded"
    assert kubelet.commands(ns, "detached-g1") == ["step-server", "step-client"]
