"""AuditLog: acknowledgement, durability across kill -9, fail-closed on write errors, backpressure."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from mcpgate.audit import NOT_RECORDED, AuditLog, StreamSink, read_records, verify_files

from .factory import lines_of, make_exchange

ROOT = Path(__file__).resolve().parents[2]


def _proc(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "tests.audit.proc_writer", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_record_returns_seqs_and_acknowledges_them(tmp_path: Path) -> None:
    acks: list[int] = []
    path = tmp_path / "audit.jsonl"
    log = AuditLog.from_config({"path": str(path)}, on_ack=acks.append)
    log.start()
    seqs = [log.record(make_exchange(i)) for i in range(1, 51)]
    assert seqs == list(range(1, 51))
    assert log.wait_acked(50, timeout=5)
    assert log.acked_seq == 50
    assert acks == sorted(acks) and acks[-1] == 50
    last = json.loads(lines_of(path)[-1])
    assert log.head == (50, last["hash"])
    stats = log.stats()
    assert stats.records_written == 50 and stats.records_dropped == 0 and stats.write_errors == 0
    assert stats.fsync_count >= 1 and stats.fsync_counts[-1] == stats.fsync_count
    assert log.ready() is None and log.healthy and log.last_error is None
    assert log.close()
    assert log.record(make_exchange(99)) == NOT_RECORDED
    assert log.stats().records_dropped == 1


def test_wait_acked_times_out_for_a_seq_never_queued(tmp_path: Path) -> None:
    log = AuditLog.from_config({"path": str(tmp_path / "a.jsonl")})
    log.start()
    t0 = time.monotonic()
    assert log.wait_acked(5, timeout=0.1) is False
    assert time.monotonic() - t0 < 2
    log.close()


def test_sink_off_records_nothing_and_never_refuses() -> None:
    log = AuditLog.from_config({"sink": "off"})
    log.start()
    assert not log.enabled
    assert log.record(make_exchange()) == NOT_RECORDED
    assert log.ready() is None
    assert log.close()


def test_a_log_that_is_not_started_refuses() -> None:
    log = AuditLog.from_config({"path": "/nonexistent/never-created/a.jsonl"})
    assert log.ready() == "audit log is not started"
    assert log.record(make_exchange()) == NOT_RECORDED
    assert log.stats().records_dropped == 1


def test_an_unwritable_path_refuses_to_start(tmp_path: Path) -> None:
    from mcpgate.errors import AuditUnavailable

    (tmp_path / "file").write_text("not a directory")
    log = AuditLog.from_config({"path": str(tmp_path / "file" / "audit.jsonl")})
    with pytest.raises(AuditUnavailable, match=r"cannot create the audit directory .*: file exists"):
        log.start()
    assert log.ready() is not None


@pytest.mark.parametrize("fsync", ["always", "never"])
def test_other_fsync_modes_write_a_valid_chain(tmp_path: Path, fsync: str) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog.from_config({"path": str(path), "fsync": fsync})
    log.start()
    for i in range(1, 21):
        log.record(make_exchange(i))
    assert log.flush(5)
    log.close()
    assert verify_files([str(path)]).records == 20
    assert (log.stats().fsync_count > 0) == (fsync == "always")


def test_acknowledged_records_survive_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    proc = _proc("load", str(path))
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"started\n"
    time.sleep(1.5)
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate(timeout=10)
    acked = [int(line.split()[1]) for line in out.splitlines() if line.startswith(b"acked ")]
    assert acked and acked[-1] > 100, "the writer acknowledged too little to test anything"
    report = verify_files([str(path)])
    assert report.ok, report.problem
    on_disk = [r["seq"] for r in read_records([str(path)])]
    assert on_disk == list(range(1, len(on_disk) + 1))
    assert on_disk[-1] >= acked[-1]  # every acknowledged record is there (more may be: written, not acked)
    # a restart continues the chain: a torn tail (never acknowledged) is dropped and noted
    log = AuditLog.from_config({"path": str(path)})
    log.start()
    log.record(make_exchange(1))
    assert log.flush(5)
    log.close()
    after = verify_files([str(path)])
    assert after.ok and after.truncated_tail is None and after.last_seq == on_disk[-1] + 1


def _diskfull(tmp_path: Path, mode: str) -> tuple[dict[str, object], dict[str, object], Path]:
    path = tmp_path / "audit.jsonl"
    proc = _proc("diskfull", str(path), "6000", mode)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    full, recovered = (json.loads(line) for line in out.splitlines())
    return full, recovered, path


def test_a_write_error_fails_closed_and_recovers_when_space_returns(tmp_path: Path) -> None:
    full, recovered, path = _diskfull(tmp_path, "refuse")
    assert full["healthy"] is False
    assert isinstance(full["write_errors"], int) and full["write_errors"] >= 1
    assert "file too large" in str(full["last_error"])
    assert full["ready"] == full["last_error"]  # the gateway refuses calls, and says why
    assert isinstance(full["acked"], int) and isinstance(full["queued"], int)
    assert full["acked"] < full["queued"]
    assert recovered == {"phase": "recovered", "ready": None, "healthy": True, "flushed": True,
                         "acked": full["queued"], "queued": full["queued"]}
    report = verify_files([str(path)])
    assert report.ok and report.truncated_tail is None and report.last_seq == full["queued"]


def test_on_failure_continue_keeps_forwarding_while_unhealthy(tmp_path: Path) -> None:
    full, recovered, path = _diskfull(tmp_path, "continue")
    assert full["healthy"] is False and full["ready"] is None
    assert recovered["healthy"] is True and recovered["flushed"] is True
    assert verify_files([str(path)]).ok


def test_a_stalled_sink_backs_up_the_queue_and_fails_closed(tmp_path: Path) -> None:
    r, w = os.pipe()
    stream = os.fdopen(w, "wb")
    log = AuditLog(StreamSink(stream, wall_clock=time.time_ns), max_queue=50, on_failure="refuse")
    log.start()
    results = [log.record(make_exchange(i, arguments={"pad": "x" * 2000})) for i in range(1, 201)]
    deadline = time.monotonic() + 5
    while log.ready() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    reason = log.ready()
    assert reason is not None and "backed up" in reason
    assert NOT_RECORDED in results
    dropped = results.count(NOT_RECORDED)
    assert log.stats().records_dropped == dropped
    assert log.stats().queue_depth <= 50
    received = bytearray()

    def drain() -> None:
        while chunk := os.read(r, 1 << 16):
            received.extend(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    assert log.flush(10)
    assert log.ready() is None
    log.close()
    stream.close()
    reader.join(5)
    kept = [json.loads(x)["seq"] for x in bytes(received).splitlines() if b'"type":"op"' in x]
    assert kept == list(range(1, 201 - dropped))
