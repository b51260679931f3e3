"""Where the test cluster's programs are, and which versions they must be.

Kubernetes, etcd and helm are built from source by ``tests/cluster/build.sh`` into a cache outside the
repository (``$PODLINE_CACHE``, default ``~/.cache/podline``); versions are pinned in ``versions.env``.
A user with envtest binaries can point ``KUBEBUILDER_ASSETS`` at a directory holding ``etcd``,
``kube-apiserver`` and ``kubectl``; those are then used instead of the cache. Everything else (containerd,
runc, the CNI plugins, the registry, skopeo, umoci, busybox) comes from Debian packages.

This module only finds things; it never builds or installs. Missing pieces raise `MissingBinaries`, whose
message says which setup command provides them.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import shutil

HERE = pathlib.Path(__file__).resolve().parent
VERSIONS_FILE = HERE / "versions.env"

API_PROGRAMS = ("etcd", "kube-apiserver", "kube-controller-manager", "kubectl", "helm")
NODE_PROGRAMS = ("kube-scheduler", "kubelet", "kube-proxy")
# Programs from Debian packages, by the package that provides them.
NODE_PACKAGES = {
    "containerd": "containerd",
    "ctr": "containerd",
    "containerd-shim-runc-v2": "containerd",
    "runc": "runc",
    "docker-registry": "docker-registry",
    "skopeo": "skopeo",
    "umoci": "umoci",
    "htpasswd": "apache2-utils",
    "iptables": "iptables",
    "ip": "iproute2",
    "nft": "nftables",
    "openssl": "openssl",
    "gcc": "gcc",
}
CNI_DIR = pathlib.Path("/usr/lib/cni")
CNI_PLUGINS = ("bridge", "host-local", "loopback")  # from containernetworking-plugins
BUSYBOX = pathlib.Path("/bin/busybox")  # from busybox-static; checked to be static in images.py


class MissingBinaries(RuntimeError):
    """Some program the requested tier needs is not installed or not built yet."""

    def __init__(self, tier: str, missing: list[str]) -> None:
        self.tier = tier
        self.missing = missing
        super().__init__(
            f"the {tier} tier of the test cluster needs {', '.join(missing)}; "
            f"run `tests/cluster/setup.sh {tier}` once (the first build takes about 10-15 minutes on 2 cores)"
        )


def read_versions(path: pathlib.Path = VERSIONS_FILE) -> dict[str, str]:
    """Parse versions.env (``KEY=value`` lines, ``#`` comments)."""
    versions: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition("=")
        versions[key.strip()] = value.strip().strip("\"'")
    return versions


VERSIONS = read_versions()
KUBERNETES_VERSION = VERSIONS["KUBERNETES_VERSION"]
ETCD_VERSION = VERSIONS["ETCD_VERSION"]
HELM_VERSION = VERSIONS["HELM_VERSION"]


def cache_dir() -> pathlib.Path:
    """The cache of built binaries and images (``$PODLINE_CACHE`` or ``~/.cache/podline``)."""
    configured = os.environ.get("PODLINE_CACHE")
    return pathlib.Path(configured) if configured else pathlib.Path.home() / ".cache" / "podline"


def _built_dir(program: str) -> pathlib.Path:
    bins = cache_dir() / "bin"
    if program == "etcd":
        return bins / f"etcd-{ETCD_VERSION}"
    if program == "helm":
        return bins / f"helm-{HELM_VERSION}"
    return bins / f"kubernetes-{KUBERNETES_VERSION}"


def _assets_dir() -> pathlib.Path | None:
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    return pathlib.Path(assets) if assets else None


def provided_by_assets(program: str) -> bool:
    """True if KUBEBUILDER_ASSETS supplies the program (so its version is the user's choice)."""
    assets = _assets_dir()
    return assets is not None and os.access(assets / program, os.X_OK)


def locate(program: str) -> pathlib.Path | None:
    """The path of one program, or None: KUBEBUILDER_ASSETS first, then the build cache, then PATH."""
    assets = _assets_dir()
    candidates = [assets / program] if assets else []
    if program in API_PROGRAMS or program in NODE_PROGRAMS:
        candidates.append(_built_dir(program) / program)
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    if program in NODE_PACKAGES or program == "openssl":
        found = shutil.which(program, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
        return pathlib.Path(found) if found else None
    return None


@dataclasses.dataclass(frozen=True)
class Binaries:
    """Paths of every program one tier runs."""

    programs: dict[str, pathlib.Path]

    def __getitem__(self, program: str) -> str:
        return str(self.programs[program])


def require(tier: str) -> Binaries:
    """Find everything the tier (``api`` or ``node``) needs, or raise `MissingBinaries` listing all gaps."""
    wanted = list(API_PROGRAMS) + ["openssl"]
    if tier == "node":
        wanted += list(NODE_PROGRAMS) + list(NODE_PACKAGES)
    found: dict[str, pathlib.Path] = {}
    missing: list[str] = []
    for program in dict.fromkeys(wanted):
        path = locate(program)
        if path is None:
            missing.append(program)
        else:
            found[program] = path
    if tier == "node":
        missing += [f"CNI plugin {p}" for p in CNI_PLUGINS if not (CNI_DIR / p).is_file()]
        if not BUSYBOX.is_file():
            missing.append(str(BUSYBOX))
    if missing:
        raise MissingBinaries(tier, missing)
    return Binaries(found)
