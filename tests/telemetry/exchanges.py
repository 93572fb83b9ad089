"""Synthetic exchanges, as the data plane hands them to the telemetry hooks."""

from __future__ import annotations

from typing import Any

from mcpgate.exchange import ConnInfo, Exchange, RequestInfo
from mcpgate.identity.model import ANONYMOUS, Principal
from mcpgate.policy.model import OBSERVE, Decision, Effect
from mcpgate.protocol.model import Direction, MessageKind, Operation, OpKind, Outcome

METHOD_KIND = {
    "tools/call": OpKind.TOOL_CALL,
    "prompts/get": OpKind.PROMPT,
    "resources/read": OpKind.RESOURCE,
    "tools/list": OpKind.LIST,
    "initialize": OpKind.DISCOVERY,
    "sampling/createMessage": OpKind.SERVER_REQUEST,
}

WORKLOAD = Principal(id="spiffe://cluster.local/ns/agents/sa/planner", source="mtls",
                     trust_domain="cluster.local", namespace="agents", service_account="planner")
USER = Principal(id="jwt:https://idp.example#alice", source="jwt")

ALLOW = Decision(Effect.ALLOW, ("allow-read",), "rev-1")
DENY = Decision(Effect.DENY, ("no-destructive",), "rev-1", reason="destructive")
WOULD_DENY = Decision(Effect.ALLOW, ("allow-read",), "rev-1", would_deny=True,
                      would_deny_rule_ids=("audit-no-delete",))


def make_exchange(
    method: str = "tools/call",
    target: str | None = "echo",
    *,
    principal: Principal = ANONYMOUS,
    decision: Decision = OBSERVE,
    outcome: Outcome | None = Outcome.OK,
    error_code: int | None = None,
    error_message: str | None = None,
    duration_ns: int | None = 300_000,
    ttfb_ns: int | None = 200_000,
    bytes_in: int = 100,
    bytes_out: int = 400,
    headers: list[tuple[bytes, bytes]] | None = None,
    meta: dict[str, Any] | None = None,
    protocol_version: str | None = "2025-06-18",
    session_id: str | None = None,
    request_id: int | str | None = 7,
    decision_id: str = "01HZXDECISION",
    t_start: int = 1_000_000_000,
    direction: Direction = Direction.CLIENT_TO_SERVER,
) -> Exchange:
    op = Operation(
        kind=METHOD_KIND.get(method, OpKind.OTHER), method=method,
        message_kind=MessageKind.REQUEST if request_id is not None else MessageKind.NOTIFICATION,
        direction=direction, id=request_id, target=target, meta=meta)
    request = RequestInfo(
        conn=ConnInfo(peer_host="127.0.0.1", peer_port=51000), http_method="POST", path="/mcp",
        headers=headers or [], session_id=session_id, protocol_version=protocol_version,
        transport="streamable-http")
    return Exchange(
        decision_id=decision_id, operation=op, request=request, principal=principal, decision=decision,
        t_start=t_start,
        t_first_byte=None if ttfb_ns is None else t_start + ttfb_ns,
        t_end=None if duration_ns is None else t_start + duration_ns,
        outcome=outcome, error_code=error_code, error_message=error_message,
        bytes_in=bytes_in, bytes_out=bytes_out)
