"""Builds the runtime from config: the hooks the data plane calls, TLS, reload, and what health reports."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mcpgate.audit import AuditLog
from mcpgate.config.model import GatewayConfig
from mcpgate.errors import ConfigError
from mcpgate.identity.resolver import IdentityResolver
from mcpgate.identity.settings import parse_identity_config
from mcpgate.policy import Policy
from mcpgate.runtime.hooks import GatewayHooks
from mcpgate.runtime.jwks import JwksSource, jwks_source_for
from mcpgate.runtime.opa import OpaBackend
from mcpgate.runtime.policy_source import PolicySource
from mcpgate.telemetry import Metrics, Tracing
from mcpgate.telemetry.recent import RecentExchanges

log = logging.getLogger("mcpgate.runtime")

OBSERVER_WARNING = ("no policy configured: running as an OBSERVER (every call is forwarded; identity, "
                    "metrics and audit stay on). Configure `policy.files` to enforce.")


@dataclass
class Runtime:
    """Everything `serve` runs besides the sockets. Built synchronously, started inside the event loop."""

    hooks: GatewayHooks
    metrics: Metrics
    tracing: Tracing
    policy: PolicySource
    audit: AuditLog | None
    recent: RecentExchanges
    identity: IdentityResolver
    jwks: JwksSource | None = None
    ssl_context: ssl.SSLContext | None = None
    strip_upstream_headers: frozenset[bytes] = frozenset()
    _warnings: list[str] = field(default_factory=list)

    @property
    def observer(self) -> bool:
        return self.policy.current() is None and self.hooks.opa is None

    async def start(self) -> None:
        if self.jwks is not None:
            await self.jwks.start()
        if self.audit is not None:
            self.audit.start()
        self.policy.start_watching(self._policy_changed)

    def warnings(self) -> list[str]:
        out = list(self._warnings)
        if self.observer:
            out.append(OBSERVER_WARNING)
        if self.audit is not None and not self.audit.healthy:
            out.append(f"audit sink failing: {self.audit.last_error}")
        if self.policy.last_error:
            out.append(f"last policy reload failed (still serving revision {self.policy.revision}): "
                       f"{self.policy.last_error}")
        return out

    def status(self) -> dict[str, Any]:
        st: dict[str, Any] = {
            "mode": "observer" if self.observer else "enforce",
            "backend": "opa" if self.hooks.opa is not None else "yaml",
            "warnings": self.warnings(),
            "policy": {"revision": self.policy.revision, "files": self.policy.files,
                       "reloads": self.policy.reloads, "reload_errors": self.policy.reload_errors,
                       "last_error": self.policy.last_error, "loaded_at": self.policy.loaded_at},
            "audit": None if self.audit is None else {
                "healthy": self.audit.healthy, "last_error": self.audit.last_error,
                "acked_seq": self.audit.acked_seq},
        }
        reason = self.hooks.ready()
        if reason:
            st["not_ready"] = reason
        return st

    def render_metrics(self) -> tuple[bytes, str]:
        return self.metrics.render()

    def reload(self) -> None:
        """SIGHUP: reload policy files now (an invalid file keeps the last good policy)."""
        self.policy.reload()

    def _policy_changed(self, ok: bool, revision: str | None) -> None:
        self.metrics.policy_reloaded(ok, revision or "")

    def close(self) -> None:
        self.policy.stop_watching()
        if self.audit is not None:
            self.audit.close()
        self.tracing.shutdown()


def _plain(value: Any) -> Any:
    """Config sections arrive as read-only mappings; section parsers validate plain JSON-like data."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def build_runtime(config: GatewayConfig, *, config_dir: str | None = None) -> Runtime:
    """Build every part from config; raises ConfigError (refuse to start) on anything invalid."""
    identity_section = _plain(config.identity)
    identity_cfg = parse_identity_config(identity_section)
    jwks = jwks_source_for(identity_cfg)
    identity = IdentityResolver.from_config(identity_section, jwks=jwks)
    telemetry_section = _plain(config.telemetry)
    metrics = Metrics.from_config(telemetry_section)
    tracing = Tracing.from_config(telemetry_section)
    policy_section = _plain(config.policy)
    opa = None
    if policy_section.get("backend") == "opa":
        opa = OpaBackend.from_section(policy_section["opa"])
        policy = PolicySource(None)
    else:
        policy = PolicySource.from_config(policy_section, base_dir=config_dir)
    audit_section = _plain(config.audit)
    audit_log = AuditLog.from_config(audit_section, base_dir=config_dir)
    audit = audit_log if audit_log.enabled else None
    recent = RecentExchanges()

    def current_policy() -> Policy | None:
        return policy.current()

    hooks = GatewayHooks(identity=identity, policy=current_policy, metrics=metrics, tracing=tracing,
                         audit=audit, recent=recent, opa=opa)
    ssl_context = None
    if identity.mtls is not None:
        from mcpgate.runtime.tls import server_ssl_context

        try:
            ssl_context = server_ssl_context(identity.mtls)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"cannot set up mTLS: {exc}", path="identity.mtls") from None
    rt = Runtime(hooks=hooks, metrics=metrics, tracing=tracing, policy=policy, audit=audit, recent=recent,
                 identity=identity, jwks=jwks, ssl_context=ssl_context,
                 strip_upstream_headers=identity.strip_upstream)
    if policy.revision:
        metrics.policy_reloaded(True, policy.revision)
    if audit is not None:
        metrics.add_collect_hook(_audit_metrics(audit, metrics))
    else:
        # Switched off on purpose is not failing: the `mcpgate_audit_healthy == 0` alert must not fire.
        metrics.audit_state(0, 0, True)
    return rt


def _audit_metrics(audit: AuditLog, metrics: Metrics) -> Callable[[], None]:
    """`mcpgate_audit_*` read from the log's own stats at scrape time (its writer thread keeps them)."""

    def copy() -> None:
        st = audit.stats()
        metrics.audit_state(st.records_written, st.write_errors, st.healthy, st.records_dropped)

    return copy
