"""Gateway-wide data-plane state: settings resolved at load time, sessions, pending exchanges, counters."""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mcpgate.exchange import Exchange, Hooks
from mcpgate.protocol.correlation import Correlator
from mcpgate.protocol.jsonrpc import DecodeLimits

if TYPE_CHECKING:
    from mcpgate.proxy.upstream import UpstreamPool


@dataclass(frozen=True, slots=True)
class ProxySettings:
    """Everything the hot path needs, precomputed from config (bytes where the wire wants bytes)."""

    upstream_host: str
    upstream_port: int
    upstream_host_header: bytes
    public_base_path: str
    allowed_origins: frozenset[bytes]
    max_body_bytes: int = 16 * 1024 * 1024
    max_header_bytes: int = 64 * 1024
    max_headers: int = 100
    max_json_depth: int = 64
    max_batch: int = 100
    max_sse_event_bytes: int = 16 * 1024 * 1024
    max_inspect_bytes: int = 16 * 1024 * 1024
    max_connections: int = 10_000
    max_pipelined: int = 64
    max_sessions: int = 100_000
    pool_size: int = 64
    connect_timeout_s: float = 5.0
    response_timeout_s: float = 300.0
    idle_timeout_s: float = 0.0
    client_header_timeout_s: float = 15.0
    drain_s: float = 20.0
    strip_upstream_headers: frozenset[bytes] = frozenset()
    mcp_paths: frozenset[bytes] = frozenset()  # request paths forwarded upstream; empty = public_base_path only


@dataclass(slots=True)
class Session:
    """What the gateway remembers of one MCP session (legacy Streamable HTTP or HTTP+SSE)."""

    id: str
    protocol_version: str | None = None
    principal_id: str | None = None


@dataclass(slots=True)
class Counters:
    connections: int = 0
    requests: int = 0
    rejected: int = 0
    denied: int = 0
    upstream_errors: int = 0
    open_streams: int = 0
    underscore_headers_dropped: int = 0
    bytes_c2s: int = 0
    bytes_s2c: int = 0
    upstream_error_kinds: dict[str, int] = field(default_factory=dict)  # `upstream.<kind>` codes


class DecisionIds:
    """Unique, cheap decision ids: a random per-process prefix and a counter (no uuid4 per call)."""

    __slots__ = ("_n", "_prefix", "_scopes")

    def __init__(self) -> None:
        self._prefix = os.urandom(6).hex()
        self._n = 0
        self._scopes = 0

    def next(self) -> str:
        self._n += 1
        return f"{self._prefix}-{self._n:x}"

    def scope(self) -> str:
        """A correlation scope for one stateless exchange (decision ids stay consecutive)."""
        self._scopes += 1
        return f"{self._scopes:x}"


@dataclass(slots=True)
class GatewayState:
    settings: ProxySettings
    hooks: Hooks
    pool: UpstreamPool
    pending: Correlator[Exchange] = field(default_factory=Correlator)
    sessions: OrderedDict[str, Session] = field(default_factory=OrderedDict)
    counters: Counters = field(default_factory=Counters)
    ids: DecisionIds = field(default_factory=DecisionIds)
    clock: Callable[[], int] = time.monotonic_ns
    draining: bool = False
    connections: set[object] = field(default_factory=set)
    legacy_paths: set[bytes] = field(default_factory=set)  # HTTP+SSE message paths learned from `endpoint`
    request_limits: DecodeLimits = field(init=False)  # built once from settings, read per request
    # Tasks are bound to the principal whose call created them (spec: task isolation); bounded, oldest out.
    task_owners: OrderedDict[str, str] = field(default_factory=OrderedDict)

    def own_task(self, task_id: str, principal_id: str) -> None:
        self.task_owners[task_id] = principal_id
        if len(self.task_owners) > self.settings.max_sessions:
            self.task_owners.popitem(last=False)

    def __post_init__(self) -> None:
        s = self.settings
        self.request_limits = DecodeLimits(max_depth=s.max_json_depth, max_batch=s.max_batch)

    def path_allowed(self, path: bytes) -> bool:
        s = self.settings
        if s.mcp_paths:
            return path in s.mcp_paths or path in self.legacy_paths
        return path == s.public_base_path.encode() or path in self.legacy_paths

    def session(self, session_id: str) -> Session:
        s = self.sessions.get(session_id)
        if s is None:
            s = Session(session_id)
            self.sessions[session_id] = s
            if len(self.sessions) > self.settings.max_sessions:
                self.sessions.popitem(last=False)
        return s
