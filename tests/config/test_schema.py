"""The published config schema: valid Draft 2020-12, self-contained when bundled, in step with the model."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from mcpgate.config import (
    Limits,
    Timeouts,
    UpstreamConfig,
    bundled_schema,
    config_schema,
    env_var_name,
    load_config,
    load_yaml,
)
from mcpgate.config.env import schema_keys
from mcpgate.config.loader import SECTIONS
from mcpgate.config.schema import package_schema_names

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "configuration.md"


def test_config_schema_is_valid_draft_2020_12() -> None:
    schema = config_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("name", package_schema_names())
def test_every_packaged_schema_is_valid(name: str) -> None:
    path = REPO / "mcpgate" / "schemas" / name
    jsonschema.Draft202012Validator.check_schema(json.loads(path.read_text()))


def test_sections_are_referenced_from_package_data() -> None:
    props = config_schema()["properties"]
    for section in SECTIONS:
        assert props[section]["$ref"] == f"{section}.section.schema.json"


def test_bundled_schema_is_self_contained() -> None:
    bundled = bundled_schema()
    jsonschema.Draft202012Validator.check_schema(bundled)
    # No registry: every $ref must resolve inside the document itself.
    validator = jsonschema.Draft202012Validator(bundled)
    good = load_yaml("listen: 127.0.0.1:4180\nupstream:\n  url: http://127.0.0.1:8000/mcp\n", file="x").value
    assert list(validator.iter_errors(good)) == []
    assert list(validator.iter_errors({"listn": "x"}))
    assert list(validator.iter_errors({"identity": "not a mapping"}))


def _closed_objects(schema: Any, where: str = "") -> list[str]:
    """Every object schema that names properties must forbid unknown keys."""
    out: list[str] = []
    if isinstance(schema, dict):
        if "properties" in schema and schema.get("additionalProperties") is not False:
            out.append(where or "(root)")
        for key, value in schema.items():
            out += _closed_objects(value, f"{where}/{key}")
    elif isinstance(schema, list):
        for i, value in enumerate(schema):
            out += _closed_objects(value, f"{where}/{i}")
    return out


def test_unknown_keys_are_errors_everywhere() -> None:
    assert _closed_objects(config_schema()) == []


@pytest.mark.parametrize(("section", "cls"), [("limits", Limits), ("timeouts", Timeouts)])
def test_schema_defaults_match_the_dataclasses(section: str, cls: type) -> None:
    props = config_schema()["properties"][section]["properties"]
    fields = {f.name: f.default for f in dataclasses.fields(cls)}
    assert set(props) == set(fields)
    for name, default in fields.items():
        assert props[name]["default"] == default, name


def _own_keys() -> list[tuple[str | int, ...]]:
    """Keys this schema defines itself (section schemas are documented by their owners' docs)."""
    schema = dict(config_schema())
    schema["properties"] = {k: v for k, v in schema["properties"].items() if k not in SECTIONS}
    return list(schema_keys(schema))


def test_every_key_is_documented() -> None:
    text = DOC.read_text()
    missing = [".".join(map(str, p)) for p in _own_keys() if f"`{'.'.join(map(str, p))}`" not in text]
    assert missing == []
    for section in SECTIONS:
        assert f"`{section}`" in text


def test_every_env_var_is_documented() -> None:
    text = DOC.read_text()
    leaves = [p for p in _own_keys() if "properties" not in _sub(p)]
    missing = [env_var_name(p) for p in leaves if env_var_name(p) not in text]
    assert missing == []
    for alias in ("MCPGATE_UPSTREAM", "MCPGATE_LISTEN", "MCPGATE_ADMIN_LISTEN", "MCPGATE_CONFIG"):
        assert re.search(rf"`{alias}`", text), alias


def _sub(path: tuple[str | int, ...]) -> Any:
    node: Any = config_schema()
    for key in path:
        node = node["properties"][key]
    return node


def test_documented_defaults_match() -> None:
    text = DOC.read_text()
    for section, cls in (("limits", Limits), ("timeouts", Timeouts)):
        for f in dataclasses.fields(cls):
            rows = [line for line in text.splitlines() if line.startswith(f"| `{section}.{f.name}` |")]
            row = rows[-1] if rows else None  # the reference table comes after the examples
            assert row is not None, f"{section}.{f.name} has no table row"
            shown = f"{f.default:g}" if isinstance(f.default, float) else str(f.default)
            assert row.split("|")[2].strip().startswith(f"`{shown}`"), row


def test_the_complete_example_in_the_docs_is_valid_and_shows_the_defaults(tmp_path: Path) -> None:
    text = DOC.read_text()
    block = text.split("## A complete file", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "example.yaml"
    path.write_text(block)
    c = load_config(file=str(path), env={}, overrides={})
    assert c.limits == Limits()
    assert c.timeouts == Timeouts()
    assert (c.listen_host, c.listen_port) == ("127.0.0.1", 4180)
    assert (c.admin_host, c.admin_port) == ("127.0.0.1", 9180)
    assert c.upstream.pool_size == UpstreamConfig(c.upstream.url).pool_size
