"""The audit log: one hash-chained, durably written record per MCP operation and decision, and the tools
to verify and review it (see docs/audit.md)."""

from __future__ import annotations

from mcpgate.audit.chain import SCHEMA_VERSION, ZERO_HASH, canonical
from mcpgate.audit.config import AuditConfig, parse_section
from mcpgate.audit.log import FSYNC_BUCKETS, NOT_RECORDED, AuditLog, AuditStats
from mcpgate.audit.record import LoggableFields, build_record, digest_arguments
from mcpgate.audit.review import Filter, Summary, expand_paths, follow, parse_time, read_records, summarize
from mcpgate.audit.sinks import FileSink, Sink, StreamSink, rotated_files
from mcpgate.audit.verify import Break, VerifyReport, order_files, verify_files

__all__ = [
    "FSYNC_BUCKETS",
    "NOT_RECORDED",
    "SCHEMA_VERSION",
    "ZERO_HASH",
    "AuditConfig",
    "AuditLog",
    "AuditStats",
    "Break",
    "FileSink",
    "Filter",
    "LoggableFields",
    "Sink",
    "StreamSink",
    "Summary",
    "VerifyReport",
    "build_record",
    "canonical",
    "digest_arguments",
    "expand_paths",
    "follow",
    "order_files",
    "parse_section",
    "parse_time",
    "read_records",
    "rotated_files",
    "summarize",
    "verify_files",
]
