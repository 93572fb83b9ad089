"""Decision semantics: default deny, deny overrides allow, erroring rules, audit mode, plumbing, reasons."""

from __future__ import annotations

import pytest

from mcpgate.identity.model import Principal
from mcpgate.policy import DEFAULT_RULE_ID, PLUMBING_METHODS, PLUMBING_RULE_ID, Effect
from mcpgate.protocol.model import Direction, MessageKind, Operation, OpKind
from tests.policy.conftest import ALICE, ANON, BILLING, SUPPORT, call, op, policy

PAYMENTS = """
groups:
  billing: ["spiffe://cluster.local/ns/payments/sa/billing"]
rules:
  - id: billing-refunds
    effect: allow
    principals: [{group: billing}]
    tools: refund
    arguments: {amount: {maximum: 100}}
  - id: no-destructive
    effect: deny
    tools: "delete_*"
  - id: billing-all
    effect: allow
    principals: [{group: billing}]
    tools: "*"
"""


def test_default_deny_names_the_default_rule() -> None:
    d = policy("rules: []\n").decide(BILLING, call("refund"))
    assert d.effect is Effect.DENY
    assert d.rule_ids == (DEFAULT_RULE_ID,)
    assert d.reason == "tool `refund` denied by default: no rule allows it"


def test_default_effect_is_configurable() -> None:
    d = policy("defaults: {effect: allow}\n").decide(ANON, call("refund"))
    assert d.allowed and d.rule_ids == ("default",) and not d.would_deny
    assert d.reason == "tool `refund` allowed by default: no rule matched"


def test_allow_names_the_rule() -> None:
    d = policy(PAYMENTS).decide(BILLING, call("refund", {"amount": 100}))
    assert d.allowed
    assert d.rule_ids == ("billing-refunds", "billing-all")
    assert d.reason == "tool `refund` allowed by rules `billing-refunds`, `billing-all`"


def test_deny_overrides_allow() -> None:
    d = policy(PAYMENTS).decide(BILLING, call("delete_repo"))
    assert d.effect is Effect.DENY
    assert d.rule_ids == ("no-destructive",)
    assert d.reason == "tool `delete_repo` denied by rule `no-destructive`"


def test_argument_constraint() -> None:
    p = policy(PAYMENTS.replace("tools: \"*\"", "tools: \"get_*\""))
    assert p.decide(BILLING, call("refund", {"amount": 50})).allowed
    assert not p.decide(BILLING, call("refund", {"amount": 101})).allowed
    assert not p.decide(BILLING, call("refund", {})).allowed  # shorthand arguments are required
    assert not p.decide(BILLING, call("refund", None)).allowed
    assert not p.decide(BILLING, call("refund", ["amount", 1])).allowed
    # The shorthand implies the type its keywords are about: strings and booleans are not small amounts.
    assert not p.decide(BILLING, call("refund", {"amount": True})).allowed
    assert not p.decide(BILLING, call("refund", {"amount": "5000"})).allowed
    assert p.decide(BILLING, call("refund", {"amount": 99.5})).allowed


def test_whole_schemas_keep_plain_json_schema_semantics() -> None:
    p = policy("rules:\n  - {id: r, effect: allow, tools: t, arguments_schema: "
               "{properties: {amount: {maximum: 100}}}}\n")
    assert p.decide(BILLING, call("t", {"amount": "5000"})).allowed  # documented: add `type` yourself


def test_boolean_is_not_a_number_in_argument_constraints() -> None:
    p = policy("rules:\n  - {id: r, effect: allow, tools: t, arguments: {n: {type: integer, maximum: 5}}}\n")
    assert p.decide(BILLING, call("t", {"n": 5})).allowed
    assert p.decide(BILLING, call("t", {"n": 5.0})).allowed
    assert not p.decide(BILLING, call("t", {"n": True})).allowed


def test_arguments_schema_whole_schema() -> None:
    p = policy("""
rules:
  - id: r
    effect: allow
    tools: search
    arguments_schema:
      type: object
      additionalProperties: false
      properties: {q: {type: string, maxLength: 5}}
""")
    assert p.decide(BILLING, call("search", {"q": "abc"})).allowed
    assert p.decide(BILLING, call("search", {})).allowed
    assert p.decide(BILLING, call("search", None)).allowed  # no arguments = {}
    assert not p.decide(BILLING, call("search", {"q": "abcdef"})).allowed
    assert not p.decide(BILLING, call("search", {"q": "a", "extra": 1})).allowed


ERRORING = """
rules:
  - id: grant
    effect: allow
    tools: t
    arguments_schema: {$ref: "https://schemas.invalid/never.json"}
  - id: block
    effect: deny
    mode: MODE
    tools: t
    arguments_schema: {$ref: "https://schemas.invalid/never.json"}
  - id: plain
    effect: allow
    tools: u
"""


def test_an_erroring_allow_rule_never_grants() -> None:
    p = policy(ERRORING.replace("MODE", "audit"))
    d = p.decide(BILLING, call("t", {"a": 1}))
    assert d.effect is Effect.DENY
    assert d.rule_ids == ("default",)
    assert d.errored_rule_ids == ("grant", "block")
    assert "failed to evaluate" in d.reason


def test_an_erroring_deny_rule_counts_as_matching() -> None:
    p = policy("""
rules:
  - {id: grant, effect: allow, tools: t}
  - {id: block, effect: deny, tools: t, arguments_schema: {$ref: "https://schemas.invalid/never.json"}}
""")
    d = p.decide(BILLING, call("t", {}))
    assert d.effect is Effect.DENY and d.rule_ids == ("block",)


def test_audit_deny_rule_sets_would_deny_without_changing_the_effect() -> None:
    p = policy("""
rules:
  - {id: allow-all, effect: allow, tools: "*"}
  - {id: no-big, effect: deny, mode: audit, tools: pay, arguments: {amount: {minimum: 1000}}}
""")
    small = p.decide(BILLING, call("pay", {"amount": 5}))
    assert small.allowed and not small.would_deny and small.would_deny_rule_ids == ()
    big = p.decide(BILLING, call("pay", {"amount": 5000}))
    assert big.allowed and big.rule_ids == ("allow-all",)
    assert big.would_deny and big.would_deny_rule_ids == ("no-big",)
    assert big.reason == ("tool `pay` allowed by rule `allow-all`; would be denied by rule `no-big` "
                          "(audit mode)")


def test_audit_allow_rule_never_grants() -> None:
    p = policy("rules:\n  - {id: a, effect: allow, mode: audit, tools: x}\n")
    d = p.decide(BILLING, call("x"))
    assert d.effect is Effect.DENY and d.rule_ids == ("default",) and not d.would_deny


def test_audit_mode_default_allows_and_flags() -> None:
    p = policy("defaults: {mode: audit}\nrules:\n  - {id: a, effect: allow, tools: x}\n")
    assert p.rules[0].audit
    d = p.decide(BILLING, call("y"))
    assert d.allowed and d.rule_ids == ("default",)
    assert d.would_deny and d.would_deny_rule_ids == ("default",)
    # An audit allow rule that matches means the shadow decision allows: nothing to flag.
    ok = p.decide(BILLING, call("x"))
    assert ok.allowed and not ok.would_deny


def test_enforced_rule_under_audit_default() -> None:
    p = policy("defaults: {mode: audit}\nrules:\n  - {id: d, effect: deny, mode: enforce, tools: x}\n")
    assert not p.decide(BILLING, call("x")).allowed


@pytest.mark.parametrize("method", sorted(PLUMBING_METHODS))
def test_plumbing_is_allowed_under_default_deny(method: str) -> None:
    d = policy("rules: []\n").decide(ANON, op(method))
    assert d.allowed and d.rule_ids == (PLUMBING_RULE_ID,)
    assert not d.would_deny


def test_plumbing_can_be_denied_explicitly() -> None:
    p = policy("rules:\n  - {id: no-anon, effect: deny, principals: [{anonymous: true}]}\n")
    d = p.decide(ANON, op("initialize"))
    assert not d.allowed and d.rule_ids == ("no-anon",)
    assert p.decide(BILLING, op("initialize")).allowed
    by_method = policy("rules:\n  - {id: no-ping, effect: deny, methods: ping}\n")
    assert by_method.decide(BILLING, op("ping")).rule_ids == ("no-ping",)


def test_responses_are_plumbing_whatever_their_method() -> None:
    p = policy("rules:\n  - {id: d, effect: deny, tools: '*'}\n")
    resp = Operation(OpKind.RESPONSE, "tools/call", MessageKind.RESULT, Direction.SERVER_TO_CLIENT, 1,
                     "anything")
    d = p.decide(BILLING, resp)
    assert d.allowed and d.rule_ids == (PLUMBING_RULE_ID,)


def test_server_to_client_requests_by_method() -> None:
    p = policy("rules:\n  - {id: s, effect: allow, principals: ['spiffe://cluster.local/ns/payments/**'], "
               "methods: [sampling/createMessage, 'elicitation/*']}\n")
    assert p.decide(BILLING, op("sampling/createMessage")).rule_ids == ("s",)
    assert p.decide(BILLING, op("elicitation/create")).rule_ids == ("s",)
    assert not p.decide(SUPPORT, op("sampling/createMessage")).allowed
    assert not p.decide(BILLING, op("roots/list")).allowed


def test_any_other_method_by_name() -> None:
    p = policy("rules:\n  - {id: x, effect: allow, methods: 'acme/reindex'}\n")
    assert p.decide(ANON, op("acme/reindex")).allowed
    assert not p.decide(ANON, op("acme/other")).allowed
    assert p.decide(ANON, op("acme/reindex")).reason == "`acme/reindex` allowed by rule `x`"


def test_rule_without_operation_keys_covers_everything() -> None:
    p = policy("rules:\n  - {id: admin, effect: allow, principals: [{groups: [admins]}]}\n")
    admin = Principal("jwt:i#root", "jwt", groups=frozenset({"admins"}))
    assert p.decide(admin, call("anything")).allowed
    assert p.decide(admin, op("resources/read", "file:///x")).allowed
    assert not p.decide(ALICE, call("anything")).allowed


def test_prompts_and_completions() -> None:
    p = policy("rules:\n  - {id: p, effect: allow, prompts: 'explain_*'}\n")
    assert p.decide(ANON, op("prompts/get", "explain_fee", {"x": "y"})).allowed
    assert p.decide(ANON, op("completion/complete", "explain_fee")).allowed
    assert not p.decide(ANON, op("prompts/get", "other")).allowed
    reason = p.decide(ANON, op("prompts/get", "explain_fee")).reason
    assert reason == "prompt `explain_fee` allowed by rule `p`"


def test_resources_cover_read_subscribe_and_methods_narrow_them() -> None:
    p = policy("""
rules:
  - {id: read, effect: allow, resources: "file:///data/**", methods: resources/read}
  - {id: sub, effect: allow, resources: "file:///data/{name}", methods: "resources/*subscribe"}
""")
    assert p.decide(ANON, op("resources/read", "file:///data/a/b")).rule_ids == ("read",)
    assert not p.decide(ANON, op("resources/subscribe", "file:///data/a/b")).allowed
    assert p.decide(ANON, op("resources/subscribe", "file:///data/a")).rule_ids == ("sub",)
    assert p.decide(ANON, op("resources/unsubscribe", "file:///data/a")).rule_ids == ("sub",)


def test_subscriptions_listen_needs_every_uri() -> None:
    p = policy("rules:\n  - {id: r, effect: allow, resources: 'file:///ok/*'}\n")
    ok = p.decide(ANON, op("subscriptions/listen", targets=("file:///ok/a", "file:///ok/b")))
    assert ok.allowed and ok.rule_ids == ("r",)
    bad = p.decide(ANON, op("subscriptions/listen", targets=("file:///ok/a", "file:///no/b")))
    assert not bad.allowed
    assert "file:///no/b" in bad.reason
    # Listening only for list-changed notifications is plumbing.
    assert p.decide(ANON, op("subscriptions/listen")).rule_ids == (PLUMBING_RULE_ID,)


PRINCIPALS = """
rules:
  - {id: by-id, effect: allow, principals: ["spiffe://cluster.local/ns/payments/sa/billing"], tools: a}
  - {id: by-ns, effect: allow, principals: [{namespace: support}], tools: b}
  - {id: by-sa-glob, effect: allow, principals: [{trust_domain: cluster.local, service_account: "ag*"}],
     tools: c}
  - {id: by-claim, effect: allow, principals: [{claims: {team: [support, ops], iss: "https://auth.example.com"}}],
     tools: d}
  - {id: by-list-claim, effect: allow, principals: [{claims: {roles: editor}}], tools: e}
  - {id: by-scope, effect: allow, principals: [{scopes: [payments.read]}], tools: f}
  - {id: by-two-scopes, effect: allow, principals: [{scopes: [payments.read, payments.write]}], tools: g}
  - {id: by-idp-group, effect: allow, principals: [{groups: [staff, nobody]}], tools: h}
  - {id: anon-only, effect: allow, principals: [{anonymous: true}], tools: i}
  - {id: authenticated, effect: allow, principals: [{anonymous: false}], tools: j}
  - {id: by-source, effect: allow, principals: [{source: [linkerd, xfcc]}], tools: k}
  - {id: id-glob, effect: allow, principals: ["jwt:https://auth.example.com#*"], tools: l}
"""


@pytest.mark.parametrize(("tool", "allowed"), [
    ("a", {"billing"}), ("b", {"support"}), ("c", {"support"}), ("d", {"alice"}), ("e", {"alice"}),
    ("f", {"alice"}), ("g", set()), ("h", {"alice"}), ("i", {"anon"}), ("j", {"billing", "support", "alice"}),
    ("k", {"support"}), ("l", {"alice"}),
])
def test_principal_matchers(tool: str, allowed: set[str]) -> None:
    p = policy(PRINCIPALS)
    who = {"billing": BILLING, "support": SUPPORT, "alice": ALICE, "anon": ANON}
    got = {name for name, pr in who.items() if p.decide(pr, call(tool)).allowed}
    assert got == allowed


def test_claim_values_compare_as_json() -> None:
    p = policy("rules:\n  - {id: r, effect: allow, principals: [{claims: {admin: true}}], tools: t}\n")
    yes = Principal("jwt:i#a", "jwt", claims={"admin": True})
    one = Principal("jwt:i#b", "jwt", claims={"admin": 1})
    assert p.decide(yes, call("t")).allowed
    assert not p.decide(one, call("t")).allowed


def test_hidden_marks_denials_of_invisible_targets() -> None:
    p = policy(PAYMENTS)
    assert p.decide(SUPPORT, call("refund", {"amount": 1})).hidden
    assert not p.decide(BILLING, call("refund", {"amount": 500})).hidden  # visible, wrong arguments
    assert p.decide(BILLING, call("delete_x")).hidden  # denied outright: unknown to them
    off = policy("defaults: {hidden_as_unknown: false}\n" + PAYMENTS)
    assert not off.decide(SUPPORT, call("refund")).hidden
    assert not p.decide(SUPPORT, op("sampling/createMessage")).hidden


def test_decisions_are_stable_values() -> None:
    p = policy(PAYMENTS)
    a = p.decide(BILLING, call("get_x"))
    b = p.decide(BILLING, call("get_x"))
    assert a == b
    assert p.decide(SUPPORT, call("get_x")) != a


def test_unknown_tool_call_without_name() -> None:
    p = policy("rules:\n  - {id: r, effect: allow, tools: '*'}\n")
    d = p.decide(BILLING, call(None))  # type: ignore[arg-type]
    assert not d.allowed and d.reason == "`tools/call` denied by default: no rule allows it"


def test_long_targets_are_decided_but_not_cached() -> None:
    p = policy("rules:\n  - {id: r, effect: allow, resources: 'file:///**'}\n")
    uri = "file:///" + "a" * 100_000
    assert p.decide(ANON, op("resources/read", uri)).allowed
    assert not p.decide(ANON, op("resources/read", "x" + uri)).allowed
    assert all(k[1] is None or len(k[1]) <= 512 for k in p._cache)


def test_malformed_targets_never_grant() -> None:
    p = policy("rules:\n  - {id: r, effect: allow, tools: '*'}\n  - {id: t, effect: allow, methods: 'tasks/*'}\n")
    assert not p.decide(BILLING, call(42)).allowed  # type: ignore[arg-type]
    assert p.decide(BILLING, op("tasks/get", 7)).allowed  # type: ignore[arg-type]  (method-only rule)
    listen = op("subscriptions/listen", targets=(5,))  # type: ignore[arg-type]
    d = p.decide(BILLING, listen)
    assert not d.allowed and d.rule_ids == ("builtin:invalid",)


def test_invalid_operations_are_denied_by_a_builtin_rule() -> None:
    p = policy("defaults: {effect: allow}\n")
    o = call("refund")
    o.invalid = "`params.arguments` of `tools/call` must be an object"
    d = p.decide(BILLING, o)
    assert not d.allowed and d.rule_ids == ("builtin:invalid",)
    assert d.reason == "`tools/call` denied: `params.arguments` of `tools/call` must be an object"
