"""The operator image, built from the repository's Dockerfile the way a cluster admin builds it.

``buildah bud --isolation chroot`` (Debian's buildah, vfs storage, as root, no daemon) builds the Dockerfile
as it is. Only its bases differ: the published ``python:3.11.14-slim-bookworm`` and ``golang:…-bookworm``
cannot be pulled here, so `base` makes one from Debian's own packages of the same release with
``mmdebstrap`` (bookworm, Debian's python3 3.11 and its venv module, passwd, ca-certificates; documentation
left out as in Debian's slim images) and `go_base` adds this machine's Go toolchain (the one build.sh uses)
at /usr/local/go, as the official golang image has it; the build gets them as ``--build-arg BASE_IMAGE`` and
``GO_IMAGE``. Both targets are built: the operator image (the default) and ``runner`` (the entrypoint alone). pip inside the build installs podline's pinned
dependencies from PyPI; the host's CA bundle is bind-mounted over the base's for the build's RUN steps, so
pip trusts what this machine trusts (it is not part of the image).

Results live in the cache (``$PODLINE_CACHE/operator-image``), keyed by the hash of their inputs: the base
by its recipe, the image by the Dockerfile, .dockerignore and every file the .dockerignore sends. A changed
input builds a new image with a new tag; an unchanged one builds nothing. The images are kept in an OCI
layout with a ``build.json`` (seconds, sizes) and `push` copies them into the node tier's public registry
as ``localhost:5101/podline/podline:<key>`` and ``localhost:5101/podline/podline-runner:<key>``.

``python -m tests.cluster.operator_image`` builds (if needed) and prints the reference and the figures.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

from tests import entrypointbin
from tests.cluster import binaries, images

ROOT = binaries.HERE.parents[1]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
REPOSITORY = f"{images.PUBLIC_REGISTRY}/podline/podline"
RUNNER_REPOSITORY = f"{images.PUBLIC_REGISTRY}/podline/podline-runner"
SUITE = "bookworm"  # the Debian release of the published base
BASE_PACKAGES = ("python3", "python3-venv", "passwd", "ca-certificates")
# What Debian's slim images leave out; none of it is read at run time.
BASE_EXCLUDES = ("/usr/share/doc/*", "/usr/share/man/*", "/usr/share/info/*", "/usr/share/locale/*",
                 "/usr/share/lintian/*")  # fmt: skip
BASE_RECIPE = "1"  # bump when the way the base is made changes
HOST_CA = pathlib.Path("/etc/ssl/certs/ca-certificates.crt")
PROGRAMS = {"buildah": "buildah", "mmdebstrap": "mmdebstrap", "skopeo": "skopeo"}  # program → package


class ImageBuildFailed(RuntimeError):
    """A step of the image build failed; the message names it and ends with its output's tail."""


@dataclasses.dataclass(frozen=True)
class Image:
    """A built operator image: its OCI layout in the cache and what its build measured."""

    key: str
    layout: pathlib.Path
    seconds: float  # of `buildah bud` of the operator image, the bases excluded
    size: int  # bytes of the image's layers, uncompressed (what the node stores)
    compressed: int  # bytes of its gzipped layers (what a pull transfers)
    base: str
    runner_size: int  # the same for the runner target
    go: str  # the Go release the entrypoint was built with

    @property
    def tag(self) -> str:
        return self.key

    @property
    def reference(self) -> str:
        return f"{REPOSITORY}:{self.tag}"

    @property
    def runner(self) -> str:
        return f"{RUNNER_REPOSITORY}:{self.tag}"


def cache() -> pathlib.Path:
    return binaries.cache_dir() / "operator-image"


def missing_programs() -> list[str]:
    """Debian packages the build needs that are not installed (``tests/cluster/setup.sh node`` installs them)."""
    return sorted({package for program, package in PROGRAMS.items() if shutil.which(program) is None})


def context_files() -> list[pathlib.Path]:
    """Every file the build context sends: what .dockerignore re-includes (it ignores everything else)."""
    included = []
    for line in DOCKERIGNORE.read_text().splitlines():
        line = line.strip()
        if line.startswith("!"):
            included.append(ROOT / line[1:].rstrip("/"))
    files = []
    for path in included:
        candidates = sorted(path.rglob("*")) if path.is_dir() else [path]
        files += [
            f for f in candidates if f.is_file() and "__pycache__" not in f.parts and f.suffix != ".pyc"
        ]
    return files


def image_key(base_key: str) -> str:
    digest = hashlib.sha256(f"bases {base_key}\n".encode())
    for path in [DOCKERFILE, DOCKERIGNORE, *context_files()]:
        digest.update(f"{path.relative_to(ROOT)}\n".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


def base_key() -> str:
    recipe = json.dumps([BASE_RECIPE, SUITE, BASE_PACKAGES, BASE_EXCLUDES])
    return hashlib.sha256(recipe.encode()).hexdigest()[:16]


def _run(
    what: str, argv: list[str], *, cwd: pathlib.Path | None = None, log: pathlib.Path | None = None
) -> str:
    if log is not None:
        with log.open("wb") as out:
            result = subprocess.run(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    check=False)  # fmt: skip
        text = log.read_text(errors="replace")
    else:
        done = subprocess.run(
            argv, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False
        )
        result, text = done, done.stdout + done.stderr
    if result.returncode != 0:
        tail = "\n".join("  | " + line for line in text.splitlines()[-25:])
        raise ImageBuildFailed(f"{what} failed (exit {result.returncode}): {' '.join(argv)}\n{tail}")
    return text


def _buildah(*args: str) -> list[str]:
    run_root = pathlib.Path(tempfile.gettempdir()) / f"podline-buildah-{os.getuid()}"
    return ["buildah", "--root", str(cache() / "storage"), "--runroot", str(run_root),
            "--storage-driver", "vfs", *args]  # fmt: skip


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    """One build at a time per cache (two test sessions may ask at once)."""
    cache().mkdir(parents=True, exist_ok=True)
    with open(cache() / "build.lock", "wb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def base() -> str:
    """The local base image in buildah's storage (made with mmdebstrap if missing): its reference."""
    key = base_key()
    reference = f"localhost/podline-test-base:{key}"
    if subprocess.run(_buildah("inspect", "--type", "image", reference), capture_output=True,
                      check=False).returncode == 0:  # fmt: skip
        return reference
    work = cache() / f"base-{key}.tmp"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    rootfs = work / "rootfs.tar"
    # The host's apt sources name the mirror (the same Debian release as this machine's).
    sources = [str(p) for p in sorted(pathlib.Path("/etc/apt/sources.list.d").glob("*.sources"))]
    if pathlib.Path("/etc/apt/sources.list").is_file():
        sources.append("/etc/apt/sources.list")
    excludes = [f"--dpkgopt=path-exclude={pattern}" for pattern in BASE_EXCLUDES]
    _run("mmdebstrap (the test base)", ["mmdebstrap", "--quiet", "--variant=minbase", *excludes,
         f"--include={','.join(BASE_PACKAGES)}", "--format=tar", SUITE, str(rootfs), *sources],
         log=work / "mmdebstrap.log")  # fmt: skip
    container = _run("buildah from scratch", _buildah("from", "scratch")).split()[-1]
    try:
        _run("buildah add", _buildah("add", container, str(rootfs), "/"))
        _run("buildah config", _buildah("config", "--os", "linux", "--arch", "amd64",
             "--env", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
             "--cmd", "python3", container))  # fmt: skip
        _run("buildah commit", _buildah("commit", "--quiet", container, reference))
    finally:
        subprocess.run(_buildah("rm", container), capture_output=True, check=False)
    shutil.rmtree(work, ignore_errors=True)
    return reference


def go_root() -> pathlib.Path:
    """The Go toolchain build.sh builds with (``go env GOROOT``); the test Go base carries a copy of it."""
    done = subprocess.run([entrypointbin.go(), "env", "GOROOT"], capture_output=True, text=True, check=False)
    if done.returncode != 0 or not done.stdout.strip():
        raise ImageBuildFailed(f"go env GOROOT failed: {done.stderr.strip()}")
    return pathlib.Path(done.stdout.strip())


def go_version(root: pathlib.Path) -> str:
    return (root / "VERSION").read_text().split()[0]  # e.g. go1.26.8


def go_base(python_base: str) -> str:
    """The local Go base: the Debian base plus this machine's Go at /usr/local/go (as the official golang
    image lays it out, with its environment). Its reference, made if missing."""
    root = go_root()
    key = hashlib.sha256(f"{python_base} {go_version(root)}".encode()).hexdigest()[:16]
    reference = f"localhost/podline-test-go:{key}"
    if subprocess.run(_buildah("inspect", "--type", "image", reference), capture_output=True,
                      check=False).returncode == 0:  # fmt: skip
        return reference
    container = _run("buildah from", _buildah("from", "--pull=never", python_base)).split()[-1]
    try:
        _run("buildah copy (Go)", _buildah("copy", "--quiet", container, str(root), "/usr/local/go"))
        _run("buildah config", _buildah("config", "--env", "GOLANG_VERSION=" + go_version(root).removeprefix("go"),
             "--env", "GOTOOLCHAIN=local", "--env", "GOPATH=/go",
             "--env", "PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
             "--workingdir", "/go", "--cmd", "bash", container))  # fmt: skip
        _run("buildah commit", _buildah("commit", "--quiet", container, reference))
    finally:
        subprocess.run(_buildah("rm", container), capture_output=True, check=False)
    return reference


def _revision() -> str:
    done = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=False)  # fmt: skip
    return done.stdout.strip() if done.returncode == 0 else "unknown"


def _layer_sizes(layout: pathlib.Path, tag: str) -> tuple[int, int]:
    """(uncompressed, compressed) bytes of the layers of the layout's image ``tag``."""
    index = json.loads((layout / "index.json").read_text())
    [entry] = [
        m
        for m in index["manifests"]
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag
    ]
    digest = entry["digest"].split(":", 1)[1]
    manifest = json.loads((layout / "blobs" / "sha256" / digest).read_text())
    config = json.loads(
        (layout / "blobs" / "sha256" / manifest["config"]["digest"].split(":", 1)[1]).read_text()
    )
    compressed = sum(int(layer["size"]) for layer in manifest["layers"])
    uncompressed = 0
    for layer in manifest["layers"]:
        blob = layout / "blobs" / "sha256" / layer["digest"].split(":", 1)[1]
        with subprocess.Popen(["gzip", "-dc", str(blob)], stdout=subprocess.PIPE) as unzip:
            assert unzip.stdout is not None
            while chunk := unzip.stdout.read(1 << 20):
                uncompressed += len(chunk)
    assert len(config["rootfs"]["diff_ids"]) == len(manifest["layers"])
    return uncompressed, compressed


def _load(key: str) -> Image | None:
    layout = cache() / f"image-{key}"
    try:
        record = json.loads((layout / "build.json").read_text())
    except (OSError, ValueError):
        return None
    return Image(key, layout, record["seconds"], record["size"], record["compressed"], record["base"],
                 record["runner_size"], record["go"])  # fmt: skip


def build(*, say: bool = False) -> Image:
    """The operator image for the working tree as it is now: from the cache, or built (a few minutes)."""
    if missing := missing_programs():
        raise ImageBuildFailed(
            f"building the operator image needs {', '.join(missing)}: run tests/cluster/setup.sh node"
        )
    with _locked():
        base_reference = base()
        go_reference = go_base(base_reference)
        key = image_key(f"{base_key()} {go_reference}")
        if (found := _load(key)) is not None:
            return found
        if say:
            print(f"[image] building the operator image {REPOSITORY}:{key} from the Dockerfile", flush=True)
        name = f"localhost/podline:{key}"
        argv = ["bud", "--isolation", "chroot", "--pull=never", "--layers=false",
                "--build-arg", f"BASE_IMAGE={base_reference}", "--build-arg", f"GO_IMAGE={go_reference}",
                "--build-arg", f"REVISION={_revision()}", "--file", str(DOCKERFILE)]  # fmt: skip
        if HOST_CA.is_file():
            argv += ["--volume", f"{HOST_CA}:{HOST_CA}:ro"]
        layout = cache() / f"image-{key}"
        tmp = cache() / f"image-{key}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        began = time.monotonic()
        _run("buildah bud (the operator image)", _buildah(*argv, "--tag", name, str(ROOT)), cwd=ROOT,
             log=tmp / "bud.log")  # fmt: skip
        seconds = time.monotonic() - began
        runner = f"localhost/podline-runner:{key}"
        _run("buildah bud --target runner", _buildah(*argv, "--target", "runner", "--tag", runner, str(ROOT)),
             cwd=ROOT, log=tmp / "bud-runner.log")  # fmt: skip
        for built, tag in ((name, "podline"), (runner, "runner")):
            _run("buildah push (to an OCI layout)", _buildah("push", "--quiet", "--compression-format", "gzip",
                 built, f"oci:{tmp / 'oci'}:{tag}"))  # fmt: skip
            subprocess.run(
                _buildah("rmi", built), capture_output=True, check=False
            )  # the layout is the record
        size, compressed = _layer_sizes(tmp / "oci", "podline")
        record = {"seconds": round(seconds, 1), "size": size, "compressed": compressed, "base": base_reference,
                  "runner_size": _layer_sizes(tmp / "oci", "runner")[0], "go": go_version(go_root()),
                  "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}  # fmt: skip
        (tmp / "oci" / "build.json").write_text(json.dumps(record, indent=2) + "\n")
        shutil.rmtree(layout, ignore_errors=True)
        (tmp / "oci").rename(layout)
        for log in ("bud.log", "bud-runner.log"):
            shutil.move(str(tmp / log), layout / log)
        shutil.rmtree(tmp, ignore_errors=True)
        for old in cache().glob("image-*"):  # keep the newest few; each is ~150 MB
            if old != layout and old.stat().st_mtime < time.time() - 3 * 86400:
                shutil.rmtree(old, ignore_errors=True)
    loaded = _load(key)
    assert loaded is not None
    return loaded


def push(image: Image) -> str:
    """Copy both images into the running node tier's public registry; returns the operator's reference."""
    for tag, reference in (("podline", image.reference), ("runner", image.runner)):
        _run("skopeo copy (push the operator image)", ["skopeo", "--insecure-policy", "copy", "--quiet",
             "--dest-tls-verify=false", f"oci:{image.layout}:{tag}", f"docker://{reference}"])  # fmt: skip
    return image.reference


def describe(image: Image) -> str:
    mib = 1024 * 1024
    return (f"{image.reference}: {image.size / mib:.0f} MiB uncompressed, {image.compressed / mib:.0f} MiB "
            f"compressed, built in {image.seconds:.0f} s (buildah bud) on {image.base} with {image.go}; "
            f"{image.runner}: {image.runner_size / mib:.1f} MiB")  # fmt: skip


def main() -> int:
    try:
        image = build(say=True)
    except ImageBuildFailed as error:
        print(f"[image] {error}", file=sys.stderr)
        return 1
    print(f"[image] {describe(image)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
