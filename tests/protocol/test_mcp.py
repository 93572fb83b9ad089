"""MCP classifier: targets, kinds and outcomes for every method family; never raises on a decoded message."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcpgate.errors import McpgateError
from mcpgate.protocol.jsonrpc import decode_body
from mcpgate.protocol.mcp import LIST_METHODS, classify, classify_response, outcome_of
from mcpgate.protocol.model import Direction, Message, MessageKind, OpKind, Outcome

C2S = Direction.CLIENT_TO_SERVER
S2C = Direction.SERVER_TO_CLIENT


def msg(method: str, params: Any = None, id: Any = 1) -> Message:
    body: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if id is not None:
        body["id"] = id
    if params is not None:
        body["params"] = params
    out = decode_body(json.dumps(body).encode(), allow_batch=False)
    assert isinstance(out, Message)
    return out


def response(result: Any = None, error: Any = None, id: Any = 1) -> Message:
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": id}
    body.update({"error": error} if error is not None else {"result": result})
    out = decode_body(json.dumps(body).encode(), allow_batch=False)
    assert isinstance(out, Message)
    return out


CASES: list[tuple[str, dict[str, Any] | None, Direction, OpKind, str | None]] = [
    ("tools/call", {"name": "search", "arguments": {"q": 1}}, C2S, OpKind.TOOL_CALL, "search"),
    ("resources/read", {"uri": "file:///a"}, C2S, OpKind.RESOURCE, "file:///a"),
    ("resources/subscribe", {"uri": "file:///b"}, C2S, OpKind.RESOURCE, "file:///b"),
    ("resources/unsubscribe", {"uri": "file:///c"}, C2S, OpKind.RESOURCE, "file:///c"),
    ("prompts/get", {"name": "greet", "arguments": {"who": "x"}}, C2S, OpKind.PROMPT, "greet"),
    ("completion/complete", {"ref": {"type": "ref/prompt", "name": "greet"}, "argument": {"name": "a",
     "value": "b"}}, C2S, OpKind.COMPLETION, "greet"),
    ("completion/complete", {"ref": {"type": "ref/resource", "uri": "file:///{x}"}}, C2S, OpKind.COMPLETION,
     "file:///{x}"),
    ("tasks/get", {"taskId": "t1"}, C2S, OpKind.TASK, "t1"),
    ("tasks/result", {"taskId": "t2"}, C2S, OpKind.TASK, "t2"),
    ("tasks/cancel", {"taskId": "t3"}, C2S, OpKind.TASK, "t3"),
    ("tasks/update", {"taskId": "t4", "inputResponses": {}}, C2S, OpKind.TASK, "t4"),
    ("tasks/list", None, C2S, OpKind.LIST, None),
    ("tools/list", {"cursor": "abc"}, C2S, OpKind.LIST, None),
    ("prompts/list", None, C2S, OpKind.LIST, None),
    ("resources/list", None, C2S, OpKind.LIST, None),
    ("resources/templates/list", None, C2S, OpKind.LIST, None),
    ("initialize", {"protocolVersion": "2025-11-25", "capabilities": {}}, C2S, OpKind.DISCOVERY, None),
    ("server/discover", None, C2S, OpKind.DISCOVERY, None),
    ("ping", None, S2C, OpKind.DISCOVERY, None),
    ("sampling/createMessage", {"messages": [], "maxTokens": 5}, S2C, OpKind.SERVER_REQUEST, None),
    ("roots/list", None, S2C, OpKind.SERVER_REQUEST, None),
    ("elicitation/create", {"message": "m", "requestedSchema": {}}, S2C, OpKind.SERVER_REQUEST, None),
    ("elicitation/create", {"mode": "url", "url": "https://x.test/a", "elicitationId": "e"}, S2C,
     OpKind.SERVER_REQUEST, "https://x.test/a"),
    ("sampling/createMessage", {"messages": []}, C2S, OpKind.OTHER, None),
    ("logging/setLevel", {"level": "info"}, C2S, OpKind.OTHER, None),
    ("vendor/custom", {"name": "x"}, C2S, OpKind.OTHER, None),
]


@pytest.mark.parametrize(("method", "params", "direction", "kind", "target"), CASES)
def test_requests(method: str, params: dict[str, Any] | None, direction: Direction, kind: OpKind,
                  target: str | None) -> None:
    op = classify(msg(method, params), direction)
    assert (op.kind, op.target, op.method, op.invalid) == (kind, target, method, None)
    assert op.message_kind is MessageKind.REQUEST and op.id == 1 and op.direction is direction


def test_tool_call_details() -> None:
    params = {"name": "search", "arguments": {"q": "x"}, "_meta": {
        "progressToken": 9, "traceparent": "00-ab-cd-01", "io.modelcontextprotocol/protocolVersion": "2026-07-28"}}
    op = classify(msg("tools/call", params), C2S)
    assert op.arguments == {"q": "x"} and op.progress_token == 9
    assert op.meta is not None and op.meta["traceparent"] == "00-ab-cd-01"
    assert op.protocol_version == "2026-07-28"


def test_tool_names_are_kept_exact() -> None:
    # leading space, trailing newline, Cyrillic dze lookalike, other case, empty
    for name in [" search", "search\n", "\u0455earch", "SEARCH", ""]:
        assert classify(msg("tools/call", {"name": name}), C2S).target == name


def test_subscriptions_listen_targets() -> None:
    op = classify(msg("subscriptions/listen", {"notifications": {"resourceSubscriptions": ["a://1", "b://2"],
                                                                 "toolsListChanged": True}}), C2S)
    assert op.kind is OpKind.SUBSCRIPTION and op.targets == ("a://1", "b://2") and op.invalid is None


@pytest.mark.parametrize(("method", "params", "target", "token"), [
    ("notifications/resources/updated", {"uri": "file:///a"}, "file:///a", None),
    ("notifications/cancelled", {"requestId": 5, "reason": "x"}, "5", None),
    ("notifications/cancelled", {"requestId": "5"}, "5", None),
    ("notifications/progress", {"progressToken": "tok", "progress": 1}, None, "tok"),
    ("notifications/initialized", None, None, None),
    ("notifications/tools/list_changed", None, None, None),
])
def test_notifications(method: str, params: dict[str, Any] | None, target: str | None, token: str | None) -> None:
    op = classify(msg(method, params, id=None), S2C)
    assert op.kind is OpKind.NOTIFICATION and op.message_kind is MessageKind.NOTIFICATION
    assert op.target == target and op.progress_token == token and op.id is None


def test_a_method_sent_as_notification_still_classifies_by_method() -> None:
    op = classify(msg("tools/call", {"name": "delete_repo"}, id=None), C2S)
    assert op.kind is OpKind.TOOL_CALL and op.target == "delete_repo"
    assert op.message_kind is MessageKind.NOTIFICATION


@pytest.mark.parametrize(("method", "params"), [
    ("tools/call", None), ("tools/call", {}), ("tools/call", {"name": 1}), ("tools/call", {"name": ["a"]}),
    ("tools/call", {"name": "a", "arguments": [1]}), ("tools/call", {"name": "a", "arguments": "x"}),
    ("prompts/get", {"name": None}), ("prompts/get", {"name": "p", "arguments": 3}),
    ("resources/read", {}), ("resources/read", {"uri": 5}), ("resources/subscribe", {"uri": {}}),
    ("tasks/get", {}), ("tasks/cancel", {"taskId": 3}),
    ("completion/complete", {}), ("completion/complete", {"ref": "x"}),
    ("completion/complete", {"ref": {"type": "ref/other", "name": "x"}}),
    ("completion/complete", {"ref": {"type": "ref/prompt", "uri": "x"}}),
    ("subscriptions/listen", {"notifications": {"resourceSubscriptions": [1]}}),
    ("subscriptions/listen", {"notifications": []}),
    ("elicitation/create", {"mode": "url"}),
    ("tools/list", {"_meta": "x"}),
])
def test_unclassifiable_params_are_reported(method: str, params: dict[str, Any] | None) -> None:
    direction = S2C if method == "elicitation/create" else C2S
    op = classify(msg(method, params), direction)
    assert op.invalid is not None and op.invalid.startswith(("`", "unknown"))


@pytest.mark.parametrize(("result", "error", "outcome", "code"), [
    ({"content": []}, None, Outcome.OK, None),
    ({"content": [], "isError": False, "resultType": "complete"}, None, Outcome.OK, None),
    ({"content": [], "isError": True}, None, Outcome.TOOL_ERROR, None),
    ({"content": [], "isError": "true"}, None, Outcome.OK, None),
    ({"resultType": "input_required", "inputRequests": {}}, None, Outcome.INPUT_REQUIRED, None),
    ({"resultType": "task", "taskId": "t9", "pollIntervalMs": 10}, None, Outcome.TASK, None),
    ({"task": {"taskId": "t8", "status": "working"}}, None, Outcome.TASK, None),
    ({"task": {"status": "working"}}, None, Outcome.OK, None),
    (None, {"code": -32602, "message": "unknown tool"}, Outcome.JSONRPC_ERROR, -32602),
])
def test_outcomes(result: Any, error: Any, outcome: Outcome, code: int | None) -> None:
    resp = response({} if result is None and error is None else result, error)
    assert outcome_of(resp) == (outcome, code)


def test_null_result_is_ok() -> None:
    assert outcome_of(response(None))[0] is Outcome.OK


def test_classify_response_uses_the_request() -> None:
    request_op = classify(msg("tools/call", {"name": "build"}, id="r1"), C2S)
    op = classify_response(response({"task": {"taskId": "t8"}}, id="r1"), request_op)
    assert (op.kind, op.method, op.target, op.outcome, op.task_id) == \
        (OpKind.RESPONSE, "tools/call", "build", Outcome.TASK, "t8")
    assert op.direction is S2C and op.id == "r1"
    bare = classify(response({"resultType": "task", "taskId": "t9"}), S2C)
    assert bare.kind is OpKind.RESPONSE and bare.task_id == "t9" and bare.outcome is Outcome.TASK


def test_list_methods() -> None:
    assert {"tools/list", "prompts/list", "resources/list", "resources/templates/list", "tasks/list"} \
        == LIST_METHODS


_json = st.recursive(st.none() | st.booleans() | st.integers(-(2**53 - 1), 2**53 - 1) | st.text(max_size=6),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                                 max_size=3), max_leaves=12)
_methods = st.sampled_from([c[0] for c in CASES] + ["notifications/cancelled", "notifications/progress",
                                                     "notifications/resources/updated"]) | st.text(max_size=12)
_param_keys = st.sampled_from(["name", "uri", "arguments", "_meta", "taskId", "ref", "notifications", "mode",
                               "url", "requestId", "progressToken"])


@settings(max_examples=400)
@given(_methods, st.dictionaries(_param_keys, _json, max_size=5), st.booleans(),
       st.sampled_from(list(Direction)))
def test_classify_never_raises(method: str, params: dict[str, Any], has_id: bool, direction: Direction) -> None:
    try:
        m = msg(method, params, id=1 if has_id else None)
    except McpgateError:
        return  # refused by the decoder (e.g. a key that case-folds onto another): never classified
    op = classify(m, direction)
    assert op.method == method and (op.target is None or isinstance(op.target, str))


@settings(max_examples=200)
@given(_json)
def test_outcome_never_raises(result: Any) -> None:
    outcome, _ = outcome_of(response(result if result is not None else {}))
    assert isinstance(outcome, Outcome)
