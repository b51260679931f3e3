"""The chart installed the way a cluster admin installs it, on the node tier: the image built from the
Dockerfile (tests/cluster/operator_image.py), ``helm install`` of charts/podline, the operator as a pod.

Nothing is special-cased for the tests: the operator pod logs in with its ServiceAccount through the
``kubernetes`` Service (kube-proxy, see tests/cluster/nodetier.py), in a namespace that enforces the
*restricted* Pod Security Standard, with the chart's RBAC and nothing more. Proven here in cluster mode, and in namespaces mode by
test_chart_node_namespaced.py (which reuses this module's fixtures and checks):

- the Deployment becomes Available and the kubelet's liveness probes of it succeed; the metrics endpoint
  answers from the pod (through its Service); ``helm test`` passes; ``helm uninstall`` keeps the CRD and
  the Pipelines;
- the node-tier e2e scenarios (tests/e2e/test_operator_node.py: a private image through
  ``image_pull_secrets``, each ``pull`` value, failure handling, a service, ``podline logs``) pass with the
  in-cluster operator instead of a local process (all of them in cluster mode; the private image in
  namespaces mode, where the operator may read Secrets only in its namespaces);
- ``helm upgrade`` with a changed value rolls the operator while pipelines run, and deleting the operator
  pod mid-run is survived: every step runs exactly once (each appends its name to a ledger in the shared
  workspace, which the last step checks) and every run ends Succeeded. A step holds each run until the
  operator has been replaced (the test then writes the file it waits for with ``kubectl exec``).

The run pods' runner image is the operator image itself (the chart's default, ``runner.image`` empty).
"""

from __future__ import annotations

import pathlib
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.cluster import nodetier, operator_image, pki
from tests.e2e import conftest, operating
from tests.e2e import test_chart_cluster as charts
from tests.e2e import test_operator_node as scenarios

pytestmark = pytest.mark.node
CHART = charts.CHART
RELEASE = "pl"  # objects are named "pl-podline"


@pytest.fixture(scope="module")
def image(node_cluster: nodetier.NodeCluster) -> operator_image.Image:
    """The operator image for the tree as it is (built if its inputs changed), in the node's registry."""
    if missing := operator_image.missing_programs():
        pytest.fail(f"the operator image needs {', '.join(missing)}: run tests/cluster/setup.sh node")
    built = operator_image.build(say=True)
    operator_image.push(built)
    return built


class InCluster:
    """The operator the chart runs, offering what tests/e2e/operating.OperatorProcess offers the scenarios
    (`log`, `alive`), plus its pods."""

    def __init__(self, cluster: nodetier.NodeCluster, helm: charts.Helm, namespace: str, release: str, mode: str,
                 watched: list[str]) -> None:  # fmt: skip
        self.cluster, self.helm, self.namespace, self.release = cluster, helm, namespace, release
        self.mode, self.watched = mode, watched
        self.fullname = f"{release}-podline"
        self.selector = f"app.kubernetes.io/instance={release},app.kubernetes.io/component!=test"

    def pods(self) -> list[dict[str, Any]]:
        items = charts.get_json(self.cluster, "pods", "-n", self.namespace, "-l", self.selector)["items"]
        return [p for p in items if not p["metadata"].get("deletionTimestamp")]

    def log(self) -> str:
        result = self.cluster.kubectl("logs", "-n", self.namespace, "-l", self.selector, "--tail=-1",
                                      "--prefix", "--max-log-requests=10", check=False)  # fmt: skip
        return result.stdout + result.stderr

    def alive(self) -> bool:
        deployment = charts.get_json(self.cluster, "deployment", self.fullname, "-n", self.namespace)
        conditions = {c["type"]: c["status"] for c in deployment.get("status", {}).get("conditions", [])}
        return conditions.get("Available") == "True"

    def restarts(self) -> int:
        return sum(
            s.get("restartCount", 0) for p in self.pods() for s in p["status"].get("containerStatuses", [])
        )


def install(helm: charts.Helm, cluster: nodetier.NodeCluster, image: operator_image.Image, home: str,
            mode: str, watched: list[str], *more: str) -> subprocess.CompletedProcess[str]:  # fmt: skip
    values = {
        "image.repository": operator_image.REPOSITORY,
        "image.tag": image.tag,
        # as tests/e2e/test_operator_node.py: a test that ends in time shows an unpullable image failed at once
        "operator.pullTimeoutSeconds": "600",
        "operator.resyncSeconds": "5",
        "livenessProbe.initialDelaySeconds": "1",
        "livenessProbe.periodSeconds": "2",
    }
    sets = [arg for key, value in values.items() for arg in ("--set", f"{key}={value}")]
    return helm("install", RELEASE, str(CHART), "--namespace", home, "--wait", "--timeout", "150s",
                *charts.mode_values(mode, watched), *sets, *more)  # fmt: skip


def operator_fixture(mode: str) -> Any:
    """A module's ``operator`` fixture: the chart installed in that RBAC mode, uninstalled after the
    module. One module per mode, so one release runs at a time: a cluster-mode operator would also serve
    the namespaces-mode pipelines and hide a missing permission."""

    @pytest.fixture(scope="module")
    def operator(
        node_cluster: nodetier.NodeCluster,
        image: operator_image.Image,
        tmp_path_factory: pytest.TempPathFactory,
    ) -> Iterator[InCluster]:
        conftest.install_crd(node_cluster)
        helm = charts.Helm(node_cluster, tmp_path_factory.mktemp("helm"))
        home = node_cluster.new_namespace("podline-system")
        node_cluster.kubectl("label", "namespace", home, *[f"{k}={v}" for k, v in charts.RESTRICTED.items()])
        watched = [node_cluster.new_namespace("ci") for _ in range(2)] if mode == "namespaces" else []
        result = install(helm, node_cluster, image, home, mode, watched)
        assert "STATUS: deployed" in result.stdout, result.stdout + result.stderr
        yield InCluster(node_cluster, helm, home, RELEASE, mode, watched)
        helm("uninstall", RELEASE, "--namespace", home, "--wait", "--ignore-not-found", check=False)
        for namespace in (home, *watched):
            node_cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)

    return operator


operator = operator_fixture("cluster")


@pytest.fixture
def workspace(node_cluster: nodetier.NodeCluster, operator: InCluster) -> Iterator[str]:
    """Where a test's Pipelines go: a fresh namespace (cluster mode) or a watched one (namespaces mode)."""
    if operator.mode == "namespaces":
        yield operator.watched[0]
        node_cluster.kubectl(
            "delete", "pipelines.podline.dev", "--all", "-n", operator.watched[0], check=False
        )
        return
    name = node_cluster.new_namespace()
    yield name
    node_cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def _probe_successes(cluster: nodetier.NodeCluster, pod: str) -> int:
    """How many liveness probes of the pod's operator container succeeded, by the kubelet's own count."""
    text = cluster.kubectl("get", "--raw", f"/api/v1/nodes/{nodetier.NODE_NAME}/proxy/metrics/probes").stdout
    total = 0
    for line in text.splitlines():
        if line.startswith("prober_probe_total{") and f'pod="{pod}"' in line and 'probe_type="Liveness"' in line \
                and 'result="successful"' in line and 'container="operator"' in line:  # fmt: skip
            total += int(float(line.rsplit(" ", 1)[1]))
    return total


def _metrics(cluster: nodetier.NodeCluster, operator: InCluster) -> str:
    """/metrics of the operator pod, through its Service (the apiserver's service proxy)."""
    path = (
        f"/api/v1/namespaces/{operator.namespace}/services/{operator.fullname}-metrics:metrics/proxy/metrics"
    )
    return cluster.kubectl("get", "--raw", path).stdout


# ---- installed, healthy, observable -------------------------------------------------------------------


def test_installed_operator_is_available_healthy_and_serves_metrics(
    node_cluster: nodetier.NodeCluster, operator: InCluster, workspace: str
) -> None:
    assert operator.alive(), "helm install --wait returned but the Deployment is not Available"
    # logged in through the `kubernetes` Service: the liveness probe alone would not notice that it cannot
    spec = {"steps": [{"name": "hello", "image": node_cluster.registry.busybox, "commands": ["echo hello"]}]}
    operating.apply(node_cluster, workspace, operating.pipeline("first", spec))
    first = operating.wait_for_phase(node_cluster, workspace, "first", timeout=180, operator=operator)
    assert first["phase"] == "Succeeded", first
    [pod] = operator.pods()
    spec = pod["spec"]
    assert not spec.get("hostNetwork") and spec["serviceAccountName"] == operator.fullname
    charts._check_restricted_admission_is_enforced(node_cluster, operator.namespace, pod)
    operating.wait_for(lambda: _probe_successes(node_cluster, pod["metadata"]["name"]) >= 2, timeout=60,
                       what="the kubelet's liveness probes of the operator to succeed")  # fmt: skip
    assert operator.restarts() == 0, operator.log()[-3000:]
    log = operator.log()
    assert "Traceback" not in log and "Forbidden" not in log, log[-3000:]
    metrics = _metrics(node_cluster, operator)
    assert 'podline_runs_total{phase="Succeeded"} 1.0' in metrics.splitlines(), metrics[:3000]
    tested = operator.helm("test", operator.release, "--namespace", operator.namespace, "--logs", "--timeout", "120s",
                           check=False)  # fmt: skip
    if tested.returncode != 0:
        hook = node_cluster.kubectl("describe", "pod", "-n", operator.namespace, f"{operator.fullname}-test-metrics",
                                    check=False).stdout  # fmt: skip
        raise AssertionError(f"helm test failed:\n{tested.stdout}{tested.stderr}\n{hook}")
    assert "Succeeded" in tested.stdout, tested.stdout
    assert "answers with podline's metrics" in tested.stdout, tested.stdout


# ---- the node-tier scenarios, run by the in-cluster operator -------------------------------------------

SCENARIOS: dict[str, tuple[Callable[..., None], tuple[Any, ...]]] = {
    "commands-exit-codes-logs": (scenarios.test_commands_run_for_real_with_exit_codes_and_logs, ()),
    "private-image": (scenarios.test_private_image_runs_with_image_pull_secrets, ()),
    "private-image-without-secret": (scenarios.test_private_image_without_the_secret_fails_with_a_clear_reason, ()),
    "pull-never-absent": (scenarios.test_pull_never_fails_when_the_image_is_absent, ()),
    "pull-never-cached": (scenarios.test_pull_never_uses_the_node_image_without_asking_the_registry, ()),
    "pull-always": (scenarios.test_pull_always_asks_the_registry_and_if_not_exists_does_not, ("always", True)),
    "pull-if-not-exists": (scenarios.test_pull_always_asks_the_registry_and_if_not_exists_does_not,
                           ("if-not-exists", False)),
    "service-and-failure-ignore": (scenarios.test_service_is_reachable_from_steps_and_failure_ignore, ()),
}  # fmt: skip


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_scenario_run_by_the_in_cluster_operator(
    node_cluster: nodetier.NodeCluster, operator: InCluster, workspace: str, scenario: str
) -> None:
    run, args = SCENARIOS[scenario]
    run((node_cluster, workspace, operator, node_cluster.registry), *args)
    assert operator.alive() and operator.restarts() == 0, operator.log()[-3000:]
    if scenario == "commands-exit-codes-logs":
        # the chart's default archive (an emptyDir, pods/log granted): the ended run's pod gets archived
        operating.wait_for(lambda: "podline.dev/archived" in node_cluster.kubectl(
            "get", "pods", "-n", workspace, "-o", "jsonpath={.items[*].metadata.annotations}").stdout,
            timeout=60, what="the in-cluster operator to archive the run")  # fmt: skip


def test_podline_logs_into_a_closed_pipe_ends_quietly(
    node_cluster: nodetier.NodeCluster, operator: InCluster, workspace: str
) -> None:
    """`podline logs x | head -1`: no BrokenPipeError traceback; the exit status of a SIGPIPE."""
    chatter = f"for i in $(seq 1 2000); do echo line-$i-{'x' * 200}; done"  # far more than a pipe holds
    spec = {"steps": [{"name": "chatty", "image": node_cluster.registry.busybox, "commands": [chatter]}]}
    operating.apply(node_cluster, workspace, operating.pipeline("chatty", spec))
    done = operating.wait_for_phase(node_cluster, workspace, "chatty", timeout=180, operator=operator)
    assert done["phase"] == "Succeeded", done
    env = {"KUBECONFIG": str(node_cluster.kubeconfig), "PATH": "/usr/bin:/bin"}
    with subprocess.Popen([sys.executable, "-m", "podline", "logs", "chatty", "-n", workspace], env=env,
                          cwd=operating.ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as podline:  # fmt: skip
        assert podline.stdout is not None and podline.stderr is not None
        first = podline.stdout.readline()
        podline.stdout.close()
        errors = podline.stderr.read().decode()
        code = podline.wait(timeout=60)
    assert first.startswith(b"==> chatty"), first
    assert "Traceback" not in errors and "BrokenPipe" not in errors, errors
    assert code == 141, (code, errors)


# ---- an operator replaced mid-run ------------------------------------------------------------------------

LEDGER_STEPS = 5
GATE = "s3"  # this step waits for a file the test writes once the operator has been replaced


def ledger_pipeline(name: str, registry: Any) -> dict[str, Any]:
    """Steps that each append their name to a ledger in the workspace; the last one fails the run unless
    every earlier step is there exactly once, in order (so a step run twice, or lost, fails it). Step
    `GATE` holds the run until `open_gate`, so the run is certainly still going when the operator changes."""
    names = [f"s{i}" for i in range(1, LEDGER_STEPS + 1)]
    steps = [{"name": n, "image": registry.busybox, "commands": [f"echo {n} >> ledger"]} for n in names]
    steps[names.index(GATE)]["commands"].append("until [ -f gate ]; do sleep 0.2; done")
    expected = " ".join(names)
    steps.append({"name": "check", "image": registry.busybox, "commands": [
        "cat ledger", f'test "$(tr "\\n" " " < ledger)" = "{expected} "']})  # fmt: skip
    return operating.pipeline(name, {"steps": steps})


def _at_gate(cluster: nodetier.NodeCluster, namespace: str, name: str) -> bool:
    return operating.steps(operating.status(cluster, namespace, name)).get(GATE, {}).get("state") == "running"


def open_gate(cluster: nodetier.NodeCluster, namespace: str, name: str) -> None:
    pod = operating.status(cluster, namespace, name)["podName"]
    cluster.kubectl("exec", "-n", namespace, pod, "-c", f"step-{GATE}", "--", "sh", "-c",
                    'touch "$DRONE_WORKSPACE/gate"')  # fmt: skip


def _check_ledgers(
    cluster: nodetier.NodeCluster, namespace: str, names: list[str], operator: InCluster
) -> None:
    for name in names:
        assert operating.status(cluster, namespace, name).get("phase") == "Running", name
        open_gate(cluster, namespace, name)
    for name in names:
        status = operating.wait_for_phase(cluster, namespace, name, timeout=300, operator=operator)
        by = operating.steps(status)
        assert status["phase"] == "Succeeded", (status, operator.log()[-3000:])
        codes = [by[f"s{i}"]["exitCode"] for i in range(1, LEDGER_STEPS + 1)] + [by["check"]["exitCode"]]
        assert codes == [0] * (LEDGER_STEPS + 1), by
        out = scenarios.logs(cluster, namespace, name)
        assert "\n".join(f"s{i}" for i in range(1, LEDGER_STEPS + 1)) + "\n" in out, out


def test_helm_upgrade_rolls_the_operator_while_pipelines_run(
    node_cluster: nodetier.NodeCluster, operator: InCluster, workspace: str, tmp_path: pathlib.Path
) -> None:
    """The upgrade also adds operator.registryCA: the new pod (uid 65532, read-only root) starts only if it
    can read the mounted bundle, as the operator reads and checks PODLINE_REGISTRY_CA_FILE at start."""
    names = ["roll-a", "roll-b", "roll-c"]
    operating.apply(node_cluster, workspace, *(ledger_pipeline(n, node_cluster.registry) for n in names))
    operating.wait_for(lambda: all(_at_gate(node_cluster, workspace, n) for n in names), timeout=180,
                       what=f"every pipeline to be running step {GATE}")  # fmt: skip
    ca = pki.make_ca(tmp_path / "ca", "registry-ca")
    node_cluster.kubectl("create", "configmap", "registry-ca", "-n", operator.namespace,
                         f"--from-file=ca.crt={ca.cert}")  # fmt: skip
    [old] = operator.pods()
    upgraded = operator.helm("upgrade", operator.release, str(CHART), "--namespace", operator.namespace,
                             "--reuse-values", "--set", "logging.level=DEBUG",
                             "--set", "operator.registryCA.configMap.name=registry-ca",
                             "--wait", "--timeout", "150s")  # fmt: skip
    assert "REVISION: 2" in upgraded.stdout, upgraded.stdout + upgraded.stderr

    def running() -> list[str]:
        return [p["metadata"]["name"] for p in operator.pods()]

    operating.wait_for(lambda: len(now := running()) == 1 and now != [old["metadata"]["name"]], timeout=90,
                       what="the rollout to leave one new operator pod")  # fmt: skip
    [new] = operator.pods()
    env = {e["name"]: e.get("value") for e in new["spec"]["containers"][0]["env"]}
    assert env["PODLINE_LOG_LEVEL"] == "DEBUG" and new["metadata"]["name"] != old["metadata"]["name"]
    assert env["PODLINE_REGISTRY_CA_FILE"] == "/etc/podline/registry-ca/ca.pem", env
    assert operator.alive() and operator.restarts() == 0, operator.log()[-3000:]
    _check_ledgers(node_cluster, workspace, names, operator)


def test_operator_pod_deleted_mid_run_the_run_still_ends_right(
    node_cluster: nodetier.NodeCluster, operator: InCluster, workspace: str
) -> None:
    operating.apply(node_cluster, workspace, ledger_pipeline("crash", node_cluster.registry))
    operating.wait_for(lambda: _at_gate(node_cluster, workspace, "crash"), timeout=180,
                       what=f"the pipeline to run step {GATE}")  # fmt: skip
    [old] = operator.pods()
    node_cluster.kubectl("delete", "pod", old["metadata"]["name"], "-n", operator.namespace, "--grace-period=0",
                         "--force", "--wait=false")  # fmt: skip

    def replaced() -> bool:
        pods = operator.pods()
        return bool(pods) and pods[0]["metadata"]["name"] != old["metadata"]["name"] and operator.alive()

    operating.wait_for(replaced, timeout=120, what="the ReplicaSet's replacement operator pod")
    _check_ledgers(node_cluster, workspace, ["crash"], operator)


# ---- uninstall (last: it ends the release) ---------------------------------------------------------------


def test_helm_uninstall_keeps_the_crd_and_the_pipelines(
    node_cluster: nodetier.NodeCluster, operator: InCluster, workspace: str
) -> None:
    spec = {"steps": [{"name": "hello", "image": node_cluster.registry.busybox, "commands": ["echo hello"]}]}
    operating.apply(node_cluster, workspace, operating.pipeline("kept", spec))
    done = operating.wait_for_phase(node_cluster, workspace, "kept", timeout=180, operator=operator)
    assert done["phase"] == "Succeeded", done
    operator.helm("uninstall", operator.release, "--namespace", operator.namespace, "--wait")
    assert not charts.exists(node_cluster, "deployment", operator.fullname, "-n", operator.namespace)
    assert charts.exists(node_cluster, "crd", "pipelines.podline.dev")
    kept = operating.status(node_cluster, workspace, "kept")
    assert kept.get("phase") == "Succeeded", "the Pipeline and its status outlive the release"
    assert "hello" in scenarios.logs(node_cluster, workspace, "kept")
