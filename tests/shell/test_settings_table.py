"""The settings table (``settings.VARIABLES``) is the one source of the operator's configuration: it reads the
environment, it generates ``docs/configuration.md``, and the chart sets exactly its variables from values it
documents. These tests fail when one of them drifts from the table.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import yaml
from podline.core import policies
from podline.shell import settings as settings_

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "configuration.md"
CHART = ROOT / "charts" / "podline"
NAMES = [v.name for v in settings_.VARIABLES]


def test_the_committed_configuration_reference_is_generated_from_the_table() -> None:
    assert DOC.read_text() == settings_.markdown(), (
        "docs/configuration.md is stale: run "
        "`.venv/bin/python -m podline.shell.settings --markdown > docs/configuration.md`"
    )


def test_the_generator_prints_the_reference(capsys: pytest.CaptureFixture[str]) -> None:
    assert settings_.main(["--markdown"]) == 0
    assert capsys.readouterr().out == settings_.markdown()
    assert settings_.main([]) == 2


def test_every_variable_is_named_once_and_documented() -> None:
    assert len(NAMES) == len(set(NAMES))
    assert all(re.fullmatch(r"PODLINE_[A-Z_]+", n) for n in NAMES)
    assert all(v.doc and "\n" not in v.doc and "|" not in v.doc for v in settings_.VARIABLES)
    rows = [line for line in settings_.markdown().splitlines() if line.startswith("| `PODLINE_")]
    assert [row.split("`")[1] for row in rows] == NAMES


def test_the_table_fills_every_setting_and_only_real_fields() -> None:
    filled = {f for v in settings_.VARIABLES for f in v.fields}
    own = {f.name for f in dataclasses.fields(settings_.Settings)} - {"policy"}
    policy = {f"policy.{f.name}" for f in dataclasses.fields(policies.Policy)}
    assert filled - own - policy == set(), "a variable names a field Settings/Policy does not have"
    assert own - filled == set(), "a Settings field no variable fills"
    assert len(filled) == sum(len(v.fields) for v in settings_.VARIABLES), "two variables fill one field"


def test_an_empty_environment_is_the_defaults() -> None:
    assert settings_.Settings.from_env({}) == settings_.Settings()
    assert settings_.Settings.from_env(dict.fromkeys(NAMES, "  ")) == settings_.Settings()


@pytest.mark.parametrize(
    ("name", "raw", "field", "value"),
    [
        ("PODLINE_NAMESPACES", "b, a,b", "namespaces", ("a", "b")),
        ("PODLINE_ALLOWED_SERVICE_ACCOUNTS", "x,y", "policy.allowed_service_accounts", frozenset({"x", "y"})),
        ("PODLINE_DEFAULT_SERVICE_ACCOUNT", " builder ", "policy.default_service_account", "builder"),
        ("PODLINE_STEP_TIMEOUT", "0", "policy.step_timeout_seconds", None),
        ("PODLINE_STEP_TIMEOUT", "60", "policy.step_timeout_seconds", 60),
        ("PODLINE_RESYNC_SECONDS", "5", "resync_seconds", 5.0),
        ("PODLINE_ALLOW_PRIVILEGED", "YES", "policy.allow_privileged", True),
        ("PODLINE_AUTOMOUNT_TOKEN", "off", "policy.automount_service_account_token", False),
        ("PODLINE_LOG_LEVEL", "debug", "log_level", "DEBUG"),
        ("PODLINE_PLATFORM", "linux/aarch64", "platform", "linux/arm64/v8"),
        ("PODLINE_MAX_RUNNING", "4", "max_running", 4),
    ],
)
def test_a_variable_fills_its_field(name: str, raw: str, field: str, value: object) -> None:
    config = settings_.Settings.from_env({name: raw})
    owner: object = config.policy if field.startswith("policy.") else config
    assert getattr(owner, field.removeprefix("policy.")) == value


def test_bad_values_are_reported_together_each_naming_its_variable() -> None:
    env = {
        "PODLINE_RUN_TIMEOUT": "soon",
        "PODLINE_MAX_STEPS": "0",
        "PODLINE_ALLOW_HOST_VOLUMES": "maybe",
        "PODLINE_LOG_FORMAT": "xml",
        "PODLINE_LOG_LEVEL": "loud",
    }
    with pytest.raises(settings_.SettingsError) as caught:
        settings_.Settings.from_env(env)
    assert set(str(caught.value).split("; ")) == {
        "PODLINE_RUN_TIMEOUT: 'soon' is not a whole number",
        "PODLINE_MAX_STEPS: must be at least 1",
        "PODLINE_ALLOW_HOST_VOLUMES: 'maybe' is not true or false",
        "PODLINE_LOG_FORMAT: 'xml' is not text or json",
        "PODLINE_LOG_LEVEL: 'LOUD' is not DEBUG, INFO, WARNING or ERROR",
    }


# ---- the chart: the deployment sets exactly the table's variables, from values that say which ---------------


def values_comments() -> dict[str, str]:
    """Each key path of values.yaml (``operator.maxRunning``) → the comment lines just above it."""
    found: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    comments: list[str] = []
    for line in (CHART / "values.yaml").read_text().splitlines():
        stripped = line.strip()
        if not stripped:
            comments = []
        elif stripped.startswith("#"):
            comments.append(stripped.lstrip("# "))
        elif match := re.match(r"( *)([A-Za-z][\w.]*):", line):
            indent = len(match.group(1))
            stack = [(i, k) for i, k in stack if i < indent] + [(indent, match.group(2))]
            found[".".join(k for _, k in stack)] = " ".join(comments)
            comments = []
    return found


def test_every_variable_is_a_documented_chart_value() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    comments = values_comments()
    for variable in settings_.VARIABLES:
        node = values
        for key in variable.chart.split("."):
            assert isinstance(node, dict) and key in node, f"{variable.name}: no value {variable.chart}"
            node = node[key]
        assert variable.name in comments[variable.chart], (
            f"values.yaml's comment on {variable.chart} does not name {variable.name}"
        )


def test_values_yaml_names_no_variable_the_table_lacks() -> None:
    named = set(re.findall(r"PODLINE_[A-Z][A-Z_]*", (CHART / "values.yaml").read_text()))
    assert named == set(NAMES), (
        f"values.yaml names {sorted(named - set(NAMES))}, lacks {sorted(set(NAMES) - named)}"
    )


def test_the_deployment_sets_exactly_the_tables_variables() -> None:
    template = (CHART / "templates" / "deployment.yaml").read_text()
    set_ = re.findall(r"- name: (PODLINE_[A-Z_]+)", template)
    assert sorted(set_) == sorted(NAMES)
    for variable in settings_.VARIABLES:
        block = template.split(f"- name: {variable.name}\n", 1)[1].split("- name:", 1)[0]
        assert f".Values.{variable.chart}" in block, (
            f"{variable.name} is not set from .Values.{variable.chart}"
        )
