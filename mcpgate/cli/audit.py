"""`mcpgate audit show|summary|verify`: review and check hash-chained audit logs (docs/audit.md)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterable
from typing import Any

from mcpgate.audit.review import Filter, expand_paths, follow, parse_time, read_records, summarize
from mcpgate.audit.verify import VerifyReport, verify_files
from mcpgate.cli._common import EXIT_ERROR, EXIT_INVALID, EXIT_OK

__all__ = ["register"]


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("audit", help="review and verify audit logs",
                              description="Review and verify mcpgate's hash-chained audit logs.")
    sub = p.add_subparsers(dest="audit_command", metavar="SUBCOMMAND", required=True)

    show = sub.add_parser("show", help="print records matching filters (a table, or JSON Lines)")
    _files_and_filters(show)
    show.add_argument("--format", choices=("table", "json"), default="table")
    show.add_argument("--limit", type=int, metavar="N", help="stop after N records")
    show.add_argument("--follow", "-f", action="store_true",
                      help="keep printing new records as they are written, across rotation")
    show.add_argument("--follow-for", type=float, metavar="SECONDS",
                      help="with --follow: stop after this long (for scripts)")
    show.set_defaults(handler=_show)

    summary = sub.add_parser("summary", help="top tools, denials by principal and rule, latency, errors")
    _files_and_filters(summary)
    summary.add_argument("--format", choices=("table", "json"), default="table")
    summary.add_argument("--top", type=int, default=10, metavar="N", help="rows per table (default 10)")
    summary.set_defaults(handler=_summary)

    verify = sub.add_parser("verify", help="check the hash chain through a set of files")
    verify.add_argument("files", nargs="+", metavar="FILE",
                        help="log files or directories; an active file brings its rotated files along")
    verify.add_argument("--no-rotated", action="store_true", help="only the files named")
    verify.add_argument("--strict", action="store_true", help="a truncated tail fails too")
    verify.add_argument("--format", choices=("text", "json"), default="text")
    verify.set_defaults(handler=_verify)


def _files_and_filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="log files or directories; an active file brings its rotated files along")
    p.add_argument("--no-rotated", action="store_true", help="only the files named")
    g = p.add_argument_group("filters (all must match; globs use * ? [..])")
    g.add_argument("--since", metavar="WHEN", help="from this long ago (30m, 1h, 2d) or an RFC 3339 time")
    g.add_argument("--from", dest="from_", metavar="TIME", help="from this RFC 3339 time (inclusive)")
    g.add_argument("--until", metavar="TIME", help="up to this RFC 3339 time or duration ago (inclusive)")
    g.add_argument("--principal", metavar="GLOB", help="caller id, e.g. 'spiffe://*/ns/billing/*'")
    g.add_argument("--tool", "--target", dest="target", metavar="GLOB", help="tool name, resource URI, ...")
    g.add_argument("--method", metavar="GLOB", help="JSON-RPC method, e.g. 'tools/*'")
    g.add_argument("--decision", choices=("allow", "deny"))
    g.add_argument("--rule", metavar="GLOB", help="a rule that decided (or would have denied)")
    g.add_argument("--outcome", choices=("ok", "tool_error", "input_required", "task", "jsonrpc_error",
                                          "denied", "upstream_failed", "cancelled", "rejected"))
    g.add_argument("--session", metavar="ID")
    g.add_argument("--would-deny", action="store_true", help="only records an audit-mode rule would deny")


class _BadArgs(Exception):
    pass


def _filter(args: argparse.Namespace) -> Filter:
    try:
        since = parse_time(args.since) if args.since else None
        start = parse_time(args.from_) if args.from_ else None
        until = parse_time(args.until) if args.until else None
    except ValueError as e:
        raise _BadArgs(str(e)) from None
    lower = max(x for x in (since, start) if x is not None) if since or start else None
    return Filter(since=lower, until=until, principal=args.principal, target=args.target,
                  method=args.method, decision=args.decision, rule=args.rule, outcome=args.outcome,
                  session=args.session, would_deny=True if args.would_deny else None)


def _paths(args: argparse.Namespace) -> list[str]:
    try:
        return expand_paths(args.files, rotated=not args.no_rotated)
    except FileNotFoundError as e:
        raise _BadArgs(f"no such file or directory `{e.args[0]}`") from None


def _guard(fn: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            code: int = fn(args)
            return code
        except _BadArgs as e:
            print(f"mcpgate: {e}", file=sys.stderr)
            return EXIT_INVALID
        except OSError as e:
            print(f"mcpgate: cannot read `{e.filename}`: {e.strerror}", file=sys.stderr)
            return EXIT_ERROR
    return run


_COLUMNS = (("time", 27), ("principal", 34), ("auth", 9), ("operation", 34), ("decision", 8),
            ("rules", 20), ("outcome", 14), ("ms", 8))


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "~"


def _row(rec: dict[str, Any]) -> str:
    op = str(rec.get("method") or "")
    if rec.get("target") is not None:
        op += " " + str(rec["target"])
    latency = rec.get("latency_ms")
    values = {
        "time": str(rec.get("time", "")), "principal": str(rec.get("principal", "")),
        "auth": str(rec.get("auth", "")), "operation": op,
        "decision": str(rec.get("decision", "")) + ("*" if rec.get("would_deny") else ""),
        "rules": ",".join(map(str, rec.get("rules") or ())), "outcome": str(rec.get("outcome") or "-"),
        "ms": "-" if latency is None else f"{latency:.1f}",
    }
    return "  ".join(_cut(values[name], w).ljust(w) for name, w in _COLUMNS).rstrip()


def _header() -> str:
    return "  ".join(name.upper().ljust(w) for name, w in _COLUMNS).rstrip()


def _emit(records: Iterable[dict[str, Any]], fmt: str, limit: int | None, shown: list[int]) -> bool:
    """Print records; False once `limit` is reached."""
    for rec in records:
        if limit is not None and shown[0] >= limit:
            return False
        if fmt == "json":
            print(json.dumps(rec, ensure_ascii=False, separators=(",", ":")), flush=True)
        else:
            print(_row(rec), flush=True)
        shown[0] += 1
    return True


@_guard
def _show(args: argparse.Namespace) -> int:
    flt = _filter(args)
    paths = _paths(args)
    if args.limit is not None and args.limit < 0:
        raise _BadArgs("--limit must be 0 or more")
    if args.format == "table":
        print(_header())
    shown = [0]
    if not args.follow:
        _emit(read_records(paths, flt), args.format, args.limit, shown)
        return EXIT_OK
    *older, active = paths
    last = [0]

    def earlier() -> Iterable[dict[str, Any]]:
        for rec in read_records(older):
            last[0] = max(last[0], rec["seq"])
            if flt.matches(rec):
                yield rec

    if not _emit(earlier(), args.format, args.limit, shown):
        return EXIT_OK
    deadline = None if args.follow_for is None else time.monotonic() + args.follow_for
    stop = (lambda: False) if deadline is None else (lambda: time.monotonic() >= deadline)
    # after_seq: the chain fills in files rotated away between listing them and opening the active one
    records = follow(active, flt, poll_s=0.1, stop=stop, after_seq=None if args.no_rotated else last[0])
    try:
        _emit(records, args.format, args.limit, shown)
    except KeyboardInterrupt:
        pass
    return EXIT_OK


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


@_guard
def _summary(args: argparse.Namespace) -> int:
    flt = _filter(args)
    summary = summarize(read_records(_paths(args), flt), top=args.top)
    if args.format == "json":
        print(json.dumps(summary.to_dict(), indent=2))
        return EXIT_OK
    print(f"{summary.records} records, {summary.first_time or '-'} .. {summary.last_time or '-'}")
    print("decisions: " + ", ".join(f"{k} {v}" for k, v in sorted(summary.decisions.items())))
    print("outcomes:  " + ", ".join(f"{k} {v}" for k, v in sorted(summary.outcomes.items())))
    print()
    print(f"{'TOOL':32}  {'CALLS':>7}  {'DENIED':>7}  {'ERRORS':>7}  {'ERR%':>6}  "
          f"{'P50 MS':>8}  {'P95 MS':>8}  {'P99 MS':>8}")
    for t in summary.tools:
        print(f"{_cut(t.tool, 32):32}  {t.calls:>7}  {t.denied:>7}  {t.errors:>7}  "
              f"{t.error_rate * 100:>6.1f}  {_ms(t.p50_ms):>8}  {_ms(t.p95_ms):>8}  {_ms(t.p99_ms):>8}")
    for title, rows in (("DENIALS BY PRINCIPAL", summary.denials_by_principal),
                        ("DENIALS BY RULE", summary.denials_by_rule),
                        ("WOULD DENY BY RULE (audit mode)", summary.would_deny_by_rule)):
        if rows:
            print()
            print(title)
            for name, n in rows:
                print(f"  {n:>7}  {name}")
    return EXIT_OK


def _report_dict(report: VerifyReport) -> dict[str, Any]:
    def brk(b: Any) -> dict[str, Any] | None:
        return None if b is None else {"file": b.file, "line": b.line, "kind": b.kind, "detail": b.detail}

    return {"ok": report.ok, "files": list(report.files), "records": report.records,
            "first_seq": report.first_seq, "last_seq": report.last_seq, "head": report.head,
            "anchor": report.anchor, "problem": brk(report.problem),
            "truncated_tail": brk(report.truncated_tail)}


@_guard
def _verify(args: argparse.Namespace) -> int:
    report = verify_files(_paths(args))
    failed = not report.ok or (args.strict and report.truncated_tail is not None)
    if args.format == "json":
        out = _report_dict(report)
        out["ok"] = not failed
        print(json.dumps(out, indent=2))
        return EXIT_ERROR if failed else EXIT_OK
    if report.problem is not None:
        print(f"FAILED {report.problem}")
    else:
        print(f"ok: {report.records} records (seq {report.first_seq}..{report.last_seq}) in "
              f"{len(report.files)} file(s); head {report.head}")
    if report.truncated_tail is not None:
        label = "FAILED" if args.strict else "warning"
        print(f"{label} {report.truncated_tail}")
    return EXIT_ERROR if failed else EXIT_OK
