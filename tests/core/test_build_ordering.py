"""A build's pipelines: when each may start, waits, or ends skipped (``core.builds``), and what the
scheduler makes of it.

Drone's rules, from drone/drone: ``trigger/trigger.go`` (``OnSuccess``/``OnFailure`` from
``trigger.status``; an empty one means success only; a stage without ``depends_on`` is pending at once),
``operator/manager/teardown.go`` (``cancelDownstream`` skips a stage whose dependencies are done when the
build is failing and it has no ``on_failure``, or passing and it has no ``on_success``;
``scheduleDownstream`` starts it otherwise), ``operator/manager/util.go`` (``areDepsComplete``),
``core/stage.go`` (``IsDone``, ``IsFailed``: failing, killed, error). The variables: drone/runner-go
``environ/environ.go`` (``DRONE_BUILD_STATUS``, ``DRONE_FAILED_STAGES``, ``DRONE_STAGE_DEPENDS_ON``).
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from podline.core import builds, compiling, policies, scheduling, statuses

Verdict = builds.Verdict


def body(
    name: str,
    *,
    deps: list[str] | None = None,
    phase: str | None = None,
    run: str | None = "auto",
    trigger_status: list[str] | None = None,
    generation: int = 1,
    rerun: str | None = None,
    build: str | None = "b",
) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": name, "steps": [{"name": "s", "image": "busybox", "commands": ["true"]}]}
    if deps is not None:
        spec["depends_on"] = deps
    if trigger_status is not None:
        spec["trigger"] = {"status": trigger_status}
    meta: dict[str, Any] = {"name": name, "namespace": "ci", "uid": f"uid-{name}", "generation": generation}
    if build:
        meta["labels"] = {"podline.dev/build": build}
    if rerun:
        meta["annotations"] = {"podline.dev/rerun": rerun}
    status = {"phase": phase, "run": run} if phase else {}
    return {"metadata": meta, "spec": spec, "status": status}


def members_of(*bodies: dict[str, Any]) -> dict[str, builds.Member]:
    """The members, each status made about its current run (``run="auto"``) unless a test says otherwise."""
    members = {m.name: m for m in (builds.member_of(b) for b in bodies)}
    current = builds.current_runs(members)
    return {
        n: m if m.status_run != "auto" else builds.Member(**{**m.__dict__, "status_run": current[n]})
        for n, m in members.items()
    }


def gate(name: str, *bodies: dict[str, Any]) -> builds.Gate:
    members = members_of(*bodies)
    return builds.gate(name, members, builds.current_runs(members))


TEST_PUBLISH = [
    # (test's phase, publish's trigger.status, verdict, words)
    (None, None, Verdict.WAIT, "waiting for test (not started)"),
    ("Pending", None, Verdict.WAIT, "waiting for test (Pending)"),
    ("Running", None, Verdict.WAIT, "waiting for test (Running)"),
    ("Succeeded", None, Verdict.START, ""),
    ("Failed", None, Verdict.SKIP, 'pipeline "test" failed'),
    ("Error", None, Verdict.SKIP, 'pipeline "test" failed'),
    ("Cancelled", None, Verdict.SKIP, 'pipeline "test" failed'),  # Drone: killed is failed
    ("Skipped", None, Verdict.START, ""),  # done and not failed: areDepsComplete, IsFailed
    ("Failed", ["failure"], Verdict.START, ""),
    ("Succeeded", ["failure"], Verdict.SKIP, "trigger.status does not include success"),
    ("Failed", ["success", "failure"], Verdict.START, ""),
    ("Succeeded", ["success", "failure"], Verdict.START, ""),
    ("Succeeded", {"exclude": ["failure"]}, Verdict.START, ""),
    ("Failed", {"exclude": ["success"]}, Verdict.START, ""),
    ("Succeeded", {"exclude": ["success"]}, Verdict.SKIP, "trigger.status"),
]


@pytest.mark.parametrize(("phase", "trigger_status", "verdict", "words"), TEST_PUBLISH)
def test_publish_after_test(phase: str | None, trigger_status: Any, verdict: Verdict, words: str) -> None:
    got = gate(
        "publish",
        body("test", phase=phase),
        body("publish", deps=["test"], trigger_status=trigger_status),
    )
    assert got.verdict is verdict
    assert words in got.message
    if verdict is Verdict.WAIT:
        assert got.waiting_for == ("test",)
    if verdict is Verdict.SKIP:
        assert got.reason in (statuses.Reason.DEPENDENCY_FAILED, statuses.Reason.TRIGGER_STATUS)


def test_a_dependency_not_created_yet_is_waited_for_by_name() -> None:
    got = gate("publish", body("publish", deps=["test", "lint"]), body("lint", phase="Succeeded"))
    assert got.verdict is Verdict.WAIT and got.waiting_for == ("test",)
    assert got.message == "waiting for test (not created yet)"


def test_a_status_about_an_older_run_of_the_dependency_is_not_its_end() -> None:
    # test's spec changed (generation 2): its Succeeded is about g1, so publish waits for test's current run
    got = gate(
        "publish", body("test", phase="Succeeded", run="g1", generation=2), body("publish", deps=["test"])
    )
    assert got.verdict is Verdict.WAIT and "test (not started)" in got.message


def test_without_depends_on_a_pipeline_starts_at_once_whatever_its_trigger_status() -> None:
    got = gate("notify", body("test", phase="Running"), body("notify", trigger_status=["failure"]))
    assert got.verdict is Verdict.START  # Drone: a stage without depends_on is pending from the start


@pytest.mark.parametrize(
    ("a", "b", "verdict"),
    [
        ("Succeeded", "Succeeded", Verdict.START),
        ("Succeeded", "Running", Verdict.WAIT),
        ("Failed", "Running", Verdict.WAIT),  # Drone waits for every dependency: areDepsComplete
        ("Failed", "Succeeded", Verdict.SKIP),
        ("Succeeded", "Error", Verdict.SKIP),
    ],
)
def test_fan_in_waits_for_every_dependency(a: str, b: str, verdict: Verdict) -> None:
    got = gate(
        "publish",
        body("test-amd64", phase=a),
        body("test-arm64", phase=b),
        body("publish", deps=["test-amd64", "test-arm64"]),
    )
    assert got.verdict is verdict


def test_a_failure_further_up_skips_the_whole_chain_and_reaches_a_failure_handler() -> None:
    chain = (
        body("build", phase="Failed"),
        body("test", deps=["build"], phase="Skipped"),
        body("publish", deps=["test"]),
        body("notify", deps=["publish"], trigger_status=["failure"]),
    )
    skipped = gate("publish", *chain)
    assert skipped.verdict is Verdict.SKIP and 'pipeline "build" failed' in skipped.message
    notify_chain = (*chain[:2], body("publish", deps=["test"], phase="Skipped"), chain[3])
    notify = gate("notify", *notify_chain)
    assert notify.verdict is Verdict.START
    assert dict(notify.env) == {"DRONE_BUILD_STATUS": "failure", "DRONE_FAILED_STAGES": "build"}


def test_drone_build_status_is_success_when_nothing_failed() -> None:
    got = gate("publish", body("test", phase="Succeeded"), body("publish", deps=["test"]))
    assert dict(got.env) == {"DRONE_BUILD_STATUS": "success"}


@pytest.mark.parametrize(
    ("bodies", "cycle"),
    [
        ([body("a", deps=["a"])], "a -> a"),
        ([body("a", deps=["b"]), body("b", deps=["a"])], "a -> b -> a"),
        ([body("a", deps=["b"]), body("b", deps=["c"]), body("c", deps=["b"])], "b -> c -> b"),
    ],
)
def test_a_cycle_is_refused_naming_it(bodies: list[dict[str, Any]], cycle: str) -> None:
    got = gate("a", *bodies)
    assert got.verdict is Verdict.INVALID and cycle in got.message and "spec.depends_on" in got.message


def test_the_run_of_a_member_includes_its_dependencies_runs() -> None:
    plain = builds.current_runs(members_of(body("test"), body("publish", deps=["test"])))
    assert plain["test"] == "g1" and plain["publish"].startswith("g1-d")
    rerun = builds.current_runs(members_of(body("test", rerun="2"), body("publish", deps=["test"])))
    assert rerun["test"] != plain["test"] and rerun["publish"] != plain["publish"]  # a rerun reruns after
    edited = builds.current_runs(
        members_of(
            body("test"), body("publish", deps=["test"]), body("deploy", deps=["publish"], generation=3)
        )
    )
    assert edited["publish"] == plain["publish"] and edited["deploy"].startswith("g3-d")
    deep = builds.current_runs(
        members_of(
            body("test", generation=2), body("publish", deps=["test"]), body("deploy", deps=["publish"])
        )
    )
    assert deep["deploy"] != edited["deploy"].replace("g3", "g1")  # editing test reruns deploy too


def test_dependents_are_found_by_drone_name() -> None:
    members = members_of(
        body("test"), body("publish", deps=["test"]), body("notify", deps=["test", "publish"])
    )
    assert sorted(builds.dependents("test", members)) == ["notify", "publish"]


def test_build_of_reads_the_label() -> None:
    assert builds.build_of(body("x")) == "b" and builds.build_of(body("x", build=None)) is None


# --- what the scheduler makes of a gate ----------------------------------------------------------------------

NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


def decide(gate_: builds.Gate, status: dict[str, Any] | None = None) -> scheduling.Decision:
    context = compiling.RunContext(
        namespace="ci", pipeline="publish", uid="u", generation=1, build_run="g1-dabc"
    )
    plan = compiling.compile_spec(body("publish")["spec"], context, policies.Policy())
    return scheduling.decide(
        scheduling.Snapshot(
            plan=plan, pod=None, now=NOW, generation=1, run="g1-dabc", status=status or {}, gate=gate_
        )
    )


def conditions(decision: scheduling.Decision) -> dict[str, str]:
    return {c.type: c.status for c in decision.status.conditions}


def test_waiting_is_pending_progressing_and_says_for_what() -> None:
    decision = decide(builds.Gate(Verdict.WAIT, "waiting for test (Running)", waiting_for=("test",)))
    status = decision.status
    assert not decision.create
    assert (status.phase, status.reason) == (statuses.Phase.PENDING, statuses.Reason.WAITING)
    assert status.waiting_for == ["test"] and status.message == "waiting for test (Running)"
    assert status.pod_name is None and status.start_time is None
    assert conditions(decision) == {
        "Ready": "False",
        "Succeeded": "Unknown",
        "Reconciling": "True",
        "Stalled": "False",
    }


def test_skipped_is_terminal_neither_failed_nor_stalled_and_creates_nothing() -> None:
    decision = decide(
        builds.Gate(Verdict.SKIP, 'skipped: pipeline "test" failed', statuses.Reason.DEPENDENCY_FAILED)
    )
    status = decision.status
    assert not decision.create
    assert (status.phase, status.reason) == (statuses.Phase.SKIPPED, statuses.Reason.DEPENDENCY_FAILED)
    assert all(s.state is statuses.StepState.SKIPPED for s in status.steps)
    assert conditions(decision) == {
        "Ready": "False",
        "Succeeded": "False",
        "Reconciling": "False",
        "Stalled": "False",
    }
    assert [(e.type, e.reason) for e in decision.events] == [("Normal", "Skipped")]
    again = decide(builds.Gate(Verdict.SKIP, "x", statuses.Reason.DEPENDENCY_FAILED), status.to_patch())
    assert not again.events and again.status.completion_time == status.completion_time


def test_a_cycle_fails_the_run() -> None:
    decision = decide(builds.Gate(Verdict.INVALID, "spec.depends_on: a dependency cycle: a -> a", "Invalid"))
    assert decision.status.phase is statuses.Phase.FAILED and "cycle" in (decision.status.message or "")


def test_an_open_gate_creates_the_pod_with_the_build_variables() -> None:
    context = compiling.RunContext(
        namespace="ci",
        pipeline="publish",
        uid="u",
        generation=1,
        build_run="g1-dabc",
        build_env=(("DRONE_BUILD_STATUS", "failure"), ("DRONE_FAILED_STAGES", "test")),
    )
    plan = compiling.compile_spec(body("publish", deps=["test"])["spec"], context, policies.Policy())
    decision = scheduling.decide(
        scheduling.Snapshot(
            plan=plan, pod=None, now=NOW, generation=1, run="g1-dabc", gate=builds.Gate(Verdict.START)
        )
    )
    [pod] = [m for m in decision.create if m["kind"] == "Pod"]
    assert pod["metadata"]["name"] == "publish-g1-dabc"
    env = {e["name"]: e.get("value") for c in pod["spec"]["containers"] for e in c.get("env", [])}
    assert env["DRONE_BUILD_STATUS"] == "failure" and env["DRONE_FAILED_STAGES"] == "test"
    assert env["DRONE_STAGE_DEPENDS_ON"] == "test" and env["PODLINE_RUN"] == "g1-dabc"


def test_a_run_that_only_waited_is_no_history() -> None:
    waited = decide(builds.Gate(Verdict.WAIT, "waiting for test (not created yet)", waiting_for=("test",)))
    context = compiling.RunContext(
        namespace="ci", pipeline="publish", uid="u", generation=1, build_run="g1-dnew"
    )
    plan = compiling.compile_spec(body("publish")["spec"], context, policies.Policy())
    later = scheduling.decide(
        scheduling.Snapshot(
            plan=plan,
            pod=None,
            now=NOW,
            generation=1,
            run="g1-dnew",
            status=waited.status.to_patch(),
            gate=None,
        )
    )
    assert later.status.history == []


def test_twins_of_one_drone_name_cannot_be_told_apart() -> None:
    got = builds.twins("test", ["test", "test-copy"], "app")
    assert got.verdict is Verdict.INVALID
    assert got.message.startswith('spec.name: Pipelines test, test-copy of build "app" are all named "test"')


@pytest.mark.parametrize(
    ("docs", "problems"),
    [
        ([{"name": "a"}, {"name": "b", "depends_on": ["a"]}], []),
        ([{"name": "a", "depends_on": ["x"]}], ['f[0].depends_on[0]: unknown pipeline "x"']),
        ([{"name": "a"}, {"name": "A"}], ['f[1].name: "A" is the name of f[0] too (as a resource)']),
        ([{}, {"name": "default"}], ['f[1].name: "default" is the name of f[0] too (as a resource)']),
        ([{"name": "a", "depends_on": ["a"]}], ["f[0].depends_on: a dependency cycle: a -> a"]),
    ],
)
def test_what_convert_refuses_in_one_file(docs: list[dict[str, Any]], problems: list[str]) -> None:
    found = builds.check_file([(f"f[{i}]", d) for i, d in enumerate(docs)])
    assert [str(p) for p in found] == problems


def test_order_and_outcome_of_a_build() -> None:
    members = members_of(body("c", deps=["b"]), body("b", deps=["a"]), body("a"), body("z"))
    assert builds.order(members) == ["a", "z", "b", "c"]
    assert builds.outcome(["Succeeded", "Skipped"]) == "Succeeded"
    assert builds.outcome(["Succeeded", "Failed", "Skipped"]) == "Failed"
    assert builds.outcome(["Succeeded", "Pending"]) == "Running"
    assert builds.outcome(["Cancelled", None]) == "Running"


def test_a_missing_dependency_does_not_turn_a_begun_run_into_another() -> None:
    """An operator that has just started may see a Pipeline before the ones it depends on; a dependency may
    be deleted after its dependents ran. Neither may stop a run that has begun, or run it again."""
    full = members_of(body("test"), body("publish", deps=["test"]), body("notify", deps=["publish"]))
    runs = builds.current_runs(full)
    began = body("publish", deps=["test"], phase="Running", run=runs["publish"])
    ended = body("notify", deps=["publish"], phase="Succeeded", run=runs["notify"])
    alone = builds.current_runs(members_of(began, ended))  # test not seen (yet, or any more)
    assert alone == {"publish": runs["publish"], "notify": runs["notify"]}
    waited = body("publish", deps=["test"], phase="Pending", run="g1-dold")
    waited["status"]["reason"] = "WaitingForDependencies"
    assert builds.current_runs(members_of(waited))["publish"] != "g1-dold"  # a wait is no run: recomputed
    edited = body("publish", deps=["test"], phase="Succeeded", run=runs["publish"], generation=2)
    assert builds.current_runs(members_of(edited))["publish"].startswith("g2-d")  # its own spec changed
