"""Scenarios driven by the official Python SDK client (`mcp` 2.x), each returning comparable plain data.

Results hold only what a client can observe and that should not depend on the path (direct or through the
gateway): session ids, event ids and timings are reduced to booleans or counts.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx2
import mcp_types as t
from mcp import Client, MCPError
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

CALL_TIMEOUT = 15.0  # every SDK call is bounded: a hang is a failure, not a stuck suite


@dataclass
class Wire:
    """What the client's HTTP layer sent and got back, for assertions on the transport itself."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    responses: list[dict[str, Any]] = field(default_factory=list)

    async def on_request(self, request: httpx2.Request) -> None:
        self.requests.append({
            "method": request.method,
            "path": request.url.path,
            "last_event_id": request.headers.get("last-event-id"),
            "session": request.headers.get("mcp-session-id"),
            "version": request.headers.get("mcp-protocol-version"),
        })

    async def on_response(self, response: httpx2.Response) -> None:
        self.responses.append({
            "method": response.request.method,
            "status": response.status_code,
            "session": response.headers.get("mcp-session-id"),
            "content_type": response.headers.get("content-type", "").split(";")[0],
        })

    def client(self, headers: dict[str, str] | None = None, timeout: httpx2.Timeout | None = None,
               auth: httpx2.Auth | None = None) -> httpx2.AsyncClient:
        """An httpx2 client recording every exchange (shaped like the SDK's `McpHttpClientFactory`)."""
        return httpx2.AsyncClient(
            headers=headers, auth=auth, timeout=timeout or httpx2.Timeout(30.0, read=60.0),
            event_hooks={"request": [self.on_request], "response": [self.on_response]},
        )

    def session_ids(self) -> set[str]:
        return {r["session"] for r in self.responses if r["session"]}


async def elicit_yes(context: Any, params: t.ElicitRequestParams) -> t.ElicitResult:
    return t.ElicitResult(action="accept", content={"answer": "yes", "confirmed": True})


async def sample_fixed(context: Any, params: t.CreateMessageRequestParams) -> t.CreateMessageResult:
    return t.CreateMessageResult(
        role="assistant", model="fake-model",
        content=t.TextContent(type="text", text="customer wants a refund"),
    )


@contextlib.asynccontextmanager
async def connect(url: str, mode: str, *, legacy_sse: bool = False, wire: Wire | None = None,
                  terminate_on_close: bool = True) -> AsyncIterator[Client]:
    """An SDK `Client` on `url`; `legacy_sse` selects the 2024-11-05 HTTP+SSE transport."""
    wire = wire or Wire()
    if legacy_sse:
        transport: Any = sse_client(url, httpx_client_factory=wire.client)
    else:
        transport = streamable_http_client(url, http_client=wire.client(),
                                           terminate_on_close=terminate_on_close)
    client = Client(transport, mode=mode, elicitation_callback=elicit_yes, sampling_callback=sample_fixed,
                    read_timeout_seconds=CALL_TIMEOUT)
    # Callers bound the whole scenario with one outer deadline: a deadline scope around `__aenter__` alone
    # would be exited while the client's task groups are still open.
    async with client:
        yield client


def dump(model: Any) -> Any:
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


async def outcome(coro: Any) -> dict[str, Any]:
    """A call's result, or the error it raised, as plain data (both are legitimate, comparable outcomes)."""
    try:
        with anyio.fail_after(CALL_TIMEOUT):
            return {"ok": dump(await coro)}
    except MCPError as e:
        return {"mcp_error": {"code": e.code, "message": e.error.message}}
    except TimeoutError:
        return {"timeout": CALL_TIMEOUT}


# ----- scenarios --------------------------------------------------------------------------------------------


async def catalog(url: str, mode: str, legacy_sse: bool = False) -> dict[str, Any]:
    """tools/list, resources/read, prompts/get and plain tool calls, including error results."""
    async with connect(url, mode, legacy_sse=legacy_sse) as c:
        tools = (await c.list_tools()).tools
        return {
            "protocol_version": c.protocol_version,
            "tools": sorted((x.name, dump(x.annotations) if x.annotations else None) for x in tools),
            "get_balance": await outcome(c.call_tool("get_balance", {"account": "ACC-1001"})),
            "search": await outcome(c.call_tool("search_customers", {"query": "grace"})),
            "refund_over_limit": await outcome(c.call_tool("refund", {"account": "ACC-1002", "amount": 9999.0,
                                                                      "reason": "duplicate charge"})),
            "delete_unknown": await outcome(c.call_tool("delete_customer", {"id": "c-404"})),
            "unknown_tool": await outcome(c.call_tool("no_such_tool", {})),
            "bad_arguments": await outcome(c.call_tool("get_balance", {})),
            "resource": await outcome(c.read_resource("customers://c-1003")),
            "policy_doc": await outcome(c.read_resource("docs://policy")),
            "missing_resource": await outcome(c.read_resource("customers://nobody")),
            "prompt": await outcome(c.get_prompt("support_reply", {"customer_name": "Ada", "issue": "card"})),
        }


async def progress(url: str, mode: str, legacy_sse: bool = False, tool: str = "slow_report",
                   args: dict[str, Any] | None = None) -> dict[str, Any]:
    """Progress notifications arrive, in order, while the call is still running."""
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    async with connect(url, mode, legacy_sse=legacy_sse) as c:
        result = await outcome(c.call_tool(tool, args or {"seconds": 0.5}, progress_callback=on_progress))
    return {"result": result, "progress": seen}


async def server_to_client(url: str, mode: str, legacy_sse: bool = False) -> dict[str, Any]:
    """Elicitation and sampling answered by the client in the middle of a tool call."""
    async with connect(url, mode, legacy_sse=legacy_sse) as c:
        return {
            "elicit": await outcome(c.call_tool("ask_user", {"question": "refund 20 EUR to ACC-1002?"})),
            "sample": await outcome(c.call_tool("summarize", {"text": "I was charged twice, refund please"})),
        }


async def cancellation(url: str, mode: str, legacy_sse: bool = False) -> dict[str, Any]:
    """Cancel a running call after its first progress event; the server must see the cancellation."""
    first = anyio.Event()

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        first.set()

    async with connect(url, mode, legacy_sse=legacy_sse) as c:
        async with anyio.create_task_group() as tg:
            async def call() -> None:
                await c.call_tool("slow_report", {"seconds": 5.0}, progress_callback=on_progress)

            tg.start_soon(call)
            # JSON-response servers send no progress: then cancel after a fixed time instead.
            with anyio.move_on_after(1.0):
                await first.wait()
            tg.cancel_scope.cancel()
        status = None
        with anyio.move_on_after(2.0):
            while status != "cancelled":
                res = await c.read_resource("reports://recent")
                runs = json.loads(res.contents[0].text)  # type: ignore[union-attr]
                status = runs[-1]["status"] if runs else None
                if status != "cancelled":
                    await anyio.sleep(0.1)
        # The session must still work after a cancellation.
        after = await outcome(c.call_tool("get_balance", {"account": "ACC-1003"}))
    return {"server_saw": status, "after": after}


async def session_termination(url: str, mode: str) -> dict[str, Any]:
    """Closing the client DELETEs the session; the old session id is then refused with 404."""
    wire = Wire()
    async with connect(url, mode, wire=wire) as c:
        await c.list_tools()
    ids = wire.session_ids()
    deletes = [r["status"] for r in wire.responses if r["method"] == "DELETE"]
    after: dict[str, Any] = {}
    if ids:
        async with wire.client() as http:
            r = await http.post(url, json={"jsonrpc": "2.0", "id": 99, "method": "tools/list"}, headers={
                "accept": "application/json, text/event-stream", "mcp-session-id": ids.pop(),
                "mcp-protocol-version": "2025-11-25"})
            body = r.json() if r.headers.get("content-type", "").startswith("application/json") else r.text
            after = {"status": r.status_code, "body": body}
    return {"had_session": bool(wire.session_ids()), "delete_statuses": deletes, "reuse_after_delete": after}


async def resumption(url: str, mode: str) -> dict[str, Any]:
    """The server drops the call's SSE stream half way; the client resumes with GET + Last-Event-ID."""
    wire = Wire()
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    async with connect(url, mode, wire=wire) as c:
        result = await outcome(c.call_tool("slow_report", {"seconds": 1.0, "checkpoint": True},
                                           progress_callback=on_progress))
    resumes = [r for r in wire.requests if r["method"] == "GET" and r["last_event_id"]]
    return {"result": result, "progress": seen, "resumed_with_last_event_id": len(resumes) >= 1}


async def ts_server(url: str, mode: str) -> dict[str, Any]:
    """The Python client against the TypeScript SDK server: catalog, a call, progress and elicitation."""
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    async with connect(url, mode) as c:
        tools = sorted(tool.name for tool in (await c.list_tools()).tools)
        return {
            "protocol_version": c.protocol_version,
            "tools": tools,
            "lookup": await outcome(c.call_tool("lookup_order", {"order_id": "o-1"})),
            "lookup_missing": await outcome(c.call_tool("lookup_order", {"order_id": "o-404"})),
            "count_down": await outcome(c.call_tool("count_down", {"steps": 3},
                                                    progress_callback=on_progress)),
            "progress": seen,
            "confirm": await outcome(c.call_tool("confirm_action", {"action": "close ticket 7"})),
        }
