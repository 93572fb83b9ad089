"""Sans-IO MCP protocol layer: SSE framing, strict JSON-RPC decoding and MCP classification. No I/O here."""

from mcpgate.protocol.correlation import Correlator
from mcpgate.protocol.headers import (
    KNOWN_VERSIONS,
    MODERN_VERSIONS,
    check_routing_headers,
    decode_header_value,
    is_modern,
)
from mcpgate.protocol.jsonrpc import (
    DecodeLimits,
    decode_body,
    encode_error,
    encode_message,
    encode_result,
    parse_json,
)
from mcpgate.protocol.legacy_sse import rewrite_endpoint, session_from_query
from mcpgate.protocol.mcp import LIST_METHODS, classify, classify_response, outcome_of
from mcpgate.protocol.model import (
    Direction,
    Message,
    MessageKind,
    Operation,
    OpKind,
    Outcome,
    RequestId,
)
from mcpgate.protocol.sse import NEED_DATA, NeedData, SseEvent, SseFramer, encode_event

__all__ = [
    "KNOWN_VERSIONS",
    "LIST_METHODS",
    "MODERN_VERSIONS",
    "NEED_DATA",
    "Correlator",
    "DecodeLimits",
    "Direction",
    "Message",
    "MessageKind",
    "NeedData",
    "OpKind",
    "Operation",
    "Outcome",
    "RequestId",
    "SseEvent",
    "SseFramer",
    "check_routing_headers",
    "classify",
    "classify_response",
    "decode_body",
    "decode_header_value",
    "encode_error",
    "encode_event",
    "encode_message",
    "encode_result",
    "is_modern",
    "outcome_of",
    "parse_json",
    "rewrite_endpoint",
    "session_from_query",
]
