"""The exchange record and the seam the data plane calls: identity, policy, telemetry and audit plug in here.

One MCP operation (a request and its response, or a notification) is one `Exchange`. The proxy creates it
when the request is classified, fills in the principal and decision, stamps times as bytes move, and hands
it to `Hooks.finished` exactly once, wherever and however the response arrived (JSON, SSE, a resumed GET
stream, the legacy SSE stream), or when it failed or was denied.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, Protocol

from mcpgate._types import Headers
from mcpgate.identity.model import ANONYMOUS, Principal
from mcpgate.policy.model import OBSERVE, Decision
from mcpgate.protocol.model import Operation, Outcome

# What a list filter says about one list answer: a rewritten result, None (forward as is), or a denial.
ListVerdict = dict[str, Any] | Decision | None


@dataclass(frozen=True, slots=True)
class ConnInfo:
    """What the data plane knows about the connection a request arrived on."""

    peer_host: str
    peer_port: int
    tls: bool = False
    peer_cert_der: bytes | None = None  # verified client certificate (mTLS terminated by mcpgate)
    local_host: str | None = None       # the address the connection arrived on (same as peer: in-pod)


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """The HTTP request that carried one or more MCP messages, as identity and policy see it."""

    conn: ConnInfo
    http_method: str
    path: str
    headers: Headers
    session_id: str | None
    protocol_version: str | None  # MCP-Protocol-Version header, or the session's negotiated version
    transport: str                # "streamable-http" | "sse-legacy"


@dataclass(frozen=True, slots=True)
class Identified:
    """Who is calling, and the request headers to forward (spoofed identity headers removed, mcpgate's added)."""

    principal: Principal
    headers: Headers


@dataclass(slots=True)
class Exchange:
    """One MCP operation end to end. Times are monotonic nanoseconds from the proxy's clock."""

    decision_id: str
    operation: Operation
    request: RequestInfo
    principal: Principal = ANONYMOUS
    decision: Decision = OBSERVE
    t_start: int = 0
    t_first_byte: int | None = None
    t_end: int | None = None
    outcome: Outcome | None = None
    error_code: int | None = None
    error_message: str | None = None
    bytes_in: int = 0
    bytes_out: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def duration_ns(self) -> int | None:
        return None if self.t_end is None else self.t_end - self.t_start


class Hooks(Protocol):
    """What the data plane asks of the layers above the protocol. Implementations must not block.

    Called on the event loop for every message; keep each call to microseconds (precompute at load time).
    """

    def identify(self, request: RequestInfo) -> Identified:
        """Who is calling. Raises `IdentityError` to refuse the request (401)."""
        ...

    def well_known(self, path: str) -> bytes | None:
        """A JSON document the gateway itself serves at `path` (RFC 9728 metadata), or None."""
        ...

    def trace_headers(self, exchange: Exchange) -> list[tuple[bytes, bytes]]:
        """Trace-context headers for the upstream request (empty when tracing is off)."""
        ...

    def decide(self, principal: Principal, operation: Operation,
               request: RequestInfo) -> Decision | Awaitable[Decision]:
        """May they? Must never raise: an erroring rule never grants, so errors become denials.

        A remote engine (OPA) returns an awaitable for client→server requests; the data plane resumes the
        request when it resolves. Server→client requests must be answered with a Decision at once.
        """
        ...

    def filter_result(self, principal: Principal, request_op: Operation, result: Any,
                      request: RequestInfo) -> ListVerdict | Awaitable[ListVerdict]:
        """For list results: a filtered copy of `result`, None when nothing needs to change, or a denying
        Decision to withhold the whole list (fail closed). A remote engine (OPA) returns an awaitable: the
        data plane holds that answer, and for a stream the events after it, until it resolves."""
        ...

    def ready(self) -> str | None:
        """None when the gateway may forward; else a reason to refuse (e.g. audit sink failing closed)."""
        ...

    def started(self, exchange: Exchange) -> None:
        """An exchange began (in-flight gauges, span start)."""
        ...

    def finished(self, exchange: Exchange) -> None:
        """An exchange ended; called exactly once per exchange."""
        ...
