"""Exchange objects and ready-made logs for the audit tests (Exchange is a plain dataclass)."""

from __future__ import annotations

import os
from typing import Any

from mcpgate.audit import AuditLog
from mcpgate.exchange import ConnInfo, Exchange, RequestInfo
from mcpgate.identity.model import ANONYMOUS, Principal
from mcpgate.policy.model import Decision, Effect
from mcpgate.protocol.model import Direction, MessageKind, Operation, OpKind, Outcome

ALICE = Principal("spiffe://cluster.local/ns/billing/sa/agent", "mtls", "cluster.local", "billing", "agent")
BOB = Principal("jwt:https://idp.example#bob", "jwt")
ALLOW = Decision(Effect.ALLOW, ("allow-billing",), "rev-7")
DENY = Decision(Effect.DENY, ("no-refunds",), "rev-7", "refunds are not allowed")


def request(session: str | None = "sess-1", version: str | None = "2025-11-25") -> RequestInfo:
    return RequestInfo(ConnInfo("127.0.0.1", 50000), "POST", "/mcp", [(b"authorization", b"Bearer SECRET")],
                       session, version, "streamable-http")


def make_exchange(i: int = 1, *, tool: str | None = "refund", arguments: Any = None,
                  principal: Principal = ALICE, decision: Decision = ALLOW,
                  outcome: Outcome | None = Outcome.OK, t_start: int = 1_000_000_000,
                  latency_ms: float | None = 2.5, ttfb_ms: float | None = 1.0,
                  kind: OpKind = OpKind.TOOL_CALL, method: str = "tools/call", error_code: int | None = None,
                  upstream: str | None = "http://127.0.0.1:9000/mcp",
                  session: str | None = "sess-1") -> Exchange:
    op = Operation(kind, method, MessageKind.REQUEST, Direction.CLIENT_TO_SERVER, id=i, target=tool,
                   arguments={"order": f"o-{i}", "amount": i} if arguments is None else arguments)
    extra: dict[str, Any] = {} if upstream is None else {"upstream": upstream}
    return Exchange(
        decision_id=f"dec-{i:08d}", operation=op, request=request(session), principal=principal,
        decision=decision, t_start=t_start,
        t_first_byte=None if ttfb_ms is None else t_start + int(ttfb_ms * 1e6),
        t_end=None if latency_ms is None else t_start + int(latency_ms * 1e6),
        outcome=outcome, error_code=error_code, bytes_in=100 + i, bytes_out=200 + i, extra=extra)


def anonymous_exchange(i: int) -> Exchange:
    return make_exchange(i, principal=ANONYMOUS)


def write_log(path: str | os.PathLike[str], n: int, *, start: int = 1, **section: Any) -> AuditLog:
    """Write `n` records to a file log at `path` and close it; returns the closed log."""
    log = AuditLog.from_config({"path": os.fspath(path), **section})
    log.start()
    for i in range(start, start + n):
        log.record(make_exchange(i))
    assert log.flush(10)
    assert log.close()
    return log


def lines_of(path: str | os.PathLike[str]) -> list[bytes]:
    with open(path, "rb") as fh:
        return fh.read().splitlines(keepends=True)


def write_lines(path: str | os.PathLike[str], lines: list[bytes]) -> None:
    with open(path, "wb") as fh:
        fh.write(b"".join(lines))
