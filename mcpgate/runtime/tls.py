"""The server-side `SSLContext` for mTLS terminated by mcpgate, and reading the verified peer certificate."""

from __future__ import annotations

import ssl

from mcpgate.errors import ConfigError
from mcpgate.identity.settings import MtlsConfig

_MIN_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


def server_ssl_context(config: MtlsConfig) -> ssl.SSLContext:
    """A server context that verifies client certificates against `ca_file`.

    `require: false` uses CERT_OPTIONAL: a client without a certificate still connects (and is identified
    by a later source or as anonymous), but a client presenting a certificate the CA does not vouch for
    is refused in the handshake.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = _MIN_VERSIONS[config.min_version]
    try:
        ctx.load_cert_chain(config.cert_file, config.key_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load server certificate/key: {exc}", file=config.cert_file,
                          path="identity.mtls.cert_file") from None
    try:
        ctx.load_verify_locations(cafile=config.ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load client ca bundle: {exc}", file=config.ca_file,
                          path="identity.mtls.ca_file") from None
    ctx.verify_mode = ssl.CERT_REQUIRED if config.require else ssl.CERT_OPTIONAL
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def peer_certificate_der(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> bytes | None:
    """The client's certificate (DER) after a verified handshake; None when it sent none or no TLS.

    From an asyncio transport: `peer_certificate_der(transport.get_extra_info("ssl_object"))`.
    """
    if ssl_object is None:
        return None
    return ssl_object.getpeercert(binary_form=True)
