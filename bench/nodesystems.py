"""The systems the node bench runs side by side, each driven only from outside, as a user would.

- `Podline`: ``kubectl apply`` of Pipelines; done when the bench's watch sees a final phase.
- `Drone`: ``drone-runner-kube exec`` of the same ``.drone.yml`` (`peer`); done when it has decided.
- `Tekton`: Tekton's own entrypoint (built here, `tekton`) in the pod Tekton's controller would build for
  a TaskRun (the controller and its webhooks do not run); done when every step container has ended.
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


def wait_steps(first: float, count: int, each: float) -> list[dict[str, Any]]:
    """A step of ``sleep first``, then ``count`` steps of ``sleep each``, in order."""
    sleeps = [first] + [each] * count
    return [
        {"name": f"s{i:02d}", "image": STEP_IMAGE, "commands": [f"sleep {seconds:g}"]}
        for i, seconds in enumerate(sleeps)
    ]


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
            body: dict[str, Any] = custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name
            )  # type: ignore[assignment]
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


# ---- Tekton's entrypoint in the pod its controller would build --------------------------------------

TEKTON = "tekton entrypoint"
TEKTON_BIN = "/tekton/bin/entrypoint"
TEKTON_RUN = "/tekton/run"
TEKTON_READY = "tekton.dev/ready"  # the annotation the controller sets once the pod runs (`UpdateReady`)
TEKTON_READY_FILE = "/tekton/downward/ready"  # … projected into the first step by the downward API


def tekton_pod(name: str, steps: Sequence[Mapping[str, Any]], image: str) -> dict[str, Any]:
    """The pod Tekton's controller (pkg/pod/pod.go ``Build``, pkg/pod/entrypoint.go ``orderContainers``)
    builds for a TaskRun of ``steps``, each ``command: [sh, -c, <commands>]`` on its own image, with the
    default feature flags and no sidecars, its entrypoint image ``image``.

    - init container ``prepare`` (the entrypoint image): ``entrypoint init`` copies the binary into the
      ``/tekton/bin`` emptyDir and makes the ``/tekton/steps`` links;
    - per step ``step-<name>``: its own image, command ``/tekton/bin/entrypoint`` with ``-wait_file`` of
      the previous step's post file (``/tekton/run/<i-1>/out``; the first step: the downward-API ready
      file with ``-wait_file_content``: ``running-in-environment-with-injected-sidecars`` and
      ``await-sidecar-readiness`` default to true, so the pod is not "ready immediately"), ``-post_file``,
      ``-termination_path``, ``-step_metadata_dir``, ``-entrypoint sh -- -c …``; ``/tekton/run/<j>`` of
      every step mounted (its own read-write), an in-memory ``/tekton/creds`` emptyDir of its own, the
      implicit volumes (workspace, home, results, steps, artifacts);
    - ``activeDeadlineSeconds``: the default timeout (60 min) × 1.5.

    Left out: owner reference and labels (no TaskRun object exists), and the default service account's
    token (``automountServiceAccountToken: false``, as a podTemplate can set, as podline's and the floor's
    pods do): the pod would otherwise be the same."""
    implicit = [
        ("tekton-internal-workspace", "/workspace", False),
        ("tekton-internal-home", "/tekton/home", False),
        ("tekton-internal-results", "/tekton/results", False),
        ("tekton-internal-steps", "/tekton/steps", True),
        ("tekton-internal-artifacts", "/tekton/artifacts", False),
    ]
    volumes: list[dict[str, Any]] = [{"name": v, "emptyDir": {}} for v, _, _ in implicit]
    bin_mount = {"name": "tekton-internal-bin", "mountPath": "/tekton/bin"}
    containers = []
    for i, step in enumerate(steps):
        args = (
            [
                "-wait_file",
                TEKTON_READY_FILE,
                "-wait_file_content",
            ]
            if i == 0
            else ["-wait_file", f"{TEKTON_RUN}/{i - 1}/out"]
        )
        args += [
            "-post_file",
            f"{TEKTON_RUN}/{i}/out",
            "-termination_path",
            "/tekton/termination",
            "-step_metadata_dir",
            f"{TEKTON_RUN}/{i}/status",
            "-entrypoint",
            "sh",
            "--",
            "-c",
            "\n".join(step["commands"]),
        ]
        volumes.append({"name": f"tekton-creds-init-home-{i}", "emptyDir": {"medium": "Memory"}})
        volumes.append({"name": f"tekton-internal-run-{i}", "emptyDir": {}})
        mounts: list[dict[str, Any]] = (
            [{"name": "tekton-internal-downward", "mountPath": "/tekton/downward", "readOnly": True}]
            if i == 0
            else []
        )
        mounts.append({"name": f"tekton-creds-init-home-{i}", "mountPath": "/tekton/creds"})
        mounts += [
            {"name": f"tekton-internal-run-{j}", "mountPath": f"{TEKTON_RUN}/{j}", "readOnly": i != j}
            for j in range(len(steps))
        ]
        mounts.append({**bin_mount, "readOnly": True})
        mounts += [{"name": v, "mountPath": path, "readOnly": ro} for v, path, ro in implicit]
        containers.append(
            {
                "name": f"step-{step['name']}",
                "image": step["image"],
                "command": [TEKTON_BIN],
                "args": args,
                "terminationMessagePath": "/tekton/termination",
                "volumeMounts": mounts,
            }
        )
    volumes.append({"name": "tekton-internal-bin", "emptyDir": {}})
    volumes.append(
        {
            "name": "tekton-internal-downward",
            "downwardAPI": {
                "items": [
                    {"path": "ready", "fieldRef": {"fieldPath": f"metadata.annotations['{TEKTON_READY}']"}}
                ]
            },
        }
    )
    prepare = {
        "name": "prepare",
        "image": image,
        "workingDir": "/",
        "command": ["/ko-app/entrypoint", "init", "/ko-app/entrypoint", TEKTON_BIN]
        + [f"step-{s['name']}" for s in steps],
        "volumeMounts": [bin_mount, {"name": "tekton-internal-steps", "mountPath": "/tekton/steps"}],
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"{name}-pod", "annotations": {}},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "activeDeadlineSeconds": 5400,
            "initContainers": [prepare],
            "containers": containers,
            "volumes": volumes,
        },
    }


def tekton_started_at(message: str | None) -> float | None:
    """The step's command start from its termination message (the entrypoint's ``StartedAt`` result, ms
    precision, taken after its waits and right before it starts the command); None if there is none."""
    try:
        results = json.loads(message or "")
    except ValueError:
        return None
    for entry in results if isinstance(results, list) else ():
        if isinstance(entry, dict) and entry.get("key") == "StartedAt":
            return taskevents.rfc3339(str(entry.get("value", "")))
    return None


class Tekton:
    """Tekton's entrypoint in the pod its controller would build (`tekton_pod`), the bench playing the
    controller's one part on the way: once the watch shows the pod ``Running``, it sets the ready
    annotation (``UpdateReady``), which the kubelet projects into the first step's ready file. Done when
    the watch shows every step container terminated (the controller would then write the TaskRun's
    status: not measured). A Task's steps run in order: a DAG is a Pipeline of TaskRuns, a pod each, which
    only the controller runs, so only chains map (`SCENARIOS`)."""

    name = TEKTON
    SCENARIOS = ("e2e", "wait")

    def __init__(self, node: Node, image: str) -> None:
        self.node, self.image = node, image

    def run(
        self, namespace: str, pipelines: Sequence[tuple[str, list[dict[str, Any]]]], timeout: float
    ) -> list[Outcome]:
        if any("depends_on" in s for _, steps in pipelines for s in steps):
            raise ValueError("a Tekton Task's steps run in order: depends_on does not map")
        node = self.node
        core = kubernetes.client.CoreV1Api(node.api)
        recorder = watching.Recorder(node.api, namespace, pipelines=False)
        pods = {f"{name}-pod": name for name, _ in pipelines}
        readied: dict[str, float] = {}

        def ready(event: watching.PodEvent) -> None:  # the controller's UpdateReady, on the watch thread
            if event.name in pods and event.phase == "Running" and event.name not in readied:
                readied[event.name] = time.time()
                body = {"metadata": {"annotations": {TEKTON_READY: "READY"}}}
                core.patch_namespaced_pod(event.name, namespace, body)

        recorder.listen(ready)
        recorder.start()

        def ended() -> dict[str, float]:
            seen: dict[str, float] = {}
            for e in recorder.pods:
                if e.states and all(state == "terminated" for state in e.states.values()):
                    seen.setdefault(e.name, e.t)
            return seen

        try:
            bodies = [tekton_pod(name, steps, self.image) for name, steps in pipelines]
            submitted = node.apply(bodies, namespace)
            _wait(recorder, lambda: set(pods) <= set(ended()), timeout)
        finally:
            recorder.stop()
        done = ended()
        outcomes = []
        for name, steps in pipelines:
            pod = f"{name}-pod"
            wanted = [f"step-{s['name']}" for s in steps]
            tasks = taskevents.step_tasks(node.events.tasks(namespace, pod))
            exits = [tasks[c].status if c in tasks else None for c in wanted]
            phase = (
                "Succeeded" if exits and all(code == 0 for code in exits) else f"Failed (exit codes {exits})"
            )
            outcome = Outcome(
                self.name, name, submitted, node.wall(done[pod]) if pod in done else None, phase
            )
            if pod in readied:
                outcome.extra["ready_annotation_set"] = readied[pod] - submitted
            outcome.steps = node.settle(
                lambda pod=pod, wanted=wanted: self._steps(core, namespace, pod, wanted), len(steps)
            )
            outcomes.append(outcome)
        return outcomes

    def _steps(
        self, core: kubernetes.client.CoreV1Api, namespace: str, pod: str, wanted: Sequence[str]
    ) -> list[Interval]:
        tasks = taskevents.step_tasks(self.node.events.tasks(namespace, pod))
        response = core.read_namespaced_pod(pod, namespace, _preload_content=False)
        body = json.loads(response.data)  # type: ignore[attr-defined]
        messages = {
            c["name"]: ((c.get("state") or {}).get("terminated") or {}).get("message")
            for c in (body.get("status") or {}).get("containerStatuses") or ()
        }
        found = []
        for container in wanted:
            task = tasks.get(container)
            ready = task.started if task else None
            start = tekton_started_at(messages.get(container))
            found.append(
                Interval(
                    container.removeprefix("step-"), start or ready, task.exited if task else None, ready
                )
            )
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
