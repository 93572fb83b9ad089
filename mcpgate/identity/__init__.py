"""identity layer: who is calling (mTLS, Linkerd, Istio/Envoy XFCC, JWT bearer, anonymous)."""

from mcpgate.identity.bearer import (
    JwtConfig,
    JwtVerifier,
    protected_resource_metadata,
    resource_metadata_url,
    www_authenticate,
)
from mcpgate.identity.keys import KeySet, KeySource, VerifyKey
from mcpgate.identity.model import ANONYMOUS, ANONYMOUS_ID, Credentials, Principal
from mcpgate.identity.resolver import (
    IdentityResolver,
    IdentityResult,
    headers_to_strip_upstream,
    make_server_ssl_config,
)
from mcpgate.identity.sessions import SessionBindings
from mcpgate.identity.settings import IdentityConfig, MtlsConfig, parse_identity_config
from mcpgate.identity.spiffe import principal_from_dns, principal_from_linkerd, principal_from_spiffe_id
from mcpgate.identity.x509 import principal_from_certificate
from mcpgate.identity.xfcc import XfccElement, parse_xfcc, principal_from_xfcc, select_element

__all__ = [
    "ANONYMOUS",
    "ANONYMOUS_ID",
    "Credentials",
    "IdentityConfig",
    "IdentityResolver",
    "IdentityResult",
    "JwtConfig",
    "JwtVerifier",
    "KeySet",
    "KeySource",
    "MtlsConfig",
    "Principal",
    "SessionBindings",
    "VerifyKey",
    "XfccElement",
    "headers_to_strip_upstream",
    "make_server_ssl_config",
    "parse_identity_config",
    "parse_xfcc",
    "principal_from_certificate",
    "principal_from_dns",
    "principal_from_linkerd",
    "principal_from_spiffe_id",
    "principal_from_xfcc",
    "protected_resource_metadata",
    "resource_metadata_url",
    "select_element",
    "www_authenticate",
]
