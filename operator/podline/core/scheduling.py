"""The run logic: a pure function from (plan, observed pod, now) to a decision — create, stand in, stop, end.

``decide`` is the whole of podline's run logic. The shell gathers a ``Snapshot`` (the compiled plan or the
reason it could not be compiled, the run's pod as the API shows it, the Pipeline's annotations and status,
the clock) and carries out the ``Decision`` (create objects, patch pods, write status, emit events).

The steps sequence themselves inside the pod (``stepping``, ``docs/in-pod.md``): the scheduler creates the
pod, reads each step's outcome from it, and does only what the pod cannot — give a step whose image cannot be
pulled the runner image as a stand-in (recorded in the pod in the same request), stop the pod when the run
is over, cancelled or timed out, keep history. The pod is the complete record of a run and the Pipeline
status is derived from it, so an operator restart resumes from the pod alone, and a run goes on while the
operator is away.

Drone semantics: without ``depends_on`` steps run in order; with it, ready steps run together. A step
runs when its dependencies are done if its ``when.status`` matches the run so far (success by default);
a step excluded by ``when`` on build metadata is skipped in its turn. A failed step fails the run unless
``failure: ignore``; exit code 78 ends the run early as a success; detached steps and services are never
waited for (a detached step still running at the end is stopped with the pod, and is no failure).

The run ends when every step is done (the pod is then stopped; if every container had already
terminated, the kubelet has ended the pod by itself, which is the same normal end), or when it is
cancelled, times out, or its pod is evicted or deleted underneath it (Error). A step that ended without a
result (its container could not start, a missing Secret, killed before its entrypoint wrote) holds up the
steps after it for ever, since their entrypoints wait for its result file: the run then fails and the pod is
stopped (``podline.dev/stopped: StepFailed``); a missing Secret is first recorded in the pod, as a stand-in is.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from podline.core import builds, conventions, errors, observing, plans, pods, records, statuses, stepping

Manifest = dict[str, Any]
Phase = statuses.Phase
State = statuses.StepState
Reason = statuses.Reason
_EXCLUDED = "when: conditions do not match the build"
STATUS_HISTORY_LENGTH = 10  # earlier runs listed in status.history (the pods kept: Snapshot.history_limit)


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
    queued_because: str = "operator concurrency limit"  # why it may not start (for the status message)
    gate: builds.Gate | None = None  # a build's member: may its run start (its dependencies' outcome)?
    credentials: Any = None  # auths.Credentials for the pull Secret, or a PodlineError, or None
    # image -> its config (stepping.ImageCommand) or a PodlineError, for plan.needs_image_config()
    image_configs: Mapping[str, Any] = field(default_factory=dict)
    other_pods: Sequence[Mapping[str, Any]] = ()  # pods of earlier runs of this Pipeline
    history_limit: int = 3  # pods of earlier runs kept (PODLINE_HISTORY_LIMIT)
    archive_wait_seconds: float = 0  # a pod beyond the history is kept this long for the archive (0: none)
    archive: bool = False  # the archive is on: run pods carry its finalizer (records, docs/archive.md)
    deleting: bool = False  # the Pipeline has a deletionTimestamp (its pods go with it)


_EVENT_TEXT = 900  # characters of an Event's message (the apiserver keeps 1 KiB of a note)


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


@dataclass(frozen=True)
class _Turn:
    """What every decision of one look carries besides the run's status: the snapshot, the status before,
    the history, and what becomes of earlier runs' pods."""

    snap: Snapshot
    previous: statuses.PipelineStatus
    history: list[dict[str, Any]]
    others: tuple[tuple[str, Manifest], ...]
    deletes: tuple[str, ...]

    def decision(self, status: statuses.PipelineStatus, **kwargs: Any) -> Decision:
        return _decision(self.previous, status, other_patches=self.others, delete_pods=self.deletes, **kwargs)

    def ended(self, end: End, steps: list[statuses.StepStatus]) -> Decision:
        """The decision for a run that ends before it has a pod."""
        return self.decision(_final(self.snap, self.previous, end=end, steps=steps, history=self.history))


def decide(snap: Snapshot) -> Decision:
    previous = statuses.PipelineStatus.model_validate(snap.status or {})
    if (ending := _deleting(snap, previous)) is not None:
        return ending
    turn = _Turn(snap, previous, _history(previous, snap), *_old_pods(snap))
    if isinstance(snap.plan, errors.PodlineError):
        pull_secret = isinstance(snap.plan, (errors.BadRegistryAuth, errors.MissingSecret))
        reason = Reason.PULL_SECRET if pull_secret else Reason.INVALID
        return turn.ended(End(Phase.FAILED, reason, "\n".join(snap.plan.lines())), [])
    plan = snap.plan
    if not plan.triggered:
        end = End(Phase.SUCCEEDED, Reason.NOT_TRIGGERED, "trigger does not match the build")
        return turn.ended(end, _all_skipped(plan, Reason.NOT_TRIGGERED))
    if snap.pod is None:
        return _no_pod(turn, plan)
    return _running(turn, plan)


def _deleting(snap: Snapshot, previous: statuses.PipelineStatus) -> Decision | None:
    """A Pipeline being deleted starts no run and stops none. Its deletion may raise its generation (the
    apiserver does when it sets the deletionTimestamp of a custom resource with finalizers, as a foreground
    deletion has: k8s.io/apiserver registry/generic/registry/store.go markAsDeleting), which would otherwise
    read as a new spec: a new run, and the running one Superseded."""
    return Decision(status=previous) if snap.deleting and snap.pod is None else None


def _no_pod(turn: _Turn, plan: plans.RunPlan) -> Decision:
    snap, previous = turn.snap, turn.previous
    same_run = previous.run == snap.run
    if same_run and previous.phase is not None and previous.phase.is_terminal:
        return turn.decision(previous)  # pod removed after the end
    # The status says Creating only once the pod was created (the shell writes it after the create), so a
    # pod missing then was deleted: making it again would run its first steps twice.
    created = previous.phase is Phase.RUNNING or (
        previous.phase is Phase.PENDING and previous.reason == Reason.CREATING
    )
    if same_run and previous.pod_name == plan.pod_name and created:
        steps = [_status_of(c, _gone(observing.StepView(State.WAITING))) for c in plan.steps]
        message = f'pod "{plan.pod_name}" was deleted or evicted before the run finished'
        return turn.ended(End(Phase.ERROR, Reason.POD_GONE, message), steps)
    if snap.cancel:
        end = End(Phase.CANCELLED, Reason.CANCELLED, "cancelled before it started")
        return turn.ended(end, _all_skipped(plan, Reason.CANCELLED))
    if snap.gate is not None and not snap.gate.opens:
        return _gated(turn, snap.gate, plan)
    waiting = [_status_of(c, observing.StepView(State.WAITING)) for c in plan.steps]
    if not snap.may_start:
        status = _base(snap, plan, previous, turn.history).model_copy(
            update={
                "phase": Phase.PENDING,
                "reason": Reason.QUEUED,
                "steps": waiting,
                "message": f"waiting for a free run slot ({snap.queued_because})",
            }
        )
        return turn.decision(_conditions(status, snap))
    return _create(turn, plan, waiting)


def _create(turn: _Turn, plan: plans.RunPlan, waiting: list[statuses.StepStatus]) -> Decision:
    """Create the run's objects (its pull Secret, then its pod), or end the run if they cannot be built."""
    snap = turn.snap
    create: list[Manifest] = []
    if plan.pull_secret_name:
        if isinstance(snap.credentials, errors.PodlineError):
            return turn.ended(
                End(Phase.FAILED, Reason.PULL_SECRET, "\n".join(snap.credentials.lines())), waiting
            )
        if snap.credentials is None:
            raise ValueError("credentials are needed to create the pull Secret")
        create.append(pods.build_pull_secret(plan, snap.credentials))
    unreadable = _unreadable_images(plan, snap.image_configs)
    if unreadable:
        return turn.ended(End(Phase.FAILED, Reason.IMAGE_CONFIG, unreadable), waiting)
    finalizers = (conventions.FINALIZER_ARCHIVE,) if snap.archive else ()
    create.append(pods.build_pod(plan, image_configs=snap.image_configs, finalizers=finalizers))
    warnings = list(plan.warnings) + list(getattr(snap.credentials, "warnings", ()))
    status = _base(snap, plan, turn.previous, turn.history).model_copy(
        update={
            "phase": Phase.PENDING,
            "reason": Reason.CREATING,
            "steps": waiting,
            "warnings": warnings,
            "message": f'creating pod "{plan.pod_name}"',
        }
    )
    return turn.decision(_conditions(status, snap), create=tuple(create))


def _gated(turn: _Turn, gate: builds.Gate, plan: plans.RunPlan) -> Decision:
    """A build's member whose run cannot start now: it waits for its dependencies (saying for which), or
    ends skipped (their outcome rules it out), or fails (a dependency cycle)."""
    if gate.verdict is builds.Verdict.WAIT:
        waiting = [_status_of(c, observing.StepView(State.WAITING)) for c in plan.steps]
        status = _base(turn.snap, plan, turn.previous, turn.history).model_copy(
            update={
                "phase": Phase.PENDING,
                "reason": Reason.WAITING,
                "pod_name": None,
                "start_time": None,  # it starts when its pod does, not when it began to wait
                "steps": waiting,
                "message": gate.message,
                "waiting_for": list(gate.waiting_for),
            }
        )
        return turn.decision(_conditions(status, turn.snap))
    phase = Phase.SKIPPED if gate.verdict is builds.Verdict.SKIP else Phase.FAILED
    return turn.ended(End(phase, gate.reason, gate.message), _all_skipped(plan, Reason.SKIPPED))


def _unreadable_images(plan: plans.RunPlan, configs: Mapping[str, Any]) -> str | None:
    """Why the pod cannot be built: a step that names no command of its own, whose image's command the
    registry would not tell (or that has none). None when every such step's command is known."""
    problems = []
    for c in plan.steps:
        if c.command is not None or c.excluded:
            continue
        if c.image not in configs:
            raise ValueError(f"the image config of {c.image} is needed to build the pod")
        config = configs[c.image]
        if isinstance(config, errors.PodlineError):
            why = "; ".join(config.lines())
        elif not stepping.command_of(c, config):
            why = f"image {c.image} names no ENTRYPOINT or CMD"
        else:
            continue
        problems.append(
            f'step "{c.step}": its command comes from its image, and {why}; '
            f"set commands: or entrypoint: on the step"
        )
    return "\n".join(problems) or None


class End(NamedTuple):
    """How a run ended: its phase, its reason and the words for it."""

    phase: Phase
    reason: str
    message: str


@dataclass
class _Look:
    """One look at a running run's pod: what the stages read, and the patches and wake-ups they add."""

    snap: Snapshot
    plan: plans.RunPlan
    previous: statuses.PipelineStatus
    pod: Mapping[str, Any]
    views: dict[str, observing.StepView]
    stopped: str | None  # why the operator stopped the pod (podline.dev/stopped), if it did
    patches: list[Manifest] = field(default_factory=list)
    requeue: list[float] = field(default_factory=list)

    @property
    def pod_ended(self) -> bool:
        return observing.pod_ended(self.pod)

    @property
    def live(self) -> bool:
        """Neither stopped by the operator nor ended: the stages that act on the pod may act."""
        return not self.stopped and not self.pod_ended

    @property
    def ended_before(self) -> bool:
        previous = self.previous
        return previous.run == self.snap.run and previous.phase is not None and previous.phase.is_terminal


def _running(turn: _Turn, plan: plans.RunPlan) -> Decision:
    snap, previous = turn.snap, turn.previous
    assert snap.pod is not None
    look = _look(snap, plan, previous, snap.pod)
    end = _end_of(look)
    steps = [_status_of(c, _finalise(look.views[c.name]) if end else look.views[c.name]) for c in plan.steps]
    services = [_status_of(c, observing.view_service(c, look.pod)) for c in plan.services]
    if end is not None:
        status = _final(
            snap, previous, end=end, steps=steps, services=services, history=turn.history, pod=look.pod
        )
    else:
        status = _still_running(look, steps=steps, services=services, history=turn.history)
    return turn.decision(
        status,
        pod_patch=_pod_patch(look),
        requeue_after=max(0.0, min(look.requeue)) if look.requeue and end is None else None,
    )


def _look(
    snap: Snapshot, plan: plans.RunPlan, previous: statuses.PipelineStatus, pod: Mapping[str, Any]
) -> _Look:
    stopped = observing.annotations(pod).get(conventions.ANNOTATION_STOPPED)
    views = observing.view_steps(plan, pod)
    for c in plan.steps:
        if c.excluded and views[c.name].state is State.SKIPPED:
            views[c.name] = dataclasses.replace(views[c.name], message=_EXCLUDED)
    if stopped:  # a container that never started is reported lost once the pod is stopped: it never ran
        for c in plan.steps:
            if observing.never_started(pod, c.name) and views[c.name].reason not in observing.CONFIG_ERRORS:
                views[c.name] = observing.StepView(State.WAITING)
    return _Look(snap=snap, plan=plan, previous=previous, pod=pod, views=views, stopped=stopped)


# --- the ends of a run, in the order in which they win ---------------------------------------------------------------
# Each stage returns the run's end, or None to let the next one look; the first end wins. In this order:
#   1. the pod records that the operator stopped it (cancel, timeout, runner, held up, superseded): the same end
#      as the decision that stopped it, in the same words ("Completed" records no end: the steps tell it);
#   2. the pod ended underneath the run: its deadline (timeout), evicted, or ended by itself before every step
#      was done (ended by itself after the last step is the normal end, 9);
#   3. the pod is being deleted;
#   4. the run is cancelled;
#   5. the run timed out;
#   6. the runner image cannot run, so no step can;
#   7. (never an end) images that cannot be pulled get the runner image as a stand-in, which records the failure;
#      a missing Secret is recorded in the pod;
#   8. a step ended without a result, holding up the steps after it for ever;
#   9. every step is done: the natural end, failed or succeeded.
# Stages 3 to 8 act on a live pod only (not stopped, not ended); the stages that stop the pod add its stop patch.


def _recorded_stop(look: _Look) -> End | None:
    if not look.stopped:
        return None
    end = _stopped_end(look.plan, look.stopped, look.views)
    previous = look.previous
    if end and look.ended_before and (previous.phase, previous.reason) == end[:2] and previous.message:
        return end._replace(message=previous.message)  # the words of the decision that stopped it, kept
    return end


def _pod_ended_under_us(look: _Look) -> End | None:
    if look.stopped or not look.pod_ended:
        return None
    # The kubelet ends a pod by itself when every container has terminated: after the last step, that is
    # the run's normal end, whose outcome is read from the steps. A pod ended for a reason was ended for us.
    pod_reason = observing.pod_reason(look.pod)
    if pod_reason == "DeadlineExceeded":
        return End(Phase.FAILED, Reason.TIMEOUT, _timeout_message(look.plan))
    if pod_reason:
        return End(Phase.ERROR, Reason.POD_GONE, f"the pod ended underneath the run ({pod_reason})")
    if not all(look.views[c.name].state.is_done for c in look.plan.steps):
        return End(
            Phase.ERROR,
            Reason.POD_GONE,
            f"the pod ended before the run finished ({observing.pod_phase(look.pod)})",
        )
    return None


def _pod_deleting(look: _Look) -> End | None:
    if look.live and look.pod.get("metadata", {}).get("deletionTimestamp"):
        return End(
            Phase.ERROR, Reason.POD_GONE, f'pod "{look.plan.pod_name}" was deleted before the run finished'
        )
    return None


def _cancelled(look: _Look) -> End | None:
    # A cancel that arrives after the run has ended (its stop may not show in the pod yet) changes nothing.
    late = look.ended_before and look.previous.phase is not Phase.CANCELLED
    if not look.live or not look.snap.cancel or late:
        return None
    look.patches.append(pods.stop_patch(Reason.CANCELLED))
    return End(Phase.CANCELLED, Reason.CANCELLED, "cancelled")


def _timed_out(look: _Look) -> End | None:
    if not look.live:
        return None
    elapsed = observing.seconds_since(_run_start(look.pod, look.previous), look.snap.now)
    if elapsed is None:
        return None
    if elapsed < look.plan.timeout_seconds:
        look.requeue.append(look.plan.timeout_seconds - elapsed)
        return None
    look.patches.append(pods.stop_patch(Reason.TIMEOUT))
    return End(Phase.FAILED, Reason.TIMEOUT, _timeout_message(look.plan))


def _runner_broken(look: _Look) -> End | None:
    if not look.live:
        return None
    broken = _prepare_failure(
        look.plan, observing.view_prepare(look.pod), look.pod, look.snap.now, look.requeue
    )
    if not broken:
        return None
    look.patches.append(pods.stop_patch(Reason.RUNNER))
    return End(Phase.ERROR, Reason.RUNNER, broken)


def _stand_ins(look: _Look) -> End | None:
    """Never an end: the runner image stands in for a step whose image is given up on, and records the
    failure in turn; a step that cannot start (a missing Secret) is recorded in the pod."""
    if not look.live:
        return None
    plan, views = look.plan, look.views
    notes: dict[str, str] = {}
    for c in plan.steps:
        note, wait = _pull_deadline(plan, c, views[c.name], look.snap.now)
        if note:
            notes[c.name] = note
        if wait is not None:
            look.requeue.append(wait)
    config_errors = [c for c in plan.steps if views[c.name].pull_error in observing.CONFIG_ERRORS]
    if config_errors:
        c = config_errors[0]
        view = views[c.name]
        why = f"{view.message or view.pull_error}; check the Secrets named by from_secret"
        # Recorded in the pod, so the failure reads the same once the stopped pod no longer shows it.
        look.patches.append(
            pods.stand_in_patch(plan, {c.name: pods.failure_note(view.pull_error or "", why)}, swap=())
        )
        views[c.name] = observing.StepView(State.FAILED, reason=view.pull_error, message=why, no_result=True)
    elif notes:
        look.patches.append(pods.stand_in_patch(plan, notes, swap=notes))
        for name, note in notes.items():
            reason, message = pods.parse_failure_note(note)
            views[name] = dataclasses.replace(
                views[name], reason=reason, message=message, stand_in=True, pull_error=None
            )
    return None


def _held_up_end(look: _Look) -> End | None:
    # A step that ended without a result holds up the steps after it forever (their entrypoints wait for its
    # result file): the run cannot go on.
    if not look.live or not _held_up(look.plan, look.views):
        return None
    look.patches.append(pods.stop_patch(Reason.FAILED))
    return _stuck_end(look.plan, look.views)


def _natural_end(look: _Look) -> End | None:
    plan, views = look.plan, look.views
    if not all(views[c.name].state.is_done or (c.detach and views[c.name].started) for c in plan.steps):
        return None
    early = any(views[c.name].exit_code == stepping.EXIT_EARLY for c in plan.steps)
    if _failing(plan, views):
        end = End(Phase.FAILED, Reason.FAILED, _failure_message(plan, views))
    elif early:
        end = End(Phase.SUCCEEDED, Reason.EARLY_EXIT, f"ended early by exit code {stepping.EXIT_EARLY}")
    else:
        end = End(Phase.SUCCEEDED, Reason.SUCCEEDED, "all steps finished")
    # Detached steps still running are stopped with the pod, as they should be: not a failure.
    detached = [
        c.name
        for c in plan.steps
        if c.detach
        and (
            views[c.name].state is State.RUNNING
            or (look.stopped == Reason.COMPLETED and views[c.name].reason == stepping.Why.STOPPED)
        )
    ]
    for name in detached:
        views[name] = _detached(views[name])
    alive = {c.name for c in plan.services} | set(detached)
    if look.live and observing.still_running(look.pod, alive):
        look.patches.append(pods.stop_patch(Reason.COMPLETED))
    return end


_END_STAGES = (
    _recorded_stop,
    _pod_ended_under_us,
    _pod_deleting,
    _cancelled,
    _timed_out,
    _runner_broken,
    _stand_ins,
    _held_up_end,
    _natural_end,
)  # the order written out above


def _end_of(look: _Look) -> End | None:
    """The first end a stage finds, in ``_END_STAGES`` order; the stages after it neither look nor act."""
    for stage in _END_STAGES:
        end = stage(look)
        if end is not None:
            return end
    return None


def _pod_patch(look: _Look) -> Manifest | None:
    """The stages' patches as one request, conditional on the pod's resourceVersion; an ended pod is left as
    it is."""
    patch = pods.merge_patches(look.patches) if not look.pod_ended else None
    version = look.pod.get("metadata", {}).get("resourceVersion")
    if patch and version:
        patch.setdefault("metadata", {})["resourceVersion"] = version
    return patch


def _still_running(
    look: _Look,
    *,
    steps: list[statuses.StepStatus],
    services: list[statuses.StepStatus],
    history: list[dict[str, Any]],
) -> statuses.PipelineStatus:
    running = [c.step for c in look.plan.steps if look.views[c.name].state is State.RUNNING]
    base = _base(look.snap, look.plan, look.previous, history, pod=look.pod)
    return _conditions(
        base.model_copy(
            update={
                "phase": Phase.RUNNING,
                "reason": Reason.RUNNING,
                "steps": steps,
                "services": services,
                "current_step": ", ".join(running) or None,
                "message": f"running {', '.join(running)}" if running else "starting the next step",
            }
        ),
        look.snap,
    )


def _prepare_failure(
    plan: plans.RunPlan,
    prepare: observing.StepView,
    pod: Mapping[str, Any],
    now: datetime,
    requeue: list[float],
) -> str | None:
    """Why no step can run (the runner image cannot be pulled, or its prepare container failed), or None."""
    hint = "check the operator's runner image (PODLINE_RUNNER_IMAGE) and that the nodes can pull it"
    if prepare.state is State.FAILED:
        return (
            f"the runner image {plan.runner_image} did not install the entrypoint (exit code "
            f"{prepare.exit_code}{', ' + prepare.reason if prepare.reason else ''}); {hint}"
        )
    if prepare.pull_error is None:
        return None
    permanent = observing.pull_failure(prepare) == "permanent"
    waited = observing.seconds_since(observing.pod_start(pod), now) or 0.0
    if permanent or waited >= plan.pull_timeout_seconds:
        return f"the runner image {plan.runner_image} could not be pulled ({prepare.message or prepare.pull_error}); {hint}"
    requeue.append(plan.pull_timeout_seconds - waited)
    return None


def _pull_deadline(
    plan: plans.RunPlan, c: plans.ContainerPlan, view: observing.StepView, now: datetime
) -> tuple[str | None, float | None]:
    """(failure note if the step's image is given up on now, seconds until it would be) for one step.

    A permanent error is given up on at once; a transient one once the step has waited for its image for
    the pull timeout, counted from its turn (its dependencies done, or the pod's start)."""
    kind = observing.pull_failure(view)
    if kind is None or view.pull_error in observing.CONFIG_ERRORS:
        return None, None
    waited = None if view.turn_since is None else observing.seconds_since(view.turn_since, now) or 0.0
    if kind == "permanent" and plan.pull_secret_name and observing.refused_for_credentials(view):
        # The kubelet may have pulled without the pod's pull secrets (its cache of them was not ready):
        # its next attempt has them, so wait for it (`observing.refused_for_credentials`).
        if waited is None:
            return None, None
        if waited < observing.CREDENTIALS_RETRY_SECONDS:
            return None, observing.CREDENTIALS_RETRY_SECONDS - waited
    if kind == "permanent":
        return pods.failure_note(
            view.pull_error or "ErrImagePull", f"{view.message or view.pull_error}; {_pull_hint(c)}"
        ), None
    if waited is None:
        return None, None  # not its turn yet: the kubelet keeps retrying meanwhile
    if waited >= plan.pull_timeout_seconds:
        message = (
            f"image {c.image} could not be pulled in {plan.pull_timeout_seconds}s ({view.pull_error}: "
            f"{view.message or 'no details'}); {_pull_hint(c)}"
        )
        return pods.failure_note(view.pull_error or "ErrImagePull", message), None
    return None, plan.pull_timeout_seconds - waited


def _failing(plan: plans.RunPlan, views: Mapping[str, observing.StepView]) -> bool:
    return bool(_failed(plan, views))


def _failed(plan: plans.RunPlan, views: Mapping[str, observing.StepView]) -> list[plans.ContainerPlan]:
    """The steps whose failure fails the run."""
    return [c for c in plan.steps if views[c.name].state is State.FAILED and stepping.fails_the_run(c)]


def _pull_hint(c: plans.ContainerPlan) -> str:
    return (
        f"check the image name, the step's pull setting (imagePullPolicy {c.pull_policy}) and the "
        "Pipeline's image_pull_secrets"
    )


def _detached(view: observing.StepView) -> observing.StepView:
    """A detached step that was still running when the run ended: stopped with the pod, not failed."""
    return observing.StepView(
        state=State.SUCCEEDED,
        started_at=view.started_at,  # the same before and after the pod is stopped
        reason=Reason.DETACHED,
        message="detached: still running when the run ended, and stopped with the pod",
    )


def _finalise(view: observing.StepView) -> observing.StepView:
    """When the run has ended, what never started is skipped and what was still running failed."""
    if view.state is State.WAITING:
        return observing.StepView(
            State.SKIPPED, reason=view.reason if view.reason in (Reason.CANCELLED,) else None
        )
    if view.state is State.RUNNING:
        return observing.StepView(
            State.FAILED,
            started_at=view.started_at,
            reason=stepping.Why.STOPPED,
            message="the run ended while the step was running",
        )
    return view


def _all_skipped(plan: plans.RunPlan, reason: str) -> list[statuses.StepStatus]:
    """Every step skipped, for a run that ends before its pod exists."""
    return [_status_of(c, observing.StepView(State.SKIPPED, reason=reason)) for c in plan.steps]


def _gone(view: observing.StepView) -> observing.StepView:
    return observing.StepView(State.SKIPPED, reason=Reason.POD_GONE)


def _timeout_message(plan: plans.RunPlan) -> str:
    return f"the run exceeded its timeout of {plan.timeout_seconds}s"


def _held_up(plan: plans.RunPlan, views: Mapping[str, observing.StepView]) -> bool:
    """Whether a step still to come can never have its turn: it comes after a step that ended without a result
    (unless an exit code 78 ends the run early: the waiting steps then skip themselves)."""
    if any(
        views[c.name].exit_code == stepping.EXIT_EARLY and not views[c.name].no_result for c in plan.steps
    ):
        return False
    held: set[str] = set()
    grew = True
    while grew:
        more = {c.name for c in plan.steps if any(views[d].no_result or d in held for d in c.depends_on)}
        grew, held = bool(more - held), held | more
    return any(not views[name].state.is_done for name in held)


def _stuck_end(plan: plans.RunPlan, views: Mapping[str, observing.StepView]) -> End:
    """The end of a run that a step ended without a result holds up: it could not start (a missing Secret,
    CreateContainerConfigError, recorded in the pod) or was killed before its entrypoint could write."""
    for c in plan.steps:
        if views[c.name].reason in observing.CONFIG_ERRORS:
            return End(Phase.FAILED, Reason.FAILED, f'step "{c.step}" cannot start: {views[c.name].message}')
    # Steps that failed only because the stop ended them say nothing about why the run stopped: the words
    # must be the same before the stop shows and after.
    views = {
        n: observing.StepView(State.SKIPPED) if v.reason == stepping.Why.STOPPED else v
        for n, v in views.items()
    }
    stuck = next((c for c in plan.steps if views[c.name].no_result), None)
    if _failing(plan, views) or stuck is None:
        return End(Phase.FAILED, Reason.FAILED, _failure_message(plan, views))
    return End(
        Phase.FAILED,
        Reason.FAILED,
        (
            f'step "{stuck.step}" ended without a result '
            f"({views[stuck.name].reason}): the steps after it cannot have their turn"
        ),
    )


def _stopped_end(plan: plans.RunPlan, stopped: str, views: Mapping[str, observing.StepView]) -> End | None:
    """The end the pod records; the same words as the decision that stopped it."""
    if stopped == Reason.FAILED:
        return _stuck_end(plan, views)
    if stopped == Reason.CANCELLED:
        return End(Phase.CANCELLED, Reason.CANCELLED, "cancelled")
    if stopped == Reason.TIMEOUT:
        return End(Phase.FAILED, Reason.TIMEOUT, _timeout_message(plan))
    if stopped == Reason.SUPERSEDED:
        return End(Phase.CANCELLED, Reason.SUPERSEDED, "replaced by a newer run")
    if stopped == Reason.RUNNER:
        return End(
            Phase.ERROR,
            Reason.RUNNER,
            f"the runner image {plan.runner_image} could not run; see the pod's events",
        )
    return None  # Reason.COMPLETED: the outcome is read from the steps, as before the stop


def _failure_message(plan: plans.RunPlan, views: Mapping[str, observing.StepView]) -> str:
    parts = []
    for c in _failed(plan, views):
        v = views[c.name]
        detail = f"exit code {v.exit_code}" if v.exit_code is not None else (v.reason or "failed")
        parts.append(f'step "{c.step}" failed ({detail})')
    return "; ".join(parts) or "a step failed"


def _status_of(c: plans.ContainerPlan, view: observing.StepView) -> statuses.StepStatus:
    return statuses.StepStatus(
        name=c.step,
        container=c.name,
        state=view.state,
        exit_code=view.exit_code,
        started_at=view.started_at,
        finished_at=view.finished_at,
        reason=str(view.reason) if view.reason else None,
        message=view.message,
    )


def _run_start(pod: Mapping[str, Any], previous: statuses.PipelineStatus) -> str | None:
    return (
        pod.get("status", {}).get("startTime")
        or pod.get("metadata", {}).get("creationTimestamp")
        or previous.start_time
    )


def _stamp(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


def _base(
    snap: Snapshot,
    plan: plans.RunPlan,
    previous: statuses.PipelineStatus,
    history: list[dict[str, Any]],
    pod: Mapping[str, Any] | None = None,
) -> statuses.PipelineStatus:
    same = previous.run == snap.run
    start = (
        (_run_start(pod, previous) if pod else None)
        or (previous.start_time if same else None)
        or _stamp(snap.now)
    )
    return statuses.PipelineStatus(
        observed_generation=snap.generation,
        run=snap.run,
        pod_name=plan.pod_name,
        start_time=start,
        warnings=list(plan.warnings)
        + [w for w in (previous.warnings if same else []) if w not in plan.warnings],
        history=history,
        phase=previous.phase if same else None,
        conditions=previous.conditions if same else [],
    )


def _final(
    snap: Snapshot,
    previous: statuses.PipelineStatus,
    *,
    end: End,
    steps: list[statuses.StepStatus],
    history: list[dict[str, Any]],
    services: list[statuses.StepStatus] | None = None,
    pod: Mapping[str, Any] | None = None,
) -> statuses.PipelineStatus:
    """The status of a run that has ended."""
    same = previous.run == snap.run
    plan = snap.plan if isinstance(snap.plan, plans.RunPlan) else None
    done_before = same and previous.phase is not None and previous.phase.is_terminal
    status = statuses.PipelineStatus(
        phase=end.phase,
        observed_generation=snap.generation,
        run=snap.run,
        pod_name=plan.pod_name if plan and pod is not None else (previous.pod_name if same else None),
        start_time=(_run_start(pod, previous) if pod else None) or (previous.start_time if same else None),
        completion_time=(previous.completion_time if done_before else None) or _stamp(snap.now),
        reason=end.reason,
        message=end.message,
        steps=steps,
        services=services or [],
        warnings=list(plan.warnings) if plan else [],
        history=history,
        conditions=previous.conditions if same else [],
    )
    return _conditions(status, snap)


def _conditions(status: statuses.PipelineStatus, snap: Snapshot) -> statuses.PipelineStatus:
    """kstatus-compatible conditions: Ready/Succeeded, plus Reconciling while running and Stalled on failure."""
    phase = status.phase
    terminal = phase is not None and phase.is_terminal
    ok = phase is Phase.SUCCEEDED
    failed = terminal and not ok and phase is not Phase.SKIPPED  # skipped: its dependencies' doing
    wanted = {
        "Ready": ("True" if ok else "False", status.reason or "", status.message or ""),
        "Succeeded": (
            "True" if ok else ("False" if terminal else "Unknown"),
            status.reason or "",
            status.message or "",
        ),
        "Reconciling": ("False" if terminal else "True", status.reason or "", status.message or ""),
        "Stalled": ("True" if failed else "False", status.reason or "", status.message or ""),
    }
    old = {c.type: c for c in status.conditions}
    out = []
    for kind, (value, reason, message) in wanted.items():
        prev = old.get(kind)
        since = prev.last_transition_time if prev and prev.status == value else _stamp(snap.now)
        out.append(
            statuses.Condition(
                type=kind,
                status=value,
                reason=str(reason),
                message=message,
                last_transition_time=since,
                observed_generation=snap.generation,
            )
        )
    return status.model_copy(update={"conditions": out})


def _history(previous: statuses.PipelineStatus, snap: Snapshot) -> list[dict[str, Any]]:
    history = list(previous.history)
    # A run that only waited for its build's dependencies never ran: it is no history.
    waited = previous.phase is Phase.PENDING and previous.reason == Reason.WAITING
    if previous.run and previous.run != snap.run and not waited:
        ended = previous.phase is not None and previous.phase.is_terminal
        entry = {
            "run": previous.run,
            "phase": str(previous.phase if ended else Reason.SUPERSEDED),
            "podName": previous.pod_name,
            "completionTime": previous.completion_time or _stamp(snap.now),
        }
        history = [entry] + [h for h in history if h.get("run") != previous.run]
    return history[:STATUS_HISTORY_LENGTH]


def _old_pods(snap: Snapshot) -> tuple[tuple[tuple[str, Manifest], ...], tuple[str, ...]]:
    """Stop earlier runs' pods that still run (superseded); delete the oldest beyond the history limit, once
    archived (or when the archive has been waited for long enough: ``records.must_keep``)."""
    patches = []
    by_age = sorted(
        snap.other_pods, key=lambda p: p.get("metadata", {}).get("creationTimestamp", ""), reverse=True
    )
    for pod in by_age:
        name = pod["metadata"]["name"]
        if not observing.pod_ended(pod) and not observing.annotations(pod).get(
            conventions.ANNOTATION_STOPPED
        ):
            patches.append((name, pods.stop_patch(Reason.SUPERSEDED)))
    deletes = tuple(
        p["metadata"]["name"]
        for p in by_age[snap.history_limit :]
        if not records.is_deleting(p)  # deleted already, kept by the archive's finalizer until archived
        and not records.must_keep(p, now=snap.now, archive_wait_seconds=snap.archive_wait_seconds)
    )
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
    told = set() if new_run else set(previous.warnings)
    fresh = [w for w in status.warnings if w not in told]
    if fresh:  # e.g. what the run ignores (see leniency): once, for `kubectl describe`
        text = "; ".join(fresh)
        out.append(
            Event("Warning", "Warnings", text if len(text) <= _EVENT_TEXT else text[: _EVENT_TEXT - 1] + "…")
        )
    if started and was in (None, Phase.PENDING):
        out.append(Event("Normal", "Started", f"run {status.run} started in pod {status.pod_name}"))
    before = {s.name: s.state for s in ([] if new_run else previous.steps)}
    for step in status.steps:
        if step.state is State.FAILED and before.get(step.name) is not State.FAILED:
            detail = (
                f"exit code {step.exit_code}" if step.exit_code is not None else (step.reason or "failed")
            )
            out.append(Event("Warning", "StepFailed", f'step "{step.name}" failed ({detail})'))
    if status.phase is not None and status.phase.is_terminal and was != status.phase:
        kind = "Normal" if status.phase in (Phase.SUCCEEDED, Phase.SKIPPED) else "Warning"
        out.append(
            Event(kind, str(status.phase), f"run {status.run} {str(status.phase).lower()}: {status.message}")
        )
    return out
