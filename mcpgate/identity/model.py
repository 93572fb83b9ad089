"""The Principal: who is calling, as established by one identity source."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ANONYMOUS_ID = "anonymous"


@dataclass(frozen=True, slots=True)
class Principal:
    """A caller's verified identity.

    `id` is the canonical name rules match on: a SPIFFE ID (`spiffe://td/ns/x/sa/y`), a DNS SAN, a
    JWT subject as `jwt:<iss>#<sub>`, or `anonymous`. `source` says how it was established
    (`mtls`, `linkerd`, `xfcc`, `jwt`, `anonymous`).
    """

    id: str
    source: str
    trust_domain: str | None = None
    namespace: str | None = None
    service_account: str | None = None
    claims: Mapping[str, Any] = field(default_factory=dict)
    scopes: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()

    @property
    def anonymous(self) -> bool:
        return self.source == "anonymous"


ANONYMOUS = Principal(id=ANONYMOUS_ID, source="anonymous")
