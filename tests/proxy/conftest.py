"""Data-plane fixtures: a scripted upstream HTTP server and the gateway, both real sockets on 127.0.0.1.

The scripted upstream is a real HTTP/1.1 server whose answers a test writes byte by byte: the only way to
produce the faults (resets mid-stream, malformed SSE, silence) that an SDK server will not produce on demand.
Behaviour against the real SDK servers is covered in tests/e2e.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httptools
import pytest

from mcpgate.exchange import Exchange, Hooks
from mcpgate.proxy.server import ProxyServer
from mcpgate.proxy.state import ProxySettings
from mcpgate.runtime.observer import ObserverHooks


@dataclass
class UpRequest:
    method: bytes
    target: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes

    def header(self, name: bytes) -> bytes | None:
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None


Handler = Callable[[UpRequest, asyncio.StreamWriter], Awaitable[None]]


class _Parser:
    def __init__(self) -> None:
        self.done: list[UpRequest] = []
        self._h: list[tuple[bytes, bytes]] = []
        self._url = b""
        self._body = b""
        self.p = httptools.HttpRequestParser(self)

    def on_message_begin(self) -> None:
        self._h, self._url, self._body = [], b"", b""

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, k: bytes, v: bytes) -> None:
        self._h.append((k, v))

    def on_body(self, b: bytes) -> None:
        self._body += b

    def on_message_complete(self) -> None:
        self.done.append(UpRequest(self.p.get_method(), self._url, self._h, self._body))


@dataclass
class ScriptedUpstream:
    handler: Handler
    requests: list[UpRequest] = field(default_factory=list)
    server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def _conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        parser = _Parser()
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                parser.p.feed_data(data)
                while parser.done:
                    req = parser.done.pop(0)
                    self.requests.append(req)
                    await self.handler(req, writer)
                    if writer.is_closing():
                        return
        except (ConnectionError, httptools.HttpParserError):
            pass
        finally:
            writer.close()


def json_response(body: bytes, status: int = 200, headers: list[tuple[bytes, bytes]] | None = None) -> bytes:
    head = [b"HTTP/1.1 %d X\r\ncontent-type: application/json\r\ncontent-length: %d\r\n" % (status, len(body))]
    for k, v in headers or []:
        head.append(k + b": " + v + b"\r\n")
    return b"".join(head) + b"\r\n" + body


SSE_HEAD = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
            b"transfer-encoding: chunked\r\n\r\n")


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class RecordingHooks(ObserverHooks):
    """Observer hooks that keep every finished exchange, so tests can assert exactly-once records."""

    def __init__(self) -> None:
        self.finished_exchanges: list[Exchange] = []
        self.started_exchanges: list[Exchange] = []

    def started(self, exchange: Exchange) -> None:
        self.started_exchanges.append(exchange)

    def finished(self, exchange: Exchange) -> None:
        self.finished_exchanges.append(exchange)


@pytest.fixture
async def upstream() -> AsyncIterator[Callable[[Handler], Awaitable[ScriptedUpstream]]]:
    servers: list[ScriptedUpstream] = []

    async def start(handler: Handler) -> ScriptedUpstream:
        up = ScriptedUpstream(handler)
        up.server = await asyncio.start_server(up._conn, "127.0.0.1", 0)
        servers.append(up)
        return up

    yield start
    for s in servers:
        assert s.server is not None
        s.server.close()


GatewayFactory = Callable[..., Awaitable[ProxyServer]]


@pytest.fixture
async def gateway() -> AsyncIterator[GatewayFactory]:
    started: list[ProxyServer] = []

    async def start(up_port: int, hooks: Hooks | None = None, **overrides: Any) -> ProxyServer:
        settings = ProxySettings(
            upstream_host="127.0.0.1", upstream_port=up_port,
            upstream_host_header=b"127.0.0.1:%d" % up_port, public_base_path="/mcp",
            allowed_origins=frozenset({b"http://allowed.example"}),
            **{"mcp_paths": frozenset({b"/mcp", b"/sse", b"/sse-mode", b"/a", b"/b"}), **overrides})
        srv = ProxyServer(settings, hooks or RecordingHooks(), asyncio.get_running_loop())
        await srv.start("127.0.0.1", 0)
        started.append(srv)
        return srv

    yield start
    for srv in started:
        await srv.drain(0.1)
