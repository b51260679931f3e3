"""The bench's observer: raw watches of pods and Pipelines in one namespace, timestamped on arrival.

Every latency the bench reports is the difference of two arrival times on these watches (e.g. "step 1's
container reported terminated" → "the Pipeline's status shows step 1 done"), so the delay of the watch itself
is paid by both ends and cancels. Events are read as raw JSON lines (the client's model classes are far too
slow to deserialise at a thousand pods) and kept in a compact form: only what the scenarios look at.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import kubernetes.client
from kubernetes.watch.watch import iter_resp_lines
from podline.core import conventions

GROUP, VERSION, PLURAL = "podline.dev", "v1alpha1", "pipelines"
PIPELINE_ANNOTATION = conventions.ANNOTATION_PIPELINE_NAME
NOTE_PREFIX = "bench.podline.dev/"
TERMINAL = ("Succeeded", "Failed", "Error", "Cancelled")


@dataclass(frozen=True)
class PodEvent:
    t: float  # time.monotonic() when the line arrived
    type: str
    name: str
    pipeline: str | None
    images: dict[str, str]  # container -> spec image
    states: dict[str, str]  # container -> running / terminated / waiting (status)
    phase: str | None
    notes: dict[str, str]  # bench.podline.dev/* annotations (the floor's ping and pong)


@dataclass(frozen=True)
class PipelineEvent:
    t: float
    type: str
    name: str
    phase: str | None
    steps: dict[str, str] = field(default_factory=dict)  # step container -> its state in the status


def lines(response: Any) -> Iterator[str]:
    """The lines of a watch response (``_preload_content=False``), as they arrive."""
    yield from iter_resp_lines(response)  # type: ignore[no-untyped-call]


def _pod_event(t: float, kind: str, obj: dict[str, Any]) -> PodEvent:
    meta = obj.get("metadata") or {}
    notes = meta.get("annotations") or {}
    status = obj.get("status") or {}
    states = {}
    for c in status.get("containerStatuses") or ():
        state = c.get("state") or {}
        states[c["name"]] = next(iter(state), "waiting")
    return PodEvent(
        t=t,
        type=kind,
        name=meta.get("name", ""),
        pipeline=notes.get(PIPELINE_ANNOTATION),
        images={c["name"]: c.get("image", "") for c in (obj.get("spec") or {}).get("containers") or ()},
        states=states,
        phase=status.get("phase"),
        notes={k: v for k, v in notes.items() if k.startswith(NOTE_PREFIX)},
    )


def _pipeline_event(t: float, kind: str, obj: dict[str, Any]) -> PipelineEvent:
    status = obj.get("status") or {}
    return PipelineEvent(
        t=t,
        type=kind,
        name=(obj.get("metadata") or {}).get("name", ""),
        phase=status.get("phase"),
        steps={s.get("container", ""): s.get("state", "") for s in status.get("steps") or ()},
    )


@dataclass
class _Stream:
    name: str
    lister: Callable[..., Any]
    convert: Callable[[float, str, dict[str, Any]], Any]
    events: list[Any] = field(default_factory=list)
    version: str | None = None  # where the watch starts: the resourceVersion of a list
    response: Any = None
    errors: int = 0


class Recorder:
    """Watches pods (or ConfigMaps, for the floor) and Pipelines of ``namespace`` from `start` to `stop`;
    listeners run in the watch thread."""

    def __init__(
        self,
        api: kubernetes.client.ApiClient,
        namespace: str,
        *,
        pipelines: bool = True,
        configmaps: bool = False,
    ) -> None:
        core = kubernetes.client.CoreV1Api(api)
        custom = kubernetes.client.CustomObjectsApi(api)
        self.namespace = namespace
        self._stop = threading.Event()
        self._listeners: list[Callable[[PodEvent], None]] = []
        self._changed = threading.Condition()
        lister = core.list_namespaced_config_map if configmaps else core.list_namespaced_pod
        self._streams = [_Stream("pods", lambda **kw: lister(namespace, **kw), _pod_event)]
        if pipelines:
            self._streams.append(
                _Stream(
                    "pipelines",
                    lambda **kw: custom.list_namespaced_custom_object(
                        GROUP, VERSION, namespace, PLURAL, **kw
                    ),
                    _pipeline_event,
                )
            )
        self._threads = [
            threading.Thread(target=self._run, args=(s,), name=f"watch-{s.name}", daemon=True)
            for s in self._streams
        ]

    @property
    def pods(self) -> list[PodEvent]:
        return self._streams[0].events

    @property
    def pipelines(self) -> list[PipelineEvent]:
        return self._streams[1].events if len(self._streams) > 1 else []

    def listen(self, callback: Callable[[PodEvent], None]) -> None:
        self._listeners.append(callback)

    def start(self) -> None:
        for stream in self._streams:  # list first: the watch starts from there, so nothing is missed
            listing = json.loads(stream.lister(_preload_content=False).data)
            stream.version = listing["metadata"]["resourceVersion"]
        for thread in self._threads:
            thread.start()

    def _run(self, stream: _Stream) -> None:
        version = stream.version
        while not self._stop.is_set():
            try:
                if version is None:
                    version = json.loads(stream.lister(_preload_content=False).data)["metadata"][
                        "resourceVersion"
                    ]
                stream.response = stream.lister(
                    watch=True,
                    resource_version=version,
                    allow_watch_bookmarks=True,
                    timeout_seconds=240,
                    _preload_content=False,
                )
                for line in lines(stream.response):
                    arrived = time.monotonic()
                    event = json.loads(line)
                    kind, obj = event.get("type"), event.get("object") or {}
                    if kind == "ERROR":
                        version = None  # too old: list again (events in between are lost; counted)
                        stream.errors += 1
                        break
                    version = (obj.get("metadata") or {}).get("resourceVersion", version)
                    if kind == "BOOKMARK":
                        continue
                    record = stream.convert(arrived, kind, obj)
                    stream.events.append(record)
                    if stream.name == "pods":
                        for listener in self._listeners:
                            listener(record)
                    with self._changed:
                        self._changed.notify_all()
            except Exception:  # noqa: BLE001 - closed by stop(), or the connection dropped: watch again
                if self._stop.is_set():
                    return
                stream.errors += 1
                self._stop.wait(0.2)

    def wait(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait (bounded) until ``predicate()`` holds; it is checked whenever an event arrives."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(min(left, 0.5))
        return True

    def stop(self) -> None:
        self._stop.set()
        for stream in self._streams:
            if stream.response is not None:
                with contextlib.suppress(Exception):  # already closed
                    stream.response.shutdown()  # unblocks the watch thread's read (urllib3 ≥ 2.3)
        for thread in self._threads:
            thread.join(timeout=5)

    @property
    def errors(self) -> int:
        return sum(s.errors for s in self._streams)

    # ---- views used by the scenarios ---------------------------------------------------------------

    def pod_added(self) -> dict[str, float]:
        """Pod name -> first time it was seen."""
        seen: dict[str, float] = {}
        for e in self.pods:
            seen.setdefault(e.name, e.t)
        return seen

    def pipeline_added(self) -> dict[str, float]:
        seen: dict[str, float] = {}
        for e in self.pipelines:
            seen.setdefault(e.name, e.t)
        return seen

    def pipeline_phase_times(self, phases: tuple[str, ...]) -> dict[str, float]:
        """Pipeline name -> first time its status showed one of ``phases``."""
        seen: dict[str, float] = {}
        for e in self.pipelines:
            if e.phase in phases:
                seen.setdefault(e.name, e.t)
        return seen

    def pods_of_pipelines(self) -> dict[str, str]:
        """Pipeline name -> its pod's name (the first pod seen for it)."""
        found: dict[str, str] = {}
        for e in self.pods:
            if e.pipeline:
                found.setdefault(e.pipeline, e.name)
        return found
