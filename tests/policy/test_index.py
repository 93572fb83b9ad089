"""The index must give exactly the answers of a plain scan over every rule (the documented semantics)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from mcpgate.identity.model import Principal
from mcpgate.policy import Decision, Effect, Policy, load_policy_text
from mcpgate.policy.methods import PLUMBING_METHODS
from tests.policy.conftest import ALICE, ANON, BILLING, HEADER, SUPPORT

PRINCIPALS = [BILLING, SUPPORT, ALICE, ANON,
              Principal("spiffe://cluster.local/ns/payments/sa/worker", "xfcc", "cluster.local", "payments",
                        "worker")]
TOOLS = ["a", "ab", "abc", "b", "delete_x", "get_y", "get_yy", "c/d"]
TOOL_PATTERNS = ["a", "ab", "a*", "ab*", "*", "**", "?b", "get_*", "delete_*", "b", "c/*",
                 "abcdefghijklmnopq*"]
PRINCIPAL_MATCHERS: list[Any] = [
    BILLING.id, SUPPORT.id, "spiffe://cluster.local/ns/payments/*", "spiffe://**", "anonymous",
    {"namespace": "payments"}, {"namespace": "support", "service_account": "ag*"}, {"anonymous": False},
    {"anonymous": True}, {"scopes": ["payments.read"]}, {"claims": {"team": "support"}},
    {"id": [BILLING.id, ALICE.id]}, {"source": "xfcc"},
]
ARGS = [None, {"n": 1}, {"n": 500}, {"m": "x"}]


@st.composite
def rules(draw: st.DrawFn) -> list[dict[str, Any]]:
    out = []
    for i in range(draw(st.integers(0, 8))):
        rule: dict[str, Any] = {"id": f"r{i}", "effect": draw(st.sampled_from(["allow", "deny"]))}
        if draw(st.booleans()):
            rule["mode"] = draw(st.sampled_from(["enforce", "audit"]))
        if draw(st.integers(0, 3)):
            rule["principals"] = draw(st.lists(st.sampled_from(PRINCIPAL_MATCHERS), min_size=1, max_size=3))
        shape = draw(st.integers(0, 5))
        if shape <= 3:
            rule["tools"] = draw(st.lists(st.sampled_from(TOOL_PATTERNS), min_size=1, max_size=3))
            if draw(st.booleans()):
                rule["arguments"] = {"n": {"maximum": 100}}
        elif shape == 4:
            rule["methods"] = draw(st.sampled_from(["tools/call", "tools/*", "ping", "**"]))
        out.append(rule)
    return out


def reference(policy: Policy, p: Principal, method: str, target: str | None, args: Any) -> tuple[Any, ...]:
    """The semantics from docs/policy.md, as a scan."""
    hits = {"deny": [], "allow": [], "audit_deny": [], "audit_allow": []}  # type: dict[str, list[str]]
    for rule in policy.rules:
        # `mismatch` is the explained (slow) form of the matcher the engine runs: an independent check.
        who = rule.principals is None or any(m.mismatch(p) is None for m in rule.principals)
        if not (who and rule.op_matches(method, target)):
            continue
        if rule.arguments is not None and method == "tools/call" and not rule.arguments.check(args):
            continue
        key = ("audit_" if rule.audit else "") + rule.effect.value
        hits[key].append(rule.id)
    plumbing = method in PLUMBING_METHODS
    d = policy.defaults
    if hits["deny"]:
        effect, ids = Effect.DENY, hits["deny"]
    elif hits["allow"]:
        effect, ids = Effect.ALLOW, hits["allow"]
    elif plumbing:
        effect, ids = Effect.ALLOW, ["builtin:protocol"]
    else:
        effect = Effect.ALLOW if d.audit else d.effect
        ids = ["default"]
    would: list[str] = []
    if effect is Effect.ALLOW:
        shadow_deny = sorted(hits["deny"] + hits["audit_deny"], key=lambda i: int(i[1:]))
        if shadow_deny:
            would = shadow_deny
        elif not (hits["allow"] or hits["audit_allow"] or plumbing) and d.effect is Effect.DENY:
            would = ["default"]
    return effect, tuple(ids), tuple(would)


def observed(d: Decision) -> tuple[Any, ...]:
    return d.effect, d.rule_ids, d.would_deny_rule_ids


@settings(max_examples=150, deadline=None)
@given(rules(), st.sampled_from([None, "allow", "deny"]), st.sampled_from([None, "enforce", "audit"]))
def test_index_agrees_with_a_scan(rs: list[dict[str, Any]], effect: str | None, mode: str | None) -> None:
    defaults = {k: v for k, v in (("effect", effect), ("mode", mode)) if v}
    doc = {"rules": rs, **({"defaults": defaults} if defaults else {})}
    policy = load_policy_text(HEADER + yaml.safe_dump(doc))
    for p in PRINCIPALS:
        for tool in TOOLS:
            for args in ARGS:
                got = policy.decide_one(p, "tools/call", tool, args)
                assert observed(got) == reference(policy, p, "tools/call", tool, args), (p.id, tool, args)
        for method in ("ping", "tools/list", "resources/read", "acme/x"):
            got = policy.decide_one(p, method, None)
            assert observed(got) == reference(policy, p, method, None, None), (p.id, method)


def test_many_rules_same_answers() -> None:
    lines = ["rules:"]
    for i in range(2000):
        who = f"spiffe://cluster.local/ns/n{i % 50}/sa/s{i}"
        lines.append(f"  - {{id: r{i}, effect: allow, principals: ['{who}'],"
                     f" tools: ['tool_{i}', 'grp{i % 7}_*']}}")
    lines.append("  - {id: deny-x, effect: deny, tools: 'tool_1*'}")
    policy = load_policy_text(HEADER + "\n".join(lines) + "\n")
    for i in (0, 1, 7, 15, 999, 1999):
        p = Principal(f"spiffe://cluster.local/ns/n{i % 50}/sa/s{i}", "mtls", "cluster.local", f"n{i % 50}",
                      f"s{i}")
        for tool in (f"tool_{i}", f"grp{i % 7}_x", "grp9_x", "tool_1"):
            got = policy.decide_one(p, "tools/call", tool)
            assert observed(got) == reference(policy, p, "tools/call", tool, None), (i, tool)


GRANT = f"  - {{id: r0, effect: allow, principals: ['{BILLING.id}'], tools: t}}\n"


@pytest.mark.parametrize("other", [
    "{id: r1, effect: deny, tools: 't*'}",
    "{id: r1, effect: deny, tools: t}",
    "{id: r1, effect: deny, principals: [{namespace: payments}], tools: t}",
    "{id: r1, effect: deny, mode: audit, principals: ['" + BILLING.id + "'], tools: t}",
    "{id: r1, effect: deny, methods: 'tools/*'}",
    "{id: r1, effect: deny, methods: tools/call}",
    "{id: r1, effect: deny, principals: ['" + BILLING.id + "']}",
    "{id: r1, effect: allow, principals: ['" + BILLING.id + "'], tools: t}",
    "{id: r1, effect: deny, principals: ['" + BILLING.id + "'], tools: t, arguments: {n: {maximum: 1}}}",
])
def test_single_grant_shortcut_only_where_nothing_else_reaches(other: str) -> None:
    """The (method, tool, caller id) shortcut must step aside whenever another rule could apply."""
    alone = load_policy_text(HEADER + "rules:\n" + GRANT)
    assert observed(alone.decide_one(BILLING, "tools/call", "t")) == (Effect.ALLOW, ("r0",), ())
    policy = load_policy_text(HEADER + "rules:\n" + GRANT + f"  - {other}\n")
    for args in (None, {"n": 5}):
        got = policy.decide_one(BILLING, "tools/call", "t", args)
        assert observed(got) == reference(policy, BILLING, "tools/call", "t", args), args


def test_views_of_unnamed_targets_are_bounded() -> None:
    """Targets only globs reach get their view memoised; callers choose them, so the memo stays bounded."""
    from mcpgate.policy import index as ix
    policy = load_policy_text(HEADER + f"rules:\n  - {{id: r0, effect: allow, principals: ['{BILLING.id}'],"
                              " tools: 'get_*'}\n")
    for i in range(ix._MEMO_LIMIT + 10):
        assert policy.decide_one(BILLING, "tools/call", f"get_{i}").rule_ids == ("r0",)
        assert policy.decide_one(BILLING, "acme/other", f"x{i}").rule_ids == ("default",)
    long_name = "get_" + "x" * (ix._MEMO_KEY_LIMIT + 1)
    assert policy.decide_one(BILLING, "tools/call", long_name).rule_ids == ("r0",)
    memo = policy._index.methods["tools/call"].memo
    assert 0 < len(memo) <= ix._MEMO_LIMIT and long_name not in memo
    assert len(policy._index.other_methods) <= ix._MEMO_LIMIT


def test_joined_shortcut_key_cannot_be_forged_with_nul() -> None:
    """The single-grant shortcut joins method, tool and caller id with NUL: tool `a<NUL>b` granted to `c` and
    tool `a` asked for by `b<NUL>c` join to the same text, so names holding NUL are kept out of it."""
    policy = load_policy_text(HEADER + 'rules:\n  - {id: r0, effect: allow, principals: [c], tools: "a\\0b"}\n')
    assert policy.decide_one(Principal("c", "mtls"), "tools/call", "a\x00b").allowed
    assert not policy.decide_one(Principal("b\x00c", "mtls"), "tools/call", "a").allowed
