"""The in-pod decision (run, skip or wait) and the entrypoint's arguments, as the core states them."""

from __future__ import annotations

import pytest
from podline.core import compiling, plans, policies, stepping
from podline.core.stepping import Action, Result, ResultState, StepArgs

OK = ResultState.SUCCEEDED
FAILED = ResultState.FAILED
SKIPPED = ResultState.SKIPPED


def result(name: str, state: ResultState = OK, code: int | None = 0, failing: bool | None = None) -> Result:
    return Result(
        name=name, state=state, exit_code=code, failing=state is FAILED if failing is None else failing
    )


@pytest.mark.parametrize(
    ("step", "results", "started", "want"),
    [
        (StepArgs("b", after=("a",)), {}, (), (Action.WAIT, None)),
        (StepArgs("b", after=("a",)), {"a": result("a")}, (), (Action.RUN, None)),
        (StepArgs("b"), {}, (), (Action.RUN, None)),
        (StepArgs("c", after=("a", "b")), {"a": result("a")}, (), (Action.WAIT, None)),
        # a failing run: success-only steps skip, failure steps run
        (StepArgs("b", after=("a",)), {"a": result("a", FAILED, 1)}, (), (Action.SKIP, "Skipped")),
        (StepArgs("b", after=("a",), on_failure=True), {"a": result("a", FAILED, 1)}, (), (Action.RUN, None)),
        (
            StepArgs("b", after=("a",), on_success=False, on_failure=True),
            {"a": result("a")},
            (),
            (Action.SKIP, "Skipped"),
        ),
        # an ignored failure is not failing
        (StepArgs("b", after=("a",)), {"a": result("a", FAILED, 1, failing=False)}, (), (Action.RUN, None)),
        # failing counts every result present, not only the dependencies
        (
            StepArgs("c", after=("b",)),
            {"a": result("a", FAILED, 2), "b": result("b")},
            (),
            (Action.SKIP, "Skipped"),
        ),
        # exit 78 anywhere ends the run early, even for a step still waiting
        (StepArgs("c", after=("b",)), {"a": result("a", OK, 78)}, (), (Action.SKIP, "EarlyExit")),
        (StepArgs("b", after=("a",), excluded=True), {"a": result("a")}, (), (Action.SKIP, "Skipped")),
        (StepArgs("b", after=("a",), excluded=True), {}, (), (Action.WAIT, None)),
        # a detached dependency counts once it has started
        (StepArgs("b", after=("a",), detached=("a",)), {}, ("a",), (Action.RUN, None)),
        (StepArgs("b", after=("a",)), {}, ("a",), (Action.WAIT, None)),
        (
            StepArgs("b", after=("a",), detached=("a",)),
            {"a": result("a", SKIPPED, None)},
            (),
            (Action.RUN, None),
        ),
    ],
)
def test_decide(
    step: StepArgs, results: dict[str, Result], started: tuple[str, ...], want: tuple[Action, str | None]
) -> None:
    decision = stepping.decide(step, results, started)
    assert (decision.action, decision.reason) == want


def _plan(spec: dict[str, object], **policy: object) -> plans.RunPlan:
    context = compiling.RunContext(namespace="ci", pipeline="p", uid="u", generation=1)
    return compiling.compile_spec(spec, context, policies.Policy(**policy))  # type: ignore[arg-type]


def test_args_round_trip_every_flag() -> None:
    plan = _plan(
        {
            "steps": [
                {"name": "a", "image": "busybox", "commands": ["true"], "detach": True},
                {
                    "name": "b",
                    "image": "busybox",
                    "commands": ["false"],
                    "failure": "ignore",
                    "depends_on": ["a"],
                },
                {
                    "name": "c",
                    "image": "busybox",
                    "commands": ["true"],
                    "depends_on": ["a", "b"],
                    "when": {"status": ["failure"], "branch": ["nope"]},
                    "environment": {"TOKEN": {"from_secret": "s/k"}},
                },
            ]
        },
        step_timeout_seconds=30,
        log_limit_bytes=1000,
    )
    c = plan.container("step-c")
    args = stepping.args_for(plan, c, ["/bin/sh", "-c", "echo -- hi"])
    parsed = stepping.parse_args(args)
    assert parsed == StepArgs(
        name="step-c",
        after=("step-a", "step-b"),
        detached=("step-a",),
        on_success=False,
        on_failure=True,
        excluded=c.excluded,
        timeout_seconds=30,
        message_limit=12288 // 4,
        log_dir=stepping.LOG_DIR,
        log_limit=1000,
        mask=("TOKEN",),
        command=("/bin/sh", "-c", "echo -- hi"),
    )
    b = stepping.parse_args(stepping.args_for(plan, plan.container("step-b"), ["x"]))
    assert b.ignore_failure and b.after == ("step-a",) and b.on_success and not b.on_failure
    assert stepping.parse_args(stepping.args_for(plan, plan.container("step-a"), ["x"])).detach


@pytest.mark.parametrize(
    "argv", [[], ["wait"], ["run"], ["run", "--name=a", "--on=sometimes"], ["run", "--bogus"]]
)
def test_bad_args_are_refused(argv: list[str]) -> None:
    with pytest.raises(stepping.BadArgs):
        stepping.parse_args(argv)


@pytest.mark.parametrize(
    ("text", "want"),
    [
        (
            (
                '{"name":"a","state":"succeeded","exitCode":0,"startedAt":1,"finishedAt":2,"reason":null,'
                '"message":null,"failing":false}'
            ),
            Result("a", OK, 0, 1, 2),
        ),
        (
            '{"name":"a","state":"skipped","exitCode":null,"reason":"EarlyExit"}',
            Result("a", SKIPPED, reason="EarlyExit"),
        ),
        ("", None),
        (None, None),
        ("exit status 1", None),
        ("{not json", None),
        ('{"name":"a","state":"odd"}', None),
        ('{"state":"failed"}', None),
    ],
)
def test_parse_result(text: str | None, want: Result | None) -> None:
    assert stepping.parse_result(text) == want


def test_result_json_round_trip() -> None:
    r = Result("step-a", FAILED, 124, 10, 20, "StepTimeout", "the step exceeded its timeout of 5s", True)
    assert stepping.parse_result(r.to_json()) == r


@pytest.mark.parametrize("containers", [1, 3, 31, 100, 201])
def test_a_termination_message_fits_what_the_kubelet_keeps_and_reads_back(containers: int) -> None:
    limit = stepping.message_limit(containers)
    assert limit == min(4096, 12288 // containers)
    r = Result(
        "step-a",
        FAILED,
        137,
        1764579600123,
        1764579605126,
        "StepTimeout",
        "the step exceeded its timeout",
        True,
    )
    text = r.to_message(limit)
    assert len(text.encode()) <= max(limit, 61)
    back = stepping.parse_message("step-a", text)
    assert back is not None
    assert (back.state, back.exit_code, back.started_at, back.finished_at) == (
        FAILED,
        137,
        r.started_at,
        r.finished_at,
    )
    if limit >= 4096:
        assert (back.reason, back.message) == (r.reason, r.message)


def test_a_termination_message_cut_short_is_no_result() -> None:
    text = Result("step-a", OK, 0, 1764579600123, 1764579600200).to_message()
    assert stepping.parse_message("step-a", text[:20]) is None
    assert stepping.parse_message("step-a", Result("step-a", OK, 0, 1, 2).to_json()) == Result(
        "step-a", OK, 0, 1, 2
    )


def test_the_message_limit_reaches_the_entrypoint() -> None:
    plan = _plan({"steps": [{"name": f"s{i}", "image": "busybox", "commands": ["true"]} for i in range(30)]})
    args = stepping.parse_args(stepping.args_for(plan, plan.container("step-s0"), ["true"]))
    assert args.message_limit == 12288 // 31
