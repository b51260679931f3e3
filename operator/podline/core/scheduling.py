"""The step scheduler: a pure function from (plan, observed pods, now) to a decision.

``decide`` is the whole of podline's run logic. The shell gathers a ``Snapshot`` (the compiled plan or the
reason it could not be compiled, the run's pod as the API shows it, the Pipeline's annotations and status,
the clock) and carries out the ``Decision`` (create objects, patch pods, write status, emit events).

Every decision is recorded in the pod in the same conditional request that acts on it: a step is started
by swapping its image *and* annotating the pod; a step that will never run is annotated as skipped. So
the pod is the complete record of a run, the Pipeline status is derived from it, an operator restart
resumes from the pod alone, and the pod's resourceVersion makes a second writer fail with 409 instead of
starting a step twice.

Drone semantics: without ``depends_on`` steps run in order; with it, ready steps run together. A step
runs when its dependencies are done if its ``when.status`` matches the run so far (success by default);
a step excluded by ``when`` on build metadata is skipped in its turn. A failed step fails the run unless
``failure: ignore``; exit code 78 ends the run early as a success; detached steps and services are never
waited for (a detached step still running at the end is stopped with the pod, and is no failure).

The run ends when every step is done (the pod is then stopped; if every container had already
terminated, the kubelet has ended the pod by itself, which is the same normal end), or when it is
cancelled, times out, or its pod is evicted or deleted underneath it (Error).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from podline.core import conventions, errors, observing, plans, pods, statuses

Manifest = dict[str, Any]
Phase, State, Reason = statuses.Phase, statuses.StepState, statuses.Reason
SKIPPED_PREFIX = f"skipped.{conventions.GROUP}/"
_EXCLUDED = "when: conditions do not match the build"
HISTORY_LIMIT = 10


@dataclass(frozen=True)
class Snapshot:
    plan: plans.RunPlan | errors.PodlineError
    pod: Mapping[str, Any] | None  # the run's pod, None if it does not exist
    now: datetime
    generation: int
    run: str
    status: Mapping[str, Any] = field(default_factory=dict)  # the Pipeline's current status
    cancel: bool = False
    may_start: bool = True  # False while the operator's concurrency limit is reached
    credentials: Any = None  # auths.Credentials for the pull Secret, or a PodlineError, or None
    other_pods: Sequence[Mapping[str, Any]] = ()  # pods of earlier runs of this Pipeline
    history_limit: int = 3


@dataclass(frozen=True)
class Event:
    type: str  # Normal or Warning
    reason: str
    message: str


@dataclass(frozen=True)
class Decision:
    status: statuses.PipelineStatus
    create: tuple[Manifest, ...] = ()  # in order; 409 means already created, which is fine
    pod_patch: Manifest | None = None  # for the run's pod; conditional on its resourceVersion
    other_patches: tuple[tuple[str, Manifest], ...] = ()  # (pod name, patch) for earlier runs' pods
    delete_pods: tuple[str, ...] = ()
    events: tuple[Event, ...] = ()
    requeue_after: float | None = None  # seconds until a timeout needs a look, if any


def decide(snap: Snapshot) -> Decision:
    previous = statuses.PipelineStatus.model_validate(snap.status or {})
    history = _history(previous, snap)
    others, deletes = _old_pods(snap)
    if isinstance(snap.plan, errors.PodlineError):
        reason = Reason.PULL_SECRET if isinstance(snap.plan, (errors.BadRegistryAuth, errors.MissingSecret)) else Reason.INVALID
        status = _final(snap, previous, Phase.FAILED, reason, "\n".join(snap.plan.lines()), [], [], history)
        return _decision(previous, status, other_patches=others, delete_pods=deletes)
    plan = snap.plan
    if not plan.triggered:
        steps = [_status_of(c, observing.StepView(State.SKIPPED, reason=Reason.NOT_TRIGGERED)) for c in plan.steps]
        status = _final(snap, previous, Phase.SUCCEEDED, Reason.NOT_TRIGGERED, "trigger does not match the build", steps, [], history)
        return _decision(previous, status, other_patches=others, delete_pods=deletes)
    if snap.pod is None:
        return _no_pod(snap, plan, previous, history, others, deletes)
    return _running(snap, plan, previous, history, others, deletes)


def _no_pod(snap: Snapshot, plan: plans.RunPlan, previous: statuses.PipelineStatus, history: list[dict[str, Any]],
            others: tuple[tuple[str, Manifest], ...], deletes: tuple[str, ...]) -> Decision:
    same_run = previous.run == snap.run
    if same_run and previous.phase is not None and previous.phase.is_terminal:
        return _decision(previous, previous, other_patches=others, delete_pods=deletes)  # pod removed after the end
    # The status says Creating only once the pod was created (the shell writes it after the create), so a
    # pod missing then was deleted: making it again would run its first steps twice.
    created = previous.phase is Phase.RUNNING or (previous.phase is Phase.PENDING and previous.reason == Reason.CREATING)
    if same_run and previous.pod_name == plan.pod_name and created:
        steps = [_status_of(c, _gone(observing.StepView(State.WAITING))) for c in plan.steps]
        status = _final(snap, previous, Phase.ERROR, Reason.POD_GONE,
                        f'pod "{plan.pod_name}" was deleted or evicted before the run finished', steps, [], history)
        return _decision(previous, status, other_patches=others, delete_pods=deletes)
    if snap.cancel:
        steps = [_status_of(c, observing.StepView(State.SKIPPED, reason=Reason.CANCELLED)) for c in plan.steps]
        status = _final(snap, previous, Phase.CANCELLED, Reason.CANCELLED, "cancelled before it started", steps, [], history)
        return _decision(previous, status, other_patches=others, delete_pods=deletes)
    waiting = [_status_of(c, observing.StepView(State.WAITING)) for c in plan.steps]
    base = _base(snap, plan, previous, history)
    if not snap.may_start:
        status = base.model_copy(update={"phase": Phase.PENDING, "reason": Reason.QUEUED, "steps": waiting,
                                         "message": "waiting for a free run slot (operator concurrency limit)"})
        return _decision(previous, _conditions(status, snap), other_patches=others, delete_pods=deletes)
    create: list[Manifest] = []
    if plan.pull_secret_name:
        if isinstance(snap.credentials, errors.PodlineError):
            status = _final(snap, previous, Phase.FAILED, Reason.PULL_SECRET,
                            "\n".join(snap.credentials.lines()), waiting, [], history)
            return _decision(previous, status, other_patches=others, delete_pods=deletes)
        if snap.credentials is None:
            raise ValueError("credentials are needed to create the pull Secret")
        create.append(pods.build_pull_secret(plan, snap.credentials))
    starts, _ = _advance(plan, {c.name: observing.StepView(State.WAITING) for c in plan.steps})
    create.append(pods.build_pod(plan, started={name: "" for name in starts}, at=_stamp(snap.now)))
    warnings = list(plan.warnings) + list(getattr(snap.credentials, "warnings", ()))
    status = base.model_copy(update={"phase": Phase.PENDING, "reason": Reason.CREATING, "steps": waiting,
                                     "warnings": warnings, "message": f'creating pod "{plan.pod_name}"'})
    return _decision(previous, _conditions(status, snap), create=tuple(create), other_patches=others, delete_pods=deletes)


def _running(snap: Snapshot, plan: plans.RunPlan, previous: statuses.PipelineStatus, history: list[dict[str, Any]],
             others: tuple[tuple[str, Manifest], ...], deletes: tuple[str, ...]) -> Decision:
    pod = snap.pod
    assert pod is not None
    notes = observing.annotations(pod)
    stopped = notes.get(conventions.ANNOTATION_STOPPED)
    views = {c.name: observing.view_step(plan, c, pod) for c in plan.steps}
    skipped = {c.name: notes[SKIPPED_PREFIX + c.name] for c in plan.steps if SKIPPED_PREFIX + c.name in notes}
    for name, reason in skipped.items():
        if not views[name].started:
            views[name] = observing.StepView(State.SKIPPED, reason=reason)
    for c in plan.steps:
        if c.excluded and views[c.name].state is State.SKIPPED:
            views[c.name] = dataclasses.replace(views[c.name], message=_EXCLUDED)
    service_views = {c.name: observing.view_service(c, pod) for c in plan.services}
    patches: list[Manifest] = []
    requeue: list[float] = []
    pod_phase = observing.pod_phase(pod)
    pod_reason = observing.pod_reason(pod)
    # The kubelet ends a pod by itself when every container has terminated: after the last step, that is
    # the run's normal end, whose outcome is read from the steps. A pod ended for a reason was ended for us.
    pod_ended = pod_phase in ("Failed", "Succeeded")
    deleting = bool(pod.get("metadata", {}).get("deletionTimestamp"))
    # A cancel that arrives after the run has ended (its stop may not show in the pod yet) changes nothing.
    ended_before = previous.run == snap.run and previous.phase is not None and previous.phase.is_terminal
    cancel = snap.cancel and not (ended_before and previous.phase is not Phase.CANCELLED)

    # 1. Things that end the whole run: cancel, timeout, the pod ending underneath us.
    end: tuple[Phase, str, str] | None = None
    if stopped:
        end = _stopped_end(plan, stopped)
    elif pod_ended and pod_reason == "DeadlineExceeded":
        end = (Phase.FAILED, Reason.TIMEOUT, _timeout_message(plan))
    elif pod_ended and pod_reason:
        end = (Phase.ERROR, Reason.POD_GONE, f"the pod ended underneath the run ({pod_reason})")
    elif pod_ended:
        pass  # ended by itself: see below
    elif deleting:
        end = (Phase.ERROR, Reason.POD_GONE, f'pod "{plan.pod_name}" was deleted before the run finished')
    elif cancel:
        end = (Phase.CANCELLED, Reason.CANCELLED, "cancelled")
        patches.append(pods.stop_patch(Reason.CANCELLED))
    else:
        elapsed = observing.seconds_since(_run_start(pod, previous), snap.now)
        if elapsed is not None and elapsed >= plan.timeout_seconds:
            end = (Phase.FAILED, Reason.TIMEOUT, _timeout_message(plan))
            patches.append(pods.stop_patch(Reason.TIMEOUT))
        elif elapsed is not None:
            requeue.append(plan.timeout_seconds - elapsed)

    if end is None and pod_ended and not stopped:
        # Nothing can start in an ended pod: read what happened, decide nothing.
        for c in plan.steps:
            views[c.name] = _deadlines(plan, c, views[c.name], snap.now)[0]
        if not all(views[c.name].state.is_done for c in plan.steps):
            end = (Phase.ERROR, Reason.POD_GONE, f"the pod ended before the run finished ({pod_phase})")
    elif end is None and not stopped:
        # 2. Per-step deadlines: waiting for an image too long, running too long, placeholder dead.
        kills: dict[str, str] = {}
        for c in plan.steps:
            views[c.name], kill, wait = _deadlines(plan, c, views[c.name], snap.now)
            if kill:
                kills[c.name] = kill
            if wait is not None:
                requeue.append(wait)
        if kills:
            # Every failure decided here is recorded in the pod, so it reads the same after the pod stops
            # (the kubelet's waiting reason is gone then); only steps still pulling or running are swapped
            # back to the placeholder, which stops them.
            swap = {n for n, note in kills.items() if note in _SWAP_BACK}
            patches.append(pods.kill_patch(plan, kills, swap=swap, resource_version=None))
        # 3. Start what is ready, skip what will never run.
        starts, skips = _advance(plan, views)
        for name in skips:
            excluded = plan.container(name).excluded and skips[name] == Reason.SKIPPED
            views[name] = observing.StepView(State.SKIPPED, reason=skips[name], message=_EXCLUDED if excluded else None)
        if starts or skips:
            at = snap.now.strftime("%Y-%m-%dT%H:%M:%SZ")
            patch = pods.start_patch(plan, {n: views[n].placeholder_id for n in starts}, at=at,
                                     resource_version=None) if starts else {"metadata": {"annotations": {}}}
            patch.setdefault("metadata", {}).setdefault("annotations", {}).update(
                {SKIPPED_PREFIX + n: r for n, r in skips.items()})
            patches.append(patch)
            for name in starts:
                views[name] = observing.StepView(State.RUNNING, started=True, reason="Starting", waiting_since=at)

    views = {c.name: _explain(plan, c, views[c.name]) for c in plan.steps}
    failing = _failing(plan, views)
    done = all(views[c.name].state.is_done or (c.detach and views[c.name].started) for c in plan.steps)
    if end is None and done:
        early = any(views[c.name].exit_code == observing.EXIT_EARLY for c in plan.steps)
        end = (Phase.FAILED, Reason.FAILED, _failure_message(plan, views)) if failing else (
            Phase.SUCCEEDED, Reason.EARLY_EXIT if early else Reason.SUCCEEDED,
            "ended early by exit code 78" if early else "all steps finished")
        # Detached steps still running are stopped with the pod, as they should be: not a failure.
        detached = [c.name for c in plan.steps if c.detach and views[c.name].state is State.RUNNING]
        for name in detached:
            views[name] = observing.detached_view(views[name])
        if not pod_ended and not stopped:
            patches.append({"metadata": {"annotations": {
                conventions.ANNOTATION_KILLED_PREFIX + name: Reason.DETACHED for name in detached}}})
            patches.append(pods.stop_patch("Completed"))

    steps = [_status_of(c, _finalise(views[c.name]) if end else views[c.name]) for c in plan.steps]
    services = [_status_of(c, service_views[c.name]) for c in plan.services]
    patch = pods.merge_patches(patches) if not pod_ended else None  # an ended pod is left as it is
    if patch and pod.get("metadata", {}).get("resourceVersion"):
        patch.setdefault("metadata", {})["resourceVersion"] = pod["metadata"]["resourceVersion"]
    if end is not None:
        phase, reason, message = end
        status = _final(snap, previous, phase, reason, message, steps, services, history, pod=pod)
    else:
        running = [c.step for c in plan.steps if views[c.name].state is State.RUNNING]
        base = _base(snap, plan, previous, history, pod=pod)
        status = _conditions(base.model_copy(update={
            "phase": Phase.RUNNING, "reason": Reason.RUNNING, "steps": steps, "services": services,
            "current_step": ", ".join(running) or None,
            "message": f"running {', '.join(running)}" if running else "starting the next step",
        }), snap)
    return _decision(previous, status, pod_patch=patch, other_patches=others, delete_pods=deletes,
                     requeue_after=max(0.0, min(requeue)) if requeue and end is None else None)


def _advance(plan: plans.RunPlan, views: dict[str, observing.StepView]) -> tuple[list[str], dict[str, str]]:
    """Steps to start now and steps to skip now (with why), given what has happened so far."""
    starts: list[str] = []
    skips: dict[str, str] = {}
    views = dict(views)
    failing = _failing(plan, views)
    early = any(v.exit_code == observing.EXIT_EARLY for v in views.values())
    changed = True
    while changed:  # a skip makes its dependants ready: skip them in the same decision
        changed = False
        for c in plan.steps:
            view = views[c.name]
            if view.started or view.state.is_done or c.name in starts:
                continue
            deps = [views[d] for d in c.depends_on]
            ready = all(d.state.is_done or (plan.container(n).detach and d.started) for n, d in zip(c.depends_on, deps))
            if not early and not ready:
                continue
            # An excluded step is skipped in its turn, not at once: what follows it still waits for what
            # precedes it (a sequence a, excluded b, c runs a then c, never a and c together).
            if not early and not c.excluded and (c.run_on_failure if failing else c.run_on_success):
                starts.append(c.name)
                continue
            skips[c.name] = Reason.EARLY_EXIT if early else Reason.SKIPPED
            views[c.name] = observing.StepView(State.SKIPPED, reason=skips[c.name])
            changed = True
    return starts, skips


PLACEHOLDER_EXITED = "PlaceholderExited"
_SWAP_BACK = (observing.PULL_ERRORS - observing.PERMANENT_WAIT_ERRORS) | {Reason.STEP_TIMEOUT}


def _failing(plan: plans.RunPlan, views: Mapping[str, observing.StepView]) -> bool:
    return any(views[c.name].state is State.FAILED and not c.ignore_failure and not c.detach for c in plan.steps)


def _deadlines(plan: plans.RunPlan, c: plans.ContainerPlan, view: observing.StepView,
               now: datetime) -> tuple[observing.StepView, str | None, float | None]:
    """(view, kill reason or None, seconds until the next deadline or None) for one step."""
    if not view.started:
        if view.placeholder_dead:
            message = (f'the placeholder image "{plan.placeholder_image}" exited (code {view.exit_code}) before the '
                       "step started; it must sleep whatever command it is given (see PODLINE_PLACEHOLDER_IMAGE)")
            return (observing.StepView(State.FAILED, reason=PLACEHOLDER_EXITED, message=message),
                    pods.failure_note(PLACEHOLDER_EXITED, message), None)
        return view, None, None
    if view.state is not State.RUNNING:
        return view, None, None
    if view.reason in observing.PERMANENT_WAIT_ERRORS:
        hint = _pull_hint(c) if view.reason != "CreateContainerConfigError" else "check the Secrets named by from_secret"
        message = f"{view.message or view.reason}; {hint}"
        return (observing.StepView(State.FAILED, started=True, reason=view.reason, message=message),
                pods.failure_note(view.reason, message), None)
    if view.reason in observing.PULL_ERRORS or view.waiting_since and not view.started_at:
        waited = observing.seconds_since(view.waiting_since, now) or 0.0
        if view.reason in observing.PULL_ERRORS and waited >= plan.pull_timeout_seconds:
            # The kill records the pull error, so the step reads the same once the kill is done.
            return (observing.StepView(State.FAILED, started=True, reason=view.reason), view.reason, None)
        return view, None, max(0.0, plan.pull_timeout_seconds - waited)
    if plan.step_timeout_seconds and view.started_at:
        ran = observing.seconds_since(view.started_at, now) or 0.0
        if ran >= plan.step_timeout_seconds:
            return (observing.StepView(State.FAILED, started=True, started_at=view.started_at, reason=Reason.STEP_TIMEOUT),
                    Reason.STEP_TIMEOUT, None)
        return view, None, plan.step_timeout_seconds - ran
    return view, None, None


def _explain(plan: plans.RunPlan, c: plans.ContainerPlan, view: observing.StepView) -> observing.StepView:
    """The message of a step podline stopped, the same before and after the kill is done."""
    if view.state is not State.FAILED or not view.started or view.message:
        return view
    if view.reason in observing.PULL_ERRORS and view.reason not in observing.PERMANENT_WAIT_ERRORS:
        message = (f"image {c.image} could not be pulled in {plan.pull_timeout_seconds}s ({view.reason}); "
                   f"{_pull_hint(c)}")
    elif view.reason == Reason.STEP_TIMEOUT:
        message = f"the step exceeded its timeout of {plan.step_timeout_seconds}s"
    else:
        return view
    return dataclasses.replace(view, message=message)


def _pull_hint(c: plans.ContainerPlan) -> str:
    return (f"check the image name, the step's pull setting (imagePullPolicy {c.pull_policy}) and the "
            "Pipeline's image_pull_secrets")


def _finalise(view: observing.StepView) -> observing.StepView:
    """When the run has ended, what never started is skipped and what was still running failed."""
    if view.state is State.WAITING:
        return observing.StepView(State.SKIPPED, reason=view.reason if view.reason in (Reason.CANCELLED,) else None)
    if view.state is State.RUNNING:
        return observing.StepView(State.FAILED, started=True, started_at=view.started_at, reason="Stopped",
                                  message="the run ended while the step was running")
    return view


def _gone(view: observing.StepView) -> observing.StepView:
    return observing.StepView(State.SKIPPED, reason=Reason.POD_GONE)


def _timeout_message(plan: plans.RunPlan) -> str:
    return f"the run exceeded its timeout of {plan.timeout_seconds}s"


def _stopped_end(plan: plans.RunPlan, stopped: str) -> tuple[Phase, str, str] | None:
    """The end the pod records; the same words as the decision that stopped it."""
    if stopped == Reason.CANCELLED:
        return Phase.CANCELLED, Reason.CANCELLED, "cancelled"
    if stopped == Reason.TIMEOUT:
        return Phase.FAILED, Reason.TIMEOUT, _timeout_message(plan)
    if stopped == Reason.SUPERSEDED:
        return Phase.CANCELLED, Reason.SUPERSEDED, "replaced by a newer run"
    return None  # "Completed": the outcome is read from the steps, as before the stop


def _failure_message(plan: plans.RunPlan, views: Mapping[str, observing.StepView]) -> str:
    failed = [c for c in plan.steps if views[c.name].state is State.FAILED and not c.ignore_failure and not c.detach]
    parts = []
    for c in failed:
        v = views[c.name]
        detail = f"exit code {v.exit_code}" if v.exit_code is not None else (v.reason or "failed")
        parts.append(f'step "{c.step}" failed ({detail})')
    return "; ".join(parts) or "a step failed"


def _status_of(c: plans.ContainerPlan, view: observing.StepView) -> statuses.StepStatus:
    return statuses.StepStatus(
        name=c.step, container=c.name, state=view.state, exit_code=view.exit_code, started_at=view.started_at,
        finished_at=view.finished_at, reason=str(view.reason) if view.reason else None, message=view.message,
    )


def _run_start(pod: Mapping[str, Any], previous: statuses.PipelineStatus) -> str | None:
    return (pod.get("status", {}).get("startTime") or pod.get("metadata", {}).get("creationTimestamp")
            or previous.start_time)


def _stamp(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


def _base(snap: Snapshot, plan: plans.RunPlan, previous: statuses.PipelineStatus, history: list[dict[str, Any]],
          pod: Mapping[str, Any] | None = None) -> statuses.PipelineStatus:
    same = previous.run == snap.run
    start = (_run_start(pod, previous) if pod else None) or (previous.start_time if same else None) or _stamp(snap.now)
    return statuses.PipelineStatus(
        observed_generation=snap.generation, run=snap.run, pod_name=plan.pod_name, start_time=start,
        warnings=list(plan.warnings) + [w for w in (previous.warnings if same else []) if w not in plan.warnings],
        history=history, phase=previous.phase if same else None,
        conditions=previous.conditions if same else [],
    )


def _final(snap: Snapshot, previous: statuses.PipelineStatus, phase: Phase, reason: str, message: str,
           steps: list[statuses.StepStatus], services: list[statuses.StepStatus], history: list[dict[str, Any]],
           pod: Mapping[str, Any] | None = None) -> statuses.PipelineStatus:
    same = previous.run == snap.run
    plan = snap.plan if isinstance(snap.plan, plans.RunPlan) else None
    done_before = same and previous.phase is not None and previous.phase.is_terminal
    status = statuses.PipelineStatus(
        phase=phase, observed_generation=snap.generation, run=snap.run,
        pod_name=plan.pod_name if plan and pod is not None else (previous.pod_name if same else None),
        start_time=(_run_start(pod, previous) if pod else None) or (previous.start_time if same else None),
        completion_time=(previous.completion_time if done_before else None) or _stamp(snap.now),
        reason=reason, message=message, steps=steps, services=services,
        warnings=list(plan.warnings) if plan else [], history=history,
        conditions=previous.conditions if same else [],
    )
    return _conditions(status, snap)


def _conditions(status: statuses.PipelineStatus, snap: Snapshot) -> statuses.PipelineStatus:
    """kstatus-compatible conditions: Ready/Succeeded, plus Reconciling while running and Stalled on failure."""
    phase = status.phase
    terminal = phase is not None and phase.is_terminal
    ok = phase is Phase.SUCCEEDED
    wanted = {
        "Ready": ("True" if ok else "False", status.reason or "", status.message or ""),
        "Succeeded": ("True" if ok else ("False" if terminal else "Unknown"), status.reason or "", status.message or ""),
        "Reconciling": ("False" if terminal else "True", status.reason or "", status.message or ""),
        "Stalled": ("True" if terminal and not ok else "False", status.reason or "", status.message or ""),
    }
    old = {c.type: c for c in status.conditions}
    out = []
    for kind, (value, reason, message) in wanted.items():
        prev = old.get(kind)
        since = prev.last_transition_time if prev and prev.status == value else _stamp(snap.now)
        out.append(statuses.Condition(type=kind, status=value, reason=str(reason), message=message,
                                      last_transition_time=since, observed_generation=snap.generation))
    return status.model_copy(update={"conditions": out})


def _history(previous: statuses.PipelineStatus, snap: Snapshot) -> list[dict[str, Any]]:
    history = list(previous.history)
    if previous.run and previous.run != snap.run:
        ended = previous.phase is not None and previous.phase.is_terminal
        entry = {"run": previous.run, "phase": str(previous.phase if ended else Reason.SUPERSEDED),
                 "podName": previous.pod_name, "completionTime": previous.completion_time or _stamp(snap.now)}
        history = [entry] + [h for h in history if h.get("run") != previous.run]
    return history[:HISTORY_LIMIT]


def _old_pods(snap: Snapshot) -> tuple[tuple[tuple[str, Manifest], ...], tuple[str, ...]]:
    """Stop earlier runs' pods that still run (superseded); delete the oldest beyond the history limit."""
    patches = []
    by_age = sorted(snap.other_pods, key=lambda p: p.get("metadata", {}).get("creationTimestamp", ""), reverse=True)
    for pod in by_age:
        name = pod["metadata"]["name"]
        if observing.pod_phase(pod) not in ("Failed", "Succeeded") and not observing.annotations(pod).get(
                conventions.ANNOTATION_STOPPED):
            patches.append((name, pods.stop_patch(Reason.SUPERSEDED)))
    deletes = tuple(p["metadata"]["name"] for p in by_age[snap.history_limit:])
    return tuple(patches), deletes


def _decision(previous: statuses.PipelineStatus, status: statuses.PipelineStatus, **kwargs: Any) -> Decision:
    return Decision(status=status, events=tuple(_events(previous, status)), **kwargs)


def _events(previous: statuses.PipelineStatus, status: statuses.PipelineStatus) -> list[Event]:
    """Few, meaningful Events, derived from the change of status: run started, step failed, run finished."""
    out = []
    new_run = previous.run != status.run
    was = None if new_run else previous.phase
    # A run whose first look (after an operator restart, say) finds it over has started all the same.
    ran = any(s.state in (State.RUNNING, State.SUCCEEDED, State.FAILED) for s in status.steps)
    started = status.phase is Phase.RUNNING or (status.phase is not None and status.phase.is_terminal and ran)
    if started and was in (None, Phase.PENDING):
        out.append(Event("Normal", "Started", f"run {status.run} started in pod {status.pod_name}"))
    before = {s.name: s.state for s in ([] if new_run else previous.steps)}
    for step in status.steps:
        if step.state is State.FAILED and before.get(step.name) is not State.FAILED:
            detail = f"exit code {step.exit_code}" if step.exit_code is not None else (step.reason or "failed")
            out.append(Event("Warning", "StepFailed", f'step "{step.name}" failed ({detail})'))
    if status.phase is not None and status.phase.is_terminal and was != status.phase:
        kind = "Normal" if status.phase is Phase.SUCCEEDED else "Warning"
        out.append(Event(kind, str(status.phase), f"run {status.run} {str(status.phase).lower()}: {status.message}"))
    return out
