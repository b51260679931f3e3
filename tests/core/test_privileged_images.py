"""Plugins Drone runs privileged by default (``plugins/docker`` and its siblings), and what podline's policy
makes of them. Sources: drone-runner-docker ``engine/compiler/compiler.go`` (``Privileged``, ``isPrivileged``),
``engine/compiler/util.go`` (``restrictedVars``), ``internal/docker/image/image.go`` (``Match``: names compared
without their tags), and ``command/daemon/config.go`` (``DRONE_RUNNER_PRIVILEGED_IMAGES``)."""

from __future__ import annotations

import dataclasses
import types
from typing import Any

import pytest
from podline.core import compiling, errors, models, pods, policies
from podline.shell import settings

ALLOW = policies.Policy(allow_privileged=True)
CONTEXT = compiling.RunContext(namespace="ci", pipeline="demo", uid="u", generation=1)


def step(**fields: Any) -> models.Step:
    return models.Step.model_validate({"name": "publish", "image": "plugins/docker", **fields})


@pytest.mark.parametrize(
    "image",
    [
        "plugins/docker",
        "plugins/docker:20",
        "docker.io/plugins/docker:latest",
        "index.docker.io/plugins/docker",
        "plugins/ecr",
        "plugins/gcr:1",
        "plugins/acr",
        "plugins/heroku",
        "plugins/gar",
        "plugins/docker@sha256:" + "a" * 64,
    ],
)
def test_drones_privileged_plugins(image: str) -> None:
    assert policies.runs_privileged(ALLOW, step(image=image))


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"image": "plugins/kaniko"}, "not in the list"),
        ({"image": "localhost:5000/plugins/docker"}, "another registry is another image"),
        ({"image": "plugins/docker-extra"}, "names match whole"),
        ({"commands": ["docker build ."]}, "commands"),
        ({"entrypoint": ["/bin/sh"]}, "entrypoint"),
        ({"command": ["--help"]}, "command"),
        ({"volumes": [{"name": "cache", "path": "/cache"}]}, "volumes"),
        ({"environment": {"DOCKER_HOST": "tcp://elsewhere:2375"}}, "restricted variable"),
        ({"environment": {"PATH": "/x"}}, "restricted variable"),
    ],
)
def test_not_privileged_by_default(fields: dict[str, Any], why: str) -> None:
    assert not policies.runs_privileged(ALLOW, step(**fields)), why


def test_the_list_is_the_setting() -> None:
    policy = settings.Settings.from_env(
        {"PODLINE_ALLOW_PRIVILEGED": "true", "PODLINE_PRIVILEGED_IMAGES": "localhost:5101/plugins/docker"}
    ).policy
    assert policies.runs_privileged(policy, step(image="localhost:5101/plugins/docker:test"))
    assert not policies.runs_privileged(policy, step(image="plugins/docker"))
    none = settings.Settings.from_env({"PODLINE_PRIVILEGED_IMAGES": "none"}).policy
    assert none.privileged_images == ()
    for unset in ({}, {"PODLINE_PRIVILEGED_IMAGES": ""}):  # an empty variable is an unset one
        assert (
            settings.Settings.from_env(unset).policy.privileged_images == policies.DEFAULT_PRIVILEGED_IMAGES
        )


def test_a_bad_image_in_the_setting_names_the_variable() -> None:
    with pytest.raises(settings.SettingsError, match="PODLINE_PRIVILEGED_IMAGES: .*Plugins/Docker"):
        settings.Settings.from_env({"PODLINE_PRIVILEGED_IMAGES": "plugins/docker,Plugins/Docker"})


def compile_(policy: policies.Policy, **fields: Any) -> Any:
    spec = {
        "steps": [{"name": "publish", "image": "plugins/docker", "settings": {"repo": "octo/app"}, **fields}]
    }
    return compiling.compile_spec(spec, CONTEXT, policy)


def test_a_privileged_plugin_runs_privileged_where_allowed() -> None:
    plan = compile_(ALLOW)
    assert plan.steps[0].privileged
    config = types.SimpleNamespace(entrypoint=("dockerd-entrypoint.sh",), cmd=())
    container = pods.build_pod(plan, image_configs={"plugins/docker": config})["spec"]["containers"][1]
    assert container["securityContext"] == {"privileged": True}


def test_a_privileged_plugin_is_refused_where_privileged_steps_are_not_allowed() -> None:
    with pytest.raises(errors.PolicyViolation) as caught:
        compile_(policies.Policy())
    (problem,) = caught.value.problems
    assert problem.path == "spec.steps[0].image"
    for part in ('step "publish"', '"plugins/docker"', "PODLINE_PRIVILEGED_IMAGES", "PODLINE_ALLOW_PRIVILEGED",
                 "plugins/kaniko"):  # fmt: skip
        assert part in problem.message


def test_the_same_image_with_commands_is_an_ordinary_step() -> None:
    plan = compile_(policies.Policy(), commands=["docker version || true"], settings={})
    assert not plan.steps[0].privileged


def test_an_empty_list_turns_the_default_off() -> None:
    plan = compile_(dataclasses.replace(policies.Policy(), privileged_images=()))
    assert not plan.steps[0].privileged
