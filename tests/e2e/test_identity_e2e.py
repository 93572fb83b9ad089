"""Identity end to end through `python -m mcpgate serve` with real artefacts and the official Python SDK client.

mTLS terminated by mcpgate (a generated CA, a 127.0.0.1 server certificate, SPIFFE client certificates); JWT
bearer tokens (RS256, a JWKS file, then a JWKS URL served on loopback with a key rotation); the 401 challenge,
the RFC 9728 metadata document, and proof from a header-recording upstream (the example server behind an ASGI
middleware) that the token is not forwarded unless `forward_token: true`.
"""

from __future__ import annotations

import json
import socket
import ssl
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from examples.procs import Proc, free_port
from tests.e2e.pki import Pki, RsaKey, client_context, jwks, make_pki
from tests.e2e.servers import JwksServer, RecordingUpstream

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("identity-e2e")]

ROOT = Path(__file__).resolve().parents[2]
BILLING = "spiffe://cluster.local/ns/payments/sa/billing"
SUPPORT = "spiffe://cluster.local/ns/support/sa/agent"
ISSUER = "https://auth.example.test"
AUDIENCE = "https://mcp.example.test/mcp"
PRM_URL = "https://mcp.example.test/.well-known/oauth-protected-resource/mcp"
INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "identity-e2e", "version": "1"}}}
POST_HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}

JWT_POLICY = """\
apiVersion: mcpgate.dev/v1
kind: Policy
metadata: {name: jwt-e2e}
defaults: {effect: deny, hidden_as_unknown: false}
rules:
  - id: payments-writers
    effect: allow
    principals: [{source: jwt, scopes: [payments.write]}]
    tools: [refund, get_balance]
  - id: support-team-reads
    effect: allow
    principals: [{claims: {team: support}, scopes: [payments.read]}]
    tools: [get_balance, search_customers]
  - id: no-contractor-refunds
    effect: deny
    principals: [{groups: [contractors]}]
    tools: refund
"""


@dataclass
class Gateway:
    proc: Proc
    port: int
    admin: int
    audit: Path
    scheme: str = "http"

    @property
    def base(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.base}/mcp"

    def metric(self, name: str, **labels: str) -> float:
        text = httpx.get(f"http://127.0.0.1:{self.admin}/metrics", timeout=5).text
        want = ",".join(f'{k}="{v}"' for k, v in labels.items())
        for line in text.splitlines():
            head, _, value = line.rpartition(" ")
            if head == name or (head.startswith(name + "{") and all(p in head for p in want.split(","))):
                return float(value)
        return 0.0

    def audit_records(self, predicate: Any, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Audit records matching `predicate`, polling while the log's writer thread catches up."""
        deadline = time.monotonic() + timeout
        while True:
            lines = self.audit.read_text().splitlines() if self.audit.exists() else []
            found = [r for r in map(json.loads, lines) if r.get("type") == "op" and predicate(r)]
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.05)


def _start_gateway(tmp: Path, name: str, upstream: str, identity: dict[str, Any], policy: str,
                   use_procs: Any, scheme: str = "http") -> Gateway:
    port, admin = free_port(), free_port()
    cfg = tmp / f"{name}.yaml"
    cfg.write_text(
        f"listen: 127.0.0.1:{port}\n"
        f"upstream: {{url: {upstream}}}\n"
        f"admin: {{listen: 127.0.0.1:{admin}}}\n"
        f"identity: {json.dumps(identity)}\n"
        f"policy: {{files: [{policy}], reload: {{watch: false}}}}\n"
        f"audit: {{path: audit-{name}.jsonl}}\n")
    proc = Proc(name, [sys.executable, "-m", "mcpgate", "serve", "--config", str(cfg)], port,
                tmp / f"{name}.log").start()
    use_procs(proc)
    try:
        proc.wait_accepting()
        proc.wait_http_ok(f"http://127.0.0.1:{admin}/healthz")
    except BaseException:
        proc.stop()
        raise
    return Gateway(proc, port, admin, tmp / f"audit-{name}.jsonl", scheme)


# -- fixtures ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("identity-e2e")


@pytest.fixture(scope="module")
def upstream() -> Iterator[RecordingUpstream]:
    up = RecordingUpstream().start()
    yield up
    up.stop()


@pytest.fixture(scope="module")
def module_procs() -> Iterator[list[Proc]]:
    procs: list[Proc] = []
    yield procs
    for p in procs:
        p.stop()


@pytest.fixture
def procs(module_procs: list[Proc], use_procs: Any) -> list[Proc]:
    use_procs(*module_procs)  # every gateway's log is attached when a test fails
    return module_procs


@pytest.fixture(scope="module")
def pki(tmp: Path) -> Pki:
    return make_pki(tmp, {"billing": BILLING, "support": SUPPORT})


@pytest.fixture(scope="module")
def mtls_gw(tmp: Path, pki: Pki, upstream: RecordingUpstream, module_procs: list[Proc]) -> Gateway:
    (tmp / "payments.yaml").write_text((ROOT / "policies" / "payments.yaml").read_text())
    identity = {"sources": ["mtls"], "allow_anonymous": False,
                "mtls": {"ca_file": pki.ca_file, "cert_file": pki.server[0], "key_file": pki.server[1],
                         "require": True}}
    gw = _start_gateway(tmp, "gw-mtls", upstream.url, identity, "payments.yaml", module_procs.append, "https")
    return gw


@pytest.fixture(scope="module")
def signing_key() -> RsaKey:
    return RsaKey.generate("e2e-1")


@pytest.fixture(scope="module")
def jwt_gw(tmp: Path, signing_key: RsaKey, upstream: RecordingUpstream, module_procs: list[Proc]) -> Gateway:
    (tmp / "jwks.json").write_text(json.dumps(jwks(signing_key)))
    (tmp / "jwt-policy.yaml").write_text(JWT_POLICY)
    identity = {"sources": ["jwt"], "allow_anonymous": False, "upstream_principal_header": "x-mcpgate-principal",
                "jwt": {"jwks_file": str(tmp / "jwks.json"), "issuer": ISSUER, "audience": AUDIENCE,
                        "algorithms": ["RS256"], "leeway_s": 5,
                        "scopes_supported": ["payments.read", "payments.write"]}}
    return _start_gateway(tmp, "gw-jwt", upstream.url, identity, "jwt-policy.yaml", module_procs.append)


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "iat": now, "nbf": now - 5,
                            "exp": now + 600, "scope": "payments.read payments.write"}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


# -- SDK client helpers -------------------------------------------------------------------------------------

async def _sdk(url: str, *, headers: dict[str, str] | None = None, tls: ssl.SSLContext | None = None) -> Any:
    import httpx2
    from mcp.client import Client
    from mcp.client.streamable_http import streamable_http_client

    http = httpx2.AsyncClient(headers=headers or {}, verify=tls if tls is not None else True,
                              timeout=httpx2.Timeout(10.0))
    return Client(streamable_http_client(url, http_client=http))


async def _call(url: str, tool: str, args: dict[str, Any], **kw: Any) -> tuple[bool, str]:
    from mcp.shared.exceptions import MCPError

    async with await _sdk(url, **kw) as client:
        try:
            result = await client.call_tool(tool, args)
        except MCPError as err:
            return False, str(err)
        return not result.is_error, "".join(getattr(c, "text", "") for c in result.content)


async def _tools(url: str, **kw: Any) -> list[str]:
    async with await _sdk(url, **kw) as client:
        return sorted(t.name for t in (await client.list_tools()).tools)


def _raw_tls_exchange(port: int, ctx: ssl.SSLContext, request: bytes) -> bytes:
    """Handshake, send one request, read the answer; TLS alerts surface as `ssl.SSLError`."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        tls.sendall(request)
        out = b""
        while b"\r\n\r\n" not in out:
            chunk = tls.recv(4096)
            if not chunk:
                break
            out += chunk
        return out


_GET_UNKNOWN = b"GET /not-mcp HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n"


# -- mTLS ---------------------------------------------------------------------------------------------------

async def test_mtls_billing_workload_refunds(mtls_gw: Gateway, pki: Pki, procs: list[Proc]) -> None:
    before = mtls_gw.metric("mcpgate_identity_sources_total", source="mtls")
    ok, text = await _call(mtls_gw.url, "refund", {"account": "ACC-1001", "amount": 25, "reason": "dup"},
                           tls=client_context(pki.ca_file, pki.clients["billing"]))
    assert ok, text
    records = mtls_gw.audit_records(lambda r: r["method"] == "tools/call" and r["target"] == "refund"
                                    and r["principal"] == BILLING)
    assert records, "the allowed refund was not audited under the billing SPIFFE id"
    assert records[-1]["auth"] == "mtls"
    assert records[-1]["decision"] == "allow" and records[-1]["rules"] == ["billing-refunds"]
    assert mtls_gw.metric("mcpgate_identity_sources_total", source="mtls") > before


async def test_mtls_support_workload_cannot_see_or_call_refund(mtls_gw: Gateway, pki: Pki,
                                                               procs: list[Proc]) -> None:
    tls = client_context(pki.ca_file, pki.clients["support"])
    tools = await _tools(mtls_gw.url, tls=tls)
    assert "search_customers" in tools and "refund" not in tools, tools
    ok, message = await _call(mtls_gw.url, "refund", {"account": "ACC-1001", "amount": 5, "reason": "x"}, tls=tls)
    assert not ok and "unknown tool" in message, message
    denied = mtls_gw.audit_records(lambda r: r["target"] == "refund" and r["principal"] == SUPPORT)
    assert denied and denied[-1]["decision"] == "deny" and denied[-1]["auth"] == "mtls", denied


def test_mtls_control_a_trusted_certificate_gets_http(mtls_gw: Gateway, pki: Pki, procs: list[Proc]) -> None:
    # The same raw exchanges the refusal tests use, with a good certificate: they fail for TLS reasons only.
    ctx = client_context(pki.ca_file, pki.clients["billing"])
    answer = _raw_tls_exchange(mtls_gw.port, ctx, _GET_UNKNOWN)
    assert answer.startswith(b"HTTP/1.1 404"), answer[:200]
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    assert _raw_tls_exchange(mtls_gw.port, ctx, _GET_UNKNOWN).startswith(b"HTTP/1.1 404")


def _assert_refused(port: int, ca_file: str, cert: tuple[str, str] | None) -> None:
    """Refused in the handshake: a TLS 1.2 client's handshake itself fails; under TLS 1.3 the client finishes
    its half before the server checks the certificate, so the refusal shows as a connection closed without
    any HTTP answer. Either way no request is read."""
    tls12 = client_context(ca_file, cert)
    tls12.maximum_version = ssl.TLSVersion.TLSv1_2
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, pytest.raises(ssl.SSLError):
        tls12.wrap_socket(raw, server_hostname="127.0.0.1")
    try:
        answer = _raw_tls_exchange(port, client_context(ca_file, cert), _GET_UNKNOWN)
    except (ssl.SSLError, ConnectionResetError):
        answer = b""
    assert answer == b"", answer[:200]
    with pytest.raises(httpx.TransportError):  # what an ordinary HTTPS client sees
        httpx.get(f"https://127.0.0.1:{port}/mcp", verify=client_context(ca_file, cert), timeout=5)


def test_mtls_client_without_certificate_refused_in_handshake(mtls_gw: Gateway, pki: Pki,
                                                               procs: list[Proc]) -> None:
    _assert_refused(mtls_gw.port, pki.ca_file, None)
    assert mtls_gw.proc.alive


def test_mtls_certificate_from_another_ca_refused(mtls_gw: Gateway, pki: Pki, procs: list[Proc]) -> None:
    # `stranger` carries the billing SPIFFE id, signed by a CA the gateway does not trust.
    _assert_refused(mtls_gw.port, pki.ca_file, pki.clients["stranger"])
    assert mtls_gw.proc.alive


def test_mtls_plain_http_gets_no_answer(mtls_gw: Gateway, procs: list[Proc]) -> None:
    with socket.create_connection(("127.0.0.1", mtls_gw.port), timeout=5) as s:
        s.sendall(_GET_UNKNOWN)
        try:
            answer = s.recv(4096)
        except ConnectionResetError:
            answer = b""
    assert not answer.startswith(b"HTTP/"), answer[:200]


# -- JWT bearer (JWKS file) ---------------------------------------------------------------------------------

def test_jwt_no_token_gets_bearer_challenge(jwt_gw: Gateway, upstream: RecordingUpstream,
                                            procs: list[Proc]) -> None:
    seen = len(upstream.snapshot())
    r = httpx.post(jwt_gw.url, json=INIT, headers=POST_HEADERS, timeout=5)
    assert r.status_code == 401, r.text
    challenge = r.headers["www-authenticate"]
    assert challenge.startswith("Bearer "), challenge
    assert f'resource_metadata="{PRM_URL}"' in challenge, challenge
    assert 'scope="payments.read payments.write"' in challenge and "error=" not in challenge, challenge
    assert r.json()["error"]["data"]["code"] == "identity.required", r.text
    assert len(upstream.snapshot()) == seen, "a request without identity reached the upstream"
    metrics = httpx.get(f"http://127.0.0.1:{jwt_gw.admin}/metrics", timeout=5).text
    failures = [ln for ln in metrics.splitlines()
                if ln.startswith('mcpgate_identity_failures_total{code="identity.required"}')]
    assert failures and float(failures[0].rsplit(" ", 1)[1]) >= 1, "refused callers must show in metrics"


@pytest.mark.parametrize("path", ["/.well-known/oauth-protected-resource/mcp",
                                  "/.well-known/oauth-protected-resource"])
def test_jwt_protected_resource_metadata_served_without_token(jwt_gw: Gateway, path: str,
                                                              procs: list[Proc]) -> None:
    r = httpx.get(jwt_gw.base + path, timeout=5)
    assert r.status_code == 200, (r.status_code, r.headers.get("www-authenticate"), r.text)
    doc = r.json()
    assert doc["resource"] == AUDIENCE
    assert doc["authorization_servers"] == [ISSUER]
    assert doc["scopes_supported"] == ["payments.read", "payments.write"]
    assert doc["bearer_methods_supported"] == ["header"]


@pytest.mark.parametrize(("claims", "why"), [
    ({"exp": int(time.time()) - 120, "nbf": None, "iat": None}, "token has expired"),
    ({"aud": "https://other.example.test/mcp"}, "token audience does not include this resource"),
    ({"iss": "https://evil.example.test"}, "is not accepted"),
], ids=["expired", "wrong-audience", "wrong-issuer"])
def test_jwt_bad_token_gets_invalid_token(jwt_gw: Gateway, signing_key: RsaKey, claims: dict[str, Any],
                                          why: str, procs: list[Proc]) -> None:
    token = signing_key.sign(_claims(**claims))
    r = httpx.post(jwt_gw.url, json=INIT, headers={**POST_HEADERS, "authorization": f"Bearer {token}"},
                   timeout=5)
    assert r.status_code == 401, r.text
    challenge = r.headers["www-authenticate"]
    assert 'error="invalid_token"' in challenge and why in challenge, challenge
    assert f'resource_metadata="{PRM_URL}"' in challenge, challenge


def test_jwt_token_signed_by_unknown_key_refused(jwt_gw: Gateway, signing_key: RsaKey, procs: list[Proc]) -> None:
    forged = RsaKey.generate(signing_key.kid)  # same kid, different key: the signature cannot verify
    r = httpx.post(jwt_gw.url, json=INIT, timeout=5,
                   headers={**POST_HEADERS, "authorization": f"Bearer {forged.sign(_claims())}"})
    assert r.status_code == 401
    assert "signature does not verify" in r.headers["www-authenticate"]


async def test_jwt_scoped_token_calls_tool_and_token_stays_at_gateway(
        jwt_gw: Gateway, signing_key: RsaKey, upstream: RecordingUpstream, procs: list[Proc]) -> None:
    token = signing_key.sign(_claims(sub="alice"))
    seen = len(upstream.snapshot())
    ok, text = await _call(jwt_gw.url, "refund", {"account": "ACC-1002", "amount": 10, "reason": "jwt"},
                           headers={"Authorization": f"Bearer {token}", "X-Mcpgate-Principal": BILLING})
    assert ok, text
    forwarded = upstream.snapshot()[seen:]
    assert len(forwarded) >= 2, "the SDK session (initialize, tools/call, ...) should have reached the upstream"
    leaked = [h for req in forwarded for h in req if h[0] == "authorization" or token in h[1]]
    assert leaked == [], leaked
    # The upstream learns who called from mcpgate's header only; the client's forged copy was removed.
    told = {v for req in forwarded for k, v in req if k == "x-mcpgate-principal"}
    assert told == {f"jwt:{ISSUER}#alice"}, told
    records = jwt_gw.audit_records(lambda r: r["target"] == "refund" and r["principal"] == f"jwt:{ISSUER}#alice")
    assert records and records[-1]["auth"] == "jwt" and records[-1]["rules"] == ["payments-writers"], records


async def test_jwt_token_without_write_scope_denied_by_default(jwt_gw: Gateway, signing_key: RsaKey,
                                                               procs: list[Proc]) -> None:
    token = signing_key.sign(_claims(sub="sam", scope="payments.read", team="support"))
    headers = {"Authorization": f"Bearer {token}"}
    ok, text = await _call(jwt_gw.url, "get_balance", {"account": "ACC-1001"}, headers=headers)
    assert ok, text  # the claim + scope rule does grant reads
    ok, message = await _call(jwt_gw.url, "refund", {"account": "ACC-1001", "amount": 5, "reason": "x"},
                              headers=headers)
    assert not ok
    assert "refund" in message and "denied by default" in message, message


async def test_jwt_group_deny_rule_named(jwt_gw: Gateway, signing_key: RsaKey, procs: list[Proc]) -> None:
    token = signing_key.sign(_claims(sub="carl", groups=["contractors"]))
    ok, message = await _call(jwt_gw.url, "refund", {"account": "ACC-1001", "amount": 5, "reason": "x"},
                              headers={"Authorization": f"Bearer {token}"})
    assert not ok
    assert "no-contractor-refunds" in message, message


# -- JWT bearer (JWKS URL, key rotation) --------------------------------------------------------------------

async def test_jwks_url_and_key_rotation(tmp: Path, upstream: RecordingUpstream, module_procs: list[Proc],
                                         procs: list[Proc]) -> None:
    old, new = RsaKey.generate("old"), RsaKey.generate("new")
    server = JwksServer(jwks(old))
    try:
        (tmp / "jwt-policy.yaml").write_text(JWT_POLICY)
        identity = {"sources": ["jwt"], "allow_anonymous": False,
                    "jwt": {"jwks_url": server.url, "jwks_refresh_s": 300, "issuer": ISSUER,
                            "audience": AUDIENCE, "forward_token": True}}
        gw = _start_gateway(tmp, "gw-jwks-url", upstream.url, identity, "jwt-policy.yaml", module_procs.append)
        assert server.hits >= 1, "the JWKS URL is fetched at start-up"
        old_token = old.sign(_claims(sub="old-key"))
        seen = len(upstream.snapshot())
        ok, text = await _call(gw.url, "get_balance", {"account": "ACC-1003"},
                               headers={"Authorization": f"Bearer {old_token}"})
        assert ok, text
        # Control for the no-passthrough test: with `forward_token: true` the recorder does see the token.
        sent = {v for req in upstream.snapshot()[seen:] for k, v in req if k == "authorization"}
        assert sent == {f"Bearer {old_token}"}, sent

        server.set(jwks(old, new))  # the issuer rotates a key in
        fetched = server.hits
        auth = {**POST_HEADERS, "authorization": f"Bearer {new.sign(_claims(sub='new-key'))}"}
        first = httpx.post(gw.url, json=INIT, headers=auth, timeout=5)
        assert first.status_code == 401, "the new kid is unknown until the refresh it triggers completes"
        assert "no signing key for key id" in first.headers["www-authenticate"]
        deadline = time.monotonic() + 5
        status = first.status_code
        while status == 401 and time.monotonic() < deadline:
            time.sleep(0.05)
            status = httpx.post(gw.url, json=INIT, headers=auth, timeout=5).status_code
        assert status == 200, "the unknown kid triggered a JWKS refresh"
        assert server.hits > fetched
        ok, text = await _call(gw.url, "get_balance", {"account": "ACC-1003"},
                               headers={"Authorization": auth["authorization"]})
        assert ok, text
    finally:
        server.close()
