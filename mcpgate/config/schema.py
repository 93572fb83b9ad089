"""JSON Schema (Draft 2020-12) checks with plain-words messages; packaged schemas resolve offline."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterator, Mapping
from functools import cache
from importlib import resources
from typing import Any

import jsonschema
import referencing
from jsonschema.exceptions import ValidationError, best_match
from referencing.jsonschema import DRAFT202012

from mcpgate.errors import ConfigError

__all__ = ["SCHEMA_BASE_URI", "Path", "load_package_schema", "package_schema_names", "schema_error",
           "schema_registry"]

Path = tuple[str | int, ...]

# Relative `$ref`s between the schemas in `mcpgate/schemas/` resolve against this base.
SCHEMA_BASE_URI = "https://mcpgate.invalid/schemas/"


@cache
def _schema_files() -> dict[str, Mapping[str, Any]]:
    out: dict[str, Mapping[str, Any]] = {}
    for entry in (resources.files("mcpgate") / "schemas").iterdir():
        if entry.name.endswith(".json"):
            out[entry.name] = json.loads(entry.read_text("utf-8"))
    return out


def package_schema_names() -> list[str]:
    """File names of the schemas shipped in `mcpgate/schemas/`."""
    return list(_schema_files())


def load_package_schema(name: str) -> Mapping[str, Any]:
    """A schema shipped in `mcpgate/schemas/` by file name, e.g. `config.schema.json`."""
    try:
        return _schema_files()[name]
    except KeyError:
        raise ConfigError(f"no packaged schema `{name}`") from None


@cache
def schema_registry() -> referencing.Registry[Any]:
    """Every packaged schema, under `SCHEMA_BASE_URI + file name`, so relative `$ref`s resolve offline."""
    resources_ = [
        (SCHEMA_BASE_URI + name, DRAFT202012.create_resource(contents))
        for name, contents in _schema_files().items()
    ]
    return referencing.Registry().with_resources(resources_).crawl()


@cache
def _validator(schema_json: str) -> jsonschema.Draft202012Validator:
    schema = json.loads(schema_json)
    return jsonschema.Draft202012Validator(schema, registry=schema_registry())


def schema_error(value: Any, schema: Mapping[str, Any]) -> tuple[Path, str] | None:
    """The most relevant schema violation in `value` as (path, plain-words message), or None if valid."""
    validator = _validator(json.dumps(schema, sort_keys=True))
    error = best_match(validator.iter_errors(value))
    if error is None:
        return None
    return _describe(error)


_TYPE_WORDS = {
    "object": "a mapping", "array": "a list", "string": "a string", "integer": "an integer",
    "number": "a number", "boolean": "true or false", "null": "null",
}


def _type_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "a mapping"


def _show(value: Any) -> str:
    """A value as it goes between backticks in a one-line message."""
    text = value if isinstance(value, str) and value.isprintable() else json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _known_keys(schema: Mapping[str, Any]) -> list[str]:
    return sorted(schema.get("properties", {}))


def _unknown_keys(error: ValidationError) -> Iterator[str]:
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    known = set(schema.get("properties", {}))
    patterns = [re.compile(p) for p in schema.get("patternProperties", {})]
    if isinstance(error.instance, Mapping):
        for key in error.instance:
            if key not in known and not any(p.search(key) for p in patterns):
                yield key


def _describe(error: ValidationError) -> tuple[Path, str]:
    path: Path = tuple(error.absolute_path)
    schema: Mapping[str, Any] = error.schema if isinstance(error.schema, Mapping) else {}
    kw, inst = error.validator, error.instance
    arg: Any = error.validator_value
    if kw in ("additionalProperties", "unevaluatedProperties"):
        extra = next(_unknown_keys(error), None)
        if extra is not None:
            known = _known_keys(schema)
            close = difflib.get_close_matches(extra, known, n=1, cutoff=0.6)
            if close:
                hint = f" (did you mean `{close[0]}`?)"
            elif known:
                hint = " (expected one of: " + ", ".join(f"`{k}`" for k in known) + ")"
            else:
                hint = ""
            return (*path, extra), f"unknown key `{_show(extra)}`{hint}"
    if kw == "type":
        types = [arg] if isinstance(arg, str) else list(arg)
        want = " or ".join(_TYPE_WORDS.get(t, t) for t in types)
        return path, f"expected {want}, got {_type_of(inst)} (`{_show(inst)}`)"
    if kw == "required":
        missing = [k for k in arg if isinstance(inst, Mapping) and k not in inst]
        return path, f"missing required key `{missing[0] if missing else arg[0]}`"
    if kw == "enum":
        return path, f"`{_show(inst)}` is not one of: " + ", ".join(f"`{_show(v)}`" for v in arg)
    if kw == "const":
        return path, f"expected `{_show(arg)}`, got `{_show(inst)}`"
    if kw == "minimum":
        return path, f"must be at least {arg}, got {_show(inst)}"
    if kw == "exclusiveMinimum":
        return path, f"must be greater than {arg}, got {_show(inst)}"
    if kw == "maximum":
        return path, f"must be at most {arg}, got {_show(inst)}"
    if kw == "exclusiveMaximum":
        return path, f"must be less than {arg}, got {_show(inst)}"
    if kw == "minLength":
        return path, "must not be empty" if arg == 1 else f"must be at least {arg} characters long"
    if kw == "maxLength":
        return path, f"must be at most {arg} characters long"
    if kw == "minItems":
        return path, "must not be empty" if arg == 1 else f"must have at least {arg} items"
    if kw == "maxItems":
        return path, f"must have at most {arg} items"
    if kw == "uniqueItems":
        return path, "items must be unique"
    if kw == "pattern":
        return path, f"`{_show(inst)}` does not match the pattern `{arg}`"
    if kw == "minProperties":
        return path, "must not be empty" if arg == 1 else f"must have at least {arg} keys"
    if kw == "propertyNames" and error.context:
        return path, f"invalid key: {error.context[0].message}"
    message = str(error.message)
    return path, message[:1].lower() + message[1:]
