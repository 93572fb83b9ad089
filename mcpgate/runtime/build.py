"""Builds the runtime from config: the hooks the data plane calls, TLS, and what health reports."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from typing import Any

from mcpgate.config.model import GatewayConfig
from mcpgate.exchange import Hooks
from mcpgate.runtime.observer import ObserverHooks

OBSERVER_WARNING = ("no policy configured: running as an OBSERVER (every call is forwarded; identity, "
                    "metrics and audit stay on). Configure `policy.files` to enforce.")


@dataclass
class Runtime:
    hooks: Hooks
    ssl_context: ssl.SSLContext | None = None
    strip_upstream_headers: frozenset[bytes] = frozenset()
    observer: bool = True
    _warnings: list[str] = field(default_factory=list)

    def warnings(self) -> list[str]:
        return list(self._warnings)

    def status(self) -> dict[str, Any]:
        st: dict[str, Any] = {"mode": "observer" if self.observer else "enforce", "warnings": self.warnings()}
        reason = self.hooks.ready()
        if reason:
            st["not_ready"] = reason
        return st

    def render_metrics(self) -> tuple[bytes, str]:
        return b"", "text/plain; version=0.0.4; charset=utf-8"

    def reload(self) -> None:
        return None

    def close(self) -> None:
        return None


def build_runtime(config: GatewayConfig) -> Runtime:
    rt = Runtime(hooks=ObserverHooks())
    if not config.policy.get("files"):
        rt._warnings.append(OBSERVER_WARNING)
    return rt
