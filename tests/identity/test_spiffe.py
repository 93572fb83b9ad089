"""Canonical ids: SPIFFE IDs, Linkerd identities mapped to SPIFFE form, DNS names."""

from __future__ import annotations

import pytest

from mcpgate.errors import MalformedIdentity
from mcpgate.identity import principal_from_dns, principal_from_linkerd, principal_from_spiffe_id


def test_spiffe_id_with_k8s_path_fills_namespace_and_service_account() -> None:
    p = principal_from_spiffe_id("spiffe://cluster.local/ns/payments/sa/agent", "mtls")
    assert (p.id, p.trust_domain, p.namespace, p.service_account, p.source) == (
        "spiffe://cluster.local/ns/payments/sa/agent", "cluster.local", "payments", "agent", "mtls")


def test_spiffe_id_with_other_path_keeps_only_trust_domain() -> None:
    p = principal_from_spiffe_id("spiffe://prod.example.org/region/eu/workload/billing", "xfcc")
    assert p.trust_domain == "prod.example.org"
    assert p.namespace is None and p.service_account is None


@pytest.mark.parametrize("bad", [
    "http://cluster.local/ns/a/sa/b",            # wrong scheme
    "spiffe://Cluster.Local/ns/a/sa/b",          # trust domain must be lowercase
    "spiffe://cluster.local/ns/a/sa/b/",         # trailing slash
    "spiffe://cluster.local/ns//sa/b",           # empty segment
    "spiffe://cluster.local/ns/../sa/b",         # dot segment
    "spiffe://cluster.local/ns/a/sa/b?x=1",      # query
    "spiffe://user@cluster.local/ns/a",          # userinfo
    "spiffe://cluster.local:8443/ns/a",          # port
    "spiffe://" + "a" * 2100,                    # too long
])
def test_malformed_spiffe_ids_are_rejected(bad: str) -> None:
    with pytest.raises(MalformedIdentity):
        principal_from_spiffe_id(bad, "mtls")


def test_linkerd_identity_maps_to_canonical_spiffe_id() -> None:
    p = principal_from_linkerd("web.emojivoto.serviceaccount.identity.linkerd.cluster.local")
    assert p.id == "spiffe://cluster.local/ns/emojivoto/sa/web"
    assert (p.trust_domain, p.namespace, p.service_account, p.source) == (
        "cluster.local", "emojivoto", "web", "linkerd")
    assert p.subject == "web.emojivoto.serviceaccount.identity.linkerd.cluster.local"


def test_linkerd_service_account_with_dots_and_custom_trust_domain() -> None:
    p = principal_from_linkerd("ci.runner.build.serviceaccount.identity.linkerd.prod.example.org")
    assert p.id == "spiffe://prod.example.org/ns/build/sa/ci.runner"


def test_linkerd_custom_control_plane_namespace() -> None:
    value = "api.shop.serviceaccount.identity.linkerd-cp.cluster.local"
    assert principal_from_linkerd(value, control_plane_ns="linkerd-cp").namespace == "shop"
    with pytest.raises(MalformedIdentity):
        principal_from_linkerd(value)


@pytest.mark.parametrize("bad", [
    "",
    "web.emojivoto.cluster.local",
    "emojivoto.serviceaccount.identity.linkerd.cluster.local",      # no namespace
    "web.Emoji.serviceaccount.identity.linkerd.cluster.local",      # uppercase namespace
    "web/x.ns.serviceaccount.identity.linkerd.cluster.local",       # slash would forge a spiffe path
    "web.ns.serviceaccount.identity.linkerd.",                      # no trust domain
    "web.ns.serviceaccount.identity.linkerd.cluster.local/ns/x",    # path injection in trust domain
])
def test_malformed_linkerd_identities_are_rejected(bad: str) -> None:
    with pytest.raises(MalformedIdentity):
        principal_from_linkerd(bad)


def test_dns_names_are_prefixed_and_lowercased() -> None:
    assert principal_from_dns("API.Example.com", "mtls").id == "dns:api.example.com"
    assert principal_from_dns("anonymous", "mtls").id == "dns:anonymous"
    with pytest.raises(MalformedIdentity):
        principal_from_dns("bad name", "mtls")
