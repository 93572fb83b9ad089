"""Principal matchers compiled from policy YAML, and the shape of a principal the engine reads.

The engine reads principals structurally (`PrincipalLike`): `identity/` is a sibling layer, not a dependency.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from mcpgate.policy.patterns import Pattern


class PrincipalLike(Protocol):
    """What policy reads from `mcpgate.identity.model.Principal`."""

    @property
    def id(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def trust_domain(self) -> str | None: ...
    @property
    def namespace(self) -> str | None: ...
    @property
    def service_account(self) -> str | None: ...
    @property
    def claims(self) -> Mapping[str, Any]: ...
    @property
    def scopes(self) -> frozenset[str]: ...
    @property
    def groups(self) -> frozenset[str]: ...


@dataclass(frozen=True, slots=True)
class PrincipalMatcher:
    """One entry of a rule's `principals` (a group reference is expanded into its members at load time).

    All set conditions must hold. `text` is how the entry reads in explanations.
    """

    text: str
    id: Pattern | None = None
    trust_domain: Pattern | None = None
    namespace: Pattern | None = None
    service_account: Pattern | None = None
    sources: frozenset[str] | None = None
    claims: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    scopes: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    anonymous: bool | None = None
    via_group: str | None = None

    @property
    def exact_id(self) -> str | None:
        """The id this matcher reduces to, when matching the id alone decides it (used by the index)."""
        if self.id is None or self.id.literal is None:
            return None
        if (self.trust_domain or self.namespace or self.service_account or self.sources or self.claims
                or self.scopes or self.groups or self.anonymous is not None):
            return None
        return self.id.literal

    @property
    def exact_namespace(self) -> str | None:
        return self.namespace.literal if self.namespace is not None else None

    @property
    def namespace_only(self) -> bool:
        """Whether an exact namespace is this matcher's only condition (then the index key settles it)."""
        return (self.exact_namespace is not None and self.id is None and self.trust_domain is None
                and self.service_account is None and self.sources is None and not self.claims
                and not self.scopes and not self.groups and self.anonymous is None)

    def matches(self, p: PrincipalLike) -> bool:
        """The per-request check: same logic as `mismatch`, without building explanations."""
        if self.anonymous is not None and (p.source == "anonymous") is not self.anonymous:
            return False
        if self.id is not None and not self.id.matches(p.id):
            return False
        if self.namespace is not None and (p.namespace is None or not self.namespace.matches(p.namespace)):
            return False
        if self.service_account is not None and (
                p.service_account is None or not self.service_account.matches(p.service_account)):
            return False
        if self.trust_domain is not None and (
                p.trust_domain is None or not self.trust_domain.matches(p.trust_domain)):
            return False
        if self.sources is not None and p.source not in self.sources:
            return False
        if self.claims:
            claims = p.claims
            for claim, wanted in self.claims:
                if not _claim_matches(claims.get(claim), wanted):
                    return False
        if self.scopes and not self.scopes <= p.scopes:
            return False
        return not (self.groups and self.groups.isdisjoint(p.groups))

    def mismatch(self, p: PrincipalLike) -> str | None:
        """None when `p` matches, else the first condition that failed, in words."""
        if self.anonymous is not None and (p.source == "anonymous") is not self.anonymous:
            return "caller is anonymous" if self.anonymous is False else "caller is not anonymous"
        if self.id is not None and not self.id.matches(p.id):
            return f"id `{p.id}` does not match `{self.id.text}`"
        for name, pat in (("trust domain", self.trust_domain), ("namespace", self.namespace),
                          ("service account", self.service_account)):
            if pat is None:
                continue
            value = getattr(p, name.replace(" ", "_"))
            if value is None or not pat.matches(value):
                return f"{name} `{value}` does not match `{pat.text}`"
        if self.sources is not None and p.source not in self.sources:
            return f"source `{p.source}` is not one of " + ", ".join(f"`{s}`" for s in sorted(self.sources))
        for claim, wanted in self.claims:
            if not _claim_matches(p.claims.get(claim), wanted):
                return f"claim `{claim}` is not " + " or ".join(f"`{w}`" for w in wanted)
        missing = self.scopes - p.scopes
        if missing:
            return "missing scope " + ", ".join(f"`{s}`" for s in sorted(missing))
        if self.groups and self.groups.isdisjoint(p.groups):
            return "not in group " + " or ".join(f"`{g}`" for g in sorted(self.groups))
        return None


def _claim_matches(value: Any, wanted: tuple[Any, ...]) -> bool:
    if isinstance(value, list | tuple):
        return any(_same(v, w) for v in value for w in wanted)
    return any(_same(value, w) for w in wanted)


def _same(a: Any, b: Any) -> bool:
    # JSON equality: `true` is not `1`.
    return type(a) is type(b) and a == b if isinstance(a, bool) or isinstance(b, bool) else a == b
