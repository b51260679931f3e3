"""Docker Hub names on the node tier: the examples as written, and every image form of the seed with every
``pull`` value, pulled by the real kubelet through containerd's docker.io mirror (the public registry).

The registry's access log is the witness: a pull starts with a request for the image's manifest by tag, so
the number of those requests is the number of pulls. The operator reads image configs through the same
local registries (``PODLINE_REGISTRY_MIRRORS``).
"""

from __future__ import annotations

import collections
import pathlib
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from tests.cluster import images
from tests.e2e import conftest, operating
from tests.e2e.operating import apply, pipeline, steps, wait_for_phase

pytestmark = pytest.mark.node
ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs" / "examples"
SEED_FORMS = ("golang", "golang:1.7", "library/golang:1.7", "index.docker.io/library/golang",
              "index.docker.io/library/golang:1.7")  # fmt: skip
GOLANG = ("docker.io/library/golang:latest", "docker.io/library/golang:1.7")


@pytest.fixture(scope="module")
def hub_operator(node_cluster: Any) -> Iterator[operating.OperatorProcess]:
    conftest.install_crd(node_cluster)
    op = operating.OperatorProcess(
        node_cluster.kubeconfig,
        node_cluster.log_dir,
        name="operator-hub",
        env={
            "PODLINE_PULL_TIMEOUT": "15",
            "PODLINE_RUNNER_IMAGE": node_cluster.registry.runner,
            "PODLINE_REGISTRY_MIRRORS": images.operator_mirrors(),
        },
    )
    op.start()
    yield op
    op.stop()


@pytest.fixture
def env(node_cluster: Any, node_namespace: str, hub_operator: operating.OperatorProcess):
    yield node_cluster, node_namespace, hub_operator
    assert hub_operator.alive(), hub_operator.log()[-3000:]


def pulls(cluster: Any, since: int) -> collections.Counter[str]:
    """``repository:tag`` -> manifest requests by tag on the public registry since the offset."""
    found: collections.Counter[str] = collections.Counter()
    for request in cluster.registry.public.requests(since):
        repository, marker, reference = request.path.partition("/manifests/")
        if marker and not reference.startswith("sha256:"):
            found[f"{repository.removeprefix('/v2/')}:{reference.split('?')[0]}"] += 1
    return found


def logs(cluster: Any, namespace: str, name: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "podline", "logs", name, "-n", namespace],
        env={"KUBECONFIG": str(cluster.kubeconfig), "PATH": "/usr/bin:/bin"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.stdout + done.stderr


def test_the_examples_run_unchanged(env) -> None:
    cluster, ns, op = env
    for reference in (
        "docker.io/library/busybox:1.36",
        "docker.io/library/redis:7",
        "docker.io/library/golang:1.12",
    ):
        cluster.remove_node_image(reference)
    public, private = cluster.registry.public.offset(), cluster.registry.private.offset()
    runtime_log = cluster.log_dir / "containerd.log"
    runtime_offset = runtime_log.stat().st_size

    cluster.kubectl("apply", "-n", ns, "-f", str(EXAMPLES / "hello.pipeline.yaml"))
    converted = subprocess.run(
        [sys.executable, "-m", "podline", "convert", str(EXAMPLES / "seed-go.drone.yml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=converted)
    cluster.kubectl("apply", "-n", ns, "-f", str(EXAMPLES / "private.pipeline.yaml"))

    hello = wait_for_phase(cluster, ns, "hello", timeout=180, operator=op)
    assert hello["phase"] == "Succeeded", hello
    by = steps(hello)
    assert by["greet"]["state"] == by["test"]["state"] == "succeeded"
    assert by["on-failure"]["state"] == "skipped"
    assert "hello from greet" in logs(cluster, ns, "hello")

    seed = wait_for_phase(cluster, ns, "default", timeout=180, operator=op)
    assert seed["phase"] == "Succeeded", seed
    out = logs(cluster, ns, "default")
    assert "go build (podline test image 1.12" in out and "go test (podline test image 1.12" in out

    private_build = wait_for_phase(cluster, ns, "private-build", timeout=180, operator=op)
    assert private_build["phase"] == "Failed", private_build
    build = steps(private_build)["build"]
    assert build["state"] == "failed" and "image" in (build.get("message") or "").lower(), build

    pulled = pulls(cluster, public)
    for repository in ("library/busybox:1.36", "library/redis:7", "library/golang:1.12"):
        assert pulled[repository] >= 1, (
            f"{repository} was not pulled from the docker.io mirror: {dict(pulled)}"
        )
    refused = [
        r for r in cluster.registry.private.requests(private) if r.path.startswith("/v2/golang/manifests/")
    ]
    assert refused and all(r.status == 401 for r in refused), (
        f"the example's fake credentials reach the registry that answers for its host, and are refused: {refused}"
    )
    with runtime_log.open("rb") as log:
        log.seek(runtime_offset)
        said = log.read().decode(errors="replace")
    for outside in (
        "registry-1.docker.io",
        "registry.internal.company.com/v2",
        "trying next host",
        "hosts.toml",
    ):
        assert outside not in said, f"containerd went past the local registries ({outside!r} in its log)"


def _run(
    cluster: Any, ns: str, op: Any, name: str, pull: str | None
) -> tuple[dict[str, Any], collections.Counter[str]]:
    spec_steps = []
    for i, form in enumerate(SEED_FORMS):
        step: dict[str, Any] = {"name": f"form-{i}", "image": form, "commands": ["go version"]}
        if pull is not None:
            step["pull"] = pull
        spec_steps.append(step)
    since = cluster.registry.public.offset()
    apply(cluster, ns, pipeline(name, {"steps": spec_steps}))
    st = wait_for_phase(cluster, ns, name, timeout=240, operator=op)
    found = pulls(cluster, since)
    return st, collections.Counter({k: v for k, v in found.items() if k.startswith("library/golang:")})


def test_every_seed_image_form_with_every_pull_value(env) -> None:
    cluster, ns, op = env
    for reference in GOLANG:
        cluster.remove_node_image(reference)
    latest, tagged = "library/golang:latest", "library/golang:1.7"

    st, pulled = _run(cluster, ns, op, "never-absent", "never")
    assert st["phase"] == "Failed" and steps(st)["form-0"].get("reason") == "ErrImageNeverPull", st
    assert pulled == {}, "pull: never must not pull"
    assert not set(GOLANG) & cluster.node_images()

    for name in ("if-not-exists-1", "if-not-exists-2"):
        st, pulled = _run(cluster, ns, op, name, "if-not-exists")
        assert st["phase"] == "Succeeded", st
        expected = {latest: 1, tagged: 1} if name.endswith("1") else {}
        assert pulled == expected, f"{name}: if-not-exists pulls an absent image once, a present one never"
    assert set(GOLANG) <= cluster.node_images(), "every form is one of two Docker Hub images"

    st, pulled = _run(cluster, ns, op, "never-present", "never")
    assert st["phase"] == "Succeeded", st
    assert pulled == {}

    for name in ("always-1", "always-2"):
        st, pulled = _run(cluster, ns, op, name, "always")
        assert st["phase"] == "Succeeded", st
        assert pulled == {latest: 2, tagged: 3}, f"{name}: always pulls for every step, every run"

    for name in ("unset-1", "unset-2"):
        st, pulled = _run(cluster, ns, op, name, None)
        assert st["phase"] == "Succeeded", st
        assert pulled == {latest: 2}, (
            f"{name}: unset pulls untagged (:latest) forms always, tagged ones if absent"
        )
    out = logs(cluster, ns, "unset-2")
    assert "go version (podline test image latest" in out and "go version (podline test image 1.7" in out


def test_docker_hub_aliases_are_configured_on_the_node(node_cluster: Any) -> None:
    hosts = node_cluster.containerd_dir / "certs.d"
    for host, registry in images.ALIASES.items():
        text = (hosts / host / "hosts.toml").read_text()
        assert f'server = "http://127.0.0.1:{registry.rsplit(":", 1)[1]}"' in text
