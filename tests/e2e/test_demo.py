"""`make demo` works end to end: the example server, mcpgate in front, SDK traffic, a summary, a clean stop."""

from __future__ import annotations

import subprocess
import sys
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
    assert "/metrics  (HTTP 200)" in out
    assert 'decision="deny"' in out
    assert "Stopped mcpgate and the example server." in out
    # Only what exists is printed: the audit log line names a real, verifiable file.
    audit = tmp_path / "audit.jsonl"
    assert f"audit log            {audit}" in out
    verify = subprocess.run([sys.executable, "-m", "mcpgate", "audit", "verify", str(audit)], cwd=ROOT,
                            capture_output=True, text=True, timeout=30, check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr
