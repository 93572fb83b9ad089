"""A real `mcpgate serve` process in front of a small fixed upstream process, for the faults that need the
whole gateway (policy reload, kill -9, disk full) and for the soak. Loopback only.

The upstream (`python -m tests.hardening.gateway_proc upstream PORT`) answers every JSON-RPC request with a
result echoing its id (as an SSE stream for the tool `stream`, as JSON otherwise), `GET /mcp` with an SSE
stream that sends `: open` and then a comment every `SSE_TICK_S` (an idle session that stays open), and
notifications with 202. It is deliberately trivial so the gateway is what is measured.
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from examples.procs import ROOT, Proc, free_port

SSE_TICK_S = 5.0
SSE_HEAD = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
            b"transfer-encoding: chunked\r\n\r\n")


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


async def _serve_upstream(port: int) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                body = await reader.readexactly(length) if length else b""
                if head.startswith(b"GET "):
                    writer.write(SSE_HEAD + _chunk(b": open\n\n"))  # bench.sessions waits for this comment
                    while True:
                        await writer.drain()
                        await asyncio.sleep(SSE_TICK_S)
                        writer.write(_chunk(b": keep-alive\n\n"))
                rid: Any = None
                tool: Any = None
                try:
                    doc = json.loads(body) if body else None
                    rid = doc.get("id") if isinstance(doc, dict) else None
                    tool = (doc.get("params") or {}).get("name") if isinstance(doc, dict) else None
                except (ValueError, AttributeError):
                    pass
                if rid is None:
                    writer.write(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n")
                else:
                    out = json.dumps({"jsonrpc": "2.0", "id": rid,
                                      "result": {"content": [{"type": "text", "text": "ok"}]}}).encode()
                    if tool == "stream":  # the answer as an SSE stream: a progress comment, the result, the end
                        writer.write(SSE_HEAD + _chunk(b": working\n\n") + _chunk(b"event: message\ndata: " + out
                                                                                    + b"\n\n") + b"0\r\n\r\n")
                    else:
                        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                                     b"content-length: %d\r\n\r\n" % len(out) + out)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()


@dataclass
class Gate:
    """A running gateway (and its upstream) with its ports and files."""

    tmp: Path
    gw: Proc
    up: Proc
    port: int
    admin: int
    audit: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def metrics(self) -> dict[str, float]:
        """`/metrics` as {'name{labels}': value} (the text format, comments dropped)."""
        text = httpx.get(f"http://127.0.0.1:{self.admin}/metrics", timeout=5).text
        out: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.rpartition(" ")
                try:
                    out[key] = float(value)
                except ValueError:
                    pass
        return out

    def status(self) -> dict[str, Any]:
        return dict(httpx.get(f"http://127.0.0.1:{self.admin}/api/status", timeout=5).json())

    def records(self) -> list[dict[str, Any]]:
        raw = self.audit.read_bytes() if self.audit.exists() else b""
        complete = raw[: raw.rfind(b"\n") + 1]
        return [json.loads(line) for line in complete.splitlines() if line.strip()]

    def stop(self) -> None:
        self.gw.stop()
        self.up.stop()


def start_upstream(tmp: Path) -> Proc:
    port = free_port()
    up = Proc(f"upstream-{port}", [sys.executable, "-m", "tests.hardening.gateway_proc", "upstream", str(port)],
              port, tmp / f"upstream-{port}.log").start()
    up.wait_accepting()
    return up


def start_gateway(tmp: Path, *, extra: list[str] | None = None, audit: str | None = None,
                  up: Proc | None = None, port: int | None = None, admin: int | None = None) -> Gate:
    """Write a config (anonymous identity, policy.yaml if present in `tmp`, file audit) and start the gateway."""
    up = up or start_upstream(tmp)
    port, admin = port or free_port(), admin or free_port()
    audit_path = Path(audit) if audit else tmp / "audit.jsonl"
    lines = [f"listen: 127.0.0.1:{port}", f"upstream: {{url: http://127.0.0.1:{up.port}/mcp}}",
             f"admin: {{listen: 127.0.0.1:{admin}}}", "identity: {sources: [anonymous]}",
             f"audit: {{path: {audit_path}}}", *(extra or [])]
    cfg = tmp / f"mcpgate-{port}.yaml"
    cfg.write_text("\n".join(lines) + "\n")
    gw = Proc(f"mcpgate-{port}", [sys.executable, "-m", "mcpgate", "serve", "--config", str(cfg)], port,
              tmp / f"gw-{port}.log").start()
    try:
        gw.wait_http_ok(f"http://127.0.0.1:{admin}/healthz")
        gw.wait_accepting()
    except BaseException:
        gw.stop()
        up.stop()
        raise
    return Gate(tmp, gw, up, port, admin, audit_path)


HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream",
           "mcp-protocol-version": "2025-06-18"}


def call_body(rid: int, tool: str) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": rid, "method": "tools/call",
                       "params": {"name": tool, "arguments": {}}}).encode()


def classify(status: int, body: bytes) -> str:
    """'allow' (a result), 'deny' (policy.denied), else 'error:<code>' for anything else."""
    try:
        doc = json.loads(body)
    except ValueError:
        return f"error:http{status}:not-json"
    if isinstance(doc, dict) and "result" in doc:
        return "allow"
    code = (doc.get("error") or {}).get("data", {}).get("code") if isinstance(doc, dict) else None
    return "deny" if code == "policy.denied" else f"error:http{status}:{code}"


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "upstream":
        asyncio.run(_serve_upstream(int(sys.argv[2])))
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)

__all__ = ["HEADERS", "ROOT", "Gate", "call_body", "classify", "start_gateway", "start_upstream"]
