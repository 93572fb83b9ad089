"""SSE streams with the fields a WHATWG parser reads from them; some produced by the real sse-starlette encoder
that the MCP Python SDK uses (CRLF framing, `: ping - …` keep-alive comments).
"""

from __future__ import annotations

from dataclasses import dataclass

from sse_starlette.event import ServerSentEvent

Fields = tuple[str | None, str | None, str | None, int | None]  # event, data, id, retry


@dataclass(frozen=True)
class Stream:
    name: str
    raw: bytes
    events: list[Fields]
    leftover: bytes = b""


def _starlette(**kw: object) -> bytes:
    return ServerSentEvent(**kw).encode()  # type: ignore[arg-type]


_REQ = '{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"hi"}],"isError":false}}'
_PROGRESS = '{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"t","progress":1}}'

SDK_STREAMS = [
    Stream("sdk-message-crlf", _starlette(data=_REQ, event="message"), [("message", _REQ, None, None)]),
    Stream("sdk-ping-then-message",
           _starlette(comment="ping - 2026-11-22 04:20:44.000000+00:00") + _starlette(data=_REQ, event="message"),
           [(None, None, None, None), ("message", _REQ, None, None)]),
    Stream("sdk-priming-event", _starlette(id="stream-1_0", data="", retry=3000),
           [(None, "", "stream-1_0", 3000)]),
    Stream("sdk-progress-then-result",
           _starlette(data=_PROGRESS, event="message", id="s_1") + _starlette(data=_REQ, event="message", id="s_2"),
           [("message", _PROGRESS, "s_1", None), ("message", _REQ, "s_2", None)]),
    Stream("sdk-legacy-endpoint",
           _starlette(data="/messages/?session_id=0b1c2d3e4f", event="endpoint"),
           [("endpoint", "/messages/?session_id=0b1c2d3e4f", None, None)]),
    Stream("sdk-multiline-data", _starlette(data="line1\nline2\r\nline3"),
           [(None, "line1\nline2\nline3", None, None)]),
]

HAND_STREAMS = [
    Stream("lf", b"event: message\ndata: {}\n\n", [("message", "{}", None, None)]),
    Stream("cr-only", b"event: message\rdata: {}\r\r", [("message", "{}", None, None)]),
    Stream("mixed-eol", b"data: a\r\ndata: b\rdata: c\n\n", [(None, "a\nb\nc", None, None)]),
    Stream("bom", b"\xef\xbb\xbfdata: x\n\n", [(None, "x", None, None)]),
    Stream("bom-only-first", b"\xef\xbb\xbfdata: x\n\n\xef\xbb\xbfdata: y\n\n",
           [(None, "x", None, None), (None, None, None, None)]),
    Stream("no-colon-field", b"data\n\n", [(None, "", None, None)]),
    Stream("no-space", b"data:x\n\n", [(None, "x", None, None)]),
    Stream("two-spaces", b"data:  x\n\n", [(None, " x", None, None)]),
    Stream("empty-data-lines", b"data:\ndata:\n\n", [(None, "\n", None, None)]),
    Stream("comment-only", b": keep-alive\n\n", [(None, None, None, None)]),
    Stream("blank-lines", b"\n\r\n\r", [(None, None, None, None)] * 3),
    Stream("unknown-field", b"foo: bar\n\n", [(None, None, None, None)]),
    Stream("id-with-nul-ignored", b"id: a\x00b\ndata: x\n\n", [(None, "x", None, None)]),
    Stream("last-id-wins", b"id: 1\nid: 2\ndata: x\n\n", [(None, "x", "2", None)]),
    Stream("empty-id", b"id\ndata: x\n\n", [(None, "x", "", None)]),
    Stream("retry-invalid", b"retry: 10a\nretry: 5\nretry: -1\ndata: x\n\n", [(None, "x", None, 5)]),
    Stream("retry-absurdly-long-ignored", b"retry: " + b"9" * 5000 + b"\ndata: x\n\n", [(None, "x", None, None)]),
    Stream("event-only", b"event: ping\n\n", [("ping", None, None, None)]),
    Stream("colon-in-value", b'data: {"a":"b:c"}\n\n', [(None, '{"a":"b:c"}', None, None)]),
    Stream("field-name-case", b"Data: x\nDATA: y\n\n", [(None, None, None, None)]),
    Stream("utf8-data", "data: héllo ✓ 😀\n\n".encode(), [(None, "héllo ✓ 😀", None, None)]),
    Stream("incomplete-tail", b"data: a\n\ndata: b\n", [(None, "a", None, None)], b"data: b\n"),
    Stream("incomplete-no-eol", b"data: a\n\ndata: b", [(None, "a", None, None)], b"data: b"),
    Stream("final-cr-completes-at-eof", b"data: a\r\r", [(None, "a", None, None)]),
]

ALL_STREAMS = SDK_STREAMS + HAND_STREAMS
