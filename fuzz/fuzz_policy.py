"""Fuzz the policy matcher: any method/target/arguments must decide without raising, deny overriding allow."""

from __future__ import annotations

import json

import atheris

with atheris.instrument_imports(include=["mcpgate"]):
    from mcpgate.identity import Principal
    from mcpgate.policy import load_policy_text
    from mcpgate.protocol.model import Direction, MessageKind, Operation, OpKind

_POLICY = load_policy_text("""
apiVersion: mcpgate.dev/v1
kind: Policy
metadata: {name: fuzz}
defaults: {effect: deny}
rules:
  - {id: allow-all, effect: allow, tools: ["*"], resources: ["ledger://{a}/*"]}
  - {id: no-delete, effect: deny, tools: ["delete_*"]}
  - {id: refunds, effect: allow, tools: refund, arguments: {amount: {type: number, maximum: 100}}}
""")
_KINDS = {"tools/call": OpKind.TOOL_CALL, "resources/read": OpKind.RESOURCE, "prompts/get": OpKind.PROMPT}
_WHO = [Principal("anonymous", "anonymous"), Principal("spiffe://td/ns/a/sa/b", "linkerd", "td", "a", "b")]


def one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    method = fdp.PickValueInList(["tools/call", "resources/read", "prompts/get", "ping", "x"])
    target = fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 64))
    try:
        arguments = json.loads(fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 256)))
    except (ValueError, RecursionError):
        arguments = None
    op = Operation(_KINDS.get(method, OpKind.OTHER), method, MessageKind.REQUEST, Direction.CLIENT_TO_SERVER, 1,
                   target=target, arguments=arguments)
    d = _POLICY.decide(fdp.PickValueInList(_WHO), op)
    if method == "tools/call" and target.startswith("delete_") and d.allowed:
        raise AssertionError(f"deny did not override allow for `{target}`")


if __name__ == "__main__":
    from fuzz._common import run

    run(one_input)
