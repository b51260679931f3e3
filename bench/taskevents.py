"""containerd's task events on the node tier: when each container's process really started and exited.

The node bench times steps with these, not with the pod's ``containerStatuses`` (whole seconds). It runs
``ctr events`` against the node tier's own containerd for as long as the bench runs and keeps every
``/tasks/start`` (containerd's publish time, ns) and ``/tasks/exit`` (``exited_at``, ns) of a container's
init process. Which pod and container a containerd container belongs to is read right away from its CRI
labels (``ctr containers info``), by a small pool, so it is known even after the pod is deleted (as
drone-runner-kube does at once). Times are wall-clock seconds (``time.time()``), the clock every host
process shares.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime
import json
import re
import subprocess
import threading
from collections.abc import Sequence
from typing import Any

# 2026-12-01 09:30:00.123456789 +0000 UTC k8s.io /tasks/exit {"container_id":"…",…}
_LINE = re.compile(
    r"^(?P<date>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)(?:\.(?P<frac>\d+))? (?P<zone>[+-]\d{4}) \S+ "
    r"(?P<namespace>\S+) (?P<topic>/\S+) (?P<payload>\{.*\})\s*$"
)
_RFC3339 = re.compile(
    r"^(?P<date>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(?P<frac>\d+))?(?P<zone>Z|[+-]\d\d:\d\d)$"
)


def _epoch(date: str, frac: str | None, zone: str) -> float:
    """Seconds since the epoch, keeping the fraction's full precision (no datetime rounding to µs)."""
    whole = datetime.datetime.fromisoformat(date.replace(" ", "T") + _zone(zone)).timestamp()
    return whole + (int(frac) / 10 ** len(frac) if frac else 0.0)


def _zone(zone: str) -> str:
    if zone == "Z":
        return "+00:00"
    return zone if ":" in zone else f"{zone[:3]}:{zone[3:]}"


def rfc3339(text: str) -> float | None:
    """An RFC 3339 time (``2026-12-01T09:30:00.123456789Z``) as epoch seconds; None if it is not one."""
    found = _RFC3339.match(text or "")
    return _epoch(found["date"], found["frac"], found["zone"]) if found else None


def has_fraction(text: str | None) -> bool:
    """True for an RFC 3339 time with sub-second digits (the kubelet's own times have none)."""
    found = _RFC3339.match(text or "")
    return bool(found and found["frac"])


@dataclasses.dataclass(frozen=True)
class Container:
    """What the CRI labels of a containerd container say."""

    id: str
    namespace: str  # the pod's Kubernetes namespace
    pod: str
    name: str  # the Kubernetes container name
    image: str
    sandbox: bool


@dataclasses.dataclass
class Task:
    """One container's process: started and exited (wall-clock seconds), exit status."""

    container: Container
    started: float | None = None
    exited: float | None = None
    status: int | None = None


def parse(line: str) -> tuple[float, str, dict[str, Any]] | None:
    """(time, topic, payload) of one ``ctr events`` line in the CRI namespace; None for anything else."""
    found = _LINE.match(line.strip())
    if not found or found["namespace"] != "k8s.io":
        return None
    try:
        payload = json.loads(found["payload"])
    except ValueError:
        return None
    return _epoch(found["date"], found["frac"], found["zone"]), found["topic"], payload


class TaskEvents:
    """``ctr events`` from `start` to `stop`; `tasks(namespace)` gives what ran in a namespace."""

    def __init__(self, ctr: str, address: str) -> None:
        self.ctr, self.address = ctr, address
        self._process: subprocess.Popen[str] | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._started: dict[str, float] = {}
        self._exited: dict[str, tuple[float, int | None]] = {}
        self._info: dict[str, concurrent.futures.Future[Container | None]] = {}
        self._pool = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="ctr-info")
        self.lines = 0

    def start(self) -> None:
        self._process = subprocess.Popen(
            [self.ctr, "--address", self.address, "events"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        self._thread = threading.Thread(target=self._read, name="ctr-events", daemon=True)
        self._thread.start()

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _read(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            self.lines += 1
            event = parse(line)
            if event is None:
                continue
            at, topic, payload = event
            cid = payload.get("container_id", "")
            if topic == "/tasks/start" and cid:
                with self._lock:
                    self._started.setdefault(cid, at)
                    if cid not in self._info:
                        self._info[cid] = self._pool.submit(self._container, cid)
            elif topic == "/tasks/exit" and cid and payload.get("id", cid) == cid:
                exited = rfc3339(payload.get("exited_at", "")) or at
                with self._lock:
                    # protobuf's JSON leaves zero values out: no exit_status is exit status 0
                    self._exited.setdefault(cid, (exited, int(payload.get("exit_status", 0))))

    def _container(self, cid: str) -> Container | None:
        result = subprocess.run(
            [self.ctr, "--address", self.address, "--namespace", "k8s.io", "containers", "info", cid],
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if result.returncode != 0:
            return None
        info = json.loads(result.stdout)
        labels = info.get("Labels") or {}
        return Container(
            id=cid,
            namespace=labels.get("io.kubernetes.pod.namespace", ""),
            pod=labels.get("io.kubernetes.pod.name", ""),
            name=labels.get("io.kubernetes.container.name", ""),
            image=info.get("Image", ""),
            sandbox=labels.get("io.cri-containerd.kind") == "sandbox",
        )

    def tasks(self, namespace: str, pod: str | None = None) -> list[Task]:
        """Every container process seen in ``namespace`` (and ``pod``), sandboxes left out, by start time."""
        with self._lock:
            infos = dict(self._info)
            started, exited = dict(self._started), dict(self._exited)
        found = []
        for cid, future in infos.items():
            container = future.result(timeout=120)
            if container is None or container.sandbox or container.namespace != namespace:
                continue
            if pod is not None and container.pod != pod:
                continue
            end = exited.get(cid)
            found.append(Task(container, started.get(cid), end[0] if end else None, end[1] if end else None))
        return sorted(found, key=lambda t: t.started or 0.0)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._pool.shutdown(wait=False, cancel_futures=True)


def step_tasks(tasks: Sequence[Task], *, placeholders: Sequence[str] = ()) -> dict[str, Task]:
    """Kubernetes container name -> the process that ran it last, leaving out placeholder processes (the
    image-swap designs start each step container on a sleeping placeholder first)."""
    last: dict[str, Task] = {}
    for task in tasks:
        if any(task.container.image.endswith(p) for p in placeholders):
            continue
        last[task.container.name] = task
    return last
