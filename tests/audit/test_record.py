"""The v1 record: every field from the exchange, wall-clock times, digests, loggable and secret arguments."""

from __future__ import annotations

import hashlib
import io
import json
from importlib import resources

import jsonschema
import pytest

from mcpgate.audit import AuditLog, StreamSink, build_record, digest_arguments
from mcpgate.audit.record import rfc3339
from mcpgate.errors import ConfigError
from mcpgate.policy.model import Decision, Effect
from mcpgate.protocol.model import OpKind, Outcome

from .factory import BOB, DENY, make_exchange

RECORD_SCHEMA = json.loads((resources.files("mcpgate") / "schemas" / "audit-record.schema.json").read_text())


def test_every_field_comes_from_the_exchange() -> None:
    ex = make_exchange(7, principal=BOB, decision=DENY, outcome=Outcome.DENIED, error_code=-32001,
                       t_start=5_000_000_000, latency_ms=12.3456, ttfb_ms=3.0)
    ex.operation.protocol_version = None
    rec = build_record(ex, 1_700_000_000_000_000_000 - 5_000_000_000, {})
    assert rec == {
        "v": 1, "type": "op", "time": "2023-11-14T22:13:20.000000Z", "decision_id": "dec-00000007",
        "principal": "jwt:https://idp.example#bob", "auth": "jwt", "session": "sess-1",
        "protocol_version": "2025-11-25", "transport": "streamable-http", "direction": "c2s", "kind": "tool",
        "method": "tools/call", "target": "refund",
        "args_digest": "sha256:" + hashlib.sha256(b'{"amount":7,"order":"o-7"}').hexdigest(),
        "decision": "deny", "rules": ["no-refunds"], "policy_revision": "rev-7", "would_deny": False,
        "outcome": "denied", "error_code": -32001, "latency_ms": 12.346, "ttfb_ms": 3.0,
        "bytes_in": 107, "bytes_out": 207, "upstream": "http://127.0.0.1:9000/mcp",
    }


def test_time_is_monotonic_start_plus_the_offset_captured_at_construction() -> None:
    mono = iter([10_000])
    log = AuditLog(StreamSink(io.BytesIO(), wall_clock=lambda: 0), clock=lambda: next(mono),
                   wall_clock=lambda: 1_700_000_000_000_010_000)
    assert log._offset_ns == 1_700_000_000_000_000_000
    rec = build_record(make_exchange(t_start=123_456_789), log._offset_ns, {})
    assert rec["time"] == "2023-11-14T22:13:20.123456Z"
    assert rfc3339(1_700_000_001_000_999_999) == "2023-11-14T22:13:21.000999Z"


def test_argument_digest_is_canonical_and_independent_of_key_order() -> None:
    a = digest_arguments({"b": 1, "a": {"y": [1, 2], "x": "é"}})
    b = digest_arguments({"a": {"x": "é", "y": [1, 2]}, "b": 1})
    assert a == b == "sha256:" + hashlib.sha256('{"a":{"x":"é","y":[1,2]},"b":1}'.encode()).hexdigest()
    assert digest_arguments(None) is None
    assert digest_arguments({}) == "sha256:" + hashlib.sha256(b"{}").hexdigest()


def test_only_loggable_fields_are_logged_raw_and_secrets_never() -> None:
    args = {"order": "o-1", "amount": 40, "card_number": "4111111111111111",
            "note": {"text": "hi", "api_key": "k-123"}, "memo": "Bearer abcdefghijklmnop"}
    ex = make_exchange(1, arguments=args)
    rec = build_record(ex, 0, {"refund": frozenset({"amount", "note", "memo", "card_number"})})
    assert rec["args"] == {"amount": 40, "note": {"text": "hi", "api_key": "[redacted]"},
                           "memo": "[redacted]"}
    assert build_record(ex, 0, {})
    assert "args" not in build_record(ex, 0, {})
    assert "args" not in build_record(ex, 0, {"other_tool": frozenset({"amount"})})


def test_secret_looking_names_cannot_be_marked_loggable() -> None:
    with pytest.raises(ConfigError, match="`password` of tool `login`"):
        AuditLog(None, loggable_fields={"login": frozenset({"user", "password"})})
    log = AuditLog(None)
    with pytest.raises(ConfigError, match="`api_key`"):
        log.set_loggable_fields({"search": frozenset({"api_key"})})


def test_credentials_in_resource_uris_are_redacted() -> None:
    ex = make_exchange(1, tool="https://user:hunter2@files.example/a.txt", kind=OpKind.RESOURCE,
                       method="resources/read", arguments=None)
    ex.operation.arguments = None
    rec = build_record(ex, 0, {})
    assert rec["target"] == "https://[redacted]@files.example/a.txt"
    assert rec["args_digest"] is None


def test_audit_mode_fields_and_several_targets() -> None:
    decision = Decision(Effect.ALLOW, ("allow-all",), "rev-1", would_deny=True,
                        would_deny_rule_ids=("shadow-no-refund",))
    ex = make_exchange(1, decision=decision)
    ex.operation.targets = ("file:///a", "file:///b")
    rec = build_record(ex, 0, {})
    assert rec["would_deny"] is True
    assert rec["would_deny_rules"] == ["shadow-no-refund"]
    assert rec["targets"] == ["file:///a", "file:///b"]


def test_records_and_meta_lines_match_the_published_schema() -> None:
    buf = io.BytesIO()
    log = AuditLog(StreamSink(buf, wall_clock=lambda: 1_700_000_000_000_000_000))
    log.start()
    log.record(make_exchange(1))
    log.record(make_exchange(2, latency_ms=None, ttfb_ms=None, outcome=None, upstream=None, session=None))
    log.record(make_exchange(3, tool=None, kind=OpKind.LIST, method="tools/list", arguments=None))
    assert log.flush(5)
    log.close()
    lines = [json.loads(line) for line in buf.getvalue().splitlines()]
    assert [x["type"] for x in lines] == ["genesis", "op", "op", "op"]
    validator = jsonschema.Draft202012Validator(RECORD_SCHEMA)
    for line in lines:
        validator.validate(line)
    with pytest.raises(jsonschema.ValidationError):
        validator.validate({**lines[1], "password": "x"})


def test_no_header_or_secret_argument_reaches_the_log() -> None:
    buf = io.BytesIO()
    log = AuditLog(StreamSink(buf, wall_clock=lambda: 0), loggable_fields={"refund": frozenset({"order"})})
    log.start()
    log.record(make_exchange(1, arguments={"order": "o-1", "password": "SUPERSECRET-PW"}))
    assert log.flush(5)
    log.close()
    text = buf.getvalue()
    assert b"o-1" in text
    assert b"SECRET" not in text  # neither the password argument nor the Authorization header value
