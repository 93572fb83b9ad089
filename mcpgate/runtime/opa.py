"""The OPA backend: ask an Open Policy Agent server, via its Data API, whether to allow each operation.

Fail closed: a timeout, connection error, HTTP error or malformed answer denies (rule id `opa:error`).
Protocol plumbing and responses are allowed locally, as with the YAML backend. The input document is
documented in docs/policy.md ("OPA backend").
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from opa_client.opa import OpaClient
from opa_client.opa_async import AsyncOpaClient

from mcpgate.errors import ConfigError
from mcpgate.policy import PLUMBING_METHODS, PLUMBING_RULE_ID, Decision, Effect, PrincipalLike, describe
from mcpgate.policy.methods import INVALID_RULE_ID, LIST_METHODS, VISIBILITY_METHOD
from mcpgate.protocol.model import Operation, OpKind

__all__ = ["OPA_ERROR_RULE_ID", "OPA_REVISION", "OpaBackend", "opa_input", "opa_list_input"]

log = logging.getLogger("mcpgate.policy")

OPA_ERROR_RULE_ID = "opa:error"
OPA_REVISION = "opa"
_ARG_METHODS = frozenset({"tools/call", "prompts/get"})


def opa_input(principal: PrincipalLike, operation: Operation, *, session: str | None = None,
              protocol_version: str | None = None) -> dict[str, Any]:
    """The `input` document OPA receives (documented; keep it stable)."""
    return {
        "principal": {
            "id": principal.id,
            "source": principal.source,
            "trust_domain": principal.trust_domain,
            "namespace": principal.namespace,
            "service_account": principal.service_account,
            "claims": dict(principal.claims),
            "scopes": sorted(principal.scopes),
            "groups": sorted(principal.groups),
            "anonymous": principal.source == "anonymous",
        },
        "operation": {
            "kind": operation.kind.value,
            "method": operation.method,
            "direction": operation.direction.value,
            "target": operation.target,
            "targets": list(operation.targets),
        },
        "target": operation.target,
        "arguments": operation.arguments if operation.method in _ARG_METHODS else None,
        "session": session,
        "protocol_version": protocol_version or operation.protocol_version,
    }


def opa_list_input(principal: PrincipalLike, operation: Operation, names: list[str], *,
                   session: str | None = None, protocol_version: str | None = None) -> dict[str, Any]:
    """The `input` for filtering one list answer: the list request's own input plus `list` (documented)."""
    doc = opa_input(principal, operation, session=session, protocol_version=protocol_version)
    kind = LIST_METHODS[operation.method][2]
    doc["list"] = {"kind": kind, "method": VISIBILITY_METHOD[kind], "names": names}
    return doc


class OpaBackend:
    """Decisions from OPA. `decide` blocks (use it off the event loop); `adecide` is the asyncio form."""

    def __init__(self, url: str, *, path: str = "mcpgate/authz", timeout_s: float = 0.5,
                 headers: Mapping[str, str] | None = None) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"invalid opa url `{url}`: expected http(s)://host[:port]", path="policy.opa.url")
        self.url = url
        self.path = path.strip("/")
        self.timeout_s = timeout_s
        self._client_args: dict[str, Any] = {
            "host": parts.hostname,
            "port": parts.port or (443 if parts.scheme == "https" else 80),
            "ssl": parts.scheme == "https",
            "timeout": timeout_s,
            "retries": 0,  # one attempt within the timeout: a slow OPA must not stall calls further
            "headers": dict(headers) if headers else None,
        }
        self._sync: OpaClient | None = None
        self._async: AsyncOpaClient | None = None

    @classmethod
    def from_section(cls, section: Mapping[str, Any]) -> OpaBackend:
        """From the config's `policy.opa` mapping (`url`, `path`, `timeout_s`)."""
        return cls(section["url"], path=section.get("path", "mcpgate/authz"),
                   timeout_s=float(section.get("timeout_s", 0.5)))

    def local(self, operation: Operation) -> Decision | None:
        """The decision made without OPA (plumbing and responses), or None when OPA must be asked."""
        if operation.kind is OpKind.RESPONSE:
            return Decision(Effect.ALLOW, (PLUMBING_RULE_ID,), OPA_REVISION,
                            f"response to `{operation.method}` allowed as protocol plumbing")
        if operation.invalid is not None or not all(isinstance(t, str) for t in operation.targets):
            return Decision(Effect.DENY, (INVALID_RULE_ID,), OPA_REVISION,
                            f"{describe(operation.method, None)} denied: "
                            f"{operation.invalid or 'a target is not a string'}")
        if operation.method in PLUMBING_METHODS or (
                operation.method == "subscriptions/listen" and not operation.targets):
            return Decision(Effect.ALLOW, (PLUMBING_RULE_ID,), OPA_REVISION,
                            f"`{operation.method}` allowed as protocol plumbing by rule `{PLUMBING_RULE_ID}`")
        return None

    def decide(self, principal: PrincipalLike, operation: Operation, *, session: str | None = None,
               protocol_version: str | None = None) -> Decision:
        found = self.local(operation)
        if found is not None:
            return found
        doc = opa_input(principal, operation, session=session, protocol_version=protocol_version)
        try:
            if self._sync is None:
                self._sync = OpaClient(**self._client_args)
            answer = self._sync.query_rule(doc, self.path)
        except Exception as e:
            return self._failed(operation, e)
        return self.to_decision(operation, answer)

    async def adecide(self, principal: PrincipalLike, operation: Operation, *, session: str | None = None,
                      protocol_version: str | None = None) -> Decision:
        found = self.local(operation)
        if found is not None:
            return found
        doc = opa_input(principal, operation, session=session, protocol_version=protocol_version)
        try:
            client = await self._client()
            answer = await client.query_rule(doc, self.path)
        except Exception as e:
            return self._failed(operation, e)
        return self.to_decision(operation, answer)

    async def avisible(self, principal: PrincipalLike, operation: Operation, names: list[str], *,
                       session: str | None = None, protocol_version: str | None = None) -> frozenset[str] | Decision:
        """Which of a list answer's entries the caller may see: one query for the whole page.

        Reads `visible_names` (a set of names) from the same document as `allow`. Anything else (OPA down,
        slow, the rule undefined, a non-string in it) is a denial of the whole list, rule `opa:error`.
        """
        doc = opa_list_input(principal, operation, names, session=session, protocol_version=protocol_version)
        try:
            client = await self._client()
            answer = await client.query_rule(doc, self.path)
        except Exception as e:
            return self._failed(operation, e)
        result = answer.get("result") if isinstance(answer, Mapping) else None
        visible = result.get("visible_names") if isinstance(result, Mapping) else None
        if not isinstance(visible, list) or not all(isinstance(v, str) for v in visible):
            return Decision(Effect.DENY, (OPA_ERROR_RULE_ID,), OPA_REVISION,
                            f"`{operation.method}` result withheld: opa returned no `visible_names` set of "
                            f"strings at `data.{self._dotted}` (fail closed)")
        return frozenset(visible)

    async def _client(self) -> AsyncOpaClient:
        if self._async is None:
            client = AsyncOpaClient(**self._client_args)
            await client.__aenter__()  # opens its aiohttp session; closed by `aclose()`
            if self._async is not None:  # another query opened one meanwhile: keep a single session
                await client.close_connection()
                return self._async
            self._async = client
        return self._async

    def close(self) -> None:
        if self._sync is not None:
            self._sync.close_connection()
            self._sync = None

    async def aclose(self) -> None:
        if self._async is not None:
            await self._async.close_connection()
            self._async = None
        self.close()

    def to_decision(self, operation: Operation, answer: Any) -> Decision:
        """Map OPA's answer (`{"result": {"allow": bool, ...}}`) to a Decision; anything unexpected denies."""
        result = answer.get("result") if isinstance(answer, Mapping) else None
        subject = describe(operation.method, operation.target)
        if not isinstance(result, Mapping) or not isinstance(result.get("allow"), bool):
            return Decision(Effect.DENY, (OPA_ERROR_RULE_ID,), OPA_REVISION,
                            f"{subject} denied: opa returned no boolean `allow` at `data.{self._dotted}` "
                            "(fail closed)")
        allow: bool = result["allow"]
        ids = _strings(result.get("rule_ids")) or ("opa",)
        would = _strings(result.get("would_deny_rule_ids")) if allow else ()
        reason = result.get("reason")
        if not isinstance(reason, str) or not reason:
            verb = "allowed" if allow else "denied"
            reason = f"{subject} {verb} by opa (" + ", ".join(f"`{i}`" for i in ids) + ")"
        hidden = bool(result.get("hidden")) and not allow
        return Decision(Effect.ALLOW if allow else Effect.DENY, ids, OPA_REVISION, reason,
                        bool(would), would, hidden)

    @property
    def _dotted(self) -> str:
        return self.path.replace("/", ".")

    def _failed(self, operation: Operation, error: Exception) -> Decision:
        log.warning("opa query to %s failed, denying: %r", self.url, error)
        return Decision(Effect.DENY, (OPA_ERROR_RULE_ID,), OPA_REVISION,
                        f"{describe(operation.method, operation.target)} denied: opa unavailable "
                        f"({type(error).__name__}) (fail closed)")


def _strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        return ()
    return tuple(v for v in value if isinstance(v, str))
