"""Read a run's pod: what each step is doing, from the pod's container statuses and annotations.

Every step container runs from the pod's start, its entrypoint waiting for its turn, so a running container
is not yet a running step. What the pod tells, and how it is read:
  * a terminated container whose termination message is a result (``stepping.Result``) ended that way:
    state, exit code and times in ms as the entrypoint recorded them;
  * a terminated container without one never got as far as its entrypoint (it could not start, it was
    killed first): a failure, with the kubelet's reason;
  * a running container is a running step once every step it comes after is done (a detached one: started);
    before that it waits. When its turn comes its entrypoint decides run or skip over the results then
    present (``stepping.decide``); the pod shows no difference until the skipped result arrives (the
    kubelet's next relist, about a second later), so the same decision is made here, over the results that
    had ended by the end of its last dependency: a step that is skipping itself shows waiting, never running;
  * a container waiting with a pull error is a step whose image is not there: the scheduler decides when it
    gets the runner image as a stand-in (``pull_failure``), recorded in ``killed.podline.dev/<container>``.
Everything is read from the pod's current state (level-triggered), so a missed watch event only delays a
decision until the next event or resync.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from podline.core import conventions, plans, pods, statuses, stepping

PULL_ERRORS = frozenset(
    {"ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName", "RegistryUnavailable"}
)
# Waiting reasons no retry can heal (CreateContainerConfigError: a missing Secret or key, which a stand-in
# would not fix either: the environment stays).
PERMANENT_PULL_ERRORS = frozenset({"ErrImageNeverPull", "InvalidImageName"})
CONFIG_ERRORS = frozenset({"CreateContainerConfigError"})
# The kubelet's reasons for a terminated container that say only how it exited (0, or not): no news.
KUBELET_EXITED = frozenset({"Completed", "Error"})
# What registries answer for an image that is not there or not theirs to give (containerd's wording).
_REFUSED = re.compile(
    r"\bnot found\b|manifest unknown|\b40[134]\b|unauthori[sz]ed|\bdenied\b|\bforbidden\b", re.IGNORECASE
)
# Of those, the answers a pull without credentials gets (see `refused_for_credentials`).
_NO_CREDENTIALS = re.compile(r"\b40[13]\b|unauthori[sz]ed|\bdenied\b|\bforbidden\b", re.IGNORECASE)
# How long a step whose pod has image pull secrets keeps waiting after its pull was refused for want of
# credentials: the kubelet's first retry comes 10 s after the first failure (its image back-off), and by then
# it has the secret. Longer than that, the secret itself is wrong.
CREDENTIALS_RETRY_SECONDS = 30.0


@dataclass(frozen=True)
class StepView:
    """What one step is doing, as far as the pod tells."""

    state: statuses.StepState
    exit_code: int | None = None
    started_at: str | None = None
    finished_at: str | None = None
    reason: str | None = None
    message: str | None = None
    turn_since: str | None = None  # when it could have started (its dependencies done), while not running
    pull_error: str | None = None  # the kubelet's waiting reason while its image is not there
    stand_in: bool = False  # the operator gave it the runner image (killed.podline.dev/<container>)
    no_result: bool = False  # it ended without a result file, so the steps after it cannot have their turn

    @property
    def started(self) -> bool:
        return self.state is not statuses.StepState.WAITING and self.state is not statuses.StepState.SKIPPED


def annotations(pod: Mapping[str, Any] | None) -> Mapping[str, str]:
    if not pod:
        return {}
    return pod.get("metadata", {}).get("annotations") or {}


def container_statuses(pod: Mapping[str, Any] | None) -> dict[str, Mapping[str, Any]]:
    if not pod:
        return {}
    return {cs["name"]: cs for cs in (pod.get("status", {}).get("containerStatuses") or [])}


def ms_time(ms: int | None) -> str | None:
    """RFC 3339 with milliseconds, as the status shows the entrypoint's times."""
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def view_steps(plan: plans.RunPlan, pod: Mapping[str, Any] | None) -> dict[str, StepView]:
    """Every step's view, in plan order; a step's view depends on its dependencies' views."""
    statuses_ = container_statuses(pod)
    notes = annotations(pod)
    start = pod_start(pod)
    views: dict[str, StepView] = {}
    results = _results(plan, statuses_)

    def view(c: plans.ContainerPlan) -> StepView:
        if c.name not in views:
            deps = [(plan.container(d), view(plan.container(d))) for d in c.depends_on]
            seen = _view_step(c, statuses_.get(c.name), notes, deps, start)
            if seen.state is statuses.StepState.RUNNING and _skips_itself(plan, c, results):
                seen = StepView(statuses.StepState.WAITING, turn_since=seen.started_at)
            views[c.name] = seen
        return views[c.name]

    for c in plan.steps:
        view(c)
    return {c.name: views[c.name] for c in plan.steps}


def _results(plan: plans.RunPlan, statuses_: Mapping[str, Mapping[str, Any]]) -> dict[str, stepping.Result]:
    """The results the steps' entrypoints recorded, as the run directory holds them (with ``failing``)."""
    found: dict[str, stepping.Result] = {}
    for c in plan.steps:
        terminated = ((statuses_.get(c.name) or {}).get("state") or {}).get("terminated")
        result = stepping.parse_message(c.name, terminated.get("message")) if terminated else None
        if result is not None:
            found[c.name] = replace(result, failing=stepping.is_failing(c, result.state))
    return found


def _skips_itself(
    plan: plans.RunPlan, c: plans.ContainerPlan, results: Mapping[str, stepping.Result]
) -> bool:
    """Whether step ``c``, whose turn has come, is being skipped by its entrypoint: ``stepping.decide`` over
    the results that had ended when its last dependency did (the moment it decided). Without the times to
    tell, it is taken to run."""
    if any(r.exit_code == stepping.EXIT_EARLY for r in results.values()):
        return True  # every step still waiting skips itself: early exit
    ends = [results[d].finished_at for d in c.depends_on if d in results]
    moment = max((end for end in ends if end is not None), default=None)
    present = {
        name: r
        for name, r in results.items()
        if moment is not None and r.finished_at is not None and r.finished_at <= moment
    }
    detached = tuple(d for d in c.depends_on if plan.container(d).detach)
    args = stepping.StepArgs(
        name=c.name,
        after=c.depends_on,
        detached=detached,
        on_success=c.run_on_success,
        on_failure=c.run_on_failure,
        excluded=c.excluded,
    )
    return stepping.decide(args, present, started=detached).action is stepping.Action.SKIP


def _counts_done(dep: plans.ContainerPlan, view: StepView) -> bool:
    """Whether the entrypoints of the steps after ``dep`` go on: it left a result (a detached one: started)."""
    if view.no_result:
        return False
    return view.state.is_done or (dep.detach and view.state is statuses.StepState.RUNNING)


def _view_step(
    c: plans.ContainerPlan,
    cs: Mapping[str, Any] | None,
    notes: Mapping[str, str],
    deps: list[tuple[plans.ContainerPlan, StepView]],
    pod_started: str | None,
) -> StepView:
    killed, killed_message = pods.parse_failure_note(
        notes.get(conventions.ANNOTATION_KILLED_PREFIX + c.name, "")
    )
    if killed in CONFIG_ERRORS:  # the operator failed the step: it could not start, whatever its image
        return StepView(statuses.StepState.FAILED, reason=killed, message=killed_message, no_result=True)
    state = (cs or {}).get("state") or {}
    terminated = state.get("terminated")
    if terminated:
        return _ended(c.name, terminated, killed, killed_message)
    turn = all(_counts_done(d, v) for d, v in deps)
    since = _latest([pod_started, *[v.finished_at or v.started_at for _, v in deps]]) if turn else None
    running = state.get("running")
    if running and turn and not killed:
        return StepView(statuses.StepState.RUNNING, started_at=since or running.get("startedAt"))
    waiting = state.get("waiting") or {}
    reason = waiting.get("reason")
    if killed:  # the stand-in will record the failure in the step's turn
        return StepView(
            statuses.StepState.WAITING, reason=killed, message=killed_message, turn_since=since, stand_in=True
        )
    if reason in PULL_ERRORS or reason in CONFIG_ERRORS:
        return StepView(
            statuses.StepState.WAITING,
            reason=reason,
            message=_short(waiting.get("message")),
            turn_since=since,
            pull_error=reason,
        )
    return StepView(statuses.StepState.WAITING, turn_since=since)


def _ended(name: str, terminated: Mapping[str, Any], killed: str, killed_message: str | None) -> StepView:
    result = stepping.parse_message(name, terminated.get("message"))
    kubelet_reason = terminated.get("reason")
    if result is None:  # the entrypoint never ran, or was killed before it could write
        code = terminated.get("exitCode")
        return StepView(
            statuses.StepState.FAILED,
            exit_code=int(code) if code is not None else None,
            started_at=terminated.get("startedAt"),
            finished_at=terminated.get("finishedAt"),
            reason=killed or (kubelet_reason if kubelet_reason not in (None, "Completed") else "Error"),
            message=killed_message or _short(terminated.get("message")),
            no_result=True,
        )
    state = statuses.StepState(str(result.state))
    reason, message = result.reason, result.message
    if killed and result.reason == stepping.Why.IMAGE_PULL_FAILED:
        reason, message = killed, killed_message or message  # the operator knows why better than the stand-in
    elif kubelet_reason == "OOMKilled":
        reason, message = "OOMKilled", "the step ran out of memory (its memory limit)"
    return StepView(
        state,
        exit_code=result.exit_code,
        started_at=ms_time(result.started_at),
        finished_at=ms_time(result.finished_at),
        reason=reason,
        message=message,
    )


def pull_failure(view: StepView) -> str | None:
    """``permanent`` for a pull error no retry heals, ``transient`` for one that may, None otherwise."""
    if view.pull_error is None or view.stand_in:
        return None
    if view.pull_error in PERMANENT_PULL_ERRORS or view.pull_error in CONFIG_ERRORS:
        return "permanent"
    if view.pull_error in ("ErrImagePull", "ImagePullBackOff") and _REFUSED.search(view.message or ""):
        return "permanent"
    return "transient"


def refused_for_credentials(view: StepView) -> bool:
    """Whether the registry refused the pull as one without (good) credentials: 401, 403, denied.

    A pod with image pull secrets can still be pulled for without them: the kubelet waits at most 1 s for
    its watch of each pull secret to sync, and on a loaded node it then pulls with none ("Unable to retrieve
    pull secret, the image pull may not succeed": kubernetes pkg/kubelet/kubelet_pods.go
    getPullSecretsForPod; the 1 s wait: pkg/kubelet/util/manager/watch_based_manager.go objectCache.Get).
    Its next attempt has them, so such a refusal is not final at once."""
    return view.pull_error in ("ErrImagePull", "ImagePullBackOff") and bool(
        _NO_CREDENTIALS.search(view.message or "")
    )


def view_prepare(pod: Mapping[str, Any] | None) -> StepView:
    """The prepare container, which installs the entrypoint: it must run and exit 0."""
    cs = container_statuses(pod).get(stepping.PREPARE_CONTAINER)
    state = (cs or {}).get("state") or {}
    if state.get("terminated"):
        t = state["terminated"]
        code = int(t.get("exitCode", 1))
        return StepView(
            statuses.StepState.SUCCEEDED if code == 0 else statuses.StepState.FAILED,
            exit_code=code,
            reason=t.get("reason"),
            message=_short(t.get("message")),
        )
    if state.get("running"):
        return StepView(statuses.StepState.RUNNING)
    waiting = state.get("waiting") or {}
    reason = waiting.get("reason")
    return StepView(
        statuses.StepState.WAITING,
        reason=reason,
        message=_short(waiting.get("message")),
        pull_error=reason if reason in PULL_ERRORS else None,
    )


def view_service(c: plans.ContainerPlan, pod: Mapping[str, Any] | None) -> StepView:
    cs = container_statuses(pod).get(c.name)
    state = (cs or {}).get("state") or {}
    if state.get("running"):
        return StepView(state=statuses.StepState.RUNNING, started_at=state["running"].get("startedAt"))
    if state.get("terminated"):
        t = state["terminated"]
        code = int(t.get("exitCode", 1))
        return StepView(
            state=statuses.StepState.SUCCEEDED if code == 0 else statuses.StepState.FAILED,
            exit_code=code,
            started_at=t.get("startedAt"),
            finished_at=t.get("finishedAt"),
            reason=t.get("reason") if t.get("reason") not in KUBELET_EXITED else None,
        )
    waiting = state.get("waiting") or {}
    return StepView(
        state=statuses.StepState.WAITING, reason=waiting.get("reason"), message=_short(waiting.get("message"))
    )


def still_running(pod: Mapping[str, Any] | None, names: set[str]) -> bool:
    """Whether any of these containers has not terminated (what stopping the pod would stop)."""
    cs = container_statuses(pod)
    return any(not ((cs.get(n) or {}).get("state") or {}).get("terminated") for n in names)


def never_started(pod: Mapping[str, Any] | None, name: str) -> bool:
    """Whether the container is reported lost without ever having run (what the kubelet says of a container
    it never started, once the pod is stopped)."""
    terminated = (((container_statuses(pod).get(name) or {}).get("state") or {}).get("terminated")) or {}
    return terminated.get("reason") == "ContainerStatusUnknown" and not terminated.get("startedAt")


def pod_phase(pod: Mapping[str, Any] | None) -> str | None:
    return _text((pod or {}).get("status", {}).get("phase"))


def pod_ended(pod: Mapping[str, Any] | None) -> bool:
    """Whether the pod has ended (the kubelet's Succeeded or Failed): none of its containers runs again."""
    return pod_phase(pod) in ("Succeeded", "Failed")


def pod_reason(pod: Mapping[str, Any] | None) -> str | None:
    return _text((pod or {}).get("status", {}).get("reason"))


def pod_start(pod: Mapping[str, Any] | None) -> str | None:
    return _text(
        (pod or {}).get("status", {}).get("startTime")
        or (pod or {}).get("metadata", {}).get("creationTimestamp")
    )


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def seconds_since(timestamp: str | None, now: datetime) -> float | None:
    if not timestamp:
        return None
    try:
        then = datetime.fromisoformat(timestamp)  # Python 3.11 reads the "Z" suffix
    except ValueError:
        return None
    return (now - then).total_seconds()


def _latest(timestamps: list[str | None]) -> str | None:
    known = [(t, datetime.fromisoformat(t)) for t in timestamps if t and _parses(t)]
    return max(known, key=lambda pair: pair[1])[0] if known else None


def _parses(timestamp: str) -> bool:
    try:
        datetime.fromisoformat(timestamp)
    except ValueError:
        return False
    return True


def _short(message: str | None, limit: int = 500) -> str | None:
    if not message:
        return None
    return message if len(message) <= limit else message[: limit - 1] + "…"
