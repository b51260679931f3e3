"""The chart's archive endpoint (docs/archive.md): the operator's port, the ``<fullname>-archive`` Service that
selects it, and the people's Role ``<fullname>-archive-reader``: ``get`` on ``services/proxy`` of that one
Service (by the name the proxy path uses), nothing else, in the release namespace, bound to nobody."""

from __future__ import annotations

from typing import Any

import pytest

from tests.chart.test_chart import MODES, NAMESPACE, container, env, helm, render, template  # noqa: F401

FULLNAME = "podline"  # release "podline" of chart "podline"


def archive_service(docs: list[dict[str, Any]]) -> dict[str, Any] | None:
    found = [d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == f"{FULLNAME}-archive"]
    return found[0] if found else None


def reader_role(docs: list[dict[str, Any]]) -> dict[str, Any] | None:
    found = [d for d in docs if d["kind"] == "Role" and d["metadata"]["name"] == f"{FULLNAME}-archive-reader"]
    return found[0] if found else None


@pytest.mark.parametrize("mode", MODES)
def test_the_service_reaches_the_operators_archive_port(helm: str, mode: str) -> None:  # noqa: F811
    docs = render(helm, *MODES[mode])
    service = archive_service(docs)
    assert service is not None and service["metadata"]["namespace"] == NAMESPACE
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["ports"] == [
        {"name": "archive", "port": 8081, "targetPort": "archive", "protocol": "TCP"}
    ]
    ports = {p["name"]: p["containerPort"] for p in container(docs)["ports"]}
    assert ports["archive"] == int(env(docs)["PODLINE_ARCHIVE_PORT"]) == 8081
    pod_labels = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items(), (
        "the Service must select the operator pod"
    )


@pytest.mark.parametrize("mode", MODES)
def test_the_reader_role_grants_exactly_get_on_the_archive_service_proxy(helm: str, mode: str) -> None:  # noqa: F811
    docs = render(helm, *MODES[mode])
    role = reader_role(docs)
    assert role is not None and role["metadata"]["namespace"] == NAMESPACE
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["services/proxy"], "resourceNames": [f"{FULLNAME}-archive:archive"],
         "verbs": ["get"]}
    ]  # fmt: skip
    bindings = [d for d in docs if d["kind"] in ("RoleBinding", "ClusterRoleBinding")]
    assert not [b for b in bindings if b["roleRef"]["name"] == role["metadata"]["name"]], (
        "bound by the admin only"
    )


@pytest.mark.parametrize("off", ["archive.serve.enabled=false", "archive.enabled=false"])
def test_not_serving_renders_no_port_service_or_role(helm: str, off: str) -> None:  # noqa: F811
    docs = render(helm, "--set", off)
    assert archive_service(docs) is None and reader_role(docs) is None
    assert env(docs)["PODLINE_ARCHIVE_PORT"] == "0"
    assert "archive" not in {p["name"] for p in container(docs)["ports"]}


def test_the_role_is_optional_and_the_service_port_configurable(helm: str) -> None:  # noqa: F811
    docs = render(helm, "--set", "archive.serve.readerRole=false", "--set", "archive.serve.port=7000",
                  "--set", "archive.serve.service.port=80", "--set", "archive.serve.service.annotations.a=b")  # fmt: skip
    service = archive_service(docs)
    assert reader_role(docs) is None and service is not None
    assert service["spec"]["ports"][0]["port"] == 80 and service["metadata"]["annotations"] == {"a": "b"}
    assert env(docs)["PODLINE_ARCHIVE_PORT"] == "7000"


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("--set", "archive.serve.port=9090"), "archive.serve.port must differ"),
        (("--set", "archive.serve.port=8080"), "archive.serve.port must differ"),
        (("--set", "archive.serve.port=0"), "minimum"),
        (("--set", "archive.serve.typo=1"), "typo"),
    ],
)
def test_bad_values_are_refused(helm: str, args: tuple[str, ...], said: str) -> None:  # noqa: F811
    result = template(helm, *args)
    assert result.returncode != 0 and said in result.stderr, result.stderr


@pytest.mark.parametrize("mode", MODES)
def test_the_charts_dashboard_is_bound_to_the_reader_role_only_when_asked(helm: str, mode: str) -> None:  # noqa: F811
    on = render(helm, *MODES[mode], "--set", "dashboard.enabled=true")
    [binding] = [
        d for d in on if d["kind"] == "RoleBinding" and d["roleRef"]["name"] == f"{FULLNAME}-archive-reader"
    ]
    assert binding["metadata"]["namespace"] == NAMESPACE
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": f"{FULLNAME}-dashboard", "namespace": NAMESPACE}
    ]
    for off in (
        "dashboard.readArchive=false",
        "archive.serve.readerRole=false",
        "archive.serve.enabled=false",
    ):
        docs = render(helm, *MODES[mode], "--set", "dashboard.enabled=true", "--set", off)
        assert not [
            d
            for d in docs
            if d["kind"] == "RoleBinding" and d["metadata"]["name"] == f"{FULLNAME}-dashboard-archive"
        ], off
