"""A run goes on while the operator is away, and what the operator decided is recorded in the pod.

The pod is the complete record of a run: the steps sequence themselves (``docs/in-pod.md``), and what the
operator decides from evidence that does not last (a pull error, a missing Secret) is written into the pod
with the decision (``killed.podline.dev/<container>``). So an operator that comes back after any absence,
with or without the status it wrote before, reads the same run; and once the kubelet has stopped the pod
(waiting reasons gone, containers that never started reported lost), the run still reads the same.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from podline.core import compiling, conventions, plans, pods, policies, scheduling, statuses

from tests.core import podstates as ps
from tests.core.test_scheduler_simulation import Fate, ModelPod, outline, runs

POLICY = policies.Policy()
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def plan_of(spec: dict[str, Any]) -> plans.RunPlan:
    context = compiling.RunContext(namespace="ns", pipeline="p", uid="u", generation=1)
    return compiling.compile_spec(spec, context, POLICY)


def decide(
    plan: plans.RunPlan, pod: dict[str, Any] | None, now: float, status: dict[str, Any]
) -> scheduling.Decision:
    return scheduling.decide(
        scheduling.Snapshot(plan=plan, pod=pod, now=ps.at(now), generation=1, run=plan.run, status=status)
    )


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(runs(), st.data())
def test_a_run_the_operator_was_away_for_reads_as_one_it_watched(
    run: tuple[dict[str, Any], dict[str, Fate]], data: st.DataObject
) -> None:
    """With every image there, the pod needs the operator only to be stopped at the end: it runs to its end
    unwatched, and the operator that comes back reads what an operator that watched every move read."""
    spec, fates = run
    fates = {
        name: Fate(code=f.code) for name, f in fates.items()
    }  # every image pulls, every container starts
    plan = plan_of(spec)
    created = decide(plan, None, 0, {})
    pod = ModelPod(plan, created.create[0], fates)
    watched = created.status.to_patch()
    looks = 0
    now = 0
    while pod.moves():
        pod.move(data.draw(st.sampled_from(pod.moves()), label="move"))
        now += 1
        pod.clock = now
        if data.draw(st.booleans(), label="the watching operator looks"):
            decision = decide(plan, pod.view(), now, watched)
            looks += 1
            assert (
                decision.pod_patch is None or statuses.Phase(decision.status.phase or "Running").is_terminal
            )
            if decision.pod_patch is not None:
                break  # the run is over; the stop comes next
            watched = decision.status.to_patch()
    back = decide(plan, pod.view(), now + 1, created.status.to_patch())  # the operator comes back, once
    last = decide(plan, pod.view(), now + 1, watched)
    assert outline(back.status) == outline(last.status)
    assert back.pod_patch == last.pod_patch
    assert back.status.phase is not None and back.status.phase.is_terminal, back.status
    reasons = [e.reason for e in back.events]
    assert reasons[-1] == str(back.status.phase) and reasons.count(str(back.status.phase)) == 1
    ran = any(x.state in ("succeeded", "failed") for x in back.status.steps)
    assert reasons.count("Started") == int(ran) and (not ran or reasons[0] == "Started")
    if (
        back.pod_patch is not None
    ):  # something still runs (services, detached steps): stopped, then read again
        pod.apply(back.pod_patch)
        while pod.moves():
            pod.move(pod.moves()[0])
        after = decide(plan, pod.view(), now + 2, back.status.to_patch())
        assert (
            outline(after.status) == outline(back.status) and after.events == () and after.pod_patch is None
        )


ABSENT = "localhost:5101/busybox:absent"
SPEC: dict[str, Any] = {
    "steps": [
        {"name": "s", "image": ABSENT, "pull": "never", "commands": ["true"]},
        {"name": "after", "image": "busybox", "commands": ["true"], "when": {"status": ["failure"]}},
    ],
    "services": [{"name": "db", "image": "postgres:16"}],
}


def test_a_stand_in_for_an_image_never_present_reads_the_same_after_the_pod_is_stopped() -> None:
    """Found on the node tier (in the placeholder design): a `pull: never` step failed, the pod was stopped,
    and the kubelet then showed the container terminated with ContainerStatusUnknown; the run went back to
    Running. Now the stand-in's failure and why are in the pod, and the failure steps after it run."""
    plan = plan_of(SPEC)
    s, after = "step-s", "step-after"
    image = ABSENT
    pulling = ps.pod(
        plan,
        ps.service_running("svc-db", "postgres:16"),
        ps.waiting(
            s,
            image,
            "ErrImageNeverPull",
            f'Container image "{image}" is not present with pull policy of Never',
        ),
        ps.entry(after, "busybox"),
    )
    first = decide(plan, pulling, 1, {})
    assert first.status.phase == "Running"
    notes = ps.apply_patch(pulling, first.pod_patch)["metadata"]["annotations"]
    assert pods.parse_failure_note(notes[conventions.ANNOTATION_KILLED_PREFIX + s])[0] == "ErrImageNeverPull"
    ran = ps.pod(
        plan,
        ps.service_running("svc-db", "postgres:16"),
        ps.stand_in_result(s, at_=2),
        ps.succeeded(after, "busybox", started=2, finished=3),
        notes=notes,
    )
    ended = decide(plan, ran, 4, first.status.to_patch())
    assert (ended.status.phase, ended.status.reason) == ("Failed", "StepFailed")
    assert [(x.state, x.reason) for x in ended.status.steps] == [
        ("failed", "ErrImageNeverPull"),
        ("succeeded", None),
    ]
    stopped = ps.pod(
        plan,
        ps.service_exited("svc-db", "postgres:16", 143),
        ps.stand_in_result(s, at_=2),
        ps.succeeded(after, "busybox", started=2, finished=3),
        notes=ps.apply_patch(ran, ended.pod_patch)["metadata"]["annotations"],
        phase="Failed",
        reason="DeadlineExceeded",
    )
    later = decide(plan, stopped, 9, ended.status.to_patch())
    assert later.status == ended.status.model_copy(update={"services": later.status.services})
    assert later.events == () and later.pod_patch is None


def test_a_missing_secret_reads_the_same_after_the_pod_is_stopped() -> None:
    plan = plan_of(
        {
            "steps": [
                {
                    "name": "s",
                    "image": "busybox",
                    "commands": ["true"],
                    "environment": {"T": {"from_secret": "tok/x"}},
                },
                {"name": "t", "image": "busybox", "commands": ["true"]},
            ]
        }
    )
    waiting = ps.pod(
        plan,
        ps.waiting("step-s", "busybox", "CreateContainerConfigError", 'secret "tok" not found'),
        ps.entry("step-t", "busybox"),
    )
    first = decide(plan, waiting, 1, {})
    assert (first.status.phase, first.status.message) == (
        "Failed",
        'step "s" cannot start: secret "tok" not found; check the Secrets named by from_secret',
    )
    notes = ps.apply_patch(waiting, first.pod_patch)["metadata"]["annotations"]
    # Before the kubelet has acted on the stop, and after: the same run.
    for pod in (
        ps.pod(
            plan,
            ps.waiting("step-s", "busybox", "CreateContainerConfigError", 'secret "tok" not found'),
            ps.entry("step-t", "busybox"),
            notes=notes,
        ),
        ps.pod(
            plan,
            ps.lost("step-s", "busybox"),
            ps.stopped_waiting("step-t", "busybox"),
            notes=notes,
            phase="Failed",
            reason="DeadlineExceeded",
        ),
    ):
        again = decide(plan, pod, 5, first.status.to_patch())
        assert (again.status.phase, again.status.message) == (first.status.phase, first.status.message)
        assert [x.state for x in again.status.steps] == ["failed", "skipped"]
        assert again.events == () and again.pod_patch is None
