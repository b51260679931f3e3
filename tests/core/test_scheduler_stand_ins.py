"""Images that cannot be pulled: what the stand-in records, and what the status says."""

from __future__ import annotations

import pytest
from podline.core import (
    observing,
    pods,
    scheduling,
    statuses,
)

from tests.core import podstates as ps
from tests.core.decision_rows import (
    DEADLINE,
    ok,
    skip,
    up,
)
from tests.core.decisions import (
    IMG,
    PLANS,
    RUNNER,
    A,
    B,
    C,
    snapshot,
    step_status,
)
from tests.core.podstates import (
    entry,
    waiting,
)

HINT = (
    "check the image name, the step's pull setting (imagePullPolicy IfNotPresent) and the Pipeline's "
    "image_pull_secrets"
)


@pytest.mark.parametrize(
    ("desc", "reason", "message", "now", "want"),
    [
        ("not-found", "ErrImagePull", ps.NOT_FOUND, 2, f"{ps.NOT_FOUND}; {HINT}"),
        ("unauthorized", "ErrImagePull", ps.UNAUTHORIZED, 2, f"{ps.UNAUTHORIZED}; {HINT}"),
        ("never-pull", "ErrImageNeverPull", ps.NEVER_PULL, 2, f"{ps.NEVER_PULL}; {HINT}"),
        (
            "transient-past-the-pull-timeout",
            "ErrImagePull",
            ps.REFUSED,
            300,
            f"image alpine:3.19 could not be pulled in 300s (ErrImagePull: {ps.REFUSED}); {HINT}",
        ),
    ],
)
def test_a_stand_in_records_why_and_the_status_keeps_it_to_the_end(
    desc: str, reason: str, message: str, now: float, want: str
) -> None:
    plan = PLANS["seq"]
    pulling = ps.pod(plan, waiting(A, IMG[A], reason, message), up(B), up(C))
    first = scheduling.decide(snapshot(plan, pulling, now=now))
    assert first.pod_patch == {
        "metadata": {
            "annotations": {"killed.podline.dev/step-a": pods.failure_note(reason, want)},
            "resourceVersion": "100",
        },
        "spec": {"containers": [{"name": A, "image": RUNNER}]},
    }
    swapped = ps.apply_patch(pulling, first.pod_patch)
    notes = swapped["metadata"]["annotations"]
    # The kubelet runs the runner image in its place, which records the failure in the step's turn.
    stages = [
        ps.pod(plan, entry(A, RUNNER), up(B), up(C), notes=notes),
        ps.pod(plan, ps.stand_in_result(A, at_=now + 1), up(B), up(C), notes=notes),
        ps.pod(plan, ps.stand_in_result(A, at_=now + 1), skip(B), skip(C), notes=notes, phase="Failed"),
    ]
    status = first.status.to_patch()
    seen: list[statuses.StepStatus] = []
    for n, stage in enumerate(stages):
        decision = scheduling.decide(snapshot(plan, stage, now=now + 2 + n, status=status))
        assert decision.pod_patch is None
        seen.append(step_status(decision, "a"))
        status = decision.status.to_patch()
    assert [(s.state, s.reason, s.message) for s in seen] == [
        ("waiting", reason, want),
        ("failed", reason, want),
        ("failed", reason, want),
    ]
    final = statuses.PipelineStatus.model_validate(status)
    assert (final.phase, final.reason, final.message) == (
        "Failed",
        "StepFailed",
        'step "a" failed (exit code 1)',
    )


@pytest.mark.parametrize(
    ("reason", "message", "want"),
    [
        ("ErrImagePull", ps.NOT_FOUND, "permanent"),
        ("ErrImagePull", ps.UNAUTHORIZED, "permanent"),
        ("ErrImagePull", ps.DENIED, "permanent"),
        ("ErrImagePull", 'failed to resolve reference "r.io/a:1": r.io/a:1: manifest unknown', "permanent"),
        (
            "ErrImagePull",
            (
                'failed to resolve reference "r.io/a:1": unexpected status from HEAD request to '
                "https://r.io/v2/a/manifests/1: 403 Forbidden"
            ),
            "permanent",
        ),
        ("ImagePullBackOff", f"{ps.BACKOFF}: ErrImagePull: {ps.NOT_FOUND}", "permanent"),
        ("ErrImageNeverPull", ps.NEVER_PULL, "permanent"),
        ("InvalidImageName", ps.INVALID_NAME, "permanent"),
        ("CreateContainerConfigError", 'secret "tok" not found', "permanent"),
        ("ErrImagePull", ps.REFUSED, "transient"),
        (
            "ErrImagePull",
            (
                'failed to do request: Head "https://r.io/v2/a/manifests/1": dial tcp: lookup r.io on '
                "10.96.0.10:53: no such host"
            ),
            "transient",
        ),
        (
            "ErrImagePull",
            (
                "failed to copy: httpReadSeeker: failed open: unexpected status code "
                "https://r.io/v2/a/blobs/sha256:aa: 429 Too Many Requests - toomanyrequests"
            ),
            "transient",
        ),
        ("ErrImagePull", "failed to copy: read tcp 10.0.0.5:4431->10.0.0.9:443: i/o timeout", "transient"),
        ("ImagePullBackOff", ps.BACKOFF, "transient"),
        ("RegistryUnavailable", "registry unavailable", "transient"),
        ("ContainerCreating", "", None),
    ],
)
def test_which_pull_errors_no_retry_heals(reason: str, message: str, want: str | None) -> None:
    plan = PLANS["one"]
    view = observing.view_steps(plan, ps.pod(plan, waiting(A, IMG[A], reason, message)))[A]
    assert observing.pull_failure(view) == want


def test_a_transient_pull_error_waits_for_the_later_of_its_turn_and_the_pod_start() -> None:
    plan = PLANS["seq"]
    late = ps.pod(plan, ok(A, finished=5), waiting(B, IMG[B], "ErrImagePull", ps.REFUSED), up(C), start=40)
    assert (
        scheduling.decide(snapshot(plan, late, now=100)).requeue_after == 240
    )  # from the pod's start at 40 s
    early = ps.pod(plan, ok(A, finished=60), waiting(B, IMG[B], "ErrImagePull", ps.REFUSED), up(C), start=40)
    assert scheduling.decide(snapshot(plan, early, now=100)).requeue_after == 260  # from a's end at 60 s


def test_a_config_error_says_which_secret_to_check_and_reads_the_same_once_the_pod_is_stopped() -> None:
    plan = PLANS["seq"]
    pod = ps.pod(
        plan,
        waiting(A, IMG[A], "CreateContainerConfigError", "couldn't find key token in Secret ci/tok"),
        up(B),
        up(C),
    )
    first = scheduling.decide(snapshot(plan, pod))
    message = "couldn't find key token in Secret ci/tok; check the Secrets named by from_secret"
    assert first.pod_patch == {
        "metadata": {
            "annotations": {
                "killed.podline.dev/step-a": pods.failure_note("CreateContainerConfigError", message),
                "podline.dev/stopped": "StepFailed",
            },
            "resourceVersion": "100",
        },
        "spec": {"activeDeadlineSeconds": 1},
    }
    notes = ps.apply_patch(pod, first.pod_patch)["metadata"]["annotations"]
    after = ps.pod(
        plan,
        ps.lost(A, IMG[A]),
        ps.stopped_waiting(B, IMG[B]),
        ps.stopped_waiting(C, IMG[C]),
        notes=notes,
        **DEADLINE,
    )
    later = scheduling.decide(snapshot(plan, after, now=20, status=first.status.to_patch()))
    assert later.events == () and later.pod_patch is None
    assert (later.status.phase, later.status.message) == ("Failed", f'step "a" cannot start: {message}')
    assert [(s.state, s.reason) for s in later.status.steps] == [
        ("failed", "CreateContainerConfigError"),
        ("skipped", "Stopped"),
        ("skipped", "Stopped"),
    ]


@pytest.mark.parametrize(
    ("plan_name", "message", "now", "fails", "requeue"),
    [
        # With image_pull_secrets, a 401/403/denied is waited for until the kubelet's next attempt, which
        # has the secret it may not have had in time for the first (`observing.refused_for_credentials`).
        ("private", ps.UNAUTHORIZED, 2, False, observing.CREDENTIALS_RETRY_SECONDS - 2),
        ("private", ps.DENIED, 29, False, observing.CREDENTIALS_RETRY_SECONDS - 29),
        ("private", ps.UNAUTHORIZED, observing.CREDENTIALS_RETRY_SECONDS, True, None),
        # Not found needs no credentials: final at once, secrets or not.
        ("private", ps.NOT_FOUND, 2, True, None),
        # Without image_pull_secrets, no attempt brings credentials: final at once.
        ("one", ps.UNAUTHORIZED, 2, True, None),
        ("one", ps.DENIED, 2, True, None),
    ],
)
def test_a_pull_refused_for_credentials_waits_for_the_kubelets_retry_only_with_pull_secrets(
    plan_name: str, message: str, now: float, fails: bool, requeue: float | None
) -> None:
    plan = PLANS[plan_name]
    step_a = plan.steps[0].name
    refused = ps.pod(plan, waiting(step_a, plan.steps[0].image, "ErrImagePull", message))
    decision = scheduling.decide(snapshot(plan, refused, now=now))
    killed = (decision.pod_patch or {}).get("metadata", {}).get("annotations", {})
    assert bool(killed) is fails
    if requeue is not None:
        assert decision.requeue_after == pytest.approx(requeue)


def test_which_pull_refusals_are_for_want_of_credentials() -> None:
    plan = PLANS["private"]
    a = plan.steps[0]

    def view(reason: str, message: str) -> observing.StepView:
        return observing.view_steps(plan, ps.pod(plan, waiting(a.name, a.image, reason, message)))[a.name]

    assert observing.refused_for_credentials(view("ErrImagePull", ps.UNAUTHORIZED))
    assert observing.refused_for_credentials(view("ImagePullBackOff", "403 Forbidden"))
    assert observing.refused_for_credentials(view("ErrImagePull", ps.DENIED))
    assert not observing.refused_for_credentials(view("ErrImagePull", ps.NOT_FOUND))
    assert not observing.refused_for_credentials(view("ErrImagePull", ps.REFUSED))
    assert not observing.refused_for_credentials(view("ErrImageNeverPull", "401 Unauthorized"))
