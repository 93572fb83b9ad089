"""`make demo` works end to end: the example server, mcpgate in front, SDK traffic, a summary, a clean stop."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from examples.procs import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-demo")]


def test_demo_runs_and_stops_cleanly(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "examples.demo", "--workdir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    out = proc.stdout
    assert proc.returncode == 0, f"{out}\n{proc.stderr}\n{(tmp_path / 'mcpgate.log').read_text(errors='replace')}"
    assert "What the client saw (through mcpgate)" in out
    balance = [ln.split() for ln in out.splitlines() if ln.startswith("  billing") and "tools/call get_balance" in ln]
    assert balance and balance[0][4] == "ok", balance
    # payments.yaml: billing may refund up to 100; nobody deletes; support cannot see refunds at all.
    assert "tool `refund` denied" in out, out
    assert "unknown tool `delete_customer`" in out, out
    assert "unknown tool `refund`" in out, out
    assert "unknown account `ACC-9999`" in out  # a tool error from the server itself, passed through
    assert "(nothing visible)" in out  # anonymous callers see no tools
    assert "(2026-07-28)" in out and "(2025-11-25)" in out
    assert 'decision="deny"' in out
    # It ends by saying where to look: the metrics and dashboard URLs it checked while mcpgate was up, the
    # audit file, and `mcpgate audit summary` of the demo's own traffic.
    assert "Stopped mcpgate and the example server." in out
    tail = out[out.index("Stopped mcpgate and the example server."):]
    where = tail[tail.index("Where to look:"):]
    assert re.search(r"^  metrics +http://127\.0\.0\.1:\d+/metrics  \(HTTP 200", where, re.M), where
    assert re.search(r"^  dashboard +http://127\.0\.0\.1:\d+/dashboard  \(HTTP 200", where, re.M), where
    audit = tmp_path / "audit.jsonl"
    assert re.search(rf"^  audit log +{re.escape(str(audit))}  \(\d+ lines\)", where, re.M), where
    verify = subprocess.run([sys.executable, "-m", "mcpgate", "audit", "verify", str(audit)], cwd=ROOT,
                            capture_output=True, text=True, timeout=30, check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    summary = subprocess.run([sys.executable, "-m", "mcpgate", "audit", "summary", str(audit)], cwd=ROOT,
                             capture_output=True, text=True, timeout=30, check=True).stdout
    printed = where[where.index(f"$ mcpgate audit summary {audit}\n"):].split("\n", 2)[2]
    assert printed.rstrip("\n") == textwrap.indent(summary.rstrip("\n"), "  "), printed
    # The summary is of the demo traffic: 3 refunds (1 allowed, 1 over the limit, 1 hidden from support).
    rows = {ln.split()[0]: ln.split()[1:4] for ln in summary.splitlines() if ln[:1].isalpha() and ln.isascii()}
    assert rows["refund"] == ["3", "2", "0"] and rows["delete_customer"] == ["1", "1", "0"], summary
    assert rows["get_balance"] == ["2", "0", "1"], summary
