// The plantkpi dashboard: plain JavaScript, no build step, no external resources.
// It polls the collector's API and redraws. Every number carries a stable data-testid and
// its raw value in data-value, so tests/e2e/test_dashboard.py can compare it with the API.
//
// Two languages, English and Simplified Chinese. Every text a person reads is English in the
// code, written _("…") here (placeholders {name}) or marked data-i18n in index.html, and is
// shown from the catalogue the collector serves at i18n/<lang>.json (the gettext catalogue
// of collector/i18n as JSON). Keep _()'s first argument a plain string literal: that is how
// python -m collector.i18n.extract finds it. Register names come from api/v1/names?lang=.
// Data (ids, codes, numbers, times) is marked translate="no".
"use strict";

const POLL_MS = 5000;
const TREND_S = 3600; // the trend chart shows the last hour of stored windows
const TOKEN_KEY = "plantkpi.token";
const LANG_KEY = "plantkpi.lang";
const SVG = "http://www.w3.org/2000/svg";

// ---- language ---------------------------------------------------------------------------

let LANG = "en";
let TEXTS = { lang: "en", messages: {}, reasons: {}, statuses: {}, scopes: {} };
let NAMES = null; // api/v1/names?lang= : the register's names in LANG
const CATALOGUES = new Map(); // lang → i18n/<lang>.json
const SOURCE = new WeakMap(); // element → {text, attrs: {name: English}} of data-i18n nodes

// The text in the page's language, {placeholders} filled.
function _(text, values) {
  const found = TEXTS.messages[text] || text;
  return values ? fill(found, values) : found;
}

// Marks a text for the catalogue where it is defined; _() translates it where it is shown.
function N_(text) {
  return text;
}

function fill(text, values) {
  return text.replace(/\{(\w+)\}/g, (match, key) => (key in values ? String(values[key]) : match));
}

// A translated text whose placeholders are DOM nodes (numbers with their data-testid):
// parts(_("{n} of {total}"), {n: node, total: node}) → [node, " of ", node].
function parts(text, values) {
  const out = [];
  const re = /\{(\w+)\}/g;
  let last = 0;
  let match;
  while ((match = re.exec(text)) !== null) {
    if (match.index > last) out.push(text.slice(last, match.index));
    out.push(match[1] in values ? values[match[1]] : match[0]);
    last = re.lastIndex;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

function locale() {
  return LANG === "zh" ? "zh-CN" : "en";
}

// "zh", "zh-CN", "zh-Hans" → zh; "en", "en-GB" → en; anything else → null.
function langOf(tag) {
  const lower = String(tag || "").toLowerCase();
  if (lower === "zh" || lower.startsWith("zh-")) return "zh";
  if (lower === "en" || lower.startsWith("en-")) return "en";
  return null;
}

// The language asked for in the address (?lang=zh), else the one chosen on this page before,
// else the browser's: the first of its languages that is Chinese or English.
function initialLang() {
  const asked = langOf(new URLSearchParams(location.search).get("lang"));
  if (asked) return asked;
  let stored = null;
  try {
    stored = langOf(localStorage.getItem(LANG_KEY));
  } catch (err) {
    stored = null; // storage off: the browser's language every time
  }
  if (stored) return stored;
  for (const tag of navigator.languages || [navigator.language]) {
    if (langOf(tag)) return langOf(tag);
  }
  return "en";
}

async function catalogue(lang) {
  if (!CATALOGUES.has(lang)) {
    const response = await fetch("i18n/" + lang + ".json", { cache: "no-store" });
    if (!response.ok) throw new Error("i18n/" + lang + ".json: " + response.status);
    CATALOGUES.set(lang, await response.json());
  }
  return CATALOGUES.get(lang);
}

// Static texts (data-i18n elements, data-i18n-<attribute> attributes) in the page's language;
// the English source is kept from the first pass.
function translateStatic(root) {
  const nodes = [root, ...root.querySelectorAll("*")];
  for (const node of nodes) {
    if (!(node instanceof Element)) continue;
    let source = SOURCE.get(node);
    if (!source) {
      source = { text: null, attrs: {} };
      if (node.hasAttribute("data-i18n")) source.text = node.textContent.split(/\s+/).filter(Boolean).join(" ");
      for (const attr of node.getAttributeNames()) {
        if (!attr.startsWith("data-i18n-")) continue;
        const name = attr.slice("data-i18n-".length);
        if (node.hasAttribute(name)) source.attrs[name] = node.getAttribute(name);
      }
      if (source.text === null && !Object.keys(source.attrs).length) continue;
      SOURCE.set(node, source);
    }
    if (source.text !== null) node.textContent = _(source.text);
    for (const [name, text] of Object.entries(source.attrs)) node.setAttribute(name, _(text));
  }
}

// An element whose text is a catalogue text, re-translated when the language changes:
// tnode("option", {value: "x"}, N_("This month")).
function tnode(tag, attrs, text) {
  const node = el(tag, attrs, text);
  node.setAttribute("data-i18n", "");
  SOURCE.set(node, { text, attrs: {} });
  node.textContent = _(text);
  return node;
}

let LANG_ASKED = 0; // the latest switch wins, whichever catalogue arrives first

async function setLang(lang, remember) {
  const asked = ++LANG_ASKED;
  const [texts, names] = await Promise.all([
    catalogue(lang),
    // Without a token yet (or on a failure) the loop reads them with the data.
    api("names?lang=" + lang).catch(() => null),
  ]);
  if (asked !== LANG_ASKED) return;
  LANG = lang;
  TEXTS = texts;
  if (names) NAMES = names;
  if (remember) {
    try {
      localStorage.setItem(LANG_KEY, lang);
    } catch (err) {
      // storage off: the choice lasts as long as the page
    }
    // A ?lang= in the address would undo the choice on the next reload.
    const url = new URL(location.href);
    if (url.searchParams.has("lang")) {
      url.searchParams.set("lang", lang);
      history.replaceState(null, "", url);
    }
  }
  document.documentElement.lang = locale();
  for (const button of document.querySelectorAll("[data-lang]")) {
    button.setAttribute("aria-pressed", String(button.getAttribute("data-lang") === lang));
  }
  translateStatic(document.documentElement);
  render();
}

// ---- fetching ---------------------------------------------------------------------------

class Unauthorized extends Error {}

function authHeaders(accept) {
  // The API's error messages in the page's language.
  const headers = { Accept: accept, "Accept-Language": locale() };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = "Bearer " + token;
  return headers;
}

async function errorMessage(response) {
  try {
    const body = await response.json();
    const text = body.message || body.detail || String(response.status);
    // An unexpected error's message asks to pass on its id: show it.
    return body.error_id ? text + " (" + body.error_id + ")" : text;
  } catch (err) {
    return String(response.status);
  }
}

async function api(path) {
  // Relative URL: the page works behind a reverse proxy that mounts it under a prefix.
  const response = await fetch("api/v1/" + path, {
    headers: authHeaders("application/json"),
    cache: "no-store",
  });
  if (response.status === 401) throw new Unauthorized(path);
  if (!response.ok) throw new Error(await errorMessage(response));
  return response.json();
}

// ---- small DOM helpers (textContent only: register names are data, never markup) ---------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
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

// A number as text plus its raw value (JSON "null" for an absent rate). Its text is data
// (translate="no") unless it was built with _() (then pass translated = true).
function num(testid, value, text, cls, translated) {
  return el(
    "span",
    {
      "data-testid": testid,
      "data-value": value === null ? "null" : String(value),
      class: cls,
      translate: translated ? null : "no",
    },
    text
  );
}

function data(text, cls) {
  return el("span", { class: cls, translate: "no" }, text);
}

function iso(ns) {
  return new Date(ns / 1e6).toISOString().replace(".000Z", "Z");
}

function clock(ns) {
  return new Date(ns / 1e6).toLocaleTimeString(locale());
}

// ---- register names ---------------------------------------------------------------------

function nameOf(...path) {
  if (!NAMES) return null;
  let items = NAMES.enterprises;
  let found = null;
  for (const [depth, id] of path.entries()) {
    found = (items || []).find((item) => item.id === id) || null;
    if (!found) return null;
    items = [found.plants, found.lines, found.processes][depth];
  }
  return found;
}

// A register entry's name in the reader's language, its id small beside it.
function named(entry, id, nameClass) {
  if (!entry || !entry.name || entry.name === id) return data(id, nameClass);
  return [data(entry.name, "name " + (nameClass || "")), " ", data(id, "id")];
}

// ---- codes ------------------------------------------------------------------------------

function reasonLabel(code) {
  return (TEXTS.reasons[code] && TEXTS.reasons[code].label) || code;
}

function reasonFix(code) {
  return (TEXTS.reasons[code] && TEXTS.reasons[code].fix) || "";
}

function statusLabel(code) {
  return TEXTS.statuses[code] || code;
}

function listSep() {
  return LANG === "zh" ? "、" : ", ";
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
    const names = nameOf(id);
    const counts = [
      ...parts(_("{numerator} of {denominator} key processes digitalized"), {
        numerator: num("numerator-enterprise-" + id, e.numerator, e.numerator),
        denominator: num("denominator-enterprise-" + id, e.denominator, e.denominator),
      }),
    ];
    // No space before a Chinese full-width parenthesis.
    const gap = LANG === "zh" ? "" : " ";
    if (e.not_scheduled) counts.push(gap, _("({count} not scheduled)", { count: e.not_scheduled }));
    if (e.provisional) {
      counts.push(gap, el("span", { "data-testid": "provisional-enterprise-" + id, "data-value": e.provisional },
        _("({count} provisional: data still on its way)", { count: e.provisional })));
    }
    root.append(
      el("div", { class: "panel", "data-testid": "enterprise-" + id },
        el("div", { class: "panel-head" },
          el("h2", {}, names && names.name ? data(names.name, "name") : data(e.name, "name"), " ",
            el("small", {}, data(id), " · ", data(e.region), " · ",
              _("register {version}", { version: e.register_version }))),
          reportForm(id)),
        el("div", { class: "headline" },
          el("div", {}, el("span", { class: "label" }, _("Measured")), " ",
            num("rate-enterprise-" + id, e.observed_rate, pct(e.observed_rate), "big")),
          el("div", { class: "counts" }, ...counts),
          el("div", { class: "declared" }, el("span", { class: "label" }, _("Declared")), " ",
            num("declared-enterprise-" + id, e.declared_rate, pct(e.declared_rate))),
          delta === null ? null : el("div", {}, el("span", { class: "label" }, _("Measured − declared")), " ",
            num("delta-enterprise-" + id, delta,
              _("{points} pts", { points: (delta >= 0 ? "+" : "") + (delta * 100).toFixed(1) }),
              "delta " + (delta < 0 ? "neg" : "pos"), true)),
          regionBox(kpi.rates))));
  }
}

function regionBox(rates) {
  const official = rates.find((r) => r.scope === "region_official" && r.industry === "all");
  if (!official) return null;
  return el("div", { class: "counts" },
    ...parts(_("Region {region}, official mean (enterprises above designated size): {rate}"), {
      region: data(official.scope_id),
      rate: num("rate-region-" + official.scope_id, official.rate, pct(official.rate)),
    }));
}

const STATUS_COLOURS = {
  DIGITALIZED: "background:var(--ok)",
  NOT_DIGITALIZED: "background:var(--bad)",
  NOT_SCHEDULED: "background:var(--off)",
  PROVISIONAL: "background:var(--off);border:1px dashed var(--bad)",
};

function renderPlants(kpi, processes) {
  const root = document.getElementById("plants");
  root.replaceChildren();
  // Plants and lines in the order the API lists the processes (register order).
  const plants = new Map();
  for (const p of processes) {
    if (!plants.has(p.plant_id)) plants.set(p.plant_id, { enterprise: p.enterprise_id, lines: new Map() });
    const lines = plants.get(p.plant_id).lines;
    if (!lines.has(p.line_id)) lines.set(p.line_id, []);
    lines.get(p.line_id).push(p);
  }
  for (const [plant, { enterprise, lines }] of plants) {
    const rate = rateOf(kpi.rates, "plant", plant);
    const panel = el("div", { class: "panel", "data-testid": "plant-" + plant },
      el("h3", {}, named(nameOf(enterprise, plant), plant),
        rate ? num("rate-plant-" + plant, rate.rate, pct(rate.rate), "plant-rate") : null,
        rate ? el("small", {}, "  ",
          num("numerator-plant-" + plant, rate.numerator, rate.numerator), " / ",
          num("denominator-plant-" + plant, rate.denominator, rate.denominator)) : null),
      el("div", { class: "legend" },
        ...Object.entries(STATUS_COLOURS).map(([code, style]) =>
          el("span", { title: code }, el("i", { style }), statusLabel(code)))));
    for (const [line, procs] of lines) {
      const lr = rateOf(kpi.rates, "line", line, plant);
      const key = plant + "-" + line;
      panel.append(el("div", { class: "line" },
        el("div", { class: "line-head" }, el("span", {}, named(nameOf(enterprise, plant, line), line)),
          lr ? el("span", {}, num("rate-line-" + key, lr.rate, pct(lr.rate)), "  (",
            num("numerator-line-" + key, lr.numerator, lr.numerator), " / ",
            num("denominator-line-" + key, lr.denominator, lr.denominator), ")") : null),
        el("div", { class: "procs" }, ...procs.map(processChip))));
    }
    root.append(panel);
  }
  if (!plants.size) root.append(el("div", { class: "panel empty" }, _("No key process evaluated yet")));
}

function outageText(o, startNs) {
  // "opc1 down 35.2–58.8 s into the window" (seconds into the window).
  const down = ((o.down_ns - startNs) / 1e9).toFixed(1);
  if (!o.up_ns) return _("{source} down from {down} s on", { source: o.source, down });
  const up = ((o.up_ns - startNs) / 1e9).toFixed(1);
  return _("{source} down {down}–{up} s", { source: o.source, down, up });
}

function processChip(p) {
  const entry = nameOf(p.enterprise_id, p.plant_id, p.line_id, p.process_id);
  const outages = (p.outages || []).map((o) => [outageText(o, p.window.start_ns), o.detail]);
  // The tooltip: name and id, status, each reason with its code and what to fix, equipment,
  // the source outages. What an outage's source said (the edge's own words, data) has its own
  // mark, on the first outage.
  const tip = [
    (entry && entry.name ? entry.name + " · " : "") + p.process_id,
    statusLabel(p.status) + " [" + p.status + "]",
    ...p.reasons.map((code) => reasonLabel(code) + " [" + code + "]: " + reasonFix(code)),
    entry && entry.equipment ? _("Equipment: {equipment}", { equipment: entry.equipment }) : null,
    ...outages.map(([text]) => text),
  ].filter(Boolean);
  const more = outages.length - 1 + (p.outages_more || 0);
  return el("span", {
      class: "proc " + p.status, "data-testid": "process-" + p.process_id, "data-value": p.status,
      title: tip.join("\n"),
    },
    named(entry, p.process_id),
    p.reasons.length ? el("span", { class: "reasons", "data-testid": "reasons-" + p.process_id,
      "data-value": p.reasons.join(",") },
      ...p.reasons.flatMap((code, i) => [i ? listSep() : null,
        el("span", { class: "reason", title: code + ": " + reasonFix(code) }, reasonLabel(code))])) : null,
    p.status !== "DIGITALIZED" && outages.length ? el("span", { class: "outage",
      "data-testid": "outage-" + p.process_id }, outages[0][0],
      outages[0][1] ? [" ", el("span", { class: "detail", translate: "no", title: outages[0][1] }, "ⓘ")] : null,
      more > 0 ? " " + _("(+{count} more outages)", { count: more }) : null) : null);
}

function renderPareto(reasons) {
  const root = document.getElementById("pareto");
  root.replaceChildren();
  const entries = Object.entries(reasons || {}).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  if (!entries.length) {
    root.append(el("div", { class: "empty" }, _("Every key process counts")));
    return;
  }
  const max = entries[0][1];
  for (const [code, count] of entries) {
    root.append(el("div", { class: "bar-row", title: code + ": " + reasonFix(code) },
      el("span", { class: "reason-label" }, reasonLabel(code), " ", data(code, "code")),
      el("div", { class: "bar", style: `width:${(100 * count) / max}%` }),
      num("pareto-" + code, count, count)));
  }
}

function renderTrend(history, declared) {
  const root = document.getElementById("trend");
  root.replaceChildren();
  const points = history.points.filter((p) => p.rate !== null && p.rate !== undefined);
  const entry = history.scope === "enterprise" ? nameOf(history.scope_id) : null;
  document.getElementById("trend-scope").replaceChildren(
    ...parts(_("({scope}: {count} stored windows)"), {
      scope: data(entry && entry.name ? entry.name : history.scope_id),
      count: points.length,
    }));
  root.setAttribute("data-value", String(points.length));
  const W = 640, H = 220, L = 44, R = 10, T = 10, B = 26;
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, width: "100%", role: "img",
    "aria-label": _("Rate over time") });
  // The time axis spans the stored points (a young collector has minutes, not the hour).
  const t0 = points.length ? points[0].time_ns : history.start_ns;
  const t1 = Math.max(points.length ? points[points.length - 1].time_ns : history.end_ns, t0 + 60e9);
  const x = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - R);
  const y = (r) => T + (1 - r) * (H - T - B);
  for (const tick of [0, 0.25, 0.5, 0.75, 1]) {
    chart.append(svg("line", { x1: L, x2: W - R, y1: y(tick), y2: y(tick), stroke: "#e3e6ea" }));
    const label = svg("text", { x: L - 6, y: y(tick) + 4, "text-anchor": "end", translate: "no" });
    label.textContent = tick * 100 + " %";
    chart.append(label);
  }
  for (const [t, anchor] of [[t0, "start"], [t1, "end"]]) {
    const label = svg("text", { x: x(t), y: H - 6, "text-anchor": anchor, translate: "no" });
    label.textContent = clock(t);
    chart.append(label);
  }
  if (declared !== null && declared !== undefined) {
    chart.append(svg("line", { x1: L, x2: W - R, y1: y(declared), y2: y(declared),
      stroke: "#8a8f98", "stroke-dasharray": "6 4" }));
    const label = svg("text", { x: W - R, y: y(declared) - 4, "text-anchor": "end" });
    label.textContent = _("Declared {rate}", { rate: pct(declared) });
    chart.append(label);
  }
  if (points.length) {
    const path = points.map((p) => `${x(p.time_ns).toFixed(1)},${y(p.rate).toFixed(1)}`).join(" ");
    chart.append(svg("polyline", { points: path, fill: "none", stroke: "#1f5fbf", "stroke-width": 2 }));
    const last = points[points.length - 1];
    chart.append(svg("circle", { cx: x(last.time_ns), cy: y(last.rate), r: 3.5, fill: "#1f5fbf" }));
  } else {
    const label = svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle" });
    label.textContent = _("No stored windows yet");
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
      el("td", { class: "edge" }, data(key)),
      el("td", { class: "plant" }, named(nameOf(e.enterprise, e.plant), e.plant)),
      el("td", { class: e.online ? "on" : "off" },
        num("edge-online-" + key, e.online, e.online ? _("Online") : _("Offline"), null, true)),
      el("td", { class: "seen" }, num("edge-last-seen-" + key, e.last_seen_ns,
        e.last_seen_ns
          ? _("{time} ({seconds} s ago)", { time: clock(e.last_seen_ns), seconds: e.seconds_since_seen.toFixed(0) })
          : _("Never"), null, true)),
      el("td", {}, num("edge-buffer-" + key, depth, depth === null ? "—" : depth)),
      el("td", {}, num("edge-dropped-" + key, dropped, dropped === null ? "—" : dropped)),
      el("td", {}, num("edge-gaps-" + key, e.seq_gaps, e.seq_gaps)),
      el("td", { class: "problems" }, problemList("edge-problems-" + key, (e.health && e.health.problems) || []))));
  }
  if (!keys.length) body.append(el("tr", {}, el("td", { colspan: 8, class: "empty" }, _("No edge agent seen yet"))));
}

// What the edge's health verdict says is wrong (a signal never delivered, a source down): the
// first lines as the edge wrote them (data, in the edge's words), and how many in all.
function problemList(testid, problems) {
  const shown = problems.slice(0, 3).map((line) => el("div", { translate: "no", title: line }, line));
  if (problems.length > 3) shown.push(el("div", {}, _("+{count} more", { count: problems.length - 3 })));
  return el("span", { "data-testid": testid, "data-value": String(problems.length) },
    problems.length ? el("div", { class: "problem-count" },
      problems.length === 1 ? _("1 problem") : _("{count} problems", { count: problems.length })) : null,
    ...(shown.length ? shown : ["—"]));
}

// The status: a catalogue text and its values, shown again when the language changes.
let STATUS = { text: N_("Loading…"), values: null, state: "loading", at: null };

function setStatus(text, values, state) {
  STATUS = { text, values, state, at: null };
  showStatus();
}

function showStatus() {
  const node = document.querySelector('[data-testid="status"]');
  // "updated at" in the page's language: kept as a time, formatted when shown.
  const values = STATUS.at ? { time: new Date(STATUS.at).toLocaleTimeString(locale()) } : STATUS.values;
  node.textContent = _(STATUS.text, values || undefined);
  node.setAttribute("data-value", STATUS.state);
  node.className = "status" + (STATUS.state === "error" ? " error" : "");
}

// ---- the report ---------------------------------------------------------------------------

// One form per enterprise, kept across redraws (what is being typed survives the poll).
const REPORT_FORMS = new Map();

const PERIODS = [
  ["this-month", N_("This month")],
  ["last-month", N_("Last month")],
  ["this-quarter", N_("This quarter")],
  ["this-year", N_("This year")],
  ["dates", N_("From … to …")],
];

function pad(n) {
  return String(n).padStart(2, "0");
}

function dateText(d) {
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

// ISO 8601 with the browser's time zone offset: the period is the reader's local one.
function localIso(d) {
  const offset = -Math.round(d.getTimezoneOffset()); // whole minutes (old dates have LMT seconds)
  const sign = offset >= 0 ? "+" : "-";
  const abs = Math.abs(offset);
  return `${dateText(d)}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}` +
    `${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

// [start, end) of a calendar period in local time (the whole period, also one not over yet:
// the report says what is stored so far); "dates": from the first day to the last, included.
function reportRange(period, from, to, now) {
  const y = now.getFullYear(), m = now.getMonth();
  let start, end;
  if (period === "this-month") [start, end] = [new Date(y, m, 1), new Date(y, m + 1, 1)];
  else if (period === "last-month") [start, end] = [new Date(y, m - 1, 1), new Date(y, m, 1)];
  else if (period === "this-quarter") [start, end] = [new Date(y, m - (m % 3), 1), new Date(y, m - (m % 3) + 3, 1)];
  else if (period === "this-year") [start, end] = [new Date(y, 0, 1), new Date(y + 1, 0, 1)];
  else {
    const a = /^(\d{4})-(\d{2})-(\d{2})$/.exec(from || "");
    const b = /^(\d{4})-(\d{2})-(\d{2})$/.exec(to || "");
    if (!a || !b) return null;
    start = new Date(+a[1], +a[2] - 1, +a[3]);
    end = new Date(+b[1], +b[2] - 1, +b[3] + 1); // the "to" day included
  }
  return { start, end };
}

// The file name a Content-Disposition header gives (RFC 6266: filename* first).
function filenameOf(header, fallback) {
  if (!header) return fallback;
  const extended = /filename\*\s*=\s*([\w-]+)''([^;]+)/i.exec(header);
  if (extended) {
    try {
      return decodeURIComponent(extended[2].trim());
    } catch (err) {
      // a broken encoding: try the plain name
    }
  }
  const quoted = /filename\s*=\s*"([^"]*)"/i.exec(header);
  if (quoted) return quoted[1];
  const bare = /filename\s*=\s*([^;\s]+)/i.exec(header);
  return bare ? bare[1] : fallback;
}

function reportForm(enterprise) {
  if (REPORT_FORMS.has(enterprise)) return REPORT_FORMS.get(enterprise);
  const period = el("select", { name: "period", "data-testid": "report-period-" + enterprise },
    ...PERIODS.map(([value, text]) => tnode("option", { value }, text)));
  const today = new Date();
  const from = el("input", { type: "date", name: "from", value: dateText(new Date(today.getFullYear(), today.getMonth(), 1)) });
  const to = el("input", { type: "date", name: "to", value: dateText(today) });
  const dates = el("span", { class: "dates", hidden: true },
    el("label", {}, tnode("span", {}, N_("From")), " ", from), " ",
    el("label", {}, tnode("span", {}, N_("To (included)")), " ", to));
  period.addEventListener("change", () => {
    dates.hidden = period.value !== "dates";
  });
  const format = el("span", { class: "formats", role: "radiogroup", "data-testid": "report-format-" + enterprise },
    el("label", { translate: "no" }, el("input", { type: "radio", name: "format", value: "pdf", checked: true }), "PDF"),
    el("label", { translate: "no" }, el("input", { type: "radio", name: "format", value: "xlsx" }), "XLSX"));
  const button = tnode("button", { type: "submit", "data-testid": "report-download-" + enterprise }, N_("Download"));
  const message = el("div", { class: "report-message", role: "status", "data-testid": "report-message-" + enterprise, "data-value": "" });
  const form = el("form", { class: "report-form" },
    el("label", {}, tnode("span", {}, N_("Period")), " ", period), " ", dates, " ", format, " ", button, message);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const chosen = form.querySelector('input[name="format"]:checked').value;
    downloadReport(enterprise, reportRange(period.value, from.value, to.value, new Date()), chosen, button, message);
  });
  const box = el("details", { class: "report", "data-testid": "report-" + enterprise },
    tnode("summary", {}, N_("Report")), form);
  REPORT_FORMS.set(enterprise, box);
  return box;
}

function showMessage(node, state, text) {
  node.textContent = text;
  node.setAttribute("data-value", state);
  node.className = "report-message " + state;
}

// Asks the API for the report with the page's token, and saves the answer as a file.
async function downloadReport(enterprise, range, format, button, message) {
  if (!range || range.end <= range.start) {
    showMessage(message, "error", _("Choose a start date before the end date."));
    return;
  }
  const query = new URLSearchParams({
    enterprise, start: localIso(range.start), end: localIso(range.end), format, lang: LANG,
  });
  button.disabled = true;
  showMessage(message, "busy", _("Preparing the report…"));
  try {
    const response = await fetch("api/v1/report-doc?" + query, {
      headers: authHeaders(format === "pdf" ? "application/pdf" : "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
      cache: "no-store",
    });
    if (!response.ok) {
      showMessage(message, "error", await errorMessage(response));
      return;
    }
    const blob = await response.blob();
    const name = filenameOf(response.headers.get("Content-Disposition"), "report-" + enterprise + "." + format);
    const url = URL.createObjectURL(blob);
    const link = el("a", { href: url, download: name, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
    showMessage(message, "ok", _("Saved {name}", { name }));
    message.setAttribute("data-file", name);
  } catch (err) {
    showMessage(message, "error", _("The report could not be fetched: {error}", { error: err.message }));
  } finally {
    button.disabled = false;
  }
}

// ---- the loop ---------------------------------------------------------------------------

let STATE = null; // the last answers of the API, drawn again when the language changes

function render() {
  showStatus();
  if (!STATE) return;
  const { kpi, procs, ents, edges, history } = STATE;
  const enterprises = ents.enterprises;
  renderEnterprises(enterprises, kpi);
  renderPlants(kpi, procs.processes);
  // The Pareto of every enterprise shown, summed (region rates may span other registers).
  const pareto = {};
  for (const r of kpi.rates) {
    if (r.scope !== "enterprise" || r.industry !== "all") continue;
    for (const [code, n] of Object.entries(r.reasons)) pareto[code] = (pareto[code] || 0) + n;
  }
  renderPareto(pareto);
  if (history) renderTrend(history, enterprises[0].declared_rate);
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
  // Which language the data was last drawn in (tests wait for it).
  document.documentElement.setAttribute("data-rendered", LANG);
}

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
  // The names again when a register changed (or were not readable before a token was given).
  const lang = LANG;
  const versions = (list) => list.map((e) => (e.enterprise_id || e.id) + "@" + e.register_version).sort().join(" ");
  if (!NAMES || NAMES.lang !== lang || versions(NAMES.enterprises) !== versions(enterprises)) {
    const names = await api("names?lang=" + lang);
    if (lang === LANG) NAMES = names;
  }
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
  STATE = { kpi, procs, ents, edges, history };
  STATUS = { text: N_("Live · updated {time}"), values: null, state: "ok", at: Date.now() };
  render();
}

async function tick() {
  try {
    await refresh();
  } catch (err) {
    if (err instanceof Unauthorized) {
      // Tokens are configured: ask once, keep it for this browser tab only.
      sessionStorage.removeItem(TOKEN_KEY);
      const token = window.prompt(_("This collector needs an API token (COLLECTOR_API__TOKENS):"));
      if (token) {
        sessionStorage.setItem(TOKEN_KEY, token.trim());
        return tick();
      }
      setStatus(N_("Needs an API token (reload to enter one)"), null, "error");
      return;
    }
    setStatus(N_("Update failed: {error}"), { error: err.message }, "error");
  }
  setTimeout(tick, POLL_MS);
}

async function start() {
  for (const button of document.querySelectorAll("[data-lang]")) {
    button.addEventListener("click", () => {
      setLang(button.getAttribute("data-lang"), true).catch((err) =>
        setStatus(N_("Update failed: {error}"), { error: err.message }, "error"));
    });
  }
  try {
    await setLang(initialLang(), false);
  } catch (err) {
    // No catalogue (or no names): the page in English; the loop says what fails.
    translateStatic(document.documentElement);
  }
  tick();
}

start();
