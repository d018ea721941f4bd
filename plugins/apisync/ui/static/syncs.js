// The Syncs view: fetches the JSON of this app (same origin: the browser sends the UI's login
// cookie) and draws tables, coverage bars and Chart.js charts. Every value from the server is put
// in the page as text (textContent), never as HTML: records and errors come from outside.
"use strict";

const UI_ROOT = window.location.pathname.replace(/apisync\/?$/, "");
const DASH = "\u2014";
const charts = [];
const quarantineState = { stream: null, offset: 0, limit: 20, total: 0 };
let overviewData = null;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "className") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

const fmt = {
  int: (v) => (v === null || v === undefined ? DASH : Number(v).toLocaleString("en-US")),
  seconds: (v) => (v === null || v === undefined ? DASH : Number(v).toFixed(1)),
  ms: (v) => (v === null || v === undefined ? DASH : Number(v).toFixed(0)),
  rate: (v) => (v === null || v === undefined ? DASH : (100 * v).toFixed(1) + "%"),
  moment: (v) => (v ? v.replace("T", " ").replace(/:\d\d(\.\d+)?(\+00:00|Z)$/, "Z") : DASH),
  short: (v) => (v ? v.slice(5, 16).replace("T", " ") : ""),
};

function runUrl(dagId, runId) {
  return `${UI_ROOT}dags/${encodeURIComponent(dagId)}/runs/${encodeURIComponent(runId)}`;
}

function taskUrl(dagId, runId, taskId) {
  return `${runUrl(dagId, runId)}/tasks/${encodeURIComponent(taskId)}`;
}

// The UI shows this page in an iframe sandboxed without "allow-top-navigation", so a link cannot
// navigate the UI's window. The frame is same-origin, though: a click pushes the path onto the
// UI's history and tells its router (React Router listens to popstate), as the UI's own links do.
function openInUi(event) {
  if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const href = event.currentTarget.getAttribute("href");
  if (window.top === window) return; // opened on its own: an ordinary link
  event.preventDefault();
  try {
    window.top.history.pushState(null, "", href);
    window.top.dispatchEvent(new PopStateEvent("popstate", { state: null }));
  } catch (_) {
    window.location.href = href; // not the UI's frame after all: open it here
  }
}

function link(href, text, testid) {
  return el("a", { href, text, "data-testid": testid, onclick: openInUi });
}

async function api(path, options = {}) {
  const response = await fetch(path, { credentials: "same-origin", ...options });
  let body = null;
  try {
    body = await response.json();
  } catch (_) {
    body = null;
  }
  if (!response.ok) {
    const detail = body && body.detail ? (typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail)) : response.statusText;
    throw new Error(`HTTP ${response.status}: ${detail}`);
  }
  return body;
}

function statusBadge(status) {
  const kind = status === "success" ? "success" : status ? "failed" : "other";
  return el("span", { className: `status ${kind}`, text: status || DASH, "data-field": "status" });
}

function numCell(field, value, format) {
  return el("td", { className: "num", "data-field": field, text: format(value) });
}

function renderStreams(streams) {
  const body = document.querySelector("#streams tbody");
  body.replaceChildren();
  if (!streams.length) {
    body.append(el("tr", {}, el("td", { colspan: 16, className: "muted", text: "No sync streams you may read yet." })));
    return;
  }
  for (const s of streams) {
    const last = s.runs.length ? s.runs[s.runs.length - 1] : null;
    const links = el("td", {});
    if (last && s.dag_id) {
      links.append(link(runUrl(s.dag_id, last.run_id), "run", "run-link"));
      if (s.extract_task_id) {
        links.append(" · ", link(taskUrl(s.dag_id, last.run_id, s.extract_task_id), "extract log", "log-link"));
      }
    }
    const streamCell = el("td", { "data-field": "stream" });
    streamCell.append(s.dag_id ? link(`${UI_ROOT}dags/${encodeURIComponent(s.dag_id)}`, s.stream, "dag-link") : s.stream);
    const statusCell = el("td", {}, last ? statusBadge(last.status) : el("span", { className: "muted", text: "never ran" }));
    if (last && last.error) statusCell.append(el("div", { className: "error-line", text: last.error }));
    if (s.problem) statusCell.append(el("div", { className: "error-line", "data-field": "problem", text: s.problem }));
    body.append(
      el(
        "tr",
        { "data-stream": s.stream },
        streamCell,
        el("td", { "data-field": "recorded_at", text: last ? fmt.moment(last.recorded_at) : DASH }),
        statusCell,
        el("td", { "data-field": "window", text: last ? `${fmt.moment(last.interval_start)} → ${fmt.moment(last.interval_end)}` : DASH }),
        numCell("records_pulled", last && last.records_pulled, fmt.int),
        numCell("records_loaded", last && last.records_loaded, fmt.int),
        numCell("records_quarantined", last && last.records_quarantined, fmt.int),
        numCell("api_calls", last && last.api_calls, fmt.int),
        numCell("api_429s", last && last.api_429s, fmt.int),
        numCell("throttled_seconds", last && last.throttled_seconds, fmt.seconds),
        numCell("latency_p50_ms", last && last.latency_p50_ms, fmt.ms),
        numCell("latency_p95_ms", last && last.latency_p95_ms, fmt.ms),
        numCell("error_rate", last && last.error_rate, fmt.rate),
        numCell("bytes_received", last && last.bytes_received, fmt.int),
        el("td", { className: "num", "data-field": "failed_runs", text: `${s.failed_runs} / ${s.runs.length}` }),
        links,
      ),
    );
  }
}

const STATE_CLASS = { synced: "synced", failed: "failed", "never ran": "never-ran", "in progress": "in-progress", "not due": "not-due" };

function renderCoverage(streams) {
  const box = document.getElementById("coverage");
  box.replaceChildren();
  for (const s of streams) {
    if (!s.coverage) continue;
    const c = s.coverage;
    const bar = el("div", { className: "bar", "data-testid": "coverage-bar" });
    for (const seg of c.segments) {
      bar.append(
        el("span", {
          className: STATE_CLASS[seg.state] || "not-due",
          style: `flex-grow: ${seg.windows}`,
          title: `${seg.state}: ${seg.windows} window(s) ${fmt.moment(seg.start)} → ${fmt.moment(seg.end)}`,
          "data-state": seg.state,
        }),
      );
    }
    const missing = c.counts["failed"] + c.counts["never ran"];
    const result = el("span", { className: "result", role: "status", "data-testid": "backfill-result" });
    const button = el("button", {
      type: "button",
      "data-testid": "backfill-gaps",
      disabled: !missing || !s.can_backfill,
      title: !s.can_backfill ? "you may not create runs of this DAG" : missing ? "backfill the oldest missing range" : "nothing missing",
      text: "Backfill gaps",
    });
    button.addEventListener("click", async () => {
      button.disabled = true;
      result.className = "result";
      result.textContent = "creating backfill…";
      try {
        const outcome = await api(`api/streams/${encodeURIComponent(s.stream)}/backfill`, { method: "POST" });
        result.textContent = outcome.message;
        result.dataset.backfillId = outcome.backfill_id ?? "";
      } catch (error) {
        result.className = "result error";
        result.textContent = error.message;
        button.disabled = false;
      }
    });
    const counts = `${c.counts.synced}/${c.expected} synced · ${c.counts.failed} failed · ${c.counts["never ran"]} never ran · ${c.counts["in progress"]} in progress`;
    const side = el("div", {}, el("div", { "data-testid": "coverage-counts", text: counts }), button, " ", result);
    if (c.note) side.append(el("div", { className: "muted", text: c.note }));
    box.append(el("div", { className: "coverage-row", "data-stream": s.stream }, el("strong", { text: s.stream }), bar, side));
  }
}

function chartBox(canvasId) {
  return el("div", { className: "chart-box" }, el("canvas", { id: canvasId }));
}

function drawChart(canvasId, title, type, labels, datasets, extraScales = {}) {
  const canvas = document.getElementById(canvasId);
  charts.push(
    new Chart(canvas, {
      type,
      data: { labels, datasets },
      options: {
        animation: false,
        maintainAspectRatio: false,
        spanGaps: true,
        plugins: { title: { display: true, text: title }, legend: { labels: { boxWidth: 12 } } },
        scales: { y: { beginAtZero: true }, ...extraScales },
      },
    }),
  );
}

function renderCharts(streams) {
  while (charts.length) charts.pop().destroy();
  const box = document.getElementById("charts");
  box.replaceChildren();
  for (const s of streams) {
    if (!s.runs.length) continue;
    const id = s.stream.replace(/[^a-z0-9_-]/gi, "_");
    box.append(
      el(
        "div",
        { className: "chart-row", "data-stream": s.stream },
        el("h3", { text: `${s.stream} — last ${s.runs.length} runs, by window start` }),
        chartBox(`volume-${id}`),
        chartBox(`latency-${id}`),
        chartBox(`throttle-${id}`),
      ),
    );
    // In window order (the runs come in the order they were recorded: a backfill's finish out of order).
    const runs = [...s.runs].sort((a, b) => a.interval_start.localeCompare(b.interval_start));
    const labels = runs.map((r) => fmt.short(r.interval_start));
    const series = (field) => runs.map((r) => r[field]);
    drawChart(`volume-${id}`, "Rows per run", "bar", labels, [
      { label: "pulled", data: series("records_pulled"), backgroundColor: "#94a3b8" },
      { label: "loaded", data: series("records_loaded"), backgroundColor: "#2e9e4f" },
      { label: "quarantined", data: series("records_quarantined"), backgroundColor: "#f0a30a" },
    ]);
    drawChart(`latency-${id}`, "Request latency (ms)", "line", labels, [
      { label: "p50 ms", data: series("latency_p50_ms"), borderColor: "#3b82d6", backgroundColor: "#3b82d6" },
      { label: "p95 ms", data: series("latency_p95_ms"), borderColor: "#d63b3b", backgroundColor: "#d63b3b" },
    ]);
    drawChart(
      `throttle-${id}`,
      "429s, seconds throttled and backing off",
      "bar",
      labels,
      [
        { label: "429s", data: series("api_429s"), backgroundColor: "#d63b3b", yAxisID: "y" },
        { label: "throttled s", data: series("throttled_seconds"), type: "line", borderColor: "#6b7280", backgroundColor: "#6b7280", yAxisID: "y1" },
        { label: "backoff s", data: series("backoff_seconds"), type: "line", borderColor: "#f0a30a", backgroundColor: "#f0a30a", yAxisID: "y1" },
      ],
      { y1: { beginAtZero: true, position: "right", grid: { drawOnChartArea: false } } },
    );
  }
}

function reasons(failures) {
  if (!Array.isArray(failures)) return failures === null || failures === undefined ? DASH : JSON.stringify(failures);
  const one = (f) => {
    if (!f || typeof f !== "object") return String(f);
    const what = [f.expectation || f.check, f.column].filter(Boolean).join(" on ");
    const value = f.value === undefined ? "" : ` (got ${JSON.stringify(f.value)})`;
    return what ? what + value : JSON.stringify(f);
  };
  return failures.map(one).join("; ");
}

async function loadQuarantine() {
  const body = document.querySelector("#quarantine tbody");
  const stream = quarantineState.stream;
  body.replaceChildren();
  if (!stream) return;
  const info = overviewData.streams.find((s) => s.stream === stream);
  let page;
  try {
    page = await api(`api/streams/${encodeURIComponent(stream)}/quarantine?limit=${quarantineState.limit}&offset=${quarantineState.offset}`);
  } catch (error) {
    body.append(el("tr", {}, el("td", { colspan: 7, className: "result error", text: error.message })));
    return;
  }
  quarantineState.total = page.total;
  const first = page.total ? page.offset + 1 : 0;
  document.getElementById("quarantine-range").textContent = `${first}–${page.offset + page.rows.length} of ${page.total}`;
  document.getElementById("quarantine-prev").disabled = page.offset === 0;
  document.getElementById("quarantine-next").disabled = page.offset + page.rows.length >= page.total;
  if (!page.rows.length) {
    body.append(el("tr", {}, el("td", { colspan: 7, className: "muted", text: "No quarantined rows." })));
  }
  for (const row of page.rows) {
    const replay = el("button", { type: "button", "data-testid": "replay", disabled: !(info && info.can_replay), text: "Replay" });
    replay.addEventListener("click", async () => {
      const result = document.getElementById("replay-result");
      replay.disabled = true;
      result.className = "result";
      result.textContent = `replaying ${fmt.moment(row.interval_start)} → ${fmt.moment(row.interval_end)}…`;
      try {
        const outcome = await api(`api/streams/${encodeURIComponent(stream)}/replay`, {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          // The row's run: a sliced run's row carries its slice's window, the replay is the run's.
          body: JSON.stringify({ window_start: row.interval_start, window_end: row.interval_end, run_id: row.run_id }),
        });
        result.textContent = outcome.message;
      } catch (error) {
        result.className = "result error";
        result.textContent = error.message;
      }
      replay.disabled = false;
    });
    const run = info && info.dag_id ? link(runUrl(info.dag_id, row.run_id), row.run_id, "quarantine-run-link") : row.run_id;
    body.append(
      el(
        "tr",
        { "data-quarantine-id": row.id },
        el("td", { text: fmt.moment(row.quarantined_at) }),
        el("td", { text: `${fmt.moment(row.interval_start)} → ${fmt.moment(row.interval_end)}` }),
        el("td", {}, run),
        el("td", { "data-field": "reasons", text: reasons(row.failures) }),
        el("td", { className: "record" }, el("pre", { className: "raw", "data-field": "raw_record", text: row.raw_record })),
        el("td", { className: "muted page-url", text: row.page_url || DASH }),
        el("td", {}, replay),
      ),
    );
  }
}

function renderQuarantinePicker(streams) {
  const select = document.getElementById("quarantine-stream");
  const previous = quarantineState.stream;
  select.replaceChildren(...streams.map((s) => el("option", { value: s.stream, text: s.stream })));
  const withRows = streams.find((s) => s.runs.some((r) => r.records_quarantined));
  quarantineState.stream = streams.some((s) => s.stream === previous) ? previous : (withRows || streams[0] || {}).stream || null;
  if (quarantineState.stream) select.value = quarantineState.stream;
}

async function refresh() {
  const problems = document.getElementById("problems");
  try {
    overviewData = await api("api/overview");
  } catch (error) {
    problems.hidden = false;
    problems.textContent = error.message;
    return;
  }
  problems.hidden = !overviewData.problems.length;
  problems.textContent = overviewData.problems.join("\n");
  document.getElementById("generated").textContent = `as of ${fmt.moment(overviewData.generated_at)}`;
  renderStreams(overviewData.streams);
  renderCoverage(overviewData.streams);
  renderCharts(overviewData.streams);
  renderQuarantinePicker(overviewData.streams);
  await loadQuarantine();
  document.body.dataset.loaded = "true";
}

document.getElementById("refresh").addEventListener("click", refresh);
document.getElementById("quarantine-stream").addEventListener("change", (event) => {
  quarantineState.stream = event.target.value;
  quarantineState.offset = 0;
  loadQuarantine();
});
document.getElementById("quarantine-prev").addEventListener("click", () => {
  quarantineState.offset = Math.max(0, quarantineState.offset - quarantineState.limit);
  loadQuarantine();
});
document.getElementById("quarantine-next").addEventListener("click", () => {
  quarantineState.offset += quarantineState.limit;
  loadQuarantine();
});
refresh();
