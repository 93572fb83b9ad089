"""The `identity` config section: schema check, defaults and cross-field rules, as an `IdentityConfig`."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from mcpgate.config.schema import load_package_schema, schema_error
from mcpgate.errors import ConfigError
from mcpgate.identity.bearer import JwtConfig

SCHEMA = "identity.section.schema.json"
DEFAULT_TRUSTED_PROXIES = ("127.0.0.0/8", "::1/128", "local")
LOCAL = "local"
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class MtlsConfig:
    """What the data plane needs to build the server `SSLContext` (see `mcpgate.runtime.tls`)."""

    ca_file: str
    cert_file: str
    key_file: str
    require: bool = False          # CERT_REQUIRED when true, else CERT_OPTIONAL
    min_version: str = "1.2"


@dataclass(frozen=True, slots=True)
class IdentityConfig:
    sources: tuple[str, ...]                 # precedence order, without `anonymous`
    allow_anonymous: bool
    trusted_networks: tuple[IpNetwork, ...]
    trust_local: bool                        # `local` in trusted_proxies
    identity_headers: frozenset[bytes]       # lowercase; dropped unless from a trusted proxy
    upstream_principal_header: bytes | None
    linkerd_header: bytes
    linkerd_control_plane_ns: str
    xfcc_header: bytes
    xfcc_trusted_by: frozenset[str]
    mtls: MtlsConfig | None
    jwt: JwtConfig | None


def parse_identity_config(section: Mapping[str, Any] | None) -> IdentityConfig:
    """Check the section against its schema and the rules a schema cannot say; raise `ConfigError`."""
    section = dict(section or {})
    problem = schema_error(section, load_package_schema(SCHEMA))
    if problem is not None:
        path, message = problem
        raise ConfigError(message, path=".".join(["identity", *map(str, path)]))
    # Omitted: what is configured (mtls, jwt) then anonymous. Mesh header sources are never implicit:
    # enabling the wrong one lets a meshed client forge identity through a header its mesh passes on.
    default_sources = [s for s in ("mtls", "jwt") if s in section] + ["anonymous"]
    sources = list(section.get("sources", default_sources))
    allow_anonymous = bool(section.get("allow_anonymous", True))
    if "anonymous" in sources:
        if sources[-1] != "anonymous":
            raise ConfigError("`anonymous` must be the last identity source", path="identity.sources")
        if not allow_anonymous:
            raise ConfigError("`anonymous` is listed as a source but `allow_anonymous` is false",
                              path="identity.sources")
        sources.pop()
    if "linkerd" in sources and "xfcc" in sources:
        # Each mesh forwards the other's header from an authenticated client untouched: trusting both
        # lets any meshed workload claim any identity through the header its mesh does not own.
        raise ConfigError("`linkerd` and `xfcc` cannot both be identity sources: enable the one your mesh "
                          "sets", path="identity.sources")
    if "mtls" in sources and "mtls" not in section:
        raise ConfigError("`mtls` source needs an `identity.mtls` section", path="identity.mtls")
    if "jwt" in sources and "jwt" not in section:
        raise ConfigError("`jwt` source needs an `identity.jwt` section", path="identity.jwt")
    if "jwt" in section and "jwt" not in sources:
        raise ConfigError("`identity.jwt` is configured but `jwt` is not in `identity.sources`",
                          path="identity.sources")
    networks: list[IpNetwork] = []
    trust_local = False
    for i, entry in enumerate(section.get("trusted_proxies", DEFAULT_TRUSTED_PROXIES)):
        if entry == LOCAL:
            trust_local = True
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=True))
        except ValueError:
            raise ConfigError(f"`{entry}` is not a CIDR (e.g. 127.0.0.1/32) or `local`",
                              path=f"identity.trusted_proxies.{i}") from None
    linkerd = section.get("linkerd", {})
    xfcc = section.get("xfcc", {})
    upstream_header = section.get("upstream_principal_header")
    return IdentityConfig(
        sources=tuple(sources),
        allow_anonymous=allow_anonymous,
        trusted_networks=tuple(networks),
        trust_local=trust_local,
        identity_headers=frozenset(h.lower().encode("ascii") for h in section.get("identity_headers", ())),
        upstream_principal_header=upstream_header.lower().encode("ascii") if upstream_header else None,
        linkerd_header=linkerd.get("header", "l5d-client-id").lower().encode("ascii"),
        linkerd_control_plane_ns=linkerd.get("control_plane_namespace", "linkerd"),
        xfcc_header=xfcc.get("header", "x-forwarded-client-cert").lower().encode("ascii"),
        xfcc_trusted_by=frozenset(xfcc.get("trusted_by", ())),
        mtls=_mtls(section["mtls"]) if "mtls" in section else None,
        jwt=_jwt(section["jwt"]) if "jwt" in section else None,
    )


def _mtls(m: Mapping[str, Any]) -> MtlsConfig:
    return MtlsConfig(ca_file=m["ca_file"], cert_file=m["cert_file"], key_file=m["key_file"],
                      require=bool(m.get("require", False)), min_version=str(m.get("min_version", "1.2")))


def _jwt(j: Mapping[str, Any]) -> JwtConfig:
    aud = j["audience"]
    audiences = (aud,) if isinstance(aud, str) else tuple(aud)
    resource = j.get("resource")
    if resource is None:
        if not audiences[0].startswith(("https://", "http://")):
            raise ConfigError("`identity.jwt.resource` is needed (the audience is not an http(s) url) for "
                              "the RFC 9728 metadata clients discover the issuer from", path="identity.jwt")
        resource = audiences[0]
    url = j.get("jwks_url")
    if url is not None and urlsplit(url).scheme != "https" and not _loopback_url(url):
        raise ConfigError(f"jwks url `{url}` must be https (http only for loopback)",
                          path="identity.jwt.jwks_url")
    return JwtConfig(
        issuer=j["issuer"], audiences=audiences,
        algorithms=frozenset(j.get("algorithms", ("RS256", "ES256"))),
        resource=resource,
        authorization_servers=tuple(j.get("authorization_servers", (j["issuer"],))),
        scopes_supported=tuple(j.get("scopes_supported", ())),
        leeway_s=float(j.get("leeway_s", 30)),
        groups_claim=j.get("groups_claim", "groups"),
        forward_token=bool(j.get("forward_token", False)),
        required=bool(j.get("required", False)),
        realm=j.get("realm", "mcpgate"),
        jwks_file=j.get("jwks_file"), jwks_url=url,
        jwks_refresh_s=float(j.get("jwks_refresh_s", 300)),
    )


def _loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
