"""The operator's read-only archive endpoint (``shell.archiveserving``) over real HTTP on loopback, in front
of a real directory store and a real S3-compatible server (s3proxy): the runs of a Pipeline, a run's
record, a step's log streamed in chunks; 400 naming a bad part (no traversal), 404 when absent, 405 for any
write, 503 without details when the store fails."""

# ruff: noqa: F811 - tests take the imported store fixtures as parameters
from __future__ import annotations

import asyncio
import json
import pathlib
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
import yarl
from podline.shell import archiveserving, archiving

from tests.cluster import s3proxy
from tests.shell.test_archive_store import s3, store  # noqa: F401 - the store fixtures: file and s3

Ask = Callable[..., Awaitable[tuple[int, dict[str, str], bytes]]]
RECORD = {
    "run": "g2",
    "result": "Failed",
    "finishedAt": 2_000,
    "steps": [{"name": "a", "container": "step-a"}],
}


def serve(store: archiving.Store, test: Callable[[Ask], Awaitable[Any]]) -> Any:
    """Run ``test`` against the endpoint on a free loopback port; ``ask(method, path)`` sends the path as
    given (no normalising of ``..``)."""

    async def main() -> Any:
        runner = await archiveserving.start(store, 0, host="127.0.0.1")
        port = runner.addresses[0][1]
        try:
            async with aiohttp.ClientSession() as session:

                async def ask(method: str, path: str) -> tuple[int, dict[str, str], bytes]:
                    url = yarl.URL(f"http://127.0.0.1:{port}{path}", encoded=True)
                    async with session.request(method, url) as response:
                        return response.status, dict(response.headers), await response.read()

                return await test(ask)
        finally:
            await runner.cleanup()

    return asyncio.run(main())


def fill(store: archiving.Store, log: bytes = b"+ echo a\na\n") -> None:
    async def put() -> None:
        await store.put("ci/app/g1/record.json", json.dumps({"run": "g1", "result": "Succeeded",
                                                              "finishedAt": 1_000}).encode())  # fmt: skip
        await store.put("ci/app/g2/record.json", json.dumps(RECORD).encode())
        await store.put("ci/app/g2/step-a.log", log)
        await store.put("ci/app-two/g1/record.json", b'{"run": "other"}')  # a name that starts alike
        await store.put("ci/app/g2/nested/x/record.json", b'{"run": "not a run"}')

    asyncio.run(put())


def test_runs_record_and_log(store: archiving.Store) -> None:
    fill(store)

    async def test(ask: Ask) -> None:
        status, headers, body = await ask("GET", "/v1/runs/ci/app")
        assert status == 200 and headers["Content-Type"].startswith("application/json")
        answer = json.loads(body)
        assert [r["run"] for r in answer["runs"]] == ["g2", "g1"]  # newest first, nothing of app-two
        status, _, body = await ask("GET", "/v1/runs/ci/app/g2")
        assert status == 200 and json.loads(body) == RECORD
        status, headers, body = await ask("GET", "/v1/runs/ci/app/g2/step-a")
        assert (status, body) == (200, b"+ echo a\na\n")
        assert (
            headers["Content-Type"] == "text/plain; charset=utf-8" and headers["Cache-Control"] == "no-store"
        )
        status, _, body = await ask("GET", "/v1/runs/ci/nothing")
        assert (status, json.loads(body)) == (200, {"namespace": "ci", "pipeline": "nothing", "runs": []})
        assert (await ask("GET", "/healthz"))[0] == 200

    serve(store, test)


def test_a_large_log_is_streamed_whole(store: archiving.Store) -> None:
    log = b"".join(b"line %d \xe2\x9c\x93\n" % i for i in range(400_000))  # ~6.5 MB, many chunks
    fill(store, log)

    async def test(ask: Ask) -> None:
        status, headers, body = await ask("GET", "/v1/runs/ci/app/g2/step-a")
        assert status == 200 and int(headers["Content-Length"]) == len(log) and body == log

    serve(store, test)


def test_the_store_is_read_in_chunks(tmp_path: pathlib.Path) -> None:
    store = archiving.open_store(f"file://{tmp_path}")
    asyncio.run(store.put("ci/app/g1/step-a.log", b"x" * 1_000_000))

    async def chunks() -> list[int]:
        opened = await store.open("ci/app/g1/step-a.log", chunk_bytes=64 * 1024)
        assert opened is not None and opened[0] == 1_000_000
        return [len(c) async for c in opened[1]]

    sizes = asyncio.run(chunks())
    assert sum(sizes) == 1_000_000 and len(sizes) > 1 and max(sizes) < 1_000_000
    assert asyncio.run(store.open("ci/app/g1/none.log")) is None


def test_absent_runs_and_logs_are_404_saying_which(store: archiving.Store) -> None:
    fill(store)

    async def test(ask: Ask) -> None:
        status, _, body = await ask("GET", "/v1/runs/ci/app/g9")
        assert status == 404 and json.loads(body) == {"error": "run g9 of ci/app is not in the archive"}
        status, _, body = await ask("GET", "/v1/runs/ci/app/g2/step-zz")
        assert status == 404 and "no log of step-zz in run g2 of ci/app" in json.loads(body)["error"]
        assert (await ask("GET", "/v1/other"))[0] == 404

    serve(store, test)


@pytest.mark.parametrize(
    ("path", "said"),
    [
        ("/v1/runs/../x", 'namespace ".."'),
        ("/v1/runs/ci/app/..%2F..%2Fapp-two%2Fg1", 'run "../../app-two/g1"'),
        ("/v1/runs/ci/%2e%2e/ci", 'pipeline ".."'),
        ("/v1/runs/ci/app/g2/..%2Frecord.json", 'step container "../record.json"'),
        ("/v1/runs/ci/app/g2/step-a/x", "5 parts given"),
        ("/v1/runs/ci", "1 part given"),
    ],
)
def test_bad_paths_are_400_naming_the_part(store: archiving.Store, path: str, said: str) -> None:
    fill(store)

    async def test(ask: Ask) -> None:
        status, _, body = await ask("GET", path)
        assert status == 400 and said in json.loads(body)["error"], body

    serve(store, test)


def test_read_only_writes_are_refused_and_change_nothing(store: archiving.Store) -> None:
    fill(store)

    async def test(ask: Ask) -> None:
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            assert (await ask(method, "/v1/runs/ci/app/g2/step-a"))[0] == 405
        assert (await ask("HEAD", "/v1/runs/ci/app/g2/step-a"))[0] == 200

    serve(store, test)
    assert asyncio.run(store.get("ci/app/g2/step-a.log")) == b"+ echo a\na\n"
    assert len(asyncio.run(store.keys("ci/"))) == 5


def test_a_failing_store_is_503_without_its_details(
    s3: s3proxy.S3Proxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wrong = "wrong-" + s3.credential
    for name, value in {**s3.env, "AWS_SECRET_ACCESS_KEY": wrong}.items():
        monkeypatch.setenv(name, value)
    denied = archiving.open_store(f"s3://{s3proxy.BUCKET}/denied")

    async def test(ask: Ask) -> None:
        for path in ("/v1/runs/ci/app", "/v1/runs/ci/app/g1", "/v1/runs/ci/app/g1/step-a"):
            status, _, body = await ask("GET", path)
            said = json.loads(body)["error"]
            assert status == 503 and said.startswith("the archive cannot be read: "), body
            assert wrong not in said and s3.credential not in said

    serve(denied, test)
