"""The core reads a step container's arguments as the entrypoint does: ``stepping.parse_args`` and Go's
``ParseRun`` (operator/entrypoint/step.go, whose ``TestParseRunTable`` reads the same file) are fed the same
table of cases, ``testdata/entrypoint-args.json``, and must read each alike or refuse it alike. And what the
core writes (``argv_of``, used by ``args_for``) reads back as the same step."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest
from podline.core import stepping
from podline.core.stepping import StepArgs

TABLE = json.loads((pathlib.Path(__file__).parent / "testdata" / "entrypoint-args.json").read_text())
FIELDS = {
    "name": "name",
    "after": "after",
    "detached": "detached",
    "onSuccess": "on_success",
    "onFailure": "on_failure",
    "ignoreFailure": "ignore_failure",
    "detach": "detach",
    "excluded": "excluded",
    "timeoutSeconds": "timeout_seconds",
    "runDir": "run_dir",
    "terminationLog": "termination_log",
    "messageLimit": "message_limit",
    "command": "command",
}


def _expected(fields: dict[str, Any]) -> StepArgs:
    values = {**TABLE["defaults"], **fields}
    return StepArgs(**{FIELDS[k]: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def test_the_table_defaults_are_the_cores() -> None:
    assert _expected({"name": "x"}) == StepArgs("x")


@pytest.mark.parametrize(
    "case", [c for c in TABLE["cases"] if "step" in c], ids=lambda c: " ".join(c["args"])
)
def test_arguments_read_as_the_entrypoint_reads_them(case: dict[str, Any]) -> None:
    assert stepping.parse_args(["run", *case["args"]]) == _expected(case["step"])


@pytest.mark.parametrize("case", [c for c in TABLE["cases"] if "error" in c], ids=lambda c: c["error"])
def test_arguments_refused_as_the_entrypoint_refuses_them(case: dict[str, Any]) -> None:
    with pytest.raises(stepping.BadArgs):
        stepping.parse_args(["run", *case["args"]])


@pytest.mark.parametrize(
    "case", [c for c in TABLE["cases"] if "step" in c], ids=lambda c: " ".join(c["args"])
)
def test_what_the_core_writes_reads_back_as_the_same_step(case: dict[str, Any]) -> None:
    step = _expected(case["step"])
    assert stepping.parse_args(stepping.argv_of(step)) == step


def test_a_repeated_switch_value_is_not_read_as_its_opposite() -> None:
    # Before the table, "--detach=false" read as true: the key alone was looked at.
    assert stepping.parse_args(["run", "--name=a", "--detach=false"]).detach is False
