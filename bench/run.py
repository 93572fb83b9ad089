"""`python -m bench.run [--smoke]`: the whole suite in one bounded run; writes JSON (+ markdown table).

Paths D (direct), N (nginx), G (mcpgate), P (mcp-proxy) are measured in interleaved rounds with the
same client and payloads; the proxy under test is pinned to one core, load and upstream to the other.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from bench import components, loadgen, measure, payloads, procs, report
from bench.paths import PEER_REQUIREMENT, ROOT, Harness

RESULTS = ROOT / "bench" / "results"
DOC = ROOT / "docs" / "benchmarks.md"
DOC_START, DOC_END = "<!-- bench:results:start -->", "<!-- bench:results:end -->"


@dataclass(frozen=True)
class Plan:
    rounds: int
    seconds: int             # per throughput round (wrk)
    connections: int
    seq_seconds: float
    tail_rounds: int
    tail_seconds: float
    sse_rounds: int
    sse_seconds: int
    big_events: int
    small_events: int
    sessions_low: int
    sessions_high: int
    budget_s: int


FULL = Plan(rounds=5, seconds=3, connections=16, seq_seconds=3, tail_rounds=3, tail_seconds=4,
            sse_rounds=3, sse_seconds=3, big_events=64, small_events=2000, sessions_low=1000,
            sessions_high=5000, budget_s=600)
SMOKE = Plan(rounds=1, seconds=1, connections=16, seq_seconds=0.5, tail_rounds=1, tail_seconds=0.5,
             sse_rounds=1, sse_seconds=1, big_events=16, small_events=500, sessions_low=50,
             sessions_high=150, budget_s=150)


class Aborted(Exception):
    """Raised by the signal handlers so that `finally` blocks stop every child."""


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    raise Aborted(f"stopped by signal {signal.Signals(signum).name}")


def _version(cmd: list[str]) -> str:
    exe = shutil.which(cmd[0])
    if not exe:
        return "not installed"
    out = subprocess.run([exe, *cmd[1:]], capture_output=True, text=True, check=False)
    return (out.stdout + out.stderr).strip().splitlines()[0] if (out.stdout + out.stderr).strip() else "?"


def machine() -> dict[str, Any]:
    model = ""
    try:
        m = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        model = m.group(1) if m else ""
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu_model": model, "kernel": platform.release(),
            "loadavg_at_start": os.getloadavg()[0],
            "python": platform.python_version(), "nginx": _version(["nginx", "-v"]),
            "wrk": _version(["wrk", "-v"]), "gcc": _version(["gcc", "--version"]),
            "peer": PEER_REQUIREMENT}


def run(args: argparse.Namespace) -> dict[str, Any]:
    plan = SMOKE if args.smoke else FULL
    started = time.monotonic()
    result: dict[str, Any] = {
        "schema": "mcpgate-bench/1", "mode": "smoke" if args.smoke else "full",
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(), "plan": plan.__dict__, "errors": [],
    }
    timings: dict[str, float] = {}
    result["timings_s"] = timings
    mark = [time.monotonic()]

    def phase(name: str) -> None:
        now = time.monotonic()
        timings[name] = round(now - mark[0], 1)
        mark[0] = now

    work = Path(tempfile.mkdtemp(prefix="mcpgate-bench-"))
    work.chmod(0o755)  # nginx workers drop root and must read the SSE fixtures
    result["work_dir"] = str(work)
    sup = procs.Supervisor(work)
    try:
        proxy_cpu, load_cpu = procs.cores()
        result["pinning"] = {"proxy_core": proxy_cpu, "load_and_upstream_core": load_cpu}
        try:
            os.sched_setaffinity(0, {load_cpu})
        except OSError:
            pass
        files = payloads.write_fixtures(work, plan.big_events, plan.small_events)
        lua = work / "post.lua"
        lua.write_text(loadgen.WRK_LUA)
        oload = loadgen.build_oload(work / "build")
        if not args.no_keep_awake:
            for core in sorted({proxy_cpu, load_cpu}):
                sup.spawn(f"keep-awake-{core}", ["chrt", "-i", "0", str(oload), "-S"], core)
        result["keep_awake"] = not args.no_keep_awake
        harness = Harness(sup, work, work / "www", args.gate, args.gate_arg)
        paths = harness.start()
        phase("start")
        result["paths"] = {"describe": paths.describe, "impl": paths.impl, "not_run": paths.not_run}
        names = [n for n in measure.ORDER if n in paths.endpoints]
        g_call = paths.endpoints["G"]["call"]
        memory: dict[str, Any] = {}
        if g_call.pid is not None:
            memory["G_idle_rss_kib"] = procs.rss_kib(g_call.pid)
        n_call = paths.endpoints["N"]["call"]
        if n_call.pid is not None:
            memory["N_idle_rss_kib"] = procs.rss_kib(n_call.pid)
        for n in names:
            measure.verify(paths.endpoints[n]["call"].port, files["call"].read_bytes(), sse=False)
        sse_names = [n for n in names if "sse_big" in paths.endpoints[n]]
        for n in sse_names:
            for w in ("sse_big", "sse_small"):
                measure.verify(paths.endpoints[n][w].port, files["call_progress"].read_bytes(), sse=True)

        phase("verify")
        result["throughput"] = measure.throughput(
            paths, "call", files["call"], lua, cpu=load_cpu, rounds=plan.rounds, seconds=plan.seconds,
            connections=plan.connections, names=names)
        phase("throughput")
        result["sequential"] = measure.latency(
            paths, oload, files["call"], cpu=load_cpu, rounds=plan.rounds, seconds=plan.seq_seconds,
            connections=1, rate=0.0, names=names)
        phase("sequential")
        g_max = result["throughput"]["G"]["median_rps"]
        rate = round(0.5 * g_max)
        tail_names: list[str] = [n for n in ("D", "N", "G") if n in names]
        result["tails"] = {"rate_rps": rate, "connections": plan.connections,
                           "method": "oload open loop, latency from intended send time"}
        result["tails"].update(measure.latency(
            paths, oload, files["call"], cpu=load_cpu, rounds=plan.tail_rounds, seconds=plan.tail_seconds,
            connections=plan.connections, rate=rate, names=tail_names))
        phase("tails")
        sse: dict[str, Any] = {}
        sse["big"] = measure.throughput(
            paths, "sse_big", files["call_progress"], lua, cpu=load_cpu, rounds=plan.sse_rounds,
            seconds=plan.sse_seconds, connections=4, names=sse_names)
        sse["small"] = measure.throughput(
            paths, "sse_small", files["call_progress"], lua, cpu=load_cpu, rounds=plan.sse_rounds,
            seconds=plan.sse_seconds, connections=plan.connections, names=sse_names)
        for n in sse_names:
            sse["small"][n]["events_per_s"] = round(sse["small"][n]["median_rps"] * (plan.small_events + 1))
        sse["events_per_response"] = {"big": plan.big_events + 1, "small": plan.small_events + 1}
        result["sse"] = sse
        phase("sse")
        memory["sessions"] = measure.idle_memory(paths, ["N", "G"], plan.sessions_low, plan.sessions_high)
        if g_call.pid is not None:
            memory["G_rss_after_load_kib"] = procs.rss_kib(g_call.pid)
        result["memory"] = memory
        phase("sessions")
        sup.stop_all()
        if args.components or (not args.smoke and not args.no_components):
            result["components"] = components.run_all(args.smoke, timeout=60 if args.smoke else 150)
            phase("components")
        else:
            why = "smoke mode (add --components)" if args.smoke else "--no-components"
            result["components"] = {key: {"status": "pending", "reason": f"pending: not run in {why}"}
                                    for key in components.COMPONENTS}
    except Aborted as exc:
        result["errors"].append(str(exc))
    except Exception as exc:
        result["errors"].append(f"{type(exc).__name__}: {exc}")
        result["traceback"] = traceback.format_exc()
    finally:
        sup.stop_all()
        if args.keep:
            print(f"work dir kept: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    result["ratios"] = report.ratios(result)
    result["targets"] = report.targets(result)
    result["duration_s"] = round(time.monotonic() - started, 1)
    # other work on the two cores shows up here; figures from a busy machine are noisier
    result["machine"]["loadavg_at_end"] = os.getloadavg()[0]
    return result


def update_doc(table: str) -> None:
    if not DOC.exists():
        return
    text = DOC.read_text()
    if DOC_START not in text or DOC_END not in text:
        return
    head, rest = text.split(DOC_START, 1)
    _, tail = rest.split(DOC_END, 1)
    DOC.write_text(f"{head}{DOC_START}\n{table}{DOC_END}{tail}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    ap.add_argument("--smoke", action="store_true", help="~20 s run: one short round per measurement")
    ap.add_argument("--out", type=Path, help="result JSON (default bench/results/latest.json or smoke.json)")
    ap.add_argument("--gate", choices=("mcpgate", "nginx"), default="mcpgate",
                    help="what runs as path G; `nginx` is a stand-in that only validates the harness")
    ap.add_argument("--gate-arg", action="append", default=[], help="extra argument for `mcpgate serve`")
    ap.add_argument("--no-components", action="store_true", help="skip policy/protocol/audit benches")
    ap.add_argument("--components", action="store_true",
                    help="run the policy/protocol/audit benches in smoke mode too (skipped there by default)")
    ap.add_argument("--update-doc", action="store_true", help="rewrite the results section of the doc")
    ap.add_argument("--no-keep-awake", action="store_true",
                    help="don't run the SCHED_IDLE spinners that keep both vCPUs from halting")
    ap.add_argument("--keep", action="store_true", help="keep the work dir (configs, logs)")
    args = ap.parse_args(argv)
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT, signal.SIGALRM):
        signal.signal(sig, _on_signal)
    resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)
    signal.alarm((SMOKE if args.smoke else FULL).budget_s)
    try:
        result = run(args)
    finally:
        signal.alarm(0)
    out = args.out or RESULTS / ("smoke.json" if args.smoke else "latest.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    table = report.markdown(result)
    if not args.smoke:
        out.with_suffix(".md").write_text(table)
    if args.update_doc and not args.smoke and not result["errors"]:
        update_doc(table)
    print(table)
    for err in result["errors"]:
        print(f"bench: error: {err}", file=sys.stderr)
    print(f"bench: wrote {out} in {result['duration_s']} s", file=sys.stderr)
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
