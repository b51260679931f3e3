"""RBAC and isolation: the operator with exactly the Helm chart's permissions, in both modes (api tier).

Only what ``helm template charts/podline`` renders for RBAC is applied (the ServiceAccount, the operator's
(Cluster)Role and binding(s), the user roles); the operator runs as a local process with a token of the
chart's ServiceAccount and the PODLINE_* environment the chart's Deployment would give it, at DEBUG so
every API request it makes is in its log. It runs on a private api-tier cluster of this module: on the
shared one, another test's operator (admin, all namespaces) could do the work and hide a missing permission.

- Namespace-scoped and cluster-wide, it passes the whole e2e suite of ``test_operator_runs.py`` (each of its
  tests in a namespace of its own, a few at a time), and the API refuses it nothing.
- Namespace-scoped, it cannot read or write outside its namespaces (``kubectl auth can-i`` as its
  ServiceAccount), and a Pipeline in another namespace is never touched (no request of the operator even
  names that namespace); Pipelines that name the other namespace wherever a spec can get nowhere either.
- Someone with only the chart's ``edit`` user role (Pipelines, but no pods and no Secrets) gets no
  privileged pod, no host mount, no unconfined AppArmor profile (pod annotations) and no other
  ServiceAccount through podline unless the operator's configuration allows it (Failed, naming the field);
  when it does, the namespace's Pod Security admission still applies (Failed, with the admission's
  message, instead of a run that never starts).
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import subprocess
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import chaos
from tests.cluster import apitier, scripted_kubelet
from tests.e2e import conftest as e2e_conftest
from tests.e2e import operating
from tests.e2e import test_operator_runs as e2e_suite

pytestmark = pytest.mark.api
CHART = operating.ROOT / "charts" / "podline"
RBAC_KINDS = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")
SUITE = sorted(
    (name, test) for name, test in vars(e2e_suite).items() if name.startswith("test_") and callable(test)
)
PARALLEL = 4  # e2e tests at once: each polls kubectl, and CI machines have two cores
REQUEST = re.compile(r'"(GET|POST|PATCH|PUT|DELETE) (/[^ ?"]*)[^"]* HTTP/1\.1" (\d{3})')
BUSYBOX = "busybox:1.36"


@pytest.fixture(scope="module")
def cluster(
    api_cluster: apitier.ApiCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[apitier.ApiCluster]:
    yield from e2e_conftest.private_cluster(api_cluster, tmp_path_factory, "rbac")


@pytest.fixture(scope="module")
def kubelet(cluster: apitier.ApiCluster) -> Iterator[scripted_kubelet.ScriptedKubelet]:
    double = scripted_kubelet.ScriptedKubelet(cluster.api_client())
    double.start()
    yield double
    double.stop()


class Chart:
    """``helm template`` of the chart; applies its RBAC objects, runs the operator as its ServiceAccount."""

    def __init__(self, cluster: apitier.ApiCluster, home: Path) -> None:
        self.cluster = cluster
        self.env = {
            **os.environ,
            **{f"HELM_{d}_HOME": str(home / d.lower()) for d in ("CACHE", "CONFIG", "DATA")},
        }
        version = json.loads(cluster.kubectl("version", "-o", "json").stdout)["serverVersion"]["gitVersion"]
        self.kube_version = version

    def render(self, release: str, namespace: str, *values: str) -> list[dict[str, Any]]:
        argv = [self.cluster.programs["helm"], "template", release, str(CHART), "--namespace", namespace,
                "--kube-version", self.kube_version, *values]  # fmt: skip
        result = subprocess.run(argv, capture_output=True, text=True, env=self.env, timeout=120, check=False)
        assert result.returncode == 0, f"helm template: {result.stderr}"
        return [d for d in yaml.safe_load_all(result.stdout) if d]

    def apply_rbac(self, docs: list[dict[str, Any]]) -> list[str]:
        rbac = [d for d in docs if d["kind"] in RBAC_KINDS]
        self.cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(rbac))
        return [f"{d['kind']}/{d['metadata']['name']}" for d in rbac]

    @staticmethod
    def operator_env(docs: list[dict[str, Any]]) -> dict[str, str]:
        [deployment] = [d for d in docs if d["kind"] == "Deployment"]
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
        # The chart's archive is a volume of its pod, and the api tier has no kubelet to serve pods/log: this
        # operator process does not archive (the archive runs on the node tier: tests/e2e/test_archive_node.py).
        return env | {"PODLINE_ARCHIVE": ""}


def mode_values(watched: list[str]) -> list[str]:
    return ["--set", "rbac.scope=namespaces", "--set", "watchNamespaces={" + ",".join(watched) + "}"]


class Operators:
    """At most one operator runs at a time (two with different policies would race for the same runs)."""

    def __init__(self, cluster: apitier.ApiCluster) -> None:
        self.cluster = cluster
        self.running: operating.OperatorProcess | None = None
        self.made: dict[str, operating.OperatorProcess] = {}

    def use(self, name: str, kubeconfig: Path, env: dict[str, str]) -> operating.OperatorProcess:
        op = self.made.get(name)
        if op is None:
            env = {**env, "PODLINE_LOG_LEVEL": "DEBUG", "PODLINE_METRICS_PORT": "0", "PODLINE_LIVENESS_PORT": "0",
                   "POD_ID": f"rbac-{name}"}  # fmt: skip
            op = self.made[name] = operating.OperatorProcess(
                kubeconfig, self.cluster.log_dir, env=env, name=name
            )
        if self.running is not op:
            self.stop()
            op.start()
            self.running = op
            operating.wait_for(lambda: chaos.serving(op), timeout=60, what=f"{name} to start serving")
        return op

    def stop(self) -> None:
        if self.running is not None:
            self.running.stop()
            self.running = None


@pytest.fixture(scope="module")
def operators(cluster: apitier.ApiCluster) -> Iterator[Operators]:
    ops = Operators(cluster)
    yield ops
    ops.stop()


class Namespaced:
    """The chart in namespaces mode: one namespace per e2e test, two more it watches, one it does not."""

    def __init__(self, cluster: apitier.ApiCluster, chart: Chart) -> None:
        self.home = cluster.new_namespace("podline-system")
        self.suite = {name: cluster.new_namespace("suite") for name, _ in SUITE}
        self.inside = cluster.new_namespace("team-a")
        self.psa = cluster.new_namespace("team-psa")
        cluster.kubectl("label", "namespace", self.psa, "pod-security.kubernetes.io/enforce=baseline")
        self.outside = cluster.new_namespace("team-x")
        self.watched = [*self.suite.values(), self.inside, self.psa]
        self.release = "ns"
        self.sa = f"{self.release}-podline"
        self.docs = chart.render(self.release, self.home, *mode_values(self.watched))
        self.applied = chart.apply_rbac(self.docs)
        self.token = cluster.token_kubeconfig(self.home, self.sa)
        allowing = ["--set", "operator.allowPrivileged=true", "--set", "operator.allowHostVolumes=true",
                    "--set", "operator.allowedServiceAccounts={builder}"]  # fmt: skip
        self.allowing_env = Chart.operator_env(chart.render(self.release, self.home, *mode_values(self.watched),
                                                            *allowing))  # fmt: skip
        self.env = Chart.operator_env(self.docs)


@pytest.fixture(scope="module")
def chart(cluster: apitier.ApiCluster, tmp_path_factory: pytest.TempPathFactory) -> Chart:
    return Chart(cluster, tmp_path_factory.mktemp("helm"))


@pytest.fixture(scope="module")
def namespaced(cluster: apitier.ApiCluster, chart: Chart) -> Namespaced:
    return Namespaced(cluster, chart)


def requests_made(log: str) -> list[tuple[str, str, int]]:
    """(method, path, status) of every API request in a DEBUG log (urllib3 logs each of the operator's)."""
    return [(m, p, int(s)) for m, p, s in REQUEST.findall(log)]


def refusals(log: str) -> list[str]:
    """Requests the API refused (401/403), and anything kopf or the operator reports as forbidden."""
    refused = [f"{m} {p} {s}" for m, p, s in requests_made(log) if s in (401, 403)]
    refused += [line for line in log.splitlines() if re.search(r"\bforbidden\b|Forbidden", line)]
    return refused


def run_suite(
    cluster: apitier.ApiCluster,
    namespaces: dict[str, str],
    op: operating.OperatorProcess,
    kubelet: scripted_kubelet.ScriptedKubelet,
) -> None:
    """Every test of test_operator_runs.py, each in its own namespace, PARALLEL at a time."""

    def one(name: str, test: Callable[[Any], None]) -> str | None:
        try:
            test((cluster, namespaces[name], op, kubelet))
        except BaseException as error:  # noqa: BLE001 - collected and reported together below
            return (
                f"{name} (namespace {namespaces[name]}):\n"
                + "".join(traceback.format_exception(error))[-3000:]
            )
        return None

    with concurrent.futures.ThreadPoolExecutor(PARALLEL) as pool:
        failures = [f for f in pool.map(lambda item: one(*item), SUITE) if f]
    assert op.alive(), f"the operator died:\n{op.log()[-3000:]}"
    assert not failures, f"{len(failures)} of {len(SUITE)} e2e tests failed:\n\n" + "\n\n".join(failures)


def test_the_e2e_suite_is_there() -> None:
    assert len(SUITE) >= 10, [name for name, _ in SUITE]


def test_namespaced_operator_passes_the_e2e_suite(
    cluster: apitier.ApiCluster, namespaced: Namespaced, operators: Operators,
    kubelet: scripted_kubelet.ScriptedKubelet,
) -> None:  # fmt: skip
    assert namespaced.env["PODLINE_NAMESPACES"] == ",".join(namespaced.watched)
    assert not [a for a in namespaced.applied if a.startswith("ClusterRoleBinding/")], namespaced.applied
    op = operators.use("operator-namespaced", namespaced.token, namespaced.env)
    log_before = len(op.log())
    run_suite(cluster, namespaced.suite, op, kubelet)
    log = op.log()[log_before:]
    assert requests_made(log), "the operator's DEBUG log shows its API requests"
    assert not refusals(log), f"the API refused the operator: {refusals(log)[:20]}"


def can_i(cluster: apitier.ApiCluster, kubeconfig: Path, *args: str) -> bool:
    result = cluster.kubectl("auth", "can-i", *args, kubeconfig=kubeconfig, check=False)
    answer = result.stdout.strip()
    assert answer in ("yes", "no"), f"kubectl auth can-i {' '.join(args)}: {result.stdout}{result.stderr}"
    return answer == "yes"


def check_can_i(cluster: apitier.ApiCluster, kubeconfig: Path, expected: dict[tuple[str, ...], bool]) -> None:
    wrong = {
        " ".join(args): want for args, want in expected.items() if can_i(cluster, kubeconfig, *args) != want
    }
    assert not wrong, f"permissions differ from what they must be (command: expected answer): {wrong}"


def test_namespaced_operator_cannot_reach_outside_its_namespaces(
    cluster: apitier.ApiCluster, namespaced: Namespaced, operators: Operators,
    kubelet: scripted_kubelet.ScriptedKubelet,
) -> None:  # fmt: skip
    inside, outside, home = namespaced.inside, namespaced.outside, namespaced.home
    check_can_i(cluster, namespaced.token, {
        # what it needs, inside
        ("create", "pods", "-n", inside): True,
        ("get", "secrets", "-n", inside): True,
        ("get", "pods", "--subresource=log", "-n", inside): True,  # the archive reads ended steps' output
        ("create", "pods", "--subresource=exec", "-n", inside): False,  # never exec (docs/archive.md)
        ("watch", "pipelines.podline.dev", "-n", inside): True,
        # nothing outside: another namespace, its own home, or cluster-wide
        **{(*what, "-n", ns): False
           for ns in (outside, home)
           for what in (("get", "secrets"), ("create", "secrets"), ("create", "pods"), ("list", "pods"),
                        ("watch", "pods"), ("patch", "pods"), ("delete", "pods"), ("create", "events"),
                        ("get", "pods", "--subresource=log"),
                        ("list", "pipelines.podline.dev"), ("get", "pipelines.podline.dev"),
                        ("patch", "pipelines.podline.dev", "--subresource=status"))},
        ("list", "pods", "--all-namespaces"): False,
        ("list", "secrets", "--all-namespaces"): False,
        ("list", "pipelines.podline.dev", "--all-namespaces"): False,
        ("list", "namespaces"): False,
        ("get", "nodes"): False,
        ("create", "clusterrolebindings.rbac.authorization.k8s.io"): False,
        ("create", "serviceaccounts", "--subresource=token", "-n", inside): False,
    })  # fmt: skip
    op = operators.use("operator-namespaced", namespaced.token, namespaced.env)
    log_before = len(op.log())
    regcred = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "regcred"},
               "stringData": {"config.json": json.dumps(chaos.PULL_SECRET)}}  # fmt: skip
    private = {"image_pull_secrets": ["regcred"], "steps": [{"name": "a", "image": chaos.PRIVATE_IMAGE,
                                                             "commands": ["true"]}]}  # fmt: skip
    operating.apply(cluster, outside, regcred, operating.pipeline("outsider", private))
    # Pipelines inside that name the other namespace wherever a spec can: the pod's metadata.namespace (it is
    # ignored: the pod runs in the Pipeline's namespace) and a pull Secret written namespace/name.
    reaching = [
        operating.pipeline("pod-elsewhere", {"metadata": {"namespace": outside},
                                             "steps": [{"name": "a", "image": BUSYBOX, "commands": ["true"]}]}),
        operating.pipeline("secret-elsewhere", {**private, "image_pull_secrets": [f"{outside}/regcred"]}),
    ]  # fmt: skip
    operating.apply(cluster, inside, *reaching)
    assert operating.wait_for_phase(cluster, inside, "pod-elsewhere", operator=op)["phase"] == "Succeeded"
    secret_elsewhere = operating.wait_for_phase(cluster, inside, "secret-elsewhere", operator=op)
    assert (
        secret_elsewhere["reason"] == "Invalid"
        and "spec.image_pull_secrets[0]" in secret_elsewhere["message"]
    )
    pod = operating.get(cluster, inside, "pod", "pod-elsewhere-g1")
    assert pod["metadata"]["namespace"] == inside
    time.sleep(6)  # more than a resync period (5 s): time enough to act on it, if it ever would
    assert not operating.status(cluster, outside, "outsider"), "the Pipeline outside was never touched"
    leftovers = cluster.kubectl(
        "get", "pods,secrets", "-n", outside, "-l", chaos.MANAGED, "-o", "name"
    ).stdout
    assert not leftovers.strip(), f"objects made outside: {leftovers}"
    log = op.log()[log_before:]
    assert not [r for r in requests_made(log) if f"/namespaces/{outside}/" in r[1]], "no request names it"
    assert not refusals(log), f"the API refused the operator: {refusals(log)[:20]}"


def author(cluster: apitier.ApiCluster, namespaced: Namespaced) -> Path:
    """A ServiceAccount with only the chart's edit user role in the watched namespaces: a Pipeline author."""
    for ns in (namespaced.inside, namespaced.psa):
        cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all([
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "builder", "namespace": ns}},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
             "metadata": {"name": "author-edits-pipelines", "namespace": ns},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                         "name": f"{namespaced.release}-podline-edit"},
             "subjects": [{"kind": "ServiceAccount", "name": "author", "namespace": namespaced.inside}]},
        ]))  # fmt: skip
    cluster.kubectl("create", "serviceaccount", "author", "-n", namespaced.inside, check=False)
    return cluster.token_kubeconfig(namespaced.inside, "author")


APPARMOR = "container.apparmor.security.beta.kubernetes.io/step-a"
ASKS: dict[str, tuple[dict[str, Any], str]] = {  # what an author may try to get, and the field to name
    "privileged": ({"steps": [{"name": "dind", "image": "docker:27-dind", "privileged": True, "commands": ["true"]}]},
                   "spec.steps[0].privileged"),
    "privileged-service": ({"services": [{"name": "docker", "image": "docker:27-dind", "privileged": True}],
                            "steps": [{"name": "a", "image": BUSYBOX, "commands": ["true"]}]},
                           "spec.services[0].privileged"),
    "host-mount": ({"volumes": [{"name": "sock", "host": {"path": "/var/run"}}],
                    "steps": [{"name": "a", "image": BUSYBOX, "commands": ["true"],
                               "volumes": [{"name": "sock", "path": "/host-run"}]}]},
                   "spec.volumes[0].host"),
    "apparmor-unconfined": ({"metadata": {"annotations": {APPARMOR: "unconfined"}},
                             "steps": [{"name": "a", "image": BUSYBOX, "commands": ["true"]}]},
                            f"spec.metadata.annotations.{APPARMOR}"),
    "service-account": ({"service_account_name": "builder",
                         "steps": [{"name": "a", "image": BUSYBOX, "commands": ["true"]}]},
                        "spec.service_account_name"),
}  # fmt: skip


def test_pipeline_author_gets_nothing_the_operator_does_not_allow(
    cluster: apitier.ApiCluster, namespaced: Namespaced, operators: Operators,
    kubelet: scripted_kubelet.ScriptedKubelet,
) -> None:  # fmt: skip
    inside = namespaced.inside
    kubeconfig = author(cluster, namespaced)
    check_can_i(cluster, kubeconfig, {
        ("create", "pipelines.podline.dev", "-n", inside): True,
        ("create", "pods", "-n", inside): False,
        ("create", "pods", "--subresource=exec", "-n", inside): False,
        ("get", "secrets", "-n", inside): False,
        ("patch", "pipelines.podline.dev", "--subresource=status", "-n", inside): False,
        ("create", "serviceaccounts", "--subresource=token", "-n", inside): False,
    })  # fmt: skip
    op = operators.use("operator-namespaced", namespaced.token, namespaced.env)
    for ask, (spec, field) in ASKS.items():
        cluster.kubectl("apply", "-n", inside, "-f", "-", kubeconfig=kubeconfig,
                        input=yaml.safe_dump(operating.pipeline(f"ask-{ask}", spec)))  # fmt: skip
    for ask, (_, field) in ASKS.items():
        status = operating.wait_for_phase(cluster, inside, f"ask-{ask}", operator=op)
        assert status["phase"] == "Failed" and status["reason"] == "Invalid", status
        assert (
            f"{field}:" in status["message"]
            and "not allowed by the operator configuration" in status["message"]
        )
    pods = cluster.kubectl("get", "pods", "-n", inside, "-o", "name").stdout
    assert "ask-" not in pods, f"no pod for what was refused: {pods}"


def test_what_the_operator_allows_an_author_gets_and_pod_security_still_applies(
    cluster: apitier.ApiCluster, namespaced: Namespaced, operators: Operators,
    kubelet: scripted_kubelet.ScriptedKubelet,
) -> None:  # fmt: skip
    inside, psa = namespaced.inside, namespaced.psa
    kubeconfig = author(cluster, namespaced)
    assert namespaced.allowing_env["PODLINE_ALLOW_PRIVILEGED"] == "true"
    op = operators.use("operator-allowing", namespaced.token, namespaced.allowing_env)
    try:
        for ns in (inside, psa):
            for ask, (spec, _) in ASKS.items():
                cluster.kubectl("apply", "-n", ns, "-f", "-", kubeconfig=kubeconfig,
                                input=yaml.safe_dump(operating.pipeline(f"allowed-{ask}", spec)))  # fmt: skip
        for ask in ASKS:
            assert (
                operating.wait_for_phase(cluster, inside, f"allowed-{ask}", operator=op)["phase"]
                == "Succeeded"
            )
        pod = {ask: operating.get(cluster, inside, "pod", f"allowed-{ask}-g1")["spec"] for ask in ASKS}
        security = {
            ask: {c["name"]: c["securityContext"] for c in spec["containers"]} for ask, spec in pod.items()
        }
        assert security["privileged"]["step-dind"]["privileged"] is True
        assert {name: sc["privileged"] for name, sc in security["privileged-service"].items()} == {
            "podline-prepare": False,
            "svc-docker": True,
            "step-a": False,
        }
        assert {"path": "/var/run", "type": "DirectoryOrCreate"} in [
            v.get("hostPath") for v in pod["host-mount"]["volumes"]
        ]
        assert pod["service-account"]["serviceAccountName"] == "builder"
        assert security["apparmor-unconfined"]["step-a"]["appArmorProfile"] == {"type": "Unconfined"}
        # The namespace enforces the baseline Pod Security Standard: the pod is refused, and the run says so.
        refused = {
            "privileged": "privileged",
            "privileged-service": "privileged",
            "host-mount": "hostPath",
            "apparmor-unconfined": "AppArmor",
        }
        for ask, word in refused.items():
            status = operating.wait_for_phase(cluster, psa, f"allowed-{ask}", operator=op)
            assert status["phase"] == "Failed" and status["reason"] == "Invalid", status
            assert "violates PodSecurity" in status["message"] and word in status["message"], status[
                "message"
            ]
        assert (
            operating.wait_for_phase(cluster, psa, "allowed-service-account", operator=op)["phase"]
            == "Succeeded"
        )
        assert op.alive()
    finally:
        operators.stop()


def test_clusterwide_operator_passes_the_e2e_suite(
    cluster: apitier.ApiCluster, chart: Chart, operators: Operators, kubelet: scripted_kubelet.ScriptedKubelet
) -> None:
    home = cluster.new_namespace("podline-cw")
    docs = chart.render("cw", home)
    applied = chart.apply_rbac(docs)
    assert "ClusterRoleBinding/cw-podline" in applied, applied
    env = Chart.operator_env(docs)
    assert "PODLINE_NAMESPACES" not in env
    op = operators.use("operator-clusterwide", cluster.token_kubeconfig(home, "cw-podline"), env)
    log_before = len(op.log())
    run_suite(cluster, {name: cluster.new_namespace("suite-cw") for name, _ in SUITE}, op, kubelet)
    log = op.log()[log_before:]
    assert requests_made(log), "the operator's DEBUG log shows its API requests"
    assert not refusals(log), f"the API refused the operator: {refusals(log)[:20]}"
