"""Response relays: a JSON body (inspected whole, rewritten only when a list is filtered) and an SSE stream
(framed event by event, each flushed as soon as it is complete, forwarded byte for byte unless rewritten).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import msgspec

from mcpgate._types import Headers
from mcpgate.errors import McpgateError, ProtocolError, SseEventTooLarge, UpstreamError, UpstreamProtocolError
from mcpgate.protocol.jsonrpc import DecodeLimits, decode_body, encode_message
from mcpgate.protocol.legacy_sse import rewrite_endpoint, session_from_query
from mcpgate.protocol.mcp import classify
from mcpgate.protocol.model import Direction, Message, MessageKind, OpKind, RequestId
from mcpgate.protocol.sse import NEED_DATA, SseEvent, SseFramer, encode_event
from mcpgate.proxy.http import get_header
from mcpgate.proxy.responses import error_body, sse_error_event

if TYPE_CHECKING:
    from mcpgate.proxy.flow import Flow
    from mcpgate.proxy.state import GatewayState

# Answers are inspected, not judged: deep results and big integers (timestamps, snowflake ids) are legitimate.
_RESPONSE_LIMITS = DecodeLimits(max_depth=512, max_batch=10_000, reject_unsafe_integers=False)


_plain_decode = msgspec.json.Decoder().decode


def _plain_answer(body: bytes) -> Message | None:
    """The common answer, read cheaply: one result or error that is only recorded, never judged or rewritten.

    Strict decoding guards what policy decides on; this answer decides nothing (no list to filter, and no
    `"method"` anywhere, so it cannot carry a server→client request). Anything else takes the strict path.
    """
    if b'"method"' in body:
        return None
    try:
        obj = _plain_decode(body)
    except msgspec.DecodeError:
        return None
    if type(obj) is not dict or obj.get("jsonrpc") != "2.0":
        return None
    rid = obj.get("id")
    if type(rid) is not int and type(rid) is not str:
        return None
    if "result" in obj and "error" not in obj:
        return Message(MessageKind.RESULT, body, rid, result=obj["result"])
    error = obj.get("error")
    if type(error) is dict and "result" not in obj:
        return Message(MessageKind.ERROR, body, rid, error=error)
    return None


def _as_dict(msg: Message) -> dict[str, Any]:
    d: dict[str, Any] = {"jsonrpc": "2.0"}
    if msg.id is not None or msg.kind in (MessageKind.RESULT, MessageKind.ERROR):
        d["id"] = msg.id
    if msg.method is not None:
        d["method"] = msg.method
    if msg.params is not None:
        d["params"] = msg.params
    if msg.kind is MessageKind.RESULT:
        d["result"] = msg.result
    if msg.error is not None:
        d["error"] = msg.error
    return d


Out = bytes | Awaitable[bytes] | None


def inspect_message(flow: Flow, msg: Message) -> Out:
    """What to forward for one server message, wherever it arrived: its raw bytes, a rewrite (a filtered
    list), None to drop it (a server→client request or resource update that policy denies), or an awaitable
    of the bytes when a remote engine filters a list."""
    if msg.kind in (MessageKind.RESULT, MessageKind.ERROR):
        return flow.answer_out(msg)
    op = classify(msg, Direction.SERVER_TO_CLIENT)
    if msg.kind is MessageKind.REQUEST:
        return msg.raw if flow.server_request(op) else None
    if op.kind is OpKind.RESOURCE and op.method == "notifications/resources/updated":
        return msg.raw if flow.server_request(op) else None
    return msg.raw


class JsonRelay:
    """An `application/json` answer: buffered to read its outcome (and filter lists), then sent whole.

    Bodies past the inspection limit stream through uninspected, except list results, which are never
    forwarded unfiltered: past the limit they fail closed.
    """

    def __init__(self, flow: Flow, state: GatewayState, status: int, headers: Headers) -> None:
        self.flow, self.state, self.status, self.headers = flow, state, status, headers
        self.parts: list[bytes] = []
        self.size = 0
        self.streaming = False
        self._chunked = False

    def feed(self, data: bytes) -> None:
        if self.streaming:
            self._pass(data)
            return
        self.size += len(data)
        self.parts.append(data)
        if self.size > self.state.settings.max_inspect_bytes:
            if any(ex.operation.kind is OpKind.LIST for ex in self.flow.exchanges):
                self._fail(UpstreamProtocolError(
                    f"list result larger than the inspection limit ({self.state.settings.max_inspect_bytes} "
                    "bytes) cannot be filtered; refusing to forward it unfiltered"))
                return
            self.streaming = True
            clen = get_header(self.headers, b"content-length")
            self.flow._send_head(self.status, self.headers, body_len=int(clen) if clen else None,
                                 chunked=clen is None)
            self._chunked = clen is None
            parts, self.parts = self.parts, []
            for p in parts:
                self._pass(p)

    def _pass(self, data: bytes) -> None:
        if self._chunked:
            self.flow.send_chunk_parts([data])
        else:
            self.flow.client.write(data)

    def _fail(self, err: UpstreamError) -> None:
        self.streaming = True
        self.parts = []
        up = self.flow.upstream
        self.flow.on_upstream_error(err)
        if up is not None:
            up.abandon()

    def end(self) -> bool:
        """Send what is left; False when the answer waits for a remote list filter (sent when it resolves)."""
        if self.streaming:
            if self._chunked:
                self.flow.end_chunks()
            return True
        body = self.parts[0] if len(self.parts) == 1 else b"".join(self.parts)
        self.parts = []
        out = self._inspect(body)
        if isinstance(out, bytes):
            self.flow.send_json(self.status, self.headers, out)
            return True
        self.flow.hold(out, lambda b: self.flow.send_json(self.status, self.headers, b))
        return False

    def _inspect(self, body: bytes) -> bytes | Awaitable[bytes]:
        fast = _plain_answer(body) if not any(ex.operation.kind is OpKind.LIST for ex in self.flow.exchanges) \
            else None
        if fast is not None:
            self.flow.answered(fast)
            return body
        try:
            decoded = decode_body(body, allow_batch=True, limits=_RESPONSE_LIMITS)
        except ProtocolError:
            if any(ex.operation.kind is OpKind.LIST for ex in self.flow.exchanges):
                first = self.flow.exchanges[0].operation.id
                return error_body(UpstreamProtocolError("upstream list result is not valid JSON-RPC"), first)
            return body  # transparent: the client reads the upstream's own (error) body
        msgs = decoded if isinstance(decoded, list) else [decoded]
        pending = [ex.operation.id for ex in self.flow.exchanges]
        outs = [inspect_message(self.flow, m) for m in msgs]
        return _settled(outs, lambda out: self._assemble(body, decoded, msgs, pending, out))

    def _assemble(self, body: bytes, decoded: Message | list[Message], msgs: list[Message],
                  pending: list[RequestId | None], out: list[bytes | None]) -> bytes:
        if all(o is m.raw for o, m in zip(out, msgs, strict=True)):
            return body
        if not isinstance(decoded, list):
            if out[0] is not None:
                return out[0]
            # A JSON answer that is itself a denied server→client request: the client's own request gets
            # an error instead, so it neither acts on the request nor waits forever.
            return error_body(UpstreamProtocolError(
                "the upstream answered with a server request that policy denies"), pending[0] if pending else None)
        # Batch elements carry no raw bytes of their own: unchanged ones are re-encoded from the decoded form.
        parts = [o or encode_message(_as_dict(m)) for o, m in zip(out, msgs, strict=True) if o is not None]
        return b"[" + b",".join(parts) + b"]"


class SseRelay:
    """A `text/event-stream` answer: events framed on bytes, inspected, flushed as soon as complete."""

    def __init__(self, flow: Flow, state: GatewayState, scope: str) -> None:
        self.flow, self.state = flow, state
        self.framer = SseFramer(state.settings.max_sse_event_bytes)
        self.resumable = False
        self.broken = False
        self._eof = False

    def feed(self, data: bytes) -> None:
        if self.broken:
            return
        self.framer.receive_data(data)
        if not self.flow.holding:  # events after a held one wait in the framer, in order
            self._drain()

    def _drain(self) -> None:
        """Forward every event the framer has completed, as one write; stop at one that must wait."""
        out: list[bytes] = []
        try:
            while True:
                ev = self.framer.next_event()
                if ev is NEED_DATA:
                    break
                assert isinstance(ev, SseEvent)
                fwd = self._event(ev)
                if fwd is not None and not isinstance(fwd, bytes):
                    if out:
                        self.flow.send_chunk_parts(out)
                    self.flow.hold(fwd, self._released)
                    return
                if fwd:
                    out.append(fwd)
        except (SseEventTooLarge, ProtocolError) as err:
            self.broken = True
            if out:
                self.flow.send_chunk_parts(out)
            self.flow.on_upstream_error(UpstreamProtocolError(f"upstream SSE stream broken: {err.message}"))
            up = self.flow.upstream
            if up is not None:
                up.abandon()
            return
        if out:
            self.flow.send_chunk_parts(out)

    def _released(self, fwd: bytes) -> None:
        if fwd:
            self.flow.send_chunk_parts([fwd])
        if not self.broken:
            self._drain()

    def _event(self, ev: SseEvent) -> bytes | Awaitable[bytes] | None:
        if ev.id:
            self.resumable = True
        if not ev.has_fields or not ev.data:
            return ev.raw  # comments, keep-alives, priming events: as they are
        if ev.event == "endpoint":
            return self._endpoint(ev)
        if ev.event not in (None, "message"):
            return ev.raw
        try:
            decoded = decode_body(ev.data.encode(), allow_batch=True, limits=_RESPONSE_LIMITS)
        except ProtocolError:
            # What we cannot read we cannot police: a client SDK might read it differently. Drop it.
            self.state.counters.upstream_errors += 1
            return None
        msgs = decoded if isinstance(decoded, list) else [decoded]
        outs = [self._message(m) for m in msgs]
        return _settled(outs, lambda out: self._reframe(ev, decoded, msgs, out))

    def _reframe(self, ev: SseEvent, decoded: Message | list[Message], msgs: list[Message],
                 out: list[bytes | None]) -> bytes:
        assert ev.data is not None
        rewritten = False
        keep: list[bytes] = []
        for msg, new in zip(msgs, out, strict=True):
            if new is None:
                rewritten = True
            elif new is not msg.raw:
                rewritten = True
                keep.append(new)
            else:
                keep.append(msg.raw or ev.data.encode())
        if not rewritten:
            return ev.raw
        if not keep:
            return b""
        data = keep[0] if not isinstance(decoded, list) else b"[" + b",".join(keep) + b"]"
        return encode_event(data=data.decode(), event=ev.event, id=ev.id, retry=ev.retry)

    def _message(self, msg: Message) -> Out:
        return inspect_message(self.flow, msg)

    def _endpoint(self, ev: SseEvent) -> bytes:
        assert ev.data is not None
        s = self.state.settings
        new = rewrite_endpoint(ev.data, s.public_base_path, s.public_base_path)
        path, _, query = new.partition("?")
        if path and len(self.state.legacy_paths) < 64:
            # The message endpoint the server named becomes forwardable (only the MCP endpoints are).
            self.state.legacy_paths.add(path.encode("latin-1"))
        sid = session_from_query(query) if query else None
        if sid is not None:
            self.flow.learn_legacy_session(sid)
        if new == ev.data:
            return ev.raw
        return encode_event(data=new, event=ev.event, id=ev.id, retry=ev.retry)

    def end(self) -> bool:
        # A trailing lone CR completes an event only at EOF. An incomplete tail is dropped, as every
        # conforming client would drop it: it was never inspected.
        if not self.broken:
            if not self._eof:
                self._eof = True
                self.framer.receive_eof()
            self._drain()
            if self.flow.holding:  # the flow calls end() again once the held event is out
                return False
        self.flow.end_chunks()
        return True

    def emit_denials(self, denials: list[bytes]) -> None:
        self.flow.send_chunk_parts([b"event: message\ndata: " + d + b"\n\n" for d in denials])

    def error_event(self, err: McpgateError, request_id: RequestId | None) -> bytes:
        return sse_error_event(err, request_id)

    def flush_raw(self, events: list[bytes]) -> None:
        if events:
            self.flow.send_chunk_parts(events)


def _settled(outs: list[Out], assemble: Callable[[list[bytes | None]], bytes]) -> bytes | Awaitable[bytes]:
    """`assemble(outs)` now when every message's output is known, else an awaitable of it."""
    if not any(inspect.isawaitable(o) for o in outs):
        return assemble(outs)  # type: ignore[arg-type]
    return _assemble_later(outs, assemble)


async def _assemble_later(outs: list[Out], assemble: Callable[[list[bytes | None]], bytes]) -> bytes:
    done = [await o if inspect.isawaitable(o) else o for o in outs]
    return assemble(done)
