"""Helpers for the observability end-to-end tests: a client-side wire log and a header-recording upstream.

The wire log is the independent count the gateway's metrics, spans and audit records are checked against:
every JSON-RPC message the official SDK client put on the wire, with the response's decision id header.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx2


@dataclass
class Sent:
    """One HTTP request the client sent and what came back."""

    http_method: str
    messages: list[dict[str, Any]]
    traceparent: str | None
    status: int
    decision_ids: list[str]


@dataclass
class WireLog:
    """Records, from httpx2's response hook, every request the SDK client sent through the gateway."""

    sent: list[Sent] = field(default_factory=list)

    async def on_response(self, response: httpx2.Response) -> None:
        request = response.request
        body = request.content if request.method == "POST" else b""
        parsed: Any = json.loads(body) if body else []
        messages = parsed if isinstance(parsed, list) else [parsed]
        ids = response.headers.get("x-mcpgate-decision-id")
        self.sent.append(Sent(request.method, messages, request.headers.get("traceparent"),
                              response.status_code, ids.split(",") if ids else []))

    def client(self, headers: dict[str, str]) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30.0),
                                  event_hooks={"response": [self.on_response]})

    def operations(self) -> Iterator[tuple[Sent, dict[str, Any]]]:
        """Every JSON-RPC request or notification sent (a message with a `method`): one MCP operation each."""
        for s in self.sent:
            for m in s.messages:
                if isinstance(m, dict) and "method" in m:
                    yield s, m


class RecordingUpstream:
    """A tiny MCP server on 127.0.0.1 that answers every tools/call with a text result and keeps the HTTP
    headers and bodies it received (what the SDK's example server cannot show)."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], dict[str, Any]]] = []
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                upstream.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                if "id" not in body:
                    self.send_response(202)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                result = {"content": [{"type": "text", "text": "recorded"}], "isError": False}
                reply = json.dumps({"jsonrpc": "2.0", "id": body["id"], "result": result}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
