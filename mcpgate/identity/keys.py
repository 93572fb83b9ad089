"""JWKS documents as immutable key sets, and the `KeySource` protocol the JWT verifier reads keys through."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import jwt

from mcpgate.errors import ConfigError

# Which JWK key type (and curve) each allowed algorithm may be verified with: a key is never used with an
# algorithm of another family (the RS256-public-key-as-HS256-secret confusion cannot arise).
ALG_KEY_TYPES: dict[str, tuple[str, frozenset[str] | None]] = {
    "RS256": ("RSA", None), "RS384": ("RSA", None), "RS512": ("RSA", None),
    "PS256": ("RSA", None), "PS384": ("RSA", None), "PS512": ("RSA", None),
    "ES256": ("EC", frozenset({"P-256"})), "ES384": ("EC", frozenset({"P-384"})),
    "ES512": ("EC", frozenset({"P-521"})),
    "EdDSA": ("OKP", frozenset({"Ed25519", "Ed448"})),
}
ASYMMETRIC_ALGORITHMS = frozenset(ALG_KEY_TYPES)


@dataclass(frozen=True, slots=True)
class VerifyKey:
    """One public verification key from a JWKS, with what decides which algorithms it may verify."""

    kid: str | None
    kty: str
    alg: str | None     # the JWK's own `alg`, when it declares one
    crv: str | None
    key: Any            # a `cryptography` public key object


class KeySource(Protocol):
    """Where the verifier gets public keys. `generation` changes whenever the key set changes (cache key)."""

    @property
    def generation(self) -> int: ...

    def keys_for(self, kid: str | None) -> Sequence[VerifyKey]:
        """Keys with this `kid` (all keys when the token has none). May schedule a refresh; never blocks."""
        ...


class KeySet:
    """An immutable, indexed JWKS. Symmetric (`oct`) and encryption (`use: enc`) keys are left out."""

    __slots__ = ("_all", "_by_kid", "generation", "skipped")

    def __init__(self, keys: Sequence[VerifyKey], *, generation: int = 0, skipped: int = 0) -> None:
        self._all: tuple[VerifyKey, ...] = tuple(keys)
        by_kid: dict[str, list[VerifyKey]] = {}
        for k in self._all:
            if k.kid is not None:
                by_kid.setdefault(k.kid, []).append(k)
        self._by_kid = {kid: tuple(v) for kid, v in by_kid.items()}
        self.generation = generation
        self.skipped = skipped

    @classmethod
    def from_jwks(cls, doc: Mapping[str, Any], *, generation: int = 0, origin: str = "jwks") -> KeySet:
        keys = doc.get("keys") if isinstance(doc, Mapping) else None
        if not isinstance(keys, list):
            raise ConfigError("jwks document has no `keys` list", file=origin)
        usable: list[VerifyKey] = []
        skipped = 0
        for entry in keys:
            if (not isinstance(entry, dict) or entry.get("kty") not in ("RSA", "EC", "OKP")
                    or entry.get("use", "sig") != "sig" or "d" in entry):
                skipped += 1  # symmetric, encryption or private keys never verify tokens here
                continue
            try:
                jwk = jwt.PyJWK(entry)
                usable.append(VerifyKey(kid=jwk.key_id, kty=entry["kty"], alg=entry.get("alg"),
                                        crv=entry.get("crv"), key=jwk.key))
            except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError, KeyError):
                skipped += 1
        return cls(usable, generation=generation, skipped=skipped)

    def __len__(self) -> int:
        return len(self._all)

    def keys_for(self, kid: str | None) -> Sequence[VerifyKey]:
        if kid is None:
            return self._all
        return self._by_kid.get(kid, ())


def key_fits(key: VerifyKey, alg: str) -> bool:
    """May this key verify a token signed with `alg`? Checks family, curve and the JWK's own `alg`."""
    want = ALG_KEY_TYPES.get(alg)
    if want is None:
        return False
    kty, curves = want
    if key.kty != kty or (key.alg is not None and key.alg != alg):
        return False
    return curves is None or key.crv in curves
