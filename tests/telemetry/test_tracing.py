"""Spans per MCP semantic conventions, parents and links, sampling, and upstream propagation."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from mcpgate.protocol.model import Direction, Outcome
from mcpgate.telemetry import OtelTracing, Tracing
from mcpgate.telemetry.settings import TracingSettings
from mcpgate.telemetry.tracecontext import header_context, parse_traceparent
from tests.telemetry.exchanges import ALLOW, DENY, WORKLOAD, WOULD_DENY, make_exchange

CLIENT_TRACE = "0af7651916cd43dd8448eb211c80319c"
CLIENT_SPAN = "b7ad6b7169203331"
META_TP = f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"
HTTP_TP = "00-11111111111111111111111111111111-2222222222222222-01"


class Tracer:
    def __init__(self, ratio: float = 1.0, resource_uri: bool = False) -> None:
        self.exporter = InMemorySpanExporter()
        self.clock_ns = 5_000_000_000
        settings = TracingSettings(enabled=True, sampler_ratio=ratio, resource_uri=resource_uri)
        self.tracing = OtelTracing(settings, exporter=self.exporter, clock=lambda: self.clock_ns)

    def spans(self) -> list[ReadableSpan]:
        self.tracing.force_flush()
        return list(self.exporter.get_finished_spans())

    def one(self) -> ReadableSpan:
        spans = self.spans()
        assert len(spans) == 1
        return spans[0]


@pytest.fixture
def tracer() -> Iterator[Tracer]:
    t = Tracer()
    yield t
    t.tracing.shutdown()


def test_tool_call_span_follows_mcp_semconv(tracer: Tracer) -> None:
    ex = make_exchange(principal=WORKLOAD, decision=ALLOW, request_id=7, decision_id="dec-1",
                       t_start=4_000_000_000, duration_ns=300_000)
    tracer.tracing.finished(ex)
    span = tracer.one()
    assert span.name == "tools/call echo"
    assert span.kind is SpanKind.SERVER
    attrs = dict(span.attributes or {})
    assert attrs["mcp.method.name"] == "tools/call"
    assert attrs["gen_ai.tool.name"] == "echo"
    assert attrs["gen_ai.operation.name"] == "execute_tool"
    assert attrs["mcp.protocol.version"] == "2025-06-18"
    assert attrs["jsonrpc.request.id"] == "7"
    assert attrs["network.transport"] == "tcp"
    assert attrs["network.protocol.name"] == "http"
    assert attrs["client.address"] == "127.0.0.1"
    assert attrs["mcpgate.decision"] == "allow"
    assert attrs["mcpgate.decision_id"] == "dec-1"
    assert attrs["mcpgate.rule_ids"] == ("allow-read",)
    assert attrs["mcpgate.principal"] == WORKLOAD.id
    assert "error.type" not in attrs
    assert "mcp.session.id" not in attrs
    assert span.status.status_code is StatusCode.UNSET
    assert span.end_time is not None and span.start_time is not None
    assert span.end_time - span.start_time == 300_000
    # Monotonic times become wall-clock ones: the span started 1 s before the (fake) monotonic "now".
    assert abs(span.start_time - (time.time_ns() - 1_000_000_000)) < 2_000_000_000


def test_prompt_and_other_method_names(tracer: Tracer) -> None:
    tracer.tracing.finished(make_exchange("prompts/get", "summarize", decision=WOULD_DENY))
    tracer.tracing.finished(make_exchange("tools/list", None))
    tracer.tracing.finished(make_exchange("resources/read", "file:///secret/path"))
    by_name = {s.name: dict(s.attributes or {}) for s in tracer.spans()}
    assert set(by_name) == {"prompts/get summarize", "tools/list", "resources/read"}
    assert by_name["prompts/get summarize"]["gen_ai.prompt.name"] == "summarize"
    assert by_name["prompts/get summarize"]["mcpgate.decision"] == "would_deny"
    assert by_name["prompts/get summarize"]["mcpgate.would_deny_rule_ids"] == ("audit-no-delete",)
    assert "gen_ai.operation.name" not in by_name["prompts/get summarize"]
    assert "mcp.resource.uri" not in by_name["resources/read"]  # opt-in only


def test_resource_uri_is_opt_in() -> None:
    t = Tracer(resource_uri=True)
    t.tracing.finished(make_exchange("resources/read", "file:///etc/motd"))
    span = t.one()
    assert span.name == "resources/read file:///etc/motd"
    assert (span.attributes or {})["mcp.resource.uri"] == "file:///etc/motd"
    t.tracing.shutdown()


@pytest.mark.parametrize(("outcome", "code", "error_type", "is_error"), [
    (Outcome.TOOL_ERROR, None, "tool_error", True),
    (Outcome.JSONRPC_ERROR, -32603, "-32603", True),
    (Outcome.JSONRPC_ERROR, -32000, "-32000", True),
    (Outcome.JSONRPC_ERROR, -32602, "-32602", False),   # caller errors are not server span errors
    (Outcome.JSONRPC_ERROR, -32601, "-32601", False),
    (Outcome.JSONRPC_ERROR, -32002, "-32002", False),
    (Outcome.DENIED, -32001, "-32001", False),
    (Outcome.UPSTREAM_FAILED, None, "upstream_failed", True),
    (Outcome.CANCELLED, None, "cancelled", False),
    (Outcome.INPUT_REQUIRED, None, None, False),
    (Outcome.TASK, None, None, False),
])
def test_error_classification(tracer: Tracer, outcome: Outcome, code: int | None, error_type: str | None,
                              is_error: bool) -> None:
    tracer.tracing.finished(make_exchange(outcome=outcome, error_code=code, error_message="boom",
                                          decision=DENY if outcome is Outcome.DENIED else ALLOW))
    span = tracer.one()
    attrs = dict(span.attributes or {})
    assert attrs.get("error.type") == error_type
    assert attrs.get("rpc.response.status_code") == (str(code) if code is not None else None)
    assert span.status.status_code is (StatusCode.ERROR if is_error else StatusCode.UNSET)
    if is_error:
        assert span.status.description == "boom"


def test_server_to_client_request_is_a_client_span_and_every_error_counts(tracer: Tracer) -> None:
    tracer.tracing.finished(make_exchange("sampling/createMessage", None,
                                          direction=Direction.SERVER_TO_CLIENT,
                                          outcome=Outcome.JSONRPC_ERROR, error_code=-32602))
    span = tracer.one()
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.ERROR


def test_session_id_only_for_legacy_protocol_versions(tracer: Tracer) -> None:
    tracer.tracing.finished(make_exchange(session_id="sess-1", protocol_version="2025-11-25", request_id=1))
    tracer.tracing.finished(make_exchange(session_id="sess-2", protocol_version="2026-07-28", request_id=2))
    spans = {dict(s.attributes or {})["jsonrpc.request.id"]: dict(s.attributes or {}) for s in tracer.spans()}
    assert spans["1"]["mcp.session.id"] == "sess-1"
    assert "mcp.session.id" not in spans["2"]


def test_meta_parent_wins_and_http_context_is_linked(tracer: Tracer) -> None:
    ex = make_exchange(meta={"traceparent": META_TP, "tracestate": "vendor=abc"},
                       headers=[(b"Traceparent", HTTP_TP.encode())])
    upstream = dict(tracer.tracing.inject_headers(ex))
    tracer.tracing.finished(ex)
    span = tracer.one()
    assert span.parent is not None and span.parent.is_remote
    assert (span.context.trace_id, span.parent.span_id) == (int(CLIENT_TRACE, 16), int(CLIENT_SPAN, 16))
    assert [(link.context.trace_id, link.context.span_id) for link in span.links] == [
        (int("1" * 32, 16), int("2" * 16, 16))]
    # The upstream is told about exactly the span that was recorded, in the same trace.
    assert upstream[b"traceparent"] == f"00-{CLIENT_TRACE}-{span.context.span_id:016x}-01".encode()
    assert upstream[b"tracestate"] == b"vendor=abc"
    assert span.context.trace_state.get("vendor") == "abc"


def test_http_header_parent_when_no_meta(tracer: Tracer) -> None:
    ex = make_exchange(headers=[(b"traceparent", HTTP_TP.encode())])
    tracer.tracing.finished(ex)
    span = tracer.one()
    assert span.parent is not None and span.parent.span_id == int("2" * 16, 16)
    assert span.context.trace_id == int("1" * 32, 16)
    assert not span.links


def test_root_span_when_no_context(tracer: Tracer) -> None:
    ex = make_exchange()
    headers = dict(tracer.tracing.inject_headers(ex))
    tracer.tracing.finished(ex)
    span = tracer.one()
    assert span.parent is None
    ctx = span.context
    assert headers[b"traceparent"] == f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-01".encode()
    assert b"tracestate" not in headers


def test_sampler_zero_records_nothing_without_a_sampled_parent() -> None:
    t = Tracer(ratio=0.0)
    plain = make_exchange()
    assert dict(t.tracing.inject_headers(plain))[b"traceparent"].endswith(b"-00")
    t.tracing.finished(plain)
    t.tracing.finished(make_exchange(meta={"traceparent": META_TP[:-2] + "00"}))
    assert t.spans() == []
    t.tracing.finished(make_exchange(meta={"traceparent": META_TP}))  # the caller sampled: follow it
    assert len(t.spans()) == 1
    t.tracing.shutdown()


def test_unsampled_parent_is_followed_at_ratio_one(tracer: Tracer) -> None:
    tracer.tracing.finished(make_exchange(headers=[(b"traceparent", HTTP_TP[:-2].encode() + b"00")]))
    assert tracer.spans() == []


def test_sampler_ratio_keeps_about_that_share() -> None:
    t = Tracer(ratio=0.25)
    for _ in range(2000):
        t.tracing.finished(make_exchange())
    assert 350 < len(t.spans()) < 650
    t.tracing.shutdown()


@pytest.mark.parametrize("bad", [
    "00-00000000000000000000000000000000-b7ad6b7169203331-01",   # zero trace id
    "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",   # zero span id
    "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",   # uppercase
    "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",   # forbidden version
    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-x",  # version 00 has no extra fields
    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
    "",
])
def test_invalid_traceparent_is_ignored(bad: str) -> None:
    assert parse_traceparent(bad) is None


def test_traceparent_parsing_edges() -> None:
    future = parse_traceparent("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra")
    assert future is not None and future.sampled
    assert parse_traceparent(123) is None
    duplicated = [(b"traceparent", META_TP.encode()), (b"TRACEPARENT", HTTP_TP.encode())]
    assert header_context(duplicated) is None
    joined = header_context([(b"traceparent", META_TP.encode()), (b"tracestate", b"a=1"),
                             (b"tracestate", b"b=2")])
    assert joined is not None and joined.tracestate == "a=1,b=2"


def test_disabled_tracing_is_a_no_op() -> None:
    off = Tracing.from_config({"tracing": {"enabled": False}})
    assert off.enabled is False
    assert not isinstance(off, OtelTracing)
    ex = make_exchange()
    assert off.inject_headers(ex) == []
    off.finished(ex)
    off.shutdown()
    assert ex.extra == {}
    assert Tracing.from_config({}).enabled is False
