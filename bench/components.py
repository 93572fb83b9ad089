"""Runs the component benchmarks other modules own (policy, protocol, audit) and keeps their output.

Each is run as `python -m bench.<module> [args]` and prints one JSON object as its last stdout line (or a
table a parser here reads); an extractor per component turns that into the table's headline and pass/fail.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

Headline = tuple[str, bool | None]


def _audit(d: dict[str, Any]) -> Headline:
    rps = d.get("records_per_s")
    if not isinstance(rps, int | float):
        raise KeyError("records_per_s")
    text = (f"{rps:,.0f} calls/s acknowledged (fsync {d.get('fsync')}, {d.get('records_per_fsync')} "
            f"records/fsync, record() {d.get('record_call_us')} us, chain ok: {d.get('chain_ok')})")
    return text, bool(rps >= 2000 and d.get("chain_ok") and not d.get("dropped"))


_POLICY_ROW = re.compile(r"^\s*(\d+)\s+([\d.]+)s\s+(-?[\d.]+)\S*s\s+(-?[\d.]+)\S*s\s+(\d+)%", re.M)


def parse_policy_text(text: str) -> dict[str, Any] | None:
    """bench/policy_bench.py prints a table (rules, compile s, p50 us, p99 us, allowed %); read it."""
    rows = [{"rules": int(m[1]), "compile_s": float(m[2]), "p50_us": float(m[3]), "p99_us": float(m[4]),
             "allowed_pct": int(m[5])} for m in _POLICY_ROW.finditer(text)]
    return {"rows": rows} if rows else None


def _policy(d: dict[str, Any]) -> Headline:
    # The bench prints two tables (same request diversity at every size, then requests spread over every
    # grant); rows restart at the smallest size. Each table's ratio compares sizes within that table.
    tables: list[list[dict[str, Any]]] = []
    for row in d["rows"]:
        if not tables or row["rules"] <= tables[-1][-1]["rules"]:
            tables.append([])
        tables[-1].append(row)
    parts: list[str] = []
    ok = True
    for label, rows in zip(("same requests", "spread"), tables, strict=False):
        first, last = rows[0], rows[-1]
        flat = last["p50_us"] / first["p50_us"] if first["p50_us"] > 0 else None
        parts.append(f"{label}: p50 {first['p50_us']:.2f} us / p99 {first['p99_us']:.2f} us at {first['rules']:,} "
                     f"rules; p50 {last['p50_us']:.2f} us / p99 {last['p99_us']:.2f} us at {last['rules']:,} rules"
                     + (f" (t ratio {flat:.2f})" if flat is not None else ""))
        ok = ok and last["p50_us"] <= 5 and (flat is None or flat <= 1.5)
    last_rows = tables[-1]
    return "; ".join(parts) + f"; compile {last_rows[-1]['compile_s']:.2f} s", ok


def parse_protocol_text(text: str) -> dict[str, Any] | None:
    """bench/protocol_bench.py prints µs/call for a small call and MiB/s per large body; read those."""
    out: dict[str, Any] = {"large_mib_s": {}}
    label = ""
    for line in text.splitlines():
        if line.rstrip().endswith("MiB") and ":" in line and not line.startswith(" "):
            label = line.split(":", 1)[0].strip()
        m = re.search(r"decode_body \+ classify\s+([\d.]+)\s*(µs/call|MiB/s)", line)
        if m and m[2] == "µs/call":
            out["small_call_us"] = float(m[1])
        elif m and label:
            out["large_mib_s"][label] = float(m[1])
    return out if out["large_mib_s"] else None


def _protocol(d: dict[str, Any]) -> Headline:
    large: dict[str, float] = d["large_mib_s"]
    worst = min(large.values())
    text = ", ".join(f"{v:,.0f} MiB/s ({k})" for k, v in large.items())
    if "small_call_us" in d:
        text += f"; {d['small_call_us']:.2f} us per small tools/call"
    return text, worst >= 500


def _generic(d: dict[str, Any]) -> Headline:
    headline = d.get("headline")
    if not isinstance(headline, str):
        raise KeyError("headline")
    ok = d.get("pass")
    return headline, ok if isinstance(ok, bool) else None


@dataclass(frozen=True)
class Component:
    module: str
    full_args: tuple[str, ...]
    smoke_args: tuple[str, ...]
    extract: Callable[[dict[str, Any]], Headline]
    # modules without a JSON mode: a parser for their text output instead
    parse_text: Callable[[str], dict[str, Any] | None] | None = None


COMPONENTS = {
    "policy": Component("policy_bench", ("--requests", "2000", "--rounds", "15"),
                        ("--requests", "300", "--rounds", "1"), _policy, parse_policy_text),
    "protocol": Component("protocol_bench", (), (), _protocol, parse_protocol_text),
    "audit": Component("audit_bench", ("--json", "--seconds", "3", "--fsync", "group"),
                       ("--json", "--seconds", "1", "--fsync", "group"), _audit),
}


def _last_json(text: str) -> dict[str, Any] | None:
    for line in reversed(text.strip().splitlines()):
        if line.strip().startswith("{"):
            try:
                data = json.loads(line)
            except json.JSONDecodeError:
                return None
            return data if isinstance(data, dict) else None
    return None


def run_component(key: str, smoke: bool, timeout: float) -> dict[str, Any]:
    comp = COMPONENTS[key]
    source = f"bench/{comp.module}.py"
    if not (HERE / f"{comp.module}.py").exists():
        return {"status": "pending", "reason": f"pending: {source} not present yet"}
    cmd = [sys.executable, "-m", f"bench.{comp.module}", *(comp.smoke_args if smoke else comp.full_args)]
    shown = " ".join(cmd[1:])
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                             cwd=str(HERE.parent), check=False)
    except subprocess.TimeoutExpired:
        return {"status": "pending", "reason": f"pending: `{shown}` took over {timeout:.0f} s"}
    data = comp.parse_text(out.stdout) if comp.parse_text else _last_json(out.stdout)
    if data is None or out.returncode != 0:
        tail = (out.stderr or out.stdout).strip().splitlines()[-1:] or [""]
        return {"status": "pending",
                "reason": f"pending: `{shown}` failed or gave no result (exit {out.returncode}): "
                          f"{tail[0][:160]}"}
    try:
        headline, ok = comp.extract(data)
    except KeyError as exc:
        return {"status": "pending", "result": data,
                "reason": f"pending: `{shown}` output has no {exc} field the table can use"}
    return {"status": "ok", "source": source, "command": shown, "exit": out.returncode, "result": data,
            "headline": headline, "pass": ok}


def run_all(smoke: bool, timeout: float) -> dict[str, Any]:
    return {key: run_component(key, smoke, timeout) for key in COMPONENTS}
