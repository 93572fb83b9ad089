"""The `audit:` config section: strict schema check (`audit.section.schema.json`) and its typed form."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from mcpgate.audit.record import check_loggable_fields
from mcpgate.config.schema import load_package_schema, schema_error
from mcpgate.errors import ConfigError

__all__ = ["SECTION_SCHEMA", "AuditConfig", "parse_section"]

SECTION_SCHEMA = "audit.section.schema.json"

SinkKind = Literal["file", "stdout", "off"]
FsyncMode = Literal["group", "always", "never"]
FailureMode = Literal["refuse", "continue"]


@dataclass(frozen=True, slots=True)
class AuditConfig:
    """The validated `audit:` section with defaults filled in (see docs/audit.md for each key)."""

    sink: SinkKind = "file"
    path: str = "audit/audit.jsonl"
    fsync: FsyncMode = "group"
    group_commit_ms: float = 2.0
    rotate_bytes: int | None = 100 * 1024 * 1024
    rotate_interval_s: float | None = None
    keep_files: int = 0
    on_failure: FailureMode = "refuse"
    max_queue: int = 10_000
    log_arguments: Mapping[str, frozenset[str]] = field(default_factory=dict)


def _where(path: tuple[str | int, ...]) -> str:
    return ".".join(["audit", *(str(p) for p in path)])


def parse_section(section: Mapping[str, Any] | None, *, base_dir: str | None = None) -> AuditConfig:
    """Check `section` against the published schema and build an `AuditConfig`.

    Raises `ConfigError` naming the key path (the config loader adds file and line when it has them).
    A relative `path` resolves against `base_dir` (the config file's directory) when given.
    """
    value: Mapping[str, Any] = section or {}
    found = schema_error(dict(value), load_package_schema(SECTION_SCHEMA))
    if found is not None:
        where, message = found
        raise ConfigError(message, path=_where(where))
    defaults = AuditConfig()
    log_arguments = {str(tool): frozenset(map(str, names))
                     for tool, names in (value.get("log_arguments") or {}).items()}
    secret = check_loggable_fields(log_arguments)
    if secret:
        tool, name = secret[0]
        raise ConfigError(f"argument `{name}` of tool `{tool}` looks like a secret and is never logged",
                          path=_where(("log_arguments", tool)))
    path = str(value.get("path", defaults.path))
    if base_dir is not None and not os.path.isabs(path):
        path = os.path.join(base_dir, path)
    rotate_bytes = value.get("rotate_bytes", defaults.rotate_bytes)
    rotate_interval = value.get("rotate_interval_s", defaults.rotate_interval_s)
    return AuditConfig(
        sink=value.get("sink", defaults.sink),
        path=path,
        fsync=value.get("fsync", defaults.fsync),
        group_commit_ms=float(value.get("group_commit_ms", defaults.group_commit_ms)),
        rotate_bytes=int(rotate_bytes) if rotate_bytes else None,
        rotate_interval_s=float(rotate_interval) if rotate_interval else None,
        keep_files=int(value.get("keep_files", defaults.keep_files)),
        on_failure=value.get("on_failure", defaults.on_failure),
        max_queue=int(value.get("max_queue", defaults.max_queue)),
        log_arguments=log_arguments,
    )
