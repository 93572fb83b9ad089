"""The `telemetry:` config section: checked against its packaged JSON Schema, read into typed settings."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import jsonschema
from jsonschema.exceptions import best_match

from mcpgate.errors import ConfigError

SCHEMA_FILE = "telemetry.section.schema.json"


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    caller_label: str = "workload"
    max_label_values: int = 1000
    resource_uri_label: bool = False


@dataclass(frozen=True, slots=True)
class TracingSettings:
    enabled: bool = False
    endpoint: str = "http://127.0.0.1:4318/v1/traces"
    headers: Mapping[str, str] = field(default_factory=dict)
    sampler_ratio: float = 1.0
    service_name: str = "mcpgate"
    resource_uri: bool = False


@cache
def _validator() -> jsonschema.Draft202012Validator:
    text = (resources.files("mcpgate") / "schemas" / SCHEMA_FILE).read_text("utf-8")
    return jsonschema.Draft202012Validator(json.loads(text))


def check_section(section: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """The section itself when valid; else a `ConfigError` naming the offending key path."""
    value: Mapping[str, Any] = section if section is not None else {}
    error = best_match(_validator().iter_errors(value))
    if error is not None:
        path = ".".join(["telemetry", *(str(p) for p in error.absolute_path)])
        raise ConfigError(f"invalid telemetry setting: {error.message}", path=path)
    return value


def metrics_settings(section: Mapping[str, Any] | None) -> MetricsSettings:
    raw = check_section(section).get("metrics", {})
    return MetricsSettings(
        caller_label=raw.get("caller_label", "workload"),
        max_label_values=int(raw.get("max_label_values", 1000)),
        resource_uri_label=bool(raw.get("resource_uri_label", False)),
    )


def tracing_settings(section: Mapping[str, Any] | None) -> TracingSettings:
    raw = check_section(section).get("tracing", {})
    return TracingSettings(
        enabled=bool(raw.get("enabled", False)),
        endpoint=raw.get("endpoint", "http://127.0.0.1:4318/v1/traces"),
        headers=dict(raw.get("headers", {})),
        sampler_ratio=float(raw.get("sampler_ratio", 1.0)),
        service_name=raw.get("service_name", "mcpgate"),
        resource_uri=bool(raw.get("resource_uri", False)),
    )
