"""The api tier's scenarios, plus the floor. Each returns a JSON-able dict (and keeps raw samples for plots).

Every latency is a difference of two arrival times on the bench's own watch (see `watching`). Steps hand
off inside the pod now (the entrypoint, docs/in-pod.md; here the scripted kubelet plays it), so the operator
is no longer on that path: what the ``handoff`` scenario times is the operator's part of a step's end — the
event in which step N's container is first reported terminated with its result (written by the scripted
kubelet) → the event in which the Pipeline's status first shows step N done (the operator's status write,
coalesced per ``PODLINE_STATUS_INTERVAL_MS``). The floor is measured the same way (`floor`), in the same
run, idle and under each load.
"""

from __future__ import annotations

import math
import pathlib
import random
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import kubernetes.client

from bench import floor, harness, proc, stats, watching

Say = Callable[[str], None]
TERMINAL = watching.TERMINAL


@dataclass(frozen=True)
class Level:
    """One hand-off load: ``pipelines`` running at once, each of ``steps`` steps lasting U(low, high) s, so
    about ``pipelines / mean step`` hand-offs are offered per second. ``repeats`` None: the config's."""

    pipelines: int
    steps: int
    low: float
    high: float
    label: str = ""
    repeats: int | None = None

    @property
    def key(self) -> str:
        return self.label or str(self.pipelines)

    @property
    def offered(self) -> float:
        return self.pipelines / ((self.low + self.high) / 2)


@dataclass(frozen=True)
class Config:
    floor_pings: int
    levels: tuple[Level, ...]
    repeats: int
    start_pipelines: int
    burst_pipelines: int
    burst_steps: int
    burst_step_seconds: float
    burst_repeats: int
    memory_levels: tuple[int, ...]
    api_cost_steps: tuple[int, ...]
    api_cost_pipelines: int
    render_seconds: float
    render_repeats: int
    cli_runs: int
    wait_factor: float = 1.0  # scales every bounded wait
    archive_pipelines: int = 100  # the `archive` scenario (bench.apiarchive): Pipelines at once,
    archive_steps: int = 10  # … of that many steps
    archive_step_seconds: float = 0.2  # … each
    archive_repeats: int = 3  # … with the archive off and on in each repeat

    @classmethod
    def full(cls) -> Config:
        return cls(
            floor_pings=200,
            levels=(
                Level(1, 31, 0.2, 0.4),
                Level(10, 16, 0.5, 1.5),
                Level(100, 6, 8.0, 16.0),
                Level(100, 8, 2.0, 4.0, label="100-stress", repeats=1),
            ),
            repeats=3,
            start_pipelines=60,
            burst_pipelines=1000,
            burst_steps=3,
            burst_step_seconds=0.1,
            burst_repeats=1,
            memory_levels=(100, 250, 500, 750, 1000),
            api_cost_steps=(1, 3, 10),
            api_cost_pipelines=10,
            render_seconds=1.0,
            render_repeats=5,
            cli_runs=10,
        )

    @classmethod
    def quick(cls) -> Config:
        return cls(
            floor_pings=20,
            levels=(Level(1, 4, 0.1, 0.2), Level(3, 3, 0.1, 0.2)),
            repeats=1,
            start_pipelines=5,
            burst_pipelines=20,
            burst_steps=3,
            burst_step_seconds=0.05,
            burst_repeats=1,
            memory_levels=(5, 10),
            api_cost_steps=(1, 3),
            api_cost_pipelines=2,
            render_seconds=0.2,
            render_repeats=2,
            cli_runs=2,
            archive_pipelines=3,
            archive_steps=3,
            archive_step_seconds=0.1,
            archive_repeats=1,
        )


# ---- helpers ----------------------------------------------------------------------------------------


def _cpu_delta(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float]:
    return {name: round(after.get(name, 0.0) - before.get(name, 0.0), 3) for name in after}


def _terminal_count(recorder: watching.Recorder, names: set[str]) -> int:
    return len(set(recorder.pipeline_phase_times(TERMINAL)) & names)


def _wait_terminal(recorder: watching.Recorder, names: set[str], timeout: float) -> bool:
    return recorder.wait(lambda: _terminal_count(recorder, names) >= len(names), timeout)


STUCK_DIR: list[pathlib.Path] = []  # where run.py wants the evidence of runs that never ended


def _record_stuck(h: harness.Harness, recorder: watching.Recorder, names: set[str], say: Say) -> list[str]:
    """Before the namespace goes: keep the Pipeline and pod of every run that never ended, as evidence."""
    import json

    stuck = sorted(names - set(recorder.pipeline_phase_times(TERMINAL)))
    if not stuck:
        return []
    custom, core = kubernetes.client.CustomObjectsApi(h.api), kubernetes.client.CoreV1Api(h.api)
    evidence = []
    for name in stuck[:5]:
        item: dict[str, Any] = {"pipeline": name}
        try:
            item["status"] = custom.get_namespaced_custom_object(
                harness.GROUP, harness.VERSION, recorder.namespace, harness.PLURAL, name
            ).get("status")  # type: ignore[attr-defined]
            response = core.read_namespaced_pod(f"{name}-g1", recorder.namespace, _preload_content=False)
            pod = json.loads(response.data)  # type: ignore[attr-defined]
            item["pod"] = {
                "annotations": pod["metadata"].get("annotations"),
                "images": {c["name"]: c["image"] for c in pod["spec"]["containers"]},
                "args": {c["name"]: c.get("args") or [] for c in pod["spec"]["containers"]},
                "status": pod.get("status"),
            }
        except Exception as error:  # noqa: BLE001 - evidence is best effort
            item["error"] = repr(error)
        item["events"] = [
            (round(e.t, 3), e.type, e.images, e.states, e.phase)
            for e in recorder.pods
            if e.name == f"{name}-g1"
        ]
        evidence.append(item)
    if STUCK_DIR:
        STUCK_DIR[0].mkdir(parents=True, exist_ok=True)
        (STUCK_DIR[0] / f"stuck-{recorder.namespace}.json").write_text(
            json.dumps(evidence, indent=1, default=str)
        )
    say(f"{len(stuck)} run(s) never ended in {recorder.namespace} (evidence kept): {', '.join(stuck[:5])}")
    return stuck


def _wait_pods(recorder: watching.Recorder, count: int, timeout: float) -> bool:
    return recorder.wait(lambda: len(recorder.pods_of_pipelines()) >= count, timeout)


def _operator_view(h: harness.Harness, before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """The operator's own histogram of pod patch durations over the window (stand-ins and stops)."""
    out: dict[str, Any] = {}
    for name, key in (("podline_pod_patch_seconds", "pod_patch_ms"),):
        buckets = harness.histogram_delta(after, before, name)
        count = buckets[-1][1] if buckets else 0.0
        total = after.get(name + "_sum", 0.0) - before.get(name + "_sum", 0.0)
        out[key] = {
            "n": count,
            "mean": 1000 * total / count if count else math.nan,
            "p50_est": 1000 * stats.histogram_quantile(buckets, 0.5),
            "p99_est": 1000 * stats.histogram_quantile(buckets, 0.99),
        }
    out["conflicts"] = after.get("podline_conflicts_total", 0.0) - before.get("podline_conflicts_total", 0.0)
    return out


def handoffs(recorder: watching.Recorder) -> list[tuple[float, float, str]]:
    """(time step N was seen terminated, seconds until the Pipeline's status showed it done, pod) for every
    step whose end both watches saw."""
    ended: dict[tuple[str, str], float] = {}
    pods: dict[str, str] = {}  # pipeline -> pod
    for e in recorder.pods:
        if e.pipeline:
            pods.setdefault(e.pipeline, e.name)
        for container, state in e.states.items():
            if state == "terminated" and container.startswith("step-"):
                ended.setdefault((e.name, container), e.t)
    reported: dict[tuple[str, str], float] = {}
    for p in recorder.pipelines:
        pod = pods.get(p.name)
        for container, state in p.steps.items():
            if pod and state in ("succeeded", "failed", "skipped"):
                reported.setdefault((pod, container), p.t)
    out = [(t, reported[key] - t, key[0]) for key, t in ended.items() if key in reported]
    return sorted(out)


def running_at(recorder: watching.Recorder) -> Callable[[float], int]:
    """How many of the recorder's pods existed and had not ended at a given time."""
    added = recorder.pod_added()
    ended: dict[str, float] = {}
    for e in recorder.pods:
        if e.phase in ("Succeeded", "Failed") or e.type == "DELETED":
            ended.setdefault(e.name, e.t)
    spans = [(t, ended.get(name, math.inf)) for name, t in added.items()]
    return lambda t: sum(1 for a, b in spans if a <= t < b)


# ---- the floor -----------------------------------------------------------------------------------------


class Floor:
    """The floor's ConfigMap and its recorder, for the whole bench run."""

    def __init__(self, h: harness.Harness) -> None:
        self.recorder = watching.Recorder(h.api, h.floor_namespace, pipelines=False, configmaps=True)
        self.recorder.start()
        self.pods = watching.Recorder(h.api, h.floor_namespace, pipelines=False)
        self.pods.start()
        core = kubernetes.client.CoreV1Api(h.api)
        core.create_namespaced_config_map(
            h.floor_namespace,
            floor.floor_object(),  # type: ignore[arg-type]
            _preload_content=False,
        )
        core.create_namespaced_pod(h.floor_namespace, floor.floor_pod(), _preload_content=False)  # type: ignore[arg-type]
        self.api = h.api

    def pinger(self, kind: str = "configmap") -> floor.Pinger:
        return floor.Pinger(self.api, self.pods if kind == "pod" else self.recorder, kind)

    def stop(self) -> None:
        self.recorder.stop()
        self.pods.stop()


def idle_floor(fl: Floor, cfg: Config, say: Say) -> dict[str, Any]:
    pinger = fl.pinger()
    pinger.run(cfg.floor_pings)
    samples = pinger.samples()
    result: dict[str, Any] = floor.summarise(samples)
    result["timeouts"] = pinger.timeouts
    result["samples_ms"] = [round(1000 * x, 3) for x in samples["round_trip"]]
    pod_pinger = fl.pinger("pod")
    pod_pinger.run(max(5, cfg.floor_pings // 2))
    result["pod"] = floor.summarise(pod_pinger.samples())
    result["pod"]["timeouts"] = pod_pinger.timeouts
    say(
        f"floor (idle): watch→PATCH round trip p50 {result['round_trip']['p50']:.1f} ms, "
        f"PATCH→event p50 {result['patch_to_event']['p50']:.1f} ms; on a run-pod-sized pod: round trip p50 "
        f"{result['pod']['round_trip']['p50']:.1f} ms"
    )
    return result


# ---- 1. step hand-off latency ----------------------------------------------------------------------------


def handoff_once(
    h: harness.Harness, fl: Floor, level: Level, repeat: int, cfg: Config, say: Say
) -> dict[str, Any]:
    ns = h.namespace(f"handoff-{level.key}")
    recorder = watching.Recorder(h.api, ns)
    recorder.start()
    rng = random.Random(1000 * level.pipelines + repeat)
    lead = 1.0 + 0.08 * level.pipelines  # the first step outlasts the creation of every pipeline and pod
    bodies = []
    for i in range(level.pipelines):
        durations = [lead + rng.uniform(level.low, level.high)]
        durations += [rng.uniform(level.low, level.high) for _ in range(level.steps - 1)]
        bodies.append(harness.pipeline(f"p{i:04d}", durations))
    names = {b["metadata"]["name"] for b in bodies}
    pinger = fl.pinger()
    cpu0, metrics0 = h.cpu(), h.operator_metrics()
    began = time.monotonic()
    pinger.background()
    h.create_pipelines(ns, bodies)
    budget = (lead + level.steps * level.high * 3 + 60) * cfg.wait_factor
    finished = _wait_terminal(recorder, names, budget)
    ended = time.monotonic()
    pinger.stop()
    cpu1, metrics1 = h.cpu(), h.operator_metrics()
    stuck = _record_stuck(h, recorder, names, say) if not finished else []
    recorder.stop()
    _delete_and_wait(h, ns, cfg)
    samples = handoffs(recorder)
    count = running_at(recorder)
    concurrency = [count(t) for t, _, _ in samples]
    latencies = [s for _, s, _ in samples]
    floor_samples = pinger.samples(began, ended)
    window = (samples[-1][0] - samples[0][0]) if len(samples) > 1 else math.nan
    cpu = _cpu_delta(cpu0, cpu1)
    result: dict[str, Any] = {
        "pipelines": level.pipelines,
        "steps": level.steps,
        "step_seconds": [level.low, level.high],
        "offered_handoffs_per_second": level.offered,
        "repeat": repeat,
        "finished": finished,
        "terminal": _terminal_count(recorder, names),
        "handoff_ms": stats.summary(latencies, 1000.0),
        "floor_ms": floor.summarise(floor_samples),
        "running_during_samples": stats.summary(concurrency) if concurrency else {},
        "handoffs_per_second": len(samples) / window if window and window > 0 else math.nan,
        "operator": _operator_view(h, metrics0, metrics1),
        "cpu_seconds": cpu,
        "operator_cpu_ms_per_handoff": 1000 * cpu.get("operator", 0.0) / max(1, len(samples)),
        "watch_errors": recorder.errors,
        "never_ended": stuck,
        "samples_ms": [round(1000 * s, 3) for s in latencies],
    }
    hs, fs = result["handoff_ms"], result["floor_ms"]["round_trip"]
    say(
        f"hand-off at {level.key:>3} pipelines (repeat {repeat + 1}): n={hs['n']} p50 {hs['p50']:.1f} "
        f"p95 {hs['p95']:.1f} p99 {hs['p99']:.1f} ms; floor p50 {fs['p50']:.1f} ms; "
        f"{result['handoffs_per_second']:.1f} hand-offs/s; operator CPU {cpu.get('operator', 0):.1f}s"
    )
    return result


def handoff(h: harness.Harness, fl: Floor, cfg: Config, say: Say) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for level in cfg.levels:
        runs = [handoff_once(h, fl, level, r, cfg, say) for r in range(level.repeats or cfg.repeats)]
        out[level.key] = {
            "level": {
                "pipelines": level.pipelines,
                "steps": level.steps,
                "step_seconds": [level.low, level.high],
                "offered_handoffs_per_second": level.offered,
            },
            "summary": stats.over_repeats([r["handoff_ms"] for r in runs], ("p50", "p95", "p99", "mean")),
            "floor_round_trip": stats.over_repeats(
                [r["floor_ms"]["round_trip"] for r in runs], ("p50", "p99")
            ),
            "ratio_p50_to_floor": stats.spread(
                r["handoff_ms"]["p50"] / r["floor_ms"]["round_trip"]["p50"] for r in runs
            ),
            "operator_cpu_ms_per_handoff": stats.spread(r["operator_cpu_ms_per_handoff"] for r in runs),
            "handoffs_per_second": stats.spread(r["handoffs_per_second"] for r in runs),
            "runs": runs,
        }
    return out


# ---- 2. start latency ---------------------------------------------------------------------------------------


def start_latency(h: harness.Harness, cfg: Config, say: Say) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    for repeat in range(cfg.repeats):
        ns = h.namespace("start")
        recorder = watching.Recorder(h.api, ns)
        recorder.start()
        sent: dict[str, float] = {}
        rng = random.Random(repeat)
        for i in range(cfg.start_pipelines):
            name = f"s{i:04d}"
            sent[name] = h.create_pipeline(ns, harness.pipeline(name, [0.2]))
            time.sleep(rng.uniform(0.08, 0.15))
        _wait_pods(recorder, len(sent), 60 * cfg.wait_factor)
        _wait_terminal(recorder, set(sent), 60 * cfg.wait_factor)
        recorder.stop()
        _delete_and_wait(h, ns, cfg)
        pods = recorder.pods_of_pipelines()
        pod_added, pipeline_added = recorder.pod_added(), recorder.pipeline_added()
        observed = [pod_added[pods[n]] - pipeline_added[n] for n in sent if n in pods and n in pipeline_added]
        from_request = [pod_added[pods[n]] - sent[n] for n in sent if n in pods]
        runs.append(
            {
                "watch_ms": stats.summary(observed, 1000.0),
                "request_ms": stats.summary(from_request, 1000.0),
                "created": len(sent),
                "pods": len(pods),
                "samples_ms": [round(1000 * x, 3) for x in observed],
            }
        )
        say(
            f"start latency (repeat {repeat + 1}): Pipeline event → pod event p50 {runs[-1]['watch_ms']['p50']:.1f} "
            f"p99 {runs[-1]['watch_ms']['p99']:.1f} ms (from the create request: p50 "
            f"{runs[-1]['request_ms']['p50']:.1f} ms)"
        )
    return {
        "summary": stats.over_repeats([r["watch_ms"] for r in runs], ("p50", "p95", "p99")),
        "from_request": stats.over_repeats([r["request_ms"] for r in runs], ("p50", "p99")),
        "runs": runs,
    }


# ---- 3. burst -------------------------------------------------------------------------------------------------


def burst_once(h: harness.Harness, cfg: Config, repeat: int, say: Say) -> dict[str, Any]:
    n = cfg.burst_pipelines
    ns = h.namespace("burst")
    recorder = watching.Recorder(h.api, ns)
    recorder.start()
    bodies = [harness.pipeline(f"b{i:04d}", [cfg.burst_step_seconds] * cfg.burst_steps) for i in range(n)]
    names = {b["metadata"]["name"] for b in bodies}
    cpu0, requests0 = h.cpu(), h.apiserver_requests()
    metrics0 = h.operator_metrics()
    t0 = time.monotonic()
    h.create_pipelines(ns, bodies)
    created = time.monotonic() - t0
    say(
        f"burst (repeat {repeat + 1}): {n} Pipelines created in {created:.1f}s; waiting for every run to finish"
    )
    budget = (120 + n * 1.0) * cfg.wait_factor
    recorder.wait(lambda: len(recorder.pods_of_pipelines()) >= n, budget)
    finished = _wait_progress(recorder, names, budget, stall=60 * cfg.wait_factor)
    cpu1, requests1, metrics1 = h.cpu(), h.apiserver_requests(), h.operator_metrics()
    hwm = proc.hwm_mb(h.operator.pid)
    stuck = _record_stuck(h, recorder, names, say) if not finished else []
    recorder.stop()
    pod_times = sorted(recorder.pod_added().values())
    done_times = sorted(recorder.pipeline_phase_times(TERMINAL).values())
    pipe_times = sorted(recorder.pipeline_added().values())
    all_pods = (pod_times[-1] - t0) if len(pod_times) >= n else math.nan
    all_done = (done_times[-1] - t0) if len(done_times) >= n else math.nan
    done_99 = (
        (done_times[math.ceil(0.99 * n) - 1] - t0) if len(done_times) >= math.ceil(0.99 * n) else math.nan
    )
    end = max([*pod_times, *done_times, t0 + 1])
    bins = math.ceil(end - t0)
    series = {
        "second": list(range(bins)),
        "pipelines_created": _histogram(pipe_times, t0, bins),
        "pods_created": _histogram(pod_times, t0, bins),
        "runs_finished": _histogram(done_times, t0, bins),
    }
    phases: dict[str, int] = {}
    last_phase: dict[str, str | None] = {}
    for e in recorder.pipelines:
        last_phase[e.name] = e.phase
    for phase in last_phase.values():
        phases[str(phase)] = phases.get(str(phase), 0) + 1
    requests = harness.delta(requests1, requests0)
    result: dict[str, Any] = {
        "pipelines": n,
        "steps": cfg.burst_steps,
        "step_seconds": cfg.burst_step_seconds,
        "repeat": repeat,
        "finished": finished,
        "phases": phases,
        "create_seconds": created,
        "all_pods_seconds": all_pods,
        "all_finished_seconds": all_done,
        "finished_99_seconds": done_99,
        "not_finished": n - len(done_times),
        "never_ended": stuck,
        "pods_per_second": n / all_pods if all_pods else math.nan,
        "pipelines_per_second": n / all_done if all_done else math.nan,
        "pipelines_per_second_99": 0.99 * n / done_99 if done_99 else math.nan,
        "cpu_seconds": _cpu_delta(cpu0, cpu1),
        "operator_cpu_ms_per_pipeline": 1000 * (cpu1.get("operator", 0) - cpu0.get("operator", 0)) / n,
        "operator_hwm_mb": hwm,
        "operator": _operator_view(h, metrics0, metrics1),
        "api": attribute(requests, n),
        "series": series,
        "watch_errors": recorder.errors,
    }
    say(
        f"burst (repeat {repeat + 1}): all pods after {all_pods:.1f}s ({result['pods_per_second']:.1f}/s), "
        f"all finished after {all_done:.1f}s ({result['pipelines_per_second']:.1f} pipelines/s); "
        f"operator CPU {result['cpu_seconds'].get('operator', 0):.1f}s, phases {phases}"
    )
    _delete_and_wait(h, ns, cfg)
    return result


def _wait_progress(recorder: watching.Recorder, names: set[str], budget: float, stall: float) -> bool:
    """Wait until every run has ended, at most ``budget`` seconds, and give up earlier when none has ended
    for ``stall`` seconds (a stuck run must not hold the bench for the whole budget)."""
    deadline = time.monotonic() + budget
    done, changed = -1, time.monotonic()
    while time.monotonic() < deadline:
        now_done = _terminal_count(recorder, names)
        if now_done >= len(names):
            return True
        if now_done != done:
            done, changed = now_done, time.monotonic()
        elif done > 0 and time.monotonic() - changed > stall:
            return False
        recorder.wait(lambda seen=now_done: _terminal_count(recorder, names) != seen, 1.0)  # type: ignore[misc]
    return False


def _histogram(times: Sequence[float], t0: float, bins: int) -> list[int]:
    counts = [0] * bins
    for t in times:
        index = int(t - t0)
        if 0 <= index < bins:
            counts[index] += 1
    return counts


def _delete_and_wait(h: harness.Harness, ns: str, cfg: Config) -> None:
    """Delete the namespace and wait (bounded) until it is gone, so the next scenario starts quiet."""
    h.delete_namespace(ns)
    h.cluster.kubectl(
        "wait", "--for=delete", f"namespace/{ns}", f"--timeout={int(300 * cfg.wait_factor)}s", check=False
    )


def burst(h: harness.Harness, cfg: Config, say: Say) -> dict[str, Any]:
    runs = [burst_once(h, cfg, r, say) for r in range(cfg.burst_repeats)]
    keys = (
        "create_seconds",
        "all_pods_seconds",
        "all_finished_seconds",
        "finished_99_seconds",
        "pods_per_second",
        "pipelines_per_second",
        "pipelines_per_second_99",
        "operator_cpu_ms_per_pipeline",
        "not_finished",
    )
    return {"summary": stats.over_repeats(runs, keys), "runs": runs}


# ---- 4. memory ----------------------------------------------------------------------------------------------


IMPORT_FLOORS = {
    "python": "",
    "kubernetes": "import kubernetes.client",
    "kopf": "import kopf",
    "the operator's modules": "from podline import cli; cli._operator_handlers()",
}


def _import_rss(code: str) -> float:
    """VmRSS of a fresh interpreter after ``code``: what the imports alone cost (the floor of idle RSS)."""
    probe = (
        code + "\nimport pathlib\nprint([l.split()[1] for l in pathlib.Path('/proc/self/status')"
        ".read_text().splitlines() if l.startswith('VmRSS:')][0])"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    return int(done.stdout.strip().splitlines()[-1]) / 1024.0


def _running(recorder: watching.Recorder) -> int:
    """Pipelines whose status has said Running (the memory scenario's never end)."""
    return len(recorder.pipeline_phase_times(("Running",)))


def memory(h: harness.Harness, cfg: Config, say: Say) -> dict[str, Any]:
    """A fresh operator: RSS idle, then with more and more active (running) Pipelines of 3 steps."""
    h.restart_operator()
    time.sleep(3.0)
    idle = proc.rss_median_mb(h.operator.pid, 5)
    floors = {label: _import_rss(code) for label, code in IMPORT_FLOORS.items()}
    say(
        f"memory: operator RSS idle {idle:.1f} MB; a process that only imports: "
        + ", ".join(f"{k} {v:.1f} MB" for k, v in floors.items())
    )
    ns = h.namespace("memory")
    recorder = watching.Recorder(h.api, ns)
    recorder.start()
    points: list[dict[str, Any]] = [{"active": 0, "rss_mb": idle, "hwm_mb": proc.hwm_mb(h.operator.pid)}]
    made = 0
    for target in cfg.memory_levels:
        bodies = [harness.pipeline(f"m{i:04d}", [100000.0, 1.0, 1.0]) for i in range(made, target)]
        h.create_pipelines(ns, bodies)
        made = target
        reached = recorder.wait(
            lambda k=target: _running(recorder) >= k,  # type: ignore[misc]
            (60 + target * 0.5) * cfg.wait_factor,
        )
        time.sleep(2.0)  # let the trailing status writes land
        rss = proc.rss_median_mb(h.operator.pid)
        points.append(
            {
                "active": target,
                "rss_mb": rss,
                "hwm_mb": proc.hwm_mb(h.operator.pid),
                "running": _running(recorder),
                "reached": reached,
            }
        )
        say(f"memory: {_running(recorder)} active Pipelines: operator RSS {rss:.1f} MB")
    recorder.stop()
    _delete_and_wait(h, ns, cfg)
    time.sleep(2.0)
    after = proc.rss_median_mb(h.operator.pid)
    say(f"memory: after deleting them all: {after:.1f} MB")
    by_active = {p["active"]: p["rss_mb"] for p in points}
    largest = max(cfg.memory_levels)
    per_pipeline = (by_active[largest] - idle) / largest * 1024 if largest else math.nan
    return {
        "idle_mb": idle,
        "import_floor_mb": floors,
        "points": points,
        "after_delete_mb": after,
        "kb_per_active_pipeline": per_pipeline,
        "at_100_mb": by_active.get(100, math.nan),
        "at_1000_mb": by_active.get(1000, math.nan),
        "largest": largest,
        "at_largest_mb": by_active[largest],
    }


# ---- 5. API cost ---------------------------------------------------------------------------------------------

OPERATOR_WRITES = {
    ("POST", "pods", ""),
    ("PATCH", "pods", ""),
    ("DELETE", "pods", ""),
    ("PATCH", "pipelines", "status"),
    ("PUT", "pipelines", "status"),
    ("POST", "events", ""),
    ("POST", "secrets", ""),
    ("PATCH", "pipelines", ""),
    ("PUT", "pipelines", ""),
}
OPERATOR_READS = {
    ("GET", "pods", ""),
    ("GET", "secrets", ""),
    ("GET", "pipelines", ""),
    ("LIST", "pipelines", ""),
}
KUBELET = {("PATCH", "pods", "status")}
BENCH = {("POST", "pipelines", "")}


def attribute(requests: Mapping[tuple[str, str, str], float], pipelines: int) -> dict[str, Any]:
    """Split apiserver request deltas into the operator's writes and reads (per pipeline) and the rest.

    The operator is the only client that writes pods (not their status), Pipeline status and Events, and
    the only one that GETs single objects; the scripted kubelet writes pods/status; the bench POSTs Pipelines.
    """

    def per(keys: set[tuple[str, str, str]]) -> dict[str, float]:
        return {_label(key): round(requests[key] / pipelines, 3) for key in sorted(keys) if requests.get(key)}

    writes = per(OPERATOR_WRITES)
    reads = per(OPERATOR_READS)
    known = OPERATOR_WRITES | OPERATOR_READS | KUBELET | BENCH
    return {
        "operator_writes_per_pipeline": round(sum(writes.values()), 3),
        "operator_writes": writes,
        "operator_reads_per_pipeline": round(sum(reads.values()), 3),
        "operator_reads": reads,
        "kubelet_writes_per_pipeline": round(sum(requests.get(k, 0) for k in KUBELET) / pipelines, 3),
        "other": {_label(k): v for k, v in sorted(requests.items()) if k not in known},
    }


def _label(key: tuple[str, str, str]) -> str:
    verb, resource, subresource = key
    return f"{verb} {resource}/{subresource}" if subresource else f"{verb} {resource}"


def api_cost(h: harness.Harness, cfg: Config, say: Say) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for steps in cfg.api_cost_steps:
        ns = h.namespace(f"cost-{steps}")
        recorder = watching.Recorder(h.api, ns)
        recorder.start()
        names = set()
        before, cpu0 = h.apiserver_requests(), h.cpu()
        for i in range(cfg.api_cost_pipelines):
            name = f"c{i:03d}"
            names.add(name)
            h.create_pipeline(ns, harness.pipeline(name, [0.2] * steps))
            time.sleep(0.3)
        _wait_terminal(recorder, names, (60 + steps * 5) * cfg.wait_factor)
        time.sleep(2.0)  # trailing writes after the terminal status (none expected)
        after, cpu1 = h.apiserver_requests(), h.cpu()
        recorder.stop()
        _delete_and_wait(h, ns, cfg)  # the namespace and garbage collectors must not count in the next one
        result = attribute(harness.delta(after, before), cfg.api_cost_pipelines)
        result["operator_cpu_ms_per_pipeline"] = (
            1000 * (cpu1["operator"] - cpu0["operator"]) / cfg.api_cost_pipelines
        )
        result["operator_cpu_ms_per_step"] = result["operator_cpu_ms_per_pipeline"] / steps
        result["steps"] = steps
        result["target_writes"] = steps + 4
        result["finished"] = _terminal_count(recorder, names)
        out[str(steps)] = result
        say(
            f"API cost, {steps} step(s): {result['operator_writes_per_pipeline']:.1f} writes "
            f"(target ≤ {steps + 4}) and {result['operator_reads_per_pipeline']:.1f} reads per pipeline: "
            f"{result['operator_writes']} {result['operator_reads']}; operator CPU "
            f"{result['operator_cpu_ms_per_pipeline']:.0f} ms per pipeline"
        )
    return out


# ---- 6. render throughput and CLI start-up -------------------------------------------------------------------


def render(cfg: Config, say: Say) -> dict[str, Any]:
    """compile + build_pod in this process, for a small and a large pipeline, repeated."""
    import yaml
    from podline.core import compiling, pods, policies

    hello = yaml.safe_load((harness.ROOT / "docs/examples/hello.pipeline.yaml").read_text())
    large = harness.pipeline("large", [1.0] * 20)
    policy = policies.Policy()
    out: dict[str, Any] = {}
    for label, doc in (("hello (3 steps + 1 service)", hello), ("20 steps", large)):
        rates = []
        for _ in range(cfg.render_repeats):
            count, began = 0, time.perf_counter()
            while time.perf_counter() - began < cfg.render_seconds:
                context = compiling.RunContext(
                    namespace="default", pipeline=doc["metadata"]["name"], uid=f"uid-{count}", generation=1
                )
                plan = compiling.compile_spec(doc["spec"], context, policy)
                pods.build_pod(plan)
                count += 1
            rates.append(count / (time.perf_counter() - began))
        out[label] = stats.spread(rates)
        say(f"render {label}: {out[label]['median']:.0f} pipelines/s (compile + build_pod)")
    return out


def cli_startup(cfg: Config, say: Say) -> dict[str, Any]:
    script = pathlib.Path(sys.executable).parent / "podline"
    podline = [str(script)] if script.exists() else [sys.executable, "-m", "podline"]
    commands = {
        "podline --help": [*podline, "--help"],
        "python -c pass (interpreter floor)": [sys.executable, "-c", "pass"],
        "python -c 'import kopf, kubernetes'": [sys.executable, "-c", "import kopf, kubernetes"],
    }
    out: dict[str, Any] = {}
    for label, argv in commands.items():
        times = []
        for _ in range(cfg.cli_runs):
            began = time.perf_counter()
            subprocess.run(argv, check=True, capture_output=True, timeout=60)
            times.append(1000 * (time.perf_counter() - began))
        out[label] = stats.spread(times)
        say(f"start-up {label}: {out[label]['median']:.0f} ms")
    return out


def foreign_pods(h: harness.Harness, say: Say, writes: int = 200) -> dict[str, Any]:
    """Operator CPU per watch event of a pod podline does not own (no podline label), against the same
    number of writes to a ConfigMap (which it does not watch) as the control. kopf filters handlers by label
    on the operator's side, so without a server-side label selector every pod event of the cluster is
    received, parsed and processed."""
    core = kubernetes.client.CoreV1Api(h.api)
    ns = h.namespace("foreign")
    core.create_namespaced_pod(
        ns,
        {  # type: ignore[arg-type]
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "foreign", "labels": {"app": "not-podline"}},
            "spec": {"containers": [{"name": f"c{i}", "image": "busybox:1.36"} for i in range(4)]},
        },
    )
    core.create_namespaced_config_map(ns, {"metadata": {"name": "control"}})  # type: ignore[arg-type]
    time.sleep(1.0)
    out: dict[str, Any] = {"writes": writes}
    for label, patch in (
        (
            "configmap (not watched)",
            lambda i: core.patch_namespaced_config_map(
                "control", ns, {"metadata": {"annotations": {"i": str(i)}}}, _preload_content=False
            ),
        ),
        (
            "foreign pod",
            lambda i: core.patch_namespaced_pod(
                "foreign", ns, {"metadata": {"annotations": {"i": str(i)}}}, _preload_content=False
            ),
        ),
    ):
        before = proc.cpu_seconds(h.operator.pid) or 0.0
        for i in range(writes):
            patch(i)
        time.sleep(1.5)  # let the operator process what it received
        out[label] = 1000 * ((proc.cpu_seconds(h.operator.pid) or 0.0) - before) / writes
    out["operator_ms_per_foreign_pod_event"] = out["foreign pod"] - out["configmap (not watched)"]
    _delete_and_wait(h, ns, Config.quick())
    say(
        f"foreign pods: operator CPU {out['foreign pod']:.2f} ms per event of a pod it does not own "
        f"(control, a ConfigMap it does not watch: {out['configmap (not watched)']:.2f} ms per write)"
    )
    return out
