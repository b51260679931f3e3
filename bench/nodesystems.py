"""The systems the node bench runs side by side, each driven only from outside, as a user would.

- `Podline`: ``kubectl apply`` of Pipelines; done when the bench's watch sees a final phase.
- `Drone`: ``drone-runner-kube exec`` of the same ``.drone.yml`` (`peer`); done when it has decided.
- `Floor`: no runner at all: ``kubectl apply`` of a pod whose containers (busybox, the same image) wait
  for their dependencies' files in an emptyDir (a 1 ms poll) and run the same ``echo`` (``chain``), or of a
  pod with one container running every step's command in one shell (``shell``); done when the pod is.

Every system returns `Outcome`s: submit and done times and each step's interval, all in wall-clock
seconds. A step's interval comes from containerd's task events (`taskevents`) — the step process's start
and exit — or, where a container runs several things, from the finer of its own clocks: podline's status
times when they have sub-second digits (the kubelet's do not), the floor's µs timestamps from ``adjtimex``.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from typing import Any

import kubernetes.client
import yaml

from bench import peer, taskevents, watching

STEP_IMAGE = "busybox:1.36"  # docker.io/library/busybox:1.36, served by the node tier's public registry
GROUP, VERSION, PLURAL = "podline.dev", "v1alpha1", "pipelines"


@dataclasses.dataclass
class Interval:
    name: str
    start: float | None  # the step's command started
    end: float | None  # … and ended
    ready: float | None = None  # its container's process started (before `start` where a container waits)


@dataclasses.dataclass
class Outcome:
    system: str
    name: str
    submitted: float
    done: float | None  # when the system knew the result
    phase: str
    steps: list[Interval] = dataclasses.field(default_factory=list)
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def seconds(self) -> float | None:
        return None if self.done is None else self.done - self.submitted


# ---- the pipelines ---------------------------------------------------------------------------------


def echo_steps(count: int) -> list[dict[str, Any]]:
    return [{"name": f"s{i:02d}", "image": STEP_IMAGE, "commands": [f"echo step {i}"]} for i in range(count)]


def fanout_steps() -> list[dict[str, Any]]:
    """a → (b, c) → d."""

    def step(name: str, after: Sequence[str]) -> dict[str, Any]:
        found: dict[str, Any] = {"name": name, "image": STEP_IMAGE, "commands": [f"echo step {name}"]}
        if after:
            found["depends_on"] = list(after)
        return found

    return [step("a", ()), step("b", ("a",)), step("c", ("a",)), step("d", ("b", "c"))]


def drone_document(name: str, steps: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``.drone.yml`` body both runners get (podline under ``spec``)."""
    return {
        "kind": "pipeline",
        "type": "kubernetes",
        "name": name,
        "clone": {"disable": True},
        "steps": steps,
    }


def dependencies(steps: Sequence[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Step -> the steps it waits for: ``depends_on``, else the step before it (Drone's order)."""
    names = [s["name"] for s in steps]
    if any("depends_on" in s for s in steps):
        return {s["name"]: list(s.get("depends_on", ())) for s in steps}
    return {name: names[i - 1 : i] for i, name in enumerate(names)}


def handoffs(
    outcome: Outcome, steps: Sequence[Mapping[str, Any]], *, waiting: bool | None = None
) -> list[float]:
    """Seconds from the end of a step's last dependency to its start, for every step with dependencies;
    ``waiting``: only those whose container was (True) or was not (False) already running then.

    Steps are matched by position in start order (drone-runner-kube names its containers at random), which
    is the pipeline's own order for a chain and for a → (b, c) → d."""
    measured = sorted((s for s in outcome.steps if s.start is not None), key=lambda s: s.start or 0.0)
    if len(measured) != len(steps):
        return []
    by_name = {step["name"]: interval for step, interval in zip(steps, measured, strict=True)}
    found = []
    for name, after in dependencies(steps).items():
        ends = [by_name[a].end for a in after]
        step = by_name[name]
        if not after or step.start is None or any(e is None for e in ends):
            continue
        last = max(e for e in ends if e is not None)
        was_waiting = step.ready is not None and step.ready < last
        if waiting is None or waiting == was_waiting:
            found.append(step.start - last)
    return found


# ---- the harness the systems share -----------------------------------------------------------------


@dataclasses.dataclass
class Node:
    """What the systems need of the node tier: kubectl, an API client, containerd's task events."""

    kubectl_program: str
    kubeconfig: pathlib.Path
    api: kubernetes.client.ApiClient
    events: taskevents.TaskEvents
    work: pathlib.Path  # scratch files (manifests, .drone.yml) and the peer's logs
    offset: float = dataclasses.field(default_factory=lambda: time.time() - time.monotonic())

    def wall(self, monotonic: float) -> float:
        return monotonic + self.offset

    def kubectl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [self.kubectl_program, "--kubeconfig", str(self.kubeconfig), *args],
            check=False,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)}: {result.stderr.strip()}")
        return result

    def settle(self, read: Any, expected: int, timeout: float = 5.0) -> list[Interval]:
        """``read()`` again (for up to ``timeout`` s) until it gives ``expected`` intervals with both ends:
        containerd's events can arrive a moment after the watch showed the run over."""
        deadline = time.monotonic() + timeout
        while True:
            found: list[Interval] = read()
            complete = [i for i in found if i.start is not None and i.end is not None]
            if len(complete) >= expected or time.monotonic() > deadline:
                return found
            time.sleep(0.25)

    def apply(self, documents: Sequence[Mapping[str, Any]], namespace: str) -> float:
        """``kubectl apply`` of the documents (one file, one process); returns the wall time before it."""
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", dir=self.work, delete=False) as handle:
            yaml.safe_dump_all(list(documents), handle, sort_keys=False)
        submitted = time.time()
        self.kubectl("apply", "-n", namespace, "-f", handle.name)
        return submitted


def _wait(recorder: watching.Recorder, predicate: Any, timeout: float) -> bool:
    return recorder.wait(predicate, timeout)


class Podline:
    name = "podline"

    def __init__(self, node: Node) -> None:
        self.node = node

    def run(
        self, namespace: str, pipelines: Sequence[tuple[str, list[dict[str, Any]]]], timeout: float
    ) -> list[Outcome]:
        node = self.node
        recorder = watching.Recorder(node.api, namespace)
        recorder.start()
        try:
            bodies = [
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": "Pipeline",
                    "metadata": {"name": name},
                    "spec": drone_document(name, steps),
                }
                for name, steps in pipelines
            ]
            submitted = node.apply(bodies, namespace)
            names = {name for name, _ in pipelines}
            _wait(recorder, lambda: names <= set(recorder.pipeline_phase_times(watching.TERMINAL)), timeout)
        finally:
            recorder.stop()
        done = recorder.pipeline_phase_times(watching.TERMINAL)
        pods = recorder.pods_of_pipelines()
        custom = kubernetes.client.CustomObjectsApi(node.api)
        outcomes = []
        for name, _steps in pipelines:
            body = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
            status = body.get("status") or {}
            outcome = Outcome(
                self.name,
                name,
                submitted,
                node.wall(done[name]) if name in done else None,
                status.get("phase", "?"),
            )
            outcome.steps = node.settle(
                lambda name=name, status=status: self._steps(namespace, pods.get(name), status), len(_steps)
            )
            outcomes.append(outcome)
        return outcomes

    def _steps(self, namespace: str, pod: str | None, status: Mapping[str, Any]) -> list[Interval]:
        if pod is None:
            return []
        tasks = taskevents.step_tasks(
            self.node.events.tasks(namespace, pod), placeholders=(peer.PLACEHOLDER,)
        )
        found = []
        for entry in status.get("steps") or ():
            task = tasks.get(entry.get("container") or f"step-{entry['name']}")
            start = task.started if task else None
            end = task.exited if task else None
            if taskevents.has_fraction(
                entry.get("startedAt")
            ):  # podline's own clock, finer than the kubelet's
                own = taskevents.rfc3339(entry["startedAt"])
                start = own if start is None or (own is not None and own > start) else start
            if end is None and taskevents.has_fraction(entry.get("finishedAt")):
                end = taskevents.rfc3339(entry["finishedAt"])
            found.append(Interval(entry["name"], start, end, task.started if task else None))
        return found


class Drone:
    name = "drone-runner-kube"

    def __init__(self, node: Node, built: peer.Peer) -> None:
        self.node, self.peer = node, built

    def run(
        self, namespaces: Sequence[str], pipelines: Sequence[tuple[str, list[dict[str, Any]]]], timeout: float
    ) -> list[Outcome]:
        """One ``exec`` per pipeline, all at once, each in its own namespace (its pods have random names)."""
        execs = []
        for namespace, (name, steps) in zip(namespaces, pipelines, strict=True):
            path = self.node.work / f"{namespace}.drone.yml"
            path.write_text(yaml.safe_dump(drone_document(name, steps), sort_keys=False))
            execs.append(
                peer.Exec(
                    self.peer,
                    self.node.kubeconfig,
                    namespace,
                    path,
                    self.node.work / "drone-runner-kube.log",
                    pipeline=name,
                )
            )
        for one in execs:
            one.start()
        deadline = time.monotonic() + timeout
        for one in execs:
            one.wait(max(1.0, deadline - time.monotonic()))
        outcomes = []
        for namespace, (name, _steps), one in zip(namespaces, pipelines, execs, strict=True):
            phase = {0: "Succeeded", None: "Timeout"}.get(one.returncode, "Failed")
            outcome = Outcome(
                self.name,
                name,
                one.submitted,
                one.decided,
                phase,
                extra={"process_seconds": (one.ended - one.submitted) if one.ended else None},
            )

            def read(namespace: str = namespace) -> list[Interval]:
                tasks = taskevents.step_tasks(
                    self.node.events.tasks(namespace), placeholders=(peer.PLACEHOLDER,)
                )
                return [Interval(t.container.name, t.started, t.exited, t.started) for t in tasks.values()]

            outcome.steps = self.node.settle(read, len(_steps) if one.returncode == 0 else 0)
            outcomes.append(outcome)
        return outcomes


_NOW = "now() { adjtimex | awk '/tv_sec/{s=$2} /tv_usec/{u=$2} END{printf \"%d.%06d\", s, u}'; }"


def floor_pod(name: str, steps: Sequence[Mapping[str, Any]], *, shell: bool) -> dict[str, Any]:
    """The floor's pod for ``steps``: one container per step chained on files in an emptyDir, or
    (``shell``) one container running every step's commands in one shell.

    In the chain every container first marks itself up (``/w/<step>.up``), and the first steps wait until
    all are up: the kubelet starts a pod's containers one after another, so without this a trivial step
    would end before the next container exists, and the floor would time the kubelet's start-up instead of
    a hand-off. Each step then waits for its dependencies' files (a 1 ms poll), takes its µs start time
    (``adjtimex``), runs its commands, takes its end time and writes its own file."""

    def container(cname: str, script: str) -> dict[str, Any]:
        return {
            "name": cname,
            "image": STEP_IMAGE,
            "imagePullPolicy": "IfNotPresent",
            "command": ["/bin/sh", "-c", script],
            "volumeMounts": [{"name": "w", "mountPath": "/w"}],
        }

    if shell:
        script = "\n".join(command for step in steps for command in step["commands"])
        containers = [container("all", "set -e\n" + script)]
    else:
        containers = []
        everyone = "".join(f"until [ -e /w/{s['name']}.up ]; do usleep 1000; done\n" for s in steps)
        for step, (sname, after) in zip(steps, dependencies(steps).items(), strict=True):
            wait = (
                "".join(f"until [ -e /w/{a} ]; do usleep 1000; done\n" for a in after) if after else everyone
            )
            body = "\n".join(step["commands"])
            containers.append(
                container(
                    sname,
                    f"{_NOW}\ntouch /w/{sname}.up\n{wait}t0=$(now)\n{body}\n"
                    f't1=$(now)\necho "bench-times $t0 $t1"\ntouch /w/{sname}\n',
                )
            )
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "terminationGracePeriodSeconds": 1,
            "volumes": [{"name": "w", "emptyDir": {}}],
            "containers": containers,
        },
    }


class Floor:
    def __init__(self, node: Node, *, shell: bool) -> None:
        self.node, self.shell = node, shell
        self.name = "floor: one shell" if shell else "floor: chained containers"

    def run(
        self, namespace: str, pipelines: Sequence[tuple[str, list[dict[str, Any]]]], timeout: float
    ) -> list[Outcome]:
        node = self.node
        recorder = watching.Recorder(node.api, namespace, pipelines=False)
        recorder.start()

        def ended() -> dict[str, float]:
            """Pod -> when the watch first showed every container terminated (what podline's operator
            and drone-runner-kube react to; the pod's phase follows in a later status write)."""
            seen: dict[str, float] = {}
            for e in recorder.pods:
                if e.states and all(state == "terminated" for state in e.states.values()):
                    seen.setdefault(e.name, e.t)
            return seen

        try:
            pods = [floor_pod(name, steps, shell=self.shell) for name, steps in pipelines]
            submitted = node.apply(pods, namespace)
            names = {name for name, _ in pipelines}
            _wait(recorder, lambda: names <= set(ended()), timeout)
        finally:
            recorder.stop()
        done = ended()
        outcomes = []
        for name, steps in pipelines:
            exits = [t.status for t in taskevents.step_tasks(node.events.tasks(namespace, name)).values()]
            phase = (
                "Succeeded" if exits and all(code == 0 for code in exits) else f"Failed (exit codes {exits})"
            )
            outcome = Outcome(
                self.name, name, submitted, node.wall(done[name]) if name in done else None, phase
            )
            outcome.steps = node.settle(
                lambda name=name, steps=steps: self._steps(namespace, name, steps),
                1 if self.shell else len(steps),
            )
            outcomes.append(outcome)
        return outcomes

    def _steps(self, namespace: str, pod: str, steps: Sequence[Mapping[str, Any]]) -> list[Interval]:
        tasks = taskevents.step_tasks(self.node.events.tasks(namespace, pod))
        if self.shell:
            task = tasks.get("all")
            return [Interval("all", task.started, task.exited, task.started)] if task else []
        found = []
        for step in steps:
            log = self.node.kubectl("logs", "-n", namespace, pod, "-c", step["name"], check=False).stdout
            times = [line.split()[1:3] for line in log.splitlines() if line.startswith("bench-times ")]
            task = tasks.get(step["name"])
            ready = task.started if task else None
            if times:
                found.append(Interval(step["name"], float(times[0][0]), float(times[0][1]), ready))
            else:
                found.append(Interval(step["name"], ready, task.exited if task else None, ready))
        return found


def outcome_json(outcome: Outcome) -> dict[str, Any]:
    base = outcome.submitted
    return {
        "system": outcome.system,
        "name": outcome.name,
        "phase": outcome.phase,
        "seconds": outcome.seconds,
        "extra": outcome.extra,
        "steps": [
            {
                "name": s.name,
                "start": None if s.start is None else s.start - base,
                "end": None if s.end is None else s.end - base,
                "ready": None if s.ready is None else s.ready - base,
            }
            for s in outcome.steps
        ],
    }


def dump(outcomes: Sequence[Outcome]) -> str:
    return json.dumps([outcome_json(o) for o in outcomes])
