"""Strict JSON-RPC 2.0 decoding and encoding: one reading of a body that every other parser must agree on.

msgspec parses (it already rejects NaN/Infinity, lone surrogates, invalid UTF-8 and trailing data); one
iterative walk then checks depth, case-fold key collisions and, by counting, duplicate keys.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

import msgspec

from mcpgate.errors import (
    BatchNotAllowed,
    CaseVariantKey,
    DuplicateKey,
    InvalidEnvelope,
    InvalidParams,
    InvalidUtf8,
    LoneSurrogate,
    MalformedJson,
    NestingTooDeep,
    NonFiniteNumber,
    UnsafeInteger,
)
from mcpgate.protocol.model import Message, MessageKind, RequestId

__all__ = [
    "ENVELOPE_KEYS",
    "DecodeLimits",
    "decode_body",
    "encode_error",
    "encode_message",
    "encode_result",
]

ENVELOPE_KEYS: Final = frozenset({"jsonrpc", "id", "method", "params", "result", "error"})
# Keys whose case variants an MCP SDK with case-insensitive decoding (Go encoding/json) would read as these.
_SIGNIFICANT_PARAMS: Final = frozenset(
    {"name", "uri", "arguments", "_meta", "taskid", "ref", "cursor", "requestid", "progresstoken",
     "notifications", "resourcesubscriptions", "url", "mode", "protocolversion", "task"}
)
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1
_SAFE_INT: Final = 2**53 - 1
# One translated copy answers two cheap questions: digits map to "0" (a run of 16 can be an integer
# beyond 2**53) and `{` maps to `[` (more brackets than max_depth can be nesting that deep).
_SCAN_TABLE: Final = bytes.maketrans(b"123456789{", b"000000000[")
_SIXTEEN_DIGITS: Final = b"0" * 16

_REQUEST: Final = MessageKind.REQUEST
_NOTIFICATION: Final = MessageKind.NOTIFICATION
_decoder: Final = msgspec.json.Decoder()
_encoder: Final = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    """Structural limits applied while decoding; the body size limit belongs to the HTTP layer."""

    max_depth: int = 64
    max_batch: int = 100
    # Integers beyond ±(2**53 - 1) are rounded by JavaScript (the TypeScript SDK) and by Go's `any`
    # decoding: the server would read another number than policy saw. Turn off only for trusted peers.
    reject_unsafe_integers: bool = True


_DEFAULT_LIMITS: Final = DecodeLimits()


def decode_body(body: bytes, *, allow_batch: bool,
                limits: DecodeLimits = _DEFAULT_LIMITS) -> Message | list[Message]:
    """Decode one HTTP body into a message (or, if allowed, a batch), rejecting anything ambiguous."""
    value = _parse(body, limits)
    if type(value) is dict:
        return _message(value, body)
    if type(value) is list:
        if not allow_batch:
            raise BatchNotAllowed("json-rpc batches are not allowed in this protocol version")
        if not value:
            raise BatchNotAllowed("empty json-rpc batch")
        if len(value) > limits.max_batch:
            raise BatchNotAllowed(f"batch of {len(value)} messages exceeds the limit of {limits.max_batch}")
        out: list[Message] = []
        for i, item in enumerate(value):
            if type(item) is not dict:
                raise InvalidEnvelope(f"batch element {i} is not a json object")
            out.append(_message(item, b""))
        return out
    raise InvalidEnvelope("a json-rpc message must be a json object")


def parse_json(body: bytes, limits: DecodeLimits = _DEFAULT_LIMITS) -> Any:
    """Decode any JSON value with the same strictness as `decode_body` (for SSE data and rewrites)."""
    return _parse(body, limits)


# --- parsing ------------------------------------------------------------------------------------------


def _parse(body: bytes | str, limits: DecodeLimits) -> Any:
    try:
        value = _decoder.decode(body)
    except UnicodeDecodeError as exc:
        raise InvalidUtf8(f"body is not valid utf-8 (byte {exc.start})") from None
    except RecursionError:
        raise NestingTooDeep(f"json nesting exceeds the limit of {limits.max_depth}") from None
    except msgspec.ValidationError as exc:
        # Untyped decoding fails validation only on numbers: a float overflowing to infinity, or an
        # integer too long for msgspec (thousands of digits).
        if "Integer" in str(exc):
            raise UnsafeInteger("integer too large to decode") from None
        raise NonFiniteNumber(f"number out of range: {exc}") from None
    except msgspec.DecodeError as exc:
        raise _diagnose(body, str(exc)) from None
    if type(value) is dict or type(value) is list:
        raw = body.encode() if isinstance(body, str) else body
        _check_structure(value, raw, limits)
    return value


_SMALL_BODY: Final = 16 * 1024


def _check_structure(root: dict[str, Any] | list[Any], raw: bytes, limits: DecodeLimits) -> None:
    """Depth, duplicate keys and case-fold key collisions.

    Every `:` outside a string separates one object member, so comparing colon counts between the text
    and a re-encoding of what was kept reveals dropped members. Small bodies re-decode a case-folded copy
    (C speed, so collisions become duplicates); large ones walk the tree once, which is cheaper when a
    few big strings dominate. An escaped colon (`\\u003a`) makes the count inexact: the slow path decides.
    """
    if len(raw) <= _SMALL_BODY:
        scan = raw.translate(_SCAN_TABLE)
        if scan.count(b"[") > limits.max_depth:
            _walk(root, raw, limits)
            return
        if limits.reject_unsafe_integers and scan.find(_SIXTEEN_DIGITS) >= 0:
            _check_integers(root)
        if raw.find(b"\\") < 0 or raw.find(b"\\u") < 0:  # (`find` beats `in` on short bytes)
            # No escapes: the text's colons are the structure plus literal colons in strings, and folding
            # the text itself folds every key.
            text, kept = raw, raw.count(b":")
        else:
            # msgspec writes non-ascii as utf-8, so the re-encoding has `\\u212a`-style escapes resolved
            # (they must fold too) and its colon count no longer depends on escaped colons.
            text = _encoder.encode(root)
            kept = text.count(b":")
            if kept != raw.count(b":") or b"\\u003" in raw:
                _find_duplicate(raw)
                return
        folded = text.lower() if text.isascii() else text.decode().casefold().encode()
        try:
            merged = _encoder.encode(_decoder.decode(folded)).count(b":")
        except (msgspec.DecodeError, RecursionError):  # pragma: no cover - folding keeps json valid
            merged = -1
        if merged != kept:
            _find_duplicate(raw)
        return
    _walk(root, raw, limits)


def _unsafe(value: int) -> UnsafeInteger:
    return UnsafeInteger(f"integer of {value.bit_length()} bits is beyond ±(2^53-1); javascript and go "
                         "decoders would round it to another number")


def _check_integers(root: dict[str, Any] | list[Any]) -> None:
    stack: list[Any] = [root]
    while stack:
        node = stack.pop()
        for v in node.values() if type(node) is dict else node:
            t = type(v)
            if t is int:
                if not -_SAFE_INT <= v <= _SAFE_INT:
                    raise _unsafe(v)
            elif t is dict or t is list:
                stack.append(v)


def _walk(root: dict[str, Any] | list[Any], raw: bytes, limits: DecodeLimits) -> None:
    max_depth = limits.max_depth
    check_ints = limits.reject_unsafe_integers
    keys = 0
    colons = 0
    level: list[Any] = [root]
    depth = 1
    while level:
        if depth > max_depth:
            raise NestingTooDeep(f"json nesting exceeds the limit of {max_depth}")
        nxt: list[Any] = []
        push = nxt.append
        for node in level:
            if type(node) is dict:
                n = len(node)
                keys += n
                if n > 1 and len({k.casefold() for k in node}) != n:
                    _find_duplicate(raw)
                for k in node:
                    if ":" in k:
                        colons += k.count(":")
                values: Any = node.values()
            else:
                values = node
            for v in values:
                t = type(v)
                if t is str:
                    if ":" in v:
                        colons += v.count(":")
                elif t is dict or t is list:
                    push(v)
                elif t is int and check_ints and not -_SAFE_INT <= v <= _SAFE_INT:
                    raise _unsafe(v)
        level = nxt
        depth += 1
    if raw.count(b":") - colons != keys or (b"\\" in raw and b"\\u003" in raw):
        _find_duplicate(raw)


class _Pairs(list[tuple[str, Any]]):
    """An object decoded with every member kept, so duplicates stay visible."""


def _find_duplicate(raw: bytes) -> None:
    """Name the duplicate or case-colliding key and its path; returns if there is none after all.

    Only reached when a check above found a dropped member or a fold collision (or an escaped colon):
    msgspec has already validated the text and its depth, so the recursive stdlib parser is safe here.
    """
    try:
        tree = json.loads(raw, object_pairs_hook=_Pairs)
    except RecursionError:
        raise NestingTooDeep("json nesting exceeds the parser's limit") from None
    stack: list[tuple[Any, str]] = [(tree, "$")]
    while stack:
        node, path = stack.pop()
        if isinstance(node, _Pairs):
            seen: dict[str, str] = {}
            for k, _ in node:
                f = k.casefold()
                if f in seen:
                    if seen[f] == k:
                        raise DuplicateKey(f"duplicate key `{k}` at `{path}`", data={"key": k, "path": path})
                    raise CaseVariantKey(
                        f"keys `{seen[f]}` and `{k}` at `{path}` differ only by case; a case-insensitive "
                        "parser would merge them", data={"keys": [seen[f], k], "path": path})
                seen[f] = k
            stack.extend((v, f"{path}.{k}") for k, v in reversed(node))
        elif isinstance(node, list):
            stack.extend((v, f"{path}[{i}]") for i, v in reversed(list(enumerate(node))))


def _diagnose(body: bytes | str, detail: str) -> MalformedJson:
    """Name the precise reason msgspec refused the text (error path only, so it may be slow)."""
    if isinstance(body, bytes):
        # msgspec >= 0.23 reports bad utf-8 as a DecodeError (earlier: UnicodeDecodeError); stdlib's
        # `json.loads` would accept utf-8-encoded surrogates ("surrogatepass"), so check the bytes first.
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as exc:
            return InvalidUtf8(f"body is not valid utf-8 (byte {exc.start})")
    if "surrogate" in detail:
        return LoneSurrogate(f"lone utf-16 surrogate escape in a string: {detail}")

    def no_constants(name: str) -> Any:
        raise NonFiniteNumber(f"`{name}` is not a json number")

    try:
        tree = json.loads(body, parse_constant=no_constants, object_pairs_hook=_Pairs)
    except NonFiniteNumber as exc:
        return exc
    except (ValueError, RecursionError):
        return MalformedJson(f"malformed json: {detail}")
    # stdlib accepts lone surrogates that msgspec rejects: that is the only difference left.
    if _has_lone_surrogate(tree):
        return LoneSurrogate("lone utf-16 surrogate escape in a string")
    return MalformedJson(f"malformed json: {detail}")


def _has_lone_surrogate(tree: Any) -> bool:
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            try:
                node.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(node, _Pairs):
            for k, v in node:
                stack.append(k)
                stack.append(v)
        elif isinstance(node, list):
            stack.extend(node)
    return False


# --- envelope ------------------------------------------------------------------------------------------


def _message(obj: dict[str, Any], raw: bytes) -> Message:
    if not obj.keys() <= ENVELOPE_KEYS:
        for key in obj.keys() - ENVELOPE_KEYS:
            if key.casefold() in ENVELOPE_KEYS:
                raise CaseVariantKey(f"envelope key `{key}` is a case variant of `{key.casefold()}`",
                                     data={"key": key})
        key = sorted(obj.keys() - ENVELOPE_KEYS)[0]
        raise InvalidEnvelope(f"unknown json-rpc envelope key `{key}`", data={"key": key})
    if obj.get("jsonrpc") != "2.0":
        raise InvalidEnvelope("`jsonrpc` must be the string `2.0`")
    has_id = "id" in obj
    rid = obj.get("id")
    method = obj.get("method")
    if "method" in obj:
        if type(method) is not str:
            raise InvalidEnvelope("`method` must be a string")
        if "result" in obj or "error" in obj:
            raise InvalidEnvelope(f"message with `method` `{method}` also carries `result` or `error`")
        params = obj.get("params")
        if params is not None:
            if type(params) is not dict:
                raise InvalidParams(f"`params` of `{method}` must be a json object")
            if not params.keys() <= _EXACT_PARAMS:
                _check_param_keys(params, method)
        elif "params" in obj:
            raise InvalidParams(f"`params` of `{method}` must be a json object")
        if not has_id:
            return Message(_NOTIFICATION, raw, None, method, params)
        if type(rid) is not str:
            rid = _request_id(rid)
        return Message(_REQUEST, raw, rid, method, params)
    if "params" in obj:
        raise InvalidEnvelope("a response must not carry `params`")
    if "result" in obj:
        if "error" in obj:
            raise InvalidEnvelope("a response must not carry both `result` and `error`")
        if not has_id:
            raise InvalidEnvelope("a result response must carry an `id`")
        return Message(MessageKind.RESULT, raw, _request_id(rid), None, None, obj["result"])
    if "error" in obj:
        error = obj["error"]
        if type(error) is not dict:
            raise InvalidEnvelope("`error` must be a json object")
        code = error.get("code")
        if type(code) is not int:
            raise InvalidEnvelope("`error.code` must be an integer")
        if type(error.get("message")) is not str:
            raise InvalidEnvelope("`error.message` must be a string")
        # JSON-RPC 2.0 answers an unreadable request id with `"id": null`; only errors may do that.
        eid = None if rid is None else _request_id(rid)
        return Message(MessageKind.ERROR, raw, eid, None, None, None, error)
    raise InvalidEnvelope("a json-rpc message needs `method`, `result` or `error`")


def _request_id(rid: Any) -> RequestId:
    t = type(rid)
    if t is str:
        return rid  # type: ignore[no-any-return]
    if t is int:
        if not _INT64_MIN <= rid <= _INT64_MAX:
            raise InvalidEnvelope("integer `id` outside the 64-bit range")
        return rid  # type: ignore[no-any-return]
    if rid is None:
        raise InvalidEnvelope("`id` must not be null")
    raise InvalidEnvelope(f"`id` must be a string or an integer, not {_json_type(rid)}")


def _check_param_keys(params: dict[str, Any], method: str) -> None:
    for key in params.keys() - _EXACT_PARAMS:
        if key.casefold() in _SIGNIFICANT_PARAMS:
            raise CaseVariantKey(f"`params` key `{key}` of `{method}` is a case variant of an mcp key",
                                 data={"key": key})


_EXACT_PARAMS: Final = frozenset(
    {"name", "uri", "arguments", "_meta", "taskId", "ref", "cursor", "requestId", "progressToken",
     "notifications", "resourceSubscriptions", "url", "mode", "protocolVersion", "task"}
)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if type(value) is bool:
        return "a boolean"
    if type(value) is float:
        return "a float"
    if type(value) is dict:
        return "an object"
    if type(value) is list:
        return "an array"
    return type(value).__name__


# --- encoding ------------------------------------------------------------------------------------------


def encode_error(id: RequestId | None, code: int, message: str, data: dict[str, Any] | None = None) -> bytes:
    """A JSON-RPC error response; `id=None` encodes `"id": null` (the request id could not be read)."""
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return _encoder.encode({"jsonrpc": "2.0", "id": id, "error": error})


def encode_result(id: RequestId, result: Any) -> bytes:
    return _encoder.encode({"jsonrpc": "2.0", "id": id, "result": result})


def encode_message(msg_dict: dict[str, Any]) -> bytes:
    """Compact JSON for a message mcpgate had to rewrite (e.g. a filtered list result)."""
    return _encoder.encode(msg_dict)
