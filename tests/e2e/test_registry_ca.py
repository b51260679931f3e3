"""A real registry behind a private CA: Debian's docker-registry serving HTTPS on a free loopback port with a
certificate of a throw-away CA (``tests.cluster.pki``), started here without the rest of the node tier; read
by the reader alone, and by the operator process on a private api-tier cluster (a plugin step's command).

Loopback registries are spoken to over plain HTTP, so the reader reaches this one as the https:// mirror of an
in-house registry name (``PODLINE_REGISTRY_MIRRORS``), the way a registry elsewhere would be reached; the
reader is built from the settings as the operator builds it (``ImageConfigs.from_settings``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import pathlib
from collections.abc import Iterator

import pytest
from podline.core import errors
from podline.core import imageconfigs as core
from podline.shell import imagereading
from podline.shell import settings as settings_

from tests.cluster import apitier, fixtures, images, pki, probes, scripted_kubelet
from tests.cluster import registry as cluster_registry
from tests.e2e import conftest as e2e_conftest
from tests.e2e import operating

pytestmark = pytest.mark.node  # needs the node tier's Debian packages (registry, skopeo, umoci, busybox)
PROGRAMS = ("docker-registry", "skopeo", "openssl")
IN_HOUSE = "registry.corp.example"  # the name Pipelines use; never resolved, always read at the mirror
IMAGE = f"{IN_HOUSE}/podline/busybox:1"


@dataclasses.dataclass(frozen=True)
class TlsRegistry:
    registry: cluster_registry.Registry
    ca: pki.KeyPair
    other_ca: pki.KeyPair
    layout: pathlib.Path

    def env(self, ca_file: pathlib.Path | None) -> dict[str, str]:
        env = {"PODLINE_REGISTRY_MIRRORS": f"{IN_HOUSE}=https://{self.registry.host}"}
        if ca_file is not None:
            env["PODLINE_REGISTRY_CA_FILE"] = str(ca_file)
        return env


@pytest.fixture(scope="module")
def tls_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsRegistry]:
    found = fixtures.require_programs(PROGRAMS, "registry tests")
    directory = tmp_path_factory.mktemp("tls-registry")
    ca = pki.make_ca(directory / "ca", "private-ca")
    server = pki.issue(ca, directory / "ca", "registry", common_name="registry",
                       hosts=("localhost", "127.0.0.1"), client=False, server=True)  # fmt: skip
    other_ca = pki.make_ca(directory / "other", "other-ca")
    registry = cluster_registry.describe("registry-tls", f"localhost:{probes.free_port()}", directory / "logs",
                                         authenticated=False)  # fmt: skip
    component = cluster_registry.define("registry-tls", registry, directory / "registry-tls", directory / "run",
                                        program=str(found["docker-registry"]), htpasswd=None,
                                        tls=(ca, server))  # fmt: skip
    component.start()
    try:
        component.wait_ready()
        layout = images.layout_dir()
        images.push(layout, "busybox", f"{registry.host}/podline/busybox:1")  # skopeo: TLS, unverified
        yield TlsRegistry(registry, ca, other_ca, layout)
    finally:
        component.stop()


def resolve(env: dict[str, str]) -> core.ImageConfig:
    """Read ``IMAGE`` with the operator's reader for the settings ``env``."""

    async def main() -> core.ImageConfig:
        reader = imagereading.ImageConfigs.from_settings(settings_.Settings.from_env(env))
        try:
            return await reader.resolve(IMAGE, None)
        finally:
            await reader.close()

    return asyncio.run(main())


def refused(env: dict[str, str]) -> errors.ImageConfigUnavailable:
    with pytest.raises(errors.ImageConfigUnavailable) as caught:
        resolve(env)
    return caught.value


def busybox_digest(layout: pathlib.Path) -> str:
    index = json.loads((layout / "index.json").read_text())
    return next(
        m["digest"]
        for m in index["manifests"]
        if m["annotations"]["org.opencontainers.image.ref.name"] == "busybox"
    )


def test_without_the_ca_the_read_fails_saying_the_certificate_is_not_trusted(
    tls_registry: TlsRegistry,
) -> None:
    since = tls_registry.registry.offset()
    error = refused(tls_registry.env(None))
    assert error.reason is errors.RegistryReason.UNTRUSTED and not error.transient
    message = str(error)
    assert f'cannot read the config of image "{IMAGE}": untrusted TLS certificate' in message
    assert (
        f"{tls_registry.registry.host}: its certificate is not signed by a CA the operator trusts" in message
    )
    assert "give the operator that CA's certificate in PODLINE_REGISTRY_CA_FILE" in message
    assert tls_registry.registry.requests(since) == [], "no request got past the TLS handshake"


def test_with_the_ca_file_the_entrypoint_and_cmd_are_read(tls_registry: TlsRegistry) -> None:
    since = tls_registry.registry.offset()
    config = resolve(tls_registry.env(tls_registry.ca.cert))
    assert (config.entrypoint, config.cmd) == ((), ("sh",))
    assert config.digest == busybox_digest(tls_registry.layout)
    assert tls_registry.registry.manifest_requests("podline/busybox", since), "read at the TLS registry"


def test_a_bundle_with_other_cas_besides_it_works_and_one_without_it_says_to_add_it(
    tls_registry: TlsRegistry, tmp_path: pathlib.Path
) -> None:
    bundle = tmp_path / "bundle.pem"
    bundle.write_text(tls_registry.other_ca.cert.read_text() + tls_registry.ca.cert.read_text())
    assert resolve(tls_registry.env(bundle)).cmd == ("sh",)
    error = refused(tls_registry.env(tls_registry.other_ca.cert))
    assert error.reason is errors.RegistryReason.UNTRUSTED
    assert (
        f'add the CA that signed it to the bundle in PODLINE_REGISTRY_CA_FILE ("{tls_registry.other_ca.cert}")'
        in str(error)
    )


# ---- the operator: a plugin step whose image is in the TLS registry -------------------------------------


@pytest.fixture(scope="module")
def cluster(
    api_cluster: apitier.ApiCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[apitier.ApiCluster]:
    yield from e2e_conftest.private_cluster(api_cluster, tmp_path_factory, "registry-ca")


def run_plugin(cluster: apitier.ApiCluster, env: dict[str, str]) -> tuple[dict[str, object], str, str]:
    """Run a Pipeline with one plugin step of ``IMAGE`` under an operator with ``env`` (its own namespace);
    its final status, the namespace and the operator's log."""
    namespace = cluster.new_namespace("registry-ca")
    kubelet = scripted_kubelet.ScriptedKubelet(cluster.api_client(), namespace=namespace)
    op = operating.OperatorProcess(cluster.kubeconfig, cluster.log_dir, name=f"operator-{namespace}",
                                   env={"PODLINE_NAMESPACES": namespace, **env})  # fmt: skip
    kubelet.start()
    op.start()
    try:
        spec = {"steps": [{"name": "publish", "image": IMAGE, "settings": {"repo": "team/app"}}]}
        operating.apply(cluster, namespace, operating.pipeline("plugin", spec))
        st = operating.wait_for_phase(cluster, namespace, "plugin", operator=op)
        return st, namespace, op.log()
    finally:
        op.stop()
        kubelet.stop()


def test_the_operator_without_the_ca_fails_the_step_naming_the_setting(
    tls_registry: TlsRegistry, cluster: apitier.ApiCluster
) -> None:
    st, namespace, log = run_plugin(cluster, tls_registry.env(None))
    assert (st["phase"], st["reason"]) == ("Failed", "ImageConfigUnavailable"), st
    message = str(st["message"])
    assert 'step "publish": its command comes from its image, and cannot read the config of image' in message
    assert "untrusted TLS certificate" in message and "PODLINE_REGISTRY_CA_FILE" in message
    assert "set commands: or entrypoint: on the step" in message
    pods = cluster.kubectl("get", "pods", "-n", namespace, "-o", "name").stdout
    assert "plugin-g1" not in pods, "no pod for a run whose command is unknown"
    assert "Traceback" not in log


def test_the_operator_with_the_ca_file_runs_the_images_cmd(
    tls_registry: TlsRegistry, cluster: apitier.ApiCluster
) -> None:
    st, namespace, _ = run_plugin(cluster, tls_registry.env(tls_registry.ca.cert))
    assert st["phase"] == "Succeeded", st
    pod = operating.get(cluster, namespace, "pod", "plugin-g1")
    [publish] = [c for c in pod["spec"]["containers"] if c["name"] == "step-publish"]
    assert publish["image"] == IMAGE
    assert publish["args"][-2:] == ["--", "sh"], "busybox's CMD, read from the TLS registry"
