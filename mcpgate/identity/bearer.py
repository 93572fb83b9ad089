"""JWT bearer tokens (OAuth 2.1 resource server): verification, the 401 challenge and RFC 9728 metadata."""

from __future__ import annotations

import json
import math
import re
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import jwt

from mcpgate.errors import InvalidToken
from mcpgate.identity.keys import KeySource, key_fits
from mcpgate.identity.model import Principal

_TOKEN = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_MAX_TOKEN = 16 * 1024
_MAX_KEY_TRIES = 8
_CACHE_SIZE = 4096
WELL_KNOWN_PRM = "/.well-known/oauth-protected-resource"


@dataclass(frozen=True, slots=True)
class JwtConfig:
    """The `identity.jwt` section, checked and normalised."""

    issuer: str
    audiences: tuple[str, ...]
    algorithms: frozenset[str]
    resource: str
    authorization_servers: tuple[str, ...]
    scopes_supported: tuple[str, ...] = ()
    leeway_s: float = 30.0
    groups_claim: str | None = "groups"
    forward_token: bool = False
    required: bool = False
    realm: str = "mcpgate"
    jwks_file: str | None = None
    jwks_url: str | None = None
    jwks_refresh_s: float = 300.0


def bearer_token(value: bytes) -> str | None:
    """The token of an `Authorization: Bearer <token>` value; None for other schemes (Basic, ...)."""
    scheme, _, rest = value.partition(b" ")
    if scheme.lower() != b"bearer":
        return None
    token = rest.strip().decode("latin-1")
    if len(token) > _MAX_TOKEN or not _TOKEN.fullmatch(token):
        raise InvalidToken("bearer token is not a compact jws")
    return token


class JwtVerifier:
    """Verifies tokens against a `KeySource`; pure apart from the injected clock. Caches verified tokens.

    `exp`/`nbf` are checked here with the injected clock (not pyjwt's wall clock) so tests and replays are
    deterministic; the cache re-checks them on every hit and is dropped when the key set changes.
    """

    def __init__(self, config: JwtConfig, keys: KeySource, now: Callable[[], float]) -> None:
        self.config = config
        self._keys = keys
        self._now = now
        self._jws = jwt.PyJWS(algorithms=sorted(config.algorithms))
        self._cache: OrderedDict[str, tuple[Principal, float, float, int]] = OrderedDict()
        self._audiences = frozenset(config.audiences)

    def verify(self, token: str) -> Principal:
        now = self._now()
        hit = self._cache.get(token)
        generation = self._keys.generation
        if hit is not None:
            principal, exp, nbf, gen = hit
            if gen == generation:
                self._check_times(now, exp, nbf)
                self._cache.move_to_end(token)
                return principal
            del self._cache[token]
        principal, exp, nbf = self._verify_uncached(token, now)
        self._cache[token] = (principal, exp, nbf, generation)
        if len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
        return principal

    def _verify_uncached(self, token: str, now: float) -> tuple[Principal, float, float]:
        try:
            header = self._jws.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken("malformed token header") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.config.algorithms:
            raise InvalidToken(f"signing algorithm `{_safe(str(alg))}` is not allowed")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise InvalidToken("token `kid` is not a string")
        candidates = [k for k in self._keys.keys_for(kid) if key_fits(k, alg)][:_MAX_KEY_TRIES]
        if not candidates:
            raise InvalidToken(f"no signing key for key id `{_safe(str(kid))}`" if kid is not None
                               else "no signing key for the token's algorithm")
        payload: bytes | None = None
        for key in candidates:
            try:
                payload = self._jws.decode_complete(token, key=key.key, algorithms=[alg])["payload"]
                break
            except jwt.InvalidSignatureError:
                continue
            except jwt.PyJWTError:
                raise InvalidToken("malformed token") from None
        if payload is None:
            raise InvalidToken("token signature does not verify")
        try:
            claims = json.loads(payload)
        except ValueError:
            raise InvalidToken("token payload is not json") from None
        if not isinstance(claims, dict):
            raise InvalidToken("token payload is not a json object")
        return self._principal(claims, now)

    def _principal(self, claims: dict[str, Any], now: float) -> tuple[Principal, float, float]:
        cfg = self.config
        iss = claims.get("iss")
        if iss != cfg.issuer:
            raise InvalidToken(f"token issuer `{_safe(str(iss))}` is not accepted")
        aud = claims.get("aud")
        auds = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if not any(isinstance(a, str) and a in self._audiences for a in auds):
            raise InvalidToken("token audience does not include this resource")
        exp = claims.get("exp")
        if not _is_number(exp):
            raise InvalidToken("token has no numeric `exp`")
        nbf = claims.get("nbf", 0)
        if not _is_number(nbf):
            raise InvalidToken("token `nbf` is not numeric")
        exp_f, nbf_f = float(exp), float(nbf)  # type: ignore[arg-type]
        self._check_times(now, exp_f, nbf_f)
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise InvalidToken("token has no `sub`")
        principal = Principal(
            id=f"jwt:{iss}#{sub}", source="jwt", claims=MappingProxyType(claims),
            scopes=_scopes(claims), groups=_groups(claims, cfg.groups_claim), issuer=iss, subject=sub)
        return principal, exp_f, nbf_f

    def _check_times(self, now: float, exp: float, nbf: float) -> None:
        leeway = self.config.leeway_s
        if now >= exp + leeway:
            raise InvalidToken("token has expired")
        if now < nbf - leeway:
            raise InvalidToken("token is not yet valid")


def _is_number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _scopes(claims: Mapping[str, Any]) -> frozenset[str]:
    """`scope` (RFC 8693/9068: space-separated string) or `scp` (Azure/Okta: list or string)."""
    out: set[str] = set()
    for name in ("scope", "scp"):
        v = claims.get(name)
        if isinstance(v, str):
            out.update(v.split())
        elif isinstance(v, list):
            out.update(s for s in v if isinstance(s, str))
    return frozenset(out)


def _groups(claims: Mapping[str, Any], path: str | None) -> frozenset[str]:
    """The groups claim; a dotted path (`realm_access.roles`) reaches into nested objects."""
    if not path:
        return frozenset()
    v: Any = claims
    for part in path.split("."):
        if not isinstance(v, Mapping):
            return frozenset()
        v = v.get(part)
    if isinstance(v, str):
        return frozenset((v,))
    if isinstance(v, list):
        return frozenset(s for s in v if isinstance(s, str))
    return frozenset()


def _safe(s: str, n: int = 80) -> str:
    """Untrusted text for an RFC 6750 quoted-string: printable ASCII minus `"`, `\\`, backtick."""
    return "".join(c if " " <= c < "\x7f" and c not in '"\\`' else "?" for c in s[:n])


def resource_metadata_url(resource: str) -> str:
    """RFC 9728 §3.1: the well-known suffix goes between the host and the resource's path."""
    parts = urlsplit(resource)
    path = parts.path.rstrip("/")
    return urlunsplit((parts.scheme, parts.netloc, WELL_KNOWN_PRM + path, "", ""))


def protected_resource_metadata(config: JwtConfig, public_base_url: str | None = None) -> dict[str, Any]:
    """The RFC 9728 document for this resource (serve it at `resource_metadata_url(resource)`)."""
    doc: dict[str, Any] = {
        "resource": config.resource or (public_base_url or ""),
        "authorization_servers": list(config.authorization_servers or (config.issuer,)),
        "bearer_methods_supported": ["header"],
    }
    if config.scopes_supported:
        doc["scopes_supported"] = list(config.scopes_supported)
    return doc


def www_authenticate(config: JwtConfig, *, error: str | None = None, description: str | None = None,
                     scope: str | None = None) -> str:
    """The `WWW-Authenticate` value for a 401 (`invalid_token`, or no error when no token was sent) or a
    403 `insufficient_scope`. Always names `resource_metadata` so MCP clients can discover the AS."""
    parts = [f'realm="{_safe(config.realm)}"']
    if error:
        parts.append(f'error="{_safe(error)}"')
    if description:
        parts.append(f'error_description="{_safe(description, 200)}"')
    if scope is None and error is None and config.scopes_supported:
        scope = " ".join(config.scopes_supported)  # MCP: the first challenge SHOULD name the scopes
    if scope:
        parts.append(f'scope="{_safe(scope, 400)}"')
    parts.append(f'resource_metadata="{resource_metadata_url(config.resource)}"')
    return "Bearer " + ", ".join(parts)
