"""A run's target platform: the nodes its pod may go to, and the manifest of a multi-arch image that is read.

A Pipeline names its platform in Drone's ``platform`` (``os``, ``arch``, ``variant``), or in its
``node_selector`` by the well-known node labels ``kubernetes.io/os`` and ``kubernetes.io/arch`` (the kubelet
sets them to Go's ``GOOS``/``GOARCH``). The two must agree (``validation``). ``platform`` becomes those node
labels in the pod's ``nodeSelector``, so the pod runs on the platform its images' commands were read for.

Drone's spellings are accepted in ``platform`` (``x86_64``, ``aarch64``, ``armhf``, …, normalised as
containerd does: ``imageconfigs.normalize_platform``); a node selector must use the label's own value
(``amd64``), since no node has any other. Only ``linux``: every step runs under podline's entrypoint, a Linux
binary.
"""

from __future__ import annotations

from collections.abc import Mapping

from podline.core import imageconfigs, models

OS_LABEL = "kubernetes.io/os"
ARCH_LABEL = "kubernetes.io/arch"
OPERATING_SYSTEMS = ("linux",)
# Go's GOARCH values for linux: what the kubelet can write in kubernetes.io/arch.
ARCHITECTURES = ("386", "amd64", "arm", "arm64", "loong64", "mips", "mips64", "mips64le", "mipsle", "ppc64",
                 "ppc64le", "riscv64", "s390x")  # fmt: skip
ALIASES = ("x86_64", "x86-64", "aarch64", "i386", "i686", "armhf", "armel")  # accepted in platform.arch


def arch_label(arch: str) -> str | None:
    """The ``kubernetes.io/arch`` value of an architecture as Drone or containerd spell it
    (``x86_64`` → ``amd64``, ``AArch64`` → ``arm64``); None for an unknown one."""
    normal = imageconfigs.normalize_platform("linux", arch).architecture
    return normal if normal in ARCHITECTURES else None


def os_label(os: str) -> str:
    """The ``kubernetes.io/os`` value of an operating system as Drone spells it (``Linux`` → ``linux``)."""
    return imageconfigs.normalize_platform(os, "amd64").os


def target(spec: models.PipelineSpec) -> imageconfigs.Platform | None:
    """The platform the run's image configs are read for: ``node_selector``'s ``kubernetes.io/os`` and
    ``kubernetes.io/arch`` where set, else ``platform``'s ``os``, ``arch`` and ``variant``, normalised (the
    OS defaults to ``linux``); None when neither names an architecture (then ``PODLINE_PLATFORM``, by default
    the operator's own).

    ``platform.variant`` applies unless the node selector names another architecture than ``platform.arch``
    (which validation refuses)."""
    selector = spec.node_selector
    platform = spec.platform or models.Platform()
    arch = selector.get(ARCH_LABEL) or platform.arch
    if not arch:
        return None
    os = selector.get(OS_LABEL) or platform.os or OPERATING_SYSTEMS[0]
    own = not platform.arch or _same_arch(platform.arch, arch)
    return imageconfigs.normalize_platform(os, arch, (platform.variant or "") if own else "")


def node_selector(spec: models.PipelineSpec) -> dict[str, str]:
    """The pod's ``nodeSelector``: ``platform``'s OS and architecture as node labels, then the user's
    ``node_selector`` (which, once validated, agrees with them)."""
    platform = spec.platform or models.Platform()
    labels: dict[str, str] = {}
    if platform.os:
        labels[OS_LABEL] = os_label(platform.os)
    if platform.arch:
        labels[ARCH_LABEL] = arch_label(platform.arch) or platform.arch
    return {**labels, **spec.node_selector}


def conflicts(spec: models.PipelineSpec) -> Mapping[str, tuple[str, str]]:
    """The fields of ``platform`` whose node label the user's ``node_selector`` sets to another value:
    ``{"arch": (label, selector's value)}``."""
    platform = spec.platform or models.Platform()
    out = {}
    for field, label, value in (("os", OS_LABEL, platform.os), ("arch", ARCH_LABEL, platform.arch)):
        chosen = spec.node_selector.get(label)
        if value and chosen is not None:
            wanted = os_label(value) if field == "os" else arch_label(value) or value
            if wanted != chosen:
                out[field] = (label, chosen)
    return out


def _same_arch(a: str, b: str) -> bool:
    return (arch_label(a) or a) == (arch_label(b) or b)
