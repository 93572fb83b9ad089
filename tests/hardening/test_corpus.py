"""Every bad-input corpus case against a live gateway: no crash, no hang, typed rejection, nothing forwarded.

Cases live in `corpus/cases.yaml` (one entry per case, class S1..S19); multi-step cases are the scenarios
at the end of this file. A case marked `xfail` there is a reported gateway bug and flips when fixed.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from tests.hardening.conftest import (
    LIMITS,
    Exchanged,
    Response,
    Rig,
    RigFactory,
    _principal,
    assert_healthy,
    exchange_raw,
    post,
)
from tests.hardening.corpus_loader import Case, D, E, load_cases
from tests.hardening.sse_oracle import whatwg_events
from tests.proxy.conftest import SSE_HEAD, UpRequest, chunk, json_response

CASES = load_cases()


def _param(case: Case) -> Any:
    marks = [pytest.mark.xfail(strict=True, reason=case.xfail)] if case.xfail else []
    return pytest.param(case, id=f"{case.cls}:{case.id}", marks=marks)


def _error(resp: Response) -> dict[str, Any]:
    try:
        doc = json.loads(resp.body)
    except ValueError:
        raise AssertionError(f"HTTP {resp.status} without a JSON-RPC body: {resp.body[:200]!r}") from None
    assert isinstance(doc, dict) and isinstance(doc.get("error"), dict), doc
    return doc["error"]  # type: ignore[no-any-return]


def _typed_code(resp: Response) -> str:
    err = _error(resp)
    code = (err.get("data") or {}).get("code")
    assert isinstance(code, str) and err.get("message"), err
    assert isinstance(err.get("code"), int)
    return code


def _is_denial(resp: Response) -> bool:
    if resp.status == 202 and not resp.body:
        return True  # a denied notification is dropped with 202
    if resp.status != 200:
        return False
    try:
        doc = json.loads(resp.body)
    except ValueError:
        return False
    msgs = doc if isinstance(doc, list) else [doc]
    return bool(msgs) and all(isinstance(m, dict) and isinstance(m.get("error"), dict)
                              and (m["error"].get("data") or {}).get("code") == "policy.denied" for m in msgs)


def _is_rejection(resp: Response) -> bool:
    if not 400 <= resp.status < 500:
        return False
    if resp.status in (404, 405):
        return True  # no such endpoint / method: plain statuses are fine here
    return _typed_code(resp).split(".")[0] in ("protocol", "identity")


def _header_names(req: UpRequest) -> set[bytes]:
    return {k.lower() for k, _ in req.headers}


def _check_upstream(case: Case, rig: Rig, before: int, got: Exchanged) -> None:
    spec = case.spec
    reqs = rig.up.requests[before:]
    if "upstream_requests" in spec:
        assert len(reqs) == spec["upstream_requests"], [r.body[:120] for r in reqs]
    if "upstream_requests_max" in spec:
        assert len(reqs) <= spec["upstream_requests_max"], [r.body[:120] for r in reqs]
    for needle in [spec["upstream_not_contains"]] if "upstream_not_contains" in spec else []:
        for r in reqs:
            assert needle.encode() not in r.body, f"upstream received `{needle}`: {r.body[:300]!r}"
    for name in spec.get("upstream_lacks", []):
        for r in reqs:
            assert name.encode().lower() not in _header_names(r), f"upstream received header `{name}`"
    if spec.get("upstream_host"):
        for r in reqs:
            hosts = [v for k, v in r.headers if k.lower() == b"host"]
            assert hosts == [b"127.0.0.1:%d" % rig.up.port], hosts
    known = {E, D, case.body}
    for r in reqs:
        if r.method == b"POST" and r.body not in known:
            # Only the batch filter may rewrite a body; anything else forwarded must be what was sent.
            assert isinstance(json.loads(r.body), list), f"upstream got a body no one sent: {r.body[:200]!r}"
    if "principal" in spec:
        ids = {_principal(ex.principal).id for ex in rig.hooks.finished_exchanges}
        assert ids <= {spec["principal"]}, ids


async def _run_case(case: Case, rig: Rig) -> None:
    spec = case.spec
    want = spec.get("responses", 1)
    before = len(rig.up.requests)
    got = await exchange_raw(rig.port, case.request, want=want)
    assert not got.timed_out, f"no answer and no close within the deadline ({got.elapsed:.1f}s)"
    assert len(got.responses) == want or (case.expect in ("reject", "blocked") and got.closed), \
        f"expected {want} responses, got {len(got.responses)} (closed={got.closed})"
    for resp in got.responses:
        assert resp.status < 500, f"gateway answered HTTP {resp.status}: {resp.body[:300]!r}"
    first = got.responses[0] if got.responses else None
    reqs = lambda: rig.up.requests[before:]  # noqa: E731

    if case.expect == "reject":
        assert first is not None, "rejected without an answer"
        assert first.status == spec["status"], (first.status, first.body[:300])
        codes = spec.get("codes") or [spec["code"]]
        assert _typed_code(first) in codes, first.body[:300]
        assert reqs() == [], "a rejected request reached the upstream"
    elif case.expect == "deny":
        assert first is not None and _is_denial(first), (first and (first.status, first.body[:300]))
        assert reqs() == [], "a denied request reached the upstream"
    elif case.expect == "blocked":
        assert first is not None, "blocked without an answer"
        assert _is_denial(first) or _is_rejection(first), (first.status, first.body[:300])
        assert reqs() == [], "a blocked request reached the upstream"
    elif case.expect == "forward":
        assert first is not None and first.status == 200, (first and (first.status, first.body[:300]))
        [up] = reqs()
        assert up.body == (case.body or E), "forwarded body differs from what the client sent"
    elif case.expect == "safe":
        for resp in got.responses:
            assert resp.status in (200, 202) or _is_rejection(resp) or _is_denial(resp), resp
    else:  # pragma: no cover - corpus schema
        raise AssertionError(f"unknown expectation `{case.expect}`")
    _check_upstream(case, rig, before, got)


@pytest.mark.parametrize("case", [_param(c) for c in CASES if "scenario" not in c.spec
                                  and "upstream_sse" not in c.spec])
async def test_request_case(case: Case, rig: RigFactory) -> None:
    r = await rig(identity=case.spec.get("identity"))
    t0 = time.monotonic()
    try:
        await _run_case(case, r)
    finally:
        await assert_healthy(r.port)  # never a crash: the gateway still serves a normal call
    assert time.monotonic() - t0 < 15


# --------------------------------------------------------------------------------------------- S15: SSE


@pytest.mark.parametrize("case", [_param(c) for c in CASES if "upstream_sse" in c.spec])
async def test_sse_case(case: Case, rig: RigFactory) -> None:
    sent = [e.encode() for e in case.spec["upstream_sse"]]

    async def reply(req: UpRequest, w: asyncio.StreamWriter) -> None:
        if b'"health"' in req.body:
            w.write(json_response(b'{"jsonrpc":"2.0","id":"health","result":{"content":[]}}'))
            return
        status = case.spec.get("upstream_status", 200)
        w.write(SSE_HEAD.replace(b"200 OK", b"%d OK" % status))
        for ev in sent:
            w.write(chunk(ev))
        w.write(b"0\r\n\r\n")

    r = await rig(reply=reply)
    got = await exchange_raw(r.port, post(E))
    assert not got.timed_out
    [resp] = got.responses
    assert 200 <= resp.status < 300
    upstream_view = [whatwg_events(ev)[0] for ev in sent]
    expected = [upstream_view[i] for i in case.spec["events"]]
    assert whatwg_events(resp.body) == expected
    await assert_healthy(r.port)


# --------------------------------------------------------------------------------------------- scenarios


async def _trickle(port: int, head: bytes, drip: bytes, every: float, limit: float) -> float:
    """Send `head`, then `drip` one byte per `every` s; return when the gateway closed (or `limit`)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    t0 = time.monotonic()
    writer.write(head)

    async def drip_bytes() -> None:
        for b in drip:
            await asyncio.sleep(every)
            writer.write(bytes([b]))

    dripper = asyncio.create_task(drip_bytes())
    try:
        while time.monotonic() - t0 < limit:
            try:
                data = await asyncio.wait_for(reader.read(65536), limit - (time.monotonic() - t0))
            except TimeoutError:
                break
            except ConnectionError:
                return time.monotonic() - t0
            if not data:
                return time.monotonic() - t0
        return limit
    finally:
        dripper.cancel()
        writer.close()


async def scenario_slow_headers(rig: RigFactory) -> None:
    r = await rig()
    timeout = LIMITS["client_header_timeout_s"]
    req = post(E)
    closed_after = await _trickle(r.port, req[:5], req[5:], 0.2, timeout + 2)
    assert closed_after < timeout + 1.5, f"slow headers held the connection {closed_after:.1f}s"
    assert r.up.requests == []
    await assert_healthy(r.port)


async def scenario_slow_body(rig: RigFactory) -> None:
    r = await rig()
    timeout = LIMITS["client_header_timeout_s"]
    req = post(E)
    split = req.index(b"\r\n\r\n") + 4
    closed_after = await _trickle(r.port, req[:split], req[split:], 0.2, timeout + 2)
    await assert_healthy(r.port)
    assert closed_after < timeout + 1.5, f"a slow body held the connection {closed_after:.1f}s"


LINKERD_A = b"billing.payments.serviceaccount.identity.linkerd.cluster.local"
LINKERD_B = b"intruder.other.serviceaccount.identity.linkerd.cluster.local"
INIT = (b'{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18",'
        b'"capabilities":{},"clientInfo":{"name":"t","version":"1"}}}')


async def scenario_session_cross_principal(rig: RigFactory) -> None:
    async def reply(req: UpRequest, w: asyncio.StreamWriter) -> None:
        doc = json.loads(req.body)
        body = json.dumps({"jsonrpc": "2.0", "id": doc.get("id"), "result": {"protocolVersion": "2025-06-18",
                                                                            "content": []}}).encode()
        w.write(json_response(body, headers=[(b"mcp-session-id", b"sess-0123456789abcdef")]))

    r = await rig(reply=reply, identity={"sources": ["linkerd"]})
    init = await exchange_raw(r.port, post(INIT, headers=[(b"l5d-client-id", LINKERD_A)]))
    assert init.responses[0].status == 200
    session = [(b"mcp-session-id", b"sess-0123456789abcdef")]
    before = len(r.up.requests)
    other = await exchange_raw(r.port, post(E, headers=[*session, (b"l5d-client-id", LINKERD_B)]))
    [resp] = other.responses
    assert resp.status == 404, (resp.status, resp.body)
    assert _typed_code(resp) == "identity.session_mismatch"
    assert len(r.up.requests) == before, "another principal's call on the session reached the upstream"
    for method in (b"GET", b"DELETE"):  # hijacking the session's stream, or ending it, is refused too
        head = b"%s /mcp HTTP/1.1\r\nhost: g\r\naccept: text/event-stream\r\nmcp-session-id: " % method
        hijack = await exchange_raw(r.port, head + b"sess-0123456789abcdef\r\nl5d-client-id: " + LINKERD_B
                                    + b"\r\n\r\n")
        assert hijack.responses[0].status == 404, (method, hijack.responses[0])
        assert _typed_code(hijack.responses[0]) == "identity.session_mismatch"
    assert len(r.up.requests) == before, "another principal's request on the session reached the upstream"
    owner = await exchange_raw(r.port, post(E, headers=[*session, (b"l5d-client-id", LINKERD_A)]))
    assert owner.responses[0].status == 200
    assert len(r.up.requests) == before + 1


VICTIM_SID = b"0123456789abcdef0123456789abcdef"


async def _legacy_rig(rig: RigFactory) -> Rig:
    """An HTTP+SSE (2024-11-05) upstream whose `endpoint` event hands principal A the session VICTIM_SID."""
    async def reply(req: UpRequest, w: asyncio.StreamWriter) -> None:
        if req.method == b"GET":
            w.write(SSE_HEAD + chunk(b"event: endpoint\ndata: /messages/?session_id=" + VICTIM_SID + b"\n\n")
                    + b"0\r\n\r\n")
            return
        w.write(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n")

    r = await rig(reply=reply, identity={"sources": ["linkerd"]})
    stream = await exchange_raw(r.port, b"GET /sse HTTP/1.1\r\nhost: g\r\naccept: text/event-stream\r\n"
                                b"l5d-client-id: " + LINKERD_A + b"\r\n\r\n")
    assert b"session_id=" + VICTIM_SID in stream.responses[0].body
    return r


async def _legacy_post(r: Rig, query: bytes, extra: bytes = b"") -> Response:
    head = (b"POST /messages/?" + query + b" HTTP/1.1\r\nhost: g\r\ncontent-type: application/json\r\n"
            b"l5d-client-id: " + LINKERD_B + b"\r\n" + extra)
    got = await exchange_raw(r.port, head + b"content-length: %d\r\n\r\n" % len(E) + E)
    return got.responses[0]


async def scenario_legacy_session_cross_principal(rig: RigFactory) -> None:
    r = await _legacy_rig(rig)
    before = len(r.up.requests)
    resp = await _legacy_post(r, b"session_id=" + VICTIM_SID)
    assert resp.status == 404 and _typed_code(resp) == "identity.session_mismatch"
    assert len(r.up.requests) == before


async def scenario_legacy_session_repeated_param(rig: RigFactory) -> None:
    """`?session_id=mine&session_id=victim`: Starlette (the Python SDK) reads the last one."""
    r = await _legacy_rig(rig)
    before = len(r.up.requests)
    resp = await _legacy_post(r, b"session_id=ffffffffffffffffffffffffffffffff&session_id=" + VICTIM_SID)
    assert 400 <= resp.status < 500, (resp.status, resp.body)
    assert len(r.up.requests) == before, "a message reached another principal's legacy session"


async def scenario_legacy_session_header_and_query(rig: RigFactory) -> None:
    """`Mcp-Session-Id: mine` plus `?session_id=victim`: the legacy server routes by the query only."""
    r = await _legacy_rig(rig)
    before = len(r.up.requests)
    resp = await _legacy_post(r, b"session_id=" + VICTIM_SID,
                              b"mcp-session-id: ffffffffffffffffffffffffffffffff\r\n")
    assert 400 <= resp.status < 500, (resp.status, resp.body)
    assert len(r.up.requests) == before, "a message reached another principal's legacy session"


async def scenario_server_request_in_json_response(rig: RigFactory) -> None:
    """A denied server→client request (sampling) in an `application/json` answer: SDK clients act on it."""
    sampling = b'{"jsonrpc":"2.0","id":"s1","method":"sampling/createMessage","params":{"messages":[],"maxTokens":1}}'

    async def reply(req: UpRequest, w: asyncio.StreamWriter) -> None:
        w.write(json_response(sampling))

    r = await rig(reply=reply)
    got = await exchange_raw(r.port, post(E))
    [resp] = got.responses
    assert b"sampling/createMessage" not in resp.body, "a denied server request reached the client"


# --------------------------------------------------------------------------------------------- S13: tokens

JWT_ISSUER = "https://issuer.example.test"
JWT_AUDIENCE = "https://mcp.example.test/mcp"
_JWT_KEY: list[Any] = []


def _jwt_key() -> Any:
    if not _JWT_KEY:  # one RSA key per test process: generating it is the slow part
        from cryptography.hazmat.primitives.asymmetric import rsa
        _JWT_KEY.append(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    return _JWT_KEY[0]


def _jwks() -> Any:
    import jwt as pyjwt

    from mcpgate.identity import KeySet

    doc = json.loads(pyjwt.get_algorithm_by_name("RS256").to_jwk(_jwt_key().public_key()))
    doc.update(kid="k1", use="sig", alg="RS256")
    return KeySet.from_jwks({"keys": [doc]})


def _token(**overrides: Any) -> str:
    import jwt as pyjwt

    now = int(time.time())
    claims: dict[str, Any] = {"iss": JWT_ISSUER, "aud": JWT_AUDIENCE, "sub": "user-42", "iat": now - 10,
                              "exp": now + 300}
    claims.update(overrides)
    return pyjwt.encode({k: v for k, v in claims.items() if v is not None}, _jwt_key(), algorithm="RS256",
                        headers={"kid": "k1"})


async def _jwt_rig(rig: RigFactory, **jwt: Any) -> Rig:
    section = {"sources": ["jwt"], "jwt": {"issuer": JWT_ISSUER, "audience": JWT_AUDIENCE, "jwks_file": "unused",
                                           "required": True, **jwt}}
    return await rig(identity=section, jwks=_jwks())


async def _assert_token_refused(rig: RigFactory, *, token: str | None, target: bytes = b"/mcp",
                                code: str = "identity.invalid_token") -> None:
    r = await _jwt_rig(rig)
    headers = [(b"authorization", b"Bearer " + token.encode())] if token else []
    req = post(E, headers=headers).replace(b"POST /mcp ", b"POST " + target + b" ", 1)
    got = await exchange_raw(r.port, req)
    [resp] = got.responses
    assert resp.status == 401, (resp.status, resp.body[:300])
    assert _typed_code(resp) == code, resp.body[:300]
    challenge = resp.header(b"www-authenticate") or b""
    assert challenge.startswith(b"Bearer ") and b"resource_metadata=" in challenge, challenge
    assert r.up.requests == [], "a refused token still reached the upstream"


async def scenario_token_other_audience(rig: RigFactory) -> None:
    await _assert_token_refused(rig, token=_token(aud="https://other-resource.example.test/mcp"))


async def scenario_token_no_audience(rig: RigFactory) -> None:
    await _assert_token_refused(rig, token=_token(aud=None))


async def scenario_token_expired(rig: RigFactory) -> None:
    now = int(time.time())
    await _assert_token_refused(rig, token=_token(iat=now - 3600, exp=now - 600))


async def scenario_token_missing(rig: RigFactory) -> None:
    await _assert_token_refused(rig, token=None, code="identity.required")


async def scenario_token_in_query(rig: RigFactory) -> None:
    """RFC 6750 §2.3 / MCP authorization: never in the URI, even a valid token, whatever the casing."""
    for target in (b"/mcp?access_token=" + _token().encode(), b"/mcp?x=1&ACCESS_TOKEN=abc",
                   b"/mcp?access%5Ftoken=abc"):
        await _assert_token_refused(rig, token=None, target=target, code="identity.token_in_query")


async def scenario_token_in_query_without_jwt(rig: RigFactory) -> None:
    """No JWT source configured: a query token would still reach the upstream's request line and logs."""
    r = await rig()
    req = post(E).replace(b"POST /mcp ", b"POST /mcp?access_token=secret-value ", 1)
    [resp] = (await exchange_raw(r.port, req)).responses
    assert resp.status == 401 and _typed_code(resp) == "identity.token_in_query", (resp.status, resp.body)
    assert r.up.requests == []


async def scenario_token_valid_not_forwarded(rig: RigFactory) -> None:
    r = await _jwt_rig(rig)
    token = _token().encode()
    for casing in (b"authorization", b"Authorization", b"AUTHORIZATION"):
        got = await exchange_raw(r.port, post(E, headers=[(casing, b"Bearer " + token)]))
        assert got.responses[0].status == 200, got.responses[0].body[:300]
    assert len(r.up.requests) == 3
    for up in r.up.requests:
        assert b"authorization" not in _header_names(up), "the client's token was passed through"
        assert token not in b"".join(v for _, v in up.headers)
    assert [_principal(ex.principal).source for ex in r.hooks.finished_exchanges] == ["jwt"] * 3


async def scenario_token_forwarded_when_configured(rig: RigFactory) -> None:
    """`identity.jwt.forward_token: true` is the one, explicit, way to pass the token to the upstream."""
    section = {"sources": ["jwt"], "jwt": {"issuer": JWT_ISSUER, "audience": JWT_AUDIENCE, "jwks_file": "unused",
                                           "required": True, "forward_token": True}}
    r = await rig(identity=section, jwks=_jwks())
    token = _token().encode()
    got = await exchange_raw(r.port, post(E, headers=[(b"authorization", b"Bearer " + token)]))
    assert got.responses[0].status == 200
    [up] = r.up.requests
    assert (b"authorization", b"Bearer " + token) in [(k.lower(), v) for k, v in up.headers]


SCENARIOS = {
    "token_other_audience": scenario_token_other_audience,
    "token_no_audience": scenario_token_no_audience,
    "token_expired": scenario_token_expired,
    "token_missing": scenario_token_missing,
    "token_in_query": scenario_token_in_query,
    "token_in_query_without_jwt": scenario_token_in_query_without_jwt,
    "token_valid_not_forwarded": scenario_token_valid_not_forwarded,
    "token_forwarded_when_configured": scenario_token_forwarded_when_configured,
    "server_request_in_json_response": scenario_server_request_in_json_response,
    "legacy_session_cross_principal": scenario_legacy_session_cross_principal,
    "legacy_session_repeated_param": scenario_legacy_session_repeated_param,
    "legacy_session_header_and_query": scenario_legacy_session_header_and_query,
    "slow_headers": scenario_slow_headers,
    "slow_body": scenario_slow_body,
    "session_cross_principal": scenario_session_cross_principal,
}


@pytest.mark.parametrize("case", [_param(c) for c in CASES if "scenario" in c.spec])
async def test_scenario_case(case: Case, rig: RigFactory) -> None:
    await SCENARIOS[case.spec["scenario"]](rig)


def test_corpus_is_well_formed() -> None:
    """Every class S1..S16 that applies to a request has cases; ids are unique (checked by the loader)."""
    classes = {c.cls for c in CASES}
    assert {"S1", "S2", "S3", "S4", "S5", "S6", "S7", "S8", "S9", "S10", "S11", "S12", "S13", "S15", "S16"} <= classes
    assert len(CASES) >= 100
    assert all(c.spec.get("why") for c in CASES)
