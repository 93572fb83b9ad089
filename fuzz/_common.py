"""Shared harness: a target module defines `one_input(data: bytes)`; anything but a typed `McpgateError` is a
finding (libFuzzer saves the input under `-artifact_prefix` and exits non-zero)."""

from __future__ import annotations

import sys
from collections.abc import Callable


def run(one_input: Callable[[bytes], None]) -> None:
    import atheris

    def target(data: bytes) -> None:
        from mcpgate.errors import McpgateError

        try:
            one_input(data)
        except McpgateError:
            pass

    atheris.Setup(sys.argv, target)
    atheris.Fuzz()
