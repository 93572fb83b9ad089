"""Every example in `policies/` is valid, has a tests file, passes it, and every rule is exercised."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcpgate.policy import load_policy
from mcpgate.policy.testing import load_tests, policy_files_for, run_tests

POLICIES = Path(__file__).resolve().parents[2] / "policies"
POLICY_FILES = sorted(p for p in POLICIES.glob("*.yaml") if not p.name.endswith(".tests.yaml"))
TEST_FILES = sorted(POLICIES.glob("*.tests.yaml"))


def test_examples_exist() -> None:
    names = {p.name for p in POLICY_FILES}
    assert {"deny-all.yaml", "audit-only.yaml", "payments.yaml"} <= names


@pytest.mark.parametrize("path", POLICY_FILES, ids=lambda p: p.name)
def test_every_policy_has_tests(path: Path) -> None:
    assert path.with_name(path.name.replace(".yaml", ".tests.yaml")).exists()


@pytest.mark.parametrize("path", TEST_FILES, ids=lambda p: p.name)
def test_policy_examples(path: Path) -> None:
    doc = load_tests(path)
    policy = load_policy(policy_files_for(doc))
    report = run_tests(policy, [doc])
    assert report.ok, report.render()
    assert report.counts()["pass"] == len(doc.value["tests"])
    assert report.unexercised == (), report.render()
