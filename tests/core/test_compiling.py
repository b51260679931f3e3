"""Compiling a spec into a ``plans.RunPlan``: Drone semantics decided once, as data.

Covers the order and dependencies of containers, ``when``/``trigger``, the implicit clone step, the
environment (``DRONE_*``, pipeline, step, plugin settings, ``from_secret``), how ``commands`` and
``entrypoint`` become a container command (run for real through ``/bin/sh``), resources, workspace and
volumes.
"""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path
from typing import Any

import pytest
from podline.core import compiling, models, plans, pods, policies, pulling

POLICY = policies.Policy()
CONTEXT = compiling.RunContext(namespace="ci", pipeline="demo", uid="uid-1", generation=3)


def step(name: str = "build", image: str = "alpine:3.19", **fields: Any) -> dict[str, Any]:
    return {"name": name, "image": image, **fields}


def compile_(
    *steps: dict[str, Any],
    build: dict[str, Any] | None = None,
    policy: policies.Policy = POLICY,
    context: compiling.RunContext = CONTEXT,
    **fields: Any,
) -> plans.RunPlan:
    raw = {"steps": list(steps) or [step()], **fields}
    ctx = dataclasses.replace(context, build=models.BuildInfo(**build) if build is not None else None)
    return compiling.compile_spec(raw, ctx, policy)


def env_of(c: plans.ContainerPlan) -> dict[str, str | plans.SecretRef | None]:
    names = [e.name for e in c.env]
    assert len(names) == len(set(names)), f"duplicate variables in {c.name}: {names}"
    return {e.name: e.secret if e.secret is not None else e.value for e in c.env}


# --- Containers, order and dependencies ------------------------------------------------------------------------


def test_sequential_steps_depend_on_the_previous_one() -> None:
    plan = compile_(step("build"), step("test"), step("Publish Docs"))
    assert [(c.name, c.step, c.kind, c.depends_on) for c in plan.containers] == [
        ("step-build", "build", plans.Kind.STEP, ()),
        ("step-test", "test", plans.Kind.STEP, ("step-build",)),
        ("step-publish-docs", "Publish Docs", plans.Kind.STEP, ("step-test",)),
    ]


def test_services_come_first_and_wait_for_nothing() -> None:
    plan = compile_(step("test"), services=[step("redis", "redis:7"), step("Postgres DB", "postgres:16")])
    assert [(c.name, c.kind, c.depends_on) for c in plan.containers] == [
        ("svc-redis", plans.Kind.SERVICE, ()),
        ("svc-postgres-db", plans.Kind.SERVICE, ()),
        ("step-test", plans.Kind.STEP, ()),
    ]
    assert [c.name for c in plan.services] == ["svc-redis", "svc-postgres-db"]
    assert [c.name for c in plan.steps] == ["step-test"]
    assert not plan.services[0].is_step


def test_depends_on_makes_a_dag_of_container_names() -> None:
    plan = compile_(
        step("a"),
        step("b", depends_on=["a"]),
        step("C", depends_on=["a"]),
        step("d", depends_on=["b", "C"]),
        step("free"),
    )
    assert {c.step: c.depends_on for c in plan.steps} == {
        "a": (),
        "b": ("step-a",),
        "C": ("step-a",),
        "d": ("step-b", "step-c"),
        "free": (),
    }


def test_detach_is_carried() -> None:
    plan = compile_(step("server", detach=True), step("test"))
    assert [(c.step, c.detach) for c in plan.steps] == [("server", True), ("test", False)]
    assert plan.steps[1].depends_on == ("step-server",)


@pytest.mark.parametrize(
    ("when", "on_success", "on_failure"),
    [
        pytest.param(None, True, False, id="default-success-only"),
        pytest.param({"status": "failure"}, False, True, id="failure-string"),
        pytest.param({"status": ["failure"]}, False, True, id="failure-list"),
        pytest.param({"status": ["success", "failure"]}, True, True, id="both"),
        pytest.param({"status": {"include": ["success"]}}, True, False, id="include-success"),
        pytest.param({"status": {"exclude": ["success"]}}, False, True, id="exclude-success"),
        pytest.param({"branch": "main"}, True, False, id="other-conditions-keep-default"),
    ],
)
def test_when_status_decides_on_success_and_on_failure(when: Any, on_success: bool, on_failure: bool) -> None:
    fields = {"when": when} if when is not None else {}
    (c,) = compile_(step(**fields)).steps
    assert (c.run_on_success, c.run_on_failure) == (on_success, on_failure)


def test_failure_ignore_is_carried() -> None:
    plan = compile_(step("lint", failure="ignore"), step("test"), step("x", failure="fail"))
    assert [c.ignore_failure for c in plan.steps] == [True, False, False]


BUILD = {
    "branch": "main",
    "event": "push",
    "ref": "refs/heads/main",
    "repo": "octo/app",
    "commit": "abc123",
    "number": 42,
    "remote": "https://git.example.com/octo/app.git",
    "message": "fix it",
    "author": "octo",
}


@pytest.mark.parametrize(
    ("when", "build", "excluded"),
    [
        pytest.param({"branch": "main"}, BUILD, False, id="branch-matches"),
        pytest.param({"branch": "release/*"}, BUILD, True, id="branch-glob-no-match"),
        pytest.param({"branch": {"exclude": ["main"]}}, BUILD, True, id="branch-excluded"),
        pytest.param({"event": ["tag", "promote"]}, BUILD, True, id="event-no-match"),
        pytest.param({"event": ["push", "tag"]}, BUILD, False, id="event-in-list"),
        pytest.param({"ref": "refs/tags/*"}, BUILD, True, id="ref-glob"),
        pytest.param({"repo": "octo/*"}, BUILD, False, id="repo-glob"),
        pytest.param({"branch": "release/*"}, None, False, id="no-build-metadata-runs-everything"),
        pytest.param({"target": "production"}, BUILD, False, id="field-missing-from-build-is-not-evaluated"),
        pytest.param(
            {"status": "failure", "branch": "main"}, BUILD, False, id="status-is-not-build-metadata"
        ),
    ],
)
def test_when_on_build_metadata_excludes_steps(
    when: dict[str, Any], build: dict[str, Any] | None, excluded: bool
) -> None:
    (c,) = compile_(step(when=when), build=build, clone={"disable": True}).steps
    assert c.excluded is excluded


@pytest.mark.parametrize(
    ("trigger", "build", "triggered"),
    [
        pytest.param({}, BUILD, True, id="no-trigger"),
        pytest.param({"branch": ["main", "develop"]}, BUILD, True, id="branch-matches"),
        pytest.param({"branch": "develop"}, BUILD, False, id="branch-no-match"),
        pytest.param({"event": {"exclude": ["push"]}}, BUILD, False, id="event-excluded"),
        pytest.param({"event": "pull_request"}, None, True, id="no-build-metadata"),
        pytest.param({"status": "failure"}, BUILD, True, id="status-is-not-build-metadata"),
    ],
)
def test_trigger_decides_whether_the_run_is_triggered(
    trigger: dict[str, Any], build: Any, triggered: bool
) -> None:
    assert compile_(step(), trigger=trigger, build=build).triggered is triggered


# --- The implicit clone step -------------------------------------------------------------------------------------


def test_clone_runs_first_when_the_build_names_a_remote() -> None:
    plan = compile_(step("build"), step("test"), services=[step("db")], build=BUILD)
    assert [(c.name, c.kind, c.depends_on) for c in plan.containers] == [
        ("svc-db", plans.Kind.SERVICE, ()),
        ("step-clone", plans.Kind.CLONE, ()),
        ("step-build", plans.Kind.STEP, ("step-clone",)),
        ("step-test", plans.Kind.STEP, ("step-build",)),
    ]
    clone = plan.container("step-clone")
    assert clone.image == POLICY.clone_image
    assert clone.pull_policy is pulling.PullPolicy.ALWAYS  # drone/git is untagged
    assert clone.command is None and clone.args is None
    assert env_of(clone)["DRONE_REMOTE_URL"] == BUILD["remote"]
    assert env_of(clone)["DRONE_STEP_NAME"] == "clone"
    assert clone.working_dir == "/drone/src"


def test_clone_is_a_root_of_the_dag() -> None:
    plan = compile_(step("a"), step("b", depends_on=["a"]), step("c"), build=BUILD)
    assert {c.step: c.depends_on for c in plan.steps} == {
        "clone": (),
        "a": ("step-clone",),
        "b": ("step-a",),
        "c": ("step-clone",),
    }


def test_clone_settings_become_plugin_variables() -> None:
    plan = compile_(
        step(),
        build=BUILD,
        clone={"depth": 50, "skip_verify": True},
        policy=dataclasses.replace(POLICY, clone_image="registry.local/git:2"),
    )
    clone = plan.container("step-clone")
    assert clone.image == "registry.local/git:2"
    assert clone.pull_policy is pulling.PullPolicy.IF_NOT_PRESENT
    assert env_of(clone)["PLUGIN_DEPTH"] == "50"
    assert env_of(clone)["PLUGIN_SKIP_VERIFY"] == "true"


@pytest.mark.parametrize(
    ("build", "fields", "steps"),
    [
        pytest.param(None, {}, [step()], id="no-build-metadata"),
        pytest.param({"branch": "main"}, {}, [step()], id="build-without-remote"),
        pytest.param(BUILD, {"clone": {"disable": True}}, [step()], id="clone-disabled"),
        pytest.param(BUILD, {}, [step("clone", "alpine/git"), step()], id="pipeline-clones-itself"),
        pytest.param(
            BUILD, {}, [step("Clone", "alpine/git"), step()], id="a-step-that-maps-to-the-clone-container"
        ),
    ],
)
def test_no_implicit_clone(build: Any, fields: dict[str, Any], steps: list[dict[str, Any]]) -> None:
    plan = compile_(*steps, build=build, **fields)
    assert [c.kind for c in plan.containers].count(plans.Kind.CLONE) == 0
    names = [c.name for c in plan.containers]
    assert len(names) == len(set(names))


# --- Environment --------------------------------------------------------------------------------------------------


def test_drone_variables_without_build_metadata() -> None:
    (c,) = compile_(step("build"), name="default").steps
    assert env_of(c) == {
        "CI": "true",
        "DRONE": "true",
        "DRONE_WORKSPACE": "/drone/src",
        "DRONE_WORKSPACE_PATH": "/drone/src",
        "DRONE_STAGE_NAME": "default",
        "DRONE_STAGE_KIND": "pipeline",
        "DRONE_STAGE_TYPE": "kubernetes",
        "DRONE_PIPELINE_NAME": "demo",
        "PODLINE_RUN": "g3",
        "DRONE_STEP_NAME": "build",
    }


def test_drone_variables_from_build_metadata() -> None:
    build = {**BUILD, "target": "production", "cron": "nightly"}
    plan = compile_(step("build"), build=build, clone={"disable": True}, type="docker")
    env = env_of(plan.steps[0])
    assert {k: v for k, v in env.items() if k not in ("CI", "DRONE", "PODLINE_RUN")} == {
        "DRONE_WORKSPACE": "/drone/src",
        "DRONE_WORKSPACE_PATH": "/drone/src",
        "DRONE_STAGE_NAME": "demo",
        "DRONE_STAGE_KIND": "pipeline",
        "DRONE_STAGE_TYPE": "docker",
        "DRONE_PIPELINE_NAME": "demo",
        "DRONE_STEP_NAME": "build",
        "DRONE_BUILD_NUMBER": "42",
        "DRONE_BUILD_EVENT": "push",
        "DRONE_BRANCH": "main",
        "DRONE_COMMIT_BRANCH": "main",
        "DRONE_COMMIT_REF": "refs/heads/main",
        "DRONE_COMMIT": "abc123",
        "DRONE_COMMIT_SHA": "abc123",
        "DRONE_COMMIT_MESSAGE": "fix it",
        "DRONE_COMMIT_AUTHOR": "octo",
        "DRONE_REPO": "octo/app",
        "DRONE_REMOTE_URL": "https://git.example.com/octo/app.git",
        "DRONE_GIT_HTTP_URL": "https://git.example.com/octo/app.git",
        "DRONE_DEPLOY_TO": "production",
        "DRONE_CRON": "nightly",
    }


def test_rerun_token_is_part_of_the_run_id() -> None:
    plan = compile_(step(), context=dataclasses.replace(CONTEXT, rerun="1700000000"))
    assert plan.run.startswith("g3-r") and plan.run != "g3"
    assert plan.pod_name == f"demo-{plan.run}"
    assert env_of(plan.steps[0])["PODLINE_RUN"] == plan.run


def test_pipeline_environment_then_step_environment() -> None:
    plan = compile_(
        step("a", environment={"SHARED": "step", "ONLY_STEP": 1, "FLAG": False, "EMPTY": None}),
        step("b"),
        environment={"SHARED": "pipeline", "GOFLAGS": "-mod=vendor", "CI": "overridden"},
    )
    a, b = (env_of(c) for c in plan.steps)
    assert (a["SHARED"], a["ONLY_STEP"], a["FLAG"], a["EMPTY"], a["GOFLAGS"]) == (
        "step",
        "1",
        "false",
        "",
        "-mod=vendor",
    )
    assert (b["SHARED"], b.get("ONLY_STEP"), b["GOFLAGS"]) == ("pipeline", None, "-mod=vendor")
    assert a["CI"] == b["CI"] == "overridden"


def test_step_environment_can_replace_a_plain_value_with_a_secret_and_back() -> None:
    plan = compile_(
        step("a", environment={"TOKEN": {"from_secret": "tokens/ci"}}),
        step("b", environment={"PLAIN": "x"}),
        environment={"TOKEN": "public", "PLAIN": {"from_secret": "p"}},
    )
    a, b = (env_of(c) for c in plan.steps)
    assert a["TOKEN"] == plans.SecretRef("tokens", "ci")
    assert a["PLAIN"] == plans.SecretRef(POLICY.secret_store, "p")
    assert b["TOKEN"] == "public" and b["PLAIN"] == "x"


@pytest.mark.parametrize(
    ("ref", "policy", "expected"),
    [
        pytest.param("docker/password", POLICY, plans.SecretRef("docker", "password"), id="secret-slash-key"),
        pytest.param(
            "password", POLICY, plans.SecretRef("podline-secrets", "password"), id="bare-key-default-store"
        ),
        pytest.param(
            "password",
            dataclasses.replace(POLICY, secret_store="ci-secrets"),
            plans.SecretRef("ci-secrets", "password"),
            id="bare-key-configured-store",
        ),
        pytest.param("a/b.c_d-e", POLICY, plans.SecretRef("a", "b.c_d-e"), id="dotted-key"),
    ],
)
def test_from_secret_names_a_secret_and_key(
    ref: str, policy: policies.Policy, expected: plans.SecretRef
) -> None:
    plan = compile_(
        step(environment={"E": {"from_secret": ref}}, settings={"s": {"from_secret": ref}}), policy=policy
    )
    env = env_of(plan.steps[0])
    assert env["E"] == env["PLUGIN_S"] == expected


SETTINGS = [
    ("string", "x/y", "x/y"),
    ("int", 3, "3"),
    ("float", 1.5, "1.5"),
    ("bool-true", True, "true"),
    ("bool-false", False, "false"),
    ("null", None, ""),
    ("list-of-strings", ["1.0", "latest"], "1.0,latest"),
    ("list-of-scalars", [1, True, "x"], "1,true,x"),
    ("empty-list", [], ""),
    ("map", {"b": 1, "a": [1, 2]}, '{"a":[1,2],"b":1}'),
    ("list-of-maps", [{"name": "a"}, {"name": "b"}], '[{"name":"a"},{"name":"b"}]'),
    ("unicode", "héllo ✓", "héllo ✓"),
]


@pytest.mark.parametrize(("value", "expected"), [pytest.param(v, e, id=i) for i, v, e in SETTINGS])
def test_settings_become_plugin_variables(value: Any, expected: str) -> None:
    (c,) = compile_(step("publish", "plugins/docker", settings={"value": value})).steps
    assert env_of(c)["PLUGIN_VALUE"] == expected


def test_setting_names_are_upper_cased_with_underscores() -> None:
    (c,) = compile_(
        step(settings={"auto_tag": True, "build-args": ["A=1"], "dry.run": "x", "Repo": "r"})
    ).steps
    env = env_of(c)
    assert (env["PLUGIN_AUTO_TAG"], env["PLUGIN_BUILD_ARGS"], env["PLUGIN_DRY_RUN"], env["PLUGIN_REPO"]) == (
        "true",
        "A=1",
        "x",
        "r",
    )


def test_settings_win_over_environment_of_the_same_name() -> None:
    (c,) = compile_(step(environment={"PLUGIN_REPO": "env"}, settings={"repo": "setting"})).steps
    assert env_of(c)["PLUGIN_REPO"] == "setting"


def test_services_get_the_environment_too() -> None:
    plan = compile_(
        step(),
        services=[step("db", "postgres:16", environment={"POSTGRES_PASSWORD": "x"})],
        environment={"TZ": "UTC"},
    )
    env = env_of(plan.container("svc-db"))
    assert (env["POSTGRES_PASSWORD"], env["TZ"], env["DRONE_STEP_NAME"]) == ("x", "UTC", "db")


# --- commands → a shell script, run for real ----------------------------------------------------------------------


def test_commands_become_one_sh_script() -> None:
    (c,) = compile_(step(commands=["go build", "go test ./..."])).steps
    script = (
        "set -e\nprintf '%s\\n' '+ go build'\ngo build\nprintf '%s\\n' '+ go test ./...'\ngo test ./...\n"
    )
    assert c.command == ("/bin/sh", "-c", script)
    assert c.args is None
    assert c.working_dir == "/drone/src"


@pytest.fixture
def sandbox(tmp_path: Path) -> dict[str, Any]:
    """A working directory and a PATH holding only a fake ``rm`` that logs its arguments.

    The commands below use shell builtins only; anything that would reach a program finds the fake.
    """
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "rm.log"
    fake = bin_dir / "rm"
    fake.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$*\" >> {log}\n")
    fake.chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path / "home"), "LC_ALL": "C.UTF-8"}
    return {"cwd": work, "env": env, "rm_log": log}


def run_container(c: plans.ContainerPlan, sandbox: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    assert c.command is not None
    argv = list(c.command) + list(c.args or ())
    return subprocess.run(
        argv, cwd=sandbox["cwd"], env=sandbox["env"], capture_output=True, text=True, timeout=30, check=False
    )


TRICKY_COMMANDS = [
    ("plain", "echo hello", "hello\n"),
    ("single-quotes", "echo 'it''s' \"it's\"", "its it's\n"),
    ("double-quotes-and-dollar", "X=1; echo \"x=$X\" '$X'", "x=1 $X\n"),
    ("command-substitution-runs-once", "printf '%s\\n' \"$(printf ran)\"", "ran\n"),
    ("backslashes", "printf '%s\\n' 'a\\b' \"c\\\\d\"", "a\\b c\\d\n".replace(" ", "\n")),
    ("unicode", "echo 'héllo ✓ 日本語'", "héllo ✓ 日本語\n"),
    ("glob-and-semicolon", "echo '*'; echo ';'", "*\n;\n"),
    (
        "pipes-and-redirects",
        'echo abc > f && read x < f && echo "[$x]" | { read y; echo "$y$y"; }',
        "[abc][abc]\n",
    ),
    ("multi-line", 'for i in 1 2\ndo echo "n$i"\ndone', "n1\nn2\n"),
    ("percent-signs", "printf '%s%%\\n' 50", "50%\n"),
    ("leading-dash", "-x 2>/dev/null || echo dash", "dash\n"),
    ("trailing-spaces", "echo spaced   ", "spaced\n"),
]


@pytest.mark.parametrize(("command", "output"), [pytest.param(c, o, id=i) for i, c, o in TRICKY_COMMANDS])
def test_script_echoes_each_command_then_runs_it_verbatim(
    command: str, output: str, sandbox: dict[str, Any]
) -> None:
    (c,) = compile_(step(commands=[command])).steps
    done = run_container(c, sandbox)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"+ {command}\n{output}"
    assert not sandbox["rm_log"].exists()


def test_script_runs_commands_in_order_with_echo_lines(sandbox: dict[str, Any]) -> None:
    commands = ["echo one", "echo 'two  spaces'", "cd /", 'echo "$PWD"']
    (c,) = compile_(step(commands=commands)).steps
    done = run_container(c, sandbox)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "+ echo one",
        "one",
        "+ echo 'two  spaces'",
        "two  spaces",
        "+ cd /",
        '+ echo "$PWD"',
        "/",
    ]


def test_a_dangerous_looking_command_is_echoed_literally_and_run_exactly_once(
    sandbox: dict[str, Any],
) -> None:
    (c,) = compile_(step(commands=["echo $(rm -rf /)", "echo `rm -rf ~`"])).steps
    done = run_container(c, sandbox)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["+ echo $(rm -rf /)", "", "+ echo `rm -rf ~`", ""]
    # Only the (fake) rm of the commands ran: the echo lines did not evaluate anything.
    assert sandbox["rm_log"].read_text().splitlines() == ["-rf /", f"-rf {sandbox['env']['HOME']}"]


def test_set_e_stops_at_the_first_failing_command(sandbox: dict[str, Any]) -> None:
    (c,) = compile_(step(commands=["echo before", "false", "echo after"])).steps
    done = run_container(c, sandbox)
    assert done.returncode == 1
    assert done.stdout == "+ echo before\nbefore\n+ false\n"


def test_an_exit_code_passes_through(sandbox: dict[str, Any]) -> None:
    (c,) = compile_(step(commands=["exit 78", "echo never"])).steps
    done = run_container(c, sandbox)
    assert (done.returncode, done.stdout) == (78, "+ exit 78\n")


def test_a_command_with_an_unbalanced_quote_cannot_eat_the_next_echo(sandbox: dict[str, Any]) -> None:
    # A broken command is the user's problem, but it must fail, not silently swallow the rest of the script.
    (c,) = compile_(step(commands=["echo 'oops", "echo fine"])).steps
    assert run_container(c, sandbox).returncode != 0


def test_a_custom_shell_runs_the_script_itself(sandbox: dict[str, Any]) -> None:
    (c,) = compile_(step(commands=['echo "$0"'], shell="/bin/dash")).steps
    assert (c.command, c.args) == (("/bin/dash", "-c", compiling.script(['echo "$0"'])), None)
    done = run_container(c, sandbox)
    assert (done.returncode, done.stdout) == (0, '+ echo "$0"\n/bin/dash\n')


@pytest.mark.parametrize("fields", [{}, {"shell": "/bin/sh"}], ids=["default", "explicit"])
def test_commands_run_as_one_script_through_sh(fields: dict[str, Any]) -> None:
    (c,) = compile_(step(commands=["true"], **fields)).steps
    assert (c.command, c.args) == (("/bin/sh", "-c", compiling.script(["true"])), None)
    assert c.command is not None and c.command[2].startswith("set -e\n")


# --- entrypoint and command ------------------------------------------------------------------------------------


def test_entrypoint_is_the_command_and_command_its_arguments_verbatim(sandbox: dict[str, Any]) -> None:
    (c,) = compile_(
        step(
            entrypoint=["/bin/sh", "-c", 'printf "[%s]" "$@"', "zero"],
            command=["a b", "$(rm -rf /)", "c'd", "", "é"],
        )
    ).steps
    assert c.command == ("/bin/sh", "-c", 'printf "[%s]" "$@"', "zero")
    assert c.args == ("a b", "$(rm -rf /)", "c'd", "", "é")
    done = run_container(c, sandbox)
    assert (done.returncode, done.stdout) == (0, "[a b][$(rm -rf /)][c'd][][é]")
    assert not sandbox["rm_log"].exists()


@pytest.mark.parametrize(
    ("fields", "want"),
    [
        pytest.param(
            {"commands": ["make"]}, (("/bin/sh", "-c", compiling.script(["make"])), None), id="commands"
        ),
        pytest.param(
            {"commands": ["make"], "shell": "/bin/bash"},
            (("/bin/bash", "-c", compiling.script(["make"])), None),
            id="commands-with-a-shell",
        ),
        pytest.param(
            {"entrypoint": ["/bin/tool"], "command": ["x", "y"]},
            (("/bin/tool",), ("x", "y")),
            id="entrypoint-and-command",
        ),
        pytest.param({"entrypoint": ["/bin/tool"]}, (("/bin/tool",), None), id="entrypoint-alone"),
        pytest.param({"command": ["x"]}, (None, ("x",)), id="command-alone-replaces-cmd"),
        pytest.param({}, (None, None), id="nothing-the-image-decides"),
    ],
)
def test_kubernetes_command_and_args_of_a_step_and_a_service(
    fields: dict[str, Any], want: tuple[tuple[str, ...] | None, ...]
) -> None:
    plan = compile_(step(**fields), services=[step("db", "postgres:16", **fields)])
    assert [(c.command, c.args) for c in plan.containers] == [want, want]


def test_entrypoint_alone_has_no_arguments() -> None:
    (c,) = compile_(step(entrypoint=["/bin/tool", "--flag"])).steps
    assert (c.command, c.args) == (("/bin/tool", "--flag"), None)


def test_command_alone_overrides_the_image_arguments() -> None:
    (c,) = compile_(step(command=["--verbose", "run"])).steps
    assert (c.command, c.args) == (None, ("--verbose", "run"))


def test_a_plugin_keeps_its_image_entrypoint() -> None:
    (c,) = compile_(step("publish", "plugins/docker", settings={"repo": "x"})).steps
    assert (c.command, c.args) == (None, None)


# --- Resources ---------------------------------------------------------------------------------------------------


def test_the_largest_request_stays_and_other_limited_steps_request_zero() -> None:
    plan = compile_(
        step("a", resources={"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "2Gi"}}),
        step("b", resources={"requests": {"memory": "2GiB"}, "limits": {"cpu": 2000, "memory": "2Gi"}}),
        step("c", resources={"limits": {"memory": "512MiB"}}),
        step("d"),
        services=[step("db", resources={"requests": {"cpu": 100, "memory": "64Mi"}})],
    )
    got = {c.step: (dict(c.requests), dict(c.limits)) for c in plan.containers}
    assert got == {
        "db": ({"cpu": "100m", "memory": "64Mi"}, {}),
        "a": ({"cpu": "500m", "memory": "0"}, {"memory": "2Gi"}),
        "b": ({"cpu": "0", "memory": "2Gi"}, {"cpu": "2000m", "memory": "2Gi"}),
        "c": ({"memory": "0"}, {"memory": "512Mi"}),
        "d": ({}, {}),
    }


def test_requests_are_compared_by_amount_not_text() -> None:
    plan = compile_(
        step("a", resources={"requests": {"memory": "900Mi", "cpu": 1500}}),
        step("b", resources={"requests": {"memory": "1G", "cpu": "1"}}),
    )
    got = {c.step: dict(c.requests) for c in plan.steps}
    assert got == {"a": {"cpu": "1500m", "memory": "0"}, "b": {"cpu": "0", "memory": "1G"}}


def test_equal_requests_stay_on_the_first_step() -> None:
    plan = compile_(
        step("a", resources={"requests": {"cpu": "1"}}), step("b", resources={"requests": {"cpu": 1000}})
    )
    assert [dict(c.requests) for c in plan.steps] == [{"cpu": "1"}, {"cpu": "0"}]


@pytest.mark.parametrize(
    ("resource", "value", "quantity"),
    [
        ("memory", "512MiB", "512Mi"),
        ("memory", "1GiB", "1Gi"),
        ("memory", "1.5GiB", "1.5Gi"),
        ("memory", "100MB", "100M"),
        ("memory", "2KiB", "2Ki"),
        ("memory", "1024B", "1024"),
        ("memory", 1073741824, "1073741824"),
        ("memory", "512Mi", "512Mi"),
        ("memory", "1e3", "1e3"),
        ("cpu", 1000, "1000m"),
        ("cpu", 250, "250m"),
        ("cpu", "0.5", "0.5"),
        ("cpu", "2", "2"),
        ("cpu", "250m", "250m"),
    ],
)
def test_drone_units_become_kubernetes_quantities(resource: str, value: Any, quantity: str) -> None:
    (c,) = compile_(step(resources={"limits": {resource: value}})).steps
    assert dict(c.limits) == {resource: quantity}


# --- Workspace, volumes, pod-level fields ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("workspace", "path"),
    [
        pytest.param(None, "/drone/src", id="default"),
        pytest.param({"path": "/go/src/app"}, "/go/src/app", id="absolute-path"),
        pytest.param(
            {"base": "/go", "path": "src/github.com/octo/app"},
            "/go/src/github.com/octo/app",
            id="base-and-path",
        ),
        pytest.param({"base": "/go"}, "/go", id="base-only"),
        pytest.param({"path": "/go/src/../app/"}, "/go/app", id="normalised"),
    ],
)
def test_workspace_is_the_working_directory_of_every_step(workspace: Any, path: str) -> None:
    fields = {"workspace": workspace} if workspace else {}
    plan = compile_(step("a"), step("b", working_dir="/tmp"), services=[step("db")], **fields)
    assert plan.workspace == path
    assert [c.working_dir for c in plan.containers] == [path, path, "/tmp"]
    assert env_of(plan.steps[0])["DRONE_WORKSPACE"] == path


def test_volumes_map_to_pod_volumes_and_mounts() -> None:
    policy = dataclasses.replace(POLICY, allow_host_volumes=True)
    plan = compile_(
        step(
            "a",
            volumes=[{"name": "Cache", "path": "/cache"}, {"name": "sock", "path": "/var/run/docker.sock"}],
        ),
        step("b", volumes=[{"name": "data", "path": "/data"}, {"name": "cfg", "path": "/etc/app"}]),
        volumes=[
            {"name": "Cache", "temp": {"medium": "memory", "size_limit": "1GiB"}},
            {"name": "sock", "host": {"path": "/var/run/docker.sock"}},
            {"name": "data", "claim": {"name": "build-cache", "read_only": True}},
            {"name": "cfg", "config_map": {"name": "app-config", "default_mode": 420}},
            {"name": "plain", "temp": {}},
        ],
        policy=policy,
    )
    assert [pods.to_volume(v) for v in plan.volumes] == [
        {"name": "podline-workspace", "emptyDir": {}},
        {"name": "v-cache", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}},
        {"name": "v-sock", "hostPath": {"path": "/var/run/docker.sock", "type": "DirectoryOrCreate"}},
        {"name": "v-data", "persistentVolumeClaim": {"claimName": "build-cache", "readOnly": True}},
        {"name": "v-cfg", "configMap": {"name": "app-config", "optional": False, "defaultMode": 420}},
        {"name": "v-plain", "emptyDir": {}},
    ]
    a, b = plan.steps
    assert a.mounts == (plans.Mount("v-cache", "/cache"), plans.Mount("v-sock", "/var/run/docker.sock"))
    assert b.mounts == (plans.Mount("v-data", "/data"), plans.Mount("v-cfg", "/etc/app"))


def test_pod_level_fields() -> None:
    policy = dataclasses.replace(
        POLICY,
        allowed_service_accounts=frozenset({"builder"}),
        run_timeout_seconds=900,
        step_timeout_seconds=120,
        pull_timeout_seconds=60,
        automount_service_account_token=True,
    )
    plan = compile_(
        step(user=1000, group="2000", privileged=False),
        node_selector={"zone": "b", "arch": "amd64"},
        tolerations=[
            {"key": "ci", "operator": "Equal", "value": "yes", "effect": "NoSchedule"},
            {"operator": "Exists", "toleration_seconds": 30, "effect": "NoExecute"},
            {"operator": "Exists", "effect": ""},
        ],
        service_account_name="builder",
        metadata={"labels": {"team": "x", "app": "y"}, "annotations": {"note": "n"}},
        image_pull_secrets=["dockerconfig", "other"],
        policy=policy,
    )
    assert plan.node_selector == (("arch", "amd64"), ("zone", "b"))
    assert [pods.to_toleration(t) for t in plan.tolerations] == [
        {"key": "ci", "operator": "Equal", "value": "yes", "effect": "NoSchedule"},
        {"operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30},
        {"operator": "Exists"},
    ]
    assert plan.service_account == "builder"
    assert plan.automount_token is True
    assert plan.pod_labels == (("app", "y"), ("team", "x"))
    assert plan.pod_annotations == (("note", "n"),)
    assert (plan.timeout_seconds, plan.step_timeout_seconds, plan.pull_timeout_seconds) == (900, 120, 60)
    assert (plan.pull_secret_name, plan.pull_secret_sources) == ("demo-g3-pull", ("dockerconfig", "other"))
    assert (plan.steps[0].user, plan.steps[0].group) == (1000, 2000)
    assert (plan.namespace, plan.pipeline, plan.pipeline_uid, plan.generation, plan.run, plan.pod_name) == (
        "ci",
        "demo",
        "uid-1",
        3,
        "g3",
        "demo-g3",
    )


def test_defaults_without_pull_secrets_or_service_account() -> None:
    plan = compile_(step())
    assert (plan.pull_secret_name, plan.pull_secret_sources, plan.service_account) == (None, (), None)
    assert plan.runner_image == POLICY.runner_image
    assert plan.timeout_seconds == POLICY.run_timeout_seconds


def test_default_service_account_and_run_timeout_from_context() -> None:
    policy = dataclasses.replace(POLICY, default_service_account="ci-runner")
    plan = compile_(step(), policy=policy, context=dataclasses.replace(CONTEXT, timeout_seconds=120))
    assert (plan.service_account, plan.timeout_seconds) == ("ci-runner", 120)


@pytest.mark.parametrize(
    ("image", "pull", "policy"),
    [
        ("golang:1.12", None, pulling.PullPolicy.IF_NOT_PRESENT),
        ("golang", None, pulling.PullPolicy.ALWAYS),
        ("golang:latest", None, pulling.PullPolicy.ALWAYS),
        ("golang:1.12", "always", pulling.PullPolicy.ALWAYS),
        ("golang", "if-not-exists", pulling.PullPolicy.IF_NOT_PRESENT),
        ("golang:1.12", "never", pulling.PullPolicy.NEVER),
        ("golang:1.12", "default", pulling.PullPolicy.IF_NOT_PRESENT),
    ],
)
def test_each_container_gets_its_pull_policy(
    image: str, pull: str | None, policy: pulling.PullPolicy
) -> None:
    fields = {"pull": pull} if pull is not None else {}
    plan = compile_(step(image=image, **fields), services=[step("db", image=image, **fields)])
    assert [c.pull_policy for c in plan.containers] == [policy, policy]
    assert [c.image for c in plan.containers] == [image, image]


def test_the_plan_holds_no_secret_values() -> None:
    plan = compile_(
        step(environment={"T": {"from_secret": "tokens/ci"}}, settings={"p": {"from_secret": "pw"}})
    )
    secret_vars = [e for e in plan.steps[0].env if e.secret is not None]
    assert [(e.name, e.value) for e in secret_vars] == [("T", None), ("PLUGIN_P", None)]
