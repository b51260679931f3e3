"""Bringing a tier up and down by name, shared by the pytest fixtures and the command line.

Each cluster lives in a directory under ``$PODLINE_CLUSTER_DIR`` (default ``/tmp/podline-cluster``):
``api`` and ``node``. A test session holds an exclusive lock (``<dir>.lock``, released by the kernel when
the session dies) for as long as it uses a cluster, so concurrent sessions never share one: a second
api-tier session takes ``api.2`` (and so on); a second node-tier session waits for the node tier, which
is one per machine because image references name fixed registry ports. A cluster started with ``python
-m tests.cluster up`` outlives that command, so it holds no lock; its ``cluster.json`` says ``cli`` and
tests leave it alone. Anything else found in a free directory is a crashed session's leftover and is
torn down before starting.
"""

from __future__ import annotations

import fcntl
import os
import pathlib
import time
from typing import IO, Any

from tests.cluster import apitier, binaries, cleaning, components, nodetier

TIERS: dict[str, type[apitier.ApiCluster]] = {"api": apitier.ApiCluster, "node": nodetier.NodeCluster}
DEFAULT_BASE = pathlib.Path("/tmp/podline-cluster")
API_TIER_SLOTS = 8
NODE_TIER_WAIT = float(os.environ.get("PODLINE_NODE_TIER_WAIT", "1800"))  # seconds


class ClusterBusy(RuntimeError):
    """The tier cannot be started because someone else's cluster occupies it."""


def base_dir() -> pathlib.Path:
    configured = os.environ.get("PODLINE_CLUSTER_DIR")
    return pathlib.Path(configured) if configured else DEFAULT_BASE


def directory(tier: str) -> pathlib.Path:
    """The tier's main directory (the one the command line uses)."""
    return base_dir() / tier


def _slots(tier: str) -> list[pathlib.Path]:
    if tier == "node":
        return [directory(tier)]
    return [directory(tier)] + [base_dir() / f"{tier}.{n}" for n in range(2, API_TIER_SLOTS + 1)]


def _lock(path: pathlib.Path) -> IO[bytes] | None:
    """Take ``<path>.lock`` exclusively; None if another process holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(f"{path}.lock", "wb")  # noqa: SIM115 - held open for the life of the cluster
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def running_components(path: pathlib.Path) -> list[str]:
    """Names of the recorded components whose processes still run."""
    state = apitier.read_state(path) or {}
    names: list[str] = state.get("components", [])
    return [name for name in names if components.recorded_alive(path / "run" / f"{name}.pid")]


def _cli_cluster_running(path: pathlib.Path) -> bool:
    state = apitier.read_state(path) or {}
    return state.get("owner") == "cli" and bool(running_components(path))


def describe_owner(state: dict[str, Any]) -> str:
    if state.get("owner") == "cli":
        return "`python -m tests.cluster up`"
    return f"a test session (pid {state.get('pid')})"


def tear_down(path: pathlib.Path) -> None:
    """Stop whatever cluster the directory records, from any process. Logs stay."""
    state = apitier.read_state(path)
    if state is None and not path.exists():
        return
    tier = (state or {}).get("tier", "node" if (path / "containerd").exists() else "api")
    if tier == "node":
        nodetier.stop_recorded(path)
    else:
        apitier.stop_recorded(path)
    if cleaning.kill_leftovers(path):  # programs whose pid files were lost: undo what they may have done
        if tier == "node":
            nodetier.cleanup_host(path)
        apitier.clean(path)


def _used_by_another_session(path: pathlib.Path) -> bool:
    """A live test session's cluster (also one started before sessions took locks)."""
    state = apitier.read_state(path) or {}
    pid = int(state.get("pid", 0))
    if state.get("owner") == "cli" or pid in (0, os.getpid()):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return bool(running_components(path))


def _claim(tier: str, owner: str) -> tuple[pathlib.Path, IO[bytes]]:
    """A free directory for a new cluster of the tier, locked by this process. A test session waits up to
    ``$PODLINE_NODE_TIER_WAIT`` seconds for the node tier; everything else fails at once when busy."""
    slots = _slots(tier) if owner != "cli" else [directory(tier)]
    deadline = time.monotonic() + (NODE_TIER_WAIT if tier == "node" and owner != "cli" else 0.0)
    while True:
        for path in slots:
            lock = _lock(path)
            if lock is None or _used_by_another_session(path):
                if lock is not None:
                    lock.close()
                continue
            if _cli_cluster_running(path):
                lock.close()
                if tier == "node" or owner == "cli":
                    raise ClusterBusy(
                        f"a {tier}-tier cluster started by `python -m tests.cluster up` is running in {path}; "
                        f"stop it with `python -m tests.cluster down {tier}`"
                    )
                continue
            tear_down(path)  # a crashed session's leftovers, if any
            return path, lock
        if time.monotonic() >= deadline:
            where = ", ".join(str(p) for p in slots)
            raise ClusterBusy(f"the {tier} tier is in use by other test sessions ({where})")
        time.sleep(2.0)


def start(tier: str, *, owner: str) -> apitier.ApiCluster:
    """Start a fresh cluster of the tier. ``owner`` is ``pytest`` (the lock is held until `stop`) or ``cli``.

    Raises `binaries.MissingBinaries`, `ClusterBusy`, or `components.ComponentFailed` (after stopping what
    did start; the logs stay in ``<dir>/logs``)."""
    programs = binaries.require(tier)
    path, lock = _claim(tier, owner)
    cluster = TIERS[tier](path, programs, owner=owner)
    try:
        cluster.start()
    except BaseException:
        cluster.stop()
        lock.close()
        raise
    if owner == "cli":
        lock.close()  # the cluster outlives this process; cluster.json marks it as the command line's
    else:
        cluster.lock = lock
    return cluster


def stop_cli_cluster(tier: str) -> str:
    """Tear down the tier's command-line cluster; refuse if a test session is using the directory."""
    path = directory(tier)
    if not path.exists():
        return f"{tier}: nothing to stop"
    lock = _lock(path)
    if lock is None or _used_by_another_session(path):
        if lock is not None:
            lock.close()
        return f"{tier}: in use by a running test session; not stopping it"
    was_running = bool(running_components(path))
    try:
        tear_down(path)
    finally:
        lock.close()
    if not was_running:
        return f"{tier}: was not running (cleaned up its directory; logs stay in {path / 'logs'})"
    return f"{tier}: stopped (logs stay in {path / 'logs'})"


def status(tier: str) -> str:
    path = directory(tier)
    state = apitier.read_state(path)
    if state is None:
        return f"{tier}: not running"
    live = running_components(path)
    everything: list[str] = state.get("components", [])
    if not live:
        return f"{tier}: stopped (logs in {path / 'logs'})"
    down = [name for name in everything if name not in live]
    health = "all components running" if not down else f"NOT running: {', '.join(down)}"
    return (
        f"{tier}: started by {describe_owner(state)}; {health}\n"
        f"  server     {state.get('server')}\n"
        f"  kubeconfig {state.get('kubeconfig')}\n"
        f"  logs       {path / 'logs'}"
    )
