"""Fixtures for operator tests: the real operator process, next to a test cluster."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e import operating

CRD = operating.ROOT / "crds" / "pipelines.podline.dev.yaml"


def private_cluster(api_cluster: Any, tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[Any]:
    """An api-tier cluster for one module alone (the shared cluster's binaries), with the CRD installed:
    for tests whose operator must be the only one acting (RBAC, chaos, secret hygiene)."""
    from tests.cluster import apitier

    private = apitier.ApiCluster(
        tmp_path_factory.mktemp(f"{name}-cluster"), api_cluster.programs, owner="pytest"
    )
    private.start()
    try:
        install_crd(private)
        yield private
    finally:
        private.stop()


def install_crd(cluster: Any) -> None:
    cluster.install_crds(CRD)  # applies, then polls until Established


@pytest.fixture(scope="session")
def api_operator(api_cluster: Any) -> Iterator[operating.OperatorProcess]:
    """One operator (admin credentials, all namespaces) for the api-tier tests that do not kill it."""
    install_crd(api_cluster)
    op = operating.OperatorProcess(api_cluster.kubeconfig, api_cluster.log_dir, name="operator-api")
    op.start()
    yield op
    op.stop()


@pytest.fixture
def api_env(
    api_cluster: Any, api_namespace: str, api_operator: operating.OperatorProcess, scripted_kubelet: Any
) -> Iterator[tuple[Any, str, operating.OperatorProcess, Any]]:
    if not api_operator.alive():
        api_operator.start()
    yield api_cluster, api_namespace, api_operator, scripted_kubelet
    assert api_operator.alive(), "the operator died during the test:\n" + api_operator.log()[-3000:]
