"""docs/protocol.md documents every error code the protocol layer raises."""

from __future__ import annotations

from pathlib import Path

from mcpgate.errors import (
    BatchNotAllowed,
    CaseVariantKey,
    DuplicateKey,
    HeaderMismatch,
    InvalidEnvelope,
    InvalidParams,
    InvalidUtf8,
    LoneSurrogate,
    MalformedJson,
    NestingTooDeep,
    NonFiniteNumber,
    SseEventTooLarge,
    UnsafeInteger,
)

DOC = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text("utf-8")


def test_every_protocol_layer_error_code_is_documented() -> None:
    raised = [MalformedJson, InvalidUtf8, NonFiniteNumber, LoneSurrogate, DuplicateKey, CaseVariantKey,
              NestingTooDeep, InvalidEnvelope, InvalidParams, BatchNotAllowed, HeaderMismatch, SseEventTooLarge,
              UnsafeInteger]
    assert [c.code for c in raised if f"`{c.code}`" not in DOC] == []
