"""An independent WHATWG event-stream reader (HTML §9.2.6), written from the spec, to check the gateway's
SSE framer and what clients receive against a second opinion."""

from __future__ import annotations

import re

_LINE = re.compile(rb"\r\n|\r|\n")
_BOM = b"\xef\xbb\xbf"


def whatwg_events(stream: bytes, *, at_eof: bool = True) -> list[tuple[str, str, str | None]]:
    """(event type, data, last event id) for each event a browser `EventSource` would dispatch."""
    if stream.startswith(_BOM):
        stream = stream[3:]
    if at_eof and stream.endswith(b"\r"):
        stream += b"\n"  # a final CR is a line end once the stream is over
    events: list[tuple[str, str, str | None]] = []
    event, eid = "", None
    data: list[str] = []
    lines = _LINE.split(stream)
    lines = lines[:-1]  # the part after the last line end is not a complete line
    for raw in lines:
        line = raw.decode("utf-8")
        if line == "":
            if data:
                events.append((event or "message", "\n".join(data), eid))
            event, data = "", []
            continue
        if line.startswith(":"):
            continue
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
        elif name == "id" and "\x00" not in value:
            eid = value
    return events
