"""The bad input corpus (``tests/badinput/*.yaml``) against the real apiserver and the real operator (api tier).

Each file is one case: a Pipeline spec (``pipeline``, plus optional ``annotations``), the objects it needs
first (``objects``, e.g. a malformed pull Secret; ``namespace: $OTHER`` puts one in a second namespace), an
optional ``generate`` for inputs too big to keep as text (``steps: 1000``, ``environment_bytes``,
``settings_depth``), optional ``actions`` after the apply (``wait: <phase>``, ``kubectl: [args]`` with
``$NAME``), and the outcome it must have (``expect``):

- ``rejected_by: apiserver`` and ``message``: ``kubectl apply`` fails and its error contains ``message``
  (the field); nothing is created;
- ``status: Failed``, ``reason`` and ``message``: the run ends Failed with that reason and a message
  containing ``message`` (the field), and no pod or pull Secret exists for it — never half a configuration;
- ``status: Succeeded`` (``verbatim: true``, ``warning``): the input is harmless and runs (with ``warning``
  in its status.warnings: what Drone ignores, see core/leniency.py); the pod has every container
  the compiled plan has, and with ``verbatim`` each step's command — what its entrypoint runs, after ``--``
  in its arguments — is exactly ``/bin/sh -c <compiled script>`` while no other part of the pod, the status,
  the Events or the operator's log holds a command.

Every case is bounded in time (a hang fails it, with the operator's log tail), and after every case the
operator process must still be the same one, without a traceback in its log. The last test applies a
healthy Pipeline: the operator still serves.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import pathlib
import sys
import time
from collections.abc import Iterator, Mapping
from typing import Any

import kubernetes
import pytest
import yaml
from podline.core import compiling, conventions, pods, policies, stepping

from tests.cluster import apitier, scripted_kubelet
from tests.e2e import operating

pytestmark = pytest.mark.api
CORPUS = operating.ROOT / "tests" / "badinput"
CASES = sorted(CORPUS.glob("*.yaml"))
TERMINAL = ("Succeeded", "Failed", "Error", "Cancelled")
WAIT = 45.0  # seconds for one outcome; generous for a loaded CI machine, bounded so a hang fails
BUSYBOX = "busybox:1.36"


@dataclasses.dataclass(frozen=True)
class Case:
    path: pathlib.Path
    about: str
    pipeline: Any
    expect: Mapping[str, Any]
    annotations: Mapping[str, str] = dataclasses.field(default_factory=dict)
    objects: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    generate: Mapping[str, int] = dataclasses.field(default_factory=dict)
    actions: list[Mapping[str, Any]] = dataclasses.field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.stem

    @classmethod
    def load(cls, path: pathlib.Path) -> Case:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        known = {f.name for f in dataclasses.fields(cls)} - {"path"}
        unknown = set(raw) - known
        assert not unknown, f"{path.name}: unknown keys {sorted(unknown)}"
        case = cls(path=path, **raw)
        expect = case.expect
        if "rejected_by" in expect:
            assert expect["rejected_by"] == "apiserver" and expect.get("message"), path.name
        else:
            assert expect.get("status") in ("Failed", "Succeeded"), f"{path.name}: expect.status"
            if expect["status"] == "Failed":
                assert expect.get("reason") and expect.get("message"), f"{path.name}: reason and message"
        return case


def test_the_corpus_is_big_and_covers_both_kinds_of_outcome() -> None:
    cases = [Case.load(path) for path in CASES]
    assert len(cases) >= 50
    rejected = [c for c in cases if "rejected_by" in c.expect]
    failed = [c for c in cases if c.expect.get("status") == "Failed"]
    assert len(rejected) >= 20 and len(failed) >= 30, (len(rejected), len(failed))
    names = [c.name.split("-", 1)[1] for c in cases]
    assert len(set(names)) == len(names), "one file per case"


# ---- applying a case -------------------------------------------------------------------------------------


@contextlib.contextmanager
def deep_json() -> Iterator[None]:
    """Python's default recursion limit cannot decode JSON as deep as the apiserver accepts (10000)."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 30_000))
    try:
        yield
    finally:
        sys.setrecursionlimit(limit)


def manifest(case: Case, namespace: str) -> str:
    """The Pipeline as JSON text (JSON, so a generated 9000-deep setting needs no recursion here)."""
    spec = json.loads(json.dumps(case.pipeline))
    deep = None
    for key, amount in case.generate.items():
        if key == "steps":
            spec["steps"] = [
                {"name": f"s{i}", "image": BUSYBOX, "commands": ["echo ok"]} for i in range(amount)
            ]
        elif key == "environment_bytes":
            spec["environment"] = {"BIG": "x" * amount}
        elif key == "settings_depth":
            spec["steps"][0]["settings"] = {"nested": "@DEEP@"}
            deep = "[" * amount + '"x"' + "]" * amount
        else:
            raise AssertionError(f"{case.name}: unknown generate key {key}")
    meta: dict[str, Any] = {"name": case.name, "namespace": namespace}
    if case.annotations:
        meta["annotations"] = dict(case.annotations)
    text = json.dumps({"apiVersion": conventions.API_VERSION, "kind": conventions.KIND, "metadata": meta,
                       "spec": spec}, ensure_ascii=False)  # fmt: skip
    return text.replace('"@DEEP@"', deep) if deep else text


@dataclasses.dataclass
class Env:
    cluster: apitier.ApiCluster
    namespace: str
    other: str
    operator: operating.OperatorProcess
    kubelet: scripted_kubelet.ScriptedKubelet
    api: kubernetes.client.ApiClient
    starts: int  # the operator's start count; it must not change
    crashed: list[str] = dataclasses.field(default_factory=list)  # cases after which it had to be restarted

    def substitute(self, value: Any, name: str) -> Any:
        text = json.dumps(value).replace("$OTHER", self.other).replace("$NAME", name)
        return json.loads(text)

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> Any:
        return self.cluster.kubectl(*args, input=input, check=check)

    def pipeline(self, name: str) -> dict[str, Any] | None:
        response: Any
        try:
            response = kubernetes.client.CustomObjectsApi(self.api).get_namespaced_custom_object(
                conventions.GROUP, conventions.VERSION, self.namespace, conventions.PLURAL, name,
                _preload_content=False,
            )  # fmt: skip
        except kubernetes.client.ApiException as error:
            if error.status == 404:
                return None
            raise
        with deep_json():
            return dict(json.loads(response.data))

    def items(self, kind: str, selector: str) -> list[dict[str, Any]]:
        core = kubernetes.client.CoreV1Api(self.api)
        lister: Any = core.list_namespaced_pod if kind == "pods" else core.list_namespaced_secret
        return list(
            json.loads(lister(self.namespace, label_selector=selector, _preload_content=False).data)["items"]
        )

    def fail(self, message: str) -> None:
        raise AssertionError(f"{message}\noperator log tail:\n{self.operator.log()[-3000:]}")


@pytest.fixture(scope="module")
def env(api_cluster: apitier.ApiCluster, api_operator: operating.OperatorProcess) -> Iterator[Env]:
    namespace, other = api_cluster.new_namespace("badinput"), api_cluster.new_namespace("badinput-other")
    api = api_cluster.api_client()
    kubelet = scripted_kubelet.ScriptedKubelet(api_cluster.api_client(), namespace=namespace)
    kubelet.start()
    if not api_operator.alive():
        api_operator.start()
    yield Env(api_cluster, namespace, other, api_operator, kubelet, api, api_operator.starts)
    kubelet.stop()
    api.close()  # type: ignore[no-untyped-call]
    for name in (namespace, other):
        api_cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def current_run(body: Mapping[str, Any]) -> str:
    meta = body["metadata"]
    rerun = (meta.get("annotations") or {}).get(conventions.ANNOTATION_RERUN)
    return conventions.run_id(int(meta.get("generation") or 1), rerun)


def wait_for_run(env: Env, name: str, phases: tuple[str, ...] = TERMINAL) -> dict[str, Any]:
    """The status of the Pipeline's current run, once it is in one of ``phases``."""
    deadline = time.monotonic() + WAIT
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = env.pipeline(name)
        status = dict((body or {}).get("status") or {})
        if body and status.get("run") == current_run(body) and status.get("phase") in phases:
            return status
        time.sleep(0.2)
    env.fail(f"{name}: no {'/'.join(phases)} status within {WAIT}s (a hang); last status: {status}")
    raise AssertionError  # not reached


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_bad_input(env: Env, path: pathlib.Path) -> None:
    case = Case.load(path)
    log_before = len(env.operator.log())
    objects = [env.substitute(o, case.name) for o in case.objects]
    for obj in objects:
        namespace = obj["metadata"].pop("namespace", env.namespace)
        env.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(obj))
        obj["metadata"]["namespace"] = namespace
    try:
        text = manifest(case, env.namespace)
        # As a user would; an object over 128 KiB no longer fits kubectl's last-applied annotation, though.
        big = ("--server-side", "--field-manager=badinput") if len(text) > 128 * 1024 else ()
        applied = env.kubectl("apply", *big, "-f", "-", input=text, check=False)
        if "rejected_by" in case.expect:
            check_rejected(env, case, applied)
        else:
            assert applied.returncode == 0, f"{case.name}: kubectl apply failed: {applied.stderr}"
            for action in case.actions:
                act(env, case, action)
            status = wait_for_run(env, case.name)
            check_outcome(env, case, status)
    finally:
        for obj in objects:
            env.kubectl("delete", "-n", obj["metadata"]["namespace"], obj["kind"], obj["metadata"]["name"],
                        "--ignore-not-found", "--wait=false", check=False)  # fmt: skip
        check_operator_health(env, case, log_before)


def act(env: Env, case: Case, action: Mapping[str, Any]) -> None:
    if "wait" in action:
        wait_for_run(env, case.name, (action["wait"],))
    elif "kubectl" in action:
        env.kubectl("-n", env.namespace, *env.substitute(action["kubectl"], case.name))
    else:
        raise AssertionError(f"{case.name}: unknown action {action}")


def check_rejected(env: Env, case: Case, applied: Any) -> None:
    assert applied.returncode != 0, f"{case.name}: the apiserver accepted it:\n{applied.stdout}"
    assert case.expect["message"] in applied.stderr, (
        f"{case.name}: the apiserver's error does not name {case.expect['message']!r}:\n{applied.stderr}"
    )
    assert env.pipeline(case.name) is None


def check_outcome(env: Env, case: Case, status: Mapping[str, Any]) -> None:
    expect = case.expect
    summary = f"{case.name} ({case.about}): {json.dumps(status)[:2000]}"
    assert status["phase"] == expect["status"], summary
    run_selector = f"{conventions.LABEL_PIPELINE}={case.name},{conventions.LABEL_RUN}={status['run']}"
    run_pods = env.items("pods", run_selector)
    if expect["status"] == "Failed":
        assert status["reason"] == expect["reason"], summary
        assert expect["message"] in status.get("message", ""), summary
        conditions = {c["type"]: c for c in status.get("conditions", [])}
        assert expect["message"] in conditions["Ready"]["message"], "the Ready condition carries the message"
        assert not run_pods, f"{case.name}: a pod exists for a run that failed before it started"
        assert not env.items("secrets", run_selector), f"{case.name}: a pull Secret exists for it"
        return
    if expect.get("warning"):
        assert any(expect["warning"] in w for w in status.get("warnings", [])), summary
    [pod] = run_pods
    body = env.pipeline(case.name)
    assert body is not None
    with deep_json():
        check_complete_pod(case, body, pod)
        if expect.get("verbatim"):
            check_verbatim(env, case, body, pod, status)


def check_complete_pod(case: Case, body: Mapping[str, Any], pod: Mapping[str, Any]) -> None:
    """The live pod has every container of the compiled plan, each with its whole configuration."""
    meta = body["metadata"]
    context = compiling.RunContext(namespace=meta["namespace"], pipeline=meta["name"], uid=meta["uid"],
                                   generation=int(meta["generation"]))  # fmt: skip
    plan = compiling.compile_spec(body["spec"], context, policies.Policy())
    wanted = pods.build_pod(plan)

    def shape(p: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        return [(c["name"], c.get("command"), c.get("args"), c.get("env"), c.get("volumeMounts"),
                 c.get("securityContext"), c.get("workingDir"), c.get("ports")) for c in p["spec"]["containers"]]  # fmt: skip

    assert shape(pod) == shape(wanted), f"{case.name}: the pod differs from the compiled plan"
    images = {c["name"]: c["image"] for c in pod["spec"]["containers"]}
    for c in plan.containers:  # each its own image from the start (a step excluded by `when`: the runner's)
        assert images[c.name] == (plan.runner_image if c.is_step and c.excluded else c.image), (
            c.name,
            images[c.name],
        )


def check_verbatim(
    env: Env, case: Case, body: Mapping[str, Any], pod: Mapping[str, Any], status: Mapping[str, Any]
) -> None:
    containers = {c["name"]: c for c in pod["spec"]["containers"]}
    needles: list[str] = []
    for step in body["spec"]["steps"]:
        container = containers[conventions.step_container(step["name"])]
        script = compiling.script(step["commands"])
        assert container["command"] == [stepping.BINARY], f"{case.name}: {container['command']!r}"
        args = container["args"]
        assert args[args.index("--") + 1 :] == ["/bin/sh", "-c", script], f"{case.name}: {args!r}"
        container["args"] = [*args[: args.index("--") + 1], "(checked)"]
        needles += [c for c in step["commands"] if len(c) > 8]
    assert needles, "a verbatim case needs commands to look for"
    events = [
        e
        for e in json.loads(env.kubectl("get", "events", "-n", env.namespace, "-o", "json").stdout)["items"]
        if e["involvedObject"]["name"] == case.name
    ]
    places = {
        "the pod (outside its step commands)": json.dumps(pod, ensure_ascii=False),
        "the Pipeline status": json.dumps(status, ensure_ascii=False),
        "the Events": json.dumps(events, ensure_ascii=False),
        "the operator log": env.operator.log(),
    }
    for needle in needles:
        forms = {needle, json.dumps(needle, ensure_ascii=False)[1:-1]}
        for where, text in places.items():
            assert not any(form in text for form in forms), f"{case.name}: {needle!r} found in {where}"


def check_operator_health(env: Env, case: Case, log_before: int) -> None:
    log = env.operator.log()[log_before:]
    if not env.operator.alive():
        env.crashed.append(case.name)
        env.operator.start()  # so that the next cases can run; this one fails
        env.starts = env.operator.starts
        raise AssertionError(f"{case.name}: the operator died:\n{log[-4000:]}")
    assert "Traceback" not in log, f"{case.name}: the operator logged a traceback:\n{log[-4000:]}"


def test_the_operator_still_serves_after_the_corpus(env: Env) -> None:
    name = "healthy-after-corpus"
    operating.apply(env.cluster, env.namespace, operating.pipeline(name, {
        "steps": [{"name": "a", "image": BUSYBOX, "commands": ["echo a"]},
                  {"name": "b", "image": BUSYBOX, "commands": ["echo b"]}],
    }))  # fmt: skip
    status = wait_for_run(env, name)
    assert status["phase"] == "Succeeded", status
    assert not env.crashed, f"the operator died after {env.crashed}"
    assert env.operator.alive() and env.operator.starts == env.starts, (
        "the same operator process served throughout"
    )
