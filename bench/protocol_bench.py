"""Micro-benchmark of the sans-IO protocol layer (not a test): µs per call and MiB/s on typical and large bodies.

Run: `.venv/bin/python -m bench.protocol_bench`. Best of several repeats of CPU time (not wall time), so
other processes on a busy machine inflate the figures less.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import time
from collections.abc import Callable

import msgspec

from mcpgate.protocol.jsonrpc import decode_body
from mcpgate.protocol.mcp import classify
from mcpgate.protocol.model import Direction, Message
from mcpgate.protocol.sse import NEED_DATA, SseFramer, encode_event

C2S = Direction.CLIENT_TO_SERVER

CALL = json.dumps({
    "jsonrpc": "2.0", "id": 42, "method": "tools/call",
    "params": {"name": "search_issues",
               "arguments": {"repo": "acme/widgets", "query": "label:bug state:open", "limit": 20,
                             "sort": "updated", "labels": ["bug", "p1"]},
               "_meta": {"progressToken": "tok-42",
                         "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}},
}, separators=(",", ":")).encode()


def tools_call(arguments: dict[str, object]) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                       "params": {"name": "upload", "arguments": arguments}}, separators=(",", ":")).encode()


BLOB = tools_call({"data": base64.b64encode(os.urandom(7_864_320)).decode()})  # ~10 MiB
TEXT = tools_call({"content": "line: \"quoted\" text\tand more éü ✓\n" * 300_000})  # escapes + non-ascii


def best(fn: Callable[[], object], number: int, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.process_time()
        for _ in range(number):
            fn()
        times.append((time.process_time() - start) / number)
    return min(times)


def decode_and_classify(body: bytes) -> object:
    msg = decode_body(body, allow_batch=False)
    assert isinstance(msg, Message)
    return classify(msg, C2S)


def frame(stream: bytes, chunk: int) -> int:
    framer = SseFramer()
    n = 0
    for i in range(0, len(stream), chunk):
        framer.receive_data(stream[i:i + chunk])
        while framer.next_event() is not NEED_DATA:
            n += 1
    return n


def main() -> None:
    print(f"tools/call body: {len(CALL)} bytes")
    for name, fn in [
        ("msgspec.json.decode (floor)", lambda: msgspec.json.decode(CALL)),
        ("json.loads (stdlib, reference)", lambda: json.loads(CALL)),
        ("decode_body", lambda: decode_body(CALL, allow_batch=False)),
        ("decode_body + classify", lambda: decode_and_classify(CALL)),
    ]:
        print(f"  {name:34} {best(fn, 20_000) * 1e6:7.2f} µs/call")
    for label, body in (("10 MiB base64 argument", BLOB), ("10 MiB escaped text argument", TEXT)):
        print(f"{label}: {len(body) / 2**20:.1f} MiB")
        cases: list[tuple[str, Callable[[], object]]] = [
            ("msgspec.json.decode (floor)", functools.partial(msgspec.json.decode, body)),
            ("decode_body + classify", functools.partial(decode_and_classify, body)),
        ]
        for name, fn in cases:
            seconds = best(fn, 3)
            print(f"  {name:34} {len(body) / seconds / 2**20:7.0f} MiB/s ({seconds * 1e3:.1f} ms)")
    event = encode_event(data=CALL.decode(), event="message", newline=b"\r\n")
    stream = (b": ping - 2026-11-22 04:20:44\r\n\r\n" + event) * 2000
    for chunk in (65536, 1024):
        seconds = best(functools.partial(frame, stream, chunk), 3)
        print(f"sse framer, {len(stream) // 1024} KiB in {chunk}-byte chunks: "
              f"{len(stream) / seconds / 2**20:5.0f} MiB/s, {seconds / 4000 * 1e6:.2f} µs/event")
    big_event = encode_event(data=BLOB.decode(), event="message", newline=b"\r\n")
    seconds = best(lambda: frame(big_event, 65536), 3)
    print(f"sse framer, one 10 MiB event in 64 KiB chunks: {len(big_event) / seconds / 2**20:5.0f} MiB/s")


if __name__ == "__main__":
    main()
