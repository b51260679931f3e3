"""The small pure helpers: resource quantities, Drone conditions, and podline's naming scheme."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from podline.core import conventions, models, quantities, whens

# --- quantities -----------------------------------------------------------------------------------------------

AMOUNTS = [
    ("500m", Decimal("0.5")),
    ("2", Decimal(2)),
    ("1.5", Decimal("1.5")),
    ("512Mi", Decimal(512 * 2**20)),
    ("1Gi", Decimal(2**30)),
    ("1G", Decimal(10**9)),
    ("1k", Decimal(1000)),
    ("1Ki", Decimal(1024)),
    ("1e3", Decimal(1000)),
    ("1E", Decimal(10**18)),
    ("+1", Decimal(1)),
]


@pytest.mark.parametrize(("quantity", "amount"), AMOUNTS, ids=[q for q, _ in AMOUNTS])
def test_quantity_amounts(quantity: str, amount: Decimal) -> None:
    assert quantities.amount(quantity) == amount


BAD = [
    ("memory", "lots", '"lots" is not a quantity (examples: 500m, 2, 512Mi, 1G)'),
    ("memory", "", '"" is not a quantity (examples: 500m, 2, 512Mi, 1G)'),
    ("memory", "-1Gi", '"-1Gi" is not a quantity (examples: 500m, 2, 512Mi, 1G)'),
    ("memory", "1 Gi", '"1 Gi" is not a quantity (examples: 500m, 2, 512Mi, 1G)'),
    ("memory", ".", '"." is not a quantity'),
    ("memory", "1.2.3", '"1.2.3" is not a quantity'),
    ("memory", "5Zi", '"5Zi" has an unknown unit "Zi" (use m, k, M, G, Ki, Mi, Gi, …)'),
    ("memory", "5gb", '"5gb" has an unknown unit "gb" (use m, k, M, G, Ki, Mi, Gi, …)'),
    ("cpu", -1, "must not be negative"),
    ("cpu", True, "must be a number or a quantity, not True"),
]


@pytest.mark.parametrize(("resource", "value", "message"), BAD, ids=[repr(v) for _, v, _ in BAD])
def test_bad_quantities_name_the_problem(resource: str, value: Any, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        quantities.parse(resource, value)
    assert str(caught.value) == message


# --- conditions -----------------------------------------------------------------------------------------------


def cond(raw: Any) -> models.Condition:
    return models.Conditions.model_validate({"branch": raw}).branch


MATCHES = [
    ("empty-matches-anything", None, "main", True),
    ("string", "main", "main", True),
    ("string-no-match", "main", "develop", False),
    ("glob", "release/*", "release/1.2", True),
    ("glob-is-case-sensitive", "Main", "main", False),
    ("list", ["main", "develop"], "develop", True),
    ("include-and-exclude", {"include": ["feature/*"], "exclude": ["feature/wip-*"]}, "feature/wip-x", False),
    ("exclude-only", {"exclude": ["main"]}, "develop", True),
    ("exclude-only-match", {"exclude": ["main"]}, "main", False),
    ("value-unknown-is-not-evaluated", "main", None, True),
    ("question-mark-glob", "v?", "v1", True),
]


@pytest.mark.parametrize(
    ("raw", "value", "expected"), [pytest.param(r, v, e, id=i) for i, r, v, e in MATCHES]
)
def test_condition_matching(raw: Any, value: str | None, expected: bool) -> None:
    assert whens.matches(cond(raw), value) is expected


@pytest.mark.parametrize(
    ("status", "failing", "runs"),
    [
        (None, False, True),
        (None, True, False),
        ("failure", False, False),
        ("failure", True, True),
        (["success", "failure"], True, True),
        ({"exclude": ["failure"]}, True, False),
        ({"exclude": ["failure"]}, False, True),
    ],
)
def test_runs_on_status(status: Any, failing: bool, runs: bool) -> None:
    when = models.Conditions.model_validate({"status": status} if status is not None else {})
    assert whens.runs_on(when, failing=failing) is runs


def test_build_matches_needs_every_condition() -> None:
    when = models.Conditions.model_validate({"branch": "main", "event": ["push"], "paths": ["docs/*"]})
    assert whens.build_matches(when, models.BuildInfo(branch="main", event="push"))
    assert not whens.build_matches(when, models.BuildInfo(branch="main", event="tag"))
    assert whens.build_matches(when, None)


def test_build_info_ignores_unknown_fields() -> None:
    assert models.BuildInfo.model_validate({"branch": "x", "sender": "y"}).branch == "x"


# --- names ----------------------------------------------------------------------------------------------------

LABELS = [
    ("build", "build"),
    ("Build Docs", "build-docs"),
    ("unit_tests", "unit-tests"),
    ("--x--", "x"),
    ("a..b", "a-b"),
    ("ÄÖÜ", None),  # nothing usable left: a hashed name
    ("", None),
    ("a" * 100, None),
]


@pytest.mark.parametrize(("name", "label"), LABELS, ids=[n[:10] or "empty" for n, _ in LABELS])
def test_dns1123_labels(name: str, label: str | None) -> None:
    mapped = conventions.dns1123_label(name)
    assert len(mapped) <= 63
    assert mapped == mapped.lower().strip("-")
    assert all(c.isalnum() or c == "-" for c in mapped) and mapped.isascii()
    if label is not None:
        assert mapped == label
    assert conventions.dns1123_label(name) == mapped  # deterministic


def test_long_names_stay_distinct_and_fit_a_container_name() -> None:
    a, b = conventions.step_container("x" * 80 + "a"), conventions.step_container("x" * 80 + "b")
    assert a != b
    assert len(a) <= 63 and len(b) <= 63 and a.startswith("step-")
    assert len(conventions.service_container("y" * 200)) <= 63
    assert len(conventions.volume_name("z" * 200)) <= 63


def test_run_ids_and_object_names() -> None:
    assert conventions.run_id(4, None) == conventions.run_id(4, "") == "g4"
    assert conventions.run_id(4, "a") != conventions.run_id(4, "b")
    assert conventions.run_id(4, "a") == conventions.run_id(4, "a")
    assert conventions.pod_name("demo", "g4") == "demo-g4"
    assert conventions.pull_secret_name("demo", "g4") == "demo-g4-pull"
    long = conventions.pod_name("p" * 260, "g4")
    assert len(long) == 253 and long != conventions.pod_name("p" * 261, "g4")
