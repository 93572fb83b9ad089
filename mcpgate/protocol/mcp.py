"""MCP classifier: what a decoded JSON-RPC message asks for (Operation) and how a response ended (Outcome).

Pure and total: any decoded Message classifies without raising; params a decision cannot rest on are
reported in `Operation.invalid` so the data plane rejects the call instead of forwarding it unjudged.
"""

from __future__ import annotations

import re
from typing import Any, Final

from mcpgate.protocol.model import Direction, Message, MessageKind, Operation, OpKind, Outcome, RequestId

__all__ = [
    "DISCOVERY_METHODS",
    "LIST_METHODS",
    "PROTOCOL_VERSION_META",
    "SERVER_REQUEST_METHODS",
    "classify",
    "classify_response",
    "outcome_of",
]

LIST_METHODS: Final = frozenset(
    {"tools/list", "prompts/list", "resources/list", "resources/templates/list", "tasks/list"})
DISCOVERY_METHODS: Final = frozenset({"initialize", "server/discover", "ping"})
SERVER_REQUEST_METHODS: Final = frozenset({"sampling/createMessage", "elicitation/create", "roots/list"})
PROTOCOL_VERSION_META: Final = "io.modelcontextprotocol/protocolVersion"

_RESOURCE_METHODS: Final = frozenset({"resources/read", "resources/subscribe", "resources/unsubscribe"})
_TASK_METHODS: Final = frozenset({"tasks/get", "tasks/result", "tasks/cancel", "tasks/update"})
_OPPOSITE: Final = {Direction.CLIENT_TO_SERVER: Direction.SERVER_TO_CLIENT,
                    Direction.SERVER_TO_CLIENT: Direction.CLIENT_TO_SERVER}


def classify(msg: Message, direction: Direction) -> Operation:
    """The operation a request or notification asks for; a response classifies as RESPONSE."""
    method = msg.method
    if method is None:
        outcome, code = outcome_of(msg)
        return Operation(OpKind.RESPONSE, "", msg.kind, direction, msg.id, outcome=outcome,
                         error_code=code, message=msg, task_id=_task_id(msg))
    params = msg.params if msg.params is not None else {}
    op = Operation(OpKind.OTHER, method, msg.kind, direction, msg.id, message=msg)
    meta = params.get("_meta")
    if type(meta) is dict:
        op.meta = meta
        op.progress_token = _id_like(meta.get("progressToken"))
        version = meta.get(PROTOCOL_VERSION_META)
        if type(version) is str:
            op.protocol_version = version
    elif meta is not None:
        op.invalid = "`params._meta` must be an object"

    if method == "tools/call":
        op.kind = OpKind.TOOL_CALL
        _named(op, params, "name", method)
        _arguments(op, params, method)
    elif method in _RESOURCE_METHODS:
        op.kind = OpKind.RESOURCE
        _named(op, params, "uri", method)
    elif method == "prompts/get":
        op.kind = OpKind.PROMPT
        _named(op, params, "name", method)
        _arguments(op, params, method)
    elif method in LIST_METHODS:
        op.kind = OpKind.LIST
    elif method == "completion/complete":
        op.kind = OpKind.COMPLETION
        _completion(op, params)
    elif method in _TASK_METHODS:
        op.kind = OpKind.TASK
        _named(op, params, "taskId", method)
    elif method == "subscriptions/listen":
        op.kind = OpKind.SUBSCRIPTION
        _listen(op, params)
    elif method in DISCOVERY_METHODS:
        op.kind = OpKind.DISCOVERY
    elif method.startswith("notifications/"):
        op.kind = OpKind.NOTIFICATION
        _notification(op, params, method)
    elif method in SERVER_REQUEST_METHODS and direction is Direction.SERVER_TO_CLIENT:
        op.kind = OpKind.SERVER_REQUEST
        if method == "elicitation/create" and params.get("mode") == "url":
            _named(op, params, "url", method)
    return op


def classify_response(msg: Message, request_op: Operation) -> Operation:
    """A response, described in the terms of the request it answers (method, target) plus its outcome."""
    outcome, code = outcome_of(msg)
    return Operation(OpKind.RESPONSE, request_op.method, msg.kind, _OPPOSITE[request_op.direction], msg.id,
                     target=request_op.target, targets=request_op.targets, outcome=outcome, error_code=code,
                     message=msg, task_id=_task_id(msg))


def outcome_of(msg: Message) -> tuple[Outcome, int | None]:
    """How a response ended, from its payload (MCP tool failures arrive as successful JSON-RPC results)."""
    if msg.kind is MessageKind.ERROR:
        code = msg.error.get("code") if msg.error is not None else None
        return Outcome.JSONRPC_ERROR, code if type(code) is int else None
    result = msg.result
    if type(result) is not dict:
        return Outcome.OK, None
    result_type = result.get("resultType")
    if result_type == "input_required":
        return Outcome.INPUT_REQUIRED, None
    if result_type == "task" or _create_task(result) is not None:
        return Outcome.TASK, None
    if result.get("isError") is True:
        return Outcome.TOOL_ERROR, None
    return Outcome.OK, None


def _create_task(result: dict[str, Any]) -> str | None:
    task = result.get("task")
    if type(task) is dict:
        task_id = task.get("taskId")
        if type(task_id) is str:
            return task_id
    return None


def _task_id(msg: Message) -> str | None:
    result = msg.result
    if msg.kind is not MessageKind.RESULT or type(result) is not dict:
        return None
    if result.get("resultType") == "task":
        task_id = result.get("taskId")
        if type(task_id) is str:
            return task_id
    return _create_task(result)


_INT64: Final = 2**63


def _id_like(value: Any) -> RequestId | None:
    # Out-of-range integers are refused by the decoder by default; never str() a huge one here.
    if type(value) is str or (type(value) is int and -_INT64 <= value < _INT64):
        return value
    return None


# Names travel into logs, metrics, headers and other parsers: control characters (NUL, newlines) and absurd
# lengths are how a name smuggles a second meaning past a glob rule, so they are refused outright.
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
MAX_NAME_CHARS: Final = 1024


def _named(op: Operation, params: dict[str, Any], key: str, method: str) -> None:
    value = params.get(key)
    if type(value) is str:
        op.target = value
        if key == "name" and (len(value) > MAX_NAME_CHARS or _CONTROL.search(value)):
            op.invalid = (f"`params.name` of `{method}` has control characters or is longer than "
                          f"{MAX_NAME_CHARS} characters")
    elif value is None:
        op.invalid = f"`{method}` requires `params.{key}`"
    else:
        op.invalid = f"`params.{key}` of `{method}` must be a string"


def _arguments(op: Operation, params: dict[str, Any], method: str) -> None:
    arguments = params.get("arguments")
    if arguments is not None and type(arguments) is not dict:
        op.invalid = op.invalid or f"`params.arguments` of `{method}` must be an object"
    op.arguments = arguments


def _completion(op: Operation, params: dict[str, Any]) -> None:
    ref = params.get("ref")
    if type(ref) is not dict:
        op.invalid = "`completion/complete` requires `params.ref` to be an object"
        return
    ref_type = ref.get("type")
    key = "name" if ref_type == "ref/prompt" else "uri" if ref_type == "ref/resource" else None
    if key is None:
        op.invalid = f"unknown completion reference type `{ref_type}`"
        return
    value = ref.get(key)
    if type(value) is str:
        op.target = value
    else:
        op.invalid = f"`params.ref.{key}` of `completion/complete` must be a string"


def _listen(op: Operation, params: dict[str, Any]) -> None:
    notifications = params.get("notifications")
    if notifications is None:
        return
    if type(notifications) is not dict:
        op.invalid = "`params.notifications` of `subscriptions/listen` must be an object"
        return
    uris = notifications.get("resourceSubscriptions")
    if uris is None:
        return
    if type(uris) is not list or any(type(u) is not str for u in uris):
        op.invalid = "`resourceSubscriptions` of `subscriptions/listen` must be a list of strings"
        return
    op.targets = tuple(uris)


def _notification(op: Operation, params: dict[str, Any], method: str) -> None:
    if method == "notifications/resources/updated":
        uri = params.get("uri")
        if type(uri) is str:
            op.target = uri
    elif method == "notifications/cancelled":
        request_id = _id_like(params.get("requestId"))
        if request_id is not None:
            op.target = str(request_id)
    elif method == "notifications/progress" and op.progress_token is None:
        op.progress_token = _id_like(params.get("progressToken"))
