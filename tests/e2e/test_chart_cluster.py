"""The Helm chart against a real apiserver (api tier): dry run, install/upgrade/uninstall, RBAC, a real run.

No image can be built here and the api tier has no kubelet, so the chart's Deployment never becomes ready
(nothing waits for it). What is proven instead:

- the apiserver accepts everything ``helm template`` renders (server-side dry run, strict field validation);
- ``helm install``, ``helm upgrade`` (changed values) and ``helm uninstall`` work in both RBAC modes, and the
  operator pod the ReplicaSet controller creates is admitted by the *restricted* Pod Security Standard;
- with the chart's ServiceAccount token, ``kubectl auth can-i`` shows what the operator may and may not do;
- the real operator, run as a local process with that token and the environment the chart renders, runs
  a Pipeline with a private image to the end (pull Secret read and created, pod created, patched and,
  for an old run, deleted; status patched; Events created) and no API call of it is refused. That run
  uses a private api-tier cluster: on the shared one another test's operator (admin credentials, all
  namespaces) could do the work for ours and hide a missing permission;
- on the same private cluster, the statuses the operator writes (succeeded, failed, running, cancelled)
  get the Argo CD health and kstatus conditions docs/gitops.md promises.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster import apitier, probes, scripted_kubelet
from tests.e2e import operating

pytestmark = pytest.mark.api
ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "podline"
EXAMPLES = ROOT / "docs" / "examples"
RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
}
Manifest = dict[str, Any]


class Helm:
    """helm against one cluster, with its own config/cache directories."""

    def __init__(self, cluster: apitier.ApiCluster, home: Path) -> None:
        self.cluster = cluster
        self.binary = cluster.programs["helm"]
        self.env = {
            **os.environ,
            "HELM_CACHE_HOME": str(home / "cache"),
            "HELM_CONFIG_HOME": str(home / "config"),
            "HELM_DATA_HOME": str(home / "data"),
        }

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = [self.binary, "--kubeconfig", str(self.cluster.kubeconfig), *args]
        result = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=180, env=self.env)
        if check and result.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} exited with {result.returncode}:\n{result.stderr}")
        return result

    def template(self, release: str, namespace: str, *values: str) -> str:
        kube_version = self.cluster.kubectl("version", "-o", "json").stdout
        server = json.loads(kube_version)["serverVersion"]["gitVersion"]
        return self(
            "template",
            release,
            str(CHART),
            "--namespace",
            namespace,
            "--kube-version",
            server,
            "--include-crds",
            *values,
        ).stdout

    def manifest(self, release: str, namespace: str) -> list[Manifest]:
        out = self("get", "manifest", release, "--namespace", namespace).stdout
        return [d for d in yaml.safe_load_all(out) if d]


def mode_values(mode: str, watched: list[str]) -> list[str]:
    if mode == "cluster":
        return []
    return ["--set", "rbac.scope=namespaces", "--set", f"watchNamespaces={{{','.join(watched)}}}"]


def get_json(cluster: apitier.ApiCluster, *args: str) -> Manifest:
    return dict(json.loads(cluster.kubectl("get", *args, "-o", "json").stdout))


def exists(cluster: apitier.ApiCluster, *args: str) -> bool:
    result = cluster.kubectl("get", *args, "-o", "name", check=False)
    if result.returncode != 0 and "NotFound" not in result.stderr:
        raise AssertionError(f"kubectl get {' '.join(args)}: {result.stderr}")
    return result.returncode == 0


def operator_env(docs: list[Manifest]) -> dict[str, str]:
    [deployment] = [d for d in docs if d["kind"] == "Deployment"]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e["value"] for e in container["env"] if "value" in e}


@pytest.fixture
def helm(api_cluster: apitier.ApiCluster, tmp_path: Path) -> Helm:
    return Helm(api_cluster, tmp_path / "helm")


@pytest.fixture
def namespaces(api_cluster: apitier.ApiCluster) -> Iterator[Callable[..., str]]:
    """Make fresh namespaces (optionally labelled); all are deleted after the test."""
    made: list[str] = []

    def make(prefix: str = "chart", labels: dict[str, str] | None = None) -> str:
        name = api_cluster.new_namespace(prefix)
        made.append(name)
        if labels:
            api_cluster.kubectl("label", "namespace", name, *[f"{k}={v}" for k, v in labels.items()])
        return name

    yield make
    for name in made:
        api_cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def release(helm: Helm) -> Iterator[Callable[[str, str], str]]:
    """Name a release; whatever the test leaves installed is uninstalled afterwards."""
    installed: list[tuple[str, str]] = []

    def name(prefix: str, namespace: str) -> str:
        installed.append((f"{prefix}-{secrets.token_hex(2)}", namespace))
        return installed[-1][0]

    yield name
    for rel, namespace in installed:
        helm("uninstall", rel, "--namespace", namespace, "--ignore-not-found", check=False)


# ---- the apiserver accepts what the chart renders ------------------------------------------------------


@pytest.mark.parametrize("mode", ["cluster", "namespaces"])
def test_rendered_chart_passes_server_side_dry_run(
    api_cluster: apitier.ApiCluster, helm: Helm, namespaces: Callable[..., str], mode: str
) -> None:
    home = namespaces("chart-home")
    watched = [namespaces("chart-a"), namespaces("chart-b")]
    rendered = helm.template(
        "dry",
        home,
        *mode_values(mode, watched),
        "--set",
        "metrics.serviceMonitor.enabled=false",
        "--set",
        "replicaCount=2",
    )
    result = api_cluster.kubectl(
        "apply",
        "--server-side",
        "--dry-run=server",
        "--validate=strict",
        "--field-manager=podline-chart-test",
        "--force-conflicts",
        "-f",
        "-",
        input=rendered,
        check=False,
    )
    assert result.returncode == 0, (
        f"the apiserver rejected the rendered chart ({mode} mode):\n{result.stderr}"
    )
    applied = result.stdout.splitlines()
    assert any(line.startswith("deployment.apps/dry-podline") for line in applied), applied
    roles = [line for line in applied if line.startswith(("role.", "clusterrole."))]
    # operator role(s) + the two user roles + the archive reader's
    assert len(roles) == (4 if mode == "cluster" else 5), roles
    assert "serverside-applied (server dry run)" in result.stdout


# ---- install, upgrade, uninstall ------------------------------------------------------------------------


def _wait_for_operator_pod(cluster: apitier.ApiCluster, namespace: str, release: str) -> Manifest:
    """The ReplicaSet controller creates the pod only if Pod Security admission lets it."""
    selector = f"app.kubernetes.io/instance={release}"

    def pod() -> Manifest | None:
        items = get_json(cluster, "pods", "-n", namespace, "-l", selector)["items"]
        return items[0] if items else None

    try:
        return dict(operating.wait_for(pod, timeout=60, what=f"the operator pod of {release}"))
    except AssertionError:
        events = cluster.kubectl(
            "get", "events", "-n", namespace, "-o", "custom-columns=R:.reason,M:.message"
        ).stdout
        raise AssertionError(f"no operator pod was created in {namespace}; events:\n{events}") from None


@pytest.mark.parametrize("mode", ["cluster", "namespaces"])
def test_install_upgrade_uninstall(
    api_cluster: apitier.ApiCluster,
    helm: Helm,
    namespaces: Callable[..., str],
    release: Callable[[str, str], str],
    mode: str,
) -> None:
    home = namespaces("chart-home", RESTRICTED)
    a, b, c = namespaces("chart-a"), namespaces("chart-b"), namespaces("chart-c")
    rel = release(f"pl-{mode[:2]}", home)
    fullname = f"{rel}-podline"

    installed = helm("install", rel, str(CHART), "--namespace", home, *mode_values(mode, [a, b]))
    assert "STATUS: deployed" in installed.stdout
    first_ns = a if mode == "namespaces" else "default"
    for command in (f"kubectl -n {first_ns} get pipelines -w", f"podline logs hello -n {first_ns} -f"):
        assert command in installed.stdout, (
            f"NOTES must tell the admin to run `{command}`:\n{installed.stdout}"
        )
    _check_notes_pipeline(api_cluster, installed.stdout, first_ns)

    deployment = get_json(api_cluster, "deployment", fullname, "-n", home)
    assert deployment["spec"]["replicas"] == 1
    assert exists(api_cluster, "serviceaccount", fullname, "-n", home)
    assert exists(api_cluster, "service", f"{fullname}-metrics", "-n", home)
    assert exists(api_cluster, "crd", "pipelines.podline.dev")
    for user_role in (f"{fullname}-view", f"{fullname}-edit"):
        assert exists(api_cluster, "clusterrole", user_role)
    if mode == "cluster":
        assert exists(api_cluster, "clusterrole", fullname) and exists(
            api_cluster, "clusterrolebinding", fullname
        )
    else:
        assert not exists(api_cluster, "clusterrolebinding", fullname)
        assert [exists(api_cluster, "role", fullname, "-n", ns) for ns in (a, b, c)] == [True, True, False]

    pod = _wait_for_operator_pod(api_cluster, home, rel)
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    _check_restricted_admission_is_enforced(api_cluster, home, pod)

    # upgrade: change a value (and, in namespaces mode, the namespaces: b stays, a goes, c comes)
    upgraded = helm(
        "upgrade",
        rel,
        str(CHART),
        "--namespace",
        home,
        "--set",
        "logging.level=DEBUG",
        "--set",
        "operator.maxRunning=4",
        *mode_values(mode, [b, c]),
    )
    assert "STATUS: deployed" in upgraded.stdout and "REVISION: 2" in upgraded.stdout
    env = operator_env([get_json(api_cluster, "deployment", fullname, "-n", home)])
    assert env["PODLINE_LOG_LEVEL"] == "DEBUG" and env["PODLINE_MAX_RUNNING"] == "4"
    if mode == "namespaces":
        assert env["PODLINE_NAMESPACES"] == f"{b},{c}"
        assert [exists(api_cluster, "role", fullname, "-n", ns) for ns in (a, b, c)] == [False, True, True]
        assert [exists(api_cluster, "rolebinding", fullname, "-n", ns) for ns in (a, b, c)] == [
            False,
            True,
            True,
        ]
    history = json.loads(helm("history", rel, "--namespace", home, "-o", "json").stdout)
    assert [h["status"] for h in history] == ["superseded", "deployed"]

    helm("uninstall", rel, "--namespace", home)
    leftovers = [
        what
        for what in (
            ("deployment", fullname, "-n", home),
            ("serviceaccount", fullname, "-n", home),
            ("clusterrole", fullname),
            ("clusterrolebinding", fullname),
            ("clusterrole", f"{fullname}-view"),
            ("role", fullname, "-n", b),
            ("role", fullname, "-n", c),
        )
        if exists(api_cluster, *what)
    ]
    assert not leftovers, f"helm uninstall left {leftovers}"
    assert exists(api_cluster, "crd", "pipelines.podline.dev"), (
        "Helm keeps CRDs (and so every Pipeline) on uninstall"
    )


def _check_notes_pipeline(cluster: apitier.ApiCluster, notes: str, namespace: str) -> None:
    """The `kubectl apply` NOTES.txt tells the admin to paste works as pasted (bash, heredoc and all)
    and the Pipeline it applies is valid against the installed CRD (server-side dry run)."""
    match = re.search(r"^(kubectl -n \S+ apply -f - <<'YAML'\n.*?\nYAML)$", notes, re.DOTALL | re.MULTILINE)
    assert match, f"NOTES.txt has no `kubectl apply` of a first Pipeline (heredoc from column 0):\n{notes}"
    assert f"kubectl -n {namespace} apply" in match.group(1)
    cluster.install_crds(CHART / "crds" / "pipelines.podline.dev.yaml")  # polls until Established
    script = (
        'kubectl() { "$KUBECTL" --kubeconfig "$KUBECONFIG" "$@" --dry-run=server --validate=strict; }\n'
        + match.group(1)
        + "\n"
    )
    env = {**os.environ, "KUBECTL": cluster.programs["kubectl"], "KUBECONFIG": str(cluster.kubeconfig)}
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert (
        result.returncode == 0 and "pipeline.podline.dev/hello created (server dry run)" in result.stdout
    ), f"the first-Pipeline command in NOTES.txt fails as pasted:\n{result.stdout}{result.stderr}"


def _check_restricted_admission_is_enforced(
    cluster: apitier.ApiCluster, namespace: str, pod: Manifest
) -> None:
    """The control: without the chart's securityContext the same pod is refused, so admission really ran."""
    spec = {
        **pod["spec"],
        "securityContext": {},
        "containers": [{**c, "securityContext": {}} for c in pod["spec"]["containers"]],
    }
    for field in ("nodeName", "tolerations"):
        spec.pop(field, None)
    loose = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "loose", "namespace": namespace},
        "spec": spec,
    }
    result = cluster.kubectl("create", "--dry-run=server", "-f", "-", input=json.dumps(loose), check=False)
    assert result.returncode != 0 and "violates PodSecurity" in result.stderr, (
        f"namespace {namespace} does not enforce the restricted standard, so the check above proves nothing: "
        f"{result.stdout}{result.stderr}"
    )


# ---- what the chart's ServiceAccount may do ------------------------------------------------------------


def can_i(cluster: apitier.ApiCluster, kubeconfig: Path, *args: str) -> bool:
    result = cluster.kubectl("auth", "can-i", *args, kubeconfig=kubeconfig, check=False)
    answer = result.stdout.strip()
    assert answer in ("yes", "no"), f"kubectl auth can-i {' '.join(args)}: {result.stdout}{result.stderr}"
    return answer == "yes"


def test_namespaced_serviceaccount_is_confined_to_its_namespaces(
    api_cluster: apitier.ApiCluster,
    helm: Helm,
    namespaces: Callable[..., str],
    release: Callable[[str, str], str],
) -> None:
    home, watched, other = namespaces("chart-home"), namespaces("chart-w"), namespaces("chart-x")
    rel = release("pl-sa", home)
    helm("install", rel, str(CHART), "--namespace", home, *mode_values("namespaces", [watched]))
    token = api_cluster.token_kubeconfig(home, f"{rel}-podline")
    may = {
        ("create", "pods", "-n", watched): True,
        ("patch", "pods", "-n", watched): True,
        ("delete", "pods", "-n", watched): True,
        ("watch", "pods", "-n", watched): True,
        ("get", "secrets", "-n", watched): True,
        ("create", "secrets", "-n", watched): True,
        ("create", "events", "-n", watched): True,
        ("watch", "pipelines.podline.dev", "-n", watched): True,
        ("patch", "pipelines.podline.dev", "--subresource=status", "-n", watched): True,
        # nothing beyond what it calls, even in its own namespaces
        ("list", "secrets", "-n", watched): False,
        ("delete", "secrets", "-n", watched): False,
        ("update", "secrets", "-n", watched): False,
        ("patch", "pipelines.podline.dev", "-n", watched): False,
        ("delete", "pipelines.podline.dev", "-n", watched): False,
        # the archive (on by default) reads its runs' logs there; never a shell in a pod
        ("get", "pods", "--subresource=log", "-n", watched): True,
        ("create", "pods", "--subresource=exec", "-n", watched): False,
        ("get", "pods", "--subresource=log", "-n", other): False,
        ("update", "pods", "-n", watched): False,
        # nothing outside them: another namespace, its own release namespace, cluster-wide
        ("get", "secrets", "-n", other): False,
        ("create", "pods", "-n", other): False,
        ("list", "pipelines.podline.dev", "-n", other): False,
        ("get", "secrets", "-n", home): False,
        ("create", "pods", "-n", home): False,
        ("list", "secrets", "--all-namespaces"): False,
        ("get", "secrets", "--all-namespaces"): False,
        ("list", "pipelines.podline.dev", "--all-namespaces"): False,
        ("list", "namespaces"): False,
        ("list", "customresourcedefinitions.apiextensions.k8s.io"): False,
    }  # fmt: skip
    wrong = {
        " ".join(args): expected
        for args, expected in may.items()
        if can_i(api_cluster, token, *args) != expected
    }
    assert not wrong, (
        f"ServiceAccount permissions differ from the least-privilege plan (command: expected answer): {wrong}"
    )


def test_clusterwide_serviceaccount_has_the_same_verbs_everywhere(
    api_cluster: apitier.ApiCluster,
    helm: Helm,
    namespaces: Callable[..., str],
    release: Callable[[str, str], str],
) -> None:
    home, somewhere = namespaces("chart-home"), namespaces("chart-any")
    rel = release("pl-cw", home)
    helm("install", rel, str(CHART), "--namespace", home)
    token = api_cluster.token_kubeconfig(home, f"{rel}-podline")
    may = {
        ("create", "pods", "-n", somewhere): True,
        ("watch", "pods", "--all-namespaces"): True,
        ("watch", "pipelines.podline.dev", "--all-namespaces"): True,
        ("get", "secrets", "-n", somewhere): True,  # any referenced pull secret, so any namespace
        ("list", "secrets", "--all-namespaces"): False,
        ("list", "secrets", "-n", somewhere): False,
        ("delete", "secrets", "-n", somewhere): False,
        ("patch", "pipelines.podline.dev", "-n", somewhere): False,
        ("list", "namespaces"): False,
        ("create", "clusterroles.rbac.authorization.k8s.io"): False,
        ("get", "pods", "--subresource=log", "-n", somewhere): True,  # the archive, on by default
        ("create", "pods", "--subresource=exec", "-n", somewhere): False,
    }  # fmt: skip
    wrong = {
        " ".join(args): expected
        for args, expected in may.items()
        if can_i(api_cluster, token, *args) != expected
    }
    assert not wrong, f"cluster-wide ServiceAccount permissions (command: expected answer): {wrong}"


def test_user_roles_grant_people_pipelines_and_logs(
    api_cluster: apitier.ApiCluster,
    helm: Helm,
    namespaces: Callable[..., str],
    release: Callable[[str, str], str],
) -> None:
    home, team = namespaces("chart-home"), namespaces("chart-team")
    rel = release("pl-users", home)
    helm("install", rel, str(CHART), "--namespace", home)
    fullname = f"{rel}-podline"
    for user, role in (("viewer", f"{fullname}-view"), ("editor", f"{fullname}-edit"), ("builtin", "edit")):
        api_cluster.kubectl(
            "create", "rolebinding", user, f"--clusterrole={role}", f"--user={user}", "-n", team
        )

    def can(user: str, *args: str) -> bool:
        return can_i(api_cluster, api_cluster.kubeconfig, *args, "-n", team, f"--as={user}")

    assert can("viewer", "list", "pipelines.podline.dev") and can(
        "viewer", "get", "pods", "--subresource=log"
    )
    assert not can("viewer", "create", "pipelines.podline.dev")
    assert can("editor", "create", "pipelines.podline.dev") and can(
        "editor", "patch", "pipelines.podline.dev"
    )
    assert not can("editor", "get", "secrets") and not can("editor", "create", "pods")
    # aggregation: the built-in edit role picks up the -edit rules (the controller-manager does this)
    operating.wait_for(
        lambda: can("builtin", "create", "pipelines.podline.dev"),
        timeout=30,
        what="the built-in edit ClusterRole to aggregate podline's rules",
    )
    assert not can("viewer", "get", "secrets")


# ---- the real operator with the chart's ServiceAccount token --------------------------------------------


@pytest.fixture(scope="module")
def private_cluster(
    api_cluster: apitier.ApiCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[apitier.ApiCluster]:
    """An api-tier cluster of this module alone (same binaries as the shared one), so no other operator runs."""
    cluster = apitier.ApiCluster(
        tmp_path_factory.mktemp("chart-cluster"), api_cluster.programs, owner="pytest"
    )
    cluster.start()
    cluster.install_crds(CHART / "crds" / "pipelines.podline.dev.yaml")  # polls until Established
    yield cluster
    cluster.stop()


REQUEST = re.compile(r'"(GET|POST|PATCH|PUT|DELETE) (/[^ ?"]*)[^"]* HTTP/1\.1" (\d{3})')


def requests_made(log: str) -> list[tuple[str, str, int]]:
    """(method, path, status) of every API request in the operator's DEBUG log (urllib3 logs each one)."""
    return [(m, p, int(s)) for m, p, s in REQUEST.findall(log)]


@pytest.mark.parametrize("mode", ["namespaces", "cluster"])
def test_operator_runs_a_pipeline_with_only_the_charts_permissions(
    private_cluster: apitier.ApiCluster, tmp_path: Path, mode: str
) -> None:
    cluster = private_cluster
    helm = Helm(cluster, tmp_path / "helm")
    home, watched, other = (cluster.new_namespace(p) for p in ("op-home", "op-w", "op-x"))
    rel = f"op-{mode[:2]}"
    helm(
        "install",
        rel,
        str(CHART),
        "--namespace",
        home,
        *mode_values(mode, [watched]),
        "--set",
        "logging.level=DEBUG",
        "--set",
        "operator.historyLimit=0",
    )
    env = operator_env(helm.manifest(rel, home))
    assert env.get("PODLINE_NAMESPACES", "") == (watched if mode == "namespaces" else "")
    liveness, metrics = probes.free_port(), probes.free_port()
    env.update(POD_ID=f"{rel}-local", PODLINE_LIVENESS_PORT=str(liveness), PODLINE_METRICS_PORT=str(metrics))
    env["PODLINE_ARCHIVE"] = ""  # the chart's archive is its pod's volume; the api tier serves no pods/log
    token = cluster.token_kubeconfig(home, f"{rel}-podline")
    kubelet = scripted_kubelet.ScriptedKubelet(cluster.api_client())
    operator = operating.OperatorProcess(token, cluster.log_dir, env=env, name=f"operator-chart-{mode}")
    kubelet.start()
    operator.start()
    try:
        operating.wait_for(
            lambda: probes.http_status(f"http://127.0.0.1:{liveness}/healthz") == 200,
            timeout=60,
            what="kopf's /healthz to answer 200",
        )
        try:
            _run_private_pipeline(cluster, watched, other if mode == "namespaces" else None, operator)
        except AssertionError as exc:  # say first whether a refused permission is why
            refused = [r for r in requests_made(operator.log()) if r[2] in (401, 403)]
            raise AssertionError(f"API calls refused to the operator: {refused or 'none'}\n{exc}") from None
        scraped = probes.http_get(f"http://127.0.0.1:{metrics}/metrics")
        assert scraped and scraped[0] == 200 and b"podline_runs_total" in scraped[1]
        assert operator.alive(), f"the operator died:\n{operator.log()[-3000:]}"
    finally:
        operator.stop()
        kubelet.stop()
        helm("uninstall", rel, "--namespace", home, check=False)
    log = operator.log()
    refused = [r for r in requests_made(log) if r[2] in (401, 403)]
    assert not refused, f"the API refused the operator (log {operator.log_path}): {refused}"
    assert not re.search(r"forbidden|Forbidden|APIForbiddenError", log), (
        f"the operator (or kopf) was forbidden something; see {operator.log_path}"
    )
    made = {
        (method, _kind(path)) for method, path, status in requests_made(log) if status < 400 or status == 409
    }
    needed = {
        ("GET", "secrets"),
        ("POST", "secrets"),
        ("POST", "pods"),
        ("PATCH", "pods"),
        ("PATCH", "pipelines/status"),
        ("POST", "events"),
        ("DELETE", "pods"),
    }
    assert needed <= made, f"the operator never made {needed - made} (so this test proved less than it says)"


def _kind(path: str) -> str:
    """/api/v1/namespaces/ns/pods/name → pods; /apis/podline.dev/v1alpha1/namespaces/ns/pipelines/x/status →
    pipelines/status."""
    parts = path.strip("/").split("/")
    if "namespaces" in parts:
        rest = parts[parts.index("namespaces") + 2 :]
        return "/".join([rest[0]] + rest[2:3]) if rest else "namespaces"
    return parts[-1]


def _run_private_pipeline(
    cluster: apitier.ApiCluster, namespace: str, unwatched: str | None, operator: operating.OperatorProcess
) -> None:
    objects = list(yaml.safe_load_all((EXAMPLES / "private.pipeline.yaml").read_text()))
    pipeline = next(o for o in objects if o["kind"] == "Pipeline")
    # a second step, and a service, which runs until the operator stops the pod at the run's end (a patch
    # of the pod: the steps hand off inside it)
    pipeline["spec"]["steps"].append({"name": "after", "image": "busybox:1.36", "commands": ["echo done"]})
    pipeline["spec"]["services"] = [{"name": "cache", "image": "redis:7"}]
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(objects))
    if unwatched:
        cluster.kubectl("apply", "-n", unwatched, "-f", "-", input=yaml.safe_dump_all(objects))
    name = pipeline["metadata"]["name"]
    status = operating.wait_for_phase(cluster, namespace, name, timeout=90, operator=operator)
    assert status["phase"] == "Succeeded", status
    first_pod = status["podName"]
    pod = get_json(cluster, "pod", first_pod, "-n", namespace)
    [pull_secret] = pod["spec"]["imagePullSecrets"]
    assert (
        get_json(cluster, "secret", pull_secret["name"], "-n", namespace)["type"]
        == "kubernetes.io/dockerconfigjson"
    )
    events = get_json(cluster, "events", "-n", namespace)["items"]
    assert any(e["involvedObject"]["name"] == name for e in events), "the operator records Events"
    # a rerun: a new run's pod, and (historyLimit=0) the old run's pod deleted
    cluster.kubectl("annotate", "-n", namespace, "pipeline", name, "podline.dev/rerun=again")
    operating.wait_for(
        lambda: operating.status(cluster, namespace, name).get("run") not in (None, status["run"]),
        timeout=60,
        what="the rerun to start",
    )
    rerun = operating.wait_for_phase(cluster, namespace, name, timeout=90, operator=operator)
    assert rerun["phase"] == "Succeeded" and rerun["podName"] != first_pod, rerun
    operating.wait_for(
        lambda: not exists(cluster, "pod", first_pod, "-n", namespace),
        timeout=60,
        what=f"the old run's pod {first_pod} to be deleted",
    )
    if unwatched:
        untouched = operating.status(cluster, unwatched, name)
        assert not untouched, f"the operator acted in {unwatched}, which it does not watch: {untouched}"


# ---- GitOps health of what the operator really writes ---------------------------------------------------

CONDITIONS = {  # phase → the kstatus conditions docs/gitops.md promises
    "Running": {"Ready": "False", "Succeeded": "Unknown", "Reconciling": "True", "Stalled": "False"},
    "Succeeded": {"Ready": "True", "Succeeded": "True", "Reconciling": "False", "Stalled": "False"},
    "Failed": {"Ready": "False", "Succeeded": "False", "Reconciling": "False", "Stalled": "True"},
    "Cancelled": {"Ready": "False", "Succeeded": "False", "Reconciling": "False", "Stalled": "True"},
}
HEALTH = {"Running": "Progressing", "Succeeded": "Healthy", "Failed": "Degraded", "Cancelled": "Degraded"}


def test_gitops_health_of_the_statuses_the_operator_writes(private_cluster: apitier.ApiCluster) -> None:
    from tests.chart.test_gitops import argocd_health

    cluster = private_cluster
    namespace = cluster.new_namespace("gitops")
    kubelet = scripted_kubelet.ScriptedKubelet(cluster.api_client(), namespace=namespace)
    operator = operating.OperatorProcess(
        cluster.kubeconfig, cluster.log_dir, env={"PODLINE_NAMESPACES": namespace}, name="operator-gitops"
    )
    spec = {"kind": "pipeline", "type": "kubernetes", "name": "default"}
    pipelines = {
        "ok": [{"name": "build", "image": "busybox:1.36", "commands": ["echo ok"]}],
        "bad": [{"name": "build", "image": "busybox:1.36", "commands": ["exit 2"]}],
        "slow": [{"name": "build", "image": "busybox:1.36", "commands": ["sleep 300"]}],
    }
    kubelet.start()
    operator.start()
    try:
        operating.apply(
            cluster, namespace, *(operating.pipeline(n, {**spec, "steps": s}) for n, s in pipelines.items())
        )
        observed = {
            "Succeeded": _pipeline_in(cluster, namespace, "ok", ("Succeeded",), operator),
            "Failed": _pipeline_in(cluster, namespace, "bad", ("Failed",), operator),
            "Running": _pipeline_in(cluster, namespace, "slow", ("Running",), operator),
        }
        cluster.kubectl("annotate", "-n", namespace, "pipeline", "slow", "podline.dev/cancel=true")
        observed["Cancelled"] = _pipeline_in(cluster, namespace, "slow", ("Cancelled",), operator)
    finally:
        operator.stop()
        kubelet.stop()
    for phase, body in observed.items():
        status = body["status"]
        assert status["observedGeneration"] == body["metadata"]["generation"], status
        conditions = {c["type"]: c["status"] for c in status["conditions"]}
        assert conditions == CONDITIONS[phase], (
            f"{phase}: conditions {conditions}, docs/gitops.md says otherwise"
        )
        health, message = argocd_health(body)
        assert health == HEALTH[phase], f"{phase}: Argo CD health {health} ({message})"
        assert message.startswith(phase), message
    stale = {**observed["Succeeded"], "metadata": {**observed["Succeeded"]["metadata"], "generation": 2}}
    assert argocd_health(stale)[0] == "Progressing", (
        "a spec change the operator has not seen yet is not Healthy"
    )


def _pipeline_in(
    cluster: apitier.ApiCluster, namespace: str, name: str, phases: tuple[str, ...], operator: Any
) -> Manifest:
    operating.wait_for_phase(cluster, namespace, name, phases=phases, timeout=60, operator=operator)
    return get_json(cluster, "pipeline", name, "-n", namespace)
