"""The node tier's two image registries (Debian's ``docker-registry``), plain HTTP on loopback (tests may start
more, also over HTTPS).

The public one needs no credentials; the private one requires htpasswd (bcrypt) basic auth, so tests can
prove that ``imagePullSecrets`` reach the real kubelet and containerd. Every request lands in the
registry's log, which `Registry.requests` parses, so tests can tell whether a pull contacted a registry.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import pathlib
import re
import subprocess

import yaml

from tests.cluster import components, images, pki, probes

USERNAME = "podline"
PASSWORD = "podline-test-password"

# An access-log line: 127.0.0.1 - - [26/Nov/2026:17:41:43 +0000] "GET /v2/ HTTP/1.1" 401 87 "" "containerd/1.6.20"
_ACCESS = re.compile(r'^\S+ - \S+ \[[^\]]*\] "(?P<method>[A-Z]+) (?P<path>\S+) [^"]*" (?P<status>\d{3}) ')


@dataclasses.dataclass(frozen=True)
class Request:
    method: str
    path: str
    status: int  # 401 for a request without valid credentials


@dataclasses.dataclass(frozen=True)
class Registry:
    """One running registry: where it listens (``host`` is what image references use) and its log."""

    host: str
    address: str
    log: pathlib.Path
    authenticated: bool

    def offset(self) -> int:
        """The current end of the log; pass it to `requests` to see only what happens afterwards."""
        return self.log.stat().st_size if self.log.exists() else 0

    def requests(self, since: int = 0) -> list[Request]:
        with self.log.open("rb") as log:
            log.seek(since)
            text = log.read().decode(errors="replace")
        found = (_ACCESS.match(line) for line in text.splitlines())
        return [Request(m["method"], m["path"], int(m["status"])) for m in found if m]

    def manifest_requests(self, repository: str, since: int = 0) -> list[Request]:
        """GET/HEAD requests for ``repository``'s manifests (what a pull of that image always starts with)."""
        prefix = f"/v2/{repository}/manifests/"
        return [r for r in self.requests(since) if r.path.startswith(prefix)]


@dataclasses.dataclass(frozen=True)
class RegistryInfo:
    """What tests need to know about the node tier's registries and images."""

    public: Registry
    private: Registry
    username: str = USERNAME
    password: str = PASSWORD
    busybox: str = images.BUSYBOX
    private_busybox: str = images.PRIVATE_BUSYBOX
    placeholder: str = images.PLACEHOLDER
    runner: str = images.RUNNER  # the entrypoint binary and the runner marker (docs/in-pod.md)

    def docker_config_json(self) -> str:
        """A ``.dockerconfigjson`` value with the private registry's credentials."""
        auth = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        entry = {"username": self.username, "password": self.password, "auth": auth}
        return json.dumps({"auths": {self.private.host: entry}})


def describe(name: str, host: str, log_dir: pathlib.Path, *, authenticated: bool) -> Registry:
    """Where the registry called ``name`` listens; ``host`` (``localhost:<port>``) is what images name."""
    return Registry(host, f"127.0.0.1:{host.rsplit(':', 1)[1]}", log_dir / f"{name}.log", authenticated)


def define(
    name: str, registry: Registry, directory: pathlib.Path, run_dir: pathlib.Path, *, program: str,
    htpasswd: str | None, tls: tuple[pki.KeyPair, pki.KeyPair] | None = None,
) -> components.Component:  # fmt: skip
    """Write the registry's config (and htpasswd file, if ``htpasswd`` names that program); return its
    not yet started component. ``tls``: (CA, server certificate): it serves HTTPS with that certificate (and
    is probed trusting that CA) instead of plain HTTP."""
    address = registry.address
    directory.mkdir(parents=True, exist_ok=True)
    http: dict[str, object] = {
        "addr": address,
        "secret": "podline-test",
        "headers": {"X-Content-Type-Options": ["nosniff"]},
    }
    config: dict[str, object] = {
        "version": 0.1,
        "log": {"level": "info", "formatter": "text", "accesslog": {"disabled": False}},
        "storage": {"filesystem": {"rootdirectory": str(directory / "storage")}, "delete": {"enabled": True}},
        "http": http,
    }
    if htpasswd is not None:
        password_file = directory / "htpasswd"
        entry = subprocess.run(
            [htpasswd, "-nbB", USERNAME, PASSWORD], capture_output=True, text=True, check=True
        )
        password_file.write_text(entry.stdout.strip() + "\n")
        config["auth"] = {"htpasswd": {"realm": "podline-test", "path": str(password_file)}}
    context = None
    if tls is not None:
        ca, server = tls
        http["tls"] = {"certificate": str(server.cert), "key": str(server.key)}
        context = probes.tls_context(ca)
    config_file = directory / "config.yml"
    config_file.write_text(yaml.safe_dump(config))
    expected = 401 if htpasswd is not None else 200
    url = f"{'https' if tls else 'http'}://{address}/v2/"
    return components.Component(
        name, [program, "serve", str(config_file)], registry.log.parent, run_dir,
        ready=lambda: probes.http_status(url, context) == expected, ready_timeout=30,
    )  # fmt: skip
