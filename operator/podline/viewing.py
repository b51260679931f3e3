"""``podline logs`` and ``podline get``: read a Pipeline's status and its pod's logs, for people.

Logs are printed per step, in step order, each under a header with the step's state; with ``-f`` the
running step is followed and the next steps are printed as they run, until the run ends. ``get`` shows each
run and step with how long it took (`summary`, a pure function of the Pipeline and the time, so it is
tested without a cluster). Past runs (``--run``, and ``get``'s list of archived runs) come from the archive,
through the operator or a store (``pastruns``).

CLI code on the synchronous Kubernetes client, beside ``cli`` (the import contracts keep it out of the
operator's shell and core).
"""

from __future__ import annotations

import argparse
import codecs
import datetime
import os
import time
from collections.abc import Iterable
from typing import Any

import kubernetes

from podline import pastruns
from podline.core import builds, conventions, statuses

TERMINAL = statuses.TERMINAL_PHASES


def _load_config() -> None:
    try:
        kubernetes.config.load_incluster_config()  # type: ignore[no-untyped-call]
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config()  # type: ignore[no-untyped-call]


def _namespace(args: argparse.Namespace) -> str:
    if args.namespace:
        return str(args.namespace)
    try:
        _, context = kubernetes.config.list_kube_config_contexts()  # type: ignore[no-untyped-call]
        return str(context.get("context", {}).get("namespace") or "default")
    except (kubernetes.config.ConfigException, TypeError):
        return "default"


def _pipeline(custom: Any, namespace: str, name: str, *, gone_ok: bool = False) -> dict[str, Any]:
    """The Pipeline; with ``gone_ok`` an empty one when it no longer exists (its archived runs may be kept)."""
    try:
        return dict(
            custom.get_namespaced_custom_object(
                conventions.GROUP, conventions.VERSION, namespace, conventions.PLURAL, name
            )
        )
    except kubernetes.client.ApiException as exc:
        if exc.status == 404 and gone_ok:
            return {}
        if exc.status == 404:
            raise SystemExit(f'podline: Pipeline "{name}" not found in namespace "{namespace}"') from None
        raise SystemExit(f"podline: cannot read Pipeline {name}: {exc.status} {exc.reason}") from None


def _header(step: dict[str, Any]) -> str:
    state = step.get("state", "waiting")
    detail = f", exit {step['exitCode']}" if step.get("exitCode") is not None else ""
    reason = f", {step['reason']}" if step.get("reason") else ""
    return f"==> {step['name']} ({state}{detail}{reason})"


def _past(args: argparse.Namespace) -> pastruns.PastRuns:
    """Where past runs are read: ``--archive``/``$PODLINE_ARCHIVE`` (a store), else the operator's archive
    through the API server (``--operator``/``$PODLINE_OPERATOR``, default the chart's Service)."""
    archive = getattr(args, "archive", None) or os.environ.get("PODLINE_ARCHIVE", "")
    operator = getattr(args, "operator", None) or os.environ.get("PODLINE_OPERATOR", "")
    try:
        return pastruns.choose(archive, operator)
    except ValueError as error:
        raise SystemExit(f"podline: {error}") from None


def _print_text(chunks: Iterable[bytes]) -> None:
    """A log's bytes as text (bad UTF-8 replaced), flushed as they come, ending with a newline."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    last = ""
    for chunk in chunks:
        text = decoder.decode(chunk)
        if text:
            print(text, end="", flush=True)
            last = text[-1]
    text = decoder.decode(b"", final=True)
    if text:
        print(text, end="", flush=True)
        last = text[-1]
    if last and last != "\n":
        print(flush=True)


def archived_logs(past: pastruns.PastRuns, namespace: str, pipeline: str, run: str) -> int:
    """A past run from the archive: each step's header and output, in step order, then the run's result."""
    try:
        record = past.record(namespace, pipeline, run)
        if record is None:
            raise SystemExit(f'podline: run "{run}" of {namespace}/{pipeline} is not in {past.where}')
        for step in record.get("steps") or []:
            print(_header(step), flush=True)
            _print_text(past.log(namespace, pipeline, run, step["container"]))
    except pastruns.Unreadable as exc:
        raise SystemExit(f"podline: {exc}") from None
    print(f"==> run {run}: {record.get('result')} (archived)", flush=True)
    return 0 if record.get("result") == "Succeeded" else 1


def past_runs(archived: list[dict[str, Any]]) -> list[str]:
    """The lines `podline get` prints for a Pipeline's archived runs, newest first: result and duration."""
    lines = []
    newest = sorted(archived, key=lambda r: r.get("finishedAt") or 0, reverse=True)
    for r in newest:
        start, end = r.get("startedAt"), r.get("finishedAt")
        took_ = duration((end - start) / 1000) if start is not None and end is not None else "-"
        ended = (
            datetime.datetime.fromtimestamp(end / 1000, datetime.UTC).isoformat(timespec="seconds")
            if end
            else "-"
        )
        lines.append(
            f"  past run {r.get('run', '?'):<14} {r.get('result', '?'):<10} {took_:>8}  ended {ended}"
        )
    return lines


def logs(args: argparse.Namespace) -> int:
    _load_config()
    core = kubernetes.client.CoreV1Api()
    custom = kubernetes.client.CustomObjectsApi()
    namespace = _namespace(args)
    printed: dict[str, int] = {}  # step → characters of its log already printed
    while True:
        body = _pipeline(custom, namespace, args.pipeline, gone_ok=args.run is not None)
        status = body.get("status") or {}
        if args.run is not None and (args.run != status.get("run") or not _exists(
            core, namespace, status.get("podName"))):  # fmt: skip
            return archived_logs(_past(args), namespace, args.pipeline, args.run)
        if (archived := _ended_and_gone(args, core, namespace, status)) is not None:
            return archived
        pod = status.get("podName")
        for step in status.get("steps") or []:
            if step.get("state") in ("waiting", "skipped") or not pod:
                continue
            if step["name"] not in printed:
                print(_header(step), flush=True)
                printed[step["name"]] = 0
            try:
                # None when the apiserver answers 204 No Content: the pod has no node (yet), so no logs
                text = core.read_namespaced_pod_log(pod, namespace, container=step["container"]) or ""
            except kubernetes.client.ApiException as exc:
                text = "" if args.follow else f"(no logs: {exc.reason})\n"
            new = text[printed[step["name"]] :]
            if new:
                print(new, end="" if new.endswith("\n") else "\n", flush=True)
            printed[step["name"]] = len(text)
        phase = status.get("phase")
        if not args.follow or phase in TERMINAL:
            message = f" - {status['message']}" if status.get("message") else ""
            print(f"==> run {status.get('run', '?')}: {phase or 'Pending'}{message}", flush=True)
            return 1 if phase in builds.FAILED_PHASES else 0
        time.sleep(1.0)


def _time(stamp: Any) -> datetime.datetime | None:
    if not isinstance(stamp, str) or not stamp:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(stamp)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)


def duration(seconds: float) -> str:
    """42s, 3m07s, 2h05m: whole seconds (the kubelet reports container times to the second)."""
    whole = max(0, int(seconds))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def took(started: Any, finished: Any, now: datetime.datetime, *, running: bool = False) -> str:
    """How long something took between two status times; while ``running``, how long so far; "-" when the
    times do not say (it never started, or its end is not recorded)."""
    begin, end = _time(started), _time(finished)
    if begin is not None and end is not None:
        return duration((end - begin).total_seconds())
    if begin is not None and running:
        return f"{duration((now - begin).total_seconds())} so far"
    return "-"


def summary(body: dict[str, Any], now: datetime.datetime) -> list[str]:
    """The lines `podline get` prints for one Pipeline: the run, then each step with its duration."""
    status = body.get("status") or {}
    phase = status.get("phase", "Pending")
    run_took = took(status.get("startTime"), status.get("completionTime"), now, running=phase not in TERMINAL)
    lines = [
        f"{body['metadata']['name']}  {phase}  run={status.get('run', '-')}  pod={status.get('podName', '-')}"
        + ("" if run_took == "-" else f"  took {run_took}")
    ]
    for step in status.get("steps") or []:
        exit_code = step.get("exitCode")
        state = step.get("state", "")
        step_took = took(step.get("startedAt"), step.get("finishedAt"), now, running=state == "running")
        lines.append(
            f"  {step['name']:<24} {state:<10} {step_took:>12}  "
            f"{'' if exit_code is None else 'exit ' + str(exit_code)} {step.get('reason') or ''}".rstrip()
        )
    if status.get("message") and phase not in ("Running",):
        lines.append(f"  {status['message']}")
    return lines


def build_summary(name: str, bodies: list[dict[str, Any]], now: datetime.datetime) -> list[str]:
    """The lines `podline get --build` prints: the build's result and times, then its pipelines in the
    order their depends_on give, each with what it waits for or depends on."""
    by_name = {builds.member_of(b).name: b for b in bodies}
    members = {n: builds.member_of(b) for n, b in by_name.items()}
    statuses = [b.get("status") or {} for b in bodies]
    result = builds.outcome([s.get("phase") for s in statuses])
    starts = sorted(s["startTime"] for s in statuses if s.get("startTime"))
    ends = sorted(s["completionTime"] for s in statuses if s.get("completionTime"))
    took_ = took(
        starts[0] if starts else None,
        ends[-1] if ends and result != "Running" else None,
        now,
        running=result == "Running",
    )
    lines = [f"build {name}  {result}  pipelines={len(bodies)}" + ("" if took_ == "-" else f"  took {took_}")]
    for index, drone_name in enumerate(builds.order(members), 1):
        body = by_name[drone_name]
        deps = members[drone_name].depends_on
        lines.append(f"{index}. " + ("" if not deps else f"(after {', '.join(deps)}) "))
        lines[-1] += summary(body, now)[0]
        lines.extend("  " + line for line in summary(body, now)[1:])
    return lines


def _build_items(custom: Any, namespace: str, build: str) -> list[dict[str, Any]]:
    listed = custom.list_namespaced_custom_object(
        conventions.GROUP,
        conventions.VERSION,
        namespace,
        conventions.PLURAL,
        label_selector=f"{conventions.LABEL_BUILD}={build}",
    )
    items = dict(listed).get("items", []) if isinstance(listed, dict) else []
    if not items:
        raise SystemExit(f'podline: no Pipelines of build "{build}" in namespace "{namespace}"')
    return list(items)


def build_logs(args: argparse.Namespace) -> int:
    """``podline logs --build``: each pipeline's logs in the build's order (followed one after the other)."""
    _load_config()
    namespace = _namespace(args)
    items = _build_items(kubernetes.client.CustomObjectsApi(), namespace, args.build)
    members = {builds.member_of(b).name: builds.member_of(b) for b in items}
    code = 0
    for drone_name in builds.order(members):
        print(f"=== pipeline {members[drone_name].resource}", flush=True)
        one = argparse.Namespace(**{**vars(args), "pipeline": members[drone_name].resource})
        code = max(code, logs(one))
    return code


def get(args: argparse.Namespace) -> int:
    _load_config()
    custom = kubernetes.client.CustomObjectsApi()
    namespace = _namespace(args)
    if getattr(args, "build", None):
        now = datetime.datetime.now(datetime.UTC)
        for line in build_summary(args.build, _build_items(custom, namespace, args.build), now):
            print(line, flush=True)
        return 0
    if args.pipeline:
        items = [_pipeline(custom, namespace, args.pipeline)]
    else:
        listed = custom.list_namespaced_custom_object(
            conventions.GROUP, conventions.VERSION, namespace, conventions.PLURAL
        )
        items = dict(listed).get("items", []) if isinstance(listed, dict) else []
    now = datetime.datetime.now(datetime.UTC)
    past: pastruns.PastRuns | None = _past(args)
    for body in items:
        for line in summary(body, now):
            print(line, flush=True)
        if past is None:
            continue
        try:
            archived = past.runs(namespace, body["metadata"]["name"])
        except pastruns.Unreadable as exc:  # said once; the Pipelines' own status is shown all the same
            print(f"  (past runs: {exc})", flush=True)
            past = None
            continue
        for line in past_runs(archived):
            print(line, flush=True)
    return 0


def _ended_and_gone(
    args: argparse.Namespace, core: Any, namespace: str, status: dict[str, Any]
) -> int | None:
    """The current run, ended, its pod gone (pruned, deleted): printed from the archive as ``--run`` would,
    if the archive has it; else None (each step is then said to have no logs, as before)."""
    if args.run is not None or status.get("phase") not in TERMINAL or not status.get("run"):
        return None
    if _exists(core, namespace, status.get("podName")):
        return None
    try:
        return archived_logs(_past(args), namespace, args.pipeline, str(status["run"]))
    except SystemExit as exc:
        print(
            f"(its pod is gone and the archive cannot give its logs: {str(exc.code).removeprefix('podline: ')})",
            flush=True,
        )
        return None


def _exists(core: Any, namespace: str, pod: str | None) -> bool:
    if not pod:
        return False
    try:
        core.read_namespaced_pod(pod, namespace)
    except kubernetes.client.ApiException:
        return False
    return True


def main(args: argparse.Namespace) -> int:
    if args.command == "logs":
        return build_logs(args) if getattr(args, "build", None) else logs(args)
    return get(args)
