"""End-to-end fixtures: real SDK servers and the mcpgate gateway as subprocesses on ephemeral 127.0.0.1 ports.

Servers start lazily, once per backend per test worker (tests of one backend share an `xdist_group`), and stop
at session end with SIGTERM then SIGKILL. When a test fails, the logs of every process it used are attached
to its report.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from examples.procs import Proc
from tests.e2e.harness import Stack, StackPool

USED_PROCS = pytest.StashKey[list[Any]]()  # Proc or Stack (whose gateway may start mid-test)


@pytest.fixture(scope="session")
def e2e_log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e-logs")


@pytest.fixture(scope="session")
def stack_pool(e2e_log_dir: Path) -> Iterator[StackPool]:
    pool = StackPool(e2e_log_dir)
    yield pool
    pool.stop()


@pytest.fixture
def use_procs(request: pytest.FixtureRequest) -> Any:
    """Register processes whose logs belong in this test's failure report."""
    used = request.node.stash.setdefault(USED_PROCS, [])

    def register(*procs: Proc | Stack | None) -> None:
        used.extend(p for p in procs if p is not None)

    return register


@pytest.fixture
def stack(request: pytest.FixtureRequest, stack_pool: StackPool, use_procs: Any) -> Iterator[Stack]:
    """The stack for the test's `backend` parameter; the gateway's logs are attached even if it failed."""
    s = stack_pool.get(request.param)
    use_procs(s)
    yield s


@pytest.fixture
def log_dir(e2e_log_dir: Path) -> Path:
    return e2e_log_dir


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        procs: list[Proc] = []
        for used in item.stash.get(USED_PROCS, []):
            procs.extend(used.procs() if isinstance(used, Stack) else [used])
        for proc in procs:
            report.sections.append((f"log: {proc.name} ({proc.log_path.name})", proc.log() or "(empty)"))
