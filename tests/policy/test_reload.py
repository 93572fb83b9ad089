"""PolicyHolder: refuse to start on an invalid policy; on reload keep the last good one, count and log."""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

import pytest

from mcpgate.errors import ConfigError
from mcpgate.runtime.policy_reload import PolicyHolder
from tests.policy.conftest import BILLING, HEADER, call

ALLOW_X = HEADER + "rules:\n  - {id: x, effect: allow, tools: x}\n"
ALLOW_Y = HEADER + "rules:\n  - {id: y, effect: allow, tools: y}\n"
BROKEN = HEADER + "rules:\n  - {id: y, effect: alow, tools: y}\n"


def write(path: Path, text: str, *, bump: int = 0) -> None:
    path.write_text(text)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + bump * 1_000_000_000))


def wait_for(cond: object, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():  # type: ignore[operator]
            return True
        time.sleep(0.01)
    return False


def test_invalid_policy_at_start_up_raises(tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    f.write_text(BROKEN)
    with pytest.raises(ConfigError) as e:
        PolicyHolder([f])
    assert e.value.file == str(f) and e.value.line == 4
    with pytest.raises(ConfigError):
        PolicyHolder([tmp_path / "missing.yaml"])
    with pytest.raises(ConfigError):
        PolicyHolder([])


def test_reload_swaps_and_reports(tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    write(f, ALLOW_X)
    now = [100.0]
    calls: list[tuple[bool, str]] = []
    h = PolicyHolder([f], on_reload=lambda ok, rev: calls.append((ok, rev)), wall_clock=lambda: now[0])
    first = h.current
    assert h.loaded_at == 100.0 and h.revision == first.revision
    assert h.current.decide(BILLING, call("x")).allowed
    now[0] = 200.0
    write(f, ALLOW_Y, bump=1)
    assert h.reload() is True
    assert h.current is not first and h.loaded_at == 200.0
    assert h.current.decide(BILLING, call("y")).allowed
    assert not h.current.decide(BILLING, call("x")).allowed
    assert calls == [(True, h.revision)]
    # Unchanged content: success, same snapshot.
    same = h.current
    assert h.reload() is True and h.current is same


def test_invalid_reload_keeps_last_good(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    f = tmp_path / "p.yaml"
    write(f, ALLOW_X)
    calls: list[tuple[bool, str]] = []
    h = PolicyHolder([f], on_reload=lambda ok, rev: calls.append((ok, rev)))
    good = h.current
    write(f, BROKEN, bump=1)
    with caplog.at_level(logging.ERROR, logger="mcpgate.policy"):
        assert h.reload() is False
    assert h.current is good
    assert h.reload_errors == 1
    assert h.last_error is not None and h.last_error.line == 4 and h.last_error.path == "rules[0].effect"
    assert f"{f}:4:" in caplog.text and "keeping revision " + good.revision in caplog.text
    assert calls == [(False, good.revision)]
    write(f, ALLOW_Y, bump=2)
    assert h.reload() is True
    assert h.last_error is None and h.reload_errors == 1


def test_poll_reloads_only_on_change(tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    write(f, ALLOW_X)
    h = PolicyHolder([f])
    assert h.poll() is None
    write(f, ALLOW_Y, bump=1)
    assert h.poll() is True
    assert h.poll() is None
    f.unlink()
    assert h.poll() is False  # a vanished file is an invalid policy: keep the last good one
    assert h.current.decide(BILLING, call("y")).allowed


def test_directory_watch_sees_new_files(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", ALLOW_X)
    h = PolicyHolder([tmp_path])
    write(tmp_path / "b.yaml", ALLOW_Y)
    assert h.poll() is True
    assert [r.id for r in h.current.rules] == ["x", "y"]


def test_watcher_thread_polls(tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    write(f, ALLOW_X)
    with PolicyHolder([f], interval_s=0.02) as h:
        rev = h.revision
        write(f, ALLOW_Y, bump=1)
        assert wait_for(lambda: h.revision != rev)
        write(f, BROKEN, bump=2)
        assert wait_for(lambda: h.reload_errors == 1)
        assert h.current.decide(BILLING, call("y")).allowed
    assert h._thread is None


def test_reload_soon_wakes_the_watcher(tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    write(f, ALLOW_X)
    with PolicyHolder([f], interval_s=600) as h:  # only the wake-up can trigger a reload here
        rev = h.revision
        write(f, ALLOW_Y, bump=1)
        h.reload_soon()
        assert wait_for(lambda: h.revision != rev)


def test_reload_soon_without_watcher(tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    write(f, ALLOW_X)
    h = PolicyHolder([f], watch=False)
    h.start()  # no-op
    write(f, ALLOW_Y, bump=1)
    rev = h.revision
    h.reload_soon()
    assert wait_for(lambda: h.revision != rev)


def test_readers_never_see_a_broken_policy(tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    write(f, ALLOW_X)
    h = PolicyHolder([f], watch=False)
    stop = threading.Event()
    seen: set[str] = set()
    failures: list[BaseException] = []

    def reader() -> None:
        while not stop.is_set():
            try:
                d = h.current.decide(BILLING, call("x"))
                seen.add(d.revision)
            except BaseException as e:  # pragma: no cover - the assertion below reports it
                failures.append(e)

    t = threading.Thread(target=reader)
    t.start()
    for i in range(20):
        write(f, (ALLOW_X, BROKEN, ALLOW_Y)[i % 3], bump=i + 1)
        h.reload()
    stop.set()
    t.join()
    assert not failures
    assert h.reload_errors == 7
    assert len(seen) >= 1
