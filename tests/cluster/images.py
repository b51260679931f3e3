"""The node tier's container images: names for tests to import, and how they are made from local files.

No image is downloaded. The images are built with ``umoci`` into an OCI layout in the cache and pushed
with ``skopeo`` to the node tier's registries at every cluster start:

- busybox: Debian's static busybox with a symlink per applet (``sh``, ``echo``, ``sleep``, ``cat``,
  ``wget``, ``nc`` …). Pushed to the public registry, and (with one more environment variable, so its
  image ID differs) to the private (htpasswd) registry.
- placeholder: a static sleeper (``placeholder.c``) as entrypoint *and* as ``/bin/sh``, so a container
  started on it with any command (even ``/bin/sh -c 'exit 3'``) just sleeps until SIGTERM, then exits 0.
- pause: the same sleeper as the pod sandbox image; also imported into containerd directly.
- runner: the entrypoint binary (``tests/entrypointbin.py`` builds it from ``operator/entrypoint/``) at
  ``/podline-entrypoint`` and the empty marker ``/.podline-runner``, nothing else (docs/in-pod.md). Tagged
  with the hash of the entrypoint's sources, so a node never runs a stale one from its image store.
- Docker Hub names (`DOCKER_HUB`): the images docs/examples and the seed document name, built here and
  pushed to the public registry under the repository Docker Hub would serve (``busybox:1.36`` is
  ``localhost:5101/library/busybox:1.36``); containerd's registry host configuration (`containerd`)
  sends every ``docker.io`` pull there, so the kubelet pulls ``busybox:1.36`` as written. They are
  stand-ins: ``drone/placeholder:1`` is the placeholder (drone-runner-kube starts every step container on
  it with ``/bin/sh -c …``, so it must sleep whatever it is told, as ours does); ``redis:7`` is busybox
  whose ``redis-server`` answers on port 6379 with ``nc``; the ``golang`` tags are busybox with a ``go``
  that only says what it was asked to do; ``plugins/docker:test`` is busybox whose entrypoint tries what only
  a privileged container may (Drone runs plugins/docker privileged).

The layout is rebuilt only when its inputs (busybox binary, placeholder source, entrypoint sources, recipe
version) change.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import tempfile
from collections.abc import Callable

from tests import entrypointbin
from tests.cluster import binaries

PUBLIC_REGISTRY = "localhost:5101"  # no authentication
PRIVATE_REGISTRY = "localhost:5100"  # htpasswd authentication, see registry.USERNAME/PASSWORD

BUSYBOX = f"{PUBLIC_REGISTRY}/podline/busybox:1"
PRIVATE_BUSYBOX = f"{PRIVATE_REGISTRY}/private/busybox:1"
PLACEHOLDER = f"{PUBLIC_REGISTRY}/podline/placeholder:1"
PAUSE = f"{PUBLIC_REGISTRY}/podline/pause:1"

# Docker Hub references -> tag in the OCI layout. Pushed to PUBLIC_REGISTRY under the repository Docker
# Hub would serve them from; `containerd` mirrors docker.io (and its legacy name index.docker.io) there.
DOCKER_HUB = {
    "docker.io/library/busybox:1.36": "busybox",
    "docker.io/drone/placeholder:1": "placeholder",
    "docker.io/library/redis:7": "redis",
    "docker.io/library/golang:latest": "golang-latest",
    "docker.io/library/golang:1.7": "golang-1.7",
    "docker.io/library/golang:1.12": "golang-1.12",
    "docker.io/plugins/docker:test": "plugins-docker",
}
GOLANG_TAGS = ("latest", "1.7", "1.12")
# Registry hosts that image references in docs/examples name, served by a local registry instead (so no
# name is ever looked up outside the machine): host -> the local registry host that answers for it.
ALIASES = {"docker.io": PUBLIC_REGISTRY, "registry.internal.company.com": PRIVATE_REGISTRY}


def operator_mirrors() -> str:
    """``PODLINE_REGISTRY_MIRRORS`` for an operator on the node tier: image configs of the `ALIASES` hosts are
    read where containerd pulls them from, never from the hosts' own names."""
    return ",".join(f"{alias}=http://127.0.0.1:{local.rsplit(':', 1)[1]}" for alias, local in ALIASES.items())


def hub_repository(reference: str) -> str:
    """Where a ``docker.io/…`` reference lives on the public registry: ``localhost:5101/library/redis:7``."""
    return f"{PUBLIC_REGISTRY}/{reference.removeprefix('docker.io/')}"


# Which local image goes where: reference -> tag in the OCI layout.
PUSHES = {
    BUSYBOX: "busybox",
    PRIVATE_BUSYBOX: "busybox-private",
    PLACEHOLDER: "placeholder",
    PAUSE: "pause",
    **{hub_repository(reference): tag for reference, tag in DOCKER_HUB.items()},
}

RUNNER = f"{PUBLIC_REGISTRY}/podline/runner:{entrypointbin.source_hash()}"
PUSHES[RUNNER] = "runner"

RECIPE_VERSION = "4"  # bump when the way images are built changes
SOURCE = binaries.HERE / "placeholder.c"


def _run(*argv: str) -> str:
    result = subprocess.run(argv, check=False, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()}")
    return result.stdout


def layout_dir() -> pathlib.Path:
    """The OCI layout holding the images, built if missing or outdated."""
    digest = hashlib.sha256()
    for part in (RECIPE_VERSION.encode(), SOURCE.read_bytes(), binaries.BUSYBOX.read_bytes()):
        digest.update(hashlib.sha256(part).digest())
    digest.update(entrypointbin.source_hash().encode())
    layout = binaries.cache_dir() / "images" / digest.hexdigest()[:16]
    if not (layout / "index.json").is_file():
        _build(layout)
    return layout


def sleeper_binary() -> pathlib.Path:
    """The placeholder program, compiled statically into the cache (keyed by the source's hash)."""
    key = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:16]
    path = binaries.cache_dir() / "bin" / f"placeholder-{key}" / "placeholder"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        _run("gcc", "-static", "-Os", "-s", "-o", f"{path}.tmp", str(SOURCE))
        os.replace(f"{path}.tmp", path)
    return path


def _build(layout: pathlib.Path) -> None:
    layout.parent.mkdir(parents=True, exist_ok=True)
    sleeper = sleeper_binary()
    with tempfile.TemporaryDirectory(dir=layout.parent) as scratch:
        work = pathlib.Path(scratch)
        oci = work / "oci"
        _run("umoci", "init", "--layout", str(oci))
        _image(oci, work, "busybox", _busybox_rootfs, cmd=["sh"])
        # Its own image ID, so containerd never reports one image under the other registry's name.
        _image(oci, work, "busybox-private", _busybox_rootfs, cmd=["sh"], env=["PODLINE_TEST_IMAGE=private"])
        _image(oci, work, "placeholder", lambda root: _sleeper_rootfs(root, sleeper, "placeholder", "bin/sh"),
               entrypoint=["/placeholder"])  # fmt: skip
        _image(
            oci, work, "pause", lambda root: _sleeper_rootfs(root, sleeper, "pause"), entrypoint=["/pause"]
        )
        _image(oci, work, "runner", _runner_rootfs, entrypoint=["/podline-entrypoint"])
        _image(oci, work, "redis", _redis_rootfs, entrypoint=["/usr/local/bin/redis-server"])
        _image(oci, work, "plugins-docker", _plugins_docker_rootfs, entrypoint=["/bin/drone-docker"])
        for version in GOLANG_TAGS:
            _image(oci, work, f"golang-{version}", _golang_rootfs, cmd=["sh"],
                   env=[f"GOLANG_VERSION={version}", "PATH=/usr/local/go/bin:/bin:/sbin:/usr/bin:/usr/sbin"])  # fmt: skip
        _run("umoci", "gc", "--layout", str(oci))
        if layout.exists():
            shutil.rmtree(layout)
        oci.rename(layout)


def _image(
    oci: pathlib.Path,
    work: pathlib.Path,
    tag: str,
    fill: Callable[[pathlib.Path], None],
    *,
    entrypoint: list[str] | None = None,
    cmd: list[str] | None = None,
    env: list[str] | None = None,
) -> None:
    image = f"{oci}:{tag}"
    bundle = work / f"bundle-{tag}"
    _run("umoci", "new", "--image", image)
    _run("umoci", "unpack", "--image", image, str(bundle))
    fill(bundle / "rootfs")
    _run("umoci", "repack", "--image", image, str(bundle))
    config = ["umoci", "config", "--image", image, "--os", "linux", "--architecture", "amd64",
              "--config.env", "PATH=/bin:/sbin:/usr/bin:/usr/sbin", "--config.workingdir", "/"]  # fmt: skip
    config += [arg for part in entrypoint or [] for arg in ("--config.entrypoint", part)]
    config += [arg for part in cmd or [] for arg in ("--config.cmd", part)]
    config += [arg for variable in env or [] for arg in ("--config.env", variable)]
    _run(*config)
    shutil.rmtree(bundle)


def binary_image(layout: pathlib.Path, tag: str, binary: pathlib.Path, target: str) -> pathlib.Path:
    """An OCI layout at ``layout`` with one image, ``tag``: FROM scratch, the static ``binary`` at
    ``target`` as its entrypoint and nothing else (a peer's own binary, e.g. Tekton's entrypoint for the
    node bench). Built once: an existing layout is kept, so key ``layout`` by the binary."""
    if (layout / "index.json").is_file():
        return layout
    if not is_static(binary):
        raise RuntimeError(f"{binary} is dynamically linked; it must be built with CGO_ENABLED=0")

    def fill(root: pathlib.Path) -> None:
        path = root / target.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(binary, path)
        path.chmod(0o755)

    layout.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=layout.parent) as scratch:
        work = pathlib.Path(scratch)
        oci = work / "oci"
        _run("umoci", "init", "--layout", str(oci))
        _image(oci, work, tag, fill, entrypoint=[target])
        _run("umoci", "gc", "--layout", str(oci))
        oci.rename(layout)
    return layout


def is_static(program: pathlib.Path) -> bool:
    """True if the ELF file has no program interpreter, i.e. runs in an empty root filesystem."""
    data = program.read_bytes()
    if data[:5] != b"\x7fELF\x02":  # 64-bit ELF only; that is all this machine runs
        return False
    phoff = int.from_bytes(data[0x20:0x28], "little")
    entry_size = int.from_bytes(data[0x36:0x38], "little")
    count = int.from_bytes(data[0x38:0x3A], "little")
    types = (
        int.from_bytes(data[phoff + i * entry_size : phoff + i * entry_size + 4], "little")
        for i in range(count)
    )
    return 3 not in types  # PT_INTERP


def _busybox_rootfs(root: pathlib.Path) -> None:
    if not is_static(binaries.BUSYBOX):
        raise RuntimeError(f"{binaries.BUSYBOX} is dynamically linked; install busybox-static")
    for directory in ("bin", "etc", "tmp", "root", "proc", "sys", "dev", "var/tmp"):
        (root / directory).mkdir(parents=True, exist_ok=True)
    (root / "tmp").chmod(0o1777)
    shutil.copy2(binaries.BUSYBOX, root / "bin/busybox")
    for applet in _run(str(binaries.BUSYBOX), "--list").split():
        link = root / "bin" / applet
        if not link.exists():
            link.symlink_to("busybox")
    (root / "etc/passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"
    )
    (root / "etc/group").write_text("root:x:0:\nnobody:x:65534:\n")


def _redis_rootfs(root: pathlib.Path) -> None:
    """busybox, with a ``redis-server`` that accepts connections on 6379 (and echoes what it is sent)."""
    _busybox_rootfs(root)
    _script(root / "usr/local/bin/redis-server", "exec nc -ll -p 6379 -e /bin/cat")


def _golang_rootfs(root: pathlib.Path) -> None:
    """busybox, with a ``go`` on Go's usual PATH that says what it was asked and succeeds."""
    _busybox_rootfs(root)
    _script(
        root / "usr/local/go/bin/go", 'echo "go $* (podline test image ${GOLANG_VERSION}: no Go toolchain)"'
    )


def _plugins_docker_rootfs(root: pathlib.Path) -> None:
    """busybox, with a ``drone-docker`` entrypoint (as plugins/docker has) that shows whether it runs
    privileged: it mounts a tmpfs (CAP_SYS_ADMIN, which only a privileged container has here) and prints
    the plugin settings it was given."""
    _busybox_rootfs(root)
    _script(
        root / "bin/drone-docker",
        'grep CapEff /proc/self/status\nmkdir -p /tmp/dind && mount -t tmpfs dind /tmp/dind && echo "privileged: mounted"'
        '\necho "repo=$PLUGIN_REPO tags=$PLUGIN_TAGS"',
    )


def _script(path: pathlib.Path, body: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


def _sleeper_rootfs(root: pathlib.Path, sleeper: pathlib.Path, name: str, *aliases: str) -> None:
    shutil.copy2(sleeper, root / name)
    for alias in aliases:
        target = root / alias
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(sleeper, target)


def _runner_rootfs(root: pathlib.Path) -> None:
    """The runner image: FROM scratch, the entrypoint binary and the runner marker."""
    try:
        binary = entrypointbin.build()
    except entrypointbin.GoMissing as error:
        raise binaries.MissingBinaries("node", [f"go ({error})"]) from error
    if not is_static(binary):
        raise RuntimeError(f"{binary} is dynamically linked; it must be built with CGO_ENABLED=0")
    target = root / "podline-entrypoint"
    shutil.copyfile(binary, target)
    target.chmod(0o755)
    (root / ".podline-runner").write_bytes(b"")


def push_all(layout: pathlib.Path, *, private_registry: str, username: str, password: str) -> None:
    """Copy every image to its registry (plain HTTP on loopback)."""
    for reference, tag in PUSHES.items():
        private = reference.startswith(private_registry + "/")
        push(layout, tag, reference, credentials=f"{username}:{password}" if private else None)


def push(layout: pathlib.Path, tag: str, reference: str, *, credentials: str | None = None) -> None:
    """Copy one image (or index, with all its images) of the layout to a registry (plain HTTP on loopback)."""
    argv = ["skopeo", "--insecure-policy", "copy", "--quiet", "--all", "--dest-tls-verify=false"]
    if credentials is not None:
        argv += ["--dest-creds", credentials]
    _run(*argv, f"oci:{layout}:{tag}", f"docker://{reference}")


MULTIARCH_TAG = "multiarch"


def multiarch_layout(layout: pathlib.Path, directory: pathlib.Path) -> pathlib.Path:
    """A copy of ``layout`` (in ``directory``) with one more tag, ``MULTIARCH_TAG``: an OCI index over busybox
    as linux/amd64 and, with the same layers, as linux/arm64/v8 with ``Cmd`` ``echo arm64`` (so a test sees
    which one was chosen). Nothing is built: the arm64 image differs from busybox only in its config."""
    target = directory / "multiarch-oci"
    shutil.copytree(layout, target)
    _run("umoci", "config", "--image", f"{target}:busybox", "--tag", "busybox-arm64", "--architecture", "arm64",
         "--config.cmd", "echo", "--config.cmd", "arm64")  # fmt: skip
    tags = json.loads((target / "index.json").read_text())
    by_tag = {entry["annotations"]["org.opencontainers.image.ref.name"]: entry for entry in tags["manifests"]}
    entries = []
    for tag, platform in (("busybox", {"architecture": "amd64", "os": "linux"}),
                          ("busybox-arm64", {"architecture": "arm64", "os": "linux", "variant": "v8"})):  # fmt: skip
        entries.append({**{k: by_tag[tag][k] for k in ("mediaType", "digest", "size")}, "platform": platform})
    index_type = "application/vnd.oci.image.index.v1+json"
    body = json.dumps({"schemaVersion": 2, "mediaType": index_type, "manifests": entries}).encode()
    digest = hashlib.sha256(body).hexdigest()
    (target / "blobs" / "sha256" / digest).write_bytes(body)
    tags["manifests"].append({"mediaType": index_type, "digest": f"sha256:{digest}", "size": len(body),
                              "annotations": {"org.opencontainers.image.ref.name": MULTIARCH_TAG}})  # fmt: skip
    (target / "index.json").write_text(json.dumps(tags))
    return target


def import_into_containerd(layout: pathlib.Path, tag: str, reference: str, *, ctr: str, address: str) -> None:
    """Put one image straight into containerd's CRI namespace, so no pull is needed (the sandbox image)."""
    with tempfile.TemporaryDirectory() as scratch:
        archive = pathlib.Path(scratch) / f"{tag}.tar"
        _run(
            "skopeo",
            "--insecure-policy",
            "copy",
            "--quiet",
            f"oci:{layout}:{tag}",
            f"docker-archive:{archive}:{reference}",
        )
        _run(ctr, "--address", address, "--namespace", "k8s.io", "images", "import", str(archive))
