"""Audit log throughput: records/s acknowledged (written + fsync'ed) and the cost of `record()` per call.

    .venv/bin/python bench/audit_bench.py [--seconds 3] [--fsync group|always|never] [--dir DIR] [--json]
    .venv/bin/python bench/audit_bench.py --rate 2000     # fixed rate: record() -> acknowledged p50/p99

A producer thread stands in for the event loop and calls `record()` as fast as the queue allows (it backs
off while `ready()` reports backpressure, as the gateway would refuse calls). Throughput counts only
acknowledged records; the chain is verified at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mcpgate.audit import AuditLog, verify_files
from mcpgate.exchange import ConnInfo, Exchange, RequestInfo
from mcpgate.identity.model import Principal
from mcpgate.policy.model import Decision, Effect
from mcpgate.protocol.model import Direction, MessageKind, Operation, OpKind, Outcome

REQUEST = RequestInfo(ConnInfo("127.0.0.1", 40000), "POST", "/mcp", [], "5f1c0b9e-session", "2025-11-25",
                      "streamable-http")
PRINCIPAL = Principal("spiffe://cluster.local/ns/billing/sa/agent", "mtls", "cluster.local", "billing",
                      "agent")
DECISION = Decision(Effect.ALLOW, ("allow-billing-tools",), "rev-42")


def exchange(i: int) -> Exchange:
    op = Operation(OpKind.TOOL_CALL, "tools/call", MessageKind.REQUEST, Direction.CLIENT_TO_SERVER, id=i,
                   target="refund", arguments={"order_id": f"ord-{i}", "amount": i % 500, "note": "bench"})
    now = time.monotonic_ns()
    return Exchange(f"d-{i:016x}", op, REQUEST, PRINCIPAL, DECISION, t_start=now - 900_000,
                    t_first_byte=now - 300_000, t_end=now, outcome=Outcome.OK, bytes_in=180, bytes_out=420,
                    extra={"upstream": "http://127.0.0.1:9000/mcp"})


def run(seconds: float, fsync: str, directory: str, group_commit_ms: float) -> dict[str, object]:
    path = os.path.join(directory, "audit.jsonl")
    log = AuditLog.from_config({"path": path, "fsync": fsync, "group_commit_ms": group_commit_ms,
                                "max_queue": 50_000, "rotate_bytes": 64 * 1024 * 1024})
    log.start()
    stop = threading.Event()
    calls = [0, 0]  # records queued, ns spent inside record()

    def produce() -> None:
        i = 0
        while not stop.is_set():
            if log.ready() is not None:
                time.sleep(0.0005)
                continue
            ex = exchange(i)
            t0 = time.perf_counter_ns()
            log.record(ex)
            calls[1] += time.perf_counter_ns() - t0
            calls[0] += 1
            i += 1

    producer = threading.Thread(target=produce)
    start_acked = log.acked_seq
    t0 = time.monotonic()
    producer.start()
    time.sleep(seconds)
    acked = log.acked_seq - start_acked
    elapsed = time.monotonic() - t0
    stop.set()
    producer.join()
    log.close()
    stats = log.stats()
    report = verify_files([path])
    return {
        "fsync": fsync,
        "group_commit_ms": group_commit_ms,
        "seconds": round(elapsed, 3),
        "acked_records": acked,
        "records_per_s": round(acked / elapsed),
        "record_call_us": round(calls[1] / max(1, calls[0]) / 1000, 2),
        "fsyncs": stats.fsync_count,
        "records_per_fsync": round(stats.records_written / max(1, stats.fsync_count), 1),
        "fsync_mean_ms": round(stats.fsync_sum_s / max(1, stats.fsync_count) * 1000, 3),
        "dropped": stats.records_dropped,
        "chain_ok": report.ok,
    }


def run_rate(seconds: float, rate: int, fsync: str, directory: str, group_commit_ms: float) -> dict[str, object]:
    """Fixed-rate load: how long from `record()` until the record is acknowledged (p50/p99)."""
    path = os.path.join(directory, "audit.jsonl")
    queued_at: dict[int, int] = {}
    latencies: list[int] = []
    acked_upto = [0]

    def on_ack(seq: int) -> None:
        now = time.perf_counter_ns()
        for s in range(acked_upto[0] + 1, seq + 1):
            t = queued_at.pop(s, None)
            if t is not None:
                latencies.append(now - t)
        acked_upto[0] = seq

    log = AuditLog.from_config({"path": path, "fsync": fsync, "group_commit_ms": group_commit_ms},
                               on_ack=on_ack)
    log.start()
    interval = 1_000_000_000 // rate
    next_at = time.perf_counter_ns()
    end = next_at + int(seconds * 1e9)
    i = 0
    while next_at < end:
        while time.perf_counter_ns() < next_at:
            time.sleep(0.0001)
        i += 1
        ex = exchange(i)
        queued_at[i] = time.perf_counter_ns()
        log.record(ex)
        next_at += interval
    log.flush(10)
    log.close()
    latencies.sort()

    def pct(q: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(len(latencies) * q))] / 1e6, 3)

    return {"fsync": fsync, "group_commit_ms": group_commit_ms, "rate": rate, "records": len(latencies),
            "ack_p50_ms": pct(0.50), "ack_p99_ms": pct(0.99), "ack_max_ms": pct(1.0),
            "chain_ok": verify_files([path]).ok}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--fsync", choices=("group", "always", "never"), default="group")
    ap.add_argument("--group-commit-ms", type=float, default=2.0)
    ap.add_argument("--dir", help="directory for the log (default: a new temporary directory)")
    ap.add_argument("--rate", type=int, help="fixed records/s: report acknowledgement latency instead")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as directory:
        if args.rate:
            result = run_rate(args.seconds, args.rate, args.fsync, directory, args.group_commit_ms)
        else:
            result = run(args.seconds, args.fsync, directory, args.group_commit_ms)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>20}: {value}")
    return 0 if result["chain_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
