"""The last N finished exchanges, kept for the admin dashboard: stored as-is on the hot path, formatted on read.

`add()` is one `deque.append` (the data plane calls it for every operation); `to_json()` runs when the
dashboard polls and may run on another thread (it copies the deque first).
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from mcpgate._types import Clock
from mcpgate.exchange import Exchange
from mcpgate.policy.model import Effect

MAX_TEXT = 256
"""Longest string a row carries: targets and principals come from the wire and can be as long as a body."""


class RecentExchanges:
    """A bounded ring of finished exchanges, newest last."""

    __slots__ = ("_clock", "_items", "_wall", "maxlen")

    def __init__(self, maxlen: int = 200, *, clock: Clock = time.monotonic_ns,
                 wall: Clock = time.time_ns) -> None:
        """`clock` is the data plane's monotonic clock (the one that stamps `Exchange.t_*`); `wall` turns
        those stamps into wall-clock times when formatting."""
        if maxlen < 1:
            raise ValueError(f"maxlen must be at least 1, got `{maxlen}`")
        self.maxlen = maxlen
        self._items: deque[Exchange] = deque(maxlen=maxlen)
        self._clock = clock
        self._wall = wall

    def add(self, ex: Exchange) -> None:
        """Keep `ex` (finished: the data plane no longer changes it). Drops the oldest past `maxlen`."""
        self._items.append(ex)

    def __len__(self) -> int:
        return len(self._items)

    def to_json(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The newest `limit` (default all) exchanges, newest first, as JSON-ready dicts.

        Values are raw strings from the wire (tool names, principals): whoever renders them must escape.
        """
        items = list(self._items)
        if limit is not None:
            items = items[-limit:] if limit > 0 else []
        offset = self._wall() - self._clock()
        return [_row(ex, offset) for ex in reversed(items)]


def _row(ex: Exchange, wall_offset_ns: int) -> dict[str, Any]:
    op = ex.operation
    d = ex.decision
    if d.effect is Effect.DENY:
        decision = "deny"
        rules = d.rule_ids
    elif d.would_deny:
        decision = "would_deny"
        rules = d.would_deny_rule_ids or d.rule_ids
    else:
        decision = "allow"
        rules = d.rule_ids
    t = ex.t_end if ex.t_end is not None else ex.t_start
    duration = ex.duration_ns
    return {
        "time": (t + wall_offset_ns) / 1e9,
        "principal": _clip(ex.principal.id),
        "source": ex.principal.source,
        "method": _clip(op.method),
        "target": None if op.target is None else _clip(op.target),
        "decision": decision,
        "rules": list(rules),
        "revision": d.revision,
        "outcome": ex.outcome.value if ex.outcome is not None else None,
        "error_code": ex.error_code,
        "latency_s": None if duration is None else duration / 1e9,
        "decision_id": ex.decision_id,
    }


def _clip(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT - 1] + "…"
