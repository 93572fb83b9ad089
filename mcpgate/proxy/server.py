"""The data-plane listener: accepts client connections, owns the upstream pool, drains on shutdown."""

from __future__ import annotations

import asyncio
import ssl
import time

from mcpgate.exchange import Hooks
from mcpgate.protocol.model import Outcome
from mcpgate.proxy.client import ClientConnection
from mcpgate.proxy.state import GatewayState, ProxySettings
from mcpgate.proxy.upstream import UpstreamPool

_SWEEP_INTERVAL_S = 5.0
_TICK_S = 0.25


class ProxyServer:
    """One listening socket in front of one upstream."""

    def __init__(self, settings: ProxySettings, hooks: Hooks, loop: asyncio.AbstractEventLoop) -> None:
        pool = UpstreamPool(loop, settings.upstream_host, settings.upstream_port,
                            max_idle=settings.pool_size, connect_timeout=settings.connect_timeout_s)
        self.state = GatewayState(settings=settings, hooks=hooks, pool=pool, clock=time.monotonic_ns)
        self.loop = loop
        self.server: asyncio.Server | None = None
        self._sweeper: asyncio.TimerHandle | None = None
        self._ticker: asyncio.TimerHandle | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    def set_hooks(self, hooks: Hooks) -> None:
        """Swap the hooks (policy reload builds new ones); requests already decided keep theirs."""
        self.state.hooks = hooks

    async def start(self, host: str, port: int, ssl_context: ssl.SSLContext | None = None) -> None:
        self.server = await self.loop.create_server(
            lambda: ClientConnection(self.state), host, port, ssl=ssl_context, backlog=4096,
            reuse_address=True)
        self._sweeper = self.loop.call_later(_SWEEP_INTERVAL_S, self._sweep)
        self._ticker = self.loop.call_later(_TICK_S, self._tick)

    def _tick(self) -> None:
        """Deadlines (request heads, upstream answers) are checked here, not with a timer per request."""
        now = time.monotonic()
        for c in list(self.state.connections):
            if isinstance(c, ClientConnection):
                c.tick(now)
        self._ticker = self.loop.call_later(_TICK_S, self._tick)

    def _sweep(self) -> None:
        """Pending requests whose answer never came (a session's stream was not resumed) end as failed."""
        limit = self.state.settings.response_timeout_s
        if limit > 0:
            deadline = time.monotonic_ns() - int(limit * 2 * 1e9)
            for ex in self.state.pending.expire(lambda ex: ex.t_start < deadline):
                ex.outcome = Outcome.UPSTREAM_FAILED
                ex.error_message = "no answer arrived before the deadline"
                ex.t_end = time.monotonic_ns()
                self.state.hooks.finished(ex)
        self._sweeper = self.loop.call_later(_SWEEP_INTERVAL_S, self._sweep)

    async def drain(self, timeout: float) -> int:
        """Stop accepting, let in-flight requests finish (up to `timeout`); return connections cut."""
        self.state.draining = True
        if self.server is not None:
            self.server.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            busy = [c for c in self.state.connections if isinstance(c, ClientConnection) and c.active]
            if not busy:
                break
            await asyncio.sleep(0.05)
        cut = 0
        for c in list(self.state.connections):
            if isinstance(c, ClientConnection):
                if c.active:
                    cut += 1
                if c.transport is not None:
                    c.transport.close()
        self.state.pool.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._ticker is not None:
            self._ticker.cancel()
        return cut
