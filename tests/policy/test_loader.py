"""Loading: strict schema, located errors, multi-file merging, revisions."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcpgate.errors import ConfigError
from mcpgate.policy import Effect, load_policy
from tests.policy.conftest import BILLING, HEADER, call, policy


def write(tmp_path: Path, name: str, body: str) -> Path:
    p = tmp_path / name
    p.write_text(HEADER + body)
    return p


def test_unknown_key_names_file_line_and_path(tmp_path: Path) -> None:
    f = write(tmp_path, "p.yaml", "rules:\n  - id: a\n    effect: allow\n    tool: refund\n")
    with pytest.raises(ConfigError) as e:
        load_policy([f])
    assert e.value.file == str(f)
    assert e.value.line == 6
    assert e.value.path == "rules[0].tool"
    assert "did you mean `tools`" in str(e.value)


@pytest.mark.parametrize(("body", "path", "words"), [
    ("rules:\n  - id: a\n    effect: permit\n", "rules[0].effect", "not one of"),
    ("defaults:\n  efect: deny\n", "defaults.efect", "unknown key"),
    ("rules:\n  - {id: a, effect: allow, principals: [{group: nope}]}\n", "rules[0].principals[0].group",
     "unknown group `nope`"),
    ("rules:\n  - {id: a, effect: allow, tools: 'x', arguments: {n: {type: nonsense}}}\n",
     "rules[0].arguments", "invalid argument schema"),
    ("rules:\n  - {id: a, effect: allow, resources: 'file:///{x'}\n", "rules[0].resources", "unclosed"),
    ("rules:\n  - {id: a, effect: allow, tools: x, methods: resources/read}\n", "rules[0].methods",
     "does not apply"),
    ("rules:\n  - {id: a, effect: allow, tools: x, arguments: {a: {}}, arguments_schema: {}}\n",
     "rules[0].arguments_schema", "not both"),
    ("rules:\n  - {id: a, effect: allow, resources: 'x://y', arguments: {a: {}}}\n", "rules[0].arguments",
     "apply only to"),
    ("rules:\n  - {id: default, effect: allow}\n", "rules[0].id", "reserved"),
    ("rules:\n  - {id: a, effect: allow}\n  - {id: a, effect: deny}\n", "rules[1].id", "duplicate rule id"),
    ("groups:\n  g: [{group: h}]\n", "groups.g[0]", ""),
])
def test_semantic_errors_are_located(body: str, path: str, words: str) -> None:
    with pytest.raises(ConfigError) as e:
        policy(body)
    assert e.value.path is not None and e.value.path.startswith(path), e.value
    assert e.value.file == "test.yaml"
    assert e.value.line is not None
    assert words in str(e.value)


def test_wrong_api_version_is_rejected() -> None:
    from mcpgate.policy import load_policy_text
    with pytest.raises(ConfigError, match="apiVersion"):
        load_policy_text("apiVersion: mcpgate.dev/v2\nkind: Policy\n")


def test_empty_file_is_rejected(tmp_path: Path) -> None:
    f = tmp_path / "e.yaml"
    f.write_text("")
    with pytest.raises(ConfigError, match="empty"):
        load_policy([f])


def test_no_files_is_an_error() -> None:
    with pytest.raises(ConfigError, match="no policy files"):
        load_policy([])


def test_duplicate_rule_ids_across_files_name_both(tmp_path: Path) -> None:
    a = write(tmp_path, "a.yaml", "rules:\n  - {id: same, effect: allow, tools: x}\n")
    b = write(tmp_path, "b.yaml", "rules:\n  - {id: same, effect: deny, tools: y}\n")
    with pytest.raises(ConfigError) as e:
        load_policy([a, b])
    assert e.value.file == str(b)
    assert f"first defined in {a}:4" in str(e.value)


def test_groups_are_unique_across_files_and_shared(tmp_path: Path) -> None:
    a = write(tmp_path, "a.yaml", "groups:\n  billing: ['spiffe://cluster.local/ns/payments/sa/billing']\n")
    b = write(tmp_path, "b.yaml", "rules:\n  - {id: r, effect: allow, principals: [{group: billing}], "
              "tools: refund}\n")
    p = load_policy([a, b])
    assert p.decide(BILLING, call("refund")).rule_ids == ("r",)
    c = write(tmp_path, "c.yaml", "groups:\n  billing: [anonymous]\n")
    with pytest.raises(ConfigError, match="already defined"):
        load_policy([a, c])


def test_defaults_merge_key_by_key_last_file_wins(tmp_path: Path) -> None:
    a = write(tmp_path, "a.yaml", "defaults: {effect: allow, hidden_as_unknown: false}\n")
    b = write(tmp_path, "b.yaml", "defaults: {effect: deny}\n")
    p = load_policy([a, b])
    assert p.defaults.effect is Effect.DENY
    assert p.defaults.hidden_as_unknown is False
    assert load_policy([b, a]).defaults.effect is Effect.ALLOW


def test_defaults_mode_applies_to_rules_in_every_file(tmp_path: Path) -> None:
    a = write(tmp_path, "a.yaml", "rules:\n  - {id: r, effect: deny, tools: x}\n")
    b = write(tmp_path, "b.yaml", "defaults: {mode: audit}\n")
    p = load_policy([a, b])
    assert p.rules[0].audit is True
    d = p.decide(BILLING, call("x"))
    assert d.allowed and d.would_deny and d.would_deny_rule_ids == ("r",)


def test_rule_order_is_file_order(tmp_path: Path) -> None:
    a = write(tmp_path, "a.yaml", "rules:\n  - {id: a1, effect: allow, tools: x}\n")
    b = write(tmp_path, "b.yaml", "rules:\n  - {id: b1, effect: allow, tools: x}\n")
    assert load_policy([b, a]).decide(BILLING, call("x")).rule_ids == ("b1", "a1")


def test_directory_expands_to_policy_files_without_tests(tmp_path: Path) -> None:
    write(tmp_path, "b.yaml", "rules:\n  - {id: b, effect: allow, tools: x}\n")
    write(tmp_path, "a.yml", "rules:\n  - {id: a, effect: allow, tools: x}\n")
    (tmp_path / "a.tests.yaml").write_text("not: a policy\n")
    p = load_policy([tmp_path])
    assert [r.id for r in p.rules] == ["a", "b"]


def test_revision_is_a_content_hash() -> None:
    body = "rules:\n  - {id: r, effect: allow, tools: x}\n"
    p1, p2 = policy(body), policy("# a comment\n" + body, file="other.yaml")
    assert p1.revision == p2.revision
    assert len(p1.revision) == 12 and int(p1.revision, 16) >= 0
    assert policy(body.replace("tools: x", "tools: y")).revision != p1.revision
    d = p1.decide(BILLING, call("x"))
    assert d.revision == p1.revision


def test_yaml_rules_apply_strictly() -> None:
    with pytest.raises(ConfigError, match="ambiguous value `yes`"):
        policy("defaults: {hidden_as_unknown: yes}\n")


def test_published_schemas_are_valid_draft_2020_12() -> None:
    import jsonschema

    from mcpgate.config.yaml_source import load_package_schema
    for name in ("policy.schema.json", "policy.section.schema.json", "policy.tests.schema.json"):
        jsonschema.Draft202012Validator.check_schema(load_package_schema(name))


def test_section_schema_via_gateway_config() -> None:
    from mcpgate.config.schema import schema_error
    from mcpgate.config.yaml_source import load_package_schema
    section = load_package_schema("policy.section.schema.json")
    assert schema_error({"files": ["a.yaml"], "reload": {"watch": False, "interval_s": 2}}, section) is None
    assert schema_error({"backend": "opa"}, section) is not None  # opa needs `opa.url`
    ok = {"backend": "opa", "opa": {"url": "http://127.0.0.1:8181", "path": "mcpgate/authz", "timeout_s": 0.5}}
    assert schema_error(ok, section) is None
    path, message = schema_error({"file": ["a.yaml"]}, section) or ((), "")
    assert path == ("file",) and "did you mean `files`" in message
