"""Every validation rule of a Pipeline spec: its exact message, its exact field path, all at once.

``validation.parse`` turns pydantic's errors into field paths; ``validation.check`` adds the rules across
fields and the operator's policy. Both raise ``errors.InvalidPipeline`` listing *every* problem.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from podline.core import compiling, errors, policies, validation

POLICY = policies.Policy()
ARCHES = "386, amd64, arm, arm64, loong64, mips, mips64, mips64le, mipsle, ppc64, ppc64le, riscv64, s390x"


def step(name: str = "build", image: str = "alpine:3.19", **fields: Any) -> dict[str, Any]:
    return {"name": name, "image": image, **fields}


def spec(*steps: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"steps": list(steps) or [step()], **fields}


def problems(raw: Any, policy: policies.Policy = POLICY) -> list[str]:
    """The problem lines of an invalid spec (fails the test if the spec is valid)."""
    with pytest.raises(errors.InvalidPipeline) as caught:
        validation.check(validation.parse(raw), policy)
    return caught.value.lines()


def warnings(raw: Any, policy: policies.Policy = POLICY) -> list[str]:
    return validation.check(validation.parse(raw), policy)


# --- Valid specs pass, with no warnings ----------------------------------------------------------------------

VALID = [
    pytest.param(spec(step("build", "golang:1.12", commands=["go build", "go test"])), id="seed-go-build"),
    pytest.param(
        spec(
            step("test", "redis:7", commands=["redis-cli -h redis ping"]), services=[step("redis", "redis:7")]
        ),
        id="service-and-step",
    ),
    pytest.param(
        spec(
            step("a"),
            step("b", depends_on=["a"]),
            step("c", depends_on=["a"]),
            step("d", depends_on=["b", "c"]),
        ),
        id="dag-diamond",
    ),
    pytest.param(
        spec(
            step(
                "publish",
                "plugins/docker",
                settings={
                    "repo": "x/y",
                    "tags": ["1", "latest"],
                    "password": {"from_secret": "docker/password"},
                },
            )
        ),
        id="plugin-settings",
    ),
    pytest.param(
        spec(
            step(
                environment={"A": "1", "N": 2, "B": True, "E": None, "S": {"from_secret": "token"}},
                user=1000,
                group="1000",
                working_dir="/src",
                resources={
                    "limits": {"cpu": 1000, "memory": "512MiB"},
                    "requests": {"cpu": "250m", "memory": 1024},
                },
                volumes=[{"name": "cache", "path": "/cache"}],
            ),
            volumes=[{"name": "cache", "temp": {}}],
            workspace={"path": "/go/src/app"},
            image_pull_secrets=["dockerconfig", "registry.example.com"],
            environment={"GOFLAGS": "-mod=vendor"},
        ),
        id="everything-plain",
    ),
    pytest.param(spec(step(entrypoint=["/bin/app"], command=["--flag"])), id="entrypoint-and-command"),
    pytest.param(
        spec(
            step(pull="always"),
            step("b", pull="if-not-exists"),
            step("c", pull="never"),
            step("d", pull="default"),
            step("e", pull=""),
        ),
        id="every-pull-value",
    ),
    pytest.param(spec(step(user=0)), id="root-user-id"),
    pytest.param(
        spec(step(), workspace={"base": "/go", "path": "src/github.com/x/y"}), id="workspace-base-and-path"
    ),
    pytest.param(
        spec(
            step(volumes=[{"name": "c", "path": "/a"}, {"name": "c", "path": "/b"}]),
            volumes=[{"name": "c", "temp": {}}],
        ),
        id="one-volume-twice-at-two-paths",
    ),
    pytest.param(
        spec(step(), metadata={"annotations": {"team": "x"}, "labels": {"app": "y"}}), id="pod-metadata"
    ),
    pytest.param(spec(step(), platform={"os": "linux", "arch": "arm64"}), id="platform-linux-arm64"),
    pytest.param(spec(step(), platform={"os": "Linux", "arch": "x86_64"}), id="platform-drone-spellings"),
    pytest.param(spec(step(), platform={"arch": "arm", "variant": "v6"}), id="platform-arm-v6"),
    pytest.param(
        spec(step(), platform={"os": "", "arch": "", "variant": "", "version": "1809"}), id="platform-empty"
    ),
    pytest.param(
        spec(
            step(),
            platform={"os": "linux", "arch": "aarch64"},
            node_selector={"kubernetes.io/os": "linux", "kubernetes.io/arch": "arm64", "pool": "ci"},
        ),
        id="platform-and-node-selector-agree",
    ),
    pytest.param(
        spec(step(), node_selector={"kubernetes.io/arch": "s390x"}, platform={"variant": "v1"}),
        id="node-selector-arch-with-platform-variant",
    ),
]


@pytest.mark.parametrize("raw", VALID)
def test_valid_spec_passes_without_warnings(raw: dict[str, Any]) -> None:
    assert warnings(raw) == []


# --- One rule at a time: exact path and message ---------------------------------------------------------------

CASES = [
    # Shape: pydantic errors become Kubernetes-style paths.
    ("spec-not-object", None, ["spec: must be an object (the body of a Drone pipeline)"]),
    ("spec-is-list", [step()], ["spec: must be an object (the body of a Drone pipeline)"]),
    ("steps-missing", {}, ["spec.steps: required field is missing"]),
    ("steps-empty", {"steps": []}, ["spec.steps: List should have at least 1 item after validation, not 0"]),
    ("steps-not-list", {"steps": step()}, ["spec.steps: Input should be a valid list"]),
    ("step-name-missing", spec({"image": "alpine"}), ["spec.steps[0].name: required field is missing"]),
    ("step-name-empty", spec(step("")), ["spec.steps[0].name: String should have at least 1 character"]),
    ("step-image-missing", spec({"name": "a"}), ["spec.steps[0].image: required field is missing"]),
    (
        "step-image-empty",
        spec(step(image="")),
        ["spec.steps[0].image: String should have at least 1 character"],
    ),
    (
        "commands-string",
        spec(step(commands="go build")),
        ["spec.steps[0].commands: Input should be a valid list"],
    ),
    (
        "commands-item-number",
        spec(step(commands=["ok", 1])),
        ["spec.steps[0].commands[1]: Input should be a valid string"],
    ),
    (
        "detach-not-bool",
        spec(step(detach="maybe")),
        ["spec.steps[0].detach: Input should be a valid boolean, unable to interpret input"],
    ),
    ("unknown-step-field", spec(step(bogus=1)), ["spec.steps[0].bogus: unknown field"]),
    ("unknown-spec-field", spec(step(), bogus=1), ["spec.bogus: unknown field"]),
    (
        "unknown-nested-field",
        spec(step(when={"statuss": ["failure"]})),
        ["spec.steps[0].when.statuss: unknown field"],
    ),
    (
        "pull-unknown",
        spec(step(pull="sometimes")),
        [
            "spec.steps[0].pull: unsupported value; expected 'always', 'if-not-exists', 'never', 'default' or ''"
        ],
    ),
    (
        "pull-wrong-case",
        spec(step(pull="Always")),
        [
            "spec.steps[0].pull: unsupported value; expected 'always', 'if-not-exists', 'never', 'default' or ''"
        ],
    ),
    (
        "failure-unknown",
        spec(step(failure="retry")),
        ["spec.steps[0].failure: unsupported value; expected 'ignore', 'fail', 'always' or ''"],
    ),
    (
        "when-status-number",
        spec(step(when={"status": [5]})),
        ["spec.steps[0].when.status.include[0]: Input should be a valid string"],
    ),
    (
        "env-value-list",
        spec(step(environment={"X": [1]})),
        ["spec.steps[0].environment.X: must be a string, a number, a boolean or {from_secret: name}"],
    ),
    (
        "env-value-map",
        spec(step(), environment={"X": {"a": 1}}),
        ["spec.environment.X: must be a string, a number, a boolean or {from_secret: name}"],
    ),
    # Keys that happen to spell a type name are keys like any other.
    (
        "env-key-named-like-a-type",
        spec(step(environment={"str": [1], "int": [2], "FromSecret": [3]})),
        [
            "spec.steps[0].environment.str: must be a string, a number, a boolean or {from_secret: name}",
            "spec.steps[0].environment.int: must be a string, a number, a boolean or {from_secret: name}",
            "spec.steps[0].environment.FromSecret: must be a string, a number, a boolean or {from_secret: name}",
        ],
    ),
    (
        "from-secret-not-string",
        spec(step(environment={"T": {"from_secret": 5}})),
        ["spec.steps[0].environment.T.from_secret: Input should be a valid string"],
    ),
    (
        "user-float",
        spec(step(user=1.5)),
        ["spec.steps[0].user: must be an integer or a string, not a number"],
    ),
    (
        "user-bool",
        spec(step(user=True)),
        ["spec.steps[0].user: must be an integer or a string, not a boolean"],
    ),
    (
        "cpu-list",
        spec(step(resources={"limits": {"cpu": [1]}})),
        ["spec.steps[0].resources.limits.cpu: must be an integer or a string, not a list"],
    ),
    (
        "size-limit-object",
        spec(step(), volumes=[{"name": "t", "temp": {"size_limit": {}}}]),
        ["spec.volumes[0].temp.size_limit: must be an integer or a string, not an object"],
    ),
    (
        "toleration-operator",
        spec(step(), tolerations=[{"operator": "In"}]),
        ["spec.tolerations[0].operator: unsupported value; expected 'Exists' or 'Equal'"],
    ),
    # Names.
    (
        "duplicate-step",
        spec(step("a"), step("a")),
        ['spec.steps[1].name: duplicate name "a" (also steps[0])'],
    ),
    (
        "duplicate-step-thrice",
        spec(step("a"), step("b"), step("a"), step("a")),
        [
            'spec.steps[2].name: duplicate name "a" (also steps[0])',
            'spec.steps[3].name: duplicate name "a" (also steps[0])',
        ],
    ),
    (
        "duplicate-service",
        spec(step(), services=[step("redis"), step("redis")]),
        ['spec.services[1].name: duplicate name "redis" (also services[0])'],
    ),
    (
        "names-collide-after-mapping",
        spec(step("Build"), step("build")),
        [
            'spec.steps[1].name: name "build" maps to container "step-build", as does "Build" (steps[0]); rename one'
        ],
    ),
    (
        "names-collide-punctuation",
        spec(step("unit tests"), step("unit_tests")),
        [
            'spec.steps[1].name: name "unit_tests" maps to container "step-unit-tests", as does "unit tests" (steps[0]); rename one'
        ],
    ),
    (
        "step-named-like-a-service",
        spec(step("redis"), step("test", depends_on=["redis"]), services=[step("redis")]),
        ['spec.steps[0].name: "redis" is also the name of a service (services[0])'],
    ),
    # Dependencies.
    (
        "depends-unknown",
        spec(step("test"), step("b", depends_on=["tset"])),
        ['spec.steps[1].depends_on: unknown step "tset"'],
    ),
    (
        "depends-self",
        spec(step("a", depends_on=["a"])),
        ['spec.steps[0].depends_on: step "a" depends on itself'],
    ),
    (
        "depends-service",
        spec(step("a", depends_on=["redis"]), services=[step("redis")]),
        ['spec.steps[0].depends_on: "redis" is a service; services start first and are not waited for'],
    ),
    (
        "cycle-of-two",
        spec(step("a", depends_on=["b"]), step("b", depends_on=["a"])),
        ["spec.steps[0].depends_on: dependency cycle: a -> b -> a"],
    ),
    (
        "cycle-of-three-behind-a-root",
        spec(
            step("root"),
            step("x", depends_on=["root", "z"]),
            step("y", depends_on=["x"]),
            step("z", depends_on=["y"]),
        ),
        ["spec.steps[1].depends_on: dependency cycle: x -> z -> y -> x"],
    ),
    # Containers.
    (
        "commands-and-entrypoint",
        spec(step(commands=["make"], entrypoint=["/bin/bash"])),
        ["spec.steps[0].entrypoint: cannot be combined with commands: commands run through the shell"],
    ),
    (
        "commands-and-command",
        spec(step(commands=["make"], command=["--help"])),
        ["spec.steps[0].command: cannot be combined with commands; use one or the other"],
    ),
    (
        "commands-empty",
        spec(step(commands=[])),
        ["spec.steps[0].commands: is empty; remove it or add a command"],
    ),
    (
        "user-name",
        spec(step(user="root")),
        ['spec.steps[0].user: must be a numeric id on Kubernetes, not "root"'],
    ),
    (
        "group-negative",
        spec(step(group=-1)),
        ['spec.steps[0].group: must be a numeric id on Kubernetes, not "-1"'],
    ),
    (
        "service-user-name",
        spec(step(), services=[step("db", user="postgres")]),
        ['spec.services[0].user: must be a numeric id on Kubernetes, not "postgres"'],
    ),
    (
        "working-dir-relative",
        spec(step(working_dir="src")),
        ["spec.steps[0].working_dir: must be an absolute path"],
    ),
    (
        "memory-not-quantity",
        spec(step(resources={"limits": {"memory": "lots"}})),
        ['spec.steps[0].resources.limits.memory: "lots" is not a quantity (examples: 500m, 2, 512Mi, 1G)'],
    ),
    (
        "memory-unknown-unit",
        spec(step(resources={"requests": {"memory": "5Zi"}})),
        [
            'spec.steps[0].resources.requests.memory: "5Zi" has an unknown unit "Zi" (use m, k, M, G, Ki, Mi, Gi, …)'
        ],
    ),
    (
        "cpu-negative",
        spec(step(resources={"requests": {"cpu": -5}})),
        ["spec.steps[0].resources.requests.cpu: must not be negative"],
    ),
    (
        "request-over-limit",
        spec(step(resources={"requests": {"memory": "2GiB"}, "limits": {"memory": "1Gi"}})),
        ["spec.steps[0].resources.requests.memory: 2Gi is more than the limit 1Gi"],
    ),
    (
        "cpu-request-over-limit-drone-units",
        spec(step(resources={"requests": {"cpu": 2000}, "limits": {"cpu": "1"}})),
        ["spec.steps[0].resources.requests.cpu: 2000m is more than the limit 1"],
    ),
    # Secrets.
    (
        "pull-secret-name",
        spec(step(), image_pull_secrets=["Docker_Config"]),
        [
            (
                'spec.image_pull_secrets[0]: "Docker_Config" is not a valid Secret name: in Drone it names a Drone secret '
                "holding a Docker config.json; here it names a Kubernetes Secret in the Pipeline's namespace "
                "(lowercase letters, digits, '-' and '.'): store the config.json in one and name that"
            )
        ],
    ),
    (
        "pull-secret-namespaced",
        spec(step(), image_pull_secrets=["other-ns/dockerconfig"]),
        [
            (
                'spec.image_pull_secrets[0]: "other-ns/dockerconfig" is not a valid Secret name: in Drone it names a Drone secret '
                "holding a Docker config.json; here it names a Kubernetes Secret in the Pipeline's namespace "
                "(lowercase letters, digits, '-' and '.'): store the config.json in one and name that"
            )
        ],
    ),
    (
        "pull-secret-twice",
        spec(step(), image_pull_secrets=["a", "a"]),
        ["spec.image_pull_secrets: lists a Secret more than once"],
    ),
    (
        "from-secret-bad-secret",
        spec(step(environment={"T": {"from_secret": "My_Secrets/token"}})),
        ['spec.steps[0].environment.T.from_secret: "My_Secrets" is not a valid Secret name'],
    ),
    (
        "from-secret-bad-key",
        spec(step(), environment={"T": {"from_secret": "my token"}}),
        ['spec.environment.T.from_secret: "my token" is not a valid Secret key'],
    ),
    (
        "from-secret-empty-key",
        spec(step(environment={"T": {"from_secret": "vault/"}})),
        ['spec.steps[0].environment.T.from_secret: "" is not a valid Secret key'],
    ),
    (
        "from-secret-empty",
        spec(step(environment={"T": {"from_secret": ""}})),
        ["spec.steps[0].environment.T.from_secret: must be a string naming a secret"],
    ),
    (
        "setting-from-secret-number",
        spec(step(settings={"password": {"from_secret": 5}})),
        ["spec.steps[0].settings.password.from_secret: must be a string naming a secret"],
    ),
    (
        "setting-from-secret-extra-key",
        spec(step(settings={"password": {"from_secret": "a", "b": 1}})),
        ["spec.steps[0].settings.password.from_secret: must be a string naming a secret"],
    ),
    (
        "setting-from-secret-bad-secret",
        spec(step(settings={"password": {"from_secret": "A/b"}})),
        ['spec.steps[0].settings.password.from_secret: "A" is not a valid Secret name'],
    ),
    (
        "service-from-secret-bad-key",
        spec(step(), services=[step("db", environment={"P": {"from_secret": "a b"}})]),
        ['spec.services[0].environment.P.from_secret: "a b" is not a valid Secret key'],
    ),
    # Environment variable names.
    (
        "env-name-with-equals",
        spec(step(environment={"A=B": "x"})),
        ["spec.steps[0].environment.A=B: is not a valid environment variable name"],
    ),
    (
        "env-name-control-char",
        spec(step(), environment={"A\x01": "x"}),
        ["spec.environment.A\x01: is not a valid environment variable name"],
    ),
    (
        "env-name-blank",
        spec(step(), environment={" ": "x"}),
        ["spec.environment. : is not a valid environment variable name"],
    ),
    (
        "env-name-empty-step",
        spec(step(environment={"": "x"})),
        ["spec.steps[0].environment: names must not be empty"],
    ),
    (
        "setting-name-with-equals",
        spec(step(settings={"a=b": "x"})),
        ["spec.steps[0].settings.a=b: is not a valid environment variable name"],
    ),
    # Volumes and paths.
    (
        "mount-unknown-volume",
        spec(step(volumes=[{"name": "cache", "path": "/cache"}])),
        ['spec.steps[0].volumes[0].name: unknown volume "cache"'],
    ),
    (
        "mount-relative-path",
        spec(step(volumes=[{"name": "c", "path": "cache"}]), volumes=[{"name": "c", "temp": {}}]),
        ["spec.steps[0].volumes[0].path: must be an absolute path"],
    ),
    (
        "mount-path-missing",
        spec(step(volumes=[{"name": "c"}]), volumes=[{"name": "c", "temp": {}}]),
        ["spec.steps[0].volumes[0].path: required field is missing"],
    ),
    (
        "mount-same-path-twice",
        spec(
            step(volumes=[{"name": "a", "path": "/x"}, {"name": "b", "path": "/x/"}]),
            volumes=[{"name": "a", "temp": {}}, {"name": "b", "temp": {}}],
        ),
        ['spec.steps[0].volumes[1].path: "/x" is mounted twice (also volumes[0])'],
    ),
    (
        "mount-over-workspace",
        spec(step(volumes=[{"name": "a", "path": "/drone/src"}]), volumes=[{"name": "a", "temp": {}}]),
        ['spec.steps[0].volumes[0].path: "/drone/src" is the workspace; mount the volume elsewhere'],
    ),
    (
        "mount-over-custom-workspace",
        spec(
            step(volumes=[{"name": "a", "path": "/go/src/app"}]),
            volumes=[{"name": "a", "temp": {}}],
            workspace={"base": "/go", "path": "src/app"},
        ),
        ['spec.steps[0].volumes[0].path: "/go/src/app" is the workspace; mount the volume elsewhere'],
    ),
    (
        "volume-duplicate",
        spec(step(), volumes=[{"name": "c", "temp": {}}, {"name": "c", "temp": {}}]),
        ['spec.volumes[1].name: duplicate volume "c"'],
    ),
    (
        "volume-names-collide-after-mapping",
        spec(step(), volumes=[{"name": "Cache", "temp": {}}, {"name": "cache", "temp": {}}]),
        [
            'spec.volumes[1].name: name "cache" maps to pod volume "v-cache", as does "Cache" (volumes[0]); rename one'
        ],
    ),
    (
        "volume-without-kind",
        spec(step(), volumes=[{"name": "c"}]),
        ["spec.volumes[0]: must have exactly one of temp, host, claim, config_map"],
    ),
    (
        "volume-two-kinds",
        spec(step(), volumes=[{"name": "c", "temp": {}, "claim": {"name": "pvc"}}]),
        ["spec.volumes[0]: must have exactly one of temp, host, claim, config_map"],
    ),
    (
        "workspace-relative",
        spec(step(), workspace={"path": "src"}),
        ["spec.workspace.path: must be an absolute path (or set workspace.base)"],
    ),
    (
        "workspace-base-relative",
        spec(step(), workspace={"base": "go", "path": "src"}),
        ["spec.workspace.base: must be an absolute path"],
    ),
    (
        "size-limit-not-quantity",
        spec(step(), volumes=[{"name": "t", "temp": {"size_limit": "lots"}}]),
        ['spec.volumes[0].temp.size_limit: "lots" is not a quantity (examples: 500m, 2, 512Mi, 1G)'],
    ),
    (
        "claim-name",
        spec(step(), volumes=[{"name": "c", "claim": {"name": "Build_Cache"}}]),
        ['spec.volumes[0].claim.name: "Build_Cache" is not a valid PersistentVolumeClaim name'],
    ),
    (
        "config-map-name",
        spec(step(), volumes=[{"name": "c", "config_map": {"name": ""}}]),
        ['spec.volumes[0].config_map.name: "" is not a valid ConfigMap name'],
    ),
    (
        "config-map-mode",
        spec(step(), volumes=[{"name": "c", "config_map": {"name": "cfg", "default_mode": 1000}}]),
        ["spec.volumes[0].config_map.default_mode: must be a file mode between 0 and 0777 (511)"],
    ),
    # Ids and names the apiserver would refuse.
    ("user-too-large", spec(step(user=2**31)), ["spec.steps[0].user: must be at most 2147483647"]),
    (
        "env-name-not-ascii",
        spec(step(environment={"GRÜN": "x"})),
        ["spec.steps[0].environment.GRÜN: is not a valid environment variable name"],
    ),
    (
        "label-key",
        spec(step(), metadata={"labels": {"team name": "x"}}),
        [
            (
                "spec.metadata.labels.team name: must be up to 63 letters, digits, '-', '_' or '.', starting and ending with "
                "a letter or digit"
            )
        ],
    ),
    (
        "label-value",
        spec(step(), metadata={"labels": {"team": "a b"}}),
        [
            (
                "spec.metadata.labels.team: value \"a b\" must be empty or up to 63 letters, digits, '-', '_' or '.', "
                "starting and ending with a letter or digit"
            )
        ],
    ),
    (
        "annotation-key-prefix",
        spec(step(), metadata={"annotations": {"Example.COM/owner": "any value at all"}}),
        [
            'spec.metadata.annotations.Example.COM/owner: prefix "Example.COM" must be a lower-case DNS subdomain'
        ],
    ),
    (
        "node-selector-value",
        spec(step(), node_selector={"pool": "ci-"}),
        [
            (
                "spec.node_selector.pool: value \"ci-\" must be empty or up to 63 letters, digits, '-', '_' or '.', "
                "starting and ending with a letter or digit"
            )
        ],
    ),
    (
        "toleration-exists-with-value",
        spec(step(), tolerations=[{"key": "k", "operator": "Exists", "value": "v"}]),
        ['spec.tolerations[0].value: must be empty when operator is "Exists"'],
    ),
    (
        "toleration-no-key-equal",
        spec(step(), tolerations=[{"operator": "Equal", "value": "v"}]),
        ['spec.tolerations[0].operator: must be "Exists" when key is empty (to tolerate every taint)'],
    ),
    (
        "toleration-seconds-without-no-execute",
        spec(step(), tolerations=[{"key": "k", "operator": "Exists", "toleration_seconds": 5}]),
        ['spec.tolerations[0].toleration_seconds: needs effect "NoExecute"'],
    ),
    (
        "toleration-key",
        spec(step(), tolerations=[{"key": "bad key", "operator": "Exists"}]),
        [
            (
                "spec.tolerations[0].key: must be up to 63 letters, digits, '-', '_' or '.', starting and ending with a "
                "letter or digit"
            )
        ],
    ),
    # The platform: where the pod runs and which manifest of an image is read; nodes only run linux here.
    (
        "platform-os-windows",
        spec(step(), platform={"os": "windows", "arch": "amd64"}),
        [
            (
                'spec.platform.os: "windows" is not supported: steps run under podline\'s entrypoint, a Linux '
                "binary; use linux"
            )
        ],
    ),
    (
        "platform-arch-unknown",
        spec(step(), platform={"arch": "amd"}),
        [
            (
                'spec.platform.arch: unknown architecture "amd"; known: '
                + ARCHES
                + " (or x86_64, x86-64, aarch64, i386, i686, armhf, armel)"
            )
        ],
    ),
    (
        "platform-arch-against-node-selector",
        spec(
            step(), platform={"os": "linux", "arch": "arm64"}, node_selector={"kubernetes.io/arch": "amd64"}
        ),
        [
            (
                'spec.platform.arch: "arm64" disagrees with node_selector kubernetes.io/arch "amd64": the pod would run '
                "on amd64 nodes and its images' commands be read for arm64; make them agree or drop one"
            )
        ],
    ),
    (
        "platform-arch-alias-against-node-selector",
        spec(step(), platform={"arch": "aarch64"}, node_selector={"kubernetes.io/arch": "arm"}),
        [
            (
                'spec.platform.arch: "aarch64" disagrees with node_selector kubernetes.io/arch "arm": the pod would run '
                "on arm nodes and its images' commands be read for aarch64; make them agree or drop one"
            )
        ],
    ),
    (
        "platform-variant-without-arch",
        spec(step(), platform={"variant": "v7"}),
        ["spec.platform.variant: needs an architecture (platform.arch or node_selector kubernetes.io/arch)"],
    ),
    (
        "node-selector-os-windows",
        spec(step(), node_selector={"kubernetes.io/os": "windows"}),
        [
            (
                'spec.node_selector.kubernetes.io/os: "windows" is not supported: steps run under podline\'s '
                "entrypoint, a Linux binary; use linux"
            )
        ],
    ),
    (
        "node-selector-drone-spellings",
        spec(step(), node_selector={"kubernetes.io/os": "Linux", "kubernetes.io/arch": "x86_64"}),
        [
            'spec.node_selector.kubernetes.io/os: no node has "Linux"; Kubernetes calls it "linux"',
            'spec.node_selector.kubernetes.io/arch: no node has "x86_64"; Kubernetes calls it "amd64"',
        ],
    ),
    (
        "node-selector-arch-unknown",
        spec(step(), node_selector={"kubernetes.io/arch": "sparc"}, platform={"arch": "amd64"}),
        ['spec.node_selector.kubernetes.io/arch: unknown architecture "sparc"; nodes have one of: ' + ARCHES],
    ),
    (
        "node-selector-arch-not-a-label-value",
        spec(step(), node_selector={"kubernetes.io/arch": "arm 64"}),
        [
            (
                'spec.node_selector.kubernetes.io/arch: value "arm 64" must be empty or up to 63 letters, digits, '
                "'-', '_' or '.', starting and ending with a letter or digit"
            )
        ],
    ),
    # What belongs to the operator.
    (
        "reserved-pod-annotation",
        spec(step(), metadata={"annotations": {"started.podline.dev/step-build": "{}"}}),
        ["spec.metadata.annotations.started.podline.dev/step-build: is reserved for the operator"],
    ),
    (
        "reserved-pod-annotation-plain",
        spec(step(), metadata={"annotations": {"podline.dev/stopped": "Cancelled"}}),
        ["spec.metadata.annotations.podline.dev/stopped: is reserved for the operator"],
    ),
    (
        "reserved-pod-label",
        spec(step(), metadata={"labels": {"podline.dev/run": "g9"}}),
        ["spec.metadata.labels.podline.dev/run: is reserved for the operator"],
    ),
]


@pytest.mark.parametrize(("raw", "expected"), [pytest.param(raw, exp, id=i) for i, raw, exp in CASES])
def test_problem_is_reported_with_its_path(raw: Any, expected: list[str]) -> None:
    assert problems(raw) == expected


# --- Policy: what the operator's configuration forbids --------------------------------------------------------

POLICY_CASES = [
    (
        "privileged",
        spec(step(privileged=True)),
        {"allow_privileged": True},
        ["spec.steps[0].privileged: privileged steps are not allowed by the operator configuration"],
    ),
    (
        "privileged-service",
        spec(step(), services=[step("dind", "docker:dind", privileged=True)]),
        {"allow_privileged": True},
        ["spec.services[0].privileged: privileged steps are not allowed by the operator configuration"],
    ),
    (
        "host-volume",
        spec(step(), volumes=[{"name": "sock", "host": {"path": "/var/run/docker.sock"}}]),
        {"allow_host_volumes": True},
        ["spec.volumes[0].host: host volumes are not allowed by the operator configuration"],
    ),
    (
        "service-account",
        spec(step(), service_account_name="deployer"),
        {"allowed_service_accounts": frozenset({"deployer"})},
        ['spec.service_account_name: ServiceAccount "deployer" is not allowed by the operator configuration'],
    ),
    (
        "service-account-any",
        spec(step(), service_account_name="deployer"),
        {"allowed_service_accounts": frozenset({"*"})},
        ['spec.service_account_name: ServiceAccount "deployer" is not allowed by the operator configuration'],
    ),
]


@pytest.mark.parametrize(
    ("raw", "allowing", "expected"), [pytest.param(r, a, e, id=i) for i, r, a, e in POLICY_CASES]
)
def test_policy_forbids_then_allows(
    raw: dict[str, Any], allowing: dict[str, Any], expected: list[str]
) -> None:
    with pytest.raises(errors.PolicyViolation) as caught:
        validation.check(validation.parse(raw), POLICY)
    assert caught.value.lines() == expected
    assert warnings(raw, dataclasses.replace(POLICY, **allowing)) == []


def test_service_account_not_in_the_allowed_list() -> None:
    policy = dataclasses.replace(POLICY, allowed_service_accounts=frozenset({"builder"}))
    assert problems(spec(step(), service_account_name="admin"), policy) == [
        'spec.service_account_name: ServiceAccount "admin" is not allowed by the operator configuration'
    ]


def test_host_volume_allowed_must_be_absolute() -> None:
    policy = dataclasses.replace(POLICY, allow_host_volumes=True)
    raw = spec(step(), volumes=[{"name": "h", "host": {"path": "var/cache"}}])
    assert problems(raw, policy) == ["spec.volumes[0].host.path: must be an absolute path"]


def test_policy_and_spec_problems_together_are_invalid_pipeline_not_policy_violation() -> None:
    raw = spec(step("a", privileged=True), step("a"))
    with pytest.raises(errors.InvalidPipeline) as caught:
        validation.check(validation.parse(raw), POLICY)
    assert not isinstance(caught.value, errors.PolicyViolation)
    assert caught.value.lines() == [
        'spec.steps[1].name: duplicate name "a" (also steps[0])',
        "spec.steps[0].privileged: privileged steps are not allowed by the operator configuration",
    ]


# --- Sizes ------------------------------------------------------------------------------------------------------


def test_a_thousand_steps_exceed_max_steps() -> None:
    raw = spec(*(step(f"s{i}") for i in range(1000)))
    assert problems(raw) == [
        "spec.steps: 1000 steps and services exceed the limit of 200 (one pod holds them all)"
    ]


def test_services_count_towards_max_steps() -> None:
    raw = spec(*(step(f"s{i}") for i in range(150)), services=[step(f"v{i}") for i in range(51)])
    assert problems(raw) == [
        "spec.steps: 201 steps and services exceed the limit of 200 (one pod holds them all)"
    ]


MIB = 1024 * 1024


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(spec(step(), environment={"BIG": "x" * MIB}), id="pipeline-environment"),
        pytest.param(spec(step(environment={"BIG": "x" * MIB})), id="step-environment"),
        pytest.param(spec(step(settings={"big": "x" * MIB})), id="plugin-setting"),
        pytest.param(spec(step(settings={"big": ["x" * 1024] * 1024})), id="plugin-setting-list"),
    ],
)
def test_a_mebibyte_of_environment_exceeds_max_env_bytes(raw: dict[str, Any]) -> None:
    (line,) = problems(raw)
    assert line.startswith("spec.environment: the pod's environment would be ")
    assert line.endswith(" bytes, over the limit of 262144")
    assert int(line.split("would be ")[1].split(" ")[0]) > MIB


def test_environment_is_counted_once_per_container() -> None:
    # 100 KiB shared by three containers is 300 KiB in the pod.
    raw = spec(step("a"), step("b"), services=[step("db")], environment={"X": "x" * 100 * 1024})
    (line,) = problems(raw)
    assert (
        line
        == f"spec.environment: the pod's environment would be {3 * (1 + 100 * 1024)} bytes, over the limit of 262144"
    )


# --- Dependency graphs of any size: iterative, never recursive ---------------------------------------------------

BIG = dataclasses.replace(POLICY, max_steps=5000, max_env_bytes=10**9)


def test_a_long_chain_of_dependencies_is_valid() -> None:
    steps = [step("s0000")] + [step(f"s{i:04}", depends_on=[f"s{i - 1:04}"]) for i in range(1, 3000)]
    assert warnings(spec(*steps), BIG) == []


def test_a_cycle_through_a_long_chain_is_found_without_recursion() -> None:
    steps = [step("s0000", depends_on=["s2999"])] + [
        step(f"s{i:04}", depends_on=[f"s{i - 1:04}"]) for i in range(1, 3000)
    ]
    (line,) = problems(spec(*steps), BIG)
    names = line.removeprefix("spec.steps[0].depends_on: dependency cycle: ").split(" -> ")
    assert names[0] == names[-1] == "s0000"
    assert names[1:3] == ["s2999", "s2998"]
    assert len(names) == 3001


def test_a_thousand_step_chain_within_limits() -> None:
    policy = dataclasses.replace(POLICY, max_steps=1000)
    steps = [step("s0")] + [step(f"s{i}", depends_on=[f"s{i - 1}"]) for i in range(1, 1000)]
    plan = compiling.compile_spec(spec(*steps), compiling.RunContext("ns", "p", "uid", 1), policy)
    assert len(plan.steps) == 1000
    assert plan.steps[-1].depends_on == ("step-s998",)


# --- All problems at once --------------------------------------------------------------------------------------


def test_every_problem_is_reported_at_once() -> None:
    raw = spec(
        step(
            "build",
            "Golang",
            commands=["go build"],
            entrypoint=["/bin/sh"],
            user="root",
            privileged=True,
            volumes=[{"name": "cache", "path": "cache"}],
            environment={"T": {"from_secret": "Bad_Secret/x"}},
        ),
        step("build", "alpine", depends_on=["tset"]),
        step("loop", depends_on=["loop"]),
        image_pull_secrets=["Bad_Name"],
        service_account_name="admin",
        workspace={"path": "relative"},
    )
    lines = problems(raw)
    assert lines[:3] == [
        'spec.steps[1].name: duplicate name "build" (also steps[0])',
        'spec.steps[1].depends_on: unknown step "tset"',
        'spec.steps[2].depends_on: step "loop" depends on itself',
    ]
    assert lines[3].startswith('spec.steps[0].image: invalid reference "Golang"')
    assert lines[4:] == [
        "spec.steps[0].entrypoint: cannot be combined with commands: commands run through the shell",
        "spec.steps[0].privileged: privileged steps are not allowed by the operator configuration",
        'spec.steps[0].user: must be a numeric id on Kubernetes, not "root"',
        (
            'spec.image_pull_secrets[0]: "Bad_Name" is not a valid Secret name: in Drone it names a Drone secret '
            "holding a Docker config.json; here it names a Kubernetes Secret in the Pipeline's namespace "
            "(lowercase letters, digits, '-' and '.'): store the config.json in one and name that"
        ),
        'spec.steps[0].environment.T.from_secret: "Bad_Secret" is not a valid Secret name',
        'spec.steps[0].volumes[0].name: unknown volume "cache"',
        "spec.steps[0].volumes[0].path: must be an absolute path",
        "spec.workspace.path: must be an absolute path (or set workspace.base)",
        'spec.service_account_name: ServiceAccount "admin" is not allowed by the operator configuration',
    ]


def test_every_shape_problem_is_reported_at_once() -> None:
    raw = spec(step(commands="x", pull="sometimes", bogus=1), {"image": "alpine"}, bogus=2)
    assert problems(raw) == [
        "spec.steps[0].pull: unsupported value; expected 'always', 'if-not-exists', 'never', 'default' or ''",
        "spec.steps[0].commands: Input should be a valid list",
        "spec.steps[0].bogus: unknown field",
        "spec.steps[1].name: required field is missing",
        "spec.bogus: unknown field",
    ]


def test_the_error_message_joins_all_problems_and_keeps_them_structured() -> None:
    with pytest.raises(errors.InvalidPipeline) as caught:
        validation.check(validation.parse(spec(step("a"), step("a", user="x"))), POLICY)
    assert [(p.path, p.message) for p in caught.value.problems] == [
        ("spec.steps[1].name", 'duplicate name "a" (also steps[0])'),
        ("spec.steps[1].user", 'must be a numeric id on Kubernetes, not "x"'),
    ]
    assert str(caught.value) == "; ".join(caught.value.lines())


def test_compile_spec_validates_first() -> None:
    with pytest.raises(errors.InvalidPipeline, match=r'spec\.steps\[1\]\.depends_on: unknown step "tset"'):
        compiling.compile_spec(
            spec(step("test"), step("b", depends_on=["tset"])),
            compiling.RunContext("ns", "p", "uid", 1),
            POLICY,
        )


# --- Paths never carry pydantic's internal names -------------------------------------------------------------------

WRONG_VALUES = [None, True, 1.5, 7, "text", [1], {"a": 1}]
STEP_FIELDS = [
    "name",
    "image",
    "pull",
    "commands",
    "entrypoint",
    "command",
    "environment",
    "settings",
    "depends_on",
    "when",
    "failure",
    "detach",
    "privileged",
    "user",
    "group",
    "working_dir",
    "volumes",
    "resources",
    "shell",
    "cpu",
    "mem_limit",
    "shm_size",
]


@pytest.mark.parametrize("field", STEP_FIELDS)
def test_wrong_types_are_reported_at_the_field_itself(field: str) -> None:
    for value in WRONG_VALUES:
        try:
            validation.check(validation.parse(spec(step(**{field: value}))), POLICY)
        except errors.InvalidPipeline as exc:
            for problem in exc.problems:
                assert problem.path.startswith(f"spec.steps[0].{field}"), problem
                tail = problem.path.removeprefix(f"spec.steps[0].{field}")
                assert not any(
                    tag in tail for tag in ("function", "str", "int", "FromSecret", "is-instance")
                ), problem


# --- Warnings: accepted, but worth telling ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "field", ["network_mode", "extra_hosts", "dns", "dns_search", "cpu", "mem_limit", "shm_size"]
)
def test_docker_only_fields_warn(field: str) -> None:
    value = (
        ["x"]
        if field in ("extra_hosts", "dns", "dns_search")
        else ("host" if field == "network_mode" else 100)
    )
    assert warnings(spec(step(), services=[step("db", **{field: value})])) == [
        f"spec.services[0].{field}: Docker-only field, ignored on Kubernetes"
    ]


@pytest.mark.parametrize("kind", ["docker", "kubernetes", ""])
def test_pipeline_type_is_informational(kind: str) -> None:
    assert warnings(spec(step(), type=kind, kind="pipeline", name="default")) == []


def test_warnings_land_in_the_plan() -> None:
    plan = compiling.compile_spec(
        spec(step(network_mode="host"), step("b", dns=["1.1.1.1"])),
        compiling.RunContext("ns", "p", "uid", 1),
        POLICY,
    )
    assert plan.warnings == (
        "spec.steps[0].network_mode: Docker-only field, ignored on Kubernetes",
        "spec.steps[1].dns: Docker-only field, ignored on Kubernetes",
    )
