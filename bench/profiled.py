"""``python -m bench.profiled OUTDIR``: the operator (``podline operator``) under pyinstrument, for the bench.

Two profiles, written when the operator stops (SIGTERM):

- ``operator-loop.*``: the main thread, which runs kopf's event loop: watch parsing, kopf's per-event
  processing, podline's handlers, reconciles and ``scheduling.decide``. Wall-clock samples; the loop's
  idle time shows as ``select``.
- ``operator-api-threads.*``: every Kubernetes API call podline makes runs in a thread pool
  (``shell/kube.py``); each call is profiled on its own thread and the calls are combined.

Nothing in the operator is changed: the wrapper only replaces the pool with one that profiles each call.
"""

from __future__ import annotations

import concurrent.futures
import pathlib
import sys
import threading
from collections.abc import Callable
from typing import Any

from pyinstrument import Profiler
from pyinstrument.session import Session

_sessions: list[Session] = []
_lock = threading.Lock()


def _profiled(fn: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        profiler = Profiler(interval=0.0005, async_mode="disabled")
        profiler.start()
        try:
            return fn(*args, **kwargs)
        finally:
            session = profiler.stop()
            with _lock:
                _sessions.append(session)
    return call


class ProfilingPool(concurrent.futures.ThreadPoolExecutor):
    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        return super().submit(_profiled(fn), *args, **kwargs)


def _combine(sessions: list[Session]) -> Session | None:
    while len(sessions) > 1:  # pairwise, so the work stays n log n
        sessions = [Session.combine(a, b) if b is not None else a
                    for a, b in zip(sessions[::2], [*sessions[1::2], None])]
    return sessions[0] if sessions else None


def _write(session: Session, out: pathlib.Path, name: str) -> None:
    from pyinstrument.renderers import ConsoleRenderer, HTMLRenderer

    text = ConsoleRenderer(unicode=True, color=False, show_all=False, time="percent_of_total",
                           processor_options={"filter_threshold": 0.005}).render(session)
    (out / f"{name}.txt").write_text(text)
    (out / f"{name}.html").write_text(HTMLRenderer().render(session))


def main() -> None:
    out = pathlib.Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    from podline import cli
    from podline.shell import kube

    original = kube.Kube.__init__

    def init(self: kube.Kube, workers: int = 8, api_client: Any = None) -> None:
        original(self, workers, api_client)
        self._pool.shutdown(wait=False)
        self._pool = ProfilingPool(max_workers=workers, thread_name_prefix="kube")

    kube.Kube.__init__ = init  # type: ignore[method-assign]
    profiler = Profiler(interval=0.001, async_mode="disabled")
    profiler.start()
    try:
        cli.main(["operator"])
    finally:
        session = profiler.stop()
        _write(session, out, "operator-loop")
        with _lock:
            threads = _combine(list(_sessions))
        if threads is not None:
            _write(threads, out, "operator-api-threads")
        print(f"profiles written to {out} ({len(_sessions)} API calls profiled)", flush=True)


if __name__ == "__main__":
    main()
