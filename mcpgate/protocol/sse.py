"""Incremental, sans-IO Server-Sent Events framer (WHATWG HTML §9.2 parsing rules) on bytes.

Each event keeps its exact raw bytes, so unchanged events are forwarded byte for byte; the buffer is
scanned once (a scan offset survives across chunks) and bounded by `max_event_bytes`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from mcpgate.errors import InvalidUtf8, SseEventTooLarge

__all__ = ["NEED_DATA", "NeedData", "SseEvent", "SseFramer", "encode_event"]

_BOM: Final = b"\xef\xbb\xbf"
_CR: Final = 0x0D
_LF: Final = 0x0A
_DIGITS: Final = re.compile(r"[0-9]+")
_NEWLINES: Final = re.compile(r"\r\n|\r|\n")


class NeedData:
    """Sentinel type: the framer needs more bytes before it can return another event."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Final = NeedData()


@dataclass(slots=True, frozen=True)
class SseEvent:
    """One event block as received, with the fields a WHATWG parser would read from it."""

    raw: bytes          # exact bytes incl. the terminating blank line (forward these)
    event: str | None   # `event:` value; None if absent
    data: str | None    # data lines joined with "\n"; None when there was no data field at all
    id: str | None      # last `id:` value (ids containing NUL are ignored, as WHATWG says)
    retry: int | None   # last valid `retry:` value (ASCII digits only)

    @property
    def has_fields(self) -> bool:
        """False for comment-only or empty blocks (keep-alives): forward them as they are."""
        return self.data is not None or self.event is not None or self.id is not None \
            or self.retry is not None


class SseFramer:
    """Splits a `text/event-stream` body into events: `receive_data`, then `next_event` until NEED_DATA."""

    __slots__ = ("_bom_done", "_buf", "_cr_done", "_data", "_eof", "_event", "_id", "_lf", "_lf_done", "_max",
                 "_pending", "_pos", "_retry")

    def __init__(self, max_event_bytes: int = 16 * 1024 * 1024) -> None:
        self._max = max_event_bytes
        self._buf = bytearray()
        self._pos = 0          # start of the next unparsed line (the current event starts at 0)
        # Scan state, so no byte is searched twice: the next known LF (-1: none in buf[:_lf_done]) and
        # no CR in buf[_pos:_cr_done]. Two memchr-based finds beat one regex character class by ~100x.
        self._lf = -1
        self._lf_done = 0
        self._cr_done = 0
        self._bom_done = False
        self._eof = False
        self._pending: list[SseEvent] = []
        self._reset_fields()

    def _reset_fields(self) -> None:
        self._event: str | None = None
        self._data: list[str] | None = None
        self._id: str | None = None
        self._retry: int | None = None

    def receive_data(self, data: bytes) -> None:
        if self._eof:
            raise RuntimeError("receive_data after receive_eof")
        self._buf += data

    def receive_eof(self) -> bytes:
        """Mark the end of the stream and return the bytes of an incomplete trailing event.

        A final lone `\\r` is a complete line end at EOF: if it completes an event, that event is still
        returned by `next_event()`, so call it until NEED_DATA after this too. The returned bytes never
        formed a complete event (WHATWG clients discard them).
        """
        self._eof = True
        while True:
            ev = self._parse()
            if isinstance(ev, NeedData):
                break
            self._pending.append(ev)
        rest = bytes(self._buf)
        self._buf.clear()
        self._pos = self._lf_done = self._cr_done = 0
        self._lf = -1
        self._reset_fields()
        return rest

    def next_event(self) -> SseEvent | NeedData:
        """The next complete event, or NEED_DATA; raises SseEventTooLarge or InvalidUtf8."""
        if self._pending:
            return self._pending.pop(0)
        return self._parse()

    def _parse(self) -> SseEvent | NeedData:
        buf = self._buf
        if not self._bom_done:
            if len(buf) < 3 and _BOM.startswith(bytes(buf)) and not self._eof:
                return NEED_DATA
            self._bom_done = True
            if buf.startswith(_BOM):
                self._pos = 3
        while True:
            pos = self._pos
            end = self._line_end(pos)
            if end < 0:
                return self._need_data()
            if buf[end] == _CR:
                if end + 1 < len(buf):
                    nxt = end + 2 if buf[end + 1] == _LF else end + 1
                elif self._eof:
                    nxt = end + 1
                else:
                    return self._need_data()  # a `\r` at the chunk end may be the first half of CRLF
            else:
                nxt = end + 1
            self._pos = nxt
            if end == pos:
                return self._dispatch(nxt)
            self._field(buf, pos, end)

    def _line_end(self, pos: int) -> int:
        """Index of the first CR or LF at or after `pos`, or -1."""
        buf = self._buf
        lf = self._lf
        if lf < pos:
            done = self._lf_done
            lf = buf.find(b"\n", pos if pos > done else done)
            if lf < 0:
                self._lf_done = len(buf)
            self._lf = lf
        limit = len(buf) if lf < 0 else lf
        done = self._cr_done
        cr = buf.find(b"\r", pos if pos > done else done, limit)
        if cr < 0:
            self._cr_done = limit
            return lf
        self._cr_done = cr
        return cr

    def _need_data(self) -> NeedData:
        if len(self._buf) > self._max:
            raise SseEventTooLarge(f"sse event exceeds {self._max} bytes without ending")
        return NEED_DATA

    def _field(self, buf: bytearray, start: int, end: int) -> None:
        if buf[start] == 0x3A:  # ':' comment
            return
        colon = buf.find(b":", start, end)
        if colon < 0:
            name, value_start = bytes(buf[start:end]), end
        else:
            name = bytes(buf[start:colon])
            value_start = colon + 1
            if value_start < end and buf[value_start] == 0x20:
                value_start += 1
        if name == b"data":
            value = self._decode(buf, value_start, end, "data")
            if self._data is None:
                self._data = [value]
            else:
                self._data.append(value)
        elif name == b"event":
            self._event = self._decode(buf, value_start, end, "event")
        elif name == b"id":
            value = self._decode(buf, value_start, end, "id")
            if "\x00" not in value:
                self._id = value
        elif name == b"retry":
            value = self._decode(buf, value_start, end, "retry")
            # Beyond 4000 digits int() refuses to convert (CPython's limit); no client could honour it anyway.
            if len(value) <= 4000 and _DIGITS.fullmatch(value):
                self._retry = int(value)

    @staticmethod
    def _decode(buf: bytearray, start: int, end: int, field: str) -> str:
        try:
            return buf[start:end].decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidUtf8(f"sse `{field}` field is not valid utf-8") from None

    def _dispatch(self, end: int) -> SseEvent:
        if end > self._max:
            raise SseEventTooLarge(f"sse event of {end} bytes exceeds {self._max} bytes")
        buf = self._buf
        data = None if self._data is None else "\n".join(self._data)
        ev = SseEvent(bytes(buf[:end]), self._event, data, self._id, self._retry)
        del buf[:end]  # bytearray trims its head in O(1)
        self._pos = 0
        self._lf = self._lf - end if self._lf >= end else -1
        self._lf_done = max(0, self._lf_done - end)
        self._cr_done = max(0, self._cr_done - end)
        self._reset_fields()
        return ev


def encode_event(*, data: str, event: str | None = None, id: str | None = None, retry: int | None = None,
                 newline: bytes = b"\n") -> bytes:
    """Serialize one event; `data` is split into `data:` lines at CRLF, CR or LF (as a reader would)."""
    nl = newline.decode("ascii")
    if nl not in ("\n", "\r\n", "\r"):
        raise ValueError("newline must be LF, CRLF or CR")
    parts: list[str] = []
    if event is not None:
        if _NEWLINES.search(event):
            raise ValueError("sse event name must not contain line breaks")
        parts.append(f"event: {event}{nl}")
    if id is not None:
        if _NEWLINES.search(id) or "\x00" in id:
            raise ValueError("sse id must not contain line breaks or NUL")
        parts.append(f"id: {id}{nl}")
    if retry is not None:
        if retry < 0:
            raise ValueError("sse retry must be non-negative")
        parts.append(f"retry: {retry}{nl}")
    for line in _NEWLINES.split(data):
        parts.append(f"data: {line}{nl}")
    parts.append(nl)
    return "".join(parts).encode("utf-8")
