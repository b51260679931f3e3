"""``podline render`` and the operator agree: the same Pipeline object gives the same objects, or the same error.

Both call ``runs.plan_of`` on the Pipeline object; this test holds them to it over the bad-input corpus
(``tests/badinput``) and the examples (``docs/examples``): render's output is compared with what the
operator's decision creates for a new run (``scheduling.decide`` on the plan), and render's error lines
with the operator's Failed status message.
"""

from __future__ import annotations

import base64
import pathlib
from typing import Any

import pytest
import yaml
from podline import cli
from podline.core import auths, conventions, errors, runs, scheduling, statuses
from podline.shell import settings as settings_

ROOT = pathlib.Path(__file__).resolve().parents[2]
CORPUS = sorted((ROOT / "tests" / "badinput").glob("*.yaml"))
EXAMPLES = [p for p in sorted((ROOT / "docs" / "examples").glob("*.yaml"))]
NAMESPACE = "ci"
POLICY = settings_.Settings.from_env({}).policy


def _corpus_documents(path: pathlib.Path) -> list[dict[str, Any]] | None:
    case = yaml.safe_load(path.read_text(encoding="utf-8"))
    if "rejected_by" in case["expect"] or case.get("generate") or case.get("actions"):
        return None  # the apiserver refuses it before any operator sees it, or it is made at run time
    meta: dict[str, Any] = {"name": path.stem, "namespace": NAMESPACE}
    if case.get("annotations"):
        meta["annotations"] = dict(case["annotations"])
    objects = yaml.safe_load(yaml.safe_dump(case.get("objects") or []).replace("$OTHER", "elsewhere"))
    pipeline = {
        "apiVersion": conventions.API_VERSION,
        "kind": conventions.KIND,
        "metadata": meta,
        "spec": case["pipeline"],
    }
    return [*objects, pipeline]


def _example_documents(path: pathlib.Path) -> list[dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    for doc in docs:
        doc.setdefault("metadata", {}).setdefault("namespace", NAMESPACE)
    return docs


CASES = [(p.name, docs) for p in CORPUS if (docs := _corpus_documents(p)) is not None] + [
    (p.name, _example_documents(p)) for p in EXAMPLES
]


def _operator_view(docs: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """What the operator makes of the same documents: the objects it creates, or its status message lines."""
    secrets = {
        (d["metadata"].get("namespace", "default"), d["metadata"]["name"]): d
        for d in docs
        if d.get("kind") == "Secret"
    }
    created: list[dict[str, Any]] = []
    failures: list[str] = []
    for doc in docs:
        if doc.get("kind") != conventions.KIND:
            continue
        body = {**doc, "metadata": {"uid": cli.RENDER_UID, **doc["metadata"]}}
        plan = runs.plan_of(body, POLICY)
        credentials: Any = None
        if isinstance(plan, errors.PodlineError):
            message_lines = plan.lines()
        else:
            namespace = body["metadata"]["namespace"]
            if plan.pull_secret_sources:
                missing = [s for s in plan.pull_secret_sources if (namespace, s) not in secrets]
                credentials = (
                    errors.MissingSecret([errors.Problem("spec.image_pull_secrets", s) for s in missing])
                    if missing
                    else auths.convert([_source(secrets[(namespace, s)]) for s in plan.pull_secret_sources])
                )
            snap = scheduling.Snapshot(
                plan=plan,
                pod=None,
                now=cli._epoch(),
                generation=plan.generation,
                run=plan.run,
                credentials=credentials,
                image_configs={i: cli._FromImage(i) for i in plan.needs_image_config()},
            )
            decision = scheduling.decide(snap)
            if decision.status.phase is statuses.Phase.FAILED:
                message_lines = (decision.status.message or "").splitlines()
            else:
                created.extend(decision.create)
                continue
        failures.extend(f"{doc['metadata']['name']}: {line}" for line in message_lines)
    return created, failures


def _source(doc: dict[str, Any]) -> auths.SourceSecret:
    data = {k: base64.b64decode(v) for k, v in (doc.get("data") or {}).items()}
    data.update({k: str(v).encode() for k, v in (doc.get("stringData") or {}).items()})
    return auths.SourceSecret(name=doc["metadata"]["name"], type=doc.get("type", "Opaque"), data=data)


def test_the_comparison_covers_the_corpus_and_the_examples() -> None:
    assert len(CASES) >= 60 and any(name.endswith(".pipeline.yaml") for name, _ in CASES)


@pytest.mark.parametrize(("name", "docs"), CASES, ids=[name for name, _ in CASES])
def test_render_and_the_operator_agree(name: str, docs: list[dict[str, Any]], tmp_path: pathlib.Path) -> None:
    path = tmp_path / "in.yaml"
    path.write_text(yaml.safe_dump_all(docs), encoding="utf-8")
    created, failures = _operator_view(docs)
    try:
        rendered = [d for d in yaml.safe_load_all(cli.render([str(path)], policy_env={})) if d]
    except cli.CliError as exc:
        assert failures, f"{name}: render refused it, the operator would run it: {exc.lines}"
        if any("image_pull_secrets" in line for line in exc.lines):
            return  # both refuse for a missing Secret; render looks only in the files it was given
        assert exc.lines == failures
        return
    assert not failures, f"{name}: render printed objects, the operator would fail it: {failures}"
    assert rendered == created


WARNED = [p for p in CORPUS if "warning" in yaml.safe_load(p.read_text(encoding="utf-8"))["expect"]]


@pytest.mark.parametrize("path", WARNED, ids=[p.stem for p in WARNED])
def test_the_corpus_warnings_are_the_plans(path: pathlib.Path) -> None:
    """A case that runs with a warning (``expect.warning``): the plan's warnings, which the operator writes
    to status.warnings, hold it."""
    docs = _corpus_documents(path)
    assert docs is not None
    plan = runs.plan_of({**docs[-1], "metadata": {"uid": cli.RENDER_UID, **docs[-1]["metadata"]}}, POLICY)
    assert not isinstance(plan, errors.PodlineError), plan
    expected = yaml.safe_load(path.read_text(encoding="utf-8"))["expect"]["warning"]
    assert any(expected in warning for warning in plan.warnings), plan.warnings


def test_a_timeout_annotation_reaches_the_rendered_pod(tmp_path: pathlib.Path) -> None:
    doc = {
        "apiVersion": conventions.API_VERSION,
        "kind": conventions.KIND,
        "metadata": {"name": "t", "annotations": {conventions.ANNOTATION_TIMEOUT: "30m"}},
        "spec": {"steps": [{"name": "a", "image": "busybox:1.36", "commands": ["true"]}]},
    }
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    pod = next(d for d in yaml.safe_load_all(cli.render([str(path)])) if d and d["kind"] == "Pod")
    assert pod["spec"]["activeDeadlineSeconds"] == 1800


def test_a_garbage_timeout_annotation_is_refused_by_render_as_by_the_operator(tmp_path: pathlib.Path) -> None:
    doc = {
        "apiVersion": conventions.API_VERSION,
        "kind": conventions.KIND,
        "metadata": {"name": "t", "annotations": {conventions.ANNOTATION_TIMEOUT: "garbage"}},
        "spec": {"steps": [{"name": "a", "image": "busybox:1.36", "commands": ["true"]}]},
    }
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    with pytest.raises(cli.CliError) as raised:
        cli.render([str(path)])
    expected = (
        f't: metadata.annotations[{conventions.ANNOTATION_TIMEOUT}]: "garbage" is not a '
        "duration like 90s, 30m or 2h"
    )
    assert raised.value.lines == [expected]


def test_the_platform_reaches_the_rendered_pods_node_selector(tmp_path: pathlib.Path) -> None:
    doc = {
        "apiVersion": conventions.API_VERSION,
        "kind": conventions.KIND,
        "metadata": {"name": "t"},
        "spec": {
            "platform": {"os": "linux", "arch": "aarch64"},
            "node_selector": {"pool": "ci"},
            "steps": [{"name": "a", "image": "busybox:1.36", "commands": ["true"]}],
        },
    }
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    pod = next(d for d in yaml.safe_load_all(cli.render([str(path)])) if d and d["kind"] == "Pod")
    assert pod["spec"]["nodeSelector"] == {
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "arm64",
        "pool": "ci",
    }
