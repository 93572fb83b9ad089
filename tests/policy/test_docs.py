"""docs/policy.md documents every key a person can write, every finding code and every built-in rule id."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcpgate.config.yaml_source import load_package_schema
from mcpgate.policy import PLUMBING_METHODS

DOC = (Path(__file__).resolve().parents[2] / "docs" / "policy.md").read_text()


def _keys() -> list[str]:
    policy = load_package_schema("policy.schema.json")
    defs = policy["$defs"]
    keys = [f"`{k}`" for k in policy["properties"]]
    keys += [f"`defaults.{k}`" for k in policy["properties"]["defaults"]["properties"]]
    keys += [f"`metadata.{k}`" for k in policy["properties"]["metadata"]["properties"]]
    keys += [f"`{k}`" for k in defs["rule"]["properties"]]
    keys += [f"`{k}`" for k in defs["principalMatcher"]["oneOf"][1]["properties"]] + ["`group`"]
    section = load_package_schema("policy.section.schema.json")["properties"]
    keys += [f"`policy.{k}`" for k in section if k not in ("opa", "reload")]
    keys += [f"`policy.opa.{k}`" for k in section["opa"]["properties"]]
    keys += [f"`policy.reload.{k}`" for k in section["reload"]["properties"]]
    keys += [f"`{k}`" for k in load_package_schema("policy.tests.schema.json")["$defs"]["case"]["properties"]]
    return keys


@pytest.mark.parametrize("key", _keys())
def test_every_key_is_documented(key: str) -> None:
    assert key in DOC


@pytest.mark.parametrize("word", ["unknown-tool", "unknown-argument", "uncovered-tool", "allows-anonymous",
                                  "builtin:protocol", "`default`", "opa:error", "would_deny_rule_ids",
                                  "errored_rule_ids", "cacheScope", "-32602"])
def test_codes_and_ids_are_documented(word: str) -> None:
    assert word in DOC


@pytest.mark.parametrize("method", sorted(PLUMBING_METHODS))
def test_plumbing_methods_are_listed(method: str) -> None:
    short = method.removeprefix("notifications/")
    assert f"`{method}`" in DOC or f"`{short}`" in DOC
