"""The pure scheduler: ``decide(Snapshot) -> Decision`` over a large table of observed pod states.

The steps sequence themselves inside the pod (``docs/in-pod.md``): every container runs from the pod's
creation, a step container's entrypoint waits for its turn, and a step ends with its result as the
container's termination message. The scheduler reads the pod and does only what the pod cannot: give a step
whose image cannot be pulled the runner image as a stand-in, stop the pod, keep the status and history.

Each row is a pod as the API could show it (annotations, phase, the kubelet's container states) and what the
scheduler must decide: the run's phase and reason, each step's state and reason, which steps get a stand-in,
whether the pod is stopped, when to look again, which Events to emit. Every row is also checked for what
holds whatever the pod says (``check_invariants``): a patch only ever swaps the image of a step that has not
run, an ended pod is never patched, every patch is conditional on the pod's resourceVersion, and deciding
again on the returned status changes nothing and emits nothing.
"""

from __future__ import annotations

import pytest
from podline.core import scheduling

from tests.core.decision_rows import (
    ANY,
    ROWS,
    Row,
)
from tests.core.decisions import (
    PLANS,
    RUNNER,
    check_invariants,
    event_reasons,
    snapshot,
    stand_ins_of,
    states,
    step_status,
    stop_of,
    swaps_of,
)


@pytest.mark.parametrize("row", [pytest.param(r, id=r.desc) for r in ROWS])
def test_decision(row: Row) -> None:
    plan = PLANS[row.plan]
    snap = snapshot(plan, row.pod(plan), now=row.now, cancel=row.cancel)
    decision = scheduling.decide(snap)
    status, want = decision.status, row.want
    assert (str(status.phase), status.reason) == (want.phase, want.reason or status.reason), status.message
    if want.steps is not None:
        assert states(decision) == want.steps
    assert stand_ins_of(decision) == {**want.stand_ins, **want.notes}
    assert swaps_of(decision) == {name: RUNNER for name in want.stand_ins}
    assert stop_of(decision) == want.stop
    assert event_reasons(decision) == want.events
    if want.requeue is not ANY:
        assert decision.requeue_after == want.requeue
    for name, reason in want.step_reasons.items():
        assert step_status(decision, name).reason == reason, step_status(decision, name)
    if want.message is not None:
        assert status.message is not None and want.message in status.message, status.message
    check_invariants(snap, decision)


def test_the_table_is_large() -> None:
    assert len(ROWS) >= 80
    assert len({r.desc for r in ROWS}) == len(ROWS)
