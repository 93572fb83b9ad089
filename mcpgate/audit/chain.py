"""The hash chain: canonical record bytes, sealing a record into a line, and unsealing a line to check it.

A line is the canonical JSON of the record without `hash` (sorted keys, no spaces, UTF-8), with
`,"hash":"<hex>"` spliced in before the closing brace; `hash = sha256(prev + canonical bytes)`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

import msgspec

__all__ = [
    "SCHEMA_VERSION",
    "ZERO_HASH",
    "Chain",
    "Unsealed",
    "canonical",
    "seal",
    "unseal",
]

SCHEMA_VERSION = 1
ZERO_HASH = "0" * 64
"""`prev` of the very first record of a log that continues nothing."""

_ENCODER = msgspec.json.Encoder(order="sorted")
_DECODER = msgspec.json.Decoder()
_TAIL = re.compile(rb',"hash":"([0-9a-f]{64})"\}\Z')
_TAIL_LEN = len(b',"hash":""}') + 64


def canonical(value: Any) -> bytes:
    """Canonical JSON: sorted keys at every depth, no whitespace, UTF-8 (msgspec's shortest float form)."""
    return _ENCODER.encode(value)


def _digest(prev: str, body: bytes) -> str:
    h = hashlib.sha256(prev.encode("ascii"))
    h.update(body)
    return h.hexdigest()


def seal(record: dict[str, Any]) -> tuple[bytes, str]:
    """The line (with its trailing newline) for `record`, which must carry `prev`; and the line's hash."""
    body = _ENCODER.encode(record)
    digest = _digest(record["prev"], body)
    return b"".join((body[:-1], b',"hash":"', digest.encode("ascii"), b'"}\n')), digest


@dataclass(frozen=True, slots=True)
class Unsealed:
    """A line taken apart: the record (without `hash`), the stored hash, and whether it checks out."""

    record: dict[str, Any]
    stored_hash: str
    computed_hash: str
    canonical: bool

    @property
    def intact(self) -> bool:
        return self.canonical and self.stored_hash == self.computed_hash


def unseal(line: bytes) -> Unsealed | None:
    """Parse one line (without its newline). None when it is not a sealed record at all."""
    match = _TAIL.search(line)
    if match is None or len(line) <= _TAIL_LEN:
        return None
    body = line[:-_TAIL_LEN] + b"}"
    try:
        record = _DECODER.decode(body)
    except msgspec.DecodeError:
        return None
    if not isinstance(record, dict) or not isinstance(record.get("prev"), str):
        return None
    try:
        computed = _digest(record["prev"], body)
    except UnicodeEncodeError:
        return None
    return Unsealed(record, match.group(1).decode("ascii"), computed, _ENCODER.encode(record) == body)


class Chain:
    """The running head of the chain (last seq and hash). Owned by the writer thread; not thread-safe."""

    __slots__ = ("hash", "seq")

    def __init__(self, seq: int = 0, head: str = ZERO_HASH) -> None:
        self.seq = seq
        self.hash = head

    def link(self, record: dict[str, Any]) -> bytes:
        """Seal a record (its `seq` already set) onto the chain and advance the head."""
        record["prev"] = self.hash
        line, self.hash = seal(record)
        if record.get("type") == "op":
            self.seq = record["seq"]
        return line

    def meta(self, record: dict[str, Any]) -> bytes:
        """Seal a meta line (genesis, resume): it carries the seq of the last record before it."""
        record["seq"] = self.seq
        record["v"] = SCHEMA_VERSION
        return self.link(record)

    def snapshot(self) -> tuple[int, str]:
        return self.seq, self.hash

    def restore(self, state: tuple[int, str]) -> None:
        self.seq, self.hash = state
