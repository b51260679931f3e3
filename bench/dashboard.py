"""The dashboard's cost, on the api tier: 1,000 Pipelines in a namespace, 10 open pages.

    .venv/bin/python -m bench.dashboard [--pipelines 1000] [--pages 10] [--changes 300] [--repeats 3]

What is measured (no operator: the Pipelines' statuses are written directly, as the operator would):
  * first render: a real browser (headless Chromium) opening the runs list → all rows on the page, with the
    page's own marks (snapshot received, rows built); and the server's part alone, the list stream's
    snapshot (request → snapshot read), with its size;
  * API cost of open pages: the apiserver's count of open namespaced watches of Pipelines
    (``apiserver_longrunning_requests{resource="pipelines",scope="namespace",verb="WATCH"}``) before the
    dashboard starts, with the dashboard and no page, then with ``--pages`` list pages (event streams) open;
    and the Pipeline LIST/WATCH/GET requests made while those pages are open;
  * server CPU per status change: the dashboard process' CPU time over ``--changes`` status patches, divided
    by the changes, with no page open (the floor: the watch alone) and with ``--pages`` pages, each of
    which must receive every change.
Prints a table, writes bench/results/dashboard.json. Numbers, not assertions.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import http.client
import json
import pathlib
import re
import subprocess
import sys
import threading
import time
from collections import defaultdict
from typing import Any

import kubernetes.client

from bench import harness, proc, stats
from bench import kubelet as kubelet_
from tests.cluster import clusters, pki, probes
from tests.dashboard import browsing

RESULTS = pathlib.Path(__file__).resolve().parent / "results" / "dashboard.json"
GROUP, VERSION, PLURAL = "podline.dev", "v1alpha1", "pipelines"


def _stamp(seconds: float) -> str:
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _status(index: int, changes: int) -> dict[str, Any]:
    """A finished 3-step run; ``changes`` varies it, so each patch is a real change."""
    start = time.time() - 600 + index % 300
    steps = [
        {"name": f"step{n}", "container": f"step-step{n}", "state": "succeeded", "exitCode": 0,
         "startedAt": _stamp(start + 2 * n), "finishedAt": _stamp(start + 2 * n + 1.5)}
        for n in range(3)
    ]  # fmt: skip
    return {
        "phase": "Succeeded" if changes % 2 == 0 else "Running",
        "run": "g1",
        "podName": f"p{index}-g1",
        "startTime": _stamp(start)[:19] + "Z",
        "completionTime": _stamp(start + 7)[:19] + "Z",
        "currentStep": f"step{changes % 3}",
        "steps": steps,
    }


def _body(index: int) -> dict[str, Any]:
    build = {
        "event": "push" if index % 4 else "pull_request",
        "branch": f"b{index % 7}",
        "commit": f"{index:040x}",
    }
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Pipeline",
        "metadata": {"name": f"p{index}", "annotations": {"podline.dev/build": json.dumps(build)}},
        "spec": {
            "steps": [{"name": f"step{n}", "image": "busybox:1.36", "commands": ["true"]} for n in range(3)]
        },
    }


def _metrics(cluster: Any) -> str:
    admin = pki.KeyPair(cluster.pki_dir / "admin.crt", cluster.pki_dir / "admin.key")
    answer = probes.http_get(cluster.server + "/metrics", probes.tls_context(cluster.ca, admin), timeout=30)
    if answer is None or answer[0] != 200:
        raise RuntimeError("could not read the apiserver's /metrics")
    return answer[1].decode()


def watches(cluster: Any) -> float:
    """Open watches of Pipelines in a namespace, as the apiserver counts them (the dashboard runs with -n; the
    controller-manager's garbage collector watches every resource cluster-wide, from a moment of its own)."""
    total = 0.0
    for line in _metrics(cluster).splitlines():
        if (
            line.startswith("apiserver_longrunning_requests{")
            and 'resource="pipelines"' in line
            and 'scope="namespace"' in line
            and 'verb="WATCH"' in line
        ):
            total += float(line.rsplit(" ", 1)[1])
    return total


def pipeline_requests(cluster: Any) -> dict[str, float]:
    """apiserver_request_total of pipelines by verb."""
    found: dict[str, float] = defaultdict(float)
    for line in _metrics(cluster).splitlines():
        if line.startswith("apiserver_request_total{") and 'resource="pipelines"' in line:
            verb = re.search(r'verb="([A-Z]+)"', line)
            if verb:
                found[verb.group(1)] += float(line.rsplit(" ", 1)[1])
    return dict(found)


class Page(threading.Thread):
    """One open list page's event stream, counting the rows it is sent."""

    def __init__(self, port: int, namespace: str) -> None:
        super().__init__(daemon=True)
        self.port, self.namespace = port, namespace
        self.rows = 0
        self.ready = threading.Event()
        self.connection: http.client.HTTPConnection | None = None

    def run(self) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
        self.connection.request("GET", f"/api/events?namespace={self.namespace}")
        response = self.connection.getresponse()
        try:
            for raw in response:
                line = raw.decode().rstrip("\n")
                if line == "event: snapshot":
                    self.ready.set()
                elif line == "event: row":
                    self.rows += 1
        except (OSError, ValueError, http.client.HTTPException):
            return

    def close(self) -> None:
        if self.connection is not None and self.connection.sock is not None:
            self.connection.sock.close()


def snapshot_time(port: int, namespace: str) -> tuple[float, int]:
    """Request → the list stream's snapshot read (seconds), and its size in bytes."""
    began = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    connection.request("GET", f"/api/events?namespace={namespace}")
    response = connection.getresponse()
    size = 0
    for raw in response:
        if raw.startswith(b"data: "):
            size = len(raw)
            break
    took = time.monotonic() - began
    connection.close()
    return took, size


def first_render(driver: Any, url: str, rows: int) -> dict[str, float]:
    """Seconds from opening the page to all rows shown (as Selenium sees them), and the page's own marks
    (from its navigation): the snapshot received, the rows built, the frame showing them painted."""
    began = time.monotonic()
    driver.get(url)
    browsing.until(
        driver,
        lambda d: d.execute_script("return document.querySelectorAll('#rows tr').length;") == rows,
        timeout=300,
        what=f"{rows} rows",
    )
    took = time.monotonic() - began
    marks = driver.execute_script(
        "return Object.fromEntries(performance.getEntriesByType('mark').map(m => [m.name, m.startTime / 1000]));"
    )
    return {
        "shown": took,
        "received": float(marks.get("podline-snapshot-received", "nan")),
        "built": float(marks.get("podline-snapshot-rendered", "nan")),
        "painted": float(marks.get("podline-snapshot-painted", "nan")),
    }


def cpu_per_change(
    custom: Any,
    dashboard: browsing.DashboardProcess,
    namespace: str,
    count: int,
    changes: int,
    pages: list[Page],
    round_: int,
) -> float:
    """The dashboard's CPU seconds per status change, the pages receiving every one."""
    assert dashboard.process is not None
    expected = [page.rows + changes for page in pages]
    before = proc.cpu_seconds(dashboard.process.pid) or 0.0

    def patch(n: int) -> None:
        custom.patch_namespaced_custom_object_status(
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            f"p{n % count}",
            {"status": _status(n % count, round_ * changes + n)},
        )

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(patch, range(changes)))
    deadline = time.monotonic() + 120
    while (
        any(page.rows < want for page, want in zip(pages, expected, strict=True))
        and time.monotonic() < deadline
    ):
        time.sleep(0.05)
    time.sleep(1.0)  # the watch's last events reach the server even with no page to wait for
    after = proc.cpu_seconds(dashboard.process.pid) or 0.0
    missing = sum(max(0, want - page.rows) for page, want in zip(pages, expected, strict=True))
    if missing:
        print(f"  warning: {missing} row events not received", file=sys.stderr)
    return (after - before) / changes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.dashboard")
    parser.add_argument("--pipelines", type=int, default=1000)
    parser.add_argument("--pages", type=int, default=10)
    parser.add_argument("--changes", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    began = time.monotonic()
    cluster = clusters.start("api", owner="bench")
    dashboard = None
    driver = None
    try:
        harness.install_crd(cluster)
        api = kubelet_.client(str(cluster.kubeconfig), pool=32)
        custom = kubernetes.client.CustomObjectsApi(api)
        namespace = cluster.new_namespace("bench-dash")
        print(f"creating {args.pipelines} Pipelines with finished runs in {namespace}", flush=True)
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            list(
                pool.map(
                    lambda i: custom.create_namespaced_custom_object(
                        GROUP, VERSION, namespace, PLURAL, _body(i)
                    ),
                    range(args.pipelines),
                )
            )
            list(
                pool.map(
                    lambda i: custom.patch_namespaced_custom_object_status(
                        GROUP, VERSION, namespace, PLURAL, f"p{i}", {"status": _status(i, 0)}
                    ),
                    range(args.pipelines),
                )
            )
        baseline_watches = watches(cluster)
        dashboard = browsing.DashboardProcess(
            cluster.kubeconfig, cluster.log_dir, "-n", namespace, name="dashboard-bench"
        ).start()
        url = f"{dashboard.url}/?namespace={namespace}"
        driver = browsing.browser()
        renders = [first_render(driver, url, args.pipelines) for _ in range(args.repeats + 1)][
            1:
        ]  # first: warm-up
        snapshots = [snapshot_time(dashboard.port, namespace) for _ in range(args.repeats)]
        driver.quit()
        driver = None
        idle_watches, idle_requests = watches(cluster), pipeline_requests(cluster)
        floor = [
            cpu_per_change(custom, dashboard, namespace, args.pipelines, args.changes, [], r)
            for r in range(args.repeats)
        ]
        pages = [Page(dashboard.port, namespace) for _ in range(args.pages)]
        for page in pages:
            page.start()
        for page in pages:
            page.ready.wait(120)
        open_watches = watches(cluster)
        loaded = [
            cpu_per_change(
                custom, dashboard, namespace, args.pipelines, args.changes, pages, args.repeats + r
            )
            for r in range(args.repeats)
        ]
        after_requests = pipeline_requests(cluster)
        for page in pages:
            page.close()
        result = {
            "when": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "commit": subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
            ).stdout.strip(),
            "machine": proc.machine(),
            "pipelines": args.pipelines,
            "pages": args.pages,
            "changes": args.changes,
            "repeats": args.repeats,
            "first_render_s": stats.spread(r["shown"] for r in renders),
            "snapshot_received_s": stats.spread(r["received"] for r in renders),
            "rows_built_s": stats.spread(r["built"] for r in renders),
            "rows_painted_s": stats.spread(r["painted"] for r in renders),
            "snapshot_s": stats.spread(t for t, _ in snapshots),
            "snapshot_bytes": snapshots[0][1],
            "watches_no_dashboard": baseline_watches,
            "watches_no_page": idle_watches,
            "watches_with_pages": open_watches,
            "pipeline_requests_while_pages_open": {
                verb: after_requests.get(verb, 0) - idle_requests.get(verb, 0)
                for verb in ("LIST", "WATCH", "GET")
            },
            "cpu_ms_per_change_no_page": stats.spread(v * 1000 for v in floor),
            "cpu_ms_per_change_with_pages": stats.spread(v * 1000 for v in loaded),
            "took_s": round(time.monotonic() - began),
        }
    finally:
        if driver is not None:
            driver.quit()
        if dashboard is not None:
            dashboard.stop()
        cluster.stop()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(report(result))
    return 0


def _fmt(s: dict[str, Any], unit: str, scale: float = 1.0) -> str:
    return f"{s['median'] * scale:.3g} {unit} [{s['min'] * scale:.3g}–{s['max'] * scale:.3g}]"


def report(r: dict[str, Any]) -> str:
    floor, loaded = r["cpu_ms_per_change_no_page"], r["cpu_ms_per_change_with_pages"]
    per_page = (loaded["median"] - floor["median"]) / max(1, r["pages"])
    requests = r["pipeline_requests_while_pages_open"]
    return "\n".join(
        [
            (
                f"podline dashboard bench, {r['when']}, podline {r['commit']}: {r['pipelines']} Pipelines in one namespace, "
                f"{r['pages']} pages, {r['changes']} status changes × {r['repeats']} repeats (median [min–max]); took {r['took_s']} s"
            ),
            "| measure | result |",
            "|---|---|",
            f"| first render in Chromium: open the list → all {r['pipelines']} rows shown | {_fmt(r['first_render_s'], 's')} |",
            f"| the server's part: list stream request → snapshot read ({r['snapshot_bytes'] / 1024:.0f} KiB) | {_fmt(r['snapshot_s'], 'ms', 1000)} |",
            (
                f"| in the page (its marks, from navigation): snapshot received / {r['pipelines']} rows built / "
                f"their frame painted | {_fmt(r['snapshot_received_s'], 's')} / {_fmt(r['rows_built_s'], 's')} / "
                f"{_fmt(r['rows_painted_s'], 's')} |"
            ),
            (
                f"| open watches of Pipelines (namespaced) on the apiserver: no dashboard → dashboard, no page → {r['pages']} pages open | "
                f"{r['watches_no_dashboard']:.0f} → {r['watches_no_page']:.0f} → {r['watches_with_pages']:.0f} |"
            ),
            (
                f"| Pipeline LIST / WATCH / GET requests while {r['pages']} pages were open and {2 * r['repeats'] * r['changes']} changes made | "
                f"{requests['LIST']:.0f} / {requests['WATCH']:.0f} / {requests['GET']:.0f} |"
            ),
            f"| dashboard CPU per status change, no page open (floor: the watch alone) | {_fmt(floor, 'ms')} |",
            (
                f"| dashboard CPU per status change, {r['pages']} pages open (each sent the row) | {_fmt(loaded, 'ms')}; "
                f"{loaded['median'] / floor['median']:.2f}× the floor, +{per_page:.3f} ms per page |"
            ),
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
