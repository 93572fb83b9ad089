"""Value types of the sans-IO protocol layer: JSON-RPC messages and the MCP operations they carry.

Raw bytes travel with every message so that unchanged messages are forwarded byte for byte.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

RequestId = int | str
"""A JSON-RPC id, kept exact: `1` and `"1"` are different ids."""


class Direction(enum.Enum):
    CLIENT_TO_SERVER = "c2s"
    SERVER_TO_CLIENT = "s2c"


class MessageKind(enum.Enum):
    REQUEST = "request"
    NOTIFICATION = "notification"
    RESULT = "result"
    ERROR = "error"


class OpKind(enum.Enum):
    """What an operation acts on; policy and telemetry key on this plus the target."""

    TOOL_CALL = "tool"            # tools/call: target = tool name
    RESOURCE = "resource"         # resources/read|subscribe|unsubscribe: target = URI
    PROMPT = "prompt"             # prompts/get: target = prompt name
    COMPLETION = "completion"     # completion/complete: target = ref name or URI
    TASK = "task"                 # tasks/*: target = task id
    LIST = "list"                 # tools|prompts|resources|resources/templates|tasks list
    SUBSCRIPTION = "subscription"  # subscriptions/listen: targets = resourceSubscriptions
    DISCOVERY = "discovery"       # initialize, server/discover, ping
    NOTIFICATION = "notification"
    SERVER_REQUEST = "server_request"  # sampling/createMessage, elicitation/create, roots/list
    RESPONSE = "response"         # a result or error answering an earlier request
    OTHER = "other"               # any method the classifier does not know: policy may name it


class Outcome(enum.Enum):
    """How an exchange ended, read from the JSON-RPC payload (MCP tool failures are HTTP 200)."""

    OK = "ok"
    TOOL_ERROR = "tool_error"          # CallToolResult.isError = true
    INPUT_REQUIRED = "input_required"  # 2026-07-28 MRTR: neither success nor failure
    TASK = "task"                      # resultType "task" / CreateTaskResult
    JSONRPC_ERROR = "jsonrpc_error"    # error response; see error_code
    DENIED = "denied"                  # mcpgate refused it; the upstream never saw it
    UPSTREAM_FAILED = "upstream_failed"  # refused, reset, timed out, malformed
    CANCELLED = "cancelled"            # client went away or cancelled
    REJECTED = "rejected"              # bad input, never forwarded


@dataclass(slots=True)
class Message:
    """One JSON-RPC message, strictly decoded.

    `params` / `result` / `error` are the decoded values (dicts or None). `raw` is the exact bytes of
    this message as received (for a batch element, the element's bytes when they can be sliced, else b"").
    """

    kind: MessageKind
    raw: bytes
    id: RequestId | None = None
    method: str | None = None
    params: dict[str, Any] | None = None
    result: Any = None
    error: dict[str, Any] | None = None


@dataclass(slots=True)
class Operation:
    """What an MCP message asks for, in the terms policy, metrics and audit use."""

    kind: OpKind
    method: str                     # JSON-RPC method; for responses, the method of the request answered
    message_kind: MessageKind
    direction: Direction
    id: RequestId | None = None
    target: str | None = None       # tool/prompt name, resource URI, task id, completion ref
    targets: tuple[str, ...] = ()   # several targets (subscriptions/listen resourceSubscriptions)
    arguments: Any = None           # params.arguments (tools/call, prompts/get), decoded
    progress_token: RequestId | None = None
    meta: dict[str, Any] | None = None  # params._meta (traceparent, protocolVersion, ...)
    protocol_version: str | None = None  # from _meta (2026-07-28) when present
    outcome: Outcome | None = None  # responses only
    error_code: int | None = None   # responses only
    message: Message | None = field(default=None, repr=False)
    invalid: str | None = None      # why the params cannot be classified (reject with InvalidParams)
    task_id: str | None = None      # responses: taskId of a CreateTaskResult / resultType "task"
