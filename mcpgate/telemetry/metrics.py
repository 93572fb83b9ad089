"""Prometheus metrics for mcpgate: the per-operation hooks, the control-plane counters, and exposition.

`started`/`finished` run on the event loop for every operation: each is a handful of dict lookups and integer
additions (no locks, no string formatting beyond the workload caller label). Call every mutating method from
the event-loop thread; `render()` may be called from any thread.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Final, NamedTuple

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics import exposition as openmetrics
from prometheus_client.registry import Collector

from mcpgate import __version__
from mcpgate._types import Clock
from mcpgate.exchange import Exchange
from mcpgate.policy.model import Effect
from mcpgate.telemetry import catalog
from mcpgate.telemetry.families import CounterFamily, GaugeFamily, HistogramFamily
from mcpgate.telemetry.labels import (
    METHOD_LABELS,
    OTHER_METHOD,
    OUTCOME_LABELS,
    OVERFLOW,
    TARGET_KINDS,
    UNKNOWN,
    LabelGuard,
    Targets,
    caller_label,
    error_code_label,
)
from mcpgate.telemetry.operations import OpFamilies
from mcpgate.telemetry.settings import MetricsSettings, metrics_settings
from mcpgate.telemetry.tracecontext import TRACE_KEY

log = logging.getLogger("mcpgate.telemetry")

_INFLIGHT_KEY: Final = "mcpgate.metrics.inflight"
_EFFECTS: Final = {Effect.ALLOW: "allow", Effect.DENY: "deny"}


def _spec_counter(spec: catalog.MetricSpec, initial: Iterable[tuple[str, ...]] = ()) -> CounterFamily:
    return CounterFamily(spec.name, spec.help, spec.labels, tuple(initial))


def _spec_gauge(spec: catalog.MetricSpec, initial: Iterable[tuple[str, ...]] = ()) -> GaugeFamily:
    return GaugeFamily(spec.name, spec.help, spec.labels, tuple(initial))


class OpView(NamedTuple):
    """One operation series as the dashboard reads it. `buckets` are per-bucket (not cumulative) counts of
    the duration histogram, one per `Metrics.duration_bounds` entry plus +Inf last."""

    labels: tuple[str, ...]
    calls: int
    buckets: tuple[int, ...]
    duration_sum: float


class _Collector(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics

    def collect(self) -> Iterator[Metric]:
        m = self._m
        for hook in m._collect_hooks:
            try:
                hook()
            except Exception:  # a broken state source must not take the whole scrape down
                log.exception("metrics collect hook failed")
        offset = time.time_ns() - m._clock()
        yield from m._ops.collect(offset)
        yield m._inflight.collect()
        yield m._policy_time.collect(offset)
        for family in m._simple:
            yield family.collect()


class Metrics:
    """Every mcpgate metric, in its own `CollectorRegistry` (never the process-global one)."""

    def __init__(self, settings: MetricsSettings | None = None, *, clock: Clock = time.monotonic_ns) -> None:
        s = settings or MetricsSettings()
        if s.caller_label not in ("full", "workload", "off"):
            raise ValueError(f"unknown caller_label `{s.caller_label}`")
        self.settings = s
        self._clock = clock
        self._caller_mode = s.caller_label
        cap = s.max_label_values

        self._overflow = _spec_counter(catalog.LABEL_OVERFLOW)
        self._ops = OpFamilies()
        self._bounds = self._ops.bounds
        self._inflight = _spec_gauge(catalog.IN_FLIGHT)
        self._decisions = _spec_counter(catalog.POLICY_DECISIONS)
        self._would_deny = _spec_counter(catalog.POLICY_WOULD_DENY)
        spec = catalog.POLICY_DECISION_TIME
        self._policy_time = HistogramFamily(spec.name, spec.help, (), catalog.POLICY_BUCKETS)
        self._reloads = _spec_counter(catalog.POLICY_RELOADS, [("ok",), ("error",)])
        self._last_reload_ok = _spec_gauge(catalog.POLICY_LAST_RELOAD_OK)
        self._revision = _spec_gauge(catalog.POLICY_REVISION)
        self._identity = _spec_counter(catalog.IDENTITY_SOURCES)
        self._identity_failures = _spec_counter(catalog.IDENTITY_FAILURES)
        self._findings = _spec_gauge(catalog.POLICY_FINDINGS)
        self._spoofed = _spec_counter(catalog.SPOOFED_HEADERS)
        self._upstream = _spec_counter(catalog.UPSTREAM_ERRORS)
        self._sse = _spec_gauge(catalog.SSE_STREAMS)
        self._sessions = _spec_gauge(catalog.SESSIONS)
        self._forwarded = _spec_counter(catalog.FORWARDED_BYTES, [("c2s",), ("s2c",)])
        self._audit_records = _spec_counter(catalog.AUDIT_RECORDS)
        self._audit_errors = _spec_counter(catalog.AUDIT_ERRORS)
        self._audit_dropped = _spec_counter(catalog.AUDIT_DROPPED)
        self._audit_healthy = _spec_gauge(catalog.AUDIT_HEALTHY)
        self._build = _spec_gauge(catalog.BUILD_INFO)
        self._build.set((__version__,), 1)
        self._simple = (
            self._decisions, self._would_deny, self._reloads, self._last_reload_ok, self._revision,
            self._identity, self._identity_failures, self._findings, self._spoofed, self._upstream, self._sse,
            self._sessions, self._forwarded,
            self._audit_records, self._audit_errors, self._audit_dropped, self._audit_healthy, self._overflow,
            self._build,
        )

        self._targets = Targets(cap, self._overflow)
        self._target_tables: dict[Any, dict[str, str]] = {
            op_kind: self._targets.by_kind[kind] for op_kind, kind in TARGET_KINDS.items()
            if kind != "resource" or s.resource_uri_label
        }
        guard = LabelGuard
        self._caller = guard("caller", cap, self._overflow, seed=("",))
        self._version = guard("protocol_version", cap, self._overflow, seed=("",))
        self._rule = guard("rule", cap, self._overflow)
        self._source = guard("source", cap, self._overflow)
        self._kind = guard("kind", cap, self._overflow)
        self._rev = guard("revision", cap, self._overflow)

        self._collect_hooks: list[Callable[[], None]] = []
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(self))

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> Metrics:
        """From the `telemetry:` config section (its `metrics:` part); raises `ConfigError` when invalid."""
        return cls(metrics_settings(section))

    # -- per operation (hot path) -------------------------------------------------------------------------

    def _target(self, ex: Exchange, count_overflow: bool = True) -> str:
        op = ex.operation
        table = self._target_tables.get(op.kind)
        if table is None:
            return ""
        target = op.target
        if target is None:
            return UNKNOWN
        label = table.get(target, UNKNOWN)
        if label is OVERFLOW and count_overflow:
            self._overflow.inc(("target",))
        return label

    def started(self, ex: Exchange) -> None:
        key = (METHOD_LABELS.get(ex.operation.method, OTHER_METHOD), self._target(ex, False))
        values = self._inflight.values
        values[key] = values.get(key, 0) + 1
        ex.extra[_INFLIGHT_KEY] = key

    def finished(self, ex: Exchange) -> None:
        op = ex.operation
        extra = ex.extra
        inflight = extra.pop(_INFLIGHT_KEY, None)
        if inflight is not None:
            self._inflight.values[inflight] -= 1

        raw = caller_label(self._caller_mode, ex.principal)
        caller = self._caller.values.get(raw)
        if caller is None:
            caller = self._caller.admit(raw)
        raw = op.protocol_version or ex.request.protocol_version or ""
        version = self._version.values.get(raw)
        if version is None:
            version = self._version.admit(raw)
        d = ex.decision
        effect = _EFFECTS[d.effect]
        decision = "would_deny" if d.would_deny and effect == "allow" else effect
        key = (METHOD_LABELS.get(op.method, OTHER_METHOD), self._target(ex), caller, decision,
               OUTCOME_LABELS[ex.outcome], error_code_label(ex.error_code), version)

        series = self._ops.series.get(key) or self._ops.get(key)
        series.count += 1
        series.bytes_in += ex.bytes_in
        series.bytes_out += ex.bytes_out
        t_start = ex.t_start
        t_end = ex.t_end
        if t_end is not None:
            seconds = (t_end - t_start) / 1e9
            bucket = series.duration.observe(self._bounds, seconds)
            if ex.decision_id:
                hist = series.duration
                if hist.exemplars is None:
                    hist.exemplars = [None] * len(hist.counts)
                ids = extra.get(TRACE_KEY)
                trace = ids.trace_id if ids is not None and ids.sampled else 0
                hist.exemplars[bucket] = (ex.decision_id, trace, seconds, t_end)
        if ex.t_first_byte is not None:
            series.ttfb.observe(self._bounds, (ex.t_first_byte - t_start) / 1e9)

        counts = self._decisions.values
        g = self._rule
        for rule in d.rule_ids:
            rkey = (g.label(rule), effect)
            counts[rkey] = counts.get(rkey, 0) + 1
        if d.would_deny_rule_ids:
            counts = self._would_deny.values
            for rule in d.would_deny_rule_ids:
                wkey = (g.label(rule),)
                counts[wkey] = counts.get(wkey, 0) + 1

    def learn_targets(self, kind: str, names: Iterable[str]) -> None:
        """Names the server advertised in tools/list, prompts/list, resources/list results.

        kind: `tool`, `prompt` or `resource`. Only these names ever become `target` label values.
        """
        self._targets.learn(kind, names)

    # -- control plane and data-plane events --------------------------------------------------------------

    def policy_evaluated(self, duration_ns: int) -> None:
        """Time one policy evaluation took (the data plane measures around `Hooks.decide`)."""
        series = self._policy_time.series[()]
        series.observe(self._policy_time.bounds, duration_ns / 1e9)

    def policy_reloaded(self, ok: bool, revision: str) -> None:
        """A policy load finished; on success `revision` becomes the serving revision."""
        self._reloads.inc(("ok" if ok else "error",))
        self._last_reload_ok.set((), 1 if ok else 0)
        if ok:
            g = self._rev
            self._revision.replace((g.label(revision),), 1)

    def identity_used(self, source: str) -> None:
        g = self._source
        self._identity.inc((g.label(source),))

    def identity_failed(self, code: str) -> None:
        """code: the stable `identity.*` error code (a handful of values: bounded)."""
        self._identity_failures.inc((code,))

    def policy_findings(self, counts: Mapping[str, int]) -> None:
        """The latest `check_against_tools` result: count per severity (error, warning, info)."""
        for severity in ("error", "warning", "info"):
            self._findings.set((severity,), counts.get(severity, 0))

    def spoofed_headers_dropped(self, n: int = 1) -> None:
        if n:
            self._spoofed.inc((), n)

    def upstream_error(self, kind: str) -> None:
        """kind: unavailable, reset, timeout, protocol_error (the suffix of the `upstream.*` error code)."""
        g = self._kind
        self._upstream.inc((g.label(kind),))

    def sse_stream_opened(self) -> None:
        self._sse.inc((), 1)

    def sse_stream_closed(self) -> None:
        self._sse.inc((), -1)

    def session_opened(self) -> None:
        self._sessions.inc((), 1)

    def session_closed(self) -> None:
        self._sessions.inc((), -1)

    def bytes_forwarded(self, direction: str, n: int) -> None:
        """direction: `c2s` (client to server) or `s2c`."""
        if direction not in ("c2s", "s2c"):
            raise ValueError(f"unknown direction `{direction}`")
        self._forwarded.inc((direction,), n)

    def audit_written(self, n: int = 1) -> None:
        self._audit_records.inc((), n)

    def audit_write_failed(self) -> None:
        self._audit_errors.inc((), 1)

    def audit_health(self, healthy: bool) -> None:
        self._audit_healthy.set((), 1 if healthy else 0)

    def audit_state(self, records_written: int, write_errors: int, healthy: bool, records_dropped: int = 0) -> None:
        """The audit log's own totals (`AuditLog.stats()`), set as absolute values: the writer counts them on
        its thread, so they are copied in at scrape time rather than pushed per record."""
        self._audit_records.values[()] = records_written
        self._audit_errors.values[()] = write_errors
        self._audit_dropped.values[()] = records_dropped
        self._audit_healthy.set((), 1 if healthy else 0)

    def add_collect_hook(self, hook: Callable[[], None]) -> None:
        """Call `hook` at the start of every scrape (on the scraping thread), to copy in state that other
        parts keep themselves, such as the audit log's counters."""
        self._collect_hooks.append(hook)

    # -- read-only views (the admin dashboard) ------------------------------------------------------------

    @property
    def duration_bounds(self) -> tuple[float, ...]:
        """Upper bounds of `mcp_server_operation_duration_seconds`' finite buckets, ascending."""
        return tuple(self._bounds)

    def operation_views(self) -> list[OpView]:
        """A copy of every operation series: labels in `catalog.OP_LABELS` order, calls, duration buckets.

        Safe from any thread (copies, like `render()`); costs one pass over the series.
        """
        out: list[OpView] = []
        for key, series in list(self._ops.series.items()):
            hist = series.duration
            out.append(OpView(key, series.count, tuple(hist.counts), hist.sum))
        return out

    def family_values(self, name: str) -> list[tuple[tuple[str, ...], float]]:
        """A copy of a counter or gauge family's series as (label values, value), by metric name.

        Covers every non-operation family (`mcpgate_policy_decisions_total`, `mcpgate_policy_revision_info`,
        ...); raises `KeyError` for a name that is not one of them.
        """
        for family in (*self._simple, self._inflight):
            if family.name == name:
                return list(family.values.items())
        raise KeyError(name)

    # -- exposition ---------------------------------------------------------------------------------------

    def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """Exposition bytes and content type: Prometheus text 0.0.4, or OpenMetrics (with exemplars) when
        `accept` (the scraper's Accept header) asks for `application/openmetrics-text`."""
        if accept and "application/openmetrics-text" in accept:
            body: bytes = openmetrics.generate_latest(self.registry)  # type: ignore[no-untyped-call]
            return body, openmetrics.CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_PLAIN_0_0_4
