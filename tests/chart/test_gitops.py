"""The Argo CD health check (docs/argocd-health.lua), run by a real Lua 5.4 interpreter.

Argo CD runs a health script with the object as the global ``obj`` and reads the table it returns; its
interpreter is gopher-lua, which implements Lua 5.1. The harness does the same with every interpreter it
finds of ``lua5.1`` and ``lua5.4`` (Debian packages of those names), and they must agree; with neither,
these tests skip, or fail with ``CI=true``. ``tests/e2e/test_chart_cluster.py`` feeds the check the
statuses the real operator wrote.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from podline.core import statuses

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "docs" / "argocd-health.lua"
HARNESS = """
local check = assert(loadfile(arg[1]))
obj = assert((loadstring or load)("return " .. io.read("*a")))()
local health = check()
io.write(health.status, "\\n", health.message or "", "\\n")
"""
INTERPRETERS = ("lua5.1", "lua5.4")
EXPECTED = {
    statuses.Phase.PENDING: "Progressing",
    statuses.Phase.RUNNING: "Progressing",
    statuses.Phase.SUCCEEDED: "Healthy",
    statuses.Phase.FAILED: "Degraded",
    statuses.Phase.ERROR: "Degraded",
    statuses.Phase.CANCELLED: "Degraded",
    # A build's pipeline whose dependencies rule it out (a notify-on-failure after a passing build; a
    # publish after a failed test, which is Degraded itself): nothing is wrong with this resource.
    statuses.Phase.SKIPPED: "Healthy",
}


def lua_literal(value: Any) -> str:
    """A Python value parsed from JSON, as a Lua expression (what Argo CD's JSON→Lua conversion yields)."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
        return f'"{escaped}"'
    if isinstance(value, list):
        return "{" + ", ".join(lua_literal(v) for v in value) + "}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"[{lua_literal(str(k))}] = {lua_literal(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"not JSON: {value!r}")


def interpreters() -> list[str]:
    found = [path for path in map(shutil.which, INTERPRETERS) if path]
    if not found:
        message = "no Lua interpreter: apt-get install lua5.4 (and lua5.1, closest to Argo CD's gopher-lua)"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return found


def argocd_health(obj: dict[str, Any]) -> tuple[str, str]:
    """Run docs/argocd-health.lua on one object with each interpreter: (status, message)."""
    answers = {}
    for lua in interpreters():
        result = subprocess.run(
            [lua, "-e", HARNESS.replace("arg[1]", json.dumps(str(SCRIPT)))],
            input=lua_literal(json.loads(json.dumps(obj))),
            check=False,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 0, f"the health check crashed in {lua} on {obj}:\n{result.stderr}"
        status, message = result.stdout.split("\n", 2)[:2]
        answers[lua] = (status, message)
    assert len(set(answers.values())) == 1, f"Lua versions disagree: {answers}"
    return next(iter(answers.values()))


def pipeline(generation: int = 1, **status: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "podline.dev/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": "p", "namespace": "ci", "generation": generation},
        "spec": {"steps": [{"name": "build", "image": "golang:1.22"}]},
    }
    if status:
        body["status"] = statuses.PipelineStatus(**status).to_patch()
    return body


def test_the_literal_converter_round_trips_through_lua() -> None:
    tricky = {"a": 'quote " backslash \\ newline \n', "n": [1, 2.5, True, None], "ü": {"x": "é"}}
    program = 'local t = (loadstring or load)("return " .. io.read("*a"))(); io.write(t.a, "|", t.n[2], "|", t["ü"].x)'
    for lua in interpreters():
        result = subprocess.run(
            [lua, "-e", program],
            input=lua_literal(tricky),
            check=False,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.stdout == 'quote " backslash \\ newline \n|2.5|é', f"{lua}: {result.stderr}"


def test_every_phase_has_a_health() -> None:
    assert set(EXPECTED) == set(statuses.Phase), "a new phase needs a health in docs/argocd-health.lua"


@pytest.mark.parametrize("phase", list(statuses.Phase))
def test_phase_maps_to_health(phase: statuses.Phase) -> None:
    status, message = argocd_health(
        pipeline(phase=phase, observed_generation=1, message='step "build" failed (exit code 2)')
    )
    assert status == EXPECTED[phase]
    assert message == f'{phase}: step "build" failed (exit code 2)'


def test_a_pipeline_waiting_for_its_build_dependencies_is_progressing_and_says_for_what() -> None:
    waiting = pipeline(
        phase=statuses.Phase.PENDING, observed_generation=1, message="waiting for test (Running)"
    )
    assert argocd_health(waiting) == ("Progressing", "Pending: waiting for test (Running)")


def test_without_status_it_is_progressing() -> None:
    assert argocd_health(pipeline())[0] == "Progressing"
    assert argocd_health({**pipeline(), "status": {}})[0] == "Progressing"


def test_a_finished_run_of_an_older_spec_is_progressing() -> None:
    status, message = argocd_health(
        pipeline(generation=3, phase=statuses.Phase.SUCCEEDED, observed_generation=2)
    )
    assert (status, message) == ("Progressing", "waiting for the run of generation 3")
    stale_failure = pipeline(generation=2, phase=statuses.Phase.FAILED, observed_generation=1)
    assert argocd_health(stale_failure)[0] == "Progressing"


def test_message_is_the_phase_alone_without_a_message() -> None:
    assert argocd_health(pipeline(phase=statuses.Phase.SUCCEEDED, observed_generation=1)) == (
        "Healthy",
        "Succeeded",
    )
