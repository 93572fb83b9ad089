"""The policy engine: may this principal perform this MCP operation? Compiled once, evaluated purely.

Start with `load_policy(paths) -> Policy`, then `Policy.decide(principal, operation) -> Decision` per request
and `filter_list_result(...)` per list response. See docs/policy.md.
"""

from __future__ import annotations

from mcpgate.policy.check import Finding, check_against_tools, lint_policy
from mcpgate.policy.engine import Defaults, Policy, describe
from mcpgate.policy.explain import Explanation, RuleTrace, explain
from mcpgate.policy.lists import filter_list_items, filter_list_result, list_names
from mcpgate.policy.loader import compile_policy, expand_paths, load_policy, load_policy_text
from mcpgate.policy.methods import DEFAULT_RULE_ID, INVALID_RULE_ID, PLUMBING_METHODS, PLUMBING_RULE_ID
from mcpgate.policy.model import OBSERVE, Decision, Effect
from mcpgate.policy.principals import PrincipalLike

__all__ = [
    "DEFAULT_RULE_ID",
    "INVALID_RULE_ID",
    "OBSERVE",
    "PLUMBING_METHODS",
    "PLUMBING_RULE_ID",
    "Decision",
    "Defaults",
    "Effect",
    "Explanation",
    "Finding",
    "Policy",
    "PrincipalLike",
    "RuleTrace",
    "check_against_tools",
    "compile_policy",
    "describe",
    "expand_paths",
    "explain",
    "filter_list_items",
    "filter_list_result",
    "lint_policy",
    "list_names",
    "load_policy",
    "load_policy_text",
]
