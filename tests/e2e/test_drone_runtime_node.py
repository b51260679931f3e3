"""What Drone does to a pipeline per run, on the node tier: ``${…}`` substitution from the run's build
metadata, a service reached by its name, and ``plugins/docker`` running privileged as in Drone.

``plugins/docker:test`` is built here (tests/cluster/images.py: busybox whose entrypoint mounts a tmpfs,
which only a privileged container may) and served as Docker Hub's ``plugins/docker`` by the public registry,
so the pipeline names it as a ``.drone.yml`` does and Drone's default privileged list applies to it.
Sources of the rules: drone/envsubst v1.0.3 and drone/runner-go ``pipeline/runtime/runner.go``
(substitution), runner-go ``environ`` (variables), drone-runner-kube ``engine/compiler/compiler.go``
(privileged plugins, host aliases of services).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.cluster import images
from tests.e2e import conftest, operating
from tests.e2e.operating import apply, pipeline, steps, wait_for_phase

pytestmark = pytest.mark.node


@pytest.fixture(scope="module")
def drone_operator(node_cluster: Any) -> Iterator[operating.OperatorProcess]:
    conftest.install_crd(node_cluster)
    op = operating.OperatorProcess(
        node_cluster.kubeconfig,
        node_cluster.log_dir,
        name="operator-drone-runtime",
        env={
            "PODLINE_RUNNER_IMAGE": node_cluster.registry.runner,
            "PODLINE_REGISTRY_MIRRORS": images.operator_mirrors(),
            "PODLINE_ALLOW_PRIVILEGED": "true",  # PODLINE_PRIVILEGED_IMAGES: Drone's default list
            "PODLINE_PULL_TIMEOUT": "120",
        },
    )
    op.start()
    yield op
    op.stop()


def step_log(cluster: Any, namespace: str, pod: str, step: str) -> str:
    return str(cluster.kubectl("logs", "-n", namespace, pod, "-c", f"step-{step}").stdout)


def test_a_tag_build_runs_as_drone_runs_it(
    node_cluster: Any, node_namespace: str, drone_operator: Any
) -> None:
    cluster, ns, registry = node_cluster, node_namespace, node_cluster.registry
    build = {"tag": "v1.4.2", "commit": "89abcdef0123456789abcdef0123456789abcdef", "branch": "main"}
    spec = {
        "services": [
            {
                "name": "web",
                "image": registry.busybox,
                "commands": ["mkdir -p /www", "echo pong > /www/index.html", "exec httpd -f -p 8080 -h /www"],
            }
        ],
        "steps": [
            {
                "name": "vars",
                "image": registry.busybox,
                "environment": {"GREETING": "hi"},
                "commands": [
                    "echo tag=${DRONE_TAG} sha=${DRONE_COMMIT_SHA:0:8} major=${DRONE_SEMVER_MAJOR} b=${DRONE_BRANCH^^}",
                    "echo shell=$${GREETING}/$$GREETING env=$DRONE_TAG unknown=[${GREETING}]",
                ],
            },
            {
                "name": "by-name",
                "image": registry.busybox,
                "commands": [
                    "for i in $(seq 1 50); do wget -qO- http://web:8080/index.html && exit 0; sleep 0.2; done; exit 1"
                ],
            },
            {
                "name": "publish",
                "image": "plugins/docker:test",
                "settings": {"repo": "octo/app", "tags": ["${DRONE_TAG##v}", "latest"]},
            },
        ],
    }
    apply(cluster, ns, pipeline("release", spec, {"podline.dev/build": json.dumps(build)}))
    st = wait_for_phase(cluster, ns, "release", timeout=240, operator=drone_operator)
    assert st["phase"] == "Succeeded", (st, drone_operator.log()[-3000:])
    assert set(steps(st)) >= {"vars", "by-name", "publish"}
    pod_name = st["podName"]

    # substitution: build variables and operations; $$ reaches the shell as $; the step's own environment
    # is the shell's, not substitution's (Drone substitutes build variables only)
    out = step_log(cluster, ns, pod_name, "vars")
    assert "\ntag=v1.4.2 sha=89abcdef major=1 b=MAIN\n" in out, out
    assert "\nshell=hi/hi env=v1.4.2 unknown=[]\n" in out, out

    # a service by its name
    assert "pong" in step_log(cluster, ns, pod_name, "by-name")
    pod = operating.get(cluster, ns, "pod", pod_name)
    assert {"ip": "127.0.0.1", "hostnames": ["web"]} in pod["spec"]["hostAliases"]

    # plugins/docker runs privileged (it mounts), with its settings substituted
    out = step_log(cluster, ns, pod_name, "publish")
    assert "privileged: mounted" in out, out
    assert "repo=octo/app tags=1.4.2,latest" in out, out
    security = {c["name"]: c.get("securityContext", {}) for c in pod["spec"]["containers"]}
    assert security["step-publish"].get("privileged") is True
    assert security["step-vars"].get("privileged") is False
