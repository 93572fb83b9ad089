"""The hooks the data plane calls, composed from identity, policy, metrics, tracing and audit."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from mcpgate.audit import AuditLog
from mcpgate.errors import IdentityError
from mcpgate.exchange import Exchange, Identified, ListVerdict, RequestInfo
from mcpgate.identity.model import Credentials, Principal
from mcpgate.identity.resolver import IdentityResolver
from mcpgate.policy import Policy, check_against_tools, filter_list_items, filter_list_result, list_names
from mcpgate.policy.model import OBSERVE, Decision, Effect
from mcpgate.protocol.model import Direction, Operation
from mcpgate.runtime.opa import OpaBackend
from mcpgate.telemetry import Metrics, Tracing

log = logging.getLogger("mcpgate.runtime")

_LIST_KINDS = {
    "tools/list": ("tools", "name", "tool"),
    "prompts/list": ("prompts", "name", "prompt"),
    "resources/list": ("resources", "uri", "resource"),
}


class Recent(Protocol):
    def add(self, ex: Exchange) -> None: ...


class GatewayHooks:
    """Implements `mcpgate.exchange.Hooks`. `policy()` returns the current snapshot (None = observer mode)."""

    def __init__(self, *, identity: IdentityResolver, policy: Callable[[], Policy | None], metrics: Metrics,
                 tracing: Tracing, audit: AuditLog | None = None, recent: Recent | None = None,
                 opa: OpaBackend | None = None) -> None:
        self.identity = identity
        self.opa = opa
        self.policy = policy
        self.metrics = metrics
        self.tracing = tracing
        self.audit = audit
        self.recent = recent
        self._prm_paths = identity.prm_paths
        self._prm_doc = json.dumps(identity.prm_document).encode() if identity.prm_document else None
        self._checked: set[tuple[str, frozenset[str]]] = set()
        self.findings: list[Any] = []

    # -- identity ----------------------------------------------------------------------------------
    def identify(self, request: RequestInfo) -> Identified:
        c = request.conn
        try:
            result = self.identity.resolve(Credentials(c.peer_host, request.headers, c.peer_cert_der, c.tls,
                                                       c.local_host, request.path))
        except IdentityError as err:
            self.metrics.identity_failed(err.code)
            raise
        if result.dropped:
            self.metrics.spoofed_headers_dropped(result.dropped)
        principal = result.principal
        self.metrics.identity_used(principal.source)
        extra = self.identity.upstream_headers(principal)
        headers = [*result.headers, *extra] if extra else result.headers
        return Identified(principal, headers)

    def well_known(self, path: str) -> bytes | None:
        if self._prm_doc is not None and path in self._prm_paths:
            return self._prm_doc
        return None

    # -- policy ------------------------------------------------------------------------------------
    def decide(self, principal: Principal, operation: Operation,
               request: RequestInfo) -> Decision | Awaitable[Decision]:
        if self.opa is not None:
            return self._decide_opa(principal, operation, request)
        pol = self.policy()
        if pol is None:
            return OBSERVE
        t0 = time.perf_counter_ns()
        try:
            decision = pol.decide(principal, operation)
        except Exception:  # an erroring rule never grants
            log.exception("policy evaluation failed for %s", operation.method)
            decision = Decision(Effect.DENY, ("policy.error",), pol.revision,
                                f"`{operation.method}` denied: policy evaluation failed")
        self.metrics.policy_evaluated(time.perf_counter_ns() - t0)
        return decision

    def _decide_opa(self, principal: Principal, operation: Operation,
                    request: RequestInfo) -> Decision | Awaitable[Decision]:
        assert self.opa is not None
        local = self.opa.local(operation)
        if local is not None:
            return local
        if operation.direction is Direction.SERVER_TO_CLIENT:
            # Rare (sampling, elicitation) and must be decided before the next event is relayed: blocking,
            # bounded by the OPA timeout.
            return self.opa.decide(principal, operation, session=request.session_id,
                                   protocol_version=request.protocol_version)
        return self._ask_opa(principal, operation, request)

    async def _ask_opa(self, principal: Principal, operation: Operation, request: RequestInfo) -> Decision:
        assert self.opa is not None
        t0 = time.perf_counter_ns()
        decision = await self.opa.adecide(principal, operation, session=request.session_id,
                                          protocol_version=request.protocol_version)
        self.metrics.policy_evaluated(time.perf_counter_ns() - t0)
        return decision

    def filter_result(self, principal: Principal, request_op: Operation, result: Any,
                      request: RequestInfo) -> ListVerdict | Awaitable[ListVerdict]:
        spec = _LIST_KINDS.get(request_op.method)
        if spec is not None and isinstance(result, dict):
            key, field, kind = spec
            entries = result.get(key)
            if isinstance(entries, list):
                names = [e[field] for e in entries if isinstance(e, dict) and isinstance(e.get(field), str)]
                self.metrics.learn_targets(kind, names)
                if kind == "tool":
                    self._check_tools(entries)
        if not isinstance(result, dict):
            return None
        if self.opa is not None:
            listed = list_names(request_op.method, result)
            if listed is None:
                return None
            return self._filter_opa(principal, request_op, result, listed, request)
        pol = self.policy()
        if pol is None:
            return None
        return filter_list_result(pol, principal, request_op.method, result)

    async def _filter_opa(self, principal: Principal, request_op: Operation, result: dict[str, Any],
                          names: list[str], request: RequestInfo) -> ListVerdict:
        """One OPA query per list answer (a page): the names it returns are kept, in the server's order."""
        assert self.opa is not None
        t0 = time.perf_counter_ns()
        visible = await self.opa.avisible(principal, request_op, names, session=request.session_id,
                                          protocol_version=request.protocol_version)
        self.metrics.policy_evaluated(time.perf_counter_ns() - t0)
        if isinstance(visible, Decision):
            return visible
        return filter_list_items(request_op.method, result, visible.__contains__)

    def _check_tools(self, tools: list[Any]) -> None:
        """Rules naming tools or arguments the server does not have are reported, once per policy revision."""
        pol = self.policy()
        if pol is None:
            return
        key = (pol.revision, frozenset(t.get("name", "") for t in tools if isinstance(t, dict)))
        if key in self._checked:
            return
        self._checked.add(key)
        self.findings = check_against_tools(pol, tools)
        counts: dict[str, int] = {}
        for f in self.findings:
            counts[f.severity] = counts.get(f.severity, 0) + 1
        self.metrics.policy_findings(counts)
        for f in self.findings:
            if f.severity in ("error", "warning"):
                log.warning("policy %s: %s (%s)", pol.revision, f.message, f.code)

    # -- lifecycle of exchanges ---------------------------------------------------------------------
    def ready(self) -> str | None:
        return self.audit.ready() if self.audit is not None else None

    def started(self, exchange: Exchange) -> None:
        self.metrics.started(exchange)

    def finished(self, exchange: Exchange) -> None:
        self.metrics.finished(exchange)
        if self.tracing.enabled:
            self.tracing.finished(exchange)
        if self.audit is not None:
            self.audit.record(exchange)
        if self.recent is not None:
            self.recent.add(exchange)

    def trace_headers(self, exchange: Exchange) -> list[tuple[bytes, bytes]]:
        return self.tracing.inject_headers(exchange) if self.tracing.enabled else []
