"""Upstream side of the data plane: keep-alive connections to the MCP server, framed with httptools.

A connection serves one request at a time and reports the response to a sink as it arrives; it goes back
to the idle pool only when its response completed cleanly and both sides allow keep-alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections import deque
from collections.abc import Callable
from typing import Protocol, cast

import httptools

from mcpgate._types import Headers
from mcpgate.errors import UpstreamError, UpstreamProtocolError, UpstreamReset, UpstreamUnavailable


class UpstreamSink(Protocol):
    def on_upstream_head(self, status: int, headers: Headers) -> None: ...
    def on_upstream_body(self, data: bytes) -> None: ...
    def on_upstream_end(self) -> None: ...
    def on_upstream_error(self, err: UpstreamError) -> None: ...


class UpstreamConnection(asyncio.Protocol):
    __slots__ = ("_close_delimited", "_headers", "_status_seen", "_writing_paused", "done", "parser",
                 "pool", "reused", "sink", "transport")

    def __init__(self, pool: UpstreamPool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.sink: UpstreamSink | None = None
        self._headers: Headers = []
        self._status_seen = False
        self._close_delimited = False
        self.done = False
        self.reused = False
        self._writing_paused = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # Heads and bodies go out as separate writes: without NODELAY, Nagle + delayed ACK stall them.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(UpstreamProtocolError(f"upstream sent malformed HTTP: {exc}"))

    def eof_received(self) -> bool | None:
        return None  # close the transport; connection_lost reports what that means

    def connection_lost(self, exc: Exception | None) -> None:
        self.pool.forget(self)
        self.transport = None
        sink = self.sink
        if sink is None:
            return
        if self._status_seen and self._close_delimited:
            self.sink = None
            sink.on_upstream_end()
            return
        what = "before responding" if not self._status_seen else "mid-response"
        self._fail(UpstreamReset(f"upstream closed the connection {what}"))

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._headers = []
        self._status_seen = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        self._status_seen = True
        status = self.parser.get_status_code()
        if 100 <= status < 200:
            return  # interim responses (100 Continue) are not forwarded; the final one follows
        te = any(k == b"transfer-encoding" for k, _ in self._headers)
        cl = any(k == b"content-length" for k, _ in self._headers)
        self._close_delimited = not te and not cl and status not in (204, 304)
        if self.sink is not None:
            self.sink.on_upstream_head(status, self._headers)

    def on_body(self, body: bytes) -> None:
        if self.sink is not None:
            self.sink.on_upstream_body(body)

    def on_message_complete(self) -> None:
        if not self._status_seen or 100 <= self.parser.get_status_code() < 200:
            return
        sink, self.sink = self.sink, None
        keep = self.parser.should_keep_alive() and not self._close_delimited
        if sink is not None:
            sink.on_upstream_end()
        if keep and self.transport is not None and not self.done:
            self.pool.release(self)
        else:
            self.close()

    # flow control: the downstream asks us to stop reading while its client is slow
    def pause_reading(self) -> None:
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None:
            self.transport.resume_reading()

    def send(self, sink: UpstreamSink, parts: list[bytes]) -> None:
        self.sink = sink
        self._status_seen = False
        assert self.transport is not None
        self.transport.writelines(parts)

    def abandon(self) -> None:
        """The client went away: this connection's response is unwanted, so it cannot be reused."""
        self.sink = None
        self.close()

    def close(self) -> None:
        self.done = True
        if self.transport is not None:
            self.transport.close()

    def _fail(self, err: UpstreamError) -> None:
        sink, self.sink = self.sink, None
        self.close()
        if sink is not None:
            sink.on_upstream_error(err)


class UpstreamPool:
    """Idle keep-alive connections to one upstream, newest first (warm sockets, fewer stale ones)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, host: str, port: int, *, max_idle: int,
                 connect_timeout: float) -> None:
        self.loop, self.host, self.port = loop, host, port
        self.max_idle = max_idle
        self.connect_timeout = connect_timeout
        self._idle: deque[UpstreamConnection] = deque()
        self.open_connections = 0

    def acquire(self, on_ready: Callable[[UpstreamConnection], None],
                on_error: Callable[[UpstreamError], None]) -> asyncio.Task[None] | None:
        """Hand a connection to `on_ready`, synchronously when one is idle; else connect in a task."""
        while self._idle:
            conn = self._idle.pop()
            if conn.transport is not None and not conn.transport.is_closing():
                conn.reused = True
                on_ready(conn)
                return None
        return self.loop.create_task(self._connect(on_ready, on_error))

    async def _connect(self, on_ready: Callable[[UpstreamConnection], None],
                       on_error: Callable[[UpstreamError], None]) -> None:
        try:
            _, proto = await asyncio.wait_for(
                self.loop.create_connection(lambda: UpstreamConnection(self), self.host, self.port),
                self.connect_timeout)
        except TimeoutError:
            on_error(UpstreamUnavailable(
                f"upstream {self.host}:{self.port} did not accept a connection within {self.connect_timeout}s"))
            return
        except OSError as exc:
            on_error(UpstreamUnavailable(f"upstream {self.host}:{self.port} unreachable: {exc.strerror or exc}"))
            return
        self.open_connections += 1
        on_ready(proto)

    def release(self, conn: UpstreamConnection) -> None:
        if len(self._idle) >= self.max_idle:
            conn.close()
            return
        # The last response may have completed while its flow had reading paused (a slow client, a held
        # list answer): the next request on this connection must be able to read its answer.
        conn.resume_reading()
        self._idle.append(conn)

    def forget(self, conn: UpstreamConnection) -> None:
        self.open_connections -= 1 if self.open_connections > 0 else 0
        try:
            self._idle.remove(conn)
        except ValueError:
            pass

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()
