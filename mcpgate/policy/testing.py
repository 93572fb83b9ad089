"""Policy test cases (`*.tests.yaml`): requests and the decisions they must get, plus rule coverage.

Shared by `mcpgate policy test` and the pytest suite that runs every example in `policies/`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mcpgate.config.yaml_source import YamlDoc, load_package_schema, load_yaml_file, validate
from mcpgate.errors import ConfigError
from mcpgate.policy.engine import Policy
from mcpgate.policy.model import Decision

SCHEMA_NAME = "policy.tests.schema.json"
_SPIFFE = re.compile(r"spiffe://([^/]+)/ns/([^/]+)/sa/([^/]+)\Z")
_KEY_METHOD = {"tool": "tools/call", "prompt": "prompts/get", "resource": "resources/read"}


@dataclass(frozen=True, slots=True)
class CasePrincipal:
    """A principal written in a test case (same shape as `mcpgate.identity.model.Principal`)."""

    id: str
    source: str
    trust_domain: str | None = None
    namespace: str | None = None
    service_account: str | None = None
    claims: Mapping[str, Any] = field(default_factory=dict)
    scopes: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()


def principal_from(raw: str | Mapping[str, Any]) -> CasePrincipal:
    """`spiffe://td/ns/NS/sa/SA` fills trust domain, namespace and service account; `jwt:…` is source jwt."""
    data: dict[str, Any] = {"id": raw} if isinstance(raw, str) else dict(raw)
    pid: str = data["id"]
    m = _SPIFFE.match(pid)
    if pid == "anonymous":
        source = "anonymous"
    elif pid.startswith("jwt:"):
        source = "jwt"
    else:
        source = "mtls"
    return CasePrincipal(
        id=pid,
        source=data.get("source", source),
        trust_domain=data.get("trust_domain", m.group(1) if m else None),
        namespace=data.get("namespace", m.group(2) if m else None),
        service_account=data.get("service_account", m.group(3) if m else None),
        claims=dict(data.get("claims") or {}),
        scopes=frozenset(data.get("scopes") or ()),
        groups=frozenset(data.get("groups") or ()),
    )


@dataclass(frozen=True, slots=True)
class CaseResult:
    file: str
    line: int | None
    name: str
    status: str  # "pass" | "fail" | "skip"
    problems: tuple[str, ...] = ()
    decision: Decision | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"file": self.file, "line": self.line, "name": self.name, "status": self.status,
                               "problems": list(self.problems)}
        if self.decision is not None:
            out["decision"] = {"effect": self.decision.effect.value, "rule_ids": list(self.decision.rule_ids),
                               "reason": self.decision.reason}
        return out


@dataclass(frozen=True, slots=True)
class TestReport:
    results: tuple[CaseResult, ...]
    unexercised: tuple[str, ...]
    """Rule ids no case's decision named (not in `rule_ids`, `would_deny_rule_ids` or errors)."""

    __test__ = False  # not a pytest class

    @property
    def ok(self) -> bool:
        return all(r.status != "fail" for r in self.results)

    def counts(self) -> dict[str, int]:
        out = {"pass": 0, "fail": 0, "skip": 0}
        for r in self.results:
            out[r.status] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "counts": self.counts(), "results": [r.to_dict() for r in self.results],
                "unexercised_rules": list(self.unexercised)}

    def render(self) -> str:
        lines: list[str] = []
        for r in self.results:
            where = f"{r.file}:{r.line}" if r.line else r.file
            label = {"pass": "PASS", "fail": "FAIL", "skip": "SKIP"}[r.status]
            lines.append(f"{label} {where} {r.name}")
            lines.extend(f"     {p}" for p in r.problems)
        c = self.counts()
        lines.append(f"{c['pass']} passed, {c['fail']} failed, {c['skip']} skipped")
        if self.unexercised:
            lines.append("rules no test exercises: " + ", ".join(f"`{i}`" for i in self.unexercised))
        return "\n".join(lines)


def load_tests(path: str | os.PathLike[str]) -> YamlDoc:
    doc = load_yaml_file(path)
    if doc.value is None:
        raise ConfigError("test file is empty", file=doc.file, line=1)
    validate(doc, load_package_schema(SCHEMA_NAME))
    for i, case in enumerate(doc.value["tests"]):
        keys = [k for k in ("tool", "prompt", "resource", "target") if k in case]
        if len(keys) > 1:
            raise doc.error(("tests", i, keys[1]), f"set one of `tool`, `prompt`, `resource`, `target`, "
                            f"not `{keys[0]}` and `{keys[1]}`")
        if ("target" in case or not keys) and "method" not in case:
            raise doc.error(("tests", i), "a case without `tool`, `prompt` or `resource` needs `method`")
    return doc


def policy_files_for(doc: YamlDoc) -> list[str]:
    """The policy files a test file names (relative to it), else its sibling `X.yaml` for `X.tests.yaml`."""
    base = os.path.dirname(doc.file)
    named = doc.value.get("policy")
    if named:
        return [os.path.join(base, p) for p in named]
    stem = re.sub(r"\.tests\.ya?ml\Z", "", os.path.basename(doc.file))
    return [os.path.join(base, stem + ".yaml")]


def run_tests(policy: Policy, docs: Sequence[YamlDoc]) -> TestReport:
    results: list[CaseResult] = []
    exercised: set[str] = set()
    for doc in docs:
        for i, case in enumerate(doc.value["tests"]):
            line = doc.line_of(("tests", i))
            if "skip" in case:
                results.append(CaseResult(doc.file, line, case["name"], "skip",
                                          (f"skipped: {case['skip']}",)))
                continue
            d = decide_case(policy, case)
            exercised.update(d.rule_ids, d.would_deny_rule_ids, d.errored_rule_ids)
            problems = _compare(case, d)
            results.append(CaseResult(doc.file, line, case["name"], "fail" if problems else "pass",
                                      tuple(problems), d))
    unexercised = tuple(r.id for r in policy.rules if r.id not in exercised)
    return TestReport(tuple(results), unexercised)


def decide_case(policy: Policy, case: Mapping[str, Any]) -> Decision:
    principal = principal_from(case["principal"])
    key = next((k for k in ("tool", "prompt", "resource") if k in case), None)
    method = case.get("method") or _KEY_METHOD[key or "tool"]
    target = case.get(key) if key else case.get("target")
    return policy.decide_one(principal, method, target, case.get("arguments"))


def _compare(case: Mapping[str, Any], d: Decision) -> list[str]:
    problems: list[str] = []
    if d.effect.value != case["expect"]:
        problems.append(f"expected {case['expect']}, got {d.effect.value}: {d.reason}")
    for key, got in (("rule_ids", list(d.rule_ids)), ("would_deny_rule_ids", list(d.would_deny_rule_ids))):
        if key in case and case[key] != got:
            problems.append(f"expected {key} {case[key]}, got {got}")
    for flag, got_flag in (("would_deny", d.would_deny), ("hidden", d.hidden)):
        if flag in case and case[flag] is not got_flag:
            problems.append(f"expected {flag} {str(case[flag]).lower()}, got {str(got_flag).lower()}")
    return problems
