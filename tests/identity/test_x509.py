"""Principals from real X.509 client certificates (SPIFFE URI SAN, DNS SAN)."""

from __future__ import annotations

import pytest

from mcpgate.errors import AmbiguousIdentity, MalformedIdentity
from mcpgate.identity import principal_from_certificate
from tests.identity.conftest import CA


def test_spiffe_uri_san_wins(ca: CA) -> None:
    issued = ca.issue(uris=("spiffe://cluster.local/ns/agents/sa/planner",), dns=("planner.agents.svc",))
    p = principal_from_certificate(issued.der)
    assert p.id == "spiffe://cluster.local/ns/agents/sa/planner"
    assert (p.source, p.namespace, p.service_account) == ("mtls", "agents", "planner")
    assert p.claims["dns_names"] == ("planner.agents.svc",)
    assert p.claims["subject_dn"] == "CN=workload"


def test_dns_san_when_no_spiffe_uri(ca: CA) -> None:
    issued = ca.issue(uris=("https://not-spiffe.example/x",), dns=("Client.Example.com", "alt.example.com"))
    p = principal_from_certificate(issued.der)
    assert p.id == "dns:client.example.com"
    assert p.trust_domain is None


def test_two_spiffe_ids_are_ambiguous(ca: CA) -> None:
    issued = ca.issue(uris=("spiffe://td/ns/a/sa/b", "spiffe://td/ns/c/sa/d"))
    with pytest.raises(AmbiguousIdentity):
        principal_from_certificate(issued.der)


def test_certificate_without_san_is_refused(ca: CA) -> None:
    with pytest.raises(MalformedIdentity, match="no subject alternative name"):
        principal_from_certificate(ca.issue(san=False).der)


def test_garbage_der_is_malformed() -> None:
    with pytest.raises(MalformedIdentity):
        principal_from_certificate(b"\x30\x03\x02\x01\x00not a cert")
