"""Fuzz the SSE framer: the first byte picks split points and the event limit; events must not depend on
how the stream was split, and only typed errors may escape."""

from __future__ import annotations

import atheris

with atheris.instrument_imports(include=["mcpgate"]):
    from mcpgate.protocol.sse import NEED_DATA, SseFramer


def _frame(chunks: list[bytes], limit: int) -> list[bytes]:
    framer = SseFramer(limit)
    out: list[bytes] = []
    for i, c in enumerate([*chunks, b""]):
        if i == len(chunks):
            out.append(framer.receive_eof())
        else:
            framer.receive_data(c)
        while True:
            ev = framer.next_event()
            if ev is NEED_DATA:
                break
            out.append(ev.raw)  # type: ignore[union-attr]
    return out


def one_input(data: bytes) -> None:
    if not data:
        return
    step = data[0] % 7 + 1
    limit = 64 + data[0] * 16
    body = data[1:]
    whole = _frame([body], limit)
    pieces = _frame([body[i:i + step] for i in range(0, len(body), step)], limit)
    if whole != pieces:
        raise AssertionError(f"split at every {step} bytes changed the events: {whole!r} != {pieces!r}")


if __name__ == "__main__":
    from fuzz._common import run

    run(one_input)
