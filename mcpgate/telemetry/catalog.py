"""Every metric mcpgate exports, declared once: name, type, labels, buckets, help.

docs/metrics.md documents each one; a test keeps the two in step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class MetricSpec:
    name: str          # as exposed; counters end in `_total`
    type: str          # counter | gauge | histogram
    labels: tuple[str, ...]
    help: str


OP_LABELS: Final = ("method", "target", "caller", "decision", "outcome", "error_code", "protocol_version")

# OTel's recommended MCP buckets (0.01 .. 300 s) plus finer ones below 10 ms: a sidecar hop is
# sub-millisecond, and without them every fast call would land in the first bucket.
DURATION_BUCKETS: Final = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
    0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
)
# Policy evaluation is a pure in-memory function: microsecond buckets.
POLICY_BUCKETS: Final = (
    0.000001, 0.0000025, 0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.01,
)

OPERATION_DURATION: Final = MetricSpec(
    "mcp_server_operation_duration_seconds", "histogram", OP_LABELS,
    "MCP operation duration from request received to response complete (OTel mcp.server.operation.duration).")
OPERATION_TTFB: Final = MetricSpec(
    "mcpgate_operation_ttfb_seconds", "histogram", OP_LABELS,
    "Time from request received to the first response byte for the operation.")
OPERATIONS: Final = MetricSpec(
    "mcpgate_operations_total", "counter", OP_LABELS, "MCP operations finished.")
REQUEST_BYTES: Final = MetricSpec(
    "mcpgate_request_bytes_total", "counter", OP_LABELS, "Request bytes of finished MCP operations.")
RESPONSE_BYTES: Final = MetricSpec(
    "mcpgate_response_bytes_total", "counter", OP_LABELS, "Response bytes of finished MCP operations.")
IN_FLIGHT: Final = MetricSpec(
    "mcpgate_operations_in_flight", "gauge", ("method", "target"),
    "MCP operations started and not yet finished.")

POLICY_DECISIONS: Final = MetricSpec(
    "mcpgate_policy_decisions_total", "counter", ("rule", "effect"),
    "Policy decisions, by deciding rule and effect.")
POLICY_WOULD_DENY: Final = MetricSpec(
    "mcpgate_policy_would_deny_total", "counter", ("rule",),
    "Allowed operations an audit-mode rule would have denied, by that rule.")
POLICY_DECISION_TIME: Final = MetricSpec(
    "mcpgate_policy_decision_duration_seconds", "histogram", (), "Time to evaluate policy for one operation.")
POLICY_RELOADS: Final = MetricSpec(
    "mcpgate_policy_reloads_total", "counter", ("result",),
    "Policy loads and reloads, by result (ok, error).")
POLICY_LAST_RELOAD_OK: Final = MetricSpec(
    "mcpgate_policy_last_reload_success", "gauge", (),
    "1 when the last policy load succeeded, 0 when it failed (the last good policy is still serving).")
POLICY_REVISION: Final = MetricSpec(
    "mcpgate_policy_revision_info", "gauge", ("revision",), "The policy revision serving now (value 1).")

IDENTITY_SOURCES: Final = MetricSpec(
    "mcpgate_identity_sources_total", "counter", ("source",), "Callers identified, by identity source.")
IDENTITY_FAILURES: Final = MetricSpec(
    "mcpgate_identity_failures_total", "counter", ("code",),
    "Requests refused before any operation because the caller could not be identified, by error code.")
POLICY_FINDINGS: Final = MetricSpec(
    "mcpgate_policy_findings", "gauge", ("severity",),
    "Problems found comparing the policy with the tools the server lists (rules naming missing tools or "
    "arguments), by severity.")
SPOOFED_HEADERS: Final = MetricSpec(
    "mcpgate_spoofed_headers_dropped_total", "counter", (),
    "Identity headers dropped because they did not come from a trusted mesh proxy.")
UPSTREAM_ERRORS: Final = MetricSpec(
    "mcpgate_upstream_errors_total", "counter", ("kind",),
    "Failures talking to the upstream MCP server, by kind.")
SSE_STREAMS: Final = MetricSpec(
    "mcpgate_sse_streams_open", "gauge", (), "Server-Sent-Event streams open through mcpgate.")
SESSIONS: Final = MetricSpec(
    "mcpgate_sessions_open", "gauge", (), "MCP sessions (Mcp-Session-Id) open through mcpgate.")
FORWARDED_BYTES: Final = MetricSpec(
    "mcpgate_forwarded_bytes_total", "counter", ("direction",),
    "All bytes forwarded, operation or not, by direction (c2s, s2c).")

AUDIT_RECORDS: Final = MetricSpec(
    "mcpgate_audit_records_total", "counter", (), "Audit records written.")
AUDIT_ERRORS: Final = MetricSpec(
    "mcpgate_audit_write_errors_total", "counter", (), "Audit record writes that failed.")
AUDIT_DROPPED: Final = MetricSpec(
    "mcpgate_audit_dropped_total", "counter", (),
    "Audit records lost before the writer: the queue was full, the log closed, or the record not buildable.")
AUDIT_HEALTHY: Final = MetricSpec(
    "mcpgate_audit_healthy", "gauge", (), "1 when the audit sink is writing, 0 when it is failing.")

LABEL_OVERFLOW: Final = MetricSpec(
    "mcpgate_label_overflow_total", "counter", ("label",),
    "Observations whose label value was replaced by __overflow__ because the label hit its cap.")
BUILD_INFO: Final = MetricSpec(
    "mcpgate_build_info", "gauge", ("version",), "mcpgate version (value 1).")

ALL: Final = (
    OPERATION_DURATION, OPERATION_TTFB, OPERATIONS, REQUEST_BYTES, RESPONSE_BYTES, IN_FLIGHT,
    POLICY_DECISIONS, POLICY_WOULD_DENY, POLICY_DECISION_TIME, POLICY_RELOADS, POLICY_LAST_RELOAD_OK,
    POLICY_REVISION, IDENTITY_SOURCES, IDENTITY_FAILURES, POLICY_FINDINGS, SPOOFED_HEADERS, UPSTREAM_ERRORS,
    SSE_STREAMS, SESSIONS,
    FORWARDED_BYTES, AUDIT_RECORDS, AUDIT_ERRORS, AUDIT_DROPPED, AUDIT_HEALTHY, LABEL_OVERFLOW, BUILD_INFO,
)
