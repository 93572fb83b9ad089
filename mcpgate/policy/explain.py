"""Explanations: the decision for one request and, for every rule, whether it matched and why.

Not the hot path: every rule is traced, not just the indexed candidates.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from mcpgate.policy.engine import Policy, describe
from mcpgate.policy.methods import ARGUMENT_METHODS, DEFAULT_RULE_ID, PLUMBING_METHODS, PLUMBING_RULE_ID
from mcpgate.policy.model import Decision
from mcpgate.policy.principals import PrincipalLike
from mcpgate.policy.rules import Rule


@dataclass(frozen=True, slots=True)
class RuleTrace:
    """How one rule fared. `outcome`: `match`, `no-match`, `error` (argument schema failed to evaluate)."""

    rule_id: str
    effect: str
    mode: str
    outcome: str
    principal: str
    operation: str
    arguments: str | None = None
    file: str | None = None
    line: int | None = None


@dataclass(frozen=True, slots=True)
class Explanation:
    decision: Decision
    subject: str
    rules: tuple[RuleTrace, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        d = self.decision
        return {
            "subject": self.subject,
            "decision": {
                "effect": d.effect.value, "rule_ids": list(d.rule_ids), "revision": d.revision,
                "reason": d.reason, "would_deny": d.would_deny,
                "would_deny_rule_ids": list(d.would_deny_rule_ids), "hidden": d.hidden,
                "errored_rule_ids": list(d.errored_rule_ids),
            },
            "rules": [asdict(r) for r in self.rules],
        }

    def render(self) -> str:
        lines = [f"{self.decision.effect.value.upper()}: {self.decision.reason}",
                 f"revision {self.decision.revision}", ""]
        for r in self.rules:
            where = f"  ({r.file}:{r.line})" if r.file else ""
            lines.append(f"{r.outcome:9} {r.rule_id} [{r.effect}, {r.mode}]{where}")
            lines.append(f"          principal: {r.principal}")
            lines.append(f"          operation: {r.operation}")
            if r.arguments is not None:
                lines.append(f"          arguments: {r.arguments}")
        return "\n".join(lines)


def explain(policy: Policy, principal: PrincipalLike, method: str, target: str | None,
            arguments: Any = None) -> Explanation:
    """Decide like `Policy.decide_one` and trace every rule, then the built-in rule and the default."""
    decision = policy.decide_one(principal, method, target, arguments)
    traces = [_trace(rule, principal, method, target, arguments) for rule in policy.rules]
    plumbing = method in PLUMBING_METHODS or (method == "subscriptions/listen" and target is None)
    traces.append(RuleTrace(
        PLUMBING_RULE_ID, "allow", "enforce", "match" if plumbing else "no-match", "every caller",
        f"`{method}` is protocol plumbing" if plumbing else f"`{method}` is not protocol plumbing"))
    d = policy.defaults
    traces.append(RuleTrace(
        DEFAULT_RULE_ID, d.effect.value, "audit" if d.audit else "enforce",
        "match" if decision.rule_ids == (DEFAULT_RULE_ID,) else "no-match", "every caller",
        "applies when no rule above decided"))
    return Explanation(decision, describe(method, target), tuple(traces))


def _trace(rule: Rule, p: PrincipalLike, method: str, target: str | None, arguments: Any) -> RuleTrace:
    principal_ok, principal_why = _principal(rule, p)
    op_ok, op_why = _operation(rule, method, target)
    args_why: str | None = None
    outcome = "match" if principal_ok and op_ok else "no-match"
    if rule.arguments is not None and method not in ARGUMENT_METHODS:
        args_why = f"constraint ignored: `{method}` has no arguments"
    elif rule.arguments is not None:
        if principal_ok and op_ok:
            result = rule.arguments.check(arguments)
            if result is None:
                outcome = "error"
                args_why = "argument schema failed to evaluate: " + (
                    "counts as a match (deny rule)" if rule.deny else "never grants")
            elif result:
                args_why = "arguments satisfy the constraint"
            else:
                outcome = "no-match"
                args_why = rule.arguments.explain(arguments) or "arguments do not satisfy the constraint"
        else:
            args_why = "not evaluated"
    return RuleTrace(rule.id, rule.effect.value, "audit" if rule.audit else "enforce", outcome,
                     principal_why, op_why, args_why, rule.file, rule.line)


def _principal(rule: Rule, p: PrincipalLike) -> tuple[bool, str]:
    if rule.principals is None:
        return True, "every caller (no `principals`)"
    reasons: list[str] = []
    for m in rule.principals:
        why = m.mismatch(p)
        label = f"group `{m.via_group}` entry `{m.text}`" if m.via_group else f"`{m.text}`"
        if why is None:
            return True, f"`{p.id}` matches {label}"
        reasons.append(f"{label}: {why}")
    return False, "; ".join(reasons)


def _operation(rule: Rule, method: str, target: str | None) -> tuple[bool, str]:
    if rule.clauses is None:
        return True, "every operation (no `methods`, `tools`, `prompts` or `resources`)"
    covering = [c for c in rule.clauses if c.method.matches(method)]
    if not covering:
        methods = ", ".join(dict.fromkeys(f"`{c.method.text}`" for c in rule.clauses))
        return False, f"method `{method}` is not covered (rule covers {methods})"
    for c in covering:
        if c.targets is None:
            return True, f"method `{method}` matches `{c.method.text}`"
        if target is not None:
            for t in c.targets:
                if t.matches(target):
                    return True, f"{c.target_key} pattern `{t.text}` matches `{target}`"
    patterns = ", ".join(dict.fromkeys(f"`{t.text}`" for c in covering for t in c.targets or ()))
    if target is None:
        return False, f"no target to match against {patterns}"
    return False, f"`{target}` matches none of {patterns}"
