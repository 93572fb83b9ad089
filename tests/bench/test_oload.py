"""bench/oload.c: closed loop measures service time; open loop counts queueing from the intended send."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bench import loadgen, payloads

DELAY_S = 0.005


class _Slow(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["content-length"]))
        time.sleep(DELAY_S)
        body = payloads.call_result().encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def slow_server() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_closed_and_open_loop(slow_server: int, tmp_path: Path) -> None:
    exe = loadgen.build_oload(tmp_path / "build")
    body = tmp_path / "call.json"
    body.write_bytes(payloads.call_request())
    cpu = sorted(os.sched_getaffinity(0))[-1]
    closed = loadgen.oload(exe, slow_server, body, cpu=cpu, seconds=0.5, connections=1)
    assert closed["errors"] == 0
    assert closed["completed"] > 20
    assert DELAY_S * 1e6 <= closed["latency_us"]["p50"] < DELAY_S * 1e6 * 4
    # one connection offered 400/s while each answer takes >= 5 ms: requests fall behind schedule, and
    # their latency, counted from when they should have been sent, keeps growing
    opened = loadgen.oload(exe, slow_server, body, cpu=cpu, seconds=0.5, connections=1, rate=400)
    assert opened["mode"] == "open"
    assert opened["latency_us"]["p99"] > 10 * closed["latency_us"]["p50"]
    assert opened["achieved_rps"] < 400
