"""`mcpgate audit show|summary|verify` as a user runs them: output and exit codes (0, 1, 3)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mcpgate.audit import rotated_files
from mcpgate.protocol.model import Outcome

from .factory import ALICE, ALLOW, BOB, DENY, lines_of, make_exchange, write_lines, write_log

ROOT = Path(__file__).resolve().parents[2]


def mcpgate(*args: str) -> subprocess.CompletedProcess[str]:
    """The real command in a subprocess (exit codes as a shell sees them)."""
    return subprocess.run([sys.executable, "-m", "mcpgate", "audit", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=False)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., subprocess.CompletedProcess[str]]:
    """The same entry point in-process (faster; same parser, handlers and exit codes)."""
    from mcpgate.cli import main

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        code = main(["audit", *args])
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, out, err)

    return run


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    from mcpgate.audit import AuditLog

    path = tmp_path / "audit.jsonl"
    log = AuditLog.from_config({"path": str(path), "rotate_bytes": 5000})
    log.start()
    for i in range(1, 21):
        denied = i % 4 == 0
        log.record(make_exchange(i, tool="refund" if i % 2 else "search", principal=BOB if denied else ALICE,
                                 decision=DENY if denied else ALLOW,
                                 outcome=Outcome.DENIED if denied else Outcome.OK, latency_ms=float(i)))
    assert log.flush(5)
    log.close()
    return path


def test_verify_ok_then_tampered(log_path: Path) -> None:
    ok = mcpgate("verify", str(log_path))
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("ok: 20 records (seq 1..20)")
    middle = rotated_files(str(log_path))[1]
    lines = lines_of(middle)
    lines[2] = lines[2].replace(b'"rev-7"', b'"rev-8"')
    write_lines(middle, lines)
    bad = mcpgate("verify", str(log_path), "--format", "json")
    assert bad.returncode == 1
    out = json.loads(bad.stdout)
    assert out["ok"] is False
    assert out["problem"] == {"file": middle, "line": 3, "kind": "edited",
                              "detail": "the record's hash does not match the bytes"}


def test_verify_truncated_tail_warns_and_strict_fails(tmp_path: Path, cli: Callable[..., Any]) -> None:
    path = tmp_path / "a.jsonl"
    write_log(path, 3)
    with open(path, "ab") as fh:
        fh.write(b'{"args_di')
    warn = cli("verify", str(path))
    assert warn.returncode == 0
    assert "warning" in warn.stdout and ":5: truncated tail:" in warn.stdout
    strict = cli("verify", "--strict", str(path))
    assert strict.returncode == 1 and "FAILED" in strict.stdout


def test_show_filters_and_json(log_path: Path, cli: Callable[..., Any]) -> None:
    res = cli("show", str(log_path), "--decision", "deny", "--format", "json")
    assert res.returncode == 0, res.stderr
    recs = [json.loads(x) for x in res.stdout.splitlines()]
    assert [r["seq"] for r in recs] == [4, 8, 12, 16, 20]
    assert {r["principal"] for r in recs} == {BOB.id}
    table = cli("show", str(log_path), "--tool", "refund", "--limit", "3")
    lines = table.stdout.splitlines()
    assert lines[0].split()[:3] == ["TIME", "PRINCIPAL", "AUTH"]
    assert len(lines) == 4 and all("tools/call refund" in x for x in lines[1:])


def test_show_follow_for_prints_the_set_then_stops(log_path: Path, cli: Callable[..., Any]) -> None:
    res = cli("show", str(log_path), "--follow", "--follow-for", "0.3", "--format", "json")
    assert res.returncode == 0, res.stderr
    assert [json.loads(x)["seq"] for x in res.stdout.splitlines()] == list(range(1, 21))


def test_summary_json(log_path: Path, cli: Callable[..., Any]) -> None:
    res = cli("summary", str(log_path), "--format", "json")
    assert res.returncode == 0, res.stderr
    s = json.loads(res.stdout)
    assert s["records"] == 20 and s["decisions"] == {"allow": 15, "deny": 5}
    assert s["denials_by_rule"] == [{"rule": "no-refunds", "denials": 5}]
    text = cli("summary", str(log_path))
    assert "DENIALS BY PRINCIPAL" in text.stdout and "refund" in text.stdout


def test_bad_arguments_exit_3(log_path: Path) -> None:
    res = mcpgate("show", str(log_path), "--since", "last tuesday")
    assert res.returncode == 3, (res.stdout, res.stderr)
    assert res.stderr == "mcpgate: `last tuesday` is neither a duration (30m, 1h, 2d) nor an RFC 3339 time\n"


@pytest.mark.parametrize("args", [
    ["show", "/nonexistent/audit.jsonl"],
    ["show", "{log}", "--from", "2026-13-45"],
    ["show", "{log}", "--decision", "maybe"],
    ["summary", "{log}", "--bogus"],
    ["verify"],
    [],
])
def test_more_bad_arguments_exit_3(log_path: Path, args: list[str], cli: Callable[..., Any]) -> None:
    res = cli(*[a.format(log=log_path) for a in args])
    assert res.returncode == 3, (res.stdout, res.stderr)
    assert res.stderr.startswith("mcpgate: ")
