"""The live dashboard in a real headless Chromium, fed by a real data plane in front of a scripted upstream.

Traffic goes client → ProxyServer → upstream on 127.0.0.1; the hooks feed a `Metrics` and a
`RecentExchanges`; the admin app serves `/dashboard` on uvicorn; the page must show what the metrics say and
keep up as traffic arrives. Wire data (tool names, principals) is attacker-chosen and must render as text.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.support.ui import WebDriverWait

from mcpgate.admin.app import build_admin_app
from mcpgate.exchange import Exchange, Identified, RequestInfo
from mcpgate.identity.model import Principal
from mcpgate.policy.model import Decision, Effect
from mcpgate.protocol.model import Operation, OpKind
from mcpgate.runtime.observer import ObserverHooks
from mcpgate.telemetry import Metrics
from mcpgate.telemetry.recent import RecentExchanges
from mcpgate.telemetry.settings import MetricsSettings
from mcpgate.telemetry.snapshot import DashboardSnapshot
from tests.admin.conftest import AdminServer
from tests.proxy.conftest import UpRequest, json_response

pytestmark = pytest.mark.e2e

XSS_TOOL = "<img src=x onerror=alert(1)>"
XSS_CALLER = "<script>document.title='pwned'</script>"
TOOLS = ["echo", "search", "fail", "delete_repo", XSS_TOOL]
HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}


class DashboardHooks(ObserverHooks):
    """What the runtime does, minus real identity and policy: a caller header stands in for mesh identity
    (identity is not under test here); `delete_*` is denied by rule `no-destructive` and an audit-mode rule
    would deny `search`."""

    def __init__(self, metrics: Metrics, recent: RecentExchanges) -> None:
        self.metrics = metrics
        self.recent = recent

    def identify(self, request: RequestInfo) -> Identified:
        caller = dict(request.headers).get(b"x-test-caller", b"agents/planner").decode()
        ns, _, sa = caller.partition("/")
        principal = Principal(id=f"spiffe://cluster.local/ns/{ns}/sa/{sa}", source="mtls", namespace=ns,
                              service_account=sa)
        return Identified(principal, request.headers)

    def decide(self, principal: Principal, operation: Operation, request: RequestInfo) -> Decision:
        if operation.kind is OpKind.TOOL_CALL and (operation.target or "").startswith("delete_"):
            return Decision(Effect.DENY, ("no-destructive",), "rev-42",
                            f"tool `{operation.target}` denied by rule `no-destructive`")
        if operation.target == "search":
            return Decision(Effect.ALLOW, ("allow-agents",), "rev-42", would_deny=True,
                            would_deny_rule_ids=("audit-search-needs-ticket",))
        return Decision(Effect.ALLOW, ("allow-agents",), "rev-42")

    def filter_result(self, principal: Principal, request_op: Operation, result: Any,
                      request: RequestInfo) -> Any | None:
        if request_op.method == "tools/list" and isinstance(result, dict):
            self.metrics.learn_targets("tool", [t.get("name") for t in result.get("tools", [])])
        return None

    def started(self, exchange: Exchange) -> None:
        self.metrics.started(exchange)

    def finished(self, exchange: Exchange) -> None:
        self.metrics.finished(exchange)
        self.recent.add(exchange)


async def mcp_upstream(req: UpRequest, w: asyncio.StreamWriter) -> None:
    msg = json.loads(req.body)
    if msg["method"] == "tools/list":
        result: dict[str, Any] = {"tools": [{"name": n, "inputSchema": {"type": "object"}} for n in TOOLS]}
    else:
        name = msg["params"]["name"]
        if name == "search":
            await asyncio.sleep(0.02)
        result = {"content": [{"type": "text", "text": name}], "isError": name == "fail"}
    w.write(json_response(json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": result}).encode()))


class Client:
    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}/mcp"
        self.n = 0

    async def send(self, method: str, params: dict[str, Any], caller: str = "agents/planner") -> dict[str, Any]:
        self.n += 1
        body = {"jsonrpc": "2.0", "id": self.n, "method": method, "params": params}
        async with httpx.AsyncClient(timeout=5) as c:
            r = await c.post(self.url, json=body, headers={**HEADERS, "x-test-caller": caller})
        assert r.status_code == 200, r.text
        out: dict[str, Any] = r.json()
        return out

    async def calls(self, plan: dict[str, int], caller: str = "agents/planner") -> None:
        for name, n in plan.items():
            for _ in range(n):
                await self.send("tools/call", {"name": name, "arguments": {}}, caller)


async def start(upstream: Any, gateway: Any) -> tuple[Client, Metrics, DashboardSnapshot]:
    metrics = Metrics(MetricsSettings(caller_label="workload"))
    recent = RecentExchanges(maxlen=200)
    up = await upstream(mcp_upstream)
    gw = await gateway(up.port, DashboardHooks(metrics, recent))
    client = Client(gw.port)
    await client.send("tools/list", {})

    def status() -> dict[str, Any]:
        return {"mode": "enforce", "warnings": ["audit sink failing: disk full (test)"],
                "upstream": f"http://127.0.0.1:{up.port}/mcp",
                "policy": {"revision": "rev-42", "reloads": 3, "reload_errors": 1, "last_error": None}}

    return client, metrics, DashboardSnapshot(metrics, recent, status, window_s=60)


def metric_calls(metrics: Metrics) -> dict[str, int]:
    """tools/call count per tool, straight from the metric series (what Prometheus would scrape)."""
    out: Counter[str] = Counter()
    for view in metrics.operation_views():
        if view.labels[0] == "tools/call":
            out[view.labels[1]] += view.calls
    return dict(out)


READ_TOOLS = """
return Array.from(document.querySelectorAll('#tools-table tbody tr')).filter(tr => tr.cells.length > 1)
  .map(tr => [tr.querySelector('td.tool').textContent, tr.querySelector('td.calls').textContent]);
"""


def page_calls(driver: Any) -> dict[str, int]:
    rows = driver.execute_script(READ_TOOLS)
    return {name: int(calls.replace(",", "")) for name, calls in rows}


async def wait_for(driver: Any, predicate: Any, timeout: float = 8) -> None:
    await asyncio.to_thread(WebDriverWait(driver, timeout, poll_frequency=0.1).until, predicate)


def text(driver: Any, css: str) -> str:
    value: str = driver.execute_script("return document.querySelector(arguments[0]).textContent", css)
    return value


def severe_logs(driver: Any) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"
            and "favicon.ico" not in e["message"]]


async def test_dashboard_shows_live_metrics(upstream: Any, gateway: Any, browser: Any, tmp_path: Path) -> None:
    client, metrics, dash = await start(upstream, gateway)
    await client.calls({"echo": 5, "search": 3, "fail": 2})
    await client.calls({"delete_repo": 2}, caller="ci/bot")
    denied = await client.send("tools/call", {"name": "delete_repo", "arguments": {}})
    assert "no-destructive" in denied["error"]["message"]
    expected = metric_calls(metrics)
    assert expected == {"echo": 5, "search": 3, "fail": 2, "delete_repo": 3}

    with AdminServer(build_admin_app(lambda: {}, metrics.render, dash)) as admin:
        await asyncio.to_thread(browser.get, admin.url + "/dashboard")
        await wait_for(browser, lambda d: page_calls(d) == expected)
        assert text(browser, "#mode") == "enforce"
        assert text(browser, "#revision") == "rev-42"
        assert "1 failed" in text(browser, "#reload")
        assert "audit sink failing" in text(browser, "#warnings")
        assert text(browser, "#kpi-denied") == "3"
        assert text(browser, "#kpi-errors") == "2"
        assert "no-destructive" in text(browser, "#deny-rule")
        assert "ci/bot" in text(browser, "#deny-caller") and "agents/planner" in text(browser, "#deny-caller")
        recent = browser.execute_script(
            "return Array.from(document.querySelectorAll('#recent-table tbody tr'))"
            ".map(tr => Array.from(tr.cells).map(td => td.textContent))")
        assert len(recent) == 14, "tools/list + 13 calls"
        newest = recent[0]
        assert newest[1:6] == ["spiffe://cluster.local/ns/agents/sa/planner", "tools/call", "delete_repo", "deny",
                               "no-destructive"]
        assert newest[6].startswith("denied")
        assert newest[8] == denied["error"]["data"]["decision_id"]
        p99 = browser.execute_script("return document.querySelector('#tools-table tbody tr td.p99').textContent")
        assert p99.endswith("ms") or p99.endswith("µs")

        assert "audit-search-needs-ticket" in text(browser, "#would-deny")

        # more traffic, in waves: the page follows each within a few seconds, and rates appear
        for wave in range(3):
            await client.calls({"echo": 3 + 2 * wave, "search": 1, "fail": wave % 2})
            expected = metric_calls(metrics)
            await wait_for(browser, lambda d, want=expected: page_calls(d) == want)
        assert expected["echo"] == 5 + 3 + 5 + 7
        await wait_for(browser, lambda d: text(d, "#kpi-rate") not in ("—", "0"))
        chart_paths = "return document.querySelectorAll('#rate-chart path').length"
        await wait_for(browser, lambda d: d.execute_script(chart_paths) == 2, timeout=6)

        await asyncio.to_thread(browser.set_window_size, 1280, 1180)
        shot = tmp_path / "dashboard.png"
        assert await asyncio.to_thread(browser.save_screenshot, str(shot))
        data = shot.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
        assert int.from_bytes(data[16:20], "big") == 1280, "IHDR width: the whole page at the window's size"
        keep = os.environ.get("MCPGATE_DASHBOARD_SCREENSHOT")
        if keep:
            shutil.copyfile(shot, keep)
        assert severe_logs(browser) == [], "no script errors or CSP violations"
        await asyncio.to_thread(browser.set_window_size, 1440, 1000)


async def test_wire_data_renders_as_text(upstream: Any, gateway: Any, browser: Any) -> None:
    client, metrics, dash = await start(upstream, gateway)
    await client.calls({XSS_TOOL: 2, "echo": 1}, caller=XSS_CALLER.replace("/", "\\"))
    await client.calls({"delete_repo": 1}, caller="evil/<b>bold</b>")
    assert metric_calls(metrics)[XSS_TOOL] == 2, "the server advertised it: it is a real label value"

    with AdminServer(build_admin_app(lambda: {}, metrics.render, dash)) as admin:
        await asyncio.to_thread(browser.get, admin.url + "/dashboard")
        await wait_for(browser, lambda d: page_calls(d).get(XSS_TOOL) == 2)
        targets = browser.execute_script(
            "return Array.from(document.querySelectorAll('#recent-table td.target')).map(td => td.textContent)")
        assert XSS_TOOL in targets
        assert "evil/<b>bold</b>" in text(browser, "#deny-caller")
        assert browser.execute_script(
            "return document.querySelectorAll('img, script:not([src]), b, [onerror]').length") == 0
        with pytest.raises(NoAlertPresentException):
            _ = browser.switch_to.alert.text
        assert browser.title == "mcpgate dashboard"
        assert severe_logs(browser) == []
