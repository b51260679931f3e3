"""TEST DOUBLE: a scripted stand-in for the kubelet, for the api tier (where no kubelet runs).

It watches pods labelled ``app.kubernetes.io/managed-by=podline`` and writes their ``status`` through the
``pods/status`` subresource the way the real kubelet does for ``restartPolicy: Never`` pods (checked
against the node tier's kubelet 1.33 with containerd 1.6):

- a new pod becomes Running; every container runs (``containerID`` ``scripted://<uid>/<container>/<n>``,
  ``image`` normalised like containerd reports it, ready, started, restartCount 0);
- when a running container's spec image changes, that instance stops (``lastState.terminated``: exit 0
  "Completed" for a placeholder, which exits on SIGTERM, else 137 "Error") and a new instance runs the
  new image, restartCount + 1. A terminated container is never restarted;
- a container whose image is not a placeholder "runs its step": it exits after the duration of the
  ``sleep N`` in its command/args (times ``time_factor``) with the code of the first ``exit N`` (default 0).
  ``svc-*`` containers (services) run until killed;
- an image containing ``notfound`` waits in ErrImagePull, then ImagePullBackOff; ``imagePullPolicy:
  Never`` with an image not present on the "node" (``present_images`` plus every image started so far)
  waits in ErrImageNeverPull;
- after ``activeDeadlineSeconds`` every running container is killed and the pod fails with reason
  DeadlineExceeded; once all containers terminated the phase is Succeeded (all exit 0) or Failed.

For deterministic tests: `pause`/`resume` withhold status writes (a watch gap), `override` scripts one
pod's containers, `hook` edits or drops one pod's status writes, `terminate` ends a container now, and
`instances` is the ledger of every container instance ever started. Init containers are not modelled.
How statuses look is computed in `scripted_statuses`; this module watches, keeps time and writes.
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

from tests.cluster import scripted_statuses as statuses

logger = logging.getLogger(__name__)
SELECTOR = "app.kubernetes.io/managed-by=podline"
Body = statuses.Body
Behaviour = statuses.Behaviour


@dataclasses.dataclass(frozen=True)
class Instance:
    """One entry of the ledger: a container instance the scripted kubelet started."""

    namespace: str
    pod: str
    container: str
    image: str
    container_id: str


@dataclasses.dataclass
class _Container:
    """The scripted state of one container: the status the kubelet would report, plus timers."""

    name: str
    image: str = ""
    status: Body = dataclasses.field(default_factory=dict)
    instances: int = 0
    ends_at: float | None = None  # monotonic time the running instance exits
    exit_code: int = 0
    backoff_at: float | None = None  # monotonic time ErrImagePull turns into ImagePullBackOff

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
    deadline_at: float | None = None
    failure: tuple[str, str] | None = None  # (reason, message) once the pod failed as a whole
    written: Body | None = None

    @property
    def key(self) -> tuple[str, str]:
        return self.namespace, self.name


class ScriptedKubelet:
    """TEST DOUBLE for the kubelet on the api tier. `start()` it, create pods, `stop()` it."""

    def __init__(
        self,
        api: kubernetes.client.ApiClient,
        *,
        selector: str = SELECTOR,
        namespace: str | None = None,
        time_factor: float = 1.0,
        is_placeholder: Callable[[str], bool] = statuses.is_placeholder_image,
        present_images: Collection[str] = (),
        pull_backoff_after: float = 0.5,
    ) -> None:
        self.core = kubernetes.client.CoreV1Api(api)
        self.selector = selector
        self.namespace = namespace
        self.time_factor = time_factor
        self.is_placeholder = is_placeholder
        self.present = {statuses.normalise(i) for i in present_images}
        self.pull_backoff_after = pull_backoff_after
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
        """Script the pod's future container instances: ``script(container spec)`` → `Behaviour`, or None
        for the default. Set it before the pod is created (or before the image swap it should affect)."""
        with self._lock:
            self._overrides[namespace, pod] = script

    def hook(self, namespace: str, pod: str, edit: Callable[[Body], Body | None]) -> None:
        """Pass each status about to be written for the pod through ``edit``; None drops that write."""
        with self._lock:
            self._hooks[namespace, pod] = edit

    def terminate(self, namespace: str, pod: str, container: str, exit_code: int = 137) -> None:
        """End the container's running instance now (e.g. a placeholder dying on its own)."""
        self._events.put(("TERMINATE", {"key": (namespace, pod), "container": container, "exit": exit_code}))

    def instances(self, namespace: str | None = None, pod: str | None = None) -> list[Instance]:
        """The ledger: every container instance started so far, oldest first."""
        with self._lock:
            return [
                i for i in self._ledger if namespace in (None, i.namespace) and pod in (None, i.pod)
            ]  # fmt: skip

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

    # ---- the model ---------------------------------------------------------------------------------

    def _handle(self, kind: str, body: Body) -> None:
        if kind == "TERMINATE":
            pod = self._pods.get(body["key"])
            if pod and body["container"] in pod.containers:
                self._stop_instance(pod.containers[body["container"]], body["exit"])
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
            pod = _Pod(key[0], key[1], meta["uid"], statuses.now(), time.monotonic(),
                       {c["name"]: _Container(c["name"]) for c in spec["containers"]})  # fmt: skip
            if spec.get("activeDeadlineSeconds") is not None:
                pod.deadline_at = pod.started + spec["activeDeadlineSeconds"]
                self._schedule(pod.deadline_at, key)
            self._pods[key] = pod
        if pod.failure:
            return
        for container_spec in spec["containers"]:
            container = pod.containers[container_spec["name"]]
            if container.instances == 0 and container.state == "waiting" and not container.status:
                self._start_instance(pod, container, container_spec)
            elif container_spec["image"] != container.image:
                if container.state == "running":
                    self._stop_instance(container, self._kill_code(container.image))
                    self._start_instance(pod, container, container_spec)
                elif container.state == "waiting":  # a failed pull, retried with the new image
                    self._start_instance(pod, container, container_spec)

    def _start_instance(self, pod: _Pod, container: _Container, spec: Body) -> None:
        image = container.image = spec["image"]
        container.backoff_at = None
        restarts = max(container.instances - 1, 0)
        if "notfound" in image:
            message = f'failed to pull and unpack image "{statuses.normalise(image)}": not found'
            container.status = statuses.waiting(
                container.name, image, "ErrImagePull", message, restarts, container.status
            )
            container.backoff_at = time.monotonic() + self.pull_backoff_after
            self._schedule(container.backoff_at, pod.key)
            return
        if spec.get("imagePullPolicy") == "Never" and statuses.normalise(image) not in self.present:
            message = f'Container image "{image}" is not present with pull policy of Never'
            container.status = statuses.waiting(
                container.name, image, "ErrImageNeverPull", message, restarts, container.status
            )
            return
        self.present.add(statuses.normalise(image))
        container.instances += 1
        container_id = f"scripted://{pod.uid}/{container.name}/{container.instances}"
        container.status = statuses.running(
            container.name, image, container_id, container.instances - 1, container.status
        )
        self._ledger.append(Instance(pod.namespace, pod.name, container.name, image, container_id))
        behaviour = self._behaviour(pod, container, spec)
        container.ends_at = None
        if behaviour.duration is not None:
            container.ends_at = time.monotonic() + behaviour.duration
            container.exit_code = behaviour.exit_code
            self._schedule(container.ends_at, pod.key)

    def _behaviour(self, pod: _Pod, container: _Container, spec: Body) -> Behaviour:
        override = self._overrides.get(pod.key)
        scripted = override(spec) if override else None
        if scripted is not None:
            return scripted
        if self.is_placeholder(container.image) or container.name.startswith("svc-"):
            return Behaviour(duration=None)
        return statuses.scripted_behaviour(spec, self.time_factor)

    def _kill_code(self, image: str) -> int:
        return 0 if self.is_placeholder(image) else 137  # the placeholder exits 0 on SIGTERM

    def _stop_instance(self, container: _Container, exit_code: int) -> None:
        """End the running instance (if any); a later instance reports it as its ``lastState``."""
        if container.state == "running":
            container.status = statuses.terminated(container.status, exit_code)
        container.ends_at = None

    def _schedule(self, when: float, key: tuple[str, str]) -> None:
        heapq.heappush(self._timers, (when, key))

    def _run_timers(self) -> None:
        now = time.monotonic()
        while self._timers and self._timers[0][0] <= now:
            _, key = heapq.heappop(self._timers)
            pod = self._pods.get(key)
            if pod is None or pod.failure:
                continue
            for container in pod.containers.values():
                if container.ends_at is not None and container.ends_at <= now:
                    self._stop_instance(container, container.exit_code)
                if container.backoff_at is not None and container.backoff_at <= now:
                    container.backoff_at = None
                    message = f'Back-off pulling image "{container.image}"'
                    restarts = container.status["restartCount"]
                    container.status = statuses.waiting(
                        container.name,
                        container.image,
                        "ImagePullBackOff",
                        message,
                        restarts,
                        container.status,
                    )
            if pod.deadline_at is not None and pod.deadline_at <= now:
                self._fail_deadline(pod)

    def _fail_deadline(self, pod: _Pod) -> None:
        pod.failure = ("DeadlineExceeded", "Pod was active on the node longer than the specified deadline")
        for container in pod.containers.values():
            if container.state == "running":
                self._stop_instance(container, self._kill_code(container.image))
            elif container.state == "waiting":
                container.status = statuses.never_started(container.status)

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
