"""A real process writing audit records, for the kill -9 and disk-full tests.

    python -m tests.audit.proc_writer load PATH
        print each acknowledged seq (after fsync) until killed
    python -m tests.audit.proc_writer diskfull PATH LIMIT MODE
        with RLIMIT_FSIZE=LIMIT bytes: fill until writes fail, report, lift the limit, report
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys
import time

from mcpgate.audit import NOT_RECORDED, AuditLog

from .factory import make_exchange


def _say(text: str) -> None:
    os.write(1, (text + "\n").encode())  # unbuffered: the parent may SIGKILL us at any moment


def load(path: str) -> None:
    log = AuditLog.from_config({"path": path, "group_commit_ms": 1, "max_queue": 2000},
                               on_ack=lambda seq: _say(f"acked {seq}"))
    log.start()
    _say("started")
    i = 0
    while True:
        if log.ready() is not None:
            time.sleep(0.0002)
            continue
        i += 1
        log.record(make_exchange(i, arguments={"counter": i, "pad": "x" * (i % 300)}))


def diskfull(path: str, limit: int, mode: str) -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit then fail with EFBIG
    _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    log = AuditLog.from_config({"path": path, "on_failure": mode, "max_queue": 100})
    log.start()
    queued = 0
    deadline = time.monotonic() + 10
    while log.stats().write_errors == 0 and time.monotonic() < deadline:
        if log.record(make_exchange(queued + 1)) != NOT_RECORDED:
            queued += 1
        time.sleep(0.001)
    time.sleep(0.2)  # let the writer retry at least once more
    stats = log.stats()
    _say(json.dumps({"phase": "full", "ready": log.ready(), "healthy": log.healthy, "queued": queued,
                     "last_error": log.last_error, "write_errors": stats.write_errors,
                     "acked": log.acked_seq}))
    resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))  # space returns
    flushed = log.flush(10)
    _say(json.dumps({"phase": "recovered", "ready": log.ready(), "healthy": log.healthy, "flushed": flushed,
                     "acked": log.acked_seq, "queued": queued}))
    log.close()


if __name__ == "__main__":
    if sys.argv[1] == "load":
        load(sys.argv[2])
    else:
        diskfull(sys.argv[2], int(sys.argv[3]), sys.argv[4])
