"""Telemetry and audit through the real gateway: `mcpgate serve` with Linkerd identity, `payments.yaml`, an
audit file and tracing to a real OTLP/HTTP receiver, driven by the official SDK client.

The client's own wire log (every JSON-RPC message it sent, every decision id header it got back) and what
the SDK returned for each call are the independent truth; the scraped metrics, the exported spans, the audit
file and `/api/dashboard` must each agree with it exactly. A separate gateway is killed with SIGKILL under
load to show that no acknowledged audit record is lost.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client
from prometheus_client.parser import text_string_to_metric_families

from examples.procs import ROOT, Proc, free_port
from tests.e2e.observability import RecordingUpstream, Sent, WireLog
from tests.telemetry.test_otlp_export import Receiver, _attrs

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("observability-e2e")]

BILLING = "billing.payments.serviceaccount.identity.linkerd.cluster.local"
SUPPORT = "agent.support.serviceaccount.identity.linkerd.cluster.local"
HTTP_TRACE, HTTP_SPAN = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
META_TRACE, META_SPAN = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
HTTP_TP = f"00-{HTTP_TRACE}-{HTTP_SPAN}-01"
META_TP = f"00-{META_TRACE}-{META_SPAN}-01"


def _config(tmp: Path, up_port: int, admin: int, gw: int, *, policy: bool = True,
            otlp_port: int | None = None, audit: str = "audit.jsonl") -> Path:
    lines = [f"listen: 127.0.0.1:{gw}", f"upstream: {{url: http://127.0.0.1:{up_port}/mcp}}",
             f"admin: {{listen: 127.0.0.1:{admin}}}",
             "identity: {sources: [linkerd, anonymous], trusted_proxies: ['127.0.0.0/8']}",
             f"audit: {{path: {audit}}}"]
    if policy:
        lines.append("policy: {files: [policy.yaml], reload: {watch: false}}")
    if otlp_port is not None:
        lines.append(f"telemetry: {{tracing: {{enabled: true, endpoint: 'http://127.0.0.1:{otlp_port}/v1/traces'}}}}")
    cfg = tmp / f"mcpgate-{gw}.yaml"
    cfg.write_text("\n".join(lines) + "\n")
    return cfg


def _gateway(tmp: Path, cfg: Path, port: int) -> Proc:
    # A short batch delay so spans reach the receiver within the test, not after the SDK's default 5 s.
    return Proc(f"mcpgate-{port}", [sys.executable, "-m", "mcpgate", "serve", "--config", str(cfg)], port,
                tmp / f"gw-{port}.log", env={"OTEL_BSP_SCHEDULE_DELAY": "50"}).start()


def _status(admin: int) -> dict[str, Any]:
    return dict(httpx.get(f"http://127.0.0.1:{admin}/api/status", timeout=5).json())


def _records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mcpgate", "audit", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=30, check=False)


# -- the traffic --------------------------------------------------------------------------------------------

@dataclass
class Traffic:
    tmp: Path
    gw: Proc
    admin: int
    audit: Path
    receiver: Receiver
    wire: WireLog
    calls: Counter[tuple[str, str, str]]  # (tool, ok | tool_error | refused, JSON-RPC code) as the SDK saw it
    meta_call: Sent                  # the call that carried `_meta.traceparent`
    protocol: dict[str, str]         # principal -> protocol version negotiated
    elapsed_s: float


async def _drive(url: str, wire: WireLog, calls: Counter[tuple[str, str, str]], protocol: dict[str, str]) -> None:
    async def call(c: Any, tool: str, args: dict[str, Any], meta: dict[str, Any] | None = None) -> None:
        try:
            result = await c.call_tool(tool, args, meta=meta)
        except MCPError as err:
            calls[(tool, "refused", str(err.code))] += 1
            return
        calls[(tool, "tool_error" if result.is_error else "ok", "")] += 1

    headers = {"l5d-client-id": BILLING, "traceparent": HTTP_TP}
    async with Client(streamable_http_client(url, http_client=wire.client(headers))) as c:  # 2026-07-28
        protocol["billing"] = str(c.protocol_version)
        await c.list_tools()
        await call(c, "get_balance", {"account": "ACC-1001"}, meta={"traceparent": META_TP})
        await call(c, "get_balance", {"account": "ACC-1002"})
        for _ in range(2):
            await call(c, "refund", {"account": "ACC-1003", "amount": 50, "reason": "duplicate"})
            await call(c, "get_balance", {"account": "ACC-9999"})  # the server's own tool error
        for _ in range(3):
            await call(c, "refund", {"account": "ACC-1003", "amount": 500, "reason": "goodwill"})  # over 100
        await call(c, "delete_customer", {"id": "c-1003"})  # no-destructive
    async with Client(streamable_http_client(url, http_client=wire.client({"l5d-client-id": SUPPORT})),
                      mode="legacy") as c:  # initialize + notifications/initialized + a session
        protocol["support"] = str(c.protocol_version)
        await c.list_tools()
        await call(c, "search_customers", {"query": "hopper"})
        await call(c, "refund", {"account": "ACC-1002", "amount": 5, "reason": "asked"})  # hidden from support


@pytest.fixture(scope="module")
def traffic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Traffic]:
    tmp = tmp_path_factory.mktemp("obs-e2e")
    shutil.copy(ROOT / "policies" / "payments.yaml", tmp / "policy.yaml")
    receiver = Receiver()
    up_port, gw_port, admin = free_port(), free_port(), free_port()
    server = Proc("example-server", [sys.executable, "-m", "examples.server", "--port", str(up_port)],
                  up_port, tmp / "server.log").start()
    gw: Proc | None = None
    try:
        server.wait_accepting()
        gw = _gateway(tmp, _config(tmp, up_port, admin, gw_port, otlp_port=receiver.port), gw_port)
        gw.wait_http_ok(f"http://127.0.0.1:{admin}/healthz")
        wire, calls, protocol = WireLog(), Counter[tuple[str, str, str]](), dict[str, str]()
        t0 = time.monotonic()
        anyio.run(_drive, f"http://127.0.0.1:{gw_port}/mcp", wire, calls, protocol)
        elapsed = time.monotonic() - t0
        meta = [s for s, m in wire.operations()
                if m.get("params", {}).get("_meta", {}).get("traceparent") == META_TP]
        assert len(meta) == 1, "the SDK client must put the given `_meta` on the wire"
        yield Traffic(tmp, gw, admin, tmp / "audit.jsonl", receiver, wire, calls, meta[0], protocol, elapsed)
    finally:
        if gw is not None:
            gw.stop()
        server.stop()
        receiver.close()


def _operations(t: Traffic) -> int:
    return sum(1 for _ in t.wire.operations())


def _acked_records(t: Traffic) -> list[dict[str, Any]]:
    """The op records, once the writer has acknowledged one per operation the client sent."""
    n = _operations(t)
    deadline = time.monotonic() + 10
    while _status(t.admin)["audit"]["acked_seq"] < n and time.monotonic() < deadline:
        time.sleep(0.05)
    return [r for r in _records(t.audit) if r["type"] == "op"]


def _metrics(admin: int) -> dict[str, list[Any]]:
    text = httpx.get(f"http://127.0.0.1:{admin}/metrics", timeout=5).text
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


_METRIC_OUTCOME = {"ok": ("allow", "ok"), "tool_error": ("allow", "tool_error"), "refused": ("deny", "denied")}


def _expected_series(t: Traffic) -> Counter[tuple[str, str, str, str]]:
    """(tool, decision, outcome, error_code) -> calls, from what the SDK client saw."""
    out: Counter[tuple[str, str, str, str]] = Counter()
    for (tool, seen, code), n in t.calls.items():
        out[(tool, *_METRIC_OUTCOME[seen], code)] += n
    return out


# -- 1. metrics ----------------------------------------------------------------------------------------------

def test_metrics_count_exactly_the_traffic_sent(traffic: Traffic) -> None:
    t = traffic
    _acked_records(t)
    fams = _metrics(t.admin)
    ops: Counter[tuple[str, str, str, str]] = Counter()
    by_method: Counter[str] = Counter()
    for s in fams["mcpgate_operations"]:
        by_method[s.labels["method"]] += int(s.value)
        if s.labels["method"] == "tools/call" and s.value:
            ops[(s.labels["target"], s.labels["decision"], s.labels["outcome"], s.labels["error_code"])] \
                += int(s.value)
    # Including the code each denial was answered with: -32001, or -32602 where the rule hides the tool.
    assert ops == _expected_series(t)
    assert {code for _, _, code in t.calls} == {"", "-32001", "-32602"}
    assert +by_method == Counter(m["method"] for _, m in t.wire.operations())

    # Latency histograms: one observation per operation, in non-decreasing cumulative buckets.
    hist: dict[tuple[str, ...], dict[str, Any]] = {}
    for s in fams["mcp_server_operation_duration_seconds"]:
        key = tuple(v for k, v in sorted(s.labels.items()) if k != "le")
        h = hist.setdefault(key, {"buckets": []})
        if s.name.endswith("_bucket"):
            h["buckets"].append((float(s.labels["le"]), s.value))
        else:
            h[s.name.rsplit("_", 1)[1]] = s.value
    total, total_s = 0, 0.0
    per_tool: Counter[tuple[str, str, str, str]] = Counter()
    for key, h in hist.items():
        labels = dict(zip(sorted(["caller", "decision", "error_code", "method", "outcome", "protocol_version",
                                  "target"]), key, strict=True))
        counts = [c for _, c in sorted(h["buckets"])]
        assert counts == sorted(counts), f"cumulative buckets must not decrease: {key}"
        assert counts[-1] == h["count"]
        assert h["sum"] > 0
        total += int(h["count"])
        total_s += h["sum"]
        if labels["method"] == "tools/call":
            per_tool[(labels["target"], labels["decision"], labels["outcome"], labels["error_code"])] \
                += int(h["count"])
    assert +per_tool == _expected_series(t)
    assert total == _operations(t)
    assert total_s <= t.elapsed_s  # the client sent one operation at a time: durations cannot add up to more


def test_audit_metrics_reflect_the_writer(traffic: Traffic) -> None:
    """`mcpgate_audit_*` are read from `AuditLog.stats()` at scrape time, not left at their initial 0."""
    records = _acked_records(traffic)
    fams = _metrics(traffic.admin)
    written = fams["mcpgate_audit_records"][0].value
    # The writer counts the op records it wrote.
    lines = _records(traffic.audit)
    assert written == len(records) == len(lines) - 1  # not counting the genesis line
    assert fams["mcpgate_audit_write_errors"][0].value == 0
    assert fams["mcpgate_audit_healthy"][0].value == 1


# -- 2. traces -----------------------------------------------------------------------------------------------

def _spans(t: Traffic, n: int) -> list[Any]:
    deadline = time.monotonic() + 15
    while len(t.receiver.spans()) < n and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # a few batch delays more: a duplicate span would have arrived by now
    return list(t.receiver.spans())


def test_one_span_per_operation_in_the_callers_trace(traffic: Traffic) -> None:
    t = traffic
    records = {r["decision_id"]: r for r in _acked_records(t)}
    spans = _spans(t, len(records))
    by_id = {_attrs(s)["mcpgate.decision_id"]: s for s in spans}
    assert len(spans) == len(by_id) == len(records) == _operations(t)
    assert set(by_id) == set(records)

    billing = {d for s in t.wire.sent if s.traceparent == HTTP_TP for d in s.decision_ids}
    meta_id = t.meta_call.decision_ids
    assert len(meta_id) == 1 and meta_id[0] in billing
    for decision_id, span in by_id.items():
        a, rec = _attrs(span), records[decision_id]
        assert a["mcp.method.name"] == rec["method"]
        assert a.get("mcp.protocol.version") == rec["protocol_version"]
        if rec["method"] == "tools/call":
            assert a["gen_ai.tool.name"] == rec["target"]
            assert a["mcp.protocol.version"] in t.protocol.values()
        assert a.get("error.type") == {"ok": None, "tool_error": "tool_error"}.get(
            rec["outcome"], str(rec["error_code"])), (a, rec)
        trace = span.trace_id.hex()
        if decision_id == meta_id[0]:
            # `_meta.traceparent` is the MCP-level parent; the differing HTTP header becomes a link.
            assert (trace, span.parent_span_id.hex()) == (META_TRACE, META_SPAN)
            assert [(ln.trace_id.hex(), ln.span_id.hex()) for ln in span.links] == [(HTTP_TRACE, HTTP_SPAN)]
        elif decision_id in billing:
            assert (trace, span.parent_span_id.hex()) == (HTTP_TRACE, HTTP_SPAN)
        else:  # the support session sent no trace context: a new trace each
            assert trace not in (HTTP_TRACE, META_TRACE) and not span.parent_span_id
    statuses = {records[d]["outcome"]: s.status.code for d, s in by_id.items()}
    assert statuses["tool_error"] == 2 and statuses["denied"] == 0  # ERROR; a denial is the caller's


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RecordingUpstream, Receiver, int]]:
    tmp = tmp_path_factory.mktemp("obs-upstream")
    upstream, receiver = RecordingUpstream(), Receiver()
    port, admin = free_port(), free_port()
    gw = _gateway(tmp, _config(tmp, upstream.port, admin, port, policy=False, otlp_port=receiver.port), port)
    try:
        gw.wait_http_ok(f"http://127.0.0.1:{admin}/healthz")
        yield upstream, receiver, port
    finally:
        gw.stop()
        upstream.close()
        receiver.close()


@pytest.mark.parametrize("carrier", ["header", "meta"])
def test_upstream_gets_the_callers_trace(recording: tuple[RecordingUpstream, Receiver, int], carrier: str) -> None:
    upstream, receiver, port = recording
    trace, span_id = (HTTP_TRACE, HTTP_SPAN) if carrier == "header" else (META_TRACE, META_SPAN)
    params: dict[str, Any] = {"name": f"probe_{carrier}", "arguments": {}}
    headers = {"content-type": "application/json", "accept": "application/json, text/event-stream",
               "mcp-protocol-version": "2025-11-25", "traceparent": HTTP_TP}
    if carrier == "meta":
        params["_meta"] = {"traceparent": META_TP}
        headers["traceparent"] = f"00-{'1' * 32}-{'2' * 16}-01"  # an unrelated HTTP context: only a link
    body = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": params}
    r = httpx.post(f"http://127.0.0.1:{port}/mcp", json=body, headers=headers, timeout=10)
    assert r.status_code == 200 and r.json()["result"]["content"][0]["text"] == "recorded", r.text
    decision_id = r.headers["x-mcpgate-decision-id"]
    seen = [(h, b) for h, b in upstream.received if b.get("params", {}).get("name") == params["name"]]
    assert len(seen) == 1
    up_headers, up_body = seen[0]
    assert up_body == body  # forwarded unchanged, `_meta` included
    _, up_trace, up_parent, _ = up_headers["traceparent"].split("-")
    assert up_trace == trace
    deadline = time.monotonic() + 15
    mine: list[Any] = []
    while not mine and time.monotonic() < deadline:
        mine = [s for s in receiver.spans() if _attrs(s)["mcpgate.decision_id"] == decision_id]
        time.sleep(0.05)
    assert len(mine) == 1
    span = mine[0]
    # The upstream's parent is mcpgate's span, whose parent is the caller's span.
    assert (span.trace_id.hex(), span.span_id.hex(), span.parent_span_id.hex()) == (trace, up_parent, span_id)


# -- 3. audit --------------------------------------------------------------------------------------------------

def test_exactly_one_audit_record_per_operation(traffic: Traffic) -> None:
    t = traffic
    records = _acked_records(t)
    sent = Counter((m["method"], m.get("params", {}).get("name") if m["method"] == "tools/call" else None)
                   for _, m in t.wire.operations())
    logged = Counter((r["method"], r["target"] if r["method"] == "tools/call" else None) for r in records)
    assert logged == sent
    # The SDK's handshake and discovery are operations too, and audited.
    assert {"server/discover", "initialize", "notifications/initialized", "tools/list"} <= {m for m, _ in sent}
    # Every response named the decision of the operation it carried; every record is one of them.
    header_ids = [d for s in t.wire.sent for d in s.decision_ids]
    assert sorted(header_ids) == sorted(r["decision_id"] for r in records)
    [meta_record] = [r for r in records if r["decision_id"] == t.meta_call.decision_ids[0]]
    assert (meta_record["target"], meta_record["outcome"]) == ("get_balance", "ok")
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
    denied = [r for r in records if r["decision"] == "deny"]
    assert Counter((r["target"], str(r["error_code"])) for r in denied) == Counter(
        {(tool, code): n for (tool, seen, code), n in t.calls.items() if seen == "refused"})
    assert all(r["upstream"] is None for r in denied)


def test_audit_verify_passes_then_names_the_edited_line(traffic: Traffic, tmp_path: Path) -> None:
    _acked_records(traffic)
    ok = _cli("verify", str(traffic.audit))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    copy = tmp_path / "audit.jsonl"
    lines = traffic.audit.read_text().splitlines(keepends=True)
    edit = next(i for i, ln in enumerate(lines) if '"decision":"deny"' in ln)
    lines[edit] = lines[edit].replace('"decision":"deny"', '"decision":"allow"')
    copy.write_text("".join(lines))
    bad = _cli("verify", str(copy))
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert f"{copy.name}:{edit + 1}" in bad.stdout + bad.stderr, bad.stdout + bad.stderr


# -- 5. dashboard ----------------------------------------------------------------------------------------------

def test_dashboard_reports_the_metrics_counts(traffic: Traffic) -> None:
    t = traffic
    _acked_records(t)
    dash = httpx.get(f"http://127.0.0.1:{t.admin}/api/dashboard", timeout=5).json()
    tools = {row["tool"]: (row["calls"], row["errors"], row["denied"]) for row in dash["tools"]}
    want: dict[str, list[int]] = {}
    for (tool, decision, outcome, _), n in _expected_series(t).items():
        row = want.setdefault(tool, [0, 0, 0])
        row[0] += n
        row[1] += n if outcome == "tool_error" else 0
        row[2] += n if decision == "deny" else 0
    assert tools == {k: tuple(v) for k, v in want.items()}
    methods = {row["method"]: row["calls"] for row in dash["methods"]}
    assert methods == dict(Counter(m["method"] for _, m in t.wire.operations()))
    assert dash["totals"]["calls"] == sum(methods.values())


# -- 4. kill -9 under load ---------------------------------------------------------------------------------------

class AckPoller:
    """Polls `/api/status` → `audit.acked_seq` on a thread and keeps the highest value seen."""

    def __init__(self, admin: int) -> None:
        self.admin, self.high = admin, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with httpx.Client(timeout=1) as http:
            while not self._stop.is_set():
                try:
                    seq = http.get(f"http://127.0.0.1:{self.admin}/api/status").json()["audit"]["acked_seq"]
                except httpx.HTTPError:
                    return  # the gateway is gone: what we saw before is what was acknowledged
                self.high = max(self.high, int(seq))
                time.sleep(0.005)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


async def _load(url: str, stop: threading.Event) -> None:
    async def worker() -> None:
        http = httpx2.AsyncClient(headers={"l5d-client-id": BILLING}, timeout=httpx2.Timeout(5.0))
        try:
            async with Client(streamable_http_client(url, http_client=http)) as c:
                for i in range(100):
                    if stop.is_set():
                        return
                    try:  # two allowed reads, then a refund over the limit (denied by mcpgate itself)
                        await c.call_tool("get_balance" if i % 3 else "refund",
                                          {"account": "ACC-1001"} if i % 3 else
                                          {"account": "ACC-1001", "amount": 500, "reason": "load"})
                    except MCPError as err:
                        if err.code != -32001:
                            raise
        except Exception:  # the gateway was killed under us: expected
            return

    with anyio.move_on_after(30):
        async with anyio.create_task_group() as tg:
            for _ in range(6):
                tg.start_soon(worker)


def test_kill_9_under_load_loses_no_acknowledged_record(tmp_path: Path) -> None:
    """Acknowledged = seq <= the `audit.acked_seq` that `/api/status` reported before the kill: the writer
    has written (and fsync'ed, `fsync: group`) every record up to it.

    Not the same as "the client got its answer": answers do not wait for the audit writer, so the records of
    the last few answered calls (0-4 in runs here) can be lost with the process."""
    shutil.copy(ROOT / "policies" / "payments.yaml", tmp_path / "policy.yaml")
    up_port, port, admin = free_port(), free_port(), free_port()
    server = Proc("example-server", [sys.executable, "-m", "examples.server", "--port", str(up_port)],
                  up_port, tmp_path / "server.log").start()
    cfg = _config(tmp_path, up_port, admin, port)
    gw: Proc | None = None
    try:
        server.wait_accepting()
        gw = _gateway(tmp_path, cfg, port)
        gw.wait_http_ok(f"http://127.0.0.1:{admin}/healthz")
        poller, stop = AckPoller(admin), threading.Event()

        def killer() -> None:
            deadline = time.monotonic() + 30
            while poller.high < 150 and time.monotonic() < deadline:
                time.sleep(0.002)
            assert gw is not None and gw.popen is not None
            os.kill(gw.popen.pid, signal.SIGKILL)  # the gateway process only, mid-load
            gw.popen.wait(5)
            stop.set()

        k = threading.Thread(target=killer)
        k.start()
        anyio.run(_load, f"http://127.0.0.1:{port}/mcp", stop)
        k.join(10)
        poller.stop()
        assert gw.popen is not None and gw.popen.returncode == -signal.SIGKILL
        acked = poller.high
        assert acked >= 150, "the load must have been running when the gateway was killed"

        audit = tmp_path / "audit.jsonl"
        raw = audit.read_bytes()
        complete = raw[: raw.rfind(b"\n") + 1]
        records = [json.loads(ln) for ln in complete.splitlines()]
        seqs = [r["seq"] for r in records if r["type"] == "op"]
        assert seqs == list(range(1, len(seqs) + 1))
        assert seqs[-1] >= acked, f"acknowledged up to {acked}, file ends at {seqs[-1]}"
        verify = _cli("verify", "--format", "json", str(audit))
        report = json.loads(verify.stdout)
        assert verify.returncode == 0, verify.stdout + verify.stderr
        if complete != raw:  # a torn last line is reported as such, not as tampering
            assert "truncated" in verify.stdout, verify.stdout
        # Restarting continues the chain (removing any torn tail) and it then verifies strictly.
        gw = _gateway(tmp_path, cfg, port)
        gw.wait_http_ok(f"http://127.0.0.1:{admin}/healthz")
        gw.stop()
        strict = _cli("verify", "--strict", str(audit))
        assert strict.returncode == 0, strict.stdout + strict.stderr
        resume = [r for r in _records(audit) if r["type"] == "resume"]
        assert len(resume) == 1 and resume[0]["torn_bytes"] == len(raw) - len(complete), report
    finally:
        if gw is not None:
            gw.stop()
        server.stop()
