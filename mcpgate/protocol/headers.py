"""MCP 2026-07-28 routing headers (`Mcp-Method`, `Mcp-Name`, `MCP-Protocol-Version`): decode and check them
against the body, so nothing downstream ever trusts a header the body contradicts.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Final

from mcpgate.errors import HeaderMismatch
from mcpgate.protocol.model import Message, MessageKind

__all__ = [
    "KNOWN_VERSIONS",
    "MODERN_VERSIONS",
    "NAME_FIELDS",
    "check_routing_headers",
    "decode_header_value",
    "is_modern",
]

KNOWN_VERSIONS: Final = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28")
MODERN_VERSIONS: Final = frozenset({"2026-07-28"})

_SENTINEL_START: Final = "=?base64?"
_SENTINEL_END: Final = "?="
_ROUTING: Final = (b"mcp-method", b"mcp-name", b"mcp-protocol-version")
# Which body field `Mcp-Name` mirrors, per method (spec §Request Metadata; tasks: SEP-2663).
NAME_FIELDS: Final = {
    "tools/call": "name",
    "prompts/get": "name",
    "resources/read": "uri",
    "tasks/get": "taskId",
    "tasks/update": "taskId",
    "tasks/cancel": "taskId",
}
_MUST = "(mcp 2026-07-28: servers and intermediaries MUST reject a header that does not match the body)"
_REQUIRED = "(mcp 2026-07-28: this header is REQUIRED for `{}`)"


def is_modern(version: str | None) -> bool:
    """True for versions whose clients mirror the body into validated headers (2026-07-28 and later)."""
    return version in MODERN_VERSIONS


def decode_header_value(value: str) -> str:
    """A header value as the client meant it: `=?base64?…?=` values are base64 of UTF-8.

    Plain values must be visible ASCII (internal spaces allowed); anything else had to be sent base64.
    """
    if value.startswith(_SENTINEL_START) and value.endswith(_SENTINEL_END) \
            and len(value) >= len(_SENTINEL_START) + len(_SENTINEL_END):
        encoded = value[len(_SENTINEL_START):-len(_SENTINEL_END)]
        try:
            return base64.b64decode(encoded.encode("ascii"), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeError, ValueError):
            raise HeaderMismatch(f"header value `{value}` is not valid `=?base64?…?=` utf-8") from None
    if not value.isascii() or not value.isprintable() or value != value.strip():
        raise HeaderMismatch(
            "header value has characters that must be sent as `=?base64?…?=` "
            "(mcp 2026-07-28: non-ascii, control characters or edge whitespace)")
    return value


def check_routing_headers(headers: list[tuple[bytes, bytes]], msg: Message) -> None:
    """Raise HeaderMismatch when a modern request's routing headers are missing, duplicated or disagree.

    Duplicates are refused for every version (two readers could pick different ones). For versions that
    do not mirror the body (anything not modern) nothing else is checked: callers must not trust them.
    """
    found: dict[bytes, str] = {}
    for name, value in headers:
        lname = name.lower()
        if lname in _ROUTING:
            if lname in found:
                raise HeaderMismatch(f"duplicate `{lname.decode()}` header")
            try:
                found[lname] = value.decode("ascii")
            except UnicodeDecodeError:
                raise HeaderMismatch(f"`{lname.decode()}` header is not ascii") from None
    version = found.get(b"mcp-protocol-version")
    if not is_modern(version):
        return
    params: dict[str, Any] = msg.params if msg.params is not None else {}
    meta = params.get("_meta")
    if type(meta) is dict:
        body_version = meta.get("io.modelcontextprotocol/protocolVersion")
        if body_version is not None and body_version != version:
            raise HeaderMismatch(
                f"`MCP-Protocol-Version` `{version}` does not match "
                f"`_meta.io.modelcontextprotocol/protocolVersion` `{body_version}` {_MUST}")
    method = msg.method
    if method is None:
        return
    header_method = found.get(b"mcp-method")
    if header_method is None:
        if msg.kind is MessageKind.REQUEST:
            raise HeaderMismatch(f"missing `Mcp-Method` header {_REQUIRED.format(method)}")
    elif decode_header_value(header_method) != method:
        raise HeaderMismatch(f"`Mcp-Method` `{header_method}` does not match body method `{method}` {_MUST}")
    field = NAME_FIELDS.get(method)
    if field is None:
        return
    header_name = found.get(b"mcp-name")
    if header_name is None:
        raise HeaderMismatch(f"missing `Mcp-Name` header {_REQUIRED.format(method)}")
    body_value = params.get(field)
    decoded = decode_header_value(header_name)
    if type(body_value) is not str or decoded != body_value:
        raise HeaderMismatch(
            f"`Mcp-Name` `{decoded}` does not match `params.{field}` of `{method}` {_MUST}")
