"""Per-operation series: one record per bounded label tuple feeds five metric families (one dict lookup)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.metrics_core import CounterMetricFamily, Metric

from mcpgate.telemetry import catalog
from mcpgate.telemetry.families import HistogramFamily, HistogramSeries, LabelKey


class OpSeries:
    __slots__ = ("bytes_in", "bytes_out", "count", "duration", "ttfb")

    def __init__(self, duration: HistogramSeries, ttfb: HistogramSeries) -> None:
        self.count = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.duration = duration
        self.ttfb = ttfb


class OpFamilies:
    """The operation counter, byte counters and the duration and time-to-first-byte histograms."""

    def __init__(self) -> None:
        self.duration = HistogramFamily(catalog.OPERATION_DURATION.name, catalog.OPERATION_DURATION.help,
                                        catalog.OP_LABELS, catalog.DURATION_BUCKETS)
        self.ttfb = HistogramFamily(catalog.OPERATION_TTFB.name, catalog.OPERATION_TTFB.help,
                                    catalog.OP_LABELS, catalog.DURATION_BUCKETS)
        self.bounds = self.duration.bounds
        self.series: dict[LabelKey, OpSeries] = {}

    def get(self, key: LabelKey) -> OpSeries:
        series = self.series.get(key)
        if series is None:
            series = self.series[key] = OpSeries(self.duration.get(key), self.ttfb.get(key))
        return series

    def collect(self, wall_offset_ns: int) -> Iterator[Metric]:
        items = list(self.series.items())
        for spec, attr in ((catalog.OPERATIONS, "count"), (catalog.REQUEST_BYTES, "bytes_in"),
                           (catalog.RESPONSE_BYTES, "bytes_out")):
            family = CounterMetricFamily(spec.name, spec.help, labels=spec.labels)
            for key, series in items:
                family.add_metric(key, getattr(series, attr))
            yield family
        yield self.duration.collect(wall_offset_ns)
        yield self.ttfb.collect(wall_offset_ns)
