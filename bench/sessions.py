"""Idle SSE sessions for the memory test: a hold-open SSE upstream, and a client that opens streams.

`python -m bench.sessions upstream PORT` runs the upstream; `open_sessions()` is the client side.
"""

from __future__ import annotations

import asyncio
import sys

_HEAD = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
         b"transfer-encoding: chunked\r\n\r\n")
_FIRST = b": open\n\n"
FIRST_EVENT = _HEAD + f"{len(_FIRST):x}\r\n".encode() + _FIRST + b"\r\n"


class _HoldOpen(asyncio.Protocol):
    """Answers any request with SSE headers and one comment event, then holds the stream open."""

    def __init__(self) -> None:
        self.buf = b""
        self.answered = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.answered:
            return
        self.buf += data
        if b"\r\n\r\n" in self.buf:
            self.answered = True
            self.transport.write(FIRST_EVENT)  # type: ignore[attr-defined]


async def _serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_HoldOpen, "127.0.0.1", port, backlog=8192)
    async with server:
        await server.serve_forever()


class Sessions:
    """Open SSE streams through a proxy and keep them open until `close()`."""

    def __init__(self, port: int, method: str = "GET", body: bytes = b"") -> None:
        self.port = port
        self.method = method
        self.body = body
        self.writers: list[asyncio.StreamWriter] = []
        self.failed = 0
        self.first_failure = ""

    async def _one(self) -> None:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", self.port), 10)
            head = (f"{self.method} /mcp HTTP/1.1\r\nhost: 127.0.0.1:{self.port}\r\n"
                    "accept: application/json, text/event-stream\r\ncontent-type: application/json\r\n"
                    f"content-length: {len(self.body)}\r\n\r\n").encode()
            writer.write(head + self.body)
            got = b""
            while b": open" not in got:
                chunk = await asyncio.wait_for(reader.read(4096), 10)
                if not chunk:
                    raise ConnectionError(f"closed after {got[:120]!r}")
                got += chunk
            if not got.startswith(b"HTTP/1.1 200"):
                raise ConnectionError(f"unexpected answer {got[:120]!r}")
            self.writers.append(writer)
        except (OSError, TimeoutError, ConnectionError) as exc:
            self.failed += 1
            if not self.first_failure:
                self.first_failure = str(exc) or type(exc).__name__

    async def open(self, count: int, batch: int = 250) -> None:
        for start in range(0, count, batch):
            await asyncio.gather(*(self._one() for _ in range(min(batch, count - start))))

    async def close(self) -> None:
        for w in self.writers:
            w.close()
        self.writers.clear()
        await asyncio.sleep(0.2)


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "upstream":
        print("usage: python -m bench.sessions upstream PORT", file=sys.stderr)
        return 2
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(_serve(int(argv[1])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
