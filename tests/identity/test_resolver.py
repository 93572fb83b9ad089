"""The resolver end to end on Credentials: source order, anti-spoof rules, anonymous, upstream headers."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mcpgate.errors import (
    AmbiguousIdentity,
    ConfigError,
    IdentityRequired,
    InvalidToken,
    MalformedIdentity,
    UntrustedIdentity,
)
from mcpgate.identity import ANONYMOUS, Credentials, IdentityResolver, KeySet, parse_identity_config
from tests.identity.conftest import AUDIENCE, CA, ISSUER, NOW, SigningKey

Claims = Callable[..., dict[str, Any]]
L5D = b"web.emojivoto.serviceaccount.identity.linkerd.cluster.local"
L5D_ID = "spiffe://cluster.local/ns/emojivoto/sa/web"
SIDECAR = "spiffe://cluster.local/ns/tools/sa/mcp-server"
XFCC = f"By={SIDECAR};Hash=abc;Subject=\"\";URI=spiffe://cluster.local/ns/agents/sa/planner".encode()
BASE = [(b"Host", b"mcp.local"), (b"Content-Type", b"application/json"), (b"Accept", b"*/*")]


def linkerd(**kw: Any) -> IdentityResolver:
    return IdentityResolver.from_config({"sources": ["linkerd", "anonymous"], **kw})


def creds(headers: list[tuple[bytes, bytes]], peer: str = "127.0.0.1", **kw: Any) -> Credentials:
    return Credentials(peer_host=peer, headers=headers, **kw)


def test_linkerd_header_from_loopback_is_trusted_and_kept() -> None:
    headers = [*BASE, (b"L5d-Client-Id", L5D)]
    result = linkerd().resolve(creds(headers))
    assert result.principal.id == L5D_ID and result.principal.source == "linkerd"
    assert result.headers is headers and result.dropped == 0


@pytest.mark.parametrize("peer", ["10.0.0.7", "::ffff:10.0.0.7", "2001:db8::1", "not-an-ip", ""])
def test_identity_headers_from_untrusted_peers_are_dropped_and_counted(peer: str) -> None:
    headers = [*BASE, (b"l5d-client-id", L5D), (b"X-Forwarded-Client-Cert", XFCC), (b"X-Auth-User", b"root")]
    result = linkerd(identity_headers=["x-auth-user"]).resolve(creds(headers, peer))
    assert result.principal is ANONYMOUS
    assert result.dropped == 3
    assert result.headers == BASE and headers[-1] == (b"X-Auth-User", b"root")  # input not mutated


def test_ipv4_mapped_loopback_and_ipv6_loopback_are_trusted() -> None:
    for peer in ("::ffff:127.0.0.1", "::1", "[::1]", "127.0.0.6"):  # 127.0.0.6: Istio's inbound source
        assert linkerd().resolve(creds([(b"l5d-client-id", L5D)], peer)).principal.id == L5D_ID


def test_local_means_peer_equals_the_accepting_address() -> None:
    resolver = linkerd()
    pod = creds([(b"l5d-client-id", L5D)], "10.42.0.18", local_host="10.42.0.18")
    assert resolver.resolve(pod).principal.id == L5D_ID
    other = creds([(b"l5d-client-id", L5D)], "10.42.0.19", local_host="10.42.0.18")
    assert resolver.resolve(other).dropped == 1
    strict = linkerd(trusted_proxies=["127.0.0.1/32"])
    assert strict.resolve(pod).principal is ANONYMOUS
    assert strict.resolve(creds([(b"l5d-client-id", L5D)], "127.0.0.6")).principal is ANONYMOUS


def test_duplicate_identity_headers_from_trusted_peer_are_ambiguous() -> None:
    for dup in ([(b"l5d-client-id", L5D), (b"L5D-CLIENT-ID", L5D)],
                [(b"l5d-client-id", L5D), (b"l5d-client-id", b"admin.kube-system.serviceaccount.identity."
                                                             b"linkerd.cluster.local")]):
        with pytest.raises(AmbiguousIdentity):
            linkerd().resolve(creds([*BASE, *dup]))


def test_mcpgate_owned_headers_are_always_stripped() -> None:
    resolver = linkerd(upstream_principal_header="X-Caller")
    headers = [(b"x-mcpgate-principal", b"spiffe://evil"), *BASE, (b"X-CALLER", b"a"), (b"x-caller", b"b"),
               (b"X-Mcpgate-Decision", b"allow"), (b"l5d-client-id", L5D)]
    result = resolver.resolve(creds(headers))
    assert result.dropped == 4
    assert result.headers == [*BASE, (b"l5d-client-id", L5D)]
    assert resolver.upstream_headers(result.principal) == [(b"x-caller", L5D_ID.encode())]


def test_upstream_header_is_off_by_default_and_encodes_unsafe_ids() -> None:
    from mcpgate.identity import Principal
    assert linkerd().upstream_headers(ANONYMOUS) == []
    resolver = linkerd(upstream_principal_header="x-mcpgate-principal")
    value = resolver.upstream_headers(Principal(id="jwt:https://i#bob\r\nx: y é%", source="jwt"))[0][1]
    assert value == b"jwt:https://i#bob%0D%0Ax:%20y%20%C3%A9%25"


def test_headers_of_disabled_sources_are_dropped_even_from_trusted_peers() -> None:
    # Linkerd forwards a client's own x-forwarded-client-cert untouched: it must not reach anyone as truth.
    result = linkerd().resolve(creds([*BASE, (b"x-forwarded-client-cert", XFCC), (b"l5d-client-id", L5D)]))
    assert result.principal.id == L5D_ID and result.dropped == 1
    assert (b"x-forwarded-client-cert", XFCC) not in result.headers


def test_xfcc_source_with_trusted_by() -> None:
    resolver = IdentityResolver.from_config({"sources": ["xfcc"], "allow_anonymous": False,
                                             "xfcc": {"trusted_by": [SIDECAR]}})
    principal = resolver.resolve(creds([(b"x-forwarded-client-cert", XFCC)])).principal
    assert principal.service_account == "planner"
    forged = b"By=spiffe://cluster.local/ns/x/sa/other;URI=spiffe://cluster.local/ns/a/sa/b"
    with pytest.raises(UntrustedIdentity):
        resolver.resolve(creds([(b"x-forwarded-client-cert", forged)]))
    with pytest.raises(IdentityRequired):
        resolver.resolve(creds([(b"x-forwarded-client-cert", XFCC)], "192.168.1.5"))


def test_malformed_trusted_header_fails_closed() -> None:
    with pytest.raises(MalformedIdentity):
        linkerd().resolve(creds([(b"l5d-client-id", b"root")]))
    with pytest.raises(MalformedIdentity):
        linkerd().resolve(creds([(b"l5d-client-id", b"\xff\xfe")]))


def test_anonymous_only_when_allowed() -> None:
    assert linkerd().resolve(creds(BASE)).principal is ANONYMOUS
    strict = IdentityResolver.from_config({"sources": ["linkerd"], "allow_anonymous": False})
    with pytest.raises(IdentityRequired) as info:
        strict.resolve(creds(BASE))
    assert info.value.http_status == 401 and "www_authenticate" not in info.value.data


@pytest.fixture
def jwt_resolver(tmp_path: Path, jwks_doc: dict[str, Any]) -> Callable[..., IdentityResolver]:
    def make(sources: list[str], mtls: dict[str, str] | None = None, **jwt: Any) -> IdentityResolver:
        section: dict[str, Any] = {"sources": sources, **({"mtls": mtls} if mtls else {}),
                                   "upstream_principal_header": "x-mcpgate-principal",
                   "jwt": {"jwks_file": str(tmp_path / "unused.json"), "issuer": ISSUER, "audience": AUDIENCE,
                           "scopes_supported": ["tools:call"], **jwt}}
        return IdentityResolver.from_config(section, jwks=KeySet.from_jwks(jwks_doc), now=lambda: NOW)
    return make


def test_source_order_decides(jwt_resolver: Callable[..., IdentityResolver], rsa_key: SigningKey,
                              claims: Claims, ca: CA) -> None:
    mtls_files = {"ca_file": "ca.pem", "cert_file": "server.pem", "key_file": "server.key"}
    der = ca.issue(uris=("spiffe://cluster.local/ns/a/sa/cert",)).der
    headers = [(b"l5d-client-id", L5D), (b"authorization", f"Bearer {rsa_key.sign(claims())}".encode())]
    first_jwt = jwt_resolver(["jwt", "mtls", "linkerd", "anonymous"], mtls=mtls_files)
    assert first_jwt.resolve(creds(headers, peer_cert_der=der, tls=True)).principal.source == "jwt"
    first_mtls = jwt_resolver(["mtls", "linkerd", "jwt"], mtls=mtls_files)
    assert first_mtls.resolve(creds(headers, peer_cert_der=der, tls=True)).principal.source == "mtls"
    assert first_mtls.resolve(creds(headers)).principal.source == "linkerd"
    assert first_mtls.resolve(creds(headers, peer="10.9.9.9")).principal.source == "jwt"


def test_invalid_token_is_401_with_challenge_and_never_falls_back(
        jwt_resolver: Callable[..., IdentityResolver], rsa_key: SigningKey, claims: Claims) -> None:
    resolver = jwt_resolver(["jwt", "anonymous"])
    expired = rsa_key.sign(claims(exp=int(NOW) - 100))
    with pytest.raises(InvalidToken) as info:
        resolver.resolve(creds([(b"Authorization", f"Bearer {expired}".encode())], "10.0.0.1"))
    assert info.value.http_status == 401 and info.value.code == "identity.invalid_token"
    assert info.value.data["www_authenticate"] == (
        'Bearer realm="mcpgate", error="invalid_token", error_description="token has expired", '
        'resource_metadata="https://mcp.example.test/.well-known/oauth-protected-resource/mcp"')
    with pytest.raises(AmbiguousIdentity) as amb:
        token = rsa_key.sign(claims())
        resolver.resolve(creds([(b"authorization", f"Bearer {token}".encode())] * 2, "10.0.0.1"))
    assert amb.value.data["www_authenticate"] == (
        'Bearer realm="mcpgate", scope="tools:call", '
        'resource_metadata="https://mcp.example.test/.well-known/oauth-protected-resource/mcp"')


def test_required_jwt_challenges_requests_without_token(jwt_resolver: Callable[..., IdentityResolver],
                                                        rsa_key: SigningKey, claims: Claims) -> None:
    resolver = jwt_resolver(["linkerd", "jwt", "anonymous"], required=True)
    with pytest.raises(IdentityRequired) as info:
        resolver.resolve(creds([(b"l5d-client-id", L5D), (b"authorization", b"Basic dTpw")]))
    assert "error=" not in info.value.data["www_authenticate"]
    assert 'scope="tools:call"' in info.value.data["www_authenticate"]
    token = rsa_key.sign(claims())
    ok = resolver.resolve(creds([(b"l5d-client-id", L5D), (b"authorization", f"Bearer {token}".encode())]))
    assert ok.principal.source == "linkerd"


def test_token_is_stripped_upstream_unless_forwarded(jwt_resolver: Callable[..., IdentityResolver]) -> None:
    assert jwt_resolver(["jwt"]).strip_upstream == {b"authorization"}
    assert jwt_resolver(["jwt"], forward_token=True).strip_upstream == frozenset()
    assert linkerd().strip_upstream == frozenset()


def test_protected_resource_metadata_is_precomputed(jwt_resolver: Callable[..., IdentityResolver]) -> None:
    r = jwt_resolver(["jwt"])
    assert r.prm_paths == {"/.well-known/oauth-protected-resource/mcp",
                           "/.well-known/oauth-protected-resource"}
    assert r.prm_document is not None
    assert json.loads(json.dumps(r.prm_document))["authorization_servers"] == [ISSUER]
    assert r.www_authenticate(error="insufficient_scope", scope="tools:call") is not None
    assert linkerd().www_authenticate() is None


@pytest.mark.parametrize(("section", "path"), [
    ({"sources": ["linkerd", "xfcc"]}, "identity.sources"),
    ({"sources": ["anonymous", "linkerd"]}, "identity.sources"),
    ({"sources": ["linkerd", "anonymous"], "allow_anonymous": False}, "identity.sources"),
    ({"sources": ["jwt"]}, "identity.jwt"),
    ({"sources": ["mtls"]}, "identity.mtls"),
    ({"trusted_proxies": ["10.0.0.1/8"]}, "identity.trusted_proxies.0"),
    ({"sorces": ["mtls"]}, "identity.sorces"),
    ({"jwt": {"issuer": ISSUER, "audience": AUDIENCE, "jwks_file": "x", "algorithms": ["HS256"]},
      "sources": ["jwt"]}, "identity.jwt.algorithms.0"),
    ({"jwt": {"issuer": ISSUER, "audience": AUDIENCE, "jwks_file": "x", "algorithms": ["none"]},
      "sources": ["jwt"]}, "identity.jwt.algorithms.0"),
    ({"jwt": {"issuer": ISSUER, "audience": "api://mcp", "jwks_file": "x"}, "sources": ["jwt"]},
     "identity.jwt"),
    ({"jwt": {"issuer": ISSUER, "audience": AUDIENCE}, "sources": ["jwt"]}, "identity.jwt"),
])
def test_config_errors_name_the_key(section: dict[str, Any], path: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_identity_config(section)
    assert info.value.path == path


def test_defaults() -> None:
    cfg = parse_identity_config(None)
    assert cfg.sources == () and cfg.allow_anonymous and cfg.trust_local
    assert [str(n) for n in cfg.trusted_networks] == ["127.0.0.0/8", "::1/128"]
    assert cfg.upstream_principal_header is None and cfg.jwt is None
