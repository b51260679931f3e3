"""Host state the node tier creates outside its processes, and how to undo it.

The kubelet puts every pod under one cgroup root of our own (``/podline`` in each cgroup v1 hierarchy),
containerd mounts root filesystems and network namespaces under the cluster directory, the node tier
adds two network links (the CNI bridge and the link holding the node IP), and kube-proxy its nftables
tables (``kube-proxy`` in the ``ip`` and ``ip6`` families). Teardown kills what runs in the cgroup root,
unmounts everything below the cluster directory and removes the links and tables. Every function here is
idempotent and needs no memory of the start, so ``python -m tests.cluster down`` and a later test session
can clean up after a crashed one.
"""

from __future__ import annotations

import ctypes
import os
import pathlib
import signal
import subprocess
import time

CGROUP_ROOT = "podline"
CGROUP_FS = pathlib.Path("/sys/fs/cgroup")
_MNT_DETACH = 2


def cgroup_hierarchies() -> list[pathlib.Path]:
    """Mount points of the cgroup v1 hierarchies (this node tier runs the kubelet on cgroup v1)."""
    found = []
    for line in pathlib.Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        fstype = fields[fields.index("-") + 1]
        if fstype == "cgroup":
            found.append(pathlib.Path(fields[4]))
    return found


def prepare_cgroup_root(name: str = CGROUP_ROOT) -> None:
    """Create the kubelet's ``cgroupRoot`` in every hierarchy (the kubelet refuses to start without it)."""
    for hierarchy in cgroup_hierarchies():
        path = hierarchy / name
        path.mkdir(exist_ok=True)
        for inherited in ("cpuset.cpus", "cpuset.mems"):  # an empty cpuset cannot hold processes
            mine, parents = path / inherited, hierarchy / inherited
            if mine.exists() and not mine.read_text().strip():
                mine.write_text(parents.read_text())


def _cgroups_below(name: str) -> list[pathlib.Path]:
    """Every cgroup in the subtree, deepest first."""
    found = []
    for hierarchy in cgroup_hierarchies():
        top = hierarchy / name
        if top.is_dir():
            found += [pathlib.Path(d) for d, _, _ in os.walk(top)]
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def kill_cgroup_tree(name: str = CGROUP_ROOT, timeout: float = 10.0) -> None:
    """SIGKILL every process below the cgroup root, then remove the cgroups."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = set()
        for group in _cgroups_below(name):
            try:
                pids |= {int(p) for p in (group / "cgroup.procs").read_text().split()}
            except OSError:
                continue
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)
    for group in _cgroups_below(name):
        try:
            group.rmdir()
        except OSError:
            pass


def kill_shims(containerd_address: pathlib.Path) -> None:
    """SIGKILL the containerd shims serving one containerd (``... -address <socket> ...`` in their argv)."""
    needle = b"\0-address\0" + str(containerd_address).encode() + b"\0"
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "cmdline").read_bytes():
                os.kill(int(entry.name), signal.SIGKILL)
        except (OSError, ProcessLookupError):
            continue


PROGRAMS = frozenset({
    "etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy",
    "containerd", "containerd-shim-runc-v2", "docker-registry",
})  # fmt: skip


def kill_leftovers(directory: pathlib.Path) -> int:
    """SIGKILL cluster programs whose arguments mention the directory, even if no pid file names them.
    Returns how many there were."""
    killed = 0
    needle = str(directory).rstrip("/").encode() + b"/"
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if os.path.basename(argv[0].decode()) in PROGRAMS and any(needle in arg for arg in argv[1:]):
                os.kill(int(entry.name), signal.SIGKILL)
                killed += 1
        except (OSError, ProcessLookupError, UnicodeDecodeError):
            continue
    return killed


def mounts_under(directory: pathlib.Path) -> list[str]:
    prefix = str(directory).rstrip("/") + "/"
    points = []
    for line in pathlib.Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point.startswith(prefix) or point == prefix.rstrip("/"):
            points.append(point)
    return sorted(points, key=len, reverse=True)


def unmount_under(directory: pathlib.Path) -> None:
    """Lazily unmount everything mounted below the directory, deepest first."""
    libc = ctypes.CDLL(None, use_errno=True)
    for _ in range(5):  # a mount can hide another one at the same point
        points = mounts_under(directory)
        if not points:
            return
        for point in points:
            libc.umount2(point.encode(), _MNT_DETACH)


def delete_link(name: str) -> None:
    if pathlib.Path(f"/sys/class/net/{name}").exists():
        subprocess.run(["ip", "link", "delete", name], check=False, capture_output=True)


def add_address_link(name: str, address: str, prefix: int = 32, routes: tuple[str, ...] = ()) -> None:
    """A link of our own holding ``address`` (the node IP, the kubelet refusing loopback addresses; the
    pods' gateway on the CNI bridge), with routes to ``routes`` through it (gone with the link)."""
    delete_link(name)
    for argv in (
        ["ip", "link", "add", name, "type", "bridge"],
        ["ip", "address", "add", f"{address}/{prefix}", "dev", name],
        ["ip", "link", "set", name, "up"],
        *(["ip", "route", "add", route, "dev", name] for route in routes),
    ):
        result = subprocess.run(argv, check=False, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed: {result.stderr.strip()}")


KUBE_PROXY_TABLES = (("ip", "kube-proxy"), ("ip6", "kube-proxy"))


def delete_nftables(tables: tuple[tuple[str, str], ...] = KUBE_PROXY_TABLES) -> None:
    """Delete nftables tables (family, name) if they exist: kube-proxy's rules for the cluster's Services."""
    for family, name in tables:
        try:
            subprocess.run(["nft", "delete", "table", family, name], check=False, capture_output=True)
        except FileNotFoundError:  # no nft: nothing can have made the tables
            return
