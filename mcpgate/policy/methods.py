"""Which MCP methods each rule key covers, and which methods are protocol plumbing allowed by default."""

from __future__ import annotations

from typing import Final

TOOL_METHODS: Final = ("tools/call",)
PROMPT_METHODS: Final = ("prompts/get", "completion/complete")
RESOURCE_METHODS: Final = (
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
    "subscriptions/listen",
    "completion/complete",
    "notifications/resources/updated",
)
TARGET_METHODS: Final[dict[str, tuple[str, ...]]] = {
    "tools": TOOL_METHODS,
    "prompts": PROMPT_METHODS,
    "resources": RESOURCE_METHODS,
}
"""Rule key → the methods whose target it matches (a rule with `tools:` applies to `tools/call`, ...)."""

LIST_METHODS: Final[dict[str, tuple[str, str, str]]] = {
    # method: (result key, item key, visibility kind)
    "tools/list": ("tools", "name", "tool"),
    "prompts/list": ("prompts", "name", "prompt"),
    "resources/list": ("resources", "uri", "resource"),
    "resources/templates/list": ("resourceTemplates", "uriTemplate", "resource_template"),
}

VISIBILITY_METHOD: Final[dict[str, str]] = {
    "tool": "tools/call",
    "prompt": "prompts/get",
    "resource": "resources/read",
    "resource_template": "resources/read",
}

PLUMBING_METHODS: Final = frozenset({
    "initialize",
    "server/discover",
    "ping",
    "notifications/initialized",
    "notifications/cancelled",
    "notifications/progress",
    "notifications/roots/list_changed",
    "notifications/message",
    "notifications/tools/list_changed",
    "notifications/prompts/list_changed",
    "notifications/resources/list_changed",
    "notifications/subscriptions/acknowledged",
    "notifications/tasks/status",
    "notifications/tasks",
    "notifications/elicitation/complete",
    # List calls are safe to let through: their results are filtered item by item.
    "tools/list",
    "prompts/list",
    "resources/list",
    "resources/templates/list",
})
"""Methods the built-in `builtin:protocol` rule allows (an explicit deny rule still overrides it).

Responses (results and errors answering an earlier request) are plumbing too, whatever their method, and so
is `subscriptions/listen` when it subscribes to no resource URI (list-changed notifications only).
"""

ARGUMENT_METHODS: Final = frozenset({"tools/call", "prompts/get"})
"""Methods whose `params.arguments` argument constraints apply to; for others a rule's constraint is ignored."""

PLUMBING_RULE_ID: Final = "builtin:protocol"
DEFAULT_RULE_ID: Final = "default"
INVALID_RULE_ID: Final = "builtin:invalid"
"""Denies an operation the protocol layer marked invalid (`Operation.invalid`), whatever the rules say."""
