"""Where the operator pod finds the API server: the `kubernetes` Service's variables, as client-go reads
them (kopf's own service-account login names kubernetes.default.svc, which needs cluster DNS). The node
tier proves the whole login in a pod (tests/e2e/test_chart_node.py)."""

from __future__ import annotations

import pytest
from podline.shell import kube

DEFAULT = "https://kubernetes.default.svc"


@pytest.mark.parametrize(("environ", "server"), [
    ({"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}, "https://10.96.0.1:443"),
    ({"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"}, "https://[fd00::1]:443"),
    ({"KUBERNETES_SERVICE_HOST": "10.96.0.1"}, DEFAULT),  # half a Service is none
    ({"KUBERNETES_SERVICE_PORT": "443"}, DEFAULT),
    ({"KUBERNETES_SERVICE_HOST": "", "KUBERNETES_SERVICE_PORT": ""}, DEFAULT),
    ({}, DEFAULT),
])  # fmt: skip
def test_in_cluster_server(environ: dict[str, str], server: str) -> None:
    assert kube.in_cluster_server(environ, DEFAULT) == server
