"""List answers filtered by a remote engine (OPA) are held until it answers: the rest of the event loop keeps
serving, the stream keeps its order, and whatever happens meanwhile (the upstream ends or breaks, the client
leaves) is handled after the held answer, exactly once."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from mcpgate.exchange import ListVerdict, RequestInfo
from mcpgate.identity.model import Principal
from mcpgate.policy.model import Decision, Effect
from mcpgate.protocol.model import Operation, Outcome
from tests.proxy.conftest import SSE_HEAD, UpRequest, chunk, json_response
from tests.proxy.test_hooks_seam import HEADERS, LIST, TOOLS, DenyDelete

NOTE = b'{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"%d"}}'
CALL = b'{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"get_balance","arguments":{}}}'


class SlowFilter(DenyDelete):
    """DenyDelete's list filter, answered after `delay` seconds from a coroutine, as the OPA backend does."""

    def __init__(self, delay: float = 0.2, withhold: bool = False) -> None:
        super().__init__()
        self.delay, self.withhold = delay, withhold
        self.filtering = asyncio.Event()

    def filter_result(self, principal: Principal, request_op: Operation, result: Any,
                      request: RequestInfo) -> Any:
        return self._later(principal, request_op, result, request)

    async def _later(self, principal: Principal, request_op: Operation, result: Any,
                     request: RequestInfo) -> ListVerdict:
        self.filtering.set()
        await asyncio.sleep(self.delay)
        if self.withhold:
            return Decision(Effect.DENY, ("opa:error",), "opa", "`tools/list` result withheld: opa unavailable")
        verdict: ListVerdict = DenyDelete.filter_result(self, principal, request_op, result, request)
        return verdict


def _events(text: str) -> list[dict[str, Any]]:
    return [json.loads(line[5:]) for line in text.splitlines() if line.startswith("data:")]


async def test_json_list_held_then_filtered_and_connection_reused(upstream, gateway) -> None:
    async def handler(req: UpRequest, w: asyncio.StreamWriter) -> None:
        body = json.loads(req.body)
        w.write(json_response(TOOLS if body["method"] == "tools/list" else
                              b'{"jsonrpc":"2.0","id":3,"result":{"content":[]}}'))

    up = await upstream(handler)
    hooks = SlowFilter()
    gw = await gateway(up.port, hooks)
    async with httpx.AsyncClient() as c:
        url = f"http://127.0.0.1:{gw.port}/mcp"
        r = await c.post(url, content=LIST, headers=HEADERS)
        assert [t["name"] for t in r.json()["result"]["tools"]] == ["get_balance"]
        # The upstream connection went back to the pool after a held answer: it must still read.
        r2 = await asyncio.wait_for(c.post(url, content=CALL, headers=HEADERS), 5)
        assert r2.json()["result"] == {"content": []}
    assert [ex.outcome for ex in hooks.finished_exchanges] == [Outcome.OK, Outcome.OK]
    assert len(up.requests) == 2


async def test_other_clients_are_served_while_a_list_is_held(upstream, gateway) -> None:
    async def handler(req: UpRequest, w: asyncio.StreamWriter) -> None:
        body = json.loads(req.body)
        w.write(json_response(TOOLS if body["method"] == "tools/list" else
                              b'{"jsonrpc":"2.0","id":3,"result":{"content":[]}}'))

    up = await upstream(handler)
    hooks = SlowFilter(delay=1.0)
    gw = await gateway(up.port, hooks)
    url = f"http://127.0.0.1:{gw.port}/mcp"
    async with httpx.AsyncClient() as a, httpx.AsyncClient() as b:
        held = asyncio.ensure_future(a.post(url, content=LIST, headers=HEADERS))
        await asyncio.wait_for(hooks.filtering.wait(), 5)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        r = await b.post(url, content=CALL, headers=HEADERS)
        assert r.status_code == 200 and loop.time() - t0 < 0.8, "a held list stalled another client"
        assert not held.done()
        assert [t["name"] for t in (await held).json()["result"]["tools"]] == ["get_balance"]


async def test_sse_events_after_a_held_list_keep_their_order(upstream, gateway) -> None:
    async def handler(req: UpRequest, w: asyncio.StreamWriter) -> None:
        events = [b"event: message\ndata: " + NOTE % 1 + b"\n\n",
                  b"event: message\ndata: " + TOOLS + b"\n\n",
                  b"event: message\ndata: " + NOTE % 2 + b"\n\n"]
        # One write: the gateway reads the held answer and what follows it together.
        w.write(SSE_HEAD + b"".join(chunk(e) for e in events) + b"0\r\n\r\n")

    up = await upstream(handler)
    hooks = SlowFilter()
    gw = await gateway(up.port, hooks)
    async with httpx.AsyncClient() as c:
        r = await c.post(f"http://127.0.0.1:{gw.port}/mcp", content=LIST, headers=HEADERS)
    got = _events(r.text)
    assert [e.get("params", {}).get("data") for e in got] == ["1", None, "2"], got
    assert [t["name"] for t in got[1]["result"]["tools"]] == ["get_balance"]
    [ex] = hooks.finished_exchanges
    assert ex.outcome is Outcome.OK


async def test_sse_upstream_breaks_while_a_list_is_held(upstream, gateway) -> None:
    async def handler(req: UpRequest, w: asyncio.StreamWriter) -> None:
        w.write(SSE_HEAD + chunk(b"event: message\ndata: " + TOOLS + b"\n\n"))
        await w.drain()
        w.transport.abort()  # reset mid-stream, before the terminating chunk

    up = await upstream(handler)
    hooks = SlowFilter()
    gw = await gateway(up.port, hooks)
    async with httpx.AsyncClient() as c:
        r = await c.post(f"http://127.0.0.1:{gw.port}/mcp", content=LIST, headers=HEADERS)
    got = _events(r.text)
    assert [t["name"] for t in got[0]["result"]["tools"]] == ["get_balance"], "the held answer was lost"
    [ex] = hooks.finished_exchanges
    assert ex.outcome is Outcome.OK


async def test_withheld_list_is_a_denial_naming_the_rule(upstream, gateway) -> None:
    async def handler(req: UpRequest, w: asyncio.StreamWriter) -> None:
        w.write(json_response(TOOLS))

    up = await upstream(handler)
    hooks = SlowFilter(withhold=True)
    gw = await gateway(up.port, hooks)
    async with httpx.AsyncClient() as c:
        r = await c.post(f"http://127.0.0.1:{gw.port}/mcp", content=LIST, headers=HEADERS)
    body = r.json()
    assert "result" not in body and body["id"] == 2
    assert body["error"]["data"]["rule_ids"] == ["opa:error"] and "withheld" in body["error"]["message"]
    [ex] = hooks.finished_exchanges
    assert ex.outcome is Outcome.DENIED and ex.decision.rule_ids == ("opa:error",)


async def test_client_leaves_while_a_list_is_held(upstream, gateway) -> None:
    async def handler(req: UpRequest, w: asyncio.StreamWriter) -> None:
        w.write(json_response(TOOLS))

    up = await upstream(handler)
    hooks = SlowFilter(delay=0.5)
    gw = await gateway(up.port, hooks)
    _, writer = await asyncio.open_connection("127.0.0.1", gw.port)
    writer.write(b"POST /mcp HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                 b"accept: application/json, text/event-stream\r\ncontent-length: %d\r\n\r\n%s" % (len(LIST), LIST))
    await writer.drain()
    await asyncio.wait_for(hooks.filtering.wait(), 5)
    writer.transport.abort()
    for _ in range(100):
        if hooks.finished_exchanges:
            break
        await asyncio.sleep(0.02)
    [ex] = hooks.finished_exchanges
    assert ex.outcome is Outcome.CANCELLED
    assert gw.state.counters.open_streams == 0
