"""The chaos engine's ledger check counts what it must: a step command started twice is a duplicate, a
command that never ran (or ran though skipped) is a lost step; a stand-in for an unpullable image runs none."""

from __future__ import annotations

from tests import chaos
from tests.cluster.scripted_kubelet import Instance

PLANNED = chaos.Planned("p", "unpullable", {"steps": []}, "Failed",
                        {"s0": "succeeded", "s1": "failed", "s2": "skipped"}, frozenset({"s1"}))  # fmt: skip


def ledger(
    *commands: str, containers: tuple[str, ...] = ("podline-prepare", "step-s0", "step-s1", "step-s2")
) -> list[Instance]:
    out = [Instance("ns", "p-g1", c, "busybox:1.36", f"scripted://u/{c}/1") for c in containers]
    return out + [
        Instance("ns", "p-g1", c, "busybox:1.36", f"scripted://u/{c}/1", "command") for c in commands
    ]


def check(instances: list[Instance]) -> chaos.Figures:
    figures = chaos.Figures(runs=1)
    chaos.check_ledger(instances, [PLANNED], figures)
    return figures


def test_each_command_once_is_clean() -> None:
    figures = check(ledger("step-s0"))
    assert (figures.duplicates, figures.lost_steps) == (0, 0), figures.problems


def test_a_command_started_twice_is_a_duplicate() -> None:
    figures = check(ledger("step-s0", "step-s0"))
    assert figures.duplicates == 1 and "step-s0: its command started 2 times" in figures.problems[0]


def test_a_container_started_twice_is_a_duplicate() -> None:
    figures = check(
        ledger("step-s0", containers=("podline-prepare", "step-s0", "step-s0", "step-s1", "step-s2"))
    )
    assert figures.duplicates == 1


def test_a_command_missing_or_one_that_should_not_run_is_a_lost_step() -> None:
    assert check(ledger()).lost_steps == 1  # s0 never ran
    assert (
        check(ledger("step-s0", "step-s1")).lost_steps == 1
    )  # the stand-in ran the unpullable step's command
    assert check(ledger("step-s0", "step-s2")).lost_steps == 1  # a skipped step ran


def test_a_build_pipeline_started_before_its_dependency_is_out_of_order() -> None:
    first = chaos.Planned("b-a", "build-chain", {}, "Succeeded", {}, build="b")
    second = chaos.Planned("b-b", "build-chain", {}, "Succeeded", {}, build="b", run="g1-d1", after=("b-a",))
    ended = {"b-a": {"completionTime": "2026-01-01T00:00:05Z"}, "b-b": {"startTime": "2026-01-01T00:00:05Z"}}

    def order(*pods: str, statuses: dict[str, dict[str, str]] = ended) -> int:
        figures = chaos.Figures(runs=2)
        ledger = [Instance("ns", pod, "step-s0", "busybox:1.36", "scripted://u/1", "command") for pod in pods]
        chaos.check_order(ledger, [first, second], statuses, figures)
        return figures.out_of_order

    assert order("b-a-g1", "b-b-g1-d1") == 0
    assert order("b-b-g1-d1", "b-a-g1") == 1
    assert order("b-a-g1", "b-b-g1-d1", statuses={**ended, "b-b": {"startTime": "2026-01-01T00:00:04Z"}}) == 1


def test_a_skipped_build_pipeline_must_have_no_pod_and_no_started_event() -> None:
    skipped = chaos.Planned("b-p", "build-failing", {}, "Skipped", {"s0": "skipped"}, build="b", run="g1-d2")
    assert skipped.pod is None
    figures = chaos.Figures(runs=1)
    event = {"involvedObject": {"name": "b-p", "kind": "Pipeline"}, "reason": "Skipped"}
    chaos.check_events([event], [skipped], figures)
    chaos.check_pods([], [skipped], figures)
    assert not figures.problems
    chaos.check_events([event, {**event, "reason": "Started"}], [skipped], figures)
    assert figures.events_repeated == 1
