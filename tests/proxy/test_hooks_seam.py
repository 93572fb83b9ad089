"""The seam policy and telemetry plug into: denials never reach the upstream, lists are filtered in JSON
and SSE, server→client requests are governed, legacy HTTP+SSE answers are correlated to their POSTs."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from mcpgate.exchange import Identified, RequestInfo
from mcpgate.identity.model import Principal
from mcpgate.policy.model import Decision, Effect
from mcpgate.protocol.model import Operation, OpKind, Outcome
from tests.proxy.conftest import SSE_HEAD, RecordingHooks, UpRequest, chunk, json_response

HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
LIST = b'{"jsonrpc":"2.0","id":2,"method":"tools/list"}'
TOOLS = (b'{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"get_balance","inputSchema":{}},'
         b'{"name":"delete_customer","inputSchema":{}}]}}')


class DenyDelete(RecordingHooks):
    """A stand-in policy: `delete_*` is denied and hidden from lists; sampling requests are denied."""

    def decide(self, principal: Principal, operation: Operation, request: RequestInfo) -> Decision:
        if operation.kind is OpKind.TOOL_CALL and (operation.target or "").startswith("delete_"):
            return Decision(Effect.DENY, ("no-destructive",), "rev1",
                            f"tool `{operation.target}` denied by rule `no-destructive`")
        if operation.method == "sampling/createMessage":
            return Decision(Effect.DENY, ("no-sampling",), "rev1", "sampling denied by rule `no-sampling`")
        return Decision(Effect.ALLOW, ("allow-all",), "rev1")

    def filter_result(self, principal: Principal, request_op: Operation, result: Any,
                      request: RequestInfo) -> Any | None:
        tools = result.get("tools")
        if not isinstance(tools, list):
            return None
        keep = [t for t in tools if not t["name"].startswith("delete_")]
        return None if len(keep) == len(tools) else {**result, "tools": keep}


async def test_denied_call_never_reaches_upstream_and_names_rule(upstream, gateway) -> None:
    async def handler(req: UpRequest, w: asyncio.StreamWriter) -> None:
        w.write(json_response(b"{}"))

    up = await upstream(handler)
    hooks = DenyDelete()
    gw = await gateway(up.port, hooks)
    call = b'{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"delete_customer","arguments":{}}}'
    async with httpx.AsyncClient() as c:
        r = await c.post(f"http://127.0.0.1:{gw.port}/mcp", content=call, headers=HEADERS)
    assert r.status_code == 200
    err = r.json()
    assert err["id"] == 9
    assert "no-destructive" in err["error"]["message"]
    assert err["error"]["data"]["rule_ids"] == ["no-destructive"]
    assert up.requests == []
    [ex] = hooks.finished_exchanges
    assert ex.outcome is Outcome.DENIED
    assert ex.decision_id == err["error"]["data"]["decision_id"] == r.headers["x-mcpgate-decision-id"]


async def test_lists_filtered_in_json_and_sse(upstream, gateway) -> None:
    async def handler(req: UpRequest, w: asyncio.StreamWriter) -> None:
        if req.target == b"/sse-mode":
            w.write(SSE_HEAD + chunk(b"event: message\r\nid: 5\r\ndata: " + TOOLS + b"\r\n\r\n") + b"0\r\n\r\n")
        else:
            w.write(json_response(TOOLS))

    up = await upstream(handler)
    gw = await gateway(up.port, DenyDelete())
    async with httpx.AsyncClient() as c:
        r = await c.post(f"http://127.0.0.1:{gw.port}/mcp", content=LIST, headers=HEADERS)
        assert [t["name"] for t in r.json()["result"]["tools"]] == ["get_balance"]
        r = await c.post(f"http://127.0.0.1:{gw.port}/sse-mode", content=LIST, headers=HEADERS)
        data = [ln for ln in r.text.splitlines() if ln.startswith("data:")]
        assert [t["name"] for t in json.loads(data[0][5:])["result"]["tools"]] == ["get_balance"]
        assert "id: 5" in r.text, "the event id survives the rewrite"


async def test_server_to_client_sampling_request_denied_on_stream(upstream, gateway) -> None:
    sampling = (b'event: message\ndata: {"jsonrpc":"2.0","id":0,"method":"sampling/createMessage",'
                b'"params":{"messages":[],"maxTokens":5}}\n\n')
    final = b'event: message\ndata: {"jsonrpc":"2.0","id":1,"result":{"content":[]}}\n\n'

    async def handler(req: UpRequest, w: asyncio.StreamWriter) -> None:
        w.write(SSE_HEAD + chunk(sampling) + chunk(final) + b"0\r\n\r\n")

    up = await upstream(handler)
    gw = await gateway(up.port, DenyDelete())
    call = b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"summarize","arguments":{}}}'
    async with httpx.AsyncClient() as c:
        r = await c.post(f"http://127.0.0.1:{gw.port}/mcp", content=call, headers=HEADERS)
    assert "sampling/createMessage" not in r.text
    assert r.text.endswith(final.decode())


async def test_legacy_sse_endpoint_and_answer_on_get_stream(upstream, gateway) -> None:
    posted = asyncio.Event()
    answer = b'event: message\r\ndata: {"jsonrpc":"2.0","id":3,"result":{"tools":[]}}\r\n\r\n'

    async def handler(req: UpRequest, w: asyncio.StreamWriter) -> None:
        if req.method == b"GET":
            w.write(SSE_HEAD + chunk(b"event: endpoint\r\ndata: /messages/?session_id=abc123\r\n\r\n"))
            await w.drain()
            await posted.wait()
            w.write(chunk(answer) + b"0\r\n\r\n")
        else:
            w.write(b"HTTP/1.1 202 Accepted\r\ncontent-length: 8\r\n\r\nAccepted")
            posted.set()

    up = await upstream(handler)
    hooks = RecordingHooks()
    gw = await gateway(up.port, hooks)
    async with httpx.AsyncClient(timeout=5) as c, c.stream(
            "GET", f"http://127.0.0.1:{gw.port}/sse", headers={"accept": "text/event-stream"}) as stream:
        it = stream.aiter_text()
        first = await asyncio.wait_for(it.__anext__(), 2)
        assert "data: /messages/?session_id=abc123" in first
        r = await c.post(f"http://127.0.0.1:{gw.port}/messages/?session_id=abc123", headers=HEADERS,
                         content=b'{"jsonrpc":"2.0","id":3,"method":"tools/list"}')
        assert r.status_code == 202
        rest = "".join([part async for part in it])
    assert '"id":3' in rest
    [ex] = hooks.finished_exchanges
    assert ex.operation.method == "tools/list"
    assert ex.outcome is Outcome.OK
    assert ex.request.transport == "sse-legacy"


class PrincipalFromHeader(RecordingHooks):
    def identify(self, request: RequestInfo) -> Identified:
        for k, v in request.headers:
            if k.lower() == b"x-test-principal":
                return Identified(Principal(id=v.decode(), source="test"), request.headers)
        return Identified(Principal(id="anonymous", source="anonymous"), request.headers)


async def test_session_bound_to_creating_principal(upstream, gateway) -> None:
    async def handler(req: UpRequest, w: asyncio.StreamWriter) -> None:
        w.write(json_response(b'{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-06-18"}}',
                              headers=[(b"mcp-session-id", b"sess-1")]))

    up = await upstream(handler)
    gw = await gateway(up.port, PrincipalFromHeader())
    init = b'{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18"}}'
    async with httpx.AsyncClient() as c:
        r = await c.post(f"http://127.0.0.1:{gw.port}/mcp", content=init,
                         headers={**HEADERS, "x-test-principal": "alice"})
        assert r.headers["mcp-session-id"] == "sess-1"
        call = b'{"jsonrpc":"2.0","id":2,"method":"tools/list"}'
        ok = await c.post(f"http://127.0.0.1:{gw.port}/mcp", content=call,
                          headers={**HEADERS, "x-test-principal": "alice", "mcp-session-id": "sess-1"})
        assert ok.status_code == 200
        stolen = await c.post(f"http://127.0.0.1:{gw.port}/mcp", content=call,
                              headers={**HEADERS, "x-test-principal": "mallory", "mcp-session-id": "sess-1"})
    assert stolen.status_code == 404
    assert stolen.json()["error"]["data"]["code"] == "identity.session_mismatch"
    assert len(up.requests) == 2
    assert gw.state.sessions["sess-1"].protocol_version == "2025-06-18"


class RemoteEngine(DenyDelete):
    """Answers later, as OPA over HTTP does; `fail` makes the engine error out."""

    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.fail = fail

    def decide(self, principal: Principal, operation: Operation, request: RequestInfo) -> Any:
        verdict = super().decide(principal, operation, request)

        async def later() -> Decision:
            await asyncio.sleep(0.02)
            if self.fail:
                raise ConnectionError("engine down")
            return verdict

        return later()


async def test_remote_policy_engine_decides_before_anything_is_forwarded(upstream, gateway) -> None:
    async def handler(req: UpRequest, w: asyncio.StreamWriter) -> None:
        w.write(json_response(b'{"jsonrpc":"2.0","id":9,"result":{"content":[]}}'))

    up = await upstream(handler)
    gw = await gateway(up.port, RemoteEngine())
    async with httpx.AsyncClient() as c:
        ok = await c.post(f"http://127.0.0.1:{gw.port}/mcp", headers=HEADERS, content=(
            b'{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"get_balance","arguments":{}}}'))
        denied = await c.post(f"http://127.0.0.1:{gw.port}/mcp", headers=HEADERS, content=(
            b'{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"delete_customer","arguments":{}}}'))
    assert ok.json()["result"] == {"content": []}
    assert denied.json()["error"]["data"]["rule_ids"] == ["no-destructive"]
    assert len(up.requests) == 1


async def test_remote_policy_engine_error_fails_closed(upstream, gateway) -> None:
    async def handler(req: UpRequest, w: asyncio.StreamWriter) -> None:
        w.write(json_response(b"{}"))

    up = await upstream(handler)
    hooks = RemoteEngine(fail=True)
    gw = await gateway(up.port, hooks)
    async with httpx.AsyncClient() as c:
        r = await c.post(f"http://127.0.0.1:{gw.port}/mcp", headers=HEADERS, content=(
            b'{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"get_balance","arguments":{}}}'))
    assert r.status_code == 200
    assert r.json()["id"] == 3
    assert r.json()["error"]["data"]["rule_ids"] == ["policy.error"]
    assert up.requests == []
    [ex] = hooks.finished_exchanges
    assert ex.outcome is Outcome.DENIED


async def test_tasks_are_bound_to_the_principal_that_created_them(upstream, gateway) -> None:
    async def handler(req: UpRequest, w: asyncio.StreamWriter) -> None:
        if b'"tools/call"' in req.body:  # 2025-11-25 task-augmented call: CreateTaskResult
            w.write(json_response(b'{"jsonrpc":"2.0","id":1,"result":{"task":{"taskId":"t-42","status":"working",'
                                  b'"createdAt":"2025-11-25T00:00:00Z","lastUpdatedAt":"2025-11-25T00:00:00Z",'
                                  b'"ttl":60000}}}'))
        else:
            w.write(json_response(b'{"jsonrpc":"2.0","id":2,"result":{"taskId":"t-42","status":"working"}}'))

    up = await upstream(handler)
    gw = await gateway(up.port, PrincipalFromHeader())
    call = (b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"slow_report","arguments":{},'
            b'"task":{"ttl":60000}}}')
    get = b'{"jsonrpc":"2.0","id":2,"method":"tasks/get","params":{"taskId":"t-42"}}'
    async with httpx.AsyncClient() as c:
        created = await c.post(f"http://127.0.0.1:{gw.port}/mcp", content=call,
                               headers={**HEADERS, "x-test-principal": "alice"})
        assert created.json()["result"]["task"]["taskId"] == "t-42"
        mine = await c.post(f"http://127.0.0.1:{gw.port}/mcp", content=get,
                            headers={**HEADERS, "x-test-principal": "alice"})
        theirs = await c.post(f"http://127.0.0.1:{gw.port}/mcp", content=get,
                              headers={**HEADERS, "x-test-principal": "mallory"})
    assert mine.json()["result"]["taskId"] == "t-42"
    assert theirs.status_code == 200
    assert theirs.json()["error"]["code"] == -32602
    assert "unknown task" in theirs.json()["error"]["message"]
    assert len(up.requests) == 2, "mallory's tasks/get never reached the upstream"
