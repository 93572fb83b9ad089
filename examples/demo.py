"""`make demo`: the example server behind mcpgate, real SDK client traffic through it, and a readable summary.

Run `python -m examples.demo [--keep-running]`. Everything listens on 127.0.0.1 on free ports and is stopped
on exit, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import mcp_types as t
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client

from examples.procs import HOST, ROOT, Proc, free_port

CONFIG = Path(__file__).with_name("mcpgate.yaml")
POLICY = ROOT / "policies" / "payments.yaml"


@dataclass
class Row:
    who: str
    operation: str
    outcome: str
    detail: str


BILLING = "billing.payments.serviceaccount.identity.linkerd.cluster.local"
SUPPORT = "agent.support.serviceaccount.identity.linkerd.cluster.local"


def _text(result: t.CallToolResult) -> str:
    return " ".join(c.text for c in result.content if isinstance(c, t.TextContent))


def _client(url: str, identity: str | None, mode: str = "auto") -> Client:
    # The demo client plays the Linkerd proxy: on loopback (a trusted proxy by default) it may set
    # `l5d-client-id`. From any untrusted peer mcpgate would drop that header and see an anonymous caller.
    headers = {"l5d-client-id": identity} if identity else {}
    http = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30.0))
    return Client(streamable_http_client(url, http_client=http), mode=mode, read_timeout_seconds=30)


async def _call(c: Client, who: str, rows: list[Row], tool: str, args: dict[str, Any]) -> None:
    op = f"tools/call {tool}"
    try:
        result = await c.call_tool(tool, args)
    except MCPError as e:
        rows.append(Row(who, op, f"refused ({e.code})", e.message))
        return
    rows.append(Row(who, op, "tool error" if result.is_error else "ok", _text(result)))


async def _list(c: Client, who: str, rows: list[Row]) -> None:
    names = sorted(x.name for x in (await c.list_tools()).tools)
    rows.append(Row(who, "tools/list", "ok", ", ".join(names) or "(nothing visible)"))


async def drive(url: str) -> list[Row]:
    """What agents would send: discovery, reads, refunds in and over policy, a destructive call, a bad account."""
    rows: list[Row] = []
    async with _client(url, BILLING) as c:  # 2026-07-28: the SDK's default mode
        who = f"billing ({c.protocol_version})"
        await _list(c, who, rows)
        await _call(c, who, rows, "get_balance", {"account": "ACC-1001"})
        await _call(c, who, rows, "refund", {"account": "ACC-1002", "amount": 25.0, "reason": "duplicate charge"})
        await _call(c, who, rows, "refund", {"account": "ACC-1002", "amount": 900.0, "reason": "goodwill"})
        await _call(c, who, rows, "delete_customer", {"id": "c-1003"})
        await _call(c, who, rows, "get_balance", {"account": "ACC-9999"})
    async with _client(url, SUPPORT, mode="legacy") as c:  # an `initialize`-era client on the same gateway
        who = f"support ({c.protocol_version})"
        await _list(c, who, rows)
        await _call(c, who, rows, "search_customers", {"query": "hopper"})
        await _call(c, who, rows, "refund", {"account": "ACC-1002", "amount": 5.0, "reason": "asked nicely"})
    async with _client(url, None) as c:
        await _list(c, "anonymous", rows)
    return rows


def print_rows(rows: list[Row]) -> None:
    width = max(len(r.operation) for r in rows)
    print("\nWhat the client saw (through mcpgate):\n")
    for r in rows:
        detail = textwrap.shorten(r.detail.replace("\n", " "), 64)
        print(f"  {r.who:<22} {r.operation:<{width}}  {r.outcome:<16} {detail}")


@dataclass
class Probe:
    """What the admin listener answered while mcpgate was up."""

    url: str
    state: str
    body: str = ""


def probe_admin(admin: int) -> dict[str, Probe]:
    base = f"http://{HOST}:{admin}"
    out: dict[str, Probe] = {}
    for path in ("/metrics", "/dashboard", "/api/status"):
        try:
            r = httpx.get(base + path, timeout=2.0)
            out[path] = Probe(base + path, f"HTTP {r.status_code}", r.text)
        except httpx.HTTPError as e:
            out[path] = Probe(base + path, f"not answering ({type(e).__name__})")
    return out


def wait_audit_settled(admin: int, timeout: float = 5.0) -> None:
    """Until the audit writer has acknowledged everything queued (`acked_seq` stops moving)."""
    last, deadline = -1, time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            seq = httpx.get(f"http://{HOST}:{admin}/api/status", timeout=2.0).json()["audit"]["acked_seq"]
        except (httpx.HTTPError, KeyError, TypeError, ValueError):
            return
        if seq == last:
            return
        last = seq
        time.sleep(0.1)


def audit_summary(audit: Path) -> str:
    """`mcpgate audit summary` over the demo's audit log, run as the real CLI."""
    proc = subprocess.run([sys.executable, "-m", "mcpgate", "audit", "summary", str(audit)], cwd=ROOT,
                          capture_output=True, text=True, timeout=30, check=False)
    return proc.stdout if proc.returncode == 0 else f"(audit summary failed: {proc.stderr.strip()})\n"


def print_where_to_look(probes: dict[str, Probe], audit: Path, work: Path, live: bool) -> None:
    print("\nWhere to look:\n")
    when = "" if live else ", during the run; `--keep-running` keeps it up"
    metrics, dashboard = probes["/metrics"], probes["/dashboard"]
    print(f"  {'metrics':<14} {metrics.url}  ({metrics.state}{when})")
    if metrics.state == "HTTP 200":
        # One counter per (method, tool, caller, decision, outcome, ...): what mcpgate made of the traffic.
        lines = [ln for ln in metrics.body.splitlines()
                 if ln.startswith("mcpgate_operations_total{") and 'method="tools/call"' in ln]
        for ln in lines[:12]:
            print(f"      {ln}")
    print(f"  {'dashboard':<14} {dashboard.url}  ({dashboard.state}{when})")
    print(f"  {'process logs':<14} {work}/server.log, {work}/mcpgate.log")
    if not audit.exists():
        print(f"  {'audit log':<14} (none written at {audit})")
        return
    n = sum(1 for _ in audit.open())
    print(f"  {'audit log':<14} {audit}  ({n} lines)")
    print(f"  {'':<14} review: mcpgate audit show {audit}")
    print(f"  {'':<14} verify the hash chain: mcpgate audit verify {audit}")
    print(f"\n$ mcpgate audit summary {audit}\n")
    print(textwrap.indent(audit_summary(audit).rstrip("\n"), "  "))


async def run(keep_running: bool, workdir: Path | None = None) -> int:
    # Logs and the audit log stay after the run, in a git-ignored directory, so they can be explored.
    work = workdir or ROOT / ".demo" / time.strftime("run-%Y%m%dT%H%M%SZ", time.gmtime())
    work.mkdir(parents=True, exist_ok=True)
    audit = work / "audit.jsonl"
    server_port, gw_port, admin = free_port(), free_port(), free_port()
    server = Proc("example server", [sys.executable, "-m", "examples.server", "--port", str(server_port)],
                  server_port, work / "server.log")
    upstream = f"http://{HOST}:{server_port}/mcp"
    gateway = Proc(
        "mcpgate",
        [sys.executable, "-m", "mcpgate", "serve", "--config", str(CONFIG), "--upstream", upstream,
         "--listen", f"{HOST}:{gw_port}", "--admin-listen", f"{HOST}:{admin}"],
        gw_port, work / "mcpgate.log",
        env={"MCPGATE_AUDIT__PATH": str(audit)},
    )
    try:
        print(f"Starting the example MCP server on {upstream} ...")
        await anyio.to_thread.run_sync(server.start().wait_accepting)
        print(f"Starting mcpgate on http://{HOST}:{gw_port}/mcp (admin {HOST}:{admin}, config {CONFIG}) ...")
        print(f"  policy {POLICY.relative_to(ROOT)}, identity from Linkerd's `l5d-client-id` header")
        gateway.start()
        try:
            await anyio.to_thread.run_sync(gateway.wait_http_ok, f"http://{HOST}:{admin}/healthz")
        except RuntimeError as e:
            print(f"\nmcpgate did not become healthy:\n{e}", file=sys.stderr)
            return 1
        print("Driving client traffic through mcpgate with the official Python SDK ...\n")
        with anyio.fail_after(90):
            rows = await drive(f"http://{HOST}:{gw_port}/mcp")
        print_rows(rows)
        probes = await anyio.to_thread.run_sync(probe_admin, admin)
        if keep_running:
            await anyio.to_thread.run_sync(wait_audit_settled, admin)
            print_where_to_look(probes, audit, work, live=True)
            print(f"\nStill running: point any MCP client at http://{HOST}:{gw_port}/mcp."
                  " Ctrl-C stops everything.")
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    break
            return 0
    finally:
        # A clean stop drains mcpgate, which flushes and fsyncs the audit log before the summary reads it.
        gateway.stop()
        server.stop()
        print("\nStopped mcpgate and the example server.")
    print_where_to_look(probes, audit, work, live=False)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--keep-running", action="store_true", help="leave everything up until Ctrl-C")
    parser.add_argument("--workdir", type=Path, help="where logs and the audit log go (default .demo/run-<time>)")
    args = parser.parse_args(argv)
    # Ctrl-C and SIGTERM both end the demo through the `finally` that stops the children, even when the
    # shell started us with SIGINT ignored (a background job).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        return anyio.run(run, args.keep_running, args.workdir)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
