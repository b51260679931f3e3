"""The chart's dashboard component (dashboard.enabled), rendered by the real helm: off by default, a
ClusterIP Service, the restricted Pod Security Standard, its own ServiceAccount with read-only RBAC unless
dashboard.allowActions. The api-tier tests at the end apply what helm renders: the pod passes the
apiserver's Pod Security admission (restricted), and the dashboard works with exactly the rendered role.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from podline import cli

from tests.chart import test_chart
from tests.chart.test_chart import MODES, NAMESPACE, Manifest, render, triples
from tests.dashboard import browsing
from tests.e2e import conftest

ENABLED = ("--set", "dashboard.enabled=true")
READ = {("podline.dev", "pipelines", v) for v in ("get", "list", "watch")} | {("", "pods/log", "get")}
# dashboard.readArchive (default): the archive reader Role, get on services/proxy of the archive Service only
# (its resourceNames: tests/chart/test_chart_archive_serving.py)
ARCHIVE = {("", "services/proxy", "get")}


@pytest.fixture(scope="module")
def helm() -> str:
    return test_chart.helm_binary()


def dashboard_docs(docs: list[Manifest]) -> list[Manifest]:
    return [
        d for d in docs if d["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "dashboard"
    ]


def deployment(docs: list[Manifest]) -> Manifest:
    [found] = [d for d in dashboard_docs(docs) if d["kind"] == "Deployment"]
    return found


def dashboard_rules(docs: list[Manifest]) -> tuple[set[tuple[str, str, str]], list[Manifest]]:
    """What the dashboard's ServiceAccount is granted, through the bindings, and the roles granting it."""
    [account] = [d for d in dashboard_docs(docs) if d["kind"] == "ServiceAccount"]
    name = account["metadata"]["name"]
    roles = {
        (d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]): d for d in docs if "rules" in d
    }
    granted: set[tuple[str, str, str]] = set()
    bound = []
    for binding in (d for d in docs if d["kind"] in ("RoleBinding", "ClusterRoleBinding")):
        if any(
            s["kind"] == "ServiceAccount" and s["name"] == name and s["namespace"] == NAMESPACE
            for s in binding["subjects"]
        ):
            ref = binding["roleRef"]
            role = roles[
                (
                    ref["kind"],
                    binding["metadata"].get("namespace") if ref["kind"] == "Role" else None,
                    ref["name"],
                )
            ]
            bound.append(role)
            granted |= triples(role["rules"])
    return granted, bound


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("actions", ["false", "true"])
def test_lint_strict_is_clean_with_the_dashboard(helm: str, mode: str, actions: str) -> None:
    args = (*ENABLED, "--set", f"dashboard.allowActions={actions}", *MODES[mode])
    result = test_chart.run_helm(
        helm, "lint", "--strict", str(test_chart.CHART), "--namespace", NAMESPACE, *args
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_off_by_default(helm: str) -> None:
    assert dashboard_docs(render(helm)) == []


@pytest.mark.parametrize("mode", MODES)
def test_a_clusterip_service_its_own_account_and_read_only_rbac(helm: str, mode: str) -> None:
    docs = render(helm, *ENABLED, *MODES[mode])
    kinds = sorted(d["kind"] for d in dashboard_docs(docs))
    if mode == "cluster":
        assert kinds == [
            "ClusterRole",
            "ClusterRoleBinding",
            "Deployment",
            "RoleBinding",
            "Service",
            "ServiceAccount",
        ]
    else:
        assert kinds == sorted(
            ["Deployment", "Service", "ServiceAccount", "RoleBinding"] + ["Role", "RoleBinding"] * 2
        )
    [service] = [d for d in dashboard_docs(docs) if d["kind"] == "Service"]
    assert service["spec"]["type"] == "ClusterIP"
    granted, roles = dashboard_rules(docs)
    assert granted == READ | ARCHIVE  # never Secrets, never pods themselves, nothing that writes
    unarchived, _ = dashboard_rules(
        render(helm, *ENABLED, *MODES[mode], "--set", "dashboard.readArchive=false")
    )
    assert unarchived == READ
    assert all("*" not in json.dumps(role["rules"]) for role in roles)
    pod = deployment(docs)["spec"]["template"]["spec"]
    assert (
        pod["serviceAccountName"]
        != test_chart.only([d for d in docs if d not in dashboard_docs(docs)], "ServiceAccount")["metadata"][
            "name"
        ]
    )
    [box] = pod["containers"]
    assert "--read-only" in box["args"]
    if mode == "namespaces":
        assert [a for a in box["args"] if a.startswith("--namespace=")] == [
            f"--namespace={ns}" for ns in test_chart.WATCHED
        ]


def test_allow_actions_adds_patch_of_pipelines_and_nothing_else(helm: str) -> None:
    docs = render(helm, *ENABLED, "--set", "dashboard.allowActions=true")
    granted, _ = dashboard_rules(docs)
    assert granted == READ | ARCHIVE | {("podline.dev", "pipelines", "patch")}
    assert "--read-only" not in deployment(docs)["spec"]["template"]["spec"]["containers"][0]["args"]


def test_the_operators_selectors_never_match_the_dashboard(helm: str) -> None:
    docs = render(helm, *ENABLED)
    labels = deployment(docs)["spec"]["template"]["metadata"]["labels"]
    for doc in docs:
        if doc in dashboard_docs(docs):
            continue
        selector = (doc.get("spec") or {}).get("selector")
        selector = selector.get("matchLabels", selector) if isinstance(selector, dict) else None
        if selector:
            assert not all(labels.get(k) == v for k, v in selector.items()), doc["metadata"]["name"]


@pytest.mark.parametrize("mode", MODES)
def test_the_dashboard_accepts_the_rendered_arguments(helm: str, mode: str) -> None:
    box = deployment(render(helm, *ENABLED, *MODES[mode]))["spec"]["template"]["spec"]["containers"][0]
    assert box["command"] == ["podline"]
    args = cli._parser().parse_args(box["args"])
    assert args.command == "dashboard" and args.address == "0.0.0.0" and args.read_only
    assert args.allowed_host == ["*"]
    assert args.operator == f"{NAMESPACE}/{test_chart.RELEASE}-archive"  # this release's archive Service
    assert box["readinessProbe"]["httpGet"]["path"] == "/healthz"


def test_the_pod_meets_the_restricted_pod_security_standard(helm: str) -> None:
    pod = deployment(render(helm, *ENABLED))["spec"]["template"]["spec"]
    [box] = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] > 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert box["securityContext"]["allowPrivilegeEscalation"] is False
    assert box["securityContext"]["readOnlyRootFilesystem"] is True
    assert box["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert all(set(v) <= {"name", "emptyDir"} for v in pod["volumes"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "dashboard.port=0"], "at '/dashboard/port'"),
        (["--set", "dashboard.allowedHosts={evil host}"], "at '/dashboard/allowedHosts/0'"),
        (["--set", "dashboard.service.type=LoadBalancer"], "additional properties 'type' not allowed"),
        (["--set", "dashboard.enabled=yes"], "at '/dashboard/enabled'"),
    ],
)
def test_bad_dashboard_values_fail_at_install_time(helm: str, args: list[str], message: str) -> None:
    result = test_chart.template(helm, *args)
    assert result.returncode != 0 and message in result.stderr, result.stderr


# --- on the api tier: what helm renders, applied ------------------------------------------------------------


@pytest.mark.api
def test_the_rendered_pod_is_admitted_under_the_restricted_pod_security_standard(
    helm: str, api_cluster: Any
) -> None:
    namespace = api_cluster.new_namespace("dash-pss")
    api_cluster.kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted")
    template = deployment(render(helm, *ENABLED))["spec"]["template"]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "dashboard", "labels": template["metadata"]["labels"]},
    }
    pod["spec"] = {**template["spec"], "serviceAccountName": "default"}
    result = api_cluster.kubectl(
        "create",
        "--dry-run=server",
        "-n",
        namespace,
        "-f",
        "-",
        "-o",
        "name",
        input=yaml.safe_dump(pod),
        check=False,
    )
    assert result.returncode == 0, result.stderr  # Pod Security admission runs on a server-side dry run too
    pod["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True  # the control
    refused = api_cluster.kubectl(
        "create", "--dry-run=server", "-n", namespace, "-f", "-", input=yaml.safe_dump(pod), check=False
    )
    assert refused.returncode != 0 and "violates PodSecurity" in refused.stderr


@pytest.fixture
def chart_account(helm: str, api_cluster: Any) -> Iterator[tuple[str, Any]]:
    """A namespace, and a kubeconfig of a ServiceAccount bound to exactly the chart's dashboard ClusterRole."""
    conftest.install_crd(api_cluster)
    namespace = api_cluster.new_namespace("dash-rbac")
    docs = render(helm, *ENABLED)
    [role] = [d for d in dashboard_docs(docs) if d["kind"] == "ClusterRole"]
    role["metadata"]["name"] = f"{namespace}-dashboard"
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": f"{namespace}-dashboard"},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": role["metadata"]["name"],
        },
        "subjects": [{"kind": "ServiceAccount", "name": "dashboard", "namespace": namespace}],
    }
    api_cluster.kubectl("create", "serviceaccount", "dashboard", "-n", namespace)
    api_cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all([role, binding]))
    yield namespace, api_cluster.token_kubeconfig(namespace, "dashboard")
    api_cluster.kubectl("delete", "clusterrolebinding,clusterrole", f"{namespace}-dashboard", check=False)


@pytest.mark.api
def test_the_dashboard_works_with_exactly_the_charts_read_only_role(
    api_cluster: Any, chart_account: Any
) -> None:
    namespace, kubeconfig = chart_account
    pipeline = {"apiVersion": "podline.dev/v1alpha1", "kind": "Pipeline", "metadata": {"name": "seen"},
                "spec": {"steps": [{"name": "a", "image": "busybox", "commands": ["true"]}]}}  # fmt: skip
    api_cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(pipeline))
    dashboard = browsing.DashboardProcess(
        kubeconfig, api_cluster.log_dir, "--read-only", name="dashboard-chart-rbac"
    )
    dashboard.start()
    try:
        with urllib.request.urlopen(
            f"{dashboard.url}/api/events?namespace={namespace}", timeout=30
        ) as stream:
            lines = iter(stream)
            assert next(lines).decode().strip() == "event: snapshot"
            snapshot = json.loads(next(lines).decode()[len("data: ") :])
        assert [row["key"] for row in snapshot["rows"]] == [f"{namespace}/seen"]
        assert snapshot["problem"] is None  # listed cluster-wide, as the chart's ClusterRole allows
    finally:
        dashboard.stop()
    assert "403" not in dashboard.log() and "Traceback" not in dashboard.log(), dashboard.log()
    who = f"system:serviceaccount:{namespace}:dashboard"
    for verb, resource in (
        ("patch", "pipelines.podline.dev"),
        ("get", "secrets"),
        ("get", "pods"),
        ("delete", "pipelines.podline.dev"),
    ):
        answer = api_cluster.kubectl("auth", "can-i", verb, resource, "-A", f"--as={who}", check=False)
        assert answer.stdout.strip() == "no", (verb, resource)
