"""The per-request cost stays in microseconds (generous bounds: this guards against regressions by orders
of magnitude, e.g. re-parsing or re-verifying on every request, not against a slow CI machine)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mcpgate.identity import Credentials, IdentityResolver, KeySet
from tests.identity.conftest import AUDIENCE, ISSUER, NOW, SigningKey

HEADERS = [(b"Host", b"mcp.local"), (b"Content-Type", b"application/json"),
           (b"Accept", b"application/json, text/event-stream"), (b"Mcp-Session-Id", b"x" * 32),
           (b"MCP-Protocol-Version", b"2025-06-18"), (b"User-Agent", b"python-httpx/0.28"),
           (b"traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")]


def _per_call_us(fn: Callable[[], Any], n: int = 2000) -> float:
    fn()
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n * 1e6


def test_linkerd_resolve_is_microseconds() -> None:
    r = IdentityResolver.from_config({"sources": ["linkerd", "anonymous"]})
    creds = Credentials("127.0.0.1", [*HEADERS, (b"l5d-client-id",
                                                b"web.emojivoto.serviceaccount.identity.linkerd.cluster.local")])
    assert _per_call_us(lambda: r.resolve(creds)) < 100


def test_cached_jwt_resolve_is_microseconds(tmp_path: Path, jwks_doc: dict[str, Any], rsa_key: SigningKey,
                                            claims: Callable[..., dict[str, Any]]) -> None:
    r = IdentityResolver.from_config(
        {"jwt": {"jwks_file": str(tmp_path / "j.json"), "issuer": ISSUER, "audience": AUDIENCE}},
        jwks=KeySet.from_jwks(jwks_doc), now=lambda: NOW)
    auth = (b"Authorization", f"Bearer {rsa_key.sign(claims())}".encode())
    creds = Credentials("10.0.0.1", [*HEADERS, auth])
    assert _per_call_us(lambda: r.resolve(creds)) < 100
