"""The Kubernetes objects of a run: the pod, the generated pull Secret, and the patches that drive the pod.

Golden tests render realistic Pipelines (``testdata/<case>.pipeline.yaml``) exactly as the operator
would create them at the start of a run, and compare with ``<case>.pod.yaml`` (and ``<case>.secret.yaml``).
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
from podline.core import auths, compiling, conventions, models, plans, pods, policies, scheduling

TESTDATA = Path(__file__).parent / "testdata"
CASES = sorted(p.name.removesuffix(".pipeline.yaml") for p in TESTDATA.glob("*.pipeline.yaml"))
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
        namespace=meta["namespace"], pipeline=meta["name"], uid=UID, generation=meta.get("generation", 1),
        build=models.BuildInfo.model_validate_json(build) if build else None,
    )
    plan = compiling.compile_spec(pipeline["spec"], context, POLICY)
    credentials = auths.convert([secrets[s] for s in plan.pull_secret_sources]) if plan.pull_secret_sources else None
    decision = scheduling.decide(scheduling.Snapshot(plan=plan, pod=None, now=NOW, generation=context.generation,
                                                     run=context.run, credentials=credentials))
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
        env = [e["name"] for e in c["env"]]
        assert len(env) == len(set(env)), c["name"]
        for e in c["env"]:
            assert isinstance(e.get("value", ""), str)
            assert ("value" in e) != ("valueFrom" in e)
    assert all(isinstance(v, str) for v in pod["metadata"]["labels"].values())
    assert all(isinstance(v, str) for v in pod["metadata"]["annotations"].values())


# --- The pod, field by field ------------------------------------------------------------------------------------

CONTEXT = compiling.RunContext(namespace="ci", pipeline="demo", uid="uid-1", generation=2)


def plan_of(*steps: dict[str, Any], policy: policies.Policy = POLICY, **fields: Any) -> plans.RunPlan:
    return compiling.compile_spec({"steps": list(steps), **fields}, CONTEXT, policy)


def step(name: str = "build", image: str = "golang:1.22", **fields: Any) -> dict[str, Any]:
    return {"name": name, "image": image, **fields}


def containers(pod: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in pod["spec"]["containers"]}


def test_steps_start_on_the_placeholder_services_on_their_image() -> None:
    plan = plan_of(step("a"), step("b", "alpine:3.20", pull="never"), services=[step("db", "postgres:16")])
    got = containers(pods.build_pod(plan))
    assert {n: (c["image"], c["imagePullPolicy"]) for n, c in got.items()} == {
        "svc-db": ("postgres:16", "IfNotPresent"),
        "step-a": (POLICY.placeholder_image, "IfNotPresent"),
        "step-b": (POLICY.placeholder_image, "Never"),  # the policy of the step applies to its placeholder too
    }
    assert list(got) == ["svc-db", "step-a", "step-b"]


def test_started_steps_get_their_image_and_an_annotation() -> None:
    plan = plan_of(step("a"), step("b"))
    pod = pods.build_pod(plan, started={"step-a": ""}, at="2024-05-01T12:00:00Z")
    assert containers(pod)["step-a"]["image"] == "golang:1.22"
    assert containers(pod)["step-b"]["image"] == POLICY.placeholder_image
    notes = pod["metadata"]["annotations"]
    assert notes["started.podline.dev/step-a"] == '{"at":"2024-05-01T12:00:00Z","from":""}'
    assert "started.podline.dev/step-b" not in notes


def test_pod_spec_fields() -> None:
    policy = dataclasses.replace(POLICY, allowed_service_accounts=frozenset({"*"}), run_timeout_seconds=1800)
    plan = plan_of(step(), image_pull_secrets=["dockerconfig"], service_account_name="builder",
                   node_selector={"pool": "ci"}, tolerations=[{"operator": "Exists"}], policy=policy)
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
    assert spec["volumes"] == [{"name": "podline-workspace", "emptyDir": {}}]


def test_optional_pod_fields_are_left_out() -> None:
    spec = pods.build_pod(plan_of(step()))["spec"]
    assert not {"serviceAccountName", "imagePullSecrets", "nodeSelector", "tolerations"} & set(spec)


def test_metadata_links_the_pod_to_its_pipeline() -> None:
    plan = plan_of(step(), metadata={"labels": {"team": "x", "app.kubernetes.io/managed-by": "me"},
                                     "annotations": {"note": "n"}})
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
            {"apiVersion": "podline.dev/v1alpha1", "kind": "Pipeline", "name": "demo", "uid": "uid-1", "controller": True}
        ],
    }


def test_a_long_pipeline_name_is_shortened_in_the_label_and_kept_in_the_annotation() -> None:
    name = "a-very-long-pipeline-name-" * 4
    plan = compiling.compile_spec({"steps": [step()]}, dataclasses.replace(CONTEXT, pipeline=name), POLICY)
    meta = pods.build_pod(plan)["metadata"]
    assert len(meta["labels"]["podline.dev/pipeline"]) <= 63
    assert meta["annotations"]["podline.dev/pipeline-name"] == name


def test_container_fields() -> None:
    policy = dataclasses.replace(POLICY, allow_privileged=True)
    plan = plan_of(
        step("a", commands=["make"], user=1000, group=1000, environment={"T": {"from_secret": "tok/ci"}, "P": "v"},
             resources={"limits": {"memory": "1GiB"}, "requests": {"memory": "512MiB"}},
             volumes=[{"name": "cache", "path": "/cache"}]),
        step("b", "docker:dind", privileged=True, command=["--tls=false"]),
        volumes=[{"name": "cache", "temp": {}}],
        policy=policy,
    )
    a, b = containers(pods.build_pod(plan)).values()
    assert a["command"][:2] == ["/bin/sh", "-c"] and "args" not in a
    assert [e for e in a["env"] if e["name"] in ("T", "P")] == [
        {"name": "T", "valueFrom": {"secretKeyRef": {"name": "tok", "key": "ci"}}},
        {"name": "P", "value": "v"},
    ]
    assert a["workingDir"] == "/drone/src"
    assert a["volumeMounts"] == [{"name": "podline-workspace", "mountPath": "/drone/src"},
                                 {"name": "v-cache", "mountPath": "/cache"}]
    assert a["resources"] == {"limits": {"memory": "1Gi"}, "requests": {"memory": "512Mi"}}
    assert a["securityContext"] == {"privileged": False, "allowPrivilegeEscalation": False, "runAsUser": 1000,
                                    "runAsGroup": 1000}
    assert "command" not in b and b["args"] == ["--tls=false"]
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
    assert pod["spec"]["containers"][0]["resources"] == {"limits": {"cpu": "1"}}


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


def test_start_patch_swaps_images_and_records_the_start() -> None:
    plan = plan_of(step("a"), step("b", "alpine:3.20", depends_on=[]), step("c", "busybox:1.36", depends_on=["a"]))
    patch = pods.start_patch(plan, {"step-b": "containerd://p-b", "step-c": ""}, at="2024-05-01T12:00:05Z",
                             resource_version="812")
    assert patch == {
        "metadata": {
            "annotations": {
                "started.podline.dev/step-b": '{"at":"2024-05-01T12:00:05Z","from":"containerd://p-b"}',
                "started.podline.dev/step-c": '{"at":"2024-05-01T12:00:05Z","from":""}',
            },
            "resourceVersion": "812",
        },
        "spec": {"containers": [{"name": "step-b", "image": "alpine:3.20"}, {"name": "step-c", "image": "busybox:1.36"}]},
    }
    unconditional = pods.start_patch(plan, {"step-b": ""}, at="t", resource_version=None)
    assert "resourceVersion" not in unconditional["metadata"]


def test_kill_patch_swaps_the_placeholder_back() -> None:
    plan = plan_of(step("a"))
    assert pods.kill_patch(plan, {"step-a": "StepTimeout"}, resource_version="9") == {
        "metadata": {"annotations": {"killed.podline.dev/step-a": "StepTimeout"}, "resourceVersion": "9"},
        "spec": {"containers": [{"name": "step-a", "image": POLICY.placeholder_image}]},
    }


def test_stop_patch_ends_the_pod_and_keeps_it() -> None:
    assert pods.stop_patch("Cancelled") == {
        "metadata": {"annotations": {"podline.dev/stopped": "Cancelled"}},
        "spec": {"activeDeadlineSeconds": 1},
    }


def test_merge_patches_merges_annotations_and_containers_by_name() -> None:
    merged = pods.merge_patches([
        {"metadata": {"annotations": {"a": "1"}}, "spec": {"containers": [{"name": "x", "image": "i1"}]}},
        {"metadata": {"annotations": {"b": "2"}, "resourceVersion": "5"}, "spec": {"activeDeadlineSeconds": 1}},
        {"spec": {"containers": [{"name": "x", "image": "i2"}, {"name": "y", "image": "j"}]}},
    ])
    assert merged == {
        "metadata": {"annotations": {"a": "1", "b": "2"}, "resourceVersion": "5"},
        "spec": {"activeDeadlineSeconds": 1, "containers": [{"name": "x", "image": "i2"}, {"name": "y", "image": "j"}]},
    }
    assert pods.merge_patches([]) is None
    assert pods.merge_patches([{}]) is None


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        (None, None),
        ("", None),
        ('{"at":"t","from":"containerd://x"}', ("t", "containerd://x")),
        ('{"at":"t"}', ("t", "")),
        ("not json", ("", "")),
        ("[1, 2]", ("", "")),
    ],
)
def test_parse_started(value: str | None, parsed: tuple[str, str] | None) -> None:
    assert pods.parse_started(value) == parsed


def test_started_annotation_round_trips() -> None:
    assert pods.parse_started(pods.started_annotation("2024-05-01T12:00:00Z", "cri-o://abc")) == (
        "2024-05-01T12:00:00Z", "cri-o://abc")
