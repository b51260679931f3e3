"""The dashboard's server without a cluster: its hub is filled by hand, so these requests never reach an API.

What is pinned here: which requests may rerun/cancel (same origin + the page's token), which Host names
are answered, the security headers, that a log is only ever read from the Pipeline's own run pod (or, for a
run only in the archive, from the archive, its name checked first), the earlier runs merged with a real
file:// archive, and that the list stream filters and follows the hub. The cluster tests (test_dashboard_cluster.py, real browser)
cover the rest against a real apiserver.
"""

from __future__ import annotations

import asyncio
import json
import pathlib
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import test_utils
from podline.dashboard import archived, kubeapi, logsources, server, watching

from tests.dashboard import test_archived, test_earlier
from tests.dashboard.test_views import T0, pipeline, step


def _no_api() -> Any:
    raise AssertionError("these tests never call the API")


class ReadLogs:
    """A log source that records what was asked for and answers with fixed bytes."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.asked: list[tuple[logsources.StepLog, bool]] = []

    async def read(self, log: logsources.StepLog, *, follow: bool) -> AsyncGenerator[bytes, None]:
        self.asked.append((log, follow))
        for chunk in self.chunks:
            yield chunk


def _context(*bodies: dict[str, Any], read_only: bool = True, hosts: tuple[str, ...] = ()) -> server.Context:
    api = kubeapi.UserApi(_no_api)
    hub = watching.Hub(api)
    for body in bodies:
        hub.objects[watching.key_of(body)] = body
    hub.ready.set()
    options = server.Options(read_only=read_only, allowed_hosts=hosts, token="t0ken")
    return server.Context(
        api=api, hub=hub, logs=ReadLogs([b"\x1b[31m<script>x</script>\x1b[0m\n"]), options=options
    )


def serve(ctx: server.Context, check: Callable[[test_utils.TestClient[Any, Any]], Awaitable[None]]) -> None:
    async def main() -> None:
        async with test_utils.TestClient(test_utils.TestServer(server.make_app(ctx))) as client:
            await check(client)

    asyncio.run(main())


async def _events(response: Any, count: int) -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    event = None
    while len(found) < count:
        line = (await asyncio.wait_for(response.content.readline(), 5)).decode().rstrip("\n")
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            found.append((str(event), json.loads(line[6:])))
    return found


RUNNING = pipeline(
    "web",
    status={
        "phase": "Running",
        "run": "g1",
        "podName": "web-g1",
        "startTime": T0,
        "steps": [step("a", "succeeded", 0, 500), step("b", "running", 600)],
        "history": [{"run": "g0-rx", "phase": "Failed", "podName": "web-g0-rx", "completionTime": T0}],
    },
    build={"event": "push", "branch": "main"},
)


# --- who may POST ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "refused"),
    [
        ({"X-Podline-Token": "t0ken", "Origin": "http://dash:8080", "Sec-Fetch-Site": "same-origin"}, None),
        ({"X-Podline-Token": "t0ken"}, None),  # not a browser: no Origin, but it knows the token
        ({"X-Podline-Token": "t0ken", "Sec-Fetch-Site": "cross-site"}, "a cross-site request"),
        ({"X-Podline-Token": "t0ken", "Sec-Fetch-Site": "same-site"}, "a same-site request"),
        ({"X-Podline-Token": "t0ken", "Origin": "http://evil.example"}, "a request from another origin"),
        ({"X-Podline-Token": "t0ken", "Origin": "null"}, "a request from another origin"),
        (
            {"Origin": "http://dash:8080", "Sec-Fetch-Site": "same-origin"},
            "a request without the page's token",
        ),
        ({"X-Podline-Token": "guess", "Sec-Fetch-Site": "same-origin"}, "a request without the page's token"),
    ],
)
def test_a_post_must_come_from_the_page_with_its_token(headers: dict[str, str], refused: str | None) -> None:
    request = test_utils.make_mocked_request(
        "POST", "/api/runs/ci/web/rerun", headers={"Host": "dash:8080", **headers}
    )
    assert server.cross_site(request, "t0ken") == refused


def test_a_cross_site_rerun_is_refused_before_anything_is_asked_of_the_api() -> None:
    ctx = _context(RUNNING, read_only=False)

    async def check(client: Any) -> None:
        response = await client.post(
            "/api/runs/ci/web/rerun", headers={"Origin": "http://evil.example", "X-Podline-Token": "t0ken"}
        )
        assert response.status == 403
        assert "another origin" in (await response.json())["error"]
        assert ctx.api.counts["review"] == 0 and ctx.api.counts["patch"] == 0

    serve(ctx, check)


def test_read_only_offers_no_actions_and_refuses_them() -> None:
    ctx = _context(RUNNING, read_only=True)

    async def check(client: Any) -> None:
        response = await client.post("/api/runs/ci/web/cancel", headers={"X-Podline-Token": "t0ken"})
        assert response.status == 403 and "not allowed" in (await response.json())["error"]
        session = await (await client.get("/api/session")).json()
        assert session == {"token": "t0ken", "readOnly": True, "problem": None}

    serve(ctx, check)


def test_an_unknown_action_is_not_found() -> None:
    async def check(client: Any) -> None:
        assert (
            await client.post("/api/runs/ci/web/delete", headers={"X-Podline-Token": "t0ken"})
        ).status == 404

    serve(_context(RUNNING), check)


# --- hosts and headers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "status"),
    [("localhost:8080", 200), ("127.0.0.1:8080", 200), ("[::1]:8080", 200), ("attacker.example:8080", 421)],
)
def test_on_loopback_only_loopback_host_names_are_answered(host: str, status: int) -> None:
    async def check(client: Any) -> None:
        assert (await client.get("/", headers={"Host": host})).status == status
        assert (await client.get("/healthz", headers={"Host": "10.0.0.7:8080"})).status == 200  # probes

    serve(_context(hosts=server.LOOPBACK_HOSTS), check)


def test_pages_carry_a_strict_content_security_policy() -> None:
    async def check(client: Any) -> None:
        for path in ("/", "/runs/ci/web", "/static/dashboard.js", "/api/session"):
            response = await client.get(path)
            assert response.status == 200, path
            policy = response.headers["Content-Security-Policy"]
            assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
            assert response.headers["X-Content-Type-Options"] == "nosniff"

    serve(_context(RUNNING), check)


@pytest.mark.parametrize(
    "path", ["/static/../server.py", "/static/%2e%2e%2fserver.py", "/static/nothing.js", "/static/x.py"]
)
def test_static_serves_only_the_pages_assets(path: str) -> None:
    async def check(client: Any) -> None:
        assert (await client.get(path)).status == 404

    serve(_context(), check)


def test_the_static_assets_ship_in_the_package() -> None:
    names = {p.name for p in server.STATIC.iterdir()}
    assert {"index.html", "run.html", "dashboard.css", "dashboard.js"} <= names


def test_the_page_script_never_writes_markup() -> None:
    script = (server.STATIC / "dashboard.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in script


# --- logs -----------------------------------------------------------------------------------------------


def test_a_log_is_read_from_the_runs_own_pod_followed_while_the_step_runs() -> None:
    ctx = _context(RUNNING)

    async def check(client: Any) -> None:
        response = await client.get("/api/logs/ci/web/g1/step-b")
        events = await _events(response, 2)
        assert events[0] == ("log", [{"t": "<script>x</script>", "fg": "c1"}, {"t": "\n"}])
        assert events[1] == ("end", {"followed": True})
        response = await client.get("/api/logs/ci/web/g1/step-a")
        assert (await _events(response, 2))[1] == ("end", {"followed": False})  # it has ended

    serve(ctx, check)
    assert isinstance(ctx.logs, ReadLogs)
    assert [(log.pod, log.container, follow) for log, follow in ctx.logs.asked] == [
        ("web-g1", "step-b", True),
        ("web-g1", "step-a", False),
    ]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/api/logs/ci/web/g1/operator", "not a step"),
        ("/api/logs/ci/web/g9/step-a", "no run 'g9'"),
        ("/api/logs/ci/nope/g1/step-a", "no such Pipeline"),
    ],
)
def test_a_log_of_anything_but_a_step_of_a_kept_run_is_not_read(path: str, message: str) -> None:
    ctx = _context(RUNNING)

    async def check(client: Any) -> None:
        event, data = (await _events(await client.get(path), 1))[0]
        assert event == "unavailable" and message in data["message"]

    serve(ctx, check)
    assert isinstance(ctx.logs, ReadLogs) and ctx.logs.asked == []


def test_an_earlier_runs_log_comes_from_its_pod_in_the_history() -> None:
    ctx = _context(RUNNING)

    async def check(client: Any) -> None:
        await _events(await client.get("/api/logs/ci/web/g0-rx/step-a"), 2)

    serve(ctx, check)
    assert isinstance(ctx.logs, ReadLogs)
    assert [(log.pod, follow) for log, follow in ctx.logs.asked] == [("web-g0-rx", False)]


# --- the list stream ------------------------------------------------------------------------------------


def test_the_list_stream_sends_a_filtered_snapshot_then_changes() -> None:
    other = pipeline("lib", namespace="team", status={"phase": "Succeeded", "startTime": T0})
    ctx = _context(RUNNING, other)

    async def check(client: Any) -> None:
        response = await client.get("/api/events?namespace=ci")
        ((event, snapshot),) = await _events(response, 1)
        assert event == "snapshot"
        assert [r["key"] for r in snapshot["rows"]] == ["ci/web"]
        assert snapshot["choices"]["namespace"] == ["ci", "team"]
        changed = {
            **RUNNING,
            "metadata": {**RUNNING["metadata"], "resourceVersion": "2"},
            "status": {"phase": "Failed"},
        }
        ctx.hub._set(changed)
        ctx.hub._set({**other, "metadata": {**other["metadata"], "resourceVersion": "3"}})  # filtered out
        ctx.hub._drop("ci/web")
        assert [(e, d.get("key"), d.get("phase")) for e, d in await _events(response, 3)] == [
            ("row", "ci/web", "Failed"),
            ("gone", "team/lib", None),
            ("gone", "ci/web", None),
        ]

    serve(ctx, check)


def test_a_subscriber_that_falls_behind_is_dropped_not_waited_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watching, "QUEUE_LIMIT", 2)
    hub = watching.Hub(kubeapi.UserApi(_no_api))

    async def main() -> None:
        slow = hub.subscribe()
        for n in range(3):
            hub._set(pipeline(f"p{n}"))
        assert hub.subscribers == 0
        assert await slow.get() is None  # its stream ends; the page reconnects for a fresh snapshot

    asyncio.run(main())


def test_the_run_stream_sends_the_runs_detail_without_actions_when_read_only() -> None:
    async def check(client: Any) -> None:
        ((event, detail),) = await _events(await client.get("/api/events/ci/web"), 1)
        assert event == "run"
        assert detail["row"]["phase"] == "Running" and detail["mayPatch"] is False
        assert [b["name"] for b in detail["timeline"]["bars"]] == ["a", "b"]
        assert detail["history"][0]["run"] == "g0-rx"
        ((event, data),) = await _events(await client.get("/api/events/ci/nope"), 1)
        assert event == "missing" and data["key"] == "ci/nope"

    serve(_context(RUNNING), check)


def test_rows_are_made_once_per_version_whatever_the_number_of_pages() -> None:
    ctx = _context()
    body = {**RUNNING, "metadata": {**RUNNING["metadata"], "resourceVersion": "7"}}
    first = ctx.row(body)
    assert ctx.row(body) is not None and ctx.row(body)[1] is first[1]


# --- runs in the archive (a real file:// store, as `--archive file://…` gives) ---------------------------


def _archived_context(tmp_path: pathlib.Path, *found: dict[str, Any]) -> server.Context:
    store = test_archived.seeded(tmp_path, *found)
    ctx = _context(RUNNING)
    ctx.archive = logsources.ArchiveLogs(store)
    ctx.past = archived.Cache(archived.StoreRecords(store))
    return ctx


def _web_record(run: str, end: int) -> dict[str, Any]:
    return {**test_earlier.record(run, "Failed", start=end - 3000, end=end), "pipeline": "web"}


def test_earlier_runs_are_the_status_history_and_the_archive_merged(tmp_path: pathlib.Path) -> None:
    ctx = _archived_context(
        tmp_path, _web_record("g0-rx", 0), _web_record("old-1", -60_000), _web_record("g1", 9000)
    )

    async def check(client: Any) -> None:
        response = await client.get("/api/history/ci/web")
        assert response.status == 200
        answer = await response.json()
        assert [(e["run"], e["kept"], e["archived"]) for e in answer["runs"]] == [
            ("g0-rx", True, True),  # in the status and the archive: one entry
            ("old-1", False, True),  # only in the archive
        ]  # g1 is the current run: shown above, not here
        assert answer["runs"][1]["steps"][0] == {
            **answer["runs"][1]["steps"][0],
            "name": "build",
            "exitCode": 0,
        }
        assert answer["problem"] is None and answer["archive"] is True and answer["more"] == 0
        assert (await client.get("/api/history/ci/nope")).status == 404

    serve(ctx, check)
    assert ctx.past is not None and ctx.past.reads == 1


def test_without_an_archive_earlier_runs_are_the_status_history() -> None:
    async def check(client: Any) -> None:
        answer = await (await client.get("/api/history/ci/web")).json()
        assert [e["run"] for e in answer["runs"]] == ["g0-rx"]
        assert answer["archive"] is False and answer["problem"] is None

    serve(_context(RUNNING), check)


def test_an_archive_that_cannot_be_read_is_said_and_the_status_history_still_listed(
    tmp_path: pathlib.Path,
) -> None:
    ctx = _archived_context(tmp_path)
    (tmp_path / "archive").rmdir()
    (tmp_path / "archive").write_text("not a directory")

    async def check(client: Any) -> None:
        answer = await (await client.get("/api/history/ci/web")).json()
        assert [e["run"] for e in answer["runs"]] == ["g0-rx"]
        assert answer["problem"].startswith(f"cannot read the archive file://{tmp_path}/archive: ")

    serve(ctx, check)


def test_a_run_only_in_the_archive_has_its_log_read_from_the_archive_alone(tmp_path: pathlib.Path) -> None:
    ctx = _archived_context(tmp_path, _web_record("old-1", -60_000))

    async def check(client: Any) -> None:
        events = await _events(await client.get("/api/logs/ci/web/old-1/step-build"), 2)
        assert events == [("log", [{"t": "built\n"}]), ("end", {"followed": False})]
        ((event, data),) = await _events(await client.get("/api/logs/ci/web/g9/step-build"), 1)
        assert (event, data) == ("unavailable", {"message": "run g9 is not in the archive"})

    serve(ctx, check)
    assert isinstance(ctx.logs, ReadLogs) and ctx.logs.asked == []  # no pod was looked up


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/api/logs/ci/web/..%2F..%2Fetc/step-build", "is not a Kubernetes name"),
        ("/api/logs/ci/web/a..b/step-build", 'run "a..b" is not a Kubernetes name'),
        ("/api/logs/ci/web/Old-1/step-build", 'run "Old-1" is not a Kubernetes name'),
        ("/api/logs/ci/web/old-1/step-a.b", 'step container "step-a.b" is not a Kubernetes name'),
        ("/api/logs/ci/web/old-1/record.json", "'record.json' is not a step"),
    ],
)
def test_an_archive_only_runs_names_are_checked_before_the_store_is_asked(
    tmp_path: pathlib.Path, path: str, message: str
) -> None:
    ctx = _archived_context(tmp_path, _web_record("old-1", -60_000))
    (tmp_path / "archive" / "ci" / "web" / "old-1" / "step-a.b.log").write_text("never read")

    async def check(client: Any) -> None:
        ((event, data),) = await _events(await client.get(path), 1)
        assert event == "unavailable" and message in data["message"], data

    serve(ctx, check)
    assert isinstance(ctx.logs, ReadLogs) and ctx.logs.asked == []
