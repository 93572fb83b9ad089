"""The OPA backend against OPA's real engine (opa-golib-python-bindings) serving the Data API on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import opa_bindings  # installed by the Makefile: a missing engine must fail, not skip
import pytest

from mcpgate.policy import Effect, load_policy
from mcpgate.policy.testing import load_tests, principal_from
from mcpgate.protocol.model import Direction, MessageKind, Operation, OpKind
from mcpgate.runtime.opa import OPA_ERROR_RULE_ID, OpaBackend, opa_input
from tests.policy.conftest import BILLING, call, op

POLICIES = Path(__file__).resolve().parents[2] / "policies"
KIND = {"tools/call": OpKind.TOOL_CALL, "prompts/get": OpKind.PROMPT, "resources/read": OpKind.RESOURCE,
        "sampling/createMessage": OpKind.SERVER_REQUEST}


class _OpaServer:
    def __init__(self, rego: str, delay: float = 0.0) -> None:
        engine = opa_bindings.OpaEngine()
        engine.add_policy("policy.rego", rego)
        self.inputs: list[Any] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                owner.inputs.append(body["input"])
                time.sleep(delay)
                path = self.path.removeprefix("/v1/data/").replace("/", ".")
                try:
                    answer: dict[str, Any] = {"result": engine.eval_document(path, body["input"])}
                except opa_bindings.OpaUndefinedError:
                    answer = {}  # what OPA answers for an undefined document
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def opa() -> Iterator[_OpaServer]:
    server = _OpaServer((POLICIES / "payments.rego").read_text())
    yield server
    server.close()


def _case_op(case: dict[str, Any]) -> Operation:
    key = next((k for k in ("tool", "prompt", "resource") if k in case), None)
    method = case.get("method") or {"tool": "tools/call", "prompt": "prompts/get",
                                     "resource": "resources/read"}[key or "tool"]
    kind = KIND.get(method, OpKind.OTHER)
    return Operation(kind, method, MessageKind.REQUEST, Direction.CLIENT_TO_SERVER, 1,
                     case.get(key) if key else case.get("target"), (), case.get("arguments"))


def test_rego_example_is_equivalent_to_the_yaml_one(opa: _OpaServer) -> None:
    yaml_policy = load_policy([POLICIES / "payments.yaml"])
    backend = OpaBackend(opa.url, path="mcpgate/authz", timeout_s=2)
    cases = load_tests(POLICIES / "payments.tests.yaml").value["tests"]
    for case in cases:
        principal = principal_from(case["principal"])
        operation = _case_op(case)
        want = yaml_policy.decide(principal, operation)
        got = backend.decide(principal, operation, session="s1", protocol_version="2025-06-18")
        assert got.effect is want.effect, case["name"]
        assert set(got.rule_ids) == set(want.rule_ids), case["name"]
        assert got.would_deny_rule_ids == want.would_deny_rule_ids, case["name"]
        assert got.hidden is want.hidden, case["name"]
        assert got.revision == "opa"
    assert len(opa.inputs) == len(cases)
    backend.close()


def test_input_document(opa: _OpaServer) -> None:
    backend = OpaBackend(opa.url, timeout_s=2)
    operation = call("refund", {"amount": 5})
    backend.decide(BILLING, operation, session="sess-1", protocol_version="2025-11-25")
    assert opa.inputs[-1] == opa_input(BILLING, operation, session="sess-1", protocol_version="2025-11-25")
    assert opa.inputs[-1] == {
        "principal": {"id": BILLING.id, "source": "mtls", "trust_domain": "cluster.local",
                      "namespace": "payments", "service_account": "billing", "claims": {}, "scopes": [],
                      "groups": [], "anonymous": False},
        "operation": {"kind": "tool", "method": "tools/call", "direction": "c2s", "target": "refund",
                      "targets": []},
        "target": "refund", "arguments": {"amount": 5}, "session": "sess-1",
        "protocol_version": "2025-11-25",
    }


def test_plumbing_and_invalid_operations_do_not_ask_opa(opa: _OpaServer) -> None:
    backend = OpaBackend(opa.url)
    d = backend.decide(BILLING, op("initialize"))
    assert d.allowed and d.rule_ids == ("builtin:protocol",)
    bad = call("refund")
    bad.invalid = "`params.name` of `tools/call` must be a string"
    d = backend.decide(BILLING, bad)
    assert not d.allowed and d.rule_ids == ("builtin:invalid",)
    assert opa.inputs == []


def _dead_url() -> str:
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}"


def test_fail_closed_when_unreachable() -> None:
    d = OpaBackend(_dead_url(), timeout_s=0.5).decide(BILLING, call("get_balance"))
    assert d.effect is Effect.DENY and d.rule_ids == (OPA_ERROR_RULE_ID,)
    assert "fail closed" in d.reason


def test_fail_closed_on_timeout() -> None:
    slow = _OpaServer((POLICIES / "payments.rego").read_text(), delay=1.0)
    try:
        t0 = time.monotonic()
        d = OpaBackend(slow.url, timeout_s=0.2).decide(BILLING, call("get_balance"))
        assert time.monotonic() - t0 < 0.9
        assert d.effect is Effect.DENY and d.rule_ids == (OPA_ERROR_RULE_ID,)
    finally:
        slow.close()


def test_fail_closed_on_undefined_or_malformed_answers(opa: _OpaServer) -> None:
    d = OpaBackend(opa.url, path="nothing/here").decide(BILLING, call("get_balance"))
    assert d.effect is Effect.DENY and d.rule_ids == (OPA_ERROR_RULE_ID,)
    assert "no boolean `allow` at `data.nothing.here`" in d.reason
    odd = _OpaServer('package x\nimport rego.v1\nallow := "yes"\n')
    try:
        d = OpaBackend(odd.url, path="x").decide(BILLING, call("get_balance"))
        assert d.effect is Effect.DENY and d.rule_ids == (OPA_ERROR_RULE_ID,)
    finally:
        odd.close()


async def test_async_decide(opa: _OpaServer) -> None:
    backend = OpaBackend(opa.url, timeout_s=2)
    try:
        d = await backend.adecide(BILLING, call("refund", {"amount": 50}))
        assert d.allowed and d.rule_ids == ("billing-refunds",)
        d = await backend.adecide(BILLING, call("delete_x"))
        assert not d.allowed and d.rule_ids == ("no-destructive",) and d.hidden
    finally:
        await backend.aclose()
    dead = OpaBackend(_dead_url(), timeout_s=0.5)
    assert (await dead.adecide(BILLING, call("x"))).rule_ids == (OPA_ERROR_RULE_ID,)
    await dead.aclose()


def test_section_and_url_validation() -> None:
    from mcpgate.errors import ConfigError
    b = OpaBackend.from_section({"url": "https://opa.example:9443", "timeout_s": 1})
    assert b.path == "mcpgate/authz" and b.timeout_s == 1.0
    with pytest.raises(ConfigError):
        OpaBackend("opa:8181")


# ------------------------------------------------------------------------------------ list filtering

LISTS: dict[str, list[str]] = {
    "tools/list": ["get_balance", "list_accounts", "search_customers", "refund", "delete_customer",
                   "transfer", "get_*weird", "explain_fee"],
    "prompts/list": ["explain_fee", "explain_refund", "draft_email"],
    "resources/list": ["ledger://accounts/ACC-1", "ledger://accounts/ACC-1/transactions",
                       "ledger://accounts/ACC-1/owner", "file:///etc/passwd"],
    "resources/templates/list": ["ledger://accounts/{account}", "ledger://accounts/{account}/transactions",
                                 "file:///{path}"],
}


@pytest.mark.parametrize("method", sorted(LISTS))
async def test_rego_list_filtering_is_equivalent_to_the_yaml_one(opa: _OpaServer, method: str) -> None:
    """One OPA query per list answer; the same entries survive as with payments.yaml, in order."""
    from mcpgate.policy import filter_list_items, filter_list_result
    from mcpgate.policy.methods import LIST_METHODS
    from tests.policy.conftest import ALICE, ANON, SUPPORT

    yaml_policy = load_policy([POLICIES / "payments.yaml"])
    backend = OpaBackend(opa.url, timeout_s=2)
    key, field, _ = LIST_METHODS[method]
    result = {key: [{field: n} for n in LISTS[method]], "nextCursor": "c2"}
    try:
        for who in (BILLING, SUPPORT, ALICE, ANON):
            before = len(opa.inputs)
            visible = await backend.avisible(who, op(method, kind=OpKind.LIST), LISTS[method])
            assert isinstance(visible, frozenset), visible
            assert len(opa.inputs) == before + 1, "one query per list answer"
            assert opa.inputs[-1]["list"]["names"] == LISTS[method]
            want = filter_list_result(yaml_policy, who, method, result)
            got = filter_list_items(method, result, visible.__contains__)
            assert got == want, (who.id, method, got, want)
    finally:
        await backend.aclose()


async def test_list_filtering_fails_closed(opa: _OpaServer) -> None:
    """OPA down, or a policy without `visible_names`: the list is withheld by `opa:error`, never shown."""
    dead = OpaBackend(_dead_url(), timeout_s=0.5)
    d = await dead.avisible(BILLING, op("tools/list", kind=OpKind.LIST), ["refund"])
    assert not isinstance(d, frozenset) and not d.allowed and d.rule_ids == (OPA_ERROR_RULE_ID,)
    await dead.aclose()
    for rego in ('package mcpgate.authz\nimport rego.v1\nallow := true\n',
                 'package mcpgate.authz\nimport rego.v1\nallow := true\nvisible_names := ["a", 1]\n'):
        odd = _OpaServer(rego)
        b = OpaBackend(odd.url, timeout_s=2)
        try:
            d = await b.avisible(BILLING, op("tools/list", kind=OpKind.LIST), ["a"])
            assert not isinstance(d, frozenset) and d.rule_ids == (OPA_ERROR_RULE_ID,), d
            assert "visible_names" in d.reason
        finally:
            await b.aclose()
            odd.close()
