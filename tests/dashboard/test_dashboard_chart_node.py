"""The chart's dashboard installed for real (node tier): ``helm install --set dashboard.enabled=true`` of
the image built from the Dockerfile, into a namespace enforcing the restricted Pod Security Standard.

The dashboard pod is admitted and becomes ready (its readiness probe is /healthz: the Pipelines listed with
its own ServiceAccount through the ``kubernetes`` Service); from this machine, through its ClusterIP
Service, it serves the page (whose assets come from the installed package, not a checkout) and lists a
Pipeline; read-only by default, it refuses a rerun even with its page's token.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.cluster import nodetier, operator_image
from tests.e2e import conftest, operating
from tests.e2e import test_chart_cluster as charts
from tests.e2e import test_chart_node as chart_node
from tests.e2e.test_chart_node import image  # noqa: F401  (the module's operator image fixture)

pytestmark = pytest.mark.node


@pytest.fixture
def installed(
    node_cluster: nodetier.NodeCluster,
    image: operator_image.Image,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, str]]:
    conftest.install_crd(node_cluster)
    helm = charts.Helm(node_cluster, tmp_path_factory.mktemp("helm"))
    home = node_cluster.new_namespace("podline-system")
    node_cluster.kubectl("label", "namespace", home, *[f"{k}={v}" for k, v in charts.RESTRICTED.items()])
    result = chart_node.install(
        helm, node_cluster, image, home, "cluster", [], "--set", "dashboard.enabled=true"
    )
    assert "STATUS: deployed" in result.stdout, result.stdout + result.stderr
    try:
        yield home, f"{chart_node.RELEASE}-podline-dashboard"
    finally:
        helm(
            "uninstall", chart_node.RELEASE, "--namespace", home, "--wait", "--ignore-not-found", check=False
        )


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read(65536)
    except urllib.error.HTTPError as error:
        return error.code, b""
    except (urllib.error.URLError, OSError):
        return 0, b""


def test_the_charts_dashboard_runs_restricted_and_read_only(node_cluster: Any, installed: Any) -> None:
    home, name = installed
    ci = node_cluster.new_namespace("ci")
    operating.apply(
        node_cluster,
        ci,
        operating.pipeline(
            "shown", {"steps": [{"name": "a", "image": node_cluster.registry.busybox, "commands": ["true"]}]}
        ),
    )
    [pod] = charts.get_json(node_cluster, "pods", "-n", home, "-l", "app.kubernetes.io/component=dashboard")[
        "items"
    ]
    assert pod["status"]["phase"] == "Running"  # admitted under the restricted standard, ready (helm --wait)
    service = charts.get_json(node_cluster, "service", name, "-n", home)
    assert service["spec"]["type"] == "ClusterIP"
    base = f"http://{service['spec']['clusterIP']}:{service['spec']['ports'][0]['port']}"
    operating.wait_for(lambda: _get(f"{base}/healthz")[0] == 200, timeout=60, what="the dashboard's Service")
    status, page = _get(f"{base}/")
    assert status == 200 and b"/static/dashboard.js" in page
    assert _get(f"{base}/static/dashboard.js")[0] == 200  # the assets ship in the installed package
    with urllib.request.urlopen(f"{base}/api/events?namespace={ci}", timeout=30) as stream:
        lines = iter(stream)
        assert next(lines).decode().strip() == "event: snapshot"
        snapshot = json.loads(next(lines).decode()[len("data: ") :])
    assert [row["key"] for row in snapshot["rows"]] == [f"{ci}/shown"] and snapshot["problem"] is None
    session = json.loads(_get(f"{base}/api/session")[1])
    assert session["readOnly"] is True
    request = urllib.request.Request(f"{base}/api/runs/{ci}/shown/rerun", method="POST", data=b"{}")
    request.add_header("X-Podline-Token", session["token"])
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 403
    logs = node_cluster.kubectl(
        "logs", "-n", home, "-l", "app.kubernetes.io/component=dashboard", "--tail=-1"
    ).stdout
    assert "Traceback" not in logs and "403" not in logs, logs
