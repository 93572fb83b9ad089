"""`x-forwarded-client-cert` as Envoy and Istio emit it: parsing, quoting, choosing the trusted element."""

from __future__ import annotations

import pytest

from mcpgate.errors import AmbiguousIdentity, MalformedIdentity, UntrustedIdentity
from mcpgate.identity import parse_xfcc, principal_from_xfcc, select_element

HASH1 = "468ed33be74eee6556d90c0149c1309e9ba61d6425303443c0748a02dd8de688"
HASH2 = "9ba61d6425303443c0748a02dd8de688468ed33be74eee6556d90c0149c1309e"
SIDECAR = "spiffe://cluster.local/ns/tools/sa/mcp-server"
# Istio sidecar inbound (APPEND_FORWARD, set_current_client_cert_details {subject, uri, dns}).
ISTIO = f'By={SIDECAR};Hash={HASH1};Subject="";URI=spiffe://cluster.local/ns/agents/sa/planner'
# Envoy docs: two proxies appended in turn; Subject quoted because it holds `,` and `=`.
ENVOY_TWO = (
    f'By=http://frontend.lyft.com;Hash={HASH1};Subject="CN=Test Client,OU=Lyft,L=San Francisco,ST=CA,C=US";'
    f'URI=http://testclient.lyft.com,'
    f'By=http://backend.lyft.com;Hash={HASH2};URI=http://frontend.lyft.com;DNS=frontend.lyft.com'
)
PEM = "-----BEGIN%20CERTIFICATE-----%0AMIIBszCCAVmgAwIBAgIU%0A-----END%20CERTIFICATE-----%0A"


def test_istio_header_yields_caller_spiffe_id() -> None:
    p = principal_from_xfcc(ISTIO, {SIDECAR})
    assert (p.id, p.source, p.namespace, p.service_account) == (
        "spiffe://cluster.local/ns/agents/sa/planner", "xfcc", "agents", "planner")
    assert p.claims["by"] == (SIDECAR,)
    assert p.claims["hash"] == HASH1


def test_envoy_two_elements_parse_with_quoted_subject() -> None:
    first, second = parse_xfcc(ENVOY_TWO)
    assert first.by == ("http://frontend.lyft.com",)
    assert first.subject == "CN=Test Client,OU=Lyft,L=San Francisco,ST=CA,C=US"
    assert first.uri == ("http://testclient.lyft.com",)
    assert second.hash == HASH2 and second.dns == ("frontend.lyft.com",)


def test_escaped_quotes_semicolons_and_case_insensitive_keys() -> None:
    value = (r'by=spiffe://td/ns/a/sa/proxy;HASH=abc;subject="CN=\"Quoted; Inc, Ltd\",O=x=y";'
             rf'cert="{PEM}";uri=spiffe://td/ns/a/sa/caller;Dns=caller.a.svc;DNS=caller.a')
    (el,) = parse_xfcc(value)
    assert el.subject == 'CN="Quoted; Inc, Ltd",O=x=y'
    assert el.hash == "abc" and el.cert == PEM
    assert el.uri == ("spiffe://td/ns/a/sa/caller",)
    assert el.dns == ("caller.a.svc", "caller.a")


def test_last_element_is_the_one_the_local_proxy_added() -> None:
    # A client-supplied element claiming the sidecar's By comes first; Envoy's own element is last.
    forged = f"By={SIDECAR};URI=spiffe://cluster.local/ns/kube-system/sa/admin"
    value = f"{forged},{ISTIO}"
    assert principal_from_xfcc(value, {SIDECAR}).service_account == "planner"
    assert principal_from_xfcc(value, ()).service_account == "planner"


def test_last_element_not_added_by_trusted_proxy_is_refused() -> None:
    value = f"{ISTIO},By=spiffe://cluster.local/ns/evil/sa/proxy;URI=spiffe://cluster.local/ns/a/sa/b"
    with pytest.raises(UntrustedIdentity):
        principal_from_xfcc(value, {SIDECAR})
    with pytest.raises(UntrustedIdentity):
        select_element(parse_xfcc("URI=spiffe://td/ns/a/sa/b"), {SIDECAR})  # no By at all


def test_dns_when_no_spiffe_uri() -> None:
    p = principal_from_xfcc(ENVOY_TWO, ())
    assert p.id == "dns:frontend.lyft.com"


@pytest.mark.parametrize("bad", [
    'By=x;Subject="unterminated',
    "By=x;Subject",
    "By=x,,URI=y",
    'By=x;URI=a"b',
    'By=x;Subject="a"junk;URI=spiffe://td/a',
    "=value",
    "",
])
def test_malformed_headers(bad: str) -> None:
    with pytest.raises(MalformedIdentity):
        principal_from_xfcc(bad, ())


def test_element_without_identity_and_repeated_keys() -> None:
    with pytest.raises(MalformedIdentity, match="neither"):
        principal_from_xfcc(f'By={SIDECAR};Hash={HASH1};Subject="CN=x"', ())
    with pytest.raises(AmbiguousIdentity):
        principal_from_xfcc(f"By={SIDECAR};URI=spiffe://td/ns/a/sa/b;URI=spiffe://td/ns/c/sa/d", ())
    with pytest.raises(AmbiguousIdentity):
        parse_xfcc("Hash=a;Hash=b;URI=spiffe://td/x")


def test_too_many_elements_and_too_long() -> None:
    with pytest.raises(MalformedIdentity, match="too many"):
        parse_xfcc(",".join(["URI=spiffe://td/x"] * 40))
    with pytest.raises(MalformedIdentity, match="too long"):
        parse_xfcc("URI=" + "a" * 70_000)
