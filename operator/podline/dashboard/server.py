"""The dashboard's web server (aiohttp): the pages, their live streams, a step's log, rerun and cancel.

Pages are static files (``static/``); what they show arrives as server-sent events built from the shared
watch (``watching.Hub``): the runs list (``/api/events``, filtered here with ``views.Filters``) and one run
(``/api/events/{ns}/{name}``). A step's log (``/api/logs/…``) is streamed from a ``LogSource`` as styled
text segments (``ansi``), which the page puts into text nodes; a run only in the archive (no longer in the
Pipeline's status) is read from the archive alone, its name checked first. A run page's earlier runs
(``/api/history/{ns}/{name}``) are the status' history merged with the archive's runs (``earlier``), read
through a per-Pipeline cache (``archived.Cache``) beside the page's live stream. Rerun and cancel patch the Pipeline's
``podline.dev/rerun`` / ``podline.dev/cancel`` annotations with the server's credentials; the buttons are
shown only when a SelfSubjectAccessReview allows ``patch``, and a POST must come from the page itself: a
same-origin ``Origin``/``Sec-Fetch-Site`` and the session's token (``X-Podline-Token``), which only a
same-origin script can read. Requests for another ``Host`` than the ones allowed are refused, so a web page
cannot reach a dashboard on loopback by rebinding its own name to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import importlib.resources
import json
import logging
import secrets
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from podline.core import archivepaths, conventions, statuses
from podline.dashboard import ansi, archived, earlier, kubeapi, logsources, views, watching
from podline.shell import kube

log = logging.getLogger("podline.dashboard")
STATIC = importlib.resources.files("podline.dashboard") / "static"
KEEPALIVE_SECONDS = 15.0
REVIEW_SECONDS = 30.0  # how long an access review's answer is reused
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@dataclass
class Options:
    read_only: bool = False  # no rerun/cancel at all (the chart's default)
    allowed_hosts: tuple[str, ...] = ()  # Host header names accepted (empty: any)
    token: str = field(default_factory=lambda: secrets.token_urlsafe(32))


@dataclass
class Context:
    api: kubeapi.UserApi
    hub: watching.Hub
    logs: logsources.LogSource
    options: Options
    archive: logsources.LogSource | None = None  # a run's logs in the archive alone (a run only there)
    past: archived.Cache | None = None  # the Pipelines' archived runs (none: the status' history alone)
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    reviews: dict[str, tuple[float, bool]] = field(default_factory=dict)
    rows: dict[str, tuple[str, views.Row, str]] = field(default_factory=dict)  # key → (version, row, JSON)

    async def may_patch(self, namespace: str, name: str) -> bool:
        if self.options.read_only:
            return False
        key = f"{namespace}/{name}"
        cached = self.reviews.get(key)
        if cached and time.monotonic() - cached[0] < REVIEW_SECONDS:
            return cached[1]
        try:
            allowed = await self.api.may("patch", namespace, name)
        except (kube.Transient, kube.NotFound, kube.Conflict) as exc:
            log.info("access review for %s failed: %s", key, exc)
            return False
        self.reviews[key] = (time.monotonic(), allowed)
        return allowed

    def row(self, body: Mapping[str, Any]) -> tuple[views.Row, str]:
        """A row and its JSON, made once per version of the object however many pages show it."""
        key = watching.key_of(body)
        version = str((body.get("metadata") or {}).get("resourceVersion") or "")
        cached = self.rows.get(key)
        if cached and cached[0] == version and version:
            return cached[1], cached[2]
        row = views.row_of(body, self.clock())
        text = json.dumps(row.to_json())
        self.rows[key] = (version, row, text)
        return row, text


CONTEXT = web.AppKey("context", Context)


def _ctx(request: web.Request) -> Context:
    return request.app[CONTEXT]


# --- middlewares ----------------------------------------------------------------------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    allowed = _ctx(request).options.allowed_hosts
    probe = request.path == "/healthz"  # the kubelet's probes name the pod's IP
    if not probe and allowed and "*" not in allowed and _hostname(request.host) not in allowed:
        return web.Response(status=421, text=f"this dashboard does not answer for host {request.host!r}\n")
    response = await handler(request)
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def _hostname(host: str) -> str:
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


# --- pages ----------------------------------------------------------------------------------------------


async def page(request: web.Request) -> web.StreamResponse:
    name = "run.html" if request.match_info.get("name") else "index.html"
    return web.Response(body=(STATIC / name).read_bytes(), content_type="text/html", charset="utf-8")


async def static(request: web.Request) -> web.StreamResponse:
    name = request.match_info["file"]
    types = {".css": "text/css", ".js": "text/javascript", ".png": "image/png", ".svg": "image/svg+xml"}
    suffix = name[name.rfind(".") :] if "." in name else ""
    target = STATIC / name
    if "/" in name or name.startswith(".") or suffix not in types or not target.is_file():
        raise web.HTTPNotFound()
    return web.Response(body=target.read_bytes(), content_type=types[suffix])


async def healthz(request: web.Request) -> web.StreamResponse:
    """Ready once the Pipelines have been listed (or the list was refused, which the page explains)."""
    ready = _ctx(request).hub.ready.is_set()
    return web.Response(status=200 if ready else 503, text="ok\n" if ready else "listing Pipelines\n")


async def session(request: web.Request) -> web.StreamResponse:
    ctx = _ctx(request)
    await ctx.hub.ready.wait()
    return web.json_response(
        {"token": ctx.options.token, "readOnly": ctx.options.read_only, "problem": ctx.hub.problem}
    )


# --- server-sent events ---------------------------------------------------------------------------------


async def _open_stream(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "X-Accel-Buffering": "no"})
    for name, value in SECURITY_HEADERS.items():
        response.headers[name] = value
    await response.prepare(request)
    return response


async def _send(response: web.StreamResponse, event: str, data: str) -> None:
    await response.write(f"event: {event}\ndata: {data}\n\n".encode())


def streaming(handler: Handler) -> Handler:
    """An event stream whose page went away (closed, navigated) just ends: that is how streams end."""

    @functools.wraps(handler)
    async def run(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except ConnectionResetError:
            return web.Response(status=499)  # never sent: the connection is gone

    return run


async def _changes(response: web.StreamResponse, queue: asyncio.Queue[watching.Change | None]) -> Any:
    """The hub's changes for one stream, with a keep-alive comment when there are none for a while."""
    while True:
        try:
            change = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
        except TimeoutError:
            await response.write(b": keep-alive\n\n")
            continue
        if change is None:  # dropped for falling behind: end, the page reconnects
            return
        yield change


@streaming
async def runs_events(request: web.Request) -> web.StreamResponse:
    """The runs list: a snapshot of the matching rows, then each change."""
    ctx = _ctx(request)
    filters = views.Filters.from_query(request.query)
    await ctx.hub.ready.wait()
    queue = ctx.hub.subscribe()
    try:
        response = await _open_stream(request)
        made = dict(ctx.row(body) for body in ctx.hub.objects.values())  # Row → its JSON, cached per version
        all_rows = views.ordered(made)
        shown = ",".join(made[r] for r in all_rows if filters.matches(r))
        rest = json.dumps({"choices": views.choices(all_rows), "problem": ctx.hub.problem})
        await _send(response, "snapshot", f'{{"rows": [{shown}], {rest[1:]}')
        async for change in _changes(response, queue):
            if change.body is None:
                ctx.rows.pop(change.key, None)
                await _send(response, "gone", json.dumps({"key": change.key}))
                continue
            row, text = ctx.row(change.body)
            if filters.matches(row):
                await _send(response, "row", text)
            else:
                await _send(response, "gone", json.dumps({"key": change.key}))
        return response
    finally:
        ctx.hub.unsubscribe(queue)


async def _detail(ctx: Context, body: Mapping[str, Any]) -> dict[str, Any]:
    meta = body.get("metadata") or {}
    namespace, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
    now = ctx.clock()
    status = body.get("status") if isinstance(body.get("status"), Mapping) else {}
    return {
        "row": views.row_of(body, now).to_json(),
        "timeline": views.timeline_of(body, now).to_json(),
        "history": views.history_of(body),
        "services": [
            {"name": s.get("name"), "container": s.get("container"), "state": s.get("state")}
            for s in (status or {}).get("services") or []
            if isinstance(s, Mapping)
        ],
        "mayPatch": await ctx.may_patch(namespace, name),
        "now": views.epoch_ms(now),
    }


@streaming
async def run_events(request: web.Request) -> web.StreamResponse:
    """One run: its detail now and after each change of its Pipeline."""
    ctx = _ctx(request)
    key = f"{request.match_info['ns']}/{request.match_info['name']}"
    await ctx.hub.ready.wait()
    queue = ctx.hub.subscribe()
    try:
        response = await _open_stream(request)
        body = ctx.hub.objects.get(key)
        if body is None:
            await _send(response, "missing", json.dumps({"key": key, "problem": ctx.hub.problem}))
        else:
            await _send(response, "run", json.dumps(await _detail(ctx, body)))
        async for change in _changes(response, queue):
            if change.key != key:
                continue
            if change.body is None:
                await _send(response, "missing", json.dumps({"key": key}))
            else:
                await _send(response, "run", json.dumps(await _detail(ctx, change.body)))
        return response
    finally:
        ctx.hub.unsubscribe(queue)


# --- a step's log ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Wanted:
    """A log to read: which, whether to follow it, and whether it is in the archive alone (no pod)."""

    log: logsources.StepLog
    follow: bool = False
    archived_only: bool = False


def _which_log(body: Mapping[str, Any], run: str, container: str, *, archive: bool = False) -> Wanted | str:
    """The log a page asks for; or why there is none. The pod is the run's own, from the Pipeline's status,
    never a name the page sends; a run not in the status is read from the archive alone (``archive``), its
    name and the container's checked as Kubernetes names first (they become the store's key)."""
    meta = body.get("metadata") or {}
    status = body.get("status") if isinstance(body.get("status"), Mapping) else {}
    status = status or {}
    namespace, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
    if not container.startswith((conventions.CONTAINER_STEP_PREFIX, conventions.CONTAINER_SERVICE_PREFIX)):
        return f"{container!r} is not a step"
    if run == status.get("run"):
        pod = status.get("podName")
        if not pod:
            return "the run has no pod yet"
        steps = {s.get("container"): s for s in status.get("steps") or [] if isinstance(s, Mapping)}
        step = steps.get(container) or {}
        running = status.get("phase") not in statuses.TERMINAL_PHASES
        follow = running and step.get("state") not in ("succeeded", "failed", "skipped")
        return Wanted(logsources.StepLog(namespace, name, run, str(pod), container), follow)
    for entry in status.get("history") or []:
        if isinstance(entry, Mapping) and entry.get("run") == run:
            pod = entry.get("podName") or conventions.pod_name(name, run)
            return Wanted(logsources.StepLog(namespace, name, run, str(pod), container))
    if not archive:
        return f"no run {run!r} of this Pipeline"
    bad = archivepaths.problems(archivepaths.Query(namespace, name, run, container))
    if bad:
        return "; ".join(bad)
    return Wanted(logsources.StepLog(namespace, name, run, "", container), archived_only=True)


@streaming
async def log_events(request: web.Request) -> web.StreamResponse:
    ctx = _ctx(request)
    info = request.match_info
    await ctx.hub.ready.wait()
    body = ctx.hub.objects.get(f"{info['ns']}/{info['name']}")
    response = await _open_stream(request)
    archive = ctx.archive is not None
    which = _which_log(body, info["run"], info["container"], archive=archive) if body else "no such Pipeline"
    if isinstance(which, str):
        await _send(response, "unavailable", json.dumps({"message": which}))
        return response
    follow = which.follow
    source = ctx.archive if which.archived_only and ctx.archive is not None else ctx.logs
    decoder = ansi.Decoder()
    try:
        async with contextlib.aclosing(
            source.read(which.log, follow=follow)
        ) as chunks:  # closed if the page goes
            async for chunk in chunks:
                segments = decoder.feed(chunk.decode("utf-8", errors="replace"))
                if segments:
                    await _send(response, "log", json.dumps([s.to_json() for s in segments]))
        tail = decoder.feed("", final=True)
        if tail:
            await _send(response, "log", json.dumps([s.to_json() for s in tail]))
        await _send(response, "end", json.dumps({"followed": follow}))
    except logsources.Unavailable as exc:
        await _send(response, "unavailable", json.dumps({"message": str(exc)}))
    return response


# --- earlier runs ---------------------------------------------------------------------------------------


async def earlier_runs(request: web.Request) -> web.StreamResponse:
    """The run page's earlier runs: the status' history merged with the archive's runs (read in the
    background of the page's live stream, through the cache), and why the archive could not be read."""
    ctx = _ctx(request)
    await ctx.hub.ready.wait()
    key = f"{request.match_info['ns']}/{request.match_info['name']}"
    body = ctx.hub.objects.get(key)
    if body is None:
        return web.json_response({"error": f"Pipeline {key} not found (or not visible)"}, status=404)
    answer = archived.Answer()
    if ctx.past is not None:
        meta = body.get("metadata") or {}
        namespace, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
        answer = await ctx.past.runs(namespace, name, earlier.version(body))
    merged = earlier.merge(body, answer.runs)
    return web.json_response({**merged, "problem": answer.problem, "archive": ctx.past is not None})


# --- rerun and cancel -----------------------------------------------------------------------------------


def cross_site(request: web.Request, token: str) -> str | None:
    """Why this POST may not come from the dashboard's own page, or None."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site != "same-origin":
        return f"a {site} request"
    origin = request.headers.get("Origin")
    if origin is not None and urllib.parse.urlsplit(origin).netloc != request.host:
        return "a request from another origin"
    if not hmac.compare_digest(request.headers.get("X-Podline-Token", "").encode(), token.encode()):
        return "a request without the page's token"
    return None


ACTIONS: dict[str, Callable[[], dict[str, str | None]]] = {
    # a rerun clears a cancel (it stays in force otherwise: README); its value only has to be new
    "rerun": lambda: {conventions.ANNOTATION_RERUN: str(time.time_ns()), conventions.ANNOTATION_CANCEL: None},
    "cancel": lambda: {conventions.ANNOTATION_CANCEL: "true"},
}


async def action(request: web.Request) -> web.StreamResponse:
    ctx = _ctx(request)
    ns, name, verb = request.match_info["ns"], request.match_info["name"], request.match_info["action"]
    if verb not in ACTIONS:
        raise web.HTTPNotFound()
    refused = cross_site(request, ctx.options.token)
    if refused:
        return web.json_response({"error": f"refused: {refused}"}, status=403)
    if not await ctx.may_patch(ns, name):
        return web.json_response({"error": f"not allowed to patch Pipeline {ns}/{name}"}, status=403)
    try:
        await ctx.api.annotate(ns, name, ACTIONS[verb]())
    except kubeapi.Forbidden as exc:
        return web.json_response({"error": f"the API refused: {exc}"}, status=403)
    except kube.NotFound:
        return web.json_response({"error": f"Pipeline {ns}/{name} not found"}, status=404)
    except kube.Transient as exc:
        return web.json_response({"error": f"the API failed: {exc}"}, status=502)
    log.info("%s of Pipeline %s/%s", verb, ns, name)
    return web.json_response({"ok": verb})


def make_app(ctx: Context) -> web.Application:
    app = web.Application(middlewares=[guard])
    app[CONTEXT] = ctx
    app.router.add_get("/", page)
    app.router.add_get("/runs/{ns}/{name}", page)
    app.router.add_get("/static/{file}", static)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/api/session", session)
    app.router.add_get("/api/events", runs_events)
    app.router.add_get("/api/events/{ns}/{name}", run_events)
    app.router.add_get("/api/logs/{ns}/{name}/{run}/{container}", log_events)
    app.router.add_get("/api/history/{ns}/{name}", earlier_runs)
    app.router.add_post("/api/runs/{ns}/{name}/{action}", action)
    return app
