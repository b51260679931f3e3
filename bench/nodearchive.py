"""The archive's cost on the node tier (docs/archive.md, "Off the critical path"): the same pipeline with the
archive off, on with a directory store and on with S3, interleaved in one run.

``python -m bench.run --tier node --only archive`` (part of the full node bench too). Three operators run
side by side for this scenario, production defaults but each watching only its own namespace
(``PODLINE_NAMESPACES``), the one archiving off, the others with ``PODLINE_ARCHIVE`` set to a directory and
to a bucket of a real S3 server (s3proxy on a loopback port, started here: `tests.cluster.s3proxy`); the node
bench's own operator is stopped meanwhile (it watches every namespace) and started again afterwards. Every
repeat runs one pipeline of ``archive_steps`` steps of ``echo`` on each variant, in every order in turn
(`order`), each after a quiet `QUIET` s, so the machine's noise hits all three alike. For each run:

- submit → result and its step hand-offs, as the ``e2e`` scenario measures them (`nodesystems.Podline`);
- the archive lag, where the archive is on: the run's end (the record's own ``finishedAt``, the last step's
  end by the entrypoint's clock) → its ``record.json`` written in the store, and the result seen by the
  bench's watch → the same. The bench polls the store through its own API (obstore, as ``podline logs --run``
  reads it) until the run's final record is there; the moment it was written is the modification time of
  the file that holds it (the directory store's file, s3proxy's blob on this machine's disk: both the host's
  clock, finer than the poll);
- the operator's CPU time (``/proc``, its threads' ``schedstat``: ns) from before the submit until the run is archived (or, off, has ended)
  and a settle of `SETTLE` s, and its RSS then. The CPU per archived step is (on − off) / steps, paired by
  repeat: what archiving a run costs the operator (its log reads, store writes and pod annotation), per step.

Nothing here is judged: numbers, with medians and ranges over the repeats and ratios to "off" in the same run.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import pathlib
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import kubernetes.client
import obstore
from obstore.store import LocalStore, ObjectStore, S3Store
from podline.core import conventions

from bench import harness, nodesystems, proc, stats, taskevents
from tests.cluster import s3proxy

if TYPE_CHECKING:  # typed dicts of obstore's stubs only
    from obstore.store import S3Config

VARIANTS = ("off", "file", "s3")
LABELS = {"off": "archive off", "file": "archive on: directory", "s3": "archive on: S3 (s3proxy)"}
SETTLE = 1.0  # s after the run ended (off) or was archived (on), before the operator's CPU is read
QUIET = 2.0  # s before each run: the kubelet tears down the run before's pod meanwhile
ARCHIVE_TIMEOUT = 120.0  # s for a run's record to reach the store
POLL = 0.05  # s between reads of the store
FINAL = (
    "Succeeded",
    "Failed",
    "Cancelled",
    "Timeout",
    "Superseded",
)  # a record's result once its run is over


@dataclasses.dataclass
class Variant:
    """One operator configuration: its namespace, process, store (None: off) and where the store's files are."""

    name: str
    namespace: str
    operator: harness.Process
    store: ObjectStore | None = None
    disk: pathlib.Path | None = None  # the directory holding the store's objects on this machine

    def record_file(self, key: str) -> pathlib.Path | None:
        return None if self.disk is None else self.disk / key


def record_key(namespace: str, pipeline: str, run: str) -> str:
    return f"{namespace}/{pipeline}/{run}/record.json"


def is_final(record: Mapping[str, Any] | None) -> bool:
    """The run's whole record: a result, and every step ended (a record written while the run goes on, as
    an archiver that archives each step as it ends may write, has steps without an end)."""
    if not record or record.get("result") not in FINAL:
        return False
    steps = record.get("steps") or []
    return bool(steps) and all(s.get("finishedAt") is not None for s in steps)


def read_record(store: ObjectStore, key: str) -> dict[str, Any] | None:
    try:
        data = bytes(obstore.get(store, key).bytes())
    except FileNotFoundError:
        return None
    try:
        found = json.loads(data)
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def wait_record(store: ObjectStore, key: str, timeout: float) -> tuple[dict[str, Any] | None, float]:
    """Poll the store until the run's final record is there; returns it and when it was seen (wall clock)."""
    deadline = time.monotonic() + timeout
    while True:
        record = read_record(store, key)
        if is_final(record) or time.monotonic() > deadline:
            return (record if is_final(record) else None), time.time()
        time.sleep(POLL)


def ms_time(value: Any) -> float | None:
    """A record's time (RFC 3339 text, or ms since the epoch) as wall-clock seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value) / 1000.0
    return taskevents.rfc3339(value) if isinstance(value, str) else None


def lag(written: float | None, since: float | None) -> float:
    return math.nan if written is None or since is None else written - since


# ---- the scenario ------------------------------------------------------------------------------------


class ArchiveBench:
    """The three operators and the S3 server; `open` before, `close` after (always)."""

    def __init__(self, bench: Any, say: Callable[[str], None]) -> None:
        self.bench, self.say = bench, say
        self.variants: list[Variant] = []
        self.s3: s3proxy.S3Proxy | None = None
        self.notes: dict[str, str] = {}
        self.scratch = pathlib.Path(bench.scratch.name) / "archive"

    def open(self) -> None:
        bench = self.bench
        assert bench.operator is not None and bench.cluster is not None
        base = dict(bench.operator.env)
        bench.operator.stop()  # it watches every namespace: it would run these pipelines too
        try:
            self.s3 = s3proxy.S3Proxy().start()
        except (s3proxy.Missing, RuntimeError) as error:
            self.notes["s3"] = str(error)
            self.say(f"archive: the S3 variant does not run: {error}")
        for name in VARIANTS:
            if name == "s3" and self.s3 is None:
                continue
            namespace = bench.cluster.new_namespace(f"arch-{name}")
            env = {**base, "PODLINE_NAMESPACES": namespace}
            store, disk = self._store(name, env)  # sets the archive's variables in env
            argv, logs = harness.operator_argv(), bench.cluster.log_dir
            operator = harness.Process(f"operator-archive-{name}", argv, logs, env)
            variant = Variant(name, namespace, operator, store, disk)
            variant.operator.start()
            self.variants.append(variant)
        for variant in self.variants:
            if not variant.operator.wait_log("podline operator started", 60):
                raise RuntimeError(
                    f"the {variant.name} operator did not start:\n" + variant.operator.log()[-3000:]
                )

    def _store(self, name: str, env: dict[str, str]) -> tuple[ObjectStore | None, pathlib.Path | None]:
        """The variant's store as the bench reads it, and the directory on this machine holding its objects;
        sets ``PODLINE_ARCHIVE`` (and the S3 server's ``AWS_*``) in the operator's ``env``."""
        if name == "file":
            disk = self.scratch / "store"
            disk.mkdir(parents=True, exist_ok=True)
            env["PODLINE_ARCHIVE"] = f"file://{disk}"
            return LocalStore(str(disk)), disk
        if name == "s3":
            assert self.s3 is not None
            env.update(self.s3.env)
            env["PODLINE_ARCHIVE"] = f"s3://{s3proxy.BUCKET}/runs"
            config: S3Config = {
                "endpoint": self.s3.endpoint,
                "access_key_id": s3proxy.IDENTITY,
                "secret_access_key": self.s3.credential,
                "region": "us-east-1",
                "virtual_hosted_style_request": False,
            }
            store = S3Store(s3proxy.BUCKET, prefix="runs", config=config, client_options={"allow_http": True})
            return store, self.s3.blobs / s3proxy.BUCKET / "runs"  # s3proxy's filesystem blob store
        return None, None

    def close(self) -> None:
        for variant in self.variants:
            variant.operator.stop()
        if self.s3 is not None:
            self.s3.stop()
        bench = self.bench
        if bench.operator is not None and not bench.operator.alive():
            bench.operator.start()
            bench.operator.wait_log("podline operator started", 60)

    # ---- one run ---------------------------------------------------------------------------------------

    def run(self, variant: Variant, name: str, steps: list[dict[str, Any]], timeout: float) -> dict[str, Any]:
        bench = self.bench
        podline = nodesystems.Podline(bench.node)
        time.sleep(QUIET)
        pid = variant.operator.pid
        cpu0, ticks0 = proc.cpu_seconds_fine(pid) or math.nan, proc.cpu_seconds(pid) or math.nan
        outcome = podline.run(variant.namespace, [(name, steps)], timeout)[0]
        status = self._status(variant.namespace, name)
        sample: dict[str, Any] = {
            "seconds": math.nan if outcome.seconds is None else outcome.seconds,
            "phase": outcome.phase,
            "handoffs": nodesystems.handoffs(outcome, steps),
        }
        if variant.store is not None:
            sample.update(self._archived(variant, name, status, outcome.done))
        time.sleep(SETTLE)
        cpu1, ticks1 = proc.cpu_seconds_fine(pid) or math.nan, proc.cpu_seconds(pid) or math.nan
        sample["operator_cpu_ms"] = 1000.0 * (cpu1 - cpu0)
        sample["operator_cpu_ms_ticks"] = 1000.0 * (ticks1 - ticks0)  # /proc/<pid>/stat, 10 ms steps
        sample["operator_rss_mb"] = proc.rss_mb(variant.operator.pid) or math.nan
        self._clean(variant.namespace, name)
        return sample

    def _status(self, namespace: str, name: str) -> dict[str, Any]:
        custom = kubernetes.client.CustomObjectsApi(self.bench.node.api)
        body: Any = custom.get_namespaced_custom_object(
            nodesystems.GROUP, nodesystems.VERSION, namespace, nodesystems.PLURAL, name
        )
        return dict(body.get("status") or {})

    def _archived(
        self, variant: Variant, name: str, status: Mapping[str, Any], done: float | None
    ) -> dict[str, Any]:
        """Wait for the run's final record in the store, then for its pod to be marked archived."""
        assert variant.store is not None
        key = record_key(variant.namespace, name, str(status.get("run", "")))
        record, seen = wait_record(variant.store, key, ARCHIVE_TIMEOUT)
        path = variant.record_file(key)
        written = path.stat().st_mtime_ns / 1e9 if record is not None and path and path.exists() else None
        pod = str(status.get("podName", ""))
        marked = record is not None and self._wait_marked(variant.namespace, pod, ARCHIVE_TIMEOUT)
        ended = ms_time(record.get("finishedAt")) if record else None
        return {
            "archived": record is not None,
            "marked": marked,
            "lag_from_end": lag(written, ended),
            "lag_from_result": lag(written, done),
            "seen_after_written": lag(seen, written),
            "record_result": record.get("result") if record else None,
        }

    def _wait_marked(self, namespace: str, pod: str, timeout: float) -> bool:
        core = kubernetes.client.CoreV1Api(self.bench.node.api)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                found = core.read_namespaced_pod(pod, namespace)
            except kubernetes.client.ApiException:
                return False
            if ((found.metadata and found.metadata.annotations) or {}).get(conventions.ANNOTATION_ARCHIVED):
                return True
            time.sleep(POLL * 2)
        return False

    def _clean(self, namespace: str, name: str) -> None:
        node = self.bench.node
        node.kubectl("delete", "pipeline", name, "-n", namespace, "--wait=true", "--timeout=60s", check=False)
        node.kubectl("delete", "pods", "--all", "-n", namespace, "--grace-period=0", "--force",
                     "--wait=true", "--timeout=60s", check=False)  # fmt: skip


def order(variants: Sequence[Variant], repeat: int) -> list[Variant]:
    """Repeat r runs the r-th ordering of the variants (every ordering in turn), so each follows each other
    as often: a rotation would keep the same one before each (what the run before leaves behind would then
    always weigh on the same variant)."""
    orderings = list(itertools.permutations(variants))
    return list(orderings[repeat % len(orderings)])


def measure(bench: Any, cfg: Any, say: Callable[[str], None]) -> dict[str, Any]:
    """Every repeat, every variant: raw samples and their summary."""
    from bench import nodebench

    archive = ArchiveBench(bench, say)
    raw: dict[str, list[dict[str, Any]]] = {}
    steps = nodesystems.echo_steps(cfg.archive_steps)
    timeout = nodebench._timeout(cfg.archive_steps)
    try:
        archive.open()
        say("archive: warm-up, one run per operator")
        for variant in archive.variants:
            archive.run(variant, "warm", nodesystems.echo_steps(2), timeout)
        for repeat in range(cfg.repeats):
            for variant in order(archive.variants, repeat):
                sample = archive.run(variant, f"echo-{cfg.archive_steps}-r{repeat}", steps, timeout)
                raw.setdefault(variant.name, []).append(sample)
                say(
                    f"  repeat {repeat + 1}/{cfg.repeats} archive {variant.name:<4} {cfg.archive_steps} steps: "
                    f"{sample['seconds']:.2f} s, operator CPU {sample['operator_cpu_ms']:.0f} ms"
                    + (
                        f", archive lag {1000 * sample['lag_from_end']:.0f} ms"
                        if "lag_from_end" in sample
                        else ""
                    )
                )
    finally:
        archive.close()
    return {
        "steps": cfg.archive_steps,
        "variants": [v.name for v in archive.variants],
        "not_run": archive.notes,
        "raw": raw,
        "summary": summarise(raw, cfg.archive_steps),
    }


def summarise(raw: Mapping[str, Sequence[Mapping[str, Any]]], steps: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    off = raw.get("off", [])
    for name, samples in raw.items():
        found: dict[str, Any] = {
            "seconds": stats.spread(s["seconds"] for s in samples),
            "handoff_p50_ms": stats.spread(stats.summary(s["handoffs"], 1000.0)["p50"] for s in samples),
            "operator_cpu_ms": stats.spread(s["operator_cpu_ms"] for s in samples),
            "operator_rss_mb": {
                "first": samples[0]["operator_rss_mb"] if samples else math.nan,
                "last": samples[-1]["operator_rss_mb"] if samples else math.nan,
            },
            "succeeded": sum(1 for s in samples if s["phase"] == "Succeeded"),
        }
        if name != "off":
            found["lag_from_end_ms"] = stats.spread(1000.0 * s["lag_from_end"] for s in samples)
            found["lag_from_result_ms"] = stats.spread(1000.0 * s["lag_from_result"] for s in samples)
            found["archived"] = sum(1 for s in samples if s.get("archived"))
            found["cpu_ms_per_archived_step"] = stats.spread(
                (s["operator_cpu_ms"] - o["operator_cpu_ms"]) / steps
                for s, o in zip(samples, off, strict=False)
            )
        rss = found["operator_rss_mb"]
        rss["growth_kb_per_step"] = (
            1024.0 * (rss["last"] - rss["first"]) / (steps * (len(samples) - 1))
            if len(samples) > 1
            else math.nan
        )
        out[name] = found
    return out
