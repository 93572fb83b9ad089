"""Failure is explicit, never a hang; bad input gets a typed error and never reaches the upstream."""

from __future__ import annotations

import asyncio
import json
import socket

import httpx
import pytest

from mcpgate.protocol.model import Outcome
from tests.proxy.conftest import SSE_HEAD, RecordingHooks, UpRequest, chunk, json_response

CALL = (b'{"jsonrpc":"2.0","id":"req-1","method":"tools/call",'
        b'"params":{"name":"slow","arguments":{}}}')
HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
MODERN = {**HEADERS, "mcp-protocol-version": "2026-07-28", "mcp-method": "tools/call", "mcp-name": "slow"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(("headers", "status"), [(HEADERS, 200), (MODERN, 502)])
async def test_upstream_refused_answers_request_id(gateway, headers, status) -> None:
    hooks = RecordingHooks()
    gw = await gateway(_free_port(), hooks)
    async with httpx.AsyncClient(timeout=5) as c:
        r = await c.post(f"http://127.0.0.1:{gw.port}/mcp", content=CALL, headers=headers)
    # Legacy-era clients hang on non-2xx for a request, so they get the JSON-RPC error with HTTP 200.
    assert r.status_code == status
    body = r.json()
    assert body["id"] == "req-1"
    assert body["error"]["data"]["code"] == "upstream.unavailable"
    [ex] = hooks.finished_exchanges
    assert ex.outcome is Outcome.UPSTREAM_FAILED


async def test_upstream_reset_mid_stream_gives_error_event_and_clean_end(upstream, gateway) -> None:
    async def handler(req: UpRequest, w: asyncio.StreamWriter) -> None:
        w.write(SSE_HEAD + chunk(b'event: message\ndata: {"jsonrpc":"2.0","method":"notifications/progress",'
                                 b'"params":{"progressToken":1,"progress":1}}\n\n'))
        await w.drain()
        w.transport.abort()

    up = await upstream(handler)
    hooks = RecordingHooks()
    gw = await gateway(up.port, hooks)
    async with httpx.AsyncClient(timeout=5) as c:
        r = await c.post(f"http://127.0.0.1:{gw.port}/mcp", content=CALL, headers=HEADERS)
    assert r.status_code == 200
    events = [e for e in r.text.split("\n\n") if e.strip()]
    assert "notifications/progress" in events[0]
    err = json.loads(events[-1].split("data: ", 1)[1])
    assert err["id"] == "req-1"
    assert err["error"]["data"]["code"] == "upstream.reset"
    [ex] = hooks.finished_exchanges
    assert ex.outcome is Outcome.UPSTREAM_FAILED


async def test_silent_upstream_hits_deadline(upstream, gateway) -> None:
    async def handler(req: UpRequest, w: asyncio.StreamWriter) -> None:
        await asyncio.sleep(30)

    up = await upstream(handler)
    gw = await gateway(up.port, response_timeout_s=0.3)
    async with httpx.AsyncClient(timeout=5) as c:
        r = await c.post(f"http://127.0.0.1:{gw.port}/mcp", content=CALL, headers=HEADERS)
    assert r.status_code == 200
    assert r.json()["id"] == "req-1"
    assert r.json()["error"]["data"]["code"] == "upstream.timeout"


@pytest.mark.parametrize(("body", "code", "status"), [
    (b'{"jsonrpc":"2.0","id":1,"method":"tools/call"', "protocol.malformed_json", 400),
    (b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","name":"b"}}',
     "protocol.duplicate_key", 400),
    (b'{"jsonrpc":"2.0","id":1,"Method":"tools/call","params":{"name":"a"}}', "protocol.case_variant_key", 400),
    (b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":{"x":NaN}}}',
     "protocol.non_finite_number", 400),
    (b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"\\ud800"}}', "protocol.lone_surrogate", 400),
    (b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"\xff"}}', "protocol.invalid_utf8", 400),
    (b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":' + b"[" * 200 + b"]" * 200 + b"}",
     "protocol.nesting_too_deep", 400),
    (b'[{"jsonrpc":"2.0","id":1,"method":"ping"}]', "protocol.batch_not_allowed", 400),
])
async def test_bad_input_rejected_and_never_forwarded(upstream, gateway, body, code, status) -> None:
    async def handler(req: UpRequest, w: asyncio.StreamWriter) -> None:
        w.write(json_response(b"{}"))

    up = await upstream(handler)
    gw = await gateway(up.port)
    headers = {**HEADERS, "mcp-protocol-version": "2025-06-18"}  # batches are forbidden since 2025-06-18
    async with httpx.AsyncClient() as c:
        r = await c.post(f"http://127.0.0.1:{gw.port}/mcp", content=body, headers=headers)
    assert r.status_code == status
    assert r.json()["error"]["data"]["code"] == code
    assert r.json()["error"]["message"]
    assert up.requests == []


async def test_oversized_body_413_and_header_431(upstream, gateway) -> None:
    async def handler(req: UpRequest, w: asyncio.StreamWriter) -> None:
        w.write(json_response(b"{}"))

    up = await upstream(handler)
    gw = await gateway(up.port, max_body_bytes=1000, max_header_bytes=2000)
    async with httpx.AsyncClient() as c:
        r = await c.post(f"http://127.0.0.1:{gw.port}/mcp", content=b"{" + b" " * 2000 + b"}", headers=HEADERS)
        assert r.status_code == 413
        assert r.json()["error"]["data"]["code"] == "protocol.body_too_large"
    async with httpx.AsyncClient() as c:
        r = await c.post(f"http://127.0.0.1:{gw.port}/mcp", content=CALL,
                         headers={**HEADERS, "x-big": "a" * 3000})
        assert r.status_code == 431
    assert up.requests == []


async def test_origin_not_allowed_403(upstream, gateway) -> None:
    async def handler(req: UpRequest, w: asyncio.StreamWriter) -> None:
        w.write(json_response(b"{}"))

    up = await upstream(handler)
    gw = await gateway(up.port)
    async with httpx.AsyncClient() as c:
        r = await c.post(f"http://127.0.0.1:{gw.port}/mcp", content=CALL,
                         headers={**HEADERS, "origin": "http://evil.example"})
    assert r.status_code == 403
    assert r.json()["error"]["data"]["code"] == "protocol.origin_not_allowed"
    assert up.requests == []


@pytest.mark.parametrize(("extra", "ok"), [
    ({"mcp-method": "tools/call", "mcp-name": "slow"}, True),
    ({"mcp-method": "tools/list", "mcp-name": "slow"}, False),
    ({"mcp-method": "tools/call", "mcp-name": "other"}, False),
    ({"mcp-method": "tools/call"}, False),
    ({"mcp-method": "tools/call", "mcp-name": "=?base64?c2xvdw==?="}, True),
])
async def test_modern_routing_headers_checked_against_body(upstream, gateway, extra, ok) -> None:
    async def handler(req: UpRequest, w: asyncio.StreamWriter) -> None:
        w.write(json_response(b'{"jsonrpc":"2.0","id":"req-1","result":{"content":[]}}'))

    up = await upstream(handler)
    gw = await gateway(up.port)
    headers = {**HEADERS, "mcp-protocol-version": "2026-07-28", **extra}
    async with httpx.AsyncClient() as c:
        r = await c.post(f"http://127.0.0.1:{gw.port}/mcp", content=CALL, headers=headers)
    if ok:
        assert r.status_code == 200
        assert len(up.requests) == 1
    else:
        assert r.status_code == 400
        assert r.json()["error"]["code"] == -32020
        assert up.requests == []


async def test_malformed_http_gets_400_not_a_hang(upstream, gateway) -> None:
    async def handler(req: UpRequest, w: asyncio.StreamWriter) -> None:
        w.write(json_response(b"{}"))

    up = await upstream(handler)
    gw = await gateway(up.port)
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
    # Content-Length and Transfer-Encoding together: the classic smuggling shape.
    writer.write(b"POST /mcp HTTP/1.1\r\nhost: x\r\ncontent-length: 4\r\ntransfer-encoding: chunked\r\n\r\n"
                 b"0\r\n\r\n")
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    assert data.startswith(b"HTTP/1.1 400")
    assert up.requests == []


async def test_only_mcp_endpoints_are_forwarded(upstream, gateway) -> None:
    async def handler(req: UpRequest, w: asyncio.StreamWriter) -> None:
        w.write(json_response(b"{}"))

    up = await upstream(handler)
    gw = await gateway(up.port, mcp_paths=frozenset())  # empty: the public base path `/mcp` only
    async with httpx.AsyncClient() as c:
        for method, path in [("GET", "/admin/secrets"), ("DELETE", "/customers/c1"), ("GET", "/mcp/../metrics"),
                             ("POST", "/mcp/")]:
            r = await c.request(method, f"http://127.0.0.1:{gw.port}{path}", headers=HEADERS, content=CALL)
            assert r.status_code == 404, path
            assert r.json()["error"]["data"]["code"] == "protocol.unknown_path"
        ok = await c.post(f"http://127.0.0.1:{gw.port}/mcp", content=CALL, headers=HEADERS)
        assert ok.status_code == 200
    assert [r.target for r in up.requests] == [b"/mcp"]


@pytest.mark.parametrize("headers", [
    [("mcp-session-id", "a"), ("mcp-session-id", "b")],
    [("mcp-session-id", "a b")],
    [("l5d_client_id", "x")],  # dropped, not rejected: the request goes through without it
])
async def test_session_and_underscore_headers(upstream, gateway, headers) -> None:
    async def handler(req: UpRequest, w: asyncio.StreamWriter) -> None:
        w.write(json_response(b'{"jsonrpc":"2.0","id":"req-1","result":{"content":[]}}'))

    up = await upstream(handler)
    gw = await gateway(up.port)
    async with httpx.AsyncClient() as c:
        r = await c.post(f"http://127.0.0.1:{gw.port}/mcp", content=CALL, headers=[*HEADERS.items(), *headers])
    if headers[0][0] == "l5d_client_id":
        assert r.status_code == 200
        assert up.requests[0].header(b"l5d_client_id") is None
        assert gw.state.counters.underscore_headers_dropped == 1
    else:
        assert r.status_code == 400
        assert r.json()["error"]["data"]["code"] == "protocol.invalid_session"
        assert up.requests == []
