"""The Pipeline CRD, generated from the pydantic models.

``models.PipelineSpec`` and ``statuses.PipelineStatus`` are the one source of truth; this module turns their
JSON Schema into a Kubernetes *structural* openAPIV3Schema: ``$ref`` inlined, ``anyOf [X, null]`` turned
into ``nullable``, free-form values marked ``x-kubernetes-preserve-unknown-fields``, int-or-string marked,
no ``additionalProperties: false`` beside ``properties``, no ``title``/``default``/``uniqueItems``. The spec's
objects keep unknown fields (Drone reads past them; the operator warns about each, see ``leniency``).

``crds/pipelines.podline.dev.yaml`` is written by ``python -m podline.core.schema`` and a test fails when the
file drifts from the models.
"""

from __future__ import annotations

import sys
from typing import Any

import yaml

from podline.core import conventions, models, statuses

_DROP = {"title", "default", "uniqueItems", "examples"}


def _resolve(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_resolve(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = dict(defs[node["$ref"].rsplit("/", 1)[-1]])
        rest = {k: v for k, v in node.items() if k != "$ref"}
        target.update(rest)
        return _resolve(target, defs)
    return {k: _resolve(v, defs) for k, v in node.items() if k != "$defs"}


def _structural_union(node: dict[str, Any]) -> dict[str, Any]:
    """A union with null (pydantic's ``X | None``) as the one type, nullable."""
    variants = [v for v in node["anyOf"] if v.get("type") != "null"]
    nullable = len(variants) != len(node["anyOf"])
    if len(variants) != 1:
        raise ValueError(f"cannot express a union of {len(variants)} types structurally: {node}")
    merged = {**{k: v for k, v in node.items() if k != "anyOf"}, **variants[0]}
    if "description" in node:
        merged["description"] = node["description"]
    out = _structural(merged)
    if nullable:
        out["nullable"] = True
    return out


def _structural(node: dict[str, Any]) -> dict[str, Any]:
    """Rewrite one resolved JSON Schema node into a structural schema node."""
    description = node.get("description")
    if node.get("x-kubernetes-preserve-unknown-fields") or node.get("x-kubernetes-int-or-string"):
        out = {k: v for k, v in node.items() if k.startswith("x-kubernetes-")}
        if description:
            out["description"] = description
        return out
    if "anyOf" in node:
        return _structural_union(node)
    out = {}
    for key, value in node.items():
        if key in _DROP:
            continue
        if key == "const":
            out["enum"] = [value]
        elif key == "properties":
            out["properties"] = {name: _structural(sub) for name, sub in value.items()}
        elif key == "items":
            out["items"] = _structural(value)
        elif key == "additionalProperties":
            if value is True or value == {}:
                out["x-kubernetes-preserve-unknown-fields"] = True
            elif isinstance(value, dict):
                out["additionalProperties"] = _structural(value)
            # `additionalProperties: false` is dropped: unknown fields are pruned (or rejected by strict
            # field validation) by the apiserver, which is what `extra="forbid"` means in the models.
        else:
            out[key] = value
    if "enum" in out and "" in out["enum"]:
        out["enum"] = [e for e in out["enum"] if e is not None]
    return out


def openapi_schema(model: type[Any]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True)
    return _structural(_resolve(raw, raw.get("$defs", {})))


def _keyed_lists(spec: dict[str, Any]) -> dict[str, Any]:
    """Steps and services are maps keyed by name: the apiserver rejects duplicates, SSA merges by name.

    ``image`` is left to the operator: the apiserver checks no CEL rule of an object with a missing required
    field, so an exec pipeline (which has no images) would be refused for its images, never for its type."""
    for field in ("steps", "services"):
        spec["properties"][field]["x-kubernetes-list-type"] = "map"
        spec["properties"][field]["x-kubernetes-list-map-keys"] = ["name"]
        items = spec["properties"][field]["items"]
        items["required"] = [r for r in items["required"] if r != "image"]
    return spec


PRINTER_COLUMNS = [
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {"name": "Step", "type": "string", "jsonPath": ".status.currentStep"},
    {"name": "Run", "type": "string", "jsonPath": ".status.run", "priority": 1},
    {"name": "Build", "type": "string", "jsonPath": ".metadata.labels.podline\\.dev/build", "priority": 1},
    {"name": "Reason", "type": "string", "jsonPath": ".status.reason", "priority": 1},
    {"name": "Pod", "type": "string", "jsonPath": ".status.podName", "priority": 1},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


def _lenient(node: dict[str, Any]) -> dict[str, Any]:
    """Every object of the spec keeps fields it does not know, as Drone's parser reads past them: the
    operator drops them with a warning in the status (``leniency``), where strict field validation
    (kubectl's default) would refuse the whole Pipeline. Known fields are still typed and checked."""
    if "properties" in node:
        node["x-kubernetes-preserve-unknown-fields"] = True
        for sub in node["properties"].values():
            _lenient(sub)
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            _lenient(node[key])
    return node


def crd() -> dict[str, Any]:
    spec = _lenient(_keyed_lists(openapi_schema(models.PipelineSpec)))
    spec["description"] = "A Drone pipeline: the body of a `kind: pipeline` document, field names unchanged."
    status = openapi_schema(statuses.PipelineStatus)
    status["description"] = "Run state, written by the operator."
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{conventions.PLURAL}.{conventions.GROUP}",
            "labels": {"app.kubernetes.io/name": "podline", "app.kubernetes.io/part-of": "podline"},
        },
        "spec": {
            "group": conventions.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": conventions.KIND,
                "listKind": f"{conventions.KIND}List",
                "plural": conventions.PLURAL,
                "singular": conventions.SINGULAR,
                "shortNames": list(conventions.SHORT_NAMES),
                "categories": ["podline"],
            },
            "versions": [
                {
                    "name": conventions.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": "Pipeline runs a Drone pipeline's steps as the containers of one pod.",
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec,
                                "status": status,
                            },
                            "required": ["spec"],
                        }
                    },
                }
            ],
        },
    }


def render() -> str:
    header = "# Generated from podline.core.models by `python -m podline.core.schema`; do not edit.\n"
    return header + yaml.safe_dump(crd(), sort_keys=False, width=120)


# --- Field warnings: kubectl's warnings for what Drone ignores ---------------------------------------------


_IGNORED = (
    "': ignored, as Drone ignores fields it does not read (the status.warnings of the Pipeline say more)'"
)


def _cel_list(names: list[str]) -> str:
    return "[" + ", ".join(f"'{n}'" for n in names) + "]"


def field_warnings() -> list[dict[str, str]]:
    """The validations of the chart's ValidatingAdmissionPolicy (bound with ``validationActions: [Warn]``):
    each unknown key of the spec, a step, a service, a condition is a warning kubectl prints, as the
    apiserver's own warnings for unknown fields would be. The schema keeps such keys (``_lenient``) and the
    operator drops them (``leniency``), also warning in the status; this is what ``kubectl apply`` shows."""
    spec = _cel_list(sorted(models.PipelineSpec.model_fields))
    step = _cel_list(sorted(models.Step.model_fields))
    condition = _cel_list(sorted(models.Conditions.model_fields))
    out = [
        {
            "expression": f"object.spec.all(k, k in {spec})",
            "messageExpression": f"object.spec.filter(k, !(k in {spec})).map(k, 'spec.' + k).join(', ') + "
            + _IGNORED,
        },
        {
            "expression": f"!has(object.spec.trigger) || object.spec.trigger.all(k, k in {condition})",
            "messageExpression": f"object.spec.trigger.filter(k, !(k in {condition})).map(k, 'spec.trigger.' + k)"
            ".join(', ') + " + _IGNORED,
        },
    ]
    for field in ("steps", "services"):
        items = f"object.spec.{field}"
        bad = f"{items}.filter(s, !s.all(k, k in {step}))"
        out.append(
            {
                "expression": f"!has({items}) || {items}.all(s, s.all(k, k in {step}))",
                "messageExpression": f"{bad}.map(s, 'spec.{field}[' + (has(s.name) ? string(s.name) : '?') + '].' + "
                f"s.filter(k, !(k in {step})).join(', ')).join('; ') + {_IGNORED}",
            }
        )
    return out


def render_field_warnings() -> str:
    header = (
        "# Generated from podline.core.models by `python -m podline.core.schema --field-warnings`; do not edit.\n"
        "# The validations of templates/field-warnings.yaml (kubectl's warnings for fields Drone ignores).\n"
    )
    return header + yaml.safe_dump(field_warnings(), sort_keys=False, width=120)


if __name__ == "__main__":  # pragma: no cover - a tiny generator entry point
    sys.stdout.write(render_field_warnings() if sys.argv[1:] == ["--field-warnings"] else render())
