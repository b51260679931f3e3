"""``podline logs --run`` and ``podline get`` print past runs from whichever source (``pastruns``): a log
arrives in chunks that may split a UTF-8 character; a source that cannot be read is one line, never a
traceback; ``--operator`` and ``--archive`` are checked before anything is asked."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from typing import Any

import pytest
from podline import pastruns, viewing


class Chunks:
    """A past-runs source holding one run, its log in the chunks given (or failing with ``fail``)."""

    where = "the test's archive"

    def __init__(self, chunks: list[bytes], fail: str = "") -> None:
        self.chunks, self.fail = chunks, fail

    def runs(self, namespace: str, pipeline: str) -> list[dict[str, Any]]:
        if self.fail:
            raise pastruns.Unreadable(self.fail)
        return [{"run": "g1", "result": "Succeeded", "startedAt": 0, "finishedAt": 3_000}]

    def record(self, namespace: str, pipeline: str, run: str) -> dict[str, Any] | None:
        if self.fail:
            raise pastruns.Unreadable(self.fail)
        steps = [{"name": "a", "container": "step-a", "state": "succeeded", "exitCode": 0}]
        return {"run": "g1", "result": "Succeeded", "steps": steps} if run == "g1" else None

    def log(self, namespace: str, pipeline: str, run: str, container: str) -> Iterator[bytes]:
        yield from self.chunks


def test_a_log_in_chunks_prints_whole_characters_and_ends_its_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    check = "✓".encode()
    chunks = [b"one " + check[:1], check[1:] + b"\ntwo \xff", b"three"]  # a split character, a bad byte
    assert viewing.archived_logs(Chunks(chunks), "ci", "app", "g1") == 0
    assert capsys.readouterr().out == (
        "==> a (succeeded, exit 0)\none ✓\ntwo \ufffdthree\n==> run g1: Succeeded (archived)\n"
    )


def test_a_run_not_archived_and_an_unreadable_source_say_so_in_one_line() -> None:
    with pytest.raises(SystemExit, match='podline: run "g9" of ci/app is not in the test\'s archive'):
        viewing.archived_logs(Chunks([]), "ci", "app", "g9")
    with pytest.raises(SystemExit, match="^podline: may not read"):
        viewing.archived_logs(Chunks([], fail="may not read the operator's archive"), "ci", "app", "g1")


@pytest.mark.parametrize(
    ("archive", "operator", "said"),
    [("", "nonsense", '--operator: "nonsense" is not NAMESPACE/SERVICE'), ("gs://b", "", "--archive: ")],
)
def test_bad_sources_are_refused_naming_the_option(
    archive: str, operator: str, said: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PODLINE_ARCHIVE", raising=False)
    monkeypatch.delenv("PODLINE_OPERATOR", raising=False)
    with pytest.raises(SystemExit, match=said):
        viewing._past(argparse.Namespace(archive=archive, operator=operator))


def test_the_operator_comes_from_the_environment_else_the_charts_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PODLINE_ARCHIVE", raising=False)
    monkeypatch.setenv("PODLINE_OPERATOR", "ops/pl-podline-archive")
    chosen = viewing._past(argparse.Namespace(archive=None, operator=None))
    assert isinstance(chosen, pastruns.OperatorRuns) and str(chosen.operator) == "ops/pl-podline-archive"
    monkeypatch.delenv("PODLINE_OPERATOR")
    chosen = viewing._past(argparse.Namespace(archive=None, operator=None))
    assert (
        isinstance(chosen, pastruns.OperatorRuns) and str(chosen.operator) == "podline-system/podline-archive"
    )


class Pods:
    """The pods the API has (``read_namespaced_pod``), as the CLI asks."""

    def __init__(self, *names: str) -> None:
        self.names = names

    def read_namespaced_pod(self, name: str, namespace: str) -> dict[str, Any]:
        if name not in self.names:
            raise viewing.kubernetes.client.ApiException(status=404, reason="Not Found")
        return {"metadata": {"name": name}}


@pytest.mark.parametrize(
    ("run", "phase", "pods", "archived"),
    [(None, "Succeeded", (), True), (None, "Succeeded", ("app-g1",), False), (None, "Running", (), False),
     ("g1", "Succeeded", (), False)],  # --run is read elsewhere (before), the same way
)  # fmt: skip
def test_podline_logs_reads_an_ended_run_whose_pod_is_gone_from_the_archive(
    run: str | None, phase: str, pods: tuple[str, ...], archived: bool,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setattr(viewing, "_past", lambda args: Chunks([b"from the archive\n"]))
    status = {"run": "g1", "phase": phase, "podName": "app-g1"}
    said = viewing._ended_and_gone(argparse.Namespace(run=run, pipeline="app"), Pods(*pods), "ci", status)
    assert (said == 0) is archived and (said is None) is not archived
    assert ("from the archive" in capsys.readouterr().out) is archived


def test_an_ended_run_gone_and_not_archived_says_why_once(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(viewing, "_past", lambda args: Chunks([], fail="the operator serves no archive"))
    status = {"run": "g1", "phase": "Failed", "podName": "app-g1"}
    assert viewing._ended_and_gone(argparse.Namespace(run=None, pipeline="app"), Pods(), "ci", status) is None
    assert capsys.readouterr().out == (
        "(its pod is gone and the archive cannot give its logs: the operator serves no archive)\n"
    )
