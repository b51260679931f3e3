"""The Kubernetes objects of a run: the pod, the generated pull Secret, and the patches that drive the pod.

Golden tests render realistic Pipelines (``testdata/<case>.pipeline.yaml``) exactly as the operator
would create them at the start of a run, and compare with ``<case>.pod.yaml`` (and ``<case>.secret.yaml``).
Steps that name no command of their own run their image's, from ``testdata/image-configs.yaml``.
Regenerate after an intended change with ``UPDATE_GOLDEN=1 pytest tests/core/test_pod_building.py``
and review the diff.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from podline.core import auths, compiling, conventions, models, plans, pods, policies, scheduling, stepping

from tests.core.podstates import Config

TESTDATA = Path(__file__).parent / "testdata"
CASES = sorted(p.name.removesuffix(".pipeline.yaml") for p in TESTDATA.glob("*.pipeline.yaml"))
IMAGE_CONFIGS = {
    image: Config(tuple(c.get("entrypoint") or ()), tuple(c.get("cmd") or ()))
    for image, c in yaml.safe_load((TESTDATA / "image-configs.yaml").read_text()).items()
}
UID = "6f1c2b7e-0d3a-4c55-9a61-2f0e8d9b1c44"
NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
POLICY = policies.Policy()


def source_secret(doc: dict[str, Any]) -> auths.SourceSecret:
    data = {k: base64.b64decode(v) for k, v in (doc.get("data") or {}).items()}
    data.update({k: str(v).encode() for k, v in (doc.get("stringData") or {}).items()})
    return auths.SourceSecret(name=doc["metadata"]["name"], type=doc.get("type", "Opaque"), data=data)


def render(case: str) -> dict[str, dict[str, Any]]:
    """The objects the operator creates for the case's Pipeline at the start of its run, by kind."""
    docs = [d for d in yaml.safe_load_all((TESTDATA / f"{case}.pipeline.yaml").read_text()) if d]
    secrets = {d["metadata"]["name"]: source_secret(d) for d in docs if d["kind"] == "Secret"}
    (pipeline,) = [d for d in docs if d["kind"] == conventions.KIND]
    meta = pipeline["metadata"]
    notes = meta.get("annotations") or {}
    build = notes.get(conventions.ANNOTATION_BUILD)
    context = compiling.RunContext(
        namespace=meta["namespace"],
        pipeline=meta["name"],
        uid=UID,
        generation=meta.get("generation", 1),
        build=models.BuildInfo.model_validate_json(build) if build else None,
    )
    plan = compiling.compile_spec(pipeline["spec"], context, POLICY)
    credentials = (
        auths.convert([secrets[s] for s in plan.pull_secret_sources]) if plan.pull_secret_sources else None
    )
    configs = {image: IMAGE_CONFIGS[image] for image in plan.needs_image_config()}
    decision = scheduling.decide(
        scheduling.Snapshot(
            plan=plan,
            pod=None,
            now=NOW,
            generation=context.generation,
            run=context.run,
            credentials=credentials,
            image_configs=configs,
        )
    )
    return {obj["kind"].lower(): obj for obj in decision.create}


def dump(obj: dict[str, Any]) -> str:
    return yaml.safe_dump(obj, sort_keys=False, width=120, allow_unicode=True)


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str) -> None:
    rendered = render(case)
    assert set(rendered) <= {"pod", "secret"}
    for kind in ("pod", "secret"):
        golden = TESTDATA / f"{case}.{kind}.yaml"
        if os.environ.get("UPDATE_GOLDEN") == "1":
            if kind in rendered:
                golden.write_text(dump(rendered[kind]))
            else:
                golden.unlink(missing_ok=True)
        if kind not in rendered:
            assert not golden.exists(), f"{golden.name} exists but nothing of that kind is rendered"
            continue
        assert golden.exists(), f"{golden.name} is missing; run UPDATE_GOLDEN=1 pytest {__file__}"
        assert dump(rendered[kind]) == golden.read_text(), (
            f"{golden.name} differs from the rendered {kind}; if intended, run UPDATE_GOLDEN=1 pytest {__file__}"
        )


@pytest.mark.parametrize("case", CASES)
def test_rendered_pods_follow_the_in_pod_contract(case: str) -> None:
    """docs/in-pod.md: the prepare container first; every step wrapped by the entrypoint, with the tools volume
    and its result as a termination message; services as they are."""
    pod = render(case)["pod"]
    first, *rest = pod["spec"]["containers"]
    assert first["name"] == stepping.PREPARE_CONTAINER and first["image"] == POLICY.runner_image
    assert {"name": stepping.TOOLS_VOLUME, "emptyDir": {}} in pod["spec"]["volumes"]
    for c in rest:
        tools = {"name": stepping.TOOLS_VOLUME, "mountPath": stepping.TOOLS_DIR} in c["volumeMounts"]
        if c["name"].startswith(conventions.CONTAINER_SERVICE_PREFIX):
            assert not tools and c.get("command") != [stepping.BINARY] and "terminationMessagePolicy" not in c
            continue
        assert tools and c["command"] == [stepping.BINARY]
        assert (c["terminationMessagePath"], c["terminationMessagePolicy"]) == (
            stepping.TERMINATION_LOG,
            "File",
        )
        args = stepping.parse_args(c["args"])
        assert args.name == c["name"]
        if args.excluded:  # skipped in its turn, on the runner image: nothing to run
            assert (args.command, c["image"]) == ((), POLICY.runner_image)
        else:
            assert args.command, c["name"]


def test_golden_cases_exist() -> None:
    assert {"go-build", "services", "plugin-settings", "private-registry", "dag"} <= set(CASES)
    assert (TESTDATA / "private-registry.secret.yaml").exists()


@pytest.mark.parametrize("case", CASES)
def test_rendering_is_deterministic(case: str) -> None:
    assert dump(render(case)["pod"]) == dump(render(case)["pod"])


@pytest.mark.parametrize("case", CASES)
def test_rendered_objects_have_kubernetes_shape(case: str) -> None:
    """What the apiserver would reject anyway: duplicate names, missing fields, values that are not strings."""
    pod = render(case)["pod"]
    spec = pod["spec"]
    names = [c["name"] for c in spec["containers"]]
    assert len(names) == len(set(names))
    assert all(len(n) <= 63 for n in names)
    volumes = [v["name"] for v in spec["volumes"]]
    assert len(volumes) == len(set(volumes))
    for c in spec["containers"]:
        assert c["imagePullPolicy"] in ("Always", "IfNotPresent", "Never")
        mounts = [m["mountPath"] for m in c["volumeMounts"]]
        assert len(mounts) == len(set(mounts)), c["name"]
        assert {m["name"] for m in c["volumeMounts"]} <= set(volumes)
        env = [e["name"] for e in c.get("env", [])]
        assert len(env) == len(set(env)), c["name"]
        for e in c.get("env", []):
            assert isinstance(e.get("value", ""), str)
            assert ("value" in e) != ("valueFrom" in e)
    assert all(isinstance(v, str) for v in pod["metadata"]["labels"].values())
    assert all(isinstance(v, str) for v in pod["metadata"]["annotations"].values())


# --- The pod, field by field ------------------------------------------------------------------------------------

CONTEXT = compiling.RunContext(namespace="ci", pipeline="demo", uid="uid-1", generation=2)
RUNNER = POLICY.runner_image


def plan_of(*steps: dict[str, Any], policy: policies.Policy = POLICY, **fields: Any) -> plans.RunPlan:
    return compiling.compile_spec({"steps": list(steps), **fields}, CONTEXT, policy)


def step(name: str = "build", image: str = "golang:1.22", **fields: Any) -> dict[str, Any]:
    return {"name": name, "image": image, "commands": ["go build"], **fields}


def containers(pod: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in pod["spec"]["containers"]}


def test_every_container_runs_its_own_image_after_the_prepare_container() -> None:
    spec = {
        "steps": [
            step("a"),
            step("b", "alpine:3.20", pull="never"),
            step("c", "busybox:1.36", pull="always", when={"branch": "release/*"}),
        ],
        "services": [{"name": "db", "image": "postgres:16"}],
    }
    context = dataclasses.replace(CONTEXT, build=models.BuildInfo(branch="main"))
    plan = compiling.compile_spec(spec, context, POLICY)
    got = containers(pods.build_pod(plan))
    assert {n: (c["image"], c["imagePullPolicy"]) for n, c in got.items()} == {
        "podline-prepare": (RUNNER, "IfNotPresent"),
        "svc-db": ("postgres:16", "IfNotPresent"),
        "step-a": ("golang:1.22", "IfNotPresent"),
        "step-b": ("alpine:3.20", "Never"),
        # excluded by `when`: it never runs, so it skips itself on the runner image, which is on the node already
        "step-c": (RUNNER, "IfNotPresent"),
    }
    assert list(got) == ["podline-prepare", "svc-db", "step-a", "step-b", "step-c"]


def test_the_prepare_container_installs_the_entrypoint_from_its_post_start_hook() -> None:
    prepare = pods.build_pod(plan_of(step()))["spec"]["containers"][0]
    assert prepare == {
        "name": "podline-prepare",
        "image": RUNNER,
        "imagePullPolicy": "IfNotPresent",
        "command": ["/podline-entrypoint", "prepare", "/podline"],
        "lifecycle": {"postStart": {"exec": {"command": ["/podline-entrypoint", "install", "/podline"]}}},
        "volumeMounts": [{"name": "podline-tools", "mountPath": "/podline"}],
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "capabilities": {"drop": ["ALL"]},
        },
    }


@pytest.mark.parametrize(
    ("runner", "policy"),
    [
        ("podline/podline:0.1.0", "IfNotPresent"),
        ("localhost:5101/podline:latest", "Always"),
        ("registry.local/podline@sha256:" + "a" * 64, "IfNotPresent"),
    ],
)
def test_the_runner_image_gets_the_default_pull_policy(runner: str, policy: str) -> None:
    plan = plan_of(step(), policy=dataclasses.replace(POLICY, runner_image=runner))
    prepare = pods.build_pod(plan)["spec"]["containers"][0]
    assert (prepare["image"], prepare["imagePullPolicy"]) == (runner, policy)


def test_a_step_is_wrapped_by_the_entrypoint_with_its_turn_and_its_command() -> None:
    plan = plan_of(step("a"), step("b", depends_on=["a"], failure="ignore"))
    b = containers(pods.build_pod(plan))["step-b"]
    assert b["command"] == [stepping.BINARY]
    assert b["args"] == [
        "run",
        "--name=step-b",
        "--after=step-a",
        "--on=success",
        "--ignore-failure",
        "--message-limit=4096",
        "--log-dir=/podline/logs",
        f"--log-limit={policies.DEFAULT_LOG_LIMIT}",
        "--",
        "/bin/sh",
        "-c",
        compiling.script(["go build"]),
    ]
    assert (b["terminationMessagePath"], b["terminationMessagePolicy"]) == ("/dev/termination-log", "File")
    assert {"name": "podline-tools", "mountPath": "/podline"} in b["volumeMounts"]


def test_a_service_runs_as_it_is() -> None:
    plan = plan_of(
        step(),
        services=[
            {"name": "db", "image": "postgres:16", "command": ["-c", "fsync=off"]},
            {"name": "cache", "image": "redis:7", "entrypoint": ["redis-server"]},
        ],
    )
    got = containers(pods.build_pod(plan))
    db, cache = got["svc-db"], got["svc-cache"]
    assert ("command" not in db, db["args"]) == (True, ["-c", "fsync=off"])
    assert (cache["command"], "args" not in cache) == (["redis-server"], True)
    for service in (db, cache):
        assert [m["name"] for m in service["volumeMounts"]] == ["podline-workspace"]
        assert "terminationMessagePolicy" not in service


@pytest.mark.parametrize(
    ("desc", "fields", "config", "want"),
    [
        (
            "plugin-runs-entrypoint-and-cmd",
            {},
            Config(("/bin/drone-docker",), ("--daemon",)),
            ["/bin/drone-docker", "--daemon"],
        ),
        (
            "command-alone-replaces-the-cmd",
            {"command": ["--tls=false"]},
            Config(("dockerd-entrypoint.sh",), ("dockerd",)),
            ["dockerd-entrypoint.sh", "--tls=false"],
        ),
        ("cmd-only-image", {}, Config((), ("/bin/run", "x")), ["/bin/run", "x"]),
        ("entrypoint-needs-no-config", {"entrypoint": ["/bin/x"], "command": ["y"]}, None, ["/bin/x", "y"]),
        (
            "commands-need-no-config",
            {"commands": ["true"], "image": "docker:dind"},
            None,
            ["/bin/sh", "-c", compiling.script(["true"])],
        ),
    ],
)
def test_what_a_step_runs(desc: str, fields: dict[str, Any], config: Config | None, want: list[str]) -> None:
    plan = plan_of({"name": "p", "image": "docker:dind", **fields})
    configs = {"docker:dind": config} if config else {}
    assert plan.needs_image_config() == (("docker:dind",) if config else ())
    args = containers(pods.build_pod(plan, image_configs=configs))["step-p"]["args"]
    assert args[args.index("--") + 1 :] == want


def test_a_step_without_a_command_needs_its_image_config() -> None:
    plan = plan_of({"name": "p", "image": "plugins/docker"})
    with pytest.raises(ValueError, match="ENTRYPOINT/CMD are needed"):
        pods.build_pod(plan)


@pytest.mark.parametrize(("steps", "limit"), [(1, 4096), (2, 4096), (3, 3072), (11, 1024), (200, 61)])
def test_each_step_is_told_its_share_of_the_termination_messages(steps: int, limit: int) -> None:
    plan = plan_of(*[step(f"s{i}") for i in range(steps)], policy=dataclasses.replace(POLICY, max_steps=300))
    for c in pods.build_pod(plan)["spec"]["containers"][1:]:
        assert f"--message-limit={limit}" in c["args"]


def test_pod_spec_fields() -> None:
    policy = dataclasses.replace(POLICY, allowed_service_accounts=frozenset({"*"}), run_timeout_seconds=1800)
    plan = plan_of(
        step(),
        image_pull_secrets=["dockerconfig"],
        service_account_name="builder",
        node_selector={"pool": "ci"},
        tolerations=[{"operator": "Exists"}],
        policy=policy,
    )
    spec = pods.build_pod(plan)["spec"]
    assert {k: v for k, v in spec.items() if k not in ("containers", "volumes")} == {
        "restartPolicy": "Never",
        "activeDeadlineSeconds": 1800,
        "terminationGracePeriodSeconds": 10,
        "enableServiceLinks": False,
        "automountServiceAccountToken": False,
        "serviceAccountName": "builder",
        "imagePullSecrets": [{"name": "demo-g2-pull"}],
        "nodeSelector": {"pool": "ci"},
        "tolerations": [{"operator": "Exists"}],
    }
    assert spec["volumes"] == [
        {"name": "podline-workspace", "emptyDir": {}},
        {"name": "podline-tools", "emptyDir": {}},
    ]


def test_optional_pod_fields_are_left_out() -> None:
    spec = pods.build_pod(plan_of(step()))["spec"]
    assert not {"serviceAccountName", "imagePullSecrets", "nodeSelector", "tolerations"} & set(spec)


def test_metadata_links_the_pod_to_its_pipeline() -> None:
    plan = plan_of(
        step(),
        metadata={
            "labels": {"team": "x", "app.kubernetes.io/managed-by": "me"},
            "annotations": {"note": "n"},
        },
    )
    meta = pods.build_pod(plan)["metadata"]
    assert meta == {
        "name": "demo-g2",
        "namespace": "ci",
        "labels": {
            "team": "x",
            "app.kubernetes.io/managed-by": "podline",  # podline's own labels win
            "podline.dev/pipeline": "demo",
            "podline.dev/pipeline-uid": "uid-1",
            "podline.dev/run": "g2",
            "podline.dev/component": "run-pod",
        },
        "annotations": {"podline.dev/pipeline-name": "demo", "note": "n", "podline.dev/generation": "2"},
        "ownerReferences": [
            {
                "apiVersion": "podline.dev/v1alpha1",
                "kind": "Pipeline",
                "name": "demo",
                "uid": "uid-1",
                "controller": True,
            }
        ],
    }


def test_a_long_pipeline_name_is_shortened_in_the_label_and_kept_in_the_annotation() -> None:
    name = "a-very-long-pipeline-name-" * 4
    plan = compiling.compile_spec({"steps": [step()]}, dataclasses.replace(CONTEXT, pipeline=name), POLICY)
    meta = pods.build_pod(plan)["metadata"]
    assert len(meta["labels"]["podline.dev/pipeline"]) <= 63
    assert meta["annotations"]["podline.dev/pipeline-name"] == name


def test_from_secret_variables_are_masked_by_name() -> None:
    """Every ``from_secret`` variable of a step (environment, pipeline environment, plugin settings) is
    named in a ``--mask`` argument, so the entrypoint masks its value in the output (Drone masks a step's
    secrets: drone/runner-go pipeline/runtime/execer.go, ``newReplacer(wc, secretSlice(step))``); plain
    values are not, and no value reaches the arguments."""
    plan = plan_of(
        step("a", commands=["make"], environment={"T": {"from_secret": "tok/ci"}, "P": "v"}),
        {"name": "p", "image": "plugins/x", "entrypoint": ["/bin/x"],
         "settings": {"password": {"from_secret": "tok/pw"}, "user": "ci"}},
        step("c", commands=["true"]),
        environment={"G": {"from_secret": "tok/g"}},
    )  # fmt: skip
    by_name = containers(pods.build_pod(plan))
    masks = {name: [a for a in c["args"] if a.startswith("--mask")] for name, c in by_name.items()
             if name.startswith("step-")}  # fmt: skip
    assert masks == {
        "step-a": ["--mask=G", "--mask=T"],
        "step-p": ["--mask=G", "--mask=PLUGIN_PASSWORD"],
        "step-c": ["--mask=G"],
    }
    assert stepping.parse_args(by_name["step-p"]["args"]).mask == ("G", "PLUGIN_PASSWORD")
    assert not any("tok" in arg for c in by_name.values() for arg in c.get("args", ()))


def test_container_fields() -> None:
    policy = dataclasses.replace(POLICY, allow_privileged=True)
    plan = plan_of(
        step(
            "a",
            commands=["make"],
            user=1000,
            group=1000,
            environment={"T": {"from_secret": "tok/ci"}, "P": "v"},
            resources={"limits": {"memory": "1GiB"}, "requests": {"memory": "512MiB"}},
            volumes=[{"name": "cache", "path": "/cache"}],
        ),
        {"name": "b", "image": "docker:dind", "privileged": True, "command": ["--tls=false"]},
        volumes=[{"name": "cache", "temp": {}}],
        policy=policy,
    )
    pod = pods.build_pod(
        plan, image_configs={"docker:dind": Config(("dockerd-entrypoint.sh",), ("dockerd",))}
    )
    a, b = containers(pod)["step-a"], containers(pod)["step-b"]
    assert a["command"] == [stepping.BINARY]
    assert a["args"][a["args"].index("--") + 1 :] == ["/bin/sh", "-c", compiling.script(["make"])]
    assert [e for e in a["env"] if e["name"] in ("T", "P")] == [
        {"name": "T", "valueFrom": {"secretKeyRef": {"name": "tok", "key": "ci"}}},
        {"name": "P", "value": "v"},
    ]
    assert a["workingDir"] == "/drone/src"
    assert a["volumeMounts"] == [
        {"name": "podline-workspace", "mountPath": "/drone/src"},
        {"name": "podline-tools", "mountPath": "/podline"},
        {"name": "v-cache", "mountPath": "/cache"},
    ]
    assert a["resources"] == {"limits": {"memory": "1Gi"}, "requests": {"memory": "512Mi"}}
    assert a["securityContext"] == {
        "privileged": False,
        "allowPrivilegeEscalation": False,
        "runAsUser": 1000,
        "runAsGroup": 1000,
    }
    assert b["command"] == [stepping.BINARY]
    assert b["args"][b["args"].index("--") + 1 :] == ["dockerd-entrypoint.sh", "--tls=false"]
    assert "resources" not in b
    assert b["securityContext"] == {"privileged": True}


def test_transformers_run_last_in_order() -> None:
    def add_label(pod: dict[str, Any]) -> dict[str, Any]:
        pod["metadata"]["labels"]["site"] = "x"
        return pod

    def limit_everything(pod: dict[str, Any]) -> dict[str, Any]:
        for c in pod["spec"]["containers"]:
            c.setdefault("resources", {})["limits"] = {"cpu": "1"}
        pod["metadata"]["labels"]["site"] += "y"
        return pod

    pod = pods.build_pod(plan_of(step()), transformers=[add_label, limit_everything])
    assert pod["metadata"]["labels"]["site"] == "xy"
    assert [c["resources"] for c in pod["spec"]["containers"]] == [{"limits": {"cpu": "1"}}] * 2


# --- The generated pull Secret --------------------------------------------------------------------------------


def credentials() -> auths.Credentials:
    config = b'{"auths": {"registry.example.com": {"username": "u", "password": "p"}}}'
    return auths.convert([auths.SourceSecret("dockerconfig", "Opaque", {"config.json": config})])


def test_pull_secret_manifest() -> None:
    plan = plan_of(step(), image_pull_secrets=["dockerconfig"])
    secret = pods.build_pull_secret(plan, credentials())
    assert secret["type"] == "kubernetes.io/dockerconfigjson"
    assert secret["metadata"]["name"] == "demo-g2-pull"
    assert secret["metadata"]["labels"]["podline.dev/component"] == "pull-secret"
    assert secret["metadata"]["annotations"]["podline.dev/sources"] == "dockerconfig"
    assert secret["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    document = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))
    assert document == {"auths": {"registry.example.com": {"username": "u", "password": "p", "auth": "dTpw"}}}
    assert pods.build_pod(plan)["spec"]["imagePullSecrets"] == [{"name": secret["metadata"]["name"]}]


def test_no_pull_secret_without_image_pull_secrets() -> None:
    with pytest.raises(ValueError, match="no image_pull_secrets"):
        pods.build_pull_secret(plan_of(step()), credentials())


# --- Patches ------------------------------------------------------------------------------------------------------


def test_a_stand_in_patch_records_why_and_gives_the_runner_image() -> None:
    plan = plan_of(step("a"), step("b"))
    notes = {"step-a": pods.failure_note("ErrImagePull", "not found"), "step-b": "ErrImageNeverPull"}
    assert pods.stand_in_patch(plan, notes, swap=["step-a", "step-b"]) == {
        "metadata": {
            "annotations": {
                "killed.podline.dev/step-a": '{"message":"not found","reason":"ErrImagePull"}',
                "killed.podline.dev/step-b": "ErrImageNeverPull",
            }
        },
        "spec": {"containers": [{"name": "step-a", "image": RUNNER}, {"name": "step-b", "image": RUNNER}]},
    }
    # Recording a failure without a stand-in (a missing Secret: no image would help) touches no container.
    assert pods.stand_in_patch(plan, {"step-a": "CreateContainerConfigError"}, swap=()) == {
        "metadata": {"annotations": {"killed.podline.dev/step-a": "CreateContainerConfigError"}}
    }


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("ErrImagePull", ("ErrImagePull", None)),
        (pods.failure_note("ErrImagePull", 'image "x": not found'), ("ErrImagePull", 'image "x": not found')),
        ('{"message":"m"}', ("Failed", "m")),
        ("{not json", ("{not json", None)),
    ],
)
def test_parse_failure_note(value: str, parsed: tuple[str, str | None]) -> None:
    assert pods.parse_failure_note(value) == parsed


def test_stop_patch_ends_the_pod_and_keeps_it() -> None:
    assert pods.stop_patch("Cancelled") == {
        "metadata": {"annotations": {"podline.dev/stopped": "Cancelled"}},
        "spec": {"activeDeadlineSeconds": 1},
    }


def test_merge_patches_merges_annotations_and_containers_by_name() -> None:
    merged = pods.merge_patches(
        [
            {"metadata": {"annotations": {"a": "1"}}, "spec": {"containers": [{"name": "x", "image": "i1"}]}},
            {
                "metadata": {"annotations": {"b": "2"}, "resourceVersion": "5"},
                "spec": {"activeDeadlineSeconds": 1},
            },
            {"spec": {"containers": [{"name": "x", "image": "i2"}, {"name": "y", "image": "j"}]}},
        ]
    )
    assert merged == {
        "metadata": {"annotations": {"a": "1", "b": "2"}, "resourceVersion": "5"},
        "spec": {
            "activeDeadlineSeconds": 1,
            "containers": [{"name": "x", "image": "i2"}, {"name": "y", "image": "j"}],
        },
    }
    assert pods.merge_patches([]) is None
    assert pods.merge_patches([{}]) is None
