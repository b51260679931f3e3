"""Status conditions per phase."""

from __future__ import annotations

import pytest
from podline.core import scheduling

from tests.core import podstates as ps
from tests.core.decision_rows import (
    ROWS,
    Row,
    ok,
    up,
)
from tests.core.decisions import (
    PLANS,
    A,
    B,
    C,
    snapshot,
)

CONDITIONS = {
    "Pending": {"Ready": "False", "Succeeded": "Unknown", "Reconciling": "True", "Stalled": "False"},
    "Running": {"Ready": "False", "Succeeded": "Unknown", "Reconciling": "True", "Stalled": "False"},
    "Succeeded": {"Ready": "True", "Succeeded": "True", "Reconciling": "False", "Stalled": "False"},
    "Failed": {"Ready": "False", "Succeeded": "False", "Reconciling": "False", "Stalled": "True"},
    "Cancelled": {"Ready": "False", "Succeeded": "False", "Reconciling": "False", "Stalled": "True"},
    "Error": {"Ready": "False", "Succeeded": "False", "Reconciling": "False", "Stalled": "True"},
}


@pytest.mark.parametrize("row", [pytest.param(r, id=r.desc) for r in ROWS])
def test_conditions_follow_the_phase(row: Row) -> None:
    plan = PLANS[row.plan]
    decision = scheduling.decide(snapshot(plan, row.pod(plan), now=row.now, cancel=row.cancel))
    status = decision.status
    assert {c.type: c.status for c in status.conditions} == CONDITIONS[str(status.phase)]
    assert all(
        (c.reason, c.message, c.observed_generation) == (status.reason, status.message, 1)
        for c in status.conditions
    )


def test_conditions_keep_their_transition_time_while_unchanged() -> None:
    plan = PLANS["seq"]
    created = scheduling.decide(snapshot(plan, None, now=0))
    running_ = scheduling.decide(
        snapshot(plan, ps.pod(plan, up(A), up(B), up(C)), now=5, status=created.status.to_patch())
    )
    later = scheduling.decide(
        snapshot(plan, ps.pod(plan, ok(A), up(B), up(C)), now=50, status=running_.status.to_patch())
    )
    times = {c.type: c.last_transition_time for c in later.status.conditions}
    assert times == {"Ready": ps.ts(0), "Succeeded": ps.ts(0), "Reconciling": ps.ts(0), "Stalled": ps.ts(0)}
    done = scheduling.decide(
        snapshot(plan, ps.pod(plan, ok(A), ok(B), ok(C)), now=90, status=later.status.to_patch())
    )
    times = {c.type: c.last_transition_time for c in done.status.conditions}
    assert times == {
        "Ready": ps.ts(90),
        "Succeeded": ps.ts(90),
        "Reconciling": ps.ts(90),
        "Stalled": ps.ts(0),
    }
    assert done.status.completion_time == ps.ts(90)
    after = scheduling.decide(
        snapshot(
            plan, ps.pod(plan, ok(A), ok(B), ok(C), phase="Succeeded"), now=200, status=done.status.to_patch()
        )
    )
    assert after.status == done.status and after.events == ()
