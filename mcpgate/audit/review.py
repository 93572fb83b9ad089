"""Reading audit logs back: file sets, filters, summaries and following the active file across rotation."""

from __future__ import annotations

import os
import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

import msgspec

from mcpgate.audit.record import rfc3339
from mcpgate.audit.sinks import rotated_files, rotated_files_by_seq
from mcpgate.audit.verify import order_files

__all__ = [
    "Filter",
    "Summary",
    "ToolSummary",
    "expand_paths",
    "follow",
    "parse_time",
    "read_records",
    "summarize",
]

Record = dict[str, Any]
_DECODER = msgspec.json.Decoder()
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
ERROR_OUTCOMES = frozenset({"tool_error", "jsonrpc_error", "upstream_failed"})


def expand_paths(paths: Sequence[str], *, rotated: bool = True) -> list[str]:
    """Files to read, in chain order. A directory means its `*.jsonl` files; an active file brings its
    rotated siblings along unless `rotated=False`. Raises `FileNotFoundError` for a missing path."""
    found: list[str] = []
    for path in paths:
        if os.path.isdir(path):
            found.extend(os.path.join(path, n) for n in sorted(os.listdir(path)) if n.endswith(".jsonl"))
        elif os.path.isfile(path):
            if rotated:
                found.extend(rotated_files(path))
            found.append(path)
        else:
            raise FileNotFoundError(path)
    unique = list(dict.fromkeys(os.path.abspath(p) for p in found))
    return order_files(unique)


def parse_time(text: str, *, now_ns: int | None = None) -> str:
    """A bound for filtering, as the records' own time format: `1h`/`30m`/`2d` ago, an RFC 3339 time
    (offset or `Z`; naive means UTC) or a date. Raises `ValueError` for anything else."""
    from datetime import UTC, datetime

    now = time.time_ns() if now_ns is None else now_ns
    match = _DURATION.match(text.strip())
    if match:
        return rfc3339(now - int(float(match.group(1)) * _UNIT_S[match.group(2)] * 1_000_000_000))
    try:
        dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"`{text}` is neither a duration (30m, 1h, 2d) nor an RFC 3339 time") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return rfc3339(int(dt.timestamp()) * 1_000_000_000 + dt.microsecond * 1000)


@dataclass(frozen=True, slots=True)
class Filter:
    """Which records to keep. Globs (`*`, `?`, `[ab]`) match case-sensitively; bounds are inclusive."""

    since: str | None = None
    until: str | None = None
    principal: str | None = None
    target: str | None = None
    method: str | None = None
    decision: str | None = None
    rule: str | None = None
    outcome: str | None = None
    session: str | None = None
    would_deny: bool | None = None

    def matches(self, rec: Record) -> bool:
        when = rec.get("time") or ""
        if self.since is not None and when < self.since:
            return False
        if self.until is not None and when > self.until:
            return False
        if self.principal is not None and not fnmatchcase(str(rec.get("principal")), self.principal):
            return False
        if self.target is not None and not fnmatchcase(str(rec.get("target")), self.target):
            return False
        if self.method is not None and not fnmatchcase(str(rec.get("method")), self.method):
            return False
        if self.decision is not None and rec.get("decision") != self.decision:
            return False
        if self.outcome is not None and rec.get("outcome") != self.outcome:
            return False
        if self.session is not None and rec.get("session") != self.session:
            return False
        if self.would_deny is not None and bool(rec.get("would_deny")) != self.would_deny:
            return False
        if self.rule is not None:
            rules = [*(rec.get("rules") or ()), *(rec.get("would_deny_rules") or ())]
            if not any(fnmatchcase(str(r), self.rule) for r in rules):
                return False
        return True


def _parse_line(raw: bytes) -> Record | None:
    if not raw.endswith(b"}"):
        return None
    try:
        rec = _DECODER.decode(raw)
    except msgspec.DecodeError:
        return None
    return rec if isinstance(rec, dict) and rec.get("type") == "op" else None


def read_records(paths: Iterable[str], flt: Filter | None = None) -> Iterator[Record]:
    """Operation records from `paths` in order (meta and unreadable lines skipped; use verify for those)."""
    for path in paths:
        with open(path, "rb") as fh:
            for raw in fh:
                rec = _parse_line(raw.rstrip(b"\n"))
                if rec is not None and (flt is None or flt.matches(rec)):
                    yield rec


def _decode_any(raw: bytes) -> Record | None:
    try:
        rec = _DECODER.decode(raw)
    except msgspec.DecodeError:
        return None
    return rec if isinstance(rec, dict) and isinstance(rec.get("seq"), int) else None


def _catch_up(path: str, after: int, upto: int) -> Iterator[Record]:
    """Op records with `after < seq <= upto` from rotated files of `path` (files a follower skipped)."""
    for first, rotated in rotated_files_by_seq(path):
        if first <= after or first > upto:
            continue
        with open(rotated, "rb") as fh:
            for raw in fh:
                rec = _decode_any(raw.rstrip(b"\n"))
                if rec is not None and rec.get("type") == "op" and after < rec["seq"] <= upto:
                    yield rec


def follow(path: str, flt: Filter | None = None, *, poll_s: float = 0.25, after_seq: int | None = None,
           stop: Callable[[], bool] | None = None) -> Iterator[Record]:
    """Records of the active file from its start, then new ones as they are written, across rotation.

    The chain keeps it complete: when the active file is replaced, the rest of the old one is read first,
    and if a newer file's `genesis` shows files were rotated away in between, they are read from the
    rotated set. With `after_seq`, records up to it are skipped and any rotated file after it is read
    first (`after_seq=0`: the whole set). Ends when `stop()` returns True (checked while idle).
    """
    fh = None
    buffer = b""
    replaced = False
    last = after_seq
    while True:
        if fh is None:
            try:
                fh = open(path, "rb")  # noqa: SIM115 - kept open across iterations
            except FileNotFoundError:
                if stop is not None and stop():
                    return
                time.sleep(poll_s)
                continue
            buffer = b""
            replaced = False
        chunk = fh.read(1 << 16)
        if chunk:
            buffer += chunk
            *complete, buffer = buffer.split(b"\n")
            for raw in complete:
                rec = _decode_any(raw)
                if rec is None:
                    continue
                seq: int = rec["seq"]
                if rec.get("type") == "genesis":
                    if last is not None and seq > last:
                        for missed in _catch_up(path, last, seq):
                            last = missed["seq"]
                            if flt is None or flt.matches(missed):
                                yield missed
                    last = seq if last is None else max(last, seq)
                    continue
                if rec.get("type") != "op" or (last is not None and seq <= last):
                    continue
                last = seq
                if flt is None or flt.matches(rec):
                    yield rec
            continue
        if replaced:  # the renamed file was read to its end after the rename: it is final
            fh.close()
            fh = None
            continue
        try:
            replaced = os.stat(path).st_ino != os.fstat(fh.fileno()).st_ino
        except FileNotFoundError:
            replaced = False  # mid-rotation: the new file appears shortly
        if replaced:
            continue  # read what was written to the old file before the rename, then switch
        if stop is not None and stop():
            fh.close()
            return
        time.sleep(poll_s)


def _percentile(sorted_values: Sequence[float], q: float) -> float | None:
    if not sorted_values:
        return None
    rank = max(1, -(-len(sorted_values) * q // 100))  # nearest-rank
    return sorted_values[int(rank) - 1]


@dataclass(frozen=True, slots=True)
class ToolSummary:
    tool: str
    calls: int
    denied: int
    errors: int
    error_rate: float      # errors / forwarded calls
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


@dataclass(frozen=True, slots=True)
class Summary:
    records: int
    first_time: str | None
    last_time: str | None
    decisions: dict[str, int]
    outcomes: dict[str, int]
    methods: dict[str, int]
    tools: list[ToolSummary]
    denials_by_principal: list[tuple[str, int]]
    denials_by_rule: list[tuple[str, int]]
    would_deny_by_rule: list[tuple[str, int]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "records": self.records, "first_time": self.first_time, "last_time": self.last_time,
            "decisions": self.decisions, "outcomes": self.outcomes, "methods": self.methods,
            "tools": [{"tool": t.tool, "calls": t.calls, "denied": t.denied, "errors": t.errors,
                       "error_rate": t.error_rate, "p50_ms": t.p50_ms, "p95_ms": t.p95_ms,
                       "p99_ms": t.p99_ms} for t in self.tools],
            "denials_by_principal": [{"principal": p, "denials": n} for p, n in self.denials_by_principal],
            "denials_by_rule": [{"rule": r, "denials": n} for r, n in self.denials_by_rule],
            "would_deny_by_rule": [{"rule": r, "would_deny": n} for r, n in self.would_deny_by_rule],
        }


def summarize(records: Iterable[Record], *, top: int = 10) -> Summary:
    """Top tools (with latency percentiles and error rates), denials by principal and by rule."""
    count = 0
    first: str | None = None
    last: str | None = None
    decisions: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    methods: Counter[str] = Counter()
    calls: Counter[str] = Counter()
    denied: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    latencies: dict[str, list[float]] = defaultdict(list)
    by_principal: Counter[str] = Counter()
    by_rule: Counter[str] = Counter()
    would_deny: Counter[str] = Counter()
    for rec in records:
        count += 1
        when = rec.get("time")
        if isinstance(when, str):
            first = when if first is None or when < first else first
            last = when if last is None or when > last else last
        decision = str(rec.get("decision"))
        decisions[decision] += 1
        outcomes[str(rec.get("outcome"))] += 1
        methods[str(rec.get("method"))] += 1
        if decision == "deny":
            by_principal[str(rec.get("principal"))] += 1
            for rule in rec.get("rules") or ():
                by_rule[str(rule)] += 1
        for rule in rec.get("would_deny_rules") or ():
            would_deny[str(rule)] += 1
        if rec.get("kind") != "tool" or rec.get("target") is None:
            continue
        tool = str(rec["target"])
        calls[tool] += 1
        if decision == "deny":
            denied[tool] += 1
            continue
        if rec.get("outcome") in ERROR_OUTCOMES:
            errors[tool] += 1
        latency = rec.get("latency_ms")
        if isinstance(latency, int | float):
            latencies[tool].append(float(latency))
    tools = []
    for tool, n in calls.most_common(top):
        lat = sorted(latencies[tool])
        forwarded = n - denied[tool]
        tools.append(ToolSummary(tool, n, denied[tool], errors[tool],
                                 round(errors[tool] / forwarded, 4) if forwarded else 0.0,
                                 _percentile(lat, 50), _percentile(lat, 95), _percentile(lat, 99)))
    return Summary(count, first, last, dict(decisions), dict(outcomes), dict(methods.most_common()), tools,
                   by_principal.most_common(top), by_rule.most_common(top), would_deny.most_common(top))
