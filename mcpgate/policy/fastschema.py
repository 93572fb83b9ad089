"""A fast path for the small JSON Schema subset argument constraints use (`maximum`, `enum`, `pattern`, ...).

Compiles a schema into nested Python predicates with jsonschema's exact semantics for that subset; anything
outside the subset returns None and the caller uses jsonschema itself. Tests check both agree.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

Check = Callable[[Any], bool]

_IGNORED = frozenset({"description", "title", "$comment", "default", "examples", "deprecated",
                      "readOnly", "writeOnly"})
_KNOWN = frozenset({"type", "enum", "const", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
                    "minLength", "maxLength", "pattern", "properties", "required", "additionalProperties",
                    "items", "minItems", "maxItems"}) | _IGNORED


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


_TYPES: dict[str, Check] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "number": _is_number,
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool))
    or (isinstance(v, float) and v.is_integer()),
}


def json_equal(a: Any, b: Any) -> bool:
    """JSON equality: `true` is not `1`, `1` is `1.0`, containers compare element-wise."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict | list) or isinstance(b, dict | list):
        return False
    return bool(a == b)


def compile_fast(schema: Any) -> Check | None:
    """A predicate equivalent to `Draft202012Validator(schema).is_valid`, or None if out of the subset."""
    if schema is True:
        return lambda v: True
    if schema is False:
        return lambda v: False
    if not isinstance(schema, Mapping) or not set(schema) <= _KNOWN:
        return None
    checks: list[Check] = []
    if "type" in schema:
        names = [schema["type"]] if isinstance(schema["type"], str) else list(schema["type"])
        preds = [_TYPES[n] for n in names if n in _TYPES]
        if len(preds) != len(names):
            return None
        checks.append(preds[0] if len(preds) == 1 else _any_of(tuple(preds)))
    if "enum" in schema:
        options = list(schema["enum"])
        checks.append(lambda v: any(json_equal(v, o) for o in options))
    if "const" in schema:
        const = schema["const"]
        checks.append(lambda v: json_equal(v, const))
    for kw, op in (("minimum", _ge), ("maximum", _le), ("exclusiveMinimum", _gt), ("exclusiveMaximum", _lt)):
        if kw in schema:
            bound = schema[kw]
            if not _is_number(bound):
                return None
            checks.append(_bounded(bound, op))
    if "minLength" in schema:
        n = schema["minLength"]
        checks.append(lambda v: not isinstance(v, str) or len(v) >= n)
    if "maxLength" in schema:
        n2 = schema["maxLength"]
        checks.append(lambda v: not isinstance(v, str) or len(v) <= n2)
    if "pattern" in schema:
        rx = re.compile(schema["pattern"])
        checks.append(lambda v: not isinstance(v, str) or rx.search(v) is not None)
    if "minItems" in schema:
        n3 = schema["minItems"]
        checks.append(lambda v: not isinstance(v, list) or len(v) >= n3)
    if "maxItems" in schema:
        n4 = schema["maxItems"]
        checks.append(lambda v: not isinstance(v, list) or len(v) <= n4)
    if "items" in schema:
        item = compile_fast(schema["items"])
        if item is None:
            return None
        checks.append(lambda v: not isinstance(v, list) or all(item(x) for x in v))
    obj = _object_check(schema)
    if obj is None:
        return None
    if obj is not _NOTHING:
        checks.append(obj)
    if not checks:
        return lambda v: True
    if len(checks) == 1:
        return checks[0]
    all_checks = tuple(checks)
    return lambda v: all(c(v) for c in all_checks)


def _bounded(bound: float, op: Callable[[Any, Any], bool]) -> Check:
    return lambda v: not _is_number(v) or op(v, bound)


def _any_of(preds: tuple[Check, ...]) -> Check:
    return lambda v: any(p(v) for p in preds)


def _nothing(v: Any) -> bool:
    return True


_NOTHING: Check = _nothing


def _object_check(schema: Mapping[str, Any]) -> Check | None:
    props: dict[str, Check] = {}
    for name, sub in (schema.get("properties") or {}).items():
        c = compile_fast(sub)
        if c is None:
            return None
        props[name] = c
    required = tuple(schema.get("required") or ())
    extra: Check | None = None
    if "additionalProperties" in schema:
        extra = compile_fast(schema["additionalProperties"])
        if extra is None:
            return None
    if not props and not required and extra is None:
        return _NOTHING
    prop_items = tuple(props.items())
    known = frozenset(props)

    def check(v: Any) -> bool:
        if not isinstance(v, dict):
            return True
        for r in required:
            if r not in v:
                return False
        for name, c in prop_items:
            if name in v and not c(v[name]):
                return False
        if extra is not None:
            for k, x in v.items():
                if k not in known and not extra(x):
                    return False
        return True

    return check


def _ge(a: Any, b: Any) -> bool:
    return bool(a >= b)


def _le(a: Any, b: Any) -> bool:
    return bool(a <= b)


def _gt(a: Any, b: Any) -> bool:
    return bool(a > b)


def _lt(a: Any, b: Any) -> bool:
    return bool(a < b)
