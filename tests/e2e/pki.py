"""Real credentials for the identity e2e tests: an mTLS PKI (CA, a server cert for 127.0.0.1, SPIFFE client
certs), RS256 signing keys with their JWKS, and client-side TLS contexts. Builds on `tests.identity.conftest`."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.identity.conftest import CA, Issued

__all__ = ["CA", "Issued", "Pki", "RsaKey", "client_context", "issue_ip_server_cert"]


def issue_ip_server_cert(ca: CA, ip: str = "127.0.0.1") -> Issued:
    """A server certificate whose SAN is an IP address, so clients verify `https://127.0.0.1:<port>`."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mcpgate")]))
        .issuer_name(ca.cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(hours=2))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    return Issued(cert, key)


@dataclass
class Pki:
    """Files on disk: the gateway's CA bundle and server pair, and named client pairs (cert, key)."""

    ca_file: str
    server: tuple[str, str]
    clients: dict[str, tuple[str, str]]


def make_pki(directory: Path, spiffe: dict[str, str]) -> Pki:
    """A CA, a 127.0.0.1 server certificate, one client certificate per `name -> SPIFFE ID`, and `stranger`
    (a client certificate with a valid-looking SPIFFE ID from a CA the gateway does not trust)."""
    ca, other = CA("mcpgate e2e ca"), CA("some other ca")
    ca_file = ca.write(directory)
    server = issue_ip_server_cert(ca).write(directory, "server")
    clients = {name: ca.issue(cn=name, uris=(uri,)).write(directory, f"client-{name}")
               for name, uri in spiffe.items()}
    first = next(iter(spiffe.values()))
    clients["stranger"] = other.issue(cn="stranger", uris=(first,)).write(directory, "client-stranger")
    return Pki(ca_file, server, clients)


def client_context(ca_file: str, cert: tuple[str, str] | None) -> ssl.SSLContext:
    """What an MCP client uses to reach the gateway: trust our CA, optionally present a certificate."""
    ctx = ssl.create_default_context(cafile=ca_file)
    if cert is not None:
        ctx.load_cert_chain(*cert)
    return ctx


@dataclass
class RsaKey:
    """An RS256 signing key and its public JWK."""

    kid: str
    private: rsa.RSAPrivateKey
    jwk: dict[str, Any]

    @classmethod
    def generate(cls, kid: str) -> RsaKey:
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk: dict[str, Any] = json.loads(jwt.get_algorithm_by_name("RS256").to_jwk(private.public_key()))
        jwk.update(kid=kid, use="sig", alg="RS256")
        return cls(kid, private, jwk)

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self.private, algorithm="RS256", headers={"kid": self.kid})


def jwks(*keys: RsaKey) -> dict[str, Any]:
    return {"keys": [k.jwk for k in keys]}
