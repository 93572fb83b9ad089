"""Strict YAML: every rejection names the file, the line and the key path."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from mcpgate.config import YamlDoc, format_path, load_yaml, load_yaml_file, validate
from mcpgate.errors import ConfigError


def err(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_yaml(text, file="f.yaml")
    return info.value


def test_plain_data_and_lines() -> None:
    doc = load_yaml("a: 1\nb:\n  - x\n  - c: 2.5\n    d: null\n    e: true\n", file="f.yaml")
    assert doc.value == {"a": 1, "b": ["x", {"c": 2.5, "d": None, "e": True}]}
    assert doc.file == "f.yaml"
    assert doc.line_of(["a"]) == 1
    assert doc.line_of(["b"]) == 2
    assert doc.line_of(["b", 0]) == 3
    assert doc.line_of(["b", 1, "d"]) == 5
    assert doc.line_of(["b", 1, "e"]) == 6
    # a missing node: nearest ancestor
    assert doc.line_of(["b", 1, "nope", 3]) == 4
    assert doc.line_of([]) == 1


def test_block_value_on_next_line_points_at_key() -> None:
    doc = load_yaml("top:\n\n  inner:\n    leaf: 1\n", file="f.yaml")
    assert doc.line_of(["top"]) == 1
    assert doc.line_of(["top", "inner", "leaf"]) == 4


def test_empty_document_is_none() -> None:
    assert load_yaml("", file="f.yaml").value is None
    assert load_yaml("# only a comment\n", file="f.yaml").value is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("v: 10", 10), ("v: -3", -3), ("v: 0x1F", 31), ("v: 0o17", 15), ("v: 1.5", 1.5), ("v: 1e3", 1000.0),
        ("v: ~", None), ("v:", None), ("v: true", True), ("v: false", False),
        ("v: '010'", "010"), ("v: 1:30", "1:30"), ("v: 2026-01-01", "2026-01-01"), ('v: "yes"', "yes"),
        ("v: 127.0.0.1:4180", "127.0.0.1:4180"), ("v: y", "y"), ("v: n", "n"), ("v: !!str 5", "5"),
    ],
)
def test_scalars_follow_yaml_1_2_core(text: str, expected: object) -> None:
    assert load_yaml(text, file="f.yaml").value == {"v": expected}


@pytest.mark.parametrize("word", ["yes", "No", "ON", "off", "True", "FALSE"])
def test_yaml_1_1_booleans_are_rejected(word: str) -> None:
    e = err(f"a: 1\nflag: {word}\n")
    assert (e.file, e.line, e.path) == ("f.yaml", 2, "flag")
    assert f"ambiguous value `{word}`" in e.message
    assert "`true` or `false`" in e.message


def test_ambiguous_keys_are_rejected_too() -> None:
    e = err("on: 1\n")
    assert e.line == 1
    assert "ambiguous value `on`" in e.message


def test_leading_zero_number_is_rejected() -> None:
    e = err("mode: 0644\n")
    assert (e.line, e.path) == (1, "mode")
    assert "ambiguous number `0644`" in e.message


def test_non_finite_numbers_are_rejected() -> None:
    assert "non-finite" in err("a:\n  b: .inf\n").message
    assert err("a:\n  b: .nan\n").path == "a.b"


def test_duplicate_key_names_both_lines() -> None:
    e = err("a: 1\nb:\n  c: 1\n  d: 2\n  c: 3\n")
    assert (e.file, e.line, e.path) == ("f.yaml", 5, "b.c")
    assert "duplicate key `c` (first defined on line 3)" in e.message
    assert str(e) == "f.yaml:5: duplicate key `c` (first defined on line 3) (at `b.c`)"


def test_syntax_error_names_file_and_line() -> None:
    e = err("a: 1\nb: [1, 2\nc: 3\n")
    assert e.file == "f.yaml"
    assert e.line == 3
    assert e.message.startswith("f.yaml:3: invalid yaml:")


def test_tab_indentation_is_a_syntax_error() -> None:
    e = err("a:\n\tb: 1\n")
    assert (e.file, e.line) == ("f.yaml", 2)


@pytest.mark.parametrize("tag", ["!custom", "!!python/object:os.system", "!!binary", "!!set", "!!timestamp"])
def test_tags_are_rejected(tag: str) -> None:
    e = err(f"a:\n  b: {tag} x\n")
    assert (e.line, e.path) == (2, "a.b")
    assert "is not allowed" in e.message


def test_multiple_documents_are_rejected() -> None:
    e = err("a: 1\n---\nb: 2\n")
    assert e.line == 2
    assert "second one" in e.message


def test_merge_keys_are_rejected() -> None:
    e = err("base: &b {x: 1}\nother:\n  <<: *b\n")
    assert e.line == 3
    assert "merge keys" in e.message


def test_non_string_keys_are_rejected() -> None:
    e = err("a:\n  1: x\n")
    assert (e.line, e.path) == (2, "a")
    assert "must be a string" in e.message
    assert "must be plain strings" in err("? [a, b]\n: 1\n").message


def test_aliases_are_expanded() -> None:
    doc = load_yaml("base: &b {x: 1, y: [1, 2]}\ncopy: *b\n", file="f.yaml")
    assert doc.value == {"base": {"x": 1, "y": [1, 2]}, "copy": {"x": 1, "y": [1, 2]}}
    assert doc.value["copy"] is not doc.value["base"]  # no shared mutable state


def test_recursive_alias_is_rejected() -> None:
    e = err("a: &x [1, *x]\n")
    assert "recursive alias" in e.message


def test_billion_laughs_is_rejected_quickly() -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    start = time.perf_counter()
    e = err("\n".join(lines) + "\n")
    assert time.perf_counter() - start < 2.0
    assert "too many nodes through aliases" in e.message
    assert e.file == "f.yaml"


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    e = err("a: " + "[" * 20000 + "]" * 20000 + "\n")
    assert "nesting too deep" in e.message


def test_load_yaml_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("a:\n  b: 2\n")
    doc = load_yaml_file(path)
    assert doc.value == {"a": {"b": 2}}
    assert doc.file == str(path)


def test_load_yaml_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read file") as info:
        load_yaml_file(tmp_path / "missing.yaml")
    assert info.value.file == str(tmp_path / "missing.yaml")
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(b"a: 1\nb: caf\xe9\n")
    with pytest.raises(ConfigError, match="not valid utf-8") as info:
        load_yaml_file(bad)
    assert info.value.line == 2


def test_format_path() -> None:
    assert format_path(["a", "b", 2, "c"]) == "a.b[2].c"
    assert format_path([0, "x"]) == "[0].x"
    assert format_path(["a", "x.y"]) == 'a["x.y"]'
    assert format_path([]) is None


SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "listen": {"type": "string"},
        "rules": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["tool"],
                "properties": {
                    "tool": {"type": "string", "minLength": 1},
                    "effect": {"enum": ["allow", "deny"]},
                    "max": {"type": "integer", "minimum": 1},
                },
            },
        },
    },
}


def verr(text: str) -> ConfigError:
    doc = load_yaml(text, file="p.yaml")
    with pytest.raises(ConfigError) as info:
        validate(doc, SCHEMA)
    return info.value


def test_validate_accepts_valid() -> None:
    validate(load_yaml("listen: x\nrules:\n  - tool: a\n    effect: allow\n", file="p.yaml"), SCHEMA)


def test_unknown_key_suggests_the_closest() -> None:
    e = verr("listen: x\nrules:\n  - tool: a\n  - tool: b\n    efect: deny\n")
    assert (e.file, e.line, e.path) == ("p.yaml", 5, "rules[1].efect")
    assert "unknown key `efect` (did you mean `effect`?)" in e.message


def test_unknown_key_without_close_match_lists_keys() -> None:
    e = verr("zzz: 1\n")
    assert e.path == "zzz"
    assert "unknown key `zzz` (expected one of: `listen`, `rules`)" in e.message


def test_wrong_type() -> None:
    e = verr("rules:\n  - tool: a\n    max: lots\n")
    assert (e.line, e.path) == (3, "rules[0].max")
    assert "expected an integer, got a string (`lots`)" in e.message


def test_missing_required_enum_and_minimum() -> None:
    e = verr("rules:\n  - effect: allow\n")
    assert (e.line, e.path) == (2, "rules[0]")
    assert "missing required key `tool`" in e.message
    e = verr("rules:\n  - tool: a\n    effect: maybe\n")
    assert (e.line, e.path) == (3, "rules[0].effect")
    assert "`maybe` is not one of: `allow`, `deny`" in e.message
    e = verr("rules:\n  - tool: a\n    max: 0\n")
    assert "must be at least 1, got 0" in e.message


def test_root_type_error_has_no_path() -> None:
    e = verr("- 1\n- 2\n")
    assert e.path is None
    assert e.line == 1
    assert "expected a mapping, got a list" in e.message


def test_yamldoc_error_helper() -> None:
    doc = YamlDoc({"a": {"b": 1}}, "x.yaml", {(): 1, ("a",): 1, ("a", "b"): 2})
    e = doc.error(["a", "b"], "bad value")
    assert str(e) == "x.yaml:2: bad value (at `a.b`)"


def test_messages_stay_on_one_line() -> None:
    e = verr('"list\\nen": 1\n')
    assert "\n" not in str(e)
    assert 'unknown key `"list\\nen"`' in e.message
