"""The peer: drone-runner-kube, built here from a source checkout, run with ``exec`` on the same cluster.

Its own module is not served by the Go module proxy (its dependencies are), so the bench needs a checkout:
``--peer-src DIR``, else ``~/.cache/podline/peers/drone-runner-kube`` (how to make one is in
bench/README.md). The binary is built once per source commit into ``~/.cache/podline/peers/bin``. Where no
source is found (CI), `find` says why and the bench runs without the peer.

``drone-runner-kube exec FILE`` compiles the ``.drone.yml``, creates the pod (every step container on
``drone/placeholder:1``, whatever the environment says), swaps each step's image in as the step starts,
streams the logs, and at the end sleeps 5 s (its "HACK" so logs can be read) and deletes the pod. The
bench takes the result's time from its debug log ("destroying the pipeline environment", the moment the
run is decided), not from the process's exit, and records both.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pathlib
import shutil
import subprocess
import threading
import time

from tests.cluster import binaries

NAME = "drone-runner-kube"
PLACEHOLDER = "drone/placeholder:1"
DECIDED = "destroying the pipeline environment"
GO = "/usr/local/go/bin/go"
REQUEST_CPU = 10  # millicores per pod


def default_source() -> pathlib.Path:
    return binaries.cache_dir() / "peers" / NAME


@dataclasses.dataclass(frozen=True)
class Peer:
    source: pathlib.Path
    commit: str
    binary: pathlib.Path
    go: str


def commit_of(source: pathlib.Path) -> str:
    """The checkout's commit: from git if it is a work tree, else the ``.podline-commit`` file written next
    to an archive (``git archive`` output has no .git)."""
    if (source / ".git").exists():
        found = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "HEAD"],
            check=False,
            capture_output=True,
            text=True,
            timeout=30,
        )
        if found.returncode == 0:
            return found.stdout.strip()
    marker = source / ".podline-commit"
    if marker.is_file():
        return marker.read_text().strip()
    digest = hashlib.sha256()
    for path in sorted(source.rglob("*.go")):
        digest.update(path.read_bytes())
    return "unknown (sources sha256 " + digest.hexdigest()[:12] + ")"


def go_build(
    where: pathlib.Path, commit: str, name: str, what: str, package: str, *, build: bool, goflags: str = ""
) -> tuple[pathlib.Path | None, str, str]:
    """The static binary of ``package`` in the checkout ``where`` at ``commit``, cached by both (built now if
    ``build``): (binary, go, "") or (None, go, why not)."""
    go = GO if os.access(GO, os.X_OK) else (shutil.which("go") or "")
    if not go:
        return None, go, f"no Go toolchain (/usr/local/go/bin/go or go on PATH) to build {what}"
    key = hashlib.sha256(f"{where.resolve()}\n{commit}".encode()).hexdigest()[:12]
    binary = binaries.cache_dir() / "peers" / "bin" / f"{name}-{key}"
    if binary.is_file():
        return binary, go, ""
    if not build:
        return None, go, f"{what} {commit[:12]} is not built yet (the full bench builds it)"
    binary.parent.mkdir(parents=True, exist_ok=True)
    built = subprocess.run(
        [go, "build", "-o", f"{binary}.tmp", package],
        cwd=where,
        check=False,
        capture_output=True,
        text=True,
        timeout=1800,
        env={**os.environ, "CGO_ENABLED": "0", "GOFLAGS": f"-buildvcs=false {goflags}".strip()},
    )
    if built.returncode != 0:
        return None, go, f"building {what} failed: {built.stderr.strip()[-2000:]}"
    os.replace(f"{binary}.tmp", binary)
    return binary, go, ""


def find(source: pathlib.Path | None, *, build: bool = True) -> tuple[Peer | None, str]:
    """The built peer (built now if ``build``), or None and the reason it cannot run here."""
    where = source or default_source()
    if not (where / "go.mod").is_file() or "drone-runner-kube" not in (where / "go.mod").read_text():
        return None, (
            f"no drone-runner-kube source in {where} (give --peer-src DIR with a checkout of "
            "github.com/drone-runners/drone-runner-kube; see bench/README.md)"
        )
    commit = commit_of(where)
    binary, go, why = go_build(where, commit, NAME, "drone-runner-kube", ".", build=build)
    if binary is None:
        return None, why
    return Peer(where, commit, binary, go), ""


def go_version(go: str) -> str:
    found = subprocess.run([go, "version"], check=False, capture_output=True, text=True, timeout=30)
    return found.stdout.strip()


class Exec:
    """One ``drone-runner-kube exec`` of a ``.drone.yml`` in ``namespace``; `decided` is when it knew the
    result (wall clock), `ended` when the process exited."""

    def __init__(
        self,
        peer: Peer,
        kubeconfig: pathlib.Path,
        namespace: str,
        drone_yml: pathlib.Path,
        log: pathlib.Path,
        *,
        pipeline: str = "default",
    ) -> None:
        # --request-cpu: its default (100 millicores per pod) would leave some of 20 pods at once unscheduled
        # on this 2-core node, timing the scheduler's queue instead of the runner; podline requests nothing.
        self.argv = [
            str(peer.binary),
            "exec",
            "--debug",
            f"--kubeconfig={kubeconfig}",
            f"--namespace={namespace}",
            f"--request-cpu={REQUEST_CPU}",
            f"--stage-name={pipeline}",
            str(drone_yml),
        ]
        self.log_path = log
        self.submitted = 0.0
        self.decided: float | None = None
        self.ended: float | None = None
        self.returncode: int | None = None
        self._process: subprocess.Popen[str] | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.submitted = time.time()
        self._process = subprocess.Popen(
            self.argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
            env={**os.environ, "HOME": os.environ.get("HOME", "/root")},
        )
        self._thread = threading.Thread(target=self._read, name="peer-exec", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        with self.log_path.open("a") as log:
            log.write(f"--- {' '.join(self.argv)}\n")
            for line in self._process.stdout:
                if self.decided is None and DECIDED in line:
                    self.decided = time.time()
                log.write(line)
        self.returncode = self._process.wait()
        self.ended = time.time()

    def wait(self, timeout: float) -> bool:
        """True if the process ended within ``timeout`` (else it is killed)."""
        assert self._thread is not None and self._process is not None
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._process.kill()
            self._thread.join(10)
            return False
        return True
