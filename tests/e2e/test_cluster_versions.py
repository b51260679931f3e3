"""The test cluster's versions are pinned once (tests/cluster/versions.env) and the wrapper Go modules agree.

No cluster is needed: these read files only.
"""

from __future__ import annotations

import os
import pathlib
import re
import subprocess

import pytest

from tests.cluster import binaries

GOMOD = binaries.HERE / "gomod"


def required(go_mod: str, module: str) -> str | None:
    found = re.search(rf"^require {re.escape(module)} (\S+)$", go_mod, re.MULTILINE)
    return found[1] if found else None


def test_kubernetes_wrapper_pins_the_release_and_every_staging_module_to_the_same_version() -> None:
    text = (GOMOD / "kubernetes" / "go.mod").read_text()
    assert required(text, "k8s.io/kubernetes") == binaries.KUBERNETES_VERSION
    staging = dict(re.findall(r"^\s*(k8s\.io/[\w.-]+) => k8s\.io/[\w.-]+ (\S+)$", text, re.MULTILINE))
    assert staging, "no staging modules pinned"
    staging_version = binaries.VERSIONS["KUBERNETES_STAGING_VERSION"]
    assert staging_version == "v0." + binaries.KUBERNETES_VERSION.removeprefix("v1.")
    assert set(staging.values()) == {staging_version}
    assert all(re.search(rf"^\s*{re.escape(m)} => {re.escape(m)} ", text, re.MULTILINE) for m in staging)


def test_kubernetes_wrapper_pins_exactly_the_releases_staging_modules() -> None:
    cache = os.environ.get("GOMODCACHE") or _go_env("GOMODCACHE")
    release = (
        pathlib.Path(cache or "/nonexistent") / f"k8s.io/kubernetes@{binaries.KUBERNETES_VERSION}" / "go.mod"
    )
    if not release.is_file():
        pytest.skip(f"{release} is not in the Go module cache (tests/cluster/setup.sh downloads it)")
    local = set(re.findall(r"^\s*(k8s\.io/[\w.-]+) => \./staging/", release.read_text(), re.MULTILINE))
    pinned = set(
        re.findall(r"^\s*(k8s\.io/[\w.-]+) => ", (GOMOD / "kubernetes" / "go.mod").read_text(), re.MULTILINE)
    )
    assert pinned == local


def test_etcd_wrapper_pins_the_etcd_version() -> None:
    text = (GOMOD / "etcd" / "go.mod").read_text()
    assert required(text, "go.etcd.io/etcd/server/v3") == binaries.ETCD_VERSION


def test_chosen_versions_fit_this_kind_of_machine() -> None:
    minor = int(binaries.KUBERNETES_VERSION.split(".")[1])
    assert minor <= 34, "kubelets after 1.34 refuse cgroup v1 unless failCgroupV1 is false (nodetier sets it)"
    etcd = tuple(int(part) for part in binaries.ETCD_VERSION.removeprefix("v").split("."))
    assert etcd >= (3, 5, 13), "recent apiservers need etcd >= 3.5.13"


def _go_env(name: str) -> str:
    try:
        return subprocess.run(["go", "env", name], capture_output=True, text=True, check=False).stdout.strip()
    except FileNotFoundError:
        return ""
