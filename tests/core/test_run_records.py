"""The run record (``records``): what the archive keeps of a run, read from its pod as the API shows it;
when a pod is ready to archive and when the history limit must wait for it; retention."""

from __future__ import annotations

import json
from typing import Any

import pytest
from podline.core import compiling, conventions, pods, policies, records
from podline.core.stepping import ResultState

from tests.core import podstates as ps

CONTEXT = compiling.RunContext(namespace="ci", pipeline="build-app", uid="u1", generation=2)
SPEC = {
    "steps": [
        {"name": "compile", "image": "golang:1.22", "commands": ["go build"]},
        {"name": "lint", "image": "golang:1.22", "commands": ["false"], "failure": "ignore"},
        {"name": "test", "image": "golang:1.22", "commands": ["go test"]},
        {"name": "notify", "image": "alpine:3", "commands": ["true"], "when": {"status": ["failure"]}},
    ]
}
PLAN = compiling.compile_spec(SPEC, CONTEXT, policies.Policy())
DIGEST = "sha256:" + "a" * 64


def run_pod(
    *statuses: dict[str, Any], phase: str = "Succeeded", notes: dict[str, str] | None = None
) -> ps.Pod:
    """The run's pod as built (spec, labels) with the kubelet's statuses."""
    built = pods.build_pod(PLAN)
    observed = ps.pod(PLAN, *statuses, phase=phase, notes=notes)
    observed["metadata"] = built["metadata"] | {
        "annotations": {**built["metadata"]["annotations"], **observed["metadata"]["annotations"]}
    }
    for status in observed["status"]["containerStatuses"]:
        status["imageID"] = f"docker.io/library/golang@{DIGEST}"
    return built | {"metadata": observed["metadata"], "status": observed["status"]}


def test_the_record_has_every_step_with_state_exit_code_reason_times_and_digest() -> None:
    pod = run_pod(
        ps.succeeded("step-compile", "golang:1.22", started=1, finished=2),
        ps.result("step-lint", "golang:1.22", ResultState.FAILED, 1, started=2, finished=3, failing=False),
        ps.failed("step-test", "golang:1.22", 2, started=3, finished=5),
        ps.succeeded("step-notify", "alpine:3", started=5, finished=6),
        phase="Failed",
    )
    rec = records.record(pod)
    assert (rec["namespace"], rec["pipeline"], rec["run"]) == ("ci", "build-app", PLAN.run)
    assert rec["result"] == "Failed"  # test failed; lint's failure is ignored
    assert (rec["startedAt"], rec["finishedAt"]) == (ps.ms(1), ps.ms(6))
    by = {s["name"]: s for s in rec["steps"]}
    assert list(by) == ["compile", "lint", "test", "notify"]
    assert by["compile"] == {
        "name": "compile", "container": "step-compile", "image": "golang:1.22", "imageDigest": DIGEST,
        "failing": False, "state": "succeeded", "exitCode": 0, "reason": None,
        "startedAt": ps.ms(1), "finishedAt": ps.ms(2), "outputBytes": None,
    }  # fmt: skip
    assert by["lint"]["state"] == "failed" and not by["lint"]["failing"]
    assert by["test"]["exitCode"] == 2 and by["test"]["failing"]
    json.loads(records.encode(rec))


def test_ignored_failures_and_skips_make_a_successful_run() -> None:
    pod = run_pod(
        ps.succeeded("step-compile", "golang:1.22"),
        ps.result("step-lint", "golang:1.22", ResultState.FAILED, 1, failing=False),
        ps.succeeded("step-test", "golang:1.22"),
        ps.skipped("step-notify", "alpine:3"),
    )
    rec = records.record(pod)
    assert rec["result"] == "Succeeded"
    assert [s["state"] for s in rec["steps"]] == ["succeeded", "failed", "succeeded", "skipped"]


def test_a_step_without_a_result_is_a_failure_with_the_kubelets_reason() -> None:
    pod = run_pod(ps.crashed("step-compile", "golang:1.22"), phase="Failed")
    step = records.record(pod)["steps"][0]
    assert step["state"] == "failed" and step["failing"] and step["startedAt"] is None
    assert records.record(pod)["result"] == "Failed"


@pytest.mark.parametrize(
    ("stopped", "want"),
    [
        ("Cancelled", "Cancelled"),
        ("Timeout", "Timeout"),
        ("Superseded", "Superseded"),
        ("StepFailed", "Failed"),
    ],
)
def test_a_pod_stopped_mid_run_says_why(stopped: str, want: str) -> None:
    pod = run_pod(
        ps.succeeded("step-compile", "golang:1.22"),
        ps.result("step-lint", "golang:1.22", ResultState.FAILED, 143, reason="Stopped", failing=True),
        ps.skipped("step-test", "golang:1.22", "Stopped"),
        ps.skipped("step-notify", "alpine:3", "Stopped"),
        notes=ps.stopped(stopped),
    )
    assert records.record(pod)["result"] == want


@pytest.mark.parametrize("stopped", ["Completed", "Superseded"])
def test_a_pod_stopped_after_its_run_ended_keeps_the_runs_result(stopped: str) -> None:
    """A rerun stops the earlier run's pod (Superseded) even when its steps had all ended: still Succeeded."""
    done = [ps.succeeded(f"step-{n}", "golang:1.22") for n in ("compile", "lint", "test")]
    pod = run_pod(*done, ps.skipped("step-notify", "alpine:3"), notes=ps.stopped(stopped))
    assert records.record(pod)["result"] == "Succeeded"


def test_archiving_waits_for_the_end_of_the_run_and_happens_once() -> None:
    running = run_pod(ps.succeeded("step-compile", "golang:1.22"), phase="Running")
    assert not records.is_over(running)
    over = run_pod(ps.succeeded("step-compile", "golang:1.22"))
    assert records.is_over(over) and not records.is_archived(over)
    marked = ps.apply_patch(over, records.archived_patch(ps.at(10)))
    assert records.is_archived(marked)
    assert marked["metadata"]["annotations"][conventions.ANNOTATION_ARCHIVED] == "2024-05-01T12:00:10+00:00"


def test_history_pruning_waits_for_the_archive_for_a_bounded_time() -> None:
    over = run_pod(ps.succeeded("step-compile", "golang:1.22", finished=2))  # kubelet end at ts(2)
    assert records.must_keep(over, now=ps.at(60), archive_wait_seconds=3600)
    assert not records.must_keep(over, now=ps.at(3603), archive_wait_seconds=3600)  # bounded
    assert not records.must_keep(over, now=ps.at(60), archive_wait_seconds=0)  # no archive
    marked = ps.apply_patch(over, records.archived_patch(ps.at(10)))
    assert not records.must_keep(marked, now=ps.at(60), archive_wait_seconds=3600)


def test_store_keys() -> None:
    assert records.log_key("ci", "build-app", "2", "step-test") == "ci/build-app/2/step-test.log"
    assert records.run_prefix("ci", "build-app", "2") + records.RECORD == "ci/build-app/2/record.json"


@pytest.mark.parametrize(
    ("text", "age", "runs"),
    [("", None, None), ("30d", 30 * 86400, None), ("20runs", None, 20), ("12h, 5 runs", 12 * 3600, 5),
     ("90m", 5400, None), ("1run", None, 1)],
)  # fmt: skip
def test_retention_parses(text: str, age: int | None, runs: int | None) -> None:
    assert records.parse_retention(text) == records.Retention(age, runs)


@pytest.mark.parametrize("text", ["forever", "30", "0d", "0runs", "-1d", "3w", "d"])
def test_bad_retention_says_why(text: str) -> None:
    with pytest.raises(ValueError, match="30d|more than 0"):
        records.parse_retention(text)


def test_retention_prunes_the_oldest_and_the_too_old() -> None:
    day = 86400 * 1000
    now = 100 * day
    runs = [("1", 10 * day), ("2", 80 * day), ("3", 95 * day), ("4", 99 * day), ("5", None)]
    assert records.to_prune(runs, retention=records.Retention(max_runs=3), now_ms=now) == ["2", "1"]
    assert records.to_prune(runs, retention=records.Retention(30 * 86400), now_ms=now) == ["1"]
    both = records.Retention(max_age_seconds=10 * 86400, max_runs=4)
    assert records.to_prune(runs, retention=both, now_ms=now) == ["2", "1"]
    assert records.to_prune(runs, retention=records.Retention(), now_ms=now) == []


def test_an_archived_log_is_limited_with_a_note() -> None:
    assert records.limited(b"0123456789", 10) == b"0123456789"
    assert records.limited(b"0123456789a", 10) == b"0123456789" + records.truncation_note(10)
    assert b"PODLINE_LOG_LIMIT" in records.truncation_note(10)


def test_a_log_shorter_than_what_the_step_wrote_says_a_gap() -> None:
    """The entrypoint counts the bytes it relayed (``outputBytes``); a log read back shorter lost some in the
    node's log pipeline (containerd restarted mid-step), and the archive says so."""
    assert records.limited(b"abc", 10, written=3) == b"abc"
    assert records.limited(b"abc", 10, written=8) == b"abc" + records.gap_note(5, 8)
    assert records.limited(b"0123456789", 10, written=50) == b"0123456789"  # cut by the limit, not a gap
    assert records.limited(b"abc\n", 10, written=3) == b"abc\n"  # more than counted is no gap
    assert b"5 of the 8 bytes" in records.gap_note(5, 8)


def test_archived_runs_are_read_from_a_listing_of_record_keys() -> None:
    listing = [("ci/app/1/record.json", 5), ("ci/app/1/step-a.log", 6), ("ci/app/2/record.json", 9),
               ("ci/web/7/record.json", 3), ("ci/app/record.json", 1), ("stray.txt", 2),
               ("ci/app/3/x/record.json", 4), ("ci//4/record.json", 8)]  # fmt: skip
    assert records.archived_runs(listing) == {("ci", "app"): [("1", 5), ("2", 9)], ("ci", "web"): [("7", 3)]}
