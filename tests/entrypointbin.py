"""The entrypoint binary (``operator/entrypoint/``, Go), built from the working tree for tests.

`build` returns the path of a static binary built into the cache
(``$PODLINE_CACHE`` or ``~/.cache/podline``)``/entrypoint/<hash of the sources>/podline-entrypoint``, so it is
rebuilt only when a source changes. The test cluster's runner image (``tests/cluster/images.py``), the
end-to-end tests and the cross-check with the core (``tests/core/test_stepping_agreement.py``) all use it.
Go 1.19 or later is needed (the module says ``go 1.19``; Debian's golang-go builds it); `GoMissing` says so.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import shutil
import subprocess
import tempfile

from tests.cluster import binaries

SOURCE_DIR = pathlib.Path(__file__).resolve().parent.parent / "operator" / "entrypoint"
NAME = "podline-entrypoint"
_GO_FALLBACKS = ("/usr/local/go/bin/go", "/usr/lib/go/bin/go")


class GoMissing(RuntimeError):
    """No Go toolchain to build the entrypoint with."""


def go() -> str:
    """The go command: ``$GO``, else ``go`` in PATH, else the usual install places."""
    for candidate in (os.environ.get("GO"), shutil.which("go"), *_GO_FALLBACKS):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise GoMissing(
        "building the entrypoint (operator/entrypoint/) needs Go 1.19 or later: "
        "install it (apt-get install golang-go) or set GO=/path/to/go"
    )


def sources() -> list[pathlib.Path]:
    """The files the binary is built from (not its tests)."""
    files = [SOURCE_DIR / "go.mod", *sorted(SOURCE_DIR.glob("*.go"))]
    if (SOURCE_DIR / "go.sum").exists():
        files.append(SOURCE_DIR / "go.sum")
    return [f for f in files if not f.name.endswith("_test.go")]


def source_hash() -> str:
    digest = hashlib.sha256()
    for path in sources():
        digest.update(path.name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


def go_env() -> dict[str, str]:
    """The environment for go build/test: no cgo (a static binary), no toolchain downloads, and caches in
    ours when there is no home directory for go's own."""
    env = {**os.environ, "CGO_ENABLED": "0", "GOTOOLCHAIN": "local", "GOFLAGS": ""}
    if not env.get("HOME"):
        env.setdefault("GOCACHE", str(binaries.cache_dir() / "go-build"))
        env.setdefault("GOPATH", str(binaries.cache_dir() / "gopath"))
    return env


def build() -> pathlib.Path:
    """The binary for the current sources, built if the cache has none. Raises `GoMissing`, or
    RuntimeError with go's output when the build fails."""
    path = binaries.cache_dir() / "entrypoint" / source_hash() / NAME
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as scratch:
        out = pathlib.Path(scratch) / NAME
        argv = [go(), "build", "-trimpath", "-ldflags=-s -w", "-o", str(out), "."]
        done = subprocess.run(argv, cwd=SOURCE_DIR, env=go_env(), capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
        os.replace(out, path)  # atomic: a concurrent build of the same sources writes the same file
    return path
