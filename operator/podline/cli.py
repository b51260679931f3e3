"""The ``podline`` console script.

  podline render FILE… [--build JSON | --tag T …]   the objects the operator would create, without a cluster
  podline convert .drone.yml      one Pipeline resource per ``kind: pipeline`` document
  podline operator                run the operator (configured by PODLINE_* variables)
  podline logs PIPELINE [-f]      each step's logs in step order (--run RUN: a past run, from the archive)
  podline get [PIPELINE]          a summary of runs, and the archived ones
  podline dashboard               a web view of runs, live (with your kubeconfig's credentials)

Errors are one line per problem on stderr with exit code 1 (2 for usage); never a traceback.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NoReturn

import yaml

from podline.core import auths, builds, conventions, converting, errors, kubenames, plans, runs, scheduling

RENDER_UID = "00000000-0000-0000-0000-000000000000"
# The apiserver accepts JSON nested up to 10000 levels (a Pipeline's plugin settings may be that deep).
# Python's default recursion limit (1000) cannot even decode it: kopf's watch would die on one such Pipeline.
RECURSION_LIMIT = 3 * 10_000


class CliError(Exception):
    def __init__(self, lines: Iterable[str]) -> None:
        self.lines = list(lines)
        super().__init__("\n".join(self.lines))


def _load_documents(paths: Sequence[str]) -> list[tuple[str, int, Any]]:
    docs = []
    for path in paths:
        try:
            with open(path, encoding="utf-8") if path != "-" else sys.stdin as handle:
                for index, doc in enumerate(yaml.safe_load_all(handle)):
                    if doc is not None:
                        docs.append((path, index, doc))
        except OSError as exc:
            raise CliError([f"{path}: {exc.strerror}"]) from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else path
            raise CliError([f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})"]) from None
    return docs


def _secret_source(doc: dict[str, Any], where: str) -> auths.SourceSecret:
    data: dict[str, bytes] = {}
    try:
        for key, value in (doc.get("data") or {}).items():
            data[key] = base64.b64decode(str(value), validate=True)
    except (ValueError, TypeError):
        raise CliError(
            [f'{where}: Secret "{doc["metadata"].get("name")}" has data that is not base64']
        ) from None
    for key, value in (doc.get("stringData") or {}).items():
        data[key] = str(value).encode()
    return auths.SourceSecret(name=doc["metadata"]["name"], type=doc.get("type", "Opaque"), data=data)


BUILD_FLAGS = ("tag", "branch", "commit", "event", "ref", "number", "pull_request")


def build_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Build metadata given on the command line: ``--build-file``, then ``--build`` (JSON), then the flags.
    Checked here, so a mistake names the option (``--build.number: …``), not a Pipeline."""
    out: dict[str, Any] = {}
    if getattr(args, "build_file", None):
        out.update(_mapping_from(args.build_file, _read_text(args.build_file), "--build-file"))
    if getattr(args, "build", None):
        out.update(_mapping_from("--build", args.build, "--build"))
    for name in BUILD_FLAGS:
        value = getattr(args, name, None)
        if value is not None:
            out[name] = value
    if out:
        try:
            runs.build_info(out, path="--build")
        except errors.PodlineError as exc:
            raise CliError(exc.lines()) from None
    return out


def _read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError as exc:
        raise CliError([f"{path}: {exc.strerror}"]) from None


def _mapping_from(where: str, text: str, option: str) -> dict[str, Any]:
    try:
        value = yaml.safe_load(text)  # JSON is YAML
    except yaml.YAMLError:
        raise CliError([f"{where}: {option} must be a JSON (or YAML) object of build metadata"]) from None
    if not isinstance(value, dict):
        raise CliError([f"{where}: {option} must be a JSON (or YAML) object of build metadata"])
    return value


def _with_build(doc: dict[str, Any], build: Mapping[str, Any]) -> dict[str, Any]:
    """The Pipeline with ``build`` laid over its ``podline.dev/build`` annotation, as if it had been annotated
    so: ``render`` then plans the run exactly as the operator would plan that object."""
    if not build:
        return doc
    meta = dict(doc.get("metadata") or {})
    notes = dict(meta.get("annotations") or {})
    merged: dict[str, Any] = {}
    try:
        existing = json.loads(notes.get(conventions.ANNOTATION_BUILD) or "{}")
        merged.update(existing if isinstance(existing, dict) else {})
    except ValueError:
        pass  # the operator reports the annotation; the command line's metadata replaces it here
    merged.update(build)
    notes[conventions.ANNOTATION_BUILD] = json.dumps(merged)
    meta["annotations"] = notes
    return {**doc, "metadata": meta}


def _has_build(doc: Mapping[str, Any]) -> bool:
    return bool(((doc.get("metadata") or {}).get("annotations") or {}).get(conventions.ANNOTATION_BUILD))


def render(
    paths: Sequence[str], *, policy_env: dict[str, str] | None = None, build: Mapping[str, Any] | None = None
) -> str:
    """The objects the operator would create for each Pipeline; ``build``: metadata over the annotation's."""
    from podline.shell import settings as settings_  # settings parsing is pure; no cluster is touched

    policy = settings_.Settings.from_env(policy_env).policy
    secrets, pipelines = _sort_documents(paths)
    out: list[dict[str, Any]] = []
    problems: list[str] = []
    given = [_with_build(doc, build or {}) for _, doc in pipelines]
    bodies = [
        {**doc, "metadata": {"namespace": "default", "uid": RENDER_UID, **(doc.get("metadata") or {})}}
        for doc in given
    ]
    in_builds = builds.runs_if_passing(bodies)
    for (where, _), body in zip(pipelines, bodies, strict=True):
        namespace, name = body["metadata"]["namespace"], body["metadata"].get("name")
        if not name:
            problems.append(f"{where}: metadata.name is required")
            continue
        run, env = in_builds.get((namespace, name), (None, ()))
        if env:
            deps = ", ".join(builds.member_of(body).depends_on)
            print(f"{name}: note: runs after {deps} ended, as if they succeeded", file=sys.stderr)
        plan = runs.plan_of(body, policy, run=run, env=env)  # the operator's own plan, from the same object
        try:
            if isinstance(plan, errors.PodlineError):
                raise plan
            _note_empty_build(name, body)
            out.extend(_render_plan(plan, name=name, namespace=namespace, secrets=secrets))
        except errors.PodlineError as exc:
            problems.extend(f"{name}: {line}" for line in exc.lines())
    return _output(yaml.safe_dump_all(out, sort_keys=False) if out else "", problems)


def _note_empty_build(name: str, doc: Mapping[str, Any]) -> None:
    if "${" in json.dumps(doc.get("spec")) and not _has_build(doc):
        print(
            f"{name}: note: without build metadata every ${{…}} build variable is empty; give it with "
            "--build or --tag, --commit, … (or the podline.dev/build annotation)",
            file=sys.stderr,
        )


def _sort_documents(
    paths: Sequence[str],
) -> tuple[dict[tuple[str, str], auths.SourceSecret], list[tuple[str, dict[str, Any]]]]:
    """The files' Secrets (by namespace and name) and Pipelines (with where each was found)."""
    secrets: dict[tuple[str, str], auths.SourceSecret] = {}
    pipelines = []
    for path, index, doc in _load_documents(paths):
        where = f"{path}[{index}]"
        if not isinstance(doc, dict):
            raise CliError([f"{where}: a document must be a mapping"])
        kind = doc.get("kind")
        if kind == "Secret" and isinstance(doc.get("metadata"), dict):
            ns = doc["metadata"].get("namespace", "default")
            secrets[(ns, doc["metadata"].get("name", ""))] = _secret_source(doc, where)
        elif kind == conventions.KIND and str(doc.get("apiVersion", "")).startswith(conventions.GROUP + "/"):
            pipelines.append((where, doc))
        elif kind == "pipeline":
            raise CliError([f"{where}: a Drone document; run `podline convert {path}` first"])
        else:
            print(f"{where}: skipping {kind or 'a document without kind'}", file=sys.stderr)
    if not pipelines:
        raise CliError(["no Pipeline resources found"])
    return secrets, pipelines


def _render_plan(
    plan: plans.RunPlan,
    *,
    name: str,
    namespace: str,
    secrets: Mapping[tuple[str, str], auths.SourceSecret],
) -> tuple[dict[str, Any], ...]:
    """The objects the operator would create for ``plan`` (the pull Secret's from the given Secrets)."""
    credentials = _render_credentials(plan, name=name, namespace=namespace, secrets=secrets)
    for warning in plan.warnings:
        print(f"{name}: warning: {warning}", file=sys.stderr)
    configs = {image: _FromImage(image) for image in plan.needs_image_config()}
    for c in plan.steps:
        if c.image in configs and c.command is None and not c.excluded:
            print(
                f'{name}: note: step "{c.step}" runs its image\'s own ENTRYPOINT/CMD, which the operator '
                "reads from the registry when the run starts",
                file=sys.stderr,
            )
    snap = scheduling.Snapshot(
        plan=plan,
        pod=None,
        now=_epoch(),
        generation=plan.generation,
        run=plan.run,
        credentials=credentials,
        image_configs=configs,
    )
    return scheduling.decide(snap).create


def _render_credentials(
    plan: plans.RunPlan,
    *,
    name: str,
    namespace: str,
    secrets: Mapping[tuple[str, str], auths.SourceSecret],
) -> auths.Credentials | None:
    if not plan.pull_secret_sources:
        return None
    missing = [s for s in plan.pull_secret_sources if (namespace, s) not in secrets]
    if missing:
        raise errors.MissingSecret(
            [
                errors.Problem(
                    "spec.image_pull_secrets",
                    f'Secret "{s}" not found in the given files (namespace "{namespace}")',
                )
                for s in missing
            ]
        )
    credentials = auths.convert([secrets[(namespace, s)] for s in plan.pull_secret_sources])
    for warning in credentials.warnings:
        print(f"{name}: warning: {warning}", file=sys.stderr)
    return credentials


class _FromImage:
    """What ``render`` shows for an image's own command, which only its registry knows."""

    def __init__(self, image: str) -> None:
        self.entrypoint = (f"<ENTRYPOINT of {image}>",)
        self.cmd = (f"<CMD of {image}>",)


def _epoch() -> Any:
    import datetime

    return datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


def convert(paths: Sequence[str], *, build: str | None = None, build_name: str | None = None) -> str:
    """Pipeline resources of Drone files; notes on stderr; every refused pipeline an error line after the
    others are printed (exit 1). Each file's Pipelines are one build, labelled ``build_name`` or the name of
    the file's directory (``builds``)."""
    metadata = _build_metadata(build)
    if build_name is not None and (kubenames.label_value_problem(build_name) or not build_name):
        raise CliError([f"--build-name: {kubenames.label_value_problem(build_name) or 'must not be empty'}"])
    pipelines: list[dict[str, Any]] = []
    problems: list[str] = []
    for path in paths:
        try:
            with open(path, encoding="utf-8") if path != "-" else sys.stdin as handle:
                text = handle.read()
        except OSError as exc:
            raise CliError([f"{path}: {exc.strerror}"]) from None
        try:
            name = build_name or _build_name(path)
            converted = converting.convert(text, path=path, build=metadata, build_name=name)
        except errors.PodlineError as exc:
            problems.extend(exc.lines())
            continue
        for note in converted.notes:
            print(f"warning: {note}", file=sys.stderr)
        pipelines.extend(converted.pipelines)
        problems.extend(converted.problems)
    if not pipelines and not problems:
        problems.append("no kind: pipeline documents found")
    return _output(converting.dump(pipelines) if pipelines else "", problems)


def _build_name(path: str) -> str:
    """The default build of a file: its directory's name (a repository's), as a label value."""
    folder = os.path.basename(os.path.dirname(os.path.abspath(path))) if path != "-" else ""
    return conventions.dns1123_label(folder or "build")


def _build_metadata(build: str | None) -> dict[str, Any]:
    if not build:
        return {}
    try:
        value = json.loads(build)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise CliError(
            ["--build: must be a JSON object like the podline.dev/build annotation (event, branch, ref, …)"]
        )
    return value


def _output(text: str, problems: list[str]) -> str:
    """``text`` when there is no problem; else ``text`` is printed and the problems raised."""
    if problems:
        sys.stdout.write(text)
        raise CliError(problems)
    return text


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="podline", description="Run Drone pipelines on Kubernetes.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("render", help="print the pull Secret and pod the operator would create")
    p.add_argument(
        "files", nargs="+", help="YAML files with Pipelines (and the Secrets they name); - for stdin"
    )
    p.add_argument(
        "--build",
        metavar="JSON",
        help="build metadata, as in the podline.dev/build annotation (over it), e.g. "
        '\'{"tag": "v1.2.3", "commit": "89ab…"}\'; substituted into ${…} and DRONE_* as for a run',
    )
    p.add_argument("--build-file", metavar="FILE", help="build metadata from a JSON or YAML file")
    for flag in BUILD_FLAGS:
        kind = int if flag in ("number", "pull_request") else str
        p.add_argument(f"--{flag.replace('_', '-')}", dest=flag, type=kind, help=f"build metadata: {flag}")
    p = sub.add_parser(
        "convert", help="turn a .drone.yml (or .drone.jsonnet, or a 0.8 file) into Pipeline resources"
    )
    p.add_argument("files", nargs="+", help="Drone configuration files; - for stdin")
    p.add_argument(
        "--build",
        help="build metadata as JSON (the podline.dev/build annotation's fields): a Jsonnet file's "
        "std.extVar values, and the repository (remote) that names a 0.8 file's workspace",
    )
    p.add_argument(
        "--build-name",
        default=None,
        help="the build label (podline.dev/build) of each file's Pipelines; default: the file's directory name",
    )
    sub.add_parser("operator", help="run the operator (PODLINE_* environment variables configure it)")
    _viewing_parsers(sub)
    return parser


def _viewing_parsers(sub: Any) -> None:
    """``logs``, ``get`` and ``dashboard``: what people read, live and from the archive."""
    p = sub.add_parser("logs", help="print each step's logs in order")
    p.add_argument("pipeline", nargs="?")
    p.add_argument("-n", "--namespace", default=None)
    p.add_argument("-f", "--follow", action="store_true")
    p.add_argument(
        "--run", default=None, help="a past run (e.g. g1), from the archive (see --operator, --archive)"
    )
    p.add_argument("-b", "--build", default=None, help="every Pipeline of this build, in its order")
    p.add_argument("--archive", default=None, help=ARCHIVE_HELP)
    p.add_argument("--operator", default=None, help=OPERATOR_HELP)
    p = sub.add_parser("get", help="summarise Pipelines and their steps")
    p.add_argument("pipeline", nargs="?")
    p.add_argument("-n", "--namespace", default=None)
    p.add_argument("--archive", default=None, help=ARCHIVE_HELP)
    p.add_argument("--operator", default=None, help=OPERATOR_HELP)
    p.add_argument("-b", "--build", default=None, help="a build: its Pipelines in order, its result")
    p = sub.add_parser("dashboard", help="serve a web view of runs (as you: your kubeconfig's credentials)")
    p.add_argument("--address", default="127.0.0.1", help="address to listen on (default: loopback only)")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("-n", "--namespace", action="append", default=[], help="namespace to show (repeatable)")
    p.add_argument("--read-only", action="store_true", help="never offer rerun or cancel")
    p.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        help="Host name the page is served as (repeatable; *: any)",
    )
    p.add_argument("--archive", default=None, help=ARCHIVE_HELP)
    p.add_argument("--operator", default=None, help=OPERATOR_HELP)


ARCHIVE_HELP = (
    "read past runs from this archive store directly: file:///dir or s3://bucket/prefix (AWS_* variables "
    "for S3); default $PODLINE_ARCHIVE; without either, through the operator (--operator)"
)
OPERATOR_HELP = (
    "the operator's archive Service, NAMESPACE/SERVICE[:PORT], read through the API server's service proxy "
    "with your kubeconfig; default $PODLINE_OPERATOR, else podline-system/podline-archive (the chart's)"
)


def _fail(lines: Iterable[str], code: int = 1) -> NoReturn:
    for line in lines:
        print(f"podline: {line}", file=sys.stderr)
    raise SystemExit(code)


def _operator_handlers() -> Any:
    """Import kopf and podline's handlers with the official client hidden. kopf imports it, when installed,
    to recognise its model classes and to pick default login handlers, neither of which podline uses (it has
    its own login): some 15 MB of memory for nothing. It stays importable afterwards, for a login that needs
    it (kubeconfigs with exec plugins)."""
    hide = "kopf" not in sys.modules and "kubernetes" not in sys.modules
    if hide:
        sys.modules["kubernetes"] = None  # type: ignore[assignment]  # makes `import kubernetes` raise ImportError
    try:
        from podline.shell import handlers
    finally:
        if hide:
            del sys.modules["kubernetes"]
    return handlers


def main(argv: Sequence[str] | None = None) -> int:
    sys.setrecursionlimit(max(sys.getrecursionlimit(), RECURSION_LIMIT))
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "logs" and not args.pipeline and not args.build:
        parser.error("logs: name a Pipeline, or a build with --build")
    try:
        if args.command == "render":
            sys.stdout.write(render(args.files, build=build_overrides(args)))
        elif args.command == "convert":
            sys.stdout.write(convert(args.files, build=args.build, build_name=args.build_name))
        elif args.command == "operator":
            from podline.shell import settings as settings_

            _operator_handlers().run(settings_.Settings.from_env())
        elif args.command in ("logs", "get"):
            from podline import viewing

            return viewing.main(args)
        elif args.command == "dashboard":
            from podline.dashboard import serving

            return serving.main(
                serving.Config(
                    address=args.address,
                    port=args.port,
                    namespaces=tuple(args.namespace),
                    read_only=args.read_only,
                    allowed_hosts=tuple(args.allowed_host),
                    archive=args.archive or os.environ.get("PODLINE_ARCHIVE", ""),
                    operator=args.operator or os.environ.get("PODLINE_OPERATOR", ""),
                )
            )
    except CliError as exc:
        _fail(exc.lines)
    except ValueError as exc:  # settings errors name the variable
        _fail([str(exc)])
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader went away (`podline logs x | head`): stop quietly, as `cat` does
        _silence_stdout()
        return 128 + int(signal.SIGPIPE)
    return 0


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush at exit cannot fail on the closed pipe."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)
