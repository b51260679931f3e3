"""The api tier is a real Kubernetes: pinned version, CRDs, garbage collection, TokenRequest with RBAC,
and single components can be restarted under a running cluster."""

from __future__ import annotations

import json
import pathlib

import pytest

from tests.cluster import apitier, binaries, components

pytestmark = pytest.mark.api

ROOT = pathlib.Path(__file__).resolve().parents[2]
PODLINE_CRD = ROOT / "crds" / "pipelines.podline.dev.yaml"
TINY_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.test.podline.dev}
spec:
  group: test.podline.dev
  scope: Namespaced
  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
"""


def wait_until(check, what: str, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    assert components.poll(check, timeout=timeout), f"timed out after {timeout:.0f}s waiting until {what}"


def test_server_reports_the_pinned_kubernetes_version(api_cluster: apitier.ApiCluster) -> None:
    if binaries.provided_by_assets("kube-apiserver"):
        pytest.skip("KUBEBUILDER_ASSETS provides kube-apiserver, so its version is not the pinned one")
    version = json.loads(api_cluster.kubectl("version", "-o", "json").stdout)
    assert version["serverVersion"]["gitVersion"] == binaries.KUBERNETES_VERSION == "v1.33.13"
    assert version["serverVersion"]["minor"] == "33"


def test_a_crd_is_accepted_and_served(api_cluster: apitier.ApiCluster) -> None:
    names = api_cluster.install_crds(PODLINE_CRD if PODLINE_CRD.exists() else TINY_CRD)
    assert names == ["pipelines.podline.dev" if PODLINE_CRD.exists() else "widgets.test.podline.dev"]
    listing = json.loads(api_cluster.kubectl("get", names[0], "--all-namespaces", "-o", "json").stdout)
    assert listing["kind"] == "List"


def test_garbage_collector_deletes_dependents_of_a_deleted_owner(
    api_cluster: apitier.ApiCluster, api_namespace: str
) -> None:
    api_cluster.kubectl("create", "configmap", "owner", "-n", api_namespace)
    uid = api_cluster.kubectl(
        "get", "configmap", "owner", "-n", api_namespace, "-o", "jsonpath={.metadata.uid}"
    ).stdout
    dependent = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "dependent",
            "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid}],
        },
    }
    api_cluster.kubectl("apply", "-n", api_namespace, "-f", "-", input=json.dumps(dependent))
    api_cluster.kubectl("delete", "configmap", "owner", "-n", api_namespace)

    def dependent_gone() -> bool:
        found = api_cluster.kubectl("get", "configmap", "dependent", "-n", api_namespace, check=False)
        return found.returncode != 0 and "NotFound" in found.stderr

    wait_until(dependent_gone, "the garbage collector deleted the dependent ConfigMap")


def test_token_kubeconfig_gets_exactly_the_serviceaccounts_rbac(
    api_cluster: apitier.ApiCluster, api_namespace: str
) -> None:
    ns = api_namespace
    api_cluster.kubectl("create", "serviceaccount", "reader", "-n", ns)
    api_cluster.kubectl(
        "create", "role", "read-configmaps", "-n", ns, "--verb=get,list", "--resource=configmaps"
    )
    api_cluster.kubectl("create", "rolebinding", "reader", "-n", ns, "--role=read-configmaps",
                        f"--serviceaccount={ns}:reader")  # fmt: skip
    api_cluster.kubectl("create", "configmap", "visible", "-n", ns, "--from-literal=a=b")
    kubeconfig = api_cluster.token_kubeconfig(ns, "reader")

    whoami = json.loads(api_cluster.kubectl("auth", "whoami", "-o", "json", kubeconfig=kubeconfig).stdout)
    assert whoami["status"]["userInfo"]["username"] == f"system:serviceaccount:{ns}:reader"
    allowed = api_cluster.kubectl(
        "get", "configmap", "visible", "-n", ns, "-o", "name", kubeconfig=kubeconfig
    )
    assert allowed.stdout.strip() == "configmap/visible"
    for denied_args in (["get", "secrets", "-n", ns], ["get", "configmaps", "-n", "default"],
                        ["delete", "configmap", "visible", "-n", ns]):  # fmt: skip
        denied = api_cluster.kubectl(*denied_args, kubeconfig=kubeconfig, check=False)
        assert denied.returncode != 0, denied_args
        assert "forbidden" in denied.stderr.lower(), denied.stderr
    assert api_cluster.kubectl("get", "configmap", "visible", "-n", ns, check=False).returncode == 0


def test_restarted_apiserver_and_etcd_keep_the_cluster_state(
    api_cluster: apitier.ApiCluster, api_namespace: str
) -> None:
    api_cluster.kubectl("create", "configmap", "survivor", "-n", api_namespace, "--from-literal=k=v")
    api_cluster.restart_apiserver()
    got = api_cluster.kubectl("get", "configmap", "survivor", "-n", api_namespace, "-o", "jsonpath={.data.k}")
    assert got.stdout == "v"

    api_cluster.stop_etcd()
    without_etcd = api_cluster.kubectl("get", "configmap", "survivor", "-n", api_namespace,
                                       "--request-timeout=3s", check=False)  # fmt: skip
    assert without_etcd.returncode != 0
    api_cluster.start_etcd()
    wait_until(
        lambda: (
            api_cluster.kubectl("get", "configmap", "survivor", "-n", api_namespace, check=False).returncode
            == 0
        ),
        "the apiserver served again after etcd came back",
    )
