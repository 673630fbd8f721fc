// The plantkpi dashboard: plain JavaScript, no build step, no external resources.
// It polls the collector's API and redraws. Every number carries a stable data-testid and
// its raw value in data-value, so tests/e2e/test_dashboard.py can compare it with the API.
"use strict";

const POLL_MS = 5000;
const TREND_S = 3600; // the trend chart shows the last hour of stored windows
const TOKEN_KEY = "plantkpi.token";
const SVG = "http://www.w3.org/2000/svg";

// ---- fetching ---------------------------------------------------------------------------

class Unauthorized extends Error {}

async function api(path) {
  const headers = { Accept: "application/json" };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = "Bearer " + token;
  // Relative URL: the page works behind a reverse proxy that mounts it under a prefix.
  const response = await fetch("api/v1/" + path, { headers, cache: "no-store" });
  if (response.status === 401) throw new Unauthorized(path);
  const body = await response.json();
  if (!response.ok) throw new Error(path + ": " + (body.detail || response.status));
  return body;
}

// ---- small DOM helpers (textContent only: register names are data, never markup) ---------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null) continue;
    if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
  return node;
}

function pct(rate) {
  return rate === null || rate === undefined ? "—" : (rate * 100).toFixed(1) + " %";
}

// A number as text plus its raw value (JSON "null" for an absent rate).
function num(testid, value, text, cls) {
  return el(
    "span",
    { "data-testid": testid, "data-value": value === null ? "null" : String(value), class: cls },
    text
  );
}

function iso(ns) {
  return new Date(ns / 1e6).toISOString().replace(".000Z", "Z");
}

function clock(ns) {
  return new Date(ns / 1e6).toLocaleTimeString();
}

// ---- rendering --------------------------------------------------------------------------

function rateOf(rates, scope, id, plant) {
  return rates.find(
    (r) =>
      r.scope === scope && r.scope_id === id && r.industry === "all" &&
      (plant === undefined || r.plant_id === plant)
  );
}

function renderEnterprises(enterprises, kpi) {
  const root = document.getElementById("enterprises");
  root.replaceChildren();
  for (const e of enterprises) {
    const id = e.enterprise_id;
    const delta = e.observed_minus_declared;
    root.append(
      el("div", { class: "panel", "data-testid": "enterprise-" + id },
        el("h2", {}, e.name + " ", el("small", {}, id + " · " + e.region + " · register " + e.register_version)),
        el("div", { class: "headline" },
          el("div", {}, "measured ",
            num("rate-enterprise-" + id, e.observed_rate, pct(e.observed_rate), "big")),
          el("div", { class: "counts" },
            num("numerator-enterprise-" + id, e.numerator, e.numerator), " of ",
            num("denominator-enterprise-" + id, e.denominator, e.denominator),
            " key processes digitalized",
            e.not_scheduled ? ` (${e.not_scheduled} not scheduled)` : "",
            e.provisional ? el("span", { "data-testid": "provisional-enterprise-" + id,
              "data-value": e.provisional }, ` (${e.provisional} provisional: data still on its way)`) : null),
          el("div", { class: "declared" }, "declared ",
            num("declared-enterprise-" + id, e.declared_rate, pct(e.declared_rate))),
          delta === null ? null : el("div", {}, "measured − declared ",
            num("delta-enterprise-" + id, delta,
              (delta >= 0 ? "+" : "") + (delta * 100).toFixed(1) + " pts",
              "delta " + (delta < 0 ? "neg" : "pos"))),
          regionBox(kpi.rates))));
  }
}

function regionBox(rates) {
  const official = rates.find((r) => r.scope === "region_official" && r.industry === "all");
  if (!official) return null;
  return el("div", { class: "counts" }, "region " + official.scope_id + " (official mean) ",
    num("rate-region-" + official.scope_id, official.rate, pct(official.rate)));
}

function renderPlants(kpi, processes, enterprises) {
  const root = document.getElementById("plants");
  root.replaceChildren();
  // Plants and lines in the order the API lists the processes (register order).
  const plants = new Map();
  for (const p of processes) {
    if (!plants.has(p.plant_id)) plants.set(p.plant_id, new Map());
    const lines = plants.get(p.plant_id);
    if (!lines.has(p.line_id)) lines.set(p.line_id, []);
    lines.get(p.line_id).push(p);
  }
  for (const [plant, lines] of plants) {
    const rate = rateOf(kpi.rates, "plant", plant);
    const panel = el("div", { class: "panel", "data-testid": "plant-" + plant },
      el("h3", {}, "Plant " + plant,
        rate ? num("rate-plant-" + plant, rate.rate, pct(rate.rate), "plant-rate") : null,
        rate ? el("small", {}, "  ",
          num("numerator-plant-" + plant, rate.numerator, rate.numerator), " / ",
          num("denominator-plant-" + plant, rate.denominator, rate.denominator)) : null),
      el("div", { class: "legend" },
        el("span", {}, el("i", { style: "background:var(--ok)" }), "digitalized"),
        el("span", {}, el("i", { style: "background:var(--bad)" }), "not digitalized"),
        el("span", {}, el("i", { style: "background:var(--off)" }), "not scheduled"),
        el("span", {}, el("i", { style: "background:var(--off);border:1px dashed var(--bad)" }),
          "provisional (data still on its way)")));
    for (const [line, procs] of lines) {
      const lr = rateOf(kpi.rates, "line", line, plant);
      const key = plant + "-" + line;
      panel.append(el("div", { class: "line" },
        el("div", { class: "line-head" }, "Line " + line,
          lr ? el("span", {}, num("rate-line-" + key, lr.rate, pct(lr.rate)), "  (",
            num("numerator-line-" + key, lr.numerator, lr.numerator), " / ",
            num("denominator-line-" + key, lr.denominator, lr.denominator), ")") : null),
        el("div", { class: "procs" }, ...procs.map(processChip))));
    }
    root.append(panel);
  }
  if (!plants.size) root.append(el("div", { class: "panel empty" }, "no key processes evaluated yet"));
}

function outageText(o, startNs) {
  // "opc1: connection lost: transport lost, 35.2–58.8 s" (seconds into the window).
  const down = ((o.down_ns - startNs) / 1e9).toFixed(1);
  const span = o.up_ns ? down + "–" + ((o.up_ns - startNs) / 1e9).toFixed(1) + " s" : "from " + down + " s on";
  return o.source + ": " + (o.detail || "lost") + ", " + span;
}

function processChip(p) {
  const reasons = p.reasons.join(", ");
  const outages = (p.outages || []).map((o) => outageText(o, p.window.start_ns));
  return el("span", {
      class: "proc " + p.status, "data-testid": "process-" + p.process_id, "data-value": p.status,
      title: p.status + (reasons ? ": " + reasons : "") + (outages.length ? "\n" + outages.join("\n") : ""),
    },
    p.process_id,
    reasons ? el("span", { class: "reasons", "data-testid": "reasons-" + p.process_id,
      "data-value": p.reasons.join(",") }, reasons) : null,
    p.status !== "DIGITALIZED" && outages.length ? el("span", { class: "outage",
      "data-testid": "outage-" + p.process_id }, outages[0] +
      (outages.length > 1 ? ` (+${outages.length - 1 + (p.outages_more || 0)} more)` : "")) : null);
}

function renderPareto(reasons) {
  const root = document.getElementById("pareto");
  root.replaceChildren();
  const entries = Object.entries(reasons || {}).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  if (!entries.length) {
    root.append(el("div", { class: "empty" }, "every key process counts"));
    return;
  }
  const max = entries[0][1];
  for (const [code, count] of entries) {
    root.append(el("div", { class: "bar-row" },
      el("span", {}, code),
      el("div", { class: "bar", style: `width:${(100 * count) / max}%` }),
      num("pareto-" + code, count, count)));
  }
}

function renderTrend(history, declared) {
  const root = document.getElementById("trend");
  root.replaceChildren();
  const points = history.points.filter((p) => p.rate !== null && p.rate !== undefined);
  document.getElementById("trend-scope").textContent =
    `(${history.scope} ${history.scope_id}, ${points.length} stored windows)`;
  root.setAttribute("data-value", String(points.length));
  const W = 640, H = 220, L = 44, R = 10, T = 10, B = 26;
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, width: "100%", role: "img",
    "aria-label": "rate over time" });
  // The time axis spans the stored points (a young collector has minutes, not the hour).
  const t0 = points.length ? points[0].time_ns : history.start_ns;
  const t1 = Math.max(points.length ? points[points.length - 1].time_ns : history.end_ns, t0 + 60e9);
  const x = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - R);
  const y = (r) => T + (1 - r) * (H - T - B);
  for (const tick of [0, 0.25, 0.5, 0.75, 1]) {
    chart.append(svg("line", { x1: L, x2: W - R, y1: y(tick), y2: y(tick), stroke: "#e3e6ea" }));
    const label = svg("text", { x: L - 6, y: y(tick) + 4, "text-anchor": "end" });
    label.textContent = tick * 100 + " %";
    chart.append(label);
  }
  for (const [t, anchor] of [[t0, "start"], [t1, "end"]]) {
    const label = svg("text", { x: x(t), y: H - 6, "text-anchor": anchor });
    label.textContent = clock(t);
    chart.append(label);
  }
  if (declared !== null && declared !== undefined) {
    chart.append(svg("line", { x1: L, x2: W - R, y1: y(declared), y2: y(declared),
      stroke: "#8a8f98", "stroke-dasharray": "6 4" }));
    const label = svg("text", { x: W - R, y: y(declared) - 4, "text-anchor": "end" });
    label.textContent = "declared " + pct(declared);
    chart.append(label);
  }
  if (points.length) {
    const path = points.map((p) => `${x(p.time_ns).toFixed(1)},${y(p.rate).toFixed(1)}`).join(" ");
    chart.append(svg("polyline", { points: path, fill: "none", stroke: "#1f5fbf", "stroke-width": 2 }));
    const last = points[points.length - 1];
    chart.append(svg("circle", { cx: x(last.time_ns), cy: y(last.rate), r: 3.5, fill: "#1f5fbf" }));
  } else {
    const label = svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle" });
    label.textContent = "no stored windows yet";
    chart.append(label);
  }
  root.append(chart);
}

function renderEdges(edges) {
  const body = document.querySelector("#edges tbody");
  body.replaceChildren();
  const keys = Object.keys(edges).sort();
  for (const key of keys) {
    const e = edges[key];
    const buffer = (e.health && e.health.buffer) || {};
    const depth = buffer.depth ?? null;
    const dropped = buffer.dropped ?? null;
    body.append(el("tr", { "data-testid": "edge-" + key },
      el("td", {}, key),
      el("td", {}, e.plant),
      el("td", { class: e.online ? "on" : "off" },
        num("edge-online-" + key, e.online, e.online ? "online" : "offline")),
      el("td", {}, num("edge-last-seen-" + key, e.last_seen_ns,
        e.last_seen_ns ? clock(e.last_seen_ns) + ` (${e.seconds_since_seen.toFixed(0)} s ago)` : "never")),
      el("td", {}, num("edge-buffer-" + key, depth, depth === null ? "—" : depth)),
      el("td", {}, num("edge-dropped-" + key, dropped, dropped === null ? "—" : dropped)),
      el("td", {}, num("edge-gaps-" + key, e.seq_gaps, e.seq_gaps)),
      el("td", { class: "problems" }, problemList("edge-problems-" + key, (e.health && e.health.problems) || []))));
  }
  if (!keys.length) body.append(el("tr", {}, el("td", { colspan: 8, class: "empty" }, "no edge agent seen yet")));
}

// What the edge's health verdict says is wrong (a signal never delivered, a source down):
// the first lines, and how many in all.
function problemList(testid, problems) {
  const shown = problems.slice(0, 3).map((line) => el("div", {}, line));
  if (problems.length > 3) shown.push(el("div", {}, `+${problems.length - 3} more`));
  return el("span", { "data-testid": testid, "data-value": String(problems.length) },
    ...(shown.length ? shown : ["—"]));
}

function setStatus(text, state) {
  const node = document.querySelector('[data-testid="status"]');
  node.textContent = text;
  node.setAttribute("data-value", state);
  node.className = "status" + (state === "error" ? " error" : "");
}

// ---- the loop ---------------------------------------------------------------------------

async function refresh() {
  // Three reads of the current evaluation: if one ran between them, read again, so that the
  // page never shows rates of one evaluation beside process statuses of another.
  let kpi, procs, ents, edges;
  for (let attempt = 0; attempt < 3; attempt++) {
    [kpi, procs, ents, edges] = await Promise.all([
      api("kpi"), api("processes"), api("enterprises"), api("edges"),
    ]);
    const end = kpi.window.end_ns;
    if (procs.window.end_ns === end && ents.window.end_ns === end) break;
  }
  const enterprises = ents.enterprises;
  const first = enterprises[0];
  let history = null;
  if (first) {
    const now = Date.now() * 1e6;
    // end a minute ahead: the newest stored point is stamped with its window's end.
    const query = new URLSearchParams({
      scope: "enterprise", scope_id: first.enterprise_id, resolution: "window",
      start: iso(now - TREND_S * 1e9), end: iso(now + 60e9),
    });
    history = await api("history?" + query);
  }
  renderEnterprises(enterprises, kpi);
  renderPlants(kpi, procs.processes, enterprises);
  // The Pareto of every enterprise shown, summed (region rates may span other registers).
  const pareto = {};
  for (const r of kpi.rates) {
    if (r.scope !== "enterprise" || r.industry !== "all") continue;
    for (const [code, n] of Object.entries(r.reasons)) pareto[code] = (pareto[code] || 0) + n;
  }
  renderPareto(pareto);
  if (history) renderTrend(history, first.declared_rate);
  renderEdges(edges.edges);
  const win = document.querySelector('[data-testid="window"]');
  win.textContent = `${clock(kpi.window.start_ns)} – ${clock(kpi.window.end_ns)}`;
  win.setAttribute("data-value", String(kpi.window.end_ns));
  const at = document.querySelector('[data-testid="computed-at"]');
  at.textContent = clock(kpi.computed_at_ns);
  at.setAttribute("data-value", String(kpi.computed_at_ns));
  // The processes' window: a test tells from it that the page shows one evaluation.
  const pw = document.querySelector('[data-testid="processes-window"]');
  pw.setAttribute("data-value", String(procs.window.end_ns));
  setStatus("live · updated " + new Date().toLocaleTimeString(), "ok");
}

async function tick() {
  try {
    await refresh();
  } catch (err) {
    if (err instanceof Unauthorized) {
      // Tokens are configured: ask once, keep it for this browser tab only.
      sessionStorage.removeItem(TOKEN_KEY);
      const token = window.prompt("This collector needs an API token (COLLECTOR_API__TOKENS):");
      if (token) {
        sessionStorage.setItem(TOKEN_KEY, token.trim());
        return tick();
      }
      setStatus("needs an API token (reload to enter one)", "error");
      return;
    }
    setStatus("update failed: " + err.message, "error");
  }
  setTimeout(tick, POLL_MS);
}

tick();
