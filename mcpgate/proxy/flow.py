"""One HTTP request through the gateway: classify, identify, decide, forward, relay and inspect the answer.

    POST  body ─▶ strict decode ─▶ classify ─▶ identity ─▶ policy ─┬─ deny ─▶ JSON-RPC error (never upstream)
                                                                   └─ allow ─▶ upstream ─▶ JSON | SSE relay
    GET/DELETE ─▶ identity + session checks ─▶ upstream ─▶ SSE relay (responses, server requests, endpoint)

Every message that asks for an answer becomes an `Exchange`, finished once wherever its answer arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from mcpgate._types import Headers
from mcpgate.errors import (
    JSONRPC_INVALID_PARAMS,
    AuditUnavailable,
    BatchNotAllowed,
    HeaderMismatch,
    IdentityError,
    InvalidParams,
    InvalidSession,
    McpgateError,
    OriginNotAllowed,
    PolicyDenied,
    ProtocolError,
    SessionPrincipalMismatch,
    UnknownPath,
    UnsupportedContentType,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamTimeout,
)
from mcpgate.exchange import ConnInfo, Exchange, ListVerdict, RequestInfo
from mcpgate.policy.model import Decision, Effect
from mcpgate.protocol.headers import check_routing_headers
from mcpgate.protocol.jsonrpc import decode_body, encode_error, encode_message
from mcpgate.protocol.legacy_sse import session_from_query
from mcpgate.protocol.mcp import classify, classify_response
from mcpgate.protocol.model import Direction, Message, MessageKind, Operation, OpKind, Outcome, RequestId
from mcpgate.proxy.client import ClientConnection, Request
from mcpgate.proxy.http import LAST_CHUNK, get_header, request_head, response_head
from mcpgate.proxy.relay import JsonRelay, SseRelay
from mcpgate.proxy.responses import plain_response, render_error
from mcpgate.proxy.state import GatewayState
from mcpgate.proxy.upstream import UpstreamConnection

_SESSION = b"mcp-session-id"
_VERSION = b"mcp-protocol-version"
_ALLOWED_METHODS = frozenset({b"GET", b"POST", b"DELETE", b"OPTIONS"})
_NO_BODY_STATUSES = frozenset({204, 304})
_VISIBLE_ASCII = re.compile(rb"[\x21-\x7e]+")
_TRACE_HEADERS = frozenset({b"traceparent", b"tracestate"})


class Flow:
    """Answers one client request. Callbacks only: no task per request on the hot path."""

    def __init__(self, state: GatewayState, client: ClientConnection, conn: ConnInfo, req: Request) -> None:
        self.state = state
        self.client = client
        self.conn = conn
        self.req = req
        self.info: RequestInfo | None = None
        self.principal: Any = None
        self.session_id: str | None = None
        self.version: str | None = None
        self.scope = ""
        self.exchanges: list[Exchange] = []        # requests this POST forwarded that await answers
        self.denials: list[bytes] = []             # JSON-RPC errors for denied batch elements
        self.decision_ids: list[str] = []          # every decision this request carried (response header)
        self.upstream: UpstreamConnection | None = None
        self.relay: JsonRelay | SseRelay | None = None
        self.head_sent = False
        self.done = False
        self.deadline: float | None = None  # upstream must answer (headers) by then; checked by tick()
        self.last_activity = 0.0            # last upstream bytes (idle_timeout_s, when set)
        self._keep_alive = req.keep_alive and not state.draining
        self._is_stateless = False
        self.fwd_headers: Headers = req.headers
        self._pending_task: asyncio.Future[Any] | None = None
        # An answer waiting for a remote list filter (OPA): upstream reading pauses, and what arrives after
        # it (events, the end, an error) waits in `_after_hold`, so the client sees everything in order.
        self._hold: asyncio.Future[Any] | None = None
        self._after_hold: list[Callable[[], None]] = []
        self._client_paused = False
        self._gone = False
        self.request_id: RequestId | None = None  # the id to answer with when we answer in the server's place

    # ------------------------------------------------------------------ start
    def start(self) -> None:
        req = self.req
        try:
            if req.method not in _ALLOWED_METHODS:
                self._respond(plain_response(405, keep_alive=self._keep_alive,
                                             headers=[(b"allow", b"GET, POST, DELETE")]))
                return
            if not req.target.startswith(b"/"):
                raise UnknownPath("only origin-form request targets (`/path`) are accepted")
            origin = get_header(req.headers, b"origin")
            if origin is not None and origin not in self.state.settings.allowed_origins:
                raise OriginNotAllowed(f"origin `{origin.decode('latin-1')}` is not allowed")
            path = req.target.split(b"?", 1)[0]
            if req.method == b"GET":
                # RFC 9728 metadata is how a caller without credentials learns where to get them: it is
                # answered before identity and sessions are looked at, and nothing is forwarded.
                doc = self.state.hooks.well_known(path.decode("latin-1"))
                if doc is not None:
                    self._respond(plain_response(200, doc, keep_alive=self._keep_alive,
                                                 headers=[(b"content-type", b"application/json")]))
                    return
            self._read_session()
            self.info = RequestInfo(self.conn, req.method.decode(), req.target.decode("latin-1"),
                                    req.headers, self.session_id, self.version, self._transport_kind())
            identified = self.state.hooks.identify(self.info)
            self.principal = identified.principal
            self.fwd_headers = identified.headers
            if self.session_id is not None:
                self._check_session_principal()
            if not self.state.path_allowed(path):
                # Only the MCP endpoint is forwarded: anything else on the server is not ours to expose.
                raise UnknownPath(f"`{path.decode('latin-1')}` is not an MCP endpoint of this gateway")
            if req.method == b"POST":
                self._start_post()
            else:
                self._check_ready()
                self._forward(req.body)
        except McpgateError as err:
            self._fail_before_forward(err)

    def _check_ready(self) -> None:
        """Fail closed when a required sink (the audit log) cannot record what we would forward."""
        reason = self.state.hooks.ready()
        if reason is not None:
            raise AuditUnavailable(f"refusing to forward: {reason}")

    def _transport_kind(self) -> str:
        path = self.req.target.split(b"?", 1)[0]
        if b"session_id=" in self.req.target or b"sessionId=" in self.req.target or path.endswith(b"/sse"):
            return "sse-legacy"
        return "streamable-http"

    def _read_session(self) -> None:
        """The session a request belongs to, refusing every form another parser could read differently."""
        sids = [v for k, v in self.req.headers if k == _SESSION]
        if len(sids) > 1:
            raise InvalidSession("more than one `Mcp-Session-Id` header")
        sid = sids[0] if sids else None
        if sid is not None and not _VISIBLE_ASCII.fullmatch(sid):
            raise InvalidSession("`Mcp-Session-Id` must be visible ASCII (0x21-0x7E)")
        _, _, query = self.req.target.partition(b"?")
        legacy: str | None = None
        if b"session_id=" in query or b"sessionId=" in query:
            legacy = session_from_query(query.decode("latin-1"))
            if legacy is None:
                # Named twice, or under both names: servers differ on which one wins.
                raise InvalidSession("ambiguous legacy session in the query string")
            if sid is not None:
                raise InvalidSession("both `Mcp-Session-Id` and a legacy `session_id` query were given")
            self.session_id = legacy
            self.scope = "sse:" + legacy
        elif sid is not None:
            self.session_id = sid.decode("latin-1")
            self.scope = "s:" + self.session_id
        hv = get_header(self.req.headers, _VERSION)
        if hv is not None:
            self.version = hv.decode("latin-1")
        elif self.session_id is not None:
            s = self.state.sessions.get(self.session_id)
            if s is not None:
                self.version = s.protocol_version
        if not self.scope:
            # Stateless exchange: answers can only arrive on this request's own response.
            self._is_stateless = True
            self.scope = "x:" + self.state.ids.scope()

    def _check_session_principal(self) -> None:
        assert self.session_id is not None
        s = self.state.sessions.get(self.session_id)
        pid = getattr(self.principal, "id", None)
        if s is not None and s.principal_id is not None and pid is not None and s.principal_id != pid:
            raise SessionPrincipalMismatch(f"session `{self.session_id}` belongs to another principal")

    # ------------------------------------------------------------------ POST
    def _start_post(self) -> None:
        req = self.req
        ctype = get_header(req.headers, b"content-type") or b""
        if not ctype[:16].lower().startswith(b"application/json"):
            raise UnsupportedContentType("POST body must be `application/json`")
        if sum(1 for k, _ in req.headers if k == _VERSION) > 1:
            # Before anything reads the version (it decides whether batches are allowed).
            raise HeaderMismatch("more than one `MCP-Protocol-Version` header")
        allow_batch = self.version in (None, "2025-03-26")
        decoded = decode_body(req.body, allow_batch=allow_batch, limits=self.state.request_limits)
        msgs = decoded if isinstance(decoded, list) else [decoded]
        if not msgs:
            raise BatchNotAllowed("empty batch")
        if not isinstance(decoded, list):
            self.request_id = decoded.id if decoded.kind is MessageKind.REQUEST else None
        ops = [self._classify_checked(m) for m in msgs]
        if not isinstance(decoded, list):
            # Duplicated routing headers are refused in every version; values are checked for modern ones.
            check_routing_headers(req.headers, decoded)
        self._check_ready()
        assert self.info is not None
        hooks, principal, info = self.state.hooks, self.principal, self.info
        verdicts = [None if op.message_kind in (MessageKind.RESULT, MessageKind.ERROR)
                    else hooks.decide(principal, op, info) for op in ops]
        if all(v is None or isinstance(v, Decision) for v in verdicts):
            self._apply(decoded, msgs, ops, verdicts)  # type: ignore[arg-type]
            return
        # A remote policy engine (OPA) answers later: resume when every verdict is in.
        task = asyncio.ensure_future(_gather(verdicts))
        self._pending_task = task  # the loop keeps only weak references to tasks
        task.add_done_callback(lambda t: self._decided(decoded, msgs, ops, t))

    def _decided(self, decoded: Message | list[Message], msgs: list[Message], ops: list[Operation],
                 task: asyncio.Future[list[Decision | None]]) -> None:
        if self.done:
            return  # the client went away while policy was being asked
        try:
            verdicts = task.result()
        except Exception as exc:  # an erroring policy never grants
            verdicts = [None if op.message_kind in (MessageKind.RESULT, MessageKind.ERROR)
                        else _error_decision(op, exc) for op in ops]
        try:
            self._apply(decoded, msgs, ops, verdicts)
        except McpgateError as err:
            self._fail_before_forward(err)

    def _apply(self, decoded: Message | list[Message], msgs: list[Message], ops: list[Operation],
               verdicts: list[Decision | None]) -> None:
        """Record each decision, then forward what is allowed and answer what is not."""
        verdicts = [self._task_guard(op, v) for op, v in zip(ops, verdicts, strict=True)]
        exs = [self._record(op, v) if v is not None else None for op, v in zip(ops, verdicts, strict=True)]
        if not isinstance(decoded, list):
            ex, op = exs[0], ops[0]
            if ex is not None and not ex.decision.allowed:
                self._deny(ex, op)
                return
            self._forward(self.req.body)
            return
        keep: list[Message] = []
        for msg, op, ex in zip(msgs, ops, exs, strict=True):
            if ex is not None and not ex.decision.allowed:
                self._finish_denied(ex, op)
                if op.id is not None:
                    self.denials.append(_denial_body(ex, op))
                continue
            keep.append(msg)
        if not keep:
            body = b"[" + b",".join(self.denials) + b"]" if self.denials else b""
            if body:
                self._respond(response_head(200, [], body_len=len(body), chunked=False,
                                            keep_alive=self._keep_alive,
                                            extra=[(b"content-type", b"application/json")]) + body)
            else:
                self._respond(plain_response(202, keep_alive=self._keep_alive))
            return
        self._forward(self.req.body if len(keep) == len(msgs) else _reencode_batch(keep))

    def _task_guard(self, op: Operation, verdict: Decision | None) -> Decision | None:
        """`tasks/*` on a task another principal created is refused as if the task did not exist."""
        if verdict is None or op.kind is not OpKind.TASK or op.target is None:
            return verdict
        owner = self.state.task_owners.get(op.target)
        if owner is None or owner == getattr(self.principal, "id", None):
            return verdict
        return Decision(Effect.DENY, ("builtin:task-owner",), verdict.revision,
                        f"task `{op.target}` belongs to another principal", hidden=True)

    def _classify_checked(self, msg: Message) -> Operation:
        op = classify(msg, Direction.CLIENT_TO_SERVER)
        if op.invalid:
            raise InvalidParams(op.invalid)
        if op.message_kind in (MessageKind.RESULT, MessageKind.ERROR):
            self._client_answer(msg, op)
        return op

    def _record(self, op: Operation, decision: Decision) -> Exchange:
        """One client message with its decision becomes an Exchange; requests wait for their answer."""
        assert self.info is not None
        st = self.state
        ex = Exchange(st.ids.next(), op, self.info, self.principal)
        ex.t_start = st.clock()
        ex.bytes_in = len(self.req.body)
        ex.decision = decision
        st.hooks.started(ex)
        self.decision_ids.append(ex.decision_id)
        if decision.allowed and op.message_kind is MessageKind.REQUEST and op.id is not None:
            if not st.pending.add(self.scope, Direction.CLIENT_TO_SERVER, op.id, ex):
                # Same id already pending in this session: the answer could not be attributed; refuse.
                ex.decision = _duplicate_id_decision(ex)
                return ex
            self.exchanges.append(ex)
        elif decision.allowed and op.message_kind is MessageKind.NOTIFICATION:
            self._notification_forwarded(ex, op)
        return ex

    def _notification_forwarded(self, ex: Exchange, op: Operation) -> None:
        if op.method == "notifications/cancelled" and op.target is not None:
            pend = self._pop_pending_by_text(op.target)
            if pend is not None:
                self._finish(pend, Outcome.CANCELLED, None)
        ex.outcome = Outcome.OK
        ex.t_end = self.state.clock()
        self.state.hooks.finished(ex)

    def _pop_pending_by_text(self, text_id: str) -> Exchange | None:
        for candidate in (text_id, _int_or_none(text_id)):
            if candidate is None:
                continue
            ex = self.state.pending.pop(self.scope, Direction.CLIENT_TO_SERVER, candidate)
            if ex is not None:
                return ex
        return None

    def _client_answer(self, msg: Message, op: Operation) -> None:
        """The client answers a server→client request (sampling, elicitation, roots)."""
        if msg.id is None:
            return
        ex = self.state.pending.pop(self.scope, Direction.SERVER_TO_CLIENT, msg.id)
        if ex is not None:
            done = classify_response(msg, ex.operation)
            self._finish(ex, done.outcome or Outcome.OK, done.error_code)

    def _deny(self, ex: Exchange, op: Operation) -> None:
        self._finish_denied(ex, op)
        if op.message_kind is MessageKind.NOTIFICATION or op.id is None:
            # A denied notification is dropped with 202: Python 1.x clients die on a non-2xx here.
            self._respond(plain_response(202, keep_alive=self._keep_alive))
            return
        body = _denial_body(ex, op)
        self._respond(response_head(200, [], body_len=len(body), chunked=False, keep_alive=self._keep_alive,
                                    extra=[(b"content-type", b"application/json"),
                                           (b"x-mcpgate-decision-id", ex.decision_id.encode())]) + body)

    def _finish_denied(self, ex: Exchange, op: Operation) -> None:
        self.state.counters.denied += 1
        if op.id is not None:
            self.state.pending.pop(self.scope, Direction.CLIENT_TO_SERVER, op.id)
        if ex in self.exchanges:
            self.exchanges.remove(ex)
        ex.outcome = Outcome.DENIED
        ex.error_message = ex.decision.reason
        if op.id is not None and op.message_kind is MessageKind.REQUEST:
            # The code the client is answered with (see _denial_body): metrics, spans and audit carry it.
            ex.error_code = JSONRPC_INVALID_PARAMS if ex.decision.hidden else PolicyDenied.jsonrpc_code
        ex.t_end = self.state.clock()
        self.state.hooks.finished(ex)

    # ------------------------------------------------------------------ forward
    def _forward(self, body: bytes) -> None:
        st = self.state
        s = st.settings
        req = self.req
        drop = s.strip_upstream_headers
        extra: list[tuple[bytes, bytes]] = []
        if self.exchanges:
            extra = st.hooks.trace_headers(self.exchanges[0])
            if extra:
                drop = drop | _TRACE_HEADERS
        head = request_head(req.method, req.target, self.fwd_headers, s.upstream_host_header,
                            len(body) if (body or req.method == b"POST") else None, extra=extra, drop=drop)
        parts = [head, body] if body else [head]
        st.counters.bytes_c2s += len(head) + len(body)
        task = st.pool.acquire(lambda conn: self._send(conn, parts), self._upstream_failed_early)
        if task is not None:
            self._pending_task = task  # the loop keeps only weak references to tasks
        if s.response_timeout_s > 0:
            self.deadline = time.monotonic() + s.response_timeout_s

    def _send(self, conn: UpstreamConnection, parts: list[bytes]) -> None:
        if self.done:
            st = self.state
            st.pool.release(conn)
            return
        self.upstream = conn
        conn.send(self, parts)
        if self.client.write_paused:
            conn.pause_reading()

    def _upstream_failed_early(self, err: UpstreamError) -> None:
        self.on_upstream_error(err)

    def tick(self, now: float) -> None:
        if self.deadline is not None and now > self.deadline:
            self._response_timeout()
            return
        idle = self.state.settings.idle_timeout_s
        if idle > 0 and self.last_activity and not self.done and now - self.last_activity > idle:
            if self.upstream is not None:
                self.upstream.abandon()
            self.on_upstream_error(UpstreamTimeout(f"upstream sent nothing for {idle}s mid-response"))

    def _response_timeout(self) -> None:
        self.deadline = None
        if not self.head_sent and not self.done:
            if self.upstream is not None:
                self.upstream.abandon()
            self.on_upstream_error(UpstreamTimeout(
                f"upstream sent no response within {self.state.settings.response_timeout_s}s"))

    # ------------------------------------------------------------------ upstream sink
    def on_upstream_head(self, status: int, headers: Headers) -> None:
        self.deadline = None
        self.last_activity = time.monotonic()
        now = self.state.clock()
        for ex in self.exchanges:
            ex.t_first_byte = now
        self._learn_session(headers)
        ctype = (get_header(headers, b"content-type") or b"").lower()
        bodyless = status in _NO_BODY_STATUSES or self.req.method == b"HEAD"
        if ctype.startswith(b"text/event-stream") and 200 <= status < 300:
            self.relay = SseRelay(self, self.state, self.scope)
            self._send_head(status, headers, body_len=None, chunked=True)
            self.state.counters.open_streams += 1
            if self.denials:
                self.relay.emit_denials(self.denials)
        elif ctype.startswith(b"application/json") and not bodyless:
            self.relay = JsonRelay(self, self.state, status, headers)
        else:
            clen = get_header(headers, b"content-length")
            if bodyless:
                self._send_head(status, headers, body_len=0, chunked=False)
            elif clen is not None:
                self._send_head(status, headers, body_len=int(clen), chunked=False)
            else:
                self._send_head(status, headers, body_len=None, chunked=True)
            if status == 202 and self.scope.startswith("sse:"):
                # HTTP+SSE (2024-11-05): the answer will arrive on the session's GET stream; it stays
                # pending in the correlation table and is finished there.
                self.exchanges.clear()
            elif status >= 300 or status == 202:
                for ex in list(self.exchanges):
                    self._release(ex)
                    ex.error_message = f"upstream answered HTTP {status} without a JSON-RPC response"
                    self._finish(ex, Outcome.UPSTREAM_FAILED, None)

    def on_upstream_body(self, data: bytes) -> None:
        if self.done:
            return
        self.state.counters.bytes_s2c += len(data)
        if self.state.settings.idle_timeout_s > 0:
            self.last_activity = time.monotonic()
        for ex in self.exchanges:
            ex.bytes_out += len(data)
        if self.relay is not None:
            self.relay.feed(data)
        elif self._chunked:
            self.client.writelines([b"%x\r\n" % len(data), data, b"\r\n"])
        else:
            self.client.write(data)

    def on_upstream_end(self) -> None:
        if self.done:
            return
        self.upstream = None
        if self._hold is not None:
            self._after_hold.append(self.on_upstream_end)
            return
        relay = self.relay
        if relay is not None:
            if not relay.end():  # the answer waits for a remote list filter: finish after it
                self._after_hold.append(self.on_upstream_end if isinstance(relay, SseRelay)
                                        else self._upstream_ended)
                return
        elif self._chunked:
            self.client.write(LAST_CHUNK)
        self._upstream_ended()

    def _upstream_ended(self) -> None:
        relay = self.relay
        if isinstance(relay, SseRelay):
            self.state.counters.open_streams -= 1
        self._orphans(Outcome.UPSTREAM_FAILED, "upstream ended the response without answering")
        if self.req.method == b"DELETE" and self.session_id is not None:
            self._session_ended()
        self._complete()

    def on_upstream_error(self, err: UpstreamError) -> None:
        if self.done:
            return
        if self._hold is not None:
            self.upstream = None
            self._after_hold.append(lambda: self.on_upstream_error(err))
            return
        counters = self.state.counters
        counters.upstream_errors += 1
        kind = err.code.removeprefix("upstream.")
        counters.upstream_error_kinds[kind] = counters.upstream_error_kinds.get(kind, 0) + 1
        self.deadline = None
        self.upstream = None
        if not self.head_sent:
            first = self.exchanges[0] if self.exchanges else None
            rid = first.operation.id if first is not None else None
            self._orphans(Outcome.UPSTREAM_FAILED, err.message)
            self._respond(render_error(err, request_id=rid, protocol_version=self.version,
                                       keep_alive=self._keep_alive))
            return
        if isinstance(self.relay, SseRelay):
            self.state.counters.open_streams -= 1
            # Mid-stream failure: each request still waiting here gets an error event, then a clean end.
            # The client now holds an answer for those ids, so they are finished here, resumable or not.
            waiting = list(self.exchanges)
            self.relay.flush_raw([self.relay.error_event(err, ex.operation.id) for ex in waiting])
            self.client.write(LAST_CHUNK)
            for ex in waiting:
                self._release(ex)
                ex.error_message = err.message
                self._finish(ex, Outcome.UPSTREAM_FAILED, err.jsonrpc_code)
            self._complete()
            return
        # A plain body was cut short: the client must see a broken response, not a complete one.
        self._orphans(Outcome.UPSTREAM_FAILED, err.message)
        self._keep_alive = False
        self._complete()

    # ------------------------------------------------------------------ relay helpers
    _chunked = False

    def _send_head(self, status: int, headers: Headers, *, body_len: int | None, chunked: bool,
                   extra: list[tuple[bytes, bytes]] | None = None, body: bytes = b"") -> None:
        self._chunked = chunked and self.req.http_11
        if chunked and not self.req.http_11:
            self._keep_alive = False
        ex_headers = extra or []
        if self.decision_ids:
            ex_headers = [*ex_headers, (b"x-mcpgate-decision-id", ",".join(self.decision_ids).encode())]
        head = response_head(status, headers, body_len=body_len, chunked=self._chunked,
                             keep_alive=self._keep_alive, extra=ex_headers)
        if body:
            # One syscall for head and body (a second write costs a loopback wake-up of its own).
            self.client.writelines([head, body])
        else:
            self.client.write(head)
        self.head_sent = True

    def send_json(self, status: int, headers: Headers, body: bytes) -> None:
        """JsonRelay: the complete (possibly rewritten) body is ready: head and body in one write."""
        self._send_head(status, headers, body_len=len(body), chunked=False, body=body)

    def send_chunk_parts(self, parts: list[bytes]) -> None:
        """SseRelay: forward event bytes now (each event as soon as it is complete)."""
        if self._chunked:
            n = sum(len(p) for p in parts)
            if n:
                self.client.writelines([b"%x\r\n" % n, *parts, b"\r\n"])
        else:
            self.client.writelines(parts)

    def end_chunks(self) -> None:
        if self._chunked:
            self.client.write(LAST_CHUNK)

    def answered(self, msg: Message) -> Exchange | None:
        """A response arrived for one of this client's requests (on this stream or a resumed one)."""
        got = self._take_answer(msg)
        if got is None:
            return None
        ex, outcome, code = got
        self._finish(ex, outcome, code)
        return ex

    def answer_out(self, msg: Message) -> bytes | Awaitable[bytes]:
        """What to forward for one response message: its own bytes, a filtered list, a denial that withholds
        the list, or (remote list filter) an awaitable of one of those. The exchange finishes once known."""
        got = self._take_answer(msg)
        if got is None:
            return msg.raw
        ex, outcome, code = got
        if ex.operation.kind is not OpKind.LIST or not isinstance(msg.result, dict) or self.info is None:
            self._finish(ex, outcome, code)
            return msg.raw
        verdict = self.state.hooks.filter_result(ex.principal, ex.operation, msg.result, self.info)
        if verdict is None or isinstance(verdict, dict | Decision):
            return self._list_out(ex, msg, outcome, code, verdict)
        return self._list_later(ex, msg, outcome, code, verdict)

    async def _list_later(self, ex: Exchange, msg: Message, outcome: Outcome, code: int | None,
                          pending: Awaitable[ListVerdict]) -> bytes:
        try:
            verdict = await pending
        except Exception as exc:  # an erroring filter never shows the list
            verdict = _error_decision(ex.operation, exc)
        if self._gone:
            ex.error_message = "client disconnected"
            self._finish(ex, Outcome.CANCELLED, None)
            return b""
        return self._list_out(ex, msg, outcome, code, verdict)

    def _list_out(self, ex: Exchange, msg: Message, outcome: Outcome, code: int | None,
                  verdict: ListVerdict) -> bytes:
        if isinstance(verdict, Decision):
            # The list is withheld (fail closed): the exchange is recorded as denied by that rule.
            ex.decision = verdict
            ex.error_message = verdict.reason
            self._finish(ex, Outcome.DENIED, PolicyDenied.jsonrpc_code)
            return _denial_body(ex, ex.operation)
        self._finish(ex, outcome, code)
        if verdict is None:
            return msg.raw
        return encode_message({"jsonrpc": "2.0", "id": msg.id, "result": verdict})

    def _take_answer(self, msg: Message) -> tuple[Exchange, Outcome, int | None] | None:
        if msg.id is None:
            return None
        ex = self.state.pending.pop(self.scope, Direction.CLIENT_TO_SERVER, msg.id)
        if ex is None:
            return None
        if ex in self.exchanges:
            self.exchanges.remove(ex)
        done = classify_response(msg, ex.operation)
        if done.task_id is not None:
            self.state.own_task(done.task_id, ex.principal.id)
        if ex.operation.method == "initialize" and isinstance(msg.result, dict):
            pv = msg.result.get("protocolVersion")
            if isinstance(pv, str) and self.session_id is not None:
                self.state.session(self.session_id).protocol_version = pv
        ex.error_message = (msg.error or {}).get("message") if msg.error else None
        return ex, done.outcome or Outcome.OK, done.error_code

    # ------------------------------------------------------------------ holding an answer
    @property
    def holding(self) -> bool:
        return self._hold is not None

    def hold(self, pending: Awaitable[bytes], then: Callable[[bytes], None]) -> None:
        """Wait for `pending` (a remote list filter) with upstream reading paused, then `then(result)`; what
        arrived meanwhile (end, error) runs after it, in order."""
        fut = asyncio.ensure_future(pending)
        self._hold = fut  # also the strong reference the loop does not keep
        self._sync_reading()
        fut.add_done_callback(lambda f: self._released(f, then))

    def _released(self, fut: asyncio.Future[bytes], then: Callable[[bytes], None]) -> None:
        self._hold = None
        if self.done:
            return
        try:
            value = fut.result()
        except Exception as exc:  # not expected (`_list_later` catches); never forward unfiltered
            self.on_upstream_error(UpstreamProtocolError(f"list filtering failed: {type(exc).__name__}"))
            return
        then(value)
        while self._hold is None and self._after_hold and not self.done:
            self._after_hold.pop(0)()
        self._sync_reading()

    def _sync_reading(self) -> None:
        up = self.upstream
        if up is None:
            return
        if self._client_paused or self._hold is not None:
            up.pause_reading()
        else:
            up.resume_reading()

    def server_request(self, op: Operation) -> bool:
        """A server→client request on a stream: policy decides whether the client sees it."""
        assert self.info is not None
        st = self.state
        ex = Exchange(st.ids.next(), op, self.info, self.principal)
        ex.t_start = st.clock()
        verdict = st.hooks.decide(self.principal, op, self.info)
        # Server→client requests are decided on the spot (events keep their order); hooks answer them
        # synchronously even with a remote policy engine.
        ex.decision = verdict if isinstance(verdict, Decision) else _error_decision(op, TypeError("async verdict"))
        if not isinstance(verdict, Decision):
            _discard(verdict)
        st.hooks.started(ex)
        if not ex.decision.allowed:
            ex.outcome = Outcome.DENIED
            ex.t_end = st.clock()
            st.hooks.finished(ex)
            return False
        if op.id is not None:
            st.pending.add(self.scope, Direction.SERVER_TO_CLIENT, op.id, ex)
        return True

    def learn_legacy_session(self, session_id: str) -> None:
        """HTTP+SSE: the `endpoint` event names the session the POSTs will carry."""
        self.session_id = session_id
        self.scope = "sse:" + session_id
        sess = self.state.session(session_id)
        sess.protocol_version = sess.protocol_version or "2024-11-05"
        if sess.principal_id is None:
            sess.principal_id = getattr(self.principal, "id", None)

    # ------------------------------------------------------------------ endings
    def _learn_session(self, headers: Headers) -> None:
        sid = get_header(headers, _SESSION)
        if sid is None or self.req.method != b"POST":
            return
        session_id = sid.decode("latin-1")
        sess = self.state.session(session_id)
        if sess.principal_id is None:
            sess.principal_id = getattr(self.principal, "id", None)
        if self.session_id is None:
            # The initialize exchange was registered under a stateless scope; move it to the session.
            old_scope = self.scope
            self.session_id = session_id
            self.scope = "s:" + session_id
            self._is_stateless = False
            for ex in self.exchanges:
                if ex.operation.id is not None and self.state.pending.pop(
                        old_scope, Direction.CLIENT_TO_SERVER, ex.operation.id) is not None:
                    self.state.pending.add(self.scope, Direction.CLIENT_TO_SERVER, ex.operation.id, ex)

    def _orphans(self, outcome: Outcome, why: str) -> None:
        """Requests whose answer can no longer arrive (or, for sessions, not on this stream)."""
        for ex in list(self.exchanges):
            if not self._is_stateless and isinstance(self.relay, SseRelay) and self.relay.resumable:
                # The client may resume this stream with Last-Event-ID; the answer can still come.
                continue
            self._release(ex)
            ex.error_message = why
            self._finish(ex, outcome, None)

    def _release(self, ex: Exchange) -> None:
        if ex.operation.id is not None:
            self.state.pending.pop(self.scope, Direction.CLIENT_TO_SERVER, ex.operation.id)
        if ex in self.exchanges:
            self.exchanges.remove(ex)

    def _finish(self, ex: Exchange, outcome: Outcome, code: int | None) -> None:
        ex.outcome = outcome
        ex.error_code = code
        ex.t_end = self.state.clock()
        self.state.hooks.finished(ex)

    def _session_ended(self) -> None:
        assert self.session_id is not None
        for ex in self.state.pending.drop_scope(self.scope):
            ex.error_message = "session terminated"
            self._finish(ex, Outcome.CANCELLED, None)
        self.state.sessions.pop(self.session_id, None)

    def _fail_before_forward(self, err: McpgateError) -> None:
        if isinstance(err, ProtocolError):
            self.state.counters.rejected += 1
        rid = self.request_id
        extra: list[tuple[bytes, bytes]] = []
        if isinstance(err, IdentityError):
            challenge = err.data.get("www_authenticate")
            if isinstance(challenge, str):
                extra.append((b"www-authenticate", challenge.encode()))
        for ex in list(self.exchanges):
            self._release(ex)
            ex.error_message = err.message
            self._finish(ex, Outcome.REJECTED, err.jsonrpc_code)
        self._respond(render_error(err, request_id=rid, protocol_version=self.version,
                                   keep_alive=self._keep_alive, extra_headers=extra))

    def _respond(self, data: bytes) -> None:
        self.client.write(data)
        self.head_sent = True
        self._complete()

    def _complete(self) -> None:
        if self.done:
            return
        self.done = True
        self.deadline = None
        self.client.finished(self, self._keep_alive)

    # ------------------------------------------------------------------ client side events
    def client_gone(self) -> None:
        """The client disconnected before its answer was complete."""
        if self.done:
            return
        self.done = True
        self._gone = True
        self.deadline = None
        if self.upstream is not None:
            self.upstream.abandon()
            self.upstream = None
        if isinstance(self.relay, SseRelay):
            self.state.counters.open_streams -= 1
        for ex in list(self.exchanges):
            if not self._is_stateless and isinstance(self.relay, SseRelay) and self.relay.resumable:
                continue
            self._release(ex)
            ex.error_message = "client disconnected"
            self._finish(ex, Outcome.CANCELLED, None)

    def pause_upstream(self) -> None:
        self._client_paused = True
        self._sync_reading()

    def resume_upstream(self) -> None:
        self._client_paused = False
        self._sync_reading()


def _denial_body(ex: Exchange, op: Operation) -> bytes:
    d = ex.decision
    if d.hidden:
        what = {OpKind.TOOL_CALL: "tool", OpKind.PROMPT: "prompt", OpKind.RESOURCE: "resource",
                OpKind.TASK: "task"}.get(op.kind, "target")
        return encode_error(op.id, -32602, f"unknown {what} `{op.target}`",
                            {"code": "policy.denied", "decision_id": ex.decision_id})
    err = PolicyDenied(d.reason or f"`{op.method}` denied by rule `{','.join(d.rule_ids)}`")
    return encode_error(op.id, err.jsonrpc_code, err.message,
                        {"code": err.code, "rule_ids": list(d.rule_ids), "revision": d.revision,
                         "decision_id": ex.decision_id})


async def _gather(verdicts: list[Decision | Awaitable[Decision] | None]) -> list[Decision | None]:
    return [await v if v is not None and not isinstance(v, Decision) else v for v in verdicts]


def _discard(verdict: object) -> None:
    close = getattr(verdict, "close", None)
    if callable(close):
        close()


def _error_decision(op: Operation, exc: BaseException) -> Decision:
    return Decision(Effect.DENY, ("policy.error",), "error",
                    f"`{op.method}` denied: policy evaluation failed ({type(exc).__name__})")


def _duplicate_id_decision(ex: Exchange) -> Decision:
    return Decision(Effect.DENY, ("protocol.duplicate_id",), ex.decision.revision,
                    f"request id `{ex.operation.id}` is already in flight in this session")


def _reencode_batch(msgs: list[Message]) -> bytes:
    parts: list[bytes] = []
    for m in msgs:
        if m.raw:
            parts.append(m.raw)
        else:
            d: dict[str, Any] = {"jsonrpc": "2.0"}
            if m.id is not None:
                d["id"] = m.id
            if m.method is not None:
                d["method"] = m.method
            if m.params is not None:
                d["params"] = m.params
            parts.append(encode_message(d))
    return b"[" + b",".join(parts) + b"]"


def _int_or_none(text: str) -> int | None:
    with contextlib.suppress(ValueError):
        return int(text)
    return None

