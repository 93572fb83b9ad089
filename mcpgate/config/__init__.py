"""Gateway configuration: a strict YAML file with a published JSON Schema, overridable by environment.

Public API: `load_config()` -> `GatewayConfig` (frozen dataclasses, built once at start-up), and the
strict YAML + schema helpers (`load_yaml`, `load_yaml_file`, `validate`) the policy engine shares.
"""

from __future__ import annotations

from mcpgate.config.addresses import HostPort, UpstreamUrl, parse_host_port, parse_origin, parse_upstream_url
from mcpgate.config.env import ALIASES, CONFIG_FILE_VAR, ENV_PREFIX, env_var_name
from mcpgate.config.loader import (
    CONFIG_SCHEMA,
    DEFAULT_ADMIN_LISTEN,
    DEFAULT_LISTEN,
    bundled_schema,
    check_config,
    config_schema,
    load_config,
)
from mcpgate.config.model import ConfigOrigin, GatewayConfig, Limits, Timeouts, UpstreamConfig
from mcpgate.config.schema import SCHEMA_BASE_URI, load_package_schema, schema_error, schema_registry
from mcpgate.config.yaml_source import YamlDoc, format_path, load_yaml, load_yaml_file, validate

__all__ = [
    "ALIASES",
    "CONFIG_FILE_VAR",
    "CONFIG_SCHEMA",
    "DEFAULT_ADMIN_LISTEN",
    "DEFAULT_LISTEN",
    "ENV_PREFIX",
    "SCHEMA_BASE_URI",
    "ConfigOrigin",
    "GatewayConfig",
    "HostPort",
    "Limits",
    "Timeouts",
    "UpstreamConfig",
    "UpstreamUrl",
    "YamlDoc",
    "bundled_schema",
    "check_config",
    "config_schema",
    "env_var_name",
    "format_path",
    "load_config",
    "load_package_schema",
    "load_yaml",
    "load_yaml_file",
    "parse_host_port",
    "parse_origin",
    "parse_upstream_url",
    "schema_error",
    "schema_registry",
    "validate",
]
