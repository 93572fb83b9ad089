"""JWKS sources: a file, and a URL served by a real HTTP server on 127.0.0.1 (start, rotation, failures)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from mcpgate.errors import ConfigError, InvalidToken
from mcpgate.identity import Credentials, IdentityResolver, parse_identity_config
from mcpgate.runtime.jwks import JwksSource, jwks_source_for
from tests.identity.conftest import AUDIENCE, ISSUER, NOW, SigningKey, _jwk

Claims = Callable[..., dict[str, Any]]


class JwksServer:
    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.status = 200
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits += 1
                body = json.dumps(outer.doc).encode()
                self.send_response(outer.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/jwks.json"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(rsa_key: SigningKey) -> Iterator[JwksServer]:
    srv = JwksServer({"keys": [rsa_key.jwk]})
    yield srv
    srv.close()


def _section(**jwt: Any) -> dict[str, Any]:
    return {"sources": ["jwt", "anonymous"], "jwt": {"issuer": ISSUER, "audience": AUDIENCE, **jwt}}


def _creds(token: str) -> Credentials:
    return Credentials(peer_host="10.1.2.3", headers=[(b"Authorization", f"Bearer {token}".encode())])


async def _wait_for(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_url_source_fetches_at_start_and_refreshes_on_unknown_kid(
        server: JwksServer, rsa_key: SigningKey, claims: Claims) -> None:
    source = JwksSource.from_url(server.url, refresh_s=3600, min_refresh_s=30)
    await source.start()
    try:
        resolver = IdentityResolver.from_config(_section(jwks_url=server.url), jwks=source, now=lambda: NOW)
        assert resolver.resolve(_creds(rsa_key.sign(claims()))).principal.subject == "user-42"
        assert server.hits == 1

        private = ec.generate_private_key(ec.SECP256R1())
        rotated = SigningKey("ec-rotated", "ES256", private, _jwk(private, "ec-rotated", "ES256"))
        server.doc = {"keys": [rsa_key.jwk, rotated.jwk]}
        token = rotated.sign(claims(sub="new-key-user"))
        with pytest.raises(InvalidToken) as info:  # never blocks the request on a fetch
            resolver.resolve(_creds(token))
        assert "resource_metadata=" in info.value.data["www_authenticate"]
        await _wait_for(lambda: source.generation == 2)
        assert resolver.resolve(_creds(token)).principal.subject == "new-key-user"
        assert server.hits == 2

        with pytest.raises(InvalidToken):  # another unknown kid inside 30 s: no extra fetch
            resolver.resolve(_creds(rotated.sign(claims(), kid="ghost")))
        await asyncio.sleep(0.05)
        assert server.hits == 2
    finally:
        await source.aclose()


async def test_failed_refresh_keeps_last_good_keys(server: JwksServer, rsa_key: SigningKey) -> None:
    source = JwksSource.from_url(server.url)
    await source.start()
    try:
        server.status = 500
        assert await source.refresh() is False
        assert source.errors == 1 and "500" in (source.last_error or "")
        server.status = 200
        server.doc = {"keys": []}
        assert await source.refresh() is False  # an empty set would lock every caller out
        assert [k.kid for k in source.keys_for(rsa_key.kid)] == [rsa_key.kid]
    finally:
        await source.aclose()


async def test_start_fails_closed_when_unreachable(server: JwksServer) -> None:
    server.status = 503
    source = JwksSource.from_url(server.url)
    with pytest.raises(ConfigError, match="cannot fetch jwks"):
        await source.start()
    await source.aclose()


def test_file_source(tmp_path: Path, jwks_doc: dict[str, Any], ec_key: SigningKey, claims: Claims) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(jwks_doc))
    source = jwks_source_for(parse_identity_config(_section(jwks_file=str(path))))
    assert isinstance(source, JwksSource) and source.generation == 1
    resolver = IdentityResolver.from_config(_section(jwks_file=str(path)), jwks=source, now=lambda: NOW)
    assert resolver.resolve(_creds(ec_key.sign(claims()))).principal.source == "jwt"
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="cannot read jwks"):
        JwksSource.from_file(str(path))


def test_jwt_without_key_source_and_plain_http_url_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="key source"):
        IdentityResolver.from_config(_section(jwks_file="/nonexistent"))
    with pytest.raises(ConfigError, match="must be https"):
        IdentityResolver.from_config(_section(jwks_url="http://issuer.example.test/jwks"))
