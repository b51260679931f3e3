"""What the CLI prints for people: `podline get`'s durations, and output into a pipe that closes early
(`podline logs demo | head`) ending quietly. The node tier runs `podline logs | head` for real
(tests/e2e/test_chart_node.py)."""

from __future__ import annotations

import datetime
import subprocess
import sys
from pathlib import Path

import pytest
from podline import viewing

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime.datetime(2026, 12, 1, 10, 0, 0, tzinfo=datetime.UTC)


@pytest.mark.parametrize(("seconds", "shown"), [
    (0, "0s"), (0.9, "0s"), (42, "42s"), (59, "59s"), (60, "1m00s"), (187, "3m07s"), (3599, "59m59s"),
    (3600, "1h00m"), (7500, "2h05m"), (-3, "0s"),  # a clock skew never shows as negative
])  # fmt: skip
def test_durations_read_like_a_person_writes_them(seconds: float, shown: str) -> None:
    assert viewing.duration(seconds) == shown


@pytest.mark.parametrize(("started", "finished", "running", "shown"), [
    ("2026-12-01T09:58:00Z", "2026-12-01T09:59:05Z", False, "1m05s"),
    ("2026-12-01T09:59:30Z", None, True, "30s so far"),
    ("2026-12-01T09:59:30Z", None, False, "-"),  # ended without an end time: no guess
    (None, None, False, "-"), (None, "2026-12-01T09:59:05Z", False, "-"),
    ("garbage", "2026-12-01T09:59:05Z", False, "-"),
    ("2026-12-01T09:58:00+00:00", "2026-12-01T09:58:07.5+00:00", False, "7s"),
])  # fmt: skip
def test_took(started: str | None, finished: str | None, running: bool, shown: str) -> None:
    assert viewing.took(started, finished, NOW, running=running) == shown


def test_get_shows_each_steps_duration_and_the_runs() -> None:
    body = {"metadata": {"name": "demo"}, "status": {
        "phase": "Running", "run": "1", "podName": "demo-1", "startTime": "2026-12-01T09:58:00Z",
        "steps": [
            {"name": "greet", "state": "succeeded", "exitCode": 0,
             "startedAt": "2026-12-01T09:58:02Z", "finishedAt": "2026-12-01T09:58:05Z"},
            {"name": "test", "state": "running", "startedAt": "2026-12-01T09:59:00Z"},
            {"name": "deploy", "state": "waiting"},
            {"name": "notify", "state": "skipped"},
        ]}}  # fmt: skip
    lines = viewing.summary(body, NOW)
    assert lines[0] == "demo  Running  run=1  pod=demo-1  took 2m00s so far"
    by_step = {line.split()[0]: line.split()[1:] for line in lines[1:]}
    assert by_step["greet"] == ["succeeded", "3s", "exit", "0"]
    assert by_step["test"] == ["running", "1m00s", "so", "far"]
    assert by_step["deploy"] == ["waiting", "-"] and by_step["notify"] == ["skipped", "-"]
    done = {
        **body,
        "status": {**body["status"], "phase": "Succeeded", "completionTime": "2026-12-01T09:59:40Z"},
    }
    assert viewing.summary(done, NOW)[0].endswith("took 1m40s")
    assert viewing.summary({"metadata": {"name": "new"}}, NOW) == ["new  Pending  run=-  pod=-"]


CHATTY = """
import sys
from podline import cli
from podline import viewing

def chatty(args):  # stands in for `logs`: a line at a time, as it prints each step's log
    for n in range(1_000_000):
        print(f"line {n}", flush=True)
    return 0

viewing.main = chatty
sys.exit(cli.main(["logs", "demo"]))
"""


def test_output_into_a_pipe_closed_early_ends_quietly() -> None:
    """Like `podline logs demo | head -1`: the reader goes away mid-output; no BrokenPipeError traceback,
    and the exit status of a program killed by SIGPIPE (128 + 13), as cat and friends give."""
    with subprocess.Popen([sys.executable, "-c", CHATTY], cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE) as podline:  # fmt: skip
        assert podline.stdout is not None and podline.stderr is not None
        first = podline.stdout.readline()
        podline.stdout.close()
        errors = podline.stderr.read().decode()
        code = podline.wait(timeout=60)
    assert first == b"line 0\n"
    assert "Traceback" not in errors and "BrokenPipe" not in errors, errors
    assert code == 141


def _member(name: str, phase: str, deps: list[str] | None = None, **status: str) -> dict[str, object]:
    spec: dict[str, object] = {"name": name, "steps": []}
    if deps:
        spec["depends_on"] = deps
    return {
        "metadata": {"name": name, "labels": {"podline.dev/build": "app"}},
        "spec": spec,
        "status": {"phase": phase, "run": "g1", **status},
    }


def test_get_build_shows_its_result_its_pipelines_in_order_and_times() -> None:
    bodies = [
        _member("publish", "Skipped", ["test-amd64", "test-arm64"], message='skipped: pipeline "test-arm64" failed',
                startTime="2026-12-01T09:59:00Z", completionTime="2026-12-01T09:59:00Z"),
        _member("test-arm64", "Failed", startTime="2026-12-01T09:58:00Z", completionTime="2026-12-01T09:58:40Z"),
        _member("test-amd64", "Succeeded", startTime="2026-12-01T09:58:01Z", completionTime="2026-12-01T09:58:30Z"),
    ]  # fmt: skip
    lines = viewing.build_summary("app", bodies, NOW)
    assert lines[0] == "build app  Failed  pipelines=3  took 1m00s"
    assert [line.split()[1] for line in lines if line[0].isdigit()] == ["test-amd64", "test-arm64", "(after"]
    assert lines[3].startswith("3. (after test-amd64, test-arm64) publish  Skipped")
    assert lines[-1].strip() == 'skipped: pipeline "test-arm64" failed'


def test_get_build_of_a_waiting_build_is_running_and_says_for_what() -> None:
    bodies = [
        _member("test", "Running", startTime="2026-12-01T09:59:00Z"),
        _member("publish", "Pending", ["test"], message="waiting for test (Running)"),
    ]
    lines = viewing.build_summary("app", bodies, NOW)
    assert lines[0] == "build app  Running  pipelines=2  took 1m00s so far"
    assert "    waiting for test (Running)" in lines
