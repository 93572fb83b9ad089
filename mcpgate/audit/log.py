"""`AuditLog`: the data plane's non-blocking `record()`, a writer thread with group-commit fsync, and
the health the gateway checks before forwarding (fail closed when records cannot be written).
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, BinaryIO, Literal

from mcpgate.audit.chain import Chain
from mcpgate.audit.config import AuditConfig, parse_section
from mcpgate.audit.record import LoggableFields, build_record, check_loggable_fields
from mcpgate.audit.sinks import FileSink, Sink, StreamSink
from mcpgate.errors import AuditUnavailable, ConfigError
from mcpgate.exchange import Exchange

__all__ = ["FSYNC_BUCKETS", "NOT_RECORDED", "AuditLog", "AuditStats"]

NOT_RECORDED = -1
"""What `record()` returns when the record was not queued (sink off, queue full, log closed)."""

FSYNC_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
"""Upper bounds (seconds) of the fsync duration histogram; a last +Inf bucket is implied."""

_RETRY_FIRST_S = 0.05
_RETRY_MAX_S = 1.0
_MAX_BATCH = 4096


@dataclass(frozen=True, slots=True)
class AuditStats:
    """A consistent-enough snapshot for metrics (counters only grow; `fsync_counts` is cumulative)."""

    healthy: bool
    last_error: str | None
    records_written: int
    records_dropped: int
    write_errors: int
    queue_depth: int
    acked_seq: int
    fsync_count: int
    fsync_sum_s: float
    fsync_buckets: tuple[float, ...]
    fsync_counts: tuple[int, ...]  # cumulative, one per bucket plus +Inf


def _describe(sink: Sink, exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"audit write to {sink.description} failed: {exc.strerror.lower()} (errno {exc.errno})"
    return f"audit write to {sink.description} failed: {type(exc).__name__}: {exc}"


class AuditLog:
    """One record per MCP operation and decision, hash-chained, durable once acknowledged.

    `record()` runs on the event loop and only queues; a writer thread batches what is queued, writes
    it, fsyncs once (`fsync="group"`) and then acknowledges every record in the batch. `ready()` says
    whether the gateway may forward (None) or must refuse (a reason), per `on_failure`.
    """

    def __init__(self, sink: Sink | None, *, fsync: Literal["group", "always", "never"] = "group",
                 group_commit_ms: float = 2.0, on_failure: Literal["refuse", "continue"] = "refuse",
                 max_queue: int = 10_000, loggable_fields: LoggableFields | None = None,
                 clock: Callable[[], int] = time.monotonic_ns, wall_clock: Callable[[], int] = time.time_ns,
                 on_ack: Callable[[int], None] | None = None) -> None:
        self._sink = sink
        self._fsync = fsync
        self._window_s = group_commit_ms / 1000 if fsync == "group" else 0.0
        self._refuse = on_failure == "refuse"
        self._max_queue = max(1, max_queue)
        self._backpressure_at = max(1, self._max_queue - self._max_queue // 10)
        self._clock = clock
        self._offset_ns = wall_clock() - clock()  # monotonic stamps -> wall clock, fixed at start
        self._base_loggable: LoggableFields = {}
        self._loggable: LoggableFields = {}
        self.set_loggable_fields(loggable_fields or {})
        self._on_ack = on_ack
        self._chain = Chain()
        self._lock = threading.Lock()
        self._ack_cond = threading.Condition(threading.Lock())
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._queue: deque[tuple[int, dict[str, Any]]] = deque()
        self._thread: threading.Thread | None = None
        self._closing = False
        self._seq = 0
        self._acked = 0
        self._head: tuple[int, str] = (0, self._chain.hash)
        self._healthy = True
        self._last_error: str | None = None
        self._written = 0
        self._dropped = 0
        self._write_errors = 0
        self._fsync_count = 0
        self._fsync_sum = 0.0
        self._fsync_hist = [0] * (len(FSYNC_BUCKETS) + 1)

    # -- construction ----------------------------------------------------------------------------

    @classmethod
    def from_config(cls, section: Mapping[str, Any] | AuditConfig | None, *,
                    clock: Callable[[], int] = time.monotonic_ns,
                    wall_clock: Callable[[], int] = time.time_ns,
                    loggable_fields: LoggableFields | None = None,
                    on_ack: Callable[[int], None] | None = None,
                    stream: BinaryIO | None = None, base_dir: str | None = None) -> AuditLog:
        """Build (not start) the log the `audit:` section describes. Raises `ConfigError`."""
        config = section if isinstance(section, AuditConfig) else parse_section(section, base_dir=base_dir)
        sink: Sink | None
        if config.sink == "off":
            sink = None
        elif config.sink == "stdout":
            sink = StreamSink(stream, wall_clock=wall_clock)
        else:
            sink = FileSink(config.path, rotate_bytes=config.rotate_bytes,
                            rotate_interval_s=config.rotate_interval_s, keep_files=config.keep_files,
                            fsync=config.fsync != "never", clock=clock, wall_clock=wall_clock)
        log = cls(sink, fsync=config.fsync, group_commit_ms=config.group_commit_ms,
                  on_failure=config.on_failure, max_queue=config.max_queue,
                  loggable_fields=config.log_arguments, clock=clock, wall_clock=wall_clock, on_ack=on_ack)
        log._base_loggable = dict(config.log_arguments)
        log.set_loggable_fields(loggable_fields or {})
        return log

    def set_loggable_fields(self, fields: LoggableFields) -> None:
        """Replace the policy-marked loggable argument names (merged with the config's `log_arguments`).

        Raises `ConfigError` for a name that looks like a secret. Safe to call from any thread.
        """
        secret = check_loggable_fields(fields)
        if secret:
            tool, name = secret[0]
            raise ConfigError(f"argument `{name}` of tool `{tool}` looks like a secret and is never logged")
        merged = {tool: frozenset(names) for tool, names in self._base_loggable.items()}
        for tool, names in fields.items():
            merged[tool] = merged.get(tool, frozenset()) | frozenset(names)
        self._loggable = merged

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Open the sink (continuing the chain from what is on disk) and start the writer thread.

        Raises `AuditUnavailable` when the log cannot be opened or continued: refuse to start.
        """
        if self._sink is None or self._thread is not None or self._closing:
            return
        try:
            self._sink.open(self._chain)
        except AuditUnavailable:
            raise
        except OSError as exc:
            raise AuditUnavailable(_describe(self._sink, exc)) from exc
        self._seq = self._acked = self._chain.seq
        self._head = self._chain.snapshot()
        thread = threading.Thread(target=self._run, name="mcpgate-audit-writer", daemon=True)
        thread.start()
        with self._lock:
            self._thread = thread  # from here on record() queues: seqs continue the chain on disk

    def close(self, timeout: float = 5.0) -> bool:
        """Stop accepting records, write what is queued, and close the sink. True if nothing was left."""
        with self._lock:
            self._closing = True
        thread = self._thread
        if thread is not None:
            self._wake.set()
            thread.join(timeout)
            if thread.is_alive():
                self._stopped.set()  # give up retrying; the writer exits at its next check
                thread.join(1.0)
        if self._sink is not None:
            try:
                self._sink.close()
            except OSError:
                pass
        return self._acked >= self._seq

    def __enter__(self) -> AuditLog:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- the data plane's calls ------------------------------------------------------------------

    def record(self, exchange: Exchange) -> int:
        """Queue the record for `exchange`; returns its seq, or `NOT_RECORDED` (sink off, not started,
        closed, queue full: counted in `records_dropped`). Never blocks or raises."""
        if self._sink is None:
            return NOT_RECORDED
        try:
            rec = build_record(exchange, self._offset_ns, self._loggable)
        except Exception as exc:  # a record we cannot build is a record lost: count it, never raise
            self._dropped += 1
            self._last_error = f"audit record for `{exchange.decision_id}` could not be built: {exc}"
            return NOT_RECORDED
        with self._lock:
            if self._closing or self._thread is None or self._seq - self._acked >= self._max_queue:
                self._dropped += 1
                return NOT_RECORDED
            self._seq += 1
            seq = self._seq
            self._queue.append((seq, rec))
        if not self._wake.is_set():
            self._wake.set()
        return seq

    def ready(self) -> str | None:
        """None when calls may be forwarded; else why not (only with `on_failure: refuse`)."""
        if self._sink is None or not self._refuse:
            return None
        if not self._healthy:
            return self._last_error or "audit log is not writing"
        if self._thread is None:
            return "audit log is not started"
        depth = self._seq - self._acked
        if depth >= self._backpressure_at:
            return f"audit queue is backed up ({depth} records waiting, limit {self._max_queue})"
        return None

    # -- acknowledgement -------------------------------------------------------------------------

    @property
    def acked_seq(self) -> int:
        """The highest seq written (and fsync'ed unless `fsync: never`): every record up to it is safe."""
        return self._acked

    @property
    def head(self) -> tuple[int, str]:
        """(seq, hash) of the last acknowledged line: publish it elsewhere to anchor the chain's tail."""
        return self._head

    def wait_acked(self, seq: int, timeout: float | None = None) -> bool:
        """Block (not on the event loop!) until `seq` is acknowledged; False on timeout."""
        if self._acked >= seq:
            return True
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._ack_cond:
            while self._acked < seq:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._ack_cond.wait(remaining)
        return True

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything queued so far is acknowledged."""
        return self.wait_acked(self._seq, timeout)

    # -- health ----------------------------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        return self._sink is not None

    @property
    def healthy(self) -> bool:
        return self._healthy

    @property
    def last_error(self) -> str | None:
        """The most recent failure; kept after recovery so operators can see what happened."""
        return self._last_error

    def stats(self) -> AuditStats:
        cumulative: list[int] = []
        total = 0
        for count in self._fsync_hist:
            total += count
            cumulative.append(total)
        return AuditStats(
            healthy=self._healthy, last_error=self._last_error, records_written=self._written,
            records_dropped=self._dropped, write_errors=self._write_errors,
            queue_depth=self._seq - self._acked, acked_seq=self._acked, fsync_count=self._fsync_count,
            fsync_sum_s=self._fsync_sum, fsync_buckets=FSYNC_BUCKETS, fsync_counts=tuple(cumulative))

    # -- the writer thread -----------------------------------------------------------------------

    def _take(self, pending: deque[tuple[int, dict[str, Any]]]) -> None:
        with self._lock:
            if self._queue:
                pending.extend(self._queue)
                self._queue.clear()

    def _run(self) -> None:
        assert self._sink is not None
        sink = self._sink
        pending: deque[tuple[int, dict[str, Any]]] = deque()
        retry = _RETRY_FIRST_S
        while not self._stopped.is_set():
            self._take(pending)
            if not pending:
                if self._closing:
                    break
                wait = sink.seconds_to_rotation()
                self._wake.wait(1.0 if wait is None else min(1.0, wait + 0.001))
                self._wake.clear()
                self._take(pending)
                if pending and self._window_s and not self._closing:
                    self._stopped.wait(self._window_s)  # gather a group; a close cuts it short
                    self._take(pending)
                if not pending:
                    self._idle(sink)
                    continue
            try:
                n = self._commit(sink, pending)
            except Exception as exc:
                self._write_errors += 1
                self._healthy = False
                self._last_error = _describe(sink, exc)
                self._stopped.wait(retry)
                retry = min(retry * 2, _RETRY_MAX_S)
                continue
            retry = _RETRY_FIRST_S
            last = pending[n - 1][0]
            for _ in range(n):
                pending.popleft()
            self._written += n
            self._head = self._chain.snapshot()
            self._acked = last
            self._healthy = True
            with self._ack_cond:
                self._ack_cond.notify_all()
            if self._on_ack is not None:
                try:
                    self._on_ack(last)
                except Exception:
                    pass  # a broken callback must not stop the audit log

    def _idle(self, sink: Sink) -> None:
        """Time-based rotation (and repair) while no records arrive."""
        try:
            sink.ensure_ready(self._chain)
            self._head = self._chain.snapshot()
        except Exception as exc:
            self._write_errors += 1
            self._healthy = False
            self._last_error = _describe(sink, exc)

    def _commit(self, sink: Sink, pending: deque[tuple[int, dict[str, Any]]]) -> int:
        """Write and sync a prefix of `pending`; returns how many records it holds. Atomic on failure."""
        chain = self._chain
        sink.ensure_ready(chain)
        committed = chain.snapshot()  # meta lines written by the sink are already durable
        try:
            limit = 1 if self._fsync == "always" else _MAX_BATCH
            room = sink.room()
            lines: list[bytes] = []
            total = 0
            for seq, rec in pending:
                if len(lines) >= limit:
                    break
                before = chain.snapshot()
                rec["seq"] = seq
                line = chain.link(rec)
                if room is not None and total + len(line) > room:
                    if lines:
                        chain.restore(before)
                        break
                    if sink.has_records:
                        chain.restore(before)
                        sink.rotate(chain)
                        committed = chain.snapshot()
                        room = sink.room()
                        line = chain.link(rec)
                lines.append(line)
                total += len(line)
            sink.write(b"".join(lines))
            spent = sink.sync()
        except BaseException:
            chain.restore(committed)
            raise
        if self._fsync != "never" and isinstance(sink, FileSink):
            self._fsync_count += 1
            self._fsync_sum += spent
            self._fsync_hist[bisect.bisect_left(FSYNC_BUCKETS, spent)] += 1
        return len(lines)
