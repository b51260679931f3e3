"""A run's platform: the one ``platforms.target`` reads image configs for, and the node labels the pod is
scheduled by (``platform`` and ``node_selector``, merged), in the plan and in the pod."""

from __future__ import annotations

from typing import Any

import pytest
from podline.core import compiling, models, platforms, pods, policies

POLICY = policies.Policy()
CONTEXT = compiling.RunContext(namespace="ci", pipeline="demo", uid="uid-1", generation=1)
STEP = {"name": "publish", "image": "plugins/kaniko:20"}  # a plugin: its image config is read


def spec(**fields: Any) -> models.PipelineSpec:
    return models.PipelineSpec.model_validate({"steps": [STEP], **fields})


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param({}, None, id="nothing-the-operators-default"),
        pytest.param({"platform": {}}, None, id="empty-platform"),
        pytest.param({"platform": {"os": "linux"}}, None, id="os-alone-names-no-arch"),
        pytest.param({"node_selector": {"kubernetes.io/os": "linux"}}, None, id="selector-os-alone"),
        pytest.param({"node_selector": {"pool": "ci"}}, None, id="other-labels"),
        pytest.param({"platform": {"os": "linux", "arch": "amd64"}}, "linux/amd64", id="amd64"),
        pytest.param({"platform": {"arch": "x86_64"}}, "linux/amd64", id="x86_64-is-amd64-os-linux"),
        pytest.param({"platform": {"arch": "aarch64"}}, "linux/arm64/v8", id="aarch64-is-arm64-v8"),
        pytest.param({"platform": {"arch": "ARM64"}}, "linux/arm64/v8", id="upper-case"),
        pytest.param({"platform": {"arch": "arm"}}, "linux/arm/v7", id="arm-is-v7"),
        pytest.param({"platform": {"arch": "arm", "variant": "6"}}, "linux/arm/v6", id="variant-6-is-v6"),
        pytest.param({"platform": {"arch": "armel"}}, "linux/arm/v6", id="armel"),
        pytest.param({"platform": {"arch": "amd64", "variant": "v1"}}, "linux/amd64", id="amd64-v1-is-amd64"),
        pytest.param({"platform": {"os": "Linux", "arch": "ppc64le"}}, "linux/ppc64le", id="os-lower-cased"),
        pytest.param(
            {"node_selector": {"kubernetes.io/arch": "arm64"}}, "linux/arm64/v8", id="selector-arch"
        ),
        pytest.param(
            {"node_selector": {"kubernetes.io/arch": "arm"}, "platform": {"variant": "v6"}},
            "linux/arm/v6",
            id="selector-arch-platform-variant",
        ),
        pytest.param(
            {
                "node_selector": {"kubernetes.io/arch": "arm64"},
                "platform": {"arch": "aarch64", "variant": "v8"},
            },
            "linux/arm64/v8",
            id="both-agree",
        ),
        pytest.param(
            # validation refuses it; the selector decides where the pod runs, so it decides what is read
            {"node_selector": {"kubernetes.io/arch": "amd64"}, "platform": {"arch": "arm", "variant": "v6"}},
            "linux/amd64",
            id="selector-wins-and-keeps-its-own-variant",
        ),
    ],
)
def test_the_target_platform(fields: dict[str, Any], expected: str | None) -> None:
    target = platforms.target(spec(**fields))
    assert (str(target) if target else None) == expected


def test_the_plan_carries_the_target_platform() -> None:
    plan = compiling.compile_spec({"steps": [STEP], "platform": {"arch": "aarch64"}}, CONTEXT, POLICY)
    assert plan.platform == platforms.imageconfigs.Platform("linux", "arm64", "v8")
    assert compiling.compile_spec({"steps": [STEP]}, CONTEXT, POLICY).platform is None


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param({}, None, id="none"),
        pytest.param({"platform": {"version": "1809"}}, None, id="version-is-informational"),
        pytest.param({"node_selector": {"pool": "ci"}}, {"pool": "ci"}, id="the-users-own"),
        pytest.param(
            {"platform": {"os": "linux", "arch": "arm64"}},
            {"kubernetes.io/os": "linux", "kubernetes.io/arch": "arm64"},
            id="platform-becomes-node-labels",
        ),
        pytest.param(
            {"platform": {"arch": "x86_64", "variant": "v3"}},
            {"kubernetes.io/arch": "amd64"},
            id="kubes-spelling-no-variant",
        ),
        pytest.param({"platform": {"arch": "armhf"}}, {"kubernetes.io/arch": "arm"}, id="armhf-is-arm"),
        pytest.param({"platform": {"os": "Linux"}}, {"kubernetes.io/os": "linux"}, id="os-alone"),
        pytest.param(
            {
                "platform": {"os": "linux", "arch": "aarch64"},
                "node_selector": {"pool": "arm", "kubernetes.io/arch": "arm64"},
            },
            {"kubernetes.io/os": "linux", "kubernetes.io/arch": "arm64", "pool": "arm"},
            id="merged-with-the-users",
        ),
        pytest.param(
            {"node_selector": {"kubernetes.io/arch": "arm64"}},
            {"kubernetes.io/arch": "arm64"},
            id="the-users-arch-alone",
        ),
    ],
)
def test_the_pods_node_selector(fields: dict[str, Any], expected: dict[str, str] | None) -> None:
    plan = compiling.compile_spec({"steps": [{**STEP, "commands": ["true"]}], **fields}, CONTEXT, POLICY)
    assert pods.build_pod(plan)["spec"].get("nodeSelector") == expected


def test_the_node_selector_is_sorted_in_the_plan() -> None:
    plan = compiling.compile_spec(
        {"steps": [STEP], "platform": {"arch": "arm64"}, "node_selector": {"a": "1", "z": "2"}},
        CONTEXT,
        POLICY,
    )
    assert plan.node_selector == (("a", "1"), ("kubernetes.io/arch", "arm64"), ("z", "2"))


@pytest.mark.parametrize(
    ("spelling", "label"),
    [("amd64", "amd64"), ("x86_64", "amd64"), ("X86-64", "amd64"), ("aarch64", "arm64"), ("i686", "386"),
     ("armel", "arm"), ("riscv64", "riscv64"), ("sparc", None), ("", None), ("arm64/v8", None)],
)  # fmt: skip
def test_arch_labels(spelling: str, label: str | None) -> None:
    assert platforms.arch_label(spelling) == label
