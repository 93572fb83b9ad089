"""Envoy/Istio `x-forwarded-client-cert` parsing and the choice of the element a trusted proxy added."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from mcpgate.errors import AmbiguousIdentity, MalformedIdentity, UntrustedIdentity
from mcpgate.identity.model import Principal
from mcpgate.identity.spiffe import principal_from_dns, principal_from_spiffe_id

MAX_ELEMENTS = 32
MAX_LENGTH = 64 * 1024


@dataclass(frozen=True, slots=True)
class XfccElement:
    """One comma-separated element: the client certificate one proxy saw. Keys are case-insensitive."""

    by: tuple[str, ...] = ()
    hash: str | None = None
    cert: str | None = None
    chain: str | None = None
    subject: str | None = None
    uri: tuple[str, ...] = ()
    dns: tuple[str, ...] = ()


def parse_xfcc(value: str) -> list[XfccElement]:
    """Parse the header value: `Key=value;Key="quoted, value";...,<next element>`.

    Quoted values may contain `,` `;` `=` and backslash-escaped characters (`\\"`). Unknown keys are
    ignored; an unterminated quote, a pair without `=` or an empty element is malformed.
    """
    if len(value) > MAX_LENGTH:
        raise MalformedIdentity("x-forwarded-client-cert header is too long")
    elements: list[XfccElement] = []
    pairs: list[tuple[str, str]] = []
    i, n = 0, len(value)
    while True:
        while i < n and value[i] in " \t":
            i += 1
        eq = value.find("=", i)
        if eq < 0:
            raise MalformedIdentity("x-forwarded-client-cert pair has no `=`")
        key = value[i:eq].strip().lower()
        if not key or any(c in key for c in ',;"'):
            raise MalformedIdentity("x-forwarded-client-cert has an invalid key")
        i = eq + 1
        if i < n and value[i] == '"':
            buf: list[str] = []
            i += 1
            while True:
                if i >= n:
                    raise MalformedIdentity("x-forwarded-client-cert has an unterminated quoted value")
                c = value[i]
                if c == "\\" and i + 1 < n:
                    buf.append(value[i + 1])
                    i += 2
                elif c == '"':
                    i += 1
                    break
                else:
                    buf.append(c)
                    i += 1
            val = "".join(buf)
            while i < n and value[i] in " \t":
                i += 1
            if i < n and value[i] not in ",;":
                raise MalformedIdentity("x-forwarded-client-cert has text after a quoted value")
        else:
            j = i
            while j < n and value[j] not in ",;":
                if value[j] == '"':
                    raise MalformedIdentity("x-forwarded-client-cert has a stray quote")
                j += 1
            val = value[i:j].strip()
            i = j
        pairs.append((key, val))
        if i >= n:
            elements.append(_element(pairs))
            break
        sep = value[i]
        i += 1
        if sep == ",":
            elements.append(_element(pairs))
            pairs = []
            if len(elements) >= MAX_ELEMENTS:
                raise MalformedIdentity("x-forwarded-client-cert has too many elements")
    return elements


def _element(pairs: list[tuple[str, str]]) -> XfccElement:
    fields: dict[str, list[str]] = {}
    for k, v in pairs:
        fields.setdefault(k, []).append(v)

    def one(k: str) -> str | None:
        vals = fields.get(k)
        if vals and len(vals) > 1:
            raise AmbiguousIdentity(f"x-forwarded-client-cert element repeats `{k}`")
        return vals[0] if vals else None

    return XfccElement(by=tuple(fields.get("by", ())), hash=one("hash"), cert=one("cert"),
                       chain=one("chain"), subject=one("subject"), uri=tuple(fields.get("uri", ())),
                       dns=tuple(fields.get("dns", ())))


def select_element(elements: list[XfccElement], trusted_by: Collection[str]) -> XfccElement:
    """The element the co-located proxy added: always the LAST one.

    With `forward_client_cert_details: APPEND_FORWARD` (Istio's sidecar default) or `SANITIZE_SET`, Envoy
    removes the header on non-mTLS connections and otherwise appends its own element last; earlier
    elements were sent by the (authenticated) client and are only claims. When `trusted_by` is set, that
    last element's `By` (the proxy's own identity) must be one of them, so a header that did not pass
    through the expected proxy is refused rather than searched for a matching earlier element.
    """
    if not elements:
        raise MalformedIdentity("x-forwarded-client-cert is empty")
    last = elements[-1]
    if trusted_by and not any(b in trusted_by for b in last.by):
        raise UntrustedIdentity("x-forwarded-client-cert was not added by a trusted proxy "
                                "(last element's `By` is not in `xfcc.trusted_by`)")
    return last


def principal_from_xfcc(value: str, trusted_by: Collection[str]) -> Principal:
    element = select_element(parse_xfcc(value), trusted_by)
    spiffe = [u for u in element.uri if u.lower().startswith("spiffe://")]
    if len(spiffe) > 1:
        raise AmbiguousIdentity("x-forwarded-client-cert element has more than one spiffe uri")
    if spiffe:
        p = principal_from_spiffe_id(spiffe[0], "xfcc")
    elif element.dns:
        p = principal_from_dns(element.dns[0], "xfcc")
    else:
        raise MalformedIdentity("x-forwarded-client-cert element has neither `URI` nor `DNS`")
    claims = {"by": element.by, "hash": element.hash, "subject_dn": element.subject, "dns_names": element.dns}
    return Principal(id=p.id, source=p.source, trust_domain=p.trust_domain, namespace=p.namespace,
                     service_account=p.service_account, claims=claims, subject=p.subject)
