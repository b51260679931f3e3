"""Properties of rendering, over generated pipelines (hypothesis).

* compile + build_pod is deterministic (same input, same bytes) and idempotent (rendering what was
  rendered changes nothing; the created pod, once observed, is not created or patched);
* every step container runs its own image (the runner image when ``when`` excludes it), wrapped by the
  entrypoint, whose arguments read back as the step's plan;
* no secret value ever appears in a rendered pod, a status, an Event or an error: ``from_secret``
  values stay references, and pull-secret credentials appear only inside the generated Secret's data.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import string
from datetime import UTC, datetime
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from podline.core import auths, compiling, conventions, errors, policies, scheduling, stepping

from tests.core.podstates import Config

POLICY = policies.Policy()
CONTEXT = compiling.RunContext(namespace="ci", pipeline="prop", uid="uid-prop", generation=7)
NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
IMAGES = [
    "golang:1.22",
    "alpine",
    "alpine:3.20",
    "library/busybox:1.36",
    "index.docker.io/library/golang",
    "docker.company.com/golang",
    "localhost:5000/team/app:v1",
    "plugins/kaniko",
    "registry:5000/a/b@sha256:" + "a" * 64,
    "ghcr.io/octo/tool:2.1.0",
]
NAME_ALPHABET = string.ascii_letters + string.digits + " -_."


def literal_text(alphabet: Any = None, **sizes: int) -> st.SearchStrategy[str]:
    """Any text as a Drone file holds it literally: every ``$`` written ``$$`` (a lone ``${`` is refused, as
    drone/envsubst refuses it; tests/core/test_substitution.py pins that)."""
    text = st.text(**sizes) if alphabet is None else st.text(alphabet, **sizes)
    return text.map(lambda s: s.replace("$", "$$"))


SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

names = st.text(NAME_ALPHABET, min_size=1, max_size=24).filter(lambda n: n.strip(" -_.") != "")
env_names = st.from_regex(r"[A-Z_][A-Z0-9_]{0,15}", fullmatch=True)
secret_refs = st.builds(
    lambda s, k: f"{s}/{k}" if s else k,
    st.sampled_from(["", "creds", "tokens", "docker"]),
    st.from_regex(r"[a-z][a-z0-9_.-]{0,10}", fullmatch=True),
)
plain_values = st.one_of(literal_text(max_size=40), st.integers(-(10**6), 10**6), st.booleans(), st.none())
env_values = st.one_of(plain_values, secret_refs.map(lambda r: {"from_secret": r}))
json_values = st.recursive(
    st.one_of(literal_text(max_size=20), st.integers(), st.booleans(), st.none()),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.text(string.ascii_lowercase, min_size=1, max_size=6), inner, max_size=3),
    ),
    max_leaves=8,
)
setting_values = st.one_of(json_values, secret_refs.map(lambda r: {"from_secret": r}))


@st.composite
def pipelines(draw: st.DrawFn) -> dict[str, Any]:
    step_names = draw(st.lists(names, min_size=1, max_size=6, unique_by=conventions.step_container))
    dag = draw(st.booleans())
    steps = []
    for index, name in enumerate(step_names):
        step: dict[str, Any] = {"name": name, "image": draw(st.sampled_from(IMAGES))}
        body = draw(st.sampled_from(["commands", "entrypoint", "plugin"]))
        if body == "commands":
            step["commands"] = draw(st.lists(literal_text(max_size=60), min_size=1, max_size=4))
        elif body == "entrypoint":
            step["entrypoint"] = draw(st.lists(literal_text(max_size=20), min_size=1, max_size=3))
            step["command"] = draw(st.lists(literal_text(max_size=20), max_size=3))
        else:
            step["settings"] = draw(
                st.dictionaries(
                    st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True), setting_values, max_size=4
                )
            )
        step["environment"] = draw(st.dictionaries(env_names, env_values, max_size=4))
        if dag and index:
            step["depends_on"] = draw(st.lists(st.sampled_from(step_names[:index]), max_size=2, unique=True))
        if draw(st.booleans()):
            step["when"] = {
                "status": draw(st.sampled_from([["success"], ["failure"], ["success", "failure"]]))
            }
        if draw(st.integers(0, 4)) == 0:
            step["failure"] = "ignore"
        if draw(st.integers(0, 5)) == 0:
            step["detach"] = True
        if draw(st.booleans()):
            step["pull"] = draw(st.sampled_from(["always", "if-not-exists", "never", "default", ""]))
        steps.append(step)
    spec: dict[str, Any] = {
        "kind": "pipeline",
        "type": draw(st.sampled_from(["docker", "kubernetes"])),
        "steps": steps,
        "environment": draw(st.dictionaries(env_names, env_values, max_size=3)),
    }
    services = draw(
        st.lists(
            names.filter(lambda n: n not in step_names), max_size=2, unique_by=conventions.service_container
        )
    )
    if services:
        spec["services"] = [{"name": n, "image": draw(st.sampled_from(IMAGES))} for n in services]
    if draw(st.booleans()):
        spec["image_pull_secrets"] = ["dockerconfig"]
    return spec


def credentials(password: str = "hunter2-hunter2") -> auths.Credentials:
    config = json.dumps(
        {"auths": {"registry.example.com": {"username": "ci", "password": password}}}
    ).encode()
    return auths.convert([auths.SourceSecret("dockerconfig", "Opaque", {"config.json": config})])


def image_config(image: str) -> Config:
    """What the registry would say a plugin image runs."""
    return Config(
        entrypoint=(f"/bin/{image.rsplit('/', 1)[-1].split(':')[0].split('@')[0]}",), cmd=("--plugin",)
    )


def render(spec: dict[str, Any], creds: Any = None) -> scheduling.Decision:
    plan = compiling.compile_spec(spec, CONTEXT, POLICY)
    if plan.pull_secret_name and creds is None:
        creds = credentials()
    configs = {image: image_config(image) for image in plan.needs_image_config()}
    return scheduling.decide(
        scheduling.Snapshot(
            plan=plan,
            pod=None,
            now=NOW,
            generation=CONTEXT.generation,
            run=plan.run,
            credentials=creds,
            image_configs=configs,
        )
    )


def dump(objects: Any) -> str:
    """As ``podline render`` prints them. (With ``allow_unicode=True`` PyYAML would write U+0085 raw and read
    it back as a line break.)"""
    return yaml.safe_dump_all(objects, sort_keys=False)


# --- Determinism and idempotence ------------------------------------------------------------------------------


@SETTINGS
@given(pipelines())
def test_render_is_deterministic(spec: dict[str, Any]) -> None:
    first, second = render(spec), render(json.loads(json.dumps(spec)))
    assert dump(first.create) == dump(second.create)
    assert first.status == second.status
    plan = compiling.compile_spec(spec, CONTEXT, POLICY)
    assert plan == compiling.compile_spec(spec, CONTEXT, POLICY)


@SETTINGS
@given(pipelines())
def test_rendered_objects_survive_a_yaml_and_json_round_trip(spec: dict[str, Any]) -> None:
    objects = list(render(spec).create)
    assert list(yaml.safe_load_all(dump(objects))) == objects
    assert json.loads(json.dumps(objects)) == objects


@SETTINGS
@given(pipelines())
def test_render_is_idempotent(spec: dict[str, Any]) -> None:
    """Observing the created pod creates nothing more and patches nothing."""
    decision = render(spec)
    pod = next(o for o in decision.create if o["kind"] == "Pod")
    plan = compiling.compile_spec(spec, CONTEXT, POLICY)
    observed = dict(
        pod,
        metadata={**pod["metadata"], "resourceVersion": "1", "creationTimestamp": "2024-05-01T12:00:00Z"},
        status={"phase": "Pending"},
    )
    snap = scheduling.Snapshot(
        plan=plan,
        pod=observed,
        now=NOW,
        generation=CONTEXT.generation,
        run=plan.run,
        status=decision.status.to_patch(),
    )
    again = scheduling.decide(snap)
    assert again.create == () and again.pod_patch is None
    assert scheduling.decide(dataclasses.replace(snap, status=again.status.to_patch())).status == again.status


@SETTINGS
@given(pipelines())
def test_every_step_runs_its_own_image_wrapped_by_the_entrypoint(spec: dict[str, Any]) -> None:
    plan = compiling.compile_spec(spec, CONTEXT, POLICY)
    pod = next(o for o in render(spec).create if o["kind"] == "Pod")
    prepare, *rendered = pod["spec"]["containers"]
    assert (prepare["name"], prepare["image"]) == (stepping.PREPARE_CONTAINER, POLICY.runner_image)
    assert [c["name"] for c in rendered] == [c.name for c in plan.containers]
    for c, container in zip(plan.containers, rendered, strict=True):
        assert container["imagePullPolicy"] in ("Always", "IfNotPresent", "Never")
        if not c.is_step:
            assert container["image"] == c.image and container.get("command") != [stepping.BINARY]
            continue
        assert container["image"] == (POLICY.runner_image if c.excluded else c.image)
        assert container["command"] == [stepping.BINARY]
        args = stepping.parse_args(container["args"])
        assert (
            args.name,
            args.after,
            args.on_success,
            args.on_failure,
            args.ignore_failure,
            args.detach,
            args.excluded,
        ) == (
            c.name,
            c.depends_on,
            c.run_on_success,
            c.run_on_failure,
            c.ignore_failure,
            c.detach,
            c.excluded,
        )
        assert args.detached == tuple(d for d in c.depends_on if plan.container(d).detach)
        if c.excluded:
            assert args.command == ()
        else:
            config = image_config(c.image) if c.command is None else None
            assert args.command == stepping.command_of(c, config)


# --- Secret values never leak ----------------------------------------------------------------------------------

canaries = st.text(string.ascii_letters + string.digits + "!#%+=-_", min_size=12, max_size=30).map(
    lambda s: "CANARY" + s
)


def forms(canary: str, user: str = "ci") -> list[str]:
    """The ways a credential could leak: as is, as JSON, base64 of it or of user:password."""
    raw = canary.encode()
    return [
        canary,
        json.dumps(canary)[1:-1],
        base64.b64encode(raw).decode(),
        base64.b64encode(f"{user}:{canary}".encode()).decode(),
    ]


def visible(decision: scheduling.Decision) -> str:
    """Everything the operator writes except the generated Secret's data."""
    shown = [o if o["kind"] != "Secret" else {**o, "data": "<data>"} for o in decision.create]
    return "\n".join(
        [
            dump(shown),
            json.dumps(decision.status.to_patch()),
            json.dumps([dataclasses.asdict(e) for e in decision.events]),
            json.dumps(decision.pod_patch),
        ]
    )


@SETTINGS
@given(pipelines(), canaries)
def test_pull_secret_credentials_appear_only_in_the_generated_secret(
    spec: dict[str, Any], canary: str
) -> None:
    spec = {**spec, "image_pull_secrets": ["dockerconfig"]}
    decision = render(spec, credentials(canary))
    text = visible(decision)
    for form in forms(canary):
        assert form not in text
    (secret,) = [o for o in decision.create if o["kind"] == "Secret"]
    config = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))
    assert config["auths"]["registry.example.com"]["password"] == canary


MALFORMED = [
    lambda c: {"auths": {"registry.example.com": {"auth": c}}},  # not base64
    lambda c: {
        "auths": {"registry.example.com": {"auth": base64.b64encode(c.encode()).decode()}}
    },  # no colon
    lambda c: {"auths": {"registry.example.com": {"username": "ci"}, "x.io": {"password": c}}},
    lambda c: {"auths": {"registry.example.com": {"password": c, "identitytoken": c}}},
    lambda c: {"auths": {"registry.example.com": c}},
    lambda c: {"auths": [c]},
    lambda c: {"registry.example.com": {"auth": c}},  # legacy .dockercfg
]


@settings(max_examples=100, deadline=None)
@given(canaries, st.integers(0, len(MALFORMED) - 1), st.booleans())
def test_a_malformed_pull_secret_fails_the_run_without_showing_its_content(
    canary: str, shape: int, raw: bool
) -> None:
    document = MALFORMED[shape](canary)
    data = json.dumps(document).encode() if not raw else (json.dumps(document)[:-1] + canary).encode()
    try:
        creds: Any = auths.convert([auths.SourceSecret("dockerconfig", "Opaque", {"config.json": data})])
    except errors.PodlineError as exc:
        creds = exc
        for form in forms(canary):
            assert form not in str(exc)
    decision = render(
        {
            "steps": [{"name": "a", "image": "registry.example.com/app:1"}],
            "image_pull_secrets": ["dockerconfig"],
        },
        creds,
    )
    text = visible(decision)
    for form in forms(canary):
        assert form not in text


@SETTINGS
@given(pipelines())
def test_from_secret_values_stay_references(spec: dict[str, Any]) -> None:
    pod = next(o for o in render(spec).create if o["kind"] == "Pod")
    plan = compiling.compile_spec(spec, CONTEXT, POLICY)
    for c, rendered in zip(plan.containers, pod["spec"]["containers"][1:], strict=True):
        secret_vars = {e.name: e.secret for e in c.env if e.secret is not None}
        for var in rendered["env"]:
            if var["name"] in secret_vars:
                ref = secret_vars[var["name"]]
                assert var == {
                    "name": var["name"],
                    "valueFrom": {"secretKeyRef": {"name": ref.secret, "key": ref.key}},
                }
            else:
                assert "valueFrom" not in var


# --- Any input: an InvalidPipeline listing problems, or a plan; never a crash ----------------------------------------

STEP_FIELDS = [
    "name",
    "image",
    "pull",
    "commands",
    "entrypoint",
    "command",
    "environment",
    "settings",
    "depends_on",
    "when",
    "failure",
    "detach",
    "privileged",
    "user",
    "group",
    "working_dir",
    "volumes",
    "resources",
    "shell",
]
SPEC_FIELDS = [
    "image_pull_secrets",
    "environment",
    "workspace",
    "clone",
    "volumes",
    "node_selector",
    "tolerations",
    "service_account_name",
    "trigger",
    "metadata",
    "services",
    "platform",
]
anything = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=False),
        st.text(max_size=12),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.sampled_from(
                [
                    "name",
                    "path",
                    "temp",
                    "host",
                    "claim",
                    "config_map",
                    "size_limit",
                    "medium",
                    "limits",
                    "requests",
                    "cpu",
                    "memory",
                    "from_secret",
                    "status",
                    "include",
                    "base",
                    "key",
                    "operator",
                    "value",
                    "effect",
                    "labels",
                    "annotations",
                    "toleration_seconds",
                    "x",
                ]
            ),
            inner,
            max_size=3,
        ),
    ),
    max_leaves=10,
)


words = st.one_of(
    st.text(max_size=10),
    st.sampled_from(
        [
            "",
            "/",
            "/abs",
            "rel",
            "512MiB",
            "1e3",
            "-1",
            "0",
            "Exists",
            "Equal",
            "NoSchedule",
            "NoExecute",
            "a/b",
            "A_B",
            "x" * 70,
        ]
    ),
)
numbers = st.one_of(st.integers(-(2**40), 2**40), st.sampled_from([0, -1, 2**31, 2**63]))
scalars = st.one_of(words, numbers)
# Values of the right shape with wrong content, field by field: what a user gets wrong.
SHAPED = {
    "volumes": st.lists(
        st.fixed_dictionaries(
            {"name": words},
            optional={
                "temp": st.fixed_dictionaries({}, optional={"size_limit": scalars, "medium": words}),
                "host": st.fixed_dictionaries({"path": words}),
                "claim": st.fixed_dictionaries({"name": words}, optional={"read_only": st.booleans()}),
                "config_map": st.fixed_dictionaries({"name": words}, optional={"default_mode": numbers}),
            },
        ),
        max_size=2,
    ),
    "tolerations": st.lists(
        st.fixed_dictionaries(
            {},
            optional={
                "key": words,
                "operator": st.sampled_from(["Exists", "Equal"]),
                "value": words,
                "effect": st.sampled_from(["NoSchedule", "PreferNoSchedule", "NoExecute", ""]),
                "toleration_seconds": numbers,
            },
        ),
        max_size=2,
    ),
    "metadata": st.fixed_dictionaries(
        {},
        optional={
            "labels": st.dictionaries(words, words, max_size=2),
            "annotations": st.dictionaries(words, words, max_size=2),
        },
    ),
    "node_selector": st.dictionaries(
        st.one_of(words, st.sampled_from(["kubernetes.io/os", "kubernetes.io/arch"])),
        st.one_of(words, st.sampled_from(["linux", "windows", "amd64", "x86_64", "arm64", "arm"])),
        max_size=2,
    ),
    "platform": st.fixed_dictionaries(
        {},
        optional={
            "os": st.one_of(words, st.sampled_from(["linux", "Linux", "windows"])),
            "arch": st.one_of(
                words, st.sampled_from(["amd64", "x86_64", "aarch64", "arm64", "arm", "sparc"])
            ),
            "variant": st.one_of(words, st.sampled_from(["v6", "v7", "8"])),
            "version": words,
        },
    ),
    "workspace": st.fixed_dictionaries({}, optional={"base": words, "path": words}),
    "resources": st.fixed_dictionaries(
        {},
        optional={
            kind: st.fixed_dictionaries({}, optional={"cpu": scalars, "memory": scalars})
            for kind in ("limits", "requests")
        },
    ),
    "user": scalars,
    "group": scalars,
    "working_dir": words,
    "image_pull_secrets": st.lists(words, max_size=2),
    "service_account_name": words,
    "environment": st.dictionaries(
        words, st.one_of(scalars, st.fixed_dictionaries({"from_secret": words})), max_size=2
    ),
    "settings": st.dictionaries(
        words, st.one_of(scalars, st.fixed_dictionaries({"from_secret": words})), max_size=2
    ),
}


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pipelines(), st.data())
def test_compile_raises_only_invalid_pipeline(spec: dict[str, Any], data: st.DataObject) -> None:
    """Whatever a field holds, compiling reports problems (with paths) or succeeds: the shell relies on it."""
    spec = json.loads(json.dumps(spec))
    for _ in range(data.draw(st.integers(1, 3))):
        on_step = data.draw(st.booleans())
        target = data.draw(st.sampled_from(spec["steps"])) if on_step else spec
        field = data.draw(st.sampled_from(STEP_FIELDS if on_step else SPEC_FIELDS))
        shaped = SHAPED.get(field)
        if field == "volumes" and on_step:
            shaped = st.lists(st.fixed_dictionaries({"name": words, "path": words}), max_size=2)
        target[field] = data.draw(shaped if shaped is not None and data.draw(st.booleans()) else anything)
    policy = dataclasses.replace(POLICY, allow_host_volumes=data.draw(st.booleans()))
    try:
        plan = compiling.compile_spec(spec, CONTEXT, policy)
    except errors.InvalidPipeline as exc:
        assert exc.problems and all(p.path.startswith("spec") for p in exc.problems)
        return
    render(spec)  # and a valid plan renders
    assert plan.pod_name
