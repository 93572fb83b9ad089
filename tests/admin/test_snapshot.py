"""The dashboard's data: quantiles as Prometheus computes them, windowed rates, denials, recent exchanges."""

from __future__ import annotations

import math
import random

import pytest

from mcpgate.identity.model import Principal
from mcpgate.policy.model import Decision, Effect
from mcpgate.protocol.model import Outcome
from mcpgate.telemetry import Metrics, catalog
from mcpgate.telemetry.recent import RecentExchanges
from mcpgate.telemetry.settings import MetricsSettings
from mcpgate.telemetry.snapshot import DashboardSnapshot, histogram_quantile
from tests.telemetry.exchanges import ALLOW, DENY, WORKLOAD, WOULD_DENY, make_exchange

BOUNDS = catalog.DURATION_BUCKETS
OTHER = Principal(id="spiffe://cluster.local/ns/ci/sa/bot", source="mtls", namespace="ci", service_account="bot")


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def feed(metrics: Metrics, *exchanges: object) -> None:
    for ex in exchanges:
        metrics.started(ex)  # type: ignore[arg-type]
        metrics.finished(ex)  # type: ignore[arg-type]


@pytest.fixture
def metrics() -> Metrics:
    m = Metrics(MetricsSettings(caller_label="workload"))
    m.learn_targets("tool", ["echo", "search", "delete_repo"])
    return m


def test_quantile_interpolates_inside_the_bucket_like_prometheus() -> None:
    bounds = [0.1, 0.2, 0.4]
    # 10 in (0, 0.1], 10 in (0.1, 0.2], 0 in (0.2, 0.4], 0 above
    assert histogram_quantile(0.5, bounds, [10, 10, 0, 0]) == pytest.approx(0.1)
    assert histogram_quantile(0.75, bounds, [10, 10, 0, 0]) == pytest.approx(0.15)
    assert histogram_quantile(0.25, bounds, [10, 10, 0, 0]) == pytest.approx(0.05)
    assert histogram_quantile(0.99, bounds, [1, 0, 0, 5]) == 0.4, "rank in +Inf: the highest finite bound"
    assert histogram_quantile(0.5, bounds, [0, 0, 0, 0]) is None


def test_quantile_brackets_the_true_quantile_of_observed_values() -> None:
    rng = random.Random(7)
    values = [rng.lognormvariate(math.log(0.003), 1.0) for _ in range(5000)]
    m = Metrics()
    m.learn_targets("tool", ["echo"])
    feed(m, *(make_exchange(duration_ns=int(v * 1e9)) for v in values))
    [view] = m.operation_views()
    assert view.calls == 5000
    values.sort()
    for q in (0.5, 0.95, 0.99):
        true = values[int(q * len(values)) - 1]
        est = histogram_quantile(q, m.duration_bounds, view.buckets)
        assert est is not None
        i = next(i for i, b in enumerate(BOUNDS) if true <= b)
        lower = BOUNDS[i - 1] if i else 0.0
        assert lower <= est <= BOUNDS[i], (q, true, est)


def test_snapshot_counts_tools_errors_denials_and_callers(metrics: Metrics) -> None:
    feed(metrics,
         make_exchange(principal=WORKLOAD, decision=ALLOW),
         make_exchange(principal=WORKLOAD, decision=ALLOW, duration_ns=40_000_000),
         make_exchange("tools/call", "search", principal=OTHER, decision=ALLOW, outcome=Outcome.TOOL_ERROR),
         make_exchange("tools/call", "delete_repo", principal=OTHER, decision=DENY, outcome=Outcome.DENIED,
                       error_code=-32001),
         make_exchange("tools/call", "delete_repo", principal=WORKLOAD, decision=DENY, outcome=Outcome.DENIED,
                       error_code=-32001),
         make_exchange("tools/call", "search", principal=OTHER, decision=WOULD_DENY),
         make_exchange("tools/list", None, principal=WORKLOAD, decision=ALLOW))
    snap = DashboardSnapshot(metrics, clock=Clock()).snapshot()
    tools = {t["tool"]: t for t in snap["tools"]}
    assert [t["tool"] for t in snap["tools"]] == ["delete_repo", "echo", "search"], "by calls, then name"
    assert (tools["echo"]["calls"], tools["echo"]["errors"], tools["echo"]["denied"]) == (2, 0, 0)
    assert (tools["search"]["calls"], tools["search"]["errors"]) == (2, 1)
    assert (tools["delete_repo"]["calls"], tools["delete_repo"]["denied"]) == (2, 2)
    assert tools["echo"]["rate"] is None, "one sample: no rate yet"
    assert tools["echo"]["latency"]["scope"] == "total"
    assert 0.025 <= tools["echo"]["latency"]["p99"] <= 0.05
    assert snap["totals"] == {"calls": 7, "rate": None, "denied": 2, "errors": 1, "in_flight": 0}
    assert {m["method"]: m["calls"] for m in snap["methods"]} == {"tools/call": 6, "tools/list": 1}
    assert snap["denials"]["by_rule"] == [{"rule": "no-destructive", "count": 2}]
    assert snap["denials"]["by_caller"] == [{"caller": "agents/planner", "count": 1},
                                            {"caller": "ci/bot", "count": 1}]
    assert snap["denials"]["would_deny_by_rule"] == [{"rule": "audit-no-delete", "count": 1}]


def test_rate_and_latency_cover_the_sliding_window(metrics: Metrics) -> None:
    clock = Clock()
    dash = DashboardSnapshot(metrics, clock=clock, window_s=10)
    feed(metrics, *(make_exchange(duration_ns=50_000_000) for _ in range(100)))  # slow, before the window
    dash.snapshot()
    clock.t += 2
    feed(metrics, *(make_exchange(duration_ns=200_000) for _ in range(20)))
    snap = dash.snapshot()
    [echo] = snap["tools"]
    assert echo["calls"] == 120
    assert echo["rate"] == pytest.approx(10.0)
    assert snap["totals"]["rate"] == pytest.approx(10.0)
    assert echo["latency"]["scope"] == "window"
    assert echo["latency"]["p99"] <= 0.00025, "only the fast calls inside the window"
    assert echo["latency"]["mean"] == pytest.approx(0.0002)

    clock.t += 30  # the window slides past both samples: the newest becomes the base
    dash.snapshot()
    clock.t += 5
    snap = dash.snapshot()
    [echo] = snap["tools"]
    assert echo["rate"] == 0
    assert echo["latency"]["scope"] == "total", "no calls in the window: latency since start"
    assert echo["latency"]["p50"] > 0.02


def test_tool_first_seen_inside_the_window_gets_a_rate(metrics: Metrics) -> None:
    clock = Clock()
    dash = DashboardSnapshot(metrics, clock=clock)
    dash.snapshot()
    clock.t += 4
    feed(metrics, *(make_exchange("tools/call", "search") for _ in range(8)))
    [search] = dash.snapshot()["tools"]
    assert search["rate"] == pytest.approx(2.0)
    assert search["latency"]["scope"] == "window"


def test_policy_status_and_upstream_errors(metrics: Metrics) -> None:
    status = {"mode": "enforce", "warnings": ["audit sink failing: disk full"]}
    clock = Clock()
    dash = DashboardSnapshot(metrics, status=lambda: status, clock=clock)
    assert dash.snapshot()["policy"] == {"revision": None, "reloads_ok": 0, "reloads_error": 0,
                                         "last_reload_ok": None}
    metrics.policy_reloaded(True, "rev-7")
    metrics.policy_reloaded(False, "")
    metrics.upstream_error("timeout")
    clock.t += 1
    snap = dash.snapshot()
    assert snap["policy"] == {"revision": "rev-7", "reloads_ok": 1, "reloads_error": 1, "last_reload_ok": False}
    assert snap["status"] == status
    assert snap["upstream_errors"] == [{"kind": "timeout", "count": 1}]


def test_recent_keeps_the_newest_and_formats_lazily() -> None:
    mono = [5_000_000_000]
    recent = RecentExchanges(maxlen=3, clock=lambda: mono[0], wall=lambda: 1_700_000_000_000_000_000 + mono[0])
    for i in range(5):
        recent.add(make_exchange("tools/call", f"t{i}", decision_id=f"d{i}", t_start=1_000_000_000 * (i + 1),
                                 duration_ns=2_000_000))
    deny = Decision(Effect.DENY, ("no-destructive", "default"), "rev-2")
    recent.add(make_exchange("tools/call", "<b>x</b>", principal=WORKLOAD, decision=deny,
                             outcome=Outcome.DENIED, error_code=-32001, decision_id="d-deny", duration_ns=None))
    assert len(recent) == 3
    rows = recent.to_json()
    assert [r["decision_id"] for r in rows] == ["d-deny", "d4", "d3"]
    first = rows[0]
    assert first == {
        "time": pytest.approx(1_700_000_000 + 1.0), "principal": WORKLOAD.id, "source": "mtls",
        "method": "tools/call", "target": "<b>x</b>", "decision": "deny", "rules": ["no-destructive", "default"],
        "revision": "rev-2", "outcome": "denied", "error_code": -32001, "latency_s": None, "decision_id": "d-deny"}
    assert rows[1]["time"] == pytest.approx(1_700_000_000 + 5.002)
    assert rows[1]["latency_s"] == pytest.approx(0.002)
    assert [r["decision_id"] for r in recent.to_json(limit=1)] == ["d-deny"]
    assert recent.to_json(limit=0) == []


def test_recent_reports_would_deny_with_the_audit_rule() -> None:
    recent = RecentExchanges()
    recent.add(make_exchange(decision=WOULD_DENY))
    [row] = recent.to_json()
    assert (row["decision"], row["rules"]) == ("would_deny", ["audit-no-delete"])
    recent.add(make_exchange(target="x" * 100_000))
    assert len(recent.to_json(limit=1)[0]["target"]) == 256, "wire strings are clipped"
    with pytest.raises(ValueError, match="maxlen"):
        RecentExchanges(maxlen=0)


def test_family_values_rejects_unknown_names(metrics: Metrics) -> None:
    with pytest.raises(KeyError):
        metrics.family_values("mcpgate_no_such_metric")


def test_pages_polling_together_share_one_computation(metrics: Metrics) -> None:
    clock = Clock()
    dash = DashboardSnapshot(metrics, clock=clock, min_interval_s=0.5)
    first = dash.snapshot()
    feed(metrics, make_exchange())
    clock.t += 0.4
    assert dash.snapshot() is first
    clock.t += 0.2
    assert dash.snapshot()["totals"]["calls"] == 1
