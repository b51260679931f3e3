"""The core and the entrypoint binary decide alike: ``stepping.decide`` and ``podline-entrypoint decide``
get the same generated cases (step flags, results present, started markers) and must give the same answer.
They also write results alike: ``podline-entrypoint encode`` prints the result file and the termination
message it would write for a generated result, which must be ``Result.to_json`` and ``Result.to_message``
byte for byte (so ``--message-limit`` cuts at the same place).

The binary reads ``{"args": [...], "results": {name: result}, "started": [names]}`` and prints
``{"action": ..., "reason": ...}`` (docs/in-pod.md). The arguments are the core's own: generated steps go
through ``stepping.argv_of`` and back through ``stepping.parse_args`` (checked to read back the same step),
and the second test takes them from ``stepping.args_for`` on compiled pipelines. A result's ``failing`` is
derived from its writer's flags, as both halves derive it. And the binary's own constants and names
(``podline-entrypoint constants``) are the core's. Without Go the tests skip; with ``CI=true`` they fail.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import subprocess
from collections.abc import Collection, Mapping

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from podline.core import compiling, pods, policies, stepping
from podline.core.stepping import Result, ResultState, StepArgs

from tests import entrypointbin
from tests.cluster import fixtures

NAMES = ("step-a", "step-b", "step-c", "step-d", "clone", "svc-db")
SELF = "step-x"


@pytest.fixture(scope="module")
def binary() -> pathlib.Path:
    try:
        return entrypointbin.build()
    except entrypointbin.GoMissing as error:
        if fixtures.in_ci():
            pytest.fail(f"{error} (CI=true: the agreement test must not be skipped)", pytrace=False)
        pytest.skip(str(error))


def binary_decides(
    binary: pathlib.Path, argv: list[str], results: Mapping[str, Result], started: Collection[str]
) -> dict[str, object]:
    case = {
        "args": argv,
        "results": {name: json.loads(r.to_json()) for name, r in results.items()},
        "started": sorted(started),
    }
    done = subprocess.run(
        [str(binary), "decide"],
        input=json.dumps(case),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"decide failed on {case}: {done.stderr}"
    answer: dict[str, object] = json.loads(done.stdout)
    return answer


def core_decides(
    step: StepArgs, results: Mapping[str, Result], started: Collection[str]
) -> dict[str, object]:
    decision = stepping.decide(step, results, started)
    return {
        "action": str(decision.action),
        "reason": None if decision.reason is None else str(decision.reason),
        "mask": list(step.mask),
        "logDir": step.log_dir,
        "logLimit": step.log_limit,
    }


@st.composite
def steps(draw: st.DrawFn) -> StepArgs:
    after = tuple(draw(st.lists(st.sampled_from(NAMES), unique=True, max_size=4)))
    detached = tuple(n for n in after if draw(st.booleans()))
    return StepArgs(
        name=SELF,
        after=after,
        detached=detached,
        on_success=draw(st.booleans()),
        on_failure=draw(st.booleans()),
        ignore_failure=draw(st.booleans()),
        detach=draw(st.booleans()),
        excluded=draw(st.booleans()),
        timeout_seconds=draw(st.sampled_from((0, 0, 1, 3600))),
        message_limit=stepping.message_limit(draw(st.integers(1, 300))),
        log_dir=draw(st.sampled_from(("", stepping.LOG_DIR))),
        log_limit=draw(st.sampled_from((stepping.DEFAULT_LOG_LIMIT, 1, 4096))),
        mask=tuple(draw(st.lists(st.sampled_from(("TOKEN", "PLUGIN_PASSWORD", "A,B", "x")), unique=True))),
        command=draw(st.sampled_from((("/bin/sh", "-c", "echo hi"), ("make", "--", "test"), ("true",)))),
    )


@st.composite
def results_of(draw: st.DrawFn) -> Result:
    state = draw(st.sampled_from(list(ResultState)))
    # The step that wrote it: its failure fails the run unless it ignores failure or is detached.
    writer = StepArgs("?", ignore_failure=draw(st.booleans()), detach=draw(st.booleans()))
    code: int | None
    reason: str | None
    if state is ResultState.SKIPPED:
        code, reason = None, draw(st.sampled_from(("Skipped", "EarlyExit", "Stopped")))
    else:
        code = draw(
            st.sampled_from((0, 78) if state is ResultState.SUCCEEDED else (1, 2, 78, 126, 127, 137, 143))
        )
        reason = draw(st.sampled_from((None, "StepTimeout", "ImagePullFailed", "Stopped")))
    return Result(
        name="?",
        state=state,
        exit_code=code,
        started_at=None if code is None else 1764579600123,
        finished_at=1764579600456,
        reason=reason,
        message=draw(st.sampled_from((None, "a sentence."))),
        failing=stepping.is_failing(writer, state),
    )


@st.composite
def run_dirs(draw: st.DrawFn) -> tuple[dict[str, Result], frozenset[str]]:
    present = draw(st.lists(st.sampled_from(NAMES), unique=True))
    results = {name: _named(draw(results_of()), name) for name in present}
    started = frozenset(draw(st.lists(st.sampled_from(NAMES), unique=True)))
    return results, started


def _named(result: Result, name: str) -> Result:
    return dataclasses.replace(result, name=name)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(step=steps(), run_dir=run_dirs())
def test_binary_and_core_decide_alike(
    binary: pathlib.Path, step: StepArgs, run_dir: tuple[dict[str, Result], frozenset[str]]
) -> None:
    results, started = run_dir
    argv = stepping.argv_of(step)
    assert stepping.parse_args(argv) == step  # these are arguments the core itself reads as this step
    assert binary_decides(binary, argv, results, started) == core_decides(step, results, started)


PIPELINES = [
    {"steps": [
        {"name": "a", "image": "busybox", "commands": ["true"], "detach": True},
        {"name": "b", "image": "busybox", "commands": ["false"], "failure": "ignore", "depends_on": ["a"]},
        {"name": "c", "image": "busybox", "commands": ["true"], "depends_on": ["a", "b"],
         "when": {"status": ["failure"]}},
        {"name": "d", "image": "busybox", "commands": ["true"], "when": {"status": ["success", "failure"]}},
    ]},
    {"steps": [
        {"name": "build", "image": "busybox", "commands": ["make"]},
        {"name": "test", "image": "busybox", "commands": ["make test"]},
        {"name": "notify", "image": "busybox", "commands": ["echo"], "when": {"status": ["failure"]}},
    ]},
]  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pipeline=st.sampled_from(PIPELINES), run_dir=run_dirs(), data=st.data())
def test_arguments_from_the_pod_decide_alike(
    binary: pathlib.Path, pipeline: dict[str, object], run_dir: tuple[dict[str, Result], frozenset[str]],
    data: st.DataObject,
) -> None:  # fmt: skip
    context = compiling.RunContext(namespace="ci", pipeline="p", uid="u", generation=1)
    pod = pods.build_pod(compiling.compile_spec(pipeline, context, policies.Policy()))
    steps_ = [c for c in pod["spec"]["containers"] if c["name"].startswith("step-")]
    container = data.draw(st.sampled_from(steps_))
    argv = container["args"]
    names = [c["name"] for c in steps_ if c["name"] != container["name"]]
    results, started = run_dir
    # The generated run directory, renamed onto this pipeline's containers.
    renamed = {new: _named(r, new) for new, r in zip(names, results.values(), strict=False)}
    started_ = {new for new, old in zip(names, NAMES, strict=False) if old in started}
    step = stepping.parse_args(argv)
    assert binary_decides(binary, argv, renamed, started_) == core_decides(step, renamed, started_)


@st.composite
def any_results(draw: st.DrawFn) -> Result:
    started = draw(st.none() | st.integers(0, 2**53))
    return Result(
        name=draw(st.sampled_from(NAMES)),
        state=draw(st.sampled_from(list(ResultState))),
        exit_code=draw(st.none() | st.integers(0, 255)),
        started_at=started,
        finished_at=draw(st.none() | st.integers(started or 0, 2**53)),
        reason=draw(st.none() | st.sampled_from([str(w) for w in stepping.Why])),
        message=draw(st.none() | st.text(max_size=stepping.MESSAGE_LIMIT)),
        failing=draw(st.booleans()),
        output_bytes=draw(st.none() | st.integers(0, 2**40)),
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(result=any_results(), limit=st.integers(0, stepping.CONTAINER_MESSAGE_BYTES))
def test_binary_and_core_write_results_alike(binary: pathlib.Path, result: Result, limit: int) -> None:
    case = {"result": json.loads(result.to_json()), "limit": limit}
    done = subprocess.run(
        [str(binary), "encode"],
        input=json.dumps(case),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n") == [result.to_json(), result.to_message(limit), ""]


def test_binary_and_core_share_their_constants_and_names(binary: pathlib.Path) -> None:
    done = subprocess.run([str(binary), "constants"], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "earlyExitCode": stepping.EXIT_EARLY,
        "maxMessage": stepping.MESSAGE_LIMIT,
        "defaultMessageLimit": stepping.CONTAINER_MESSAGE_BYTES,
        "defaultRunDir": stepping.RUN_DIR,
        "defaultTerminationLog": stepping.TERMINATION_LOG,
        "actions": [str(a) for a in stepping.Action],
        "states": [str(s) for s in stepping.ResultState],
        "reasons": [str(w) for w in stepping.Why],
    }
