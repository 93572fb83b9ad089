"""Who is calling: one pass over a request's credentials, in configured source order, with anti-spoof rules.

Built once from config (`IdentityResolver.from_config`); `resolve()` is pure and runs per HTTP request.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from mcpgate.errors import (
    AmbiguousIdentity,
    ConfigError,
    IdentityError,
    IdentityRequired,
    MalformedIdentity,
    TokenInQuery,
)
from mcpgate.identity.bearer import (
    JwtVerifier,
    bearer_token,
    protected_resource_metadata,
    resource_metadata_url,
    www_authenticate,
)
from mcpgate.identity.keys import KeySource
from mcpgate.identity.model import ANONYMOUS, Credentials, Principal
from mcpgate.identity.settings import IdentityConfig, MtlsConfig, parse_identity_config
from mcpgate.identity.spiffe import principal_from_linkerd
from mcpgate.identity.x509 import principal_from_certificate
from mcpgate.identity.xfcc import principal_from_xfcc

__all__ = ["Credentials", "IdentityResolver", "IdentityResult", "headers_to_strip_upstream",
           "make_server_ssl_config"]

OWNED_PREFIX = b"x-mcpgate-"
AUTHORIZATION = b"authorization"
_CACHE_SIZE = 4096
_PRINCIPAL_SAFE = ":/#@.-_~!$&'()*+,;="


@dataclass(frozen=True, slots=True)
class IdentityResult:
    principal: Principal
    headers: list[tuple[bytes, bytes]]  # spoofable headers removed (the same list object if none were)
    dropped: int                        # identity / mcpgate-owned headers removed as spoofed


def headers_to_strip_upstream(config: IdentityConfig) -> frozenset[bytes]:
    """Lowercase header names the data plane removes before forwarding: the client's bearer token, unless
    `identity.jwt.forward_token` (the MCP spec forbids token passthrough)."""
    if config.jwt is not None and not config.jwt.forward_token:
        return frozenset({AUTHORIZATION})
    return frozenset()


def make_server_ssl_config(section: Mapping[str, Any] | IdentityConfig | None) -> MtlsConfig | None:
    """The TLS listener settings for mTLS terminated by mcpgate (None: plain listener)."""
    config = section if isinstance(section, IdentityConfig) else parse_identity_config(section)
    return config.mtls


class IdentityResolver:
    """Resolves `Credentials` to a `Principal`. Build with `from_config`; one per config revision."""

    def __init__(self, config: IdentityConfig, *, jwks: KeySource | None = None,
                 now: Callable[[], float] = time.time) -> None:
        self.config = config
        jwt_on = config.jwt is not None
        if jwt_on and jwks is None:
            raise ConfigError("the `jwt` identity source needs a key source "
                              "(mcpgate.runtime.jwks.JwksSource)", path="identity.jwt")
        self._verifier = JwtVerifier(config.jwt, jwks, now) if config.jwt and jwks else None
        self._sources = config.sources
        self._owned = frozenset(h for h in (config.upstream_principal_header,) if h)
        mesh_names = {config.linkerd_header, config.xfcc_header, *config.identity_headers}
        self._identity_names = frozenset(mesh_names)
        readable = set(config.identity_headers)
        if "linkerd" in config.sources:
            readable.add(config.linkerd_header)
        if "xfcc" in config.sources:
            readable.add(config.xfcc_header)
        self._readable = frozenset(readable)
        self._read_auth = jwt_on
        self._trust_cache: dict[tuple[str, str | None], bool] = {}
        self._cert_cache: dict[bytes, Principal] = {}
        self._header_cache: dict[tuple[bytes, bytes], Principal] = {}
        self.strip_upstream = headers_to_strip_upstream(config)
        self.mtls = config.mtls
        self.prm_document: dict[str, Any] | None = None
        self.prm_paths: frozenset[str] = frozenset()
        if config.jwt is not None:
            self.prm_document = protected_resource_metadata(config.jwt)
            self.prm_paths = frozenset({urlsplit(resource_metadata_url(config.jwt.resource)).path,
                                        "/.well-known/oauth-protected-resource"})

    @classmethod
    def from_config(cls, section: Mapping[str, Any] | None, *, jwks: KeySource | None = None,
                    now: Callable[[], float] = time.time) -> IdentityResolver:
        return cls(parse_identity_config(section), jwks=jwks, now=now)

    # -- per request ---------------------------------------------------------------------------------

    def resolve(self, creds: Credentials) -> IdentityResult:
        """Strip what may not be trusted, then ask each source in order. Raises `IdentityError` (401)."""
        headers = creds.headers
        if "?" in creds.target and _token_in_query(creds.target):
            exc = TokenInQuery("access tokens must not be sent in the URI query string")
            self._add_challenge(exc)
            raise exc
        trusted = self._peer_trusted(creds.peer_host, creds.local_host)
        out: list[tuple[bytes, bytes]] | None = None
        dropped = 0
        found: dict[bytes, list[bytes]] = {}
        for i, (name, value) in enumerate(headers):
            lname = name.lower()
            drop = False
            if lname.startswith(OWNED_PREFIX) or lname in self._owned:
                drop = True
            elif lname in self._identity_names:
                if trusted and lname in self._readable:
                    found.setdefault(lname, []).append(value)
                else:
                    drop = True
            elif lname == AUTHORIZATION and self._read_auth:
                found.setdefault(lname, []).append(value)
            if drop:
                dropped += 1
                if out is None:
                    out = headers[:i]
            elif out is not None:
                out.append((name, value))
        try:
            principal = self._identify(creds, found)
        except IdentityError as exc:
            self._add_challenge(exc)
            raise
        return IdentityResult(principal, headers if out is None else out, dropped)

    def _identify(self, creds: Credentials, found: dict[bytes, list[bytes]]) -> Principal:
        cfg = self.config
        for name, values in found.items():
            if len(values) > 1:  # never pick one of several copies: a proxy would send exactly one
                raise AmbiguousIdentity(f"more than one `{name.decode()}` header")
        if cfg.mtls is not None and cfg.mtls.require and creds.peer_cert_der is None:
            raise IdentityRequired("a verified client certificate is required")
        token: str | None = None
        if self._verifier is not None:
            auth = found.get(AUTHORIZATION)
            if auth:
                token = bearer_token(auth[0])
            if token is None and self._verifier.config.required:
                raise IdentityRequired("a bearer token is required")
        for source in self._sources:
            if source == "mtls":
                if creds.peer_cert_der is not None:
                    return self._from_cert(creds.peer_cert_der)
            elif source == "linkerd":
                value = _one(found, cfg.linkerd_header)
                if value is not None:
                    return self._from_header(cfg.linkerd_header, value, self._parse_linkerd)
            elif source == "xfcc":
                value = _one(found, cfg.xfcc_header)
                if value is not None:
                    return self._from_header(cfg.xfcc_header, value, self._parse_xfcc)
            elif source == "jwt" and token is not None and self._verifier is not None:
                return self._verifier.verify(token)
        if cfg.allow_anonymous:
            return ANONYMOUS
        raise IdentityRequired("no identity source established who is calling")

    def _from_cert(self, der: bytes) -> Principal:
        p = self._cert_cache.get(der)
        if p is None:
            p = principal_from_certificate(der)
            if len(self._cert_cache) >= _CACHE_SIZE:
                self._cert_cache.clear()
            self._cert_cache[der] = p
        return p

    def _from_header(self, name: bytes, value: bytes, parse: Callable[[str], Principal]) -> Principal:
        key = (name, value)
        p = self._header_cache.get(key)
        if p is None:
            try:
                text = value.decode("utf-8")
            except UnicodeDecodeError:
                raise MalformedIdentity(f"`{name.decode()}` header is not utf-8") from None
            p = parse(text)
            if len(self._header_cache) >= _CACHE_SIZE:
                self._header_cache.clear()
            self._header_cache[key] = p
        return p

    def _parse_linkerd(self, text: str) -> Principal:
        return principal_from_linkerd(text.strip(), control_plane_ns=self.config.linkerd_control_plane_ns)

    def _parse_xfcc(self, text: str) -> Principal:
        return principal_from_xfcc(text, self.config.xfcc_trusted_by)

    def _peer_trusted(self, peer: str, local: str | None) -> bool:
        key = (peer, local if self.config.trust_local else None)
        hit = self._trust_cache.get(key)
        if hit is None:
            hit = self._compute_trust(peer, key[1])
            if len(self._trust_cache) >= _CACHE_SIZE:
                self._trust_cache.clear()
            self._trust_cache[key] = hit
        return hit

    def _compute_trust(self, peer: str, local: str | None) -> bool:
        addr = _ip(peer)
        if addr is None:
            return False  # unix sockets, unknown peers: fail closed
        if local is not None and _ip(local) == addr:
            return True
        return any(addr.version == net.version and addr in net for net in self.config.trusted_networks)

    def _add_challenge(self, exc: IdentityError) -> None:
        jwt = self.config.jwt
        if jwt is None or "www_authenticate" in exc.data:
            return
        if exc.code == "identity.invalid_token":
            exc.data["www_authenticate"] = www_authenticate(jwt, error="invalid_token",
                                                            description=exc.message)
        elif exc.code == TokenInQuery.code:
            exc.data["www_authenticate"] = www_authenticate(jwt, error="invalid_request",
                                                            description=exc.message)
        else:
            exc.data["www_authenticate"] = www_authenticate(jwt)

    # -- towards the upstream ------------------------------------------------------------------------

    def upstream_headers(self, principal: Principal) -> list[tuple[bytes, bytes]]:
        """Headers mcpgate adds towards the upstream: `upstream_principal_header: <id>` when configured
        (default none). The id is percent-encoded outside a safe ASCII set so it cannot split headers."""
        name = self.config.upstream_principal_header
        if name is None:
            return []
        return [(name, quote(principal.id, safe=_PRINCIPAL_SAFE).encode("ascii"))]

    def www_authenticate(self, *, error: str | None = None, description: str | None = None,
                         scope: str | None = None) -> str | None:
        """The Bearer challenge (e.g. for a 403 `insufficient_scope`); None when JWT is not configured."""
        if self.config.jwt is None:
            return None
        return www_authenticate(self.config.jwt, error=error, description=description, scope=scope)


def _token_in_query(target: str) -> bool:
    """True when any query parameter is named `access_token` (RFC 6750 §2.3), in any casing or
    percent-encoding: some frameworks fold case, and all of them decode names."""
    query = target.partition("?")[2].partition("#")[0]
    for part in query.split("&"):
        name = unquote(part.partition("=")[0].replace("+", " ")).strip().lower()
        if name == "access_token":
            return True
    return False


def _one(found: dict[bytes, list[bytes]], name: bytes) -> bytes | None:
    values = found.get(name)
    return values[0] if values else None


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        addr = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr
