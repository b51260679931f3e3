"""The installed chart in namespaces mode (rbac.scope=namespaces), on the node tier: the checks of
test_chart_node.py that depend on the RBAC mode, with the operator confined to its watched namespaces.

A module of its own so its release never runs beside the cluster-mode one (see
`test_chart_node.operator_fixture`).
"""

from __future__ import annotations

import pytest

from tests.cluster import nodetier
from tests.e2e import operating
from tests.e2e import test_chart_node as incluster

pytestmark = pytest.mark.node

image = incluster.image
workspace = incluster.workspace
operator = incluster.operator_fixture("namespaces")


def test_installed_operator_is_available_healthy_and_serves_metrics(
    node_cluster: nodetier.NodeCluster, operator: incluster.InCluster, workspace: str
) -> None:
    incluster.test_installed_operator_is_available_healthy_and_serves_metrics(
        node_cluster, operator, workspace
    )


def test_private_image_through_image_pull_secrets_in_a_watched_namespace(
    node_cluster: nodetier.NodeCluster, operator: incluster.InCluster, workspace: str
) -> None:
    """The one scenario that reads a Secret and creates one: allowed here only in the watched namespaces."""
    incluster.test_scenario_run_by_the_in_cluster_operator(node_cluster, operator, workspace, "private-image")


def test_pipelines_outside_the_watched_namespaces_are_left_alone(
    node_cluster: nodetier.NodeCluster, operator: incluster.InCluster
) -> None:
    other = node_cluster.new_namespace("elsewhere")
    try:
        spec = {"steps": [{"name": "s", "image": node_cluster.registry.busybox, "commands": ["true"]}]}
        operating.apply(node_cluster, other, operating.pipeline("ignored", spec))
        watched = operator.watched[1]
        operating.apply(node_cluster, watched, operating.pipeline("served", spec))
        done = operating.wait_for_phase(node_cluster, watched, "served", timeout=180, operator=operator)
        assert done["phase"] == "Succeeded", done
        assert operating.status(node_cluster, other, "ignored") == {}, (
            "the operator acted outside its namespaces"
        )
        assert "Forbidden" not in operator.log(), operator.log()[-3000:]
    finally:
        node_cluster.kubectl("delete", "namespace", other, "--wait=false", check=False)


def test_helm_uninstall_keeps_the_crd_and_the_pipelines(
    node_cluster: nodetier.NodeCluster, operator: incluster.InCluster, workspace: str
) -> None:
    incluster.test_helm_uninstall_keeps_the_crd_and_the_pipelines(node_cluster, operator, workspace)
