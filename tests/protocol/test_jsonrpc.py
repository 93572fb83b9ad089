"""Strict JSON-RPC decoding: every way two parsers could read a body differently is refused with a typed error."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcpgate.errors import (
    BatchNotAllowed,
    CaseVariantKey,
    DuplicateKey,
    InvalidEnvelope,
    InvalidParams,
    InvalidUtf8,
    LoneSurrogate,
    MalformedJson,
    McpgateError,
    NestingTooDeep,
    NonFiniteNumber,
    UnsafeInteger,
)
from mcpgate.protocol.jsonrpc import (
    DecodeLimits,
    decode_body,
    encode_error,
    encode_message,
    encode_result,
    parse_json,
)
from mcpgate.protocol.model import Message, MessageKind


def one(body: bytes) -> Message:
    msg = decode_body(body, allow_batch=False)
    assert isinstance(msg, Message)
    return msg


def req(params: str) -> bytes:
    return b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":' + params.encode() + b"}"


def big(params_extra: str) -> bytes:
    """A body over the small-body threshold, so the tree-walk path is exercised."""
    return req('{"name":"t","arguments":{"blob":"' + "x" * 20_000 + '"' + params_extra + "}}")


# --- accepted ---------------------------------------------------------------------------------------------

def test_request_keeps_raw_and_exact_id() -> None:
    body = req('{"name":"search","arguments":{"q":"a:b"}}')
    msg = one(body)
    assert msg.kind is MessageKind.REQUEST and msg.raw is body
    assert msg.id == 1 and type(msg.id) is int and msg.method == "tools/call"
    assert msg.params == {"name": "search", "arguments": {"q": "a:b"}}
    assert one(b'{"jsonrpc":"2.0","id":"1","method":"ping"}').id == "1"


@pytest.mark.parametrize(("body", "kind"), [
    (b'{"jsonrpc":"2.0","method":"notifications/initialized"}', MessageKind.NOTIFICATION),
    (b'{"jsonrpc":"2.0","id":3,"result":{}}', MessageKind.RESULT),
    (b'{"jsonrpc":"2.0","id":3,"result":null}', MessageKind.RESULT),
    (b'{"jsonrpc":"2.0","id":3,"error":{"code":-32601,"message":"no"}}', MessageKind.ERROR),
    (b'{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse"}}', MessageKind.ERROR),
    (b'{"jsonrpc":"2.0","error":{"code":-32700,"message":"parse"}}', MessageKind.ERROR),
    (b' \t\r\n{"jsonrpc":"2.0","method":"x"}\n', MessageKind.NOTIFICATION),
])
def test_message_kinds(body: bytes, kind: MessageKind) -> None:
    assert one(body).kind is kind


def test_escaped_colon_without_duplicates_is_accepted() -> None:
    msg = one(req('{"name":"t","arguments":{"a\\u003ab":"c\\u003Ad"}}'))
    assert msg.params == {"name": "t", "arguments": {"a:b": "c:d"}}


def test_non_ascii_and_escapes_are_accepted() -> None:
    msg = one(req('{"name":"t","arguments":{"é":"\\u00e9","emoji":"\\ud83d\\ude00","k":"K"}}'))
    assert msg.params is not None and msg.params["arguments"]["emoji"] == "😀"


def test_large_body_is_accepted() -> None:
    msg = one(big(',"n":{"deep":[1,2,{"x:y":"a:b"}]}'))
    assert msg.params is not None and len(msg.params["arguments"]["blob"]) == 20_000


def test_batch_allowed() -> None:
    body = b'[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","method":"notifications/x"}]'
    msgs = decode_body(body, allow_batch=True)
    assert isinstance(msgs, list) and [m.kind for m in msgs] == [MessageKind.REQUEST, MessageKind.NOTIFICATION]
    assert all(m.raw == b"" for m in msgs)


def test_safe_integers_are_accepted() -> None:
    assert one(b'{"jsonrpc":"2.0","id":9007199254740991,"method":"ping"}').id == 2**53 - 1
    msg = one(req('{"name":"t","arguments":{"n":-9007199254740991,"s":"12345678901234567890"}}'))
    assert msg.params is not None and msg.params["arguments"]["n"] == -(2**53 - 1)


TRUSTING = DecodeLimits(reject_unsafe_integers=False)


def test_unsafe_integers_can_be_allowed_but_ids_stay_int64() -> None:
    body = b'{"jsonrpc":"2.0","id":9223372036854775807,"method":"ping","params":{"n":123456789012345678901}}'
    msg = decode_body(body, allow_batch=False, limits=TRUSTING)
    assert isinstance(msg, Message) and msg.id == 2**63 - 1
    for rid in (b"9223372036854775808", b"-9223372036854775809"):
        with pytest.raises(InvalidEnvelope):
            decode_body(b'{"jsonrpc":"2.0","id":' + rid + b',"method":"ping"}', allow_batch=False, limits=TRUSTING)
    with pytest.raises(UnsafeInteger):  # beyond what msgspec decodes at all
        decode_body(b'{"jsonrpc":"2.0","id":' + b"1" * 5000 + b',"method":"ping"}', allow_batch=False,
                    limits=TRUSTING)


# --- rejected ---------------------------------------------------------------------------------------------

REJECTS: list[tuple[str, bytes, type[McpgateError]]] = [
    ("syntax", b'{"jsonrpc":"2.0",', MalformedJson),
    ("trailing-garbage", b'{"jsonrpc":"2.0","method":"x"} x', MalformedJson),
    ("trailing-comma", b'{"jsonrpc":"2.0","method":"x",}', MalformedJson),
    ("comment", b'{"jsonrpc":"2.0","method":"x"}//', MalformedJson),
    ("bom", b'\xef\xbb\xbf{"jsonrpc":"2.0","method":"x"}', MalformedJson),
    ("nul", b'{"jsonrpc":"2.0","method":"x"}\x00', MalformedJson),
    ("control-in-string", b'{"jsonrpc":"2.0","method":"x\x01"}', MalformedJson),
    ("single-quotes", b"{'jsonrpc':'2.0'}", MalformedJson),
    ("form-feed-whitespace", b'\x0c{"jsonrpc":"2.0","method":"x"}', MalformedJson),
    ("empty", b"", MalformedJson),
    ("invalid-utf8", b'{"jsonrpc":"2.0","method":"\xff"}', InvalidUtf8),
    ("utf8-surrogate-bytes", b'{"jsonrpc":"2.0","method":"\xed\xa0\x80"}', InvalidUtf8),
    ("overlong-utf8", b'{"jsonrpc":"2.0","method":"\xc0\xaf"}', InvalidUtf8),
    ("nan", req('{"name":"t","arguments":{"a":NaN}}'), NonFiniteNumber),
    ("infinity", req('{"name":"t","arguments":{"a":Infinity}}'), NonFiniteNumber),
    ("neg-infinity", req('{"name":"t","arguments":{"a":-Infinity}}'), NonFiniteNumber),
    ("overflow", req('{"name":"t","arguments":{"a":1e400}}'), NonFiniteNumber),
    ("lone-high", req('{"name":"\\ud800"}'), LoneSurrogate),
    ("lone-low", req('{"name":"\\udc00x"}'), LoneSurrogate),
    ("reversed-pair", req('{"name":"\\udc00\\ud800"}'), LoneSurrogate),
    ("lone-in-key", req('{"\\ud800":1}'), LoneSurrogate),
    ("dup-envelope", b'{"jsonrpc":"2.0","id":1,"method":"a","method":"tools/call"}', DuplicateKey),
    ("dup-id", b'{"jsonrpc":"2.0","id":1,"id":2,"method":"a"}', DuplicateKey),
    ("dup-name", req('{"name":"safe","name":"delete_repo"}'), DuplicateKey),
    ("dup-args", req('{"name":"t","arguments":{"path":"/ok","path":"/etc"}}'), DuplicateKey),
    ("dup-deep", req('{"name":"t","arguments":{"a":[{"b":{"c":1,"c":2}}]}}'), DuplicateKey),
    ("dup-escaped", req('{"name":"t","arguments":{"a":1,"\\u0061":2}}'), DuplicateKey),
    ("dup-with-escaped-colon", req('{"name":"t","arguments":{"a":1,"a":2,"x":"\\u003a"}}'), DuplicateKey),
    ("dup-large-body", big(',"blob":"y"'), DuplicateKey),
    ("case-envelope", b'{"jsonrpc":"2.0","id":1,"Method":"tools/call"}', CaseVariantKey),
    ("case-envelope-id", b'{"jsonrpc":"2.0","ID":1,"method":"x"}', CaseVariantKey),
    ("case-envelope-jsonrpc", b'{"JSONRPC":"2.0","jsonrpc":"2.0","method":"x"}', CaseVariantKey),
    ("case-params-name", req('{"Name":"delete_repo"}'), CaseVariantKey),
    ("case-params-uri", b'{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"URI":"x"}}',
     CaseVariantKey),
    ("case-params-arguments", req('{"name":"t","Arguments":{}}'), CaseVariantKey),
    ("case-collision-params", req('{"name":"a","NAME":"b"}'), CaseVariantKey),
    ("case-collision-args", req('{"name":"t","arguments":{"path":"/ok","Path":"/etc"}}'), CaseVariantKey),
    ("case-collision-kelvin", req('{"name":"t","arguments":{"k":1,"\\u212a":2}}'), CaseVariantKey),
    ("case-collision-long-s", req('{"name":"t","arguments":{"s":1,"\u017f":2}}'), CaseVariantKey),
    ("case-collision-large", big(',"BLOB":"y"'), CaseVariantKey),
    ("depth", req('{"name":"t","arguments":' + "[" * 70 + "]" * 70 + "}"), NestingTooDeep),
    ("depth-100k", b"[" * 100_000, NestingTooDeep),
    ("depth-100k-objects", b'{"a":' * 100_000, NestingTooDeep),
    ("depth-large-body", big(',"d":' + "[" * 70 + "]" * 70), NestingTooDeep),
    ("jsonrpc-missing", b'{"id":1,"method":"x"}', InvalidEnvelope),
    ("jsonrpc-1.0", b'{"jsonrpc":"1.0","id":1,"method":"x"}', InvalidEnvelope),
    ("jsonrpc-number", b'{"jsonrpc":2.0,"id":1,"method":"x"}', InvalidEnvelope),
    ("id-null-request", b'{"jsonrpc":"2.0","id":null,"method":"x"}', InvalidEnvelope),
    ("id-bool", b'{"jsonrpc":"2.0","id":true,"method":"x"}', InvalidEnvelope),
    ("id-float", b'{"jsonrpc":"2.0","id":1.0,"method":"x"}', InvalidEnvelope),
    ("id-exp", b'{"jsonrpc":"2.0","id":1e2,"method":"x"}', InvalidEnvelope),
    ("id-object", b'{"jsonrpc":"2.0","id":{},"method":"x"}', InvalidEnvelope),
    ("id-array", b'{"jsonrpc":"2.0","id":[1],"method":"x"}', InvalidEnvelope),
    ("id-unsafe", b'{"jsonrpc":"2.0","id":9007199254740992,"method":"x"}', UnsafeInteger),
    ("id-huge", b'{"jsonrpc":"2.0","id":123456789012345678901234567890,"method":"x"}', UnsafeInteger),
    ("int-unsafe", req('{"name":"t","arguments":{"n":[9007199254740993]}}'), UnsafeInteger),
    ("int-unsafe-negative", req('{"name":"t","arguments":{"n":-9007199254740992}}'), UnsafeInteger),
    ("int-5000-digits", req('{"name":"t","arguments":{"n":' + "7" * 5000 + "}}"), UnsafeInteger),
    ("int-unsafe-large-body", big(',"n":9007199254740993'), UnsafeInteger),
    ("id-null-result", b'{"jsonrpc":"2.0","id":null,"result":{}}', InvalidEnvelope),
    ("result-without-id", b'{"jsonrpc":"2.0","result":{}}', InvalidEnvelope),
    ("method-number", b'{"jsonrpc":"2.0","id":1,"method":1}', InvalidEnvelope),
    ("method-and-result", b'{"jsonrpc":"2.0","id":1,"method":"x","result":{}}', InvalidEnvelope),
    ("result-and-error", b'{"jsonrpc":"2.0","id":1,"result":{},"error":{"code":1,"message":"m"}}',
     InvalidEnvelope),
    ("nothing", b'{"jsonrpc":"2.0","id":1}', InvalidEnvelope),
    ("unknown-key", b'{"jsonrpc":"2.0","id":1,"method":"x","extra":1}', InvalidEnvelope),
    ("response-params", b'{"jsonrpc":"2.0","id":1,"result":{},"params":{}}', InvalidEnvelope),
    ("error-not-object", b'{"jsonrpc":"2.0","id":1,"error":"bad"}', InvalidEnvelope),
    ("error-code-string", b'{"jsonrpc":"2.0","id":1,"error":{"code":"1","message":"m"}}', InvalidEnvelope),
    ("error-code-bool", b'{"jsonrpc":"2.0","id":1,"error":{"code":true,"message":"m"}}', InvalidEnvelope),
    ("error-no-message", b'{"jsonrpc":"2.0","id":1,"error":{"code":1}}', InvalidEnvelope),
    ("scalar", b'"tools/call"', InvalidEnvelope),
    ("null", b"null", InvalidEnvelope),
    ("params-array", b'{"jsonrpc":"2.0","id":1,"method":"x","params":[1]}', InvalidParams),
    ("params-string", b'{"jsonrpc":"2.0","id":1,"method":"x","params":"a"}', InvalidParams),
    ("params-null", b'{"jsonrpc":"2.0","id":1,"method":"x","params":null}', InvalidParams),
    ("batch-not-allowed", b'[{"jsonrpc":"2.0","id":1,"method":"x"}]', BatchNotAllowed),
]


@pytest.mark.parametrize(("name", "body", "error"), REJECTS, ids=[r[0] for r in REJECTS])
def test_rejects(name: str, body: bytes, error: type[McpgateError]) -> None:
    with pytest.raises(error) as info:
        decode_body(body, allow_batch=False)
    assert type(info.value) is error, f"{name}: got {type(info.value).__name__}: {info.value}"


def test_duplicate_error_names_key_and_path() -> None:
    with pytest.raises(DuplicateKey) as info:
        one(req('{"name":"t","arguments":{"a":[{"b":{"c":1,"c":2}}]}}'))
    assert info.value.data == {"key": "c", "path": "$.params.arguments.a[0].b"}
    assert "`c`" in info.value.message


def test_batch_limits() -> None:
    item = b'{"jsonrpc":"2.0","method":"x"}'
    with pytest.raises(BatchNotAllowed):
        decode_body(b"[]", allow_batch=True)
    with pytest.raises(BatchNotAllowed):
        decode_body(b"[" + b",".join([item] * 3) + b"]", allow_batch=True, limits=DecodeLimits(max_batch=2))
    with pytest.raises(InvalidEnvelope):
        decode_body(b"[1]", allow_batch=True)
    with pytest.raises(DuplicateKey):
        decode_body(b'[{"jsonrpc":"2.0","method":"x","method":"y"}]', allow_batch=True)


def test_depth_limit_is_configurable() -> None:
    body = req('{"name":"t","arguments":' + "[" * 10 + "]" * 10 + "}")
    one(body)
    with pytest.raises(NestingTooDeep):
        decode_body(body, allow_batch=False, limits=DecodeLimits(max_depth=8))


def test_errors_carry_stable_codes() -> None:
    with pytest.raises(MalformedJson) as info:
        one(b"{")
    assert info.value.code == "protocol.malformed_json" and info.value.jsonrpc_code == -32700


# --- encoders -----------------------------------------------------------------------------------------

def test_encoders_round_trip() -> None:
    err = one(encode_error(7, -32001, "tool `x` denied", {"rule": "r1"}))
    assert err.kind is MessageKind.ERROR and err.id == 7
    assert err.error == {"code": -32001, "message": "tool `x` denied", "data": {"rule": "r1"}}
    assert json.loads(encode_error(None, -32700, "bad")) == \
        {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "bad"}}
    ok = one(encode_result("a", {"tools": []}))
    assert ok.kind is MessageKind.RESULT and ok.id == "a" and ok.result == {"tools": []}
    assert encode_message({"jsonrpc": "2.0", "method": "x"}) == b'{"jsonrpc":"2.0","method":"x"}'


def test_parse_json_is_as_strict() -> None:
    assert parse_json(b'{"a":[1]}') == {"a": [1]}
    with pytest.raises(DuplicateKey):
        parse_json(b'{"a":1,"a":2}')


# --- properties ---------------------------------------------------------------------------------------

def _json_values(integers: st.SearchStrategy[int]) -> st.SearchStrategy[Any]:
    scalars = st.none() | st.booleans() | integers | st.text(max_size=8) \
        | st.floats(allow_nan=False, allow_infinity=False)
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(st.text(max_size=6), inner, max_size=4), max_leaves=20)


_json = _json_values(st.integers(-(2**53 - 1), 2**53 - 1))
_json_wide = _json_values(st.integers(-(2**70), 2**70))


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_typed_errors(body: bytes) -> None:
    try:
        decode_body(body, allow_batch=True)
    except McpgateError:
        pass


_fragments = st.sampled_from(['{"', '":', '"', ",", "[", "]", "{", "}", "1", "-1e999", "NaN", "\\u", "d800",
                              "\\", "true", "null", '"a"', '"A"', "é", "\x00", " ", "1.5", "jsonrpc",
                              '"2.0"', "method", "id", "params"])


@settings(max_examples=300)
@given(st.lists(_fragments, max_size=40))
def test_json_like_text_raises_only_typed_errors(parts: list[str]) -> None:
    try:
        decode_body("".join(parts).encode(), allow_batch=True)
    except McpgateError:
        pass


def _with_duplicate(value: Any, path: list[int]) -> str:
    """Serialize `value` with the object reached by following `path` given one extra duplicate member."""
    if isinstance(value, dict):
        members = [json.dumps(k) + ":" + _with_duplicate(v, path[1:] if path else []) for k, v in value.items()]
        if not path and value:
            k = next(iter(value))
            members.append(json.dumps(k) + ":0")
        return "{" + ",".join(members) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_with_duplicate(v, path[1:] if path else []) for v in value) + "]"
    return json.dumps(value)


@settings(max_examples=200)
@given(st.dictionaries(st.text(max_size=5), _json, min_size=1, max_size=4), st.integers(0, 6))
def test_duplicate_keys_found_at_any_depth(args: dict[str, Any], depth: int) -> None:
    # Nest the generated object `depth` levels down, then duplicate its first key.
    text = _with_duplicate(args, [])
    for _ in range(depth):
        text = '{"k":[' + text + "]}"
    body = req('{"name":"t","arguments":' + text + "}")
    with pytest.raises((DuplicateKey, CaseVariantKey)):
        decode_body(body, allow_batch=False)


@settings(max_examples=300)
@given(_json_wide)
def test_accepted_bodies_read_the_same_in_stdlib_json(args: Any) -> None:
    body = req(json.dumps({"name": "t", "arguments": args}))
    try:
        msg = one(body)
    except (CaseVariantKey, NestingTooDeep, UnsafeInteger):
        return
    assert msg.params == json.loads(body)["params"]
    assert msg.params == msgspec.json.decode(body)["params"]
