"""TEST DOUBLE: a scripted stand-in for the kubelet *and* the in-pod entrypoint, for the api tier (where no
kubelet runs).

It watches pods labelled ``app.kubernetes.io/managed-by=podline`` and writes their ``status`` through the
``pods/status`` subresource the way the real kubelet does for ``restartPolicy: Never`` pods, with each step
container behaving as ``podline-entrypoint run`` does in it (``docs/in-pod.md``, the contract):

- a new pod becomes Running and every container runs from the start (``containerID``
  ``scripted://<uid>/<container>/<n>``, ``image`` normalised like containerd reports it, ready, started);
  ``podline-prepare`` exits 0 after ``prepare_seconds``; a service (a container that is neither the prepare
  container nor a step) runs until killed, unless ``override`` scripts it;
- a step container (its command is ``/podline/bin/entrypoint``) has its args parsed with
  ``stepping.parse_args`` and waits, running, until ``stepping.decide`` over the results so far (and the
  started markers of detached steps) says run or skip — exactly as the binary decides. A skip terminates it
  at once (``skipped``, reason EarlyExit or Skipped, exit 0). A run starts its command: it "runs" for the
  duration of the ``sleep N`` in the command after ``--`` (× ``time_factor``) and exits with the first
  ``exit N`` (default 0); with ``--timeout`` it is killed at the timeout (``failed``, StepTimeout, 143);
- a step ends with its result (ms times, ``failing`` as ``stepping.is_failing``, the binary's messages): the
  result file feeds the decisions of the steps after it, in the same pass; its compact form,
  ``Result.to_message(--message-limit)``, is the termination message; the container exits with the result's
  exit status (0 when skipped, 1 when failed without an exit code or with 0);
- image pulls: an image containing ``notfound`` waits in ErrImagePull (containerd's "not found"), then
  ImagePullBackOff (kubelet 1.33's message, which wraps the pull error); ``unreachable`` the same with
  ``dial tcp 127.0.0.1:1: connect: connection refused``; ``imagePullPolicy: Never`` with an image not
  present on the "node" (``present_images`` plus every image started so far) waits in ErrImageNeverPull.
  If the prepare container cannot start, no step container finds its entrypoint (StartError, 128);
- when a waiting container's spec image changes it starts with the new image; a running one is killed
  (137) and started again (restartCount + 1); a terminated one is never restarted. A step container given
  the runner image (the prepare container's image) while its own could not be pulled is the entrypoint's
  stand-in: in its turn it writes the started marker and records ``failed``, ImagePullFailed, exit 1
  (``startedAt`` = ``finishedAt``), and runs no command;
- ``activeDeadlineSeconds`` (read again at every change of the pod: the operator stops a pod by setting it
  to 1) elapsed → every container is killed: steps still waiting record ``skipped``/Stopped (exit 0), steps
  whose command runs ``failed``/Stopped (143), services end 137, containers that never started
  ContainerStatusUnknown; the pod fails with reason DeadlineExceeded. Once all containers have terminated
  the phase is Succeeded (all exit 0) or Failed;
- a pod first seen ended, or already with container statuses (another kubelet double ran it), is left alone.

For deterministic tests: `pause`/`resume` withhold status writes (a watch gap; containers keep running and
finishing), `override` scripts one pod's step commands and services, `hook` edits or drops one pod's status
writes, `terminate` kills a container now (no termination message: as the OOM killer would), and
`instances` is the ledger of every container instance started (``kind`` ``container``) and every step
command started (``kind`` ``command``; ``commands()`` lists them in order). Init containers are not modelled. How statuses look is computed in
`scripted_statuses`; this module watches, keeps time, sequences the steps and writes.
"""

from __future__ import annotations

import copy
import dataclasses
import heapq
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Collection
from typing import Any

import kubernetes.client
import kubernetes.watch
from podline.core import stepping

from tests.cluster import scripted_statuses as statuses

logger = logging.getLogger(__name__)
SELECTOR = "app.kubernetes.io/managed-by=podline"
Body = statuses.Body
Behaviour = statuses.Behaviour
SIGTERM_EXIT = 128 + 15
KILL_EXIT = 128 + 9


@dataclasses.dataclass(frozen=True)
class Instance:
    """One entry of the ledger: a container instance the scripted kubelet started (``kind`` container), or
    a step command its entrypoint started (``kind`` command; ``container_id`` is the container instance's)."""

    namespace: str
    pod: str
    container: str
    image: str
    container_id: str
    kind: str = "container"


@dataclasses.dataclass
class _Container:
    """The scripted state of one container: the status the kubelet would report, plus the entrypoint's."""

    name: str
    role: str = "service"  # prepare, step or service
    image: str = ""
    status: Body = dataclasses.field(default_factory=dict)
    instances: int = 0
    ends_at: float | None = None  # monotonic time the running process (command, service, prepare) exits
    exit_code: int = 0
    backoff_at: float | None = None  # monotonic time ErrImagePull turns into ImagePullBackOff
    pull_failed: bool = False  # its own image could not be pulled (so the runner image is a stand-in)
    spec: Body = dataclasses.field(
        default_factory=dict
    )  # the container's spec the running instance started with
    args: stepping.StepArgs | None = None  # a step's entrypoint arguments
    stand_in: bool = False
    command: str = "none"  # a step's command: none (waiting for its turn), running, done
    command_started_ms: int | None = None
    timed_out: bool = False

    @property
    def state(self) -> str:
        """``waiting``, ``running`` or ``terminated``."""
        state: Body = self.status.get("state") or {"waiting": {}}
        return next(iter(state))


@dataclasses.dataclass
class _Pod:
    namespace: str
    name: str
    uid: str
    start_time: str
    started: float
    containers: dict[str, _Container]
    runner_image: str | None = None  # the prepare container's image
    deadline_at: float | None = None
    failure: tuple[str, str] | None = None  # (reason, message) once the pod failed as a whole
    written: Body | None = None
    results: dict[str, stepping.Result] = dataclasses.field(default_factory=dict)  # the run directory
    markers: set[str] = dataclasses.field(default_factory=set)  # <name>.started

    @property
    def key(self) -> tuple[str, str]:
        return self.namespace, self.name


def _wall_ms() -> int:
    return int(time.time() * 1000)


class ScriptedKubelet:
    """TEST DOUBLE for the kubelet (and the entrypoint) on the api tier. `start()` it, create pods, `stop()` it."""

    def __init__(
        self,
        api: kubernetes.client.ApiClient,
        *,
        selector: str = SELECTOR,
        namespace: str | None = None,
        time_factor: float = 1.0,
        present_images: Collection[str] = (),
        pull_backoff_after: float = 0.5,
        prepare_seconds: float = 0.1,
    ) -> None:
        self.core = kubernetes.client.CoreV1Api(api)
        self.selector = selector
        self.namespace = namespace
        self.time_factor = time_factor
        self.present = {statuses.normalise(i) for i in present_images}
        self.pull_backoff_after = pull_backoff_after
        self.prepare_seconds = prepare_seconds
        self._events: queue.Queue[tuple[str, Body] | None] = queue.Queue()
        self._pods: dict[tuple[str, str], _Pod] = {}
        self._timers: list[tuple[float, tuple[str, str]]] = []
        self._ledger: list[Instance] = []
        self._overrides: dict[tuple[str, str], Callable[[Body], Behaviour | None]] = {}
        self._hooks: dict[tuple[str, str], Callable[[Body], Body | None]] = {}
        self._lock = threading.RLock()
        self._paused = False
        self._stopping = threading.Event()
        self._idle = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="scripted-kubelet-watch", daemon=True)
        self._worker = threading.Thread(target=self._work, name="scripted-kubelet-work", daemon=True)

    # ---- controls ----------------------------------------------------------------------------------

    def start(self) -> None:
        self._watcher.start()
        self._worker.start()

    def stop(self) -> None:
        """Stop writing at once. The watch thread is a daemon and ends with its current watch request."""
        self._stopping.set()
        self._events.put(None)
        self._worker.join(timeout=10)

    def pause(self) -> None:
        """Withhold every status write (containers keep running and finishing) until `resume`."""
        with self._lock:
            self._paused = True

    def resume(self) -> None:
        """Write the latest status of every pod that changed while paused."""
        with self._lock:
            self._paused = False
        self._events.put(("RESUME", {}))

    def override(self, namespace: str, pod: str, script: Callable[[Body], Behaviour | None]) -> None:
        """Script the pod's step commands and services: ``script(container spec)`` → `Behaviour`, or None for
        the default. Consulted when a step's command starts, or a service starts: set it before then."""
        with self._lock:
            self._overrides[namespace, pod] = script

    def hook(self, namespace: str, pod: str, edit: Callable[[Body], Body | None]) -> None:
        """Pass each status about to be written for the pod through ``edit``; None drops that write."""
        with self._lock:
            self._hooks[namespace, pod] = edit

    def terminate(self, namespace: str, pod: str, container: str, exit_code: int = 137) -> None:
        """Kill the container's running instance now, entrypoint and all, so it leaves no termination
        message (as the OOM killer or a crash of the runtime would)."""
        self._events.put(("TERMINATE", {"key": (namespace, pod), "container": container, "exit": exit_code}))

    def instances(
        self, namespace: str | None = None, pod: str | None = None, kind: str | None = None
    ) -> list[Instance]:
        """The ledger: every container instance and step command started so far, oldest first."""
        with self._lock:
            return [
                i for i in self._ledger
                if namespace in (None, i.namespace) and pod in (None, i.pod) and kind in (None, i.kind)
            ]  # fmt: skip

    def commands(self, namespace: str | None = None, pod: str | None = None) -> list[str]:
        """The containers whose step command started, in the order they started (one entry per start)."""
        return [i.container for i in self.instances(namespace, pod, kind="command")]

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until every event received so far is processed and its status written."""
        self._idle.clear()
        self._events.put(("IDLE", {}))
        return self._idle.wait(timeout)

    # ---- threads -----------------------------------------------------------------------------------

    def _watch(self) -> None:
        version = None
        while not self._stopping.is_set():
            try:
                if version is None:
                    version = self._list()
                stream = kubernetes.watch.Watch().stream(  # type: ignore[no-untyped-call]
                    self._lister(), label_selector=self.selector, resource_version=version, timeout_seconds=5
                )
                for event in stream:
                    if self._stopping.is_set():
                        return
                    body = event["raw_object"]
                    if event["type"] == "ERROR":
                        version = None  # "too old resource version": list again
                        break
                    version = body["metadata"]["resourceVersion"]
                    self._events.put((event["type"], body))
            except Exception:  # noqa: BLE001 - an apiserver restart must not end the test double
                version = None
                self._stopping.wait(0.5)

    def _lister(self) -> Callable[..., Any]:
        namespace = self.namespace
        if namespace is None:
            return self.core.list_pod_for_all_namespaces
        return lambda **kw: self.core.list_namespaced_pod(namespace, **kw)

    def _list(self) -> str:
        response = self._lister()(label_selector=self.selector, _preload_content=False)
        listing = json.loads(response.data)
        for body in listing["items"]:
            self._events.put(("MODIFIED", body))
        return str(listing["metadata"]["resourceVersion"])

    def _work(self) -> None:
        while not self._stopping.is_set():
            timeout = max(0.0, self._timers[0][0] - time.monotonic()) if self._timers else 1.0
            try:
                item = self._events.get(timeout=timeout)
            except queue.Empty:
                item = ("TICK", {})
            if item is None:
                return
            kind, body = item
            with self._lock:
                self._handle(kind, body)
                self._run_timers()
                self._flush()
            if kind == "IDLE":
                self._idle.set()

    # ---- the kubelet ---------------------------------------------------------------------------------

    def _handle(self, kind: str, body: Body) -> None:
        if kind == "TERMINATE":
            pod = self._pods.get(body["key"])
            if pod and not pod.failure and body["container"] in pod.containers:
                self._kill(pod.containers[body["container"]], body["exit"])
                self._sequence(pod)
        elif kind == "DELETED":
            self._pods.pop((body["metadata"]["namespace"], body["metadata"]["name"]), None)
        elif kind in ("ADDED", "MODIFIED"):
            self._observe(body)

    def _observe(self, body: Body) -> None:
        meta, spec = body["metadata"], body["spec"]
        key = meta["namespace"], meta["name"]
        pod = self._pods.get(key)
        if pod is not None and pod.uid != meta["uid"]:
            pod = None  # deleted and created again while we were not looking
        if pod is None:
            if (body.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                return  # finished before this kubelet started (or by an earlier one): leave it alone
            if body.get("status", {}).get("containerStatuses"):
                return  # another kubelet runs it (one that was stopped): its processes are not ours to invent
            pod = _Pod(key[0], key[1], meta["uid"], statuses.now(), time.monotonic(),
                       {c["name"]: _Container(c["name"], _role(c)) for c in spec["containers"]})  # fmt: skip
            self._pods[key] = pod
        if pod.failure:
            return
        pod.runner_image = next((c["image"] for c in spec["containers"] if c["name"] == stepping.PREPARE_CONTAINER),
                                None)  # fmt: skip
        deadline = spec.get("activeDeadlineSeconds")
        if deadline is not None and pod.deadline_at != pod.started + deadline:
            pod.deadline_at = pod.started + deadline
            self._schedule(pod.deadline_at, key)
        for container_spec in spec["containers"]:
            container = pod.containers[container_spec["name"]]
            if container.instances == 0 and container.state == "waiting" and not container.status:
                self._start_instance(pod, container, container_spec)
            elif container_spec["image"] != container.image:
                if container.state == "running":
                    self._kill(container, KILL_EXIT)
                    self._start_instance(pod, container, container_spec)
                elif container.state == "waiting":  # a failed pull, retried with the new image
                    self._start_instance(pod, container, container_spec)
        self._sequence(pod)

    def _start_instance(self, pod: _Pod, container: _Container, spec: Body) -> None:
        image = container.image = spec["image"]
        container.spec = spec
        container.backoff_at = None
        restarts = max(container.instances - 1, 0)
        error = statuses.pull_error(image)
        if error is not None:
            container.pull_failed = True
            container.status = statuses.waiting(
                container.name, image, "ErrImagePull", error, restarts, container.status
            )
            container.backoff_at = time.monotonic() + self.pull_backoff_after
            self._schedule(container.backoff_at, pod.key)
            return
        if spec.get("imagePullPolicy") == "Never" and statuses.normalise(image) not in self.present:
            container.pull_failed = True
            message = statuses.never_pull_message(image)
            container.status = statuses.waiting(
                container.name, image, "ErrImageNeverPull", message, restarts, container.status
            )
            return
        self.present.add(statuses.normalise(image))
        container.instances += 1
        container_id = f"scripted://{pod.uid}/{container.name}/{container.instances}"
        if container.role == "step" and not self._prepared(pod):
            message = (
                f"failed to create containerd task: failed to create shim task: OCI runtime create failed: "
                f'exec: "{stepping.BINARY}": stat {stepping.BINARY}: no such file or directory'
            )
            created = statuses.running(
                container.name, image, container_id, container.instances - 1, container.status
            )
            container.status = statuses.start_error(created, container_id, message)
            self._ledger.append(Instance(pod.namespace, pod.name, container.name, image, container_id))
            return
        container.status = statuses.running(container.name, image, container_id, container.instances - 1,
                                            container.status)  # fmt: skip
        self._ledger.append(Instance(pod.namespace, pod.name, container.name, image, container_id))
        container.ends_at = None
        container.command = "none"
        if container.role == "prepare":
            self._end_at(pod, container, self.prepare_seconds, 0)
        elif container.role == "step":
            container.stand_in = container.pull_failed and image == pod.runner_image
            try:
                container.args = stepping.parse_args(spec.get("args") or [])
            except stepping.BadArgs as error:
                logger.warning("%s/%s %s: bad entrypoint arguments: %s", pod.namespace, pod.name, container.name,
                               error)  # fmt: skip
                container.status = statuses.terminated(container.status, 2)  # the binary's usage error
        else:
            behaviour = self._behaviour(pod, spec, [*(spec.get("command") or []), *(spec.get("args") or [])])
            if behaviour.duration is not None:
                self._end_at(pod, container, behaviour.duration, behaviour.exit_code)

    def _prepared(self, pod: _Pod) -> bool:
        """Whether the prepare container has run (so the entrypoint binary is in the shared volume)."""
        prepare = pod.containers.get(stepping.PREPARE_CONTAINER)
        return prepare is None or prepare.instances > 0

    def _behaviour(self, pod: _Pod, spec: Body, command: list[str]) -> Behaviour:
        override = self._overrides.get(pod.key)
        scripted = override(spec) if override else None
        if scripted is not None:
            return scripted
        if _role(spec) == "service":
            return Behaviour(duration=None)
        return statuses.scripted_behaviour(command, self.time_factor)

    def _end_at(self, pod: _Pod, container: _Container, seconds: float, exit_code: int) -> None:
        container.ends_at = time.monotonic() + seconds
        container.exit_code = exit_code
        self._schedule(container.ends_at, pod.key)

    def _kill(self, container: _Container, exit_code: int) -> None:
        """End the running instance (if any) with no termination message; a later instance reports it as its
        ``lastState``."""
        if container.state == "running":
            container.status = statuses.terminated(container.status, exit_code)
            container.command = "done"
        container.ends_at = None

    # ---- the entrypoint ------------------------------------------------------------------------------

    def _sequence(self, pod: _Pod) -> None:
        """What every step's entrypoint does now: commands whose time is up end, waiting steps whose turn
        came run or skip. Repeated until nothing changes, as the entrypoints hand over within milliseconds."""
        if pod.failure:
            return
        changed = True
        while changed:
            changed = False
            now = time.monotonic()
            for container in pod.containers.values():
                if container.state != "running":
                    continue
                if container.ends_at is not None and container.ends_at <= now:
                    changed = True
                    if container.role == "step":
                        self._finish(pod, container)
                    else:
                        container.status = statuses.terminated(container.status, container.exit_code)
                        container.ends_at = None
                elif container.role == "step" and container.command == "none" and container.args is not None:
                    decision = stepping.decide(container.args, pod.results, pod.markers)
                    if decision.action is stepping.Action.WAIT:
                        continue
                    changed = True
                    if decision.action is stepping.Action.SKIP:
                        self._record(pod, container, stepping.ResultState.SKIPPED, None, None,
                                     decision.reason, _skip_message(container.args, decision.reason, pod.results))  # fmt: skip
                    elif container.stand_in:
                        pod.markers.add(container.name)
                        self._record(pod, container, stepping.ResultState.FAILED, 1, _wall_ms(),
                                     stepping.Why.IMAGE_PULL_FAILED,
                                     f"The image of {container.name} could not be pulled (the pod annotation "
                                     f"killed.podline.dev/{container.name} says why); the step did not run.",
                                     same_time=True)  # fmt: skip
                    else:
                        self._run_command(pod, container)

    def _run_command(self, pod: _Pod, container: _Container) -> None:
        assert container.args is not None
        behaviour = self._behaviour(pod, container.spec, list(container.args.command))
        container.command = "running"
        container.command_started_ms = _wall_ms()
        pod.markers.add(container.name)
        self._ledger.append(Instance(pod.namespace, pod.name, container.name, container.image,
                                     container.status["containerID"], "command"))  # fmt: skip
        timeout = container.args.timeout_seconds
        duration, code = behaviour.duration, behaviour.exit_code
        container.timed_out = bool(timeout) and (duration is None or duration > timeout)
        if container.timed_out:
            duration, code = float(timeout), SIGTERM_EXIT
        if duration is not None:
            self._end_at(pod, container, duration, code)
        else:
            container.ends_at = None

    def _finish(self, pod: _Pod, container: _Container) -> None:
        """A step's command exited (or was killed at its timeout): record its result."""
        code = container.exit_code
        state = (
            stepping.ResultState.SUCCEEDED
            if code in (0, stepping.EXIT_EARLY)
            else stepping.ResultState.FAILED
        )
        reason = message = None
        if container.timed_out:  # the binary's words (operator/entrypoint/result.go)
            state, reason = stepping.ResultState.FAILED, stepping.Why.STEP_TIMEOUT
            message = (
                f"The step timed out after {container.args.timeout_seconds}s and was stopped; "  # type: ignore[union-attr]
                f"{_exit_phrase(code)}."
            )
        elif code == stepping.EXIT_EARLY:
            message = (
                "The command exited with code 78: the run ends early and the steps after it are skipped."
            )
        elif code != 0:
            message = _exit_phrase(code).capitalize() + "."
        self._record(pod, container, state, code, container.command_started_ms, reason, message)

    def _record(
        self,
        pod: _Pod,
        container: _Container,
        state: stepping.ResultState,
        code: int | None,
        started_ms: int | None,
        reason: str | None,
        message: str | None,
        *,
        same_time: bool = False,
    ) -> None:
        """Write the result (its file, in ``pod.results``, and its compact form as the termination message, cut
        to ``--message-limit``) and let the container exit with the result's exit status."""
        assert container.args is not None
        result = stepping.Result(
            name=container.name, state=state, exit_code=code, started_at=started_ms,
            finished_at=started_ms if same_time else _wall_ms(), reason=None if reason is None else str(reason),
            message=message, failing=stepping.is_failing(container.args, state),
        )  # fmt: skip
        pod.results[container.name] = result
        exit_code = 0 if state is stepping.ResultState.SKIPPED else (code if code is not None else 1)
        if state is stepping.ResultState.FAILED and exit_code == 0:
            exit_code = 1
        container.status = statuses.terminated(container.status, exit_code,
                                               result.to_message(container.args.message_limit))  # fmt: skip
        container.command = "done"
        container.ends_at = None

    # ---- time ------------------------------------------------------------------------------------------

    def _schedule(self, when: float, key: tuple[str, str]) -> None:
        heapq.heappush(self._timers, (when, key))

    def _run_timers(self) -> None:
        now = time.monotonic()
        while self._timers and self._timers[0][0] <= now:
            _, key = heapq.heappop(self._timers)
            pod = self._pods.get(key)
            if pod is None or pod.failure:
                continue
            if pod.deadline_at is not None and pod.deadline_at <= now:
                self._fail_deadline(pod)
                continue
            for container in pod.containers.values():
                if container.backoff_at is not None and container.backoff_at <= now:
                    container.backoff_at = None
                    waiting = container.status["state"].get("waiting") or {}
                    container.status = statuses.waiting(
                        container.name, container.image, "ImagePullBackOff",
                        statuses.backoff_message(container.image, waiting.get("message") or ""),
                        container.status["restartCount"], container.status,
                    )  # fmt: skip
            self._sequence(pod)

    def _fail_deadline(self, pod: _Pod) -> None:
        """The kubelet kills every container (SIGTERM): what each one's entrypoint then records."""
        pod.failure = ("DeadlineExceeded", "Pod was active on the node longer than the specified deadline")
        for container in pod.containers.values():
            if container.state == "waiting":
                container.status = statuses.never_started(container.status)
            elif container.state != "running":
                continue
            elif container.role == "step" and container.args is not None and container.command == "none":
                self._record(pod, container, stepping.ResultState.SKIPPED, None, None, stepping.Why.STOPPED,
                             "Skipped: the pod was stopped (SIGTERM) before the step's turn.")  # fmt: skip
            elif container.role == "step" and container.args is not None:
                self._record(pod, container, stepping.ResultState.FAILED, SIGTERM_EXIT, container.command_started_ms,
                             stepping.Why.STOPPED, "The step was stopped (SIGTERM, the pod is being stopped); "
                             f"{_exit_phrase(SIGTERM_EXIT)}.")  # fmt: skip
            else:
                self._kill(container, KILL_EXIT)

    # ---- writing -----------------------------------------------------------------------------------

    def _flush(self) -> None:
        if self._paused:
            return
        for pod in list(self._pods.values()):
            status = statuses.pod_status(
                pod.start_time, [c.status for c in pod.containers.values()], pod.failure
            )
            hook = self._hooks.get(pod.key)
            if hook is not None:
                edited = hook(copy.deepcopy(status))  # the hook may edit in place; the model stays as is
                if edited is None:
                    continue
                status = edited
            if status == pod.written:
                continue
            try:
                self.core.patch_namespaced_pod_status(
                    pod.name, pod.namespace, {"status": status}, _content_type="application/merge-patch+json"
                )
            except kubernetes.client.ApiException as error:
                if error.status == 404:
                    self._pods.pop(pod.key, None)
                continue  # e.g. the apiserver is restarting: the next tick (≤ 1s) tries again
            except Exception as error:  # noqa: BLE001 - connection errors while the apiserver is away
                logger.debug(
                    "writing the status of %s/%s failed, will retry: %s", pod.namespace, pod.name, error
                )
                continue
            pod.written = status


def _role(spec: Body) -> str:
    if spec["name"] == stepping.PREPARE_CONTAINER:
        return "prepare"
    if (spec.get("command") or [None])[0] == stepping.BINARY:
        return "step"
    return "service"


def _exit_phrase(code: int) -> str:
    """How the binary words a command's end (a shell's 143 is its death by SIGTERM)."""
    if code == SIGTERM_EXIT:
        return f"the command was killed by SIGTERM (exit code {code})"
    return f"the command exited with code {code}"


def _skip_message(args: stepping.StepArgs, reason: str | None, results: dict[str, stepping.Result]) -> str:
    """The binary's words for a skip (operator/entrypoint/entrypointer.go, skipMessage)."""
    if reason == stepping.Why.EARLY_EXIT:
        early = min(n for n, r in results.items() if r.exit_code == stepping.EXIT_EARLY)
        return f"Skipped: {early} exited with code 78 (early exit)."
    if args.excluded:
        return "Skipped: its when conditions do not match."
    if not args.on_success and not args.on_failure:
        return "Skipped: the step never runs (when.status matches no run status)."
    failing = sorted(n for n, r in results.items() if r.failing)
    if failing:
        return f"Skipped: the run is failing ({failing[0]} failed) and the step runs only on success."
    return "Skipped: the run is not failing and the step runs only on failure."
