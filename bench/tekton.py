"""Tekton's entrypoint, built here from a tektoncd/pipeline checkout, for the node bench's Tekton anchor.

Tekton's controller and webhooks do not run here (bench/README.md says why), but what decides a Tekton
step's hand-off is its entrypoint binary (``cmd/entrypoint``, ``pkg/entrypoint``): every step container
runs it, it waits for the previous step's post file, runs the step's command and writes its own post file.
The bench builds it from a source checkout (``--tekton-src DIR``, else
``~/.cache/podline/peers/tekton-pipeline``: ``git archive`` of the ``fetch``ed repository, with the commit in
``.podline-commit``; never inside this repository), static (``CGO_ENABLED=0 go build -trimpath``; the
checkout vendors its dependencies), packs it FROM scratch at ``/ko-app/entrypoint`` (where ko puts it in
Tekton's own image) into an OCI layout with umoci, and pushes that to the node tier's public registry.
`nodesystems.Tekton` then runs pods shaped as Tekton's controller shapes a TaskRun's pod.

Where there is no checkout (CI), `find` says why and the bench runs without it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import pathlib

from bench import peer
from tests.cluster import binaries, images

NAME = "tekton entrypoint"
MODULE = "module github.com/tektoncd/pipeline"
TARGET = "/ko-app/entrypoint"  # ko's path of the binary in Tekton's entrypoint image
TAG = "entrypoint"


def default_source() -> pathlib.Path:
    return binaries.cache_dir() / "peers" / "tekton-pipeline"


@dataclasses.dataclass(frozen=True)
class Entrypoint:
    source: pathlib.Path
    commit: str
    binary: pathlib.Path
    go: str
    layout: pathlib.Path  # the OCI layout holding the image (tag `TAG`)
    image: str  # where it is pushed on the node tier

    def push(self) -> None:
        """Copy the image to the node tier's public registry (at every cluster start: its store is fresh)."""
        images.push(self.layout, TAG, self.image)


def image_reference(key: str) -> str:
    return f"{images.PUBLIC_REGISTRY}/tekton/entrypoint:{key}"


def find(source: pathlib.Path | None, *, build: bool = True) -> tuple[Entrypoint | None, str]:
    """The built entrypoint and its image (built now if ``build``), or None and why it cannot run here."""
    where = source or default_source()
    mod = where / "go.mod"
    if not mod.is_file() or MODULE not in mod.read_text() or not (where / "cmd/entrypoint").is_dir():
        return None, (
            f"no tektoncd/pipeline source in {where} (give --tekton-src DIR with a checkout of "
            "github.com/tektoncd/pipeline; see bench/README.md)"
        )
    commit = peer.commit_of(where)
    binary, go, why = peer.go_build(
        where,
        commit,
        "tekton-entrypoint",
        "Tekton's entrypoint",
        "./cmd/entrypoint",
        build=build,
        goflags="-trimpath -mod=vendor",
    )
    if binary is None:
        return None, why
    digest = hashlib.sha256(binary.read_bytes()).hexdigest()[:12]
    layout = images.binary_image(
        binaries.cache_dir() / "images" / f"tekton-entrypoint-{digest}", TAG, binary, TARGET
    )
    return Entrypoint(where, commit, binary, go, layout, image_reference(digest)), ""
