"""The node tier's container runtime: a private containerd (Debian's 1.6, CRI v1) with runc and CNI.

It has its own socket, root and state directory inside the cluster directory, so it never touches a
system containerd. Network namespaces are mounted under its state directory (so teardown finds them),
cgroups are managed by cgroupfs (cgroup v1 here), and the node tier's registries are reached over plain
HTTP through containerd's registry host configuration (``config_path``: one ``hosts.toml`` per registry
host, each naming its local registry as the *server*, so containerd never falls back to the host itself).
Besides the registries' own names, ``docker.io`` is served by the public registry — references such as
``busybox:1.36``, ``library/golang:1.7`` or ``index.docker.io/library/golang`` are normalised to
``docker.io/…`` by the kubelet and containerd, so every Docker Hub form resolves here — and the example
private registry host of docs/examples by the private one (`images.ALIASES`). The sandbox (pause) image is
imported locally by `nodetier`.
"""

from __future__ import annotations

import json
import pathlib
import subprocess

from tests.cluster import binaries, components, images

CNI_BRIDGE = "podline0"
POD_SUBNET = "10.234.0.0/16"


def socket(directory: pathlib.Path) -> pathlib.Path:
    return directory / "containerd.sock"


def hosts_dir(directory: pathlib.Path) -> pathlib.Path:
    """containerd's ``config_path``: ``<host>/hosts.toml`` for every registry host it knows."""
    return directory / "certs.d"


def with_aliases(mirrors: dict[str, str]) -> dict[str, str]:
    """``mirrors`` plus every `images.ALIASES` host whose local registry is in it."""
    extra = {alias: mirrors[target] for alias, target in images.ALIASES.items() if target in mirrors}
    return {**mirrors, **extra}


def write_hosts(directory: pathlib.Path, mirrors: dict[str, str]) -> None:
    """One ``hosts.toml`` per host whose one and only server is the endpoint (plain HTTP, loopback).

    containerd 1.6 rejects a file without a ``host`` table ("invalid `host` tree") and then, as for a
    host without a file or a file without ``server``, goes to the registry's own name — for docker.io,
    Docker Hub. An empty ``[host]`` table keeps the server the only host, so each pull asks the local
    registry exactly once and its errors (not found, unauthorized) reach the kubelet unchanged. Checked
    with containerd v1.6.20's own ``remotes/docker/config.ConfigureHosts``."""
    for host, endpoint in mirrors.items():
        path = hosts_dir(directory) / host / "hosts.toml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            f"# {host} is served by the node tier's registry at {endpoint}\n"
            f'server = "{endpoint}"\n\n[host]\n'
        )


def write_cni_config(
    conf_dir: pathlib.Path,
    ipam_dir: pathlib.Path,
    *,
    gateway: str | None = None,
    routes: tuple[str, ...] = (),
) -> None:
    """A bridge network without a default gateway or masquerading: pods get IPs, but no route out of the
    node. With ``gateway`` (an address the host holds on the bridge), pods get a route via it to each of
    ``routes`` (CIDRs on this node: the service CIDR, the node IP) and nothing else."""
    conf_dir.mkdir(parents=True, exist_ok=True)
    ipam: dict[str, object] = {
        "type": "host-local",
        "ranges": [[{"subnet": POD_SUBNET}]],
        "dataDir": str(ipam_dir),
    }
    if gateway:
        ipam["ranges"] = [[{"subnet": POD_SUBNET, "gateway": gateway}]]
        ipam["routes"] = [{"dst": route, "gw": gateway} for route in routes]
    config = {
        "cniVersion": "1.0.0",
        "name": "podline",
        "plugins": [
            {
                "type": "bridge",
                "bridge": CNI_BRIDGE,
                "isGateway": False,
                "ipMasq": False,
                "ipam": ipam,
            }
        ],
    }
    (conf_dir / "10-podline.conflist").write_text(json.dumps(config, indent=2) + "\n")


def write_config(
    directory: pathlib.Path, *, sandbox_image: str, cni_conf_dir: pathlib.Path, mirrors: dict[str, str]
) -> pathlib.Path:
    """containerd's config.toml and its registry host files; ``mirrors`` maps a registry host in image
    references to an http:// URL (`images.ALIASES` hosts are added to it)."""
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    lines = [
        "version = 2",
        f'root = "{directory / "root"}"',
        f'state = "{directory / "state"}"',
        'disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",',
        '  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]',
        "[grpc]",
        f'  address = "{socket(directory)}"',
        "[ttrpc]",
        f'  address = "{socket(directory)}.ttrpc"',
        '[plugins."io.containerd.internal.v1.opt"]',
        f'  path = "{directory / "opt"}"',
        f"[{cri}]",
        f'  sandbox_image = "{sandbox_image}"',
        "  netns_mounts_under_state_dir = true",
        "  disable_apparmor = true",
        # Without CAP_SYS_RESOURCE (as in some VMs and containers) runc cannot lower oom_score_adj to the
        # sandbox's -998; this clamps every container's value to containerd's own instead.
        "  restrict_oom_score_adj = true",
        f"[{cri}.containerd]",
        '  snapshotter = "overlayfs"',
        '  default_runtime_name = "runc"',
        f"[{cri}.containerd.runtimes.runc]",
        '  runtime_type = "io.containerd.runc.v2"',
        f"[{cri}.containerd.runtimes.runc.options]",
        "  SystemdCgroup = false",
        f"[{cri}.cni]",
        f'  bin_dir = "{binaries.CNI_DIR}"',
        f'  conf_dir = "{cni_conf_dir}"',
        "  max_conf_num = 1",
    ]
    lines += [f"[{cri}.registry]", f'  config_path = "{hosts_dir(directory)}"']
    directory.mkdir(parents=True, exist_ok=True)
    write_hosts(directory, with_aliases(mirrors))
    path = directory / "config.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def define(
    directory: pathlib.Path,
    config: pathlib.Path,
    log_dir: pathlib.Path,
    run_dir: pathlib.Path,
    *,
    program: str,
    ctr: str,
) -> components.Component:
    address = str(socket(directory))

    def ready() -> bool:
        probe = subprocess.run(
            [ctr, "--address", address, "version"], check=False, capture_output=True, timeout=10
        )
        return probe.returncode == 0

    return components.Component(
        "containerd", [program, "--config", str(config)], log_dir, run_dir, ready=ready, ready_timeout=30
    )
