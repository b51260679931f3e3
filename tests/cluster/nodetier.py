"""The node tier: the api tier plus a real node, where step containers really run.

Adds kube-scheduler, a kubelet (cgroup v1, cgroupfs driver, pods under the ``/podline`` cgroup), a private
containerd with runc and a CNI bridge, and two registries with locally built images (see `images`,
`registry`). The node is called ``podline-node``; its IP lives on a link of its own (the kubelet rejects
loopback node IPs), and the kubelet serves only on that IP, so ``kubectl logs`` works and nothing outside the
machine can reach it. Pods get addresses on a bridge without a route out.

Pods reach the API server as in any cluster: the apiserver listens on the node IP and advertises it, so the
``kubernetes`` Service gets that endpoint (lease reconciler), and kube-proxy (nftables mode, built from the
same Kubernetes module) turns Service IPs into endpoints. Pods have routes to exactly the service CIDR and
the node IP, through the host's address on the bridge; the host routes the service CIDR to the node link,
so a Service IP never leaves the machine. Only the bridge forwards (its own ``forwarding`` switch), for a
pod → Service → pod connection.

Only one node tier can run per machine: image references name fixed registry ports.
"""

from __future__ import annotations

import pathlib
import subprocess
import time
from collections.abc import Callable
from typing import Any

import yaml

from tests.cluster import apitier, binaries, cleaning, components, containerd, images, pki, probes
from tests.cluster import registry as registries

NODE_NAME = "podline-node"
NODE_IP = "10.233.0.1"
NODE_LINK = "podline-node"
POD_GATEWAY = "10.234.0.1"  # the host's address on the CNI bridge; pods route the service CIDR via it


class NodeCluster(apitier.ApiCluster):
    """A one-node cluster. Create, then `start()`; `stop()` tears everything down but the logs."""

    tier = "node"
    address = NODE_IP  # the apiserver's: pods reach it there (through the `kubernetes` Service)
    endpoint_reconciler = "lease"

    def __init__(
        self, directory: pathlib.Path, programs: binaries.Binaries, *, owner: str = "pytest"
    ) -> None:
        super().__init__(directory, programs, owner=owner)
        self.containerd_dir = directory / "containerd"
        self.registry = registries.RegistryInfo(
            public=registries.describe(
                "registry-public", images.PUBLIC_REGISTRY, self.log_dir, authenticated=False
            ),
            private=registries.describe(
                "registry-private", images.PRIVATE_REGISTRY, self.log_dir, authenticated=True
            ),
        )

    # ---- what tests use ----------------------------------------------------------------------------

    @property
    def containerd_address(self) -> pathlib.Path:
        return containerd.socket(self.containerd_dir)

    def ctr(self, *args: str) -> str:
        """Run ``ctr`` against the node's containerd in the CRI namespace (e.g. ``images ls -q``)."""
        argv = [
            self.programs["ctr"],
            "--address",
            str(self.containerd_address),
            "--namespace",
            "k8s.io",
            *args,
        ]
        result = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()}")
        return result.stdout

    def node_images(self) -> set[str]:
        """Image references present in the node's containerd (what ``imagePullPolicy: Never`` can use)."""
        return set(self.ctr("images", "list", "--quiet").split())

    def remove_node_image(self, reference: str) -> None:
        """Delete an image from the node, so the next start must pull it (or fail with ErrImageNeverPull)."""
        if reference in self.node_images():
            self.ctr("images", "remove", "--sync", reference)

    def restart_kubelet(self) -> None:
        self.components["kubelet"].restart()

    # ---- lifecycle -----------------------------------------------------------------------------------

    def _allocate_ports(self) -> None:
        super()._allocate_ports()
        for name in ("scheduler", "kubelet", "kubelet-healthz", "kube-proxy-healthz", "kube-proxy-metrics"):
            self.ports[name] = probes.free_port()

    def _make_pki(self) -> None:
        super()._make_pki()
        ca = self.ca
        pki.issue(ca, self.pki_dir, "scheduler", common_name="system:kube-scheduler")
        pki.issue(
            ca,
            self.pki_dir,
            "kubelet",
            common_name=f"system:node:{NODE_NAME}",
            organizations=("system:nodes",),
        )
        pki.issue(ca, self.pki_dir, "kubelet-serving", common_name=NODE_NAME, client=False, server=True,
                  hosts=(NODE_IP, "127.0.0.1", NODE_NAME, "localhost"))  # fmt: skip
        pki.issue(
            ca, self.pki_dir, "kube-proxy", common_name="system:kube-proxy"
        )  # bound to system:node-proxier
        self._kubeconfig_for("scheduler", "system:kube-scheduler")
        self._kubeconfig_for("kube-proxy", "system:kube-proxy")
        self._kubeconfig_for("kubelet", f"system:node:{NODE_NAME}")

    def _define_components(self) -> None:
        super()._define_components()
        p = self.programs
        public, private = self.registry.public, self.registry.private
        for name, registry, htpasswd in (("registry-public", public, None),
                                         ("registry-private", private, p["htpasswd"])):  # fmt: skip
            self.components[name] = registries.define(
                name,
                registry,
                self.directory / name,
                self.run_dir,
                program=p["docker-registry"],
                htpasswd=htpasswd,
            )

        cni_conf = self.directory / "cni" / "net.d"
        containerd.write_cni_config(cni_conf, self.directory / "cni" / "ipam", gateway=POD_GATEWAY,
                                    routes=(apitier.SERVICE_CIDR, f"{NODE_IP}/32"))  # fmt: skip
        mirrors = {r.host: f"http://{r.address}" for r in (public, private)}
        config = containerd.write_config(
            self.containerd_dir, sandbox_image=images.PAUSE, cni_conf_dir=cni_conf, mirrors=mirrors
        )
        self.components["containerd"] = containerd.define(
            self.containerd_dir, config, self.log_dir, self.run_dir, program=p["containerd"], ctr=p["ctr"]
        )
        port = self.ports["scheduler"]
        self._component("kube-scheduler", [
            p["kube-scheduler"], f"--kubeconfig={self.directory / 'kubeconfigs/scheduler.kubeconfig'}",
            "--leader-elect=false", "--bind-address=127.0.0.1", f"--secure-port={port}",
            f"--cert-dir={self.run_dir / 'scheduler'}", "--profiling=false",
        ], ready=lambda: probes.http_status(f"https://127.0.0.1:{port}/healthz", probes.unverified_tls()) == 200)  # fmt: skip
        kubelet_config = self._write_kubelet_config()
        self._component("kubelet", [
            p["kubelet"], f"--config={kubelet_config}",
            f"--kubeconfig={self.directory / 'kubeconfigs/kubelet.kubeconfig'}",
            f"--hostname-override={NODE_NAME}", f"--node-ip={NODE_IP}",
            f"--root-dir={self.directory / 'kubelet'}", f"--cert-dir={self.run_dir / 'kubelet'}",
        ], ready=self._node_ready, ready_timeout=90)  # fmt: skip
        healthz = self.ports["kube-proxy-healthz"]
        self._component("kube-proxy", [p["kube-proxy"], f"--config={self._write_kube_proxy_config()}"],
                        ready=lambda: probes.http_status(f"http://127.0.0.1:{healthz}/healthz") == 200)  # fmt: skip

    def _write_kube_proxy_config(self) -> pathlib.Path:
        """kube-proxy in nftables mode (its own tables, nothing else of the host's firewall touched), node
        ports only on the node IP, and the host's conntrack settings left as they are."""
        config: dict[str, Any] = {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
            "kind": "KubeProxyConfiguration",
            "clientConnection": {"kubeconfig": str(self.directory / "kubeconfigs" / "kube-proxy.kubeconfig")},
            "hostnameOverride": NODE_NAME,
            "mode": "nftables",
            "clusterCIDR": containerd.POD_SUBNET,
            # Pod → Service → pod on the same bridge: without br_netfilter the answer would go straight back
            # over the bridge, past the host's NAT; masquerading every Service connection sends it through.
            "masqueradeAll": True,
            "nodePortAddresses": [f"{NODE_IP}/32"],
            "healthzBindAddress": f"127.0.0.1:{self.ports['kube-proxy-healthz']}",
            "metricsBindAddress": f"127.0.0.1:{self.ports['kube-proxy-metrics']}",
            "enableProfiling": False,
            "oomScoreAdj": 0,
            "conntrack": {
                "maxPerCore": 0,
                "min": 0,
                "tcpEstablishedTimeout": "0s",
                "tcpCloseWaitTimeout": "0s",
            },
        }
        path = self.directory / "kube-proxy-config.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    def _write_kubelet_config(self) -> pathlib.Path:
        resolv = self.directory / "resolv.conf"
        resolv.write_text("# podline test node: pods have no DNS\n")
        tiny = "1%"
        config: dict[str, Any] = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "address": NODE_IP,
            "port": self.ports["kubelet"],
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": self.ports["kubelet-healthz"],
            "tlsCertFile": str(self.pki_dir / "kubelet-serving.crt"),
            "tlsPrivateKeyFile": str(self.pki_dir / "kubelet-serving.key"),
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": True},
                "x509": {"clientCAFile": str(self.ca.cert)},
            },
            "authorization": {"mode": "Webhook"},
            "containerRuntimeEndpoint": f"unix://{self.containerd_address}",
            "cgroupDriver": "cgroupfs",
            "cgroupRoot": f"/{cleaning.CGROUP_ROOT}",
            "failCgroupV1": False,
            "failSwapOn": False,
            "makeIPTablesUtilChains": False,
            "podLogsDir": str(self.directory / "pod-logs"),
            "volumePluginDir": str(self.directory / "kubelet" / "volume-plugins"),
            "resolvConf": str(resolv),
            "clusterDomain": "cluster.local",
            "serializeImagePulls": False,
            "imageGCHighThresholdPercent": 100,  # never collect images behind a test's back
            "imageGCLowThresholdPercent": 99,
            "evictionHard": {
                "memory.available": "100Mi",
                "nodefs.available": tiny,
                "nodefs.inodesFree": tiny,
                "imagefs.available": tiny,
                "imagefs.inodesFree": tiny,
            },
            "staticPodPath": "",
            "registerNode": True,
        }
        path = self.directory / "kubelet-config.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    def _node_ready(self) -> bool:
        """The kubelet answers its health check, and its node is Ready without a NoSchedule taint (the node
        controller removes ``not-ready`` a moment after Ready)."""
        if probes.http_status(f"http://127.0.0.1:{self.ports['kubelet-healthz']}/healthz") != 200:
            return False
        node = self._get_json(f"/api/v1/nodes/{NODE_NAME}")
        if node is None:
            return False
        conditions = {c["type"]: c["status"] for c in node.get("status", {}).get("conditions", [])}
        taints = [t for t in node.get("spec", {}).get("taints", []) if t.get("effect") == "NoSchedule"]
        return conditions.get("Ready") == "True" and not taints

    def _start_control_plane(self) -> None:
        began = time.monotonic()
        cleaning.add_address_link(NODE_LINK, NODE_IP, routes=(apitier.SERVICE_CIDR,))
        prefix = int(containerd.POD_SUBNET.split("/")[1])
        cleaning.add_address_link(containerd.CNI_BRIDGE, POD_GATEWAY, prefix)  # the bridge plugin reuses it
        # Forward what pods send to a Service back to the pod behind it — only what arrives on the bridge
        # (this interface's own switch; net.ipv4.ip_forward, for every interface, stays as it is).
        pathlib.Path(f"/proc/sys/net/ipv4/conf/{containerd.CNI_BRIDGE}/forwarding").write_text("1\n")
        cleaning.prepare_cgroup_root()
        layout = images.layout_dir()
        self.timings["host+images"] = time.monotonic() - began
        started = {}
        for name in ("etcd", "registry-public", "registry-private", "containerd"):
            self.components[name].start()
            started[name] = time.monotonic()

        def ready(name: str) -> None:
            self.components[name].wait_ready()
            self.timings[name] = time.monotonic() - started[name]

        ready("etcd")
        self.components["kube-apiserver"].start()
        started["kube-apiserver"] = time.monotonic()
        ready("registry-public")
        ready("registry-private")
        pushed = time.monotonic()
        images.push_all(layout, private_registry=images.PRIVATE_REGISTRY,
                        username=registries.USERNAME, password=registries.PASSWORD)  # fmt: skip
        ready("containerd")
        images.import_into_containerd(layout, "pause", images.PAUSE, ctr=self.programs["ctr"],
                                      address=str(self.containerd_address))  # fmt: skip
        self.timings["push+import images"] = time.monotonic() - pushed
        ready("kube-apiserver")
        for name in ("kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy"):
            self.components[name].start()
            started[name] = time.monotonic()
        for name in ("kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy"):
            ready(name)

    def _clean_previous(self) -> None:
        cleanup_host(self.directory)  # a crashed earlier node tier may have left mounts, links and cgroups

    def stop(self) -> None:
        """Stop the kubelet, kill every pod's processes, stop the rest, unmount, remove links and files."""
        for name in ("kube-proxy", "kubelet"):
            if name in self.components:
                self.components[name].stop()
        runtime = self.components.get("containerd")
        cleanup_host(self.directory, stop_containerd=runtime.stop if runtime else None)
        super().stop()


def cleanup_host(directory: pathlib.Path, stop_containerd: Callable[[], None] | None = None) -> None:
    """Undo what a node tier did to the host. Needs no running process; safe to repeat."""
    cleaning.kill_cgroup_tree()
    cleaning.kill_shims(containerd.socket(directory / "containerd"))
    if stop_containerd is not None:
        stop_containerd()
    else:
        components.stop_recorded(directory / "run" / "containerd.pid")
    cleaning.unmount_under(directory)
    cleaning.kill_cgroup_tree()
    cleaning.delete_nftables()
    cleaning.delete_link(containerd.CNI_BRIDGE)
    cleaning.delete_link(NODE_LINK)


def stop_recorded(directory: pathlib.Path) -> None:
    """Tear down a node tier some other process started."""
    components.stop_recorded(directory / "run" / "kube-proxy.pid")
    components.stop_recorded(directory / "run" / "kubelet.pid")
    cleanup_host(directory)
    apitier.stop_recorded(directory)
