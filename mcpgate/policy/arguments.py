"""Argument constraints: a JSON Schema (2020-12) on `params.arguments`, compiled once at load time."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jsonschema
from jsonschema.exceptions import SchemaError

from mcpgate.policy.fastschema import Check, compile_fast
from mcpgate.policy.patterns import PatternError


@dataclass(frozen=True, slots=True)
class ArgCheck:
    """A compiled argument schema. `properties` are the argument names it constrains (for schema checks)."""

    schema: Any
    properties: tuple[str, ...]
    validator: jsonschema.protocols.Validator = field(repr=False, compare=False)
    fast: Check | None = field(default=None, repr=False, compare=False)

    def check(self, arguments: Any) -> bool | None:
        """True / False, or None when the schema could not be evaluated (an erroring rule never grants)."""
        value = {} if arguments is None else arguments
        try:
            if self.fast is not None:
                return self.fast(value)
            return bool(self.validator.is_valid(value))
        except Exception:  # a pathological regex, recursion, ...: the caller decides by effect
            return None

    def explain(self, arguments: Any) -> str | None:
        """The first violation, in words, or None when the arguments satisfy the schema."""
        try:
            err = jsonschema.exceptions.best_match(
                self.validator.iter_errors({} if arguments is None else arguments))
        except Exception as e:
            return f"argument schema failed to evaluate: {e}"
        if err is None:
            return None
        where = "/".join(str(p) for p in err.absolute_path)
        return f"arguments{'.' + where if where else ''}: {err.message}"


def compile_arguments(shorthand: Mapping[str, Any] | None, schema: Any) -> ArgCheck | None:
    """From a rule's `arguments` (name → schema, all required) or `arguments_schema` (a whole schema)."""
    if shorthand is not None:
        props = {name: _typed(sub) for name, sub in shorthand.items()}
        schema = {"type": "object", "properties": props, "required": sorted(shorthand)}
    elif schema is None:
        return None
    # Policies repeat the same constraint on many rules; checking a schema is slow, so compile each once.
    return _compile(json.dumps(schema, sort_keys=True))


@functools.lru_cache(maxsize=1024)
def _compile(schema_json: str) -> ArgCheck:
    schema = json.loads(schema_json)
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    if cls is not jsonschema.Draft202012Validator:
        raise PatternError("argument schemas use JSON Schema 2020-12; drop `$schema` or set it to 2020-12")
    try:
        cls.check_schema(schema)
    except SchemaError as e:
        raise PatternError(f"invalid argument schema: {e.message}") from None
    names: tuple[str, ...] = ()
    if isinstance(schema, Mapping) and isinstance(schema.get("properties"), Mapping):
        names = tuple(schema["properties"])
    return ArgCheck(schema, names, cls(schema), compile_fast(schema))


_NUMERIC = frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"})
_STRING = frozenset({"minLength", "maxLength", "pattern", "format"})


def _typed(sub: Any) -> Any:
    """In the shorthand, `{maximum: 100}` means "a number at most 100": JSON Schema alone would let
    `"5000"` or `true` through (keywords ignore other types), and many servers coerce strings to numbers.
    """
    if not isinstance(sub, Mapping) or "type" in sub or "enum" in sub or "const" in sub:
        return sub
    keys = set(sub)
    if keys & _NUMERIC and not keys & _STRING:
        return {**sub, "type": "number"}
    if keys & _STRING and not keys & _NUMERIC:
        return {**sub, "type": "string"}
    return sub
