"""Shared type aliases used across layers."""

from __future__ import annotations

from collections.abc import Callable

Clock = Callable[[], int]
"""Monotonic clock in nanoseconds; pure layers take one instead of reading time themselves."""

Headers = list[tuple[bytes, bytes]]
"""HTTP headers as received: raw names (any case) and values, in order, duplicates kept."""
