"""Services (and detached steps) reached by their names, as in Drone: drone-runner-kube
``engine/compiler/compiler.go`` gives the pod a hostAlias 127.0.0.1 for every service, and every detached
step, whose name is a DNS-1123 subdomain (``engine/convert.go`` ``toHostAliases``)."""

from __future__ import annotations

from typing import Any

from podline.core import compiling, pods, policies

CONTEXT = compiling.RunContext(namespace="ci", pipeline="demo", uid="u", generation=1)


def pod_spec(**spec: Any) -> dict[str, Any]:
    plan = compiling.compile_spec(spec, CONTEXT, policies.Policy())
    return pods.build_pod(plan)["spec"]


def test_services_and_detached_steps_resolve_to_the_pod() -> None:
    spec = pod_spec(
        services=[{"name": "mariadb", "image": "mariadb:11"}, {"name": "cache.local", "image": "redis:7"}],
        steps=[
            {"name": "server", "image": "alpine:3.20", "commands": ["nc -l -p 8080"], "detach": True},
            {"name": "test", "image": "alpine:3.20", "commands": ["nc -z mariadb 3306"]},
        ],
    )
    assert spec["hostAliases"] == [{"ip": "127.0.0.1", "hostnames": ["mariadb", "cache.local", "server"]}]


def test_names_that_are_no_host_names_are_left_out() -> None:
    spec = pod_spec(
        services=[{"name": "My_DB", "image": "mariadb:11"}, {"name": "db", "image": "mariadb:11"}],
        steps=[{"name": "test", "image": "alpine:3.20", "commands": ["true"]}],
    )
    assert spec["hostAliases"] == [{"ip": "127.0.0.1", "hostnames": ["db"]}]


def test_no_services_no_aliases() -> None:
    assert "hostAliases" not in pod_spec(
        steps=[{"name": "test", "image": "alpine:3.20", "commands": ["true"]}]
    )
