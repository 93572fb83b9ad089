"""Policy checks beyond the schema: rules against the tools a server advertises, and risky shapes.

A rule that names a tool the server does not offer, or constrains an argument the tool does not take,
silently never matches: that is the failure these checks exist to catch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from mcpgate.policy.engine import Policy
from mcpgate.policy.model import Effect


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem. `severity`: `error` (the rule cannot work as written), `warning`, `info`.

    `unknown-tool` is an error for an allow rule naming a tool exactly, a warning for an allow glob that
    matches no tool, and info for a deny rule. `unknown-argument` is always an error: a constraint on an
    argument the tool does not take never holds (allow) or never fires (deny).

    `code` is stable: `unknown-tool`, `unknown-argument`, `uncovered-tool`, `allows-anonymous`.
    """

    severity: str
    code: str
    message: str
    rule_id: str | None = None
    file: str | None = None
    line: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def render(self) -> str:
        where = ":".join(p for p in (self.file, str(self.line) if self.line else None) if p)
        return f"{where + ': ' if where else ''}{self.severity}: {self.message} [{self.code}]"


def check_against_tools(policy: Policy, tools: Sequence[Mapping[str, Any]]) -> list[Finding]:
    """Compare the policy with a `tools/list` result's `tools` (every page joined)."""
    offered = {t["name"]: t for t in tools if isinstance(t, Mapping) and isinstance(t.get("name"), str)}
    findings: list[Finding] = []
    mentioned: set[str] = set()
    for rule in policy.rules:
        patterns = rule.names("tools")
        matched: dict[str, Mapping[str, Any]] = {}
        for pat in patterns:
            hits = [name for name in offered if pat.matches(name)]
            if not hits:
                # An allow rule for a missing tool silently never matches (a typo?); a deny rule for one
                # is a harmless guard against tools the server may add later.
                severity = "info" if rule.deny else ("error" if pat.literal is not None else "warning")
                findings.append(Finding(
                    severity, "unknown-tool",
                    f"rule `{rule.id}` names tool `{pat.text}`, which the server does not offer",
                    rule.id, rule.file, rule.line))
            for name in hits:
                matched[name] = offered[name]
        mentioned.update(matched)
        if rule.arguments is None:
            continue
        for prop in rule.arguments.properties:
            for name, tool in matched.items():
                schema = tool.get("inputSchema")
                props = schema.get("properties") if isinstance(schema, Mapping) else None
                if not isinstance(props, Mapping) or prop not in props:
                    findings.append(Finding(
                        "error", "unknown-argument",
                        f"rule `{rule.id}` constrains argument `{prop}`, which tool `{name}` does not take",
                        rule.id, rule.file, rule.line))
    for name in offered:
        if name not in mentioned:
            effect = "allowed" if policy.defaults.effect is Effect.ALLOW else "denied"
            findings.append(Finding("info", "uncovered-tool",
                                    f"tool `{name}` is named by no rule ({effect} by default)"))
    return findings


def lint_policy(policy: Policy) -> list[Finding]:
    """Shapes that are valid but usually a mistake."""
    findings: list[Finding] = []
    for rule in policy.rules:
        if rule.effect is Effect.ALLOW and rule.principals is None and not rule.audit:
            findings.append(Finding(
                "warning", "allows-anonymous",
                f"rule `{rule.id}` allows every caller, including anonymous ones: add `principals`",
                rule.id, rule.file, rule.line))
    return findings
