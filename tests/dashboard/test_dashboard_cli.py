"""``podline dashboard`` refusing to start: one line naming the problem, exit 1, never a traceback, and
never the kubeconfig's text (it holds credentials)."""

from __future__ import annotations

import os
import pathlib
import socket
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SECRET = "s3cr3t-t0ken-value"


def dashboard(tmp_path: pathlib.Path, kubeconfig: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "KUBERNETES_SERVICE_HOST"}
    env.update(KUBECONFIG=kubeconfig, HOME=str(tmp_path))
    return subprocess.run(
        [sys.executable, "-m", "podline", "dashboard", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _kubeconfig(tmp_path: pathlib.Path, server: str) -> str:
    path = tmp_path / "kubeconfig"
    path.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters: [{{name: c, cluster: {{server: '{server}'}}}}]\n"
        f"users: [{{name: u, user: {{token: {SECRET}}}}}]\n"
        "contexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n"
    )
    return str(path)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens there once closed


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: str(tmp / "missing"), "cannot read the kubeconfig"),
        (
            lambda tmp: (tmp / "bad").write_text(f"users: [{{token: {SECRET}\n") and str(tmp / "bad"),
            "cannot use the kubeconfig",
        ),
        (lambda tmp: _kubeconfig(tmp, f"https://127.0.0.1:{_closed_port()}"), "cannot read Pipelines"),
    ],
    ids=["missing", "not-yaml", "no-apiserver"],
)
def test_a_dashboard_that_cannot_start_says_why_in_one_line(
    tmp_path: pathlib.Path, make, message: str
) -> None:
    result = dashboard(tmp_path, make(tmp_path), "--port", "0")
    _one_line(result, message)


def test_a_bad_archive_url_is_named(tmp_path: pathlib.Path) -> None:
    result = dashboard(
        tmp_path, _kubeconfig(tmp_path, "https://127.0.0.1:1"), "--archive", "ftp://archive.example/x"
    )
    _one_line(
        result, "--archive: 'ftp://archive.example/x': the archive is file:///path or s3://bucket/prefix"
    )


def _one_line(result: subprocess.CompletedProcess[str], message: str) -> None:
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr and SECRET not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.startswith("podline: ")]
    assert len(lines) == 1 and message in lines[0], result.stderr
