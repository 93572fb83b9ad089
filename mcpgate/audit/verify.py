"""Checking a chain across one or many files: the first broken line and what broke there.

Kinds: `edited` (a line's hash does not match its bytes, or its link to the line before was rewritten),
`deleted` (records or a whole file missing), `reordered` (records out of order), `truncated tail` (the
last line of the last file was cut mid-write: expected after a crash, never an acknowledged record).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from mcpgate.audit.chain import unseal

__all__ = ["Break", "VerifyReport", "order_files", "verify_files"]

EDITED = "edited"
DELETED = "deleted"
REORDERED = "reordered"
TRUNCATED_TAIL = "truncated tail"


@dataclass(frozen=True, slots=True)
class Break:
    """Where the chain breaks: `file:line` (1-based), the kind, and a sentence saying why."""

    file: str
    line: int
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.kind}: {self.detail}"


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """`ok` is True when no line was tampered with; a truncated tail alone leaves it True."""

    files: tuple[str, ...]
    records: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    head: str | None = None
    anchor: str | None = None  # the `prev` the first file starts from (not checkable here)
    problem: Break | None = None
    truncated_tail: Break | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return self.problem is None


def _first_seq(path: str) -> int:
    try:
        with open(path, "rb") as fh:
            first = fh.readline(1 << 20).rstrip(b"\n")
    except OSError:
        return -1
    sealed = unseal(first)
    seq = sealed.record.get("seq") if sealed is not None else None
    return seq if isinstance(seq, int) else -1


def order_files(paths: Iterable[str]) -> list[str]:
    """Files of one chain in chain order: by the seq their first line carries (ties keep the given order)."""
    unique = list(dict.fromkeys(paths))
    return [p for _, _, p in sorted((_first_seq(p), i, p) for i, p in enumerate(unique))]


def _iter_lines(paths: Sequence[str]) -> Iterator[tuple[int, int, bytes, bool]]:
    """(file index, 1-based line, bytes without newline, complete) for every line, streaming."""
    for index, path in enumerate(paths):
        with open(path, "rb") as fh:
            for n, raw in enumerate(fh, 1):
                complete = raw.endswith(b"\n")
                yield index, n, raw[:-1] if complete else raw, complete


def _appears_later(paths: Sequence[str], index: int, lineno: int, seq: int) -> bool:
    """Whether an op record with `seq` comes after line `lineno` of file `index` (failure path only)."""
    for i, n, raw, _ in _iter_lines(paths[index:]):
        if i == 0 and n <= lineno:
            continue
        s = unseal(raw)
        if s is not None and s.record.get("type") == "op" and s.record.get("seq") == seq:
            return True
    return False


def verify_files(paths: Sequence[str], *, order: bool = True) -> VerifyReport:
    """Verify the chain through `paths` (ordered by their first seq unless `order=False`).

    Streams: memory does not grow with the size of the files.
    """
    files = order_files(paths) if order else list(dict.fromkeys(paths))
    display = [os.path.relpath(p) if not os.path.isabs(p) else p for p in files]
    records = 0
    first: int | None = None
    last: int | None = None
    head: str | None = None
    anchor: str | None = None
    expected_seq = 0       # seq of the last op record seen
    prev_line = ""         # where the previous line was, for messages
    pending_tail: Break | None = None

    def report(problem: Break | None = None, tail: Break | None = None) -> VerifyReport:
        return VerifyReport(tuple(files), records, first, last, head, anchor, problem, tail)

    for i, (index, lineno, raw, complete) in enumerate(_iter_lines(files)):
        where = f"{display[index]}:{lineno}"

        def brk(kind: str, detail: str) -> VerifyReport:
            return report(Break(display[index], lineno, kind, detail))  # noqa: B023 - called at once

        if pending_tail is not None:
            # the cut line was not the last one: something follows it, so it was not a crash at the end
            return report(Break(pending_tail.file, pending_tail.line, DELETED,
                                f"`{pending_tail.file}` ends mid-record: the rest of the file was cut"))
        if not complete:
            pending_tail = Break(display[index], lineno, TRUNCATED_TAIL,
                                 f"the last line stops mid-record ({len(raw)} bytes, no newline): a write "
                                 "cut by a crash, never acknowledged")
            continue
        s = unseal(raw) if raw else None
        if s is None:
            return brk(EDITED, "not a sealed audit record (no valid `hash` at the end, or not JSON)")
        if not s.intact:
            why = "bytes are not in canonical form" if not s.canonical else "hash does not match the bytes"
            return brk(EDITED, f"the record's {why}")
        rec = s.record
        kind = rec.get("type")
        seq = rec.get("seq")
        if not isinstance(seq, int) or isinstance(seq, bool):
            return brk(EDITED, "the record has no integer `seq`")
        if lineno == 1 and kind != "genesis":
            return brk(DELETED, f"`{display[index]}` does not start with its `genesis` line")
        if kind == "genesis" and lineno != 1:
            return brk(REORDERED, "a `genesis` line in the middle of a file")
        if i == 0:
            anchor = rec["prev"]
            expected_seq = seq
        else:
            want = expected_seq + 1 if kind == "op" else expected_seq
            if rec["prev"] != head or seq != want:
                if kind == "genesis" and seq > want:
                    missing = rec.get("continues")
                    name = f"`{missing}`" if isinstance(missing, str) else "a file"
                    return brk(DELETED, f"{name} is missing: records {want + 1}..{seq} are not in the set "
                                        "(this file continues it)")
                if kind == "genesis" and seq == want:
                    return brk(EDITED, f"`prev` does not match the last hash of the file before "
                                       f"(ending at {prev_line}): its tail was rewritten or replaced")
                if seq > want:
                    if kind == "op" and _appears_later(files, index, lineno, want):
                        return brk(REORDERED, f"seq {seq} comes before seq {want}")
                    return brk(DELETED, f"records {want}..{seq - 1} are missing before this line"
                               if seq - 1 > want else f"record {want} is missing before this line")
                if seq < want:
                    return brk(REORDERED, f"seq {seq} comes after seq {expected_seq}")
                return brk(EDITED, f"`prev` does not match the hash of {prev_line}: one of the two lines "
                                   "was rewritten")
        if kind == "op":
            records += 1
            expected_seq = seq
            first = seq if first is None else first
            last = seq
        head = s.stored_hash
        prev_line = where
    return report(tail=pending_tail)
