"""Audit record v1: the fields taken from one `Exchange`, argument digests, and what may be logged raw.

Arguments are logged as a sha256 digest of their canonical JSON; raw values only for fields a rule marks
loggable, and never for names or values that look like secrets.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Mapping
from typing import Any

from mcpgate.audit.chain import SCHEMA_VERSION, canonical
from mcpgate.exchange import Exchange
from mcpgate.protocol.model import OpKind

__all__ = [
    "LoggableFields",
    "build_record",
    "check_loggable_fields",
    "digest_arguments",
    "rfc3339",
    "secret_name",
]

LoggableFields = Mapping[str, frozenset[str]]
"""Tool name -> argument names whose raw values may appear in the record."""

_SECRET_NAME = re.compile(
    r"(pass(word|wd|phrase)?|secret|token|api[-_]?key|auth(orization)?|cookie|credential|private[-_]?key"
    r"|session[-_]?key|signature|otp|pin\b|ssn|card[-_]?number|cvv)",
    re.IGNORECASE,
)
_SECRET_VALUE = re.compile(
    r"(eyJ[\w-]{8,}\.[\w-]{8,}\.[\w-]*"          # JWT
    r"|\b(bearer|basic)\s+[\w.~+/=-]{8,}"          # authorization header values
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----"
    r"|\b(sk|pk|rk)_(live|test)_\w{8,}"            # common API key shapes
    r"|\bgh[pousr]_\w{20,}|\bAKIA[0-9A-Z]{16}\b|\bxox[abprs]-[\w-]{10,})",
    re.IGNORECASE,
)
_URI_USERINFO = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)[^/?#@]*@")
REDACTED = "[redacted]"
MAX_LOGGED_CHARS = 1024


def secret_name(name: str) -> bool:
    """Whether an argument name looks like it holds a secret (such fields are never logged raw)."""
    return _SECRET_NAME.search(name) is not None


def check_loggable_fields(fields: LoggableFields) -> list[tuple[str, str]]:
    """The (tool, field) pairs that may not be marked loggable because their names look like secrets."""
    return [(tool, f) for tool, names in fields.items() for f in sorted(names) if secret_name(f)]


_last_second: list[Any] = [None, ""]  # (unix second, "YYYY-MM-DDTHH:MM:SS"): formatting is the costly part


def rfc3339(wall_ns: int) -> str:
    """UTC RFC 3339 with microseconds, always `YYYY-MM-DDTHH:MM:SS.ffffffZ` (sorts as text)."""
    secs, rest = divmod(wall_ns, 1_000_000_000)
    cached = _last_second
    if cached[0] != secs:
        tm = time.gmtime(secs)
        prefix = (f"{tm.tm_year:04d}-{tm.tm_mon:02d}-{tm.tm_mday:02d}T{tm.tm_hour:02d}:{tm.tm_min:02d}:"
                  f"{tm.tm_sec:02d}")
        cached[:] = [secs, prefix]  # one slice assignment: readers on other threads see a consistent pair
        return f"{prefix}.{rest // 1000:06d}Z"
    return f"{cached[1]}.{rest // 1000:06d}Z"


def digest_arguments(arguments: Any) -> str | None:
    """`sha256:<hex>` of the canonical JSON of the arguments; None when there are none."""
    if arguments is None:
        return None
    try:
        body = canonical(arguments)
    except (TypeError, ValueError, OverflowError):
        body = repr(arguments).encode("utf-8", "replace")
    return "sha256:" + hashlib.sha256(body).hexdigest()


def _scrub(value: Any, depth: int = 0) -> Any:
    """A loggable value with secret-looking keys and values redacted and long strings cut."""
    if depth > 8:
        return REDACTED
    if isinstance(value, str):
        if _SECRET_VALUE.search(value):
            return REDACTED
        return value if len(value) <= MAX_LOGGED_CHARS else value[:MAX_LOGGED_CHARS] + "...[truncated]"
    if isinstance(value, Mapping):
        return {str(k): REDACTED if secret_name(str(k)) else _scrub(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v, depth + 1) for v in value[:64]]
    if value is None or isinstance(value, bool | int | float):
        return value
    return REDACTED


def _logged_arguments(arguments: Any, fields: frozenset[str] | None) -> dict[str, Any] | None:
    if not fields or not isinstance(arguments, Mapping):
        return None
    out = {name: _scrub(arguments[name]) for name in sorted(fields)
           if name in arguments and not secret_name(name)}
    return out or None


def _target(target: str | None) -> str | None:
    # A resource URI may carry credentials in its userinfo (`https://user:pass@host/...`).
    if target is None or "@" not in target:
        return target
    return _URI_USERINFO.sub(r"\1" + REDACTED + "@", target)


def _ms(ns: int | None) -> float | None:
    return None if ns is None else round(ns / 1_000_000, 3)


def build_record(exchange: Exchange, wall_offset_ns: int, loggable: LoggableFields) -> dict[str, Any]:
    """The v1 record for one exchange, without `seq`, `prev` and `hash` (the writer adds those)."""
    op = exchange.operation
    req = exchange.request
    decision = exchange.decision
    principal = exchange.principal
    t_end = exchange.t_end
    t_first = exchange.t_first_byte
    record: dict[str, Any] = {
        "v": SCHEMA_VERSION,
        "type": "op",
        "time": rfc3339(exchange.t_start + wall_offset_ns),
        "decision_id": exchange.decision_id,
        "principal": principal.id,
        "auth": principal.source,
        "session": req.session_id,
        "protocol_version": op.protocol_version or req.protocol_version,
        "transport": req.transport,
        "direction": op.direction._value_,
        "kind": op.kind._value_,
        "method": op.method,
        "target": _target(op.target),
        "args_digest": digest_arguments(op.arguments),
        "decision": decision.effect._value_,
        "rules": list(decision.rule_ids),
        "policy_revision": decision.revision,
        "would_deny": decision.would_deny,
        "outcome": None if exchange.outcome is None else exchange.outcome._value_,
        "error_code": exchange.error_code,
        "latency_ms": None if t_end is None else _ms(t_end - exchange.t_start),
        "ttfb_ms": None if t_first is None else _ms(t_first - exchange.t_start),
        "bytes_in": exchange.bytes_in,
        "bytes_out": exchange.bytes_out,
        "upstream": _upstream(exchange.extra.get("upstream")),
    }
    if op.targets:
        record["targets"] = [_target(t) for t in op.targets]
    if decision.would_deny_rule_ids:
        record["would_deny_rules"] = list(decision.would_deny_rule_ids)
    if op.kind is OpKind.TOOL_CALL and op.target is not None:
        logged = _logged_arguments(op.arguments, loggable.get(op.target))
        if logged is not None:
            record["args"] = logged
    return record


def _upstream(value: Any) -> str | None:
    if value is None:
        return None
    return _target(str(value))
