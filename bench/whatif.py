"""``python -m bench.whatif PATCHES``: the operator with some of the changes bench/README.md proposes, applied
at run time by this wrapper, to measure what each would give before anyone changes the operator.

An experiment, not a fix: the operator's code is unchanged; ``PATCHES`` is a comma-separated subset of:

- ``diffbase``: kopf keeps no "essence" of each object (``settings.persistence.diffbase_storage``). kopf
  deep-copies every watched body twice per event to build it, for on.create/update/field handlers, which
  podline does not have;
- ``logs``: kopf's per-object logger at WARNING, so it does not write "Handler 'pod_event' succeeded." for
  every event;
- ``connections``: every API response is read and its connection released in the worker thread (today
  ``patch_status``, ``event`` and ``delete_pod`` drop theirs unread, which closes the connection: the
  next call pays a new TLS handshake);
- ``images``: ``images.same_image`` memoised (``scheduling.decide`` parses the same image references with
  regular expressions for every container on every reconcile).
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import Any

PATCHES = ("diffbase", "logs", "connections", "images")


class _Read:
    """A response already read in the worker thread: what ``kube._json`` needs of it."""

    def __init__(self, data: bytes) -> None:
        self.data = data


def apply(patches: set[str]) -> None:
    import kopf
    from podline.core import images
    from podline.shell import kube

    if "diffbase" in patches:
        class NoDiffBase(kopf.DiffBaseStorage):
            def build(self, *, body: Any, extra_fields: Any = None) -> Any:
                return None  # no essence: nothing to diff, no deep copies (no change-detecting handlers)

            def fetch(self, *, body: Any) -> Any:
                return None

            def store(self, *, body: Any, patch: Any, essence: Any) -> None:
                return None

        @kopf.on.startup()
        async def no_diffbase(settings: kopf.OperatorSettings, **_: Any) -> None:
            settings.persistence.diffbase_storage = NoDiffBase()

    if "logs" in patches:
        @kopf.on.startup()
        async def quiet_kopf(**_: Any) -> None:
            logging.getLogger("kopf.objects").setLevel(logging.WARNING)

    if "connections" in patches:
        original = kube.Kube._call

        async def call(self: kube.Kube, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
            def read_and_release(*a: Any, **kw: Any) -> Any:
                response = fn(*a, **kw)
                if hasattr(response, "release_conn"):
                    data = response.data
                    response.release_conn()
                    return _Read(data)
                return response
            return await original(self, read_and_release, *args, **kwargs)

        kube.Kube._call = call  # type: ignore[method-assign]

    if "images" in patches:
        images.same_image = functools.lru_cache(maxsize=4096)(images.same_image)


def main() -> None:
    patches = {p for p in (sys.argv[1] if len(sys.argv) > 1 else "").split(",") if p and p != "none"}
    unknown = patches - set(PATCHES)
    if unknown:
        raise SystemExit(f"unknown patches: {', '.join(sorted(unknown))} (known: {', '.join(PATCHES)})")
    from podline import cli
    from podline.shell import handlers  # noqa: F401 - registers podline's handlers before ours

    apply(patches)
    print(f"what-if patches: {', '.join(sorted(patches)) or 'none'}", flush=True)
    sys.exit(cli.main(["operator"]))


if __name__ == "__main__":
    main()
