"""List filtering: `tools/list`, `prompts/list`, `resources/list` and `resources/templates/list` results show
only what the caller may use (for some arguments), the same answer the call gate gives.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mcpgate.policy.engine import Policy
from mcpgate.policy.methods import LIST_METHODS
from mcpgate.policy.principals import PrincipalLike


def filter_list_result(policy: Policy, principal: PrincipalLike, method: str,
                       result: dict[str, Any]) -> dict[str, Any] | None:
    """A filtered copy of a list result, or None when nothing was removed (forward the bytes unchanged).

    Entries without a usable name are removed (fail closed). When anything is removed from a 2026-07-28
    result (it has `ttlMs` or `cacheScope`), `cacheScope` becomes `"private"`: the list now depends on
    who asked.
    """
    spec = LIST_METHODS.get(method)
    if spec is None:
        return None
    kind = spec[2]
    return filter_list_items(method, result, lambda name: policy.visible(principal, kind, name))


def list_names(method: str, result: Any) -> list[str] | None:
    """The names (or URIs) of a list result's entries, in order; None when `method` is not a list."""
    spec = LIST_METHODS.get(method)
    if spec is None or not isinstance(result, dict):
        return None
    list_key, item_key, _ = spec
    items = result.get(list_key)
    if not isinstance(items, list):
        return None
    return [item[item_key] for item in items if isinstance(item, dict) and isinstance(item.get(item_key), str)]


def filter_list_items(method: str, result: dict[str, Any],
                      keep: Callable[[str], bool]) -> dict[str, Any] | None:
    """`filter_list_result` with the visibility question answered by `keep(name)` (YAML engine or OPA)."""
    spec = LIST_METHODS.get(method)
    if spec is None or not isinstance(result, dict):
        return None
    list_key, item_key, _ = spec
    items = result.get(list_key)
    if not isinstance(items, list):
        return None
    kept = [
        item for item in items
        if isinstance(item, dict) and isinstance(item.get(item_key), str) and keep(item[item_key])
    ]
    if len(kept) == len(items):
        return None
    out = dict(result)
    out[list_key] = kept
    if "ttlMs" in out or "cacheScope" in out:
        out["cacheScope"] = "private"
    return out
