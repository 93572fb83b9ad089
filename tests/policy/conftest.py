"""Factories for policy tests: policies from YAML text, real Principals and Operations."""

from __future__ import annotations

import textwrap
from typing import Any

from mcpgate.identity.model import ANONYMOUS, Principal
from mcpgate.policy import Policy, load_policy_text
from mcpgate.protocol.model import Direction, MessageKind, Operation, OpKind

HEADER = "apiVersion: mcpgate.dev/v1\nkind: Policy\n"

BILLING = Principal("spiffe://cluster.local/ns/payments/sa/billing", "mtls", "cluster.local", "payments",
                    "billing")
SUPPORT = Principal("spiffe://cluster.local/ns/support/sa/agent", "linkerd", "cluster.local", "support",
                    "agent")
ALICE = Principal("jwt:https://auth.example.com#alice", "jwt", claims={"iss": "https://auth.example.com",
                  "team": "support", "roles": ["viewer", "editor"]}, scopes=frozenset({"payments.read"}),
                  groups=frozenset({"staff"}))
ANON = ANONYMOUS


def policy(body: str, *, file: str = "test.yaml") -> Policy:
    return load_policy_text(HEADER + textwrap.dedent(body), file=file)


_KINDS = {
    "tools/call": OpKind.TOOL_CALL, "prompts/get": OpKind.PROMPT, "resources/read": OpKind.RESOURCE,
    "resources/subscribe": OpKind.RESOURCE, "completion/complete": OpKind.COMPLETION,
    "subscriptions/listen": OpKind.SUBSCRIPTION, "initialize": OpKind.DISCOVERY, "ping": OpKind.DISCOVERY,
    "server/discover": OpKind.DISCOVERY, "tools/list": OpKind.LIST, "prompts/list": OpKind.LIST,
    "sampling/createMessage": OpKind.SERVER_REQUEST, "elicitation/create": OpKind.SERVER_REQUEST,
}


def op(method: str, target: str | None = None, arguments: Any = None, *, targets: tuple[str, ...] = (),
       kind: OpKind | None = None) -> Operation:
    k = kind or _KINDS.get(method) or (OpKind.NOTIFICATION if method.startswith("notifications/")
                                       else OpKind.OTHER)
    mk = MessageKind.NOTIFICATION if k is OpKind.NOTIFICATION else MessageKind.REQUEST
    direction = Direction.SERVER_TO_CLIENT if k is OpKind.SERVER_REQUEST else Direction.CLIENT_TO_SERVER
    return Operation(k, method, mk, direction, None if mk is MessageKind.NOTIFICATION else 1, target,
                     targets, arguments)


def call(tool: str, arguments: Any = None) -> Operation:
    return op("tools/call", tool, arguments)
