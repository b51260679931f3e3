"""The dashboard in a real browser (headless Chromium) against the api tier: the real apiserver and
operator, pod statuses from the scripted kubelet (which has no logs: test_dashboard_node.py streams one).

The page is never reloaded by a test (a marker set in the page must survive); what changes, changes through
the server's event stream, fed by its one watch of the apiserver.
"""

from __future__ import annotations

import asyncio
import json
import pathlib
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.dashboard import browsing
from tests.e2e import conftest, operating
from tests.e2e.operating import apply, pipeline, status, wait_for, wait_for_phase

pytestmark = pytest.mark.api
BUSYBOX = "busybox:1.36"
BUILD = {"event": "push", "branch": "main", "commit": "9f1c2e7d5a", "author": "octocat", "number": 42}


def step(name: str, *commands: str, **extra: object) -> dict[str, object]:
    return {"name": name, "image": BUSYBOX, "commands": list(commands) or ["true"], **extra}


@pytest.fixture(scope="module")
def namespace(api_cluster: Any) -> str:
    conftest.install_crd(api_cluster)
    return str(api_cluster.new_namespace("dash"))


@pytest.fixture(scope="module")
def operator(api_cluster: Any, namespace: str) -> Iterator[operating.OperatorProcess]:
    """An operator of this module's namespace alone (other modules' operators never act here)."""
    op = operating.OperatorProcess(
        api_cluster.kubeconfig,
        api_cluster.log_dir,
        env={"PODLINE_NAMESPACES": namespace},
        name="operator-dashboard",
    )
    op.start()
    yield op
    op.stop()


@pytest.fixture(scope="module")
def admin(api_cluster: Any) -> Iterator[browsing.DashboardProcess]:
    """The dashboard as the cluster admin: every namespace, may patch everything."""
    dashboard = browsing.DashboardProcess(api_cluster.kubeconfig, api_cluster.log_dir, name="dashboard-admin")
    yield dashboard.start()
    dashboard.stop()


VIEWER_RBAC = """
apiVersion: v1
kind: ServiceAccount
metadata: {name: viewer}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: pipeline-viewer}
rules:
  - {apiGroups: [podline.dev], resources: [pipelines], verbs: [get, list, watch]}
  - {apiGroups: [""], resources: [pods/log], verbs: [get]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: viewer}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: pipeline-viewer}
subjects: [{kind: ServiceAccount, name: viewer}]
"""


@pytest.fixture(scope="module")
def viewer(api_cluster: Any, namespace: str) -> Iterator[browsing.DashboardProcess]:
    """The dashboard as a user who may read Pipelines in one namespace and patch nothing."""
    api_cluster.kubectl("apply", "-n", namespace, "-f", "-", input=VIEWER_RBAC)
    kubeconfig = api_cluster.token_kubeconfig(namespace, "viewer")
    dashboard = browsing.DashboardProcess(
        kubeconfig, api_cluster.log_dir, "-n", namespace, name="dashboard-viewer"
    )
    yield dashboard.start()
    dashboard.stop()


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    chrome = browsing.browser()
    yield chrome
    chrome.quit()


def _live(driver: Any) -> None:
    browsing.until(driver, lambda d: d.find_element("id", "live").text == "live", what="the event stream")
    driver.execute_script("window.podlineNotReloaded = true;")


def _not_reloaded(driver: Any) -> bool:
    return bool(driver.execute_script("return window.podlineNotReloaded === true;"))


def test_a_run_appears_and_its_steps_change_state_without_a_reload(
    api_cluster: Any, namespace: str, operator: Any, scripted_kubelet: Any, admin: Any, driver: Any
) -> None:
    driver.get(f"{admin.url}/?namespace={namespace}")
    _live(driver)
    assert driver.find_elements("css selector", f'tr[data-key="{namespace}/live"]') == []
    spec = {"steps": [step("compile", "sleep 2"), step("test", "sleep 2"), step("ship", "sleep 1")]}
    apply(api_cluster, namespace, pipeline("live", spec, {"podline.dev/build": json.dumps(BUILD)}))
    row = f'tr[data-key="{namespace}/live"]'
    seen: set[tuple[str, str]] = set()

    def finished(d: Any) -> bool:
        seen.update(browsing.states(d, f"{row} .dot").items())
        phase = d.execute_script(f"return document.querySelector('{row}')?.dataset.phase;")
        return bool(phase == "Succeeded")

    browsing.until(driver, finished, timeout=90, what="the run to succeed on the page")
    assert {("compile", "running"), ("test", "running"), ("ship", "running")} <= seen, seen
    assert ("test", "waiting") in seen  # a step was seen waiting, then running, then succeeded
    assert browsing.states(driver, f"{row} .dot") == {
        "compile": "succeeded",
        "test": "succeeded",
        "ship": "succeeded",
    }
    trigger = driver.find_element("css selector", f"{row} .trigger").text
    assert "push" in trigger and "main" in trigger and "9f1c2e7d" in trigger and "octocat" in trigger
    assert _not_reloaded(driver)
    browsing.screenshot(driver, "dashboard-list-api")
    wait_for_phase(api_cluster, namespace, "live", operator=operator)


def test_the_filters_narrow_the_list(
    api_cluster: Any, namespace: str, operator: Any, scripted_kubelet: Any, admin: Any, driver: Any
) -> None:
    apply(
        api_cluster,
        namespace,
        pipeline(
            "feature",
            {"steps": [step("one")]},
            {"podline.dev/build": json.dumps({**BUILD, "branch": "feature"})},
        ),
    )
    wait_for_phase(api_cluster, namespace, "feature", operator=operator)
    driver.get(f"{admin.url}/?namespace={namespace}&branch=feature")
    _live(driver)
    keys = lambda d: d.execute_script(
        "return [...document.querySelectorAll('#rows tr')].map(r => r.dataset.key);"
    )
    browsing.until(
        driver, lambda d: keys(d) == [f"{namespace}/feature"], what="only the feature branch's run"
    )
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element("css selector", "select[name=branch]")).select_by_value("")
    browsing.until(
        driver, lambda d: f"{namespace}/feature" in keys(d) and len(keys(d)) > 1, what="every branch"
    )
    assert "branch=" not in driver.current_url and _not_reloaded(driver)


def _timeline(driver: Any) -> list[dict[str, Any]]:
    return list(
        driver.execute_script(
            """return [...document.querySelectorAll('#timeline .bar')].map(bar => {
                 const track = bar.querySelector('.track').getBoundingClientRect();
                 const run = bar.querySelector('.span.run');
                 const r = run ? run.getBoundingClientRect() : null;
                 return {step: bar.dataset.step, level: Number(bar.dataset.level), state: bar.dataset.state,
                         left: r ? (r.left - track.left) / track.width : null,
                         right: r ? (r.right - track.left) / track.width : null};
               });"""
        )
    )


def test_the_timeline_shows_the_steps_in_order_with_widths_of_their_times(
    api_cluster: Any, namespace: str, operator: Any, scripted_kubelet: Any, admin: Any, driver: Any
) -> None:
    spec = {
        "steps": [
            step("checkout", "sleep 1"),
            step("unit", "sleep 3", depends_on=["checkout"]),
            step("lint", "sleep 1", depends_on=["checkout"]),
            step("package", "sleep 1", depends_on=["unit", "lint"]),
        ]
    }
    apply(api_cluster, namespace, pipeline("fanout", spec, {"podline.dev/build": json.dumps(BUILD)}))
    st = wait_for_phase(api_cluster, namespace, "fanout", operator=operator)
    driver.get(f"{admin.url}/runs/{namespace}/fanout")
    browsing.until(
        driver, lambda d: len(_timeline(d)) == 4 and all(b["left"] is not None for b in _timeline(d))
    )
    bars = {b["step"]: b for b in _timeline(driver)}
    assert [b["step"] for b in _timeline(driver)] == ["checkout", "unit", "lint", "package"]
    assert [bars[s]["level"] for s in ("checkout", "unit", "lint", "package")] == [0, 1, 1, 2]
    tolerance = 0.02  # of the axis: a pixel or two of rounding, and the run's whole-second start
    # in order: each starts after what it waits for has ended; unit and lint side by side
    assert bars["unit"]["left"] >= bars["checkout"]["right"] - tolerance
    assert bars["lint"]["left"] >= bars["checkout"]["right"] - tolerance
    assert bars["unit"]["left"] < bars["lint"]["right"] and bars["lint"]["left"] < bars["unit"]["right"]
    assert bars["package"]["left"] >= max(bars["unit"]["right"], bars["lint"]["right"]) - tolerance
    # widths in proportion to the times the status holds (ms, from the entrypoint's results)
    ms = {s["name"]: _ms(s["finishedAt"]) - _ms(s["startedAt"]) for s in st["steps"]}
    widths = {name: bars[name]["right"] - bars[name]["left"] for name in bars}
    for name in ("checkout", "lint", "package"):
        assert widths["unit"] / widths[name] == pytest.approx(ms["unit"] / ms[name], rel=0.15), (widths, ms)
    browsing.screenshot(driver, "dashboard-run-api")


def _ms(stamp: str) -> int:
    from podline.dashboard import views

    moment = views.parse_time(stamp)
    assert moment is not None
    return views.epoch_ms(moment)


def test_only_a_user_who_may_patch_sees_rerun_and_it_starts_a_new_run_live(
    api_cluster: Any,
    namespace: str,
    operator: Any,
    scripted_kubelet: Any,
    admin: Any,
    viewer: Any,
    driver: Any,
) -> None:
    apply(api_cluster, namespace, pipeline("acts", {"steps": [step("only", "sleep 0.5")]}))
    first = wait_for_phase(api_cluster, namespace, "acts", operator=operator)
    title = "#summary .title"
    driver.get(f"{viewer.url}/runs/{namespace}/acts")
    browsing.until(
        driver, lambda d: d.find_elements("css selector", f"{title} [data-phase=Succeeded]"), what="the run"
    )
    assert driver.find_elements("id", "rerun") == [] and driver.find_elements("id", "cancel") == []
    # the viewer's own dashboard shows its namespace only, and its rerun POST is refused whatever it sends
    request = urllib.request.Request(
        f"{viewer.url}/api/runs/{namespace}/acts/rerun", method="POST", data=b"{}"
    )
    token = json.load(urllib.request.urlopen(f"{viewer.url}/api/session"))["token"]
    request.add_header("X-Podline-Token", token)
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request)
    assert refused.value.code == 403

    driver.get(f"{admin.url}/runs/{namespace}/acts")
    _live(driver)
    button = browsing.until(driver, lambda d: d.find_elements("id", "rerun"), what="the rerun button")[0]
    assert driver.find_elements("id", "cancel") == []  # the run has ended: nothing to cancel
    button.click()
    second = wait_for(
        lambda: (s := status(api_cluster, namespace, "acts")).get("run") != first["run"] and s,
        what="a new run",
    )
    browsing.until(
        driver, lambda d: second["run"] in d.find_element("css selector", title).text, what="the new run"
    )
    browsing.until(
        driver,
        lambda d: first["run"] in d.find_element("id", "history").text,
        what="the first run among the earlier runs",
    )
    assert _not_reloaded(driver)
    wait_for_phase(api_cluster, namespace, "acts", operator=operator)


def test_a_cross_site_post_changes_nothing(
    api_cluster: Any, namespace: str, operator: Any, admin: Any
) -> None:
    apply(api_cluster, namespace, pipeline("guarded", {"steps": [step("one")]}))
    token = json.load(urllib.request.urlopen(f"{admin.url}/api/session"))["token"]
    request = urllib.request.Request(
        f"{admin.url}/api/runs/{namespace}/guarded/cancel", method="POST", data=b"{}"
    )
    request.add_header("X-Podline-Token", token)
    request.add_header("Origin", "http://attacker.example")
    request.add_header("Sec-Fetch-Site", "cross-site")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request)
    assert refused.value.code == 403
    notes = (
        operating.get(api_cluster, namespace, "pipelines.podline.dev", "guarded")["metadata"].get(
            "annotations"
        )
        or {}
    )
    assert "podline.dev/cancel" not in notes


def test_the_page_keeps_updating_after_the_apiserver_restarts(
    api_cluster: Any, namespace: str, operator: Any, scripted_kubelet: Any, admin: Any, driver: Any
) -> None:
    """The shared watch breaks with the apiserver; the server lists and watches again by itself, and the
    open page (whose own stream to the dashboard never broke) gets what changed meanwhile and after."""
    driver.get(f"{admin.url}/?namespace={namespace}")
    _live(driver)
    api_cluster.restart_apiserver()
    apply(api_cluster, namespace, pipeline("after-restart", {"steps": [step("one", "sleep 1")]}))
    row = f'tr[data-key="{namespace}/after-restart"]'
    browsing.until(
        driver,
        lambda d: d.execute_script(f"return document.querySelector('{row}')?.dataset.phase;") == "Succeeded",
        timeout=120,
        what="a run made after the restart to show, and succeed",
    )
    assert _not_reloaded(driver)
    assert "Traceback" not in admin.log()


def _pipeline_watches(api_cluster: Any) -> float:
    metrics = api_cluster.kubectl("get", "--raw", "/metrics").stdout
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("apiserver_longrunning_requests{")
        and 'resource="pipelines"' in line
        and 'verb="WATCH"' in line
    )


def test_open_pages_share_the_dashboards_one_watch(api_cluster: Any, namespace: str, admin: Any) -> None:
    """Pages are fed by the dashboard's own watch: opening more adds none on the apiserver."""
    before = _pipeline_watches(api_cluster)
    streams = [
        urllib.request.urlopen(f"{admin.url}/api/events?namespace={namespace}", timeout=30) for _ in range(5)
    ]
    try:
        for stream in streams:
            assert stream.readline().decode().strip() == "event: snapshot"
        assert _pipeline_watches(api_cluster) == before
    finally:
        for stream in streams:
            stream.close()


# --- runs only in the archive -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def archive_dir(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return tmp_path_factory.mktemp("archive")


@pytest.fixture(scope="module")
def archiving_admin(api_cluster: Any, archive_dir: pathlib.Path) -> Iterator[browsing.DashboardProcess]:
    """The dashboard as the admin, reading the archive store directly (``--archive file://…``)."""
    dashboard = browsing.DashboardProcess(
        api_cluster.kubeconfig,
        api_cluster.log_dir,
        "--archive",
        f"file://{archive_dir}",
        name="dashboard-archive",
    )
    yield dashboard.start()
    dashboard.stop()


def _seed(
    archive_dir: pathlib.Path, namespace: str, pipeline_name: str, run: str, logs: dict[str, bytes]
) -> None:
    """A run in the archive as the operator writes it (record.json and a log per step), its pod long gone:
    the api tier has no kubelet to read logs from, so the store is filled here, with real files."""
    from podline.core import records
    from podline.shell import archiving

    store = archiving.open_store(f"file://{archive_dir}")
    started = 1_796_547_600_000
    steps = [
        {
            "name": container.removeprefix("step-"),
            "container": container,
            "state": "failed" if n else "succeeded",
            "exitCode": 2 if n else 0,
            "reason": "Error" if n else "Succeeded",
            "startedAt": started + 1000 * n,
            "finishedAt": started + 1000 * n + 800,
            "failing": bool(n),
        }
        for n, container in enumerate(logs)
    ]
    record = {
        "namespace": namespace,
        "pipeline": pipeline_name,
        "run": run,
        "pod": f"{pipeline_name}-{run}",
        "result": "Failed",
        "startedAt": started,
        "finishedAt": started + 1000 * len(logs),
        "steps": steps,
    }
    prefix = records.run_prefix(namespace, pipeline_name, run)
    asyncio.run(store.put(prefix + records.RECORD, records.encode(record)))
    for container, data in logs.items():
        asyncio.run(store.put(records.log_key(namespace, pipeline_name, run, container), data))


def _past(driver: Any) -> list[dict[str, Any]]:
    return list(
        driver.execute_script(
            """return [...document.querySelectorAll('#history .past')].map(p => ({
                 run: p.dataset.run, archived: p.dataset.archived, kept: p.dataset.kept, text: p.textContent,
                 steps: [...p.querySelectorAll('.pick')].map(b => [b.dataset.step, b.dataset.state])}));"""
        )
    )


def test_a_run_only_in_the_archive_is_listed_and_opened_with_its_step_log(
    api_cluster: Any,
    namespace: str,
    operator: Any,
    scripted_kubelet: Any,
    archiving_admin: Any,
    archive_dir: pathlib.Path,
    driver: Any,
) -> None:
    apply(api_cluster, namespace, pipeline("archived", {"steps": [step("build"), step("test")]}))
    current = wait_for_phase(api_cluster, namespace, "archived", operator=operator)
    _seed(
        archive_dir,
        namespace,
        "archived",
        "g0-gone",
        {"step-build": b"compiled 3 files\n", "step-test": b"\x1b[31mFAIL\x1b[0m <script>x</script>\n"},
    )
    driver.get(f"{archiving_admin.url}/runs/{namespace}/archived")
    _live(driver)
    browsing.until(driver, lambda d: any(p["run"] == "g0-gone" for p in _past(d)), what="the archived run")
    (gone,) = [p for p in _past(driver) if p["run"] == "g0-gone"]
    assert gone["archived"] == "true" and gone["kept"] == "false"
    assert "Failed" in gone["text"] and "from the archive" in gone["text"] and "exit 2" in gone["text"]
    assert gone["steps"] == [["build", "succeeded"], ["test", "failed"]]
    assert current["run"] not in [p["run"] for p in _past(driver)]  # the current run is shown above
    entry = '#history .past[data-run="g0-gone"]'
    driver.find_element("css selector", f'{entry} .pick[data-step="test"]').click()
    log = browsing.until(
        driver,
        lambda d: [e for e in d.find_elements("css selector", f"{entry} pre.log") if "FAIL" in e.text],
        what="the archived step's log",
    )[0]
    assert log.text.strip() == "FAIL <script>x</script>"  # text, not markup; its colour a class
    assert log.find_elements("css selector", "span.fg-c1") and not log.find_elements("css selector", "script")
    driver.find_element("css selector", f'{entry} .pick[data-step="build"]').click()
    browsing.until(
        driver,
        lambda d: "compiled 3 files" in d.find_element("css selector", f"{entry} pre.log").text,
        what="the other step's log",
    )
    assert driver.find_elements("css selector", "#history .past-problem") == []
    browsing.screenshot(driver, "dashboard-archived-run-api")
    # archived meanwhile: the page learns of it when a run of the Pipeline starts or ends (here a rerun),
    # without a reload, and the log opened above stays open
    _seed(archive_dir, namespace, "archived", "g0-later", {"step-build": b"later\n"})
    api_cluster.kubectl("annotate", "pipeline", "archived", "-n", namespace, "podline.dev/rerun=1")
    browsing.until(
        driver,
        lambda d: {current["run"], "g0-later", "g0-gone"} <= {p["run"] for p in _past(d)},
        what="the rerun's predecessor and the newly archived run among the earlier runs",
    )
    assert "compiled 3 files" in driver.find_element("css selector", f"{entry} pre.log").text
    assert _not_reloaded(driver)
    wait_for_phase(api_cluster, namespace, "archived", operator=operator)
    assert "Traceback" not in archiving_admin.log()


def test_without_the_archive_the_history_box_says_why_once_and_the_page_works(
    api_cluster: Any,
    namespace: str,
    operator: Any,
    scripted_kubelet: Any,
    admin: Any,
    viewer: Any,
    driver: Any,
) -> None:
    """The default source is the operator's endpoint (podline-system/podline-archive), which the api tier does
    not have: the admin is told it was not found, the viewer (no services/proxy) which Role to bind."""
    apply(api_cluster, namespace, pipeline("unarchived", {"steps": [step("only")]}))
    wait_for_phase(api_cluster, namespace, "unarchived", operator=operator)
    problem = "#history .past-problem"
    for dashboard, said in (
        (viewer, ["services/proxy", "podline-archive-reader", "kubectl create rolebinding"]),
        (admin, ["podline-system/podline-archive was not found", "--archive"]),
    ):
        driver.get(f"{dashboard.url}/runs/{namespace}/unarchived")
        text = browsing.until(
            driver, lambda d: [e.text for e in d.find_elements("css selector", problem)], what="why"
        )
        assert len(text) == 1 and all(s in text[0] for s in said), text
        assert [b["step"] for b in _timeline(driver)] == ["only"]  # the rest of the page works
        assert driver.find_element("id", "live").text == "live"
