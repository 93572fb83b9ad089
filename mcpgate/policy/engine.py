"""The compiled policy snapshot and its pure decision function: (principal, operation) → Decision.

Semantics: deny overrides allow; no matching rule → `defaults.effect` (deny unless configured); protocol
plumbing is allowed by the built-in rule `builtin:protocol` unless a deny rule matches; a rule whose argument
schema errors never grants (non-match for allow, match for deny); audit-mode rules never change the effect.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from mcpgate.policy.index import RuleIndex
from mcpgate.policy.methods import (
    ARGUMENT_METHODS,
    DEFAULT_RULE_ID,
    INVALID_RULE_ID,
    PLUMBING_METHODS,
    PLUMBING_RULE_ID,
    VISIBILITY_METHOD,
)
from mcpgate.policy.model import Decision, Effect
from mcpgate.policy.patterns import may_overlap
from mcpgate.policy.principals import PrincipalLike, PrincipalMatcher
from mcpgate.policy.rules import Rule
from mcpgate.protocol.model import Operation, OpKind

_CACHE_LIMIT: Final = 4096
_CACHE_TARGET_LIMIT: Final = 512
_ANY_ARGS: Final = object()
"""Stand-in for "some arguments" when answering visibility: argument constraints neither grant nor deny."""



@dataclass(frozen=True, slots=True)
class Defaults:
    effect: Effect = Effect.DENY
    audit: bool = False
    hidden_as_unknown: bool = True


@dataclass(slots=True)
class Matches:
    """The rules that matched one (principal, method, target, arguments), by effect and mode."""

    deny: list[Rule]
    allow: list[Rule]
    audit_deny: list[Rule]
    audit_allow: list[Rule]
    errored: list[Rule]
    any: bool = False
    """Whether any candidate rule applied to the principal and target (before arguments)."""

    @property
    def key(self) -> tuple[int, ...]:
        """Identifies the combination (for the decision cache): rule indexes per bucket, -1 separated."""
        out: list[int] = []
        for bucket in (self.deny, self.allow, self.audit_deny, self.audit_allow, self.errored):
            out.extend(r.index for r in bucket)
            out.append(-1)
        return tuple(out)


class Policy:
    """A compiled, immutable policy: read it per request, swap it whole on reload."""

    __slots__ = ("_cache", "_default_effect", "_index", "defaults", "files", "groups", "revision", "rules")

    def __init__(self, rules: Sequence[Rule], defaults: Defaults, revision: str,
                 groups: Mapping[str, tuple[PrincipalMatcher, ...]] | None = None,
                 files: Sequence[str] = ()) -> None:
        self.rules: tuple[Rule, ...] = tuple(rules)
        self.defaults = defaults
        self.revision = revision
        self.groups: Mapping[str, tuple[PrincipalMatcher, ...]] = dict(groups or {})
        self.files: tuple[str, ...] = tuple(files)
        self._index = RuleIndex(self.rules, self._sole_decision)
        self._cache: dict[tuple[Any, ...], Decision] = {}
        # What happens when no rule matches (an audit-mode default deny lets the call through).
        self._default_effect = Effect.ALLOW if defaults.audit else defaults.effect

    def rule(self, rule_id: str) -> Rule | None:
        return next((r for r in self.rules if r.id == rule_id), None)

    # -- decisions ---------------------------------------------------------------------------------------

    def decide(self, principal: PrincipalLike, operation: Operation) -> Decision:
        """May `principal` perform `operation`? Pure; never raises for well-formed inputs."""
        if operation.kind is OpKind.RESPONSE:
            return self._plumbing(operation.method)
        if operation.invalid is not None:  # the data plane rejects these; never allow one regardless
            return Decision(Effect.DENY, (INVALID_RULE_ID,), self.revision,
                            f"{describe(operation.method, None)} denied: {operation.invalid}")
        if operation.targets:
            return self._decide_many(principal, operation)
        args = operation.arguments if operation.method in ARGUMENT_METHODS else None
        target = operation.target
        if target is not None and not isinstance(target, str):
            target = None  # a malformed name/URI matches no target pattern: never grants by accident
        return self.decide_one(principal, operation.method, target, args)

    def decide_one(self, p: PrincipalLike, method: str, target: str | None,
                   arguments: Any = None) -> Decision:
        """Decide for one method and target; `arguments` is `params.arguments` (None: no arguments)."""
        index = self._index
        if target is not None:
            # `index.sole_key`, inlined (a call costs as much as the probe): one string, one dict probe.
            found = index.sole.get(f"{method}\x00{target}\x00{p.id}")
            if found is not None:  # one enforced allow rule, nothing else can reach (see RuleIndex.sole)
                return found
        view = index.view(method, target)
        # Hot path: enforced, non-erroring rules only. Audit rules and schema errors take match().
        hits: list[Rule] = []
        sole: Decision | None = None
        seen = False
        with_args = method in ARGUMENT_METHODS
        for rule, _, pending_principal, ready in view.collect(p):  # target patterns: checked by the view
            if pending_principal and not rule.principal_matches(p):
                continue
            seen = True
            if rule.arguments is not None and with_args:
                ok = rule.arguments.check(arguments)
                if ok is None:
                    return self._decide_general(p, method, target, arguments)
                if not ok:
                    continue
            if rule.audit:
                return self._decide_general(p, method, target, arguments)
            if rule not in hits:
                hits.append(rule)
                sole = ready
        if sole is not None and len(hits) == 1:
            return sole
        if not seen:
            # No rule applies to this caller here: the answer depends on the method and target alone.
            nothing = view.nothing
            if nothing is None:
                nothing = view.nothing = self._decide_unmatched(p, method, target)
            return nothing
        plumbing = method in PLUMBING_METHODS or (method == "subscriptions/listen" and target is None)
        if len(hits) == 1:
            effect = Effect.DENY if hits[0].deny else Effect.ALLOW
        elif hits:
            effect = Effect.DENY if any(r.deny for r in hits) else Effect.ALLOW
        elif plumbing:
            effect = Effect.ALLOW
        else:
            effect = self._default_effect
        hidden = effect is Effect.DENY and self._hidden(p, method, target, seen)
        if len(hits) > 1:
            hits.sort(key=_by_index)
        key = (method, target, tuple([r.index for r in hits]), plumbing, hidden)
        found = self._cache.get(key)
        if found is not None:
            return found
        m = Matches([r for r in hits if r.deny], [r for r in hits if not r.deny], [], [], [], seen)
        decision = self._build(m, method, target, plumbing=plumbing, effect=effect, hidden=hidden)
        return self._remember(key, decision)

    def _decide_unmatched(self, p: PrincipalLike, method: str, target: str | None) -> Decision:
        """The decision when no rule applies (to anyone, or to this caller): plumbing or the default."""
        plumbing = method in PLUMBING_METHODS or (method == "subscriptions/listen" and target is None)
        effect = Effect.ALLOW if plumbing else self._default_effect
        hidden = effect is Effect.DENY and self._hidden(p, method, target, False)
        key = (method, target, (), plumbing, hidden)
        found = self._cache.get(key)
        if found is not None:
            return found
        m = Matches([], [], [], [], [], False)
        decision = self._build(m, method, target, plumbing=plumbing, effect=effect, hidden=hidden)
        return self._remember(key, decision)

    def _decide_general(self, p: PrincipalLike, method: str, target: str | None, arguments: Any) -> Decision:
        m = self.match(p, method, target, arguments)
        plumbing = method in PLUMBING_METHODS or (method == "subscriptions/listen" and target is None)
        if m.deny:
            effect = Effect.DENY
        elif m.allow or plumbing:
            effect = Effect.ALLOW
        else:
            effect = self._default_effect
        hidden = effect is Effect.DENY and self._hidden(p, method, target, m.any)
        key = (method, target, m.key, plumbing, hidden)
        found = self._cache.get(key)
        if found is not None:
            return found
        decision = self._build(m, method, target, plumbing=plumbing, effect=effect, hidden=hidden)
        return self._remember(key, decision)

    def _hidden(self, p: PrincipalLike, method: str, target: str | None, any_rule: bool) -> bool:
        if not self.defaults.hidden_as_unknown or target is None:
            return False
        kind = _VISIBLE_KIND.get(method)
        if kind is None:
            return False
        if not any_rule:  # no rule involved at all: visibility is the default effect
            return self._default_effect is Effect.DENY
        return not self.visible(p, kind, target)

    def _remember(self, key: tuple[Any, ...], decision: Decision) -> Decision:
        target = key[1]
        if target is not None and len(target) > _CACHE_TARGET_LIMIT:
            return decision  # keep the cache's memory bounded whatever callers send
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[key] = decision
        return decision

    def match(self, p: PrincipalLike, method: str, target: str | None, arguments: Any = None) -> Matches:
        """Every rule that matches, bucketed; `arguments=_ANY_ARGS` answers "for some arguments"."""
        m = Matches([], [], [], [], [])
        with_args = method in ARGUMENT_METHODS
        for rule, _, pending_principal, _ in self._index.candidates(method, target, p):
            if pending_principal and not rule.principal_matches(p):
                continue
            m.any = True
            if rule.arguments is not None and with_args:
                if arguments is _ANY_ARGS:
                    if rule.deny:
                        continue
                else:
                    ok = rule.arguments.check(arguments)
                    if ok is None:
                        if rule not in m.errored:
                            m.errored.append(rule)
                        if not rule.deny:
                            continue
                    elif not ok:
                        continue
            pair = (m.audit_deny, m.audit_allow) if rule.audit else (m.deny, m.allow)
            bucket = pair[0] if rule.deny else pair[1]
            if rule not in bucket:
                bucket.append(rule)
        for bucket in (m.deny, m.allow, m.audit_deny, m.audit_allow, m.errored):
            if len(bucket) > 1:
                bucket.sort(key=_by_index)
        return m

    def visible(self, principal: PrincipalLike, kind: str | OpKind, name: str) -> bool:
        """Would some call to this tool / prompt / resource (`resource_template` too) be allowed?"""
        kind_name = kind.value if isinstance(kind, OpKind) else kind
        if kind_name == "resource_template":
            return self._template_visible(principal, name)
        method = VISIBILITY_METHOD.get(kind_name)
        if method is None:
            raise ValueError(f"unknown kind `{kind_name}`")
        m = self.match(principal, method, name, _ANY_ARGS)
        if m.deny:
            return False
        if m.allow:
            return True
        return self.defaults.effect is Effect.ALLOW or self.defaults.audit

    def _template_visible(self, p: PrincipalLike, template: str) -> bool:
        # Not indexed: templates are few per server and lists are not the per-call hot path.
        allowed = self.defaults.effect is Effect.ALLOW or self.defaults.audit
        for rule in self.rules:
            if rule.audit or not rule.principal_matches(p):
                continue
            clauses = [c for c in rule.clauses or () if c.method.matches("resources/read")]
            if rule.clauses is not None and not clauses:
                continue
            patterns = [t for c in clauses for t in (c.targets or ())]
            covers_all = rule.clauses is None or any(c.targets is None for c in clauses)
            if rule.deny:
                if rule.arguments is None and (covers_all or any(
                        t.matches(template) for t in patterns)):
                    return False
            elif covers_all or any(may_overlap(t, template) for t in patterns):
                allowed = True
        return allowed

    # -- assembling decisions -------------------------------------------------------------------------

    def _decide_many(self, p: PrincipalLike, operation: Operation) -> Decision:
        if not all(isinstance(t, str) for t in operation.targets):
            return Decision(Effect.DENY, (INVALID_RULE_ID,), self.revision,
                            f"{describe(operation.method, None)} denied: a target is not a string")
        decisions = [self.decide_one(p, operation.method, t) for t in operation.targets]
        for d in decisions:
            if not d.allowed:
                return d
        ids = tuple(dict.fromkeys(i for d in decisions for i in d.rule_ids))
        would = tuple(dict.fromkeys(i for d in decisions for i in d.would_deny_rule_ids))
        errored = tuple(dict.fromkeys(i for d in decisions for i in d.errored_rule_ids))
        reason = (f"`{operation.method}` on {len(decisions)} resources allowed by "
                  + _rules_phrase(ids))
        return Decision(Effect.ALLOW, ids, self.revision, reason, bool(would), would,
                        errored_rule_ids=errored)

    def _sole_decision(self, rule: Rule, method: str, target: str | None) -> Decision | None:
        """What an enforced allow rule decides alone for one target: precomputed with the index's views."""
        if rule.deny or rule.audit:
            return None  # denials depend on the caller's visibility (`hidden`); audit rules never decide
        m = Matches([], [rule], [], [], [], True)
        return self._build(m, method, target, plumbing=False, effect=Effect.ALLOW, hidden=False)

    def _plumbing(self, method: str) -> Decision:
        return Decision(Effect.ALLOW, (PLUMBING_RULE_ID,), self.revision,
                        f"response to `{method}` allowed as protocol plumbing by rule `{PLUMBING_RULE_ID}`")

    def _build(self, m: Matches, method: str, target: str | None, *, plumbing: bool, effect: Effect,
               hidden: bool) -> Decision:
        subject = describe(method, target)
        errored = tuple(r.id for r in m.errored)
        if m.deny:
            ids = tuple(r.id for r in m.deny)
            reason = f"{subject} denied by {_rules_phrase(ids)}"
        elif m.allow:
            ids = tuple(r.id for r in m.allow)
            reason = f"{subject} allowed by {_rules_phrase(ids)}"
        elif plumbing:
            ids = (PLUMBING_RULE_ID,)
            reason = f"{subject} allowed as protocol plumbing by rule `{PLUMBING_RULE_ID}`"
        else:
            ids = (DEFAULT_RULE_ID,)
            if self.defaults.effect is Effect.ALLOW:
                reason = f"{subject} allowed by default: no rule matched"
            elif effect is Effect.ALLOW:
                reason = f"{subject} allowed: no rule allows it, and the default deny is in audit mode"
            else:
                reason = f"{subject} denied by default: no rule allows it"
        would: tuple[str, ...] = ()
        if effect is Effect.ALLOW:
            # The shadow decision: what the effect would be if every audit-mode rule were enforced.
            if m.deny or m.audit_deny:
                would = tuple(r.id for r in sorted([*m.deny, *m.audit_deny], key=_by_index))
            elif not (m.allow or m.audit_allow or plumbing) and self.defaults.effect is Effect.DENY:
                would = (DEFAULT_RULE_ID,)
            if would:
                reason += f"; would be denied by {_rules_phrase(would)} (audit mode)"
        if errored:
            reason += f"; {_rules_phrase(errored)} failed to evaluate"
        return Decision(effect, ids, self.revision, reason, bool(would), would, hidden, errored)


_VISIBLE_KIND: Final = {"tools/call": "tool", "prompts/get": "prompt", "resources/read": "resource"}


def _by_index(rule: Rule) -> int:
    return rule.index


def _rules_phrase(ids: Sequence[str]) -> str:
    if len(ids) == 1:
        return f"rule `{ids[0]}`"
    return "rules " + ", ".join(f"`{i}`" for i in ids)


def describe(method: str, target: str | None) -> str:
    """How an operation is named in reasons: ``tool `x` ``, ``resource `file:///a` ``, `` `ping` ``."""
    if target is None:
        return f"`{method}`"
    if method == "tools/call":
        return f"tool `{target}`"
    if method == "prompts/get":
        return f"prompt `{target}`"
    if method == "resources/read":
        return f"resource `{target}`"
    return f"`{method}` on `{target}`"
