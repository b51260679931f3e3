"""Read a run's pod: what each step container is doing, from the pod's spec, annotations and status.

The traps this module exists to beat (drone-runner-kube's bug history):
  * When a step is started, the kubelet kills the running placeholder; that placeholder's termination
    must never be read as the step's result. The start annotation records the placeholder's container id
    at the swap; a terminated state with that id, or reporting the placeholder image, is not the step's.
  * A step waiting for its image (ErrImagePull, ImagePullBackOff, ErrImageNeverPull) is not running.
  * Everything is read from the pod's current state (level-triggered), so a missed watch event only
    delays a decision until the next event or resync.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from podline.core import conventions, images, plans, pods, statuses

PULL_ERRORS = frozenset({"ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName", "RegistryUnavailable"})
PERMANENT_WAIT_ERRORS = frozenset({"ErrImageNeverPull", "InvalidImageName", "CreateContainerConfigError"})
EXIT_EARLY = 78  # Drone: end the run now, as a success


@dataclass(frozen=True)
class StepView:
    """What one step container is doing, as far as the pod tells."""

    state: statuses.StepState
    started: bool = False  # the swap happened (the pod says so)
    exit_code: int | None = None
    started_at: str | None = None
    finished_at: str | None = None
    reason: str | None = None
    message: str | None = None
    waiting_since: str | None = None  # swap time, while the step waits for its image or container
    placeholder_id: str = ""  # the running placeholder's container id (for the next swap)
    placeholder_dead: bool = False  # the placeholder exited before the step was started


def annotations(pod: Mapping[str, Any] | None) -> Mapping[str, str]:
    if not pod:
        return {}
    return pod.get("metadata", {}).get("annotations") or {}


def container_statuses(pod: Mapping[str, Any] | None) -> dict[str, Mapping[str, Any]]:
    if not pod:
        return {}
    return {cs["name"]: cs for cs in (pod.get("status", {}).get("containerStatuses") or [])}


def _is_placeholder(status_image: str | None, plan: plans.RunPlan, step_image: str) -> bool:
    if not status_image:
        return False
    if images.same_image(plan.placeholder_image, step_image):
        return False  # cannot tell by image; rely on the container id
    return images.same_image(status_image, plan.placeholder_image)


def view_step(plan: plans.RunPlan, c: plans.ContainerPlan, pod: Mapping[str, Any] | None) -> StepView:
    notes = annotations(pod)
    cs = container_statuses(pod).get(c.name)
    started = pods.parse_started(notes.get(conventions.ANNOTATION_STARTED_PREFIX + c.name))
    state = (cs or {}).get("state") or {}
    killed, killed_message = pods.parse_failure_note(notes.get(conventions.ANNOTATION_KILLED_PREFIX + c.name, ""))
    if started is None:
        if killed:  # failed before it could start (its placeholder died); recorded so it stays failed
            return StepView(state=statuses.StepState.FAILED, reason=killed, message=killed_message)
        return _view_placeholder(cs, state)
    at, placeholder_id = started
    # The container id recorded at the swap tells the placeholder's instance from the step's. The image the
    # kubelet reports is used only when that id was unknown (the placeholder had not started): it can name
    # another tag of the same image, so it must not overrule the id.
    not_placeholder = bool(cs) and (bool(placeholder_id) or not _is_placeholder(cs.get("image"), plan, c.image))
    terminated = state.get("terminated")
    if killed == statuses.Reason.DETACHED:
        return detached_view(StepView(
            state=statuses.StepState.RUNNING, started=True,
            exit_code=int(terminated.get("exitCode", 1)) if terminated and not_placeholder else None,
            started_at=(terminated or state.get("running") or {}).get("startedAt") if not_placeholder else None,
            finished_at=terminated.get("finishedAt") if terminated and not_placeholder else None,
        ))
    if terminated and not_placeholder and terminated.get("containerID", "") != placeholder_id:
        code = int(terminated.get("exitCode", 1))
        reason = terminated.get("reason")
        return StepView(
            state=statuses.StepState.SUCCEEDED if code in (0, EXIT_EARLY) and not killed else statuses.StepState.FAILED,
            started=True,
            exit_code=code,
            started_at=terminated.get("startedAt"),
            finished_at=terminated.get("finishedAt"),
            reason=killed or (reason if reason not in (None, "Completed", "Error") else None),
            message=_short(terminated.get("message")),
        )
    if killed:
        return StepView(state=statuses.StepState.FAILED, started=True, reason=killed, message=killed_message)
    running = state.get("running")
    if running and not_placeholder and cs and cs.get("containerID", "") != placeholder_id:
        return StepView(state=statuses.StepState.RUNNING, started=True, started_at=running.get("startedAt"))
    waiting = state.get("waiting") or {}
    reason = waiting.get("reason")
    return StepView(
        state=statuses.StepState.RUNNING,
        started=True,
        reason=reason or "Starting",
        message=_short(waiting.get("message")) if reason else None,
        waiting_since=at,
    )


def detached_view(view: StepView) -> StepView:
    """A detached step that was still running when the run ended: stopped with the pod, not failed."""
    return StepView(
        state=statuses.StepState.SUCCEEDED, started=True, exit_code=view.exit_code, started_at=view.started_at,
        finished_at=view.finished_at, reason=statuses.Reason.DETACHED,
        message="detached: still running when the run ended, and stopped with the pod",
    )


def _view_placeholder(cs: Mapping[str, Any] | None, state: Mapping[str, Any]) -> StepView:
    if not cs:
        return StepView(state=statuses.StepState.WAITING)
    if state.get("running"):
        return StepView(state=statuses.StepState.WAITING, placeholder_id=cs.get("containerID", ""))
    terminated = state.get("terminated")
    if terminated:
        return StepView(
            state=statuses.StepState.WAITING,
            placeholder_dead=True,
            exit_code=terminated.get("exitCode"),
            reason=terminated.get("reason"),
            message=_short(terminated.get("message")),
        )
    waiting = state.get("waiting") or {}
    return StepView(
        state=statuses.StepState.WAITING,
        reason=waiting.get("reason"),
        message=_short(waiting.get("message")),
    )


def view_service(c: plans.ContainerPlan, pod: Mapping[str, Any] | None) -> StepView:
    cs = container_statuses(pod).get(c.name)
    state = (cs or {}).get("state") or {}
    if state.get("running"):
        return StepView(state=statuses.StepState.RUNNING, started=True, started_at=state["running"].get("startedAt"))
    if state.get("terminated"):
        t = state["terminated"]
        code = int(t.get("exitCode", 1))
        return StepView(
            state=statuses.StepState.SUCCEEDED if code == 0 else statuses.StepState.FAILED,
            started=True,
            exit_code=code,
            started_at=t.get("startedAt"),
            finished_at=t.get("finishedAt"),
            reason=t.get("reason") if t.get("reason") not in ("Completed", "Error") else None,
        )
    waiting = state.get("waiting") or {}
    return StepView(state=statuses.StepState.WAITING, reason=waiting.get("reason"), message=_short(waiting.get("message")))


def pod_phase(pod: Mapping[str, Any] | None) -> str | None:
    return (pod or {}).get("status", {}).get("phase")


def pod_reason(pod: Mapping[str, Any] | None) -> str | None:
    return (pod or {}).get("status", {}).get("reason")


def seconds_since(timestamp: str | None, now: datetime) -> float | None:
    if not timestamp:
        return None
    try:
        then = datetime.fromisoformat(timestamp)  # Python 3.11 reads the "Z" suffix
    except ValueError:
        return None
    return (now - then).total_seconds()


def _short(message: str | None, limit: int = 500) -> str | None:
    if not message:
        return None
    return message if len(message) <= limit else message[: limit - 1] + "…"
