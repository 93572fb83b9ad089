"""Telemetry: Prometheus metrics and OpenTelemetry traces for every MCP operation.

See docs/metrics.md and docs/tracing.md.
"""

from mcpgate.telemetry.metrics import Metrics
from mcpgate.telemetry.tracecontext import TRACE_KEY
from mcpgate.telemetry.tracing import OtelTracing, Tracing

__all__ = ["TRACE_KEY", "Metrics", "OtelTracing", "Tracing"]
