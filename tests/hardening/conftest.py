"""Hardening fixtures: a live in-process gateway (real sockets, real identity resolver and policy engine) in
front of a recording upstream, and a raw-socket client that reports exactly what came back and when.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httptools
import pytest

from mcpgate.exchange import Exchange, Identified, RequestInfo
from mcpgate.identity import Credentials, IdentityResolver, Principal
from mcpgate.identity.keys import KeySource
from mcpgate.policy import Decision, Policy, load_policy_text
from mcpgate.protocol.model import Operation
from mcpgate.proxy.server import ProxyServer
from mcpgate.proxy.state import ProxySettings
from mcpgate.runtime.observer import ObserverHooks
from tests.proxy.conftest import ScriptedUpstream, UpRequest, json_response

# The gateway limits every corpus case runs under (small enough that oversize cases stay cheap).
LIMITS: dict[str, Any] = {
    "max_body_bytes": 1024 * 1024,
    "max_header_bytes": 16 * 1024,
    "max_headers": 100,
    "max_json_depth": 64,
    "max_batch": 100,
    "max_sse_event_bytes": 256 * 1024,
    "client_header_timeout_s": 2.0,
    "response_timeout_s": 5.0,
}
ALLOWED_ORIGIN = b"http://allowed.example"
DEADLINE_S = 5.0

POLICY = """
apiVersion: mcpgate.dev/v1
kind: Policy
metadata: {name: hardening}
defaults: {effect: deny}
rules:
  - id: allow-safe
    effect: allow
    tools: ["echo", "get_*"]
  - id: no-destructive
    effect: deny
    tools: ["delete_*"]
"""


def _principal(p: Any) -> Principal:
    # The data plane may hand over either the Principal or the `Identified` that carries it.
    return p.principal if isinstance(p, Identified) else p


class GateHooks(ObserverHooks):
    """Real identity (anti-spoof stripping) and real policy, recording every exchange."""

    def __init__(self, policy: Policy, resolver: IdentityResolver) -> None:
        self.policy = policy
        self.resolver = resolver
        self.finished_exchanges: list[Exchange] = []

    def identify(self, request: RequestInfo) -> Identified:
        creds = Credentials(request.conn.peer_host, list(request.headers), request.conn.peer_cert_der,
                            request.conn.tls, request.conn.local_host, request.path)
        res = self.resolver.resolve(creds)
        return Identified(res.principal, res.headers)

    def decide(self, principal: Any, operation: Operation, request: RequestInfo) -> Decision:
        return self.policy.decide(_principal(principal), operation)

    def finished(self, exchange: Exchange) -> None:
        self.finished_exchanges.append(exchange)


def make_hooks(identity: dict[str, Any] | None = None, policy: str = POLICY,
               jwks: KeySource | None = None) -> GateHooks:
    return GateHooks(load_policy_text(policy), IdentityResolver.from_config(identity or {}, jwks=jwks))


def default_upstream_reply(req: UpRequest) -> bytes:
    """Echo the request id so a forwarded request gets a well-formed JSON-RPC answer."""
    import json

    rid: Any = None
    try:
        doc = json.loads(req.body) if req.body else None
        if isinstance(doc, dict):
            rid = doc.get("id")
    except ValueError:
        pass
    if req.method == b"POST" and rid is None:
        return b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n"
    return json_response(json.dumps({"jsonrpc": "2.0", "id": rid, "result": {"content": []}}).encode())


@dataclass
class Rig:
    gw: ProxyServer
    up: ScriptedUpstream
    hooks: GateHooks

    @property
    def port(self) -> int:
        return self.gw.port


UpReply = Callable[[UpRequest, asyncio.StreamWriter], Awaitable[None]]
RigFactory = Callable[..., Awaitable[Rig]]


@pytest.fixture
async def rig() -> AsyncIterator[RigFactory]:
    made: list[Rig] = []

    async def start(*, reply: UpReply | None = None, identity: dict[str, Any] | None = None,
                    policy: str = POLICY, jwks: KeySource | None = None, **overrides: Any) -> Rig:
        async def default(req: UpRequest, w: asyncio.StreamWriter) -> None:
            w.write(default_upstream_reply(req))

        up = ScriptedUpstream(reply or default)
        up.server = await asyncio.start_server(up._conn, "127.0.0.1", 0)
        hooks = make_hooks(identity, policy, jwks)
        base: dict[str, Any] = {
            "upstream_host": "127.0.0.1", "upstream_port": up.port,
            "upstream_host_header": b"127.0.0.1:%d" % up.port, "public_base_path": "/mcp",
            # The MCP endpoint and the legacy HTTP+SSE stream; `/messages/` is learned from `endpoint`.
            "mcp_paths": frozenset({b"/mcp", b"/sse"}),
            "allowed_origins": frozenset({ALLOWED_ORIGIN}),
            # As runtime/build.py wires it: the resolver decides which client headers never go upstream.
            "strip_upstream_headers": hooks.resolver.strip_upstream}
        settings = ProxySettings(**{**base, **LIMITS, **overrides})
        gw = ProxyServer(settings, hooks, asyncio.get_running_loop())
        await gw.start("127.0.0.1", 0)
        r = Rig(gw, up, hooks)
        made.append(r)
        return r

    yield start
    for r in made:
        await r.gw.drain(0.1)
        assert r.up.server is not None
        r.up.server.close()


# --------------------------------------------------------------------------------------------- client


@dataclass
class Response:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes

    def header(self, name: bytes) -> bytes | None:
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None


@dataclass
class Exchanged:
    responses: list[Response] = field(default_factory=list)
    closed: bool = False       # the gateway closed the connection
    timed_out: bool = False    # neither enough answers nor a close within the deadline
    elapsed: float = 0.0
    raw: bytes = b""


class _RespParser:
    def __init__(self) -> None:
        self.done: list[Response] = []
        self._h: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []
        self.p = httptools.HttpResponseParser(self)

    def on_message_begin(self) -> None:
        self._h, self._body = [], []

    def on_header(self, k: bytes, v: bytes) -> None:
        self._h.append((k, v))

    def on_body(self, b: bytes) -> None:
        self._body.append(b)

    def on_message_complete(self) -> None:
        self.done.append(Response(self.p.get_status_code(), self._h, b"".join(self._body)))


async def exchange_raw(port: int, data: bytes | list[bytes], *, want: int = 1,
                       deadline: float = DEADLINE_S, pause: float = 0.0) -> Exchanged:
    """Send raw bytes (a list: sent in pieces, `pause` apart); read until `want` responses or close."""
    out = Exchanged()
    t0 = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    parser = _RespParser()
    try:
        for i, piece in enumerate(data if isinstance(data, list) else [data]):
            if i and pause:
                await asyncio.sleep(pause)
            writer.write(piece)
            try:
                await writer.drain()
            except ConnectionError:
                break
        while len(parser.done) < want:
            left = deadline - (time.monotonic() - t0)
            if left <= 0:
                out.timed_out = True
                break
            try:
                chunk = await asyncio.wait_for(reader.read(65536), left)
            except TimeoutError:
                out.timed_out = True
                break
            except ConnectionError:
                out.closed = True
                break
            if not chunk:
                out.closed = True
                break
            out.raw += chunk
            try:
                parser.p.feed_data(chunk)
            except httptools.HttpParserError:
                break
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except (ConnectionError, OSError):
            pass
    out.responses = parser.done
    out.elapsed = time.monotonic() - t0
    return out


HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-type", b"application/json"),
    (b"accept", b"application/json, text/event-stream"),
]


def post(body: bytes, *, headers: list[tuple[bytes, bytes]] | None = None, version: str | None = "2025-06-18",
         path: bytes = b"/mcp", method: bytes = b"POST", base: list[tuple[bytes, bytes]] | None = None) -> bytes:
    """A well-framed HTTP/1.1 request carrying `body`."""
    hs = list(HEADERS if base is None else base)
    if version is not None:
        hs.append((b"mcp-protocol-version", version.encode()))
    hs += headers or []
    head = [method, b" ", path, b" HTTP/1.1\r\nhost: gateway\r\n"]
    for k, v in hs:
        head += [k, b": ", v, b"\r\n"]
    head.append(b"content-length: %d\r\n\r\n" % len(body))
    return b"".join(head) + body


HEALTH_BODY = b'{"jsonrpc":"2.0","id":"health","method":"tools/call","params":{"name":"echo","arguments":{}}}'


async def assert_healthy(port: int) -> None:
    """The gateway still answers a normal request on a fresh connection (no crash, no wedged loop)."""
    got = await exchange_raw(port, post(HEALTH_BODY))
    assert got.responses, f"gateway no longer answers a normal request (closed={got.closed})"
    assert got.responses[0].status == 200, got.responses[0]
    assert b'"health"' in got.responses[0].body
