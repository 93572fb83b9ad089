"""Faults that need a whole `mcpgate serve` process (perf-reliability §B5 F7-F9): policy reload under load,
kill -9 under audited load, and a full disk under the audit file.

Each test runs the real gateway (`tests/hardening/gateway_proc.py`) in front of a fixed upstream process, on
127.0.0.1, and drives it with real HTTP clients for a bounded time.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from mcpgate.audit.record import digest_arguments
from mcpgate.audit.verify import verify_files
from mcpgate.errors import AuditUnavailable
from mcpgate.proxy.responses import status_for
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


# --------------------------------------------------------------------------------------------- F8

F8_TRIALS = int(os.environ.get("HARDEN_F8_TRIALS", "4"))
"""Trials in `make test`; the long mode (`HARDEN_F8_TRIALS=100`, as in perf-reliability F8) takes ~5 min."""

POLICY_ECHO = """apiVersion: mcpgate.dev/v1
kind: Policy
metadata: {name: audited}
defaults: {effect: deny}
rules:
  - {id: allow-echo, effect: allow, tools: ["echo"]}
"""


class _AckPoller:
    """Polls `/api/status` → `audit.acked_seq` on a thread and keeps the highest value seen before the kill."""

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
                except (httpx.HTTPError, ValueError):
                    return  # gone: what was seen before is what was acknowledged
                self.high = max(self.high, int(seq))
                time.sleep(0.003)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


async def _audited_load(url: str, stop: threading.Event, tag: str, answered: list[str],
                        clients: int = 4) -> None:
    """Calls `echo` with a unique argument until the gateway dies; `answered` gets the argument of every
    call the client received a result for (the audit record carries the arguments' digest)."""
    async def one(k: int) -> None:
        async with httpx.AsyncClient(timeout=3) as c:
            n = 0
            while not stop.is_set():
                n += 1
                arg = f"{tag}-{k}-{n}"
                body = json.dumps({"jsonrpc": "2.0", "id": n, "method": "tools/call",
                                   "params": {"name": "echo", "arguments": {"n": arg}}}).encode()
                try:
                    r = await c.post(url, content=body, headers=HEADERS)
                except httpx.HTTPError:
                    return  # killed under us
                if classify(r.status_code, r.content) == "allow":
                    answered.append(arg)

    await asyncio.gather(*(one(k) for k in range(clients)))


@pytest.mark.slow
async def test_f8_kill_9_under_audited_load(tmp_path: Path, record_property: Callable[[str, object], None]) -> None:
    """F8: `kill -9` the gateway at a random point under audited load, F8_TRIALS times, on one audit file
    (each restart continues the chain). After every kill: each record the audit writer acknowledged
    (`acked_seq` seen on `/api/status` before the kill) is on disk, the seqs are gapless, the chain verifies
    with at most one torn tail record, which the next start removes. At the end the whole file verifies
    with no torn tail at all. Answered calls whose record was still in the group-commit window are counted
    (answers do not wait for the audit fsync: see docs/audit.md)."""
    (tmp_path / "policy.yaml").write_text(POLICY_ECHO)
    extra = ["policy: {files: [policy.yaml]}"]
    rng = random.Random(int(os.environ.get("HARDEN_F8_SEED", "0")) or None)
    g = start_gateway(tmp_path, extra=extra)
    up = g.up
    torn_tails = answered_total = unrecorded_total = acked_total = acked_lost = 0
    try:
        for trial in range(F8_TRIALS):
            if trial:
                g = start_gateway(tmp_path, extra=extra, up=up)
            stop = threading.Event()
            answered: list[str] = []
            poller = _AckPoller(g.admin)
            delay = rng.uniform(0.3, 1.5)

            def killer(gate: Gate = g, wait: float = delay, done: threading.Event = stop) -> None:
                time.sleep(wait)
                assert gate.gw.popen is not None
                os.kill(gate.gw.popen.pid, signal.SIGKILL)
                gate.gw.popen.wait(5)
                done.set()

            k = threading.Thread(target=killer)
            k.start()
            await _audited_load(g.url, stop, f"t{trial}", answered)
            k.join(10)
            poller.stop()
            assert g.gw.popen is not None and g.gw.popen.returncode == -signal.SIGKILL

            raw = g.audit.read_bytes()
            complete = raw[: raw.rfind(b"\n") + 1]
            torn = complete != raw
            torn_tails += torn
            report = verify_files([str(g.audit)])
            assert report.ok, f"trial {trial}: chain broken after kill -9: {report.problem}"
            assert (report.truncated_tail is not None) == torn, report
            records = [json.loads(line) for line in complete.splitlines()]
            ops = [r for r in records if r["type"] == "op"]
            seqs = [r["seq"] for r in ops]
            assert seqs == list(range(1, len(seqs) + 1)), f"trial {trial}: seqs not gapless"
            acked_lost += max(0, poller.high - (seqs[-1] if seqs else 0))
            assert seqs and seqs[-1] >= poller.high, (f"trial {trial}: acknowledged up to {poller.high}, "
                                                      f"file ends at {seqs[-1] if seqs else 0}")
            digests = {r["args_digest"] for r in ops}
            unrecorded = sum(digest_arguments({"n": a}) not in digests for a in answered)
            assert answered, f"trial {trial}: no call was answered before the kill at {delay:.2f} s"
            answered_total += len(answered)
            unrecorded_total += unrecorded
            acked_total = poller.high
        # A last start removes the final torn tail (if any); then the file verifies strictly.
        g = start_gateway(tmp_path, extra=extra, up=up)
        g.gw.stop()
        final = verify_files([str(g.audit)])
        assert final.ok and final.truncated_tail is None, final
        resumes = [r for r in g.records() if r["type"] == "resume"]
        assert len(resumes) == F8_TRIALS
        assert sum(1 for r in resumes if r["torn_bytes"]) == torn_tails
    finally:
        g.stop()
        up.stop()
    record_property("trials", F8_TRIALS)
    record_property("acknowledged_records_lost", acked_lost)
    record_property("torn_tails_skipped", torn_tails)
    record_property("calls_answered", answered_total)
    record_property("answered_calls_in_group_commit_window_lost", unrecorded_total)
    record_property("records_on_disk", final.records)
    assert acked_total > 0


# --------------------------------------------------------------------------------------------- F9


def _mount_tmpfs(where: Path, size: str) -> bool:
    """A small tmpfs of our own (needs root / CAP_SYS_ADMIN): a real ENOSPC without touching real disks."""
    where.mkdir()
    if os.environ.get("HARDEN_F9_MEDIUM") == "fsize":  # to run the fallback where tmpfs would work
        return False
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where)],
                          capture_output=True, check=False)
    return done.returncode == 0


def _fill(path: Path) -> int:
    """Write `path` until the filesystem refuses (ENOSPC); returns the bytes it took."""
    chunk = b"\0" * 4096
    n = 0
    with path.open("wb", buffering=0) as fh:
        try:
            while True:
                n += fh.write(chunk) or 0
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    return n


async def _call(c: httpx.AsyncClient, g: Gate, rid: int) -> tuple[int, dict[str, object]]:
    body = json.dumps({"jsonrpc": "2.0", "id": rid, "method": "tools/call",
                       "params": {"name": "echo", "arguments": {"n": rid}}}).encode()
    r = await c.post(g.url, content=body, headers=HEADERS)
    return r.status_code, dict(r.json())


@pytest.mark.slow
async def test_f9_audit_disk_full_fails_closed_and_recovers(
        tmp_path: Path, record_property: Callable[[str, object], None]) -> None:
    """F9: the audit file's filesystem fills up (a 1 MiB tmpfs filled by another file; where mounting is not
    permitted, the gateway's RLIMIT_FSIZE is lowered to the file's size instead: EFBIG). With the default
    `on_failure: refuse`, calls are refused with 503 and a JSON-RPC error whose `data.code` is
    `audit.unavailable` and whose message names the failure (no space left on device); the gateway stays up,
    `mcpgate_audit_healthy` drops to 0 and `mcpgate_audit_write_errors_total` grows, `/readyz` says why.
    When space returns, the writer's retry succeeds and calls flow again. Every accepted call has its
    record, including those answered while the disk was full but before the writer noticed (they waited in
    the writer's queue): 0 lost. Refused calls were never forwarded, so they have no record."""
    disk = tmp_path / "disk"
    tmpfs = _mount_tmpfs(disk, "1m")
    why = "no space left on device" if tmpfs else "file too large"
    (tmp_path / "policy.yaml").write_text(POLICY_ECHO)
    g: Gate | None = None
    try:
        g = start_gateway(tmp_path, extra=["policy: {files: [policy.yaml]}"], audit=str(disk / "audit.jsonl"))
        async with httpx.AsyncClient(timeout=5) as c:
            rid = accepted = 0
            for _ in range(20):
                rid += 1
                status, doc = await _call(c, g, rid)
                assert status == 200 and "result" in doc, doc
                accepted += 1
            assert g.status()["audit"]["healthy"] is True
            filler = disk / "filler"
            assert g.gw.popen is not None
            pid = g.gw.popen.pid
            if tmpfs:
                record_property("filler_bytes", _fill(filler))
            else:
                resource.prlimit(pid, resource.RLIMIT_FSIZE, (g.audit.stat().st_size, resource.RLIM_INFINITY))
            # Calls go on until the writer hits ENOSPC (the audit file's last page may still take a few).
            refused: dict[str, object] | None = None
            answered_while_full = 0
            deadline = time.monotonic() + 10
            while refused is None:
                assert time.monotonic() < deadline, f"never refused on a full disk\n{g.gw.log()}"
                rid += 1
                status, doc = await _call(c, g, rid)
                if "result" in doc:
                    answered_while_full += 1
                    accepted += 1
                    await asyncio.sleep(0.01)
                    continue
                # 503, except for the 2025 protocol era, where clients hang on a non-2xx answer to a request.
                assert status == status_for(AuditUnavailable("full"), rid, HEADERS["mcp-protocol-version"])
                refused = doc
            err = refused["error"]
            assert isinstance(err, dict)
            assert err["code"] == AuditUnavailable.jsonrpc_code and err["data"]["code"] == "audit.unavailable", err
            assert why in err["message"], err
            assert refused["id"] == rid
            m = g.metrics()
            assert m["mcpgate_audit_healthy"] == 0
            errors_full = m["mcpgate_audit_write_errors_total"]
            assert errors_full >= 1
            ready = httpx.get(f"http://127.0.0.1:{g.admin}/readyz", timeout=5)
            assert ready.status_code == 503 and why in ready.text, ready.text
            # Stays refused (no crash, no forwarding) for as long as the disk is full.
            t_full = time.monotonic()
            refused_n = 1
            for _ in range(20):
                rid += 1
                refused_n += 1
                status, doc = await _call(c, g, rid)
                assert doc["error"]["data"]["code"] == "audit.unavailable", doc  # type: ignore[index]
                await asyncio.sleep(0.02)
            assert g.gw.alive
            assert g.metrics()["mcpgate_audit_write_errors_total"] > errors_full, "the writer stopped retrying"
            # Space returns: the writer's next retry (backoff <= 1 s) writes everything queued.
            if tmpfs:
                filler.unlink()
            else:
                resource.prlimit(pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
            t_free = time.monotonic()
            deadline = t_free + 10
            while True:
                assert time.monotonic() < deadline, f"no recovery 10 s after space returned\n{g.gw.log()}"
                rid += 1
                status, doc = await _call(c, g, rid)
                if "result" in doc:
                    accepted += 1
                    break
                assert doc["error"]["data"]["code"] == "audit.unavailable", doc  # type: ignore[index]
                refused_n += 1
                await asyncio.sleep(0.05)
            recovered_s = time.monotonic() - t_free
            m = g.metrics()
            assert m["mcpgate_audit_healthy"] == 1
            assert m["mcpgate_audit_dropped_total"] == 0, "records were dropped, not delayed"
            assert httpx.get(f"http://127.0.0.1:{g.admin}/readyz", timeout=5).status_code == 200
            for _ in range(10):
                rid += 1
                status, doc = await _call(c, g, rid)
                assert status == 200 and "result" in doc, doc
                accepted += 1
        g.gw.stop()
        ops = [r for r in g.records() if r["type"] == "op" and r["method"] == "tools/call"]
        assert accepted + refused_n == rid
        assert len(ops) == accepted, f"{accepted} calls accepted, {len(ops)} audit records"
        assert all(r["outcome"] == "ok" and r["decision"] == "allow" for r in ops)
        report = verify_files([str(g.audit)])
        assert report.ok and report.truncated_tail is None, report
        record_property("medium", "tmpfs (ENOSPC)" if tmpfs else "RLIMIT_FSIZE (EFBIG)")
        record_property("calls", rid)
        record_property("refused_while_full", refused_n)
        record_property("answered_before_the_writer_noticed", answered_while_full)
        record_property("write_errors_when_first_refused", errors_full)
        record_property("recovered_after_s", round(recovered_s, 2))
        record_property("full_for_s", round(t_free - t_full, 2))
        record_property("audit_records_lost", accepted - len(ops))
    finally:
        if g is not None:
            g.stop()
        if tmpfs:
            subprocess.run(["umount", "-l", str(disk)], capture_output=True, check=False)
