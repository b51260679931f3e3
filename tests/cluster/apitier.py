"""The api tier: etcd, kube-apiserver and kube-controller-manager on loopback, started in seconds.

Enough Kubernetes for an operator: RBAC, TokenRequest (so a test can run the operator with exactly a
ServiceAccount's permissions), the garbage collector (ownerReferences) and the ServiceAccount controller (so
``default`` ServiceAccounts exist). No pod ever runs here — that is the node tier's job (`nodetier`); pod
statuses can be scripted with `scripted_kubelet`.

Everything lives in one directory: ``logs/`` (one file per component, kept after teardown), ``pki/``,
``run/`` (pid files), the admin ``kubeconfig`` and ``cluster.json``, which lets another process (the CLI's
``down``/``status``) find a running cluster. Ports are picked at start, so several api-tier clusters can run
side by side.
"""

from __future__ import annotations

import json
import os
import pathlib
import secrets
import shutil
import ssl
import subprocess
import time
from collections.abc import Callable, Sequence
from typing import IO, Any

import kubernetes.client
import kubernetes.config

from tests.cluster import binaries, cleaning, components, kubeconfigs, pki, probes

SERVICE_CIDR = "10.96.0.0/24"
ISSUER = "https://kubernetes.default.svc.cluster.local"
APISERVER_HOSTS = ("127.0.0.1", "localhost", "10.96.0.1", "kubernetes", "kubernetes.default",
                   "kubernetes.default.svc", "kubernetes.default.svc.cluster.local")  # fmt: skip
STATE_FILE = "cluster.json"
ADMIN_USER = "podline-admin"


class KubectlError(subprocess.CalledProcessError):
    """kubectl failed; unlike its base class, the message includes kubectl's stderr."""

    def __str__(self) -> str:
        return f"{' '.join(map(str, self.cmd))} exited with {self.returncode}: {(self.stderr or '').strip()}"


class ApiCluster:
    """etcd + kube-apiserver + kube-controller-manager. Create, then `start()`; `stop()` tears down."""

    tier = "api"
    # Where the apiserver listens and what it advertises (the node tier: its node IP, so pods reach it).
    address = "127.0.0.1"
    # "none": no endpoints for the `kubernetes` Service (nothing here could use them); the node tier: "lease".
    endpoint_reconciler = "none"

    def __init__(
        self, directory: pathlib.Path, programs: binaries.Binaries, *, owner: str = "pytest"
    ) -> None:
        self.directory = directory
        self.programs = programs
        self.owner = owner
        self.log_dir = directory / "logs"
        self.run_dir = directory / "run"
        self.pki_dir = directory / "pki"
        self.kubeconfig = directory / "kubeconfig"
        self.ports: dict[str, int] = {}
        self.components: dict[str, components.Component] = {}
        self.timings: dict[str, float] = {}
        self._admin_context: ssl.SSLContext | None = None
        self.lock: IO[bytes] | None = None  # held by a test session while it uses the cluster (see clusters)

    # ---- what tests use ----------------------------------------------------------------------------

    @property
    def server(self) -> str:
        return f"https://{self.address}:{self.ports['apiserver']}"

    def kubectl(
        self, *args: str, check: bool = True, input: str | None = None, kubeconfig: pathlib.Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl as admin (or with ``kubeconfig``); output is captured as text."""
        argv = [self.programs["kubectl"], "--kubeconfig", str(kubeconfig or self.kubeconfig), *args]
        result = subprocess.run(argv, input=input, check=False, capture_output=True, text=True, timeout=120)
        if check and result.returncode != 0:
            raise KubectlError(result.returncode, argv, result.stdout, result.stderr)
        return result

    def api_client(self, kubeconfig: pathlib.Path | None = None) -> kubernetes.client.ApiClient:
        """A new `kubernetes.client.ApiClient` for the admin (or for ``kubeconfig``). Close it when done."""
        client: kubernetes.client.ApiClient = kubernetes.config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(kubeconfig or self.kubeconfig)
        )
        return client

    def token_kubeconfig(self, namespace: str, serviceaccount: str, *, duration: str = "12h") -> pathlib.Path:
        """A kubeconfig authenticating as the ServiceAccount, with a token from the TokenRequest API."""
        token = self.kubectl(
            "create", "token", serviceaccount, "-n", namespace, f"--duration={duration}"
        ).stdout
        path = self.directory / "kubeconfigs" / f"{namespace}.{serviceaccount}.kubeconfig"
        user = f"system:serviceaccount:{namespace}:{serviceaccount}"
        return kubeconfigs.with_token(path, self.server, self.ca.cert, user, token.strip())

    def install_crds(self, manifest: pathlib.Path | str) -> list[str]:
        """Apply CRDs (a file, or YAML text) and wait until each is Established. Returns their names.

        (``kubectl wait --for=condition=Established`` right after applying can fail instead of waiting,
        while the CRD has no conditions yet; this polls.)"""
        source = ["-f", str(manifest)] if isinstance(manifest, pathlib.Path) else ["-f", "-"]
        text = None if isinstance(manifest, pathlib.Path) else manifest
        applied = self.kubectl("apply", "--server-side", *source, "-o", "name", input=text).stdout.split()
        names = [name.split("/", 1)[1] for name in applied if name.startswith("customresourcedefinition")]
        for name in names:
            path = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"

            def established(path: str = path) -> bool:
                crd = self._get_json(path) or {}
                conditions = crd.get("status", {}).get("conditions") or []
                return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)

            if not components.poll(established, timeout=60):
                raise RuntimeError(f"CRD {name} was not Established after 60s")
        return names

    def new_namespace(self, prefix: str = "test") -> str:
        """Create a uniquely named namespace and wait until its ``default`` ServiceAccount exists."""
        name = f"{prefix}-{secrets.token_hex(3)}"
        self.kubectl("create", "namespace", name)
        paths = [f"/api/v1/namespaces/{name}/serviceaccounts/default",
                 f"/api/v1/namespaces/{name}/configmaps/kube-root-ca.crt"]  # fmt: skip
        if not components.poll(lambda: all(self._get_status(path) == 200 for path in paths), timeout=30):
            raise components.ComponentFailed(
                "kube-controller-manager",
                f"did not create the default ServiceAccount and kube-root-ca.crt in {name}",
                self.components["kube-controller-manager"].log,
            )
        return name

    def start_extra(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        ready: Callable[[], bool] = lambda: True,
        ready_timeout: float = 60.0,
    ) -> components.Component:
        """Run one more program as part of the cluster (e.g. the operator, for the demo): its log goes to
        ``log_dir/<name>.log``, and `stop()` or ``python -m tests.cluster down`` stop it before the rest."""
        self._component(name, argv, env=env, ready=ready, ready_timeout=ready_timeout)
        self._write_state()
        self._start(name)
        return self.components[name]

    # ---- restarting single components (chaos tests) --------------------------------------------------

    def restart_apiserver(self) -> None:
        self.components["kube-apiserver"].restart()

    def stop_apiserver(self) -> None:
        self.components["kube-apiserver"].stop()

    def start_apiserver(self) -> None:
        self._start("kube-apiserver")

    def stop_etcd(self) -> None:
        self.components["etcd"].stop()

    def start_etcd(self) -> None:
        self._start("etcd")

    def restart_controller_manager(self) -> None:
        self.components["kube-controller-manager"].restart()

    # ---- lifecycle -----------------------------------------------------------------------------------

    @property
    def ca(self) -> pki.KeyPair:
        return pki.KeyPair(self.pki_dir / "ca.crt", self.pki_dir / "ca.key")

    def start(self) -> None:
        """Start from scratch: wipe the directory, make certificates, start and wait for every component."""
        began = time.monotonic()
        self._clean_previous()
        if self.directory.exists():
            clean(self.directory, keep_logs=False)
        for path in (self.log_dir, self.run_dir, self.pki_dir):
            path.mkdir(parents=True)
        self._allocate_ports()
        self._make_pki()
        self._define_components()
        self._write_state()
        self.timings["prepare"] = time.monotonic() - began
        self._start_control_plane()
        self.timings["total"] = time.monotonic() - began

    def _clean_previous(self) -> None:
        """Undo host changes a crashed earlier cluster in the same directory left behind (node tier only)."""

    def _allocate_ports(self) -> None:
        for name in ("etcd", "etcd-peer", "apiserver"):
            self.ports[name] = probes.free_port()

    def _make_pki(self) -> None:
        ca = pki.make_ca(self.pki_dir)
        pki.issue(ca, self.pki_dir, "apiserver", common_name="kube-apiserver",
                  hosts=tuple(dict.fromkeys((self.address, *APISERVER_HOSTS))), client=False, server=True)  # fmt: skip
        pki.issue(ca, self.pki_dir, "admin", common_name=ADMIN_USER, organizations=("system:masters",))
        # In system:masters, the controller-manager needs no token per controller (much faster to start).
        pki.issue(ca, self.pki_dir, "controller-manager", common_name="system:kube-controller-manager",
                  organizations=("system:masters",))  # fmt: skip
        pki.issue(ca, self.pki_dir, "apiserver-kubelet-client", common_name="kube-apiserver-kubelet-client",
                  organizations=("system:masters",))  # fmt: skip
        pki.make_signing_keys(self.pki_dir)
        self._kubeconfig_for("admin", ADMIN_USER, self.kubeconfig)
        self._kubeconfig_for("controller-manager", "system:kube-controller-manager")

    def _kubeconfig_for(self, name: str, user: str, path: pathlib.Path | None = None) -> pathlib.Path:
        pair = pki.KeyPair(self.pki_dir / f"{name}.crt", self.pki_dir / f"{name}.key")
        path = path or self.directory / "kubeconfigs" / f"{name}.kubeconfig"
        return kubeconfigs.with_certificate(path, self.server, self.ca.cert, user, pair)

    def _component(self, name: str, argv: Sequence[str], **kwargs: Any) -> None:
        self.components[name] = components.Component(name, argv, self.log_dir, self.run_dir, **kwargs)

    def _define_components(self) -> None:
        p, pkid, port = self.programs, self.pki_dir, self.ports
        etcd_url = f"http://127.0.0.1:{port['etcd']}"
        peer_url = f"http://127.0.0.1:{port['etcd-peer']}"
        self._component("etcd", [
            p["etcd"], "--name=default", f"--data-dir={self.directory / 'etcd'}",
            f"--listen-client-urls={etcd_url}", f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}", f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=default={peer_url}", "--unsafe-no-fsync", "--log-level=warn",
            # one member: a short election timeout only makes it elect itself sooner at start
            "--heartbeat-interval=20", "--election-timeout=200",
        ], ready=lambda: probes.http_status(f"{etcd_url}/health") == 200,
           stop_timeout=2.0)  # with the apiserver's watches open, a graceful stop takes 7s  # fmt: skip
        self._component("kube-apiserver", [
            p["kube-apiserver"], f"--etcd-servers={etcd_url}",
            f"--bind-address={self.address}", f"--advertise-address={self.address}", f"--secure-port={port['apiserver']}",
            f"--cert-dir={self.run_dir / 'apiserver'}",
            f"--tls-cert-file={pkid / 'apiserver.crt'}", f"--tls-private-key-file={pkid / 'apiserver.key'}",
            f"--client-ca-file={pkid / 'ca.crt'}",
            "--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction",
            f"--service-account-issuer={ISSUER}", f"--api-audiences={ISSUER}",
            f"--service-account-key-file={pkid / 'service-account.pub'}",
            f"--service-account-signing-key-file={pkid / 'service-account.key'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}", f"--endpoint-reconciler-type={self.endpoint_reconciler}",
            "--allow-privileged=true",
            # /debug/pprof for whoever asks (the bench's apiserver profile); off otherwise.
            f"--profiling={'true' if os.environ.get('PODLINE_APISERVER_PROFILING') == '1' else 'false'}",
            # Without a grace period for watches, SIGTERM waits a full minute for the controller-manager's watches.
            "--shutdown-watch-termination-grace-period=2s",
            f"--kubelet-client-certificate={pkid / 'apiserver-kubelet-client.crt'}",
            f"--kubelet-client-key={pkid / 'apiserver-kubelet-client.key'}",
            f"--kubelet-certificate-authority={pkid / 'ca.crt'}",
            "--kubelet-preferred-address-types=InternalIP,Hostname",
        ], ready=lambda: self._get_status("/readyz") == 200)  # fmt: skip
        self._component("kube-controller-manager", [
            p["kube-controller-manager"], f"--kubeconfig={self.directory / 'kubeconfigs/controller-manager.kubeconfig'}",
            "--leader-elect=false", "--secure-port=0", "--use-service-account-credentials=false",
            f"--service-account-private-key-file={pkid / 'service-account.key'}",
            f"--root-ca-file={pkid / 'ca.crt'}",
            f"--cluster-signing-cert-file={pkid / 'ca.crt'}", f"--cluster-signing-key-file={pkid / 'ca.key'}",
            "--profiling=false",
        ], ready=lambda: self._get_status("/api/v1/namespaces/default/serviceaccounts/default") == 200)  # fmt: skip

    def _start_control_plane(self) -> None:
        for name in ("etcd", "kube-apiserver", "kube-controller-manager"):
            self._start(name)

    def _start(self, name: str) -> None:
        began = time.monotonic()
        component = self.components[name]
        component.start()
        component.wait_ready()
        self.timings[name] = time.monotonic() - began

    def _admin_tls(self) -> ssl.SSLContext:
        if self._admin_context is None:
            admin = pki.KeyPair(self.pki_dir / "admin.crt", self.pki_dir / "admin.key")
            self._admin_context = probes.tls_context(self.ca, admin)
        return self._admin_context

    def _get_status(self, path: str) -> int | None:
        """GET an API path as admin: the HTTP status, or None while the apiserver does not answer."""
        return probes.http_status(self.server + path, self._admin_tls())

    def _get_json(self, path: str) -> Any:
        """GET an API path as admin: the decoded object, or None unless the answer was 200."""
        return probes.http_json(self.server + path, self._admin_tls())

    def _write_state(self) -> None:
        state = {
            "tier": self.tier,
            "owner": self.owner,
            "pid": os.getpid(),
            "server": self.server,
            "kubeconfig": str(self.kubeconfig),
            "ports": self.ports,
            "components": list(self.components),
        }
        (self.directory / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")

    def stop(self) -> None:
        """Stop every component, newest first, and remove everything but the logs."""
        for component in reversed(list(self.components.values())):
            component.stop()
        clean(self.directory)
        if self.lock is not None:
            self.lock.close()
            self.lock = None


def clean(directory: pathlib.Path, *, keep_logs: bool = True) -> None:
    """Remove a stopped cluster's files except ``logs/``. Refuses while anything is mounted below it."""
    if not directory.exists():
        return
    cleaning.unmount_under(directory)
    if mounted := cleaning.mounts_under(directory):
        raise RuntimeError(f"not removing {directory}: still mounted there: {', '.join(mounted[:5])}")
    for entry in directory.iterdir():
        if keep_logs and entry.name == "logs":
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def read_state(directory: pathlib.Path) -> dict[str, Any] | None:
    try:
        state: dict[str, Any] = json.loads((directory / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    return state


def stop_recorded(directory: pathlib.Path) -> None:
    """Tear down an api-tier cluster some other process started, from its state file and pid files."""
    state = read_state(directory) or {}
    for name in reversed(state.get("components", [])):
        components.stop_recorded(directory / "run" / f"{name}.pid")
    clean(directory)
