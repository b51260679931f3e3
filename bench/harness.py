"""Everything the scenarios stand on: the api-tier cluster, the operator process, the scripted kubelet
process, the floor responder, counters from the apiserver's and the operator's /metrics, and bulk creation.

Only loopback traffic; every wait is bounded; every process started here is stopped by `Harness.close`.
"""

from __future__ import annotations

import concurrent.futures
import os
import pathlib
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import kubernetes.client

from bench import kubelet as kubelet_
from bench import proc
from tests.cluster import apitier, clusters, pki, probes

ROOT = pathlib.Path(__file__).resolve().parents[1]
CRD = ROOT / "crds" / "pipelines.podline.dev.yaml"
GROUP, VERSION, PLURAL = "podline.dev", "v1alpha1", "pipelines"
STEP_IMAGE = "busybox:1.36"


class Process:
    """A helper process of the bench, in its own session; log in the cluster's log directory."""

    def __init__(self, name: str, argv: Sequence[str], log_dir: pathlib.Path, env: Mapping[str, str]) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_dir / f"{name}.log"
        self.env = dict(env)
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            log.write(f"--- start {self.starts + 1}: {' '.join(self.argv)} ---\n".encode())
            self.process = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                env={**os.environ, **self.env},
                start_new_session=True,
            )
        self.starts += 1

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (SIGKILL after ``timeout``) to this process only, by its pid."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_log(self, text: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log().rsplit("--- start", 1)[-1]:
                return True
            if not self.alive():
                return False
            time.sleep(0.05)
        return False


@dataclass
class Harness:
    """Start with `open`, always `close` (it tears everything down, whatever happened)."""

    cluster: apitier.ApiCluster
    api: kubernetes.client.ApiClient
    operator: Process
    kubelet: Process
    responder: Process | None = None
    metrics_port: int = 0
    floor_namespace: str = ""
    extra: list[Process] = field(default_factory=list)

    # ---- lifecycle ---------------------------------------------------------------------------------

    @classmethod
    def open(cls, say: Any = print) -> Harness:
        began = time.monotonic()
        cluster = clusters.start("api", owner="bench")
        say(f"api tier up in {time.monotonic() - began:.1f}s ({cluster.server}; logs {cluster.log_dir})")
        try:
            install_crd(cluster)
            api = kubelet_.client(str(cluster.kubeconfig), pool=32)
            port = probes.free_port()
            operator = Process("operator", operator_argv(), cluster.log_dir, operator_env(cluster, port))
            kubelet = Process(
                "scripted-kubelet",
                [sys.executable, "-m", "bench.kubelet", str(cluster.kubeconfig)],
                cluster.log_dir,
                {},
            )
            harness = cls(cluster=cluster, api=api, operator=operator, kubelet=kubelet, metrics_port=port)
        except BaseException:
            cluster.stop()
            raise
        try:
            harness.kubelet.start()
            if not harness.kubelet.wait_log("scripted kubelet running", 60):
                raise RuntimeError("the scripted kubelet did not start:\n" + harness.kubelet.log()[-2000:])
            harness.start_operator()
            harness.floor_namespace = cluster.new_namespace("bench-floor")
            harness.responder = Process(
                "floor-responder",
                [sys.executable, "-m", "bench.floor", str(cluster.kubeconfig), harness.floor_namespace],
                cluster.log_dir,
                {},
            )
            harness.responder.start()
            if not harness.responder.wait_log("floor responder running", 60):
                raise RuntimeError("the floor responder did not start:\n" + harness.responder.log()[-2000:])
        except BaseException:
            harness.close()
            raise
        return harness

    def start_operator(self, argv: Sequence[str] | None = None, timeout: float = 60.0) -> None:
        if argv is not None:
            self.operator.argv = list(argv)
        self.operator.start()
        if not self.operator.wait_log("podline operator started", timeout):
            raise RuntimeError("the operator did not start:\n" + self.operator.log()[-3000:])

    def restart_operator(self, argv: Sequence[str] | None = None) -> None:
        self.operator.stop()
        self.start_operator(argv)

    def close(self) -> None:
        for process in [*self.extra, self.responder, self.operator, self.kubelet]:
            if process is not None:
                try:
                    process.stop()
                except Exception as error:  # noqa: BLE001 - go on tearing down
                    print(f"could not stop {process.name}: {error}", file=sys.stderr)
        try:
            self.api.close()  # type: ignore[no-untyped-call]
        finally:
            self.cluster.stop()

    def keep_logs(self, out: pathlib.Path) -> dict[str, Any]:
        """Copy every log of this run to ``out`` (the cluster's directory is reused by the next cluster)
        and count what the operator wrote: lines, bytes, and kopf's per-event "Handler … succeeded." lines."""
        out.mkdir(parents=True, exist_ok=True)
        for log in self.cluster.log_dir.glob("*.log"):
            shutil.copyfile(log, out / log.name)
        text = self.operator.log()
        return {
            "operator_log_lines": text.count("\n"),
            "operator_log_bytes": len(text.encode()),
            "kopf_handler_succeeded_lines": text.count("succeeded."),
            "operator_warnings": sum(1 for line in text.splitlines() if "WARNING" in line or "ERROR" in line),
        }

    # ---- processes ---------------------------------------------------------------------------------

    def pids(self) -> dict[str, int]:
        found = {
            "operator": self.operator.pid if self.operator.alive() else 0,
            "scripted-kubelet": self.kubelet.pid if self.kubelet.alive() else 0,
            "bench": os.getpid(),
        }
        for name in ("kube-apiserver", "etcd", "kube-controller-manager"):
            component = self.cluster.components.get(name)
            if component is not None and component.process is not None:
                found[name] = component.process.pid
        if self.responder is not None and self.responder.alive():
            found["floor-responder"] = self.responder.pid
        return found

    def cpu(self) -> dict[str, float]:
        """CPU seconds used so far by each process of the bench (read /proc)."""
        return {name: proc.cpu_seconds(pid) or 0.0 for name, pid in self.pids().items() if pid}

    # ---- objects -----------------------------------------------------------------------------------

    def namespace(self, prefix: str) -> str:
        return self.cluster.new_namespace(prefix)

    def delete_namespace(self, name: str) -> None:
        self.cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)

    def create_pipelines(
        self, namespace: str, bodies: Iterable[dict[str, Any]], workers: int = 16
    ) -> list[float]:
        """Create the Pipelines at once (``workers`` requests in flight); returns each request's send time."""
        custom = kubernetes.client.CustomObjectsApi(self.api)

        def create(body: dict[str, Any]) -> float:
            sent = time.monotonic()
            custom.create_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, body, _preload_content=False
            )
            return sent

        bodies = list(bodies)
        if len(bodies) == 1:
            return [create(bodies[0])]
        with concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="create") as pool:
            return list(pool.map(create, bodies))

    def create_pipeline(self, namespace: str, body: dict[str, Any]) -> float:
        return self.create_pipelines(namespace, [body])[0]

    # ---- metrics -----------------------------------------------------------------------------------

    def apiserver_requests(self) -> dict[tuple[str, str, str], float]:
        """apiserver_request_total summed by (verb, resource, subresource), from the apiserver's /metrics."""
        admin = pki.KeyPair(self.cluster.pki_dir / "admin.crt", self.cluster.pki_dir / "admin.key")
        answer = probes.http_get(
            self.cluster.server + "/metrics", probes.tls_context(self.cluster.ca, admin), timeout=30
        )
        if answer is None or answer[0] != 200:
            raise RuntimeError("could not read the apiserver's /metrics")
        totals: dict[tuple[str, str, str], float] = defaultdict(float)
        for line in answer[1].decode().splitlines():
            if not line.startswith("apiserver_request_total{"):
                continue
            labels_text, _, value = line[len("apiserver_request_total{") :].rpartition("} ")
            labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', labels_text))
            key = (labels.get("verb", ""), labels.get("resource", ""), labels.get("subresource", ""))
            totals[key] += float(value)
        return dict(totals)

    def operator_metrics(self) -> dict[str, Any]:
        """The operator's own Prometheus metrics: histograms as cumulative buckets, counters as numbers."""
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10
            ) as response:
                text = response.read().decode()
        except OSError:
            return {}
        out: dict[str, Any] = {}
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            name_labels, _, value = line.rpartition(" ")
            name, _, labels = name_labels.partition("{")
            if name.endswith("_bucket"):
                bound = re.search(r'le="([^"]+)"', labels)
                if bound:
                    out.setdefault(name[:-7] + "_buckets", []).append((float(bound.group(1)), float(value)))
            else:
                out[name_labels] = float(value)
        return out


def install_crd(cluster: apitier.ApiCluster, timeout: float = 60.0) -> None:
    """Apply the CRD and wait until it is Established (a wait right after the apply can find no conditions
    yet and fail at once, so it is retried within the bound)."""
    cluster.kubectl("apply", "--server-side", "-f", str(CRD))
    deadline = time.monotonic() + timeout
    while True:
        done = cluster.kubectl(
            "wait", "--for=condition=Established", "crd/pipelines.podline.dev", "--timeout=10s", check=False
        )
        if done.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the CRD was not Established within {timeout:.0f}s: {done.stderr.strip()}")
        time.sleep(0.2)


def operator_argv() -> list[str]:
    return [sys.executable, "-m", "podline", "operator"]


def operator_env(cluster: apitier.ApiCluster, metrics_port: int) -> dict[str, str]:
    """The operator's production defaults (resync 30 s, INFO logs), metrics on a free loopback port."""
    return {
        "KUBECONFIG": str(cluster.kubeconfig),
        "PODLINE_METRICS_PORT": str(metrics_port),
        "PODLINE_LIVENESS_PORT": "0",
    }


def pipeline(name: str, durations: Sequence[float], *, image: str = STEP_IMAGE) -> dict[str, Any]:
    """A Pipeline of sequential steps ``s00, s01, …``; step i runs ``durations[i]`` seconds, then exits 0."""
    steps = [
        {"name": f"s{i:02d}", "image": image, "commands": [f"sleep {d:.3f}"]} for i, d in enumerate(durations)
    ]
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Pipeline",
        "metadata": {"name": name},
        "spec": {"kind": "pipeline", "type": "kubernetes", "name": name, "steps": steps},
    }


def delta(after: Mapping[Any, float], before: Mapping[Any, float]) -> dict[Any, float]:
    return {
        k: after.get(k, 0.0) - before.get(k, 0.0)
        for k in set(after) | set(before)
        if after.get(k, 0.0) - before.get(k, 0.0)
    }


def histogram_delta(
    after: Mapping[str, Any], before: Mapping[str, Any], name: str
) -> list[tuple[float, float]]:
    old = dict(before.get(name + "_buckets", []))
    return [(bound, count - old.get(bound, 0.0)) for bound, count in after.get(name + "_buckets", [])]
