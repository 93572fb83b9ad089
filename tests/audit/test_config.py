"""The `audit:` section: strict schema, defaults, sinks; and the docs cover every key and record field."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest

from mcpgate.audit import AuditConfig, AuditLog, parse_section
from mcpgate.errors import ConfigError

from .factory import make_exchange

ROOT = Path(__file__).resolve().parents[2]


def _schema(name: str) -> dict[str, object]:
    data: dict[str, object] = json.loads((resources.files("mcpgate") / "schemas" / name).read_text())
    return data


def test_defaults() -> None:
    assert parse_section(None) == AuditConfig()
    assert parse_section({}).fsync == "group" and parse_section({}).on_failure == "refuse"


def test_a_full_section(tmp_path: Path) -> None:
    cfg = parse_section({"sink": "file", "path": "logs/a.jsonl", "fsync": "always", "group_commit_ms": 5,
                         "rotate_bytes": 1000, "rotate_interval_s": 3600, "keep_files": 3,
                         "on_failure": "continue", "max_queue": 10,
                         "log_arguments": {"refund": ["amount", "order"]}}, base_dir=str(tmp_path))
    assert cfg.path == str(tmp_path / "logs" / "a.jsonl")
    assert cfg.log_arguments == {"refund": frozenset({"amount", "order"})}
    assert (cfg.rotate_bytes, cfg.rotate_interval_s, cfg.keep_files, cfg.max_queue) == (1000, 3600.0, 3, 10)


@pytest.mark.parametrize(("section", "path", "message"), [
    ({"fsnyc": "group"}, "audit.fsnyc", "unknown key `fsnyc` (did you mean `fsync`?)"),
    ({"sink": "kafka"}, "audit.sink", "`kafka` is not one of"),
    ({"max_queue": 0}, "audit.max_queue", "must be at least 1"),
    ({"log_arguments": {"refund": "amount"}}, "audit.log_arguments.refund", "expected a list"),
    ({"log_arguments": {"login": ["user", "password"]}}, "audit.log_arguments.login", "looks like a secret"),
])
def test_invalid_sections_name_the_key(section: dict[str, object], path: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_section(section)
    assert info.value.path == path
    assert message in info.value.message


def test_stdout_sink_writes_chained_lines(capfdbinary: pytest.CaptureFixture[bytes]) -> None:
    log = AuditLog.from_config({"sink": "stdout"})
    log.start()
    log.record(make_exchange(1))
    assert log.flush(5)
    log.close()
    out = capfdbinary.readouterr().out.splitlines()
    assert [json.loads(x)["type"] for x in out] == ["genesis", "op"]
    assert json.loads(out[1])["prev"] == json.loads(out[0])["hash"]


def test_config_and_policy_loggable_fields_are_merged(capfdbinary: pytest.CaptureFixture[bytes]) -> None:
    log = AuditLog.from_config({"sink": "stdout", "log_arguments": {"refund": ["order"]}},
                               loggable_fields={"refund": frozenset({"amount"})})
    log.start()
    log.record(make_exchange(3))
    log.set_loggable_fields({})  # a policy reload that marks nothing keeps the config's fields
    log.record(make_exchange(4))
    assert log.flush(5)
    log.close()
    lines = [json.loads(x) for x in capfdbinary.readouterr().out.splitlines()]
    assert lines[1]["args"] == {"amount": 3, "order": "o-3"}
    assert lines[2]["args"] == {"order": "o-4"}


def test_docs_cover_every_config_key_and_record_field() -> None:
    doc = (ROOT / "docs" / "audit.md").read_text()
    section = _schema("audit.section.schema.json")
    props = section["properties"]
    assert isinstance(props, dict)
    for key in props:
        assert f"`{key}`" in doc, f"config key `{key}` is not documented"
    record = _schema("audit-record.schema.json")
    defs = record["$defs"]
    assert isinstance(defs, dict)
    for kind in ("op", "genesis", "resume"):
        for field in defs[kind]["properties"]:
            assert f"`{field}`" in doc, f"record field `{field}` is not documented"
    for kind in ("edited", "deleted", "reordered", "truncated tail"):
        assert f"`{kind}`" in doc
