"""The measurements: each runs interleaved rounds over the paths and keeps every round's figure."""

from __future__ import annotations

import asyncio
import statistics
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import loadgen, payloads, procs
from bench.paths import Paths
from bench.sessions import Sessions

ORDER = ("D", "N", "G", "P", "G_off", "G_full")


def verify(port: int, body: bytes, sse: bool, attempts: int = 20) -> str:
    """POST one call and check the canned upstream answer came back (a denial would not carry it)."""
    last = ""
    for _ in range(attempts):
        req = urllib.request.Request(f"http://127.0.0.1:{port}/mcp", data=body, method="POST", headers={
            "content-type": "application/json", "accept": "application/json, text/event-stream"})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                data = resp.read()
                ctype = str(resp.headers.get("content-type", ""))
                if resp.status == 200 and payloads.MARKER.encode() in data and (
                        not sse or ctype.startswith("text/event-stream")):
                    return ctype
                last = f"status {resp.status}, content-type {ctype!r}, body {data[:200]!r}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.25)
    raise RuntimeError(f"port {port} did not relay the upstream answer: {last}")


def _median(xs: list[float]) -> float:
    return float(statistics.median(xs)) if xs else 0.0


def interleave(names: list[str], rounds: int,
               fn: Callable[[str], dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Round r measures every path once, in the same order: D N G P D N G P ..."""
    out: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    for _ in range(rounds):
        for n in names:
            out[n].append(fn(n))
    return out


def throughput(paths: Paths, workload: str, body: Path, lua: Path, *, cpu: int, rounds: int, seconds: int,
               connections: int, names: list[str]) -> dict[str, Any]:
    def one(n: str) -> dict[str, Any]:
        ep = paths.endpoints[n][workload]
        before = procs.cpu_seconds(ep.pid) if ep.pid is not None else None
        res = loadgen.wrk(ep.port, body, lua, cpu=cpu, seconds=seconds, connections=connections)
        if before is not None and ep.pid is not None:
            # CPU the proxy itself used: calls per proxy CPU-second holds up when other work shares the core
            res["proxy_cpu_s"] = procs.cpu_seconds(ep.pid) - before
        return res

    raw = interleave(names, rounds, one)
    result: dict[str, Any] = {}
    for n, rs in raw.items():
        per_cpu = [r["requests"] / r["proxy_cpu_s"] for r in rs if r.get("proxy_cpu_s")]
        result[n] = {
            "rounds_proxy_cpu_s": [round(r["proxy_cpu_s"], 2) for r in rs if "proxy_cpu_s" in r],
            "median_calls_per_cpu_s": round(_median(per_cpu), 1) if per_cpu else None,
            "rounds_rps": [round(r["rps"], 1) for r in rs],
            "rounds_bytes_per_s": [round(r["bytes_per_s"]) for r in rs],
            "median_rps": round(_median([r["rps"] for r in rs]), 1),
            "median_bytes_per_s": round(_median([r["bytes_per_s"] for r in rs])),
            "median_p50_us": _median([r["latency_us"]["p50"] for r in rs]),
            "median_p99_us": _median([r["latency_us"]["p99"] for r in rs]),
            "errors": sum(r["error_count"] for r in rs),
        }
    return result


def latency(paths: Paths, exe: Path, body: Path, *, cpu: int, rounds: int, seconds: float, connections: int,
            rate: float, names: list[str]) -> dict[str, Any]:
    """Sequential (rate 0, one connection, closed loop) or fixed-rate open loop (CO-corrected)."""
    raw = interleave(names, rounds, lambda n: loadgen.oload(
        exe, paths.endpoints[n]["call"].port, body, cpu=cpu, seconds=seconds, connections=connections,
        rate=rate, warmup=0.3))
    result: dict[str, Any] = {}
    for n, rs in raw.items():
        result[n] = {
            "rounds": [{k: r["latency_us"][k] for k in ("p50", "p99", "p999", "max")} | {
                "achieved_rps": r["achieved_rps"], "errors": r["errors"] + r["non2xx"] + r["incomplete"],
                "missed": r["missed"]} for r in rs],
            "p50_us": _median([r["latency_us"]["p50"] for r in rs]),
            "p99_us": _median([r["latency_us"]["p99"] for r in rs]),
            "p999_us": _median([r["latency_us"]["p999"] for r in rs]),
            "achieved_rps": _median([r["achieved_rps"] for r in rs]),
            "errors": sum(r["errors"] + r["non2xx"] + r["incomplete"] for r in rs),
            "missed": sum(r["missed"] for r in rs),
        }
    return result


def idle_memory(paths: Paths, names: list[str], low: int, high: int) -> dict[str, Any]:
    """RSS of each proxy with `low` then `high` idle SSE streams open through it; slope per stream."""
    out: dict[str, Any] = {}
    for n in names:
        ep = paths.endpoints[n].get("idle")
        if ep is None or ep.pid is None:
            continue
        out[n] = asyncio.run(_idle_one(ep.port, ep.pid, low, high))
    return out


async def _idle_one(port: int, pid: int, low: int, high: int) -> dict[str, Any]:
    s = Sessions(port)
    before = procs.rss_kib(pid)
    try:
        await s.open(low)
        await asyncio.sleep(0.5)
        at_low, open_low = procs.rss_kib(pid), len(s.writers)
        await s.open(high - low)
        await asyncio.sleep(0.5)
        at_high, open_high = procs.rss_kib(pid), len(s.writers)
    finally:
        await s.close()
    slope = (at_high - at_low) / (open_high - open_low) if open_high > open_low else None
    return {"rss_before_kib": before, "sessions_low": open_low, "rss_low_kib": at_low,
            "sessions_high": open_high, "rss_high_kib": at_high,
            "slope_kib_per_session": round(slope, 2) if slope is not None else None,
            "failed": s.failed, "first_failure": s.first_failure}
