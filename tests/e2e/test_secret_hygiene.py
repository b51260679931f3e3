"""Secret hygiene: canary values go through every secret path podline has, and show up nowhere but in Secrets.

Paths: ``image_pull_secrets`` (a ``config.json`` Secret with username/password, a
``kubernetes.io/dockerconfigjson`` Secret with an ``auth`` token), ``from_secret`` in a step's and in the
pipeline's ``environment`` (named ``secret/key``, and a bare key of ``podline-secrets``) and in a service's,
and a plugin setting ``from_secret`` (in a pod, and in a run that fails because the plugin's command must
come from its image's config, which a loopback registry without the image cannot give). Malformed pull Secrets carry canaries too (not JSON, bad base64, no
``:`` in ``auth``, credentials in a registry key, a config base64-encoded twice), because error messages are
where values leak most easily.

The operator runs at ``PODLINE_LOG_LEVEL=DEBUG`` on a private api-tier cluster with the scripted kubelet.
Then each canary — as itself, JSON-escaped, base64-encoded at every alignment, and base64-encoded twice (the
generated pull Secret's data is base64 of JSON holding a base64 ``auth``) — is searched for in: the operator
log, every Event, every Pipeline (status included), every pod, the generated pull Secrets' metadata, the
operator's metrics, and the output of ``podline render`` (outside the generated Secret's ``data``),
``podline logs`` and ``podline get``. Zero hits. A positive control first proves the search finds a canary
where it must be: in the generated pull Secret's data.

On the node tier, step output: steps print ``from_secret`` canaries (an environment variable, a plugin
setting, a multi-line value, each as itself, base64-encoded, on stdout and stderr, one value in two writes),
and neither ``kubectl logs`` nor ``podline logs`` shows any of them: the entrypoint masks them (``******``,
drone/runner-go ``pipeline/runtime/replacer.go``) before the output reaches the container log. A positive
control: the mask is there, and a value that is no secret is printed as it is.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import chaos
from tests.cluster import apitier, probes, scripted_kubelet
from tests.e2e import conftest as e2e_conftest
from tests.e2e import operating

# (tests get the api or node marker from the cluster fixture they use: tests/cluster/fixtures.py)
TOKEN = secrets.token_hex(4)
EMPTY_REGISTRY = operating.EmptyRegistry()  # a loopback registry with no image: the api tier has none


def canary(purpose: str) -> str:
    return f"CANARY-{purpose}-{TOKEN}-{secrets.token_hex(6)}"


PULL_PASSWORD = canary("pull-password")
PULL_USER = f"robot-{secrets.token_hex(3)}"  # a user name is no secret, but the auth token made from it is
AUTH_PASSWORD = canary("auth-password")
ENV_TOKEN = canary("env-token")
BARE_KEY = canary("bare-key")
PIPELINE_ENV = canary("pipeline-env")
SERVICE_ENV = canary("service-env")
PLUGIN_PASSWORD = canary("plugin-password")
NOT_JSON = canary("not-json")
BAD_BASE64 = canary("bad-base64")
NO_COLON = canary("no-colon")
KEY_PASSWORD = canary("key-password")
TWICE = canary("base64-twice")
CANARIES = [PULL_PASSWORD, AUTH_PASSWORD, ENV_TOKEN, BARE_KEY, PIPELINE_ENV, SERVICE_ENV, PLUGIN_PASSWORD,
            NOT_JSON, BAD_BASE64, NO_COLON, KEY_PASSWORD, TWICE]  # fmt: skip


def b64(text: str | bytes) -> str:
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


def base64_forms(value: str) -> list[str]:
    """What any base64 text that encodes ``value`` somewhere must contain: the characters that depend on
    ``value`` alone, for each of the three alignments of ``value`` in the encoded bytes."""
    raw = value.encode()
    forms = []
    for offset in range(3):
        encoded = b64(b"\0" * offset + raw)
        first_group, last_group = -(-offset // 3), (offset + len(raw)) // 3
        forms.append(encoded[4 * first_group : 4 * last_group])
    return [f for f in forms if len(f) >= 12]


def forms(value: str) -> set[str]:
    out = {value, json.dumps(value)[1:-1]}
    for once in base64_forms(value):
        out.add(once)
        out.update(base64_forms(once))
    return out


NEEDLES = {c: forms(c) for c in CANARIES} | {
    "auth token of the pull user": forms(b64(f"{PULL_USER}:{PULL_PASSWORD}")),
    "auth token of the robot": forms(b64(f"robot:{AUTH_PASSWORD}")),
}


def hits(where: str, text: str) -> list[str]:
    return [f"{name} in {where}" for name, needles in NEEDLES.items() if any(n in text for n in needles)]


def secret(name: str, data: dict[str, str], type_: str = "Opaque") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name},
        "type": type_,
        "stringData": data,
    }


def config(entries: dict[str, Any]) -> str:
    return json.dumps({"auths": entries})


SOURCES = [
    secret("regcred", {"config.json": config({"registry.example.com": {"username": PULL_USER,
                                                                         "password": PULL_PASSWORD}})}),
    secret("robot", {".dockerconfigjson": config({"quay.io": {"auth": b64(f"robot:{AUTH_PASSWORD}")}})},
           "kubernetes.io/dockerconfigjson"),
    secret("app-secrets", {"token": ENV_TOKEN, "pipeline": PIPELINE_ENV, "service": SERVICE_ENV,
                           "plugin": PLUGIN_PASSWORD}),
    secret("podline-secrets", {"bare": BARE_KEY}),
    # malformed pull Secrets, each carrying a canary where an error message could quote it
    secret("not-json", {"config.json": '{"auths": {"registry.example.com": {"password": "' + NOT_JSON}),
    secret("bad-base64", {"config.json": config({"registry.example.com": {"auth": BAD_BASE64 + "!*"}})}),
    secret("no-colon", {"config.json": config({"registry.example.com": {"auth": b64(NO_COLON)}})}),
    secret("key-creds", {"config.json": config({f"https://ci:{KEY_PASSWORD}@registry.example.com": {}})}),
    secret("twice", {"config.json": b64(config({"registry.example.com": {"auth": b64(f"ci:{TWICE}")}}))}),
]  # fmt: skip


def pipelines() -> list[dict[str, Any]]:
    every_path = {
        "image_pull_secrets": ["regcred", "robot"],
        "environment": {"PIPELINE": {"from_secret": "app-secrets/pipeline"}},
        "services": [{"name": "db", "image": "redis:7",
                      "environment": {"SERVICE": {"from_secret": "app-secrets/service"}}}],
        "steps": [
            {"name": "build", "image": "registry.example.com/team/app:1", "commands": ["echo build"],
             "environment": {"TOKEN": {"from_secret": "app-secrets/token"}, "BARE": {"from_secret": "bare"}}},
            # a plugin, with its entrypoint named: the api tier has no registry to read the image's own from
            {"name": "publish", "image": "quay.io/team/plugin:1", "entrypoint": ["/bin/plugin"],
             "settings": {"username": "ci", "password": {"from_secret": "app-secrets/plugin"}}},
        ],
    }  # fmt: skip
    # the same plugin as users write it: its command must come from its registry, which has no such image
    # (a loopback one), so the run fails before any pod (ImageConfigUnavailable), and that message must not
    # carry the setting's value either
    plugin = {
        "image_pull_secrets": ["robot"],
        "steps": [
            {
                "name": "publish",
                "image": f"{EMPTY_REGISTRY.host}/team/plugin:1",
                "settings": {"username": "ci", "password": {"from_secret": "app-secrets/plugin"}},
            }
        ],
    }
    out = [operating.pipeline("every-path", every_path), operating.pipeline("plugin-image-config", plugin)]
    for name in ("not-json", "bad-base64", "no-colon", "key-creds", "twice"):
        spec = {
            "image_pull_secrets": [name],
            "steps": [{"name": "a", "image": "registry.example.com/team/app:1", "commands": ["true"]}],
        }
        out.append(operating.pipeline(f"malformed-{name}", spec))
    return out


@pytest.fixture(scope="module")
def cluster(
    api_cluster: apitier.ApiCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[apitier.ApiCluster]:
    yield from e2e_conftest.private_cluster(api_cluster, tmp_path_factory, "hygiene")


def podline(cluster: apitier.ApiCluster, *args: str, check: bool = False) -> str:
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}
    result = subprocess.run([sys.executable, "-m", "podline", *args], capture_output=True, text=True, env=env,
                            cwd=operating.ROOT, timeout=120, check=False)  # fmt: skip
    assert not check or result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return result.stdout + result.stderr


def test_no_secret_value_outside_secrets(cluster: apitier.ApiCluster, tmp_path: Path) -> None:
    namespace = cluster.new_namespace("hygiene")
    metrics_port = probes.free_port()
    env = {"PODLINE_LOG_LEVEL": "DEBUG", "PODLINE_METRICS_PORT": str(metrics_port)}
    operator = operating.OperatorProcess(
        cluster.kubeconfig, cluster.log_dir, env=env, name="operator-hygiene"
    )
    kubelet = scripted_kubelet.ScriptedKubelet(cluster.api_client(), namespace=namespace)
    kubelet.start()
    operator.start()
    try:
        operating.apply(cluster, namespace, *SOURCES)
        operating.apply(cluster, namespace, *pipelines())
        ended = {p["metadata"]["name"]: operating.wait_for_phase(cluster, namespace, p["metadata"]["name"],
                                                                 operator=operator)
                 for p in pipelines()}  # fmt: skip
        assert ended["every-path"]["phase"] == "Succeeded", ended["every-path"]
        assert ended["plugin-image-config"]["reason"] == "ImageConfigUnavailable", ended[
            "plugin-image-config"
        ]
        failed = {name: st["reason"] for name, st in ended.items() if name.startswith("malformed-")}
        assert set(failed.values()) == {"PullSecretError"}, failed
        metrics = probes.http_get(f"http://127.0.0.1:{metrics_port}/metrics")
        places = gather(cluster, namespace, tmp_path)
        places["the operator's metrics"] = metrics[1].decode() if metrics else ""
        places["the operator log (DEBUG)"] = operator.log()
    finally:
        operator.stop()
        kubelet.stop()
    assert (
        "DEBUG" in places["the operator log (DEBUG)"] or "is invoked" in places["the operator log (DEBUG)"]
    ), "the operator really logged at debug level"
    found = [hit for where, text in places.items() for hit in hits(where, text)]
    assert not found, f"secret values outside Secrets: {found}"


def gather(cluster: apitier.ApiCluster, namespace: str, tmp_path: Path) -> dict[str, str]:
    """Every place a secret value must not be, as text; and the positive control on the pull Secret."""
    places: dict[str, str] = {}
    for kind in ("events", "pipelines.podline.dev", "pods"):
        places[f"all {kind}"] = cluster.kubectl("get", kind, "--all-namespaces", "-o", "json").stdout
    generated = json.loads(cluster.kubectl("get", "secrets", "-n", namespace, "-l", chaos.MANAGED,
                                           "-o", "json").stdout)["items"]  # fmt: skip
    assert len(generated) == 1, "one generated pull Secret (for the run that succeeded)"
    data = generated[0].pop("data")
    control = hits("the generated pull Secret's data", json.dumps(data))
    assert {h.split(" in ")[0] for h in control} >= {PULL_PASSWORD, AUTH_PASSWORD}, (
        f"positive control: the search must find the credentials where they belong; found {control}"
    )
    places["the generated pull Secret outside its data"] = json.dumps(generated)
    for pipeline in pipelines():
        name = pipeline["metadata"]["name"]
        places[f"podline logs {name}"] = podline(cluster, "logs", name, "-n", namespace)
        places[f"podline get {name}"] = podline(cluster, "get", name, "-n", namespace)
        path = tmp_path / f"{name}.yaml"
        docs = [{**pipeline, "metadata": {**pipeline["metadata"], "namespace": namespace}}]
        docs += [{**s, "metadata": {**s["metadata"], "namespace": namespace}} for s in SOURCES]
        path.write_text(yaml.safe_dump_all(docs))
        places[f"podline render {name}"] = render_outside_secret_data(cluster, path)
    places["podline get (all)"] = podline(cluster, "get", "-n", namespace)
    return places


def render_outside_secret_data(cluster: apitier.ApiCluster, path: Path) -> str:
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}
    result = subprocess.run([sys.executable, "-m", "podline", "render", str(path)], capture_output=True,
                            text=True, env=env, cwd=operating.ROOT, timeout=120, check=False)  # fmt: skip
    assert "Traceback" not in result.stderr, result.stderr
    docs = [d for d in yaml.safe_load_all(result.stdout) if d] if result.returncode == 0 else []
    for doc in docs:
        if doc.get("kind") == "Secret":
            assert doc.pop("data"), "the generated Secret has data"
    return json.dumps(docs) + result.stderr


MULTI_LINES = [canary("multi-one"), canary("multi-two")]
OUTPUT_CANARIES = [ENV_TOKEN, PLUGIN_PASSWORD, *MULTI_LINES]
PRINT_ALL = [
    'echo "token $TOKEN"',
    'printf %s "$TOKEN" | base64',
    'echo "multi $MULTI" >&2',
    'printf %s "$MULTI" | base64 | tr -d "\\n"; echo',  # (busybox wraps base64 at 76 columns)
    'printf "split %s" "$(echo "$TOKEN" | cut -c1-9)"; sleep 0.3; echo "$TOKEN" | cut -c10-',
    'echo "plain $PLAIN"',
]


def test_step_output_is_masked(node_cluster: Any, node_namespace: str) -> None:
    cluster, namespace = node_cluster, node_namespace
    e2e_conftest.install_crd(cluster)
    operator = operating.OperatorProcess(cluster.kubeconfig, cluster.log_dir, name="operator-hygiene-node",
                                         env={"PODLINE_RUNNER_IMAGE": cluster.registry.runner})  # fmt: skip
    busybox = cluster.registry.busybox
    spec = {
        "environment": {"MULTI": {"from_secret": "out-secrets/multi"}},
        "steps": [
            {"name": "print", "image": busybox, "commands": PRINT_ALL,
             "environment": {"TOKEN": {"from_secret": "out-secrets/token"}, "PLAIN": "not-a-secret"}},
            # a plugin setting becomes PLUGIN_PASSWORD (Drone's convention), masked alike
            {"name": "plugin", "image": busybox, "entrypoint": ["/bin/sh", "-c"],
             "command": ['echo "password $PLUGIN_PASSWORD"; printf %s "$PLUGIN_PASSWORD" | base64'],
             "settings": {"password": {"from_secret": "out-secrets/plugin"}}},
        ],
    }  # fmt: skip
    data = {"token": ENV_TOKEN, "plugin": PLUGIN_PASSWORD, "multi": "\n".join(MULTI_LINES)}
    operator.start()
    try:
        operating.apply(cluster, namespace, secret("out-secrets", data), operating.pipeline("printer", spec))
        st = operating.wait_for_phase(cluster, namespace, "printer", timeout=180, operator=operator)
        outputs = {
            f"kubectl logs {c}": cluster.kubectl("logs", "-n", namespace, st["podName"], "-c", c).stdout
            for c in ("step-print", "step-plugin")
        }
        outputs["podline logs"] = podline(cluster, "logs", "printer", "-n", namespace)
    finally:
        operator.stop()
    assert st["phase"] == "Succeeded", st
    printed = outputs["kubectl logs step-print"]
    assert "token ******" in printed and "multi ******\n******" in printed and "plain not-a-secret" in printed
    assert "split ******" in printed, printed
    assert "password ******" in outputs["kubectl logs step-plugin"]
    needles = {c: forms(c) for c in OUTPUT_CANARIES}
    found = [f"{c} in {where}" for where, text in outputs.items() for c, n in needles.items()
             if any(x in text for x in n)]  # fmt: skip
    assert not found, f"secret values in step output: {found}\n{outputs}"
