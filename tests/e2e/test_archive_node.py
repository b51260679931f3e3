"""The archive on the node tier (docs/archive.md): a run's record and step output outlive its pod.

A Pipeline is run four times (``podline.dev/rerun``) with ``PODLINE_HISTORY_LIMIT=1``: the pods of the first
runs are pruned, and their output (masked, in the order written, stderr included) and their record (every
step's state, exit code, start and end, the digest of the image it ran) are in the archive, a directory
(``PODLINE_ARCHIVE=file://...``) and a real S3-compatible server (s3proxy, ``tests/cluster/s3proxy.py``).
"""

from __future__ import annotations

import asyncio
import json
import pathlib
import time
from collections.abc import Iterator
from typing import Any

import pytest
from podline.core import records
from podline.shell import archiving

from tests.cluster import fixtures, s3proxy
from tests.e2e import conftest, operating

SECRET = "s3cr3t-archive-canary-0123456789"


@pytest.fixture(params=["file", "s3"])
def archive(
    request: pytest.FixtureRequest, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, dict[str, str]]]:
    if request.param == "file":
        yield f"file://{tmp_path}/archive", {}
        return
    server = fixtures.s3_server()
    for name, value in server.env.items():
        monkeypatch.setenv(name, value)  # for this test's own reads of the store
    yield f"s3://{s3proxy.BUCKET}/runs", server.env
    server.stop()


def test_past_runs_are_archived_before_their_pods_are_pruned(
    node_cluster: Any, node_namespace: str, archive: tuple[str, dict[str, str]]
) -> None:
    cluster, namespace = node_cluster, node_namespace
    url, store_env = archive
    conftest.install_crd(cluster)
    op = operating.OperatorProcess(cluster.kubeconfig, cluster.log_dir, name="operator-archive", env={
        "PODLINE_RUNNER_IMAGE": cluster.registry.runner, "PODLINE_HISTORY_LIMIT": "1", "PODLINE_ARCHIVE": url,
        "PODLINE_LOG_RETENTION": "3runs", **store_env})  # fmt: skip
    busybox = cluster.registry.busybox
    spec = {
        "steps": [
            {"name": "a", "image": busybox, "commands": ["echo out-a $TOKEN", "echo err-a >&2"],
             "environment": {"TOKEN": {"from_secret": "archive-secret/token"}}},
            {"name": "b", "image": busybox, "commands": ["echo ran-b", "exit 3"], "failure": "ignore"},
        ]
    }  # fmt: skip
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "archive-secret"},
              "stringData": {"token": SECRET}}  # fmt: skip
    op.start()
    runs = []
    try:
        operating.apply(cluster, namespace, secret, operating.pipeline("kept", spec))
        for i in range(4):
            if i:
                cluster.kubectl(
                    "annotate", "--overwrite", "-n", namespace, "pipeline", "kept", f"podline.dev/rerun=r{i}"
                )
                operating.wait_for(lambda i=i: operating.status(cluster, namespace, "kept").get("run") != runs[-1],
                                   timeout=60, what=f"rerun {i} to start")  # fmt: skip
            st = operating.wait_for_phase(cluster, namespace, "kept", timeout=180, operator=op)
            assert st["phase"] == "Succeeded", st
            runs.append(st["run"])
        store = archiving.open_store(url)
        operating.wait_for(lambda: all(_record(store, namespace, r) for r in runs[1:]), timeout=120,
                           what="the last three runs in the archive")  # fmt: skip
        operating.wait_for(lambda: _pods(cluster, namespace) <= 2, timeout=120, what="old pods pruned")
        operating.wait_for(lambda: _record(store, namespace, runs[0]) is None, timeout=60,
                           what="retention (3runs) to remove the first run")  # fmt: skip
    finally:
        op.stop()
    for run in runs[1:]:
        record = _record(store, namespace, run)
        assert record is not None and record["result"] == "Succeeded", record
        a, b = record["steps"]
        assert (a["name"], a["state"], a["exitCode"]) == ("a", "succeeded", 0)
        assert (b["name"], b["state"], b["exitCode"], b["failing"]) == ("b", "failed", 3, False)
        assert a["imageDigest"].startswith("sha256:") and a["startedAt"] <= a["finishedAt"] <= b["startedAt"]
        log_a = asyncio.run(store.get(f"{namespace}/kept/{run}/step-a.log"))
        assert log_a == b"+ echo out-a $TOKEN\nout-a ******\n+ echo err-a >&2\nerr-a\n", log_a
        assert (
            asyncio.run(store.get(f"{namespace}/kept/{run}/step-b.log")) == b"+ echo ran-b\nran-b\n+ exit 3\n"
        )


def _record(
    store: archiving.Store, namespace: str, run: str, pipeline: str = "kept"
) -> dict[str, Any] | None:
    data = asyncio.run(store.get(f"{namespace}/{pipeline}/{run}/record.json"))
    return None if data is None else dict(json.loads(data))


def _pods(cluster: Any, namespace: str) -> int:
    return len(cluster.kubectl("get", "pods", "-n", namespace, "-o", "name").stdout.split())


def test_containerd_restarted_mid_step_every_line_or_a_marked_gap(
    node_cluster: Any, node_namespace: str, tmp_path: pathlib.Path
) -> None:
    """containerd restarts while a step writes (issue 18: the node's log pipeline then drops lines). The
    archive holds every line the step wrote, or says how many bytes the pipeline lost (the entrypoint counts
    what it relayed, ``outputBytes``): a loss is never silent."""
    cluster, namespace = node_cluster, node_namespace
    conftest.install_crd(cluster)
    url = f"file://{tmp_path}/archive"
    op = operating.OperatorProcess(cluster.kubeconfig, cluster.log_dir, name="operator-archive-restart", env={
        "PODLINE_RUNNER_IMAGE": cluster.registry.runner, "PODLINE_ARCHIVE": url})  # fmt: skip
    lines = 60
    spec = {"steps": [
        {"name": "a", "image": cluster.registry.busybox,
         "commands": [f"i=0; while [ $i -lt {lines} ]; do echo line-$i; i=$((i+1)); sleep 0.1; done"]},
        {"name": "b", "image": cluster.registry.busybox, "commands": ["echo ran-b"]},
    ]}  # fmt: skip
    op.start()
    try:
        operating.apply(cluster, namespace, operating.pipeline("restarted", spec))
        operating.wait_for(lambda: any(s.get("name") == "a" and s.get("state") == "running"
                                       for s in operating.status(cluster, namespace, "restarted").get("steps", [])),
                           timeout=120, what="step a to run")  # fmt: skip
        cluster.components["containerd"].restart()
        st = operating.wait_for_phase(cluster, namespace, "restarted", timeout=240, operator=op)
        store = archiving.open_store(url)
        operating.wait_for(lambda: _record(store, namespace, st["run"], "restarted"), timeout=120,
                           what="the run in the archive")  # fmt: skip
    finally:
        op.stop()
    assert st["phase"] == "Succeeded", st
    record = _record(store, namespace, st["run"], "restarted")
    assert record is not None
    a = record["steps"][0]
    log = asyncio.run(store.get(f"{namespace}/restarted/{st['run']}/step-a.log")) or b""
    every = all(f"line-{i}\n".encode() in log for i in range(lines))
    assert a["outputBytes"] and (every or b"the node's log pipeline lost them" in log), (a, log)


def _step_running(cluster: Any, namespace: str, name: str, step: str) -> bool:
    steps = operating.status(cluster, namespace, name).get("steps", [])
    return any(s.get("name") == step and s.get("state") == "running" for s in steps)


def _gone(cluster: Any, namespace: str, kind: str, name: str) -> bool:
    return cluster.kubectl("get", "-n", namespace, kind, name, check=False).returncode != 0


def test_a_pipeline_deleted_mid_run_or_right_after_is_archived_all_the_same(
    node_cluster: Any, node_namespace: str, tmp_path: pathlib.Path
) -> None:
    """Issue 18: nothing lost on deletion. The run pod carries the archive's finalizer: a Pipeline deleted
    right after its run ended (background propagation, as kubectl and Flux delete), or mid-run in the
    background or in the foreground (as Argo CD deletes: the pod goes first) still has its run archived, and
    then goes. Mid-run, the kubelet removes the deleted pod's containers, logs and all, as soon as they have
    stopped (``records.log_gone``): the step that had ended was archived as it ended, the running one up to
    its deletion (with a note), and the record says ``Deleted``."""
    cluster, namespace = node_cluster, node_namespace
    conftest.install_crd(cluster)
    url = f"file://{tmp_path}/archive"
    op = operating.OperatorProcess(cluster.kubeconfig, cluster.log_dir, name="operator-archive-delete", env={
        "PODLINE_RUNNER_IMAGE": cluster.registry.runner, "PODLINE_ARCHIVE": url})  # fmt: skip
    busybox = cluster.registry.busybox
    quick = {"steps": [{"name": "a", "image": busybox, "commands": ["echo done-a"]},
                       {"name": "b", "image": busybox, "commands": ["echo done-b"]}]}  # fmt: skip
    slow = {"steps": [{"name": "a", "image": busybox, "commands": ["echo done-a"]},
                      {"name": "b", "image": busybox, "commands": ["echo began-b", "sleep 300", "echo never-b"]}]}  # fmt: skip
    op.start()
    try:
        operating.apply(cluster, namespace, operating.pipeline("ended", quick))
        operating.wait_for(lambda: _pods_of(cluster, namespace, "ended"), timeout=60, what="the run's pod")
        op.kill()  # the operator is away when the run ends and its Pipeline is deleted
        [pod] = _pods_of(cluster, namespace, "ended")
        operating.wait_for(lambda: operating.get(cluster, namespace, "pod", pod.split("/")[1])["status"]["phase"]
                           == "Succeeded", timeout=180, what="the run to end")  # fmt: skip
        runs = {
            "ended": operating.status(cluster, namespace, "ended").get("run")
            or _run_of(cluster, namespace, pod)
        }
        cluster.kubectl("delete", "-n", namespace, "pipeline", "ended", "--wait=false")  # background
        operating.wait_for(lambda: _gone(cluster, namespace, "pipelines.podline.dev", "ended"), timeout=60,
                           what="the Pipeline gone")  # fmt: skip
        pod_name = pod.split("/")[1]
        operating.wait_for(lambda: operating.get(cluster, namespace, "pod", pod_name)["metadata"].get("deletionTimestamp"),
                           timeout=90, what="the garbage collector to delete the pod")  # fmt: skip
        time.sleep(2)  # the kubelet has had time to act on it: the finalizer keeps it all the same
        held = operating.get(cluster, namespace, "pod", pod_name)["metadata"]
        assert held["finalizers"] == ["podline.dev/archive"], held
        op.start()
        operating.apply(
            cluster, namespace, operating.pipeline("mid-bg", slow), operating.pipeline("mid-fg", slow)
        )
        for name, cascade in (("mid-bg", "background"), ("mid-fg", "foreground")):
            operating.wait_for(lambda name=name: _step_running(cluster, namespace, name, "b"), timeout=180,
                               what=f"{name}: step b to run")  # fmt: skip
            runs[name] = operating.status(cluster, namespace, name)["run"]
            time.sleep(2)  # b has written its first lines
            cluster.kubectl(
                "delete", "-n", namespace, "pipeline", name, f"--cascade={cascade}", "--wait=false"
            )
        store = archiving.open_store(url)
        for name, run in runs.items():
            operating.wait_for(lambda name=name, run=run: (_record(store, namespace, run, name) or {}).get("result")
                               not in (None, "Running"), timeout=120, what=f"{name}: the final record")  # fmt: skip
            operating.wait_for(lambda name=name: _gone(cluster, namespace, "pipelines.podline.dev", name)
                               and not _pods_of(cluster, namespace, name), timeout=120,
                               what=f"{name}: the Pipeline and its pod gone")  # fmt: skip
    finally:
        op.stop()
    began = b"+ echo began-b\nbegan-b\n+ sleep 300\n"
    for name, run in runs.items():
        record = _record(store, namespace, run, name)
        assert record is not None
        log_a = asyncio.run(store.get(f"{namespace}/{name}/{run}/step-a.log"))
        log_b = asyncio.run(store.get(f"{namespace}/{name}/{run}/step-b.log")) or b""
        assert log_a == b"+ echo done-a\ndone-a\n", (name, log_a)
        if name == "ended":
            assert record["result"] == "Succeeded" and log_b == b"+ echo done-b\ndone-b\n", (record, log_b)
            continue
        assert record["result"] == "Deleted", (name, record)
        # read while it was being stopped (the kubelet then removed it), or read whole once it had stopped
        assert log_b in (began + records.partial_note(), began), (name, log_b)
        print(f"{name}: step b archived {'up to its deletion' if log_b != began else 'whole'}")


def _run_of(cluster: Any, namespace: str, pod: str) -> str:
    labels = operating.get(cluster, namespace, "pod", pod.split("/")[1])["metadata"]["labels"]
    return str(labels["podline.dev/run"])


def _pods_of(cluster: Any, namespace: str, pipeline: str) -> list[str]:
    out = cluster.kubectl(
        "get", "pods", "-n", namespace, "-l", f"podline.dev/pipeline={pipeline}", "-o", "name"
    )
    return out.stdout.split()


def test_no_line_is_lost_with_the_operator_killed_and_restarted_mid_run(
    node_cluster: Any, node_namespace: str, tmp_path: pathlib.Path
) -> None:
    """The count of lost lines (issue 18), on the node tier: the api tier's scripted kubelet writes statuses,
    not logs, and the apiserver serves ``pods/log`` from a kubelet only. Three steps write numbered lines
    while the operator is SIGKILLed and started again twice; every line of every step is in the archive."""
    cluster, namespace = node_cluster, node_namespace
    conftest.install_crd(cluster)
    url = f"file://{tmp_path}/archive"
    op = operating.OperatorProcess(cluster.kubeconfig, cluster.log_dir, name="operator-archive-kills", env={
        "PODLINE_RUNNER_IMAGE": cluster.registry.runner, "PODLINE_ARCHIVE": url})  # fmt: skip
    lines, names = 150, ("one", "two", "three")
    loop = f"i=0; while [ $i -lt {lines} ]; do echo $STEP-line-$i; i=$((i+1)); [ $((i % 10)) = 0 ] && sleep 0.2; done"
    spec = {"steps": [{"name": n, "image": cluster.registry.busybox, "environment": {"STEP": n},
                       "commands": [loop]} for n in names]}  # fmt: skip
    op.start()
    try:
        operating.apply(cluster, namespace, operating.pipeline("counted", spec))
        for step in names[:2]:
            operating.wait_for(lambda step=step: _step_running(cluster, namespace, "counted", step), timeout=180,
                               what=f"step {step} to run", interval=0.1)  # fmt: skip
            op.restart()
        st = operating.wait_for_phase(cluster, namespace, "counted", timeout=240, operator=op)
        store = archiving.open_store(url)
        operating.wait_for(lambda: (_record(store, namespace, st["run"], "counted") or {}).get("result")
                           not in (None, "Running"), timeout=120, what="the final record")  # fmt: skip
    finally:
        op.stop()
    assert st["phase"] == "Succeeded", st
    lost = 0
    for n in names:
        log = asyncio.run(store.get(f"{namespace}/counted/{st['run']}/step-{n}.log")) or b""
        lost += sum(1 for i in range(lines) if f"\n{n}-line-{i}\n".encode() not in log)
    print(f"lines written: {lines * len(names)}, lost: {lost}, operator starts: {op.starts}")
    assert lost == 0 and op.starts == 3


def test_a_store_down_keeps_the_pods_until_it_is_back_and_loses_no_line(
    node_cluster: Any, node_namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 18, "the store down or slow": three runs end while the S3 server (a real s3proxy) is down. The
    archiver tries again with back-off; meanwhile no pod is pruned beyond ``PODLINE_HISTORY_LIMIT=1`` (none is
    archived). Once the server is back every run is archived, every line of every step is there, and only then
    are the old pods pruned."""
    cluster, namespace = node_cluster, node_namespace
    server = fixtures.s3_server()
    for name, value in server.env.items():
        monkeypatch.setenv(name, value)  # for this test's own reads of the store
    conftest.install_crd(cluster)
    op = operating.OperatorProcess(cluster.kubeconfig, cluster.log_dir, name="operator-archive-store-down", env={
        "PODLINE_RUNNER_IMAGE": cluster.registry.runner, "PODLINE_HISTORY_LIMIT": "1",
        "PODLINE_ARCHIVE": f"s3://{s3proxy.BUCKET}/down", **server.env})  # fmt: skip
    lines = 40
    loop = f"i=0; while [ $i -lt {lines} ]; do echo $STEP-line-$i; i=$((i+1)); done"
    spec = {"steps": [{"name": n, "image": cluster.registry.busybox, "environment": {"STEP": n},
                       "commands": [loop]} for n in ("one", "two")]}  # fmt: skip
    op.start()
    runs: list[str] = []
    try:
        server.pause()  # the store down before the first step ends
        operating.apply(cluster, namespace, operating.pipeline("waits", spec))
        for i in range(3):
            if i:
                cluster.kubectl("annotate", "--overwrite", "-n", namespace, "pipeline", "waits",
                                f"podline.dev/rerun=r{i}")  # fmt: skip
                operating.wait_for(lambda: operating.status(cluster, namespace, "waits").get("run") != runs[-1],
                                   timeout=60, what=f"rerun {i} to start")  # fmt: skip
            st = operating.wait_for_phase(cluster, namespace, "waits", timeout=180, operator=op)
            assert st["phase"] == "Succeeded", st
            runs.append(st["run"])
        time.sleep(3)  # the scheduler has had passes to prune: it must keep every unarchived pod
        kept = _pods_of(cluster, namespace, "waits")
        assert len(kept) == 3, kept
        failures = op.log_path.read_text(errors="replace").count("archiving " + namespace + "/waits-")
        assert failures >= 1, "the archiver tried while the store was down"
        server.start()  # back, with what it held
        store = archiving.open_store(f"s3://{s3proxy.BUCKET}/down")
        operating.wait_for(lambda: all((_record(store, namespace, r, "waits") or {}).get("result") == "Succeeded"
                                       for r in runs), timeout=180, what="every run archived")  # fmt: skip
        operating.wait_for(lambda: len(_pods_of(cluster, namespace, "waits")) <= 2, timeout=120,
                           what="the old pods pruned once archived")  # fmt: skip
        lost = 0
        for run in runs:
            for n in ("one", "two"):
                log = asyncio.run(store.get(f"{namespace}/waits/{run}/step-{n}.log")) or b""
                lost += sum(1 for i in range(lines) if f"\n{n}-line-{i}\n".encode() not in log)
    finally:
        op.stop()
        server.stop()
    print(f"runs: {len(runs)}, lines lost: {lost}, archive failures while down: {failures}")
    assert lost == 0
