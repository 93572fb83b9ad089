"""Run a scenario direct and through the gateway, and insist the client saw the same thing both ways."""

from __future__ import annotations

import difflib
import json
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

SCENARIO_TIMEOUT = 40.0
_direct_results: dict[tuple[Any, ...], Any] = {}


def render(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


def assert_same(direct: Any, gateway: Any, what: str) -> None:
    if direct == gateway:
        return
    diff = "\n".join(difflib.unified_diff(render(direct).splitlines(), render(gateway).splitlines(),
                                          "direct", "gateway", lineterm=""))
    raise AssertionError(f"{what}: the client saw something different through the gateway\n{diff}")


async def bounded(fn: Callable[[], Awaitable[Any]], what: str) -> Any:
    try:
        with anyio.fail_after(SCENARIO_TIMEOUT):
            return await fn()
    except TimeoutError:
        raise AssertionError(f"{what}: no result within {SCENARIO_TIMEOUT}s (hang)") from None


async def compared(key: tuple[Any, ...], via: str, run: Callable[[str], Awaitable[Any]]) -> Any:
    """The `via` result of `run`; through the gateway it must equal the direct result (cached per worker)."""
    if key not in _direct_results:
        _direct_results[key] = await bounded(lambda: run("direct"), f"{key} direct")
    direct = _direct_results[key]
    if via == "direct":
        return direct
    got = await bounded(lambda: run("gateway"), f"{key} gateway")
    assert_same(direct, got, " ".join(map(str, key)))
    return got


def compared_sync(key: tuple[Any, ...], via: str, run: Callable[[str], Any]) -> Any:
    """`compared` for blocking runners (the Node.js client runs as a subprocess with its own timeout)."""
    if key not in _direct_results:
        _direct_results[key] = run("direct")
    direct = _direct_results[key]
    if via == "direct":
        return direct
    got = run("gateway")
    assert_same(direct, got, " ".join(map(str, key)))
    return got
