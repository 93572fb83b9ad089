"""The one table that renders mcpgate errors into HTTP responses and JSON-RPC error bodies.

Status choice follows compendium §8C: a request the client is waiting on gets its JSON-RPC error with the
original id; legacy-era clients (Python 1.x hangs on non-2xx) get it with HTTP 200, modern-era clients with
the error's own status. Bad input we could not read an id from gets the error's status and `id: null`.
"""

from __future__ import annotations

from typing import Any

import msgspec

from mcpgate.errors import McpgateError, PolicyDenied
from mcpgate.protocol.headers import is_modern
from mcpgate.protocol.model import RequestId
from mcpgate.proxy.http import response_head

_encode = msgspec.json.Encoder().encode
JSON_CT = (b"content-type", b"application/json")


def error_body(err: McpgateError, request_id: RequestId | None, decision_id: str | None = None) -> bytes:
    data: dict[str, Any] = {"code": err.code}
    if err.data:
        data.update({k: v for k, v in err.data.items() if v is not None})
    if decision_id:
        data["decision_id"] = decision_id
    return _encode({"jsonrpc": "2.0", "id": request_id,
                    "error": {"code": err.jsonrpc_code, "message": err.message, "data": data}})


def status_for(err: McpgateError, request_id: RequestId | None, protocol_version: str | None) -> int:
    """HTTP status for an error answered in place of an upstream response."""
    if isinstance(err, PolicyDenied):
        return 200
    if request_id is not None and not is_modern(protocol_version) and err.http_status >= 500:
        # Legacy-era clients hang on non-2xx for a request; give them the JSON-RPC error with 200.
        return 200
    return err.http_status


def render_error(err: McpgateError, *, request_id: RequestId | None, protocol_version: str | None,
                 keep_alive: bool, decision_id: str | None = None,
                 extra_headers: list[tuple[bytes, bytes]] | None = None) -> bytes:
    """A complete HTTP response carrying `err` as a JSON-RPC error."""
    body = error_body(err, request_id, decision_id)
    status = status_for(err, request_id, protocol_version)
    extra = [JSON_CT]
    if decision_id:
        extra.append((b"x-mcpgate-decision-id", decision_id.encode()))
    if extra_headers:
        extra.extend(extra_headers)
    return response_head(status, [], body_len=len(body), chunked=False, keep_alive=keep_alive,
                         extra=extra) + body


def sse_error_event(err: McpgateError, request_id: RequestId | None) -> bytes:
    """An SSE `message` event carrying a JSON-RPC error: how a failure reaches a client mid-stream."""
    return b"event: message\ndata: " + error_body(err, request_id) + b"\n\n"


def plain_response(status: int, body: bytes = b"", *, keep_alive: bool,
                   headers: list[tuple[bytes, bytes]] | None = None) -> bytes:
    return response_head(status, headers or [], body_len=len(body), chunked=False,
                         keep_alive=keep_alive) + body
