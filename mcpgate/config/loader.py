"""Builds a `GatewayConfig` once at start-up: defaults < file < environment < command-line flags."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from mcpgate.config.addresses import parse_host_port, parse_origin, parse_upstream_url
from mcpgate.config.env import CONFIG_FILE_VAR, env_settings
from mcpgate.config.model import ConfigOrigin, GatewayConfig, Limits, Timeouts, UpstreamConfig
from mcpgate.config.schema import (
    SCHEMA_BASE_URI,
    Path,
    load_package_schema,
    package_schema_names,
    schema_error,
)
from mcpgate.config.yaml_source import YamlDoc, load_yaml_file
from mcpgate.errors import ConfigError

__all__ = ["CONFIG_SCHEMA", "DEFAULT_ADMIN_LISTEN", "DEFAULT_LISTEN", "bundled_schema", "check_config",
           "config_schema", "load_config"]

CONFIG_SCHEMA = "config.schema.json"
SECTIONS = ("identity", "policy", "telemetry", "audit")
DEFAULT_LISTEN = "127.0.0.1:4180"
DEFAULT_ADMIN_LISTEN = "127.0.0.1:9180"
NO_UPSTREAM = ("no upstream: set `upstream.url` in the config file, `--upstream`, "
               "or the `MCPGATE_UPSTREAM` environment variable")


def config_schema() -> Mapping[str, Any]:
    """The config file's JSON Schema as packaged (section schemas referenced by relative `$ref`)."""
    return load_package_schema(CONFIG_SCHEMA)


def bundled_schema() -> dict[str, Any]:
    """The config schema with every other packaged schema embedded in `$defs` (each keeps its `$id`, so
    the relative `$ref`s still resolve): one self-contained file an editor can use offline."""
    out = copy.deepcopy(dict(config_schema()))
    defs = out.setdefault("$defs", {})
    for name in sorted(package_schema_names()):
        if name != CONFIG_SCHEMA:
            embedded = copy.deepcopy(dict(load_package_schema(name)))
            embedded["$id"] = SCHEMA_BASE_URI + name
            defs[name.removesuffix(".json")] = embedded
    return out


def load_config(*, file: str | None, env: Mapping[str, str], overrides: Mapping[str, Any],
                override_labels: Mapping[str, str] | None = None) -> GatewayConfig:
    """Read, merge and validate everything once. `overrides` maps dotted key paths (`upstream.url`) to
    values, e.g. from CLI flags; `override_labels` names their source (`--upstream`) for error messages.

    Raises `ConfigError` naming the file and line, environment variable or flag at fault.
    """
    raw, origin, source = _resolve(file, env, overrides, override_labels or {})
    if not _get(raw, ("upstream", "url")):
        raise ConfigError(NO_UPSTREAM, file=origin.doc.file if origin.doc else None)
    return _build(raw, origin, source)


def check_config(*, file: str | None, env: Mapping[str, str]) -> GatewayConfig | None:
    """Like `load_config` without flags; returns None (instead of failing) if only the upstream is
    missing, since `serve --upstream` may supply it."""
    raw, origin, source = _resolve(file, env, {}, {})
    if not _get(raw, ("upstream", "url")):
        _build({**raw, "upstream": {**raw.get("upstream", {}), "url": "http://placeholder/mcp"}},
               origin, source)
        return None
    return _build(raw, origin, source)


def _get(data: Mapping[str, Any], path: Path) -> Any:
    node: Any = data
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


def _set(data: dict[str, Any], path: Path, value: Any) -> None:
    node = data
    for key in path[:-1]:
        child = node.get(str(key))
        if not isinstance(child, dict):
            child = node[str(key)] = {}
        node = child
    node[str(path[-1])] = value


def _resolve(file: str | None, env: Mapping[str, str], overrides: Mapping[str, Any],
             labels: Mapping[str, str]) -> tuple[dict[str, Any], ConfigOrigin, str]:
    schema = config_schema()
    file = file or env.get(CONFIG_FILE_VAR) or None
    doc: YamlDoc | None = None
    raw: dict[str, Any] = {}
    sources: list[str] = []
    if file is not None:
        doc = load_yaml_file(file)
        sources.append(f"file {file}")
        if doc.value is None:
            raw = {}
        elif isinstance(doc.value, dict):
            raw = copy.deepcopy(doc.value)  # the merge below must not alter the parsed document
        else:
            raise doc.error((), "the config file must be a mapping of keys to values")
    set_by: dict[Path, str] = {}
    settings = env_settings(env, schema)
    for setting in settings:
        _set(raw, setting.path, setting.value)
        set_by[setting.path] = f"${setting.var}"
    if settings:
        sources.append("env " + ",".join(sorted(s.var for s in settings)))
    for dotted, value in overrides.items():
        path = tuple(dotted.split("."))
        _set(raw, path, value)
        set_by[path] = labels.get(dotted, "command line")
    if overrides:
        sources.append("flags " + ",".join(labels.get(k, k) for k in overrides))
    origin = ConfigOrigin(doc, set_by)
    found = schema_error(raw, schema)
    if found is not None:
        raise origin.error(*found)
    return raw, origin, "; ".join(sources) or "defaults"


def _build(raw: Mapping[str, Any], origin: ConfigOrigin, source: str) -> GatewayConfig:
    def listen(path: Path, default: str) -> tuple[str, int]:
        text = _get(raw, path) or default
        try:
            return parse_host_port(text)
        except ValueError as e:
            raise origin.error(path, str(e)) from None

    listen_host, listen_port = listen(("listen",), DEFAULT_LISTEN)
    admin = raw.get("admin", {})
    admin_host, admin_port = listen(("admin", "listen"), DEFAULT_ADMIN_LISTEN)
    if admin.get("enabled", True) and (admin_host, admin_port) == (listen_host, listen_port) and listen_port:
        raise origin.error(("admin", "listen"), f"admin listener `{admin_host}:{admin_port}` is the same "
                           "address as `listen`")
    up = raw.get("upstream", {})
    try:
        parse_upstream_url(up["url"])
    except ValueError as e:
        raise origin.error(("upstream", "url"), str(e)) from None
    upstream = UpstreamConfig(up["url"], up.get("host_header"), up.get("pool_size", 64))
    origins: list[str] = []
    for i, value in enumerate(raw.get("allowed_origins", [])):
        try:
            origins.append(parse_origin(value))
        except ValueError as e:
            raise origin.error(("allowed_origins", i), str(e)) from None
    timeouts = {k: float(v) for k, v in raw.get("timeouts", {}).items()}
    return GatewayConfig(
        listen_host=listen_host,
        listen_port=listen_port,
        upstream=upstream,
        admin_host=admin_host,
        admin_port=admin_port if admin.get("enabled", True) else None,
        public_base_path=raw.get("public_base_path") or upstream.path,
        allowed_origins=tuple(origins),
        limits=Limits(**raw.get("limits", {})),
        timeouts=Timeouts(**timeouts),
        identity=MappingProxyType(dict(raw.get("identity") or {})),
        policy=MappingProxyType(dict(raw.get("policy") or {})),
        telemetry=MappingProxyType(dict(raw.get("telemetry") or {})),
        audit=MappingProxyType(dict(raw.get("audit") or {})),
        source=source,
        origin=origin,
    )
