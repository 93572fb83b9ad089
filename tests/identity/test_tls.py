"""A real TLS handshake on 127.0.0.1 with the context `mcpgate.runtime.tls` builds: the verified peer
certificate resolves to a principal; a certificate from another CA is refused in the handshake."""

from __future__ import annotations

import socket
import ssl
import threading
from pathlib import Path
from typing import Any

import pytest

from mcpgate.errors import ConfigError, IdentityRequired
from mcpgate.identity import Credentials, IdentityResolver, make_server_ssl_config
from mcpgate.identity.settings import MtlsConfig
from mcpgate.runtime.tls import peer_certificate_der, server_ssl_context
from tests.identity.conftest import CA, Issued

SPIFFE = "spiffe://cluster.local/ns/agents/sa/planner"


def _serve_once(ctx: ssl.SSLContext) -> tuple[int, dict[str, Any], threading.Thread]:
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(5)
    port = listener.getsockname()[1]
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            conn, addr = listener.accept()
            conn.settimeout(5)
            with ctx.wrap_socket(conn, server_side=True) as tls:
                result["der"] = peer_certificate_der(tls)
                result["peer"] = addr[0]
                result["local"] = tls.getsockname()[0]
                tls.recv(16)
                tls.sendall(b"ok")
        except (ssl.SSLError, OSError) as exc:
            result["error"] = exc
        finally:
            listener.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return port, result, thread


def _client_ctx(ca_file: str, client: Issued | None, tmp: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=ca_file)
    if client is not None:
        cert, key = client.write(tmp, "client")
        ctx.load_cert_chain(cert, key)
    return ctx


@pytest.fixture
def mtls(ca: CA, tmp_path: Path) -> MtlsConfig:
    ca_file = ca.write(tmp_path)
    cert, key = ca.issue(cn="mcpgate", dns=("localhost",), server=True).write(tmp_path, "server")
    return MtlsConfig(ca_file=ca_file, cert_file=cert, key_file=key, require=False)


def _talk(port: int, ctx: ssl.SSLContext) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname="localhost") as tls:
        tls.sendall(b"hello")
        return tls.recv(16)


def test_handshake_with_client_cert_yields_spiffe_principal(ca: CA, mtls: MtlsConfig, tmp_path: Path) -> None:
    port, result, thread = _serve_once(server_ssl_context(mtls))
    assert _talk(port, _client_ctx(mtls.ca_file, ca.issue(uris=(SPIFFE,)), tmp_path)) == b"ok"
    thread.join(5)
    assert "error" not in result
    resolver = IdentityResolver.from_config({"sources": ["mtls"], "allow_anonymous": False, "mtls": {
        "ca_file": mtls.ca_file, "cert_file": mtls.cert_file, "key_file": mtls.key_file}})
    creds = Credentials(peer_host=result["peer"], headers=[], peer_cert_der=result["der"], tls=True,
                        local_host=result["local"])
    principal = resolver.resolve(creds).principal
    assert (principal.id, principal.source, principal.namespace) == (SPIFFE, "mtls", "agents")


def test_client_cert_from_another_ca_is_refused(other_ca: CA, mtls: MtlsConfig, tmp_path: Path) -> None:
    port, result, thread = _serve_once(server_ssl_context(mtls))
    with pytest.raises((ssl.SSLError, ConnectionError)):
        reply = _talk(port, _client_ctx(mtls.ca_file, other_ca.issue(uris=(SPIFFE,)), tmp_path))
        if not reply:  # TLS 1.3: the server's alert may surface as a closed stream
            raise ConnectionError("closed")
    thread.join(5)
    assert isinstance(result.get("error"), ssl.SSLError)
    assert "der" not in result


def test_optional_mode_accepts_no_cert_and_required_mode_refuses(ca: CA, mtls: MtlsConfig,
                                                                 tmp_path: Path) -> None:
    port, result, thread = _serve_once(server_ssl_context(mtls))
    assert _talk(port, _client_ctx(mtls.ca_file, None, tmp_path)) == b"ok"
    thread.join(5)
    assert result["der"] is None

    required = MtlsConfig(mtls.ca_file, mtls.cert_file, mtls.key_file, require=True, min_version="1.3")
    port, result, thread = _serve_once(server_ssl_context(required))
    with pytest.raises((ssl.SSLError, ConnectionError)):
        if not _talk(port, _client_ctx(mtls.ca_file, None, tmp_path)):
            raise ConnectionError("closed")
    thread.join(5)
    assert isinstance(result.get("error"), ssl.SSLError)


def test_require_rejects_plaintext_request_without_cert(mtls: MtlsConfig) -> None:
    section = {"sources": ["mtls", "anonymous"], "mtls": {
        "ca_file": mtls.ca_file, "cert_file": mtls.cert_file, "key_file": mtls.key_file, "require": True}}
    assert make_server_ssl_config(section) == MtlsConfig(mtls.ca_file, mtls.cert_file, mtls.key_file,
                                                         require=True)
    with pytest.raises(IdentityRequired):
        IdentityResolver.from_config(section).resolve(Credentials(peer_host="10.0.0.9", headers=[]))


def test_unreadable_files_are_config_errors(mtls: MtlsConfig, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ca bundle"):
        server_ssl_context(MtlsConfig(str(tmp_path / "missing.pem"), mtls.cert_file, mtls.key_file))
    with pytest.raises(ConfigError, match="server certificate"):
        server_ssl_context(MtlsConfig(mtls.ca_file, mtls.ca_file, mtls.key_file))
