"""The validated gateway config as frozen dataclasses: what the data plane reads, never re-parsed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from mcpgate.config.addresses import parse_upstream_url
from mcpgate.config.yaml_source import YamlDoc, format_path
from mcpgate.errors import ConfigError

__all__ = ["ConfigOrigin", "GatewayConfig", "Limits", "Timeouts", "UpstreamConfig"]

MiB = 1024 * 1024
KiB = 1024


def _empty() -> Mapping[str, Any]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Limits:
    max_body_bytes: int = 16 * MiB
    max_header_bytes: int = 64 * KiB
    max_headers: int = 100
    max_json_depth: int = 64
    max_batch: int = 100
    max_sse_event_bytes: int = 16 * MiB
    max_connections: int = 10_000
    max_inflight_per_connection: int = 64


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect_s: float = 5.0
    response_s: float = 300.0  # deadline for the upstream's response headers (first byte)
    idle_s: float = 0.0  # 0 = never cut an idle stream
    drain_s: float = 20.0
    client_header_s: float = 15.0  # slowloris guard: time to receive the request head


@dataclass(frozen=True, slots=True)
class UpstreamConfig:
    """The MCP server behind the gateway. `host`, `port`, `path` are derived from `url` (validated here)."""

    url: str
    host_header: str | None = None  # None: the url's host[:port]; see `authority`
    pool_size: int = 64
    host: str = field(init=False)
    port: int = field(init=False)
    path: str = field(init=False)
    authority: str = field(init=False)

    def __post_init__(self) -> None:
        try:
            parsed = parse_upstream_url(self.url)
        except ValueError as e:
            raise ConfigError(str(e), path="upstream.url") from None
        object.__setattr__(self, "host", parsed.host)
        object.__setattr__(self, "port", parsed.port)
        object.__setattr__(self, "path", parsed.path)
        object.__setattr__(self, "authority", self.host_header or parsed.authority)


@dataclass(frozen=True, slots=True)
class ConfigOrigin:
    """Where each value came from, so a later check (e.g. a section's owner) can name the file and line."""

    doc: YamlDoc | None = None
    overrides: Mapping[tuple[str | int, ...], str] = field(default_factory=dict)  # path -> `$ENV` / `--flag`

    def locate(self, path: Sequence[str | int]) -> tuple[str | None, int | None]:
        key = tuple(path)
        for n in range(len(key), 0, -1):
            label = self.overrides.get(key[:n])
            if label is not None:
                return label, None
        if self.doc is None:
            return None, None
        return self.doc.file, self.doc.line_of(key)

    def error(self, path: Sequence[str | int], message: str) -> ConfigError:
        """A `ConfigError` naming the file and line (or env var / flag) that set `path`."""
        file, line = self.locate(path)
        return ConfigError(message, file=file, line=line, path=format_path(path))


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    listen_host: str
    listen_port: int
    upstream: UpstreamConfig
    admin_host: str = "127.0.0.1"
    admin_port: int | None = 9180  # None: no admin listener
    public_base_path: str = ""  # "": the upstream url's path
    allowed_origins: tuple[str, ...] = ()  # a present Origin not listed -> 403
    limits: Limits = field(default_factory=Limits)
    timeouts: Timeouts = field(default_factory=Timeouts)
    # Raw sections, checked against their section schemas; their owners parse them.
    identity: Mapping[str, Any] = field(default_factory=_empty)
    policy: Mapping[str, Any] = field(default_factory=_empty)
    telemetry: Mapping[str, Any] = field(default_factory=_empty)
    audit: Mapping[str, Any] = field(default_factory=_empty)
    source: str = "defaults"  # where it came from, for health/debug
    origin: ConfigOrigin = field(default_factory=ConfigOrigin, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.public_base_path:
            object.__setattr__(self, "public_base_path", self.upstream.path)
