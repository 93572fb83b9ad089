"""Identity + policy enforced through the gateway, with the official Python SDK client and the example server.

An allowed principal calls a tool; a denied one gets the rule-naming error; a hidden tool is absent from its
`tools/list` and reported as unknown; an argument over its limit is refused; a spoofed `l5d-client-id` from an
untrusted peer is ignored; an invalid policy reload leaves the old policy serving.
"""

from __future__ import annotations

import json
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from examples.procs import Proc, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("policy-e2e")]

ROOT = Path(__file__).resolve().parents[2]
BILLING = "billing.payments.serviceaccount.identity.linkerd.cluster.local"
SUPPORT = "agent.support.serviceaccount.identity.linkerd.cluster.local"


def _config(tmp: Path, up_port: int, gw_port: int, admin_port: int, trusted: list[str]) -> Path:
    cfg = tmp / f"mcpgate-{gw_port}.yaml"
    cfg.write_text(
        f"listen: 127.0.0.1:{gw_port}\n"
        f"upstream: {{url: http://127.0.0.1:{up_port}/mcp}}\n"
        f"admin: {{listen: 127.0.0.1:{admin_port}}}\n"
        "identity:\n"
        "  sources: [linkerd, anonymous]\n"
        f"  trusted_proxies: {json.dumps(trusted)}\n"
        "policy:\n"
        "  files: [policy.yaml]\n"
        "  reload: {watch: false}\n"
        f"audit: {{path: audit-{gw_port}.jsonl}}\n")
    return cfg


class Gateway:
    def __init__(self, proc: Proc, port: int, admin: int) -> None:
        self.proc, self.port, self.admin = proc, port, admin

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def status(self) -> dict[str, Any]:
        return dict(httpx.get(f"http://127.0.0.1:{self.admin}/api/status", timeout=5).json())


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, Gateway, Path]]:
    tmp = tmp_path_factory.mktemp("policy-e2e")
    shutil.copy(ROOT / "policies" / "payments.yaml", tmp / "policy.yaml")
    up_port = free_port()
    server = Proc("example-server", [sys.executable, "-m", "examples.server", "--port", str(up_port)],
                  up_port, tmp / "server.log").start()
    gws: list[Gateway] = []
    try:
        server.wait_accepting()
        for trusted in (["127.0.0.0/8"], ["192.0.2.1/32"]):  # the second trusts no local peer
            port, admin = free_port(), free_port()
            cfg = _config(tmp, up_port, port, admin, trusted)
            proc = Proc(f"mcpgate-{port}", [sys.executable, "-m", "mcpgate", "serve", "--config", str(cfg)],
                        port, tmp / f"gw-{port}.log").start()
            proc.wait_accepting()
            gws.append(Gateway(proc, port, admin))
        yield gws[0], gws[1], tmp
    finally:
        for g in gws:
            g.proc.stop()
        server.stop()


async def _session(url: str, identity: str | None) -> Any:
    import httpx2
    from mcp.client import Client
    from mcp.client.streamable_http import streamable_http_client

    headers = {"l5d-client-id": identity} if identity else {}
    http = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(10.0))
    return Client(streamable_http_client(url, http_client=http))


async def _call(url: str, identity: str | None, tool: str, args: dict[str, Any]) -> tuple[bool, str]:
    """(succeeded, text or error message) of one tool call as the SDK client sees it."""
    from mcp.shared.exceptions import MCPError

    async with await _session(url, identity) as client:
        try:
            result = await client.call_tool(tool, args)
        except MCPError as err:
            return False, str(err)
        text = "".join(getattr(c, "text", "") for c in result.content)
        return not result.is_error, text


async def _tools(url: str, identity: str | None) -> list[str]:
    async with await _session(url, identity) as client:
        return sorted(t.name for t in (await client.list_tools()).tools)


async def test_allowed_principal_calls_tool(stack) -> None:
    gw, _, _ = stack
    ok, text = await _call(gw.url, BILLING, "refund", {"account": "ACC-1001", "amount": 50, "reason": "dup"})
    assert ok, text


async def test_argument_over_limit_refused_with_rule_named(stack) -> None:
    gw, _, _ = stack
    ok, message = await _call(gw.url, BILLING, "refund", {"account": "ACC-1001", "amount": 500, "reason": "x"})
    assert not ok
    assert "refund" in message and "default" in message, message


async def test_denied_tool_hidden_from_list_and_unknown_at_call(stack) -> None:
    gw, _, _ = stack
    support_tools = await _tools(gw.url, SUPPORT)
    assert "search_customers" in support_tools
    assert "delete_customer" not in support_tools
    assert "refund" not in support_tools
    ok, message = await _call(gw.url, SUPPORT, "delete_customer", {"id": "c-1001"})
    assert not ok
    assert "unknown tool" in message, message


async def test_anonymous_sees_nothing_and_is_denied(stack) -> None:
    gw, _, _ = stack
    assert await _tools(gw.url, None) == []
    ok, _ = await _call(gw.url, None, "get_balance", {"account": "ACC-1001"})
    assert not ok


async def test_spoofed_linkerd_header_from_untrusted_peer_ignored(stack) -> None:
    _, untrusted_gw, _ = stack
    ok, message = await _call(untrusted_gw.url, BILLING, "refund",
                              {"account": "ACC-1001", "amount": 10, "reason": "spoof"})
    assert not ok, f"the header came from an untrusted peer: the caller is anonymous ({message})"
    metrics = httpx.get(f"http://127.0.0.1:{untrusted_gw.admin}/metrics", timeout=5).text
    dropped = [ln for ln in metrics.splitlines() if ln.startswith("mcpgate_spoofed_headers_dropped_total")]
    assert dropped and float(dropped[0].rsplit(" ", 1)[1]) >= 1, metrics[:2000]


async def test_invalid_reload_keeps_last_good_policy(stack) -> None:
    gw, _, tmp = stack
    before = gw.status()["policy"]
    good = (tmp / "policy.yaml").read_text()
    try:
        (tmp / "policy.yaml").write_text(good + "\n  - id: broken\n    effect: maybe\n")
        assert gw.proc.popen is not None
        gw.proc.popen.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and gw.status()["policy"]["reload_errors"] == before["reload_errors"]:
            time.sleep(0.1)
        after = gw.status()["policy"]
        assert after["reload_errors"] == before["reload_errors"] + 1
        assert after["revision"] == before["revision"]
        assert "policy.yaml" in (after["last_error"] or "")
        ok, text = await _call(gw.url, BILLING, "refund", {"account": "ACC-1002", "amount": 5, "reason": "r"})
        assert ok, text
    finally:
        (tmp / "policy.yaml").write_text(good)


def _opa_gateway(tmp: Path, up_port: int, rego: str, name: str) -> Iterator[Gateway]:
    """A gateway whose decisions come from OPA (its real engine, serving the Data API on loopback)."""
    from tests.policy.test_opa import _OpaServer

    opa = _OpaServer(rego)
    port, admin = free_port(), free_port()
    cfg = tmp / f"mcpgate-{name}.yaml"
    cfg.write_text(
        f"listen: 127.0.0.1:{port}\n"
        f"upstream: {{url: http://127.0.0.1:{up_port}/mcp}}\n"
        f"admin: {{listen: 127.0.0.1:{admin}}}\n"
        "identity: {sources: [linkerd, anonymous], trusted_proxies: [127.0.0.0/8]}\n"
        f"policy: {{backend: opa, opa: {{url: '{opa.url}', path: mcpgate/authz, timeout_s: 2}}}}\n"
        f"audit: {{path: audit-{name}.jsonl}}\n")
    proc = Proc(f"mcpgate-{name}", [sys.executable, "-m", "mcpgate", "serve", "--config", str(cfg)],
                port, tmp / f"gw-{name}.log").start()
    try:
        proc.wait_accepting()
        yield Gateway(proc, port, admin)
    finally:
        proc.stop()
        opa.close()


def _upstream_port(gw: Gateway) -> int:
    return int(gw.status()["upstream"].rsplit(":", 1)[1].split("/")[0])


@pytest.fixture(scope="module")
def opa_gateway(stack: tuple[Gateway, Gateway, Path]) -> Iterator[Gateway]:
    """The OPA gateway in front of the example server (SSE answers)."""
    yield from _opa_gateway(stack[2], _upstream_port(stack[0]), (ROOT / "policies" / "payments.rego").read_text(),
                            "opa")


@pytest.fixture(scope="module")
def opa_json_gateway(stack: tuple[Gateway, Gateway, Path]) -> Iterator[Gateway]:
    """The OPA gateway in front of the example server answering with plain JSON bodies."""
    tmp = stack[2]
    up_port = free_port()
    server = Proc("example-server-json", [sys.executable, "-m", "examples.server", "--port", str(up_port),
                                          "--json-response"], up_port, tmp / "server-json.log").start()
    try:
        server.wait_accepting()
        yield from _opa_gateway(tmp, up_port, (ROOT / "policies" / "payments.rego").read_text(), "opa-json")
    finally:
        server.stop()


async def _listed(url: str, identity: str | None) -> dict[str, list[str]]:
    async with await _session(url, identity) as client:
        return {
            "tools": [t.name for t in (await client.list_tools()).tools],
            "prompts": [p.name for p in (await client.list_prompts()).prompts],
            "resources": [str(r.uri) for r in (await client.list_resources()).resources],
            "templates": [t.uri_template for t in (await client.list_resource_templates()).resource_templates],
        }


@pytest.mark.parametrize("upstream", ["sse", "json"])
async def test_opa_backend_filters_every_list_like_yaml(stack, opa_gateway, opa_json_gateway, upstream) -> None:
    """Lists through OPA show each caller exactly what the YAML policy shows, on SSE and JSON answers."""
    yaml_gw = stack[0]
    gw = opa_gateway if upstream == "sse" else opa_json_gateway
    everything = await _listed(yaml_gw.url, BILLING)
    for identity in (BILLING, SUPPORT, None):
        via_yaml = await _listed(yaml_gw.url, identity)
        via_opa = await _listed(gw.url, identity)
        assert via_opa == via_yaml, (identity, via_yaml, via_opa)
    support = await _listed(gw.url, SUPPORT)
    assert "search_customers" in support["tools"] and "delete_customer" not in support["tools"]
    assert support["tools"] != everything["tools"], "the example must hide something from support"
    assert await _listed(gw.url, None) == {"tools": [], "prompts": [], "resources": [], "templates": []}


async def test_opa_without_visible_names_withholds_lists(stack) -> None:
    """A Rego policy that does not define `visible_names`: lists are refused by `opa:error`, never shown
    unfiltered, and the audit log records the denial."""
    from mcp.shared.exceptions import MCPError

    tmp = stack[2]
    rego = "package mcpgate.authz\nimport rego.v1\nallow := true\n"
    for gw in _opa_gateway(tmp, _upstream_port(stack[0]), rego, "opa-novis"):
        async with await _session(gw.url, SUPPORT) as client:
            with pytest.raises(MCPError) as info:
                await client.list_tools()
            assert "visible_names" in str(info.value) and "fail closed" in str(info.value), str(info.value)
        deadline = time.monotonic() + 5
        records: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            lines = (tmp / "audit-opa-novis.jsonl").read_text().splitlines()
            records = [json.loads(line) for line in lines if line.strip()]
            if any(r.get("method") == "tools/list" for r in records):
                break
            time.sleep(0.1)
        listed = [r for r in records if r.get("method") == "tools/list"]
        assert listed, records
        assert listed[-1]["outcome"] == "denied" and listed[-1]["rules"] == ["opa:error"], listed[-1]


async def test_opa_backend_gives_the_same_decisions(stack, opa_gateway) -> None:
    yaml_gw, _, _ = stack
    cases = [
        (BILLING, "refund", {"account": "ACC-1001", "amount": 50, "reason": "dup"}),
        (BILLING, "refund", {"account": "ACC-1001", "amount": 500, "reason": "x"}),
        (SUPPORT, "search_customers", {"query": "Ada"}),
        (SUPPORT, "delete_customer", {"id": "c-1001"}),
        (None, "get_balance", {"account": "ACC-1001"}),
    ]
    for identity, tool, args in cases:
        via_yaml = await _call(yaml_gw.url, identity, tool, args)
        via_opa = await _call(opa_gateway.url, identity, tool, args)
        assert via_opa[0] == via_yaml[0], (identity, tool, via_yaml, via_opa)
    assert opa_gateway.status()["backend"] == "opa"


async def test_data_plane_counters_reach_metrics(stack) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    gw, _, _ = stack
    ok, text = await _call(gw.url, BILLING, "get_balance", {"account": "ACC-1001"})
    assert ok, text
    families = {f.name: f for f in text_string_to_metric_families(
        httpx.get(f"http://127.0.0.1:{gw.admin}/metrics", timeout=5).text)}
    forwarded = {s.labels["direction"]: s.value for s in families["mcpgate_forwarded_bytes"].samples}
    assert forwarded["c2s"] > 0 and forwarded["s2c"] > 0
    assert "mcpgate_sse_streams_open" in families
