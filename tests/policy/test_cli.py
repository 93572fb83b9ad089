"""`mcpgate policy check|test|explain|schema` through `mcpgate.cli.main`; a real MCP server for --against."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from mcp.server.mcpserver import MCPServer

from mcpgate.cli import main

POLICIES = Path(__file__).resolve().parents[2] / "policies"
PAYMENTS = str(POLICIES / "payments.yaml")
BILLING = "spiffe://cluster.local/ns/payments/sa/billing"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_check_ok(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "policy", "check", PAYMENTS)
    assert code == 0
    assert out.startswith("ok: 6 rules from 1 file(s), revision ")


def test_check_invalid_exits_3_with_location(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: mcpgate.dev/v1\nkind: Policy\nrules:\n  - id: x\n    efect: allow\n")
    code, _, err = run(capsys, "policy", "check", str(bad))
    assert code == 3
    assert f"{bad}:5: unknown key `efect`" in err
    code, out, _ = run(capsys, "policy", "check", str(bad), "--format", "json")
    assert code == 3
    data = json.loads(out)
    assert data["ok"] is False and data["error"]["line"] == 5 and data["error"]["path"] == "rules[0].efect"


def test_check_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "policy", "check", PAYMENTS, "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["ok"] and data["rules"] == 6 and len(data["revision"]) == 12


def test_test_command(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(capsys, "policy", "test", "--tests", str(POLICIES))
    assert code == 0, out
    assert "0 failed" in out
    failing = tmp_path / "f.tests.yaml"
    failing.write_text("apiVersion: mcpgate.dev/v1\nkind: PolicyTests\ntests:\n"
                       f"  - {{name: n, principal: '{BILLING}', tool: refund, arguments: {{amount: 500}},"
                       " expect: allow}\n")
    code, out, _ = run(capsys, "policy", "test", PAYMENTS, "--tests", str(failing), "--format", "json")
    data = json.loads(out)
    assert code == 1
    assert data["counts"] == {"pass": 0, "fail": 1, "skip": 0}
    assert "billing-reads" in data["unexercised_rules"]


def test_explain(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "policy", "explain", PAYMENTS, "--principal", BILLING, "--tool", "refund",
                       "--args", '{"amount": 50}')
    assert code == 0
    assert out.startswith("ALLOW: tool `refund` allowed by rule `billing-refunds`")
    code, out, _ = run(capsys, "policy", "explain", PAYMENTS, "--principal", "anonymous", "--tool",
                       "delete_account", "--format", "json")
    assert code == 2
    data = json.loads(out)
    assert data["decision"]["rule_ids"] == ["no-destructive"] and data["decision"]["hidden"] is True
    code, out, _ = run(capsys, "policy", "explain", PAYMENTS, "--principal",
                       '{"id": "jwt:https://auth.example.com#a", "claims": {"iss": "https://auth.example.com",'
                       ' "team": "support"}, "scopes": ["payments.read"]}', "--resource",
                       "ledger://accounts/7")
    assert code == 0 and "support-read-only" in out
    code, _, err = run(capsys, "policy", "explain", PAYMENTS, "--principal", "{nope", "--tool", "x")
    assert code == 3 and "invalid --principal" in err


def test_schema(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "policy", "schema")
    assert code == 0 and json.loads(out)["title"] == "mcpgate policy file"
    code, out, _ = run(capsys, "policy", "schema", "--tests")
    assert json.loads(out)["properties"]["kind"] == {"const": "PolicyTests"}


@pytest.fixture
def mcp_server() -> Iterator[str]:
    """A real MCP server (the official SDK) on 127.0.0.1, streamable HTTP."""
    server = MCPServer("payments")

    @server.tool()
    def refund(amount: float, currency: str = "USD") -> str:
        return f"refunded {amount} {currency}"

    @server.tool()
    def get_balance(account: str) -> str:
        return account

    @server.tool()
    def export_all() -> str:
        return ""

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = server.streamable_http_app()
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    userver = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(userver.serve(sockets=[sock])), daemon=True)
    thread.start()
    for _ in range(200):
        if userver.started:
            break
        threading.Event().wait(0.02)
    try:
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        userver.should_exit = True
        thread.join(5)
        sock.close()


def test_check_against_a_live_server(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                     mcp_server: str) -> None:
    code, out, _ = run(capsys, "policy", "check", PAYMENTS, "--against", mcp_server, "--format", "json")
    data = json.loads(out)
    assert data["tools"] == 3
    codes = sorted((f["severity"], f["code"], f["message"]) for f in data["findings"])
    assert ("info", "uncovered-tool", "tool `export_all` is named by no rule (denied by default)") in codes
    assert ("info", "unknown-tool",
            "rule `no-destructive` names tool `delete_*`, which the server does not offer") in codes
    assert ("warning", "unknown-tool",
            "rule `support-read-only` names tool `search_*`, which the server does not offer") in codes
    assert code == 0  # guards and globs for absent tools are not errors
    assert data["ok"] is True
    good = tmp_path / "good.yaml"
    good.write_text("apiVersion: mcpgate.dev/v1\nkind: Policy\nrules:\n"
                    f"  - {{id: r, effect: allow, principals: ['{BILLING}'], tools: refund, "
                    "arguments: {amount: {maximum: 5}, currency: {const: USD}}}\n")
    code, out, _ = run(capsys, "policy", "check", str(good), "--against", mcp_server)
    assert code == 0, out
    bad = tmp_path / "bad.yaml"
    bad.write_text(good.read_text().replace("currency:", "curency:"))
    code, out, _ = run(capsys, "policy", "check", str(bad), "--against", mcp_server)
    assert code == 3
    assert "constrains argument `curency`, which tool `refund` does not take [unknown-argument]" in out
    typo = tmp_path / "typo.yaml"
    typo.write_text(good.read_text().replace("tools: refund", "tools: refnud"))
    code, out, _ = run(capsys, "policy", "check", str(typo), "--against", mcp_server)
    assert code == 3 and "error: rule `r` names tool `refnud`" in out


def test_check_against_unreachable_server(capsys: pytest.CaptureFixture[str]) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    code, _, err = run(capsys, "policy", "check", PAYMENTS, "--against", f"http://127.0.0.1:{port}/mcp",
                       "--timeout", "2")
    assert code == 1 and "cannot list tools" in err
