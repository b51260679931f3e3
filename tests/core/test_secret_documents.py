"""``kind: secret`` documents → Kubernetes Secret references (``core.secretdocs``).

Drone's rules: drone-yaml ``yaml/secret.go`` (a document has ``data`` or ``get: {path, name}``);
drone-kubernetes-secrets ``plugin/plugin.go`` (``get.path`` is a Secret of the extension's namespace,
``get.name`` the key of its data).
"""

from __future__ import annotations

from typing import Any

import pytest
from podline.core import errors, secretdocs


def doc(**fields: Any) -> dict[str, Any]:
    return {"kind": "secret", **fields}


def test_get_path_and_name_is_a_key_of_a_secret() -> None:
    secret = secretdocs.parse(doc(name="docker_password", get={"path": "docker", "name": "password"}), "f[1]")
    assert secret == secretdocs.SecretDoc("docker_password", "docker", "password")
    assert secret.reference == "docker/password"


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"get": {"path": "docker", "name": "password"}}, "name is required"),
        ({"name": "x", "data": "hl3v+FODjduX0UpXBHgYzPzVTppQblg51CVgCbgDk4U="}, "encrypted"),
        ({"name": "x"}, "get: {path"),
        ({"name": "x", "get": {"path": "docker"}}, "get: {path"),
        ({"name": "x", "get": {"path": "secret/data/docker", "name": "username"}}, "Vault-style"),
        ({"name": "x", "get": {"path": "docker#username", "name": "u"}}, "Vault-style"),
        ({"name": "x", "get": {"path": "Docker_Creds", "name": "u"}}, 'e.g. to "docker-creds"'),
        ({"name": "x", "get": {"path": "docker", "name": "pass word"}}, "no Secret key"),
    ],
)
def test_what_has_no_kubernetes_form_is_refused_naming_the_document(
    fields: dict[str, Any], words: str
) -> None:
    with pytest.raises(errors.InvalidPipeline) as caught:
        secretdocs.parse(doc(**fields), ".drone.yml[3]")
    [line] = caught.value.lines()
    assert line.startswith(".drone.yml[3]") and words in line
    if "name" in fields:
        assert f'kind: secret "{fields["name"]}"' in line


def test_the_encrypted_value_never_appears_in_the_refusal() -> None:
    with pytest.raises(errors.InvalidPipeline) as caught:
        secretdocs.parse(doc(name="x", data="CANARY-encrypted-blob"), "f[0]")
    assert "CANARY" not in str(caught.value)


def test_collect_reports_every_bad_document_at_once() -> None:
    with pytest.raises(errors.InvalidPipeline) as caught:
        secretdocs.collect(
            [
                ("f[1]", doc(name="a", data="x")),
                ("f[2]", doc(name="b", get={"path": "ok", "name": "k"})),
                ("f[3]", doc(name="c", get={"path": "vault/x", "name": "k"})),
                ("f[4]", doc(name="b", get={"path": "other", "name": "k"})),
            ]
        )
    assert [line.split(" ")[0] for line in caught.value.lines()] == ["f[1]", "f[3]", "f[4]"]
    assert "a second document" in caught.value.lines()[2]


SECRETS = {
    "docker_password": secretdocs.SecretDoc("docker_password", "docker", "password"),
    "dockerconfig": secretdocs.SecretDoc("dockerconfig", "regcred", ".dockerconfigjson"),
    "token": secretdocs.SecretDoc("token", "gh", "token"),
}


def test_from_secret_in_pipeline_step_service_environment_and_settings() -> None:
    pipeline: dict[str, Any] = {
        "kind": "pipeline",
        "environment": {"A": {"from_secret": "token"}, "B": "plain"},
        "services": [{"name": "db", "image": "x", "environment": {"P": {"from_secret": "docker_password"}}}],
        "steps": [
            {
                "name": "publish",
                "image": "plugins/docker",
                "settings": {"password": {"from_secret": "docker_password"}, "repo": "me/app"},
                "environment": {"T": {"from_secret": "token"}, "U": {"from_secret": "unknown"}},
            }
        ],
    }
    out = secretdocs.apply(pipeline, SECRETS, "f[0]")
    assert out["environment"] == {"A": {"from_secret": "gh/token"}, "B": "plain"}
    assert out["services"][0]["environment"] == {"P": {"from_secret": "docker/password"}}
    step = out["steps"][0]
    assert step["settings"] == {"password": {"from_secret": "docker/password"}, "repo": "me/app"}
    # a name no document defines still reads the operator's secret store, as before
    assert step["environment"] == {"T": {"from_secret": "gh/token"}, "U": {"from_secret": "unknown"}}
    assert pipeline["steps"][0]["settings"]["password"] == {"from_secret": "docker_password"}  # not mutated


def test_image_pull_secrets_become_the_secret_when_the_key_holds_a_docker_config() -> None:
    out = secretdocs.apply({"image_pull_secrets": ["dockerconfig", "plain"]}, SECRETS, "f[0]")
    assert out["image_pull_secrets"] == ["regcred", "plain"]


def test_image_pull_secrets_of_another_key_are_refused_with_the_keys_podline_reads() -> None:
    with pytest.raises(errors.InvalidPipeline) as caught:
        secretdocs.apply({"image_pull_secrets": ["token"]}, SECRETS, "f[0]")
    [line] = caught.value.lines()
    assert line.startswith("f[0].image_pull_secrets[0]") and ".dockerconfigjson" in line and '"token"' in line
