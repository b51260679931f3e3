"""``.drone.jsonnet`` and ``.drone.star``: configurations Drone evaluates into YAML before it reads them.

Jsonnet (drone/drone ``plugin/converter/jsonnet/jsonnet.go``, go-jsonnet 0.17): a file whose name ends in
``.jsonnet`` is evaluated with a stack of 500 frames and a 20-line error trace, every build and repository
field an external variable of text (``std.extVar("build.branch")``: see ``ext_vars``); an array result is a
stream, one YAML document per element, else the one result is the document. podline evaluates it with
gojsonnet, the Python binding of go-jsonnet. Drone 2.0.4's server has no files to import from (later Drone
versions import from the repository); ``podline convert`` runs beside the repository, so an ``import`` is read
relative to the file, as go-jsonnet's file importer reads it.

Starlark (``plugin/converter/starlark``): Drone calls ``main(ctx)`` with ``ctx.build`` and ``ctx.repo`` as
starlark-go *structs*, stops a script after 50,000 execution steps and refuses output over 1,000,000 bytes.
The starlark-go binding on PyPI (starlark-go 1.0.1) has neither structs nor a step limit, so a script
cannot be given the ``ctx`` Drone gives it: ``starlark`` refuses, saying so and what to do instead.

Build metadata comes in as a mapping with ``models.BuildInfo``'s field names; what Drone would fill from
fields podline does not have is empty text, as it is in Drone for a build without them.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from typing import Any

from podline.core import errors

JSONNET_MAX_STACK = 500
JSONNET_MAX_TRACE = 20
JSONNET_SUFFIXES = (".jsonnet",)
STARLARK_SUFFIXES = (".script", ".star", ".starlark")

# Drone's build ext vars (jsonnet.go mapBuild) ← BuildInfo fields (None: podline has no such field).
_BUILD_VARS = {
    "event": "event", "action": "action", "environment": "target", "link": "link", "branch": "branch",
    "source": "source", "before": "before", "after": "commit", "target": "branch", "ref": "ref",
    "commit": "commit", "title": "title", "message": "message", "source_repo": "fork",
    "author_login": "author", "author_name": "author_name", "author_email": "author_email",
    "author_avatar": "author_avatar", "sender": "sender",
}  # fmt: skip
_REPO_VARS = (
    "uid", "name", "namespace", "slug", "git_http_url", "git_ssh_url", "link", "branch", "config",
)  # fmt: skip
_REPO_FLAGS = ("private", "active", "trusted", "protected", "ignore_forks", "ignore_pull_requests")


def ext_vars(build: Mapping[str, Any], *, config: str) -> dict[str, str]:
    """Drone's external variables for a Jsonnet file (``mapBuild``, ``mapRepo``): every one set, as text."""
    out = {f"build.{var}": _text(build.get(field)) for var, field in _BUILD_VARS.items()}
    slug = _text(build.get("repo"))
    namespace, _, name = slug.rpartition("/")
    link = _text(build.get("remote")).removesuffix(".git")
    repo = {"slug": slug, "namespace": namespace, "name": name, "git_http_url": _text(build.get("remote")),
            "link": link, "config": config}  # fmt: skip
    out.update({f"repo.{var}": repo.get(var, "") for var in _REPO_VARS})
    out.update({f"repo.{flag}": "false" for flag in _REPO_FLAGS})
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
    docs = value if isinstance(value, list) else [value]
    return "".join(f"---\n{json.dumps(doc)}\n" for doc in docs)


def starlark(source: str, *, filename: str, build: Mapping[str, Any]) -> str:
    """Drone's Starlark evaluation, which cannot be had here: always raises ``errors.InvalidDroneFile`` saying why."""
    del source, build
    raise errors.InvalidDroneFile.at(
        filename,
        "Starlark files are not evaluated: Drone calls main(ctx) with ctx.build and ctx.repo as starlark-go "
        "structs and a 50,000-step limit, which the starlark-go binding for Python (starlark-go 1.0.1) does "
        "not provide; evaluate it with drone-cli (`drone starlark --stdout`) and convert the YAML it prints",
    )


def _missing(package: str, language: str) -> str:
    return f"{language} files need the {package} package: pip install 'podline[drone]'"


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return json.dumps(value)
    return str(value)
