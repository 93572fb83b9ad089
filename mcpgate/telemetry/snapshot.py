"""The admin dashboard's data: one JSON-ready dict from the metrics, the recent exchanges and the gateway status.

Rates and latency quantiles cover a sliding window: each `snapshot()` keeps the cumulative per-tool state
(at most one sample a second) and subtracts the oldest sample still inside the window. Quantiles follow
Prometheus' `histogram_quantile` (linear interpolation inside the bucket), so the page and Grafana agree.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from operator import add
from typing import Any, Final

from mcpgate._types import Clock
from mcpgate.telemetry import catalog
from mcpgate.telemetry.metrics import Metrics, OpView
from mcpgate.telemetry.recent import RecentExchanges

StatusFn = Callable[[], dict[str, Any]]

QUANTILES: Final = (0.5, 0.95, 0.99)
ERROR_OUTCOMES: Final = frozenset({"tool_error", "jsonrpc_error", "upstream_failed"})
_I = {name: i for i, name in enumerate(catalog.OP_LABELS)}
_METHOD, _TARGET, _CALLER, _DECISION, _OUTCOME = (_I[n] for n in ("method", "target", "caller", "decision",
                                                                 "outcome"))


def histogram_quantile(q: float, bounds: Sequence[float], buckets: Sequence[int]) -> float | None:
    """The q-quantile of a histogram, as Prometheus computes it: `buckets` are per-bucket counts (one per
    bound, then +Inf). None when empty; the highest finite bound when the rank falls in +Inf."""
    total = sum(buckets)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for i, count in enumerate(buckets):
        if seen + count >= rank and count > 0:
            if i == len(bounds):
                return bounds[-1] if bounds else None
            lower = bounds[i - 1] if i > 0 else 0.0
            return lower + (bounds[i] - lower) * ((rank - seen) / count)
        seen += count
    return bounds[-1] if bounds else None


@dataclass(slots=True)
class _Agg:
    """Cumulative totals for one tool (or one method) at one instant."""

    calls: int = 0
    errors: int = 0
    denied: int = 0
    duration_sum: float = 0.0
    buckets: list[int] = field(default_factory=list)


@dataclass(slots=True)
class _Sample:
    t: float
    tools: dict[str, _Agg]
    methods: dict[str, int]


class DashboardSnapshot:
    """Implements the admin plane's `DashboardSource`: `snapshot()` is the `/api/dashboard` body.

    Not per operation but per poll: ~6 ms for 2,000 operation series, at most once per `min_interval_s`
    however many pages poll. Safe from any thread (metrics are read by copying; the history is locked).
    """

    def __init__(self, metrics: Metrics, recent: RecentExchanges | None = None, status: StatusFn | None = None,
                 *, window_s: float = 60.0, recent_limit: int = 50, min_interval_s: float = 0.5,
                 clock: Callable[[], float] = time.monotonic, wall: Clock = time.time_ns) -> None:
        self.metrics = metrics
        self.recent = recent
        self.status = status
        self.window_s = window_s
        self.recent_limit = recent_limit
        self.min_interval_s = min_interval_s
        self._cached: tuple[float, dict[str, Any]] | None = None
        self._clock = clock
        self._wall = wall
        self._history: deque[_Sample] = deque()
        self._lock = threading.Lock()

    def snapshot(self) -> dict[str, Any]:
        """The `/api/dashboard` body. Several pages polling at once cost one computation per `min_interval_s`."""
        with self._lock:
            t = self._clock()
            if self._cached is not None and t - self._cached[0] < self.min_interval_s:
                return self._cached[1]
            body = self._build()
            self._cached = (t, body)
            return body

    def _build(self) -> dict[str, Any]:
        bounds = self.metrics.duration_bounds
        views = self.metrics.operation_views()
        now = self._sample(views, bounds)
        base = self._remember(now)
        dt = now.t - base.t if base is not None else 0.0
        tools = [self._tool_row(name, agg, base.tools.get(name) if base else None, dt, bounds)
                 for name, agg in now.tools.items()]
        tools.sort(key=lambda r: (-r["calls"], r["tool"]))
        methods: list[dict[str, Any]] = [
            {"method": m, "calls": n, "rate": _rate(n, base.methods.get(m, 0) if base else None, dt)}
            for m, n in now.methods.items()]
        methods.sort(key=lambda r: (-r["calls"], r["method"]))
        total = sum(now.methods.values())
        return {
            "generated_at": self._wall() / 1e9,
            "window_s": self.window_s,
            "rate_window_s": round(dt, 3) if base is not None else None,
            "status": self.status() if self.status is not None else {},
            "policy": self._policy(),
            "totals": {
                "calls": total,
                "rate": _rate(total, sum(base.methods.values()) if base else None, dt),
                "denied": sum(a.denied for a in now.tools.values()),
                "errors": sum(a.errors for a in now.tools.values()),
                "in_flight": sum(int(v) for _, v in self.metrics.family_values(catalog.IN_FLIGHT.name)),
            },
            "tools": tools,
            "methods": methods,
            "denials": self._denials(views),
            "upstream_errors": _counts(self.metrics.family_values(catalog.UPSTREAM_ERRORS.name), "kind"),
            "recent": self.recent.to_json(self.recent_limit) if self.recent is not None else [],
        }

    # -- aggregation ---------------------------------------------------------------------------------------

    def _sample(self, views: list[OpView], bounds: Sequence[float]) -> _Sample:
        n = len(bounds) + 1
        tools: dict[str, _Agg] = {}
        methods: dict[str, int] = {}
        for view in views:
            labels = view.labels
            method = labels[_METHOD]
            methods[method] = methods.get(method, 0) + view.calls
            if method != "tools/call":
                continue
            agg = tools.get(labels[_TARGET])
            if agg is None:
                agg = tools[labels[_TARGET]] = _Agg(buckets=[0] * n)
            agg.calls += view.calls
            agg.duration_sum += view.duration_sum
            if labels[_DECISION] == "deny":
                agg.denied += view.calls
            elif labels[_OUTCOME] in ERROR_OUTCOMES:
                agg.errors += view.calls
            agg.buckets = list(map(add, agg.buckets, view.buckets))
        return _Sample(self._clock(), tools, methods)

    def _remember(self, now: _Sample) -> _Sample | None:
        """Store `now` (at most one sample a second) and return the oldest sample inside the window."""
        h = self._history
        if not h or now.t - h[-1].t >= 1.0:
            h.append(now)
        while len(h) > 1 and now.t - h[0].t > self.window_s:
            h.popleft()
        base = h[0]
        return base if base is not now and now.t > base.t else None

    def _tool_row(self, name: str, agg: _Agg, old: _Agg | None, dt: float,
                  bounds: Sequence[float]) -> dict[str, Any]:
        if dt > 0 and old is None:
            old = _Agg(buckets=[0] * len(agg.buckets))  # first seen inside the window
        if old is not None and agg.calls > old.calls:
            # Latency over the window; with no calls in it, fall back to everything since start.
            buckets = [a - b for a, b in zip(agg.buckets, old.buckets, strict=True)]
            total_s = agg.duration_sum - old.duration_sum
            scope = "window"
        else:
            buckets, total_s, scope = agg.buckets, agg.duration_sum, "total"
        observed = sum(buckets)
        latency: dict[str, Any] = {f"p{round(q * 100)}": histogram_quantile(q, bounds, buckets)
                                   for q in QUANTILES}
        latency["mean"] = total_s / observed if observed else None
        latency["scope"] = scope
        return {
            "tool": name,
            "calls": agg.calls,
            "rate": _rate(agg.calls, old.calls if old is not None else None, dt),
            "errors": agg.errors,
            "denied": agg.denied,
            "latency": latency,
        }

    def _denials(self, views: list[OpView]) -> dict[str, Any]:
        by_rule = [(rule, v) for (rule, effect), v in self.metrics.family_values(catalog.POLICY_DECISIONS.name)
                   if effect == "deny"]
        callers: dict[str, float] = {}
        for view in views:
            if view.labels[_DECISION] == "deny":
                caller = view.labels[_CALLER]
                callers[caller] = callers.get(caller, 0) + view.calls
        would = self.metrics.family_values(catalog.POLICY_WOULD_DENY.name)
        return {
            "by_rule": _counts([((r,), v) for r, v in by_rule], "rule"),
            "by_caller": _counts([((c,), v) for c, v in callers.items()], "caller"),
            "would_deny_by_rule": _counts(would, "rule"),
        }

    def _policy(self) -> dict[str, Any]:
        m = self.metrics
        revisions = [key[0] for key, v in m.family_values(catalog.POLICY_REVISION.name) if v]
        reloads = dict(m.family_values(catalog.POLICY_RELOADS.name))
        last_ok = m.family_values(catalog.POLICY_LAST_RELOAD_OK.name)
        loaded = reloads.get(("ok",), 0) + reloads.get(("error",), 0)
        return {
            "revision": revisions[0] if revisions else None,
            "reloads_ok": int(reloads.get(("ok",), 0)),
            "reloads_error": int(reloads.get(("error",), 0)),
            "last_reload_ok": bool(last_ok[0][1]) if last_ok and loaded else None,
        }


def _rate(now: float, old: float | None, dt: float) -> float | None:
    if old is None or dt <= 0:
        return None
    return max(now - old, 0) / dt


def _counts(values: list[tuple[tuple[str, ...], float]], label: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = [{label: key[0], "count": int(v)} for key, v in values if v]
    rows.sort(key=lambda r: (-r["count"], r[label]))
    return rows
