"""Faults that need a whole `mcpgate serve` process (perf-reliability §B5 F7-F9): policy reload under load,
kill -9 under audited load, and a full disk under the audit file.

Each test runs the real gateway (`tests/hardening/gateway_proc.py`) in front of a fixed upstream process, on
127.0.0.1, and drives it with real HTTP clients for a bounded time.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.hardening.gateway_proc import HEADERS, Gate, call_body, classify, start_gateway

POLICY_A = """apiVersion: mcpgate.dev/v1
kind: Policy
metadata: {name: reload-a}
defaults: {effect: deny}
rules:
  - id: allow-a
    effect: allow
    tools: ["echo", "tool_a"]
"""
INVALID_YAML = POLICY_A + "  - id: [unclosed\n"
UNKNOWN_FIELD = POLICY_A.replace("effect: allow", "effect: allow\n    colour: blue")


def _policy_b(filler: int) -> str:
    # The rule that makes B different from A comes last: a policy cut anywhere before it would still deny
    # tool_b, and any cut changes the content hash, so a partial policy shows up as a third revision.
    rules = [f"  - id: f{i}\n    effect: deny\n    tools: [\"filler_{i}\"]\n" for i in range(filler)]
    return ("apiVersion: mcpgate.dev/v1\nkind: Policy\nmetadata: {name: reload-b}\ndefaults: {effect: deny}\n"
            "rules:\n" + "".join(rules)
            + "  - id: allow-b\n    effect: allow\n    tools: [\"echo\", \"tool_b\"]\n")


def _replace(path: Path, text: str) -> None:
    """Write-then-rename, as editors and Kubernetes ConfigMap updates do (the supported way to change it)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _wait_metric(g: Gate, key: str, at_least: float, timeout: float = 10.0) -> float:
    deadline = time.monotonic() + timeout
    value = 0.0
    while time.monotonic() < deadline:
        value = g.metrics().get(key, 0.0)
        if value >= at_least:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{key} stayed at {value} (wanted >= {at_least}) for {timeout} s\n{g.gw.log()}")


async def _drive(g: Gate, stop: threading.Event, tools: list[str], out: list[tuple[str, str]],
                 clients: int = 4, pause_s: float = 0.002) -> None:
    """`clients` keep-alive clients calling `tools` in turn until `stop`; each answer classified."""
    async def one(k: int) -> None:
        async with httpx.AsyncClient(timeout=5) as c:
            n = 0
            while not stop.is_set():
                tool = tools[(n + k) % len(tools)]
                n += 1
                try:
                    r = await c.post(g.url, content=call_body(n, tool), headers=HEADERS)
                    out.append((tool, classify(r.status_code, r.content)))
                except httpx.HTTPError as e:
                    out.append((tool, f"error:transport:{type(e).__name__}"))
                await asyncio.sleep(pause_s)

    await asyncio.gather(*(one(k) for k in range(clients)))


# --------------------------------------------------------------------------------------------- F7


@pytest.mark.slow
async def test_f7_policy_reload_under_load(tmp_path: Path, record_property: Callable[[str, object], None]) -> None:
    """F7: while clients call, the policy file becomes invalid YAML, then has an unknown field, then is a
    valid 10k-rule policy, then the original again. Invalid → the last good policy keeps deciding and the
    error is counted; valid → applied whole. Every decision (audit record) was made by exactly policy A or
    policy B, each answer is an allow or a deny consistent with that policy, and no call failed."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY_A)
    g = start_gateway(tmp_path, extra=["policy: {files: [policy.yaml], reload: {watch: true, interval_s: 0.1}}"])
    answers: list[tuple[str, str]] = []
    stop = threading.Event()
    took: dict[str, float] = {}

    def phases() -> None:
        try:
            time.sleep(0.5)
            base_ok = g.metrics()['mcpgate_policy_reloads_total{result="ok"}']
            for n, bad in enumerate([INVALID_YAML, UNKNOWN_FIELD], start=1):
                _replace(policy, bad)
                _wait_metric(g, 'mcpgate_policy_reloads_total{result="error"}', n)
                time.sleep(0.5)  # calls keep flowing under A
            t0 = time.monotonic()
            _replace(policy, _policy_b(10_000))
            _wait_metric(g, 'mcpgate_policy_reloads_total{result="ok"}', base_ok + 1, timeout=30)
            took["reload_10k_s"] = time.monotonic() - t0
            time.sleep(1.0)  # calls under B
            _replace(policy, POLICY_A)
            _wait_metric(g, 'mcpgate_policy_reloads_total{result="ok"}', base_ok + 2)
            time.sleep(0.5)
        finally:
            stop.set()

    try:
        driver = threading.Thread(target=phases)
        driver.start()
        await _drive(g, stop, ["echo", "tool_a", "tool_b"], answers)
        driver.join(5)
        m = g.metrics()
        assert m['mcpgate_policy_reloads_total{result="error"}'] == 2
        assert m["mcpgate_policy_last_reload_success"] == 1
        deadline = time.monotonic() + 5
        while len([r for r in g.records() if r.get("method") == "tools/call"]) < len(answers):
            assert time.monotonic() < deadline, "audit records missing for answered calls"
            await asyncio.sleep(0.05)
    finally:
        g.stop()

    outcomes = Counter(o for _, o in answers)
    record_property("calls", len(answers))
    record_property("reload_10k_rules_s", round(took.get("reload_10k_s", -1), 2))
    assert set(outcomes) <= {"allow", "deny"}, f"calls failed during reloads: {outcomes}"
    assert all(o == "allow" for t, o in answers if t == "echo")
    calls = [r for r in g.records() if r.get("method") == "tools/call"]
    assert len(calls) == len(answers)
    by_rev: dict[str, Counter[tuple[str, str]]] = defaultdict(Counter)
    for r in calls:
        by_rev[r["policy_revision"]][(r["target"], r["decision"])] += 1
    rev_a = calls[0]["policy_revision"]
    assert len(by_rev) == 2, f"decisions made under {len(by_rev)} revisions, want exactly A and B: {dict(by_rev)}"
    [rev_b] = set(by_rev) - {rev_a}
    want = {rev_a: {"tool_a": "allow", "tool_b": "deny"}, rev_b: {"tool_a": "deny", "tool_b": "allow"}}
    for rev, seen in by_rev.items():
        for (tool, decision), _ in seen.items():
            assert want[rev].get(tool, "allow") == decision, f"{tool} {decision} under {rev}: {dict(seen)}"
    assert by_rev[rev_b][("tool_b", "allow")] > 0, "policy B was never applied"
    record_property("decisions_per_revision", {r: sum(c.values()) for r, c in by_rev.items()})
