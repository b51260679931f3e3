"""``.drone.star`` evaluated as Drone evaluates it (``scripting.starlark``).

Each rule cites drone/drone 2.0.4's ``plugin/converter/starlark/``: ``starlark.go`` (main, result, limits,
load), ``args.go`` (what ``ctx`` holds) and ``write.go`` (the output). The cases are written here.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from podline.core import errors, scripting

BUILD = {"event": "push", "branch": "main", "commit": "abc123", "repo": "octo/app", "cron": "nightly",
         "remote": "https://git.example/octo/app.git"}  # fmt: skip


def star(source: str, build: dict[str, Any] | None = None) -> list[Any]:
    text = scripting.starlark(source, filename=".drone.star", build=BUILD if build is None else build)
    return list(yaml.safe_load_all(text))


def refusal(source: str) -> str:
    with pytest.raises(errors.InvalidDroneFile) as info:
        scripting.starlark(source, filename=".drone.star", build=BUILD)
    [line] = info.value.lines()
    assert "\n" not in line and line.startswith(".drone.star: ")
    return line.removeprefix(".drone.star: ")


def test_ctx_build_and_repo_are_structs_of_drones_fields() -> None:
    """args.go: fromBuild/fromRepo: text fields, ``branch`` and ``target`` both the target branch, ``commit``
    and ``after`` the commit, ``debug`` and the repository flags booleans, ``params`` a dict."""
    [doc] = star(
        "def main(ctx):\n"
        "  b, r = ctx.build, ctx.repo\n"
        "  return {'v': [b.event, b.branch, b.target, b.commit, b.after, b.cron, b.message, b.debug, b.params,\n"
        "                r.slug, r.namespace, r.name, r.link, r.config, r.private, r.trusted, r.visibility]}\n"
    )
    assert doc["v"] == ["push", "main", "main", "abc123", "abc123", "nightly", "", False, {},
                        "octo/app", "octo", "app", "https://git.example/octo/app", ".drone.star", False, False, ""]  # fmt: skip


def test_ctx_reads_the_pull_request_and_repository_fields_of_the_build_metadata() -> None:
    """args.go: build.source is the pull request's source branch; repo.git_ssh_url, repo.branch (the default
    branch), repo.private and repo.visibility come from the repository — here the build metadata's
    source_branch, ssh_url, repo_branch, private and visibility."""
    build = {**BUILD, "source_branch": "feature/x", "ssh_url": "git@git.example:octo/app.git",
             "repo_branch": "trunk", "private": True, "visibility": "private"}  # fmt: skip
    [doc] = star(
        "def main(ctx):\n"
        "  return {'v': [ctx.build.source, ctx.repo.git_ssh_url, ctx.repo.branch, ctx.repo.private,\n"
        "                ctx.repo.visibility]}\n",
        build,
    )
    assert doc["v"] == ["feature/x", "git@git.example:octo/app.git", "trunk", True, "private"]


def test_the_ctx_fields_are_the_jsonnet_variables_plus_starlarks_own() -> None:
    """One mapping for both converters: every Jsonnet ``build.*``/``repo.*`` variable (jsonnet.go) is a ctx
    field, with the same value as text; args.go adds build.cron, build.debug, build.params, repo.visibility."""
    ctx = scripting.context(BUILD, config=".drone.star")
    names = scripting.ext_vars(BUILD, config=".drone.star")
    for name, text in names.items():
        group, _, field = name.partition(".")
        value = ctx[group][field]
        assert (str(value).lower() if isinstance(value, bool) else value) == text
    assert set(ctx["build"]) - {n.partition(".")[2] for n in names if n.startswith("build.")} == {
        "cron", "debug", "params"}  # fmt: skip
    assert set(ctx["repo"]) - {n.partition(".")[2] for n in names if n.startswith("repo.")} == {"visibility"}


def test_a_dict_is_one_document_and_a_list_one_document_per_element() -> None:
    """starlark.go: a *starlark.Dict is written as the file; a *starlark.List as one document per element."""
    assert star("def main(ctx):\n  return {'kind': 'pipeline', 'name': ctx.repo.name}\n") == [
        {"kind": "pipeline", "name": "app"}
    ]
    docs = star("def main(ctx):\n  return [{'name': n} for n in ('a', 'b', ctx.build.branch)]\n")
    assert docs == [{"name": "a"}, {"name": "b"}, {"name": "main"}]


def test_values_are_written_as_json_keeping_their_types() -> None:
    """write.go: None null, bools, ints, floats, strings quoted, tuples and lists as arrays."""
    [doc] = star(
        "def main(ctx):\n  return {'n': None, 'b': True, 'i': 7, 'f': 0.5, 's': 'on', 't': (1, '2')}\n"
    )
    assert doc == {"n": None, "b": True, "i": 7, "f": 0.5, "s": "on", "t": [1, "2"]}


def test_print_writes_nothing_to_the_output() -> None:
    """starlark.go: print goes to Drone's trace log, never into the configuration."""
    assert star("def main(ctx):\n  print('hello', ctx.build)\n  return {'a': 1}\n") == [{"a": 1}]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("x = 1\n", "Starlark error: the file has no main function"),  # ErrMainMissing
        ("main = 3\n", "Starlark error: main must be a function, not int"),  # ErrMainInvalid
        (
            "def main(ctx):\n  return 'x'\n",
            "Starlark error: main(ctx) must return a dict or a list, not string",
        ),
        (
            "def main(ctx):\n  return (1,)\n",
            "Starlark error: main(ctx) must return a dict or a list, not tuple",
        ),
    ],
)
def test_main_missing_not_callable_or_returning_another_type_is_refused(source: str, message: str) -> None:
    """starlark.go: ErrMainMissing, ErrMainInvalid, ErrMainReturn (only *starlark.List and *starlark.Dict)."""
    assert refusal(source) == message


def test_syntax_and_runtime_errors_are_one_line_naming_the_line() -> None:
    line = refusal("def main(ctx):\n  x = 1\n  return x +\n")
    assert line.startswith("Starlark error (line 3): Parse error")
    line = refusal("def main(ctx):\n  x = 1\n  return ctx.build.nope\n")
    assert line == "Starlark error (line 3): Object of type `struct` has no attribute `nope`"
    assert refusal("def main(ctx):\n  fail('no pipelines for ' + ctx.build.event)\n").endswith(
        "fail: no pipelines for push"
    )


def test_load_is_refused() -> None:
    """starlark.go: noLoad, ErrCannotLoad."""
    line = refusal("load('lib.star', 'pipeline')\ndef main(ctx):\n  return {}\n")
    assert line == "Starlark error (line 1): cannot load lib.star: Drone cannot load external scripts"


def test_a_script_running_past_drones_step_limit_is_stopped() -> None:
    """starlark.go: thread.SetMaxExecutionSteps(50000). starlark-go (2026-09) counts 10 steps per
    iteration of main's loop: Drone runs 4,000 iterations (40,019 steps) and stops 20,000 and the comprehension
    of 100,000 (9 steps per element); so does podline."""
    loop = "def main(ctx):\n  t = 0\n  for i in range({}):\n    t += i\n  return {{'t': t}}\n"
    assert star(loop.format(4_000)) == [{"t": 7_998_000}]
    assert refusal(loop.format(20_000)) == (
        "Starlark error: the script ran past Drone's limit of 50,000 execution steps"
    )
    assert "limit of 50,000" in refusal("def main(ctx):\n  return {'a': [i for i in range(100000)]}\n")


def test_output_over_drones_size_limit_is_refused() -> None:
    """starlark.go: ErrMaximumSize, output over 1,000,000 bytes."""
    assert star("def main(ctx):\n  return {'a': 'x' * 999000}\n")[0]["a"] == "x" * 999_000
    assert (
        refusal("def main(ctx):\n  return {'a': 'x' * 1000000}\n")
        == "Starlark output is over 1,000,000 bytes"
    )
