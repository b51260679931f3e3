"""The run's Drone variables and their substitution, as Drone derives and applies them.

Sources: drone/runner-go ``environ/environ.go`` (``Build``, ``Repo``, ``System``, ``Stage``, ``Link``),
``environ/semver.go`` with coreos/go-semver v0.3.0 ``semver/semver.go`` (``Set``), ``environ/calver.go``,
and ``pipeline/runtime/runner.go`` (substitution with these variables before parsing; step numbers).
The semver and calver tables were also checked against runner-go v1.12.0 itself during development.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from podline.core import compiling, environs, errors, models, plans, policies, runs

SEMVER = [
    ("v1.2.3", {"DRONE_SEMVER": "1.2.3", "DRONE_SEMVER_MAJOR": "1", "DRONE_SEMVER_MINOR": "2",
                "DRONE_SEMVER_PATCH": "3", "DRONE_SEMVER_SHORT": "1.2.3"}),
    ("1.2.3-rc.1+build.5", {"DRONE_SEMVER": "1.2.3-rc.1+build.5", "DRONE_SEMVER_MAJOR": "1",
                            "DRONE_SEMVER_MINOR": "2", "DRONE_SEMVER_PATCH": "3", "DRONE_SEMVER_SHORT": "1.2.3",
                            "DRONE_SEMVER_PRERELEASE": "rc.1", "DRONE_SEMVER_BUILD": "build.5"}),
    ("v01.02.03", {"DRONE_SEMVER": "1.2.3", "DRONE_SEMVER_MAJOR": "1", "DRONE_SEMVER_MINOR": "2",
                   "DRONE_SEMVER_PATCH": "3", "DRONE_SEMVER_SHORT": "1.2.3"}),  # Go's ParseInt takes leading zeros
    ("1.2.3-beta-2", {"DRONE_SEMVER": "1.2.3-beta-2", "DRONE_SEMVER_MAJOR": "1", "DRONE_SEMVER_MINOR": "2",
                      "DRONE_SEMVER_PATCH": "3", "DRONE_SEMVER_SHORT": "1.2.3", "DRONE_SEMVER_PRERELEASE": "beta-2"}),
    ("v1.2", {"DRONE_SEMVER_ERROR": "1.2 is not in dotted-tri format"}),
    ("vv1.2.3", {"DRONE_SEMVER_ERROR": 'strconv.ParseInt: parsing "v1": invalid syntax'}),
    ("1.2.3.4", {"DRONE_SEMVER_ERROR": 'strconv.ParseInt: parsing "3.4": invalid syntax'}),
    ("1.2.3-rc..1", {"DRONE_SEMVER_ERROR": "failed to validate pre-release: rc..1 is not a valid semver identifier"}),
    ("1.2.3+a_b", {"DRONE_SEMVER_ERROR": "failed to validate metadata: a_b is not a valid semver identifier"}),
    ("1.2.99999999999999999999",
     {"DRONE_SEMVER_ERROR": 'strconv.ParseInt: parsing "99999999999999999999": value out of range'}),
]  # fmt: skip


@pytest.mark.parametrize(("tag", "want"), SEMVER, ids=[t for t, _ in SEMVER])
def test_semver_of_a_tag(tag: str, want: dict[str, str]) -> None:
    assert environs.semver(tag) == want


CALVER = [
    ("2023.01.05", {"DRONE_CALVER": "2023.01.05", "DRONE_CALVER_MAJOR_MINOR": "2023.01", "DRONE_CALVER_MAJOR": "2023",
                    "DRONE_CALVER_MINOR": "01", "DRONE_CALVER_MICRO": "05", "DRONE_CALVER_SHORT": "2023.01.05"}),
    ("v23.04.1-hotfix", {"DRONE_CALVER": "23.04.1-hotfix", "DRONE_CALVER_MAJOR_MINOR": "23.04",
                         "DRONE_CALVER_MAJOR": "23", "DRONE_CALVER_MINOR": "04", "DRONE_CALVER_MICRO": "1",
                         "DRONE_CALVER_MODIFIER": "hotfix", "DRONE_CALVER_SHORT": "23.04.1"}),
    ("20.04", {"DRONE_CALVER": "20.04", "DRONE_CALVER_MAJOR_MINOR": "20.04", "DRONE_CALVER_MAJOR": "20",
               "DRONE_CALVER_MINOR": "04", "DRONE_CALVER_MICRO": "", "DRONE_CALVER_SHORT": "20.04"}),
    ("v1.2.3", {}),  # 1 is no year
    ("2018.1.1", {}),  # runner-go's years start at 2019 (or 19)
    ("100.1", {}),
    ("2023", {}),
    ("2023.x", {}),
]  # fmt: skip


@pytest.mark.parametrize(("tag", "want"), CALVER, ids=[t for t, _ in CALVER])
def test_calver_of_a_tag(tag: str, want: dict[str, str]) -> None:
    assert environs.calver(tag) == want


def variables(**build: Any) -> dict[str, str]:
    return environs.variables(models.BuildInfo(**build), stage="default", stage_type="kubernetes")


def test_tag_build_sets_drone_tag_and_semver() -> None:
    env = variables(ref="refs/tags/v2.0.1", event="tag")
    assert env["DRONE_TAG"] == "v2.0.1"
    assert env["DRONE_SEMVER"] == "2.0.1"
    assert env["DRONE_SEMVER_SHORT"] == "2.0.1"
    assert "DRONE_PULL_REQUEST" not in env


def test_no_tag_without_a_tag_ref() -> None:
    env = variables(ref="refs/heads/main", branch="main")
    assert not {k for k in env if k.startswith(("DRONE_TAG", "DRONE_SEMVER", "DRONE_CALVER"))}


def test_pull_request_number_is_the_first_number_of_the_ref() -> None:
    env = variables(
        ref="refs/pull/42/head", event="pull_request", title="Fix it", source_branch="fix", branch="main"
    )
    assert env["DRONE_PULL_REQUEST"] == "42"
    assert env["DRONE_PULL_REQUEST_TITLE"] == "Fix it"
    assert (env["DRONE_SOURCE_BRANCH"], env["DRONE_TARGET_BRANCH"], env["DRONE_BRANCH"]) == (
        "fix",
        "main",
        "main",
    )
    assert "DRONE_PULL_REQUEST" not in variables(ref="refs/pull/42/head", event="push")


def test_repo_system_link_and_author_variables() -> None:
    env = variables(
        repo="octo/app",
        number=7,
        instance="drone.example.com",
        system_proto="https",
        author="octocat",
        author_name="Octo Cat",
        author_email="octo@example.com",
        author_avatar="https://example.com/a.png",
        private=True,
        repo_branch="main",
        parent=6,
        deploy_id=3,
        target="production",
    )
    assert env["DRONE_REPO_OWNER"] == env["DRONE_REPO_NAMESPACE"] == "octo"
    assert env["DRONE_REPO_NAME"] == "app"
    assert env["DRONE_REPO_PRIVATE"] == env["CI_REPO_PRIVATE"] == "true"
    assert env["DRONE_BUILD_LINK"] == "https://drone.example.com/octo/app/7"
    assert env["DRONE_SYSTEM_HOST"] == env["DRONE_SYSTEM_HOSTNAME"] == "drone.example.com"
    assert (env["DRONE_COMMIT_AUTHOR"], env["DRONE_COMMIT_AUTHOR_NAME"]) == ("octocat", "Octo Cat")
    assert env["CI_COMMIT_AUTHOR_EMAIL"] == "octo@example.com"
    assert (env["DRONE_BUILD_PARENT"], env["CI_PARENT_BUILD_NUMBER"], env["DRONE_DEPLOY_ID"]) == (
        "6",
        "6",
        "3",
    )
    assert env["DRONE_DEPLOY_TO"] == env["CI_BUILD_TARGET"] == "production"


def test_unknown_sources_are_left_out() -> None:
    env = environs.variables(None, stage="s", stage_type="docker")
    assert env == {
        "CI": "true",
        "DRONE": "true",
        "DRONE_CARD_PATH": "/dev/stdout",
        "DRONE_STAGE_NAME": "s",
        "DRONE_STAGE_KIND": "pipeline",
        "DRONE_STAGE_TYPE": "docker",
        "DRONE_STAGE_NUMBER": "1",
    }


# --- build metadata: the annotation and its shorthands ------------------------------------------------------

PATH = "metadata.annotations[podline.dev/build]"


@pytest.mark.parametrize(
    ("raw", "ref", "event"),
    [
        ('{"tag": "v1.0.0"}', "refs/tags/v1.0.0", "tag"),
        ('{"tag": "v1.0.0", "event": "promote"}', "refs/tags/v1.0.0", "promote"),
        ('{"tag": "v1.0.0", "ref": "refs/tags/v1.0.0"}', "refs/tags/v1.0.0", "tag"),
        ('{"pull_request": 9}', "refs/pull/9/head", "pull_request"),
        (
            '{"pull_request": 9, "ref": "refs/merge-requests/9/head"}',
            "refs/merge-requests/9/head",
            "pull_request",
        ),
        ('{"branch": "main"}', None, None),
    ],
)
def test_build_shorthands(raw: str, ref: str | None, event: str | None) -> None:
    build = runs.build_info(raw, path=PATH)
    assert (build.ref, build.event) == (ref, event)


@pytest.mark.parametrize(
    ("raw", "where", "message"),
    [
        ('{"tag": "v1", "ref": "refs/heads/main"}', PATH, "tag 'v1' disagrees with ref 'refs/heads/main'"),
        ('{"pull_request": 9, "ref": "refs/pull/8/head"}', PATH, "pull_request 9 disagrees with ref"),
        ('{"number": "many"}', PATH + ".number", "valid integer"),
        ('{"pull_request": 0}', PATH + ".pull_request", "greater than or equal to 1"),
        ("not json", PATH, "must be a JSON object"),
        ("[1, 2]", PATH, "must be a JSON object"),
    ],
)
def test_bad_build_metadata_names_the_field(raw: str, where: str, message: str) -> None:
    with pytest.raises(errors.InvalidPipeline) as caught:
        runs.build_info(raw, path=PATH)
    (problem,) = caught.value.problems
    assert problem.path == where
    assert message in problem.message


# --- substitution in the one place a run is planned -----------------------------------------------------------

CONTEXT = compiling.RunContext(namespace="ci", pipeline="demo", uid="u", generation=1)
STEP = {"name": "build", "image": "alpine:3.20"}


def plan(spec: dict[str, Any], **build: Any) -> plans.RunPlan:
    context = dataclasses.replace(CONTEXT, build=models.BuildInfo(**build) if build else None)
    return compiling.compile_spec(spec, context, policies.Policy())


def script_of(c: plans.ContainerPlan) -> str:
    assert c.command is not None
    return c.command[-1]


def test_each_run_substitutes_its_own_build() -> None:
    spec = {
        "steps": [
            {
                **STEP,
                "image": "registry.local/app:${DRONE_TAG##v}",
                "commands": [
                    "echo ${DRONE_COMMIT_SHA:0:8} ${DRONE_BRANCH/\\//-}",
                    "echo $${HOME} $$HOME $HOME",
                ],
            }
        ]
    }
    one = plan(spec, tag="v1.4.0", commit="89abcdef0123456789", branch="feature/x")
    two = plan(spec, tag="v1.5.0", commit="0123456789abcdef", branch="main")
    a, b = one.steps[0], two.steps[0]
    assert (a.image, b.image) == ("registry.local/app:1.4.0", "registry.local/app:1.5.0")
    assert "\necho 89abcdef feature-x\n" in script_of(a)
    assert "\necho 01234567 main\n" in script_of(b)
    assert "\necho ${HOME} $HOME $HOME\n" in script_of(a), "$$ reaches the shell as $"


def test_substitution_reads_build_variables_not_the_pipelines_environment() -> None:
    # runner-go substitutes with environ.System/Repo/Build/Stage/Link only: `environment:` is the shell's.
    spec = {
        "environment": {"GOOS": "linux"},
        "steps": [{**STEP, "commands": ["echo ${GOOS} ${DRONE_WORKSPACE}"]}],
    }
    assert "\necho  \n" in script_of(plan(spec).steps[0])


def test_without_build_metadata_variables_are_empty_and_escapes_apply() -> None:
    spec = {
        "steps": [{**STEP, "commands": ["echo [${DRONE_TAG}] [${DRONE_STAGE_NAME}] $${X}"]}],
        "name": "ci",
    }
    assert "\necho [] [ci] ${X}\n" in script_of(plan(spec).steps[0])


def test_substitution_comes_before_validation() -> None:
    """A field that is only valid after substitution (an image tag from the build) is accepted, and one
    whose expression is malformed is refused with its path and envsubst's reason."""
    ok = plan(
        {"steps": [{**STEP, "image": "alpine:${DRONE_SEMVER_MAJOR}.${DRONE_SEMVER_MINOR}"}]}, tag="v3.20.1"
    )
    assert ok.steps[0].image == "alpine:3.20"
    with pytest.raises(errors.InvalidPipeline) as caught:
        plan({"steps": [{**STEP, "commands": ["echo ${DRONE_TAG"]}]})
    assert caught.value.lines() == [
        "spec.steps[0].commands[0]: cannot substitute ${…}: missing closing brace (as in Drone; write $$ for a literal $)"
    ]


def test_plugin_settings_and_environment_are_substituted() -> None:
    spec = {
        "steps": [
            {
                "name": "publish",
                "image": "plugins/kaniko",
                "settings": {"tags": ["${DRONE_TAG}", "latest"], "repo": "octo/${DRONE_REPO_NAME}"},
                "environment": {"VERSION": "${DRONE_SEMVER}"},
            }
        ]
    }
    env = {e.name: e.value for e in plan(spec, tag="v1.0.0", repo="octo/app").steps[0].env}
    assert (env["PLUGIN_TAGS"], env["PLUGIN_REPO"], env["VERSION"]) == ("v1.0.0,latest", "octo/app", "1.0.0")


def test_step_numbers_follow_drones_order_and_skip_excluded_steps() -> None:
    spec = {
        "services": [{"name": "db", "image": "mariadb:11"}],
        "steps": [
            {**STEP, "name": "a", "commands": ["true"]},
            {**STEP, "name": "b", "commands": ["true"], "when": {"branch": "release"}},
            {**STEP, "name": "c", "commands": ["true"]},
        ],
    }
    numbers = {
        c.step: {e.name: e.value for e in c.env}.get("DRONE_STEP_NUMBER")
        for c in plan(spec, branch="main").containers
    }
    assert numbers == {"db": "1", "a": "2", "b": None, "c": "3"}
