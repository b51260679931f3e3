"""A past run read from a user's machine through the operator (issue 18; docs/archive.md "Reading it").

The chart installed as an admin installs it (the image built from the Dockerfile, the operator a pod, its
default archive: a directory on an emptyDir inside the operator pod, which nothing else can read). A
Pipeline runs; once its pod is archived the test deletes it; then two people with client certificates (the
way this cluster's users log in), both allowed to read Pipelines in the namespace (the chart's ``-view``):

- the one bound to the chart's ``-archive-reader`` Role gets the run's logs with ``podline logs --run`` and
  its past runs with ``podline get``, through the API server's service proxy to the operator's endpoint;
  (``podline logs`` without ``--run`` too: the run has ended and its pod is gone), and, once the Pipeline is
  rerun, ``podline dashboard`` run as that user lists the archived run with its steps;
- the one without it gets 403, and ``podline`` names the permission and the Role to bind;
- the Role's ``get`` reaches that one Service: not the operator's metrics Service next to it, and no write;
- once the Pipeline is deleted, its archived run is still read (``archive.onPipelineDelete: keep``).
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import urllib.request
from collections.abc import Iterator

import pytest
from podline.core import conventions

from tests.cluster import kubeconfigs, nodetier, pki
from tests.dashboard import browsing
from tests.e2e import operating
from tests.e2e.test_chart_node import InCluster, image, operator_fixture  # noqa: F401 - the chart's fixtures

pytestmark = pytest.mark.node
operator = operator_fixture("cluster")


def person(cluster: nodetier.NodeCluster, directory: pathlib.Path, name: str) -> pathlib.Path:
    """A kubeconfig of a user with a client certificate signed by the cluster's CA (no groups)."""
    pair = pki.issue(cluster.ca, directory, name, common_name=name)
    return kubeconfigs.with_certificate(
        directory / f"{name}.kubeconfig", cluster.server, cluster.ca.cert, name, pair
    )


def podline(kubeconfig: pathlib.Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"KUBECONFIG": str(kubeconfig), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "podline", *args], env=env, cwd=operating.ROOT,
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip


@pytest.fixture
def archived_run(node_cluster: nodetier.NodeCluster, operator: InCluster) -> Iterator[tuple[str, str]]:
    """(namespace, run) of a Pipeline ``told`` whose run was archived and whose pod was then deleted."""
    namespace = node_cluster.new_namespace()
    spec = {"steps": [{"name": "say", "image": node_cluster.registry.busybox,
                       "commands": ["echo archived-line-1", "echo archived-line-2 >&2"]}]}  # fmt: skip
    operating.apply(node_cluster, namespace, operating.pipeline("told", spec))
    done = operating.wait_for_phase(node_cluster, namespace, "told", timeout=180, operator=operator)
    assert done["phase"] == "Succeeded", done
    pod = done["podName"]

    def archived() -> bool:
        meta = operating.get(node_cluster, namespace, "pod", pod)["metadata"]
        return conventions.ANNOTATION_ARCHIVED in (meta.get("annotations") or {})

    operating.wait_for(archived, timeout=120, what="the run's pod to be marked archived")
    node_cluster.kubectl("delete", "pod", pod, "-n", namespace, "--wait=true")
    yield namespace, done["run"]
    node_cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def test_a_reader_reads_a_past_run_through_the_operator_and_others_are_told_what_they_lack(
    node_cluster: nodetier.NodeCluster,
    operator: InCluster,
    archived_run: tuple[str, str],
    tmp_path: pathlib.Path,
) -> None:
    namespace, run = archived_run
    home, service = operator.namespace, f"{operator.fullname}-archive"
    reader, outsider = person(node_cluster, tmp_path, "ada"), person(node_cluster, tmp_path, "bob")
    for user in ("ada", "bob"):
        node_cluster.kubectl("create", "rolebinding", f"{user}-view", "-n", namespace,
                             f"--clusterrole={operator.fullname}-view", f"--user={user}")  # fmt: skip
    node_cluster.kubectl("create", "rolebinding", "ada-archive", "-n", home,
                         f"--role={operator.fullname}-archive-reader", "--user=ada")  # fmt: skip
    where = ("--operator", f"{home}/{service}")
    gone = node_cluster.kubectl("get", "pods", "-n", namespace, "-o", "name").stdout.split()
    assert gone == [], gone

    logs = podline(reader, "logs", "told", "-n", namespace, "--run", run, *where)
    assert logs.returncode == 0, logs.stdout + logs.stderr
    assert logs.stdout == (
        f"==> say (succeeded, exit 0)\n+ echo archived-line-1\narchived-line-1\n+ echo archived-line-2 >&2\n"
        f"archived-line-2\n==> run {run}: Succeeded (archived)\n"
    ), logs.stdout
    current = podline(reader, "logs", "told", "-n", namespace, *where)  # no --run: the run's pod is gone
    assert current.returncode == 0 and current.stdout == logs.stdout, current.stdout + current.stderr
    summary = podline(reader, "get", "told", "-n", namespace, *where)
    assert summary.returncode == 0 and f"past run {run}" in summary.stdout, summary.stdout + summary.stderr

    refused = podline(outsider, "logs", "told", "-n", namespace, "--run", run, *where)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr, refused.stderr
    assert "`get` on `services/proxy`" in refused.stderr, refused.stderr
    assert (
        f"--role={operator.fullname}-archive-reader" in refused.stderr
        and "archived-line" not in refused.stdout
    )
    said = podline(outsider, "get", "told", "-n", namespace, *where)
    assert said.returncode == 0 and "(past runs: may not read the operator's archive" in said.stdout, (
        said.stdout
    )

    def raw(kubeconfig: pathlib.Path, path: str) -> subprocess.CompletedProcess[str]:
        return node_cluster.kubectl("get", "--raw", path, kubeconfig=kubeconfig, check=False)

    proxy = f"/api/v1/namespaces/{home}/services"
    answer = raw(reader, f"{proxy}/{service}:archive/proxy/v1/runs/{namespace}/told")
    assert answer.returncode == 0 and [r["run"] for r in json.loads(answer.stdout)["runs"]] == [run]
    metrics = raw(reader, f"{proxy}/{operator.fullname}-metrics:metrics/proxy/metrics")
    assert metrics.returncode != 0 and "forbidden" in metrics.stderr.lower(), metrics.stderr
    # the dashboard, as the reader: once rerun, the archived run is an earlier run, its steps read through the operator
    node_cluster.kubectl(
        "annotate", "--overwrite", "-n", namespace, "pipeline", "told", "podline.dev/rerun=again"
    )
    operating.wait_for(lambda: operating.status(node_cluster, namespace, "told").get("run") != run, timeout=60,
                       what="the rerun to start")  # fmt: skip
    assert (
        operating.wait_for_phase(node_cluster, namespace, "told", timeout=180, operator=operator)["phase"]
        == "Succeeded"
    )
    board = browsing.DashboardProcess(reader, node_cluster.log_dir, "--operator", f"{home}/{service}",
                                      f"--namespace={namespace}", name="dashboard-archive-reader").start()  # fmt: skip
    try:
        with urllib.request.urlopen(f"{board.url}/api/history/{namespace}/told", timeout=30) as response:
            history = json.loads(response.read())
    finally:
        board.stop()
    [earlier] = [r for r in history["runs"] if r["run"] == run]
    assert history["problem"] in (None, "") and [s["name"] for s in earlier["steps"]] == ["say"], history
    node_cluster.kubectl("delete", "pipeline", "told", "-n", namespace, "--wait=true")  # its runs are kept
    after = podline(reader, "logs", "told", "-n", namespace, "--run", run, *where)
    assert after.returncode == 0 and after.stdout == logs.stdout, after.stdout + after.stderr
    for verb in ("create", "update", "delete"):
        can = node_cluster.kubectl("auth", "can-i", verb, f"services/{service}:archive", "--subresource=proxy",
                                   "-n", home, kubeconfig=reader, check=False)  # fmt: skip
        assert can.stdout.strip() == "no", (verb, can.stdout)
