"""The Principal (who is calling, as one identity source established it) and the Credentials it comes from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ANONYMOUS_ID = "anonymous"


@dataclass(frozen=True, slots=True)
class Principal:
    """A caller's verified identity.

    `id` is the canonical name rules match on: a SPIFFE ID (`spiffe://td/ns/x/sa/y`; Linkerd identities are
    mapped to this form), a DNS SAN as `dns:<name>`, a JWT subject as `jwt:<iss>#<sub>`, or `anonymous`.
    `source` says how it was established (`mtls`, `linkerd`, `xfcc`, `jwt`, `anonymous`).
    """

    id: str
    source: str
    trust_domain: str | None = None
    namespace: str | None = None
    service_account: str | None = None
    claims: Mapping[str, Any] = field(default_factory=dict)
    scopes: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    issuer: str | None = None     # JWT `iss`, for rules that name the issuer
    subject: str | None = None    # JWT `sub`, or the raw mesh identity string as the proxy sent it

    @property
    def anonymous(self) -> bool:
        return self.source == "anonymous"


ANONYMOUS = Principal(id=ANONYMOUS_ID, source="anonymous")


@dataclass(frozen=True, slots=True)
class Credentials:
    """What the data plane knows about one HTTP request that identity may use. Pure data, no sockets.

    `peer_host` is the TCP peer address; `local_host` the address the connection was accepted on (lets
    `trusted_proxies: [local]` trust same-pod proxies that connect via the pod IP). `peer_cert_der` is the
    client certificate the TLS handshake already verified against the CA bundle.
    """

    peer_host: str
    headers: list[tuple[bytes, bytes]]
    peer_cert_der: bytes | None = None
    tls: bool = False
    local_host: str | None = None
    target: str = ""  # the request target (path and query): tokens in the query string are refused
