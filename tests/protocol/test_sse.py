"""SSE framer: every fixture parsed whole, byte by byte and at random split points must give the same events."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcpgate.errors import InvalidUtf8, SseEventTooLarge
from mcpgate.protocol.sse import NEED_DATA, SseEvent, SseFramer, encode_event

from .sse_fixtures import ALL_STREAMS, Stream


def run(chunks: list[bytes], framer: SseFramer | None = None) -> tuple[list[SseEvent], bytes]:
    framer = framer or SseFramer()
    events: list[SseEvent] = []
    for chunk in chunks:
        framer.receive_data(chunk)
        while (ev := framer.next_event()) is not NEED_DATA:
            assert isinstance(ev, SseEvent)
            events.append(ev)
    leftover = framer.receive_eof()
    while (ev := framer.next_event()) is not NEED_DATA:
        assert isinstance(ev, SseEvent)
        events.append(ev)
    return events, leftover


def splits(raw: bytes, rng: random.Random) -> list[bytes]:
    cuts = sorted(rng.sample(range(1, len(raw)), k=min(len(raw) - 1, rng.randint(1, 6)))) if len(raw) > 1 else []
    bounds = [0, *cuts, len(raw)]
    return [raw[a:b] for a, b in itertools.pairwise(bounds)]


def fields(ev: SseEvent) -> tuple[str | None, str | None, str | None, int | None]:
    return (ev.event, ev.data, ev.id, ev.retry)


@pytest.mark.parametrize("stream", ALL_STREAMS, ids=lambda s: s.name)
def test_fixture_whole_bytewise_and_random_splits(stream: Stream) -> None:
    rng = random.Random(stream.name)
    ways = [[stream.raw], [stream.raw[i:i + 1] for i in range(len(stream.raw))]]
    ways += [splits(stream.raw, rng) for _ in range(20)]
    for chunks in ways:
        events, leftover = run(chunks)
        assert [fields(e) for e in events] == stream.events
        assert leftover == stream.leftover
        assert b"".join(e.raw for e in events) + leftover == stream.raw


def test_sdk_ping_comment_has_no_fields_and_message_has() -> None:
    stream = next(s for s in ALL_STREAMS if s.name == "sdk-ping-then-message")
    events, _ = run([stream.raw])
    assert [e.has_fields for e in events] == [False, True]
    assert events[0].raw.startswith(b": ping - ") and events[0].raw.endswith(b"\r\n\r\n")


def test_cr_at_chunk_end_waits_for_possible_lf() -> None:
    framer = SseFramer()
    framer.receive_data(b"data: a\r")
    assert framer.next_event() is NEED_DATA
    framer.receive_data(b"\n\r")
    assert framer.next_event() is NEED_DATA  # the blank line's `\r` may still be a CRLF
    framer.receive_data(b"\n")
    ev = framer.next_event()
    assert isinstance(ev, SseEvent) and ev.raw == b"data: a\r\n\r\n" and ev.data == "a"


def test_cr_then_other_byte_ends_line_immediately() -> None:
    framer = SseFramer()
    framer.receive_data(b"data: a\r\r")
    assert framer.next_event() is NEED_DATA
    framer.receive_data(b"d")
    ev = framer.next_event()
    assert isinstance(ev, SseEvent) and ev.raw == b"data: a\r\r"


def test_partial_bom_waits() -> None:
    framer = SseFramer()
    framer.receive_data(b"\xef\xbb")
    assert framer.next_event() is NEED_DATA
    framer.receive_data(b"\xbfdata: x\n\n")
    ev = framer.next_event()
    assert isinstance(ev, SseEvent) and ev.data == "x" and ev.raw.startswith(b"\xef\xbb\xbf")


def test_invalid_utf8_in_data_raises() -> None:
    framer = SseFramer()
    framer.receive_data(b"data: \xff\xfe\n\n")
    with pytest.raises(InvalidUtf8):
        framer.next_event()


def test_invalid_utf8_in_comment_is_forwarded() -> None:
    events, _ = run([b": \xff\n\n"])
    assert events[0].raw == b": \xff\n\n" and not events[0].has_fields


def test_event_without_line_end_over_limit_raises() -> None:
    framer = SseFramer(max_event_bytes=100)
    framer.receive_data(b"data: " + b"x" * 90)
    assert framer.next_event() is NEED_DATA
    framer.receive_data(b"x" * 20)
    with pytest.raises(SseEventTooLarge):
        framer.next_event()


def test_event_of_many_lines_over_limit_raises() -> None:
    framer = SseFramer(max_event_bytes=100)
    framer.receive_data(b"data: x\n" * 20)
    with pytest.raises(SseEventTooLarge):
        framer.next_event()


def test_event_at_limit_passes() -> None:
    raw = b"data: " + b"x" * 92 + b"\n\n"
    assert len(raw) == 100
    events, _ = run([raw], SseFramer(max_event_bytes=100))
    assert events[0].raw == raw


@pytest.mark.timeout(10)
def test_long_line_in_small_chunks_is_scanned_once() -> None:
    # A rescanning framer is quadratic here (8 MiB line in 4 KiB chunks: ~16 GB of scanning).
    framer = SseFramer()
    chunk = b"y" * 4096
    framer.receive_data(b"data: ")
    for _ in range(2048):
        framer.receive_data(chunk)
        assert framer.next_event() is NEED_DATA
    framer.receive_data(b"\n\n")
    ev = framer.next_event()
    assert isinstance(ev, SseEvent) and ev.data is not None and len(ev.data) == 8 * 1024 * 1024


def test_receive_data_after_eof_is_a_bug() -> None:
    framer = SseFramer()
    framer.receive_eof()
    with pytest.raises(RuntimeError):
        framer.receive_data(b"x")


def test_encode_event_layout() -> None:
    assert encode_event(data='{"a":1}', event="message", id="7", retry=10) == \
        b'event: message\nid: 7\nretry: 10\ndata: {"a":1}\n\n'
    assert encode_event(data="a\nb", newline=b"\r\n") == b"data: a\r\ndata: b\r\n\r\n"
    assert encode_event(data="") == b"data: \n\n"


@pytest.mark.parametrize("kwargs", [
    {"data": "x", "event": "a\nb"}, {"data": "x", "id": "a\rb"}, {"data": "x", "id": "a\x00"},
    {"data": "x", "retry": -1}, {"data": "x", "newline": b"\n\n"},
])
def test_encode_event_refuses_field_injection(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        encode_event(**kwargs)  # type: ignore[arg-type]


_text = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\r"))
_line = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\r\n\x00"))


@given(data=_text, event=st.none() | _line, id=st.none() | _line, retry=st.none() | st.integers(0, 10**9),
       newline=st.sampled_from([b"\n", b"\r\n", b"\r"]), seed=st.integers(0, 2**32))
def test_encode_then_frame_round_trips(data: str, event: str | None, id: str | None, retry: int | None,
                                       newline: bytes, seed: int) -> None:
    raw = encode_event(data=data, event=event, id=id, retry=retry, newline=newline)
    stream = b": c\n\n" + raw + raw
    events, leftover = run(splits(stream, random.Random(seed)))
    assert leftover == b""
    assert b"".join(e.raw for e in events) == stream
    assert [fields(e) for e in events[1:]] == [(event, data, id, retry)] * 2


@given(st.binary(max_size=300), st.integers(0, 2**32))
def test_arbitrary_bytes_split_anywhere_give_the_same_events(raw: bytes, seed: int) -> None:
    def attempt(chunks: list[bytes]) -> object:
        try:
            events, leftover = run(chunks)
        except InvalidUtf8:
            return "invalid-utf8"
        assert b"".join(e.raw for e in events) + leftover == raw
        return [fields(e) for e in events], leftover

    assert attempt([raw]) == attempt(splits(raw, random.Random(seed)))
