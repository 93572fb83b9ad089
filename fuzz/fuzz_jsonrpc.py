"""Fuzz `decode_body` (single and batch) and `classify` on arbitrary bytes."""

from __future__ import annotations

import atheris

with atheris.instrument_imports(include=["mcpgate"]):
    from mcpgate.protocol.jsonrpc import DecodeLimits, decode_body
    from mcpgate.protocol.mcp import classify
    from mcpgate.protocol.model import Direction

_LIMITS = DecodeLimits(max_depth=64, max_batch=100)


def one_input(data: bytes) -> None:
    decoded = decode_body(data, allow_batch=bool(data[:1]) and data[0] == 0x5B, limits=_LIMITS)
    for msg in decoded if isinstance(decoded, list) else [decoded]:
        classify(msg, Direction.CLIENT_TO_SERVER)
        classify(msg, Direction.SERVER_TO_CLIENT)


if __name__ == "__main__":
    from fuzz._common import run

    run(one_input)
