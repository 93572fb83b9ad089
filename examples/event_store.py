"""An in-memory SSE event store so the example server can replay a dropped stream (GET + `Last-Event-ID`)."""

from __future__ import annotations

import itertools
from collections import deque

from mcp.server.streamable_http import EventCallback, EventId, EventMessage, EventStore, StreamId
from mcp_types import JSONRPCMessage


class InMemoryEventStore(EventStore):
    """Keeps the last `max_events` events; ids are `<stream>:<seq>`, so each names its stream."""

    def __init__(self, max_events: int = 10_000) -> None:
        self._events: deque[tuple[EventId, StreamId, JSONRPCMessage | None]] = deque(maxlen=max_events)
        self._seq = itertools.count(1)

    async def store_event(self, stream_id: StreamId, message: JSONRPCMessage | None) -> EventId:
        event_id = f"{stream_id}:{next(self._seq)}"
        self._events.append((event_id, stream_id, message))
        return event_id

    async def replay_events_after(
        self, last_event_id: EventId, send_callback: EventCallback
    ) -> StreamId | None:
        found: StreamId | None = None
        for event_id, stream_id, message in list(self._events):
            if found is None:
                if event_id == last_event_id:
                    found = stream_id
                continue
            # Priming events (message None) carry no payload to replay.
            if stream_id == found and message is not None:
                await send_callback(EventMessage(message, event_id))
        return found
