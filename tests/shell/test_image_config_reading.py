"""Reading image configs over HTTP, against a registry double on loopback: what the real registries of the e2e
tests cannot show — the Bearer token flow (Docker Hub's, ghcr's), remembered tokens, the kubelet's credential
order, redirects to another host, and answers that are wrong (digests, sizes, silence).

The double speaks the distribution API for one repository and records every request it gets.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
from aiohttp import test_utils, web
from podline.core import auths, errors, plans, registries, runs
from podline.core import imageconfigs as core
from podline.shell import imagereading, reconciling
from podline.shell import settings as settings_

T = TypeVar("T")
USER, PASSWORD = "robot", "canary-registry-pw-81x"
TOKEN = "token-canary-55q"
REPOSITORY = "team/app"


def digest(content: bytes) -> str:
    return "sha256:" + hashlib.sha256(content).hexdigest()


CONFIG = json.dumps(
    {"architecture": "amd64", "os": "linux", "config": {"Entrypoint": ["/bin/plugin"]}}
).encode()
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
MANIFEST = json.dumps({
    "schemaVersion": 2, "mediaType": core.OCI_MANIFEST,
    "config": {"mediaType": CONFIG_TYPE, "digest": digest(CONFIG), "size": len(CONFIG)},
    "layers": [],
}).encode()  # fmt: skip


@dataclass
class Seen:
    method: str
    path: str
    authorization: str


@dataclass
class Double:
    """A registry for ``REPOSITORY``: tag ``1`` → ``MANIFEST`` → ``CONFIG``, by default."""

    auth: str = "none"  # none | bearer (token service at /token) | basic
    anonymous_tokens: bool = False
    blobs: dict[str, bytes] = field(default_factory=lambda: {digest(CONFIG): CONFIG})
    manifests: dict[str, bytes] = field(default_factory=lambda: {"1": MANIFEST, digest(MANIFEST): MANIFEST})
    head_digest: bool = True
    blob_redirect: str | None = None  # base URL the blob requests are redirected to
    stall: bool = False
    slow_blobs: bool = False
    lower_case_headers: bool = False  # as some servers send them
    seen: list[Seen] = field(default_factory=list)
    base: str = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/token", self.token)
        app.router.add_route("*", "/v2/{repository:.+}/manifests/{reference}", self.manifest)
        app.router.add_route("*", "/v2/{repository:.+}/blobs/{digest}", self.blob)
        return app

    def _record(self, request: web.Request) -> None:
        self.seen.append(Seen(request.method, request.path_qs, request.headers.get("Authorization", "")))

    @property
    def _challenge_header(self) -> str:
        return "www-authenticate" if self.lower_case_headers else "WWW-Authenticate"

    def _allowed(self, request: web.Request) -> web.Response | None:
        given = request.headers.get("Authorization", "")
        basic = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        if self.auth == "bearer" and given != f"Bearer {TOKEN}":
            challenge = (
                f'Bearer realm="{self.base}/token",service="double",scope="repository:{REPOSITORY}:pull"'
            )
            return web.json_response({"errors": [{"code": "UNAUTHORIZED", "message": PASSWORD}]}, status=401,
                                     headers={self._challenge_header: challenge})  # fmt: skip
        if self.auth == "basic" and given != basic:
            return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="double"'})
        return None

    async def token(self, request: web.Request) -> web.Response:
        self._record(request)
        basic = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        given = request.headers.get("Authorization")
        if given == basic or (given is None and self.anonymous_tokens):
            return web.json_response({"token": TOKEN, "expires_in": 300})
        return web.json_response({"details": "bad credentials"}, status=401)

    async def manifest(self, request: web.Request) -> web.StreamResponse:
        self._record(request)
        if self.stall:
            await asyncio.sleep(30)
        refused = self._allowed(request)
        if refused is not None:
            return refused
        content = self.manifests.get(request.match_info["reference"])
        if request.match_info["repository"] != REPOSITORY or content is None:
            return web.json_response({"errors": [{"code": "MANIFEST_UNKNOWN"}]}, status=404)
        headers = {"Content-Type": core.OCI_MANIFEST}
        if self.head_digest:
            headers["Docker-Content-Digest"] = digest(content)
        if self.lower_case_headers:
            headers = {name.lower(): value for name, value in headers.items()}
        return web.Response(body=b"" if request.method == "HEAD" else content, headers=headers)

    async def blob(self, request: web.Request) -> web.StreamResponse:
        self._record(request)
        if self.slow_blobs:
            await asyncio.sleep(0.3)  # so that others resolve meanwhile
        if self.blob_redirect is None:
            refused = self._allowed(request)
            if refused is not None:
                return refused
        elif not request.path.startswith("/redirected"):
            raise web.HTTPTemporaryRedirect(
                f"{self.blob_redirect}/v2/{REPOSITORY}/blobs/{request.match_info['digest']}"
            )
        content = self.blobs.get(request.match_info["digest"])
        if content is None:
            return web.json_response({"errors": [{"code": "BLOB_UNKNOWN"}]}, status=404)
        return web.Response(body=content, content_type="application/octet-stream")


async def serving(double: Double) -> test_utils.TestServer:
    server = test_utils.TestServer(double.app(), host="127.0.0.1")
    await server.start_server()
    double.base = f"http://127.0.0.1:{server.port}"
    return server


def pull_secret(*entries: tuple[str, str]) -> auths.Credentials:
    """One Secret per (registry key, password), in ``image_pull_secrets`` order."""
    secrets = []
    for index, (key, password) in enumerate(entries):
        config = {"auths": {key: {"username": USER, "password": password}}}
        secrets.append(auths.SourceSecret(f"pull-{index}", auths.TYPE_DOCKERCONFIGJSON,
                                          {".dockerconfigjson": json.dumps(config).encode()}))  # fmt: skip
    return auths.convert(secrets)


def run(
    scenario: Callable[[imagereading.ImageConfigs, Double], Awaitable[T]], double: Double, **options: Any
) -> T:
    async def main() -> T:
        server = await serving(double)
        reader = imagereading.ImageConfigs(**options)
        try:
            return await scenario(reader, double)
        finally:
            await reader.close()
            await server.close()

    return asyncio.run(main())


def image(double: Double, tag: str = "1") -> str:
    return f"{double.base.removeprefix('http://')}/{REPOSITORY}:{tag}"


def failure(scenario: Callable[[imagereading.ImageConfigs, Double], Awaitable[object]], double: Double,
            **options: Any) -> errors.ImageConfigUnavailable:  # fmt: skip
    with pytest.raises(errors.ImageConfigUnavailable) as caught:
        run(scenario, double, **options)
    return caught.value


def test_the_bearer_flow_sends_the_credential_only_to_the_token_service_and_remembers_the_token(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    double = Double(auth="bearer")

    async def twice(reader: imagereading.ImageConfigs, double: Double) -> tuple[core.ImageConfig, int]:
        credentials = pull_secret((double.base.removeprefix("http://"), PASSWORD))
        first = await reader.resolve(image(double), credentials)
        count = len(double.seen)
        assert await reader.resolve(image(double), credentials) == first
        return first, count

    config, count = run(twice, double)
    assert config.entrypoint == ("/bin/plugin",) and config.cmd == ()
    assert config.digest == digest(MANIFEST)
    tokens = [s for s in double.seen if s.path.startswith("/token")]
    assert len(tokens) == 1 and tokens[0].authorization.startswith("Basic ")
    assert "scope=repository:team/app:pull" in tokens[0].path and "service=double" in tokens[0].path
    registry = [s for s in double.seen if not s.path.startswith("/token")]
    assert all(s.authorization in ("", f"Bearer {TOKEN}") for s in registry)
    assert [(s.method, s.authorization) for s in double.seen[count:]] == [("HEAD", f"Bearer {TOKEN}")]
    assert PASSWORD not in caplog.text and TOKEN not in caplog.text


def test_anonymous_tokens_are_asked_for_without_credentials() -> None:
    double = Double(auth="bearer", anonymous_tokens=True)
    config = run(lambda reader, d: reader.resolve(image(d), None), double)
    assert config.entrypoint == ("/bin/plugin",)
    assert [s.authorization for s in double.seen if s.path.startswith("/token")] == [""]


def test_a_refused_credential_gives_way_to_the_next_in_the_kubelets_order() -> None:
    double = Double(auth="basic")

    async def scenario(reader: imagereading.ImageConfigs, double: Double) -> core.ImageConfig:
        host = double.base.removeprefix("http://")
        # the more specific key is tried first (and is wrong), then the host's
        credentials = pull_secret((host, PASSWORD), (f"{host}/{REPOSITORY}", "wrong-password"))
        return await reader.resolve(image(double), credentials)

    assert run(scenario, double).entrypoint == ("/bin/plugin",)
    sent = [s.authorization for s in double.seen]
    wrong = "Basic " + base64.b64encode(f"{USER}:wrong-password".encode()).decode()
    right = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert sent[:3] == ["", wrong, right]


def test_every_credential_refused_names_them_all_and_no_secret() -> None:
    double = Double(auth="bearer")

    async def scenario(reader: imagereading.ImageConfigs, double: Double) -> object:
        host = double.base.removeprefix("http://")
        return await reader.resolve(image(double), pull_secret((host, "wrong-" + PASSWORD)))

    error = failure(scenario, double)
    assert error.reason is errors.RegistryReason.UNAUTHORIZED
    assert '(secret "pull-0")' in str(error)
    assert PASSWORD not in str(error) + repr(error.problems) and TOKEN not in str(error)


def test_a_redirect_to_another_host_carries_no_credential() -> None:
    other = Double()
    double = Double(auth="basic")

    async def scenario(reader: imagereading.ImageConfigs, double: Double) -> core.ImageConfig:
        server = await serving(other)
        try:
            double.blob_redirect = other.base.replace("127.0.0.1", "localhost")  # another origin
            other.blobs = double.blobs
            host = double.base.removeprefix("http://")
            return await reader.resolve(image(double), pull_secret((host, PASSWORD)))
        finally:
            await server.close()

    assert run(scenario, double).entrypoint == ("/bin/plugin",)
    assert [s.method for s in other.seen] == ["GET"] and other.seen[0].authorization == ""
    assert any(s.path.startswith(f"/v2/{REPOSITORY}/blobs/") and s.authorization for s in double.seen)


def test_a_registry_without_docker_content_digest_is_read_by_getting_the_manifest() -> None:
    double = Double(head_digest=False)
    config = run(lambda reader, d: reader.resolve(image(d), None), double)
    assert config.digest == digest(MANIFEST)
    assert [s.method for s in double.seen][:2] == ["HEAD", "GET"]


def test_a_digest_reference_must_be_answered_with_that_digest() -> None:
    double = Double()
    reference = f"{{}}/{REPOSITORY}@{digest(MANIFEST)}"
    config = run(
        lambda reader, d: reader.resolve(reference.format(d.base.removeprefix("http://")), None), double
    )
    assert config.digest == digest(MANIFEST)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("config-tampered", "the image config does not match its digest"),
        ("manifest-huge", "more than the 4 MiB allowed"),
        ("config-missing", "not found: the registry has no image config blob"),
    ],
)
def test_wrong_answers_are_bad_responses(change: str, message: str) -> None:
    double = Double()
    if change == "config-tampered":
        double.blobs = {digest(CONFIG): CONFIG + b" "}
    elif change == "manifest-huge":
        double.head_digest = False
        double.manifests = {"1": b" " * (core.MANIFEST_LIMIT + 1)}
    else:
        double.blobs = {}
    error = failure(lambda reader, d: reader.resolve(image(d), None), double)
    assert message in str(error)


def test_a_registry_that_does_not_answer_in_time_is_unreachable() -> None:
    double = Double(stall=True)
    error = failure(lambda reader, d: reader.resolve(image(d), None), double, timeout=0.5)
    assert error.reason is errors.RegistryReason.UNREACHABLE and error.transient
    assert "did not answer within 0.5 s" in str(error)


def test_errors_can_carry_the_field_path() -> None:
    double = Double()
    error = failure(lambda reader, d: reader.resolve(image(d, "2"), None, path="spec.steps[0].image"), double)
    assert error.reason is errors.RegistryReason.NOT_FOUND
    assert str(error).startswith("spec.steps[0].image: cannot read the config of image")


def test_bad_references_and_platforms_are_refused_before_any_request() -> None:
    double = Double()
    with pytest.raises(errors.InvalidImageReference):
        run(lambda reader, d: reader.resolve("Bad Reference", None), double)
    with pytest.raises(ValueError, match="is not os/architecture"):
        run(lambda reader, d: reader.resolve(image(d), None, platform="amd64"), double)
    assert double.seen == []


def test_the_mirror_setting_is_read_and_a_bad_one_stops_the_operator_without_its_secret() -> None:
    read = settings_.Settings.from_env({"PODLINE_REGISTRY_MIRRORS": "docker.io=http://localhost:5101"})
    assert read.registry_mirrors == (registries.Mirror("docker.io", "http://localhost:5101"),)
    assert settings_.Settings.from_env({}).registry_mirrors == ()
    with pytest.raises(settings_.SettingsError) as caught:
        settings_.Settings.from_env({"PODLINE_REGISTRY_MIRRORS": f"docker.io=http://u:{PASSWORD}@m.example"})
    assert str(caught.value).startswith("PODLINE_REGISTRY_MIRRORS: ")
    assert PASSWORD not in str(caught.value)


def test_it_is_the_reconcilers_image_config_source() -> None:
    double = Double()

    async def scenario(reader: imagereading.ImageConfigs, double: Double) -> object:
        source: reconciling.ImageConfigSource = reader
        return await source.config(image(double), None)

    assert run(scenario, double) == core.ImageConfig(("/bin/plugin",), (), digest(MANIFEST))


@pytest.mark.parametrize(
    ("url", "proxies", "proxy"),
    [
        ("https://ghcr.io/v2/", {"https": "http://proxy.example:3128"}, "http://proxy.example:3128"),
        ("http://mirror.example/v2/", {"https": "http://proxy.example:3128"}, None),
        ("http://mirror.example/v2/", {"http": "http://proxy.example:3128"}, "http://proxy.example:3128"),
        ("https://ghcr.io/v2/", {"https": "http://proxy.example:3128", "no": "ghcr.io,.internal"}, None),
        ("https://r.internal/v2/", {"https": "http://proxy.example:3128", "no": "ghcr.io,.internal"}, None),
        ("https://ghcr.io/v2/", {"https": "http://proxy.example:3128", "no": "*"}, None),
        ("http://localhost:5000/v2/", {"http": "http://proxy.example:3128"}, None),
        ("http://127.0.0.1:5000/v2/", {"http": "http://proxy.example:3128"}, None),
        ("https://ghcr.io/v2/", {}, None),
    ],
)
def test_proxies_come_from_the_environment_and_never_for_loopback(
    url: str, proxies: dict[str, str], proxy: str | None
) -> None:
    assert imagereading.proxy_for(url, proxies) == proxy


def test_a_burst_of_resolves_of_one_image_reads_its_config_once() -> None:
    double = Double(slow_blobs=True)

    async def burst(reader: imagereading.ImageConfigs, double: Double) -> list[core.ImageConfig]:
        return list(await asyncio.gather(*(reader.resolve(image(double), None) for _ in range(5))))

    configs = run(burst, double)
    assert all(config == configs[0] for config in configs)
    assert [s.method for s in double.seen].count("HEAD") == 5  # each checks the tag (and its access) itself
    assert len([s for s in double.seen if s.method == "GET"]) == 2  # one manifest, one config blob


def test_header_names_are_read_in_any_case() -> None:
    double = Double(auth="bearer", anonymous_tokens=True, lower_case_headers=True)
    config = run(lambda reader, d: reader.resolve(image(d), None), double)
    assert config.digest == digest(MANIFEST)
    # the HEAD's lower-case docker-content-digest was read: no GET of the tag to learn the digest
    assert ("GET", f"/v2/{REPOSITORY}/manifests/1") not in [(s.method, s.path) for s in double.seen]


# ---- the run's platform: which manifest of a multi-arch index is read ---------------------------------------

ARM_CONFIG = json.dumps(
    {"architecture": "arm64", "os": "linux", "config": {"Entrypoint": ["/bin/plugin"], "Cmd": ["arm64"]}}
).encode()
ARM_MANIFEST = json.dumps({
    "schemaVersion": 2, "mediaType": core.OCI_MANIFEST,
    "config": {"mediaType": CONFIG_TYPE, "digest": digest(ARM_CONFIG), "size": len(ARM_CONFIG)},
    "layers": [],
}).encode()  # fmt: skip
INDEX = json.dumps({
    "schemaVersion": 2, "mediaType": core.OCI_INDEX,
    "manifests": [
        {"mediaType": core.OCI_MANIFEST, "digest": digest(MANIFEST), "size": len(MANIFEST),
         "platform": {"os": "linux", "architecture": "amd64"}},
        {"mediaType": core.OCI_MANIFEST, "digest": digest(ARM_MANIFEST), "size": len(ARM_MANIFEST),
         "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
    ],
}).encode()  # fmt: skip


def multiarch() -> Double:
    """Tag ``multi`` is an index: linux/amd64 → ``MANIFEST`` (no CMD), linux/arm64/v8 → CMD ``arm64``."""
    double = Double()
    double.manifests.update({"multi": INDEX, digest(INDEX): INDEX, digest(ARM_MANIFEST): ARM_MANIFEST})
    double.blobs[digest(ARM_CONFIG)] = ARM_CONFIG
    return double


def test_the_reconcilers_source_reads_the_runs_platform_from_an_index() -> None:
    double = multiarch()

    async def scenario(reader: imagereading.ImageConfigs, double: Double) -> list[object]:
        source: reconciling.ImageConfigSource = reader
        arm64 = core.normalize_platform("linux", "aarch64")
        got = [await source.config(image(double, "multi"), None, platform=arm64)]
        got.append(await source.config(image(double, "multi"), None))
        got.append(await source.config(image(double, "multi"), None, platform=arm64))
        return [*got, reader.cache_hits]

    arm, default, again, hits = run(scenario, double)
    assert arm == core.ImageConfig(("/bin/plugin",), ("arm64",), digest(ARM_MANIFEST))
    assert default == core.ImageConfig(("/bin/plugin",), (), digest(MANIFEST))  # linux/amd64, the default
    assert again == arm and hits == 1  # cached by index digest and platform: arm64's is not amd64's
    blobs = [s.path.rpartition("/")[2] for s in double.seen if "/blobs/" in s.path]
    assert blobs == [digest(ARM_CONFIG), digest(CONFIG)]


def test_an_index_without_the_runs_platform_says_which_it_has() -> None:
    double = multiarch()
    s390x = core.normalize_platform("linux", "s390x")
    error = failure(lambda reader, d: reader.config(image(d, "multi"), None, platform=s390x), double)
    assert error.reason is errors.RegistryReason.NO_PLATFORM
    assert "linux/s390x; the image is for linux/amd64, linux/arm64/v8" in str(error)


@pytest.mark.parametrize(
    ("spec", "cmd"),
    [
        ({}, ()),
        ({"platform": {"os": "linux", "arch": "aarch64"}}, ("arm64",)),
        ({"node_selector": {"kubernetes.io/arch": "arm64"}}, ("arm64",)),
        ({"platform": {"arch": "amd64"}, "node_selector": {"kubernetes.io/arch": "amd64"}}, ()),
    ],
)
def test_the_reconciler_asks_for_the_plans_platform(spec: dict[str, Any], cmd: tuple[str, ...]) -> None:
    double = multiarch()

    async def scenario(reader: imagereading.ImageConfigs, double: Double) -> dict[str, Any] | None:
        reconciler = reconciling.Reconciler(object(), settings_.Settings(), images=reader)  # type: ignore[arg-type]
        body = {
            "metadata": {"namespace": "ci", "name": "p", "uid": "u", "generation": 1},
            "spec": {"steps": [{"name": "plugin", "image": image(double, "multi")}], **spec},
        }
        plan = runs.plan_of(body, reconciler.settings.policy)
        assert isinstance(plan, plans.RunPlan), plan
        return await reconciler._image_configs(("ci", "p"), plan, None)

    configs = run(scenario, double)
    assert configs is not None
    assert configs[image(double, "multi")].cmd == cmd


def test_the_platform_setting_is_read_for_runs_that_name_none() -> None:
    """PODLINE_PLATFORM (default: the operator's own) is what a run without ``platform`` is read for, so an
    arm64-only cluster reads arm64 manifests; a run's own platform still wins."""
    double = multiarch()
    config = settings_.Settings.from_env({"PODLINE_PLATFORM": "linux/aarch64"})
    assert config.platform == "linux/arm64/v8"
    amd64 = core.normalize_platform("linux", "amd64")

    async def scenario(_: imagereading.ImageConfigs, double: Double) -> list[object]:
        reader = imagereading.ImageConfigs.from_settings(config)
        try:
            return [
                await reader.config(image(double, "multi"), None),
                await reader.config(image(double, "multi"), None, platform=amd64),
            ]
        finally:
            await reader.close()

    unnamed, named = run(scenario, double)
    assert unnamed == core.ImageConfig(("/bin/plugin",), ("arm64",), digest(ARM_MANIFEST))
    assert named == core.ImageConfig(("/bin/plugin",), (), digest(MANIFEST))


def test_the_platform_setting_defaults_to_the_operators_own_and_a_bad_one_stops_it() -> None:
    own = core.normalize_platform("linux", os.uname().machine)
    assert settings_.Settings.from_env({}).platform == str(own)
    assert settings_.Settings().platform == str(own)
    with pytest.raises(settings_.SettingsError) as caught:
        settings_.Settings.from_env({"PODLINE_PLATFORM": "arm64"})
    assert str(caught.value).startswith('PODLINE_PLATFORM: platform "arm64" is not os/architecture[/variant]')
