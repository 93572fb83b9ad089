"""Spans reach a real OTLP/HTTP receiver on loopback as protobuf, in the caller's trace."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from mcpgate.protocol.model import Outcome
from mcpgate.telemetry import Tracing
from tests.telemetry.exchanges import ALLOW, DENY, WORKLOAD, make_exchange

CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"


class Receiver:
    """A tiny OTLP/HTTP collector: accepts POST /v1/traces and keeps the decoded requests."""

    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []
        self.headers: list[dict[str, str]] = []
        self.received = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path != "/v1/traces" or self.headers["Content-Type"] != "application/x-protobuf":
                    self.send_response(404)
                    self.end_headers()
                    return
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                receiver.requests.append(request)
                receiver.headers.append(dict(self.headers.items()))
                receiver.received.set()
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def spans(self) -> list[Any]:
        return [span for req in self.requests for rs in req.resource_spans for ss in rs.scope_spans
                for span in ss.spans]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _attrs(span: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in span.attributes:
        which = kv.value.WhichOneof("value")
        if which == "array_value":
            out[kv.key] = [v.string_value for v in kv.value.array_value.values]
        else:
            out[kv.key] = getattr(kv.value, which)
    return out


def test_spans_exported_over_otlp_http(receiver: Receiver) -> None:
    tracing = Tracing.from_config({"tracing": {
        "enabled": True, "endpoint": f"http://127.0.0.1:{receiver.port}/v1/traces",
        "service_name": "mcpgate-test", "headers": {"x-collector-token": "t0k"}}})
    assert tracing.enabled
    allowed = make_exchange(principal=WORKLOAD, decision=ALLOW, decision_id="dec-allowed",
                            meta={"traceparent": f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"})
    upstream_headers = dict(tracing.inject_headers(allowed))
    tracing.finished(allowed)
    http_tp = f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01".encode()
    tracing.finished(make_exchange(target="delete_repo", principal=WORKLOAD, decision=DENY,
                                   outcome=Outcome.DENIED, error_code=-32001, decision_id="dec-denied",
                                   headers=[(b"traceparent", http_tp)]))
    tracing.shutdown()  # flushes the batch processor

    assert receiver.received.wait(10)
    assert receiver.headers[0].get("x-collector-token") == "t0k"
    resource_attrs = receiver.requests[0].resource_spans[0].resource.attributes
    resource = {kv.key: kv.value.string_value for kv in resource_attrs}
    assert resource["service.name"] == "mcpgate-test"
    spans = {span.name: span for span in receiver.spans()}
    assert set(spans) == {"tools/call echo", "tools/call delete_repo"}

    ok = spans["tools/call echo"]
    assert ok.trace_id.hex() == CLIENT_TRACE
    assert ok.parent_span_id.hex() == CLIENT_SPAN
    assert ok.kind == 2  # SPAN_KIND_SERVER
    assert upstream_headers[b"traceparent"] == f"00-{CLIENT_TRACE}-{ok.span_id.hex()}-01".encode()
    attrs = _attrs(ok)
    assert attrs["mcp.method.name"] == "tools/call"
    assert attrs["gen_ai.tool.name"] == "echo"
    assert attrs["gen_ai.operation.name"] == "execute_tool"
    assert attrs["mcpgate.decision_id"] == "dec-allowed"
    assert attrs["mcpgate.rule_ids"] == ["allow-read"]
    assert ok.end_time_unix_nano - ok.start_time_unix_nano == 300_000

    denied = spans["tools/call delete_repo"]
    assert denied.trace_id.hex() == CLIENT_TRACE
    d_attrs = _attrs(denied)
    assert d_attrs["mcpgate.decision"] == "deny"
    assert d_attrs["error.type"] == "-32001"
    assert denied.status.code == 0  # UNSET: a denial is the caller's error, not the server's
