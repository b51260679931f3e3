"""``podline convert`` and ``podline render`` of Drone files as a migrating user runs them: real subprocesses.

What Drone does is cited per test: drone/drone ``trigger/trigger.go`` (convert, then parse, then lint),
``plugin/converter/jsonnet/jsonnet.go`` and ``plugin/converter/starlark/starlark.go``.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.cli.test_cli import podline

MIXED = """\
kind: pipeline
type: exec
name: on-host
steps:
- name: build
  commands: [make]
---
kind: pipeline
type: docker
name: n
steps:
- name: 'y'
  image: golang:1.10
  environment:
    GO111MODULE: on
  secrets: [token]
"""


def test_convert_prints_what_converts_and_names_what_is_refused(tmp_path: Path) -> None:
    path = tmp_path / ".drone.yml"
    path.write_text(MIXED)
    result = podline("convert", str(path))
    assert result.returncode == 1
    [pipeline] = yaml.safe_load_all(result.stdout)
    assert pipeline["metadata"]["name"] == "n"
    assert pipeline["spec"]["steps"][0] == {
        "name": "y",
        "image": "golang:1.10",
        "environment": {"GO111MODULE": "on"},
    }
    assert f'podline: {path}[0].type: "exec" pipelines are not run' in result.stderr
    assert f"{path}[1].steps[0].secrets: ignored" in result.stderr
    assert "Traceback" not in result.stderr


def test_converted_text_means_the_same_to_kubectls_yaml_reader(tmp_path: Path) -> None:
    """kubectl reads YAML 1.1 (`n`, `y`, `on` are booleans there): convert quotes them (issue 20)."""
    path = tmp_path / ".drone.yml"
    path.write_text(
        "kind: pipeline\nname: n\nsteps:\n- name: n\n  image: x\n  environment: {A: off, B: 1.10}\n"
    )
    result = podline("convert", str(path))
    assert result.returncode == 0, result.stderr
    assert "name: 'n'" in result.stdout
    [pipeline] = yaml.safe_load_all(result.stdout)  # PyYAML reads YAML 1.1 as kubectl does
    assert pipeline["spec"]["name"] == "n"
    assert pipeline["spec"]["steps"][0]["environment"] == {"A": "off", "B": "1.10"}


def test_render_prints_the_pipelines_that_render_and_names_the_refused_ones(tmp_path: Path) -> None:
    good = {"apiVersion": "podline.dev/v1alpha1", "kind": "Pipeline", "metadata": {"name": "good"},
            "spec": {"steps": [{"name": "a", "image": "busybox:1.36", "commands": ["true"]}]}}  # fmt: skip
    bad = {"apiVersion": "podline.dev/v1alpha1", "kind": "Pipeline", "metadata": {"name": "host"},
           "spec": {"type": "exec", "steps": [{"name": "a", "commands": ["make"]}]}}  # fmt: skip
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump_all([bad, good]))
    result = podline("render", str(path))
    assert result.returncode == 1
    [pod] = yaml.safe_load_all(result.stdout)
    assert pod["kind"] == "Pod" and pod["metadata"]["labels"]["podline.dev/pipeline"] == "good"
    assert result.stderr.strip().splitlines() == [
        (
            'podline: host: spec.type: "exec" pipelines are not run: podline runs Drone\'s docker and kubernetes '
            "pipelines as pods (this one needs Drone's exec runner)"
        )
    ]


def test_render_warns_about_what_drone_ignores(tmp_path: Path) -> None:
    doc = {"apiVersion": "podline.dev/v1alpha1", "kind": "Pipeline", "metadata": {"name": "p"},
           "spec": {"when": {"branch": "main"}, "steps": [{"name": "a", "image": "busybox:1.36", "commands": ["true"], "pull": True}]}}  # fmt: skip
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(doc))
    result = podline("render", str(path))
    assert result.returncode == 0, result.stderr
    assert "p: warning: spec.when: ignored, Drone ignores a pipeline-level when" in result.stderr
    assert (
        "p: warning: spec.steps[0].pull: 'true' is not a pull policy; Drone treats it as the default"
        in result.stderr
    )


def test_convert_then_render_a_0_8_file(tmp_path: Path) -> None:
    path = tmp_path / ".drone.yml"
    path.write_text(
        "pipeline:\n  test:\n    image: golang:1.22\n    commands: [ go test ]\nbranches: [ main ]\n"
    )
    converted = podline("convert", "--build", json.dumps({"remote": "https://github.com/o/r.git"}), str(path))
    assert converted.returncode == 0, converted.stderr
    assert "a Drone 0.8 file, converted as the Drone server converts it" in converted.stderr
    [pipeline] = yaml.safe_load_all(converted.stdout)
    assert pipeline["spec"]["workspace"] == {"base": "/drone", "path": "src/github.com/o/r"}
    out = tmp_path / "p.yaml"
    out.write_text(converted.stdout)
    rendered = podline("render", str(out))
    assert rendered.returncode == 0, rendered.stderr
    [pod] = yaml.safe_load_all(rendered.stdout)
    [step] = [c for c in pod["spec"]["containers"] if c["name"] == "step-test"]
    assert step["workingDir"] == "/drone/src/github.com/o/r"


def test_convert_a_jsonnet_file_with_drones_external_variables(tmp_path: Path) -> None:
    """jsonnet.go: build.* and repo.* external variables, all text; an array is a stream of documents."""
    path = tmp_path / ".drone.jsonnet"
    path.write_text(
        """
local pipeline(name, image) = {
  kind: 'pipeline', type: 'docker', name: name,
  steps: [{ name: 'test', image: image, commands: ['echo ' + std.extVar('build.branch')],
            environment: { REPO: std.extVar('repo.slug'), EVENT: std.extVar('build.event'), N: 1.10 } }],
};
[pipeline('go-' + v, 'golang:' + v) for v in ['1.21', '1.22']]
"""
    )
    build = {"event": "push", "branch": "main", "repo": "octocat/hello", "commit": "abc"}
    result = podline("convert", "--build", json.dumps(build), str(path))
    assert result.returncode == 0, result.stderr
    pipelines = list(yaml.safe_load_all(result.stdout))
    assert [p["metadata"]["name"] for p in pipelines] == ["go-1-21", "go-1-22"]
    step = pipelines[0]["spec"]["steps"][0]
    assert step["commands"] == ["echo main"]
    assert step["environment"] == {"REPO": "octocat/hello", "EVENT": "push", "N": "1.1"}  # JSON's 1.1


def test_a_jsonnet_import_is_read_beside_the_file_and_an_error_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / ".drone.jsonnet"
    path.write_text("local lib = import 'lib.libsonnet'; lib.pipeline('x')")
    (tmp_path / "lib.libsonnet").write_text(
        "{ pipeline(n):: { kind: 'pipeline', name: n, steps: [{name: 'a', image: 'x'}] } }"
    )
    result = podline("convert", str(path))
    assert result.returncode == 0, result.stderr
    assert [p["metadata"]["name"] for p in yaml.safe_load_all(result.stdout)] == ["x"]
    (tmp_path / "lib.libsonnet").unlink()
    result = podline("convert", str(path))
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"podline: {path}: Jsonnet error: ") and "lib.libsonnet" in line
    path.write_text("{ kind: 'pipeline', steps: std.extVar('nope') }")
    result = podline("convert", str(path))
    assert result.returncode == 1 and "Undefined external variable: nope" in result.stderr
    assert "Traceback" not in result.stderr


def test_convert_a_starlark_file_with_drones_ctx(tmp_path: Path) -> None:
    """starlark/starlark.go and args.go: main(ctx) with ctx.build and ctx.repo as structs; a list is one
    pipeline per element."""
    path = tmp_path / ".drone.star"
    path.write_text(
        """
def pipeline(name, image, ctx):
    return {"kind": "pipeline", "type": "docker", "name": name,
            "steps": [{"name": "test", "image": image,
                       "commands": ["echo " + ctx.build.branch + " " + ctx.repo.name]}]}

def main(ctx):
    print("not in the output")
    return [pipeline(ctx.repo.name + "-go-" + v, "golang:" + v, ctx) for v in ("1.21", "1.22")]
"""
    )
    build = {"event": "push", "branch": "main", "repo": "octocat/hello", "commit": "abc"}
    result = podline("convert", "--build", json.dumps(build), str(path))
    assert result.returncode == 0, result.stderr
    pipelines = list(yaml.safe_load_all(result.stdout))
    assert [p["metadata"]["name"] for p in pipelines] == ["hello-go-1-21", "hello-go-1-22"]
    assert pipelines[1]["spec"]["steps"][0]["image"] == "golang:1.22"
    assert pipelines[0]["spec"]["steps"][0]["commands"] == ["echo main hello"]


def test_a_starlark_dict_is_one_pipeline_and_an_error_is_one_line(tmp_path: Path) -> None:
    """starlark.go: a dict result is the one document; a runtime error or a result of another type
    (ErrMainReturn) refuses the file."""
    path = tmp_path / ".drone.star"
    path.write_text("def main(ctx):\n  return {'kind': 'pipeline', 'name': ctx.build.event,\n"
                    "          'steps': [{'name': 'a', 'image': 'x'}]}\n")  # fmt: skip
    result = podline("convert", "--build", '{"event": "tag"}', str(path))
    assert result.returncode == 0, result.stderr
    assert [p["metadata"]["name"] for p in yaml.safe_load_all(result.stdout)] == ["tag"]
    path.write_text("def main(ctx):\n  return ctx.build.branches\n")
    result = podline("convert", str(path))
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert (
        line
        == f"podline: {path}: Starlark error (line 2): Object of type `struct` has no attribute `branches`, did you mean `branch`?"
    )
    path.write_text("def main(ctx):\n  return 'kind: pipeline'\n")
    result = podline("convert", str(path))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        f"podline: {path}: Starlark error: main(ctx) must return a dict or a list, not string"
    )


def test_convert_reads_stdin_and_a_bad_build_is_one_line() -> None:
    result = podline("convert", "-", stdin="kind: pipeline\nsteps:\n- {name: a, image: x}\n")
    assert result.returncode == 0, result.stderr
    result = podline("convert", "--build", "[1]", "-", stdin="kind: pipeline\n")
    assert result.returncode == 1
    assert result.stderr.startswith("podline: --build: must be a JSON object")


def test_convert_for_a_tag_build_renders_what_that_build_runs(tmp_path: Path) -> None:
    """``convert --build`` is the build the file is converted for: its metadata rides on each Pipeline (the
    podline.dev/build annotation), so ``kubectl apply`` of the output substitutes ``${DRONE_TAG}`` as Drone
    does for that build (drone/drone ``trigger/trigger.go`` substitutes before anything runs)."""
    path = tmp_path / ".drone.yml"
    path.write_text(
        "kind: pipeline\nname: release\nsteps:\n- name: tag\n  image: busybox:1\n"
        "  commands: ['echo ${DRONE_TAG} ${DRONE_COMMIT_SHA:0:8} $${HOME}']\n"
    )
    build = {"event": "tag", "tag": "v1.2.0", "commit": "0123456789abcdef"}
    converted = podline("convert", str(path), "--build", json.dumps(build))
    assert converted.returncode == 0, converted.stderr
    [pipeline] = yaml.safe_load_all(converted.stdout)
    assert json.loads(pipeline["metadata"]["annotations"]["podline.dev/build"]) == build
    out = tmp_path / "pipeline.yaml"
    out.write_text(converted.stdout)
    rendered = podline("render", str(out))
    assert rendered.returncode == 0, rendered.stderr
    pod = next(d for d in yaml.safe_load_all(rendered.stdout) if d["kind"] == "Pod")
    step = next(c for c in pod["spec"]["containers"] if c["name"] == "step-tag")
    assert "echo v1.2.0 01234567 ${HOME}" in json.dumps(step)
