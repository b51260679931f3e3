"""What /proc says about a process (memory, CPU time) and about the machine the bench runs on, and which
commit it measures."""

from __future__ import annotations

import math
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import time
from typing import Any

TICKS = os.sysconf("SC_CLK_TCK")
ROOT = pathlib.Path(__file__).resolve().parents[1]  # the checkout measured


def status_kb(pid: int, field: str) -> int | None:
    """A ``kB`` field of /proc/<pid>/status (VmRSS, VmHWM, …), or None if the process is gone."""
    try:
        for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def rss_mb(pid: int) -> float | None:
    kb = status_kb(pid, "VmRSS")
    return None if kb is None else kb / 1024.0


def rss_median_mb(pid: int, readings: int = 3, gap: float = 0.5) -> float:
    """The median of ``readings`` RSS readings ``gap`` s apart (NaN for a reading that failed)."""
    values = []
    for i in range(readings):
        if i:
            time.sleep(gap)
        values.append(rss_mb(pid) or math.nan)
    return statistics.median(values)


def hwm_mb(pid: int) -> float | None:
    kb = status_kb(pid, "VmHWM")
    return None if kb is None else kb / 1024.0


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of the process (all its threads) so far."""
    try:
        text = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14 and 15 of stat)


def cpu_seconds_fine(pid: int) -> float | None:
    """CPU time of the process's live threads so far, in ns precision (``/proc/<pid>/task/*/schedstat``: time
    on a CPU), where `cpu_seconds` counts clock ticks (10 ms). A thread that has exited no longer counts."""
    try:
        tasks = list(pathlib.Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return None
    total = 0
    for task in tasks:
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue  # the thread ended meanwhile
    return total / 1e9


def uptime_line() -> str:
    try:
        return subprocess.run(
            ["uptime"], check=False, capture_output=True, text=True, timeout=5
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_kb = 0
    try:
        memory_kb = int(pathlib.Path("/proc/meminfo").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "memory_gb": round(memory_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "hostname": platform.node(),
    }


def source() -> dict[str, Any]:
    """The commit measured, and the operator files that differ from it (others may be editing the tree)."""

    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30, check=False
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "operator_changes_not_committed": git("status", "--short", "--", "operator").splitlines(),
    }
