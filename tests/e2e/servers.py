"""In-process real servers on 127.0.0.1 for the identity e2e tests: the example MCP server behind a middleware
that records every request's headers (to prove what the gateway forwards), and a JWKS endpoint."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import uvicorn

from examples.server import make_app


class RecordingUpstream:
    """`examples.server` (stateful streamable HTTP) on an ephemeral port; `headers` holds each request's
    headers as (lowercase name, value) pairs, in arrival order."""

    def __init__(self) -> None:
        self.headers: list[list[tuple[str, str]]] = []
        self._lock = threading.Lock()
        app = make_app()

        async def recording(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                seen = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope["headers"]]
                with self._lock:
                    self.headers.append(seen)
            await app(scope, receive, send)

        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._sock.getsockname()[1])
        self._server = uvicorn.Server(uvicorn.Config(recording, log_level="warning", lifespan="on",
                                                     timeout_graceful_shutdown=1))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        daemon=True, name="recording-upstream")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def start(self) -> RecordingUpstream:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("recording upstream did not start")
            time.sleep(0.02)
        return self

    def snapshot(self) -> list[list[tuple[str, str]]]:
        with self._lock:
            return list(self.headers)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(5)
        self._sock.close()


class JwksServer:
    """Serves a JWKS document at `/jwks.json` over plain HTTP on loopback; `set()` swaps it (key rotation)."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self._body = json.dumps(doc).encode()
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits += 1
                if self.path != "/jwks.json":
                    self.send_error(404)
                    return
                body = outer._body
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/jwks.json"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True, name="jwks")
        self._thread.start()

    def set(self, doc: dict[str, Any]) -> None:
        self._body = json.dumps(doc).encode()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
