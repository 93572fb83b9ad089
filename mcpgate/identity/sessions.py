"""Sessions bound to the principal that created them, so a leaked `Mcp-Session-Id` is useless to others."""

from __future__ import annotations

from collections import OrderedDict


class SessionBindings:
    """A bounded map session id → principal id, least recently used evicted first.

    In memory and per process: with several replicas, route a session to one replica (the MCP SDKs need
    that anyway) or accept that a session evicted or created elsewhere is re-bound on first use (`claim`).
    """

    __slots__ = ("_map", "evicted", "max_sessions")

    def __init__(self, max_sessions: int = 100_000) -> None:
        if max_sessions < 1:
            raise ValueError("max_sessions must be at least 1")
        self.max_sessions = max_sessions
        self._map: OrderedDict[str, str] = OrderedDict()
        self.evicted = 0

    def bind(self, session_id: str, principal_id: str) -> None:
        """Record who created the session (call when the server's `initialize` answer assigns the id)."""
        self._map[session_id] = principal_id
        self._map.move_to_end(session_id)
        while len(self._map) > self.max_sessions:
            self._map.popitem(last=False)
            self.evicted += 1

    def check(self, session_id: str, principal_id: str) -> bool:
        """False only when the session is bound to another principal; unknown sessions pass (the upstream
        decides whether they exist)."""
        owner = self._map.get(session_id)
        if owner is None:
            return True
        self._map.move_to_end(session_id)
        return owner == principal_id

    def claim(self, session_id: str, principal_id: str) -> bool:
        """`check`, binding an unknown session to this principal (first presenter owns it)."""
        if session_id not in self._map:
            self.bind(session_id, principal_id)
            return True
        return self.check(session_id, principal_id)

    def owner(self, session_id: str) -> str | None:
        return self._map.get(session_id)

    def forget(self, session_id: str) -> None:
        """Drop a binding (session deleted, or the server answered 404 for it)."""
        self._map.pop(session_id, None)

    def __len__(self) -> int:
        return len(self._map)
