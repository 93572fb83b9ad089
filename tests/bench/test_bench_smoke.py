"""The benchmark's smoke mode runs end to end: every path measured, a well-formed result, no leftovers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PATHS = ("D", "N", "G", "P", "G_off", "G_full")  # the last two: mcpgate with audit/tracing off and on (P7)


def _children_named(word: str) -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True,
                         check=False).stdout
    return [line for line in out.splitlines() if word in line]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_smoke_mode_measures_every_path(tmp_path: Path) -> None:
    out = tmp_path / "smoke.json"
    proc = subprocess.run([sys.executable, "-m", "bench.run", "--smoke", "--out", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=280, env=dict(os.environ), check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["schema"] == "mcpgate-bench/1"
    assert result["mode"] == "smoke"
    assert result["errors"] == []
    assert result["paths"]["not_run"] == {}
    assert not result["paths"]["impl"]["G"].startswith("STAND-IN")
    for name in PATHS:
        tp = result["throughput"][name]
        assert tp["median_rps"] > 0, name
        assert tp["errors"] == 0, name
        seq = result["sequential"][name]
        assert 0 < seq["p50_us"] <= seq["p99_us"], name
    assert result["tails"]["rate_rps"] > 0
    for name in ("D", "N", "G"):
        assert result["tails"][name]["achieved_rps"] > 0, name
        assert result["sse"]["big"][name]["median_bytes_per_s"] > 0, name
        assert result["sse"]["small"][name]["events_per_s"] > 0, name
    sessions = result["memory"]["sessions"]["G"]
    assert sessions["sessions_high"] > sessions["sessions_low"] > 0
    assert result["memory"]["G_idle_rss_kib"] > 0
    ids = {row["id"] for row in result["targets"]}
    assert ids == {"P1", "P2", "P3", "P4", "P5", "P6", "P7", "P8"}
    assert {row["status"] for row in result["targets"]} <= {"pass", "fail", "pending"}
    assert result["ratios"]["throughput_G_over_N"] > 0
    assert result["ratios"]["telemetry_full_over_off"] > 0
    # every child was stopped: nothing started from this run's work dir is left behind
    assert not _children_named(result["work_dir"])
    assert not Path(result["work_dir"]).exists()
