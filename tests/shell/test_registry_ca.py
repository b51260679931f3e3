"""Registries behind a private CA: ``PODLINE_REGISTRY_CA_FILE`` (read and checked at start) and what the reader
says when a registry's certificate fails verification, against the registry double served over TLS with a
certificate of a throw-away CA (``tests.cluster.pki``, the openssl command line).

Loopback registries are spoken to over plain HTTP, so the double is reached as a mirror given as https://, as
an in-house registry behind a private CA would be (the reader's TLS is the same for every host it talks to).
``tests/e2e/test_registry_ca.py`` does the same with the real registry.
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import shutil
import ssl
import subprocess
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from aiohttp import test_utils
from podline.core import errors, registries
from podline.core import imageconfigs as core
from podline.shell import imagereading
from podline.shell import settings as settings_

from tests.cluster import pki
from tests.shell.test_image_config_reading import REPOSITORY, Double

T = TypeVar("T")
VARIABLE = "PODLINE_REGISTRY_CA_FILE"
MIRRORED = "registry.corp.example"  # the in-house registry's name in image references; never resolved
KEY_CANARY = "canary-key-material-9Qz"

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command line")


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pki.KeyPair]:
    """A private CA with a server certificate for 127.0.0.1, one for another host, and an unrelated CA."""
    directory = tmp_path_factory.mktemp("pki")
    ca = pki.make_ca(directory / "ca")

    def server(name: str, *hosts: str) -> pki.KeyPair:
        return pki.issue(ca, directory, name, common_name="registry", hosts=hosts, client=False, server=True)

    return {
        "ca": ca,
        "server": server("server", "127.0.0.1", "localhost"),
        "elsewhere": server("elsewhere", "registry.elsewhere.example"),
        "other-ca": pki.make_ca(directory / "other", "other-ca"),
    }


def serve_over_tls(
    scenario: Callable[[imagereading.ImageConfigs, str], Awaitable[T]], pair: pki.KeyPair, **options: Any
) -> T:
    """Serve the double with ``pair``; run ``scenario`` with a reader whose mirror for ``MIRRORED`` is it."""

    async def main() -> T:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(pair.cert), str(pair.key))
        server = test_utils.TestServer(Double().app(), host="127.0.0.1")
        await server.start_server(ssl=context)
        mirrors = registries.parse_mirrors(f"{MIRRORED}=https://127.0.0.1:{server.port}")
        reader = imagereading.ImageConfigs(mirrors=mirrors, **options)
        try:
            return await scenario(reader, f"127.0.0.1:{server.port}")
        finally:
            await reader.close()
            await server.close()

    return asyncio.run(main())


def read(pair: pki.KeyPair, **options: Any) -> core.ImageConfig:
    return serve_over_tls(
        lambda reader, _: reader.resolve(f"{MIRRORED}/{REPOSITORY}:1", None), pair, **options
    )


def refused(pair: pki.KeyPair, **options: Any) -> tuple[errors.ImageConfigUnavailable, str]:
    async def scenario(reader: imagereading.ImageConfigs, host: str) -> tuple[Any, str]:
        with pytest.raises(errors.ImageConfigUnavailable) as caught:
            await reader.resolve(f"{MIRRORED}/{REPOSITORY}:1", None)
        return caught.value, host

    return serve_over_tls(scenario, pair, **options)


def configured(path: pathlib.Path | str) -> settings_.Settings:
    return settings_.Settings.from_env({VARIABLE: str(path)})


def problem(path: pathlib.Path | str) -> str:
    with pytest.raises(settings_.SettingsError) as caught:
        configured(path)
    message = str(caught.value)
    assert message.startswith(f"{VARIABLE}: "), message
    return message


# ---- the setting ---------------------------------------------------------------------------------------------


def test_unset_or_empty_the_system_trust_alone_is_used() -> None:
    for env in ({}, {VARIABLE: ""}, {VARIABLE: "  "}):
        config = settings_.Settings.from_env(env)
        assert (config.registry_ca_file, config.registry_ca, config.registry_ssl()) == ("", "", None)


def test_a_pem_bundle_is_added_to_the_system_trust(certificates: dict[str, pki.KeyPair],
                                                   tmp_path: pathlib.Path) -> None:  # fmt: skip
    bundle = tmp_path / "bundle.pem"
    bundle.write_text(
        "# our CAs\n" + certificates["ca"].cert.read_text() + certificates["other-ca"].cert.read_text()
    )
    config = configured(bundle)
    assert config.registry_ca_file == str(bundle)
    context = config.registry_ssl()
    assert context is not None and context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
    system = ssl.create_default_context().cert_store_stats()["x509_ca"]
    assert context.cert_store_stats()["x509_ca"] == system + 2, "both CAs, on top of the system's"
    assert str(bundle) in repr(config) and "BEGIN CERTIFICATE" not in repr(config)


def test_the_file_is_read_once_at_start(certificates: dict[str, pki.KeyPair], tmp_path: pathlib.Path) -> None:
    bundle = tmp_path / "ca.pem"
    shutil.copy(certificates["ca"].cert, bundle)
    config = configured(bundle)
    bundle.unlink()
    assert config.registry_ssl() is not None


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        ("missing", "does not exist"),
        ("directory", "is a directory, not a PEM file"),
        ("der", "is not a PEM file (binary content: a DER certificate?"),
        ("text", "holds no PEM certificate (no -----BEGIN CERTIFICATE----- line)"),
        ("empty", "holds no PEM certificate"),
        ("broken", "is not a valid PEM certificate bundle"),
        ("private-key", "holds a private key: give only the CA certificates"),
    ],
)
def test_a_bad_file_stops_the_operator_naming_the_variable_and_why(
    certificates: dict[str, pki.KeyPair], tmp_path: pathlib.Path, make: str, reason: str
) -> None:
    path = tmp_path / "ca.pem"
    pem = certificates["ca"].cert.read_text()
    if make == "directory":
        path.mkdir()
    elif make == "der":
        der = subprocess.run(["openssl", "x509", "-in", str(certificates["ca"].cert), "-outform", "der"],
                             capture_output=True, check=True).stdout  # fmt: skip
        path.write_bytes(der)
    elif make == "text":
        path.write_text("registry.corp.example\n")
    elif make == "empty":
        path.write_text("")
    elif make == "broken":
        lines = pem.splitlines()
        path.write_text("\n".join([lines[0], "not base64 at all!", *lines[2:]]) + "\n")
    elif make == "private-key":
        key = "-----BEGIN PRIVATE KEY-----\n" + KEY_CANARY + "\n-----END PRIVATE KEY-----\n"
        path.write_text(pem + key)
    message = problem(path)
    assert f'"{path}" {reason}' in message
    assert KEY_CANARY not in message and "MII" not in message, "never the file's content"


def test_an_unreadable_file_says_so(certificates: dict[str, pki.KeyPair], tmp_path: pathlib.Path) -> None:
    path = tmp_path / "ca.pem"
    shutil.copy(certificates["ca"].cert, path)
    path.chmod(0)
    if os.geteuid() != 0:
        assert "cannot be read (permission denied for uid" in problem(path)
        return
    # Root reads any file while it holds CAP_DAC_OVERRIDE: read it from a child without that capability.
    check = (
        "import sys\nfrom podline.shell import settings\n"
        "try:\n    settings.read_ca_bundle(sys.argv[1])\nexcept ValueError as error:\n    print(error)\n"
    )
    result = subprocess.run(
        ["setpriv", "--bounding-set=-dac_override,-dac_read_search", sys.executable, "-c", check, str(path)],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert f'"{path}" cannot be read (permission denied for uid 0)' in result.stdout, result


def test_it_is_reported_with_the_other_bad_settings(tmp_path: pathlib.Path) -> None:
    with pytest.raises(settings_.SettingsError) as caught:
        settings_.Settings.from_env({VARIABLE: str(tmp_path / "nope.pem"), "PODLINE_MAX_STEPS": "many"})
    assert "PODLINE_MAX_STEPS" in str(caught.value) and f"{VARIABLE}: " in str(caught.value)


@pytest.mark.parametrize("command", ["operator", "render"])
def test_the_operator_does_not_start_naming_the_variable_not_a_traceback(
    tmp_path: pathlib.Path, command: str
) -> None:
    example = pathlib.Path(__file__).resolve().parents[2] / "docs" / "examples" / "hello.pipeline.yaml"
    argv = [sys.executable, "-m", "podline", command] + ([str(example)] if command == "render" else [])
    result = subprocess.run(
        argv, capture_output=True, text=True, timeout=60, check=False,
        env={"PATH": "/usr/bin:/bin", "KUBECONFIG": str(tmp_path / "none"), VARIABLE: str(tmp_path / "ca.pem")},
    )  # fmt: skip
    assert result.returncode == 1
    assert f'{VARIABLE}: "{tmp_path / "ca.pem"}" does not exist' in result.stderr
    assert "Traceback" not in result.stderr


# ---- the reader ----------------------------------------------------------------------------------------------


def test_without_the_ca_the_registry_is_untrusted_naming_the_setting(
    certificates: dict[str, pki.KeyPair],
) -> None:
    error, host = refused(certificates["server"])
    assert error.reason is errors.RegistryReason.UNTRUSTED
    assert not error.transient, "the operator's trust does not change until it restarts: fail at once"
    message = str(error)
    assert f"{host}: its certificate is not signed by a CA the operator trusts" in message
    assert "unable to get local issuer certificate" in message
    assert f"give the operator that CA's certificate in {VARIABLE}" in message


def test_with_the_ca_file_the_config_is_read(certificates: dict[str, pki.KeyPair]) -> None:
    config = configured(certificates["ca"].cert)
    read_config = read(certificates["server"], ssl=config.registry_ssl(), ca_file=config.registry_ca_file)
    assert read_config.entrypoint == ("/bin/plugin",)


def test_a_ca_file_without_the_registrys_ca_says_to_add_it(certificates: dict[str, pki.KeyPair]) -> None:
    config = configured(certificates["other-ca"].cert)
    error, _ = refused(certificates["server"], ssl=config.registry_ssl(), ca_file=config.registry_ca_file)
    assert error.reason is errors.RegistryReason.UNTRUSTED
    assert (
        f'add the CA that signed it to the bundle in {VARIABLE} ("{certificates["other-ca"].cert}")'
        in str(error)
    )


def test_a_certificate_for_another_host_must_be_fixed_the_ca_file_cannot_help(
    certificates: dict[str, pki.KeyPair],
) -> None:
    config = configured(certificates["ca"].cert)
    error, host = refused(
        certificates["elsewhere"], ssl=config.registry_ssl(), ca_file=config.registry_ca_file
    )
    assert error.reason is errors.RegistryReason.UNTRUSTED and not error.transient
    assert f"{host}: its certificate failed verification (IP address mismatch" in str(error)
    assert (
        f"the registry's certificate must be fixed ({VARIABLE} adds trusted CAs, it cannot cure this)"
        in str(error)
    )
