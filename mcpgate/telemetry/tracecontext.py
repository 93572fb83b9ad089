"""W3C Trace Context for one exchange: the caller's contexts (`params._meta`, HTTP header) and our span's ids.

The ids of mcpgate's span are chosen once, the first time they are needed (`inject_headers` before the
upstream request, else at finish), and kept in `Exchange.extra[TRACE_KEY]`, so the span recorded at finish
carries exactly the ids the upstream was told about.
"""

from __future__ import annotations

import random
import re
from typing import Final, NamedTuple

from mcpgate._types import Headers
from mcpgate.exchange import Exchange

TRACE_KEY: Final = "mcpgate.trace"
"""`Exchange.extra` key holding the exchange's `TraceIds`."""

_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?", re.ASCII)
_MAX_TRACESTATE = 512
_MASK64: Final = (1 << 64) - 1
# NamedTuples rather than frozen dataclasses: built on the hot path, and ~4x cheaper to construct.


class RemoteContext(NamedTuple):
    """A caller's span context, as carried by one `traceparent` (+ `tracestate`)."""

    trace_id: int
    span_id: int
    flags: int
    tracestate: str = ""

    @property
    def sampled(self) -> bool:
        return bool(self.flags & 1)


class TraceIds(NamedTuple):
    """mcpgate's span for one exchange: its ids, whether it is recorded, and the contexts it relates to."""

    trace_id: int
    span_id: int
    sampled: bool
    parent: RemoteContext | None
    link: RemoteContext | None
    tracestate: str

    def traceparent(self) -> bytes:
        return b"00-%032x-%016x-%s" % (self.trace_id, self.span_id, b"01" if self.sampled else b"00")


def parse_traceparent(value: object, tracestate: object = None) -> RemoteContext | None:
    """A valid `traceparent` (version 00, or a later version read as 00) as a context; else None."""
    if not isinstance(value, str):
        return None
    m = _TRACEPARENT.fullmatch(value.strip())
    if m is None:
        return None
    version, trace_hex, span_hex, flags_hex, rest = m.groups()
    if version == "ff" or (version == "00" and rest):
        return None
    trace_id, span_id = int(trace_hex, 16), int(span_hex, 16)
    if not trace_id or not span_id:
        return None
    state = tracestate if isinstance(tracestate, str) and len(tracestate) <= _MAX_TRACESTATE else ""
    return RemoteContext(trace_id, span_id, int(flags_hex, 16), state.strip())


def header_context(headers: Headers) -> RemoteContext | None:
    """The HTTP `traceparent`/`tracestate` headers; several `traceparent` headers make it invalid (W3C)."""
    traceparent: bytes | None = None
    tracestate: list[bytes] = []
    for name, value in headers:
        n = len(name)
        if n == 11 and name.lower() == b"traceparent":
            if traceparent is not None:
                return None
            traceparent = value
        elif n == 10 and name.lower() == b"tracestate":
            tracestate.append(value)
    if traceparent is None:
        return None
    state = b",".join(tracestate).decode("latin-1") if tracestate else None
    return parse_traceparent(traceparent.decode("latin-1"), state)


def compute_ids(ex: Exchange, sample_bound: int) -> TraceIds:
    """Choose the span's ids: parent from `_meta` first, else the HTTP header; the HTTP one is linked."""
    meta = ex.operation.meta
    meta_ctx = parse_traceparent(meta.get("traceparent"), meta.get("tracestate")) if meta else None
    http_ctx = header_context(ex.request.headers)
    parent = meta_ctx or http_ctx
    link = None
    if meta_ctx is not None and http_ctx is not None and (
            http_ctx.trace_id, http_ctx.span_id) != (meta_ctx.trace_id, meta_ctx.span_id):
        link = http_ctx
    if parent is not None:
        trace_id, sampled, state = parent.trace_id, parent.sampled, parent.tracestate
    else:
        trace_id = random.getrandbits(128) or 1
        # Same rule as the SDK's TraceIdRatioBased sampler, so a trace is kept or dropped as a whole.
        sampled, state = (trace_id & _MASK64) < sample_bound, ""
    return TraceIds(trace_id, random.getrandbits(64) or 1, sampled, parent, link, state)


def ids_for(ex: Exchange, sample_bound: int) -> TraceIds:
    """The exchange's ids, chosen now if nothing chose them yet."""
    ids: TraceIds | None = ex.extra.get(TRACE_KEY)
    if ids is None:
        ids = ex.extra[TRACE_KEY] = compute_ids(ex, sample_bound)
    return ids
