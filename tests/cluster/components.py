"""One supervised program of the test cluster: started with its log in a file, polled until ready, stopped.

A component records its pid in a pid file next to its log, so a different process (``python -m
tests.cluster down``, or the next test session finding a stale cluster) can stop it later. Failures to
start raise `ComponentFailed` with the tail of the component's log, so the reason is in the test output.
What "ready" means for each program, and the order of starting them, is decided by the tiers.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import pathlib
import signal
import subprocess
import time
from collections.abc import Callable, Sequence

TAIL_LINES = 30


class ComponentFailed(RuntimeError):
    """A component exited or did not become ready in time. The message ends with its log's tail."""

    def __init__(self, name: str, problem: str, log: pathlib.Path) -> None:
        self.name = name
        self.log = log
        super().__init__(f"{name} {problem}; log {log}, last lines:\n{tail(log)}")


def tail(log: pathlib.Path, lines: int = TAIL_LINES) -> str:
    try:
        text = log.read_text(errors="replace")
    except OSError as error:
        return f"  (no log: {error})"
    return "\n".join("  | " + line for line in text.splitlines()[-lines:])


def poll(check: Callable[[], bool], *, timeout: float, interval: float = 0.05) -> bool:
    """Call ``check`` until it returns true (→ True) or ``timeout`` seconds pass (→ False)."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
        interval = min(interval * 1.5, 0.5)


@dataclasses.dataclass
class Component:
    """A long-running program. ``ready`` is polled after start; it returns true once the program serves."""

    name: str
    argv: Sequence[str]
    log_dir: pathlib.Path
    run_dir: pathlib.Path
    ready: Callable[[], bool] = lambda: True
    ready_timeout: float = 60.0
    stop_timeout: float = 10.0
    env: dict[str, str] | None = None
    process: subprocess.Popen[bytes] | None = dataclasses.field(default=None, repr=False)

    @property
    def log(self) -> pathlib.Path:
        return self.log_dir / f"{self.name}.log"

    @property
    def pidfile(self) -> pathlib.Path:
        return self.run_dir / f"{self.name}.pid"

    def start(self) -> None:
        if self.running():
            raise RuntimeError(f"{self.name} is already running (pid {self.process and self.process.pid})")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        now = datetime.datetime.now().isoformat(timespec="seconds")
        with self.log.open("ab") as log:
            log.write(f"=== podline test cluster: {now} starting {' '.join(self.argv)}\n".encode())
            log.flush()
            environment = None if self.env is None else {**os.environ, **self.env}
            self.process = subprocess.Popen(
                list(self.argv), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=environment, start_new_session=True,
            )  # fmt: skip
        self.pidfile.write_text(f"{self.process.pid}\n{self.argv[0]}\n")

    def wait_ready(self) -> None:
        def done() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise ComponentFailed(
                    self.name, f"exited with code {self.process.returncode} while starting", self.log
                )
            return self.ready()

        if not poll(done, timeout=self.ready_timeout):
            raise ComponentFailed(self.name, f"was not ready after {self.ready_timeout:.0f}s", self.log)

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float | None = None) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` (default ``stop_timeout``) seconds. Safe when not running."""
        timeout = self.stop_timeout if timeout is None else timeout
        if self.process is not None:
            _terminate(
                self.process.pid, timeout, lambda: self.process is not None and self.process.poll() is None
            )
            self.process = None
        else:
            stop_recorded(self.pidfile, timeout)
        self.pidfile.unlink(missing_ok=True)

    def kill(self) -> None:
        """SIGKILL at once: a crash, not a shutdown."""
        self.stop(timeout=0)

    def restart(self) -> None:
        self.stop()
        self.start()
        self.wait_ready()


def _alive(pid: int) -> bool:
    try:
        stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie is dead for our purposes


def _terminate(pid: int, timeout: float, alive: Callable[[], bool]) -> None:
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)  # every component leads its own session and process group
        except ProcessLookupError:
            return
        except PermissionError:
            os.kill(pid, sig)
        if poll(lambda: not alive(), timeout=wait):
            return


def stop_recorded(pidfile: pathlib.Path, timeout: float = 15.0) -> None:
    """Stop the process a pid file names, if it is still that program. For processes this one did not start."""
    try:
        pid_text, program = pidfile.read_text().split("\n")[:2]
        pid = int(pid_text)
    except (OSError, ValueError):
        return
    try:
        cmdline = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
    except OSError:
        cmdline = ""
    if cmdline == program:
        _terminate(pid, timeout, lambda: _alive(pid))
    pidfile.unlink(missing_ok=True)


def recorded_alive(pidfile: pathlib.Path) -> bool:
    try:
        pid_text, program = pidfile.read_text().split("\n")[:2]
        cmdline = pathlib.Path(f"/proc/{int(pid_text)}/cmdline").read_bytes().split(b"\0")[0].decode()
    except (OSError, ValueError):
        return False
    return cmdline == program and _alive(int(pid_text))
