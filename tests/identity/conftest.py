"""Real artefacts for identity tests: a CA and client certificates, signing keys, JWKS documents, tokens."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = 1_800_000_000.0
ISSUER = "https://issuer.example.test"
AUDIENCE = "https://mcp.example.test/mcp"


@dataclass
class Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    def write(self, directory: Path, name: str) -> tuple[str, str]:
        cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
        cert_path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(self.key.private_bytes(serialization.Encoding.PEM,
                                                    serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()))
        return str(cert_path), str(key_path)


class CA:
    def __init__(self, name: str) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = dt.datetime.now(dt.UTC)
        self.cert = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .sign(self.key, hashes.SHA256())
        )

    def issue(self, *, cn: str = "workload", uris: tuple[str, ...] = (), dns: tuple[str, ...] = (),
              server: bool = False, san: bool = True) -> Issued:
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(self.cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(hours=2))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server
                                                  else ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        )
        names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(u) for u in uris]
        names += [x509.DNSName(d) for d in dns]
        if san and names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        return Issued(builder.sign(self.key, hashes.SHA256()), key)

    def write(self, directory: Path, name: str = "ca") -> str:
        path = directory / f"{name}.pem"
        path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        return str(path)


@pytest.fixture(scope="session")
def ca() -> CA:
    return CA("mcpgate test ca")


@pytest.fixture(scope="session")
def other_ca() -> CA:
    return CA("some other ca")


@dataclass
class SigningKey:
    kid: str
    alg: str
    private: Any
    jwk: dict[str, Any]

    def sign(self, claims: dict[str, Any], *, headers: dict[str, Any] | None = None,
             kid: str | None = "same", alg: str | None = None) -> str:
        h = dict(headers or {})
        if kid == "same":
            h["kid"] = self.kid
        elif kid is not None:
            h["kid"] = kid
        return jwt.encode(claims, self.private, algorithm=alg or self.alg, headers=h)


def _jwk(private: Any, kid: str, alg: str) -> dict[str, Any]:
    algo = jwt.get_algorithm_by_name(alg)
    doc: dict[str, Any] = json.loads(algo.to_jwk(private.public_key()))
    doc.update(kid=kid, use="sig", alg=alg)
    return doc


@pytest.fixture(scope="session")
def rsa_key() -> SigningKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return SigningKey("rsa-1", "RS256", private, _jwk(private, "rsa-1", "RS256"))


@pytest.fixture(scope="session")
def ec_key() -> SigningKey:
    private = ec.generate_private_key(ec.SECP256R1())
    return SigningKey("ec-1", "ES256", private, _jwk(private, "ec-1", "ES256"))


@pytest.fixture
def jwks_doc(rsa_key: SigningKey, ec_key: SigningKey) -> dict[str, Any]:
    return {"keys": [rsa_key.jwk, ec_key.jwk]}


@pytest.fixture
def claims() -> Callable[..., dict[str, Any]]:
    def make(**overrides: Any) -> dict[str, Any]:
        base: dict[str, Any] = {"iss": ISSUER, "aud": AUDIENCE, "sub": "user-42", "iat": int(NOW) - 10,
                                "nbf": int(NOW) - 10, "exp": int(NOW) + 300,
                                "scope": "tools:read tools:call", "groups": ["sre", "oncall"]}
        base.update(overrides)
        return {k: v for k, v in base.items() if v is not None}
    return make
