"""Sans-IO MCP protocol layer: SSE framing, strict JSON-RPC decoding and MCP classification. No I/O here."""

from mcpgate.protocol.model import (
    Direction,
    Message,
    MessageKind,
    Operation,
    OpKind,
    Outcome,
    RequestId,
)

__all__ = ["Direction", "Message", "MessageKind", "OpKind", "Operation", "Outcome", "RequestId"]
