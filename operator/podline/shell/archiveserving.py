"""The operator serves its archive, read-only, over HTTP (``PODLINE_ARCHIVE_PORT``), for people's machines.

With the chart's default archive (a directory inside the operator pod) nothing else can read past runs, so
the operator answers three GETs (``core.archivepaths``): a Pipeline's archived runs (their ``record.json``,
newest first), one run's record, one step's log, streamed from the store in chunks. Nothing writes or
deletes: only GET (and HEAD) routes exist, anything else is 405. A bad part of the path is 400 naming it, a
run or log not in the archive 404, a store that fails 503 (said by type and first line, never a detail).

People reach it through the Kubernetes API server's service proxy, so who may read is RBAC ``get`` on
``services/proxy`` for the archive Service (the chart's ``…-archive-reader`` Role, docs/archive.md). The
server sees no user identity: whoever reaches the port reads every archived run. aiohttp's server, the
library kopf already runs on; started and stopped with the operator (``handlers``).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web

from podline.core import archivepaths, records
from podline.shell import archiving

log = logging.getLogger("podline.archive")
STORE = web.AppKey("store", archiving.Store)
HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=HEADERS)


def _query(request: web.Request) -> archivepaths.Query | web.Response:
    tail = request.rel_url.raw_path.removeprefix(archivepaths.PREFIX)
    parsed = archivepaths.parse(tail)
    return _error(400, parsed.problem) if isinstance(parsed, archivepaths.BadPath) else parsed


async def _runs(store: archiving.Store, query: archivepaths.Query) -> web.Response:
    found: list[dict[str, Any]] = []
    for key in await store.keys(f"{query.namespace}/{query.pipeline}/"):
        if key.endswith("/" + records.RECORD) and key.count("/") == 3:
            data = await store.get(key)
            if data:
                found.append(json.loads(data))
    body = {
        "namespace": query.namespace,
        "pipeline": query.pipeline,
        "runs": archivepaths.newest_first(found),
    }
    return web.json_response(body, headers=HEADERS)


async def _record(store: archiving.Store, query: archivepaths.Query) -> web.Response:
    assert query.run is not None
    data = await store.get(records.run_prefix(query.namespace, query.pipeline, query.run) + records.RECORD)
    if data is None:
        return _error(404, f"run {query.run} of {query.namespace}/{query.pipeline} is not in the archive")
    return web.Response(body=data, content_type="application/json", headers=HEADERS)


async def _log(request: web.Request, store: archiving.Store, query: archivepaths.Query) -> web.StreamResponse:
    assert query.run is not None and query.container is not None
    opened = await store.open(records.log_key(query.namespace, query.pipeline, query.run, query.container))
    if opened is None:
        return _error(
            404,
            f"no log of {query.container} in run {query.run} of {query.namespace}/{query.pipeline} in the archive",
        )
    size, chunks = opened
    response = web.StreamResponse(headers={**HEADERS, "Content-Type": "text/plain; charset=utf-8"})
    response.content_length = size
    await response.prepare(request)
    if request.method == "HEAD":
        return response
    try:
        async for chunk in chunks:
            await response.write(chunk)
    except (ConnectionResetError, OSError):
        raise
    except Exception as exc:  # noqa: BLE001 - the store failed mid-log: the reader sees a short body
        log.warning(
            "archive endpoint: %s stopped (%s)", request.rel_url.raw_path, archiving.describe_error(exc)
        )
        return response
    await response.write_eof()
    return response


async def serve(request: web.Request) -> web.StreamResponse:
    """GET /v1/runs/…: the runs, a run's record or a step's log, as the path says."""
    query = _query(request)
    if isinstance(query, web.Response):
        return query
    store = request.app[STORE]
    try:
        if query.run is None:
            return await _runs(store, query)
        if query.container is None:
            return await _record(store, query)
        return await _log(request, store, query)
    except (ConnectionResetError, web.HTTPException):
        raise
    except Exception as exc:  # noqa: BLE001 - the store's failure, said without its details
        said = archiving.describe_error(exc)
        log.warning("archive endpoint: reading %s failed (%s)", request.rel_url.raw_path, said)
        return _error(503, f"the archive cannot be read: {said}")


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n", headers=HEADERS)


def make_app(store: archiving.Store) -> web.Application:
    app = web.Application()
    app[STORE] = store
    app.router.add_get("/healthz", healthz)
    app.router.add_get(archivepaths.PREFIX + "{tail:.*}", serve)  # add_get also answers HEAD
    return app


async def start(store: archiving.Store, port: int, host: str = "0.0.0.0") -> web.AppRunner:
    """Listen on ``port`` (all addresses: the API server's proxy reaches the pod's IP); ``cleanup`` stops."""
    runner = web.AppRunner(make_app(store), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    log.info("serving the archive (read-only) on port %d", port)
    return runner
