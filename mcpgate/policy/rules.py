"""Compiled rules: the immutable form a policy file's `rules:` entries take after loading."""

from __future__ import annotations

from dataclasses import dataclass

from mcpgate.policy.arguments import ArgCheck
from mcpgate.policy.model import Effect
from mcpgate.policy.patterns import Pattern
from mcpgate.policy.principals import PrincipalLike, PrincipalMatcher


@dataclass(frozen=True, slots=True)
class OpClause:
    """One way a rule matches operations: a method (exact or glob) and, optionally, target patterns.

    `target_key` says which rule key the patterns came from (`tools`, `prompts`, `resources`).
    """

    method: Pattern
    targets: tuple[Pattern, ...] | None = None
    target_key: str | None = None

    def matches(self, method: str, target: str | None) -> bool:
        if not self.method.matches(method):
            return False
        if self.targets is None:
            return True
        return target is not None and any(t.matches(target) for t in self.targets)


@dataclass(frozen=True, slots=True, eq=False)
class Rule:
    """One rule. `index` is its position in the merged policy (files in order, then rules in order).

    `principals` None means every caller. `clauses` None means every operation.
    """

    id: str
    index: int
    effect: Effect
    audit: bool
    principals: tuple[PrincipalMatcher, ...] | None
    clauses: tuple[OpClause, ...] | None
    arguments: ArgCheck | None
    file: str
    line: int | None
    description: str = ""

    @property
    def deny(self) -> bool:
        return self.effect is Effect.DENY

    def principal_matches(self, p: PrincipalLike) -> bool:
        if self.principals is None:
            return True
        return any(m.matches(p) for m in self.principals)

    def op_matches(self, method: str, target: str | None) -> bool:
        if self.clauses is None:
            return True
        return any(c.matches(method, target) for c in self.clauses)

    def names(self, key: str) -> tuple[Pattern, ...]:
        """Every pattern this rule lists under `key` (`tools`, `prompts`, `resources`)."""
        seen: dict[str, Pattern] = {}
        for c in self.clauses or ():
            if c.target_key == key and c.targets:
                for t in c.targets:
                    seen.setdefault(t.text, t)
        return tuple(seen.values())
