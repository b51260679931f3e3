"""The scheduler against a model pod that sequences its steps itself, over generated runs (hypothesis).

The model plays the kubelet and the entrypoints of one run's pod as ``docs/in-pod.md`` says: the prepare
container installs the entrypoint (no other container is created before its hook has run); every container
then runs its own image from the start; each step's entrypoint waits for its turn and decides with
``stepping.decide`` over the run directory (results, started markers), exactly as the binary does, then runs
its command or skips, and ends with its result as the container's termination message. A step whose image
cannot be pulled waits with the kubelet's pull error until the operator gives it the runner image, which
records the failure in the step's turn. A stop patch ends the pod as the kubelet does (SIGTERM: waiting
entrypoints record a skip, running commands are stopped; containers never started are lost).

Hypothesis picks the pipeline, each step's exit code and image (pullable, not found, never present,
unreachable), mishaps (a container that cannot start), how far the pod gets between two looks of the operator
(the operator may be away for long), and how much time passes. Whatever the interleaving:
  * every run ends, and the pod with it;
  * no patch ever touches a step that has run: only a container still waiting for its image gets the runner
    image, and an ended pod is never patched;
  * an operator restarted at any point (deciding from the pod alone, without the status it wrote) decides the
    same patch and the same outcome;
  * the final status agrees with what the pod did, and with a reference evaluation of Drone's rules over the
    order in which steps got their turn (for a pipeline without detached steps, over the plan alone);
  * the status reads the same once the stopped pod has ended, and Events are few.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from podline.core import compiling, conventions, plans, policies, scheduling, statuses, stepping
from podline.core.stepping import Action, Result, ResultState

from tests.core import podstates as ps

POLICY = policies.Policy()
RUNNER = POLICY.runner_image
CONTEXT = compiling.RunContext(namespace="ci", pipeline="sim", uid="uid-sim", generation=1)
IMAGES = ["alpine:3.20", "busybox:1.36", "golang:1.22", "python:3.12"]
CODES = [0, 0, 0, 1, 2, 78, 137]
PULLS = ["ok", "ok", "ok", "ok", "not-found", "never", "unreachable"]
PULL_ERRORS = {
    "not-found": ("ErrImagePull", ps.NOT_FOUND),
    "never": ("ErrImageNeverPull", ps.NEVER_PULL),
    "unreachable": ("ErrImagePull", ps.REFUSED),
}
TERMINATED = {"done", "crashed", "lost", "exited"}


@dataclass(frozen=True)
class Fate:
    """What will happen to one step: its command's exit code, its image's pull, whether it can start."""

    code: int = 0
    pull: str = "ok"
    crash: bool = False  # the container cannot start (StartError): no entrypoint, no result


@dataclass
class Turn:
    """A step's entrypoint deciding: what it decided, and over which results."""

    action: Action
    reason: str | None
    seen: dict[str, Result]


@dataclass
class ModelPod:
    """One run's pod: the kubelet's part and the entrypoints' part."""

    plan: plans.RunPlan
    manifest: dict[str, Any]
    fates: dict[str, Fate]
    images: dict[str, str] = field(default_factory=dict)
    state: dict[str, str] = field(
        default_factory=dict
    )  # absent, pull-error, entry, command, done, crashed, lost,
    # running (services, the prepare container), exited
    results: dict[str, Result] = field(default_factory=dict)  # the run directory
    started: set[str] = field(default_factory=set)
    turns: dict[str, Turn] = field(default_factory=dict)
    stopped_mid_run: set[str] = field(default_factory=set)
    notes: dict[str, str] = field(default_factory=dict)
    rv: int = 1
    phase: str = "Pending"
    reason: str | None = None
    stopping: bool = False
    clock: float = 0

    def __post_init__(self) -> None:
        self.images = {c["name"]: c["image"] for c in self.manifest["spec"]["containers"]}
        self.args = {
            c["name"]: stepping.parse_args(c["args"])
            for c in self.manifest["spec"]["containers"]
            if c.get("command") == [stepping.BINARY]
        }
        self.state = {name: "absent" for name in self.images}
        self.notes = dict(self.manifest["metadata"]["annotations"])

    # --- what can happen next ------------------------------------------------------------------------------------

    def ended(self) -> bool:
        return self.phase in ("Succeeded", "Failed")

    def moves(self) -> list[str]:
        if self.ended():
            return []
        if self.stopping:
            return ["<stop>"]
        out = []
        for name, state in self.state.items():
            if name == stepping.PREPARE_CONTAINER:
                if state in ("absent", "running"):
                    out.append(name)
            elif self.state[stepping.PREPARE_CONTAINER] == "absent":
                continue  # the kubelet starts nothing more until the prepare container's hook has run
            elif (
                state == "absent"
                or (state == "pull-error" and self.images[name] == RUNNER)
                or state == "entry"
                and self._decision(name).action is not Action.WAIT
                or state == "command"
            ):
                out.append(name)
        return out

    def _decision(self, name: str) -> stepping.Decision:
        return stepping.decide(self.args[name], self.results, self.started)

    def move(self, name: str) -> None:
        if name == "<stop>":
            self._stop()
        elif name == stepping.PREPARE_CONTAINER:
            self.state[name] = "running" if self.state[name] == "absent" else "exited"
            self.phase = "Running"
        elif not self.plan.container(name).is_step:
            self.state[name] = "running"
        elif self.state[name] in ("absent", "pull-error"):
            self._create(name)
        elif self.state[name] == "entry":
            self._turn(name)
        elif self.state[name] == "command":
            code = self.fates[name].code
            state = ResultState.SUCCEEDED if code in (0, stepping.EXIT_EARLY) else ResultState.FAILED
            self._record(
                name,
                Result(
                    name,
                    state,
                    code,
                    self._started_ms(name),
                    ps.ms(self.clock),
                    failing=stepping.is_failing(self.args[name], state),
                ),
            )
        self._end_by_itself()

    def _create(self, name: str) -> None:
        fate = self.fates[name]
        if self.images[name] != RUNNER and fate.crash:
            self.state[name] = "crashed"
        elif self.images[name] != RUNNER and fate.pull != "ok":
            self.state[name] = "pull-error"
        else:
            self.state[name] = "entry"

    def _turn(self, name: str) -> None:
        decision = self._decision(name)
        self.turns[name] = Turn(decision.action, decision.reason, dict(self.results))
        if decision.action is Action.SKIP:
            self._record(
                name, Result(name, ResultState.SKIPPED, finished_at=ps.ms(self.clock), reason=decision.reason)
            )
            return
        self.started.add(name)
        self.start_ms = getattr(self, "start_ms", {})
        self.start_ms[name] = ps.ms(self.clock)
        if self.images[name] == RUNNER:  # standing in for an image that cannot be pulled
            self._record(
                name,
                Result(
                    name,
                    ResultState.FAILED,
                    1,
                    ps.ms(self.clock),
                    ps.ms(self.clock),
                    reason=stepping.Why.IMAGE_PULL_FAILED,
                    failing=stepping.is_failing(self.args[name], ResultState.FAILED),
                ),
            )
        else:
            self.state[name] = "command"

    def _started_ms(self, name: str) -> int:
        started: dict[str, int] = getattr(self, "start_ms", {})
        return started[name]

    def _record(self, name: str, result: Result) -> None:
        self.results[name] = result
        self.state[name] = "done"

    def _stop(self) -> None:
        """The deadline passed: the kubelet sends SIGTERM to every container and ends the pod."""
        for name, state in self.state.items():
            if state == "entry":
                self._record(
                    name,
                    Result(
                        name, ResultState.SKIPPED, finished_at=ps.ms(self.clock), reason=stepping.Why.STOPPED
                    ),
                )
            elif state == "command":
                self.stopped_mid_run.add(name)
                self._record(
                    name,
                    Result(
                        name,
                        ResultState.FAILED,
                        143,
                        self._started_ms(name),
                        ps.ms(self.clock),
                        reason=stepping.Why.STOPPED,
                        failing=stepping.is_failing(self.args[name], ResultState.FAILED),
                    ),
                )
            elif state == "running":
                self.state[name] = "exited"
            elif state in ("absent", "pull-error"):
                self.state[name] = "lost"
        self.phase, self.reason = "Failed", "DeadlineExceeded"

    def _end_by_itself(self) -> None:
        if all(s in TERMINATED for s in self.state.values()):
            ok = all(self._exit_code(n) == 0 for n in self.state)
            self.phase = "Succeeded" if ok else "Failed"

    def _exit_code(self, name: str) -> int:
        state = self.state[name]
        if state == "done":
            r = self.results[name]
            return r.exit_code if r.exit_code is not None else (1 if r.state is ResultState.FAILED else 0)
        return (
            0
            if state == "exited" and name == stepping.PREPARE_CONTAINER
            else 137
            if state != "exited"
            else 143
        )

    # --- what the API shows, and what the operator does to it ----------------------------------------------------

    def view(self) -> dict[str, Any]:
        out = []
        for name, state in self.state.items():
            image = self.images[name]
            if name == stepping.PREPARE_CONTAINER:
                out.append(
                    {
                        "absent": ps.prepare_waiting("ContainerCreating"),
                        "running": ps.prepare_running(),
                        "exited": ps.prepare_done(),
                    }.get(state, ps.prepare_done())
                )
            elif state == "absent":
                out.append(ps.waiting(name, image))
            elif state == "pull-error":
                reason, message = PULL_ERRORS[self.fates[name].pull]
                out.append(ps.waiting(name, image, reason, message))
            elif state in ("entry", "command"):
                out.append(ps.entry(name, image))
            elif state == "crashed":
                out.append(ps.crashed(name, image))
            elif state == "lost":
                out.append(ps.lost(name, image))
            elif state == "running":
                out.append(ps.service_running(name, image))
            elif state == "exited":
                out.append(ps.service_exited(name, image, 143))
            else:
                r = self.results[name]
                term = {
                    "exitCode": self._exit_code(name),
                    "reason": "Completed" if self._exit_code(name) == 0 else "Error",
                    "message": r.to_message(self.args[name].message_limit),
                    "containerID": ps.cid(name),
                    "startedAt": ps.ts(0),
                    "finishedAt": ps.ts(self.clock),
                }
                out.append(
                    {
                        "name": name,
                        "image": ps.kubelet_image(image),
                        "containerID": ps.cid(name),
                        "state": {"terminated": term},
                        "restartCount": 0,
                    }
                )
        status: dict[str, Any] = {"phase": self.phase, "startTime": ps.ts(0), "containerStatuses": out}
        if self.reason:
            status["reason"] = self.reason
        metadata = {
            **copy.deepcopy(self.manifest["metadata"]),
            "annotations": dict(self.notes),
            "resourceVersion": str(self.rv),
            "creationTimestamp": ps.ts(0),
        }
        return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "status": status}

    def apply(self, patch: Mapping[str, Any] | None) -> None:
        if not patch:
            return
        assert not self.ended(), "an ended pod was patched"
        assert patch["metadata"]["resourceVersion"] == str(self.rv), "an unconditional patch"
        self.notes.update(patch["metadata"].get("annotations", {}))
        self.rv += 1
        for c in patch.get("spec", {}).get("containers", []):
            name = c["name"]
            # No patch touches a step that has run: only one still waiting for its image is given the runner image.
            assert self.state[name] == "pull-error", (name, self.state[name])
            assert name not in self.started and name not in self.results, name
            assert set(c) == {"name", "image"} and c["image"] == RUNNER, c
            self.images[name] = c["image"]
        if patch.get("spec", {}).get("activeDeadlineSeconds") == 1:
            self.stopping = True


# --- generated runs ---------------------------------------------------------------------------------------------------


@st.composite
def runs(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Fate]]:
    count = draw(st.integers(1, 5))
    dag = draw(st.booleans())
    steps: list[dict[str, Any]] = []
    for index in range(count):
        step: dict[str, Any] = {
            "name": f"s{index}",
            "image": draw(st.sampled_from(IMAGES)),
            "commands": ["true"],
        }
        if dag and index:
            step["depends_on"] = draw(
                st.lists(st.sampled_from([f"s{i}" for i in range(index)]), max_size=2, unique=True)
            )
        when = draw(st.sampled_from([None, None, ["failure"], ["success", "failure"]]))
        if when:
            step["when"] = {"status": when}
        if draw(st.integers(0, 4)) == 0:
            step["failure"] = "ignore"
        if draw(st.integers(0, 6)) == 0:
            step["detach"] = True
        steps.append(step)
    spec: dict[str, Any] = {"steps": steps}
    if draw(st.booleans()):
        spec["services"] = [{"name": "db", "image": "postgres:16"}]
    fates = {}
    for s in steps:
        crash = not s.get("detach") and draw(st.integers(0, 12)) == 0
        fates[conventions.step_container(s["name"])] = Fate(
            draw(st.sampled_from(CODES)), draw(st.sampled_from(PULLS)), crash
        )
    return spec, fates


def outline(status: statuses.PipelineStatus) -> Any:
    return (
        status.phase,
        status.reason,
        status.message,
        status.current_step,
        [(s.name, s.state, s.exit_code, s.reason) for s in status.steps],
    )


def decide(
    plan: plans.RunPlan, pod: dict[str, Any] | None, now: float, status: Mapping[str, Any]
) -> scheduling.Decision:
    return scheduling.decide(
        scheduling.Snapshot(plan=plan, pod=pod, now=ps.at(now), generation=1, run=plan.run, status=status)
    )


# --- the reference: Drone's rules -------------------------------------------------------------------------------------


def fails_the_run(c: plans.ContainerPlan) -> bool:
    return not c.ignore_failure and not c.detach


def reference(
    plan: plans.RunPlan, fates: Mapping[str, Fate], pod: ModelPod
) -> dict[str, tuple[str, int | None]]:
    """Each step's (state, exit code) by Drone's rules, over the order in which steps got their turn in the pod."""
    out: dict[str, tuple[str, int | None]] = {}
    for c in plan.steps:
        turn = pod.turns.get(c.name)
        fate = fates[c.name]
        if turn is None:
            out[c.name] = ("failed", 128) if pod.state[c.name] == "crashed" else ("skipped", None)
            continue
        seen = {n: plan.container(n) for n in turn.seen}
        early = any(r.exit_code == stepping.EXIT_EARLY for r in turn.seen.values())
        failing = any(r.state is ResultState.FAILED and fails_the_run(seen[n]) for n, r in turn.seen.items())
        deps_done = all(
            d in turn.seen or (plan.container(d).detach and d in pod.started) for d in c.depends_on
        )
        runs_ = not early and not c.excluded and (c.run_on_failure if failing else c.run_on_success)
        assert deps_done or early, f"{c.name} had its turn before its dependencies were done"
        assert (turn.action is Action.RUN) == runs_, (c.name, turn)
        if not runs_:
            out[c.name] = ("skipped", None)
        elif pod.images[c.name] == RUNNER:
            out[c.name] = ("failed", 1)
        elif c.name in pod.stopped_mid_run:
            out[c.name] = ("failed", 143)
        else:
            out[c.name] = ("succeeded" if fate.code in (0, stepping.EXIT_EARLY) else "failed", fate.code)
    return out


def sequential(plan: plans.RunPlan, fates: Mapping[str, Fate]) -> list[tuple[str, int | None]] | None:
    """Drone's outcome of a pipeline of steps one after the other, from the plan alone (None when a step's
    container cannot start: the run is then cut short whenever that shows, whatever the step's turn)."""
    if any(f.crash for f in fates.values()):
        return None
    out: list[tuple[str, int | None]] = []
    failing = early = False
    for c in plan.steps:
        fate = fates[c.name]
        if early or c.excluded or not (c.run_on_failure if failing else c.run_on_success):
            out.append(("skipped", None))
            continue
        if fate.pull != "ok":
            out.append(("failed", 1))
            failing = failing or fails_the_run(c)
            continue
        ok = fate.code in (0, stepping.EXIT_EARLY)
        out.append(("succeeded" if ok else "failed", fate.code))
        failing = failing or (not ok and fails_the_run(c))
        early = early or fate.code == stepping.EXIT_EARLY
    return out


# --- the property ---------------------------------------------------------------------------------------------------


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow], report_multiple_bugs=False
)
@given(runs(), st.data())
def test_any_interleaving_runs_to_the_end_drone_would_reach(
    run: tuple[dict[str, Any], dict[str, Fate]], data: st.DataObject
) -> None:
    spec, fates = run
    plan = compiling.compile_spec(spec, CONTEXT, POLICY)
    created = decide(plan, None, 0, {})
    (manifest,) = created.create
    pod = ModelPod(plan, manifest, fates)
    status = created.status.to_patch()
    events = list(created.events)
    now = 0.0
    patched = True
    for _ in range(500):
        # The pod goes on between two looks of the operator (at least one move when the last look did nothing).
        for _ in range(data.draw(st.integers(0 if patched else 1, 4), label="pod moves")):
            moves = pod.moves()
            if not moves:
                break
            pod.move(data.draw(st.sampled_from(moves), label="move"))
        now += data.draw(st.integers(0, 20), label="seconds")
        pod.clock = now
        observed = pod.view()
        decision = decide(plan, observed, now, status)
        # An operator restarted now decides from the pod alone, and decides the same.
        fresh = decide(plan, observed, now, {})
        assert fresh.pod_patch == decision.pod_patch
        assert fresh.requeue_after == decision.requeue_after
        assert outline(fresh.status) == outline(decision.status)
        pod.apply(decision.pod_patch)
        patched = decision.pod_patch is not None
        events.extend(decision.events)
        status = decision.status.to_patch()
        phase = statuses.Phase(status["phase"])
        if pod.ended() and phase.is_terminal:
            break
        if not pod.moves() and decision.pod_patch is None:
            assert not phase.is_terminal or pod.ended(), "the run ended and left its pod running"
            assert decision.requeue_after is not None, f"stuck: nothing can move and the run is {phase}"
            now += math.ceil(decision.requeue_after)  # the operator looks again when it said it would
            event("the operator looked again when it said it would")
    final = statuses.PipelineStatus.model_validate(status)
    assert final.phase is not None and final.phase.is_terminal and pod.ended(), (final.phase, pod.state)
    assert final.phase in (statuses.Phase.SUCCEEDED, statuses.Phase.FAILED), final.message
    last = decide(plan, pod.view(), now + 60, status)
    assert outline(last.status) == outline(final) and last.events == () and last.pod_patch is None

    for what, happened in [
        (
            "a stand-in recorded a failure",
            any(i == RUNNER for n, i in pod.images.items() if n in pod.started),
        ),
        ("the pod was stopped", pod.reason == "DeadlineExceeded"),
        ("a container could not start", "crashed" in pod.state.values()),
        ("an early exit", any(r.exit_code == stepping.EXIT_EARLY for r in pod.results.values())),
    ]:
        if happened:
            event(what)
    event(f"ended {final.phase} {final.reason}")
    # The status agrees with what the pod did, and what the pod did follows Drone's rules.
    want = reference(plan, fates, pod)
    by_name = {s.container: s for s in final.steps}
    for c in plan.steps:
        s = by_name[c.name]
        state, code = want[c.name]
        if (
            c.detach
            and (c.name in pod.stopped_mid_run or c.name not in pod.turns)
            and (s.state, s.reason) == ("succeeded", "Detached")
        ):
            continue  # running at the end (its entrypoint perhaps still deciding): stopped with the pod, no failure
        assert (s.state, s.exit_code) == (state, code), (c.name, s, pod.turns.get(c.name))
        if pod.images[c.name] == RUNNER and state == "failed":
            assert s.reason == PULL_ERRORS[fates[c.name].pull][0], s
    # A pipeline of steps one after the other, without detached steps: Drone's outcome follows from the plan alone.
    one_by_one = all(c.depends_on == (p.name,) for p, c in zip(plan.steps, plan.steps[1:], strict=False))
    expected = sequential(plan, fates)
    if (
        one_by_one
        and not plan.steps[0].depends_on
        and not any(c.detach for c in plan.steps)
        and expected is not None
    ):
        assert [(by_name[c.name].state, by_name[c.name].exit_code) for c in plan.steps] == expected
    # A step that could not start holds up the steps after it for ever: the operator stops the run.
    crashed = {c.name for c in plan.steps if pod.state[c.name] == "crashed"}
    held: set[str] = set()
    for c in plan.steps:
        if any(d in crashed or d in held for d in c.depends_on):
            held.add(c.name)
    stuck = any(name not in pod.turns and name not in crashed for name in held)
    failed = [c for c in plan.steps if fails_the_run(c) and by_name[c.name].state == "failed"]
    early = any(by_name[c.name].exit_code == stepping.EXIT_EARLY for c in plan.steps)
    if stuck and early:  # which showed first, the early exit or the step that could not start, decides
        assert (final.phase, final.reason) in (("Failed", "StepFailed"), ("Succeeded", "EarlyExit")), final
    elif failed or stuck:
        assert (final.phase, final.reason) == ("Failed", "StepFailed"), final
    else:
        assert (final.phase, final.reason) == ("Succeeded", "EarlyExit" if early else "Succeeded"), final
    # Few events: the run's end once, started at most once, a step's failure once. (A stop can catch a step the
    # moment its turn came, its container running: it is told failed, Stopped, and its entrypoint then records a
    # skip; so a failure event may name a step the end shows skipped.)
    reasons = [e.reason for e in events]
    assert reasons.count(str(final.phase)) == 1
    assert reasons.count("Started") <= 1
    failures = [e.message.split('"')[1] for e in events if e.reason == "StepFailed"]
    assert len(failures) == len(set(failures)), failures
    assert {s.name for s in final.steps if s.state == "failed"} <= set(failures)
    assert all(by_name[conventions.step_container(n)].state in ("failed", "skipped") for n in failures)
