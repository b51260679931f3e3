"""``.drone.jsonnet`` and ``.drone.star``: configurations Drone evaluates into YAML before it reads them.

Jsonnet (drone/drone ``plugin/converter/jsonnet/jsonnet.go``, go-jsonnet 0.17): a file whose name ends in
``.jsonnet`` is evaluated with a stack of 500 frames and a 20-line error trace, every build and repository
field an external variable of text (``std.extVar("build.branch")``: see ``ext_vars``); an array result is a
stream, one YAML document per element, else the one result is the document. podline evaluates it with
gojsonnet, the Python binding of go-jsonnet. Drone 2.0.4's server has no files to import from (later Drone
versions import from the repository); ``podline convert`` runs beside the repository, so an ``import`` is read
relative to the file, as go-jsonnet's file importer reads it.

Starlark (``plugin/converter/starlark/starlark.go``, ``args.go``, ``write.go``): Drone runs the file, then
calls ``main(ctx)`` with ``ctx.build``, ``ctx.repo`` and ``ctx.input`` as structs (see ``context``), stops a
script after 50,000 execution steps, refuses ``load()``, and takes a dict (one document) or a list (one
document per element) as the result; any other result, a missing or uncallable ``main``, or output over
1,000,000 bytes is an error. The starlark-go binding on PyPI has no struct values, so podline evaluates it
with starlark-pyo3 (starlark-rust) with its ``struct`` extension. starlark-rust counts no steps: it asks
``check_cancelled`` once per 1,000 loop iterations and Starlark function calls, each of which takes
starlark-go at least 4 steps (5 for an empty call, 6 for an empty loop iteration), so a script is stopped
after 13,000 of them: Drone has stopped it by then too (it may stop one sooner).

Build metadata comes in as a mapping with ``models.BuildInfo``'s field names; what Drone would fill from
fields podline does not have is empty text, as it is in Drone for a build without them.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from podline.core import errors

JSONNET_MAX_STACK = 500
JSONNET_MAX_TRACE = 20
JSONNET_SUFFIXES = (".jsonnet",)
STARLARK_SUFFIXES = (".script", ".star", ".starlark")
STARLARK_MAX_STEPS = 50_000  # starlark.go: thread.SetMaxExecutionSteps(50000)
STARLARK_MAX_OUTPUT = 1_000_000  # starlark.go: limit
# starlark-rust calls check_cancelled once per this many loop iterations and Starlark function calls, each
# of which takes starlark-go at least _STARLARK_STEPS_PER_EVENT steps (measured: a call 5, an iteration 6+).
_STARLARK_TICK = 1_000
_STARLARK_STEPS_PER_EVENT = 4
_STARLARK_MAX_TICKS = STARLARK_MAX_STEPS // (_STARLARK_TICK * _STARLARK_STEPS_PER_EVENT)  # 12
# ctx as starlark.go's createArgs makes it: structs of the build, the repository and (empty) template input.
_STARLARK_PRELUDE = (
    "_drone_ctx = struct(build=struct(**_drone_ctx['build']), repo=struct(**_drone_ctx['repo']), "
    "input=struct())\n"
)

# Drone's build ext vars (jsonnet.go mapBuild) ← BuildInfo fields (None: podline has no such field).
_BUILD_VARS = {
    "event": "event", "action": "action", "environment": "target", "link": "link", "branch": "branch",
    "source": "source_branch", "before": "before", "after": "commit", "target": "branch", "ref": "ref",
    "commit": "commit", "title": "title", "message": "message", "source_repo": "fork",
    "author_login": "author", "author_name": "author_name", "author_email": "author_email",
    "author_avatar": "author_avatar", "sender": "sender",
}  # fmt: skip
_REPO_VARS = (
    "uid", "name", "namespace", "slug", "git_http_url", "git_ssh_url", "link", "branch", "config",
)  # fmt: skip
_REPO_FLAGS = ("private", "active", "trusted", "protected", "ignore_forks", "ignore_pull_requests")


def context(build: Mapping[str, Any], *, config: str) -> dict[str, dict[str, Any]]:
    """Drone's ``build`` and ``repo`` for a script: Starlark's ``ctx`` (starlark ``args.go``), and, as text,
    Jsonnet's external variables (``ext_vars``). Fields podline has no value for are empty, as in Drone."""
    out: dict[str, Any] = {var: _text(build.get(field)) for var, field in _BUILD_VARS.items()}
    out.update(cron=_text(build.get("cron")), debug=bool(build.get("debug")), params={})
    slug = _text(build.get("repo"))
    namespace, _, name = slug.rpartition("/")
    link = _text(build.get("remote")).removesuffix(".git")
    repo: dict[str, Any] = {var: "" for var in _REPO_VARS}
    repo.update(slug=slug, namespace=namespace, name=name, git_http_url=_text(build.get("remote")), link=link,
                git_ssh_url=_text(build.get("ssh_url")), branch=_text(build.get("repo_branch")),
                config=config, visibility=_text(build.get("visibility")))  # fmt: skip
    repo.update({flag: False for flag in _REPO_FLAGS}, private=bool(build.get("private")))
    return {"build": out, "repo": repo}


def ext_vars(build: Mapping[str, Any], *, config: str) -> dict[str, str]:
    """Drone's external variables for a Jsonnet file (``mapBuild``, ``mapRepo``): every one set, as text."""
    ctx = context(build, config=config)
    out = {f"build.{var}": ctx["build"][var] for var in _BUILD_VARS}
    out.update({f"repo.{var}": _text(ctx["repo"][var]) for var in (*_REPO_VARS, *_REPO_FLAGS)})
    return out


def jsonnet(source: str, *, filename: str, build: Mapping[str, Any]) -> str:
    """The YAML text Drone makes of a Jsonnet configuration. Raises ``errors.InvalidDroneFile``."""
    try:
        gojsonnet = importlib.import_module("_gojsonnet")  # the gojsonnet package's module; untyped
    except ImportError:
        raise errors.InvalidDroneFile.at(filename, _missing("gojsonnet", "Jsonnet")) from None

    try:
        result = gojsonnet.evaluate_snippet(
            filename,
            source,
            max_stack=JSONNET_MAX_STACK,
            max_trace=JSONNET_MAX_TRACE,
            ext_vars=ext_vars(build, config=filename),
        )
    except RuntimeError as exc:
        raise errors.InvalidDroneFile.at(filename, "Jsonnet error: " + " ".join(str(exc).split())) from None
    value = json.loads(result)
    return _stream(value if isinstance(value, list) else [value])


def starlark(source: str, *, filename: str, build: Mapping[str, Any]) -> str:
    """The YAML text Drone makes of a Starlark configuration. Raises ``errors.InvalidDroneFile``."""
    try:
        sl = importlib.import_module("starlark")  # starlark-pyo3 (untyped for mypy through importlib)
    except ImportError:
        raise errors.InvalidDroneFile.at(filename, _missing("starlark-pyo3", "Starlark")) from None
    ticks = 0

    def cancelled() -> bool:
        nonlocal ticks
        ticks += 1
        return ticks > _STARLARK_MAX_TICKS

    module = sl.Module()
    module.add_callable("print", _discard)  # Drone logs print() at trace level only
    module["_drone_ctx"] = context(build, config=filename)
    globals_ = sl.Globals.extended_by([sl.LibraryExtension.StructType])
    options = sl.EvalOptions(check_cancelled=cancelled)
    loader = sl.FileLoader(_no_load)

    def run(name: str, code: str) -> Any:
        return sl.eval_with(
            options, module, sl.parse(name, code, sl.Dialect.standard()), globals_, loader
        ).value

    try:
        run("<drone>", _STARLARK_PRELUDE)
        run(filename, source)
        value, kind = _call_main(run)
    except sl.StarlarkError as exc:
        stopped = ticks > _STARLARK_MAX_TICKS
        raise errors.InvalidDroneFile.at(
            filename, _starlark_error(str(exc), filename, stopped=stopped)
        ) from None
    except ValueError as exc:
        raise errors.InvalidDroneFile.at(filename, str(exc)) from None
    text = _stream(value if kind == "list" else [value])
    if len(text.encode()) > STARLARK_MAX_OUTPUT:
        raise errors.InvalidDroneFile.at(filename, f"Starlark output is over {STARLARK_MAX_OUTPUT:,} bytes")
    return text


def _call_main(run: Callable[[str, str], Any]) -> tuple[Any, str]:
    """``main(ctx)``'s result and its type; ``ValueError`` naming what Drone refuses (starlark.go)."""
    try:
        kind = run("<drone>", "type(main)")
    except Exception:  # noqa: BLE001 - starlark's error: main is not defined
        raise ValueError("Starlark error: the file has no main function") from None
    if kind != "function":
        raise ValueError(f"Starlark error: main must be a function, not {kind}")
    run("<drone>", "_drone_out = main(_drone_ctx)")
    kind = run("<drone>", "type(_drone_out)")
    if kind not in ("dict", "list"):
        raise ValueError(f"Starlark error: main(ctx) must return a dict or a list, not {kind}")
    return run("<drone>", "_drone_out"), kind


def _starlark_error(text: str, filename: str, *, stopped: bool) -> str:
    """One line of starlark-rust's report: its ``error:`` line and the line of the file it points at."""
    if stopped:
        return f"Starlark error: the script ran past Drone's limit of {STARLARK_MAX_STEPS:,} execution steps"
    message = next((line for line in text.splitlines() if line.startswith("error: ")), text.strip())
    place = re.search(rf"^ *--> {re.escape(filename)}:(\d+):\d+$", text, re.MULTILINE)
    where = f" (line {place.group(1)})" if place else ""
    message = message.removeprefix("error: ").removeprefix("ValueError: ")
    return f"Starlark error{where}: " + " ".join(message.split())


def _no_load(name: str) -> Any:
    raise ValueError(f"cannot load {name}: Drone cannot load external scripts")


def _discard(*args: Any, **kwargs: Any) -> None:
    del args, kwargs


def _missing(package: str, language: str) -> str:
    return f"{language} files need the {package} package: pip install 'podline[drone]'"


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return json.dumps(value)
    return str(value)


def _stream(docs: list[Any]) -> str:
    return "".join(f"---\n{json.dumps(doc, ensure_ascii=False)}\n" for doc in docs)
