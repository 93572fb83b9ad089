"""Downstream side of the data plane: one asyncio Protocol per client connection, framed with httptools.

Requests are parsed as bytes arrive; a complete request is handed to a `Flow`. Pipelined requests wait
their turn (answers must go out in order), with reading paused past a bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections import deque
from dataclasses import dataclass
from typing import Protocol, cast

import httptools

from mcpgate._types import Headers
from mcpgate.errors import BodyTooLarge, HeaderTooLarge, MalformedHttp, McpgateError
from mcpgate.exchange import ConnInfo
from mcpgate.proxy.responses import render_error
from mcpgate.proxy.state import GatewayState


@dataclass(slots=True)
class Request:
    method: bytes
    target: bytes
    headers: Headers
    body: bytes
    keep_alive: bool
    http_11: bool


class ActiveFlow(Protocol):
    """What a connection needs of the flow answering its current request."""

    def start(self) -> None: ...
    def tick(self, now: float) -> None: ...
    def client_gone(self) -> None: ...
    def pause_upstream(self) -> None: ...
    def resume_upstream(self) -> None: ...


class ClientConnection(asyncio.Protocol):
    """One client connection: parse, queue, hand each request to a Flow, write what flows produce."""

    def __init__(self, state: GatewayState) -> None:
        self.state = state
        self.transport: asyncio.Transport | None = None
        self.conn: ConnInfo | None = None
        self.parser = httptools.HttpRequestParser(self)
        self._url = b""
        self._headers: Headers = []
        self._header_bytes = 0
        self._body: list[bytes] = []
        self._body_len = 0
        self._queue: deque[Request] = deque()
        self.active: ActiveFlow | None = None  # the Flow answering the oldest request
        self._closing = False
        self._close_after = False
        self._paused_reading = False
        self.write_paused = False
        self._write_waiters: list[object] = []
        # Slowloris guard, checked by the server's once-a-second ticker (no timer per request).
        self.head_deadline: float | None = None

    # connection lifecycle
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # Heads and bodies go out as separate writes: without NODELAY, Nagle + delayed ACK stall them.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer = transport.get_extra_info("peername") or ("", 0)
        sslobj = transport.get_extra_info("ssl_object")
        cert = sslobj.getpeercert(binary_form=True) if sslobj is not None else None
        local = transport.get_extra_info("sockname") or ("", 0)
        self.conn = ConnInfo(str(peer[0]), int(peer[1]) if len(peer) > 1 else 0, sslobj is not None, cert,
                             str(local[0]))
        self.state.connections.add(self)
        self.state.counters.connections += 1
        if len(self.state.connections) > self.state.settings.max_connections:
            self.transport.write(render_error(_overloaded(), request_id=None, protocol_version=None,
                                         keep_alive=False))
            self._close()
            return
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self.state.connections.discard(self)
        self.transport = None
        self._closing = True
        self.head_deadline = None
        active, self.active = self.active, None
        if active is not None:
            active.client_gone()

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # The request itself was complete and is being answered (405 / typed error); upgrades and
            # CONNECT tunnels are never honoured, so the connection closes once that answer is out.
            self._close_after = True
            if self.active is None:
                self._close()
        except httptools.HttpParserCallbackError as exc:
            # Our own limit checks raise inside parser callbacks; httptools wraps them.
            inner = exc.__context__
            self._reject(inner if isinstance(inner, McpgateError) else MalformedHttp(f"malformed HTTP request: {exc}"))
        except httptools.HttpParserError as exc:
            self._reject(MalformedHttp(f"malformed HTTP request: {exc}"))
        except McpgateError as exc:
            self._reject(exc)

    def pause_writing(self) -> None:
        self.write_paused = True
        if self.active is not None:
            self.active.pause_upstream()

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.active is not None:
            self.active.resume_upstream()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = []
        self._header_bytes = 0
        self._body = []
        self._body_len = 0

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._header_bytes += len(url)
        if self._header_bytes > self.state.settings.max_header_bytes:
            raise HeaderTooLarge("request line and headers exceed the limit")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value) + 4
        if self._header_bytes > self.state.settings.max_header_bytes:
            raise HeaderTooLarge(f"request headers exceed {self.state.settings.max_header_bytes} bytes")
        if len(self._headers) >= self.state.settings.max_headers:
            raise HeaderTooLarge(f"more than {self.state.settings.max_headers} request headers")
        if b"_" in name:
            # As nginx does by default: CGI/WSGI servers read `l5d_client_id` as `l5d-client-id`, so an
            # underscore spelling could carry an identity header past the trust rules. Dropped, counted.
            self.state.counters.underscore_headers_dropped += 1
            return
        # Names are lowercased once here (they are case-insensitive), so every later lookup is exact.
        self._headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        for k, v in self._headers:
            if k == b"content-length":
                try:
                    n = int(v)
                except ValueError:
                    raise MalformedHttp("invalid content-length") from None
                if n > self.state.settings.max_body_bytes:
                    raise BodyTooLarge(
                        f"request body of {n} bytes exceeds the limit of {self.state.settings.max_body_bytes}",
                        data={"limit": self.state.settings.max_body_bytes})

    def on_body(self, body: bytes) -> None:
        self._body_len += len(body)
        if self._body_len > self.state.settings.max_body_bytes:
            raise BodyTooLarge(f"request body exceeds the limit of {self.state.settings.max_body_bytes} bytes",
                               data={"limit": self.state.settings.max_body_bytes})
        self._body.append(body)

    def on_message_complete(self) -> None:
        # The deadline covered head and body: a request trickled in byte by byte is cut like a slow head.
        self.head_deadline = None
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        self._body = []
        req = Request(self.parser.get_method(), self._url, self._headers, body,
                      self.parser.should_keep_alive(), self.parser.get_http_version() == "1.1")
        self.state.counters.requests += 1
        self._queue.append(req)
        if self.active is None:
            self._next()
        elif len(self._queue) >= self.state.settings.max_pipelined and self.transport is not None:
            self.transport.pause_reading()
            self._paused_reading = True

    # flows call these
    def write(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)

    def writelines(self, parts: list[bytes]) -> None:
        if self.transport is not None:
            self.transport.writelines(parts)

    def finished(self, flow: ActiveFlow, keep_alive: bool) -> None:
        """The active flow wrote its whole response."""
        if self.active is not flow:
            return
        self.active = None
        if not keep_alive or self.state.draining or self._close_after:
            self._close()
            return
        if self._paused_reading and self.transport is not None:
            self._paused_reading = False
            self.transport.resume_reading()
        if self._queue:
            self._next()
        else:
            self._arm_head_timer()

    def _next(self) -> None:
        from mcpgate.proxy.flow import Flow  # flow imports this module for Request

        req = self._queue.popleft()
        assert self.conn is not None
        flow = Flow(self.state, self, self.conn, req)
        self.active = flow
        flow.start()

    def _reject(self, err: McpgateError) -> None:
        """Bad framing: answer once (if nothing else is being answered) and close."""
        self.state.counters.rejected += 1
        if self.transport is not None and self.active is None:
            self.transport.write(render_error(err, request_id=None, protocol_version=None, keep_alive=False))
        self._close()

    def _close(self) -> None:
        self._closing = True
        if self.transport is not None:
            self.transport.close()

    def _arm_head_timer(self) -> None:
        timeout = self.state.settings.client_header_timeout_s
        if timeout > 0 and self.transport is not None:
            self.head_deadline = time.monotonic() + timeout

    def tick(self, now: float) -> None:
        """Once a second: a request head must arrive whole within its deadline (slowloris guard)."""
        if self.head_deadline is not None and now > self.head_deadline and self.active is None:
            self.head_deadline = None
            self._close()
        elif self.active is not None:
            self.active.tick(now)


def _overloaded() -> McpgateError:
    from mcpgate.errors import Overloaded

    return Overloaded("too many client connections")
