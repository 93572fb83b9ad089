"""Environment variables: `MCPGATE_<SECTION>__<KEY>` for every config key, plus a few short aliases."""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from mcpgate.config.schema import SCHEMA_BASE_URI, Path, schema_registry
from mcpgate.config.yaml_source import load_yaml
from mcpgate.errors import ConfigError

__all__ = ["ALIASES", "CONFIG_FILE_VAR", "ENV_PREFIX", "EnvSetting", "env_settings", "env_var_name",
           "schema_keys"]

ENV_PREFIX = "MCPGATE_"
CONFIG_FILE_VAR = "MCPGATE_CONFIG"
# Short names for the settings people set most; each is equivalent to its long form.
ALIASES: Mapping[str, Path] = {
    "MCPGATE_UPSTREAM": ("upstream", "url"),
    "MCPGATE_ADMIN_LISTEN": ("admin", "listen"),
}


@dataclass(frozen=True, slots=True)
class EnvSetting:
    var: str
    path: Path
    value: Any


def env_var_name(path: Path) -> str:
    """`("limits", "max_body_bytes")` -> `MCPGATE_LIMITS__MAX_BODY_BYTES`."""
    return ENV_PREFIX + "__".join(str(p).upper() for p in path)


def _resolve(schema: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """`schema` and whatever its `$ref`s point at (relative to the packaged config schema)."""
    out = [schema]
    resolver = schema_registry().resolver(base_uri=SCHEMA_BASE_URI + "config.schema.json")
    while "$ref" in out[-1]:
        out.append(resolver.lookup(out[-1]["$ref"]).contents)
    return out


def _child(schema: Mapping[str, Any], key: str) -> tuple[Mapping[str, Any] | None, list[str]]:
    """The subschema for `key` (None if the schema forbids it) and the keys the schema names."""
    known: list[str] = []
    closed = False
    extra: Mapping[str, Any] = {}
    for part in _resolve(schema):
        props = part.get("properties", {})
        known.extend(props)
        if key in props:
            return props[key], known
        additional = part.get("additionalProperties", part.get("unevaluatedProperties", True))
        if additional is False:
            closed = True
        elif isinstance(additional, Mapping):
            extra = additional
    return (None if closed else extra), known


def _is_string(schema: Mapping[str, Any]) -> bool:
    """A key that only takes text (or null) gets the variable's raw value, never a YAML reading of it."""
    for part in _resolve(schema):
        types = part.get("type")
        types = [types] if isinstance(types, str) else types or []
        if "string" in types and set(types) <= {"string", "null"}:
            return True
    return False


def schema_keys(schema: Mapping[str, Any], prefix: Path = (), *, leaves_only: bool = False) -> Iterator[Path]:
    """Every key path the schema names, depth first (for docs and env var lists)."""
    for part in _resolve(schema):
        for key, sub in part.get("properties", {}).items():
            children = list(schema_keys(sub, (*prefix, key), leaves_only=leaves_only))
            if not (leaves_only and children):
                yield (*prefix, key)
            yield from children


def env_settings(env: Mapping[str, str], schema: Mapping[str, Any]) -> list[EnvSetting]:
    """The config values set by `MCPGATE_*` variables, shortest path first; unknown names are errors."""
    out: list[EnvSetting] = []
    seen: dict[Path, str] = {}
    for var in sorted(env):
        if not var.startswith(ENV_PREFIX) or var == CONFIG_FILE_VAR:
            continue
        path = ALIASES.get(var) or _path_of(var, schema)
        if path in seen:
            raise ConfigError(f"`{var}` and `{seen[path]}` both set the same key; keep one",
                              file=f"${var}", path=".".join(map(str, path)))
        seen[path] = var
        sub = _subschema(schema, path)
        raw = env[var]
        value = raw if _is_string(sub) else load_yaml(raw, file=f"${var}").value
        out.append(EnvSetting(var, path, value))
    out.sort(key=lambda s: len(s.path))
    return out


def _subschema(schema: Mapping[str, Any], path: Path) -> Mapping[str, Any]:
    for key in path:
        sub, _ = _child(schema, str(key))
        schema = sub or {}
    return schema


def _path_of(var: str, schema: Mapping[str, Any]) -> Path:
    rest = var[len(ENV_PREFIX):]
    if rest != rest.upper():
        raise ConfigError(f"environment variable `{var}` must be upper case: `{var.upper()}`",
                          file=f"${var}")
    parts = rest.lower().split("__")
    if not all(parts):
        raise ConfigError(f"environment variable `{var}` has an empty name part "
                          "(`__` separates nesting levels)", file=f"${var}")
    path: Path = ()
    for key in parts:
        sub, known = _child(schema, key)
        if sub is None:
            candidates = [env_var_name((*path, k)) for k in known]
            if not path:
                candidates += [*ALIASES, CONFIG_FILE_VAR]
            guess = env_var_name((*path, key))
            close = difflib.get_close_matches(guess, candidates, n=1, cutoff=0.75)
            hint = f" (did you mean `{close[0]}`?)" if close else ""
            raise ConfigError(f"unknown environment variable `{var}`{hint}", file=f"${var}")
        path = (*path, key)
        schema = sub
    return path
