"""Observer hooks: everything forwarded, nothing recorded. The baseline the data plane runs with."""

from __future__ import annotations

from typing import Any

from mcpgate.exchange import Exchange, Identified, ListVerdict, RequestInfo
from mcpgate.identity.model import ANONYMOUS, Principal
from mcpgate.policy.model import OBSERVE, Decision
from mcpgate.protocol.model import Operation


class ObserverHooks:
    """Implements `mcpgate.exchange.Hooks`, allowing everything; subclasses add what they need."""

    def identify(self, request: RequestInfo) -> Identified:
        return Identified(ANONYMOUS, request.headers)

    def well_known(self, path: str) -> bytes | None:
        return None

    def trace_headers(self, exchange: Exchange) -> list[tuple[bytes, bytes]]:
        return []

    def decide(self, principal: Principal, operation: Operation, request: RequestInfo) -> Decision:
        return OBSERVE

    def filter_result(self, principal: Principal, request_op: Operation, result: Any,
                      request: RequestInfo) -> ListVerdict:
        return None

    def ready(self) -> str | None:
        return None

    def started(self, exchange: Exchange) -> None:
        return None

    def finished(self, exchange: Exchange) -> None:
        return None
