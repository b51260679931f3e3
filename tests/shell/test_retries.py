"""How the reconciler retries a Pipeline whose reconcile failed: per Pipeline, doubling, capped."""

from __future__ import annotations

import asyncio
from typing import Any

from podline.shell import reconciling
from podline.shell import settings as settings_

KEY = ("ci", "hello")


class DownApi:
    """An apiserver that is away: every call fails as the real client's would (Transient)."""

    def __init__(self) -> None:
        self.calls = 0

    async def get_pod(self, *_: Any) -> Any:
        self.calls += 1
        raise reconciling.kube.Transient("ClientConnectorError: connection refused")

    async def patch_status(self, *_: Any) -> Any:
        self.calls += 1
        raise reconciling.kube.Transient("ClientConnectorError: connection refused")


def test_delays_double_per_pipeline_up_to_the_cap_and_reset_after_a_success() -> None:
    r = reconciling.Reconciler(DownApi(), settings_.Settings())  # type: ignore[arg-type]

    async def go() -> list[float]:
        delays = [r.queue.retry_later(KEY, 2.0) for _ in range(6)]
        other = r.queue.retry_later(("ci", "other"), 2.0)
        for handle in r.queue._timers.values():
            handle.cancel()
        return [*delays, other]

    delays = asyncio.run(go())
    assert delays[:6] == [2.0, 4.0, 8.0, 16.0, 16.0, 16.0]
    assert delays[6] == 2.0, "another Pipeline's failures are its own"
    r.forget(KEY)
    assert KEY not in r.queue._failures


def test_a_failing_reconcile_schedules_its_retry_instead_of_raising() -> None:
    api = DownApi()
    r = reconciling.Reconciler(api, settings_.Settings())  # type: ignore[arg-type]
    r.caches.pipelines[KEY] = {
        "metadata": {"namespace": "ci", "name": "hello", "uid": "u1", "generation": 1},
        "spec": {"steps": [{"name": "a", "image": "alpine:3.20", "commands": ["true"]}]},
        "status": {"run": "g1", "podName": "hello-g1", "phase": "Running"},
    }

    async def go() -> None:
        r.kick(KEY)
        await r.queue._tasks[KEY]
        assert KEY in r.queue._timers, "a retry is scheduled"
        r.queue._timers[KEY].cancel()

    asyncio.run(go())
    assert api.calls >= 1 and r.queue._failures[KEY] == 1
