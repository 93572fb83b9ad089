"""Bytes captured from the real MCP Python SDK (server on 127.0.0.1) and built by its wire models go through the
framer, the decoder and the classifier exactly as the data plane will feed them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import mcp_types
import pytest
import uvicorn
from mcp.server.mcpserver.server import MCPServer
from mcp_types.jsonrpc import JSONRPCNotification, JSONRPCRequest, JSONRPCResponse

from mcpgate.protocol.jsonrpc import decode_body
from mcpgate.protocol.mcp import classify, classify_response
from mcpgate.protocol.model import Direction, Message, MessageKind, OpKind, Outcome
from mcpgate.protocol.sse import NEED_DATA, SseEvent, SseFramer

C2S = Direction.CLIENT_TO_SERVER
S2C = Direction.SERVER_TO_CLIENT
ACCEPT = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


def single(body: bytes) -> Message:
    msg = decode_body(body, allow_batch=False)
    assert isinstance(msg, Message)
    return msg


def test_sdk_wire_models_decode_and_classify() -> None:
    params = mcp_types.CallToolRequestParams(name="search", arguments={"q": "x:y", "n": 3})
    body = JSONRPCRequest(jsonrpc="2.0", id=7, method="tools/call",
                          params=params.model_dump(by_alias=True, exclude_none=True)
                          ).model_dump_json(by_alias=True, exclude_unset=True).encode()
    op = classify(single(body), C2S)
    assert (op.kind, op.target, op.arguments) == (OpKind.TOOL_CALL, "search", {"q": "x:y", "n": 3})

    result = mcp_types.CallToolResult(content=[mcp_types.TextContent(type="text", text="no")], is_error=True)
    resp = JSONRPCResponse(jsonrpc="2.0", id=7, result=result.model_dump(by_alias=True, exclude_none=True))
    answered = classify_response(single(resp.model_dump_json(by_alias=True, exclude_unset=True).encode()), op)
    assert (answered.outcome, answered.target) == (Outcome.TOOL_ERROR, "search")

    note = JSONRPCNotification(jsonrpc="2.0", method="notifications/cancelled", params={"requestId": 7})
    cancelled = classify(single(note.model_dump_json(by_alias=True, exclude_unset=True).encode()), C2S)
    assert (cancelled.kind, cancelled.target) == (OpKind.NOTIFICATION, "7")


def _server() -> MCPServer:
    server: MCPServer = MCPServer("capture")

    @server.tool()
    def echo(text: str) -> str:
        """Echo text back."""
        return f"echo:{text}"

    @server.tool()
    def fail(text: str) -> str:
        """Always fails."""
        raise ValueError("nope")

    return server


@pytest.fixture
async def sdk_url() -> AsyncIterator[str]:
    app = _server().streamable_http_app()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


async def _post(client: httpx.AsyncClient, url: str, payload: dict[str, Any],
                headers: dict[str, str]) -> tuple[httpx.Response, list[bytes]]:
    async with client.stream("POST", url, content=json.dumps(payload).encode(),
                             headers={**ACCEPT, **headers}) as response:
        chunks = [chunk async for chunk in response.aiter_raw()]
    return response, chunks


def _frame(chunks: list[bytes]) -> list[SseEvent]:
    framer = SseFramer()
    events: list[SseEvent] = []
    for chunk in chunks:
        framer.receive_data(chunk)
        while (ev := framer.next_event()) is not NEED_DATA:
            assert isinstance(ev, SseEvent)
            events.append(ev)
    assert framer.receive_eof() == b""
    return events


async def test_real_sdk_sse_responses(sdk_url: str) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
        assert classify(single(json.dumps(init).encode()), C2S).kind is OpKind.DISCOVERY
        response, chunks = await _post(client, sdk_url, init, {})
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = b"".join(chunks)
        assert b"\r\n" in raw  # sse-starlette frames with CRLF
        events = [e for e in _frame(chunks) if e.has_fields and e.data]
        assert b"".join(e.raw for e in _frame(chunks)) == raw
        init_result = single(events[-1].data.encode())  # type: ignore[union-attr]
        assert init_result.kind is MessageKind.RESULT and init_result.id == 1
        headers = {"mcp-session-id": response.headers["mcp-session-id"], "mcp-protocol-version": "2025-11-25"}
        await _post(client, sdk_url, {"jsonrpc": "2.0", "method": "notifications/initialized"}, headers)

        for rid, tool, outcome in ((2, "echo", Outcome.OK), ("3", "fail", Outcome.TOOL_ERROR)):
            call = {"jsonrpc": "2.0", "id": rid, "method": "tools/call",
                    "params": {"name": tool, "arguments": {"text": "a:b"}}}
            request_op = classify(single(json.dumps(call).encode()), C2S)
            _, chunks = await _post(client, sdk_url, call, headers)
            messages = [single(e.data.encode()) for e in _frame(chunks) if e.event == "message" and e.data]
            final = messages[-1]
            assert final.id == rid and type(final.id) is type(rid)
            answered = classify_response(final, request_op)
            assert (answered.outcome, answered.target, answered.method) == (outcome, tool, "tools/call")

        listing = {"jsonrpc": "2.0", "id": 4, "method": "tools/list"}
        _, chunks = await _post(client, sdk_url, listing, headers)
        final = [single(e.data.encode()) for e in _frame(chunks) if e.data][-1]
        assert {t["name"] for t in final.result["tools"]} == {"echo", "fail"}
