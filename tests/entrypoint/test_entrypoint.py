"""The entrypoint binary (operator/entrypoint/): its Go tests pass, and the built binary does what
docs/in-pod.md says when driven with the arguments the core builds (``pods.build_pod``), on a temporary
run directory. Without Go these tests skip (the message says what to install); with ``CI=true`` they fail.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import subprocess
import time
from collections.abc import Sequence

import pytest
from podline.core import compiling, pods, policies, stepping

from tests import entrypointbin
from tests.cluster import fixtures, images

DEADLINE = 60  # seconds; generous: nothing here is a timing assertion
RESULT_KEYS = [
    "name",
    "state",
    "exitCode",
    "startedAt",
    "finishedAt",
    "reason",
    "message",
    "failing",
    "outputBytes",
]


@pytest.fixture(scope="module")
def binary() -> pathlib.Path:
    try:
        return entrypointbin.build()
    except entrypointbin.GoMissing as error:
        if fixtures.in_ci():
            pytest.fail(f"{error} (CI=true: the entrypoint tests must not be skipped)", pytrace=False)
        pytest.skip(str(error))


def test_binary_is_static(binary: pathlib.Path) -> None:
    assert images.is_static(binary), "the entrypoint must run in an empty root filesystem (CGO_ENABLED=0)"
    assert os.access(binary, os.X_OK)


def test_go_tests_pass(binary: pathlib.Path) -> None:
    done = subprocess.run(
        [entrypointbin.go(), "test", "./..."],
        cwd=entrypointbin.SOURCE_DIR,
        env=entrypointbin.go_env(),
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )
    assert done.returncode == 0, f"go test ./... failed:\n{done.stdout}\n{done.stderr}"
    assert "ok" in done.stdout


def test_go_vet_is_clean(binary: pathlib.Path) -> None:
    done = subprocess.run(
        [entrypointbin.go(), "vet", "./..."],
        cwd=entrypointbin.SOURCE_DIR,
        env=entrypointbin.go_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_module_is_go_1_19_standard_library_only() -> None:
    gomod = (entrypointbin.SOURCE_DIR / "go.mod").read_text()
    assert "\ngo 1.19\n" in gomod and "require" not in gomod
    assert not (entrypointbin.SOURCE_DIR / "go.sum").exists()


class Pod:
    """A pod's steps as local processes: the core's arguments for each, a shared temporary run directory."""

    def __init__(self, binary: pathlib.Path, tmp: pathlib.Path, spec: dict[str, object]) -> None:
        context = compiling.RunContext(namespace="ci", pipeline="p", uid="u", generation=1)
        plan = compiling.compile_spec(spec, context, policies.Policy())
        self.containers = {c["name"]: c for c in pods.build_pod(plan)["spec"]["containers"]}
        self.binary, self.run_dir, self.logs = binary, tmp / "run", tmp / "logs"
        self.copies = tmp / "copies"  # the pod's /podline/logs
        self.run_dir.mkdir()
        self.logs.mkdir()
        self.copies.mkdir()
        self.marker = tmp / "podline-runner"  # absent: the steps run their own commands
        self.processes: dict[str, subprocess.Popen[str]] = {}

    def start(self, name: str) -> None:
        container = self.containers[name]
        assert container["command"] == [stepping.BINARY]
        args: Sequence[str] = container["args"]
        cut = args.index("--")
        flags = [
            f"--log-dir={self.copies}" if a == f"--log-dir={stepping.LOG_DIR}" else a for a in args[1:cut]
        ]
        argv = [str(self.binary), args[0], f"--run-dir={self.run_dir}", *flags, *args[cut:]]
        env = {
            **os.environ,
            "PODLINE_TERMINATION_LOG": str(self.logs / name),
            "PODLINE_RUNNER_MARKER": str(self.marker),
        }
        self.processes[name] = subprocess.Popen(
            argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    def finish(self, name: str) -> tuple[dict[str, object], str, str, int]:
        """The step's result (checked against its termination message), stdout, stderr and exit code."""
        process = self.processes[name]
        out, err = process.communicate(timeout=DEADLINE)
        text = (self.run_dir / f"{name}.json").read_text()
        result = json.loads(text)
        assert list(result) == RESULT_KEYS
        # The core reads both back as the same record, and would write them byte for byte the same.
        parsed = stepping.parse_result(text)
        assert parsed is not None and parsed.to_json() == text
        message = (self.logs / name).read_text()
        assert message == parsed.to_message(self.message_limit(name))
        assert stepping.parse_message(name, message) == dataclasses.replace(parsed, failing=False)
        return result, out, err, process.returncode

    def message_limit(self, name: str) -> int:
        flags = [a for a in self.containers[name]["args"] if a.startswith("--message-limit=")]
        assert len(flags) == 1, "the core gives every step its share of the pod's termination messages"
        return int(flags[0].partition("=")[2])

    def kill_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()


def test_steps_chain_through_the_run_directory(binary: pathlib.Path, tmp_path: pathlib.Path) -> None:
    pod = Pod(
        binary,
        tmp_path,
        {
            "steps": [
                {"name": "a", "image": "busybox", "commands": ["echo one"]},
                {"name": "b", "image": "busybox", "commands": ["echo two", "echo oops >&2", "exit 3"]},
                {"name": "c", "image": "busybox", "commands": ["echo never"]},
                {
                    "name": "notify",
                    "image": "busybox",
                    "commands": ["echo notified"],
                    "when": {"status": ["failure"]},
                },
            ]
        },
    )
    try:
        for name in ("step-notify", "step-c", "step-b", "step-a"):  # backwards: each waits for its turn
            pod.start(name)
        a, a_out, a_err, a_exit = pod.finish("step-a")
        b, b_out, b_err, b_exit = pod.finish("step-b")
        c, c_out, _, c_exit = pod.finish("step-c")
        n, n_out, _, n_exit = pod.finish("step-notify")
    finally:
        pod.kill_all()
    assert (a["state"], a["exitCode"], a["reason"], a["message"], a["failing"], a_exit) == (
        "succeeded",
        0,
        None,
        None,
        False,
        0,
    )
    assert (a_out, a_err) == ("+ echo one\none\n", "")  # the command's output, unchanged; nothing else
    # stderr is merged into stdout in the order written (one pipe, as Drone's log has it)
    assert (b["state"], b["exitCode"], b["reason"], b["failing"], b_exit) == ("failed", 3, None, True, 3)
    assert (b_out, b_err) == ("+ echo two\ntwo\n+ echo oops >&2\noops\n+ exit 3\n", "")
    # the copy on the pod's volume holds the same output
    assert (pod.copies / "step-b.log").read_text() == b_out
    assert isinstance(b["message"], str) and "3" in b["message"]
    assert (c["state"], c["exitCode"], c["startedAt"], c["reason"], c["failing"], c_exit, c_out) == (
        "skipped",
        None,
        None,
        "Skipped",
        False,
        0,
        "",
    )
    assert (n["state"], n["exitCode"], n_exit, n_out) == ("succeeded", 0, 0, "+ echo notified\nnotified\n")
    for r in (a, b, n):
        assert isinstance(r["startedAt"], int) and isinstance(r["finishedAt"], int)
        assert r["startedAt"] <= r["finishedAt"]
        assert abs(r["startedAt"] - time.time() * 1000) < 3_600_000  # ms since the epoch
    assert a["finishedAt"] <= b["startedAt"] and b["finishedAt"] <= n["startedAt"]  # type: ignore[operator]
    assert isinstance(c["finishedAt"], int)
    assert sorted(p.name for p in pod.run_dir.iterdir()) == [
        "step-a.json",
        "step-a.started",
        "step-b.json",
        "step-b.started",
        "step-c.json",
        "step-notify.json",
        "step-notify.started",
    ]


def test_stand_in_records_image_pull_failed(binary: pathlib.Path, tmp_path: pathlib.Path) -> None:
    pod = Pod(
        binary,
        tmp_path,
        {
            "steps": [
                {"name": "a", "image": "busybox", "commands": ["touch ran"]},
                {"name": "b", "image": "busybox", "commands": ["echo never"]},
            ]
        },
    )
    pod.marker.write_text("")
    try:
        pod.start("step-a")
        pod.start("step-b")
        a, a_out, _, a_exit = pod.finish("step-a")
        b, _, _, b_exit = pod.finish("step-b")
    finally:
        pod.kill_all()
    assert (a["state"], a["exitCode"], a["reason"], a["failing"], a_exit, a_out) == (
        "failed",
        1,
        "ImagePullFailed",
        True,
        1,
        "",
    )
    assert (b["state"], b["reason"], b_exit) == ("skipped", "Skipped", 0)


def test_early_exit_and_not_found(binary: pathlib.Path, tmp_path: pathlib.Path) -> None:
    pod = Pod(
        binary,
        tmp_path,
        {
            "steps": [
                {
                    "name": "a",
                    "image": "busybox",
                    "entrypoint": ["no-such-command-podline"],
                    "failure": "ignore",
                },
                {"name": "b", "image": "busybox", "commands": ["exit 78"]},
                {
                    "name": "c",
                    "image": "busybox",
                    "commands": ["echo never"],
                    "when": {"status": ["success", "failure"]},
                },
            ]
        },
    )
    try:
        for name in ("step-a", "step-b", "step-c"):
            pod.start(name)
        a, _, _, a_exit = pod.finish("step-a")
        b, _, _, b_exit = pod.finish("step-b")
        c, _, _, c_exit = pod.finish("step-c")
    finally:
        pod.kill_all()
    assert (a["state"], a["exitCode"], a["reason"], a["failing"], a_exit) == (
        "failed",
        127,
        "CommandNotFound",
        False,
        127,
    )
    assert (b["state"], b["exitCode"], b["failing"], b_exit) == ("succeeded", 78, False, 78)
    assert (c["state"], c["reason"], c_exit) == ("skipped", "EarlyExit", 0)


def test_bad_flag_is_a_usage_error(binary: pathlib.Path) -> None:
    done = subprocess.run(
        [str(binary), "run", "--name=step-a", "--after-all", "--", "true"],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    )
    assert done.returncode == 2
    assert "--after-all" in done.stderr and done.stdout == ""


def test_decide_speaks_json(binary: pathlib.Path) -> None:
    case = {
        "args": ["run", "--name=step-b", "--after=step-a", "--on=success", "--", "true"],
        "results": {
            "step-a": json.loads(stepping.Result("step-a", stepping.ResultState.SUCCEEDED, 78).to_json())
        },
        "started": [],
    }
    done = subprocess.run(
        [str(binary), "decide"],
        input=json.dumps(case),
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=True,
    )
    assert json.loads(done.stdout) == {
        "action": "skip",
        "reason": "EarlyExit",
        "mask": [],
        "logDir": "",
        "logLimit": stepping.DEFAULT_LOG_LIMIT,
    }
