"""The Helm chart, rendered by the real helm binary: lint, RBAC, values, schema, securityContext, CRD copy.

Needs helm (built from source by ``tests/cluster/build.sh`` into
``${PODLINE_CACHE:-~/.cache/podline}/bin/helm-<HELM_VERSION>/helm``); without it these tests skip, or fail
with ``CI=true``. No cluster is needed: ``tests/e2e/test_chart_cluster.py`` installs the chart for real.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml
from podline.shell import settings as settings_

from tests.cluster import binaries

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "podline"
# helm built with `go install` does not know its Kubernetes version and assumes v1.20, older than the
# chart's kubeVersion; tell it the test cluster's.
KUBE_VERSION = binaries.KUBERNETES_VERSION.lstrip("v")
RELEASE, NAMESPACE = "podline", "podline-system"
WATCHED = ("ci", "team-a")
MODES = {
    "cluster": (),
    "namespaces": ("--set", "rbac.scope=namespaces", "--set", f"watchNamespaces={{{','.join(WATCHED)}}}"),
}
# (apiGroup, resource, verb) the operator's own role grants: every call in podline/shell/kube.py plus
# kopf's list/watch, and nothing else. See charts/podline/templates/_rbac.tpl for why each is needed.
OPERATOR_RULES = {
    ("podline.dev", "pipelines", "get"), ("podline.dev", "pipelines", "list"), ("podline.dev", "pipelines", "watch"),
    ("podline.dev", "pipelines/status", "patch"),
    ("", "pods", "get"), ("", "pods", "list"), ("", "pods", "watch"),
    ("", "pods", "create"), ("", "pods", "patch"), ("", "pods", "delete"),
    ("", "secrets", "get"), ("", "secrets", "create"),
    ("", "events", "create"),
    ("", "pods/log", "get"),  # the archiver (archive.enabled, the default) reads ended steps' output
}  # fmt: skip
Manifest = dict[str, Any]


def helm_binary() -> str:
    path = binaries.locate("helm")
    if path is None:
        message = (
            f"helm {binaries.HELM_VERSION} is not built: run `tests/cluster/build.sh api` "
            f"(looked in {binaries.cache_dir() / 'bin'} and KUBEBUILDER_ASSETS)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return str(path)


@pytest.fixture(scope="module")
def helm() -> str:
    return helm_binary()


def run_helm(helm: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [helm, *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env={
            **os.environ,
            "HELM_CACHE_HOME": "/tmp/podline-helm/cache",
            "HELM_CONFIG_HOME": "/tmp/podline-helm/config",
            "HELM_DATA_HOME": "/tmp/podline-helm/data",
        },
    )


def template(helm: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run_helm(
        helm, "template", RELEASE, str(CHART), "--namespace", NAMESPACE, "--kube-version", KUBE_VERSION, *args
    )


def render(helm: str, *args: str) -> list[Manifest]:
    result = template(helm, *args)
    assert result.returncode == 0, f"helm template {' '.join(args)} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def only(docs: Iterable[Manifest], kind: str) -> Manifest:
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, rendered {len(found)}"
    return found[0]


def metrics_service(docs: Iterable[Manifest]) -> Manifest:
    [found] = [d for d in docs if d["kind"] == "Service" and d["metadata"]["name"].endswith("-metrics")]
    return found


def container(docs: list[Manifest]) -> Manifest:
    [operator] = only(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    return dict(operator)


def env(docs: list[Manifest]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container(docs)["env"] if "value" in e}


def triples(rules: Iterable[Manifest]) -> set[tuple[str, str, str]]:
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule.get("apiGroups", [])
        for resource in rule.get("resources", [])
        for verb in rule.get("verbs", [])
    }


def operator_roles(docs: list[Manifest]) -> list[Manifest]:
    """The (Cluster)Roles bound to the chart's ServiceAccount, found through the bindings."""
    account = only(docs, "ServiceAccount")["metadata"]["name"]
    roles = {
        (d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]): d
        for d in docs
        if d["kind"] in ("Role", "ClusterRole")
    }
    bound = []
    for binding in (d for d in docs if d["kind"] in ("RoleBinding", "ClusterRoleBinding")):
        if any(
            s["kind"] == "ServiceAccount" and s["name"] == account and s["namespace"] == NAMESPACE
            for s in binding["subjects"]
        ):
            ref = binding["roleRef"]
            namespace = binding["metadata"].get("namespace") if ref["kind"] == "Role" else None
            bound.append(roles[(ref["kind"], namespace, ref["name"])])
    return bound


# ---- lint and render -------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_lint_strict_is_clean(helm: str, mode: str) -> None:
    result = run_helm(helm, "lint", "--strict", str(CHART), "--namespace", NAMESPACE, *MODES[mode])
    assert result.returncode == 0, f"helm lint --strict ({mode} mode):\n{result.stdout}{result.stderr}"


@pytest.mark.parametrize("mode", MODES)
def test_renders_the_objects_of_its_mode(helm: str, mode: str) -> None:
    docs = render(helm, *MODES[mode])
    kinds = sorted((d["kind"], d["metadata"].get("namespace") or "") for d in docs)
    common = [
        ("ClusterRole", ""),
        ("ClusterRole", ""),  # the user roles, -view and -edit
        ("Deployment", NAMESPACE),
        ("Pod", NAMESPACE),  # the `helm test` hook (templates/tests/)
        ("Role", NAMESPACE),  # -archive-reader (people's, unbound)
        ("Service", NAMESPACE),  # metrics
        ("Service", NAMESPACE),  # the archive endpoint
        ("ServiceAccount", NAMESPACE),
    ]
    if mode == "cluster":
        expected = common + [("ClusterRole", ""), ("ClusterRoleBinding", "")]
    else:
        expected = common + [(kind, ns) for ns in WATCHED for kind in ("Role", "RoleBinding")]
    assert kinds == sorted(expected)


# ---- RBAC ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_operator_is_granted_exactly_what_it_calls(helm: str, mode: str) -> None:
    docs = render(helm, *MODES[mode])
    roles = operator_roles(docs)
    assert len(roles) == (1 if mode == "cluster" else len(WATCHED)), [r["metadata"] for r in roles]
    for role in roles:
        granted = triples(role["rules"])
        assert granted == OPERATOR_RULES, (
            f"{role['kind']} {role['metadata']['name']}: more than the operator needs: {granted - OPERATOR_RULES}; "
            f"missing: {OPERATOR_RULES - granted}"
        )
        for rule in role["rules"]:
            assert set(rule) == {"apiGroups", "resources", "verbs"}, f"unexpected rule fields: {rule}"


@pytest.mark.parametrize("mode", MODES)
def test_no_role_uses_wildcards(helm: str, mode: str) -> None:
    for role in (d for d in render(helm, *MODES[mode]) if d["kind"] in ("Role", "ClusterRole")):
        for rule in role["rules"]:
            for field in ("apiGroups", "resources", "verbs", "nonResourceURLs"):
                assert not any("*" in item for item in rule.get(field, [])), (
                    f"{role['kind']} {role['metadata']['name']} grants a wildcard in {field}: {rule}"
                )


def test_namespaces_mode_binds_only_in_the_watched_namespaces(helm: str) -> None:
    docs = render(helm, *MODES["namespaces"])
    assert not [d for d in docs if d["kind"] == "ClusterRoleBinding"], (
        "no cluster-wide binding in namespaces mode"
    )
    bindings = {d["metadata"]["namespace"] for d in docs if d["kind"] == "RoleBinding"}
    assert bindings == set(WATCHED)
    assert env(docs)["PODLINE_NAMESPACES"] == ",".join(WATCHED), (
        "the operator must watch only those namespaces"
    )
    assert "PODLINE_NAMESPACES" not in env(render(helm)), (
        "in cluster mode the operator watches all namespaces"
    )


def test_user_roles_are_separate_from_the_operator(helm: str) -> None:
    docs = render(helm)
    operator = {r["metadata"]["name"] for r in operator_roles(docs)}
    users = {
        d["metadata"]["name"]: d
        for d in docs
        if d["kind"] == "ClusterRole" and d["metadata"]["name"] not in operator
    }
    assert set(users) == {f"{RELEASE}-view", f"{RELEASE}-edit"}
    for role in users.values():
        assert ("", "pods/log", "get") in triples(role["rules"]), (
            f"{role['metadata']['name']}: `podline logs` needs pods/log"
        )
        assert not {r for r in triples(role["rules"]) if r[1] == "secrets"}, "user roles never touch Secrets"
    assert ("podline.dev", "pipelines", "create") in triples(users[f"{RELEASE}-edit"]["rules"])
    assert ("podline.dev", "pipelines", "create") not in triples(users[f"{RELEASE}-view"]["rules"])
    labels = users[f"{RELEASE}-edit"]["metadata"]["labels"]
    assert labels.get("rbac.authorization.k8s.io/aggregate-to-edit") == "true"
    assert (
        users[f"{RELEASE}-view"]["metadata"]["labels"].get("rbac.authorization.k8s.io/aggregate-to-view")
        == "true"
    )
    plain = render(helm, "--set", "userRoles.aggregate=false")
    assert not any(
        k.startswith("rbac.authorization.k8s.io/aggregate")
        for d in plain
        if d["kind"] == "ClusterRole"
        for k in d["metadata"]["labels"]
    )
    none = render(helm, "--set", "userRoles.create=false")
    assert [d["metadata"]["name"] for d in none if d["kind"] == "ClusterRole"] == [RELEASE]


def test_rbac_create_false_renders_no_operator_rbac(helm: str) -> None:
    docs = render(
        helm,
        "--set",
        "rbac.create=false",
        "--set",
        "userRoles.create=false",
        "--set",
        "archive.serve.readerRole=false",
    )
    assert not [d for d in docs if d["kind"] in ("Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")]


# ---- the operator's configuration ------------------------------------------------------------------------


def settings_variables() -> set[str]:
    source = (ROOT / "operator" / "podline" / "shell" / "settings.py").read_text()
    names = set(re.findall(r'"(PODLINE_[A-Z_]+)"', source))
    assert len(names) > 10, "could not find the PODLINE_* variables in settings.py"
    return names


def test_every_operator_setting_is_a_chart_value(helm: str) -> None:
    rendered = set(env(render(helm, *MODES["namespaces"])))
    missing = settings_variables() - rendered
    assert not missing, (
        f"settings.py reads {sorted(missing)} but the chart never sets them: add values for them"
    )
    unknown = {n for n in rendered if n.startswith("PODLINE_")} - settings_variables()
    assert not unknown, f"the chart sets variables settings.py does not read: {sorted(unknown)}"


@pytest.mark.parametrize("mode", MODES)
def test_the_operator_accepts_the_rendered_environment(helm: str, mode: str) -> None:
    variables = env(render(helm, *MODES[mode]))
    config = settings_.Settings.from_env(variables)  # raises SettingsError naming any bad variable
    assert config.namespaces == (WATCHED if mode == "namespaces" else ())
    # One deliberate difference: the chart archives to its own volume by default; a bare operator process has
    # no such volume, so it archives only when PODLINE_ARCHIVE says where.
    assert config.archive_url == "file:///var/lib/podline/archive"
    # The same for serving it (PODLINE_ARCHIVE_PORT): a bare process opens no port unless told to.
    assert config.archive_port == 8081
    assert dataclasses.replace(config, archive_url="", archive_port=0) == settings_.Settings(
        namespaces=config.namespaces
    ), "chart defaults must be the operator's defaults"


@pytest.mark.parametrize(("values", "expected"), [
    (["operator.maxRunning=5"], {"PODLINE_MAX_RUNNING": "5"}),
    (["operator.runTimeoutSeconds=1000000"], {"PODLINE_RUN_TIMEOUT": "1000000"}),  # not 1e+06
    (["operator.allowedServiceAccounts={builder,deployer}"], {"PODLINE_ALLOWED_SERVICE_ACCOUNTS": "builder,deployer"}),
    (["operator.allowPrivileged=true"], {"PODLINE_ALLOW_PRIVILEGED": "true"}),
    ([], {"PODLINE_PRIVILEGED_IMAGES": "plugins/docker,plugins/acr,plugins/ecr,plugins/gcr,plugins/heroku,plugins/gar"}),
    (["operator.privilegedImages={registry.local/dind}"], {"PODLINE_PRIVILEGED_IMAGES": "registry.local/dind"}),
    (["operator.privilegedImages=null"], {"PODLINE_PRIVILEGED_IMAGES": "none"}),
    (["runner.image=registry.local/podline-runner:2"], {"PODLINE_RUNNER_IMAGE": "registry.local/podline-runner:2"}),
    ([], {"PODLINE_RUNNER_IMAGE": "podline/podline:0.1.0"}),  # empty: the operator's own image
    (["image.repository=r.local/podline", "image.tag=dev"], {"PODLINE_RUNNER_IMAGE": "r.local/podline:dev"}),
    (["logging.format=json", "logging.level=DEBUG"], {"PODLINE_LOG_FORMAT": "json", "PODLINE_LOG_LEVEL": "DEBUG"}),
    (["metrics.enabled=false"], {"PODLINE_METRICS_PORT": "0"}),
    (["livenessProbe.port=0"], {"PODLINE_LIVENESS_PORT": "0"}),
    (["operator.platform=linux/arm64"], {"PODLINE_PLATFORM": "linux/arm64"}),
    (["operator.registryMirrors.docker\\.io=http://localhost:5101", "operator.registryMirrors.quay\\.io=https://m.example"],
     {"PODLINE_REGISTRY_MIRRORS": "docker.io=http://localhost:5101,quay.io=https://m.example"}),
])  # fmt: skip
def test_values_reach_the_operator(helm: str, values: list[str], expected: dict[str, str]) -> None:
    variables = env(render(helm, *[arg for value in values for arg in ("--set", value)]))
    assert {k: variables[k] for k in expected} == expected
    settings_.Settings.from_env(variables)


def test_the_registry_ca_configmap_is_mounted_read_only_and_named_to_the_operator(helm: str) -> None:
    docs = render(helm, "--set", "operator.registryCA.configMap.name=corp-ca",
                  "--set", "operator.registryCA.configMap.key=bundle.pem")  # fmt: skip
    pod = only(docs, "Deployment")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert all(set(v) <= {"name", "emptyDir", "configMap"} for v in volumes.values()), volumes
    [mount] = [m for m in container(docs)["volumeMounts"] if "configMap" in volumes[m["name"]]]
    source = volumes[mount["name"]]["configMap"]
    assert source["name"] == "corp-ca" and "optional" not in source, (
        "a missing ConfigMap must not go unnoticed"
    )
    [item] = source["items"]
    assert item["key"] == "bundle.pem"
    assert mount["readOnly"] is True
    assert env(docs)["PODLINE_REGISTRY_CA_FILE"] == f"{mount['mountPath']}/{item['path']}"
    assert container(docs)["securityContext"]["readOnlyRootFilesystem"] is True
    assert item["path"] and "/" not in item["path"]
    lint = run_helm(
        helm, "lint", "--strict", str(CHART), "--set", "operator.registryCA.configMap.name=corp-ca"
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    default = render(helm)
    assert env(default)["PODLINE_REGISTRY_CA_FILE"] == ""
    assert [m["mountPath"] for m in container(default)["volumeMounts"]] == [
        "/tmp",
        "/var/lib/podline/archive",
    ]


def test_metrics_service_and_service_monitor(helm: str) -> None:
    docs = render(
        helm,
        "--set",
        "metrics.serviceMonitor.enabled=true",
        "--set",
        "metrics.serviceMonitor.labels.release=prom",
    )
    service, monitor = metrics_service(docs), only(docs, "ServiceMonitor")
    ports = {p["name"]: p["containerPort"] for p in container(docs)["ports"]}
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": 9090, "targetPort": "metrics", "protocol": "TCP"}
    ]
    assert ports["metrics"] == int(env(docs)["PODLINE_METRICS_PORT"])
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items(), (
        "the ServiceMonitor must select the Service"
    )
    assert (
        monitor["spec"]["endpoints"][0]["port"] == "metrics"
        and monitor["metadata"]["labels"]["release"] == "prom"
    )
    pod_labels = only(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items(), (
        "the Service must select the operator pod"
    )
    off = render(helm, "--set", "metrics.enabled=false")
    assert not [d for d in off if d["kind"] == "ServiceMonitor" or d["metadata"]["name"].endswith("-metrics")]
    assert "metrics" not in {p["name"] for p in container(off)["ports"]}
    assert not [d for d in render(helm) if d["kind"] == "ServiceMonitor"], "ServiceMonitor is opt-in"


def test_liveness_probe_is_kopfs_healthz(helm: str) -> None:
    docs = render(helm)
    probe = container(docs)["livenessProbe"]["httpGet"]
    ports = {p["name"]: p["containerPort"] for p in container(docs)["ports"]}
    assert (
        probe["path"] == "/healthz"
        and ports[probe["port"]] == int(env(docs)["PODLINE_LIVENESS_PORT"]) == 8080
    )
    assert "livenessProbe" not in container(render(helm, "--set", "livenessProbe.port=0"))
    assert "livenessProbe" not in container(render(helm, "--set", "livenessProbe.enabled=false"))


def test_helm_test_hook_asks_the_metrics_service_as_a_restricted_pod(helm: str) -> None:
    docs = render(helm, "--set", "image.tag=dev")
    hook, service = only(docs, "Pod"), metrics_service(docs)
    assert hook["metadata"]["annotations"]["helm.sh/hook"] == "test"
    spec = hook["spec"]
    [box] = spec["containers"]
    assert box["image"] == container(docs)["image"] == "podline/podline:dev", (
        "the test runs the operator's image"
    )
    assert spec["automountServiceAccountToken"] is False and spec["restartPolicy"] == "Never"
    assert spec["securityContext"] == only(docs, "Deployment")["spec"]["template"]["spec"]["securityContext"]
    assert box["securityContext"] == container(docs)["securityContext"]
    # no cluster DNS needed: it reads the variables the kubelet sets for the Service (name upper-cased, - → _)
    variable = service["metadata"]["name"].upper().replace("-", "_")
    script = box["command"][-1]
    assert (
        f'os.environ["{variable}_SERVICE_HOST"]' in script and f'"{variable}_SERVICE_PORT_METRICS"' in script
    )
    assert service["spec"]["ports"][0]["name"] == "metrics" and spec["enableServiceLinks"] is True
    assert not [d for d in render(helm, "--set", "metrics.enabled=false") if d["kind"] == "Pod"], (
        "without the metrics Service there is nothing for the hook to ask"
    )


def test_one_replica_and_image_from_app_version(helm: str) -> None:
    docs = render(helm)
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert only(docs, "Deployment")["spec"]["replicas"] == 1
    assert container(docs)["image"] == f"podline/podline:{chart['appVersion']}"
    assert container(render(helm, "--set", "image.tag=dev"))["image"] == "podline/podline:dev"
    digest = "sha256:" + "a" * 64
    assert container(render(helm, "--set", f"image.digest={digest}"))["image"] == f"podline/podline@{digest}"
    assert only(render(helm, "--set", "replicaCount=2"), "Deployment")["spec"]["replicas"] == 2


def test_chart_metadata_matches_the_project() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert chart["appVersion"] == project["version"], "Chart.yaml appVersion must be podline's version"
    assert chart["kubeVersion"] == ">=1.27.0-0"


# ---- security --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_pod_meets_the_restricted_pod_security_standard(helm: str, mode: str) -> None:
    docs = render(helm, *MODES[mode])
    pod = only(docs, "Deployment")["spec"]["template"]["spec"]
    box = container(docs)["securityContext"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert isinstance(pod["securityContext"]["runAsUser"], int) and pod["securityContext"]["runAsUser"] > 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert box["allowPrivilegeEscalation"] is False
    assert box["readOnlyRootFilesystem"] is True
    assert box["capabilities"] == {"drop": ["ALL"]}
    assert not box.get("privileged")
    for forbidden in ("hostNetwork", "hostPID", "hostIPC"):
        assert not pod.get(forbidden), forbidden
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert all(set(v) <= {"name", "emptyDir"} for v in volumes.values()), f"only emptyDir volumes: {volumes}"
    mounts = {m["mountPath"]: m["name"] for m in container(docs)["volumeMounts"]}
    assert "emptyDir" in volumes[mounts["/tmp"]], "a read-only root filesystem needs a writable /tmp"


# ---- values.schema.json ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "message"), [
    (["--set", "replicaCount=abc"], "at '/replicaCount': got string, want integer"),
    (["--set", "bogus=1"], "additional properties 'bogus' not allowed"),
    (["--set", "operator.maxRuning=3"], "additional properties 'maxRuning' not allowed"),
    (["--set", "rbac.scope=everywhere"], "at '/rbac/scope'"),
    (["--set", "logging.level=TRACE"], "at '/logging/level'"),
    (["--set", "operator.runTimeoutSeconds=0"], "at '/operator/runTimeoutSeconds'"),
    (["--set", "operator.allowPrivileged=yes"], "at '/operator/allowPrivileged'"),
    (["--set", "metrics.port=70000"], "at '/metrics/port'"),
    (["--set", "rbac.scope=namespaces", "--set", "watchNamespaces={team-*}"], "at '/watchNamespaces/0'"),
    (["--set", "image.digest=latest"], "at '/image/digest'"),
    (["--set", "operator.registryCA.configMap.name=Corp_CA"], "at '/operator/registryCA/configMap/name'"),
    (["--set", "operator.registryCA.configMap.key=certs/ca.crt"], "at '/operator/registryCA/configMap/key'"),
    (["--set", "operator.registryCA.secret=corp-ca"], "additional properties 'secret' not allowed"),
    (["--set", "operator.platform=arm64"], "at '/operator/platform'"),
    # cross-field rules, from templates/_helpers.tpl
    (["--set", "rbac.scope=namespaces"], "watchNamespaces is empty"),
    (["--set", "watchNamespaces={ci}"], 'rbac.scope is "cluster"'),
    (["--set", "metrics.serviceMonitor.enabled=true", "--set", "metrics.enabled=false"], "needs metrics.enabled"),
    (["--set", "metrics.port=8080"], "must differ"),
    (["--set", "extraEnv[0].name=PODLINE_LOG_LEVEL", "--set", "extraEnv[0].value=DEBUG"], "extraEnv sets PODLINE_LOG_LEVEL"),
])  # fmt: skip
def test_bad_values_fail_at_install_time(helm: str, args: list[str], message: str) -> None:
    result = template(helm, *args)
    assert result.returncode != 0, f"helm accepted {' '.join(args)}"
    assert message in result.stderr, f"helm rejected {' '.join(args)}, but unclearly:\n{result.stderr}"


def test_schema_is_draft_07_and_closed() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"

    def walk(node: Manifest, path: str) -> Iterable[str]:
        for name, prop in node.get("properties", {}).items():
            if "description" not in prop:
                yield f"{path}{name}: no description"
            if (
                prop.get("type") == "object"
                and "properties" in prop
                and prop.get("additionalProperties") is not False
            ):
                yield f"{path}{name}: must set additionalProperties: false"
            yield from walk(prop, f"{path}{name}.")

    assert schema["additionalProperties"] is False
    assert not list(walk(schema, ""))


def test_values_yaml_documents_every_field() -> None:
    """Each field the schema knows is preceded in values.yaml by a comment (or shares its parent's)."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    lines = (CHART / "values.yaml").read_text().splitlines()
    undocumented = []
    path: list[tuple[int, str]] = []
    for number, line in enumerate(lines):
        match = re.match(r"^(\s*)([A-Za-z][\w.-]*):", line)
        if not match or line.lstrip().startswith("-"):
            continue
        indent = len(match.group(1))
        path = [(i, k) for i, k in path if i < indent] + [(indent, match.group(2))]
        keys = [k for _, k in path]
        node: Manifest | None = schema
        for key in keys:
            node = (node or {}).get("properties", {}).get(key)
        if node is None or "properties" in node:
            continue  # a default's content (e.g. resources.limits) or a section header
        above = lines[number - 1].strip() if number else ""
        if not above.startswith("#"):
            undocumented.append(".".join(keys))
    assert not undocumented, f"values.yaml fields without a comment above them: {undocumented}"


# ---- CRD -------------------------------------------------------------------------------------------------


def test_chart_crd_is_identical_to_the_generated_crd() -> None:
    source = ROOT / "crds" / "pipelines.podline.dev.yaml"
    copy = CHART / "crds" / "pipelines.podline.dev.yaml"
    assert copy.read_bytes() == source.read_bytes(), (
        "charts/podline/crds/ is out of date; after regenerating the CRD (python -m podline.core.schema) run:\n"
        "  cp crds/pipelines.podline.dev.yaml charts/podline/crds/"
    )
    assert sorted(p.name for p in (CHART / "crds").iterdir()) == ["pipelines.podline.dev.yaml"]


# ---- the archive (docs/archive.md) ---------------------------------------------------------------------------


def test_archive_defaults_to_a_directory_that_says_it_keeps_nothing_without_a_claim(helm: str) -> None:
    docs = render(helm)
    variables = env(docs)
    assert variables["PODLINE_ARCHIVE"] == "file:///var/lib/podline/archive"
    pod = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == "archive")
    assert "emptyDir" in volume, "no persistence: an emptyDir (values.yaml says it keeps nothing)"
    mounts = pod["containers"][0]["volumeMounts"]
    assert {"name": "archive", "mountPath": "/var/lib/podline/archive"} in mounts
    assert not [d for d in docs if d["kind"] == "PersistentVolumeClaim"]


def test_archive_on_a_claim(helm: str) -> None:
    docs = render(helm, "--set", "archive.persistence.enabled=true", "--set", "archive.persistence.size=5Gi")
    claim = next(d for d in docs if d["kind"] == "PersistentVolumeClaim")
    assert claim["spec"]["resources"]["requests"]["storage"] == "5Gi"
    pod = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == "archive")
    assert volume["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    existing = render(helm, "--set", "archive.persistence.enabled=true", "--set",
                      "archive.persistence.existingClaim=mine")  # fmt: skip
    assert not [d for d in existing if d["kind"] == "PersistentVolumeClaim"]


def test_archive_on_s3_takes_credentials_from_a_secret(helm: str) -> None:
    docs = render(helm, "--set", "archive.url=s3://ci-logs/podline", "--set",
                  "archive.s3.endpoint=https://minio.example:9000", "--set", "archive.s3.credentialsSecret=s3-creds",
                  "--set", "archive.retention=30d\\,20runs")  # fmt: skip
    pod = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    by_name = {e["name"]: e for e in container["env"]}
    assert by_name["PODLINE_ARCHIVE"]["value"] == "s3://ci-logs/podline"
    assert by_name["AWS_ENDPOINT_URL"]["value"] == "https://minio.example:9000"
    assert by_name["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "s3-creds", "key": "AWS_SECRET_ACCESS_KEY"}  # fmt: skip
    assert by_name["PODLINE_LOG_RETENTION"]["value"] == "30d,20runs"
    assert not [v for v in pod["volumes"] if v["name"] == "archive"], "no volume for an S3 archive"


def test_without_the_archive_the_operator_reads_no_logs(helm: str) -> None:
    docs = render(helm, "--set", "archive.enabled=false")
    assert env(docs)["PODLINE_ARCHIVE"] == ""
    for role in operator_roles(docs):
        assert triples(role["rules"]) == OPERATOR_RULES - {("", "pods/log", "get")}


# ---- field warnings ------------------------------------------------------------------------------------

VAP = ("--api-versions", "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy")


def test_field_warnings_policy_only_warns_and_holds_the_generated_validations(helm: str) -> None:
    """kubectl's warnings for fields Drone ignores: a ValidatingAdmissionPolicy whose binding only warns
    (it must never refuse what Drone accepts), with the validations generated from the models."""
    from podline.core import schema

    docs = render(helm, *VAP)
    policy, binding = only(docs, "ValidatingAdmissionPolicy"), only(docs, "ValidatingAdmissionPolicyBinding")
    assert policy["spec"]["validations"] == schema.field_warnings()
    assert policy["spec"]["failurePolicy"] == "Ignore"
    assert binding["spec"] == {"policyName": policy["metadata"]["name"], "validationActions": ["Warn"]}
    assert (CHART / "files" / "field-warnings.yaml").read_text() == schema.render_field_warnings(), (
        "charts/podline/files/field-warnings.yaml drifted from the models; regenerate it with "
        "`python -m podline.core.schema --field-warnings > charts/podline/files/field-warnings.yaml`"
    )


def test_field_warnings_can_be_turned_off_and_need_kubernetes_1_30(helm: str) -> None:
    kinds = {d["kind"] for d in render(helm, *VAP, "--set", "fieldWarnings=false")}
    assert not kinds & {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}
    kinds = {d["kind"] for d in render(helm)}  # a cluster without the v1 API (helm's offline default)
    assert not kinds & {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}
