"""The scheduler driving a scripted kubelet to the end of a run, over generated pipelines (hypothesis).

A fake kubelet plays the pod: it runs a step container when podline swaps its image in (first killing
the placeholder, as the real one does: the trap), reports each container's state as the kubelet would,
ends the pod by itself when every container has terminated, and stops it when podline sets the
deadline. Hypothesis picks the pipeline, each step's exit code, and how far the kubelet gets between two
decisions (several transitions at once: missed watch events), and some mishaps: a placeholder that dies
before its step starts, an image that is never present (``pull: never``). Whatever the interleaving, the
run ends, no step starts twice or before its dependencies, the outcome follows Drone's rules, and it
reads the same once the kubelet has stopped the pod (when the waiting reasons are gone).
"""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from podline.core import compiling, conventions, plans, policies, scheduling, statuses

from tests.core import podstates as ps

POLICY = policies.Policy()
CONTEXT = compiling.RunContext(namespace="ci", pipeline="sim", uid="uid-sim", generation=1)
IMAGES = ["alpine:3.20", "busybox:1.36", "golang:1.22", "python:3.12"]
CODES = [0, 0, 0, 1, 2, 78, 137]
NEVER, PLACEHOLDER_DIES = -1, -2  # mishaps instead of an exit code
STARTED, SKIPPED, KILLED = conventions.ANNOTATION_STARTED_PREFIX, scheduling.SKIPPED_PREFIX, conventions.ANNOTATION_KILLED_PREFIX


class Kubelet:
    """One pod's containers as a kubelet runs them (restartPolicy Never, image swaps restart a container)."""

    def __init__(self, plan: plans.RunPlan, manifest: dict[str, Any], codes: dict[str, int]) -> None:
        self.plan = plan
        self.codes = codes
        self.pod = copy.deepcopy(manifest)
        self.pod["metadata"].update(resourceVersion="1", creationTimestamp=ps.ts(0))
        self.images = {c["name"]: c["image"] for c in manifest["spec"]["containers"]}
        self.phase, self.reason, self.stop = "Pending", None, False
        self.serial = 0
        # name → (state, detail): ph-creating, ph-running, ph-dead, swapping, creating, never, running, exited,
        # lost (terminated without a container when the pod stopped)
        self.state: dict[str, tuple[str, Any]] = {}
        for name, image in self.images.items():
            self.state[name] = ("ph-creating", None) if image == plan.placeholder_image else ("creating", None)

    def _cid(self, name: str) -> str:
        self.serial += 1
        return f"containerd://{name}-{self.serial}"

    def apply(self, patch: dict[str, Any] | None) -> None:
        if not patch:
            return
        assert patch["metadata"]["resourceVersion"] == self.pod["metadata"]["resourceVersion"], "unconditional patch"
        self.pod["metadata"]["annotations"].update(patch["metadata"].get("annotations", {}))
        self.pod["metadata"]["resourceVersion"] = str(int(self.pod["metadata"]["resourceVersion"]) + 1)
        for c in patch.get("spec", {}).get("containers", []):
            assert c["image"] != self.plan.placeholder_image, "the simulation has no timeouts: nothing is killed"
            self.images[c["name"]] = c["image"]
        if patch.get("spec", {}).get("activeDeadlineSeconds") == 1:
            self.stop = True

    def ended(self) -> bool:
        return self.phase in ("Succeeded", "Failed")

    def movable(self) -> list[str]:
        if self.ended():
            return []
        if self.stop:
            return ["<deadline>"]
        out = []
        for name, (state, _) in self.state.items():
            if self._can_move(name, state):
                out.append(name)
        return out

    def _can_move(self, name: str, state: str) -> bool:
        swapped = self.images[name] != self.plan.placeholder_image
        if state in ("ph-creating", "swapping", "creating"):
            return True
        if state == "ph-running":
            return swapped or self.codes.get(name) == PLACEHOLDER_DIES
        return state == "running" and name.startswith(conventions.CONTAINER_STEP_PREFIX) and not self.detached(name)

    def detached(self, name: str) -> bool:
        return self.plan.container(name).detach

    def tick(self, name: str) -> None:
        if name == "<deadline>":
            for other, (state, detail) in self.state.items():
                if state in ("running", "ph-running"):
                    self.state[other] = ("exited" if state == "running" else "ph-dead", (137, detail))
                elif state not in ("exited", "ph-dead"):
                    self.state[other] = ("lost", None)
            self.phase, self.reason = "Failed", "DeadlineExceeded"
            return
        state, detail = self.state[name]
        if state == "ph-creating":
            self.state[name] = ("ph-running", self._cid(name))
            self.phase = "Running"
        elif state == "ph-running" and self.images[name] == self.plan.placeholder_image:
            self.state[name] = ("ph-dead", (1, detail))  # PLACEHOLDER_DIES
        elif state == "ph-running":
            self.state[name] = ("swapping", detail)  # the placeholder is killed: its termination shows first
        elif state in ("swapping", "creating") and self.codes.get(name) == NEVER:
            self.state[name] = ("never", None)
        elif state in ("swapping", "creating"):
            self.state[name] = ("running", self._cid(name))
            self.phase = "Running"
        elif state == "running":
            self.state[name] = ("exited", (self.codes[name], detail))
        if all(s in ("exited", "ph-dead") for s, _ in self.state.values()):
            failed = any(code != 0 for _, (code, _) in self.state.values())
            self.phase = "Failed" if failed else "Succeeded"

    def view(self) -> dict[str, Any]:
        statuses_ = []
        for name, (state, detail) in self.state.items():
            image = self.images[name]
            if state == "ph-creating":
                s = ps.placeholder_waiting(name, "ContainerCreating")
            elif state == "ph-running":
                s = ps.placeholder(name, cid=detail)
            elif state == "swapping":
                s = ps.placeholder_exited(name, 137, cid=detail)
            elif state == "ph-dead":
                code, cid = detail
                s = ps.placeholder_exited(name, code, cid=cid)
            elif state == "creating":
                s = ps.waiting(name, image, "ContainerCreating")
            elif state == "never":
                s = ps.waiting(name, image, "ErrImageNeverPull", f'image "{image}" is not present')
            elif state == "lost":
                s = {"name": name, "image": image, "state": {"terminated": {
                    "exitCode": 137, "reason": "ContainerStatusUnknown",
                    "message": "The container could not be located when the pod was terminated"}}}
            elif state == "running":
                s = ps.running(name, image, cid=detail)
            else:
                code, cid = detail
                s = ps.exited(name, image, code, cid=cid)
            statuses_.append(s)
        pod = copy.deepcopy(self.pod)
        pod["status"] = {"phase": self.phase, "startTime": ps.ts(0), "containerStatuses": statuses_}
        if self.reason:
            pod["status"]["reason"] = self.reason
        return pod


@st.composite
def runs(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, int]]:
    count = draw(st.integers(1, 5))
    dag = draw(st.booleans())
    steps: list[dict[str, Any]] = []
    for index in range(count):
        step: dict[str, Any] = {"name": f"s{index}", "image": draw(st.sampled_from(IMAGES)), "commands": ["true"]}
        if dag and index:
            step["depends_on"] = draw(st.lists(st.sampled_from([f"s{i}" for i in range(index)]), max_size=2, unique=True))
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
    codes = {conventions.step_container(s["name"]): draw(st.sampled_from([*CODES, NEVER, PLACEHOLDER_DIES]))
             for s in steps}
    return spec, codes


def exit_code(kubelet: Kubelet, name: str) -> int | None:
    state, detail = kubelet.state[name]
    return detail[0] if state == "exited" else None


def outline(status: statuses.PipelineStatus) -> Any:
    return status.phase, status.reason, [(s.name, s.state, s.reason) for s in status.steps]


def done_for_dependants(plan: plans.RunPlan, kubelet: Kubelet, name: str, patch_notes: dict[str, str]) -> bool:
    """Whether a step's dependant may start: the dependency exited, or is skipped (perhaps by this very
    patch), or is detached and started."""
    notes = {**kubelet.pod["metadata"]["annotations"], **patch_notes}
    if SKIPPED + name in notes:
        return True
    if kubelet.state[name][0] == "ph-dead" and STARTED + name not in notes:
        return True  # its placeholder died: failed without starting
    if plan.container(name).detach:
        return STARTED + name in notes
    return kubelet.state[name][0] in ("exited", "never") and STARTED + name in notes  # "never": failed at once


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(runs(), st.data())
def test_any_interleaving_runs_to_a_consistent_end(run: tuple[dict[str, Any], dict[str, int]], data: st.DataObject) -> None:
    spec, codes = run
    plan = compiling.compile_spec(spec, CONTEXT, POLICY)
    decision = scheduling.decide(scheduling.Snapshot(plan=plan, pod=None, now=ps.T0, generation=1, run=plan.run))
    (manifest,) = decision.create
    kubelet = Kubelet(plan, manifest, codes)
    status = decision.status.to_patch()
    events = list(decision.events)
    start_order: list[str] = sorted(k.removeprefix(STARTED) for k in manifest["metadata"]["annotations"] if k.startswith(STARTED))
    stalled = False
    for second in range(1, 400):
        movable = kubelet.movable()
        for _ in range(data.draw(st.integers(1 if stalled else 0, 3), label="transitions")):
            movable = kubelet.movable()
            if not movable:
                break
            kubelet.tick(data.draw(st.sampled_from(movable), label="container"))
        pod = kubelet.view()
        snap = scheduling.Snapshot(plan=plan, pod=pod, now=ps.T0 + timedelta(seconds=second), generation=1,
                                   run=plan.run, status=status)
        decision = scheduling.decide(snap)
        notes = pod["metadata"]["annotations"]
        patch_notes = ((decision.pod_patch or {}).get("metadata") or {}).get("annotations", {})
        for key in patch_notes:
            assert not key.startswith(STARTED) or key not in notes, f"{key} started twice"
            assert not key.startswith(SKIPPED) or key not in notes, f"{key} skipped twice"
        # Nothing new starts once an exit code 78 has been seen.
        seen_78 = any(STARTED + c.name in notes and not c.detach and exit_code(kubelet, c.name) == 78 for c in plan.steps)
        for c in (decision.pod_patch or {}).get("spec", {}).get("containers", []):
            name = c["name"]
            assert not seen_78, f"{name} started after an exit code 78"
            assert SKIPPED + name not in notes, f"{name} started after it was skipped"
            assert all(done_for_dependants(plan, kubelet, d, patch_notes) for d in plan.container(name).depends_on), (
                f"{name} started before its dependencies were done")
            start_order.append(name)
        kubelet.apply(decision.pod_patch)
        events.extend(decision.events)
        stalled = decision.pod_patch is None
        status = decision.status.to_patch()
        phase = statuses.Phase(status["phase"])
        if phase.is_terminal and (kubelet.ended() or not kubelet.movable()):
            break
        if not movable and not kubelet.movable() and decision.pod_patch is None:
            raise AssertionError(f"deadlock: nothing can move and the run is {phase}: {json.dumps(status)[:400]}")
    final = statuses.PipelineStatus.model_validate(status)
    assert final.phase is not None and final.phase.is_terminal, final
    assert len(start_order) == len(set(start_order))

    # Once the kubelet has stopped the pod (waiting reasons gone, containers lost), the run reads the same.
    while kubelet.movable():
        kubelet.tick(kubelet.movable()[0])
    later = scheduling.decide(scheduling.Snapshot(plan=plan, pod=kubelet.view(), now=ps.T0 + timedelta(seconds=999),
                                                  generation=1, run=plan.run, status=status))
    assert outline(later.status) == outline(final)
    assert later.events == ()

    # Drone's rules, checked against what the kubelet ran.
    by_name = {s.container: s for s in final.steps}
    ran = set(start_order)
    for c in plan.steps:
        s = by_name[c.name]
        if c.name not in ran and codes[c.name] == PLACEHOLDER_DIES and (s.state, s.reason) == ("failed", "PlaceholderExited"):
            continue  # died before its turn came; at its turn it would have been skipped or started
        if c.name not in ran:
            assert s.state == "skipped", (c.name, s)
        elif c.detach:  # not waited for: stopped at the end, unless it failed before
            assert (s.state, s.reason) in (("succeeded", "Detached"), ("failed", "ErrImageNeverPull")), (c.name, s)
        elif codes[c.name] == NEVER:
            assert (s.state, s.reason) == ("failed", "ErrImageNeverPull"), (c.name, s)
        else:
            assert s.exit_code == codes[c.name], (c.name, s)
            assert s.state == ("succeeded" if codes[c.name] in (0, 78) else "failed"), (c.name, s)
    failed = [c for c in plan.steps if not c.detach and not c.ignore_failure and by_name[c.name].state == "failed"]
    early = any(c.name in ran and not c.detach and codes[c.name] == 78 for c in plan.steps)
    if failed:
        assert (final.phase, final.reason) == ("Failed", "StepFailed"), final
    else:
        assert (final.phase, final.reason) == ("Succeeded", "EarlyExit" if early else "Succeeded"), final
    # A step that runs only on failure ran only after a failure.
    for c in plan.steps:
        if c.name in ran and not c.run_on_success:
            assert any(by_name[o.name].state == "failed" for o in plan.steps if not o.ignore_failure and not o.detach)
    # Few events: started once, finished once, one per failed step.
    reasons = [e.reason for e in events]
    assert reasons.count(str(final.phase)) == 1
    assert reasons.count("Started") <= 1  # none when the first look at the pod finds the run over
    assert reasons.count("StepFailed") == sum(1 for s in final.steps if s.state == "failed")
