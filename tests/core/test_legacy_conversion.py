"""Drone 0.8 files, converted as the Drone 2 server converts them: drone/drone ``trigger/trigger.go`` calls
drone/drone-yaml ``converter.ConvertString``, whose ``converter/legacy/internal/config.go`` is the rule book
(cited per case). The cases are written here."""

from __future__ import annotations

from typing import Any

import hypothesis
import pytest
import yaml
from hypothesis import strategies as st
from podline.core import compiling, converting, dronefiles, errors, legacy, policies

POLICY = policies.Policy()


def convert(text: str, link: str = "") -> list[dict[str, Any]]:
    [(_, doc)] = dronefiles.load(text)[:1]
    return legacy.convert(doc, link=link)


BASIC = """\
workspace:
  base: /go
  path: src/github.com/octocat/hello

clone:
  git:
    image: plugins/git:next
    depth: 50

pipeline:
  build:
    image: golang:1.10
    pull: true
    environment:
      - GO111MODULE=on
      - CGO_ENABLED=0
    commands:
      - go build
      - go test
  publish:
    image: plugins/docker
    repo: octocat/hello
    tags: [ latest, 1.10 ]
    secrets: [ docker_username, { source: docker_pass, target: docker_password } ]
    volumes:
      - /var/run/docker.sock:/var/run/docker.sock
    when:
      event: [ push, tag, deployment ]
      environment: production
      branch: master

services:
  database:
    image: mysql:5
    environment:
      MYSQL_DATABASE: test
      MYSQL_ALLOW_EMPTY_PASSWORD: yes

branches: [ master, develop ]
"""


def test_matches_as_drone_does() -> None:
    """converter/legacy/match.go: a line that is exactly `pipeline:` (trailing blanks allowed)."""
    assert legacy.matches(BASIC)
    assert legacy.matches("kind: x\npipeline:   \n")
    assert not legacy.matches("kind: pipeline\nsteps: []\n")
    assert not legacy.matches("  pipeline:\n")
    assert not legacy.matches("pipeline: x\n")


def test_a_basic_file() -> None:
    [pipeline] = convert(BASIC)
    assert pipeline["kind"] == "pipeline" and pipeline["name"] == "default"
    assert pipeline["platform"] == {"os": "linux", "arch": "amd64"}  # pretty/pipeline.go printPlatformDefault
    assert pipeline["workspace"] == {"base": "/go", "path": "src/github.com/octocat/hello"}
    assert pipeline["clone"] == {"disable": True}  # clone containers replace the implicit clone
    clone, build, publish = pipeline["steps"]
    assert clone == {
        "name": "git",
        "image": "plugins/git:next",
        "pull": "if-not-exists",
        "settings": {"depth": 50},
    }
    assert build == {
        "name": "build",
        "image": "golang:1.10",
        "pull": "always",  # config.go toPullPolicy: true → always
        "commands": ["go build", "go test"],
        "environment": {"GO111MODULE": "on", "CGO_ENABLED": "0"},  # a K=V list (internal/slice_map.go)
    }
    hexname = b"/var/run/docker.sock".hex()
    assert publish == {
        "name": "publish",
        "image": "plugins/docker",
        "pull": "if-not-exists",
        "settings": {"repo": "octocat/hello", "tags": ["latest", 1.1]},  # every other key: a setting (Vargs)
        "environment": {
            "DOCKER_USERNAME": {"from_secret": "docker_username"},
            "DOCKER_PASSWORD": {"from_secret": "docker_pass"},
        },
        "volumes": [{"name": hexname, "path": "/var/run/docker.sock"}],
        "when": {
            "target": {"include": ["production"]},
            "event": {"include": ["push", "tag", "promote"]},  # toPromote
            "branch": {"include": ["master"]},
        },
    }
    assert pipeline["services"] == [
        {"name": "database", "image": "mysql:5", "pull": "if-not-exists",
         "environment": {"MYSQL_DATABASE": "test", "MYSQL_ALLOW_EMPTY_PASSWORD": "yes"}},
    ]  # fmt: skip
    assert pipeline["volumes"] == [{"name": hexname, "host": {"path": "/var/run/docker.sock"}}]
    # include-only branches: pull requests, the branches' refs, and tags since a step runs on tags
    assert pipeline["trigger"] == {
        "ref": {
            "include": [
                "refs/pull/**", "refs/pull-requests/**", "refs/merge-requests/**",
                "refs/heads/master", "refs/heads/develop", "refs/tags/**",
            ]
        }
    }  # fmt: skip


def test_the_workspace_comes_from_the_repository_link() -> None:
    """config.go toWorkspacePath: base /drone, path src/<host>/<path>, when the file names none."""
    [pipeline] = convert("pipeline:\n  a:\n    image: x\n", link="https://github.com/octocat/hello-world")
    assert pipeline["workspace"] == {"base": "/drone", "path": "src/github.com/octocat/hello-world"}
    [pipeline] = convert("workspace:\n  path: .\npipeline:\n  a:\n    image: x\n")
    assert "workspace" not in pipeline  # `.` is no path


def test_branches_with_excludes_stay_branch_conditions() -> None:
    [pipeline] = convert("pipeline:\n  a:\n    image: x\nbranches:\n  exclude: [ wip/* ]\n")
    assert pipeline["trigger"] == {"branch": {"exclude": ["wip/*"]}}


def test_repeated_step_names_get_their_index() -> None:
    """config.go: a name seen before becomes name_<index> (a clone container and a step both `git`)."""
    [pipeline] = convert("clone:\n  git:\n    image: plugins/git\npipeline:\n  git:\n    image: alpine/git\n")
    assert [s["name"] for s in pipeline["steps"]] == ["git", "git_1"]


def test_top_level_secrets_become_secret_documents() -> None:
    """config.go toSecrets: sorted by name; vault driver options name path and key."""
    text = """\
pipeline:
  a:
    image: x
secrets:
  token:
    path: secret/data/ci
  aws:
    driver: vault
    driver_opts: {path: secret/aws, key: access}
"""
    _, aws, token = convert(text)
    assert aws == {"kind": "secret", "name": "aws", "get": {"path": "secret/aws", "name": "access"}}
    assert token == {"kind": "secret", "name": "token", "get": {"path": "secret/data/ci"}}


def test_a_matrix_gives_one_pipeline_per_axis() -> None:
    """matrix/matrix.go calc (every combination) and config.go: steps kept per when.matrix, ${VAR} replaced."""
    text = """\
pipeline:
  test:
    image: golang:${GO_VERSION}
    commands:
      - go test -tags ${TAGS}
  only-new:
    image: x
    when:
      matrix:
        GO_VERSION: 1.11
matrix:
  GO_VERSION: [ 1.10, 1.11 ]
  TAGS: [ a, b ]
"""
    pipelines = convert(text)
    assert [p["name"] for p in pipelines] == ["matrix-1", "matrix-2", "matrix-3", "matrix-4"]
    images = [[s["image"] for s in p["steps"]] for p in pipelines]
    assert images == [["golang:1.10"], ["golang:1.10"], ["golang:1.11", "x"], ["golang:1.11", "x"]]
    assert [p["steps"][0]["commands"] for p in pipelines] == [
        ["go test -tags a"], ["go test -tags b"], ["go test -tags a"], ["go test -tags b"],
    ]  # fmt: skip
    assert all("when" not in s for p in pipelines for s in p["steps"])  # the printer leaves when.matrix out


def test_a_matrix_include_list() -> None:
    text = "pipeline:\n  a:\n    image: redis:${REDIS}\nmatrix:\n  include:\n    - { REDIS: 6 }\n    - { REDIS: 7 }\n"
    assert [p["steps"][0]["image"] for p in convert(text)] == ["redis:6", "redis:7"]


def test_a_matrix_stops_at_drones_limit() -> None:
    """matrix.go: at most limitAxis (25) + 2 axes are calculated."""
    values = ", ".join(str(n) for n in range(40))
    assert len(convert(f"pipeline:\n  a:\n    image: x\nmatrix:\n  N: [ {values} ]\n")) == 27


def test_merge_keys_are_expanded() -> None:
    """config.go hasMergeKeys/expandMergeKeys: 0.8 files with `<<:` still convert."""
    text = "x: &base\n  image: golang:1.22\npipeline:\n  a:\n    <<: *base\n    commands: [ ls ]\n"
    [pipeline] = convert(text)
    assert pipeline["steps"][0]["image"] == "golang:1.22"


def test_a_converted_file_compiles_and_convert_says_it_converted() -> None:
    converted = converting.convert(BASIC, path=".drone.yml", build={"remote": "https://github.com/o/r.git"})
    assert converted.notes[0] == ".drone.yml: a Drone 0.8 file, converted as the Drone server converts it"
    [pipeline] = converted.pipelines
    assert pipeline["metadata"]["name"] == "default"
    plan = compiling.compile_spec(
        pipeline["spec"],
        compiling.RunContext("ci", "default", "uid", 1),
        policies.Policy(allow_host_volumes=True),
    )
    assert [c.step for c in plan.containers] == ["database", "git", "build", "publish"]
    assert plan.workspace == "/go/src/github.com/octocat/hello"


def test_a_file_that_is_not_a_mapping_is_refused() -> None:
    with pytest.raises(errors.InvalidDroneFile) as caught:
        converting.convert("- pipeline:\npipeline:\n", path="f.yml")
    assert caught.value.lines()[0].startswith("f.yml")


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=10,
)
CONTAINER = st.dictionaries(
    st.sampled_from(
        ["image", "commands", "environment", "secrets", "volumes", "when", "pull", "detach", "x"]
    ),
    JSON,
    max_size=5,
)


@hypothesis.given(
    st.dictionaries(st.text(max_size=5), CONTAINER | JSON, max_size=3),
    st.dictionaries(
        st.sampled_from(["workspace", "branches", "matrix", "secrets", "services", "clone"]), JSON, max_size=3
    ),
)
def test_any_0_8_shape_converts_or_is_refused_in_one_line(
    pipeline: dict[str, Any], rest: dict[str, Any]
) -> None:
    """Whatever a 0.8 file holds, conversion gives documents (which validation then judges) or one clear
    error: never a traceback."""
    text = yaml.safe_dump({"pipeline": pipeline, **rest})
    try:
        converted = converting.convert(text, path=".drone.yml")
    except errors.InvalidDroneFile as exc:
        assert all(line.startswith(".drone.yml") for line in exc.lines())
        return
    for resource in converted.pipelines:
        try:
            compiling.compile_spec(resource["spec"], compiling.RunContext("ci", "p", "uid", 1), POLICY)
        except errors.PodlineError as exc:
            assert all(line.startswith("spec") for line in exc.lines())
