"""Client-certificate identity: the SPIFFE URI SAN (or a DNS SAN) of a certificate the TLS layer verified."""

from __future__ import annotations

from collections.abc import Mapping

from cryptography import x509

from mcpgate.errors import AmbiguousIdentity, MalformedIdentity
from mcpgate.identity.model import Principal
from mcpgate.identity.spiffe import principal_from_dns, principal_from_spiffe_id


def principal_from_certificate(der: bytes, *, source: str = "mtls") -> Principal:
    """The principal named by a DER certificate: its one `spiffe://` URI SAN, else its first DNS SAN.

    Chain and CA verification is not done here: the TLS handshake did it (`mcpgate.runtime.tls`). A
    certificate with two SPIFFE URI SANs is ambiguous (the SPIFFE X.509-SVID spec allows exactly one).
    """
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise MalformedIdentity("client certificate is not valid der") from exc
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        raise MalformedIdentity("client certificate has no subject alternative name") from None
    except ValueError as exc:  # malformed extension encodings
        raise MalformedIdentity("client certificate has a malformed subject alternative name") from exc
    uris = [u for u in san.get_values_for_type(x509.UniformResourceIdentifier)
            if u.lower().startswith("spiffe://")]
    dns_names = san.get_values_for_type(x509.DNSName)
    if len(uris) > 1:
        raise AmbiguousIdentity("client certificate has more than one spiffe uri san")
    if uris:
        principal = principal_from_spiffe_id(uris[0], source)
    elif dns_names:
        principal = principal_from_dns(dns_names[0], source)
    else:
        raise MalformedIdentity("client certificate has neither a spiffe uri san nor a dns san")
    claims = {"dns_names": tuple(dns_names), "uri_sans": tuple(uris),
              "serial": format(cert.serial_number, "x"), "subject_dn": cert.subject.rfc4514_string()}
    return _with_claims(principal, claims)


def _with_claims(p: Principal, claims: Mapping[str, object]) -> Principal:
    return Principal(id=p.id, source=p.source, trust_domain=p.trust_domain, namespace=p.namespace,
                     service_account=p.service_account, claims=claims, subject=p.subject)
