"""Chaos: many Pipelines while the operator is SIGKILLed at random moments; print the figures.

    python -m tests.chaos --pipelines 200 --kill-every 3 [--operators 2] [--seed 7]

starts a private api-tier cluster (etcd, kube-apiserver, kube-controller-manager), the scripted kubelet (a
test double of the kubelet and the in-pod entrypoint, which keeps a ledger of every container instance and
every step command it starts) and the real operator process (``python -m podline operator``, one or more of
them at once); applies Pipelines of 3–5 steps (sequential, parallel through ``depends_on``, failing, with
services, ``failure: ignore``, exit 78, a private image with a pull Secret, an image that cannot be pulled);
and, until every run has ended, kills an operator with SIGKILL at random moments and starts it again at
once. The steps sequence themselves inside the pod, so a kill delays only what the operator does (status,
stand-ins for unpullable images, stopping pods). Then it checks and prints:

- runs: how many ended, and how many ended exactly as planned (phase and every step's state);
- kills (each at a random moment 0.5–1.5 × ``--kill-every`` seconds after the operator started serving)
  and operator starts;
- duplicates: step commands started more than once, and containers started more than once, from the
  ledger;
- second pods: runs with more than one pod;
- lost steps: steps whose command should have run and never did, or ran though it should not have (a
  skipped step, or one whose image could not be pulled);
- orphans: pods and generated pull Secrets left 120 s after every Pipeline was deleted (ownerReferences
  and the garbage collector must remove them);
- tracebacks in the operator logs;
- Events lost or doubled: runs without exactly one Started and one final Event.

It exits 1 unless everything is as planned and every count of trouble is zero. The tests
(``tests/e2e/test_chaos.py``) run the same engine at CI size, plus an apiserver restart, an etcd outage and
two operators at once. The helpers here (listing, the CRD, the ledger and pod checks, ``serving``) are shared
by the other reliability and security tests.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import random
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import kubernetes
from podline.core import builds, conventions

from tests.cluster import apitier, scripted_kubelet
from tests.e2e import operating

TERMINAL = ("Succeeded", "Failed", "Error", "Cancelled", "Skipped")
BUSYBOX = "busybox:1.36"
PRIVATE_IMAGE = "registry.example.com/team/app:1"
PULL_SECRET = {"auths": {"registry.example.com": {"auth": "Y2k6cHc="}}}  # ci:pw, a test value
CRD = operating.ROOT / "crds" / "pipelines.podline.dev.yaml"
Body = dict[str, Any]


# ---- cluster helpers ------------------------------------------------------------------------------------


def install_crd(cluster: apitier.ApiCluster) -> None:
    """Apply the Pipeline CRD and wait until it is Established."""
    cluster.install_crds(CRD)


def listing(api: kubernetes.client.ApiClient, kind: str, namespace: str, selector: str = "") -> list[Body]:
    """Pods, Secrets, Events or Pipelines of a namespace, as plain JSON (fast: no model objects)."""
    core = kubernetes.client.CoreV1Api(api)
    response: Any
    if kind == "pipelines":
        custom = kubernetes.client.CustomObjectsApi(api)
        response = custom.list_namespaced_custom_object(
            conventions.GROUP, conventions.VERSION, namespace, conventions.PLURAL, _preload_content=False
        )
    else:
        lister = {"pods": core.list_namespaced_pod, "secrets": core.list_namespaced_secret,
                  "events": core.list_namespaced_event}[kind]  # fmt: skip
        response = lister(namespace, label_selector=selector, _preload_content=False)
    return list(json.loads(response.data)["items"])


MANAGED = f"{conventions.LABEL_MANAGED_BY}={conventions.MANAGED_BY}"


# ---- what to run, and what must come of it -------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Planned:
    """One Pipeline and the outcome it must have: the run's phase and every step's final state."""

    name: str
    kind: str
    spec: Body
    phase: str
    steps: Mapping[str, str]
    no_command: frozenset[str] = frozenset()  # steps that end without their command running (stand-ins)
    build: str | None = None  # a build's member (label podline.dev/build)
    run: str = "g1"  # a build's member's run id includes its dependencies' (core/builds.py)
    after: tuple[str, ...] = ()  # Pipelines whose commands must all start before this one's first

    def manifest(self) -> Body:
        body = operating.pipeline(self.name, self.spec)
        if self.build:
            body["metadata"]["labels"] = {conventions.LABEL_BUILD: self.build}
        return body

    @property
    def pod(self) -> str | None:
        return None if self.phase == "Skipped" else f"{self.name}-{self.run}"


def _step(name: str, rng: random.Random, *commands: str, **extra: Any) -> Body:
    return {"name": name, "image": BUSYBOX, "commands": [f"sleep {rng.choice((0.2, 0.4, 0.6, 0.8))}", *commands],
            **extra}  # fmt: skip


def _sequential(rng: random.Random, n: int) -> tuple[Body, str, dict[str, str]]:
    steps = [_step(f"s{i}", rng) for i in range(n)]
    return {"steps": steps}, "Succeeded", {s["name"]: "succeeded" for s in steps}


def _failing(rng: random.Random, n: int) -> tuple[Body, str, dict[str, str]]:
    bad = rng.randrange(n - 2)
    steps = [_step(f"s{i}", rng, "exit 2" if i == bad else "true") for i in range(n - 1)]
    steps.append(_step("notify", rng, when={"status": ["failure"]}))
    states = {
        s["name"]: "succeeded" if i < bad else "failed" if i == bad else "skipped"
        for i, s in enumerate(steps)
    }
    states["notify"] = "succeeded"
    return {"steps": steps}, "Failed", states


def _parallel(rng: random.Random, n: int) -> tuple[Body, str, dict[str, str]]:
    steps = [_step("a", rng), _step("b", rng), _step("c", rng, depends_on=["a", "b"])]
    steps += [_step(f"d{i}", rng, depends_on=["c"]) for i in range(n - 3)]  # parallel again after c
    return {"steps": steps}, "Succeeded", {s["name"]: "succeeded" for s in steps}


def _parallel_failing(rng: random.Random, n: int) -> tuple[Body, str, dict[str, str]]:
    steps = [_step("a", rng, "exit 3"), _step("b", rng), _step("c", rng, depends_on=["a", "b"])]
    steps += [_step(f"d{i}", rng, depends_on=["c"]) for i in range(n - 3)]
    states = {s["name"]: "skipped" for s in steps} | {"a": "failed", "b": "succeeded"}
    return {"steps": steps}, "Failed", states


def _services(rng: random.Random, n: int) -> tuple[Body, str, dict[str, str]]:
    steps = [_step(f"s{i}", rng) for i in range(n)]
    services = [{"name": "cache", "image": "redis:7"}, {"name": "db", "image": "postgres:16"}][
        : rng.randint(1, 2)
    ]
    return {"services": services, "steps": steps}, "Succeeded", {s["name"]: "succeeded" for s in steps}


def _ignored(rng: random.Random, n: int) -> tuple[Body, str, dict[str, str]]:
    steps = [_step(f"s{i}", rng, "exit 1" if i == 1 else "true", **({"failure": "ignore"} if i == 1 else {}))
             for i in range(n)]  # fmt: skip
    return (
        {"steps": steps},
        "Succeeded",
        {s["name"]: "failed" if i == 1 else "succeeded" for i, s in enumerate(steps)},
    )


def _early_exit(rng: random.Random, n: int) -> tuple[Body, str, dict[str, str]]:
    steps = [_step(f"s{i}", rng, "exit 78" if i == 1 else "true") for i in range(n)]
    return (
        {"steps": steps},
        "Succeeded",
        {s["name"]: "succeeded" if i <= 1 else "skipped" for i, s in enumerate(steps)},
    )


def _private(rng: random.Random, n: int) -> tuple[Body, str, dict[str, str]]:
    steps = [{**_step(f"s{i}", rng), "image": PRIVATE_IMAGE} for i in range(n)]
    return (
        {"image_pull_secrets": ["regcred"], "steps": steps},
        "Succeeded",
        {s["name"]: "succeeded" for s in steps},
    )


UNPULLABLE = "registry.example.com/team/notfound:1"  # the scripted kubelet reports it not found


def _unpullable(rng: random.Random, n: int) -> tuple[Body, str, dict[str, str]]:
    steps = [_step(f"s{i}", rng) for i in range(n - 1)]
    steps[1] = {**steps[1], "image": UNPULLABLE}
    steps.append(_step("notify", rng, when={"status": ["failure"]}))
    states = {
        s["name"]: "succeeded" if i == 0 else "failed" if i == 1 else "skipped" for i, s in enumerate(steps)
    }
    states["notify"] = "succeeded"
    return {"steps": steps}, "Failed", states


KINDS: dict[str, Callable[[random.Random, int], tuple[Body, str, dict[str, str]]]] = {
    "sequential": _sequential, "failing": _failing, "parallel": _parallel, "parallel-failing": _parallel_failing,
    "services": _services, "ignored-failure": _ignored, "early-exit": _early_exit, "private": _private,
    "unpullable": _unpullable,
}  # fmt: skip


# Builds of 3–4 Pipelines: (name, depends_on, fails, trigger.status, the phase it must end in).
BUILDS: dict[str, list[tuple[str, list[str], bool, list[str] | None, str]]] = {
    "chain": [("a", [], False, None, "Succeeded"), ("b", ["a"], False, None, "Succeeded"),
              ("c", ["b"], False, None, "Succeeded")],
    "fan-in": [("x", [], False, None, "Succeeded"), ("y", [], False, None, "Succeeded"),
               ("z", ["x", "y"], False, None, "Succeeded"), ("n", ["z"], False, ["failure"], "Skipped")],
    "failing": [("t", [], True, None, "Failed"), ("p", ["t"], False, None, "Skipped"),
                ("n", ["p"], False, ["failure"], "Succeeded"), ("d", ["p"], False, None, "Skipped")],
}  # fmt: skip


def plan_build(kind: str, rng: random.Random, prefix: str) -> list[Planned]:
    """One build's Pipelines (``BUILDS``), each with the run id it must have and what must run before it."""
    build = f"{prefix}-{kind}"
    out = []
    for name, deps, fails, trigger, phase in BUILDS[kind]:
        steps = [_step("s0", rng), _step("s1", rng, "exit 2" if fails else "true")]
        spec: Body = {"name": name, "steps": steps, "depends_on": deps}
        if trigger:
            spec["trigger"] = {"status": trigger}
        states = {"s0": "succeeded", "s1": "failed" if fails else "succeeded"}
        if phase == "Skipped":
            states = {"s0": "skipped", "s1": "skipped"}
        out.append(Planned(f"{build}-{name}", f"build-{kind}", spec, phase, states, build=build,
                           after=tuple(f"{build}-{d}" for d in deps)))  # fmt: skip
    members = {m.name: m for m in (builds.member_of(p.manifest()) for p in out)}
    runs = builds.current_runs(members)
    return [dataclasses.replace(p, run=runs[p.spec["name"]]) for p in out]


def plan_builds(count: int, rng: random.Random, prefix: str = "chaos") -> list[Planned]:
    """``count`` builds, each of ``BUILDS`` in turn, in a random creation order (a dependent may come first)."""
    out = [p for index in range(count)
           for p in plan_build(list(BUILDS)[index % len(BUILDS)], rng, f"{prefix}-b{index:02d}")]  # fmt: skip
    rng.shuffle(out)
    return out


def plan(
    count: int, rng: random.Random, prefix: str = "chaos", kinds: Sequence[str] = tuple(KINDS)
) -> list[Planned]:
    """``count`` Pipelines of 3–5 steps, each of ``kinds`` in turn."""
    out = []
    for index in range(count):
        kind = kinds[index % len(kinds)]
        spec, phase, steps = KINDS[kind](rng, rng.randint(3, 5))
        stand_ins = frozenset(s["name"] for s in spec["steps"] if s.get("image") == UNPULLABLE)
        out.append(Planned(f"{prefix}-{index:03d}-{kind}", kind, spec, phase, steps, stand_ins))
    return out


# ---- disruption ------------------------------------------------------------------------------------------


class Killer:
    """Kills a random one of the operators with SIGKILL at a random moment and starts it again at once.

    The moment is 0.5–1.5 × ``every`` seconds after the victim logged that it started: Python needs one to
    three seconds to import kopf and the Kubernetes client, and a kill during that only tests the imports.
    """

    def __init__(
        self, operators: Sequence[operating.OperatorProcess], every: float, rng: random.Random
    ) -> None:
        self.operators = operators
        self.every = every
        self.rng = rng
        self.kills = 0
        self.found_dead = 0  # operators that had died by themselves before a kill
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos-killer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=120)

    def _run(self) -> None:
        while not self._stop.is_set():
            victim = self.rng.choice(list(self.operators))
            deadline = time.monotonic() + 60
            while not serving(victim) and time.monotonic() < deadline and not self._stop.wait(0.1):
                pass
            if self._stop.wait(self.rng.uniform(0.5 * self.every, 1.5 * self.every)):
                return
            if not victim.alive():
                self.found_dead += 1
            victim.kill()
            self.kills += 1
            victim.start()


STARTED = "podline operator started"


def serving(op: operating.OperatorProcess) -> bool:
    """The operator's latest start has got as far as serving (every start before it did: see Killer)."""
    return op.alive() and op.log().count(STARTED) >= op.starts


# ---- checks --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Figures:
    runs: int = 0
    terminal: int = 0
    as_planned: int = 0
    kills: int = 0
    starts: int = 0
    duplicates: int = 0
    second_pods: int = 0
    lost_steps: int = 0
    out_of_order: int = 0  # a build's Pipeline started before a Pipeline it depends on ended
    orphans: int = 0
    tracebacks: int = 0
    found_dead: int = 0
    events_missing: int = 0  # runs without their Started or final Event
    events_repeated: int = 0  # runs with one of them recorded twice
    seconds_to_end: float = 0.0
    seconds_to_collect: float = 0.0
    problems: list[str] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        trouble = (
            self.duplicates,
            self.second_pods,
            self.lost_steps,
            self.out_of_order,
            self.orphans,
            self.tracebacks,
            self.found_dead,
            self.events_missing,
            self.events_repeated,
        )
        return self.terminal == self.as_planned == self.runs and not any(trouble)

    def report(self) -> str:
        lines = [
            f"runs                 {self.runs} (ended: {self.terminal}, exactly as planned: {self.as_planned})",
            f"operator kills       {self.kills} (SIGKILL at random moments; operator starts: {self.starts})",
            f"duplicates           {self.duplicates} (step commands or containers started twice, from the ledger)",
            f"second pods          {self.second_pods} (runs with more than one pod)",
            f"lost steps           {self.lost_steps} (commands that should have run and did not, or the reverse)",
            f"out of order         {self.out_of_order} (a build's Pipeline started before its dependencies ended)",
            f"orphans              {self.orphans} (pods and pull Secrets left after deleting every Pipeline)",
            f"tracebacks           {self.tracebacks} (in the operator logs)",
            f"died by themselves   {self.found_dead} (operators found dead before a kill)",
            f"Events lost          {self.events_missing} (runs without their Started or final Event)",
            f"Events doubled       {self.events_repeated} (runs with one of them recorded twice)",
            f"time to all ended    {self.seconds_to_end:.0f}s (and {self.seconds_to_collect:.0f}s to collect the garbage)",
        ]
        lines += [f"note: {n}" for n in self.notes]
        lines += [f"PROBLEM: {p}" for p in self.problems[:50]]
        return "\n".join(lines)


def check_outcomes(planned: Iterable[Planned], statuses: Mapping[str, Body], figures: Figures) -> None:
    for p in planned:
        status = statuses.get(p.name) or {}
        if status.get("phase") in TERMINAL:
            figures.terminal += 1
        states = {s["name"]: s["state"] for s in status.get("steps", [])}
        wrong = []
        if status.get("phase") != p.phase:
            wrong.append(f"phase {status.get('phase')} (want {p.phase})")
        if states != dict(p.steps):
            wrong.append(f"steps {states} (want {dict(p.steps)})")
        if status.get("run") != p.run or status.get("podName") != p.pod:
            wrong.append(f"run {status.get('run')} pod {status.get('podName')}")
        if wrong:
            figures.problems.append(f"{p.name}: " + "; ".join(wrong) + f" — {status.get('message')}")
        else:
            figures.as_planned += 1


def check_ledger(
    instances: Iterable[scripted_kubelet.Instance], planned: Iterable[Planned], figures: Figures
) -> None:
    """No step command ever started twice, nor any container; every step that should run ran, once."""
    instances = list(instances)
    commands = collections.Counter((i.pod, i.container) for i in instances if i.kind == "command")
    containers = collections.Counter((i.pod, i.container) for i in instances if i.kind == "container")
    for what, counts in (("command", commands), ("container", containers)):
        for (pod, container), count in counts.items():
            if count > 1:
                figures.duplicates += 1
                figures.problems.append(f"{pod}/{container}: its {what} started {count} times")
    for p in planned:
        for step, state in p.steps.items():
            count = commands[(p.pod or "", conventions.step_container(step))]
            should = state != "skipped" and step not in p.no_command
            if should != (count > 0):
                figures.lost_steps += 1
                figures.problems.append(f"{p.name}/{step}: {state}, but its command started {count} times")


def check_events(events: Iterable[Body], planned: Iterable[Planned], figures: Figures) -> None:
    """Each run has exactly one Started and one final Event, whatever was killed when, and however many
    operators saw the change (Events are named after it and recorded before the status that shows it)."""
    counts = collections.Counter((e["involvedObject"]["name"], e["reason"]) for e in events
                                 if e["involvedObject"].get("kind") == conventions.KIND)  # fmt: skip
    for p in planned:
        seen = [counts[(p.name, "Started")], counts[(p.name, p.phase)]]
        if p.phase == "Skipped":  # it never started: a Started Event would be wrong
            if seen != [0, 1]:
                figures.events_repeated += seen[0] > 0 or seen[1] > 1
                figures.events_missing += seen[1] == 0
                figures.problems.append(f"{p.name}: Events Started {seen[0]}, Skipped {seen[1]} (want 0, 1)")
            continue
        if 0 in seen or any(n > 1 for n in seen):
            figures.events_missing += 0 in seen
            figures.events_repeated += any(n > 1 for n in seen)
            figures.problems.append(f"{p.name}: Events Started {seen[0]}, {p.phase} {seen[1]}")


def check_pods(pods: Iterable[Body], planned: Iterable[Planned], figures: Figures) -> None:
    by_pipeline = collections.defaultdict(list)
    for pod in pods:
        notes = pod["metadata"].get("annotations") or {}
        by_pipeline[notes.get(conventions.ANNOTATION_PIPELINE_NAME)].append(pod["metadata"]["name"])
    for p in planned:
        names = by_pipeline.get(p.name, [])
        if names != ([p.pod] if p.pod else []):
            figures.second_pods += len(names) > 1
            figures.problems.append(f"{p.name}: pods {names}")


def check_order(
    instances: Iterable[scripted_kubelet.Instance],
    planned: Iterable[Planned],
    statuses: Mapping[str, Body],
    figures: Figures,
) -> None:
    """No build's Pipeline ran a command before every command of the Pipelines it depends on had started
    (the ledger's order), nor started before they ended (the statuses' times)."""
    planned = list(planned)
    pods = {p.name: p.pod for p in planned}
    order = [i.pod for i in instances if i.kind == "command"]
    for p in planned:
        if not p.pod or p.pod not in order:
            continue
        first = order.index(p.pod)
        for dep in p.after:
            late = [i for i, pod in enumerate(order) if pod == pods.get(dep) and i > first]
            ended = (statuses.get(dep) or {}).get("completionTime") or ""
            started = (statuses.get(p.name) or {}).get("startTime") or ""
            if late or (ended and started and started < ended):
                figures.out_of_order += 1
                figures.problems.append(f"{p.name}: started before {dep} ended ({started} < {ended})")


# ---- the engine ----------------------------------------------------------------------------------------


def wait_until_ended(
    api: kubernetes.client.ApiClient, namespace: str, names: set[str], timeout: float
) -> dict[str, Body]:
    """Every Pipeline's status, once all have ended (or when ``timeout`` passes)."""
    deadline = time.monotonic() + timeout
    statuses: dict[str, Body] = {}
    while time.monotonic() < deadline:
        try:
            items = listing(api, "pipelines", namespace)
        except Exception:  # noqa: BLE001 - the apiserver may be restarting under a disruption
            time.sleep(1.0)
            continue
        statuses = {
            i["metadata"]["name"]: i.get("status") or {} for i in items if i["metadata"]["name"] in names
        }
        if len(statuses) == len(names) and all(s.get("phase") in TERMINAL for s in statuses.values()):
            return statuses
        time.sleep(1.0)
    return statuses


def collect_garbage(api: kubernetes.client.ApiClient, cluster: apitier.ApiCluster, namespace: str,
                    timeout: float = 120.0) -> list[str]:  # fmt: skip
    """Delete every Pipeline; return what of podline's is still there after ``timeout`` (should be nothing)."""
    cluster.kubectl("delete", "pipelines.podline.dev", "--all", "-n", namespace, "--wait=false")
    deadline = time.monotonic() + timeout
    left: list[str] = []
    while time.monotonic() < deadline:
        left = [f"{kind}/{item['metadata']['name']}" for kind in ("pods", "secrets")
                for item in listing(api, kind, namespace, MANAGED)]  # fmt: skip
        if not left:
            break
        time.sleep(1.0)
    return left


def run(
    cluster: apitier.ApiCluster,
    namespace: str,
    operators: Sequence[operating.OperatorProcess],
    kubelet: scripted_kubelet.ScriptedKubelet,
    planned: Sequence[Planned],
    *,
    kill_every: float = 0.0,
    rng: random.Random,
    timeout: float,
    disrupt: Callable[[], None] | None = None,
    say: Callable[[str], None] = lambda _: None,
) -> Figures:
    """Apply ``planned``, disrupt (kills every ``kill_every`` seconds, and/or ``disrupt()`` in a thread once
    the first run is Running), wait for every run to end, check, delete everything, count orphans."""
    figures = Figures(runs=len(planned))
    api = cluster.api_client()
    starts_before = sum(op.starts for op in operators)
    logs_before = [len(op.log()) for op in operators]
    try:
        secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "regcred"},
                  "stringData": {"config.json": json.dumps(PULL_SECRET)}}  # fmt: skip
        operating.apply(cluster, namespace, secret)
        for op in operators:
            if not op.alive():
                op.start()
        killer = Killer(operators, kill_every, rng) if kill_every else None
        began = time.monotonic()
        cluster.kubectl("apply", "-n", namespace, "-f", "-",
                        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": [p.manifest() for p in planned]}))  # fmt: skip
        say(f"applied {len(planned)} Pipelines")
        if killer:
            killer.start()
        if disrupt:
            operating.wait_for(lambda: any((s.get("phase") == "Running") for s in _statuses(api, namespace)),
                               timeout=60, what="a run to be Running before the disruption")  # fmt: skip
            disrupter = threading.Thread(target=disrupt, name="chaos-disrupt", daemon=True)
            disrupter.start()
        statuses = wait_until_ended(api, namespace, {p.name for p in planned}, timeout)
        figures.seconds_to_end = time.monotonic() - began
        if killer:
            killer.stop()
            figures.kills, figures.found_dead = killer.kills, killer.found_dead
        if disrupt:
            disrupter.join(timeout=120)
        say(f"runs ended after {figures.seconds_to_end:.0f}s; checking")
        check_outcomes(planned, statuses, figures)
        check_ledger(kubelet.instances(namespace), planned, figures)
        check_order(kubelet.instances(namespace), planned, statuses, figures)
        check_pods(listing(api, "pods", namespace, MANAGED), planned, figures)
        check_events(listing(api, "events", namespace), planned, figures)
        collecting = time.monotonic()
        left = collect_garbage(api, cluster, namespace)
        figures.seconds_to_collect = time.monotonic() - collecting
        figures.orphans = len(left)
        figures.problems += [f"left after deleting every Pipeline: {name}" for name in left[:20]]
        for op, before in zip(operators, logs_before):
            if not op.alive():
                figures.found_dead += 1
                figures.problems.append(f"{op.log_path.name}: the operator is not running at the end")
            figures.tracebacks += op.log()[before:].count("Traceback")
        figures.starts = sum(op.starts for op in operators) - starts_before
        return figures
    finally:
        api.close()  # type: ignore[no-untyped-call]


def _statuses(api: kubernetes.client.ApiClient, namespace: str) -> list[Body]:
    try:
        return [i.get("status") or {} for i in listing(api, "pipelines", namespace)]
    except Exception:  # noqa: BLE001
        return []


def events_by_operator(operators: Sequence[operating.OperatorProcess]) -> list[int]:
    """How many runs each operator logged as started (it logs each run Event it decided): who drove them."""
    return [sum(1 for line in op.log().splitlines() if ": Started: run " in line) for op in operators]


# ---- the script ------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    from tests.cluster import clusters

    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__.splitlines()[0])
    parser.add_argument("--pipelines", type=int, default=200)
    parser.add_argument(
        "--kill-every",
        type=float,
        default=3.0,
        help="mean seconds from an operator's start (once serving) to its SIGKILL; 0: no kills",
    )
    parser.add_argument("--operators", type=int, default=1, help="operator processes running at once")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds for every run to end")
    args = parser.parse_args(argv)

    def say(message: str) -> None:
        print(f"[chaos {time.strftime('%H:%M:%S')}] {message}", flush=True)

    rng = random.Random(args.seed)
    say("starting a private api-tier cluster")
    cluster = clusters.start("api", owner="chaos")
    operators: list[operating.OperatorProcess] = []
    kubelet = None
    try:
        install_crd(cluster)
        namespace = cluster.new_namespace("chaos")
        kubelet = scripted_kubelet.ScriptedKubelet(cluster.api_client(), namespace=namespace)
        kubelet.start()
        operators = [operating.OperatorProcess(cluster.kubeconfig, cluster.log_dir, name=f"operator-chaos-{i + 1}")
                     for i in range(args.operators)]  # fmt: skip
        planned = plan(args.pipelines, rng)
        say(f"{args.pipelines} Pipelines ({', '.join(KINDS)}), {args.operators} operator(s), "
            f"SIGKILL every {args.kill_every}s on average")  # fmt: skip
        figures = run(cluster, namespace, operators, kubelet, planned, kill_every=args.kill_every, rng=rng,
                      timeout=args.timeout, say=say)  # fmt: skip
        if args.operators > 1:
            figures.notes.append(f"'Started' Events logged per operator: {events_by_operator(operators)}")
        print(figures.report(), flush=True)
        say(f"logs: {cluster.log_dir}")
        return 0 if figures.ok else 1
    finally:
        for op in operators:
            op.stop()
        if kubelet is not None:
            kubelet.stop()
        cluster.stop()


if __name__ == "__main__":
    sys.exit(main())
