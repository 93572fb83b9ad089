"""List filtering and visibility: what a caller may see is what they may call (for some arguments)."""

from __future__ import annotations

from typing import Any

from mcpgate.policy import filter_list_result
from tests.policy.conftest import ANON, BILLING, SUPPORT, call, policy

P = """
rules:
  - {id: refunds, effect: allow, principals: [{namespace: payments}], tools: refund,
     arguments: {amount: {maximum: 100}}}
  - {id: reads, effect: allow, principals: [{namespace: [support, payments]}], tools: "get_*"}
  - {id: no-delete, effect: deny, tools: "delete_*"}
  - {id: no-big-search, effect: deny, tools: search, arguments: {limit: {minimum: 1000}}}
  - {id: search, effect: allow, tools: search}
  - {id: prompts, effect: allow, principals: [{namespace: support}], prompts: "help_*"}
  - {id: ledger, effect: allow, principals: [{namespace: support}],
     resources: ["ledger://accounts/{id}", "file:///public/**"]}
  - {id: no-secrets, effect: deny, resources: "file:///public/secret*"}
"""


def tools(*names: str) -> list[dict[str, Any]]:
    return [{"name": n, "inputSchema": {"type": "object"}} for n in names]


def test_visibility_ignores_argument_constraints_on_allow_but_not_on_deny() -> None:
    p = policy(P.replace("[support, payments]", "support"))
    assert p.visible(BILLING, "tool", "refund")          # allowed for some amounts
    assert not p.visible(SUPPORT, "tool", "refund")
    assert p.visible(BILLING, "tool", "search")          # denied only for some arguments
    assert not p.visible(BILLING, "tool", "delete_repo")
    assert p.visible(SUPPORT, "tool", "get_x")
    assert not p.visible(ANON, "tool", "get_x")


def test_filter_tools_list() -> None:
    p = policy(P.replace("[support, payments]", "support"))
    result = {"tools": tools("refund", "get_balance", "delete_repo", "search"), "nextCursor": "c2"}
    out = filter_list_result(p, BILLING, "tools/list", result)
    assert out is not None
    assert [t["name"] for t in out["tools"]] == ["refund", "search"]
    assert out["nextCursor"] == "c2"
    assert "cacheScope" not in out
    assert [t["name"] for t in result["tools"]] == ["refund", "get_balance", "delete_repo", "search"]


def test_nothing_removed_returns_none() -> None:
    p = policy(P)
    assert filter_list_result(p, BILLING, "tools/list", {"tools": tools("refund", "get_a")}) is None
    assert filter_list_result(p, BILLING, "tools/list", {"tools": []}) is None


def test_cache_scope_becomes_private_when_filtered() -> None:
    p = policy(P)
    out = filter_list_result(p, BILLING, "tools/list",
                             {"tools": tools("refund", "delete_x"), "ttlMs": 60000, "cacheScope": "public",
                              "resultType": "complete"})
    assert out == {"tools": tools("refund"), "ttlMs": 60000, "cacheScope": "private",
                   "resultType": "complete"}
    only_ttl = filter_list_result(p, BILLING, "tools/list", {"tools": tools("delete_x"), "ttlMs": 5})
    assert only_ttl is not None and only_ttl["cacheScope"] == "private"


def test_entries_without_names_are_removed() -> None:
    p = policy("defaults: {effect: allow}\n")
    out = filter_list_result(p, ANON, "tools/list", {"tools": [{"name": "a"}, {"title": "x"}, "junk",
                                                               {"name": 5}]})
    assert out == {"tools": [{"name": "a"}]}


def test_filter_prompts_and_resources() -> None:
    p = policy(P)
    prompts = {"prompts": [{"name": "help_refunds"}, {"name": "admin_tools"}]}
    assert filter_list_result(p, SUPPORT, "prompts/list", prompts) == {"prompts": [{"name": "help_refunds"}]}
    resources = {"resources": [{"uri": "ledger://accounts/1", "name": "a"},
                               {"uri": "ledger://accounts/1/cards", "name": "b"},
                               {"uri": "file:///public/readme", "name": "c"},
                               {"uri": "file:///public/secrets.txt", "name": "d"}]}
    out = filter_list_result(p, SUPPORT, "resources/list", resources)
    assert out is not None and [r["name"] for r in out["resources"]] == ["a", "c"]


def test_filter_resource_templates() -> None:
    p = policy(P)
    templates = {"resourceTemplates": [
        {"uriTemplate": "ledger://accounts/{id}", "name": "acct"},
        {"uriTemplate": "file:///public/{path}", "name": "pub"},
        {"uriTemplate": "file:///private/{path}", "name": "priv"},
        {"uriTemplate": "repo://{owner}/{name}", "name": "repo"},
    ]}
    out = filter_list_result(p, SUPPORT, "resources/templates/list", templates)
    assert out is not None and [t["name"] for t in out["resourceTemplates"]] == ["acct", "pub"]
    assert filter_list_result(p, ANON, "resources/templates/list", templates) == {"resourceTemplates": []}


def test_unknown_method_or_shape_is_left_alone() -> None:
    p = policy(P)
    assert filter_list_result(p, ANON, "tasks/list", {"tasks": [{"taskId": "1"}]}) is None
    assert filter_list_result(p, ANON, "tools/list", {"tools": "nope"}) is None


def test_hidden_from_list_means_denied_at_call_time() -> None:
    p = policy(P)
    names = ["refund", "get_a", "delete_a", "search", "other"]
    for who in (BILLING, SUPPORT, ANON):
        out = filter_list_result(p, who, "tools/list", {"tools": tools(*names)})
        shown = {t["name"] for t in (out or {"tools": tools(*names)})["tools"]}
        for name in names:
            d = p.decide(who, call(name, {"amount": 1, "limit": 1}))
            if name not in shown:
                assert not d.allowed and d.hidden, (who.id, name)


def test_audit_mode_default_shows_everything() -> None:
    p = policy("defaults: {mode: audit}\n")
    assert filter_list_result(p, ANON, "tools/list", {"tools": tools("a", "b")}) is None
