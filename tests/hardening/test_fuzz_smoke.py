"""A few seconds of each coverage-guided atheris target (`make fuzz` runs them for minutes): no crash."""

from __future__ import annotations

import sys
from collections.abc import Callable

import pytest

from fuzz.run import TARGETS, run_target


@pytest.mark.slow
@pytest.mark.parametrize("target", TARGETS)
def test_fuzz_target_runs_clean(target: str, record_property: Callable[[str, object], None]) -> None:
    r = run_target(target, 3, sys.executable)
    record_property("fuzz_target", target)
    record_property("executions", r["executions"])
    assert r["rc"] == 0, f"fuzz finding in `{target}`: {r['findings']}\n{r['tail']}"
    assert int(r["executions"]) > 1000  # type: ignore[call-overload]
