"""CLI tests run with a clean MCPGATE_* environment so the developer's shell cannot change results."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _clean_mcpgate_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("MCPGATE_"):
            monkeypatch.delenv(name)
