"""Canonical principal ids: SPIFFE ID and Linkerd identity parsing, DNS names; one id form for every mesh."""

from __future__ import annotations

import re

from mcpgate.errors import MalformedIdentity
from mcpgate.identity.model import Principal

# SPIFFE ID spec §2: trust domain [a-z0-9.-_], path segments [a-zA-Z0-9.-_], no empty/dot segments.
_TRUST_DOMAIN = re.compile(r"[a-z0-9._-]{1,255}")
_SEGMENT = re.compile(r"[A-Za-z0-9._-]+")
# Kubernetes: namespaces are DNS labels; service accounts DNS subdomains (may contain dots).
_K8S_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_K8S_SUBDOMAIN = re.compile(r"[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?")
_DNS_NAME = re.compile(r"(\*\.)?[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")
_MAX_SPIFFE_ID = 2048


def principal_from_spiffe_id(uri: str, source: str, *, subject: str | None = None) -> Principal:
    """A Principal from a SPIFFE ID; fills namespace/service account when the path is `/ns/<ns>/sa/<sa>`."""
    if len(uri) > _MAX_SPIFFE_ID or not uri.startswith("spiffe://"):
        raise MalformedIdentity(f"not a spiffe id: `{_clip(uri)}`")
    rest = uri[len("spiffe://"):]
    trust_domain, slash, path = rest.partition("/")
    if not _TRUST_DOMAIN.fullmatch(trust_domain):
        raise MalformedIdentity(f"invalid spiffe trust domain in `{_clip(uri)}`")
    segments = path.split("/") if slash else []
    if slash and not path:
        raise MalformedIdentity(f"spiffe id `{_clip(uri)}` has a trailing slash")
    for seg in segments:
        if seg in (".", "..") or not _SEGMENT.fullmatch(seg):
            raise MalformedIdentity(f"invalid spiffe path segment in `{_clip(uri)}`")
    namespace = service_account = None
    if len(segments) == 4 and segments[0] == "ns" and segments[2] == "sa":
        namespace, service_account = segments[1], segments[3]
    return Principal(id=uri, source=source, trust_domain=trust_domain, namespace=namespace,
                     service_account=service_account, subject=subject if subject is not None else uri)


def spiffe_id_for(trust_domain: str, namespace: str, service_account: str) -> str:
    return f"spiffe://{trust_domain}/ns/{namespace}/sa/{service_account}"


def principal_from_linkerd(value: str, *, control_plane_ns: str = "linkerd") -> Principal:
    """`<sa>.<ns>.serviceaccount.identity.<control-plane-ns>.<trust-domain>` → `spiffe://<td>/ns/<ns>/sa/<sa>`.

    The service account may itself contain dots; the namespace (a DNS label) cannot, so it is the last label
    before `.serviceaccount.identity.`.
    """
    marker = f".serviceaccount.identity.{control_plane_ns}."
    head, sep, trust_domain = value.partition(marker)
    if not sep or not head or not trust_domain:
        raise MalformedIdentity(f"not a linkerd identity: `{_clip(value)}`")
    service_account, dot, namespace = head.rpartition(".")
    if (not dot or not _K8S_LABEL.fullmatch(namespace) or not _K8S_SUBDOMAIN.fullmatch(service_account)
            or not _TRUST_DOMAIN.fullmatch(trust_domain)):
        raise MalformedIdentity(f"not a linkerd identity: `{_clip(value)}`")
    return Principal(id=spiffe_id_for(trust_domain, namespace, service_account), source="linkerd",
                     trust_domain=trust_domain, namespace=namespace, service_account=service_account,
                     subject=value)


def principal_from_dns(name: str, source: str) -> Principal:
    """A DNS SAN as `dns:<name>` (lowercased): the prefix keeps it apart from `anonymous` and SPIFFE ids."""
    if not _DNS_NAME.fullmatch(name):
        raise MalformedIdentity(f"invalid dns name `{_clip(name)}`")
    lowered = name.lower()
    return Principal(id=f"dns:{lowered}", source=source, subject=lowered)


def _clip(s: str, n: int = 120) -> str:
    """User input echoed in messages: bounded, printable, no backticks (it is quoted with them)."""
    out = "".join(c if " " <= c < "\x7f" and c != "`" else "?" for c in s[:n])
    return out + ("…" if len(s) > n else "")
