"""Checking rules against the tools a server offers."""

from __future__ import annotations

from mcpgate.policy import check_against_tools, lint_policy
from tests.policy.conftest import policy

TOOLS = [
    {"name": "refund", "inputSchema": {"type": "object", "properties": {"amount": {"type": "number"}}}},
    {"name": "get_balance", "inputSchema": {"type": "object", "properties": {"account": {"type": "string"}}}},
    {"name": "get_history", "inputSchema": {"type": "object"}},
    {"name": "export"},
]


def test_clean_policy_has_only_coverage_notes() -> None:
    p = policy("rules:\n  - {id: r, effect: allow, principals: [anonymous], tools: refund, "
               "arguments: {amount: {maximum: 5}}}\n  - {id: g, effect: allow, principals: [anonymous], "
               "tools: 'get_*'}\n")
    findings = check_against_tools(p, TOOLS)
    assert [(f.severity, f.code) for f in findings] == [("info", "uncovered-tool")]
    assert findings[0].message == "tool `export` is named by no rule (denied by default)"


def test_unknown_tool_and_unknown_argument() -> None:
    p = policy("""
rules:
  - {id: typo, effect: allow, principals: [anonymous], tools: [refnud, refund]}
  - {id: arg, effect: allow, principals: [anonymous], tools: "get_*", arguments: {acount: {const: x}}}
  - {id: glob, effect: deny, tools: "delete_*"}
""")
    findings = [f for f in check_against_tools(p, TOOLS) if f.code != "uncovered-tool"]
    got = sorted((f.severity, f.rule_id, f.code, f.message) for f in findings)
    assert got == sorted([
        ("error", "typo", "unknown-tool", "rule `typo` names tool `refnud`, which the server does not offer"),
        ("info", "glob", "unknown-tool", "rule `glob` names tool `delete_*`, which the server does not offer"),
        ("error", "arg", "unknown-argument", "rule `arg` constrains argument `acount`, which tool "
                                             "`get_balance` does not take"),
        ("error", "arg", "unknown-argument", "rule `arg` constrains argument `acount`, which tool "
                                             "`get_history` does not take"),
    ])
    assert all(f.file == "test.yaml" and f.line for f in findings)


def test_allow_glob_matching_nothing_is_a_warning() -> None:
    p = policy("rules:\n  - {id: g, effect: allow, principals: [anonymous], tools: 'admin_*'}\n")
    [f] = [f for f in check_against_tools(p, TOOLS) if f.code == "unknown-tool"]
    assert f.severity == "warning"


def test_lint_flags_allow_rules_open_to_anonymous() -> None:
    p = policy("rules:\n  - {id: open, effect: allow, tools: x}\n  - {id: ok, effect: allow, "
               "principals: [{anonymous: false}], tools: y}\n")
    assert [(f.rule_id, f.code) for f in lint_policy(p)] == [("open", "allows-anonymous")]
