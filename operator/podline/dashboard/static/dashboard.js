// podline dashboard: the runs list and a run's page. Everything the cluster says is put into the page as
// text (textContent / text nodes), never as markup; colours of a step's log come as palette names or
// #rrggbb values, checked again here before use. Live updates come from the server's event streams; this
// script never polls.
"use strict";

const TERMINAL = new Set(["Succeeded", "Failed", "Error", "Cancelled"]);
const PHASES = ["Pending", "Running", "Succeeded", "Failed", "Error", "Cancelled"];

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key.startsWith("data-")) node.dataset[key.slice(5).replace(/-(.)/g, (_, c) => c.toUpperCase())] = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

function duration(seconds) {
  if (seconds === null || seconds === undefined || isNaN(seconds)) return "–";
  const whole = Math.max(0, Math.floor(seconds));
  if (whole < 60) return `${whole}s`;
  if (whole < 3600) return `${Math.floor(whole / 60)}m${String(whole % 60).padStart(2, "0")}s`;
  return `${Math.floor(whole / 3600)}h${String(Math.floor((whole % 3600) / 60)).padStart(2, "0")}m`;
}

// how long ago: to the second within a minute, then to the minute, the hour, the day (so a list of old runs
// does not change every second)
function ago(stamp) {
  if (!stamp) return "–";
  const seconds = (Date.now() - Date.parse(stamp)) / 1000;
  if (seconds < 5) return "just now";
  if (seconds < 60) return `${Math.floor(seconds)}s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h ago`;
  return `${Math.floor(seconds / 86400)}d ago`;
}

function setText(node, text) {
  if (node && node.textContent !== text) node.textContent = text;
}

// How long a row's run has taken: its recorded duration, or (running) from its start until now.
function rowDuration(row) {
  if (!TERMINAL.has(row.phase) && row.started) return (Date.now() - Date.parse(row.started)) / 1000;
  return row.duration_s;
}

function phasePill(phase) {
  return el("span", { class: `pill phase-${phase}`, "data-phase": phase, text: phase });
}

function runPath(ns, name) {
  return `/runs/${encodeURIComponent(ns)}/${encodeURIComponent(name)}`;
}

function setLive(ok) {
  const live = document.getElementById("live");
  live.textContent = ok ? "live" : "reconnecting…";
  live.classList.toggle("ok", ok);
}

function showProblem(text) {
  const p = document.getElementById("problem");
  p.hidden = !text;
  p.textContent = text || "";
}

function triggerCell(trigger) {
  const parts = [];
  if (trigger.event) parts.push(el("span", { class: "tag", text: trigger.event }));
  if (trigger.branch) parts.push(el("span", { class: "branch", text: trigger.branch }));
  if (trigger.commit) parts.push(el("code", { class: "commit", title: trigger.commit, text: trigger.commit.slice(0, 8) }));
  if (trigger.author) parts.push(el("span", { class: "author", text: trigger.author }));
  return parts.length ? parts : [el("span", { class: "muted", text: "–" })];
}

function stepDots(steps) {
  return el("span", { class: "dots" }, ...steps.map((s) =>
    el("span", { class: `dot state-${s.state}`, title: `${s.name}: ${s.state}`, "data-step": s.name, "data-state": s.state })));
}

// --- the runs list -------------------------------------------------------------------------------------

function listPage() {
  const form = document.getElementById("filters");
  const body = document.getElementById("rows");
  const rows = new Map(); // key → {row, tr}
  let source = null;

  const params = new URLSearchParams(location.search);
  for (const select of form.querySelectorAll("select")) {
    if (params.get(select.name)) addOption(select, params.get(select.name));
    select.value = params.get(select.name) || "";
    select.addEventListener("change", () => {
      const query = new URLSearchParams();
      for (const s of form.querySelectorAll("select")) if (s.value) query.set(s.name, s.value);
      history.replaceState(null, "", query.toString() ? `/?${query}` : "/");
      connect();
    });
  }
  for (const phase of PHASES) addOption(form.elements.phase, phase);

  function addOption(select, value) {
    if (!value || [...select.options].some((o) => o.value === value)) return;
    select.append(el("option", { value, text: value }));
  }

  function render(row) {
    const tr = el("tr", { "data-key": row.key, "data-phase": row.phase },
      el("td", {}, phasePill(row.phase)),
      el("td", {}, el("a", { href: runPath(row.namespace, row.name), class: "name" },
        el("span", { class: "ns", text: `${row.namespace} / ` }), row.name),
        row.run ? el("span", { class: "run muted", text: ` ${row.run}` }) : null),
      el("td", { class: "trigger" }, ...triggerCell(row.trigger)),
      el("td", {}, stepDots(row.steps)),
      el("td", { class: "started", title: row.started || "", text: ago(row.started) }),
      el("td", { class: "duration", text: duration(rowDuration(row)) }));
    return tr;
  }

  function order(a, b) {
    const sa = a.started || "~", sb = b.started || "~";
    if (sa !== sb) return sa < sb ? 1 : -1;
    return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
  }

  function place(row) {
    const old = rows.get(row.key);
    const tr = render(row);
    if (old) old.tr.replaceWith(tr);
    rows.set(row.key, { row, tr });
    const sorted = [...rows.values()].sort((x, y) => order(x.row, y.row));
    const index = sorted.findIndex((entry) => entry.row.key === row.key);
    const next = sorted[index + 1];
    if (next && next.tr !== tr) body.insertBefore(tr, next.tr);
    else if (!next) body.append(tr);
    addOption(form.elements.namespace, row.namespace);
    addOption(form.elements.branch, row.trigger.branch);
    addOption(form.elements.event, row.trigger.event);
  }

  function counted() {
    document.getElementById("count").textContent = `${rows.size} run${rows.size === 1 ? "" : "s"}`;
    document.getElementById("empty").hidden = rows.size > 0;
  }

  function connect() {
    if (source) source.close();
    rows.clear();
    body.replaceChildren();
    source = new EventSource(`/api/events${location.search}`);
    source.addEventListener("snapshot", (e) => {
      performance.mark("podline-snapshot-received"); // for bench/dashboard.py
      const data = JSON.parse(e.data);
      rows.clear();
      for (const [name, values] of Object.entries(data.choices)) for (const v of values) addOption(form.elements[name], v);
      const all = document.createDocumentFragment(); // already in the list's order: one insertion
      for (const row of data.rows) {
        const tr = render(row);
        rows.set(row.key, { row, tr });
        all.append(tr);
      }
      body.replaceChildren(all);
      performance.mark("podline-snapshot-rendered");
      requestAnimationFrame(() => setTimeout(() => performance.mark("podline-snapshot-painted"))); // after its frame
      showProblem(data.problem);
      setLive(true);
      counted();
    });
    source.addEventListener("row", (e) => { place(JSON.parse(e.data)); counted(); });
    source.addEventListener("gone", (e) => {
      const key = JSON.parse(e.data).key;
      const entry = rows.get(key);
      if (entry) { entry.tr.remove(); rows.delete(key); }
      counted();
    });
    source.onerror = () => setLive(false);
  }

  connect();
  setInterval(() => {
    for (const { row, tr } of rows.values()) {
      setText(tr.cells[4], ago(row.started));
      if (!TERMINAL.has(row.phase)) setText(tr.cells[5], duration(rowDuration(row)));
    }
  }, 1000);
}

// --- a step's log ----------------------------------------------------------------------------------------

const PALETTE = /^c([0-9]|1[0-5])$/;
const HEX = /^#[0-9a-f]{6}$/;

function appendSegments(pre, segments) {
  const atEnd = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 40;
  for (const seg of segments) {
    const classes = [];
    if (seg.bold) classes.push("b");
    if (seg.dim) classes.push("d");
    if (seg.italic) classes.push("i");
    if (seg.underline) classes.push("u");
    let color = null, background = null;
    if (seg.fg && PALETTE.test(seg.fg)) classes.push(`fg-${seg.fg}`);
    else if (seg.fg && HEX.test(seg.fg)) color = seg.fg;
    if (seg.bg && PALETTE.test(seg.bg)) classes.push(`bg-${seg.bg}`);
    else if (seg.bg && HEX.test(seg.bg)) background = seg.bg;
    if (!classes.length && !color && !background) {
      pre.append(document.createTextNode(String(seg.t)));
      continue;
    }
    const span = document.createElement("span");
    span.textContent = String(seg.t);
    if (classes.length) span.className = classes.join(" ");
    if (color) span.style.color = color;
    if (background) span.style.backgroundColor = background;
    pre.append(span);
  }
  if (atEnd) pre.scrollTop = pre.scrollHeight;
}

// A log pane following one step's log; reopened when the step's state moves on after the stream ended.
class LogView {
  constructor(ns, name, run, container) {
    this.url = `/api/logs/${[ns, name, run, container].map(encodeURIComponent).join("/")}`;
    this.pre = el("pre", { class: "log", "data-container": container });
    this.note = el("p", { class: "log-note muted" });
    this.node = el("div", { class: "log-box" }, this.pre, this.note);
    this.source = null;
    this.openedAt = null;
    this.done = false;
  }

  open(state) {
    this.close();
    this.pre.replaceChildren();
    this.note.textContent = "";
    this.openedAt = state;
    this.done = false;
    this.pre.dataset.streaming = "true";
    const source = new EventSource(this.url);
    this.source = source;
    source.addEventListener("log", (e) => appendSegments(this.pre, JSON.parse(e.data)));
    source.addEventListener("end", () => { this.done = true; this.finish(this.pre.childNodes.length ? "" : "(no output)"); });
    source.addEventListener("unavailable", (e) => this.finish(JSON.parse(e.data).message));
    source.onerror = () => this.finish("");
  }

  finish(message) {
    if (this.source) this.source.close();
    this.source = null;
    this.pre.dataset.streaming = "false";
    if (message) this.note.textContent = message;
  }

  close() { this.finish(""); }

  // the step's state changed: a stream that already ended is read again (a step that now runs, or ended)
  update(state) {
    if (!this.source && state !== this.openedAt) this.open(state);
  }
}

// --- a run's page -------------------------------------------------------------------------------------------

function runPage() {
  const parts = location.pathname.split("/").slice(2).map(decodeURIComponent);
  const [ns, name] = parts;
  document.getElementById("crumb").textContent = `${ns} / ${name}`;
  document.title = `podline · ${name}`;
  const logs = new Map(); // run/container → LogView
  const opened = new Set(); // containers whose log the user opened or closed (no automatic opening after)
  let token = null;
  let detail = null;

  fetch("/api/session").then((r) => r.json()).then((s) => { token = s.token; if (s.problem) showProblem(s.problem); });

  function act(verb) {
    fetch(`/api/runs/${encodeURIComponent(ns)}/${encodeURIComponent(name)}/${verb}`, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-Podline-Token": token || "" },
      body: "{}",
    }).then(async (r) => {
      const answer = await r.json().catch(() => ({}));
      showProblem(r.ok ? "" : answer.error || `${verb} failed (${r.status})`);
    });
  }

  function summary(d) {
    const row = d.row;
    const t = row.trigger;
    const buttons = el("span", { class: "actions" },
      d.mayPatch ? el("button", { id: "rerun", type: "button", onclick: () => act("rerun"), text: "Rerun" }) : null,
      d.mayPatch && !TERMINAL.has(row.phase)
        ? el("button", { id: "cancel", type: "button", class: "danger", onclick: () => act("cancel"), text: "Cancel" }) : null);
    return [
      el("div", { class: "title" }, phasePill(row.phase), el("h1", { text: row.name }),
        el("span", { class: "muted", text: `${row.namespace} · run ${row.run || "–"}` }), buttons),
      el("dl", { class: "facts" },
        el("dt", { text: "Trigger" }), el("dd", {}, ...triggerCell(t)),
        t.message ? el("dt", { text: "Message" }) : null, t.message ? el("dd", { text: t.message }) : null,
        el("dt", { text: "Started" }), el("dd", { title: row.started || "", text: ago(row.started) }),
        el("dt", { text: "Duration" }), el("dd", { class: "duration", text: duration(rowDuration(row)) }),
        row.message ? el("dt", { text: "Message" }) : null,
        row.message ? el("dd", { class: "message", text: row.message }) : null),
    ];
  }

  function ticks(total) {
    const steps = [100, 200, 500, 1000, 2000, 5000, 10000, 15000, 30000, 60000, 120000, 300000, 600000, 1800000, 3600000];
    const step = steps.find((s) => total / s <= 8) || 7200000;
    const out = [];
    for (let at = 0; at <= total; at += step) out.push(at);
    return out;
  }

  // an axis tick (whole values) or a span's length (a tenth of a second under a minute)
  function label(ms, precise) {
    if (ms > 0 && ms < 1000) return `${Math.round(ms)}ms`;
    if (ms < 60000) return precise ? `${(ms / 1000).toFixed(1)}s` : `${ms / 1000}s`;
    return duration(ms / 1000);
  }

  function timeline(line) {
    const box = document.getElementById("timeline");
    const total = Math.max(1, line.total_ms);
    const levels = new Map();
    for (const bar of line.bars) levels.set(bar.level, (levels.get(bar.level) || 0) + 1);
    const axis = el("div", { class: "axis" }, ...ticks(total).map((at) =>
      el("span", { class: "tick", style: null, "data-at": at, text: label(at) })));
    const rows = line.bars.map((bar) => {
      const track = el("div", { class: "track" });
      for (const span of bar.spans) {
        const piece = el("span", {
          class: `span ${span.part} state-${bar.state}`,
          "data-part": span.part,
          title: `${bar.name}: ${span.part} ${label(span.end_ms - span.start_ms, true)}`,
        });
        piece.style.left = `${(100 * span.start_ms) / total}%`;
        piece.style.width = `${(100 * (span.end_ms - span.start_ms)) / total}%`;
        track.append(piece);
      }
      const parallel = (levels.get(bar.level) || 0) > 1;
      return el("div", { class: "bar", "data-step": bar.name, "data-state": bar.state, "data-level": bar.level },
        el("span", { class: "label" },
          el("span", { class: `dot state-${bar.state}` }),
          el("span", { class: "indent", text: "" }),
          bar.name,
          parallel ? el("span", { class: "par", title: "ran side by side with the other steps of this level", text: "∥" }) : null),
        track);
    });
    for (const row of rows) row.querySelector(".indent").style.width = `${8 * Number(row.dataset.level)}px`;
    box.replaceChildren(axis, ...rows);
    for (const tick of axis.children) tick.style.left = `${(100 * Number(tick.dataset.at)) / total}%`;
    if (!line.bars.length) box.replaceChildren(el("p", { class: "muted", text: "No steps yet." }));
  }

  function logView(run, container) {
    const key = `${run}/${container}`;
    if (!logs.has(key)) logs.set(key, new LogView(ns, name, run, container));
    return logs.get(key);
  }

  function stepsList(d) {
    const box = document.getElementById("steps");
    const bars = d.timeline.bars;
    const byContainer = new Map(bars.map((b) => [b.container, b]));
    const items = bars.map((bar) => {
      const view = logView(d.row.run, bar.container);
      const run = bar.spans.find((s) => s.part === "run");
      const took = run ? label(run.end_ms - run.start_ms, true) : "";
      const head = el("button", { type: "button", class: "step-head", "aria-expanded": "false" },
        el("span", { class: `dot state-${bar.state}` }),
        el("span", { class: "step-name", text: bar.name }),
        el("span", { class: "muted", text: bar.state }),
        bar.exit_code !== null ? el("span", { class: "muted", text: `exit ${bar.exit_code}` }) : null,
        bar.reason && bar.reason !== "Succeeded" ? el("span", { class: "reason", text: bar.reason }) : null,
        el("span", { class: "took", text: took }));
      const item = el("div", { class: "step", "data-step": bar.name, "data-state": bar.state }, head);
      const show = () => {
        item.append(view.node);
        head.setAttribute("aria-expanded", "true");
        if (view.openedAt === null) view.open(bar.state);
        else view.update(bar.state);
      };
      head.addEventListener("click", () => {
        opened.add(bar.container);
        if (view.node.isConnected) { view.node.remove(); head.setAttribute("aria-expanded", "false"); }
        else show();
      });
      const wasOpen = view.node.isConnected;
      const auto = !opened.has(bar.container) && (bar.state === "running" || (bar.state === "failed" && view.openedAt !== null));
      if (wasOpen || auto) show();
      return item;
    });
    for (const [key, view] of logs) {
      const [run, container] = key.split("/");
      if (run === d.row.run && !byContainer.has(container)) view.close();
    }
    box.replaceChildren(...items);
    if (!items.length) box.replaceChildren(el("p", { class: "muted", text: "No steps yet." }));
  }

  // Earlier runs: the status' history at once, then merged with the archive's runs (/api/history), asked
  // again only when they may have changed (a run started or ended). An entry whose run and steps are the
  // same is kept as it is, with any log opened in it.
  let pastKey = null; // what the last /api/history answer was asked for
  let pastAnswer = null; // {runs, more, problem}
  let shownHistory = null;
  const pastNodes = new Map(); // run → {id, node}

  function askEarlier(d) {
    const key = JSON.stringify([d.row.run, TERMINAL.has(d.row.phase), d.history.map((h) => h.run)]);
    if (key === pastKey) return;
    pastKey = key;
    fetch(`/api/history/${encodeURIComponent(ns)}/${encodeURIComponent(name)}`)
      .then(async (r) => {
        const answer = await r.json();
        return r.ok ? answer : { runs: null, more: 0, problem: answer.error || `earlier runs: ${r.status}` };
      })
      .then((answer) => {
        if (key !== pastKey) return; // asked again meanwhile
        pastAnswer = answer.runs ? answer : { runs: pastAnswer ? pastAnswer.runs : [], more: 0, problem: answer.problem };
        historyList(detail);
      })
      .catch(() => {}); // the dashboard is gone: the live stream says so
  }

  function fromStatus(d) {
    return d.history.map((h) => ({ ...h, duration_s: null, kept: true, archived: false, steps: null }));
  }

  // the runs of the status the last answer does not have yet (they just ended: the newest), without the
  // current run
  function withStatus(answer, d) {
    const known = new Set(answer.runs.map((h) => h.run));
    const fresh = fromStatus(d).filter((h) => !known.has(h.run));
    return { ...answer, runs: [...fresh, ...answer.runs].filter((h) => h.run !== d.row.run) };
  }

  function pastEntry(h, bars) {
    const steps = h.steps || bars;
    const id = JSON.stringify([h, steps]);
    const old = pastNodes.get(h.run);
    if (old && old.id === id) return old.node;
    const slot = el("div", { class: "log-slot" });
    const picks = el("span", { class: "picks" }, ...steps.map((s) => el("button", {
      type: "button", class: "link pick", "data-step": s.name, "data-state": s.state,
      title: s.state ? `${s.name}: ${s.state}${s.exitCode !== null ? `, exit ${s.exitCode}` : ""}, ${s.startedAt || "–"} → ${s.finishedAt || "–"}` : null,
      onclick: (e) => {
        const view = logView(h.run, s.container);
        slot.replaceChildren(view.node);
        view.open("ended");
        for (const b of picks.children) b.setAttribute("aria-pressed", String(b === e.currentTarget));
      },
    }, s.state ? el("span", { class: `dot state-${s.state}` }) : null, s.name,
    s.exitCode ? el("span", { class: "muted", text: ` exit ${s.exitCode}` }) : null,
    s.took_ms !== undefined && s.took_ms !== null ? el("span", { class: "muted", text: ` ${label(s.took_ms, true)}` }) : null)));
    const facts = [`ended ${ago(h.completed)}`];
    if (h.duration_s !== null && h.duration_s !== undefined) facts.push(`took ${duration(h.duration_s)}`);
    if (!h.kept) facts.push("from the archive");
    const node = el("div", { class: "past", "data-run": h.run, "data-archived": String(h.archived), "data-kept": String(h.kept) },
      el("div", {}, phasePill(h.phase), el("code", { text: h.run }),
        el("span", { class: "muted", title: h.completed || "", text: ` ${facts.join(" · ")} · steps: ` }), picks),
      slot);
    pastNodes.set(h.run, { id, node });
    return node;
  }

  function historyList(d) {
    const box = document.getElementById("history");
    const answer = withStatus(pastAnswer || { runs: [], more: 0, problem: null }, d);
    const bars = d.timeline.bars.map((b) => ({ name: b.name, container: b.container }));
    const now = JSON.stringify([answer, bars]);
    if (now === shownHistory) return; // unchanged: keep any log opened there
    shownHistory = now;
    const nodes = [];
    if (answer.problem) nodes.push(el("p", { class: "problem past-problem", text: `Runs in the archive: ${answer.problem}` }));
    for (const h of answer.runs) nodes.push(pastEntry(h, bars));
    if (answer.more) nodes.push(el("p", { class: "muted more", text: `${answer.more} older in the archive (podline get ${name} -n ${ns} lists them)` }));
    if (!answer.runs.length) nodes.push(el("p", { class: "muted", text: "None kept." }));
    box.replaceChildren(...nodes);
  }

  const source = new EventSource(`/api/events/${encodeURIComponent(ns)}/${encodeURIComponent(name)}`);
  source.addEventListener("run", (e) => {
    detail = JSON.parse(e.data);
    setLive(true);
    showProblem("");
    document.getElementById("summary").replaceChildren(...summary(detail));
    timeline(detail.timeline);
    stepsList(detail);
    historyList(detail);
    askEarlier(detail);
  });
  source.addEventListener("missing", (e) => {
    const data = JSON.parse(e.data);
    setLive(true);
    showProblem(data.problem || `Pipeline ${data.key} not found (or not visible to you).`);
  });
  source.onerror = () => setLive(false);
  setInterval(() => {
    if (!detail || TERMINAL.has(detail.row.phase)) return;
    const d = document.querySelector("#summary .duration");
    if (d) d.textContent = duration(rowDuration(detail.row));
    const origin = Date.parse(detail.timeline.origin || "");
    for (const bar of detail.timeline.bars) {
      const run = bar.spans.find((s) => s.part === "run");
      const took = document.querySelector(`.step[data-step="${CSS.escape(bar.name)}"] .took`);
      if (bar.state === "running" && run && took && !isNaN(origin)) {
        took.textContent = label(Math.max(0, Date.now() - origin - run.start_ms), true);
      }
    }
  }, 1000);
}

document.addEventListener("DOMContentLoaded", () => {
  if (document.body.dataset.page === "run") runPage();
  else listPage();
});
