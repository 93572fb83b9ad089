"""The telemetry section schema is strict and its defaults match the settings classes and the docs."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from mcpgate.errors import ConfigError
from mcpgate.telemetry.settings import (
    MetricsSettings,
    TracingSettings,
    check_section,
    metrics_settings,
    tracing_settings,
)

DOCS = Path(__file__).resolve().parents[2] / "docs"


def schema() -> dict[str, Any]:
    text = (resources.files("mcpgate") / "schemas" / "telemetry.section.schema.json").read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@pytest.mark.parametrize(("section", "path"), [
    ({"logs": {}}, "telemetry"),
    ({"metrics": {"buckets": [1]}}, "telemetry.metrics"),
    ({"tracing": {"exporter": "grpc"}}, "telemetry.tracing"),
    ({"metrics": {"caller_label": "user"}}, "telemetry.metrics.caller_label"),
    ({"metrics": {"max_label_values": 0}}, "telemetry.metrics.max_label_values"),
    ({"metrics": {"resource_uri_label": "yes"}}, "telemetry.metrics.resource_uri_label"),
    ({"tracing": {"sampler_ratio": 1.5}}, "telemetry.tracing.sampler_ratio"),
    ({"tracing": {"endpoint": "grpc://collector:4317"}}, "telemetry.tracing.endpoint"),
    ({"tracing": {"service_name": ""}}, "telemetry.tracing.service_name"),
    ({"tracing": {"headers": {"x": 1}}}, "telemetry.tracing.headers.x"),
])
def test_invalid_sections_name_the_key(section: dict[str, Any], path: str) -> None:
    with pytest.raises(ConfigError) as info:
        check_section(section)
    assert info.value.path == path


def test_empty_section_gives_defaults() -> None:
    assert metrics_settings({}) == MetricsSettings()
    assert tracing_settings(None) == TracingSettings()


def test_schema_defaults_match_settings_classes() -> None:
    props = schema()["properties"]
    for name, cls in (("metrics", MetricsSettings), ("tracing", TracingSettings)):
        defaults = {k: v["default"] for k, v in props[name]["properties"].items()}
        instance = cls()
        assert set(defaults) == set(cls.__slots__)
        for key, default in defaults.items():
            assert getattr(instance, key) == default, f"{name}.{key}"


def test_every_schema_key_is_documented() -> None:
    props = schema()["properties"]
    for name, doc in (("metrics", "metrics.md"), ("tracing", "tracing.md")):
        text = (DOCS / doc).read_text("utf-8")
        for key in props[name]["properties"]:
            assert f"| `{key}` |" in text, f"{name}.{key} not documented in {doc}"


def test_full_section_is_read() -> None:
    section = {
        "metrics": {"caller_label": "full", "max_label_values": 50, "resource_uri_label": True},
        "tracing": {"enabled": True, "endpoint": "https://otel.example:4318/v1/traces", "sampler_ratio": 0.5,
                    "service_name": "gw", "headers": {"authorization": "Bearer x"}, "resource_uri": True},
    }
    assert metrics_settings(section) == MetricsSettings("full", 50, True)
    assert tracing_settings(section) == TracingSettings(True, "https://otel.example:4318/v1/traces",
                                                        {"authorization": "Bearer x"}, 0.5, "gw", True)
