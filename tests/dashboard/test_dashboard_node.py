"""A step's log in the dashboard, in a real browser, on the node tier (a real kubelet, so a real log).

One test (the node tier is one per machine): a step prints a line in colour and a ``<script>`` element,
sleeps, prints again. While it runs, the page already shows its first lines — streamed through
``pods/log?follow=true`` — and not yet the last; then the last arrives without a reload. The ``<script>``
is shown as text and never runs; the colour is a styled span. The screenshot of the docs is taken here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.dashboard import browsing
from tests.e2e import conftest, operating
from tests.e2e.operating import apply, pipeline, wait_for_phase

pytestmark = pytest.mark.node
BUILD = '{"event": "push", "branch": "main", "commit": "4be6b96c0ffee", "author": "octocat", "number": 19}'


@pytest.fixture(scope="module")
def setup(node_cluster: Any) -> Iterator[tuple[str, operating.OperatorProcess, browsing.DashboardProcess]]:
    conftest.install_crd(node_cluster)
    namespace = node_cluster.new_namespace("dash")
    op = operating.OperatorProcess(
        node_cluster.kubeconfig,
        node_cluster.log_dir,
        name="operator-dashboard-node",
        env={"PODLINE_RUNNER_IMAGE": node_cluster.registry.runner, "PODLINE_NAMESPACES": namespace},
    )
    op.start()
    dashboard = browsing.DashboardProcess(
        node_cluster.kubeconfig, node_cluster.log_dir, name="dashboard-node"
    )
    try:
        yield namespace, op, dashboard.start()
    finally:
        dashboard.stop()
        op.stop()


def test_a_steps_log_streams_while_it_runs_as_text(node_cluster: Any, setup: Any) -> None:
    namespace, op, dashboard = setup
    image = node_cluster.registry.busybox
    spec = {
        "steps": [
            {
                "name": "build",
                "image": image,
                "commands": ["echo compiling podline", "echo 'built: 3 packages'"],
            },
            {
                "name": "lint",
                "image": image,
                "depends_on": ["build"],
                "commands": ["printf '\\033[33mwarning\\033[0m: line too long (118 > 110)\\n'", "sleep 1"],
            },
            {
                "name": "test",
                "image": image,
                "depends_on": ["build"],
                "commands": [
                    "printf '\\033[1;32mok\\033[0m   core/views   \\033[2m0.41s\\033[0m\\n'",
                    "printf '\\033[1;31mFAIL\\033[0m output: <script>window.pwned = 1</script>\\n'",
                    "echo first part done",
                    "sleep 6",
                    "echo second part done",
                ],
            },
            {
                "name": "publish",
                "image": image,
                "depends_on": ["lint", "test"],
                "commands": ["echo publishing"],
            },
        ]
    }
    chrome = browsing.browser()
    try:
        chrome.get(f"{dashboard.url}/runs/{namespace}/logs")
        browsing.until(chrome, lambda d: d.find_element("id", "live").text == "live", what="the event stream")
        chrome.execute_script("window.podlineNotReloaded = true;")
        apply(node_cluster, namespace, pipeline("logs", spec, {"podline.dev/build": BUILD}))
        pre = "pre.log[data-container=step-test]"
        seen = browsing.until(
            chrome,
            lambda d: d.execute_script(
                """const pre = document.querySelector(arguments[0]);
                   const step = document.querySelector('.step[data-step=test]');
                   return pre && pre.textContent.includes('first part done')
                     ? {text: pre.textContent, state: step.dataset.state} : null;""",
                pre,
            ),
            timeout=180,
            what="the test step's first lines",
        )
        assert seen["state"] == "running", seen  # streamed while the step ran
        assert "second part done" not in seen["text"]
        browsing.screenshot(chrome, "dashboard-run-node")
        browsing.until(
            chrome,
            lambda d: "second part done" in d.find_element("css selector", pre).text,
            timeout=120,
            what="the rest of the log",
        )
        text = chrome.find_element("css selector", pre).text
        assert "FAIL output: <script>window.pwned = 1</script>" in text  # shown as text
        assert chrome.execute_script(
            "return document.querySelectorAll(arguments[0] + ' script').length === 0 && window.pwned === undefined;",
            pre,
        )
        red = chrome.execute_script(
            "return [...document.querySelectorAll(arguments[0] + ' span.fg-c1.b')].map(s => s.textContent);",
            pre,
        )
        assert red == ["FAIL"]
        assert "\x1b" not in text, repr(
            text
        )  # the codes became styles (the trace of the command shows its text)
        assert "\nFAIL output:" in text and "\nok   core/views" in text
        assert chrome.execute_script("return window.podlineNotReloaded === true;")
    finally:
        chrome.quit()
    st = wait_for_phase(node_cluster, namespace, "logs", timeout=120, operator=op)
    assert st["phase"] == "Succeeded", st
