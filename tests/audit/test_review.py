"""Reviewing a generated log: filters, summaries, file sets, following across rotation."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from mcpgate.audit import AuditLog, Filter, expand_paths, follow, parse_time, read_records, summarize
from mcpgate.identity.model import ANONYMOUS
from mcpgate.protocol.model import OpKind, Outcome

from .factory import ALICE, BOB, DENY, make_exchange

BASE_WALL = 1_700_000_000_000_000_000  # 2023-11-14T22:13:20Z
HOUR = 3600 * 1_000_000_000


def _generate(path: Path) -> None:
    """60 refunds by alice (1..60 ms; every 10th a tool error), 20 searches by bob (10 denied),
    5 lookups denied to anonymous, one tools/list. One exchange per minute from BASE_WALL."""
    log = AuditLog.from_config({"path": str(path), "rotate_bytes": 20_000}, clock=lambda: 0,
                               wall_clock=lambda: BASE_WALL)
    log.start()
    minute = 60 * 1_000_000_000
    t = 0
    for i in range(1, 61):
        log.record(make_exchange(i, tool="refund", principal=ALICE, t_start=t, latency_ms=float(i),
                                 outcome=Outcome.TOOL_ERROR if i % 10 == 0 else Outcome.OK))
        t += minute
    for i in range(61, 81):
        denied = i % 2 == 0
        log.record(make_exchange(i, tool="search", principal=BOB, t_start=t, latency_ms=5.0,
                                 decision=DENY if denied else make_exchange().decision,
                                 outcome=Outcome.DENIED if denied else Outcome.OK))
        t += minute
    for i in range(81, 86):
        log.record(make_exchange(i, tool="lookup", principal=ANONYMOUS, t_start=t, decision=DENY,
                                 outcome=Outcome.DENIED))
        t += minute
    log.record(make_exchange(86, tool=None, kind=OpKind.LIST, method="tools/list", arguments=None, t_start=t,
                             principal=ANONYMOUS))
    assert log.flush(5)
    log.close()


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    path = tmp_path / "audit.jsonl"
    _generate(path)
    return path


def test_an_active_file_brings_its_rotated_set(log_path: Path) -> None:
    files = expand_paths([str(log_path)])
    assert len(files) > 1 and files[-1] == str(log_path)
    assert [r["seq"] for r in read_records(files)] == list(range(1, 87))
    assert expand_paths([str(log_path)], rotated=False) == [str(log_path)]
    assert expand_paths([str(log_path.parent)]) == files
    with pytest.raises(FileNotFoundError):
        expand_paths([str(log_path.parent / "nope.jsonl")])


def test_filters(log_path: Path) -> None:
    files = expand_paths([str(log_path)])

    def seqs(flt: Filter) -> list[int]:
        return [r["seq"] for r in read_records(files, flt)]

    assert seqs(Filter(principal="spiffe://*/ns/billing/*")) == list(range(1, 61))
    assert seqs(Filter(target="sea*", decision="deny")) == list(range(62, 81, 2))
    assert seqs(Filter(rule="no-*", principal="anonymous")) == list(range(81, 86))
    assert seqs(Filter(outcome="tool_error")) == [10, 20, 30, 40, 50, 60]
    assert seqs(Filter(method="tools/list")) == [86]
    # times: record i starts (i - 1) minutes after 22:13:20
    assert seqs(Filter(since="2023-11-14T22:15:20.000000Z", until="2023-11-14T22:17:20.000000Z")) == [3, 4, 5]
    assert seqs(Filter(since=parse_time("2023-11-14T23:13:00+01:00"))) == list(range(1, 87))
    assert seqs(Filter(since=parse_time("30m", now_ns=BASE_WALL + 85 * 60 * 1_000_000_000))) == \
        list(range(56, 87))


def test_parse_time_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="`yesterday-ish`"):
        parse_time("yesterday-ish")
    assert parse_time("2023-11-14") == "2023-11-14T00:00:00.000000Z"
    assert parse_time("1h", now_ns=BASE_WALL) == "2023-11-14T21:13:20.000000Z"


def test_summary(log_path: Path) -> None:
    s = summarize(read_records(expand_paths([str(log_path)])))
    assert s.records == 86
    assert s.decisions == {"allow": 71, "deny": 15}
    assert s.first_time == "2023-11-14T22:13:20.000000Z"
    assert [t.tool for t in s.tools] == ["refund", "search", "lookup"]
    refund = s.tools[0]
    assert (refund.calls, refund.denied, refund.errors, refund.error_rate) == (60, 0, 6, 0.1)
    assert (refund.p50_ms, refund.p95_ms, refund.p99_ms) == (30.0, 57.0, 60.0)
    search = s.tools[1]
    assert (search.calls, search.denied, search.errors, search.p50_ms) == (20, 10, 0, 5.0)
    assert s.denials_by_principal == [(BOB.id, 10), ("anonymous", 5)]
    assert s.denials_by_rule == [("no-refunds", 15)]
    assert s.methods == {"tools/call": 85, "tools/list": 1}
    assert s.to_dict()["tools"][0]["p95_ms"] == 57.0


def test_follow_reads_new_records_across_rotation(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog.from_config({"path": str(path), "rotate_bytes": 3000, "group_commit_ms": 0})
    log.start()
    log.record(make_exchange(1))
    assert log.flush(5)
    seen: list[int] = []
    done = threading.Event()

    def reader() -> None:
        for rec in follow(str(path), poll_s=0.01, stop=done.is_set):
            seen.append(rec["seq"])

    thread = threading.Thread(target=reader)
    thread.start()
    for i in range(2, 41):
        log.record(make_exchange(i))
        log.flush(5)
        time.sleep(0.002)
    log.close()
    deadline = time.monotonic() + 5
    while len(seen) < 40 and time.monotonic() < deadline:
        time.sleep(0.02)
    done.set()
    thread.join(5)
    assert len(expand_paths([str(path)])) > 3  # it did rotate while we followed
    assert seen == list(range(1, 41))
