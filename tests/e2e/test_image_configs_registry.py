"""Reading image configs from real registries: Debian's docker-registry, the node tier's two kinds (public,
and htpasswd-protected), started here on free loopback ports without the rest of the node tier.

Every request goes to loopback; Docker Hub names are read at a mirror (a loopback registry), so nothing ever
leaves the machine. The registries' access logs show which requests were made (the cache test).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import pathlib
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import pytest
from podline.core import auths, errors, registries
from podline.core import imageconfigs as core
from podline.shell import imagereading

from tests.cluster import components, fixtures, images, probes
from tests.cluster import registry as cluster_registry

pytestmark = pytest.mark.node  # needs the node tier's Debian packages (registry, skopeo, umoci, busybox)
T = TypeVar("T")
PROGRAMS = ("docker-registry", "htpasswd", "skopeo", "umoci")
CANARY_PASSWORD = "canary-Zq7-not-the-password"


@dataclasses.dataclass(frozen=True)
class Registries:
    public: cluster_registry.Registry
    private: cluster_registry.Registry
    info: cluster_registry.RegistryInfo
    layout: pathlib.Path

    @property
    def busybox(self) -> str:
        return f"{self.public.host}/podline/busybox:1"

    @property
    def private_busybox(self) -> str:
        return f"{self.private.host}/private/busybox:1"

    @property
    def multiarch(self) -> str:
        return f"{self.public.host}/podline/multiarch:1"


@pytest.fixture(scope="module")
def local_registries(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registries]:
    found = fixtures.require_programs(PROGRAMS, "registry tests")
    directory = tmp_path_factory.mktemp("registries")
    logs = directory / "logs"
    public = cluster_registry.describe("registry-public", f"localhost:{probes.free_port()}", logs,
                                       authenticated=False)  # fmt: skip
    private = cluster_registry.describe("registry-private", f"localhost:{probes.free_port()}", logs,
                                        authenticated=True)  # fmt: skip
    started = []
    try:
        for name, registry, htpasswd in (("registry-public", public, None),
                                         ("registry-private", private, str(found["htpasswd"]))):  # fmt: skip
            program = str(found["docker-registry"])
            component = cluster_registry.define(name, registry, directory / name, directory / "run",
                                                program=program, htpasswd=htpasswd)  # fmt: skip
            component.start()
            started.append(component)
        for component in started:
            component.wait_ready()
        layout = images.layout_dir()
        multiarch = images.multiarch_layout(layout, directory)
        info = cluster_registry.RegistryInfo(public=public, private=private)
        images.push(layout, "busybox", f"{public.host}/podline/busybox:1")
        images.push(layout, "busybox-private", f"{private.host}/private/busybox:1",
                    credentials=f"{info.username}:{info.password}")  # fmt: skip
        images.push(multiarch, images.MULTIARCH_TAG, f"{public.host}/podline/multiarch:1")
        yield Registries(public, private, info, layout)
    finally:
        for component in started:
            component.stop()


def run(scenario: Callable[[imagereading.ImageConfigs], Awaitable[T]], **options: object) -> T:
    """Run ``scenario`` with a fresh reader on a fresh event loop, closing the reader afterwards."""

    async def main() -> T:
        reader = imagereading.ImageConfigs(**options)  # type: ignore[arg-type]
        try:
            return await scenario(reader)
        finally:
            await reader.close()

    return asyncio.run(main())


def pull_secret(config_json: str, name: str = "pull") -> auths.Credentials:
    data = {".dockerconfigjson": config_json.encode()}
    return auths.convert([auths.SourceSecret(name, auths.TYPE_DOCKERCONFIGJSON, data)])


def layout_digest(layout: pathlib.Path, tag: str) -> str:
    index = json.loads((layout / "index.json").read_text())
    return next(
        m["digest"]
        for m in index["manifests"]
        if m["annotations"]["org.opencontainers.image.ref.name"] == tag
    )


def unavailable(
    scenario: Callable[[imagereading.ImageConfigs], Awaitable[object]], **options: object
) -> errors.ImageConfigUnavailable:
    with pytest.raises(errors.ImageConfigUnavailable) as caught:
        run(scenario, **options)
    return caught.value


# ---- reading configs ---------------------------------------------------------------------------------------


def test_busybox_from_the_public_registry_runs_sh(local_registries: Registries) -> None:
    config = run(lambda r: r.resolve(local_registries.busybox, None))
    assert config.entrypoint == ()
    assert config.cmd == ("sh",)
    assert config.digest == layout_digest(local_registries.layout, "busybox")


def test_the_private_registry_is_read_with_the_runs_pull_secret(local_registries: Registries) -> None:
    credentials = pull_secret(local_registries.info.docker_config_json())
    since = local_registries.private.offset()
    config = run(lambda r: r.resolve(local_registries.private_busybox, credentials))
    assert config.cmd == ("sh",)
    assert config.digest == layout_digest(local_registries.layout, "busybox-private")
    assert components.poll(
        lambda: any(r.status == 200 for r in local_registries.private.requests(since)), timeout=10
    )


def test_the_private_registry_refuses_a_reader_without_credentials(local_registries: Registries) -> None:
    error = unavailable(lambda r: r.resolve(local_registries.private_busybox, None))
    assert error.reason is errors.RegistryReason.UNAUTHORIZED
    assert not error.transient
    assert local_registries.private_busybox in str(error)
    assert "no image_pull_secrets entry has credentials" in str(error)


def test_a_wrong_password_is_refused_naming_the_secret_and_key_never_the_password(
    local_registries: Registries, caplog: pytest.LogCaptureFixture
) -> None:
    host = local_registries.private.host
    wrong = json.dumps({"auths": {host: {"username": "podline", "password": CANARY_PASSWORD}}})
    credentials = pull_secret(wrong, name="team-pull")
    caplog.set_level(logging.DEBUG)
    error = unavailable(lambda r: r.resolve(local_registries.private_busybox, credentials))
    assert error.reason is errors.RegistryReason.UNAUTHORIZED
    assert f'registry key "{host}" (secret "team-pull")' in str(error)
    shown = str(error) + repr(error) + repr(error.args) + caplog.text
    basic = credentials.config["auths"][host]["auth"]
    assert CANARY_PASSWORD not in shown and basic not in shown


def test_a_multi_arch_index_gives_the_platforms_image(local_registries: Registries) -> None:
    amd64 = run(lambda r: r.resolve(local_registries.multiarch, None))
    arm64 = run(lambda r: r.resolve(local_registries.multiarch, None, platform="linux/aarch64"))
    default_arm = run(lambda r: r.resolve(local_registries.multiarch, None), platform="linux/arm64")
    assert amd64.cmd == ("sh",)
    assert amd64.digest == layout_digest(local_registries.layout, "busybox")
    assert arm64.cmd == ("echo", "arm64") == default_arm.cmd
    assert arm64.digest != amd64.digest


def test_an_index_without_the_platform_says_which_platforms_it_has(local_registries: Registries) -> None:
    error = unavailable(lambda r: r.resolve(local_registries.multiarch, None, platform="linux/s390x"))
    assert error.reason is errors.RegistryReason.NO_PLATFORM
    assert "linux/s390x; the image is for linux/amd64, linux/arm64/v8" in str(error)


@pytest.mark.parametrize("name", ["podline/busybox:no-such-tag", "podline/no-such-image:1"])
def test_a_missing_tag_or_repository_is_not_found(local_registries: Registries, name: str) -> None:
    reference = f"{local_registries.public.host}/{name}"
    error = unavailable(lambda r: r.resolve(reference, None))
    assert error.reason is errors.RegistryReason.NOT_FOUND
    assert not error.transient
    assert reference in str(error)


def test_a_registry_that_is_not_there_is_unreachable_and_transient() -> None:
    reference = f"localhost:{probes.free_port()}/podline/busybox:1"
    error = unavailable(lambda r: r.resolve(reference, None))
    assert error.reason is errors.RegistryReason.UNREACHABLE
    assert error.transient


def test_a_second_resolve_of_the_same_digest_reads_no_manifest_body_and_no_blob(
    local_registries: Registries,
) -> None:
    public = local_registries.public

    async def twice(reader: imagereading.ImageConfigs) -> tuple[int, int, core.ImageConfig, core.ImageConfig]:
        start = public.offset()
        first = await reader.resolve(local_registries.multiarch, None)
        assert components.poll(lambda: any("/blobs/" in r.path for r in public.requests(start)), timeout=10)
        middle = public.offset()
        second = await reader.resolve(local_registries.multiarch, None)
        return start, middle, first, second

    start, middle, first, second = run(twice)
    assert first == second
    assert components.poll(lambda: public.requests(middle), timeout=10)
    again = public.requests(middle)
    assert [(r.method, r.path) for r in again] == [("HEAD", "/v2/podline/multiarch/manifests/1")]
    assert any(r.method == "GET" and "/blobs/" in r.path for r in public.requests(start)[: -len(again)])


def test_docker_hub_names_are_read_at_the_mirror(local_registries: Registries) -> None:
    mirrors = registries.parse_mirrors(f"docker.io=http://{local_registries.public.address}")
    since = local_registries.public.offset()
    config = run(lambda r: r.resolve("podline/busybox:1", None), mirrors=mirrors)
    assert config.cmd == ("sh",)
    assert components.poll(
        lambda: local_registries.public.manifest_requests("podline/busybox", since), timeout=10
    )


def test_a_mirror_gets_the_credentials_of_its_own_host_never_those_of_the_registry_it_stands_for(
    local_registries: Registries,
) -> None:
    private = local_registries.private
    mirrors = registries.parse_mirrors(f"quay.io=http://{private.host}")
    info = local_registries.info
    entry = {"username": info.username, "password": info.password}
    for_mirror = pull_secret(json.dumps({"auths": {private.host: entry}}))
    for_quay = pull_secret(json.dumps({"auths": {"quay.io": entry}}))
    config = run(lambda r: r.resolve("quay.io/private/busybox:1", for_mirror), mirrors=mirrors)
    assert config.digest == layout_digest(local_registries.layout, "busybox-private")
    error = unavailable(lambda r: r.resolve("quay.io/private/busybox:1", for_quay), mirrors=mirrors)
    assert error.reason is errors.RegistryReason.UNAUTHORIZED
    assert f"the mirror {private.host} refused an anonymous request" in str(error)
    assert "never go to a mirror" in str(error)
