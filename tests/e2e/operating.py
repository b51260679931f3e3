"""Run the real operator (``python -m podline operator``) as a process against a test cluster.

Tests start it with a kubeconfig (the admin's, or a ServiceAccount token's to prove RBAC), kill it with
SIGKILL at any moment and start it again; its log is kept in the cluster's log directory.
"""

from __future__ import annotations

import http.server
import json
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]


class OperatorProcess:
    def __init__(
        self,
        kubeconfig: pathlib.Path,
        log_dir: pathlib.Path,
        env: Mapping[str, str] | None = None,
        name: str = "operator",
    ) -> None:
        self.kubeconfig = kubeconfig
        self.log_path = log_dir / f"{name}.log"
        self.env = dict(env or {})
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "PODLINE_METRICS_PORT": "0",
            "PODLINE_LIVENESS_PORT": "0",
            "PODLINE_RESYNC_SECONDS": "5",
            **self.env,
        }
        with open(self.log_path, "ab") as log:
            log.write(f"--- start {self.starts + 1} ---\n".encode())
            self.process = subprocess.Popen(
                [sys.executable, "-m", "podline", "operator"],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=ROOT,
                start_new_session=True,
            )
        self.starts += 1

    def kill(self) -> None:
        """SIGKILL: no cleanup, exactly like a node dying under the operator."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self) -> None:
        self.kill()
        self.start()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def pipeline(
    name: str, spec: Mapping[str, Any], annotations: Mapping[str, str] | None = None
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if annotations:
        meta["annotations"] = dict(annotations)
    return {"apiVersion": "podline.dev/v1alpha1", "kind": "Pipeline", "metadata": meta, "spec": dict(spec)}


def apply(cluster: Any, namespace: str, *objects: Mapping[str, Any]) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(list(objects)))


def get(cluster: Any, namespace: str, kind: str, name: str) -> dict[str, Any]:
    return dict(json.loads(cluster.kubectl("get", "-n", namespace, kind, name, "-o", "json").stdout))


def status(cluster: Any, namespace: str, name: str) -> dict[str, Any]:
    return dict(get(cluster, namespace, "pipelines.podline.dev", name).get("status") or {})


def wait_for(
    predicate: Callable[[], Any], *, timeout: float = 60, what: str = "condition", interval: float = 0.2
) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def wait_for_phase(
    cluster: Any,
    namespace: str,
    name: str,
    phases: tuple[str, ...] = ("Succeeded", "Failed", "Error", "Cancelled"),
    timeout: float = 90,
    operator: OperatorProcess | None = None,
) -> dict[str, Any]:
    try:
        return dict(
            wait_for(
                lambda: (s := status(cluster, namespace, name)).get("phase") in phases and s,
                timeout=timeout,
                what=f"Pipeline {namespace}/{name} to reach {phases}",
            )
        )
    except AssertionError as exc:
        tail = operator.log()[-4000:] if operator else ""
        raise AssertionError(
            f"{exc}\nstatus: {status(cluster, namespace, name)}\noperator log tail:\n{tail}"
        ) from None


def steps(st: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in st.get("steps", [])}


class EmptyRegistry:
    """A registry on loopback that has no image at all: every request gets 404 MANIFEST_UNKNOWN, as a real
    registry answers for an image it does not have. The api tier has no registry; this lets a step whose
    command must come from its image's config be tried there without any address but loopback."""

    def __init__(self) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def _unknown(self) -> None:
                body = json.dumps({"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]})
                self.send_response(404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Docker-Distribution-API-Version", "registry/2.0")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body.encode())

            do_GET = do_HEAD = _unknown

            def log_message(self, *_: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="empty-registry", daemon=True)
        self.thread.start()

    def image(self, path: str) -> str:
        return f"{self.host}/{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
