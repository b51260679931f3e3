"""The local demo: a real node-tier cluster, podline installed as a cluster admin installs it, and a
Pipeline run end to end.

``python -m tests.cluster demo`` (or ``tests/dev.sh demo``) brings up the node tier (a fresh one), builds
the operator image from the Dockerfile (`operator_image`; cached), pushes it to the node's registry and
installs the chart with ``helm install`` into ``podline-system`` (a namespace enforcing the restricted Pod
Security Standard), so the operator runs as a pod. It then applies a Pipeline whose steps run real shell
commands in locally built images — one of them only in the password-protected registry, pulled through
``image_pull_secrets`` — and prints each step's log with ``podline logs`` and the summary with ``podline
get``. Then it reruns the Pipeline twice (the chart is installed with ``operator.historyLimit=1``), so the
first run's pod is pruned once archived, shows that the pod is gone and prints that run's logs with
``podline logs --run`` through the operator's archive Service (the API server's service proxy; the archive
itself is a directory inside the operator pod). ``--local`` runs ``podline operator`` as a process of this
checkout instead (no image build: for working on the operator; the past run is then read with ``--archive``
from its directory). The cluster and the operator keep running for you to try more (``kubectl apply``);
``tests/dev.sh down`` stops both.
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import yaml

from tests.cluster import apitier, clusters, nodetier, operator_image

ROOT = pathlib.Path(__file__).resolve().parents[2]
CRD = ROOT / "crds" / "pipelines.podline.dev.yaml"
NAMESPACE = "demo"
OPERATOR_PID = "operator.pid"
CHART = ROOT / "charts" / "podline"
RELEASE, RELEASE_NAMESPACE = "podline", "podline-system"


def say(message: str) -> None:
    print(f"[demo] {message}", flush=True)


def demo_objects(cluster: nodetier.NodeCluster) -> list[dict[str, object]]:
    registry = cluster.registry
    assert registry is not None
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "registry-login"},
        "type": "Opaque",
        "stringData": {"config.json": registry.docker_config_json()},
    }
    spec = {
        "kind": "pipeline",
        "type": "kubernetes",
        "name": "demo",
        "steps": [
            {
                "name": "greet",
                "image": registry.busybox,
                "commands": [
                    'echo "hello from $DRONE_STEP_NAME, workspace $DRONE_WORKSPACE"',
                    "echo built > artifact.txt",
                ],
            },
            {
                "name": "test",
                "image": registry.private_busybox,
                "commands": ["cat artifact.txt", "echo this image came from the private registry"],
            },
            {
                "name": "report-failure",
                "image": registry.busybox,
                "commands": ["echo a step failed"],
                "when": {"status": ["failure"]},
            },
        ],
        "image_pull_secrets": ["registry-login"],
    }
    pipeline = {
        "apiVersion": "podline.dev/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": "demo"},
        "spec": spec,
    }
    return [secret, pipeline]


def start_operator(cluster: apitier.ApiCluster, runner: str, archive: str = "") -> int:
    stop_operator(cluster.directory)
    env = {
        **os.environ,
        "KUBECONFIG": str(cluster.kubeconfig),
        "PODLINE_RUNNER_IMAGE": runner,
        "PODLINE_METRICS_PORT": "0",
        "PODLINE_LIVENESS_PORT": "0",
        "PODLINE_HISTORY_LIMIT": "1",
        "PODLINE_ARCHIVE": archive,
    }
    with open(cluster.log_dir / "operator.log", "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "podline", "operator"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=ROOT,
            start_new_session=True,
        )
    (cluster.directory / OPERATOR_PID).write_text(str(process.pid))
    return process.pid


def stop_operator(directory: pathlib.Path) -> None:
    pid_file = directory / OPERATOR_PID
    if not pid_file.exists():
        return
    try:
        os.killpg(int(pid_file.read_text()), signal.SIGTERM)
    except (ProcessLookupError, ValueError, PermissionError):
        pass
    pid_file.unlink(missing_ok=True)


def install_chart(cluster: nodetier.NodeCluster) -> str:
    """Build (or reuse) the image, push it, `helm install` the chart; returns how to read the operator's log."""
    say("building the operator image from the Dockerfile (cached when its inputs are unchanged) ...")
    image = operator_image.build(say=True)
    say(operator_image.describe(image))
    operator_image.push(image)
    cluster.kubectl("create", "namespace", RELEASE_NAMESPACE, check=False)
    cluster.kubectl("label", "namespace", RELEASE_NAMESPACE, "--overwrite",
                    "pod-security.kubernetes.io/enforce=restricted")  # fmt: skip
    home = cluster.directory / "helm"
    env = {**os.environ, "HELM_CACHE_HOME": str(home / "cache"), "HELM_CONFIG_HOME": str(home / "config"),
           "HELM_DATA_HOME": str(home / "data"), "KUBECONFIG": str(cluster.kubeconfig)}  # fmt: skip
    argv = [cluster.programs["helm"], "install", RELEASE, str(CHART), "--namespace", RELEASE_NAMESPACE,
            "--set", f"image.repository={operator_image.REPOSITORY}", "--set", f"image.tag={image.tag}",
            "--set", "operator.historyLimit=1",
            "--wait", "--timeout", "180s"]  # fmt: skip
    say("$ helm install " + " ".join(argv[2:]))
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=240, check=False)
    if result.returncode != 0:
        raise SystemExit(f"[demo] helm install failed:\n{result.stdout}{result.stderr}")
    print(result.stdout.split("NOTES:")[0], flush=True)
    print(cluster.kubectl("get", "pods", "-n", RELEASE_NAMESPACE, "-o", "wide").stdout, flush=True)
    return f"kubectl -n {RELEASE_NAMESPACE} logs deployment/{RELEASE}"


def wait_for_run(cluster: nodetier.NodeCluster, after: str | None = None) -> dict[str, object]:
    """The demo Pipeline's status once a run (other than ``after``) has ended, or after 300 s."""
    deadline = time.monotonic() + 300
    status: dict[str, object] = {}
    while time.monotonic() < deadline:
        out = cluster.kubectl("get", "pipeline", "demo", "-n", NAMESPACE, "-o", "json").stdout
        status = json.loads(out).get("status") or {}
        if (
            status.get("phase") in ("Succeeded", "Failed", "Error", "Cancelled")
            and status.get("run") != after
        ):
            break
        time.sleep(1)
    return status


def podline(cluster: nodetier.NodeCluster, *args: str) -> str:
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}
    result = subprocess.run([sys.executable, "-m", "podline", *args], env=env, cwd=ROOT, capture_output=True,
                            text=True, timeout=120, check=False)  # fmt: skip
    return result.stdout + result.stderr


def past_run(cluster: nodetier.NodeCluster, first: dict[str, object], *, archive: str) -> None:
    """Rerun twice, so that the first run's pod is pruned (one earlier pod is kept), then read that run's
    logs from the archive: through the operator's Service (the chart), or the local operator's directory."""
    say("rerunning twice (podline.dev/rerun); one earlier run's pod is kept (historyLimit=1), so the first")
    say(f"run's pod {first['podName']} is deleted once the operator has archived it ...")
    latest = str(first["run"])
    for i in (1, 2):
        cluster.kubectl(
            "annotate", "--overwrite", "-n", NAMESPACE, "pipeline", "demo", f"podline.dev/rerun=again-{i}"
        )
        latest = str(wait_for_run(cluster, after=latest).get("run"))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        pods = cluster.kubectl("get", "pod", str(first["podName"]), "-n", NAMESPACE, check=False)
        if pods.returncode != 0:
            break
        time.sleep(1)
    say(f"$ kubectl get pod {first['podName']} -n {NAMESPACE}")
    print((pods.stdout + pods.stderr).strip(), flush=True)
    where = (
        f"--archive {archive}"
        if archive
        else "(through the operator's archive Service podline-system/podline-archive)"
    )
    say(f"$ podline logs demo -n {NAMESPACE} --run {first['run']}   {where}")
    print(podline(cluster, "logs", "demo", "-n", NAMESPACE, "--run", str(first["run"]),
                  *(("--archive", archive) if archive else ())), flush=True)  # fmt: skip


def run(cluster: nodetier.NodeCluster, *, local: bool = False) -> int:
    assert cluster.registry is not None
    archive = f"file://{cluster.directory / 'archive'}" if local else ""
    if local:
        cluster.install_crds(CRD)
        pid = start_operator(cluster, cluster.registry.runner, archive)
        operator_log = str(cluster.log_dir / "operator.log")
        say(f"operator running as a local process (pid {pid}), log: {operator_log}")
    else:
        operator_log = install_chart(cluster)
        say(f"operator running as a pod, installed by Helm; its log: {operator_log}")
    cluster.kubectl("create", "namespace", NAMESPACE, check=False)
    cluster.kubectl("delete", "pipeline", "demo", "-n", NAMESPACE, "--ignore-not-found", "--wait=true")
    cluster.kubectl("apply", "-n", NAMESPACE, "-f", "-", input=yaml.safe_dump_all(demo_objects(cluster)))
    say("applied Pipeline demo/demo; waiting for it to finish ...")
    first = wait_for_run(cluster)
    phase = str(first.get("phase") or "")
    print(cluster.kubectl("get", "pipelines", "-n", NAMESPACE).stdout, flush=True)
    print(podline(cluster, "logs", "demo", "-n", NAMESPACE), flush=True)
    print(podline(cluster, "get", "demo", "-n", NAMESPACE), flush=True)
    say(f"the run ended: {phase or 'still running after 300s'}")
    if phase:
        past_run(cluster, first, archive=archive)
    say(f"try more:  export KUBECONFIG={cluster.kubeconfig}")
    say(f"           .venv/bin/podline logs demo -n demo --run {first.get('run', 'g1')}"
        + (f" --archive {archive}" if archive else "") + "   # a past run, its pod gone")  # fmt: skip
    say(
        "           .venv/bin/podline get demo -n demo;  .venv/bin/podline dashboard   # runs, past runs, logs"
    )
    say(f"           kubectl get pipelines -A;  {operator_log}")
    say("stop everything: tests/dev.sh down")
    return 0 if phase == "Succeeded" else 1


def main(*, local: bool = False) -> int:
    from tests.cluster import __main__ as cli

    directory = clusters.directory("node")
    if clusters.running_components(directory):
        say("a node tier is running; starting a fresh one for the demo")
        stop_operator(directory)
        say(clusters.stop_cli_cluster("node"))
    cluster = cli.bring_up("node")
    assert isinstance(cluster, nodetier.NodeCluster)
    return run(cluster, local=local)
