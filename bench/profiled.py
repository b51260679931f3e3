"""``python -m bench.profiled OUTDIR``: the operator (``podline operator``) under pyinstrument, for the bench.

One profile, written when the operator stops (SIGTERM): ``operator-loop``, the main thread, which runs
kopf's event loop and everything the operator does: watch parsing, kopf's per-event processing, podline's
handlers, reconciles, ``scheduling.decide`` and the API calls (aiohttp, on the same loop). Wall-clock
samples; the loop's idle time shows as ``select``. Written as a tree of podline's frames, a tree with the
libraries' frames too, a flat list of self time, and a ``.pyisession`` (``python -m bench.profiled --render
DIR`` renders the text views again; ``pyinstrument --load`` opens one). Nothing in the operator is changed.
"""

from __future__ import annotations

import pathlib
import sys

from pyinstrument import Profiler
from pyinstrument.renderers import ConsoleRenderer
from pyinstrument.session import Session

INTERVAL = 0.001

LIBRARIES = r".*/(kopf|podline|aiohttp|json|ssl|logging|asyncio|docker_image|pydantic|http)/.*"


def _write(session: Session, out: pathlib.Path, name: str) -> None:
    session.save(str(out / f"{name}.pyisession"))
    render(session, out, name)


def render(session: Session, out: pathlib.Path, name: str) -> None:
    """Text views: podline's frames only (``.txt``); the libraries too, ``copy`` folded (``.libs.txt``);
    the functions with the most self time (``.flat.txt``)."""
    views = {
        "txt": ConsoleRenderer(
            unicode=True, time="percent_of_total", processor_options={"filter_threshold": 0.005}
        ),
        "libs.txt": ConsoleRenderer(
            unicode=True,
            time="percent_of_total",
            processor_options={
                "filter_threshold": 0.008,
                "show_regex": LIBRARIES,
                "hide_regex": r".*/copy\.py",
            },
        ),
        "flat.txt": ConsoleRenderer(
            unicode=True, time="percent_of_total", flat=True, flat_time="self", show_all=True
        ),
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

    profiler = Profiler(interval=INTERVAL, async_mode="disabled")
    profiler.start()
    try:
        cli.main(["operator"])
    finally:
        _write(profiler.stop(), out, "operator-loop")
        print(f"profile written to {out}", flush=True)


if __name__ == "__main__":
    main()
