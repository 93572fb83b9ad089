"""Runs a whole gateway from config: data plane, admin plane, hooks, signals (SIGTERM drains, SIGHUP reloads)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Iterator
from typing import Any

from mcpgate.admin.app import build_admin_app
from mcpgate.config.model import GatewayConfig
from mcpgate.errors import McpgateError
from mcpgate.proxy.server import ProxyServer
from mcpgate.proxy.state import ProxySettings
from mcpgate.runtime.build import Runtime, build_runtime
from mcpgate.telemetry import Metrics
from mcpgate.telemetry.snapshot import DashboardSnapshot

log = logging.getLogger("mcpgate")


def settings_from_config(config: GatewayConfig, strip: frozenset[bytes] = frozenset()) -> ProxySettings:
    """Everything the hot path needs, computed once."""
    lim, to, up = config.limits, config.timeouts, config.upstream
    return ProxySettings(
        upstream_host=up.host,
        upstream_port=up.port,
        upstream_host_header=up.authority.encode(),
        public_base_path=config.public_base_path,
        allowed_origins=frozenset(o.encode() for o in config.allowed_origins),
        max_body_bytes=lim.max_body_bytes,
        max_header_bytes=lim.max_header_bytes,
        max_headers=lim.max_headers,
        max_json_depth=lim.max_json_depth,
        max_batch=lim.max_batch,
        max_sse_event_bytes=lim.max_sse_event_bytes,
        max_connections=lim.max_connections,
        max_pipelined=lim.max_inflight_per_connection,
        pool_size=up.pool_size,
        connect_timeout_s=to.connect_s,
        response_timeout_s=to.response_s,
        idle_timeout_s=to.idle_s,
        client_header_timeout_s=to.client_header_s,
        drain_s=to.drain_s,
        strip_upstream_headers=strip,
    )


def run_gateway(config: GatewayConfig) -> int:
    """Blocking entry point for `mcpgate serve`. Returns the process exit code."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency; this keeps exotic platforms running
        log.warning("uvloop unavailable: running on the default asyncio loop (slower)")
    try:
        return asyncio.run(_serve(config))
    except McpgateError as err:
        print(f"mcpgate: {err.message}", file=sys.stderr)
        return 3 if err.code == "config.invalid" else 1
    except KeyboardInterrupt:
        return 0


async def _serve(config: GatewayConfig) -> int:
    loop = asyncio.get_running_loop()
    doc = config.origin.doc
    config_dir = os.path.dirname(os.path.abspath(doc.file)) if doc is not None else None
    runtime: Runtime = build_runtime(config, config_dir=config_dir)
    await runtime.start()
    proxy = ProxyServer(settings_from_config(config, runtime.strip_upstream_headers), runtime.hooks, loop)
    try:
        await proxy.start(config.listen_host, config.listen_port, runtime.ssl_context)
    except OSError as exc:
        print(f"mcpgate: cannot listen on {config.listen_host}:{config.listen_port}: {exc.strerror}",
              file=sys.stderr)
        return 1
    admin_server = await _start_admin(config, runtime, proxy)
    for warning in runtime.warnings():
        # Loud on purpose: observer mode and audit trouble must not go unnoticed at start-up.
        log.warning("%s", warning)
    log.info("mcpgate listening on %s:%d, forwarding to %s", config.listen_host, proxy.port, config.upstream.url)

    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, runtime.reload)
    await stop.wait()
    log.info("draining (up to %.0fs)", config.timeouts.drain_s)
    cut = await proxy.drain(config.timeouts.drain_s)
    if cut:
        log.warning("drain deadline passed: %d requests cut", cut)
    if admin_server is not None:
        admin_server.should_exit = True
        await asyncio.sleep(0)
    if runtime.hooks.opa is not None:
        await runtime.hooks.opa.aclose()
    runtime.close()
    return 0


class DataPlaneMetrics:
    """Feeds the data plane's own counters (streams, sessions, bytes, upstream errors by kind) into the
    metrics when someone looks, so the hot path only bumps integers."""

    def __init__(self, metrics: Metrics, proxy: ProxyServer) -> None:
        self.metrics, self.proxy = metrics, proxy
        self._streams = self._sessions = self._c2s = self._s2c = 0
        self._kinds: dict[str, int] = {}

    def sync(self) -> None:
        c, m = self.proxy.state.counters, self.metrics
        for _ in range(c.open_streams - self._streams):
            m.sse_stream_opened()
        for _ in range(self._streams - c.open_streams):
            m.sse_stream_closed()
        self._streams = c.open_streams
        sessions = len(self.proxy.state.sessions)
        for _ in range(sessions - self._sessions):
            m.session_opened()
        for _ in range(self._sessions - sessions):
            m.session_closed()
        self._sessions = sessions
        if c.bytes_c2s > self._c2s:
            m.bytes_forwarded("c2s", c.bytes_c2s - self._c2s)
            self._c2s = c.bytes_c2s
        if c.bytes_s2c > self._s2c:
            m.bytes_forwarded("s2c", c.bytes_s2c - self._s2c)
            self._s2c = c.bytes_s2c
        for kind, n in list(c.upstream_error_kinds.items()):
            for _ in range(n - self._kinds.get(kind, 0)):
                m.upstream_error(kind)
            self._kinds[kind] = n


async def _start_admin(config: GatewayConfig, runtime: Runtime, proxy: ProxyServer) -> Any:
    if config.admin_port is None:
        return None
    import uvicorn

    def status() -> dict[str, Any]:
        c = proxy.state.counters
        st = runtime.status()
        st["upstream"] = config.upstream.url
        st["listen"] = f"{config.listen_host}:{proxy.port}"
        st["counters"] = {"connections": c.connections, "requests": c.requests, "rejected": c.rejected,
                          "denied": c.denied, "upstream_errors": c.upstream_errors,
                          "open_streams": c.open_streams, "pending": len(proxy.state.pending),
                          "sessions": len(proxy.state.sessions)}
        return st

    class AdminServer(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            # The gateway owns SIGTERM/SIGINT (drain) and SIGHUP (reload); uvicorn must not take them.
            yield

    feed = DataPlaneMetrics(runtime.metrics, proxy)

    def render_metrics() -> tuple[bytes, str]:
        feed.sync()
        return runtime.render_metrics()

    class Snapshot(DashboardSnapshot):
        def snapshot(self) -> dict[str, Any]:
            feed.sync()
            return super().snapshot()

    app = build_admin_app(status, render_metrics, Snapshot(runtime.metrics, runtime.recent, status))
    server = AdminServer(uvicorn.Config(app, host=config.admin_host, port=config.admin_port,
                                        log_level="warning", lifespan="off", access_log=False))
    asyncio.get_running_loop().create_task(server.serve())
    return server
