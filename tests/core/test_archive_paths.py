"""The archive endpoint's paths (``core.archivepaths``): every part a Kubernetes name, so no request leaves
``<namespace>/<pipeline>/`` in the store; the service-proxy path a client asks; what a failure tells a person."""

from __future__ import annotations

import json

import pytest
from podline.core import archivepaths as ap

OP = ap.Operator("podline-system", "podline-archive")


@pytest.mark.parametrize(
    ("tail", "query"),
    [
        ("ci/app", ap.Query("ci", "app")),
        ("ci/app/", ap.Query("ci", "app")),
        ("ci/app.v2/g3", ap.Query("ci", "app.v2", "g3")),
        ("ci/app/g3-r0a1b2c/step-build", ap.Query("ci", "app", "g3-r0a1b2c", "step-build")),
        ("ci/%61pp/g1", ap.Query("ci", "app", "g1")),  # percent-decoded per part
        (
            "a" * 63 + "/" + ".".join(["b" * 63] * 3) + "/g1",
            ap.Query("a" * 63, ".".join(["b" * 63] * 3), "g1"),
        ),
    ],
)
def test_good_paths_parse(tail: str, query: ap.Query) -> None:
    assert ap.parse(tail) == query


@pytest.mark.parametrize(
    ("tail", "said"),
    [
        ("", "0 parts given"),
        ("ci", "1 part given"),
        ("ci/app/g1/step-a/more", "5 parts given"),
        ("../app", 'namespace ".." is not a Kubernetes name'),
        ("ci/..", 'pipeline ".." is not a Kubernetes name'),
        ("ci/.", 'pipeline "." is not a Kubernetes name'),
        ("ci/%2e%2e/g1", 'pipeline ".." is not'),
        ("ci/app/..%2F..%2Fetc", 'run "../../etc" is not a Kubernetes name'),
        ("ci/app/g1/..%2Frecord.json", 'step container "../record.json" is not'),
        ("ci/app/g1/record.json", 'step container "record.json" is not'),  # a label has no dot
        ("ci//g1", 'pipeline "" is not'),
        ("CI/app", 'namespace "CI" is not'),
        ("ci/app/g1/step_a", 'step container "step_a" is not'),
        ("a" * 64 + "/app", "DNS-1123 label"),
        ("ci/" + "a" * 254, "DNS-1123 subdomain"),
        ("ci/app/%00", "run '\\x00' is not"),
    ],
)
def test_bad_paths_name_the_bad_part(tail: str, said: str) -> None:
    refused = ap.parse(tail)
    assert isinstance(refused, ap.BadPath) and said in refused.problem, refused


def test_two_bad_parts_are_both_named() -> None:
    refused = ap.parse("Ns/App")
    assert isinstance(refused, ap.BadPath)
    assert 'namespace "Ns"' in refused.problem and 'pipeline "App"' in refused.problem


@pytest.mark.parametrize(
    "query", [ap.Query("ci", "app"), ap.Query("ci", "a.b", "g1"), ap.Query("ci", "app", "g1", "step-x")]
)
def test_path_of_is_what_parse_reads(query: ap.Query) -> None:
    path = ap.path_of(query)
    assert path.startswith(ap.PREFIX) and ap.parse(path.removeprefix(ap.PREFIX)) == query


def test_the_proxy_path_names_the_service_and_its_port() -> None:
    assert OP.proxy_path(ap.Query("ci", "app", "g1", "step-a")) == (
        "/api/v1/namespaces/podline-system/services/podline-archive:archive/proxy/v1/runs/ci/app/g1/step-a"
    )


@pytest.mark.parametrize(
    ("text", "operator"),
    [
        ("podline-system/podline-archive", OP),
        (" ops/pl-podline-archive:web ", ap.Operator("ops", "pl-podline-archive", "web")),
        (ap.DEFAULT_OPERATOR, OP),
    ],
)
def test_operator_names_parse(text: str, operator: ap.Operator) -> None:
    assert ap.parse_operator(text) == operator


@pytest.mark.parametrize(
    "text", ["podline-archive", "/svc", "ns/", "ns/svc:", "ns/Svc", "a/b/c", "ns/svc:x:y"]
)
def test_bad_operator_names_say_the_form(text: str) -> None:
    with pytest.raises(ValueError, match="NAMESPACE/SERVICE"):
        ap.parse_operator(text)


def _status(message: str, code: int) -> str:
    return json.dumps(
        {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "code": code}
    )


def test_forbidden_names_the_permission_and_the_charts_role() -> None:
    said = ap.explain(OP, 403, _status('services "podline-archive:archive" is forbidden: User "bob" cannot get '
                                       'resource "services/proxy"', 403))  # fmt: skip
    assert "`get` on `services/proxy` of Service podline-system/podline-archive" in said
    assert "--role=podline-archive-reader" in said and 'User "bob"' in said


def test_a_missing_service_or_operator_says_so() -> None:
    missing = ap.explain(OP, 404, _status('services "podline-archive" not found', 404))
    assert "was not found" in missing and "--operator" in missing and "--archive" in missing
    down = ap.explain(OP, 503, _status('no endpoints available for service "podline-archive"', 503))
    assert "does not answer" in down and "no endpoints available" in down


def test_the_operators_own_answer_is_passed_on() -> None:
    body = json.dumps({"error": 'run "g9" of ci/app is not in the archive'})
    assert ap.explain(OP, 404, body) == 'run "g9" of ci/app is not in the archive'
    assert ap.explain(OP, 500, "<html>oops</html>").endswith("500 <html>oops</html>")


def test_runs_are_newest_first() -> None:
    runs = [
        {"run": "g1", "finishedAt": 10},
        {"run": "g3", "finishedAt": None},
        {"run": "g2", "finishedAt": 30},
    ]
    assert [r["run"] for r in ap.newest_first(runs)] == ["g2", "g1", "g3"]
