// The yubin status page: fetches status.json every 2 s and renders it.
// Read-only; no libraries, no requests anywhere but this node.
"use strict";

const REFRESH_MS = 2000;
const SERIES = [
  ["delivered", "#2e7d32"],
  ["deferred", "#ef6c00"],
  ["bounced", "#c62828"],
  ["accepted", "#1565c0"],
];

function $(id) { return document.getElementById(id); }

function text(id, value) { $(id).textContent = String(value); }

function cell(row, value, cls) {
  const td = row.insertCell();
  td.textContent = value === undefined || value === null ? "" : String(value);
  if (cls) td.className = cls;
  return td;
}

function fillTable(id, items, render) {
  const body = $(id).tBodies[0];
  body.replaceChildren();
  for (const item of items || []) render(body.insertRow(), item);
}

function age(seconds) {
  if (!seconds) return "0s";
  if (seconds < 120) return seconds.toFixed(seconds < 10 ? 1 : 0) + "s";
  if (seconds < 7200) return Math.round(seconds / 60) + "m";
  return (seconds / 3600).toFixed(1) + "h";
}

function renderCluster(st) {
  text("node", st.node);
  text("version", st.version + " (" + st.commit + ")");
  const ready = $("ready");
  ready.textContent = (st.readiness.ready ? "ready: " : "not ready: ") + st.readiness.reason;
  ready.className = "badge " + (st.readiness.ready ? "ok" : "bad");
  text("leader", st.cluster.leader || "(none)");
  text("term", st.cluster.term);
  text("state", st.cluster.state);
  fillTable("members", st.members, (row, m) => {
    row.dataset.member = m.name;
    if (m.leader) row.className = "leader";
    cell(row, m.name + (m.self ? " (this node)" : ""));
    cell(row, m.addr);
    cell(row, (m.leader ? "leader" : "follower") + (m.voter ? "" : ", non-voter"));
    cell(row, m.reachable ? m.state : "unreachable");
    cell(row, m.healthy ? "healthy" : (m.error || "unhealthy"), m.healthy ? "ok" : "bad");
    cell(row, m.reachable ? age(m.last_contact_seconds) : "", "num");
    cell(row, m.reachable ? m.applied_index : "", "num");
    cell(row, m.reachable ? m.lag : "", "num");
  });
}

function renderQueue(st) {
  const q = st.queue;
  for (const state of ["incoming", "active", "deferred", "hold"]) text("q-" + state, q.by_state[state] || 0);
  text("q-total", q.total);
  text("q-oldest", age(q.oldest_age_seconds));
  fillTable("domains", q.by_domain, (row, d) => {
    row.dataset.domain = d.domain;
    cell(row, d.domain);
    for (const state of ["incoming", "active", "deferred", "hold"]) cell(row, d.by_state[state] || 0, "num");
    cell(row, d.total, "num");
  });
  text("qshape", st.qshape);
}

function renderDestinations(st) {
  let note = "";
  if (st.scheduler_local) note = "Live sessions of this node's scheduler (it leads the cluster).";
  else if (st.scheduler) note = "The scheduler runs on the leader, " + st.scheduler + "; its status page shows live sessions.";
  else note = "No scheduler runs: the cluster has no leader.";
  text("dest-note", note);
  fillTable("destinations", st.destinations, (row, d) => {
    row.dataset.dest = d.transport + ":" + d.nexthop;
    if (d.dead) row.className = "dead";
    cell(row, d.transport);
    cell(row, d.nexthop);
    cell(row, d.active, "num");
    cell(row, d.limit, "num");
    cell(row, d.queued, "num");
    cell(row, d.dead ? "dead: " + d.reason : "ok");
  });
}

function renderDeferrals(st) {
  fillTable("deferrals", st.deferrals, (row, d) => {
    cell(row, new Date(d.time).toLocaleTimeString());
    cell(row, d.queue_id);
    cell(row, d.to);
    cell(row, d.transport);
    cell(row, d.reason);
  });
}

const SVG = "http://www.w3.org/2000/svg";

function svgEl(name, attrs) {
  const el = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

// renderChart draws one line per series over the throughput buckets.
function renderChart(tp) {
  const svg = $("chart");
  const w = 600, h = 160, left = 36, bottom = 18, top = 8;
  const n = tp.delivered.length;
  let max = 1;
  for (const [name] of SERIES) for (const v of tp[name]) max = Math.max(max, v);
  svg.replaceChildren();
  const x = (i) => left + (n <= 1 ? 0 : (i * (w - left - 4)) / (n - 1));
  const y = (v) => h - bottom - (v * (h - bottom - top)) / max;
  svg.appendChild(svgEl("line", { x1: left, y1: y(0), x2: w - 4, y2: y(0), stroke: "#999" }));
  svg.appendChild(svgEl("line", { x1: left, y1: top, x2: left, y2: y(0), stroke: "#999" }));
  const maxLabel = svgEl("text", { x: left - 4, y: top + 10, "text-anchor": "end", "font-size": 10 });
  maxLabel.textContent = String(max);
  svg.appendChild(maxLabel);
  const zero = svgEl("text", { x: left - 4, y: y(0), "text-anchor": "end", "font-size": 10 });
  zero.textContent = "0";
  svg.appendChild(zero);
  const minutes = Math.round((n * tp.interval_seconds) / 60);
  const span = svgEl("text", { x: left, y: h - 4, "font-size": 10 });
  span.textContent = "-" + minutes + " min";
  svg.appendChild(span);
  const nowLabel = svgEl("text", { x: w - 4, y: h - 4, "text-anchor": "end", "font-size": 10 });
  nowLabel.textContent = "now";
  svg.appendChild(nowLabel);
  for (const [name, color] of SERIES) {
    const points = tp[name].map((v, i) => x(i).toFixed(1) + "," + y(v).toFixed(1)).join(" ");
    const line = svgEl("polyline", { points, fill: "none", stroke: color, "stroke-width": 2 });
    line.dataset.series = name;
    svg.appendChild(line);
  }
  text("flow-window", "(messages per " + tp.interval_seconds + " s, last " + minutes + " minutes)");
}

function render(st) {
  renderCluster(st);
  renderQueue(st);
  renderDestinations(st);
  renderDeferrals(st);
  renderChart(st.throughput);
  text("sessions", st.smtpd_sessions);
  text("updated", "updated " + new Date(st.generated).toLocaleTimeString());
}

async function refresh() {
  try {
    const resp = await fetch("status.json", { cache: "no-store" });
    if (!resp.ok) throw new Error("HTTP " + resp.status);
    render(await resp.json());
  } catch (err) {
    const ready = $("ready");
    ready.textContent = "node unreachable: " + err.message;
    ready.className = "badge bad";
  } finally {
    setTimeout(refresh, REFRESH_MS);
  }
}

refresh();
