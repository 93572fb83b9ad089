"""Real signed JWTs (RS256, ES256) against the verifier: every way a token must be refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from mcpgate.errors import InvalidToken
from mcpgate.identity import KeySet, protected_resource_metadata, resource_metadata_url, www_authenticate
from mcpgate.identity.bearer import JwtConfig, JwtVerifier, bearer_token
from tests.identity.conftest import AUDIENCE, ISSUER, NOW, SigningKey

Claims = Callable[..., dict[str, Any]]


class Clock:
    def __init__(self, t: float = NOW) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def config(**kw: Any) -> JwtConfig:
    base: dict[str, Any] = dict(issuer=ISSUER, audiences=(AUDIENCE,), resource=AUDIENCE,
                                algorithms=frozenset({"RS256", "ES256"}), authorization_servers=(ISSUER,))
    base.update(kw)
    return JwtConfig(**base)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def verifier(jwks_doc: dict[str, Any], clock: Clock) -> JwtVerifier:
    return JwtVerifier(config(), KeySet.from_jwks(jwks_doc), clock)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.mark.parametrize("key_name", ["rsa_key", "ec_key"])
def test_valid_tokens_yield_principal_with_claims(key_name: str, request: pytest.FixtureRequest,
                                                  verifier: JwtVerifier, claims: Claims) -> None:
    key: SigningKey = request.getfixturevalue(key_name)
    p = verifier.verify(key.sign(claims()))
    assert p.id == f"jwt:{ISSUER}#user-42"
    assert (p.source, p.issuer, p.subject) == ("jwt", ISSUER, "user-42")
    assert p.scopes == {"tools:read", "tools:call"}
    assert p.groups == {"sre", "oncall"}
    assert p.claims["aud"] == AUDIENCE


def test_scp_list_audience_list_and_nested_groups(jwks_doc: dict[str, Any], clock: Clock,
                                                  rsa_key: SigningKey, claims: Claims) -> None:
    v = JwtVerifier(config(groups_claim="realm_access.roles"), KeySet.from_jwks(jwks_doc), clock)
    token = rsa_key.sign(claims(scope=None, scp=["a", "b"], aud=["other", AUDIENCE],
                                realm_access={"roles": ["admin"]}))
    p = v.verify(token)
    assert p.scopes == {"a", "b"} and p.groups == {"admin"}


@pytest.mark.parametrize(("offset", "ok"), [(-29, True), (-31, False)])
def test_expiry_honours_leeway(offset: int, ok: bool, verifier: JwtVerifier, rsa_key: SigningKey,
                               claims: Claims) -> None:
    token = rsa_key.sign(claims(exp=int(NOW) + offset))
    if ok:
        assert verifier.verify(token).subject == "user-42"
    else:
        with pytest.raises(InvalidToken, match="expired"):
            verifier.verify(token)


def test_nbf_and_iat_are_optional(verifier: JwtVerifier, rsa_key: SigningKey, claims: Claims) -> None:
    assert verifier.verify(rsa_key.sign(claims(nbf=None, iat=None))).subject == "user-42"
    with pytest.raises(InvalidToken, match="nbf"):
        verifier.verify(rsa_key.sign(claims(nbf="later")))


def test_not_yet_valid(verifier: JwtVerifier, ec_key: SigningKey, claims: Claims) -> None:
    with pytest.raises(InvalidToken, match="not yet valid"):
        verifier.verify(ec_key.sign(claims(nbf=int(NOW) + 60)))
    assert verifier.verify(ec_key.sign(claims(nbf=int(NOW) + 20))).subject == "user-42"


@pytest.mark.parametrize(("overrides", "message"), [
    ({"aud": "https://other.example/mcp"}, "audience"),
    ({"aud": None}, "audience"),
    ({"iss": "https://evil.example"}, "issuer `https://evil.example`"),
    ({"exp": None}, "exp"),
    ({"exp": "soon"}, "exp"),
    ({"sub": None}, "sub"),
])
def test_claim_checks(overrides: dict[str, Any], message: str, verifier: JwtVerifier, rsa_key: SigningKey,
                      claims: Claims) -> None:
    with pytest.raises(InvalidToken, match=message):
        verifier.verify(rsa_key.sign(claims(**overrides)))


def test_alg_none_is_refused(verifier: JwtVerifier, claims: Claims) -> None:
    token = jwt.encode(claims(), "", algorithm="none", headers={"kid": "rsa-1"})
    with pytest.raises(InvalidToken, match="algorithm `none` is not allowed"):
        verifier.verify(token)


def _hs256_with_public_key(key: SigningKey, payload: dict[str, Any]) -> str:
    pem = key.private.public_key().public_bytes(serialization.Encoding.PEM,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": key.kid}).encode())
    body = _b64(json.dumps(payload).encode())
    sig = hmac.new(pem, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(sig)}"


def test_hs256_key_confusion_is_refused(jwks_doc: dict[str, Any], clock: Clock, verifier: JwtVerifier,
                                        rsa_key: SigningKey, claims: Claims) -> None:
    token = _hs256_with_public_key(rsa_key, claims())
    with pytest.raises(InvalidToken, match="`HS256` is not allowed"):
        verifier.verify(token)
    # Even a verifier mis-built to allow HS256 never uses an RSA key as an HMAC secret.
    lax = JwtVerifier(config(algorithms=frozenset({"RS256", "HS256"})), KeySet.from_jwks(jwks_doc), clock)
    with pytest.raises(InvalidToken, match="no signing key"):
        lax.verify(token)


def test_unknown_kid_and_mismatched_family(verifier: JwtVerifier, rsa_key: SigningKey, ec_key: SigningKey,
                                           claims: Claims) -> None:
    with pytest.raises(InvalidToken, match="no signing key for key id `rotated-7`"):
        verifier.verify(rsa_key.sign(claims(), kid="rotated-7"))
    with pytest.raises(InvalidToken, match="no signing key"):  # RS256 token naming the EC key's kid
        verifier.verify(rsa_key.sign(claims(), kid=ec_key.kid))


def test_token_without_kid_tries_keys_of_its_family(verifier: JwtVerifier, ec_key: SigningKey,
                                                    claims: Claims) -> None:
    assert verifier.verify(ec_key.sign(claims(), kid=None)).subject == "user-42"


def test_tampered_and_foreign_signatures(verifier: JwtVerifier, rsa_key: SigningKey, claims: Claims) -> None:
    token = rsa_key.sign(claims())
    head, _body, sig = token.split(".")
    forged_body = _b64(json.dumps(claims(sub="admin")).encode())
    with pytest.raises(InvalidToken, match="does not verify"):
        verifier.verify(f"{head}.{forged_body}.{sig}")
    from cryptography.hazmat.primitives.asymmetric import rsa
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    stranger = SigningKey("rsa-1", "RS256", private, {})
    with pytest.raises(InvalidToken, match="does not verify"):
        verifier.verify(stranger.sign(claims()))


def test_cache_rechecks_expiry_and_key_generation(jwks_doc: dict[str, Any], clock: Clock,
                                                  rsa_key: SigningKey, claims: Claims) -> None:
    class Keys:
        def __init__(self) -> None:
            self.set = KeySet.from_jwks(jwks_doc, generation=1)

        @property
        def generation(self) -> int:
            return self.set.generation

        def keys_for(self, kid: str | None) -> Any:
            return self.set.keys_for(kid)

    keys = Keys()
    v = JwtVerifier(config(), keys, clock)
    token = rsa_key.sign(claims())
    assert v.verify(token) is v.verify(token)  # second call served from the cache
    keys.set = KeySet.from_jwks({"keys": [k for k in jwks_doc["keys"] if k["kid"] != rsa_key.kid]},
                                generation=2)
    with pytest.raises(InvalidToken, match="no signing key"):  # a key removed at the issuer stops working
        v.verify(token)
    keys.set = KeySet.from_jwks(jwks_doc, generation=3)
    v.verify(token)
    clock.t = NOW + 300 + 31
    with pytest.raises(InvalidToken, match="expired"):
        v.verify(token)


def test_bearer_header_parsing() -> None:
    assert bearer_token(b"Basic dXNlcjpwdw==") is None
    assert bearer_token(b"bearer aa.bb.cc") == "aa.bb.cc"
    assert bearer_token(b"Bearer  aa.bb.cc ") == "aa.bb.cc"
    for bad in (b"Bearer", b"Bearer not-a-jwt", b"Bearer a.b.c.d", b"Bearer a.b.c\r\nx: y"):
        with pytest.raises(InvalidToken):
            bearer_token(bad)


def test_keyset_skips_symmetric_encryption_and_private_keys(rsa_key: SigningKey) -> None:
    doc = {"keys": [rsa_key.jwk, {"kty": "oct", "k": "c2VjcmV0", "kid": "h"},
                    {**rsa_key.jwk, "kid": "enc", "use": "enc"}, {**rsa_key.jwk, "kid": "p", "d": "AQAB"},
                    {"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"}, "junk"]}
    ks = KeySet.from_jwks(doc)
    assert len(ks) == 1 and ks.skipped == 5
    assert [k.kid for k in ks.keys_for(None)] == ["rsa-1"]


def test_challenge_and_protected_resource_metadata() -> None:
    cfg = config(scopes_supported=("tools:call",), realm='mcp"gate')
    assert resource_metadata_url(AUDIENCE) == \
        "https://mcp.example.test/.well-known/oauth-protected-resource/mcp"
    assert resource_metadata_url("https://mcp.example.test/") == \
        "https://mcp.example.test/.well-known/oauth-protected-resource"
    assert www_authenticate(cfg, error="invalid_token", description='token "x" has expired') == (
        'Bearer realm="mcp?gate", error="invalid_token", error_description="token ?x? has expired", '
        'resource_metadata="https://mcp.example.test/.well-known/oauth-protected-resource/mcp"')
    assert www_authenticate(cfg) == ('Bearer realm="mcp?gate", scope="tools:call", resource_metadata='
                                     '"https://mcp.example.test/.well-known/oauth-protected-resource/mcp"')
    assert "scope=" not in www_authenticate(config())
    assert 'scope="tools:call"' in www_authenticate(cfg, error="insufficient_scope", scope="tools:call")
    assert protected_resource_metadata(cfg) == {
        "resource": AUDIENCE, "authorization_servers": [ISSUER],
        "bearer_methods_supported": ["header"], "scopes_supported": ["tools:call"]}
