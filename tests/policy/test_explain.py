from __future__ import annotations

from mcpgate.policy import explain
from tests.policy.conftest import BILLING, policy

P = """
groups:
  billing: ["spiffe://cluster.local/ns/payments/sa/billing"]
rules:
  - {id: refunds, effect: allow, principals: [{group: billing}], tools: refund,
     arguments: {amount: {maximum: 100}}}
  - {id: support, effect: allow, principals: [{namespace: support}], tools: "get_*"}
  - {id: no-delete, effect: deny, tools: "delete_*"}
"""


def test_explain_traces_every_rule() -> None:
    ex = explain(policy(P), BILLING, "tools/call", "refund", {"amount": 500})
    assert not ex.decision.allowed
    by_id = {r.rule_id: r for r in ex.rules}
    assert list(by_id) == ["refunds", "support", "no-delete", "builtin:protocol", "default"]
    assert by_id["refunds"].outcome == "no-match"
    assert "group `billing`" in by_id["refunds"].principal
    assert by_id["refunds"].operation == "tools pattern `refund` matches `refund`"
    assert by_id["refunds"].arguments is not None and "100" in by_id["refunds"].arguments
    assert by_id["support"].principal.startswith("`namespace=support`: namespace `payments` does not match")
    assert by_id["no-delete"].operation == "`refund` matches none of `delete_*`"
    assert by_id["default"].outcome == "match"
    assert by_id["refunds"].line == 7


def test_explain_json_and_text() -> None:
    ex = explain(policy(P), BILLING, "tools/call", "refund", {"amount": 5})
    d = ex.to_dict()
    assert d["decision"]["effect"] == "allow"
    assert d["decision"]["rule_ids"] == ["refunds"]
    assert d["rules"][0]["outcome"] == "match"
    text = ex.render()
    assert text.startswith("ALLOW: tool `refund` allowed by rule `refunds`")
    assert "match     refunds [allow, enforce]" in text


def test_explain_method_not_covered() -> None:
    ex = explain(policy(P), BILLING, "initialize", None)
    assert ex.decision.allowed
    r = ex.rules[0]
    assert r.operation == "method `initialize` is not covered (rule covers `tools/call`)"
    assert ex.rules[-2].outcome == "match"
