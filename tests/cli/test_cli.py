"""The podline CLI as a user meets it: real subprocesses, exit codes, one clear line per problem."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from podline.core import builds

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs" / "examples"
CANARY = "CANARY-cli-s3cr3t-7f1e"


def podline(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "podline", *args],
        capture_output=True,
        text=True,
        input=stdin,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


def test_convert_then_render_the_seed_pipeline(tmp_path: Path) -> None:
    converted = podline("convert", str(EXAMPLES / "seed-go.drone.yml"))
    assert converted.returncode == 0, converted.stderr
    [pipeline] = list(yaml.safe_load_all(converted.stdout))
    assert pipeline["kind"] == "Pipeline" and pipeline["metadata"]["name"] == "default"
    assert pipeline["spec"]["steps"][0]["commands"] == ["go build", "go test"]  # pasted unchanged
    path = tmp_path / "p.yaml"
    path.write_text(converted.stdout)
    rendered = podline("render", str(path))
    assert rendered.returncode == 0, rendered.stderr
    [pod] = list(yaml.safe_load_all(rendered.stdout))
    prepare, container = pod["spec"]["containers"][:2]
    assert prepare["name"] == "podline-prepare"  # installs the entrypoint the steps are wrapped by
    assert pod["kind"] == "Pod" and container["image"] == "golang:1.12"
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert container["command"] == ["/podline/bin/entrypoint"] and "go test" in container["args"][-1]


def test_convert_skips_other_document_kinds_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / ".drone.yml"
    path.write_text("kind: signature\nhmac: abc\n---\n" + (EXAMPLES / "seed-go.drone.yml").read_text())
    result = podline("convert", str(path))
    assert result.returncode == 0
    assert "skipping kind 'signature'" in result.stderr
    assert len(list(yaml.safe_load_all(result.stdout))) == 1


def test_convert_reads_kind_secret_documents_as_keys_of_kubernetes_secrets(tmp_path: Path) -> None:
    path = tmp_path / ".drone.yml"
    path.write_text(
        "kind: pipeline\nname: publish\nsteps:\n- name: p\n  image: plugins/docker\n"
        "  settings: {password: {from_secret: docker_password}}\n"
        "---\nkind: secret\nname: docker_password\nget: {path: docker, name: password}\n"
    )
    result = podline("convert", str(path))
    assert result.returncode == 0, result.stderr
    [pipeline] = list(yaml.safe_load_all(result.stdout))
    assert pipeline["spec"]["steps"][0]["settings"]["password"] == {"from_secret": "docker/password"}


def test_convert_refuses_an_encrypted_secret_naming_the_document(tmp_path: Path) -> None:
    path = tmp_path / ".drone.yml"
    path.write_text(
        (EXAMPLES / "seed-go.drone.yml").read_text() + f"\n---\nkind: secret\nname: token\ndata: {CANARY}\n"
    )
    result = podline("convert", str(path))
    assert result.returncode == 1  # the seed pipeline names no secret: it still converts
    assert f'{path}[1] (kind: secret "token")' in result.stderr and "encrypted" in result.stderr
    assert CANARY not in result.stderr and "Traceback" not in result.stderr


BUILD = """\
kind: pipeline
name: test
steps: [{name: t, image: busybox, commands: ["true"]}]
---
kind: pipeline
name: publish
depends_on: [test]
steps: [{name: p, image: busybox, commands: ["true"]}]
"""


def test_convert_labels_one_files_pipelines_as_one_build(tmp_path: Path) -> None:
    repo = tmp_path / "My_App"
    repo.mkdir()
    (repo / ".drone.yml").write_text(BUILD)
    result = podline("convert", str(repo / ".drone.yml"))
    assert result.returncode == 0, result.stderr
    labels = [p["metadata"]["labels"] for p in yaml.safe_load_all(result.stdout)]
    assert labels == [{"podline.dev/build": "my-app"}] * 2
    named = podline("convert", "--build-name", "release-7", str(repo / ".drone.yml"))
    assert {p["metadata"]["labels"]["podline.dev/build"] for p in yaml.safe_load_all(named.stdout)} == {
        "release-7"
    }
    bad = podline("convert", "--build-name", "no/slash", str(repo / ".drone.yml"))
    assert bad.returncode == 1 and bad.stderr.startswith("podline: --build-name: value")


def test_render_of_a_build_shows_the_runs_the_operator_makes(tmp_path: Path) -> None:
    source = tmp_path / ".drone.yml"
    source.write_text(BUILD)
    converted = tmp_path / "build.yaml"
    converted.write_text(podline("convert", "--build-name", "app", str(source)).stdout)
    result = podline("render", str(converted))
    assert result.returncode == 0, result.stderr
    pods = {d["metadata"]["labels"]["podline.dev/pipeline"]: d for d in yaml.safe_load_all(result.stdout)}
    members = {m.name: m for m in map(builds.member_of, yaml.safe_load_all(converted.read_text()))}
    run = builds.current_runs(members)["publish"]
    assert run.startswith("g1-d") and pods["publish"]["metadata"]["name"] == f"publish-{run}"
    assert pods["test"]["metadata"]["name"] == "test-g1"
    [step] = [c for c in pods["publish"]["spec"]["containers"] if c["name"] == "step-p"]
    env = {e["name"]: e.get("value") for e in step["env"]}
    assert env["DRONE_BUILD_STATUS"] == "success" and env["PODLINE_RUN"] == run
    assert "publish: note: runs after test ended, as if they succeeded" in result.stderr


def test_convert_refuses_unknown_dependencies_cycles_and_twin_names(tmp_path: Path) -> None:
    path = tmp_path / ".drone.yml"
    path.write_text(
        BUILD.replace("depends_on: [test]", "depends_on: [test, lint]")
        + "---\nkind: pipeline\nname: test\ndepends_on: [publish]\nsteps: [{name: s, image: x}]\n"
    )
    result = podline("convert", str(path))
    assert result.returncode == 1
    printed = [d["metadata"]["name"] for d in yaml.safe_load_all(result.stdout)]
    assert printed == ["test"]  # the others are refused, each on a line of its own
    lines = result.stderr.splitlines()
    assert any(line.startswith(f"podline: {path}[2].name: the Pipeline name") for line in lines)
    assert f'podline: {path}[1].depends_on[1]: unknown pipeline "lint"' in lines


def test_render_private_image_makes_dockerconfigjson_secret() -> None:
    result = podline("render", str(EXAMPLES / "private.pipeline.yaml"))
    assert result.returncode == 0, result.stderr
    secret, pod = yaml.safe_load_all(result.stdout)
    assert secret["type"] == "kubernetes.io/dockerconfigjson"
    config = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))
    assert "registry.internal.company.com" in config["auths"]
    assert pod["spec"]["imagePullSecrets"] == [{"name": secret["metadata"]["name"]}]


def test_render_missing_secret_names_it(tmp_path: Path) -> None:
    docs = list(yaml.safe_load_all((EXAMPLES / "private.pipeline.yaml").read_text()))
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(docs[1]))
    result = podline("render", str(path))
    assert result.returncode == 1
    assert 'Secret "dockerconfig" not found' in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"steps": [{"name": "a", "image": "Busybox"}]}, "spec.steps[0].image"),
        ({"steps": [{"name": "a", "image": "busybox", "failure": "sometimes"}]}, "spec.steps[0].failure"),
        ({"steps": [{"name": "a", "image": "busybox", "depends_on": ["tset"]}]}, 'unknown step "tset"'),
        ({"steps": []}, "spec.steps"),
        ({"steps": [{"name": "a", "image": "busybox", "commands": "echo"}]}, "spec.steps[0].commands"),
    ],
)
def test_render_invalid_spec_gives_one_line_per_problem(tmp_path: Path, spec: dict, expected: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "podline.dev/v1alpha1",
                "kind": "Pipeline",
                "metadata": {"name": "bad"},
                "spec": spec,
            }
        )
    )
    result = podline("render", str(path))
    assert result.returncode == 1
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert all(line.startswith("podline: ") for line in result.stderr.strip().splitlines())


def test_render_reports_every_problem_at_once(tmp_path: Path) -> None:
    spec = {
        "steps": [{"name": "a", "image": "UPPER"}, {"name": "a", "image": "busybox", "depends_on": ["zz"]}]
    }
    path = tmp_path / "p.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "podline.dev/v1alpha1",
                "kind": "Pipeline",
                "metadata": {"name": "bad"},
                "spec": spec,
            }
        )
    )
    result = podline("render", str(path))
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1
    assert any("spec.steps[0].image" in line for line in lines)
    assert any("spec.steps[1].name" in line and "duplicate" in line for line in lines)
    assert any('unknown step "zz"' in line for line in lines)


def test_usage_errors_exit_2() -> None:
    assert podline().returncode == 2
    assert podline("render").returncode == 2


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    missing = podline("render", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 1 and "nope.yaml" in missing.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps: [\n")
    result = podline("render", str(bad))
    assert result.returncode == 1 and "not valid YAML" in result.stderr and "Traceback" not in result.stderr


def test_render_keeps_secret_values_out_of_everything_but_the_generated_secret(tmp_path: Path) -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "reg"},
        "type": "Opaque",
        "stringData": {
            "config.json": json.dumps({"auths": {"r.example.com": {"username": "u", "password": CANARY}}})
        },
    }
    pipeline = {
        "apiVersion": "podline.dev/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": "p"},
        "spec": {
            "image_pull_secrets": ["reg"],
            "steps": [
                {
                    "name": "a",
                    "image": "r.example.com/app:1",
                    "environment": {"TOKEN": {"from_secret": "tok"}},
                    "settings": {"password": {"from_secret": "reg/pw"}},
                }
            ],
        },
    }
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump_all([secret, pipeline]))
    result = podline("render", str(path))
    assert result.returncode == 0, result.stderr
    generated, pod = yaml.safe_load_all(result.stdout)
    assert CANARY not in result.stderr
    assert CANARY not in yaml.safe_dump(pod)
    assert CANARY in base64.b64decode(generated["data"][".dockerconfigjson"]).decode()
    env = {e["name"]: e for e in pod["spec"]["containers"][1]["env"]}
    assert env["TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "podline-secrets", "key": "tok"}
    assert env["PLUGIN_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "reg", "key": "pw"}


def test_bad_operator_settings_are_named_not_a_traceback() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "podline", "render", str(EXAMPLES / "hello.pipeline.yaml")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin", "PODLINE_RUN_TIMEOUT": "soon"},
    )
    assert result.returncode == 1
    assert "PODLINE_RUN_TIMEOUT" in result.stderr and "Traceback" not in result.stderr


RELEASE = """\
apiVersion: podline.dev/v1alpha1
kind: Pipeline
metadata:
  name: release
  annotations:
    podline.dev/build: '{"branch": "main", "commit": "fedcba9876543210"}'
spec:
  steps:
  - name: build
    image: alpine:3.20
    commands: ["echo tag=${DRONE_TAG} sha=${DRONE_COMMIT_SHA:0:8} semver=${DRONE_SEMVER_MAJOR} $${HOME}"]
"""


def _script(stdout: str) -> str:
    [pod] = list(yaml.safe_load_all(stdout))
    return str(pod["spec"]["containers"][1]["args"][-1])


def test_render_substitutes_the_annotations_build_metadata(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(RELEASE)
    result = podline("render", str(path))
    assert result.returncode == 0, result.stderr
    assert "\necho tag= sha=fedcba98 semver= ${HOME}\n" in _script(result.stdout)


@pytest.mark.parametrize(
    "options",
    [
        ["--tag", "v2.1.0", "--commit", "0123456789abcdef"],
        ["--build", '{"tag": "v2.1.0", "commit": "0123456789abcdef"}'],
        ["--build-file", "BUILD_FILE", "--commit", "0123456789abcdef"],
    ],
    ids=["flags", "json", "file-then-flag"],
)
def test_render_takes_build_metadata_over_the_annotation(tmp_path: Path, options: list[str]) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(RELEASE)
    build_file = tmp_path / "build.yaml"
    build_file.write_text("tag: v2.1.0\ncommit: will-be-replaced\n")
    options = [str(build_file) if o == "BUILD_FILE" else o for o in options]
    result = podline("render", str(path), *options)
    assert result.returncode == 0, result.stderr
    assert "\necho tag=v2.1.0 sha=01234567 semver=2 ${HOME}\n" in _script(result.stdout)
    [pod] = list(yaml.safe_load_all(result.stdout))
    env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][1]["env"]}
    assert (env["DRONE_TAG"], env["DRONE_BRANCH"], env["DRONE_BUILD_EVENT"]) == ("v2.1.0", "main", "tag")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--build", '{"number": "many"}'], "podline: --build.number: Input should be a valid integer"),
        (["--build", "[1]"], "podline: --build: --build must be a JSON (or YAML) object of build metadata"),
        (["--tag", "v1", "--ref", "refs/heads/main"], "podline: --build: tag 'v1' disagrees with ref"),
        (["--build-file", "/nonexistent/build.json"], "podline: /nonexistent/build.json: No such file"),
    ],
)
def test_render_names_bad_build_metadata(tmp_path: Path, options: list[str], message: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(RELEASE)
    result = podline("render", str(path), *options)
    assert result.returncode == 1
    assert result.stderr.startswith(message), result.stderr
    assert "Traceback" not in result.stderr


def test_render_refuses_a_malformed_expression_naming_the_field(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(RELEASE.replace("${DRONE_TAG}", "${DRONE_TAG"))
    result = podline("render", str(path))
    assert result.returncode == 1
    assert result.stderr.startswith("podline: release: spec.steps[0].commands[0]: cannot substitute ${…}: ")


def test_render_says_when_build_variables_are_empty(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        RELEASE.replace(
            '  annotations:\n    podline.dev/build: \'{"branch": "main", "commit": "fedcba9876543210"}\'\n',
            "",
        )
    )
    bare = podline("render", str(path))
    assert bare.returncode == 0, bare.stderr
    assert "release: note: without build metadata every ${…} build variable is empty" in bare.stderr
    given = podline("render", str(path), "--tag", "v1.0.0")
    assert given.returncode == 0 and "note: without build metadata" not in given.stderr
