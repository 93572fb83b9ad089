"""2026-07-28 routing headers: decoded, checked against the body, never trusted when they disagree."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from mcpgate.errors import HeaderMismatch
from mcpgate.protocol.headers import (
    KNOWN_VERSIONS,
    MODERN_VERSIONS,
    check_routing_headers,
    decode_header_value,
    is_modern,
)
from mcpgate.protocol.jsonrpc import decode_body
from mcpgate.protocol.model import Message

V = "2026-07-28"


def msg(method: str, params: dict[str, Any] | None = None, id: int | None = 1) -> Message:
    body: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if id is not None:
        body["id"] = id
    if params is not None:
        body["params"] = params
    out = decode_body(json.dumps(body).encode(), allow_batch=False)
    assert isinstance(out, Message)
    return out


def b64(text: str) -> str:
    return "=?base64?" + base64.b64encode(text.encode()).decode() + "?="


def hdrs(**values: str) -> list[tuple[bytes, bytes]]:
    return [(k.replace("_", "-").encode(), v.encode()) for k, v in values.items()]


def test_versions() -> None:
    assert KNOWN_VERSIONS == ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28")
    assert set(MODERN_VERSIONS) == {"2026-07-28"}
    assert is_modern(V) and not is_modern("2025-11-25") and not is_modern(None)


@pytest.mark.parametrize(("raw", "decoded"), [
    ("search", "search"), ("a b", "a b"), (b64("héllo"), "héllo"), (b64(" pad "), " pad "),
    (b64("=?base64?x?="), "=?base64?x?="), ("=?base64??=", ""),
])
def test_decode_header_value(raw: str, decoded: str) -> None:
    assert decode_header_value(raw) == decoded


@pytest.mark.parametrize("raw", ["=?base64?!!!?=", "=?base64?/w==?=", "=?base64?YQ?=", " lead", "trail ",
                                 "tab\there", "é", "nul\x00"])
def test_decode_header_value_rejects(raw: str) -> None:
    with pytest.raises(HeaderMismatch):
        decode_header_value(raw)


def test_matching_modern_headers_pass() -> None:
    m = msg("tools/call", {"name": "search", "_meta": {"io.modelcontextprotocol/protocolVersion": V}})
    check_routing_headers(hdrs(MCP_Protocol_Version=V, Mcp_Method="tools/call", Mcp_Name="search"), m)
    check_routing_headers([(b"MCP-PROTOCOL-VERSION", V.encode()), (b"mcp-method", b"tools/call"),
                           (b"MCP-NAME", b"search")], m)


@pytest.mark.parametrize(("method", "params", "name"), [
    ("prompts/get", {"name": "greet"}, "greet"),
    ("resources/read", {"uri": "file:///ä b"}, b64("file:///ä b")),
    ("tasks/get", {"taskId": "t1"}, "t1"),
    ("tasks/update", {"taskId": "t1"}, "t1"),
    ("tasks/cancel", {"taskId": "t1"}, "t1"),
])
def test_name_header_mirrors_the_right_field(method: str, params: dict[str, Any], name: str) -> None:
    check_routing_headers(hdrs(MCP_Protocol_Version=V, Mcp_Method=method, Mcp_Name=name), msg(method, params))


@pytest.mark.parametrize(("headers", "method", "params"), [
    (hdrs(MCP_Protocol_Version=V, Mcp_Name="search"), "tools/call", {"name": "search"}),
    (hdrs(MCP_Protocol_Version=V, Mcp_Method="tools/list", Mcp_Name="search"), "tools/call", {"name": "search"}),
    (hdrs(MCP_Protocol_Version=V, Mcp_Method="Tools/Call", Mcp_Name="search"), "tools/call", {"name": "search"}),
    (hdrs(MCP_Protocol_Version=V, Mcp_Method="tools/call"), "tools/call", {"name": "search"}),
    (hdrs(MCP_Protocol_Version=V, Mcp_Method="tools/call", Mcp_Name="safe"), "tools/call", {"name": "delete"}),
    (hdrs(MCP_Protocol_Version=V, Mcp_Method="tools/call", Mcp_Name="x"), "tools/call", {"name": 1}),
    (hdrs(MCP_Protocol_Version=V, Mcp_Method="resources/read", Mcp_Name="a"), "resources/read", {"uri": "b"}),
    (hdrs(MCP_Protocol_Version=V, Mcp_Method="tasks/get", Mcp_Name="t2"), "tasks/get", {"taskId": "t1"}),
    (hdrs(MCP_Protocol_Version=V, Mcp_Method="tools/list"), "tools/list",
     {"_meta": {"io.modelcontextprotocol/protocolVersion": "2025-11-25"}}),
    ([(b"mcp-protocol-version", V.encode()), (b"Mcp-Method", b"tools/list"), (b"MCP-METHOD", b"tools/list")],
     "tools/list", None),
    ([(b"mcp-protocol-version", b"2025-11-25"), (b"mcp-name", b"a"), (b"Mcp-Name", b"b")], "tools/call",
     {"name": "a"}),
    ([(b"mcp-protocol-version", V.encode()), (b"mcp-method", "tools/lïst".encode())], "tools/list", None),
])
def test_mismatches_are_refused(headers: list[tuple[bytes, bytes]], method: str,
                                params: dict[str, Any] | None) -> None:
    with pytest.raises(HeaderMismatch):
        check_routing_headers(headers, msg(method, params))


def test_notification_needs_no_method_header_but_it_must_match() -> None:
    n = msg("notifications/initialized", id=None)
    check_routing_headers(hdrs(MCP_Protocol_Version=V), n)
    with pytest.raises(HeaderMismatch):
        check_routing_headers(hdrs(MCP_Protocol_Version=V, Mcp_Method="notifications/other"), n)


def test_legacy_versions_are_not_validated() -> None:
    m = msg("tools/call", {"name": "delete"})
    for version in ("2025-11-25", "2025-06-18"):
        check_routing_headers(hdrs(MCP_Protocol_Version=version, Mcp_Method="x", Mcp_Name="safe"), m)
    check_routing_headers(hdrs(Mcp_Method="x", Mcp_Name="safe"), m)
