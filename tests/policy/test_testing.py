"""The policy test runner: failures are reported precisely; coverage names unexercised rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcpgate.errors import ConfigError
from mcpgate.policy.testing import load_tests, principal_from, run_tests
from tests.policy.conftest import policy

P = """
rules:
  - {id: a, effect: allow, principals: [{namespace: payments}], tools: refund}
  - {id: unused, effect: deny, tools: nothing}
"""


def write(tmp_path: Path, body: str) -> Path:
    f = tmp_path / "x.tests.yaml"
    f.write_text("apiVersion: mcpgate.dev/v1\nkind: PolicyTests\ntests:\n" + body)
    return f


def test_pass_fail_skip_and_coverage(tmp_path: Path) -> None:
    f = write(tmp_path, """\
  - {name: ok, principal: "spiffe://cluster.local/ns/payments/sa/billing", tool: refund, expect: allow,
     rule_ids: [a]}
  - {name: wrong effect, principal: anonymous, tool: refund, expect: allow}
  - {name: wrong ids, principal: "spiffe://cluster.local/ns/payments/sa/billing", tool: refund,
     expect: allow, rule_ids: [b], hidden: true}
  - {name: later, principal: anonymous, tool: x, expect: allow, skip: "waiting for the x rollout"}
""")
    report = run_tests(policy(P), [load_tests(f)])
    assert [r.status for r in report.results] == ["pass", "fail", "fail", "skip"]
    assert report.results[1].problems == (
        "expected allow, got deny: tool `refund` denied by default: no rule allows it",)
    assert report.results[2].problems == ("expected rule_ids ['b'], got ['a']",
                                          "expected hidden true, got false")
    assert report.results[1].line == 6
    assert not report.ok
    assert report.unexercised == ("unused",)
    text = report.render()
    assert "FAIL" in text and "1 passed, 2 failed, 1 skipped" in text and "`unused`" in text


def test_bad_test_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown key `tol`"):
        load_tests(write(tmp_path, "  - {name: n, principal: anonymous, tol: x, expect: allow}\n"))
    with pytest.raises(ConfigError, match="needs `method`"):
        load_tests(write(tmp_path, "  - {name: n, principal: anonymous, expect: allow}\n"))
    with pytest.raises(ConfigError, match="not `tool` and `resource`"):
        load_tests(write(tmp_path, "  - {name: n, principal: anonymous, tool: a, resource: b, "
                               "expect: deny}\n"))


def test_principal_from_strings_and_objects() -> None:
    p = principal_from("spiffe://td.example/ns/a/sa/b")
    assert (p.source, p.trust_domain, p.namespace, p.service_account) == ("mtls", "td.example", "a", "b")
    assert principal_from("anonymous").source == "anonymous"
    j = principal_from({"id": "jwt:https://i#s", "scopes": ["x"], "claims": {"a": 1}})
    assert j.source == "jwt" and j.scopes == frozenset({"x"}) and j.claims == {"a": 1}
    assert principal_from({"id": "spiffe://t/ns/a/sa/b", "source": "linkerd"}).source == "linkerd"
