"""The Decision: what policy said about one operation, and which rules said it."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Effect(enum.Enum):
    ALLOW = "allow"
    DENY = "deny"


@dataclass(frozen=True, slots=True)
class Decision:
    """The verdict for one (principal, operation).

    `rule_ids` are the rules that decided (for a default decision: `("default",)`). `would_deny` is set
    when an audit-mode rule would have denied an allowed operation. `hidden` marks a denial of something
    the caller cannot see in lists (reported as unknown rather than forbidden, when configured).
    `errored_rule_ids` are rules whose argument schema failed to evaluate (never counted as granting).
    """

    effect: Effect
    rule_ids: tuple[str, ...]
    revision: str
    reason: str = ""
    would_deny: bool = False
    would_deny_rule_ids: tuple[str, ...] = ()
    hidden: bool = False
    errored_rule_ids: tuple[str, ...] = ()

    @property
    def allowed(self) -> bool:
        return self.effect is Effect.ALLOW


OBSERVER_REVISION = "observer"
OBSERVE = Decision(Effect.ALLOW, ("observer",), OBSERVER_REVISION, "no policy configured: observer mode")
