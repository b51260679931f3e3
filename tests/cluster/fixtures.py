"""pytest fixtures for the test cluster (loaded from ``tests/conftest.py`` via ``pytest_plugins``).

Session-scoped: ``api_cluster`` (`apitier.ApiCluster`) and ``node_cluster`` (`nodetier.NodeCluster`).
Per test: ``api_namespace`` / ``node_namespace`` (a fresh namespace, deleted afterwards) and
``scripted_kubelet`` (a started `scripted_kubelet.ScriptedKubelet` on the api tier).

When binaries or packages are missing the cluster tests are skipped with the setup command to run —
except with ``CI=true``, where they fail: CI must never skip a tier silently. Tests that use a cluster
fixture get the ``api`` or ``node`` marker automatically, so ``-m "not node"`` deselects them.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterator

import pytest

from tests.cluster import apitier, binaries, clusters, nodetier, s3proxy
from tests.cluster import scripted_kubelet as scripted

_started: list[apitier.ApiCluster] = []
_MARKERS = {"api_cluster": "api", "api_namespace": "api", "scripted_kubelet": "api",
            "node_cluster": "node", "node_namespace": "node"}  # fmt: skip


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


def s3_server() -> s3proxy.S3Proxy:
    """A started s3proxy (a real S3-compatible server), or the test skipped when it is not installed — failed
    under CI=true, where it must not be."""
    try:
        return s3proxy.S3Proxy().start()
    except s3proxy.Missing as error:
        if in_ci():
            pytest.fail(f"{error} (CI=true: the S3 tests must not be skipped)", pytrace=False)
        pytest.skip(str(error))


def require_programs(programs: tuple[str, ...], what: str) -> dict[str, pathlib.Path]:
    """Where ``programs`` are; fails (in CI) or skips the test unless they and the static busybox are here."""
    found = {name: binaries.locate(name) for name in programs}
    missing = [name for name, path in found.items() if path is None]
    missing += [] if binaries.BUSYBOX.is_file() else [str(binaries.BUSYBOX)]
    if missing:
        message = f"{what} need {', '.join(missing)}; run `tests/cluster/setup.sh node` once"
        if in_ci():
            pytest.fail(message + " (CI=true: must not skip)", pytrace=False)
        pytest.skip(message)
    return {name: path for name, path in found.items() if path is not None}


def _unavailable(message: str) -> None:
    if in_ci():
        pytest.fail(f"{message} (CI=true: cluster tiers must not be skipped)", pytrace=False)
    pytest.skip(message)


def _start(tier: str) -> apitier.ApiCluster:
    if tier == "node" and os.geteuid() != 0:
        _unavailable("the node tier runs a kubelet and containerd and needs root")
    try:
        cluster = clusters.start(tier, owner="pytest")
    except binaries.MissingBinaries as error:
        _unavailable(str(error))
        raise  # not reached: _unavailable raises
    _started.append(cluster)
    return cluster


@pytest.fixture(scope="session")
def api_cluster() -> Iterator[apitier.ApiCluster]:
    cluster = _start("api")
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def node_cluster() -> Iterator[nodetier.NodeCluster]:
    cluster = _start("node")
    assert isinstance(cluster, nodetier.NodeCluster)
    yield cluster
    cluster.stop()


def _namespace(cluster: apitier.ApiCluster) -> Iterator[str]:
    name = cluster.new_namespace()
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def api_namespace(api_cluster: apitier.ApiCluster) -> Iterator[str]:
    yield from _namespace(api_cluster)


@pytest.fixture
def node_namespace(node_cluster: nodetier.NodeCluster) -> Iterator[str]:
    yield from _namespace(node_cluster)


@pytest.fixture
def scripted_kubelet(api_cluster: apitier.ApiCluster) -> Iterator[scripted.ScriptedKubelet]:
    """A scripted kubelet with default behaviour, running for one test (configure it before creating pods)."""
    client = api_cluster.api_client()
    kubelet = scripted.ScriptedKubelet(client)
    kubelet.start()
    yield kubelet
    kubelet.stop()
    client.close()  # type: ignore[no-untyped-call]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for fixture in getattr(item, "fixturenames", ()):
            if fixture in _MARKERS:
                item.add_marker(_MARKERS[fixture])


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int) -> None:
    if exitstatus != 0 and _started:
        for cluster in _started:
            terminalreporter.write_line(f"test cluster ({cluster.tier} tier) logs: {cluster.log_dir}")
