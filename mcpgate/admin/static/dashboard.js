// mcpgate live dashboard: polls /api/dashboard and redraws. Plain DOM + hand-written SVG, no dependencies.
// Every value from the API may be attacker-chosen (tool names, principals, rule ids): it only ever reaches
// the page through textContent or setAttribute on non-executable attributes, never through innerHTML.
"use strict";

(function () {
  const POLL_MS = 1500;
  const HISTORY = 120; // rate-chart points kept client-side (3 minutes at 1.5 s)
  const SVG = "http://www.w3.org/2000/svg";
  const rateHistory = [];

  function $(id) { return document.getElementById(id); }

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const k in attrs) node.setAttribute(k, String(attrs[k]));
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function fmtInt(n) { return n === null || n === undefined ? "—" : Math.round(n).toLocaleString("en-US"); }

  function fmtRate(r) {
    if (r === null || r === undefined) return "—";
    if (r === 0) return "0";
    return r >= 100 ? r.toFixed(0) : r >= 10 ? r.toFixed(1) : r.toFixed(2);
  }

  function fmtSeconds(s) {
    if (s === null || s === undefined) return "—";
    if (s < 0.001) return (s * 1e6).toFixed(0) + " µs";
    if (s < 1) return (s * 1e3).toFixed(s < 0.01 ? 2 : 1) + " ms";
    return s.toFixed(2) + " s";
  }

  function fmtTime(t) {
    const d = new Date(t * 1000);
    const pad = (n, w) => String(n).padStart(w || 2, "0");
    return pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds()) + "." +
      pad(d.getMilliseconds(), 3);
  }

  function label(v) { return v === "" || v === null || v === undefined ? "—" : v; }

  function empty(container, text) { container.replaceChildren(el("div", "empty", text)); }

  // -- header ---------------------------------------------------------------------------------------

  function renderHeader(data) {
    const status = data.status || {};
    const mode = status.mode || "unknown";
    const badge = $("mode");
    badge.textContent = mode;
    badge.className = "badge " + (mode === "enforce" ? "enforce" : mode === "observer" ? "observer" : "");

    const pol = status.policy || {};
    const mpol = data.policy || {};
    $("revision").textContent = label(pol.revision || mpol.revision);
    const ok = pol.reloads !== undefined ? pol.reloads : mpol.reloads_ok;
    const bad = pol.reload_errors !== undefined ? pol.reload_errors : mpol.reloads_error;
    const failing = pol.last_error ? true : mpol.last_reload_ok === false;
    const reload = $("reload");
    reload.textContent = (ok === undefined ? "—" : fmtInt(ok) + " ok, " + fmtInt(bad) + " failed") +
      (failing ? " · last failed" : "");
    reload.className = failing ? "bad" : "";
    $("upstream").textContent = label(status.upstream);

    const warnings = (status.warnings || []).slice();
    if (status.not_ready) warnings.unshift("not ready: " + status.not_ready);
    $("warnings").replaceChildren(...warnings.map((w) => el("li", "", w)));
  }

  function renderKpis(data) {
    const t = data.totals || {};
    $("kpi-calls").textContent = fmtInt(t.calls);
    $("kpi-rate").textContent = fmtRate(t.rate);
    $("kpi-errors").textContent = fmtInt(t.errors);
    $("kpi-denied").textContent = fmtInt(t.denied);
    $("kpi-inflight").textContent = fmtInt(t.in_flight);
  }

  // -- charts ---------------------------------------------------------------------------------------

  // Horizontal bars: rows of {name, value, note}; names are drawn as SVG text (textContent).
  function barChart(container, rows, color, emptyText) {
    if (!rows.length) { empty(container, emptyText); return; }
    const width = Math.max(container.clientWidth || 400, 200);
    const rowH = 22, labelW = Math.min(200, width * 0.4), noteW = 90;
    const max = Math.max(...rows.map((r) => r.value), 1);
    const root = svg("svg", { viewBox: "0 0 " + width + " " + rows.length * rowH, height: rows.length * rowH,
      role: "img" });
    rows.forEach((r, i) => {
      const y = i * rowH;
      const name = svg("text", { x: labelW - 8, y: y + 15, "text-anchor": "end" }, truncate(r.name, 28));
      name.appendChild(svg("title", {}, r.name));
      root.appendChild(name);
      const w = Math.max((width - labelW - noteW) * (r.value / max), r.value > 0 ? 2 : 0);
      root.appendChild(svg("rect", { x: labelW, y: y + 4, width: w, height: rowH - 8, rx: 3, fill: color }));
      root.appendChild(svg("text", { x: labelW + w + 6, y: y + 15, class: "muted" }, r.note));
    });
    container.replaceChildren(root);
  }

  function truncate(s, n) { s = String(s); return s.length > n ? s.slice(0, n - 1) + "…" : s; }

  function lineChart(container, points) {
    const width = Math.max(container.clientWidth || 400, 200), height = 150;
    const padL = 44, padT = 10, padB = 18, plotH = height - padT - padB;
    const max = Math.max(...points.map((p) => p.v), 1);
    const root = svg("svg", { viewBox: "0 0 " + width + " " + height, height: height, role: "img" });
    for (const f of [0, 0.5, 1]) {
      const y = padT + plotH * (1 - f);
      root.appendChild(svg("line", { x1: padL, x2: width, y1: y, y2: y, class: "axis" }));
      root.appendChild(svg("text", { x: padL - 6, y: y + 4, "text-anchor": "end", class: "muted" },
        fmtRate(max * f)));
    }
    if (points.length > 1) {
      const t0 = points[0].t, t1 = points[points.length - 1].t, span = Math.max(t1 - t0, 1);
      const xy = points.map((p) => [padL + (width - padL - 4) * (p.t - t0) / span, padT + plotH * (1 - p.v / max)]);
      const line = xy.map((p, i) => (i ? "L" : "M") + p[0].toFixed(1) + " " + p[1].toFixed(1)).join(" ");
      const base = (padT + plotH).toFixed(1);
      const area = line + " L" + xy[xy.length - 1][0].toFixed(1) + " " + base + " L" + xy[0][0].toFixed(1) + " " +
        base + " Z";
      root.appendChild(svg("path", { d: area, fill: "#2f6fdf22", stroke: "none" }));
      root.appendChild(svg("path", { d: line, fill: "none", stroke: "#2f6fdf", "stroke-width": 2 }));
      root.appendChild(svg("text", { x: padL, y: height - 3, class: "muted" },
        "last " + Math.round(span) + " s, one point per refresh"));
    } else {
      root.appendChild(svg("text", { x: padL + 8, y: padT + plotH / 2, class: "muted" }, "collecting…"));
    }
    container.replaceChildren(root);
  }

  // -- tables ---------------------------------------------------------------------------------------

  function cell(text, cls, title) {
    const td = el("td", cls, text);
    if (title) td.title = title;
    return td;
  }

  function latencyBar(lat, maxP99) {
    const w = 170, h = 14, scale = (s) => (s === null || s === undefined ? 0 : (w - 2) * Math.min(s / maxP99, 1));
    const root = svg("svg", { viewBox: "0 0 " + w + " " + h, width: w, height: h, role: "img" });
    root.appendChild(svg("rect", { x: 0, y: 3, width: scale(lat.p99), height: h - 6, rx: 2, fill: "#f3c6a5" }));
    root.appendChild(svg("rect", { x: 0, y: 3, width: scale(lat.p95), height: h - 6, rx: 2, fill: "#8fb3ee" }));
    root.appendChild(svg("rect", { x: 0, y: 3, width: scale(lat.p50), height: h - 6, rx: 2, fill: "#2f6fdf" }));
    root.appendChild(svg("title", {}, "p50 " + fmtSeconds(lat.p50) + " · p95 " + fmtSeconds(lat.p95) +
      " · p99 " + fmtSeconds(lat.p99)));
    return root;
  }

  function renderTools(data) {
    const body = $("tools-table").tBodies[0];
    const tools = data.tools || [];
    $("window-note").textContent = "calls/s and latency over the last " + Math.round(data.window_s || 60) +
      " s (whole run when idle)";
    if (!tools.length) {
      const td = el("td", "empty", "no tool calls yet");
      td.colSpan = 9;
      const tr = el("tr");
      tr.appendChild(td);
      body.replaceChildren(tr);
      return;
    }
    const maxP99 = Math.max(...tools.map((t) => t.latency.p99 || 0), 1e-6);
    body.replaceChildren(...tools.map((t) => {
      const tr = el("tr");
      const scope = t.latency.scope === "window" ? "last window" : "since start";
      tr.append(cell(t.tool, "tool", t.tool), cell(fmtInt(t.calls), "num calls"), cell(fmtRate(t.rate), "num rate"),
        cell(fmtInt(t.errors), "num errors" + (t.errors ? " nonzero" : "")),
        cell(fmtInt(t.denied), "num denied" + (t.denied ? " nonzero" : "")),
        cell(fmtSeconds(t.latency.p50), "num p50", scope), cell(fmtSeconds(t.latency.p95), "num p95", scope),
        cell(fmtSeconds(t.latency.p99), "num p99", scope));
      const bar = el("td", "bar-col");
      bar.appendChild(latencyBar(t.latency, maxP99));
      tr.appendChild(bar);
      return tr;
    }));
  }

  const BAD_OUTCOMES = { tool_error: 1, jsonrpc_error: 1, upstream_failed: 1, rejected: 1 };

  function renderRecent(data) {
    const body = $("recent-table").tBodies[0];
    const rows = data.recent || [];
    if (!rows.length) {
      const td = el("td", "empty", "no exchanges yet");
      td.colSpan = 9;
      const tr = el("tr");
      tr.appendChild(td);
      body.replaceChildren(tr);
      return;
    }
    body.replaceChildren(...rows.map((r) => {
      const tr = el("tr");
      const decision = el("td", "decision");
      decision.appendChild(el("span", "pill " + (r.decision === "deny" ? "deny" :
        r.decision === "would_deny" ? "would_deny" : "allow"), r.decision));
      const rules = (r.rules || []).join(", ");
      const outcome = r.outcome + (r.error_code !== null && r.error_code !== undefined ? " (" + r.error_code + ")" : "");
      tr.append(cell(fmtTime(r.time), "mono"), cell(r.principal, "mono principal", r.principal),
        cell(r.method, "mono method"), cell(label(r.target), "mono target", r.target || ""), decision,
        cell(label(rules), "mono rule", rules), cell(outcome, "outcome" + (BAD_OUTCOMES[r.outcome] ? " outcome-bad" : "")),
        cell(fmtSeconds(r.latency_s), "num"), cell(r.decision_id, "mono decision-id", r.decision_id));
      return tr;
    }));
  }

  // -- loop -----------------------------------------------------------------------------------------

  function render(data) {
    renderHeader(data);
    renderKpis(data);
    const tools = data.tools || [];
    barChart($("usage-chart"), tools.slice(0, 12).map((t) => ({ name: t.tool, value: t.calls,
      note: fmtInt(t.calls) + (t.rate !== null ? " · " + fmtRate(t.rate) + "/s" : "") })), "#2f6fdf",
    "no tool calls yet");
    const rate = (data.totals || {}).rate;
    if (rate !== null && rate !== undefined) {
      rateHistory.push({ t: data.generated_at, v: rate });
      if (rateHistory.length > HISTORY) rateHistory.shift();
    }
    lineChart($("rate-chart"), rateHistory);
    renderTools(data);
    const d = data.denials || {};
    const bars = (rows, key) => rows.slice(0, 10).map((r) => ({ name: label(r[key]), value: r.count,
      note: fmtInt(r.count) }));
    barChart($("deny-rule"), bars(d.by_rule || [], "rule"), "#c53030", "no denials");
    barChart($("deny-caller"), bars(d.by_caller || [], "caller"), "#c53030", "no denials");
    barChart($("would-deny"), bars(d.would_deny_by_rule || [], "rule"), "#b7791f", "none");
    renderRecent(data);
  }

  async function poll() {
    const conn = $("conn");
    try {
      const resp = await fetch("/api/dashboard", { cache: "no-store", credentials: "same-origin" });
      if (!resp.ok) throw new Error("HTTP " + resp.status);
      const data = await resp.json();
      render(data);
      conn.textContent = "live · " + fmtTime(data.generated_at);
      conn.className = "conn live";
    } catch (err) {
      conn.textContent = "disconnected: " + (err && err.message ? err.message : String(err));
      conn.className = "conn down";
    } finally {
      setTimeout(poll, POLL_MS);
    }
  }

  poll();
})();
