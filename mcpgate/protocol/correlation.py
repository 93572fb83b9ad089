"""Pending-request table: matches responses to requests by (scope, direction, id), bounded, no clock.

Ids are kept exact (`1` and `"1"` are different requests) and id spaces are per direction (MCP §3.1).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from mcpgate.protocol.model import Direction, RequestId

__all__ = ["Correlator"]

V = TypeVar("V")
_Key = tuple[str, Direction, bool, RequestId]


def _key(scope: str, direction: Direction, id: RequestId) -> _Key:
    # The type tag keeps `1` and `"1"` apart even if a bool ever slipped through (True == 1 in Python).
    return (scope, direction, type(id) is str, id)


class Correlator(Generic[V]):
    """Requests in flight per scope (session or connection); full means refuse, never forget silently."""

    __slots__ = ("_entries", "_max", "_scopes")

    def __init__(self, max_entries: int = 100_000) -> None:
        self._max = max_entries
        self._entries: dict[_Key, V] = {}
        self._scopes: dict[str, set[_Key]] = {}

    def add(self, scope: str, direction: Direction, id: RequestId, value: V) -> bool:
        """Track a request; False if the same id is already pending there or the table is full."""
        key = _key(scope, direction, id)
        if key in self._entries or len(self._entries) >= self._max:
            return False
        self._entries[key] = value
        self._scopes.setdefault(scope, set()).add(key)
        return True

    def pop(self, scope: str, direction: Direction, id: RequestId) -> V | None:
        """The pending request a response answers (the request's direction and id), removing it."""
        key = _key(scope, direction, id)
        if key not in self._entries:
            return None
        value = self._entries.pop(key)
        keys = self._scopes[scope]
        keys.discard(key)
        if not keys:
            del self._scopes[scope]
        return value

    def get(self, scope: str, direction: Direction, id: RequestId) -> V | None:
        return self._entries.get(_key(scope, direction, id))

    def drop_scope(self, scope: str) -> list[V]:
        """The session or connection ended: forget its requests and return them (to record as cancelled)."""
        keys = self._scopes.pop(scope, set())
        return [self._entries.pop(k) for k in keys]

    def expire(self, older_than: Callable[[V], bool]) -> list[V]:
        """Remove and return every pending value for which `older_than(value)` is true."""
        stale = [k for k, v in self._entries.items() if older_than(v)]
        out: list[V] = []
        for key in stale:
            out.append(self._entries.pop(key))
            keys = self._scopes[key[0]]
            keys.discard(key)
            if not keys:
                del self._scopes[key[0]]
        return out

    def __len__(self) -> int:
        return len(self._entries)
