"""How failures look to a client through mcpgate: upstream down, upstream killed mid-stream, malformed input.

Every case is bounded by a deadline: a client that hangs is the bug these tests exist to catch.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from examples.procs import HOST, Proc, free_port
from tests.e2e import scenarios as sc
from tests.e2e.harness import BACKENDS, gateway_proc, start_backend, wait_gateway

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-failures")]

MODES = [pytest.param("auto", id="modern"), pytest.param("legacy", id="legacy")]
DEADLINE = 12.0
ACCEPT = "application/json, text/event-stream"


@pytest.fixture
def gateway_factory(log_dir: Path, use_procs: Any) -> Iterator[Any]:
    started: list[Proc] = []

    def start(upstream_url: str, *, healthy: bool = True) -> Proc:
        proc, admin = gateway_proc(upstream_url, log_dir, name=f"gateway-failure-{len(started)}")
        started.append(proc)
        use_procs(proc)
        proc.start()
        if healthy:
            wait_gateway(proc, admin)
        else:  # an unreachable upstream may legitimately make /healthz report not-ready
            proc.wait_accepting()
        return proc

    yield start
    for p in started:
        p.stop()


@pytest.fixture
def upstream(log_dir: Path, use_procs: Any) -> Iterator[Proc]:
    """A private example server (stateful, SSE responses) that a test may kill."""
    proc = start_backend(BACKENDS["py-sse"], log_dir)
    use_procs(proc)
    yield proc
    proc.stop()


def jsonrpc_error(response: httpx.Response) -> dict[str, Any]:
    assert response.headers.get("content-type", "").startswith("application/json"), response.text
    body: dict[str, Any] = response.json()
    assert body.get("jsonrpc") == "2.0", body
    assert isinstance(body.get("error"), dict), body
    return body


async def sdk_failure(url: str, mode: str) -> tuple[str, float]:
    """Connect and list tools; returns (what the SDK raised, seconds it took)."""
    started = time.monotonic()
    try:
        with anyio.fail_after(DEADLINE):
            async with sc.connect(url, mode) as c:
                await c.list_tools()
    except TimeoutError:
        return "hang", time.monotonic() - started
    except BaseException as e:  # the SDK wraps errors raised while connecting in exception groups
        while isinstance(e, BaseExceptionGroup) and len(e.exceptions) == 1:
            e = e.exceptions[0]
        return f"{type(e).__name__}: {e}", time.monotonic() - started
    return "no error", time.monotonic() - started


# ----- upstream not running ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("version", "status"), [("2025-11-25", 200), ("2026-07-28", 502)])
def test_upstream_down_answers_request_with_its_id(gateway_factory: Any, version: str, status: int) -> None:
    gw = gateway_factory(f"http://{HOST}:{free_port()}/mcp", healthy=False)
    headers = {"accept": ACCEPT, "mcp-protocol-version": version}
    if version == "2026-07-28":
        headers |= {"mcp-method": "tools/call", "mcp-name": "get_balance"}
    started = time.monotonic()
    r = httpx.post(f"http://{HOST}:{gw.port}/mcp", timeout=DEADLINE, headers=headers, json={
        "jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": {"name": "get_balance", "arguments": {"account": "ACC-1001"}}})
    assert time.monotonic() - started < 5.0
    # Legacy-era clients get the JSON-RPC error with 200 (Python 1.x clients hang on non-2xx for a request).
    print(r.status_code, r.text)
    assert r.status_code == status, r.text
    body = jsonrpc_error(r)
    assert body["id"] == 7
    assert body["error"]["data"]["code"] == "upstream.unavailable"


@pytest.mark.parametrize("mode", MODES)
async def test_upstream_down_sdk_client_fails_fast(gateway_factory: Any, mode: str) -> None:
    gw = gateway_factory(f"http://{HOST}:{free_port()}/mcp", healthy=False)
    what, took = await sdk_failure(f"http://{HOST}:{gw.port}/mcp", mode)
    print(f"{mode}: {what} after {took:.2f}s")
    # The gateway answers the handshake itself with a JSON-RPC error the SDK raises as MCPError.
    assert what.startswith("MCPError: upstream "), what
    assert "unreachable" in what, what
    assert took < 5.0, (what, took)


# ----- upstream killed mid-stream ---------------------------------------------------------------------------


async def killed_mid_call(url: str, mode: str, server: Proc) -> dict[str, Any]:
    """Start a long call, SIGKILL the upstream after its first progress event, see how the call ends."""
    first = anyio.Event()

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        first.set()

    outcome: dict[str, Any] = {}
    started = time.monotonic()
    try:
        with anyio.fail_after(DEADLINE):
            async with sc.connect(url, mode) as c, anyio.create_task_group() as tg:
                async def call() -> None:
                    try:
                        await c.call_tool("slow_report", {"seconds": 8.0}, progress_callback=on_progress)
                        outcome["call"] = "completed"
                    except Exception as e:
                        outcome["call"] = f"{type(e).__name__}: {e}"

                tg.start_soon(call)
                await first.wait()
                await anyio.to_thread.run_sync(server.kill)
                outcome["killed_after_progress"] = True
    except TimeoutError:
        outcome.setdefault("call", "hang")
        outcome["deadline_hit"] = True
    except BaseException as e:
        outcome.setdefault("call", f"transport: {type(e).__name__}: {e}")
    outcome["seconds"] = round(time.monotonic() - started, 1)
    return outcome


@pytest.mark.parametrize("via", ["direct", "gateway"])
@pytest.mark.parametrize("mode", MODES)
async def test_upstream_killed_mid_stream(upstream: Proc, gateway_factory: Any, mode: str, via: str) -> None:
    url = f"http://{HOST}:{upstream.port}/mcp"
    if via == "gateway":
        url = f"http://{HOST}:{gateway_factory(url).port}/mcp"
    r = await killed_mid_call(url, mode, upstream)
    print(f"{via} {mode}: {r}")
    # Direct or through the gateway, the pending call must end with an error, not hang or succeed.
    assert r.get("killed_after_progress") is True, r
    assert r["call"] not in ("hang", "completed"), r
    assert "deadline_hit" not in r, r
    assert r["seconds"] < DEADLINE, r


@pytest.mark.parametrize("version", ["2025-11-25", "2026-07-28"])
def test_upstream_killed_mid_stream_raw(upstream: Proc, gateway_factory: Any, version: str) -> None:
    """What the bytes look like: the SSE stream must end (with an error event or a close), never stall."""
    gw = gateway_factory(f"http://{HOST}:{upstream.port}/mcp")
    url = f"http://{HOST}:{gw.port}/mcp"
    headers = {"accept": ACCEPT, "mcp-protocol-version": version}
    if version == "2025-11-25":
        init = httpx.post(url, headers={"accept": ACCEPT}, timeout=DEADLINE, json={
            "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": version, "capabilities": {},
                "clientInfo": {"name": "raw", "version": "0"}}})
        headers["mcp-session-id"] = init.headers["mcp-session-id"]
        httpx.post(url, headers=headers, json={"jsonrpc": "2.0", "method": "notifications/initialized"})
        body: dict[str, Any] = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
            "name": "slow_report", "arguments": {"seconds": 8.0}, "_meta": {"progressToken": "p"}}}
    else:
        headers |= {"mcp-method": "tools/call", "mcp-name": "slow_report"}
        body = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
            "name": "slow_report", "arguments": {"seconds": 8.0}, "_meta": {
                "progressToken": "p", "io.modelcontextprotocol/protocolVersion": version,
                "io.modelcontextprotocol/clientCapabilities": {}}}}
    started = time.monotonic()
    seen: list[str] = []
    with httpx.stream("POST", url, headers=headers, json=body, timeout=DEADLINE) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            seen.append(line)
            if '"notifications/progress"' in line and upstream.alive:
                upstream.kill()
    assert time.monotonic() - started < DEADLINE
    print("\n".join(seen))
    data = [line for line in seen if line.startswith("data:")]
    assert any("notifications/progress" in line for line in data), seen
    assert not any('"result"' in line for line in data), seen
    errors = [line for line in data if '"error"' in line]
    # The stream ended; if the gateway says why, it is a JSON-RPC error for request 2 with a stable code.
    for line in errors:
        assert '"id":2' in line.replace(" ", ""), line
        assert "upstream." in line, line


# ----- malformed input straight to the gateway --------------------------------------------------------------


@pytest.mark.parametrize(("body", "code"), [
    (b'{"jsonrpc": "2.0", "id": 1, "method": ', "protocol.malformed_json"),
    (b'{"jsonrpc": "2.0", "id": 1, "id": 2, "method": "tools/list"}', "protocol.duplicate_key"),
    (b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "refund", '
     b'"arguments": {"amount": NaN}}}', "protocol.non_finite_number"),
])
def test_malformed_body_gets_typed_400(upstream: Proc, gateway_factory: Any, body: bytes, code: str) -> None:
    gw = gateway_factory(f"http://{HOST}:{upstream.port}/mcp")
    r = httpx.post(f"http://{HOST}:{gw.port}/mcp", content=body, timeout=DEADLINE, headers={
        "accept": ACCEPT, "content-type": "application/json", "mcp-protocol-version": "2025-11-25"})
    print(r.status_code, r.text)
    assert r.status_code == 400, r.text
    err = jsonrpc_error(r)
    assert err["id"] is None
    assert err["error"]["data"]["code"] == code
    assert isinstance(err["error"]["code"], int)
