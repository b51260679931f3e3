"""The Pipeline CRD: generated from the models, committed, and structural everywhere.

The apiserver only accepts a *structural* openAPIV3Schema; these tests walk every node of the generated
schema and check the rules one by one, so a model change that breaks them fails here, not at install.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from podline.core import conventions, models, schema

CRD_FILE = Path(__file__).parents[2] / "crds" / "pipelines.podline.dev.yaml"
CRD = schema.crd()
(VERSION,) = CRD["spec"]["versions"]
ROOT = VERSION["schema"]["openAPIV3Schema"]
SPEC = ROOT["properties"]["spec"]
STATUS = ROOT["properties"]["status"]


def test_committed_crd_matches_the_models() -> None:
    assert CRD_FILE.read_text() == schema.render(), (
        "crds/pipelines.podline.dev.yaml drifted from the models; regenerate it with "
        "`python -m podline.core.schema > crds/pipelines.podline.dev.yaml`"
    )


def test_rendered_crd_is_yaml_of_the_crd() -> None:
    assert yaml.safe_load(schema.render()) == CRD


def nodes(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema node with its path, e.g. ``.spec.steps[].when.status``."""
    if not isinstance(node, dict):
        return
    yield path, node
    for name, sub in (node.get("properties") or {}).items():
        yield from nodes(sub, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from nodes(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from nodes(node["additionalProperties"], f"{path}{{}}")


ALL = list(nodes(ROOT))
IDS = [p or "<root>" for p, _ in ALL]
FREE = ("x-kubernetes-preserve-unknown-fields", "x-kubernetes-int-or-string")
TYPES = {"object", "array", "string", "integer", "number", "boolean"}


@pytest.mark.parametrize(("path", "node"), ALL, ids=IDS)
def test_every_node_is_structural(path: str, node: dict[str, Any]) -> None:
    forbidden = {
        "$ref",
        "$defs",
        "definitions",
        "anyOf",
        "oneOf",
        "allOf",
        "not",
        "uniqueItems",
        "title",
        "default",
        "const",
        "examples",
        "discriminator",
    } & set(node)
    assert not forbidden, f"{path}: {forbidden}"
    if node.get("x-kubernetes-int-or-string"):
        assert "type" not in node, path
    elif not node.get("x-kubernetes-preserve-unknown-fields"):
        assert node.get("type") in TYPES, f"{path}: type {node.get('type')!r}"
    if "additionalProperties" in node:
        assert node["additionalProperties"] is not False, f"{path}: additionalProperties: false"
        assert "properties" not in node, f"{path}: additionalProperties beside properties"
    if "nullable" in node:
        assert node["nullable"] is True, path
    if node.get("type") == "array":
        assert isinstance(node.get("items"), dict), f"{path}: an array needs items"
    if "enum" in node:
        kind = {"string": str, "integer": int, "boolean": bool}[node["type"]]
        assert all(isinstance(v, kind) for v in node["enum"]), f"{path}: enum {node['enum']}"
    for key in node:
        assert key in STRUCTURAL_KEYS, f"{path}: unexpected schema keyword {key!r}"
    for required in node.get("required", []):
        assert required in node.get("properties", {}), f"{path}: required {required!r} is not a property"


STRUCTURAL_KEYS = {
    "type",
    "description",
    "properties",
    "items",
    "additionalProperties",
    "required",
    "enum",
    "nullable",
    "format",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "minimum",
    "maximum",
    "pattern",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-int-or-string",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-validations",
}


def test_the_walk_sees_the_whole_schema() -> None:
    paths = set(IDS)
    for expected in (
        ".spec.steps[].name",
        ".spec.steps[].when.status",
        ".spec.steps[].resources.limits.cpu",
        ".spec.services[].environment",
        ".spec.volumes[].temp.size_limit",
        ".spec.tolerations[].effect",
        ".status.steps[].exitCode",
        ".status.conditions[].lastTransitionTime",
        ".status.history[]",
    ):
        assert expected in paths
    assert len(ALL) > 150


SPEC_NODES = [(p, n) for p, n in nodes(SPEC, ".spec")]


@pytest.mark.parametrize(("path", "node"), SPEC_NODES, ids=[p for p, _ in SPEC_NODES])
def test_every_spec_field_is_described(path: str, node: dict[str, Any]) -> None:
    """What ``kubectl explain pipeline.spec…`` prints: a description on every field."""
    if path.endswith(("[]", "{}")):
        return  # list items and map values are described by their field
    assert node.get("description"), f"{path} has no description"


def test_status_fields_are_described() -> None:
    for path, node in nodes(STATUS, ".status"):
        if not (path.endswith(("[]", "{}"))):
            assert node.get("description"), path


@pytest.mark.parametrize("field", ["steps", "services"])
def test_steps_and_services_are_maps_keyed_by_name(field: str) -> None:
    node = SPEC["properties"][field]
    assert node["type"] == "array"
    assert node["x-kubernetes-list-type"] == "map"
    assert node["x-kubernetes-list-map-keys"] == ["name"]
    # A list-map key must be required (or defaulted) in every item.
    assert "name" in node["items"]["required"]
    assert node["items"]["properties"]["name"]["type"] == "string"


def test_the_spec_uses_drone_field_names() -> None:
    step = SPEC["properties"]["steps"]["items"]["properties"]
    assert {
        "name",
        "image",
        "pull",
        "commands",
        "entrypoint",
        "command",
        "environment",
        "settings",
        "depends_on",
        "when",
        "failure",
        "detach",
        "privileged",
        "user",
        "working_dir",
        "volumes",
        "resources",
    } <= set(step)
    assert {
        "type",
        "steps",
        "services",
        "image_pull_secrets",
        "environment",
        "workspace",
        "clone",
        "volumes",
        "node_selector",
        "tolerations",
        "service_account_name",
        "platform",
        "trigger",
    } <= set(SPEC["properties"])
    assert set(SPEC["properties"]) == set(models.PipelineSpec.model_fields)
    assert set(step) == set(models.Step.model_fields)


def test_free_form_and_int_or_string_values() -> None:
    step = SPEC["properties"]["steps"]["items"]["properties"]
    assert step["environment"]["additionalProperties"]["x-kubernetes-preserve-unknown-fields"] is True
    assert step["settings"]["additionalProperties"]["x-kubernetes-preserve-unknown-fields"] is True
    assert step["when"]["properties"]["status"]["x-kubernetes-preserve-unknown-fields"] is True
    assert step["user"]["x-kubernetes-int-or-string"] is True
    assert (
        step["resources"]["properties"]["limits"]["properties"]["memory"]["x-kubernetes-int-or-string"]
        is True
    )
    # Any pull value reaches the operator, which reads it as Drone does (`pull: true` is the default there):
    # drone-runner-docker engine/compiler/util.go convertPullPolicy.
    assert step["pull"]["x-kubernetes-preserve-unknown-fields"] is True
    assert step["ports"]["items"]["x-kubernetes-preserve-unknown-fields"] is True
    for words in ("commands", "command", "entrypoint"):  # `command: [--max, 6]`, as Drone reads it
        assert step[words]["items"] == {"x-kubernetes-int-or-string": True}


def test_every_spec_object_keeps_unknown_fields_for_the_operator_to_warn_about() -> None:
    """Drone's parser reads past unknown keys (drone/drone-yaml yaml/parse.go: a non-strict yaml.Unmarshal);
    the apiserver must keep them rather than refuse the Pipeline under kubectl's strict field validation."""
    objects = [(p, n) for p, n in SPEC_NODES if "properties" in n]
    assert len(objects) > 20
    for path, node in objects:
        assert node.get("x-kubernetes-preserve-unknown-fields") is True, path
    for path, node in nodes(STATUS, ".status"):
        if "properties" in node:
            assert "x-kubernetes-preserve-unknown-fields" not in node, path


def test_status_uses_camel_case() -> None:
    assert {
        "phase",
        "observedGeneration",
        "podName",
        "currentStep",
        "startTime",
        "completionTime",
        "conditions",
        "steps",
    } <= set(STATUS["properties"])
    assert {"name", "state", "exitCode", "startedAt", "finishedAt", "reason", "message"} <= set(
        STATUS["properties"]["steps"]["items"]["properties"]
    )


def test_resource_names_and_printer_columns() -> None:
    spec = CRD["spec"]
    assert CRD["metadata"]["name"] == f"{conventions.PLURAL}.{conventions.GROUP}" == "pipelines.podline.dev"
    assert spec["group"] == "podline.dev" and spec["scope"] == "Namespaced"
    assert spec["names"]["kind"] == "Pipeline" and spec["names"]["plural"] == "pipelines"
    assert spec["names"]["shortNames"] == ["pl"]
    assert VERSION["name"] == "v1alpha1" and VERSION["served"] and VERSION["storage"]
    assert VERSION["subresources"] == {"status": {}}
    columns = {c["name"]: c["jsonPath"] for c in VERSION["additionalPrinterColumns"]}
    assert columns["Phase"] == ".status.phase" and columns["Step"] == ".status.currentStep"
    assert columns["Age"] == ".metadata.creationTimestamp"
    for name, json_path in columns.items():
        head, _, field = json_path.removeprefix(".").partition(".")
        if head == "status":
            assert field in STATUS["properties"], name
    assert ROOT["required"] == ["spec"]


def test_an_example_pipeline_validates_against_the_generated_schema() -> None:
    """A tiny structural validator over the generated schema: the seed's pipeline fits it."""
    spec = {
        "kind": "pipeline",
        "type": "docker",
        "name": "default",
        "steps": [
            {
                "name": "build",
                "image": "golang:1.12",
                "commands": ["go build", "go test"],
                "environment": {"A": 1, "S": {"from_secret": "x"}},
                "when": {"status": ["failure"]},
                "user": "1000",
                "resources": {"limits": {"cpu": 1000, "memory": "512MiB"}},
            }
        ],
        "image_pull_secrets": ["dockerconfig"],
        "trigger": {"branch": "main"},
    }
    assert list(violations(SPEC, spec)) == []
    assert list(violations(SPEC, {"steps": [{"name": "x", "image": "y", "failure": "sometimes"}]})) == [
        ".steps[0].failure: 'sometimes' not in enum"
    ]
    assert list(violations(SPEC, {"steps": [{"image": "y"}]})) == [".steps[0]: missing name"]


def violations(node: dict[str, Any], value: Any, path: str = "") -> Iterator[str]:
    if node.get("x-kubernetes-preserve-unknown-fields") and "properties" not in node:
        return
    if node.get("x-kubernetes-int-or-string"):
        if not isinstance(value, (int, str)):
            yield f"{path}: not int-or-string"
        return
    if value is None:
        if not node.get("nullable"):
            yield f"{path}: null"
        return
    kind = node["type"]
    python = {
        "object": dict,
        "array": list,
        "string": str,
        "integer": int,
        "boolean": bool,
        "number": (int, float),
    }
    if not isinstance(value, python[kind]):
        yield f"{path}: not {kind}"
        return
    if "enum" in node and value not in node["enum"]:
        yield f"{path}: {value!r} not in enum"
    if kind == "object":
        for name in node.get("required", []):
            if name not in value:
                yield f"{path}: missing {name}"
        for name, sub in value.items():
            if name in node.get("properties", {}):
                yield from violations(node["properties"][name], sub, f"{path}.{name}")
            elif isinstance(node.get("additionalProperties"), dict):
                yield from violations(node["additionalProperties"], sub, f"{path}.{name}")
    if kind == "array":
        for index, item in enumerate(value):
            yield from violations(node["items"], item, f"{path}[{index}]")


def test_the_apiserver_refuses_other_runners_pipelines_for_their_type() -> None:
    """An exec pipeline has no images: the apiserver must reach the type's rule (it checks no CEL rule of an
    object missing a required field), so `image` is the operator's to require."""
    [rule] = SPEC["properties"]["type"]["x-kubernetes-validations"]
    assert rule["rule"] == "self in ['docker', 'kubernetes', '']"
    assert "pipelines are not run" in rule["messageExpression"]
    for field in ("steps", "services"):
        assert SPEC["properties"][field]["items"]["required"] == ["name"]
