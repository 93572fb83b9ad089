"""Injected faults (perf-reliability §B5 F1-F10) and the outcome docs/hardening.md promises for each.

Upstreams are scripted real HTTP servers on 127.0.0.1 (faults an SDK server will not produce on demand) and,
for F1 and F10, real processes killed or signalled for real.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.hardening.conftest import POLICY, RigFactory, _principal, assert_healthy, exchange_raw, post
from tests.hardening.corpus_loader import E
from tests.hardening.sse_oracle import whatwg_events
from tests.proxy.conftest import SSE_HEAD, UpRequest, chunk, json_response

ROOT = Path(__file__).resolve().parents[2]
PROGRESS = (b'event: message\ndata: {"jsonrpc":"2.0","method":"notifications/progress",'
            b'"params":{"progressToken":1,"progress":1}}\n\n')
RESULT = b'event: message\ndata: {"jsonrpc":"2.0","id":1,"result":{"content":[]}}\n\n'


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _error_events(body: bytes) -> list[dict[str, object]]:
    out = []
    for _, data, _ in whatwg_events(body):
        doc = json.loads(data)
        if "error" in doc:
            out.append(doc)
    return out


async def _settled(check: object, timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        await asyncio.sleep(0.02)
    return bool(check())  # type: ignore[operator]


# --------------------------------------------------------------------------------------------- F1


async def test_f1_scripted_upstream_reset_mid_sse(rig: RigFactory) -> None:
    """F1: the upstream dies after one event: the client gets an error event for its id and a clean end."""
    async def reply(req: UpRequest, w: asyncio.StreamWriter) -> None:
        if b'"health"' in req.body:
            w.write(json_response(b'{"jsonrpc":"2.0","id":"health","result":{}}'))
            return
        w.write(SSE_HEAD + chunk(PROGRESS))
        await w.drain()
        await asyncio.sleep(0.1)
        w.transport.abort()

    r = await rig(reply=reply)
    got = await exchange_raw(r.port, post(E))
    [resp] = got.responses  # the chunked body ended properly (the parser saw the last chunk)
    [err] = _error_events(resp.body)
    assert err["id"] == 1 and err["error"]["data"]["code"] == "upstream.reset"  # type: ignore[index]
    assert await _settled(lambda: len(r.gw.state.pending) == 0)
    assert r.gw.state.counters.open_streams == 0
    await assert_healthy(r.port)


@pytest.mark.e2e
async def test_f1_real_sdk_server_killed_mid_stream(rig: RigFactory) -> None:
    """F1 with the official SDK: `slow_report` streams progress; SIGKILL the server process mid-call."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "examples.server", "--port", str(port)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        async with httpx.AsyncClient(timeout=10) as c:
            for _ in range(200):
                try:
                    await c.get(f"http://127.0.0.1:{port}/mcp")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
        r = await rig(upstream_port=port, upstream_host_header=b"127.0.0.1:%d" % port,
                      policy=POLICY.replace('"get_*"]', '"get_*", "slow_report"]'))
        base = f"http://127.0.0.1:{r.port}/mcp"
        hs = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
        async with httpx.AsyncClient(timeout=10) as c:
            init = await c.post(base, headers=hs, json={
                "jsonrpc": "2.0", "id": 0, "method": "initialize",
                "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                           "clientInfo": {"name": "fault", "version": "1"}}})
            assert init.status_code == 200, init.text
            sid = init.headers["mcp-session-id"]
            hs = {**hs, "mcp-session-id": sid, "mcp-protocol-version": "2025-06-18"}
            await c.post(base, headers=hs, json={"jsonrpc": "2.0", "method": "notifications/initialized"})
            call = {"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                    "params": {"name": "slow_report", "arguments": {"seconds": 5},
                               "_meta": {"progressToken": "p"}}}
            t0 = time.monotonic()
            body = b""
            async with c.stream("POST", base, headers=hs, json=call) as resp:
                assert resp.status_code == 200
                async for part in resp.aiter_bytes():
                    body += part
                    if b"notifications/progress" in body and proc.poll() is None:
                        proc.send_signal(signal.SIGKILL)
            elapsed = time.monotonic() - t0
        assert elapsed < 5, "the client waited for the dead upstream"
        errors = _error_events(body)
        assert [e["id"] for e in errors] == [7], body[-600:]
        assert errors[0]["error"]["data"]["code"] in ("upstream.reset", "upstream.protocol_error")  # type: ignore[index]
        # The pending request either finished as failed or stays resumable (the SDK sent an event id).
        assert await _settled(lambda: r.gw.state.counters.open_streams == 0)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(5)


# --------------------------------------------------------------------------------------------- F2


async def test_f2_hanging_upstream_times_out(rig: RigFactory) -> None:
    """F2: accepts, never answers: the call fails with `upstream.timeout` at the deadline, never hangs."""
    async def reply(req: UpRequest, w: asyncio.StreamWriter) -> None:
        if b'"health"' in req.body:
            w.write(json_response(b'{"jsonrpc":"2.0","id":"health","result":{}}'))
            return
        await asyncio.sleep(30)

    r = await rig(reply=reply, response_timeout_s=0.5)
    t0 = time.monotonic()
    got = await exchange_raw(r.port, post(E))
    [resp] = got.responses
    assert 0.4 < time.monotonic() - t0 < 2.0
    assert json.loads(resp.body)["error"]["data"]["code"] == "upstream.timeout"
    assert await _settled(lambda: len(r.gw.state.pending) == 0)
    await assert_healthy(r.port)


async def test_f2_trickling_json_body_times_out(rig: RigFactory) -> None:
    """F2: a JSON answer dripping one byte at a time is cut at the response deadline."""
    async def reply(req: UpRequest, w: asyncio.StreamWriter) -> None:
        if b'"health"' in req.body:
            w.write(json_response(b'{"jsonrpc":"2.0","id":"health","result":{}}'))
            return
        body = b'{"jsonrpc":"2.0","id":1,"result":{"content":[]}}'
        w.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body))
        for b in body:
            await w.drain()
            await asyncio.sleep(1.0)
            w.write(bytes([b]))

    # Either deadline must cut it: the whole-response deadline or the idle gap (1 s between bytes).
    r = await rig(reply=reply, response_timeout_s=0.8, idle_timeout_s=0.5)
    t0 = time.monotonic()
    got = await exchange_raw(r.port, post(E), deadline=3)
    [resp] = got.responses
    assert time.monotonic() - t0 < 2.5
    assert json.loads(resp.body)["error"]["data"]["code"] == "upstream.timeout"
    await assert_healthy(r.port)


# --------------------------------------------------------------------------------------------- F3


async def test_f3_refused_connection_fails_fast(rig: RigFactory,
                                                record_property: Callable[[str, object], None]) -> None:
    """F3: nothing listens upstream: a mapped JSON-RPC error for the id, well within 100 ms."""
    r = await rig(upstream_port=_free_port())
    t0 = time.monotonic()
    got = await exchange_raw(r.port, post(E))
    took = time.monotonic() - t0
    record_property("latency_ms", round(took * 1000, 2))
    [resp] = got.responses
    assert resp.status == 200  # legacy-era request: the error travels as JSON-RPC (clients hang on 5xx)
    doc = json.loads(resp.body)
    assert doc["id"] == 1 and doc["error"]["data"]["code"] == "upstream.unavailable"
    assert took < 0.1, f"refused upstream took {took * 1000:.0f} ms to report"


async def test_f3_reset_on_accept(rig: RigFactory) -> None:
    """F3: the upstream resets every connection as soon as the request arrives."""
    async def reply(req: UpRequest, w: asyncio.StreamWriter) -> None:
        sock = w.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        w.transport.abort()

    r = await rig(reply=reply)
    got = await exchange_raw(r.port, post(E))
    [resp] = got.responses
    doc = json.loads(resp.body)
    assert doc["id"] == 1
    assert doc["error"]["data"]["code"] in ("upstream.reset", "upstream.unavailable")
    assert await _settled(lambda: len(r.gw.state.pending) == 0)


# --------------------------------------------------------------------------------------------- F4


async def _sse_fault(rig: RigFactory, stream: bytes, **overrides: object) -> tuple[bytes, object]:
    async def reply(req: UpRequest, w: asyncio.StreamWriter) -> None:
        if b'"health"' in req.body:
            w.write(json_response(b'{"jsonrpc":"2.0","id":"health","result":{}}'))
            return
        w.write(SSE_HEAD)
        for i in range(0, len(stream), 65536):
            w.write(chunk(stream[i:i + 65536]))
            await w.drain()
        w.write(b"0\r\n\r\n")

    r = await rig(reply=reply, **overrides)
    got = await exchange_raw(r.port, post(E), deadline=10)
    assert not got.timed_out
    [resp] = got.responses
    await assert_healthy(r.port)
    return resp.body, r


async def test_f4_event_over_limit_aborts_stream(rig: RigFactory) -> None:
    """F4: one 10 MiB line (limit 256 KiB): the stream ends with `upstream.protocol_error`, memory capped."""
    body, _ = await _sse_fault(rig, PROGRESS + b"data: " + b"x" * (10 * 1024 * 1024))
    assert len(body) < 1024 * 1024  # nothing of the oversized event was relayed
    [err] = _error_events(body)
    assert err["id"] == 1 and err["error"]["data"]["code"] == "upstream.protocol_error"  # type: ignore[index]


async def test_f4_invalid_utf8_aborts_stream(rig: RigFactory) -> None:
    body, _ = await _sse_fault(rig, PROGRESS + b"event: message\ndata: {\"a\":\"\xff\"}\n\n" + RESULT)
    [err] = _error_events(body)
    assert err["error"]["data"]["code"] == "upstream.protocol_error"  # type: ignore[index]


async def test_f4_non_json_data_is_dropped_and_answer_still_arrives(rig: RigFactory) -> None:
    """A `message` event whose data is not JSON-RPC cannot be policed: it is dropped, the rest flows."""
    body, _ = await _sse_fault(rig, b"event: message\ndata: not json at all\n\n" + RESULT)
    events = whatwg_events(body)
    assert [json.loads(d).get("id") for _, d, _ in events] == [1]


async def test_f4_no_blank_line_before_eof(rig: RigFactory) -> None:
    """The upstream ends mid-event: the client still gets an end, and the unanswered id an error."""
    body, r = await _sse_fault(rig, PROGRESS + b'data: {"jsonrpc":"2.0","id":1,"result":{}}')
    ids = [json.loads(d).get("id") for _, d, _ in whatwg_events(body)]
    assert 1 not in ids[:1]
    assert await _settled(lambda: len(r.gw.state.pending) == 0)  # type: ignore[attr-defined]


# --------------------------------------------------------------------------------------------- F5


async def test_f5_slow_client_backpressures_upstream(rig: RigFactory,
                                                     record_property: Callable[[str, object], None]) -> None:
    """F5: the upstream pushes 32 MiB of events; the client does not read. The gateway's buffer towards the
    client stays near the transport high-water mark (the upstream is paused), and nothing is lost."""
    event = b"event: message\ndata: " + json.dumps({"jsonrpc": "2.0", "method": "notifications/message",
                                                     "params": {"level": "info", "data": "x" * 4000}}).encode()
    event += b"\n\n"
    n = (32 * 1024 * 1024) // len(event)
    pushed = 0

    async def reply(req: UpRequest, w: asyncio.StreamWriter) -> None:
        nonlocal pushed
        w.write(SSE_HEAD)
        batch = chunk(event * 16)
        for _ in range(n // 16):
            w.write(batch)
            await w.drain()
            pushed += 16
        w.write(chunk(RESULT) + b"0\r\n\r\n")
        await w.drain()

    r = await rig(reply=reply)
    reader, writer = await asyncio.open_connection("127.0.0.1", r.port, limit=2**20)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    writer.write(post(E))
    await writer.drain()
    await asyncio.sleep(0.2)
    reader._transport.pause_reading()  # type: ignore[attr-defined]  # a client that stops reading
    peak = 0
    for _ in range(30):
        await asyncio.sleep(0.05)
        for c in list(r.gw.state.connections):
            t = getattr(c, "transport", None)
            if t is not None:
                peak = max(peak, t.get_write_buffer_size())
    record_property("peak_client_buffer_bytes", peak)
    record_property("upstream_events_written_before_paused", f"{pushed} of {n}")
    assert pushed < n, "the upstream was never paused: everything was buffered somewhere"
    assert peak < 4 * 1024 * 1024, f"gateway buffered {peak} bytes for one slow client"
    reader._transport.resume_reading()  # type: ignore[attr-defined]
    received = 0
    tail = b""
    while True:
        data = await asyncio.wait_for(reader.read(2**20), 10)
        if not data:
            break
        received += len(data)
        tail = (tail + data)[-200:]
        if tail.endswith(b"0\r\n\r\n"):
            break
    writer.close()
    assert received > (n // 16) * 16 * len(event)
    assert b'"id":1' in tail


# --------------------------------------------------------------------------------------------- F6


async def test_f6_client_disconnect_mid_call_cleans_up(rig: RigFactory) -> None:
    """F6: the client goes away mid-stream: upstream connection closed, nothing pending, counters at rest."""
    upstream_closed = asyncio.Event()

    async def reply(req: UpRequest, w: asyncio.StreamWriter) -> None:
        if b'"health"' in req.body:
            w.write(json_response(b'{"jsonrpc":"2.0","id":"health","result":{}}'))
            return
        w.write(SSE_HEAD + chunk(PROGRESS))
        await w.drain()
        try:
            for _ in range(100):
                await asyncio.sleep(0.05)
                w.write(chunk(b": keep-alive\n\n"))
                await w.drain()
        except ConnectionError:
            upstream_closed.set()
            return
        w.write(chunk(RESULT) + b"0\r\n\r\n")

    r = await rig(reply=reply)
    reader, writer = await asyncio.open_connection("127.0.0.1", r.port)
    writer.write(post(E))
    await reader.readuntil(b"notifications/progress")
    assert len(r.gw.state.pending) == 1
    writer.transport.abort()
    await asyncio.wait_for(upstream_closed.wait(), 3)
    assert await _settled(lambda: len(r.gw.state.pending) == 0 and not r.gw.state.connections)
    assert r.gw.state.counters.open_streams == 0
    outcomes = [ex.outcome.name for ex in r.hooks.finished_exchanges if ex.outcome is not None]
    assert outcomes == ["CANCELLED"]
    assert _principal(r.hooks.finished_exchanges[0].principal).id == "anonymous"
    await assert_healthy(r.port)


# --------------------------------------------------------------------------------------------- F10


@pytest.mark.slow
async def test_f10_sigterm_drains_in_flight_calls(upstream_slow: tuple[int, asyncio.Event]) -> None:
    """F10: SIGTERM with a call in flight: it completes, new connections are refused, exit 0 in time."""
    up_port, started = upstream_slow
    gw_port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mcpgate", "serve", "--upstream", f"http://127.0.0.1:{up_port}/mcp",
        "--listen", f"127.0.0.1:{gw_port}", "--no-admin", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        for _ in range(200):
            try:
                _, w = await asyncio.open_connection("127.0.0.1", gw_port)
                w.close()
                break
            except OSError:
                await asyncio.sleep(0.05)
        call = asyncio.create_task(exchange_raw(gw_port, post(E), deadline=10))
        await asyncio.wait_for(started.wait(), 5)
        proc.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.3)
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", gw_port)
        got = await call
        [resp] = got.responses
        assert resp.status == 200 and json.loads(resp.body)["id"] == 1
        rc = await asyncio.wait_for(proc.wait(), 10)
        assert rc == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


@pytest.fixture
async def upstream_slow() -> object:
    started = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        started.set()
        await asyncio.sleep(1.5)
        writer.write(json_response(b'{"jsonrpc":"2.0","id":1,"result":{"content":[]}}'))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    yield int(server.sockets[0].getsockname()[1]), started
    server.close()
