"""The archive's stores (``shell.archiving``): a directory and a real S3-compatible server (s3proxy, run here
from Maven Central; ``tests/cluster/s3proxy.py``), through the same obstore calls the operator makes.
Retention and a deleted Pipeline's runs act on either store the same way."""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
from collections.abc import Iterator
from typing import Any

import pytest
from podline.core import records
from podline.shell import archiving, caches

from tests.cluster import fixtures, s3proxy

DAY_MS = 86400 * 1000


@pytest.fixture(scope="module")
def s3() -> Iterator[s3proxy.S3Proxy]:
    server = fixtures.s3_server()
    yield server
    server.stop()


@pytest.fixture(params=["file", "s3"])
def store(
    request: pytest.FixtureRequest, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> archiving.Store:
    if request.param == "file":
        made = archiving.open_store(f"file://{tmp_path}/archive")
        FILES[id(made)] = tmp_path / "archive"
        return made
    server: s3proxy.S3Proxy = request.getfixturevalue("s3")
    for name, value in server.env.items():
        monkeypatch.setenv(name, value)
    made = archiving.open_store(f"s3://{s3proxy.BUCKET}/{tmp_path.name}")
    FILES[id(made)] = server.blobs / s3proxy.BUCKET / tmp_path.name  # s3proxy's filesystem blob store
    return made


FILES: dict[int, pathlib.Path] = {}  # a store → the directory its objects are files in (to age them)


def age(store: archiving.Store, key: str, modified_ms: int) -> None:
    """Sets an object's last-modified time, as both stores report it (the file's mtime; s3proxy's too)."""
    os.utime(FILES[id(store)] / key, (modified_ms / 1000, modified_ms / 1000))


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_put_get_list_delete(store: archiving.Store) -> None:
    run(store.put("ci/app/1/step-a.log", b"+ echo a\na\n"))
    run(store.put("ci/app/1/record.json", b"{}"))
    run(store.put("ci/app-two/1/record.json", b"{}"))
    assert run(store.get("ci/app/1/step-a.log")) == b"+ echo a\na\n"
    assert run(store.get("ci/app/9/record.json")) is None
    assert run(store.keys("ci/app/")) == ["ci/app/1/record.json", "ci/app/1/step-a.log"]
    run(store.delete(["ci/app/1/step-a.log"]))
    assert run(store.keys("ci/app/")) == ["ci/app/1/record.json"]


def test_a_large_log_round_trips(store: archiving.Store) -> None:
    data = b"".join(b"line %d \xe2\x9c\x93\n" % i for i in range(200_000))  # ~3 MB, UTF-8
    run(store.put("ci/big/1/step-a.log", data))
    assert run(store.get("ci/big/1/step-a.log")) == data


def archiver(store: archiving.Store, retention: records.Retention, now_ms: int) -> archiving.Archiver:
    from datetime import UTC, datetime

    clock = lambda: datetime.fromtimestamp(now_ms / 1000, UTC)
    return archiving.Archiver(None, caches.Caches(), store, log_limit_bytes=1024, retention=retention,  # type: ignore[arg-type]
                              clock=clock)  # fmt: skip


def archive_runs(store: archiving.Store, finished_days: dict[str, int], pipeline: str = "app") -> None:
    """Runs whose final record was written on these days (retention reads the store's listing only)."""
    for run_id, day in finished_days.items():
        record = {"run": run_id, "finishedAt": day * DAY_MS, "steps": []}
        run(store.put(f"ci/{pipeline}/{run_id}/record.json", json.dumps(record).encode()))
        run(store.put(f"ci/{pipeline}/{run_id}/step-a.log", b"out\n"))
        age(store, f"ci/{pipeline}/{run_id}/record.json", day * DAY_MS)


def test_retention_removes_whole_runs(store: archiving.Store) -> None:
    archive_runs(store, {"1": 10, "2": 80, "3": 95, "4": 99})
    a = archiver(store, records.parse_retention("30d,2runs"), now_ms=100 * DAY_MS)
    run(a.prune("ci", "app"))
    assert sorted(r["run"] for r in run(a.runs("ci", "app"))) == ["3", "4"]
    assert run(store.keys("ci/app/1/")) == [] and run(store.keys("ci/app/2/")) == []
    assert run(store.keys("ci/app/4/")) == ["ci/app/4/record.json", "ci/app/4/step-a.log"]


def test_the_sweep_applies_retention_to_every_pipeline_in_the_archive(store: archiving.Store) -> None:
    """Also Pipelines that no longer run (or were deleted, with PODLINE_ARCHIVE_ON_DELETE=keep): ``prune``
    only sees a Pipeline whose run was just archived; the sweep, at the archiver's first pass and hourly,
    sees them all."""
    archive_runs(store, {"1": 10, "2": 95})
    archive_runs(store, {"1": 20, "2": 30, "3": 99}, pipeline="idle")
    a = archiver(store, records.parse_retention("30d"), now_ms=100 * DAY_MS)
    run(a.pass_once())  # no pod to archive: the first pass sweeps
    assert run(store.keys("ci/")) == [
        "ci/app/2/record.json",
        "ci/app/2/step-a.log",
        "ci/idle/3/record.json",
        "ci/idle/3/step-a.log",
    ]
    archive_runs(store, {"4": 10}, pipeline="idle")
    run(a.pass_once())
    assert run(store.keys("ci/idle/4/")) != [], "the next sweep is an hour later (SWEEP_SECONDS)"


def test_no_retention_keeps_everything(store: archiving.Store) -> None:
    archive_runs(store, {"1": 1, "2": 2})
    a = archiver(store, records.Retention(), now_ms=1000 * DAY_MS)
    run(a.prune("ci", "app"))
    assert len(run(a.runs("ci", "app"))) == 2


def test_a_deleted_pipelines_runs_can_go_with_it(store: archiving.Store) -> None:
    archive_runs(store, {"1": 1, "2": 2})
    run(store.put("ci/application/1/record.json", b"{}"))  # a name that starts alike is not touched
    run(archiver(store, records.Retention(), now_ms=0).forget_pipeline("ci", "app"))
    assert run(store.keys("ci/app/")) == []
    assert run(store.keys("ci/application/")) == ["ci/application/1/record.json"]


def test_a_wrong_credential_fails_without_showing_it(
    s3: s3proxy.S3Proxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "wrong-" + s3.credential
    for name, value in {**s3.env, "AWS_SECRET_ACCESS_KEY": wrong}.items():
        monkeypatch.setenv(name, value)
    store = archiving.open_store(f"s3://{s3proxy.BUCKET}/denied")
    with pytest.raises(Exception) as caught:
        run(store.put("ci/app/1/record.json", b"{}"))
    said = archiving.describe_error(caught.value)
    assert wrong not in said and s3.credential not in said and wrong not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "why"),
    [("s3://key:secret@bucket/x", "credentials do not belong"), ("file://relative/dir", "absolute path"),
     ("s3:///x", "no bucket"), ("gs://bucket", "file:///path or s3://")],
)  # fmt: skip
def test_bad_store_urls_say_why(url: str, why: str) -> None:
    with pytest.raises(ValueError, match=why) as caught:
        archiving.open_store(url)
    assert "secret" not in str(caught.value).replace("credentials", "")


def test_podline_logs_and_get_read_a_past_run_from_the_archive(
    store: archiving.Store, capsys: pytest.CaptureFixture[str]
) -> None:
    from podline import pastruns, viewing

    record = {"run": "3", "result": "Failed", "startedAt": 1_000, "finishedAt": 66_000, "steps": [
        {"name": "a", "container": "step-a", "state": "succeeded", "exitCode": 0, "reason": None},
        {"name": "b", "container": "step-b", "state": "failed", "exitCode": 2, "reason": None}]}  # fmt: skip
    run(store.put("ci/app/3/record.json", json.dumps(record).encode()))
    run(store.put("ci/app/3/step-a.log", b"+ echo a\na\n"))
    run(store.put("ci/app/3/step-b.log", b"no newline at the end"))
    past = pastruns.StoreRuns(store)
    assert viewing.archived_logs(past, "ci", "app", "3") == 1
    assert capsys.readouterr().out == (
        "==> a (succeeded, exit 0)\n+ echo a\na\n==> b (failed, exit 2)\nno newline at the end\n"
        "==> run 3: Failed (archived)\n"
    )
    with pytest.raises(SystemExit, match='run "9" of ci/app is not in the archive'):
        viewing.archived_logs(past, "ci", "app", "9")
    assert viewing.past_runs(
        [record, {"run": "4", "result": "Succeeded", "startedAt": 70_000, "finishedAt": 72_500}]
    ) == [
        "  past run 4              Succeeded        2s  ended 1970-01-01T00:01:12+00:00",
        "  past run 3              Failed        1m05s  ended 1970-01-01T00:01:06+00:00",
    ]
