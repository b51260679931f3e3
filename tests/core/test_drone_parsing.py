"""Drone files read as Drone reads them: ``dronefiles`` (text), ``leniency`` (fields), ``converting`` (files).

Each rule cites the Drone source it follows (drone/drone-yaml at the commit drone/drone 2.0.4 pins,
drone/runner-go, drone-runners/drone-runner-docker and drone-runner-kube); the cases are written here.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
from typing import Any

import hypothesis
import pytest
import yaml
from hypothesis import strategies as st
from podline.core import (
    compiling,
    converting,
    dronefiles,
    errors,
    leniency,
    plans,
    pods,
    policies,
    scheduling,
    validation,
)

POLICY = policies.Policy()
CONTEXT = compiling.RunContext("ci", "p", "uid", 1)


def read(text: str) -> tuple[list[dict[str, Any]], list[str]]:
    """Specs and warnings of each ``kind: pipeline`` document of a Drone file."""
    converted = converting.convert(text, path="f.yml")
    assert not converted.problems, converted.problems
    return [p["spec"] for p in converted.pipelines], list(converted.notes)


def compile_raw(raw: dict[str, Any]) -> plans.RunPlan:
    return compiling.compile_spec(raw, CONTEXT, POLICY)


# --- Documents: drone-yaml yaml/parse.go ParseRaw (and runner-go manifest/parse.go) ---------------------------


def test_documents_split_at_lines_starting_with_three_dashes_and_end_at_three_dots() -> None:
    text = "kind: pipeline\nname: a\n--- # b\nkind: pipeline\nname: b\n...\nkind: pipeline\nname: c\n"
    assert [d["name"] for _, d in dronefiles.load(text)] == ["a", "b"]


def test_anchors_of_a_document_are_its_own_and_merge_keys_work() -> None:
    text = """\
x-base: &base
  image: golang:1.22
  pull: if-not-exists
kind: pipeline
steps:
- <<: *base
  name: test
  commands: [go test ./...]
- <<: *base
  name: build
  image: golang:1.21
"""
    [spec], notes = read(text)
    assert spec["steps"] == [
        {"image": "golang:1.22", "pull": "if-not-exists", "name": "test", "commands": ["go test ./..."]},
        {"image": "golang:1.21", "pull": "if-not-exists", "name": "build"},
    ]
    assert notes == ["f.yml[0].x-base: ignored, as Drone ignores it (a key that only holds YAML anchors)"]


def test_a_yaml_error_names_the_line_in_the_whole_file() -> None:
    text = "kind: pipeline\nname: a\n---\nkind: pipeline\nsteps: [\n"
    with pytest.raises(errors.InvalidDroneFile) as caught:
        converting.convert(text, path="f.yml")
    assert caught.value.lines()[0].startswith("f.yml:6:")


def test_a_tab_at_a_line_end_is_read_as_go_yaml_reads_it() -> None:
    """Go's YAML scanner skips a trailing tab; PyYAML's does not (issue 20: one real file)."""
    [spec], _ = read("kind: pipeline\nsteps:\n- name: a\t\n  image: alpine\t\n  commands: [ls]\n")
    assert spec["steps"] == [{"name": "a", "image": "alpine", "commands": ["ls"]}]


# --- Literal values: yaml.v2 decode.go keeps a scalar's text for a string field ------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("on", True), ("off", False), ("y", True), ("N", False), ("yes", True), ("~", None), ("null", None),
        ("1.10", 1.1), ("0755", 0o755), ("0x1F", 31), ("0b101", 5), ("1_000", 1000), ("08", 8.0),
        ("12:30", "12:30"), ("2020-01-01", "2020-01-01"), ("1e3", 1000.0), ("-.inf", -math.inf),
        ("v1.10", "v1.10"), ("", None),
    ],
)  # fmt: skip
def test_plain_scalars_resolve_as_go_yaml_v2_resolves_them(text: str, value: Any) -> None:
    """yaml.v2 resolve.go (buildkite/yaml): YAML 1.1 booleans y/n/on/off, Go's ParseInt base 0, no
    sexagesimal numbers and no timestamps (PyYAML has both)."""
    assert dronefiles.go_resolve(text) == value
    assert type(dronefiles.go_resolve(text)) is type(value)


def test_string_fields_keep_the_text_and_settings_get_yaml_values() -> None:
    """A string field (environment values: runner-go manifest/env.go unmarshals into a string) keeps the
    text; settings are interface{} (manifest/param.go), so YAML 1.1 resolves them."""
    text = """\
kind: pipeline
name: n
steps:
- name: y
  image: golang:1.10
  environment:
    GO111MODULE: on
    GOPROXY: off
    GO_VERSION: 1.10
    UMASK: 0755
  commands: [go version]
- name: publish
  image: plugins/docker
  settings:
    debug: on
    tags: [1.10, latest]
"""
    [spec], notes = read(text)
    assert spec["name"] == "n"
    assert spec["steps"][0]["environment"] == {
        "GO111MODULE": "on", "GOPROXY": "off", "GO_VERSION": "1.10", "UMASK": "0755",
    }  # fmt: skip
    assert spec["steps"][0]["name"] == "y"
    assert spec["steps"][1]["settings"] == {"debug": True, "tags": [1.1, "latest"]}
    assert notes == []


def test_numbers_where_drone_reads_text_are_their_text() -> None:
    """Container.Command is []string: `command: [--max, 6]` is ["--max", "6"] (drone-yaml pipeline.go)."""
    [spec], _ = read("kind: pipeline\nsteps:\n- name: a\n  image: x\n  command: [--max, 6, 1.50]\n")
    assert spec["steps"][0]["command"] == ["--max", "6", "1.50"]


def test_cpu_as_a_decimal_is_a_quantity() -> None:
    [spec], _ = read("kind: pipeline\nsteps:\n- name: a\n  image: x\n  resources: {limits: {cpu: 0.5}}\n")
    assert spec["steps"][0]["resources"] == {"limits": {"cpu": "0.5"}}
    assert dict(compile_raw(spec).containers[0].limits) == {"cpu": "0.5"}  # half a CPU, a valid quantity


TRICKY = ["on", "off", "y", "n", "Y", "N", "yes", "no", "~", "null", "1.10", "0755", "1e3", "0x1F", "true",
          " lead", "trail ", "12:30", ".inf", "-", "#x", "a: b", "*x", "&y", "!t", "'q'", '"dq"', "@at"]  # fmt: skip


@pytest.mark.parametrize("value", TRICKY)
def test_convert_output_means_the_same_to_a_yaml_1_1_reader(value: str) -> None:
    """kubectl reads YAML with sigs.k8s.io/yaml (yaml.v2 rules): every string must come back a string."""
    spec = {
        "kind": "pipeline",
        "name": value,
        "steps": [{"name": value, "image": "x", "environment": {"V": value}}],
    }
    text = converting.dump([{"spec": spec}])
    assert yaml.safe_load(text) == {"spec": spec}  # PyYAML: YAML 1.1 too
    for scalar in _plain_scalars(text):
        assert dronefiles.go_resolve(scalar) == scalar or scalar in ("kind", "name", "steps"), scalar


def _plain_scalars(text: str) -> list[str]:
    out = []
    for token in yaml.scan(text):
        if isinstance(token, yaml.ScalarToken) and token.plain:
            out.append(token.value)
    return out


@hypothesis.given(st.text(alphabet=st.sampled_from(list("onyNfalse01.7x:-# '\"\t~")), max_size=8))
def test_any_text_round_trips_through_convert(value: str) -> None:
    """Read as Drone reads it (quoted: exactly the text), printed, read back by a YAML 1.1 reader: the same."""
    source = f"kind: pipeline\nsteps:\n- name: a\n  image: x\n  environment:\n    V: {_quoted(value)}\n"
    [spec], _ = read(source)
    assert spec["steps"][0]["environment"]["V"] == value
    printed = converting.dump([{"spec": spec}])
    assert yaml.safe_load(printed)["spec"]["steps"][0]["environment"]["V"] == value
    for scalar in _plain_scalars(printed):
        resolved = dronefiles.go_resolve(scalar)
        assert resolved == scalar or scalar in ("kind", "pipeline", "steps", "name", "image", "environment")


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\t", "\\t") + '"'


@pytest.mark.parametrize(
    ("field", "value", "text", "warned"),
    [
        ("environment", True, "true", True),
        ("environment", 1.1, "1.1", True),
        ("environment", 8080, "8080", False),
    ],
)
def test_a_pipeline_applied_directly_gets_a_warning_to_quote(
    field: str, value: Any, text: str, warned: bool
) -> None:
    """kubectl already made `on` a boolean and `1.10` a float: the text Drone would have used is lost, so the
    warning names the field and says to quote it."""
    reading = leniency.read({"steps": [{"name": "a", "image": "x", field: {"V": value}}]})
    assert reading.spec["steps"][0][field] == {"V": text}
    assert bool(reading.warnings) is warned
    if warned:
        [warning] = reading.warnings
        assert warning.startswith(f"spec.steps[0].{field}.V: ") and "quote it" in warning


def test_a_boolean_name_is_refused_by_the_schema_but_convert_quotes_it() -> None:
    """`name: n` printed bare is a boolean to kubectl (issue 20); convert prints 'n'."""
    converted = converting.convert("kind: pipeline\nname: n\nsteps:\n- {name: n, image: x}\n", path="f.yml")
    printed = converting.dump(converted.pipelines)
    assert "name: 'n'" in printed
    assert yaml.safe_load(printed)["spec"]["steps"][0]["name"] == "n"


# --- Lenient like Drone: a non-strict yaml.Unmarshal (drone-yaml parse.go parseRaw) ---------------------------


@pytest.mark.parametrize(
    ("raw", "warning"),
    [
        (
            {"trigger": {"actions": ["opened"]}},
            'spec.trigger.actions: unknown field, ignored as Drone ignores it; did you mean "action"?',
        ),
        (
            {"when": {"branch": "main"}},
            "spec.when: ignored, Drone ignores a pipeline-level when: a pipeline's conditions are trigger",
        ),
        (
            {"x-templates": {"a": 1}},
            "spec.x-templates: ignored, as Drone ignores it (a key that only holds YAML anchors)",
        ),
        ({"stepz": []}, 'spec.stepz: unknown field, ignored as Drone ignores it; did you mean "steps"?'),
        ({"frobnicate": 1}, "spec.frobnicate: unknown field, ignored as Drone ignores it"),
    ],
)
def test_unknown_pipeline_fields_are_dropped_with_a_warning(raw: dict[str, Any], warning: str) -> None:
    reading = leniency.read({"steps": [{"name": "a", "image": "x"}], **raw})
    assert {k: v for k, v in reading.spec.items() if v} == {"steps": [{"name": "a", "image": "x"}]}
    assert reading.warnings == (warning,)


def test_unknown_step_fields_and_0_8_secrets_are_dropped_with_a_warning() -> None:
    reading = leniency.read(
        {
            "steps": [
                {"name": "a", "image": "x", "imagee": "y", "secrets": ["token"], "when": {"evnet": "push"}}
            ]
        }
    )
    assert reading.spec == {"steps": [{"name": "a", "image": "x", "when": {}}]}
    assert reading.warnings == (
        'spec.steps[0].imagee: unknown field, ignored as Drone ignores it; did you mean "image"?',
        (
            "spec.steps[0].secrets: ignored, a Drone 0.8 field, ignored by Drone 1 and later: name secrets with "
            "{from_secret: name} in environment or settings"
        ),
        'spec.steps[0].when.evnet: unknown field, ignored as Drone ignores it; did you mean "event"?',
    )


def test_ignored_fields_reach_the_plan_and_the_status_warnings() -> None:
    """What the operator writes to status.warnings is the plan's warnings (scheduling.decide)."""
    raw = {
        "steps": [{"name": "a", "image": "busybox:1.36", "commands": ["true"], "secrets": ["x"]}],
        "x-a": 1,
    }
    plan = compile_raw(raw)
    assert [w.split(":")[0] for w in plan.warnings] == ["spec.steps[0].secrets", "spec.x-a"]
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    snap = scheduling.Snapshot(plan=plan, pod=None, now=now, generation=1, run=plan.run)
    assert scheduling.decide(snap).status.warnings == list(plan.warnings)


def test_ignored_fields_are_one_warning_event_per_run() -> None:
    """Loud like Kubernetes: `kubectl describe pipeline` shows them once, not on every look at the run."""
    plan = compile_raw({"steps": [{"name": "a", "image": "busybox:1.36", "commands": ["true"]}], "when": {}})
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    first = scheduling.decide(scheduling.Snapshot(plan=plan, pod=None, now=now, generation=1, run=plan.run))
    [event] = [e for e in first.events if e.reason == "Warnings"]
    assert (event.type, event.message) == ("Warning", plan.warnings[0])
    status = first.status.model_dump(mode="json", by_alias=True, exclude_none=True)
    again = scheduling.decide(
        scheduling.Snapshot(plan=plan, pod=None, now=now, generation=1, run=plan.run, status=status)
    )
    assert [e for e in again.events if e.reason == "Warnings"] == []


def test_null_is_the_zero_value() -> None:
    """Go leaves a field unset for null: `services: null` is no services, `when: null` no condition."""
    plan = compile_raw(
        {"steps": [{"name": "a", "image": "x", "when": None, "commands": ["true"]}], "services": None}
    )
    assert [c.step for c in plan.containers] == ["a"]


def test_steps_null_is_refused_as_no_steps() -> None:
    with pytest.raises(errors.InvalidPipeline) as caught:
        compile_raw({"steps": None})
    assert caught.value.lines() == ["spec.steps: List should have at least 1 item after validation, not 0"]


# --- Values Drone treats as the default ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pull", "read_as", "warned"),
    [
        ("always", "always", False), ("Always", "always", False), ("IF-NOT-EXISTS", "if-not-exists", False),
        ("never", "never", False), ("default", "default", False), (True, "default", True),
        ("true", "default", True), ("sometimes", "default", True), (1, "default", True),
    ],
)  # fmt: skip
def test_pull_values_are_read_as_drone_reads_them(pull: Any, read_as: str, warned: bool) -> None:
    """drone-runner-docker (and -kube) engine/compiler/util.go convertPullPolicy: lower-cased; always,
    if-not-exists, never; anything else is the default policy."""
    reading = leniency.read({"steps": [{"name": "a", "image": "x", "pull": pull}]})
    assert reading.spec["steps"][0]["pull"] == read_as
    assert bool(reading.warnings) is warned


def test_user_root_is_user_id_0_and_other_names_are_refused() -> None:
    """Docker runs `user: root` as root (drone-runner-docker resource/pipeline.go: User is a string passed
    to Docker); Kubernetes takes ids only."""
    plan = compile_raw({"steps": [{"name": "a", "image": "x", "user": "root", "commands": ["id"]}]})
    assert plan.containers[0].user == 0
    with pytest.raises(errors.InvalidPipeline) as caught:
        compile_raw({"steps": [{"name": "a", "image": "x", "user": "nobody"}]})
    assert caught.value.lines()[0].startswith("spec.steps[0].user: ")


def test_empty_commands_run_the_images_own_command() -> None:
    """drone-runner-docker engine/compiler/compiler.go: a script only `if len(src.Commands) > 0`."""
    plan = compile_raw({"steps": [{"name": "a", "image": "x", "commands": []}]})
    assert plan.containers[0].command is None and plan.containers[0].args is None
    assert plan.warnings == (
        "spec.steps[0].commands: empty; the image's own entrypoint and command run, as in Drone",
    )


# --- depends_on: [clone] (drone-yaml linter/linter.go checkPipeline: "clone" is a step unless disabled) ------


def test_depends_on_clone_waits_for_the_clone_step_when_there_is_one() -> None:
    raw = {"steps": [{"name": "a", "image": "x", "commands": ["ls"], "depends_on": ["clone"]}]}
    context = compiling.RunContext("ci", "p", "uid", 1, build=_build(remote="https://git.example/r.git"))
    plan = compiling.compile_spec(raw, context, POLICY)
    clone, step = plan.containers
    assert step.depends_on == (clone.name,)


def test_depends_on_clone_is_dropped_when_the_run_does_not_clone() -> None:
    plan = compile_raw({"steps": [{"name": "a", "image": "x", "commands": ["ls"], "depends_on": ["clone"]},
                                  {"name": "b", "image": "x", "commands": ["ls"], "depends_on": ["a"]}]})  # fmt: skip
    assert [c.depends_on for c in plan.containers] == [(), (plan.containers[0].name,)]


def test_depends_on_clone_with_clone_disabled_is_refused_as_in_drone() -> None:
    with pytest.raises(errors.InvalidPipeline) as caught:
        compile_raw(
            {"clone": {"disable": True}, "steps": [{"name": "a", "image": "x", "depends_on": ["clone"]}]}
        )
    assert caught.value.lines() == [
        'spec.steps[0].depends_on: unknown step "clone": clone.disable leaves no clone step'
    ]


def _build(**fields: Any) -> Any:
    from podline.core import models

    return models.BuildInfo(**fields)


# --- Service ports (drone-yaml yaml/port.go: a number or {port, host, protocol}) -------------------------------


def test_service_ports_become_container_ports() -> None:
    raw = {
        "services": [
            {"name": "db", "image": "mariadb:11", "ports": [3306]},
            {
                "name": "dns",
                "image": "coredns/coredns:1.11",
                "ports": [{"port": 53, "protocol": "udp"}, 8080],
            },
        ],
        "steps": [{"name": "a", "image": "x", "commands": ["ls"]}],
    }
    plan = compile_raw(raw)
    pod = pods.build_pod(plan)
    ports = {c["name"]: c.get("ports") for c in pod["spec"]["containers"]}
    assert ports[plan.containers[0].name] == [{"containerPort": 3306, "protocol": "TCP"}]
    assert ports[plan.containers[1].name] == [
        {"containerPort": 53, "protocol": "UDP"},
        {"containerPort": 8080, "protocol": "TCP"},
    ]


def test_two_services_on_one_port_are_refused_naming_both() -> None:
    raw = {
        "services": [
            {"name": "db", "image": "mariadb:11", "ports": [3306]},
            {"name": "db2", "image": "mysql:8", "ports": [{"port": 3306}]},
        ],
        "steps": [{"name": "a", "image": "x"}],
    }
    with pytest.raises(errors.InvalidPipeline) as caught:
        compile_raw(raw)
    assert caught.value.lines() == [
        (
            'spec.services[1].ports[0]: "db2" and "db" (services[0]) both listen on 3306/TCP: the containers of '
            "the run's pod share one network; give one another port"
        )
    ]


def test_a_host_port_is_docker_only() -> None:
    plan = compile_raw(
        {
            "services": [{"name": "db", "image": "x", "ports": [{"port": 80, "host": 8080}]}],
            "steps": [{"name": "a", "image": "x"}],
        }
    )
    assert plan.warnings == (
        "spec.services[0].ports[0].host: Docker-only (publishes on the host), ignored on Kubernetes",
    )


@pytest.mark.parametrize("port", [0, 70000, True, "http", {"port": 80, "protocol": "sctp"}])
def test_bad_ports_are_refused_naming_the_field(port: Any) -> None:
    with pytest.raises(errors.InvalidPipeline) as caught:
        compile_raw({"steps": [{"name": "a", "image": "x", "ports": [port]}]})
    assert all(line.startswith("spec.steps[0].ports[0]") for line in caught.value.lines()), (
        caught.value.lines()
    )


# --- Other runners' pipelines (drone-runner-kube engine/resource/parser.go match: kind and type) --------------


@pytest.mark.parametrize("kind", ["exec", "ssh", "digitalocean", "macstadium", "vm"])
def test_pipelines_of_other_runners_are_refused_by_type(kind: str) -> None:
    with pytest.raises(errors.InvalidPipeline) as caught:
        compile_raw({"type": kind, "steps": [{"name": "a", "commands": ["make"]}]})
    assert caught.value.lines() == [
        (
            f'spec.type: "{kind}" pipelines are not run: podline runs Drone\'s docker and kubernetes pipelines as '
            f"pods (this one needs Drone's {kind} runner)"
        )
    ]


def test_convert_converts_the_others_and_names_the_refused_pipeline() -> None:
    text = "kind: pipeline\ntype: exec\nname: host\nsteps:\n- {name: a, commands: [ls]}\n---\nkind: pipeline\nname: ok\nsteps:\n- {name: a, image: x}\n"
    converted = converting.convert(text, path="f.yml")
    assert [p["metadata"]["name"] for p in converted.pipelines] == ["ok"]
    assert converted.problems == (
        (
            'f.yml[0].type: "exec" pipelines are not run: podline runs Drone\'s docker and kubernetes pipelines as '
            "pods (this one needs Drone's exec runner)"
        ),
    )


# --- A real-world shape: several documents, anchors, plugins with secrets, services with ports -------------


REAL_WORLD = """\
---
kind: pipeline
type: docker
name: test

x-go: &go
  image: golang:1.10
  environment:
    GO111MODULE: on
    GOPROXY: off
    CGO_ENABLED: 0

steps:
- name: test
  <<: *go
  commands:
  - go test ./...
  secrets: [codecov_token]
- name: publish
  image: plugins/docker
  pull: true
  settings:
    repo: octocat/app
    tags: [latest, 1.10]
    username:
      from_secret: docker_username
    password:
      from_secret: docker_password
  when:
    event: [push, tag]

services:
- name: redis
  image: redis:7
  ports: [6379]

trigger:
  actions: [opened]
  branch: [main]

---
kind: secret
name: docker_username
get: {path: secret/docker, name: username}
...
kind: pipeline
name: never-read
"""


def test_a_real_world_file() -> None:
    converted = converting.convert(REAL_WORLD, path=".drone.yml")
    # a Vault-style kind: secret has no Kubernetes form: refused, naming the document (docs/builds.md)
    [problem] = converted.problems
    assert problem.startswith(
        '.drone.yml[1] (kind: secret "docker_username"): get.path "secret/docker" is a Vault'
    )
    [pipeline] = converted.pipelines
    spec = pipeline["spec"]
    assert pipeline["metadata"]["name"] == "test"
    test, publish = spec["steps"]
    assert test["environment"] == {"GO111MODULE": "on", "GOPROXY": "off", "CGO_ENABLED": "0"}
    assert publish["pull"] == "default"
    assert publish["settings"]["tags"] == ["latest", 1.1]
    assert publish["settings"]["password"] == {"from_secret": "docker_password"}
    assert spec["services"] == [{"name": "redis", "image": "redis:7", "ports": [6379]}]
    assert spec["trigger"] == {"branch": ["main"]}
    assert converted.notes == (
        ".drone.yml[0].x-go: ignored, as Drone ignores it (a key that only holds YAML anchors)",
        (
            ".drone.yml[0].steps[0].secrets: ignored, a Drone 0.8 field, ignored by Drone 1 and later: name "
            "secrets with {from_secret: name} in environment or settings"
        ),
        (
            ".drone.yml[0].steps[1].pull: 'true' is not a pull policy; Drone treats it as the default (one of: "
            "always, if-not-exists, never, default)"
        ),
        '.drone.yml[0].trigger.actions: unknown field, ignored as Drone ignores it; did you mean "action"?',
    )
    # plugins/docker runs privileged, as in Drone (test_privileged_images.py): the operator must allow it
    allowing = dataclasses.replace(POLICY, allow_privileged=True)
    plan = compiling.compile_spec(spec, CONTEXT, allowing)
    assert plan.warnings == ()  # what convert dropped is gone; the operator has nothing more to say
    assert [c.privileged for c in plan.steps] == [False, True]
    validation.check(validation.parse(spec), allowing)


# --- image_pull_secrets (drone-yaml pipeline.go PullSecrets: names of Drone secrets) ---------------------------


def test_a_drone_secret_name_in_image_pull_secrets_is_refused_saying_what_it_names_here() -> None:
    with pytest.raises(errors.InvalidPipeline) as caught:
        compile_raw({"image_pull_secrets": ["dockerconfigjson_gar"], "steps": [{"name": "a", "image": "x"}]})
    [line] = caught.value.lines()
    assert line.startswith('spec.image_pull_secrets[0]: "dockerconfigjson_gar" is not a valid Secret name: ')
    assert "in Drone it names a Drone secret" in line and "Kubernetes Secret" in line


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
FIELDS = st.sampled_from(
    ["steps", "services", "trigger", "when", "environment", "pull", "name", "x-a", "type"]
)


@hypothesis.given(st.dictionaries(FIELDS | st.text(max_size=6), JSON, max_size=5), st.dictionaries(
    st.sampled_from(["name", "image", "pull", "when", "environment", "ports", "user", "commands", "typo"]),
    JSON, max_size=6))  # fmt: skip
def test_reading_any_json_never_fails_and_validation_says_the_rest(
    spec: dict[str, Any], step: dict[str, Any]
) -> None:
    """Reading is total: whatever kubectl can store, leniency reads it, and validation reports one problem
    per line or accepts it, never a traceback."""
    raw = {**spec, "steps": [step]}
    reading = leniency.read(raw)
    assert all(isinstance(w, str) and w.startswith("spec.") for w in reading.warnings)
    try:
        validation.check(validation.parse(reading.spec), POLICY)
    except errors.PodlineError as exc:
        assert all(line.startswith("spec") for line in exc.lines())


def test_a_null_step_is_refused_naming_it() -> None:
    """drone-runner-docker engine/linter/linter.go: "linter: nil step" (a Jsonnet `if` without `else` in a
    list makes one)."""
    with pytest.raises(errors.InvalidPipeline) as caught:
        compile_raw({"steps": [{"name": "a", "image": "x"}, None]})
    assert caught.value.lines() == ["spec.steps[1]: is null; must be an object"]


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        ({"host_aliases": [{"ip": "10.0.0.1", "hostnames": ["a"]}]}, "spec.host_aliases"),
        ({"node_name": "n1"}, "spec.node_name"),
        (
            {"steps": [{"name": "a", "image": "x", "devices": [{"name": "d", "path": "/dev/x"}]}]},
            "spec.steps[0].devices",
        ),
    ],
)
def test_runner_fields_podline_does_not_support_are_named_as_such(raw: dict[str, Any], path: str) -> None:
    """drone-runner-kube engine/resource/pipeline.go (node_name, host_aliases) and drone-runner-docker's
    (devices) are real Drone fields: not "unknown", and no "did you mean"."""
    reading = leniency.read({"steps": [{"name": "a", "image": "x"}], **raw})
    assert reading.warnings == (f"{path}: a field of Drone's runners that podline does not support; ignored",)


def test_two_pipelines_of_one_name_are_refused_as_drone_refuses_them() -> None:
    """drone-yaml linter/config.go checkPipelines: ErrDuplicatePipelineName; names compared as the
    Kubernetes names they become (`Go 1.21` and `go-1.21` would overwrite each other)."""
    text = "kind: pipeline\nname: Go 1.21\nsteps: [{name: a, image: x}]\n---\nkind: pipeline\nname: go-1.21\nsteps: [{name: a, image: x}]\n"
    converted = converting.convert(text, path="f.yml")
    assert [p["metadata"]["name"] for p in converted.pipelines] == ["go-1-21"]
    assert converted.problems == (
        (
            'f.yml[1].name: the Pipeline name "go-1-21" is also f.yml[0]\'s; Drone refuses two pipelines of one '
            "name too: rename one"
        ),
    )


def test_numbers_in_commands_applied_directly_are_their_digits() -> None:
    """kubectl sends `command: [--max, 6]` with the number 6: the CRD takes an integer there (int-or-string)
    and reading makes it the text Drone would have (drone-yaml pipeline.go: Command []string)."""
    reading = leniency.read(
        {"steps": [{"name": "a", "image": "x", "command": ["--max", 6], "commands": [1]}]}
    )
    assert reading.spec["steps"][0]["command"] == ["--max", "6"]
    assert reading.spec["steps"][0]["commands"] == ["1"]
    assert reading.warnings == ()


# --- Jsonnet's external variables (drone/drone plugin/converter/jsonnet/jsonnet.go mapBuild, mapRepo) --------


def test_every_drone_external_variable_is_set_as_text() -> None:
    from podline.core import scripting

    names = scripting.ext_vars({"event": "tag", "branch": "main", "commit": "abc", "repo": "octo/app",
                                "remote": "https://git.example/octo/app.git", "target": "prod"}, config=".drone.jsonnet")  # fmt: skip
    assert all(isinstance(v, str) for v in names.values())
    assert {k for k in names if k.startswith("build.")} == {
        f"build.{n}" for n in ("event", "action", "environment", "link", "branch", "source", "before", "after",
                               "target", "ref", "commit", "title", "message", "source_repo", "author_login",
                               "author_name", "author_email", "author_avatar", "sender")
    }  # fmt: skip
    assert (names["build.branch"], names["build.target"]) == ("main", "main")  # both v.Target in Drone
    assert (names["build.commit"], names["build.after"]) == ("abc", "abc")
    assert names["build.environment"] == "prod" and names["build.message"] == ""
    assert (names["repo.slug"], names["repo.namespace"], names["repo.name"]) == ("octo/app", "octo", "app")
    assert names["repo.link"] == "https://git.example/octo/app" and names["repo.trusted"] == "false"
    assert names["repo.config"] == ".drone.jsonnet"
