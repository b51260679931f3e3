"""``podline convert .drone.yml | kubectl apply -f -`` against the real apiserver (api tier).

kubectl reads YAML 1.1 (sigs.k8s.io/yaml), where ``n``, ``y``, ``on``, ``off`` are booleans and ``1.10`` is a
float: convert's output must mean to kubectl what it means to podline (issue 20: `name: n` was refused). The
apiserver must also keep, not refuse, what Drone ignores (kubectl validates fields strictly by default), so
the operator can warn about it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import pytest
import yaml

from tests.chart import test_chart
from tests.e2e import conftest, operating

pytestmark = pytest.mark.api

DRONE_FILE = """\
kind: pipeline
type: docker
name: n

x-go: &go
  image: golang:1.10
  environment:
    GO111MODULE: on
    GOPROXY: off
    GO_VERSION: 1.10
    UMASK: 0755
    EMPTY: ''
    TILDE: '~'

steps:
- name: y
  <<: *go
  commands: [go version, 'echo yes']
- name: publish
  image: plugins/docker
  settings:
    tags: [latest, 1.10]
    debug: on
    password: {from_secret: docker_password}
  when:
    branch: [on, off]

services:
- name: redis
  image: redis:7
  ports: [6379]
"""


def podline(*args: str, stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "podline", *args], input=stdin, capture_output=True, text=True, check=False,
        cwd=operating.ROOT, timeout=120,
    )  # fmt: skip


def test_converted_pipelines_apply_and_read_back_unchanged(api_cluster: Any, api_namespace: str) -> None:
    conftest.install_crd(api_cluster)
    converted = podline("convert", "-", stdin=DRONE_FILE)
    assert converted.returncode == 0, converted.stderr
    applied = api_cluster.kubectl(
        "apply", "-n", api_namespace, "-f", "-", input=converted.stdout, check=False
    )
    assert applied.returncode == 0, applied.stderr
    stored = json.loads(api_cluster.kubectl("get", "pipeline", "n", "-n", api_namespace, "-o", "json").stdout)
    spec = stored["spec"]
    assert spec["name"] == "n"
    assert [s["name"] for s in spec["steps"]] == ["y", "publish"]
    assert spec["steps"][0]["environment"] == {
        "GO111MODULE": "on", "GOPROXY": "off", "GO_VERSION": "1.10", "UMASK": "0755", "EMPTY": "", "TILDE": "~",
    }  # fmt: skip
    assert spec["steps"][0]["commands"] == ["go version", "echo yes"]
    assert spec["steps"][1]["when"] == {"branch": ["on", "off"]}
    assert spec["steps"][1]["settings"]["tags"] == ["latest", 1.1]  # settings are YAML values in Drone too
    assert spec["services"][0]["ports"] == [6379]


def test_what_drone_ignores_is_kept_by_the_apiserver_under_strict_validation(
    api_cluster: Any, api_namespace: str
) -> None:
    conftest.install_crd(api_cluster)
    manifest = {
        "apiVersion": "podline.dev/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": "lenient"},
        "spec": {
            "x-templates": {"a": 1},
            "trigger": {"actions": ["opened"]},
            "steps": [{"name": "a", "image": "busybox:1.36", "secrets": ["x"], "pull": True}],
        },
    }
    applied = api_cluster.kubectl(
        "apply", "--validate=strict", "-n", api_namespace, "-f", "-", input=json.dumps(manifest), check=False
    )
    assert applied.returncode == 0, applied.stderr
    stored = json.loads(
        api_cluster.kubectl("get", "pipeline", "lenient", "-n", api_namespace, "-o", "json").stdout
    )
    assert stored["spec"]["trigger"] == {"actions": ["opened"]}
    assert stored["spec"]["steps"][0]["secrets"] == ["x"] and stored["spec"]["steps"][0]["pull"] is True


def test_kubectl_warns_about_what_drone_ignores_with_the_charts_policy(
    api_cluster: Any, api_namespace: str
) -> None:
    """The chart's ValidatingAdmissionPolicy (validationActions [Warn]) as rendered, its binding scoped to the
    test's namespace: `kubectl apply` prints a warning naming each ignored field and still applies."""
    conftest.install_crd(api_cluster)
    rendered = test_chart.render(test_chart.helm_binary(), *test_chart.VAP)
    policy = test_chart.only(rendered, "ValidatingAdmissionPolicy")
    binding = test_chart.only(rendered, "ValidatingAdmissionPolicyBinding")
    suffix = api_namespace
    policy["metadata"]["name"] += f"-{suffix}"
    binding["metadata"]["name"] += f"-{suffix}"
    binding["spec"]["policyName"] = policy["metadata"]["name"]
    binding["spec"]["matchResources"] = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": suffix}}
    }
    api_cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all([policy, binding]))
    manifest = {
        "apiVersion": "podline.dev/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": "warned"},
        "spec": {
            "x-templates": {"a": 1},
            "trigger": {"actions": ["opened"]},
            "steps": [{"name": "build", "image": "busybox:1.36", "secrets": ["x"], "commands": ["true"]}],
        },
    }
    try:
        warned = ""
        for attempt in range(30):  # the policy takes effect once the apiserver has read it
            manifest["metadata"]["labels"] = {"attempt": str(attempt)}
            applied = api_cluster.kubectl("apply", "-n", api_namespace, "-f", "-", input=json.dumps(manifest))
            warned = applied.stderr
            if "Warning:" in warned:
                break
            time.sleep(1)
        assert "spec.x-templates: ignored, as Drone ignores fields it does not read" in warned, warned
        assert "spec.trigger.actions: ignored" in warned
        assert "spec.steps[build].secrets: ignored" in warned
        clean = {**manifest, "metadata": {"name": "clean"}, "spec": {"steps": [{"name": "a", "image": "x"}]}}
        assert (
            "Warning"
            not in api_cluster.kubectl(
                "apply", "-n", api_namespace, "-f", "-", input=json.dumps(clean)
            ).stderr
        )
    finally:
        api_cluster.kubectl("delete", "validatingadmissionpolicybinding,validatingadmissionpolicy",
                            binding["metadata"]["name"], "--ignore-not-found", check=False)  # fmt: skip
