"""The data plane forwards MCP traffic unchanged: bytes, statuses, headers, streams, and records each exchange."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from mcpgate.protocol.model import Outcome
from tests.proxy.conftest import SSE_HEAD, RecordingHooks, UpRequest, chunk, json_response

CALL = (b'{"jsonrpc":"2.0","id":7,"method":"tools/call",'
        b'"params":{"name":"get_weather","arguments":{"city":"Paris"}}}')
RESULT = b'{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"sunny"}],"isError":false}}'
HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}


async def test_json_call_forwarded_byte_for_byte(upstream, gateway) -> None:
    async def handler(req: UpRequest, w: asyncio.StreamWriter) -> None:
        w.write(json_response(RESULT, headers=[(b"mcp-session-id", b"abc"), (b"x-custom", b"1")]))

    up = await upstream(handler)
    hooks = RecordingHooks()
    gw = await gateway(up.port, hooks)
    async with httpx.AsyncClient() as c:
        r = await c.post(f"http://127.0.0.1:{gw.port}/mcp", content=CALL,
                         headers={**HEADERS, "connection": "keep-alive, x-hop", "x-hop": "secret",
                                  "origin": "http://allowed.example"})
    assert r.status_code == 200
    assert r.content == RESULT
    assert r.headers["mcp-session-id"] == "abc"
    assert r.headers["x-custom"] == "1"
    assert r.headers["x-mcpgate-decision-id"]
    sent = up.requests[0]
    assert sent.body == CALL
    assert sent.header(b"host") == b"127.0.0.1:%d" % up.port
    assert sent.header(b"x-hop") is None, "headers named in Connection are hop-by-hop"
    assert sent.header(b"origin") is None, "origin was validated by the gateway and not forwarded"
    [ex] = hooks.finished_exchanges
    assert ex.operation.target == "get_weather"
    assert ex.outcome is Outcome.OK
    assert ex.decision_id == r.headers["x-mcpgate-decision-id"]
    assert ex.t_end is not None and ex.t_first_byte is not None and ex.t_end >= ex.t_first_byte >= ex.t_start


async def test_sse_events_flushed_as_each_completes(upstream, gateway) -> None:
    release = asyncio.Event()
    progress = (b'event: message\r\ndata: {"jsonrpc":"2.0","method":"notifications/progress",'
                b'"params":{"progressToken":1,"progress":0.5}}\r\n\r\n')
    final = b"event: message\r\ndata: " + RESULT + b"\r\n\r\n"

    async def handler(req: UpRequest, w: asyncio.StreamWriter) -> None:
        w.write(SSE_HEAD + chunk(b": ping\r\n\r\n") + chunk(progress[:20]))
        await w.drain()
        await asyncio.sleep(0.05)
        w.write(chunk(progress[20:]))
        await w.drain()
        await release.wait()
        w.write(chunk(final) + b"0\r\n\r\n")

    up = await upstream(handler)
    hooks = RecordingHooks()
    gw = await gateway(up.port, hooks)
    async with httpx.AsyncClient() as c, c.stream(
            "POST", f"http://127.0.0.1:{gw.port}/mcp", content=CALL, headers=HEADERS) as r:
        assert r.headers["content-type"] == "text/event-stream"
        got = b""
        it = r.aiter_raw()
        while progress not in got:
            got += await asyncio.wait_for(it.__anext__(), 2)
        assert got == b": ping\r\n\r\n" + progress, "events pass byte for byte, before the stream ends"
        assert hooks.finished_exchanges == [], "the call is still open"
        release.set()
        async for part in it:
            got += part
    assert got.endswith(final)
    [ex] = hooks.finished_exchanges
    assert ex.outcome is Outcome.OK


async def test_notification_202_bodyless(upstream, gateway) -> None:
    async def handler(req: UpRequest, w: asyncio.StreamWriter) -> None:
        w.write(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n")

    up = await upstream(handler)
    gw = await gateway(up.port)
    async with httpx.AsyncClient() as c:
        r = await c.post(f"http://127.0.0.1:{gw.port}/mcp", headers=HEADERS,
                         content=b'{"jsonrpc":"2.0","method":"notifications/initialized"}')
    assert r.status_code == 202
    assert r.content == b""


async def test_upstream_error_statuses_and_bodies_pass_through(upstream, gateway) -> None:
    bodies = {
        b"/a": (404, b'{"jsonrpc":"2.0","id":7,"error":{"code":-32601,"message":"Method not found"}}'),
        b"/b": (400, b'{"jsonrpc":"2.0","id":null,"error":{"code":-32022,"message":"Unsupported",'
                     b'"data":{"supported":["2025-11-25"],"requested":"2026-07-28"}}}'),
    }

    async def handler(req: UpRequest, w: asyncio.StreamWriter) -> None:
        if req.method == b"GET":
            w.write(b"HTTP/1.1 405 Method Not Allowed\r\nallow: POST\r\ncontent-length: 0\r\n\r\n")
            return
        status, body = bodies[req.target]
        w.write(json_response(body, status))

    up = await upstream(handler)
    gw = await gateway(up.port)
    async with httpx.AsyncClient() as c:
        for path, (status, body) in bodies.items():
            r = await c.post(f"http://127.0.0.1:{gw.port}{path.decode()}", content=CALL, headers=HEADERS)
            assert (r.status_code, r.content) == (status, body)
        r = await c.get(f"http://127.0.0.1:{gw.port}/mcp", headers={"accept": "text/event-stream"})
        assert r.status_code == 405
        assert r.headers["allow"] == "POST"


async def test_keep_alive_reuses_upstream_connection(upstream, gateway) -> None:
    async def handler(req: UpRequest, w: asyncio.StreamWriter) -> None:
        w.write(json_response(RESULT))

    up = await upstream(handler)
    gw = await gateway(up.port)
    async with httpx.AsyncClient() as c:
        for _ in range(20):
            r = await c.post(f"http://127.0.0.1:{gw.port}/mcp", content=CALL, headers=HEADERS)
            assert r.content == RESULT
    assert len(up.requests) == 20
    assert gw.state.pool.open_connections == 1


async def test_large_argument_passes_intact(upstream, gateway) -> None:
    big = b"x" * (10 * 1024 * 1024)
    body = b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"upload","arguments":{"data":"' + \
        big + b'"}}}'

    async def handler(req: UpRequest, w: asyncio.StreamWriter) -> None:
        w.write(json_response(b'{"jsonrpc":"2.0","id":1,"result":{"content":[],"n":%d}}' % len(req.body)))

    up = await upstream(handler)
    gw = await gateway(up.port)
    async with httpx.AsyncClient(timeout=10) as c:
        r = await c.post(f"http://127.0.0.1:{gw.port}/mcp", content=body, headers=HEADERS)
    assert r.status_code == 200
    assert json.loads(r.content)["result"]["n"] == len(body)
    assert up.requests[0].body == body


@pytest.mark.timeout(300)
async def test_100mib_answers_stream_through(upstream, gateway) -> None:
    """A 100 MiB resource read passes as JSON (past the inspection limit it streams) and as SSE events."""
    blob = b"A" * (1024 * 1024)
    n = 100
    prefix, suffix = b'{"jsonrpc":"2.0","id":1,"result":{"contents":[{"uri":"file:///big","text":"', b'"}]}}'

    async def handler(req: UpRequest, w: asyncio.StreamWriter) -> None:
        if req.target == b"/sse":
            w.write(SSE_HEAD)
            for i in range(n):
                ev = b'data: {"jsonrpc":"2.0","method":"notifications/message","params":{"data":"' + blob + b'"}}\n\n'
                w.write(chunk(ev))
                if i % 8 == 0:
                    await w.drain()
            w.write(chunk(b"data: " + prefix + b"done" + suffix + b"\n\n") + b"0\r\n\r\n")
        else:
            w.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"
                    % (len(prefix) + n * len(blob) + len(suffix)) + prefix)
            for _ in range(n):
                w.write(blob)
                await w.drain()
            w.write(suffix)
        await w.drain()

    up = await upstream(handler)
    hooks = RecordingHooks()
    gw = await gateway(up.port, hooks)
    read = b'{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///big"}}'
    async with httpx.AsyncClient(timeout=60) as c:
        for path in ("/mcp", "/sse"):
            total, tail = 0, b""
            async with c.stream("POST", f"http://127.0.0.1:{gw.port}{path}", content=read, headers=HEADERS) as r:
                assert r.status_code == 200
                async for part in r.aiter_raw():
                    total += len(part)
                    tail = (tail + part)[-200:]
            assert total > n * len(blob), path
            assert tail.rstrip().endswith(suffix), path
    assert len(hooks.finished_exchanges) == 2
