"""The run logic creating the pod: each container on its own image, told when to run; pull Secrets; runs that
get no pod."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from podline.core import (
    auths,
    compiling,
    errors,
    plans,
    registries,
    scheduling,
    stepping,
)

from tests.core import podstates as ps
from tests.core.decisions import (
    IMG,
    PLANS,
    POLICY,
    RUNNER,
    A,
    B,
    C,
    D,
    Manifest,
    check_invariants,
    compile_,
    event_reasons,
    snapshot,
    step,
)


def pod_of(decision: scheduling.Decision) -> Manifest:
    (pod,) = [m for m in decision.create if m["kind"] == "Pod"]
    return pod


def containers_of(pod: Manifest) -> dict[str, Manifest]:
    return {c["name"]: c for c in pod["spec"]["containers"]}


PLUGIN = {"name": "publish", "image": "plugins/docker", "settings": {"repo": "x"}}
CONFIGS: dict[str, Any] = {"plugins/docker": ps.Config(entrypoint=("/bin/drone-docker",), cmd=("--debug",))}


def test_the_pod_runs_every_container_on_its_own_image_from_its_creation() -> None:
    plan = PLANS["services"]
    decision = scheduling.decide(snapshot(plan, None, now=0))
    assert (decision.status.phase, decision.status.reason) == ("Pending", "Creating")
    assert decision.pod_patch is None
    got = containers_of(pod_of(decision))
    assert list(got) == [stepping.PREPARE_CONTAINER, "svc-db", A, B]
    assert {n: c["image"] for n, c in got.items()} == {
        stepping.PREPARE_CONTAINER: RUNNER,
        "svc-db": "postgres:16",
        A: IMG[A],
        B: IMG[B],
    }
    for c in plan.steps:
        assert got[c.name]["command"] == [stepping.BINARY]
        assert got[c.name]["args"] == stepping.args_for(plan, c, c.command or ())
    assert "command" not in got["svc-db"] and "args" not in got["svc-db"]
    assert all(s.state == "waiting" for s in decision.status.steps)


@pytest.mark.parametrize(
    ("desc", "plan", "container", "want"),
    [
        (
            "first-step-waits-for-nothing",
            PLANS["seq"],
            A,
            stepping.StepArgs(A, command=("/bin/sh", "-c", compiling.script(["echo a"]))),
        ),
        (
            "a-step-waits-for-the-one-before",
            PLANS["seq"],
            B,
            stepping.StepArgs(B, after=(A,), command=("/bin/sh", "-c", compiling.script(["echo b"]))),
        ),
        ("a-join-waits-for-both", PLANS["parallel"], C, stepping.StepArgs(C, after=(A, B))),
        (
            "a-detached-dependency-is-waited-for-until-it-starts",
            PLANS["detach"],
            B,
            stepping.StepArgs(B, after=(A,), detached=(A,)),
        ),
        ("a-detached-step", PLANS["detach"], A, stepping.StepArgs(A, detach=True)),
        ("failure-ignore", PLANS["ignore"], A, stepping.StepArgs(A, ignore_failure=True)),
        (
            "on-failure-only",
            PLANS["on-failure"],
            C,
            stepping.StepArgs(C, after=(B,), on_success=False, on_failure=True),
        ),
        ("on-success-and-failure", PLANS["on-failure"], D, stepping.StepArgs(D, after=(C,), on_failure=True)),
        ("excluded-runs-nothing", PLANS["excluded"], B, stepping.StepArgs(B, after=(A,), excluded=True)),
        (
            "the-step-timeout",
            compile_(step("a"), policy=dataclasses.replace(POLICY, step_timeout_seconds=60)),
            A,
            stepping.StepArgs(A, timeout_seconds=60),
        ),
        (
            "a-plugin-runs-its-image's-entrypoint-and-cmd",
            compile_(PLUGIN),
            "step-publish",
            stepping.StepArgs("step-publish", command=("/bin/drone-docker", "--debug")),
        ),
        (
            "command-alone-replaces-the-image's-cmd",
            compile_({**PLUGIN, "command": ["--dry-run"]}),
            "step-publish",
            stepping.StepArgs("step-publish", command=("/bin/drone-docker", "--dry-run")),
        ),
        (
            "entrypoint-replaces-the-image's",
            compile_({**PLUGIN, "entrypoint": ["/bin/x"], "command": ["y"]}),
            "step-publish",
            stepping.StepArgs("step-publish", command=("/bin/x", "y")),
        ),
    ],
)
def test_each_step_is_told_when_to_run(
    desc: str, plan: plans.RunPlan, container: str, want: stepping.StepArgs
) -> None:
    pod = pod_of(scheduling.decide(snapshot(plan, None, now=0, image_configs=CONFIGS)))
    got = stepping.parse_args(containers_of(pod)[container]["args"])
    limit = stepping.message_limit(len(pod["spec"]["containers"]))
    compare = [
        "name",
        "after",
        "detached",
        "on_success",
        "on_failure",
        "ignore_failure",
        "detach",
        "excluded",
        "timeout_seconds",
    ] + (["command"] if want.command else [])
    assert {k: getattr(got, k) for k in compare} == {k: getattr(want, k) for k in compare}
    assert got.message_limit == limit


def test_an_excluded_step_runs_the_runner_image_and_needs_no_image_config() -> None:
    plan = compile_(step("a"), {**PLUGIN, "when": {"branch": "release/*"}}, build={"branch": "main"})
    assert plan.needs_image_config() == ()
    got = containers_of(pod_of(scheduling.decide(snapshot(plan, None, now=0))))["step-publish"]
    assert got["image"] == RUNNER
    assert got["args"][-1] == "--"


def test_a_step_without_a_command_of_its_own_needs_its_image_config() -> None:
    plan = compile_(step("a"), PLUGIN)
    assert plan.needs_image_config() == ("plugins/docker",)
    with pytest.raises(ValueError, match="image config of plugins/docker"):
        scheduling.decide(snapshot(plan, None, now=0))


@pytest.mark.parametrize(
    ("desc", "config", "want"),
    [
        (
            "the-registry-would-not-tell",
            errors.ImageConfigUnavailable.at("", "image plugins/docker: 401 Unauthorized"),
            (
                'step "publish": its command comes from its image, and image plugins/docker: 401 Unauthorized; '
                "set commands: or entrypoint: on the step"
            ),
        ),
        (
            "the-registrys-certificate-is-not-trusted",
            registries.untrusted(
                "plugins/docker", "registry.corp:5000", 20, "unable to get local issuer certificate"
            ),
            (
                'step "publish": its command comes from its image, and cannot read the config of image '
                '"plugins/docker": untrusted TLS certificate: registry.corp:5000: its certificate is not signed by '
                "a CA the operator trusts (unable to get local issuer certificate); if the registry uses a private "
                "CA, give the operator that CA's certificate in PODLINE_REGISTRY_CA_FILE (a PEM file; Helm: "
                "operator.registryCA); set commands: or entrypoint: on the step"
            ),
        ),
        (
            "the-image-names-no-command",
            ps.Config(),
            (
                'step "publish": its command comes from its image, and image plugins/docker names no ENTRYPOINT or CMD; '
                "set commands: or entrypoint: on the step"
            ),
        ),
    ],
)
def test_an_image_config_that_gives_no_command_fails_the_run_before_any_pod(
    desc: str, config: Any, want: str
) -> None:
    plan = compile_(step("a"), PLUGIN, image_pull_secrets=["dockerconfig"])
    snap = snapshot(
        plan, None, now=0, image_configs={"plugins/docker": config}, credentials=auths_convert(CONFIG)
    )
    decision = scheduling.decide(snap)
    assert decision.create == ()
    status = decision.status
    assert (status.phase, status.reason, status.message) == ("Failed", "ImageConfigUnavailable", want)
    assert event_reasons(decision) == ["Failed"]
    again = scheduling.decide(dataclasses.replace(snap, status=status.to_patch(), now=ps.at(5)))
    assert again.status == status and again.events == () and again.create == ()


CONFIG = b'{"auths": {"registry.example.com": {"username": "u", "password": "p"}}}'


def auths_convert(config: bytes) -> auths.Credentials:
    return auths.convert([auths.SourceSecret("dockerconfig", "Opaque", {"config.json": config})])


def test_creating_a_run_with_pull_secrets_creates_the_secret_first() -> None:
    plan = PLANS["private"]
    decision = scheduling.decide(snapshot(plan, None, now=0, credentials=auths_convert(CONFIG)))
    assert [m["kind"] for m in decision.create] == ["Secret", "Pod"]
    secret, pod = decision.create
    assert pod["spec"]["imagePullSecrets"] == [{"name": secret["metadata"]["name"]}]
    assert decision.status.phase == "Pending"


def test_credential_warnings_reach_the_status() -> None:
    plan = PLANS["private"]
    credentials = auths_convert(
        b'{"auths": {"registry.example.com": {"username": "u", "password": "p"}, "ghcr.io": {}}}'
    )
    assert credentials.warnings
    decision = scheduling.decide(snapshot(plan, None, now=0, credentials=credentials))
    assert list(credentials.warnings) == [w for w in decision.status.warnings if w in credentials.warnings]


def test_a_plan_with_pull_secrets_needs_credentials() -> None:
    with pytest.raises(ValueError, match="credentials are needed"):
        scheduling.decide(snapshot(PLANS["private"], None, now=0, credentials=None))


def test_the_created_pod_once_observed_is_not_created_or_patched_again() -> None:
    plan = PLANS["seq"]
    created = scheduling.decide(snapshot(plan, None, now=0))
    pod = pod_of(created)
    observed = dict(
        pod,
        metadata={**pod["metadata"], "resourceVersion": "1", "creationTimestamp": ps.ts(0)},
        status={"phase": "Pending"},
    )
    snap = snapshot(plan, observed, now=1, status=created.status.to_patch())
    again = scheduling.decide(snap)
    assert again.create == () and again.pod_patch is None
    assert (again.status.phase, again.status.pod_name) == ("Running", plan.pod_name)
    check_invariants(snap, again)


NO_POD = [
    ("queued", PLANS["seq"], {"may_start": False}, "Pending", "Queued", "waiting for a free run slot"),
    (
        "cancelled-before-start",
        PLANS["seq"],
        {"cancel": True},
        "Cancelled",
        "Cancelled",
        "cancelled before it started",
    ),
    (
        "not-triggered",
        compile_(step("a"), trigger={"branch": "release/*"}, build={"branch": "main"}),
        {},
        "Succeeded",
        "NotTriggered",
        "trigger does not match the build",
    ),
    (
        "pull-secret-missing",
        PLANS["private"],
        {
            "credentials": errors.MissingSecret(
                [
                    errors.Problem(
                        "spec.image_pull_secrets[0]", 'Secret "dockerconfig" not found in namespace "ci"'
                    )
                ]
            )
        },
        "Failed",
        "PullSecretError",
        'spec.image_pull_secrets[0]: Secret "dockerconfig" not found in namespace "ci"',
    ),
    (
        "pull-secret-malformed",
        PLANS["private"],
        {
            "credentials": errors.BadRegistryAuth(
                [
                    errors.Problem(
                        'image_pull_secrets[0] (secret "dockerconfig")', 'registry "x.io": auth is not base64'
                    )
                ]
            )
        },
        "Failed",
        "PullSecretError",
        'image_pull_secrets[0] (secret "dockerconfig"): registry "x.io": auth is not base64',
    ),
]


@pytest.mark.parametrize(
    ("plan", "kwargs", "phase", "reason", "message"),
    [pytest.param(p, k, ph, r, m, id=i) for i, p, k, ph, r, m in NO_POD],
)
def test_no_pod_is_created(
    plan: plans.RunPlan, kwargs: dict[str, Any], phase: str, reason: str, message: str
) -> None:
    snap = snapshot(plan, None, now=0, **kwargs)
    decision = scheduling.decide(snap)
    assert decision.create == ()
    assert (decision.status.phase, decision.status.reason) == (phase, reason)
    assert decision.status.message is not None and message in decision.status.message
    again = scheduling.decide(dataclasses.replace(snap, status=decision.status.to_patch()))
    assert again.status == decision.status and again.events == ()


def test_queued_runs_start_when_a_slot_frees() -> None:
    plan = PLANS["seq"]
    queued = scheduling.decide(snapshot(plan, None, now=0, may_start=False))
    assert event_reasons(queued) == []
    assert queued.status.pod_name == plan.pod_name and queued.status.reason == "Queued"
    created = scheduling.decide(snapshot(plan, None, now=50, may_start=True, status=queued.status.to_patch()))
    assert [m["kind"] for m in created.create] == ["Pod"]
    assert created.status.reason == "Creating"
    assert created.status.start_time == queued.status.start_time


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        pytest.param(
            errors.InvalidPipeline(
                [
                    errors.Problem("spec.steps[2].depends_on", 'unknown step "tset"'),
                    errors.Problem("spec.steps[0].image", 'invalid reference "Golang"'),
                ]
            ),
            "Invalid",
            id="invalid",
        ),
        pytest.param(
            errors.PolicyViolation.at("spec.steps[0].privileged", "privileged steps are not allowed"),
            "Invalid",
            id="policy",
        ),
        pytest.param(
            errors.MissingSecret.at("spec.image_pull_secrets[0]", 'Secret "x" not found'),
            "PullSecretError",
            id="missing-secret",
        ),
    ],
)
def test_a_plan_that_cannot_be_compiled_fails_the_run_naming_the_field(
    error: errors.PodlineError, reason: str
) -> None:
    snap = snapshot(error, None, now=0)
    decision = scheduling.decide(snap)
    assert decision.create == () and decision.pod_patch is None
    status = decision.status
    assert (status.phase, status.reason, status.message) == ("Failed", reason, "\n".join(error.lines()))
    assert event_reasons(decision) == ["Failed"]
    assert {c.type: c.status for c in status.conditions} == {
        "Ready": "False",
        "Succeeded": "False",
        "Reconciling": "False",
        "Stalled": "True",
    }
    again = scheduling.decide(dataclasses.replace(snap, status=status.to_patch(), now=ps.at(100)))
    assert again.status == status and again.events == ()
