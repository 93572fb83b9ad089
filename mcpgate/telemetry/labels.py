"""Bounded label values: per-label caps with an overflow value, advertised-only targets, caller granularity.

Everything here runs on the hot path as a dict lookup; the slow branch (admitting a new value) runs once per
distinct value.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from mcpgate.identity.model import Principal
from mcpgate.policy.model import Decision, Effect
from mcpgate.protocol.model import OpKind, Outcome
from mcpgate.telemetry.families import CounterFamily

UNKNOWN: Final = "__unknown__"
"""A target the server never advertised (or a method outside the MCP registry: `__other__`)."""
OVERFLOW: Final = "__overflow__"
"""A value past the label's cap of distinct values."""
OTHER_METHOD: Final = "__other__"

CALLER_MODES: Final = ("full", "workload", "off")

# Every method of every MCP version (mcp-protocol.md §3.2-3.4); anything else is client-chosen text.
MCP_METHODS: Final = frozenset({
    "initialize", "ping", "server/discover",
    "tools/list", "tools/call",
    "resources/list", "resources/templates/list", "resources/read",
    "resources/subscribe", "resources/unsubscribe", "subscriptions/listen",
    "prompts/list", "prompts/get", "completion/complete", "logging/setLevel",
    "tasks/get", "tasks/result", "tasks/list", "tasks/cancel", "tasks/update",
    "sampling/createMessage", "roots/list", "elicitation/create",
    "notifications/initialized", "notifications/cancelled", "notifications/progress",
    "notifications/message", "notifications/resources/updated", "notifications/resources/list_changed",
    "notifications/tools/list_changed", "notifications/prompts/list_changed",
    "notifications/roots/list_changed", "notifications/elicitation/complete",
    "notifications/tasks/status", "notifications/tasks", "notifications/subscriptions/acknowledged",
})
METHOD_LABELS: Final[dict[str, str]] = {m: m for m in MCP_METHODS}

OUTCOME_LABELS: Final[dict[Outcome | None, str]] = {o: o.value for o in Outcome}
OUTCOME_LABELS[None] = "unknown"

# JSON-RPC codes worth their own label value; the rest collapse into a class (bounded by construction).
KNOWN_ERROR_CODES: Final[dict[int, str]] = {c: str(c) for c in (
    -32700, -32600, -32601, -32602, -32603,  # JSON-RPC 2.0
    -32000, -32001, -32002,                   # common implementation codes; -32001 is mcpgate's denial
    -32020, -32021, -32022, -32042,           # MCP-defined
)}


def error_code_label(code: int | None) -> str:
    """`-32602` for well-known codes, else `server_error` / `reserved` / `application`; "" for none."""
    if code is None:
        return ""
    known = KNOWN_ERROR_CODES.get(code)
    if known is not None:
        return known
    if -32099 <= code <= -32000:
        return "server_error"
    if -32768 <= code <= -32000:
        return "reserved"
    return "application"


def decision_label(decision: Decision) -> str:
    if decision.effect is Effect.DENY:
        return "deny"
    return "would_deny" if decision.would_deny else "allow"


def caller_label(mode: str, principal: Principal) -> str:
    """The caller at the configured granularity. `workload` never exposes user ids (JWT subjects)."""
    if mode == "workload":
        ns, sa = principal.namespace, principal.service_account
        return f"{ns}/{sa}" if ns and sa else principal.source
    if mode == "full":
        return principal.id
    return ""


class LabelGuard:
    """Admits up to `cap` distinct values for one label; later ones become `__overflow__` and are counted.

    Hot path: `guard.values.get(raw)`, then `guard.admit(raw)` on a miss. Overflowed values are not
    remembered, so memory stays bounded whatever a client sends.
    """

    __slots__ = ("cap", "name", "overflow", "values")

    def __init__(self, label: str, cap: int, overflow: CounterFamily, seed: Iterable[str] = ()) -> None:
        self.name = label
        self.cap = cap
        self.overflow = overflow
        self.values: dict[str, str] = {}
        for value in seed:
            self.values[value] = value

    def label(self, raw: str) -> str:
        value = self.values.get(raw)
        return self.admit(raw) if value is None else value

    def admit(self, raw: str) -> str:
        if raw in self.values:
            return raw
        if len(self.values) < self.cap:
            self.values[raw] = raw
            return raw
        self.overflow.inc((self.name,))
        return OVERFLOW


class Targets:
    """Target names the server advertised, per kind; the only target values a metric label ever takes.

    All kinds share one `target` cap. Names past the cap map to `__overflow__`; a name never advertised maps
    to `__unknown__`. Memory is bounded by `remember` (advertised names are server-chosen, still bounded).
    """

    KINDS: Final = ("tool", "prompt", "resource")

    def __init__(self, cap: int, overflow: CounterFamily, remember: int | None = None) -> None:
        self.cap = cap
        self.overflow = overflow
        self.remember = remember if remember is not None else max(10 * cap, 10_000)
        self.admitted = 0
        self.by_kind: dict[str, dict[str, str]] = {k: {} for k in self.KINDS}

    def learn(self, kind: str, names: Iterable[str]) -> None:
        table = self.by_kind.get(kind)
        if table is None:
            raise ValueError(f"unknown target kind `{kind}`: expected one of {', '.join(self.KINDS)}")
        for name in names:
            if not isinstance(name, str) or name in table:
                continue
            if self.admitted < self.cap:
                table[name] = name
                self.admitted += 1
            elif len(table) < self.remember:
                table[name] = OVERFLOW


TARGET_KINDS: Final[dict[OpKind, str]] = {
    OpKind.TOOL_CALL: "tool",
    OpKind.PROMPT: "prompt",
    OpKind.RESOURCE: "resource",
}
