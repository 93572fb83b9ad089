"""Where sealed lines go: a rotating, fsync'ed file set that keeps the chain across files, or a stream.

Sinks are driven only by the writer thread. They raise `OSError` on failure and repair themselves on the
next `ensure_ready` (drop a partial write, reopen a missing file), so the writer can simply retry.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from typing import BinaryIO, Protocol

from mcpgate.audit.chain import Chain, unseal
from mcpgate.audit.record import rfc3339
from mcpgate.errors import AuditUnavailable

__all__ = ["FileSink", "Sink", "StreamSink", "rotated_files", "rotated_files_by_seq"]

_TAIL_CHUNK = 64 * 1024


class Sink(Protocol):
    """What the writer thread needs from a destination."""

    description: str

    def open(self, chain: Chain) -> None:
        """Continue the chain from what is already there (or start one) and write a meta line."""
        ...

    def ensure_ready(self, chain: Chain) -> None:
        """Before each batch: repair after a failure, rotate when the time is up."""
        ...

    def room(self) -> int | None:
        """Bytes left before size rotation; None when unlimited."""
        ...

    @property
    def has_records(self) -> bool: ...

    def rotate(self, chain: Chain) -> None: ...

    def write(self, data: bytes) -> None: ...

    def sync(self) -> float:
        """Make everything written durable (as far as the sink can); returns the seconds spent in fsync."""
        ...

    def seconds_to_rotation(self) -> float | None: ...

    def close(self) -> None: ...


def _rotated_pattern(stem: str, suffix: str) -> re.Pattern[str]:
    return re.compile(rf"^{re.escape(stem)}-\d{{8}}T\d{{6}}Z-(\d{{12,}})(?:\.(\d+))?{re.escape(suffix)}$")


def rotated_files_by_seq(path: str) -> list[tuple[int, str]]:
    """(first seq, path) of the rotated siblings of an active log file, oldest first."""
    directory, base = os.path.split(os.path.abspath(path))
    stem, suffix = os.path.splitext(base)
    pattern = _rotated_pattern(stem, suffix)
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    found = [(int(m.group(1)), int(m.group(2) or 1), name) for name in names if (m := pattern.match(name))]
    return [(first, os.path.join(directory, name)) for first, _, name in sorted(found)]


def rotated_files(path: str) -> list[str]:
    """The rotated siblings of an active log file, oldest first (by the first seq in their names)."""
    return [p for _, p in rotated_files_by_seq(path)]


def _fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _last_line(fd: int, end: int) -> bytes:
    """The complete line ending at byte `end` (exclusive of its newline at end-1)."""
    start = end - 1
    chunks: list[bytes] = []
    pos = start
    while pos > 0:
        step = min(_TAIL_CHUNK, pos)
        chunk = os.pread(fd, step, pos - step)
        nl = chunk.rfind(b"\n")
        if nl >= 0:
            chunks.append(chunk[nl + 1:])
            break
        chunks.append(chunk)
        pos -= step
    return b"".join(reversed(chunks))


def _last_newline(fd: int, size: int) -> int:
    """Offset just past the last newline in the file, 0 when there is none."""
    pos = size
    while pos > 0:
        step = min(_TAIL_CHUNK, pos)
        chunk = os.pread(fd, step, pos - step)
        nl = chunk.rfind(b"\n")
        if nl >= 0:
            return pos - step + nl + 1
        pos -= step
    return 0


class FileSink:
    """The active file at `path`; rotated files are renamed to `<stem>-<UTC time>-<first seq><suffix>`.

    Each file starts with a `genesis` line whose `prev` is the last hash of the file before it. A process
    that finds the active file on start drops an unacknowledged torn last line and appends a `resume` line.
    """

    def __init__(self, path: str, *, rotate_bytes: int | None = None, rotate_interval_s: float | None = None,
                 keep_files: int = 0, fsync: bool = True, clock: Callable[[], int],
                 wall_clock: Callable[[], int]) -> None:
        self.path = os.path.abspath(path)
        self.description = f"file `{self.path}`"
        self._dir, base = os.path.split(self.path)
        self._stem, self._suffix = os.path.splitext(base)
        self._rotate_bytes = rotate_bytes or None
        self._rotate_ns = int(rotate_interval_s * 1e9) if rotate_interval_s else None
        self._keep = keep_files
        self._fsync = fsync
        self._clock = clock
        self._wall = wall_clock
        self._fd = -1
        self._size = 0          # bytes written to the active file
        self._good = 0          # bytes known complete (and synced when fsync is on)
        self._records = False   # the active file holds at least one op record
        self._opened_mono = 0
        self._created_wall = 0
        self._first_seq = 1

    # -- lifecycle -------------------------------------------------------------------------------

    def open(self, chain: Chain) -> None:
        try:
            os.makedirs(self._dir, exist_ok=True)
        except OSError as exc:
            raise AuditUnavailable(f"cannot create the audit directory `{self._dir}`: "
                                   f"{(exc.strerror or str(exc)).lower()}") from exc
        try:
            self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        except OSError as exc:
            raise AuditUnavailable(f"cannot open the audit log `{self.path}`: "
                                   f"{(exc.strerror or str(exc)).lower()}") from exc
        size = os.fstat(self._fd).st_size
        end = _last_newline(self._fd, size)
        torn = size - end
        if end == 0:
            if torn:
                os.ftruncate(self._fd, 0)
            self._size = self._good = 0
            self._continue_previous_file(chain)
            self._start_file(chain, continues=self._previous_name())
            return
        last = unseal(_last_line(self._fd, end))
        if last is None or not last.intact:
            os.close(self._fd)
            self._fd = -1
            raise AuditUnavailable(
                f"cannot continue the audit chain: the last line of `{self.path}` is not an intact record "
                "(run `mcpgate audit verify` and move the file aside)")
        if torn:
            os.ftruncate(self._fd, end)  # never acknowledged: it was cut before its fsync
        chain.restore((int(last.record["seq"]), last.stored_hash))
        self._size = self._good = end
        self._read_header()
        self._opened_mono = self._clock() - max(0, self._wall() - self._created_wall)
        self._append_meta(chain, {"type": "resume", "time": rfc3339(self._wall()), "torn_bytes": torn})

    def close(self) -> None:
        if self._fd >= 0:
            try:
                if self._fsync:
                    os.fsync(self._fd)
            finally:
                os.close(self._fd)
                self._fd = -1

    # -- writer interface ------------------------------------------------------------------------

    @property
    def has_records(self) -> bool:
        return self._records

    def ensure_ready(self, chain: Chain) -> None:
        if self._fd < 0:
            self._continue_previous_file(chain)
            self._start_file(chain, continues=self._previous_name())
            return
        if self._size != self._good:
            os.ftruncate(self._fd, self._good)  # drop a partial or unsynced batch; it is written again
            self._size = self._good
        if self._rotate_ns and self._records and self._clock() - self._opened_mono >= self._rotate_ns:
            self.rotate(chain)

    def room(self) -> int | None:
        return None if self._rotate_bytes is None else self._rotate_bytes - self._size

    def seconds_to_rotation(self) -> float | None:
        if not self._rotate_ns or not self._records:
            return None
        return max(0.0, (self._opened_mono + self._rotate_ns - self._clock()) / 1e9)

    def write(self, data: bytes) -> None:
        if self._fd < 0:
            raise OSError("audit file is not open")
        self._size += len(data)  # pessimistic: ensure_ready truncates back to `_good` after a failure
        _write_all(self._fd, data)
        self._records = True
        if not self._fsync:
            self._good = self._size

    def sync(self) -> float:
        if not self._fsync:
            return 0.0
        t0 = self._clock()
        os.fdatasync(self._fd)
        self._good = self._size
        return (self._clock() - t0) / 1e9

    def rotate(self, chain: Chain) -> None:
        if self._fsync:
            os.fsync(self._fd)
        rotated = self._rotated_name()
        os.rename(self.path, rotated)  # while still open: if this fails, nothing changed
        os.close(self._fd)
        self._fd = -1
        if self._fsync:
            _fsync_dir(self._dir)
        self._start_file(chain, continues=os.path.basename(rotated))
        self._prune()

    # -- internals -------------------------------------------------------------------------------

    def _start_file(self, chain: Chain, *, continues: str | None) -> None:
        if self._fd < 0:
            # Only reached after a rotation renamed the old file away: anything here is a genesis line
            # that an earlier attempt failed to finish.
            self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
            self._size = self._good = os.fstat(self._fd).st_size
        if self._size:
            os.ftruncate(self._fd, 0)
            self._size = self._good = 0
        self._created_wall = self._wall()
        self._opened_mono = self._clock()
        self._first_seq = chain.seq + 1
        self._records = False
        self._append_meta(chain, {"type": "genesis", "time": rfc3339(self._created_wall),
                                  "continues": continues})
        if self._fsync:
            _fsync_dir(self._dir)

    def _append_meta(self, chain: Chain, record: dict[str, object]) -> None:
        state = chain.snapshot()
        try:
            line = chain.meta(record)
            self.write(line)
            self.sync()
            self._good = self._size
        except BaseException:
            chain.restore(state)
            raise

    def _previous_name(self) -> str | None:
        older = rotated_files(self.path)
        return os.path.basename(older[-1]) if older else None

    def _continue_previous_file(self, chain: Chain) -> None:
        """With no active file, the chain continues from the newest rotated file (if the writer has none)."""
        if chain.hash != Chain().hash:
            return
        older = rotated_files(self.path)
        if not older:
            return
        with open(older[-1], "rb") as fh:
            fd = fh.fileno()
            size = os.fstat(fd).st_size
            end = _last_newline(fd, size)
            last = unseal(_last_line(fd, end)) if end else None
        if last is None or not last.intact:
            raise AuditUnavailable(f"cannot continue the audit chain from `{older[-1]}`: its last line is "
                                   "not an intact record")
        chain.restore((int(last.record["seq"]), last.stored_hash))

    def _read_header(self) -> None:
        first = os.pread(self._fd, _TAIL_CHUNK, 0).split(b"\n", 1)[0]
        header = unseal(first)
        self._created_wall = self._wall()
        self._first_seq = 1
        self._records = self._size > len(first) + 1
        if header is not None and header.record.get("type") == "genesis":
            self._first_seq = int(header.record.get("seq", 0)) + 1
            self._created_wall = _parse_time_ns(str(header.record.get("time", ""))) or self._created_wall

    def _rotated_name(self) -> str:
        tm = rfc3339(self._created_wall)
        stamp = tm[0:4] + tm[5:7] + tm[8:10] + "T" + tm[11:13] + tm[14:16] + tm[17:19] + "Z"
        candidate = os.path.join(self._dir, f"{self._stem}-{stamp}-{self._first_seq:012d}{self._suffix}")
        n = 1
        while os.path.exists(candidate):  # only after a restart that re-rotates the same first seq
            n += 1
            candidate = os.path.join(self._dir, f"{self._stem}-{stamp}-{self._first_seq:012d}.{n}"
                                     f"{self._suffix}")
        return candidate

    def _prune(self) -> None:
        if self._keep <= 0:
            return
        older = rotated_files(self.path)
        for path in older[:max(0, len(older) - self._keep)]:
            try:
                os.unlink(path)
            except OSError:
                pass  # retried after the next rotation


def _parse_time_ns(text: str) -> int | None:
    from datetime import datetime

    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return int(dt.timestamp()) * 1_000_000_000 + dt.microsecond * 1000


class StreamSink:
    """Lines to a binary stream (stdout for log shippers): chained, flushed per batch, never fsync'ed."""

    def __init__(self, stream: BinaryIO | None = None, *, wall_clock: Callable[[], int],
                 name: str = "stdout") -> None:
        self._stream = stream if stream is not None else sys.stdout.buffer
        self._wall = wall_clock
        self.description = name

    @property
    def has_records(self) -> bool:
        return True

    def open(self, chain: Chain) -> None:
        self.write(chain.meta({"type": "genesis", "time": rfc3339(self._wall()), "continues": None}))
        self.sync()

    def ensure_ready(self, chain: Chain) -> None:
        return None

    def room(self) -> int | None:
        return None

    def seconds_to_rotation(self) -> float | None:
        return None

    def rotate(self, chain: Chain) -> None:
        return None

    def write(self, data: bytes) -> None:
        self._stream.write(data)

    def sync(self) -> float:
        self._stream.flush()
        return 0.0

    def close(self) -> None:
        try:
            self._stream.flush()
        except (OSError, ValueError):
            pass
