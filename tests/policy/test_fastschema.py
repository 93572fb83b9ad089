"""The fast argument checker must agree with jsonschema on its subset, and step aside outside it."""

from __future__ import annotations

from typing import Any

import jsonschema
from hypothesis import given, settings
from hypothesis import strategies as st

from mcpgate.policy.fastschema import compile_fast, json_equal

scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 200), st.floats(-5, 200, allow_nan=False),
                    st.sampled_from(["", "a", "abc", "EUR", "/etc/passwd", "100", "é"]))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3),
    st.dictionaries(st.sampled_from(["n", "m", "currency", "path"]), inner, max_size=3)), max_leaves=8)
numbers = st.one_of(st.integers(-5, 200), st.floats(-5, 200, allow_nan=False))


@st.composite
def schemas(draw: st.DrawFn, depth: int = 0) -> Any:
    if draw(st.integers(0, 10)) == 0:
        return draw(st.booleans())
    s: dict[str, Any] = {}
    if draw(st.booleans()):
        types = ["object", "array", "string", "number", "integer", "boolean", "null"]
        s["type"] = draw(st.one_of(st.sampled_from(types), st.lists(st.sampled_from(types), min_size=1,
                                                                    max_size=3, unique=True)))
    for kw in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        if draw(st.integers(0, 3)) == 0:
            s[kw] = draw(numbers)
    for kw in ("minLength", "maxLength", "minItems", "maxItems"):
        if draw(st.integers(0, 4)) == 0:
            s[kw] = draw(st.integers(0, 4))
    if draw(st.integers(0, 4)) == 0:
        s["pattern"] = draw(st.sampled_from(["^a", "c$", "^/etc", "[0-9]"]))
    if draw(st.integers(0, 4)) == 0:
        s["enum"] = draw(st.lists(values, min_size=1, max_size=3))
    if draw(st.integers(0, 5)) == 0:
        s["const"] = draw(values)
    if depth < 2 and draw(st.integers(0, 2)) == 0:
        s["properties"] = draw(st.dictionaries(st.sampled_from(["n", "m", "currency"]), schemas(depth + 1),
                                               max_size=2))
        if draw(st.booleans()):
            s["required"] = draw(st.lists(st.sampled_from(["n", "m", "currency"]), unique=True, max_size=2))
        if draw(st.booleans()):
            s["additionalProperties"] = draw(schemas(depth + 1))
    if depth < 2 and draw(st.integers(0, 4)) == 0:
        s["items"] = draw(schemas(depth + 1))
    return s


@settings(max_examples=200, deadline=None)
@given(schemas(), st.lists(values, min_size=1, max_size=6))
def test_fast_path_agrees_with_jsonschema(schema: Any, instances: list[Any]) -> None:
    fast = compile_fast(schema)
    assert fast is not None
    v = jsonschema.Draft202012Validator(schema)
    for inst in instances:
        assert fast(inst) == v.is_valid(inst), (schema, inst)


def test_out_of_subset_steps_aside() -> None:
    assert compile_fast({"anyOf": [{"type": "string"}]}) is None
    assert compile_fast({"properties": {"a": {"$ref": "#/x"}}}) is None
    assert compile_fast({"type": "object", "patternProperties": {"a": {}}}) is None
    assert compile_fast({"maximum": "10"}) is None


def test_json_equality() -> None:
    assert json_equal(1, 1.0)
    assert not json_equal(True, 1)
    assert not json_equal([1], [True])
    assert json_equal({"a": [1, {"b": None}]}, {"a": [1.0, {"b": None}]})
    assert not json_equal({"a": 1}, {"a": 1, "b": 2})
    assert not json_equal("1", 1)
