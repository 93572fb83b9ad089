"""Request bodies, canned upstream answers and SSE fixture files, identical for every path."""

from __future__ import annotations

import json
from pathlib import Path

MARKER = "bench-canned-result"
TOOL = "search_docs"


def _pad(obj: dict[str, object], field: list[str], size: int) -> bytes:
    """Grow one string field until the compact JSON is `size` bytes long."""
    raw = json.dumps(obj, separators=(",", ":")).encode()
    target: dict[str, object] = obj
    for key in field[:-1]:
        target = target[key]  # type: ignore[assignment]
    target[field[-1]] = str(target[field[-1]]) + "x" * max(0, size - len(raw))
    return json.dumps(obj, separators=(",", ":")).encode()


def call_request(progress: bool = False) -> bytes:
    """A ~330-byte tools/call, the message every throughput and latency run sends."""
    params: dict[str, object] = {
        "name": TOOL,
        "arguments": {"query": "how do I rotate the signing key", "limit": 10, "lang": "en",
                      "filters": {"product": "mcpgate", "since": "2026-01-01"}, "pad": ""},
    }
    if progress:
        params["_meta"] = {"progressToken": "bench-1"}
    return _pad({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params},
                ["params", "arguments", "pad"], 330)


def call_result(rpc_id: str = "1") -> str:
    """The ~330-byte canned tools/call result; `rpc_id` is raw JSON (nginx may put `$var` there)."""
    text = f"{MARKER}: 3 documents matched; the key rotates with `mcpgate keys rotate`"
    body = ('{"jsonrpc":"2.0","id":ID,"result":{"content":[{"type":"text","text":"' + text + "PAD"
            + '"}],"isError":false}}')
    pad = 330 - len(body.replace("ID", "1").replace("PAD", ""))
    return body.replace("PAD", "." * max(0, pad)).replace("ID", rpc_id)


INITIALIZE_RESULT = (
    '{"jsonrpc":"2.0","id":ID,"result":{"protocolVersion":"2025-06-18",'
    '"capabilities":{"tools":{"listChanged":false}},'
    '"serverInfo":{"name":"bench-upstream","version":"1.0"}}}'
)
TOOLS_LIST_RESULT = (
    '{"jsonrpc":"2.0","id":ID,"result":{"tools":[{"name":"' + TOOL + '","description":"bench tool",'
    '"inputSchema":{"type":"object"}}]}}'
)
EMPTY_RESULT = '{"jsonrpc":"2.0","id":ID,"result":{}}'


def _event(message: dict[str, object]) -> bytes:
    return b"event: message\ndata: " + json.dumps(message, separators=(",", ":")).encode() + b"\n\n"


def sse_stream(events: int, event_size: int) -> bytes:
    """`events` JSON-RPC notifications of about `event_size` bytes each, then the call's result."""
    out = bytearray()
    for i in range(events):
        if event_size >= 1024:
            msg: dict[str, object] = {"jsonrpc": "2.0", "method": "notifications/message",
                                      "params": {"level": "info", "logger": "bench", "data": ""}}
            skeleton = len(_event(msg))
            msg["params"]["data"] = "y" * max(0, event_size - skeleton)  # type: ignore[index]
        else:
            msg = {"jsonrpc": "2.0", "method": "notifications/progress",
                   "params": {"progressToken": "bench-1", "progress": i + 1, "total": events,
                              "message": ""}}
            skeleton = len(_event(msg))
            msg["params"]["message"] = "z" * max(0, event_size - skeleton)  # type: ignore[index]
        out += _event(msg)
    out += b"event: message\ndata: " + call_result().encode() + b"\n\n"
    return bytes(out)


def write_fixtures(root: Path, big_events: int, small_events: int) -> dict[str, Path]:
    """Write bodies and SSE files under `root`; returns their paths by name."""
    root.mkdir(parents=True, exist_ok=True)
    files = {
        "call": (root / "call.json", call_request()),
        "call_progress": (root / "call_progress.json", call_request(progress=True)),
        "big.sse": (root / "www" / "big.sse", sse_stream(big_events, 64 * 1024)),
        "small.sse": (root / "www" / "small.sse", sse_stream(small_events, 200)),
    }
    for path, data in files.values():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return {name: path for name, (path, _) in files.items()}
