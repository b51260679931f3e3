"""Kubeconfig files for the test cluster: one per identity, with either a client certificate or a token.

Paths to certificates are absolute, so a kubeconfig can be used from any working directory
(``export KUBECONFIG=...``). Which identities exist is decided by the tiers.
"""

from __future__ import annotations

import pathlib

import yaml

from tests.cluster import pki

CLUSTER_NAME = "podline-test"


def _write(
    path: pathlib.Path, server: str, ca: pathlib.Path, user_name: str, user: dict[str, str]
) -> pathlib.Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CLUSTER_NAME, "cluster": {"server": server, "certificate-authority": str(ca)}}],
        "users": [{"name": user_name, "user": user}],
        "contexts": [{"name": user_name, "context": {"cluster": CLUSTER_NAME, "user": user_name}}],
        "current-context": user_name,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
    return path


def with_certificate(
    path: pathlib.Path, server: str, ca: pathlib.Path, user_name: str, pair: pki.KeyPair
) -> pathlib.Path:
    user = {"client-certificate": str(pair.cert), "client-key": str(pair.key)}
    return _write(path, server, ca, user_name, user)


def with_token(path: pathlib.Path, server: str, ca: pathlib.Path, user_name: str, token: str) -> pathlib.Path:
    return _write(path, server, ca, user_name, {"token": token})
