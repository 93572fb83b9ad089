"""Property-based fuzzing (Hypothesis, bounded for `make test`) of every parser that reads untrusted bytes:
the SSE framer, the JSON-RPC decoder + classifier, the XFCC and Linkerd header parsers, the identity
resolver's stripping, and the policy matcher. Each raises only typed `McpgateError`s, or nothing.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mcpgate.errors import IdentityError, McpgateError, SseEventTooLarge
from mcpgate.identity import Credentials, IdentityResolver, Principal, parse_xfcc, principal_from_xfcc
from mcpgate.identity.spiffe import principal_from_linkerd
from mcpgate.policy import load_policy_text
from mcpgate.policy.model import Effect
from mcpgate.protocol.jsonrpc import DecodeLimits, decode_body
from mcpgate.protocol.mcp import classify
from mcpgate.protocol.model import Direction, MessageKind, Operation, OpKind
from mcpgate.protocol.sse import NEED_DATA, SseEvent, SseFramer
from tests.hardening.sse_oracle import whatwg_events

FAST = settings(max_examples=150, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# --------------------------------------------------------------------------------------------- SSE


def _drain(framer: SseFramer) -> list[SseEvent]:
    out: list[SseEvent] = []
    while True:
        ev = framer.next_event()
        if ev is NEED_DATA:
            return out
        assert isinstance(ev, SseEvent)
        out.append(ev)


def frame(chunks: list[bytes], max_event: int = 1 << 20) -> tuple[list[SseEvent], bytes]:
    framer = SseFramer(max_event)
    events: list[SseEvent] = []
    for c in chunks:
        framer.receive_data(c)
        events += _drain(framer)
    rest = framer.receive_eof()
    events += _drain(framer)
    return events, rest


_NL = st.sampled_from([b"\n", b"\r\n", b"\r"])
_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=30)


@st.composite
def sse_streams(draw: st.DrawFn) -> bytes:
    parts: list[bytes] = []
    for _ in range(draw(st.integers(0, 6))):
        for _ in range(draw(st.integers(0, 4))):
            field = draw(st.sampled_from(["data", "event", "id", "retry", "", "x", "data"]))
            value = draw(_TEXT).encode()
            sep = draw(st.sampled_from([b": ", b":", b""]))
            line = b":" + value if field == "" else field.encode() + (sep + value if sep else b"")
            parts.append(line + draw(_NL))
        parts.append(draw(_NL))
    if draw(st.booleans()):
        parts.append(draw(_TEXT).encode())  # an unterminated tail
    return b"".join(parts)


def _splits(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    out, prev = [], 0
    for p in points:
        out.append(data[prev:p])
        prev = p
    out.append(data[prev:])
    return out


@FAST
@given(sse_streams(), st.lists(st.integers(0, 10_000), max_size=12))
def test_sse_any_split_gives_same_events(stream: bytes, cuts: list[int]) -> None:
    whole, rest_whole = frame([stream])
    pieces, rest_pieces = frame(_splits(stream, cuts))
    assert [e.raw for e in pieces] == [e.raw for e in whole]
    assert pieces == whole
    assert rest_pieces == rest_whole
    # Forwarding raw bytes loses nothing: the events' bytes plus the tail are the stream.
    assert b"".join(e.raw for e in whole) + rest_whole == stream.removeprefix(b"\xef\xbb\xbf") or \
        stream.startswith(b"\xef\xbb\xbf")


@FAST
@given(sse_streams())
def test_sse_framer_agrees_with_whatwg_reader(stream: bytes) -> None:
    events, _ = frame([stream])
    mine = [(e.event or "message", e.data) for e in events if e.data is not None]
    theirs = [(t, d) for t, d, _ in whatwg_events(stream)]
    assert mine == theirs


@FAST
@given(st.binary(max_size=2048), st.lists(st.integers(0, 4096), max_size=8), st.integers(1, 512))
def test_sse_arbitrary_bytes_only_typed_errors(data: bytes, cuts: list[int], limit: int) -> None:
    try:
        events, _ = frame(_splits(data, cuts), max_event=limit)
    except McpgateError:
        return
    for e in events:
        assert len(e.raw) <= limit


def test_sse_event_limit_is_enforced_without_a_line_end() -> None:
    framer = SseFramer(1024)
    framer.receive_data(b"data: " + b"x" * 2000)
    try:
        framer.next_event()
    except SseEventTooLarge:
        return
    raise AssertionError("an unterminated 2 KB line passed a 1 KB event limit")


# --------------------------------------------------------------------------------------------- JSON-RPC

_LIMITS = DecodeLimits(max_depth=64, max_batch=100)


def _decode_classify(body: bytes, allow_batch: bool) -> None:
    try:
        decoded = decode_body(body, allow_batch=allow_batch, limits=_LIMITS)
    except McpgateError:
        return
    for msg in decoded if isinstance(decoded, list) else [decoded]:
        op = classify(msg, Direction.CLIENT_TO_SERVER)
        assert isinstance(op, Operation)
        if msg.kind is MessageKind.REQUEST:
            assert type(msg.id) in (int, str)
            assert isinstance(msg.method, str)
        classify(msg, Direction.SERVER_TO_CLIENT)


@FAST
@given(st.binary(max_size=4096), st.booleans())
def test_decode_arbitrary_bytes_only_typed_errors(body: bytes, allow_batch: bool) -> None:
    _decode_classify(body, allow_batch)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**60), 2**60) | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20)


@st.composite
def jsonrpc_like(draw: st.DrawFn) -> bytes:
    msg: dict[str, Any] = {"jsonrpc": draw(st.sampled_from(["2.0", "2.0", "1.0"]))}
    if draw(st.booleans()):
        msg["id"] = draw(st.one_of(st.integers(-5, 2**64), st.text(max_size=5), st.none(), st.floats()))
    msg["method"] = draw(st.sampled_from(["tools/call", "resources/read", "prompts/get", "completion/complete",
                                          "subscriptions/listen", "tasks/get", "notifications/cancelled",
                                          "elicitation/create", "x"]))
    msg["params"] = draw(st.dictionaries(st.sampled_from(
        ["name", "uri", "arguments", "_meta", "ref", "taskId", "notifications", "requestId", "mode", "url"]),
        _JSON, max_size=4))
    text = json.dumps(msg, allow_nan=True)
    if draw(st.booleans()):  # splice in raw bytes: duplicates, truncation, deep nesting, garbage
        at = draw(st.integers(0, len(text)))
        junk = draw(st.sampled_from(['"method":"x",', "[" * 100, "\\u0000", "NaN", '"\\ud800"', ",", "}"]))
        text = text[:at] + junk + text[at:]
    return text.encode()


@FAST
@given(jsonrpc_like(), st.booleans())
def test_decode_jsonrpc_like_only_typed_errors(body: bytes, allow_batch: bool) -> None:
    _decode_classify(body, allow_batch)
    _decode_classify(b"[" + body + b"," + body + b"]", True)


@settings(max_examples=30, deadline=None, database=None)
@given(st.integers(65, 200_000), st.sampled_from(["[", '{"a":']))
def test_deep_nesting_is_a_typed_error(depth: int, opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    body = ('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"a":'
            + opener * depth + "1" + closer * depth + "}}}").encode()
    try:
        decode_body(body, allow_batch=False, limits=_LIMITS)
    except McpgateError as exc:
        assert exc.code in ("protocol.nesting_too_deep", "protocol.malformed_json")
        return
    raise AssertionError(f"depth {depth} accepted past the limit of 64")


# --------------------------------------------------------------------------------------------- identity

_XFCC_VALUE = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)


@FAST
@given(st.text(max_size=300))
def test_xfcc_arbitrary_text_only_typed_errors(value: str) -> None:
    try:
        principal_from_xfcc(value, ())
    except IdentityError:
        pass
    try:
        principal_from_xfcc(value, ("spiffe://cluster.local/ns/istio-system/sa/gw",))
    except IdentityError:
        pass


@FAST
@given(st.lists(st.lists(st.tuples(st.sampled_from(["By", "Hash", "URI", "DNS", "Subject", "Cert", "x"]),
                                   _XFCC_VALUE), min_size=1, max_size=4), min_size=1, max_size=4))
def test_xfcc_quoted_values_round_trip(elements: list[list[tuple[str, str]]]) -> None:
    def quote(v: str) -> str:
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'

    header = ",".join(";".join(f"{k}={quote(v)}" for k, v in el) for el in elements)
    try:
        parsed = parse_xfcc(header)
    except IdentityError as exc:
        # Only a repeated single-valued key is refused (never pick one of two).
        assert exc.code == "identity.ambiguous_header"
        return
    assert len(parsed) == len(elements)
    for got, el in zip(parsed, elements, strict=True):
        assert got.by == tuple(v for k, v in el if k == "By")
        assert got.uri == tuple(v for k, v in el if k == "URI")


@FAST
@given(st.text(max_size=300))
def test_linkerd_arbitrary_text_only_typed_errors(value: str) -> None:
    try:
        p = principal_from_linkerd(value, control_plane_ns="linkerd")
    except IdentityError:
        return
    assert isinstance(p, Principal) and p.id


_IDENTITY_NAMES = ["l5d-client-id", "x-forwarded-client-cert", "x-mcpgate-principal", "x-mcpgate-anything",
                   "authorization", "content-type", "x-user"]


def _casing(name: str, mask: int) -> str:
    return "".join(c.upper() if mask >> (i % 16) & 1 else c for i, c in enumerate(name))


@FAST
@given(st.lists(st.tuples(st.sampled_from(_IDENTITY_NAMES), st.integers(0, 2**16 - 1), st.binary(max_size=60)),
                max_size=8),
       st.sampled_from(["linkerd", "xfcc"]))
def test_resolver_strips_identity_headers_from_untrusted_peers(
        headers: list[tuple[str, int, bytes]], source: str) -> None:
    resolver = IdentityResolver.from_config({"sources": [source], "trusted_proxies": ["10.0.0.0/8"],
                                             "upstream_principal_header": "x-mcpgate-principal"})
    hs = [(_casing(n, m).encode(), v) for n, m, v in headers]
    try:
        res = resolver.resolve(Credentials("127.0.0.1", hs))
    except IdentityError:
        return
    assert res.principal.anonymous  # nothing an untrusted peer sends establishes an identity
    left = {k.lower() for k, _ in res.headers}
    assert not left & {b"l5d-client-id", b"x-forwarded-client-cert", b"x-mcpgate-principal", b"x-mcpgate-anything"}


@FAST
@given(st.lists(st.tuples(st.sampled_from(_IDENTITY_NAMES), st.integers(0, 2**16 - 1), st.binary(max_size=80)),
                max_size=6),
       st.sampled_from(["linkerd", "xfcc"]))
def test_resolver_trusted_peer_only_typed_errors(headers: list[tuple[str, int, bytes]], source: str) -> None:
    resolver = IdentityResolver.from_config({"sources": [source]})
    hs = [(_casing(n, m).encode(), v) for n, m, v in headers]
    try:
        res = resolver.resolve(Credentials("127.0.0.1", hs))
    except IdentityError:
        return
    name = b"l5d-client-id" if source == "linkerd" else b"x-forwarded-client-cert"
    copies = [v for k, v in hs if k.lower() == name]
    assert len(copies) <= 1  # two copies never resolve: AmbiguousIdentity
    assert res.principal.anonymous == (not copies)


# --------------------------------------------------------------------------------------------- policy

POLICY = """
apiVersion: mcpgate.dev/v1
kind: Policy
metadata: {name: props}
defaults: {effect: deny}
rules:
  - {id: allow-all-tools, effect: allow, tools: ["*"]}
  - {id: no-delete, effect: deny, tools: ["delete_*"]}
  - id: small-refunds
    effect: allow
    tools: refund
    arguments: {amount: {type: number, maximum: 100}}
  - {id: read-ledger, effect: allow, resources: ["ledger://accounts/{account}"]}
"""
_POLICY = load_policy_text(POLICY)
_STRICT = load_policy_text(POLICY.replace('tools: ["*"]', 'tools: ["get_balance"]'))
_PRINCIPALS = [Principal("anonymous", "anonymous"),
               Principal("spiffe://cluster.local/ns/payments/sa/billing", "linkerd", "cluster.local", "payments",
                         "billing")]


@FAST
@given(st.sampled_from(["tools/call", "resources/read", "prompts/get", "completion/complete", "ping", "x/y",
                        "tools/list", "sampling/createMessage", "notifications/cancelled"]),
       st.one_of(st.none(), st.text(max_size=40), st.sampled_from(["delete_x", "refund", "ledger://accounts/1"])),
       st.one_of(st.none(), _JSON), st.sampled_from(_PRINCIPALS), st.booleans())
def test_policy_never_raises_and_deny_overrides(method: str, target: str | None, arguments: Any,
                                                principal: Principal, notification: bool) -> None:
    kind = {"tools/call": OpKind.TOOL_CALL, "resources/read": OpKind.RESOURCE, "prompts/get": OpKind.PROMPT,
            "tools/list": OpKind.LIST}.get(method, OpKind.OTHER)
    op = Operation(kind, method, MessageKind.NOTIFICATION if notification else MessageKind.REQUEST,
                   Direction.CLIENT_TO_SERVER, None if notification else 1, target=target, arguments=arguments)
    d = _POLICY.decide(principal, op)
    assert d.effect in (Effect.ALLOW, Effect.DENY)
    if method == "tools/call" and target is not None and target.startswith("delete_"):
        assert not d.allowed and "no-delete" in d.rule_ids
    if method in ("x/y", "prompts/get", "sampling/createMessage"):
        assert not d.allowed  # default deny: nothing allows these
    if method == "tools/call" and target == "refund" and isinstance(arguments, dict):
        amount = arguments.get("amount")
        if d.allowed and "small-refunds" in d.rule_ids and "allow-all-tools" not in d.rule_ids:
            assert isinstance(amount, int | float) and amount <= 100


@FAST
@given(st.text(max_size=40))
def test_policy_tool_names_match_exactly(name: str) -> None:
    assume(name != "refund")
    op = Operation(OpKind.TOOL_CALL, "tools/call", MessageKind.REQUEST, Direction.CLIENT_TO_SERVER, 1,
                   target=name, arguments={"amount": 10**9})
    d = _STRICT.decide(_PRINCIPALS[1], op)
    assert d.allowed == (name == "get_balance")
