// skylan console: the little JavaScript the server-rendered pages need.
// htmx does requests and swaps; this file clears and resets forms, copies
// join commands, keeps live sections from refreshing under the user's hands,
// and draws the traffic charts with uPlot from the REST API's statistics.
"use strict";

// A live section skips its timed refresh while someone is editing inside it.
window.skylanQuiet = function (id) {
  const el = document.getElementById(id);
  if (!el) return true;
  if (el.querySelector("details[open]")) return false;
  return !el.contains(document.activeElement) || document.activeElement === document.body;
};

document.addEventListener("htmx:beforeRequest", (ev) => {
  const form = ev.detail.elt.closest ? ev.detail.elt.closest("form") : null;
  if (form && ev.detail.requestConfig.verb !== "get") {
    form.querySelectorAll(".error").forEach((p) => { p.textContent = ""; });
  }
  if (ev.detail.requestConfig.verb !== "get") {
    const flash = document.getElementById("flash");
    if (flash) { flash.textContent = ""; flash.className = "flash"; }
  }
});

document.addEventListener("htmx:afterRequest", (ev) => {
  const elt = ev.detail.elt;
  if (ev.detail.successful && elt.tagName === "FORM" && elt.hasAttribute("data-reset")
      && ev.detail.requestConfig.verb !== "get") {
    elt.reset();
  }
});

// The server could not be reached at all (not an API refusal).
document.addEventListener("htmx:sendError", () => {
  const flash = document.getElementById("flash");
  if (flash) { flash.textContent = "The controller did not answer; retrying on the next refresh."; flash.className = "flash error"; }
});

document.addEventListener("click", (ev) => {
  const btn = ev.target.closest("[data-copy]");
  if (!btn) return;
  const source = document.querySelector(btn.getAttribute("data-copy"));
  if (!source) return;
  const text = source.textContent.trim();
  const done = () => { btn.textContent = "Copied"; setTimeout(() => { btn.textContent = "Copy"; }, 2000); };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done, () => selectText(source));
  } else {
    selectText(source);
  }
});

function selectText(el) {
  const range = document.createRange();
  range.selectNodeContents(el);
  const sel = window.getSelection();
  sel.removeAllRanges();
  sel.addRange(range);
}

// -- charts -------------------------------------------------------------------

const CHART_REFRESH_MS = 10000;

function unit(kind) { return kind === "packets" ? "packets/s" : "bit/s"; }

function human(value, kind) {
  const suffixes = kind === "packets" ? ["", "k", "M", "G"] : ["", "k", "M", "G", "T"];
  let v = value, i = 0;
  while (Math.abs(v) >= 1000 && i < suffixes.length - 1) { v /= 1000; i++; }
  return (i === 0 ? v.toFixed(0) : v.toFixed(1)) + " " + suffixes[i] + unit(kind);
}

// Per-minute buckets -> per-second rates, with silent minutes as zero; the
// current minute is still filling, so it is divided by the seconds so far.
// Axis ticks: short numbers (the unit is in the chart's legend and summary).
function compact(value) {
  const suffixes = ["", "k", "M", "G", "T"];
  let v = value, i = 0;
  while (Math.abs(v) >= 1000 && i < suffixes.length - 1) { v /= 1000; i++; }
  return (Number.isInteger(v) ? v.toFixed(0) : v.toPrecision(3).replace(/\.?0+$/, "")) + suffixes[i];
}

function series(buckets, minutes, kind) {
  const now = Date.now() / 1000;
  const current = Math.floor(now / 60);
  const elapsed = Math.max(now - current * 60, 10);
  const byMinute = new Map(buckets.map((b) => [b.minute, b]));
  const xs = [], rx = [], tx = [];
  for (let m = current - minutes + 1; m <= current; m++) {
    const b = byMinute.get(m);
    const secs = m === current ? elapsed : 60;
    const scale = kind === "packets" ? 1 : 8;
    xs.push(m * 60);
    rx.push(b ? (kind === "packets" ? b.rx_packets : b.rx_bytes) * scale / secs : 0);
    tx.push(b ? (kind === "packets" ? b.tx_packets : b.tx_bytes) * scale / secs : 0);
  }
  return [xs, rx, tx];
}

async function drawChart(el) {
  const minutes = parseInt(el.dataset.minutes || "60", 10);
  const kind = el.dataset.kind || "bytes";
  let body;
  try {
    const resp = await fetch(`${el.dataset.src}?minutes=${minutes}`, { credentials: "same-origin", headers: { accept: "application/json" } });
    if (resp.status === 401) { window.location = "/login?next=" + encodeURIComponent(location.pathname); return; }
    if (!resp.ok) return;
    body = await resp.json();
  } catch (e) {
    return; // the next refresh tries again
  }
  const data = series(body.buckets || [], minutes, kind);
  const last = data[1].length - 1;
  const rxNow = data[1][last], txNow = data[2][last];
  el.dataset.latest = String(Math.max(rxNow, txNow));
  const peak = Math.max(0, ...data[1], ...data[2]);
  const summary = el.parentElement.querySelector(".chart-summary");
  if (summary) {
    summary.textContent = `now: received ${human(rxNow, kind)}, sent ${human(txNow, kind)}; `
      + `peak ${human(peak, kind)} in the last ${minutes === 60 ? "hour" : "day"}`;
  }
  if (typeof uPlot === "undefined") { // assets missing: the summary still reports
    if (summary) summary.textContent += " (chart library not installed: see docs/console.md)";
    return;
  }
  const width = Math.max(el.clientWidth, 240);
  if (el._plot && el._plot._minutes === minutes && el._plot._width === width) {
    el._plot.setData(data);
    return;
  }
  if (el._plot) el._plot.destroy();
  const opts = {
    width, height: 180,
    series: [
      {},
      { label: "received", stroke: "#2b7bb9", width: 2, fill: "rgba(43,123,185,0.12)", points: { show: false },
        value: (u, v) => v == null ? "–" : human(v, kind) },
      { label: "sent", stroke: "#d9822b", width: 2, points: { show: false },
        value: (u, v) => v == null ? "–" : human(v, kind) },
    ],
    axes: [{}, { size: 50, values: (u, vals) => vals.map(compact) }],
    scales: { y: { range: (u, min, max) => [0, Math.max(max, 1)] } },
  };
  el._plot = new uPlot(opts, data, el);
  el._plot._minutes = minutes;
  el._plot._width = width;
}

function setupCharts(root) {
  root.querySelectorAll(".chart:not([data-ready])").forEach((el) => {
    el.setAttribute("data-ready", "");
    drawChart(el);
    el._timer = setInterval(() => { if (document.body.contains(el)) drawChart(el); else clearInterval(el._timer); }, CHART_REFRESH_MS);
    const box = el.closest(".chart-box");
    box.querySelectorAll("[data-minutes]").forEach((btn) => {
      if (btn === el) return;
      btn.addEventListener("click", () => {
        el.dataset.minutes = btn.dataset.minutes;
        box.querySelectorAll("button[data-minutes]").forEach((b) => b.setAttribute("aria-pressed", String(b === btn)));
        drawChart(el);
      });
    });
  });
}

document.addEventListener("DOMContentLoaded", () => setupCharts(document));
let resizeTimer;
window.addEventListener("resize", () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => document.querySelectorAll(".chart[data-ready]").forEach(drawChart), 200);
});
