"""Differential oracle: where another parser could read (method, target, id, arguments) differently from the
gateway, the gateway must have rejected the message, never forwarded it.

Views compared with the gateway's `decode_body` + `classify`:
  sdk        the official Python SDK server path: `pydantic_core.from_json` then `jsonrpc_message_adapter`
  node       JavaScript `JSON.parse` (TypeScript SDK servers), one `node` process for every case
  stdlib     Python `json` (last duplicate wins, accepts NaN and lone surrogates)
  first      a first-duplicate-wins parser (Bishop Fox: a common resolution among 49 parsers)
  go         Go `encoding/json` semantics: keys matched case-insensitively with simple Unicode folding
             (MCP Go SDK < 1.3.1, CVE-2026-27896), last match wins
"""

from __future__ import annotations

import base64
import json
import math
import shutil
import subprocess
from collections.abc import Callable
from typing import Any

import pydantic_core
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp_types import jsonrpc_message_adapter

from mcpgate.errors import McpgateError
from mcpgate.protocol.jsonrpc import decode_body
from mcpgate.protocol.mcp import classify
from mcpgate.protocol.model import Direction, Message

View = tuple[str, Any, Any, Any] | None  # (method, target, id, arguments); None: this reader refuses it
_TARGET_KEY = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri",
               "resources/subscribe": "uri", "resources/unsubscribe": "uri"}


def _view(method: Any, params: Any, rid: Any) -> View:
    if not isinstance(method, str):
        return None
    p = params if isinstance(params, dict) else {}
    key = _TARGET_KEY.get(method)
    return (method, p.get(key) if key else None, rid, p.get("arguments"))


def gateway_view(body: bytes) -> View:
    try:
        msg = decode_body(body, allow_batch=False)
    except McpgateError:
        return None
    assert isinstance(msg, Message)
    op = classify(msg, Direction.CLIENT_TO_SERVER)
    if op.invalid or msg.method is None:
        return None
    return _view(msg.method, msg.params, msg.id)


def sdk_view(body: bytes) -> View:
    try:
        raw = pydantic_core.from_json(body)
        msg = jsonrpc_message_adapter.validate_python(raw, by_name=False)
    except ValueError:  # pydantic ValidationError is a ValueError
        return None
    return _view(getattr(msg, "method", None), getattr(msg, "params", None), getattr(msg, "id", None))


def _stdlib(body: bytes, hook: Callable[[list[tuple[str, Any]]], Any] | None) -> Any:
    return json.loads(body.decode("utf-8"), object_pairs_hook=hook)


def stdlib_view(body: bytes) -> View:
    try:
        doc = _stdlib(body, None)
    except (ValueError, RecursionError):
        return None
    return _view_of_doc(doc)


def first_wins_view(body: bytes) -> View:
    def first(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in pairs:
            out.setdefault(k, v)
        return out

    try:
        doc = _stdlib(body, first)
    except (ValueError, RecursionError):
        return None
    return _view_of_doc(doc)


class _Folded(dict[str, Any]):
    """Go encoding/json: a key matches a struct field case-insensitively; the last match wins."""


def go_view(body: bytes) -> View:
    def fold(pairs: list[tuple[str, Any]]) -> _Folded:
        out = _Folded()
        for k, v in pairs:
            out[k.casefold()] = v
        return out

    def no_constants(name: str) -> Any:
        raise ValueError(name)

    try:
        doc = json.loads(body.decode("utf-8"), object_pairs_hook=fold, parse_constant=no_constants)
    except (ValueError, RecursionError):
        return None
    if not isinstance(doc, dict) or doc.get("jsonrpc") != "2.0":
        return None
    method, params = doc.get("method"), doc.get("params")
    if not isinstance(method, str):
        return None
    p = params if isinstance(params, dict) else {}
    key = _TARGET_KEY.get(method)
    return (method, p.get(key) if key else None, doc.get("id"), _unfold(p.get("arguments")))


def _unfold(value: Any) -> Any:
    # Argument maps decode into map[string]any in Go: keys keep their spelling there.
    return value


def _view_of_doc(doc: Any) -> View:
    if not isinstance(doc, dict) or doc.get("jsonrpc") != "2.0":
        return None
    return _view(doc.get("method"), doc.get("params"), doc.get("id"))


_NODE_SCRIPT = r"""
const bodies = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const KEY = {'tools/call': 'name', 'prompts/get': 'name', 'resources/read': 'uri',
             'resources/subscribe': 'uri', 'resources/unsubscribe': 'uri'};
const out = bodies.map(b64 => {
  let doc;
  try { doc = JSON.parse(new TextDecoder('utf-8', {fatal: true}).decode(Buffer.from(b64, 'base64'))); }
  catch (e) { return null; }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc) || doc.jsonrpc !== '2.0') return null;
  if (typeof doc.method !== 'string') return null;
  const p = (doc.params && typeof doc.params === 'object' && !Array.isArray(doc.params)) ? doc.params : {};
  const k = KEY[doc.method];
  return [doc.method, k ? (p[k] === undefined ? null : p[k]) : null, doc.id === undefined ? null : doc.id,
          p.arguments === undefined ? null : p.arguments];
});
process.stdout.write(JSON.stringify(out));
"""


def node_views(bodies: list[bytes]) -> list[View]:
    node = shutil.which("node")
    assert node is not None, "node is required for the differential oracle (Node 20 is installed here)"
    payload = json.dumps([base64.b64encode(b).decode() for b in bodies])
    done = subprocess.run([node, "-e", _NODE_SCRIPT], input=payload, capture_output=True, text=True,
                          timeout=60, check=True)
    raw = json.loads(done.stdout)
    return [None if v is None else (v[0], v[1], v[2], v[3]) for v in raw]


PY_VIEWS: dict[str, Callable[[bytes], View]] = {
    "sdk": sdk_view, "stdlib": stdlib_view, "first": first_wins_view, "go": go_view,
}


def _same(a: Any, b: Any) -> bool:
    """Semantic equality as a program would see it (1 == 1.0 in JS and Python alike); NaN never equal."""
    if (isinstance(a, float) and math.isnan(a)) or (isinstance(b, float) and math.isnan(b)):
        return False
    if type(a) is bool or type(b) is bool:
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b) and (isinstance(a, str) == isinstance(b, str))


def disagreements(body: bytes, node: View, *, gw: View | None = None) -> list[str]:
    """Names of readers that accept `body` but read it differently from the gateway."""
    gw = gateway_view(body) if gw is None else gw
    if gw is None:
        return []  # the gateway refused it: nothing was forwarded, whatever others would have read
    views = {name: fn(body) for name, fn in PY_VIEWS.items()}
    views["node"] = node
    out = []
    for name, v in views.items():
        if v is None:
            continue  # that reader refuses the message: it cannot act on another reading
        if not all(_same(x, y) for x, y in zip(v, gw, strict=True)):
            out.append(name)
    return out


# --------------------------------------------------------------------------------------------- cases

AMBIGUOUS: list[bytes] = [
    b'{"jsonrpc":"2.0","id":1,"method":"ping","method":"tools/call","params":{"name":"delete"}}',
    b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","name":"delete"}}',
    b'{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}',
    b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"},"params":{"name":"delete"}}',
    b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"a":1,"a":2}}}',
    b'{"jsonrpc":"2.0","id":1,"method":"a","\\u006dethod":"b"}',
    b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","n\\u0061me":"delete"}}',
    b'{"jsonrpc":"2.0","id":1,"Method":"tools/call","params":{"name":"delete"}}',
    b'{"jsonrpc":"2.0","id":1,"method":"ping","METHOD":"tools/call","params":{"name":"delete"}}',
    b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"},"param\\u017f":{"name":"delete"}}',
    b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","Name":"delete"}}',
    b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"NAME":"delete"}}',
    b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"k":1,"\\u212a":2}}}',
    b'{"jsonrpc":"2.0","ID":7,"id":1,"method":"ping"}',
    b'{"jsonrpc":"2.0","id":9007199254740993,"method":"ping"}',
    b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"n":9007199254740993}}}',
    b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"n":1e400}}}',
    b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"n":NaN}}}',
    b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"\\ud800"}}',
    b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}\n{"jsonrpc":"2.0"}',
    b'{"jsonrpc":"2.0","id":1.0,"method":"ping"}',
    b'{"jsonrpc":"2.0","id":"1","method":"ping"}',
    b'{"jsonrpc":"2.0","id":true,"method":"ping"}',
    b'{"jsonrpc":"2.0","id":1,"method":"tools\\u002fcall","params":{"name":"echo"}}',
    b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","_meta":{"a":1,"a":2}}}',
    b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"a:b":1,"a\\u003ab":2}}}',
    b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"x":{"y":1,"Y":2}}}}',
    b'{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"a","URI":"b"}}',
    b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"\\u00df":1,"ss":2}}}',
    b'\xef\xbb\xbf{"jsonrpc":"2.0","id":1,"method":"ping"}',
    b'{"jsonrpc":"2.0","id":1,"method":"ping","jsonrpc":"1.0"}',
]
CLEAN: list[bytes] = [
    b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"a":[1,2.5,"x",null]}}}',
    b'{"jsonrpc":"2.0","id":"abc","method":"resources/read","params":{"uri":"file:///x"}}',
    b'{"jsonrpc":"2.0","method":"notifications/initialized"}',
    b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"\\u0065cho"}}',
]


def test_ambiguous_bodies_are_rejected_or_read_alike() -> None:
    bodies = AMBIGUOUS + CLEAN
    node = node_views(bodies)
    failures = {b: d for b, n in zip(bodies, node, strict=True) if (d := disagreements(b, n))}
    assert failures == {}, "the gateway forwards bodies other readers read differently"


def test_oracle_is_not_vacuous() -> None:
    """Clean bodies are accepted by the gateway and read identically by every reader."""
    node = node_views(CLEAN)
    for body, n in zip(CLEAN, node, strict=True):
        gw = gateway_view(body)
        assert gw is not None
        for name, fn in PY_VIEWS.items():
            assert fn(body) is not None, name
        assert n is not None
        assert disagreements(body, n, gw=gw) == []
    # And the oracle does see the danger: first-wins and last-wins readers split on a duplicate.
    dup = AMBIGUOUS[1]
    assert first_wins_view(dup) != stdlib_view(dup)
    assert gateway_view(dup) is None


# --------------------------------------------------------------------------------------------- generated

_KEYS = ["jsonrpc", "id", "method", "params", "name", "arguments", "uri", "_meta", "amount", "k"]
_FOLDS = {"s": ["S", "\u017f"], "k": ["K", "\u212a"]}


def _variant(key: str, how: int) -> str:
    if how == 1:
        return key.upper()
    if how == 2:
        return key[:1].upper() + key[1:]
    if how == 3:
        for ch, alts in _FOLDS.items():
            if ch in key:
                return key.replace(ch, alts[-1], 1)
    return key


def _render_key(key: str, escape_mask: int) -> str:
    out = []
    for i, ch in enumerate(key):
        out.append(f"\\u{ord(ch):04x}" if escape_mask >> (i % 16) & 1 or not ch.isascii() else ch)
    return '"' + "".join(out) + '"'


@st.composite
def ambiguous_messages(draw: st.DrawFn) -> bytes:
    """A tools/call with duplicate keys, case variants and escaped keys at random depths."""
    method = draw(st.sampled_from(["tools/call", "ping", "resources/read", "prompts/get"]))
    args: list[tuple[str, Any]] = [(k, draw(st.integers(-3, 3))) for k in draw(st.lists(
        st.sampled_from(["amount", "k", "id", "sudo"]), max_size=3))]
    params: list[tuple[str, Any]] = [("name", draw(st.sampled_from(["echo", "delete_customer"]))),
                                     ("arguments", args)]
    if method == "resources/read":
        params = [("uri", draw(st.sampled_from(["a://x", "b://y"])))]
    env: list[tuple[str, Any]] = [("jsonrpc", "2.0"), ("id", draw(st.integers(0, 5))), ("method", method),
                                  ("params", params)]
    levels = [env, params, args]
    for _ in range(draw(st.integers(1, 3))):
        level = draw(st.sampled_from(levels))
        if not level:
            continue
        key, value = draw(st.sampled_from(level))
        mutation = draw(st.integers(0, 3))
        if mutation == 0:
            level.insert(draw(st.integers(0, len(level))), (key, draw(st.sampled_from(
                [value, "delete_customer", "tools/call", 99]))))
        else:
            level.insert(draw(st.integers(0, len(level))), (_variant(key, mutation), draw(st.sampled_from(
                [value, "delete_customer", "tools/call", 99]))))
    mask = draw(st.integers(0, 2**16 - 1)) if draw(st.booleans()) else 0

    def render(node: Any) -> str:
        if isinstance(node, list):
            return "{" + ",".join(f"{_render_key(k, mask)}:{render(v)}" for k, v in node) + "}"
        return json.dumps(node)

    return render(env).encode()


def test_generated_ambiguities_never_forwarded_differently(record_property: Callable[[str, object], None]) -> None:
    """Hypothesis builds the bodies; every one then goes through all readers, Node in a single process."""
    bodies: list[bytes] = []

    @settings(max_examples=400, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    @given(ambiguous_messages())
    def collect(body: bytes) -> None:
        bodies.append(body)
        # The Python readers are checked inline, so Hypothesis shrinks a failure to a minimal body.
        gw = gateway_view(body)
        for name, fn in PY_VIEWS.items():
            v = fn(body)
            assert v is None or gw is None or all(_same(x, y) for x, y in zip(v, gw, strict=True)), \
                (name, body)

    collect()
    record_property("generated_inputs", len(bodies))
    assert len(bodies) >= 100
    rejected = sum(gateway_view(b) is None for b in bodies)
    assert rejected > 0  # the generator does produce ambiguity the gateway must refuse
    node = node_views(bodies)
    failures = [b for b, n in zip(bodies, node, strict=True) if disagreements(b, n)]
    assert failures == []


@pytest.mark.parametrize("key", ["method", "params", "id", "jsonrpc"])
def test_escaped_envelope_key_is_a_duplicate(key: str) -> None:
    escaped = "".join(f"\\u{ord(c):04x}" for c in key)
    body = ('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"},'
            f'"{escaped}":' + ('"x"' if key != "params" else '{"name":"delete"}') + "}").encode()
    assert gateway_view(body) is None
    assert json.loads(body)[key] != json.loads(body.replace(f'"{escaped}"'.encode(), b'"zz"'))[key]
