"""Load generators: wrk (closed loop, saturation) and oload (bench/oload.c: open loop, CO-corrected)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

WRK_LUA = r"""
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["content-type"] = "application/json"
wrk.headers["accept"] = "application/json, text/event-stream"
function done(summary, latency, requests)
  io.write(string.format(
    '\n{"requests":%d,"duration_us":%d,"bytes":%d,"errors":{"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d},"latency_us":{"p50":%.1f,"p99":%.1f,"mean":%.1f,"max":%.1f}}\n',
    summary.requests, summary.duration, summary.bytes, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.status, summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean, latency.max))
end
"""


def _last_json(text: str) -> dict[str, Any]:
    for raw in reversed(text.strip().splitlines()):
        line = raw.strip()
        if line.startswith("{"):
            parsed: dict[str, Any] = json.loads(line)
            return parsed
    raise RuntimeError(f"no JSON result in output: {text[-400:]!r}")


def build_oload(cache: Path) -> Path:
    """Compile bench/oload.c once per source version (gcc -O2) into `cache`."""
    src = HERE / "oload.c"
    digest = hashlib.sha256(src.read_bytes()).hexdigest()[:12]
    exe = cache / f"oload-{digest}"
    if not exe.exists():
        cc = shutil.which("gcc") or shutil.which("cc")
        if not cc:
            raise RuntimeError("no C compiler: run `make sysdeps`")
        cache.mkdir(parents=True, exist_ok=True)
        tmp = exe.with_suffix(".tmp")
        subprocess.run([cc, "-O2", "-o", str(tmp), str(src)], check=True, capture_output=True)
        tmp.replace(exe)
    return exe


def wrk(port: int, body: Path, lua: Path, *, cpu: int, seconds: int, connections: int,
        timeout_s: int = 10) -> dict[str, Any]:
    exe = shutil.which("wrk")
    if not exe:
        raise RuntimeError("wrk not found: run `make sysdeps`")
    cmd = ["taskset", "-c", str(cpu), exe, "-t1", f"-c{connections}", f"-d{seconds}s",
           f"--timeout={timeout_s}s", "-s", str(lua), f"http://127.0.0.1:{port}/mcp"]
    env = dict(os.environ, BENCH_BODY=str(body))
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=seconds + timeout_s + 15,
                         check=False)
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr[-400:]}")
    res = _last_json(out.stdout)
    secs = res["duration_us"] / 1e6
    res["rps"] = res["requests"] / secs if secs else 0.0
    res["bytes_per_s"] = res["bytes"] / secs if secs else 0.0
    res["error_count"] = sum(res["errors"].values())
    return res


def oload(exe: Path, port: int, body: Path, *, cpu: int, seconds: float, connections: int,
          rate: float = 0.0, warmup: float = 0.0) -> dict[str, Any]:
    cmd = ["taskset", "-c", str(cpu), str(exe), "-p", str(port), "-b", str(body), "-c", str(connections),
           "-d", f"{seconds}", "-w", f"{warmup}"]
    if rate > 0:
        cmd += ["-r", f"{rate}"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + warmup + 20, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"oload failed ({out.returncode}): {out.stderr[-400:]}")
    return _last_json(out.stdout)
