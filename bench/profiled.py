"""``python -m bench.profiled OUTDIR``: the operator (``podline operator``) under pyinstrument, for the bench.

Two profiles, written when the operator stops (SIGTERM), each as a tree of podline's frames, a tree with
the libraries' frames too, a flat list of self time, and a ``.pyisession`` (``python -m bench.profiled
--render DIR`` renders the text views again; ``pyinstrument --load`` opens one):

- ``operator-loop``: the main thread, which runs kopf's event loop: watch parsing, kopf's per-event
  processing, podline's handlers, reconciles and ``scheduling.decide``. Wall-clock samples; the loop's idle
  time shows as ``select``.
- ``operator-api-threads``: the thread pool (``shell/kube.py``) every Kubernetes API call runs in; one
  profiler per worker thread for its whole life (idle time shows as the queue's ``get``).

Nothing in the operator is changed: the wrapper only gives the pool an initializer that starts a profiler.
"""

from __future__ import annotations

import concurrent.futures
import pathlib
import sys
import threading
from typing import Any

from pyinstrument import Profiler
from pyinstrument.renderers import ConsoleRenderer
from pyinstrument.session import Session

INTERVAL = 0.001
_profilers: dict[int, Profiler] = {}
_pools: list[concurrent.futures.ThreadPoolExecutor] = []
_lock = threading.Lock()


def _start_thread_profiler() -> None:
    profiler = Profiler(interval=INTERVAL, async_mode="disabled")
    profiler.start()
    with _lock:
        _profilers[threading.get_ident()] = profiler


def _stop_here(barrier: threading.Barrier) -> Session | None:
    barrier.wait()
    with _lock:
        profiler = _profilers.pop(threading.get_ident(), None)
    return profiler.stop() if profiler is not None else None


def _stop_thread_profilers() -> list[Session]:
    """Stop each worker's profiler on its own thread: one task per worker, held at a barrier so that every
    worker takes exactly one."""
    sessions: list[Session] = []
    for pool in _pools:
        workers = len(pool._threads)
        if not workers:
            continue
        barrier = threading.Barrier(workers, timeout=30)
        for job in [pool.submit(_stop_here, barrier) for _ in range(workers)]:
            try:
                session = job.result(timeout=60)
            except Exception as error:  # noqa: BLE001 - a profile is a nicety
                print(f"a worker's profile was lost: {error}", flush=True)
                continue
            if session is not None:
                sessions.append(session)
    return sessions


LIBRARIES = r".*/(kopf|podline|urllib3|kubernetes|json|ssl|logging|asyncio|docker_image|pydantic|http)/.*"


def _write(session: Session, out: pathlib.Path, name: str) -> None:
    session.save(str(out / f"{name}.pyisession"))
    render(session, out, name)


def render(session: Session, out: pathlib.Path, name: str) -> None:
    """Text views: podline's frames only (``.txt``); the libraries too, ``copy`` folded (``.libs.txt``);
    the functions with the most self time (``.flat.txt``)."""
    views = {
        "txt": ConsoleRenderer(unicode=True, time="percent_of_total", processor_options={"filter_threshold": 0.005}),
        "libs.txt": ConsoleRenderer(unicode=True, time="percent_of_total", processor_options={
            "filter_threshold": 0.008, "show_regex": LIBRARIES, "hide_regex": r".*/copy\.py"}),
        "flat.txt": ConsoleRenderer(unicode=True, time="percent_of_total", flat=True, flat_time="self",
                                    show_all=True),
    }
    for suffix, renderer in views.items():
        text = renderer.render(session)
        if suffix == "flat.txt":
            text = "\n".join(text.splitlines()[:80]) + "\n"
        (out / f"{name}.{suffix}").write_text(text)


def main() -> None:
    if sys.argv[1] == "--render":  # python -m bench.profiled --render DIR: the text views again
        out = pathlib.Path(sys.argv[2])
        for saved in sorted(out.glob("*.pyisession")):
            render(Session.load(str(saved)), out, saved.stem)
        return
    out = pathlib.Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    from podline import cli
    from podline.shell import kube

    original = kube.Kube.__init__

    def init(self: kube.Kube, workers: int = 8, api_client: Any = None) -> None:
        original(self, workers, api_client)
        self._pool.shutdown(wait=False)
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="kube", initializer=_start_thread_profiler)
        _pools.append(self._pool)

    kube.Kube.__init__ = init  # type: ignore[method-assign]
    profiler = Profiler(interval=INTERVAL, async_mode="disabled")
    profiler.start()
    try:
        cli.main(["operator"])
    finally:
        _write(profiler.stop(), out, "operator-loop")
        sessions = _stop_thread_profilers()
        if sessions:
            combined = sessions[0]
            for session in sessions[1:]:
                combined = Session.combine(combined, session)
            _write(combined, out, "operator-api-threads")
        print(f"profiles written to {out} ({len(sessions)} API worker threads)", flush=True)


if __name__ == "__main__":
    main()
