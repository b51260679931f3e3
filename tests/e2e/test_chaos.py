"""Chaos at CI size (api tier, scripted kubelet): the operator SIGKILLed at random moments, two operators at
once, the apiserver restarted mid-run, etcd away for a while, the operator stopped for a whole run.

Each test runs the engine of ``tests/chaos.py`` (``python -m tests.chaos`` is the full-size version, with
the figures) on a private api-tier cluster of this module: on the shared one, another test's operator
(admin, all namespaces) would do the work for the one being killed and hide what this should show. Every
test requires the same: every run ended exactly as planned (phase and each step's state), no step command
and no container started twice and none lost (the scripted kubelet's ledger: it plays the in-pod entrypoint
too, so it sees each command start), one pod per run, one Started and one final Event per run, and nothing
of podline's left once every Pipeline is deleted.
"""

from __future__ import annotations

import datetime
import functools
import json
import random
import time
from collections.abc import Callable, Iterator

import pytest
from podline.core import compiling, policies, scheduling

from tests import chaos
from tests.cluster import apitier, scripted_kubelet
from tests.e2e import conftest as e2e_conftest
from tests.e2e import operating

pytestmark = pytest.mark.api


@pytest.fixture(scope="module")
def cluster(
    api_cluster: apitier.ApiCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[apitier.ApiCluster]:
    """An api-tier cluster of this module alone (the shared one's binaries)."""
    yield from e2e_conftest.private_cluster(api_cluster, tmp_path_factory, "chaos")


def run(
    cluster: apitier.ApiCluster,
    name: str,
    count: int,
    *,
    operators: int = 1,
    kill_every: float = 0.0,
    disrupt: Callable[[str], None] | None = None,
    seed: int = 1,
    builds: int = 0,
) -> tuple[chaos.Figures, list[operating.OperatorProcess]]:
    """``disrupt(namespace)`` runs in a thread once the first run is Running."""
    namespace = cluster.new_namespace(name)
    kubelet = scripted_kubelet.ScriptedKubelet(cluster.api_client(), namespace=namespace)
    processes = [
        operating.OperatorProcess(cluster.kubeconfig, cluster.log_dir, name=f"operator-{name}-{i + 1}")
        for i in range(operators)
    ]
    rng = random.Random(seed)
    kubelet.start()
    try:
        planned = chaos.plan(count, rng, prefix=name) + chaos.plan_builds(builds, rng, prefix=name)
        figures = chaos.run(cluster, namespace, processes, kubelet, planned,
                            kill_every=kill_every, rng=rng, timeout=150,
                            disrupt=functools.partial(disrupt, namespace) if disrupt else None)  # fmt: skip
    finally:
        for op in processes:
            op.stop()
        kubelet.stop()
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
    if operators > 1:
        figures.notes.append(f"runs each operator logged as started: {chaos.events_by_operator(processes)}")
    print(f"{name}:\n{figures.report()}")  # shown with -s, or when the test fails
    return figures, processes


def explain(figures: chaos.Figures, operators: list[operating.OperatorProcess]) -> str:
    tails = "\n".join(f"--- {op.log_path} (tail)\n{op.log()[-2500:]}" for op in operators)
    return f"{figures.report()}\n{tails}"


def test_operator_killed_at_random_moments(cluster: apitier.ApiCluster) -> None:
    figures, operators = run(cluster, "kill", 20, kill_every=2.0)
    assert figures.ok, explain(figures, operators)
    assert figures.kills >= 2, f"too few kills to prove anything:\n{figures.report()}"
    assert figures.starts == figures.kills + 1


def test_builds_with_the_operator_killed_at_random_moments(cluster: apitier.ApiCluster) -> None:
    """Builds of 3–4 dependent Pipelines (a chain, a fan-in with a failure notifier that must skip, a failing
    test whose dependents skip but for a failure notifier), created in random order: none runs twice, none
    before its dependencies ended, none is lost, each ends as Drone would end it."""
    figures, operators = run(cluster, "builds", 4, kill_every=2.0, seed=4, builds=6)
    assert figures.ok, explain(figures, operators)
    assert figures.kills >= 2, f"too few kills to prove anything:\n{figures.report()}"


def test_two_operators_at_once_drive_no_run_twice(cluster: apitier.ApiCluster) -> None:
    """No leader election: names are deterministic (a second create gets 409) and every pod patch that starts
    or stops steps carries the pod's resourceVersion (a stale replica gets 409). One of the two is also
    killed now and then, so each must pick up what the other left half done."""
    figures, operators = run(cluster, "pair", 16, operators=2, kill_every=3.0, seed=2)
    assert figures.ok, explain(figures, operators)
    assert all(op.starts >= 1 for op in operators) and figures.starts == figures.kills + 2


class Disruption:
    """Does something to the cluster, and notes how many runs had not ended when it began."""

    def __init__(self, cluster: apitier.ApiCluster, action: Callable[[], None]) -> None:
        self.cluster = cluster
        self.action = action
        self.unfinished = -1

    def __call__(self, namespace: str) -> None:
        api = self.cluster.api_client()
        try:
            statuses = [i.get("status") or {} for i in chaos.listing(api, "pipelines", namespace)]
        finally:
            api.close()  # type: ignore[no-untyped-call]
        self.unfinished = sum(1 for s in statuses if s.get("phase") not in chaos.TERMINAL)
        began = time.monotonic()
        self.action()
        print(f"disruption: {self.unfinished} runs unfinished; it took {time.monotonic() - began:.1f}s")


def test_apiserver_restarted_mid_run(cluster: apitier.ApiCluster) -> None:
    restart = Disruption(cluster, cluster.restart_apiserver)
    figures, operators = run(cluster, "apiserver", 10, disrupt=restart, seed=3)
    assert figures.ok, explain(figures, operators)
    assert restart.unfinished > 0, "the apiserver was restarted while runs were going on"
    assert [op.starts for op in operators] == [1], "the operator went on without a restart"


def test_etcd_unavailable_for_a_while(cluster: apitier.ApiCluster) -> None:
    def outage() -> None:
        cluster.stop_etcd()
        time.sleep(8)
        cluster.start_etcd()

    etcd = Disruption(cluster, outage)
    figures, operators = run(cluster, "etcd", 10, disrupt=etcd, seed=4)
    assert figures.ok, explain(figures, operators)
    assert etcd.unfinished > 0, "etcd went away while runs were going on"
    assert [op.starts for op in operators] == [1], "the operator recovered by itself, without a restart"


def test_a_run_first_seen_over_still_records_that_it_started(cluster: apitier.ApiCluster) -> None:
    """An operator that died right after creating a run's pod, and is back only when the run is over, still
    records that the run started (and ended): once each. The crash is made exact by creating, with the
    operator stopped, the very pod its first decision creates."""
    namespace = cluster.new_namespace("seen-over")
    kubelet = scripted_kubelet.ScriptedKubelet(cluster.api_client(), namespace=namespace)
    op = operating.OperatorProcess(cluster.kubeconfig, cluster.log_dir, name="operator-seen-over")
    kubelet.start()
    try:
        operating.apply(cluster, namespace, operating.pipeline(
            "quick", {"steps": [{"name": "only", "image": "busybox:1.36", "commands": ["true"]}]}))  # fmt: skip
        body = operating.get(cluster, namespace, "pipelines.podline.dev", "quick")
        meta = body["metadata"]
        context = compiling.RunContext(namespace=namespace, pipeline="quick", uid=meta["uid"],
                                       generation=int(meta["generation"]))  # fmt: skip
        plan = compiling.compile_spec(body["spec"], context, policies.Policy())
        first = scheduling.decide(scheduling.Snapshot(plan=plan, pod=None, now=datetime.datetime.now(datetime.UTC),
                                                      generation=context.generation, run=context.run))  # fmt: skip
        [pod] = [m for m in first.create if m["kind"] == "Pod"]
        cluster.kubectl("create", "-f", "-", input=json.dumps(pod))
        operating.wait_for(
            lambda: operating.get(cluster, namespace, "pod", pod["metadata"]["name"])["status"].get("phase")
            == "Succeeded",
            timeout=60, what="the run to end while the operator is away",
        )  # fmt: skip
        op.start()
        status = operating.wait_for_phase(cluster, namespace, "quick", operator=op)
        assert status["phase"] == "Succeeded", status
        events = json.loads(cluster.kubectl("get", "events", "-n", namespace, "-o", "json").stdout)["items"]
        reasons = sorted(e["reason"] for e in events if e["involvedObject"]["name"] == "quick")
        assert reasons == ["Started", "Succeeded"], reasons
    finally:
        op.stop()
        kubelet.stop()
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def test_runs_go_on_while_the_operator_is_stopped_and_their_status_is_written_once_it_is_back(
    cluster: apitier.ApiCluster,
) -> None:
    """The steps sequence themselves in the pod: an operator stopped (SIGKILL) as soon as it has created the
    pods, and started again only once every step has ended in them, finds each run over and writes its
    status then — exactly as planned, each command run once, one Started and one final Event. A run whose
    timeout passes meanwhile is ended by the kubelet (the pod's activeDeadlineSeconds) and recorded as
    timed out; a run with services waits, its steps done, for the operator to stop its pod."""
    namespace = cluster.new_namespace("away")
    kubelet = scripted_kubelet.ScriptedKubelet(cluster.api_client(), namespace=namespace)
    op = operating.OperatorProcess(cluster.kubeconfig, cluster.log_dir, name="operator-away")
    rng = random.Random(5)
    kinds = [
        k for k in chaos.KINDS if k != "unpullable"
    ]  # a stand-in is the operator's to give: not while away
    planned = chaos.plan(len(kinds), rng, prefix="away", kinds=kinds)
    slow = {"steps": [{"name": "first", "image": chaos.BUSYBOX, "commands": ["true"]},
                      {"name": "wait", "image": chaos.BUSYBOX, "commands": ["sleep 600"]},
                      {"name": "never", "image": chaos.BUSYBOX, "commands": ["true"]}]}  # fmt: skip
    timed_out = chaos.Planned("away-timeout", "timeout", slow, "Failed",
                              {"first": "succeeded", "wait": "failed", "never": "skipped"})  # fmt: skip
    api = cluster.api_client()
    kubelet.start()
    try:
        secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "regcred"},
                  "stringData": {"config.json": json.dumps(chaos.PULL_SECRET)}}  # fmt: skip
        operating.apply(cluster, namespace, secret)
        op.start()
        manifests = [p.manifest() for p in planned]
        manifests.append(operating.pipeline(timed_out.name, slow, {"podline.dev/timeout": "4s"}))
        cluster.kubectl("apply", "-n", namespace, "-f", "-",
                        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": manifests}))  # fmt: skip
        every = [*planned, timed_out]
        names = {f"{p.name}-g1" for p in every}
        operating.wait_for(lambda: names <= {p["metadata"]["name"] for p in chaos.listing(api, "pods", namespace)},
                           timeout=60, what="every run's pod to be created")  # fmt: skip
        op.kill()
        away = statuses_of(api, namespace)

        def steps_over(pod: dict[str, object]) -> bool:
            found = (pod.get("status") or {}).get("containerStatuses") or []  # type: ignore[attr-defined]
            return bool(found) and all(
                "terminated" in c["state"] for c in found if c["name"].startswith("step-")
            )

        operating.wait_for(lambda: all(steps_over(p) for p in chaos.listing(api, "pods", namespace)),
                           timeout=90, what="every step to end in its pod, with the operator away")  # fmt: skip
        pods = {p["metadata"]["name"]: p for p in chaos.listing(api, "pods", namespace)}
        assert pods["away-timeout-g1"]["status"].get("reason") == "DeadlineExceeded", (
            "the kubelet kept the timeout"
        )
        for p in planned:  # every pod without services ended by itself; the others run their services on
            phase = pods[f"{p.name}-g1"]["status"]["phase"]
            wanted = ("Running",) if p.kind == "services" else ("Succeeded", "Failed")
            assert phase in wanted, (p.name, phase)
        unchanged = statuses_of(api, namespace)
        assert unchanged == away, "nothing wrote the runs' status while the operator was away"
        assert all(s.get("phase") not in chaos.TERMINAL for s in unchanged.values()), unchanged

        op.start()
        figures = chaos.Figures(runs=len(every))
        statuses = chaos.wait_until_ended(api, namespace, {p.name for p in every}, timeout=90)
        chaos.check_outcomes(every, statuses, figures)
        chaos.check_ledger(kubelet.instances(namespace), every, figures)
        chaos.check_pods(chaos.listing(api, "pods", namespace, chaos.MANAGED), every, figures)
        chaos.check_events(chaos.listing(api, "events", namespace), every, figures)
        figures.tracebacks = op.log().count("Traceback")
        assert figures.ok, explain(figures, [op])
        assert statuses[timed_out.name]["reason"] == "Timeout", statuses[timed_out.name]
        services = [p for p in planned if p.kind == "services"]
        assert services and all(
            operating.get(cluster, namespace, "pod", f"{p.name}-g1")["spec"]["activeDeadlineSeconds"] == 1
            for p in services
        ), "once back, the operator stopped the pods whose services still ran"
    finally:
        op.stop()
        kubelet.stop()
        api.close()  # type: ignore[no-untyped-call]
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def statuses_of(api: object, namespace: str) -> dict[str, dict[str, object]]:
    return {i["metadata"]["name"]: i.get("status") or {} for i in chaos.listing(api, "pipelines", namespace)}  # type: ignore[arg-type]
