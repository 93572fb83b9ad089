"""Turns raw measurements into the targets table (P1-P8), ratios, and the markdown in the docs."""

from __future__ import annotations

from typing import Any

PATHS = ("D", "N", "G", "P", "G_off", "G_full")


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def _get(d: dict[str, Any], *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def _row(pid: str, metric: str, target: str, measured: str, ok: bool | None, *,
         note: str = "") -> dict[str, Any]:
    status = "pending" if ok is None else ("pass" if ok else "fail")
    return {"id": pid, "metric": metric, "target": target, "measured": measured, "status": status,
            "note": note}


def _fmt(x: float | None, unit: str = "", digits: int = 2) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}{unit}"


def ratios(r: dict[str, Any]) -> dict[str, Any]:
    tp = r.get("throughput", {})
    rps = {n: _get(tp, n, "median_rps") for n in PATHS}
    seq = r.get("sequential", {})
    tails = r.get("tails", {})
    out: dict[str, Any] = {
        "throughput_G_over_N": _ratio(rps["G"], rps["N"]),
        "throughput_G_over_P": _ratio(rps["G"], rps["P"]),
        "throughput_G_over_D": _ratio(rps["G"], rps["D"]),
    }
    for name, block in (("sequential", seq), ("tails", tails)):
        for q in ("p50", "p99"):
            d = _get(block, "D", f"{q}_us")
            g = _get(block, "G", f"{q}_us")
            n = _get(block, "N", f"{q}_us")
            added_g = None if g is None or d is None else round(g - d, 1)
            added_n = None if n is None or d is None else round(n - d, 1)
            out[f"{name}_{q}_added_G_us"] = added_g
            out[f"{name}_{q}_added_N_us"] = added_n
            # nginx can add ~nothing on loopback; floor its added latency at 1 us so the ratio stays finite
            out[f"{name}_{q}_added_G_over_N"] = (
                None if added_g is None or added_n is None else round(added_g / max(added_n, 1.0), 2))
    per_cpu = {n: _get(tp, n, "median_calls_per_cpu_s") for n in PATHS}
    out["calls_per_cpu_s_G_over_N"] = _ratio(per_cpu["G"], per_cpu["N"])
    out["calls_per_cpu_s_G_over_P"] = _ratio(per_cpu["G"], per_cpu["P"])
    out["telemetry_full_over_off"] = _ratio(rps.get("G_full"), rps.get("G_off"))
    out["telemetry_full_over_off_per_cpu_s"] = _ratio(per_cpu.get("G_full"), per_cpu.get("G_off"))
    full_p50, off_p50 = _get(seq, "G_full", "p50_us"), _get(seq, "G_off", "p50_us")
    out["telemetry_added_p50_us"] = None if full_p50 is None or off_p50 is None else round(full_p50 - off_p50, 1)
    sse = r.get("sse", {})
    out["sse_big_G_over_D"] = _ratio(_get(sse, "big", "G", "median_bytes_per_s"),
                                     _get(sse, "big", "D", "median_bytes_per_s"))
    return out


def targets(r: dict[str, Any]) -> list[dict[str, Any]]:
    rt = r["ratios"]
    rows: list[dict[str, Any]] = []
    gn, gp = rt.get("throughput_G_over_N"), rt.get("throughput_G_over_P")
    p_note = r.get("paths", {}).get("not_run", {}).get("P", "")
    cn, cp = rt.get("calls_per_cpu_s_G_over_N"), rt.get("calls_per_cpu_s_G_over_P")
    rows.append(_row("P1", "throughput per core G/N", ">= 0.5", _fmt(gn), None if gn is None else gn >= 0.5,
                     note=f"calls per proxy CPU-second: {_fmt(cn)}"))
    rows.append(_row("P1", "throughput per core G/P", ">= 20x", _fmt(gp, "x", 1),
                     None if gp is None else gp >= 20,
                     note=f"calls per proxy CPU-second: {_fmt(cp, 'x', 1)}" + (f"; {p_note}" if p_note else "")))
    for name, label in (("sequential", "sequential, 1 connection"), ("tails", "at 50% of G's max rate")):
        for q in ("p50", "p99"):
            v = rt.get(f"{name}_{q}_added_G_over_N")
            g, n = rt.get(f"{name}_{q}_added_G_us"), rt.get(f"{name}_{q}_added_N_us")
            rows.append(_row("P2", f"added latency (G-D)/(N-D) {q}, {label}", "<= 1.5x",
                             f"{_fmt(v, 'x')} (G-D {_fmt(g, ' us', 0)}, N-D {_fmt(n, ' us', 0)})",
                             None if v is None else v <= 1.5))
    big = rt.get("sse_big_G_over_D")
    rows.append(_row("P3", "SSE relay, 64 KiB events, bytes/s G/D", ">= 0.9", _fmt(big),
                     None if big is None else big >= 0.9))
    ev = _get(r, "sse", "small", "G", "events_per_s")
    rows.append(_row("P3", "small SSE events/s per core, per-event inspection", ">= 50k",
                     "n/a" if ev is None else f"{ev / 1000:.1f}k", None if ev is None else ev >= 50_000))
    idle = _get(r, "memory", "G_idle_rss_kib")
    rows.append(_row("P4", "idle RSS of G", "<= 40 MB", "n/a" if idle is None else f"{idle / 1024:.1f} MB",
                     None if idle is None else idle <= 40 * 1024))
    slope = _get(r, "memory", "sessions", "G", "slope_kib_per_session")
    lo = _get(r, "memory", "sessions", "G", "sessions_low")
    hi = _get(r, "memory", "sessions", "G", "sessions_high")
    rows.append(_row("P4", f"RSS per idle open SSE session ({lo} -> {hi})", "<= 16 KiB",
                     _fmt(slope, " KiB"), None if slope is None else slope <= 16,
                     note=_get(r, "memory", "sessions", "G", "first_failure") or ""))
    comps = r.get("components", {})
    for pid, key, metric, target in (("P5", "policy", "policy decision time",
                                      "p50 <= 5 us, t(10k)/t(10) <= 1.5 (A10)"),
                                     ("P6", "protocol", "inspection of large tools/call bodies",
                                      ">= 500 MiB/s"),
                                     ("P8", "audit", "audited calls/s with group-commit fsync",
                                      ">= 2,000/s (A10)")):
        c = comps.get(key, {})
        if c.get("status") == "ok":
            rows.append(_row(pid, metric, target, c.get("headline", "see components"), c.get("pass"),
                             note="from " + c.get("source", "")))
        else:
            rows.append(_row(pid, metric, target, "pending", None, note=c.get("reason", "")))
    tele = rt.get("telemetry_full_over_off")
    if tele is None:
        rows.append(_row("P7", "cost of metrics+audit+tracing vs all off", "<= 10%", "pending", None,
                         note="pending: needs the mcpgate variants G_off and G_full (run with --gate mcpgate)"))
    else:
        rows.append(_row("P7", "cost of audit+tracing (sampler 0) vs off, throughput G_full/G_off", "<= 10% loss",
                         f"{(1 - tele) * 100:.1f}% loss ({_fmt(tele)}x); p50 "
                         f"{_fmt(rt.get('telemetry_added_p50_us'), ' us', 0)} sequential",
                         tele >= 0.9, note="partial: metrics have no off switch, so they are on in both; "
                         f"calls per proxy CPU-second {_fmt(rt.get('telemetry_full_over_off_per_cpu_s'))}x"))
    rows.sort(key=lambda row: row["id"])  # stable: rows of one target keep their order
    if r.get("paths", {}).get("impl", {}).get("G", "").startswith("STAND-IN"):
        for row in rows:
            if row["id"] in ("P1", "P2", "P3", "P4") and row["status"] != "pending":
                row["status"] = "stand-in"
    return rows


def markdown(r: dict[str, Any]) -> str:
    lines: list[str] = []
    m = r.get("machine")
    if m:
        lines += [f"Run of {r.get('started_at', '?')} ({r.get('mode', '?')}, {r.get('duration_s', '?')} s): "
                  f"{m.get('nproc')} cores ({m.get('cpu_model')}), Linux {m.get('kernel')}, "
                  f"Python {m.get('python')}, {m.get('nginx', '').replace('nginx version: ', '')}, "
                  f"{m.get('wrk', '').split(' [')[0]}, {m.get('peer')}; 1-min load average "
                  f"{m.get('loadavg_at_start', 0):.1f} at start, {m.get('loadavg_at_end', 0):.1f} at end.", ""]
    lines += ["| # | metric | target | measured | status | note |", "|---|---|---|---|---|---|"]
    for row in r["targets"]:
        lines.append(f"| {row['id']} | {row['metric']} | {row['target']} | {row['measured']} | "
                     f"{row['status']} | {row['note']} |")
    lines += ["", "| path | implementation | calls/s (median) | rounds | calls per proxy CPU-s | "
              "seq p50 / p99 (us) | at fixed rate p50 / p99 / p99.9 (us) |",
              "|---|---|---|---|---|---|---|"]
    for n in PATHS:
        if n not in r.get("throughput", {}) and n not in ("D", "N", "G", "P"):
            continue
        tp = _get(r, "throughput", n) or {}
        sq = _get(r, "sequential", n) or {}
        tl = _get(r, "tails", n) or {}
        impl = _get(r, "paths", "impl", n) or _get(r, "paths", "not_run", n) or ""
        lines.append(
            f"| {n} | {impl} | {tp.get('median_rps', 'n/a')} | {tp.get('rounds_rps', '')} | "
            f"{tp.get('median_calls_per_cpu_s') or 'n/a'} | "
            f"{sq.get('p50_us', 'n/a')} / {sq.get('p99_us', 'n/a')} | "
            + (f"{tl.get('p50_us')} / {tl.get('p99_us')} / {tl.get('p999_us')}" if tl else "not run") + " |")
    sse = r.get("sse", {})
    if sse:
        lines += ["", "| path | SSE 64 KiB events MiB/s | SSE small events/s |", "|---|---|---|"]
        for n in ("D", "N", "G"):
            b = _get(sse, "big", n, "median_bytes_per_s")
            e = _get(sse, "small", n, "events_per_s")
            lines.append(f"| {n} | {_fmt(None if b is None else b / 2**20, '', 1)} | "
                         f"{'n/a' if e is None else round(e)} |")
    return "\n".join(lines) + "\n"
