"""The Grafana dashboard cannot rot: every metric and label its PromQL names exists in the telemetry catalog."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from mcpgate.telemetry import catalog

DASHBOARD = Path(__file__).resolve().parents[2] / "examples" / "grafana" / "mcpgate.json"

# Labels Prometheus adds at scrape time, and the histogram bucket label.
SCRAPE_LABELS = frozenset({"job", "instance", "le"})
KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
                      "unless", "offset", "inf", "nan"})
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_RANGE = re.compile(r"\[[^\]]*\]")
_MATCHERS = re.compile(r"([A-Za-z_:][\w:]*)?\s*\{([^}]*)\}")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)")
_IDENT = re.compile(r"(?<![\w$.])([A-Za-z_:][\w:]*)\b(\s*\()?")


def series_labels() -> dict[str, frozenset[str]]:
    """Every exposed series name with its labels (histograms as their _bucket/_sum/_count series)."""
    out: dict[str, frozenset[str]] = {}
    for spec in catalog.ALL:
        labels = frozenset(spec.labels)
        if spec.type == "histogram":
            out[spec.name + "_bucket"] = labels | {"le"}
            out[spec.name + "_sum"] = labels
            out[spec.name + "_count"] = labels
        else:
            out[spec.name] = labels
    return out


def references(expr: str) -> tuple[set[str], list[tuple[str | None, str]]]:
    """(metric names, (metric or None, label) pairs) an expression uses."""
    expr = expr.replace("$__rate_interval", "5m").replace("$__range", "1h")
    labels: list[tuple[str | None, str]] = []
    for m in _MATCHERS.finditer(_RANGE.sub("", expr)):
        for matcher in _STRING.sub('""', m.group(2)).split(","):
            if matcher.strip():
                labels.append((m.group(1), re.split(r"[=!~]", matcher, maxsplit=1)[0].strip()))
    bare = _MATCHERS.sub(lambda m: (m.group(1) or "") + " ", _RANGE.sub("", _STRING.sub('""', expr)))
    for m in _GROUPING.finditer(bare):
        labels.extend((None, name.strip()) for name in m.group(1).split(",") if name.strip())
    bare = _GROUPING.sub(" ", bare)
    names = {m.group(1) for m in _IDENT.finditer(bare)
             if not m.group(2) and m.group(1).lower() not in KEYWORDS}
    return names, labels


def expressions(node: Any) -> list[str]:
    """Every PromQL string in the dashboard: panel targets and templating queries (label_values(...))."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("expr", "definition") and isinstance(value, str):
                found.append(value)
            elif key == "query" and isinstance(value, dict) and isinstance(value.get("query"), str):
                found.append(value["query"])
            else:
                found.extend(expressions(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(expressions(item))
    return found


def problems(exprs: list[str]) -> list[str]:
    known = series_labels()
    out: list[str] = []
    for expr in exprs:
        inner = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", expr.strip())
        if inner:  # a templating query: its metric part, and the label it lists
            metric_expr, label = inner.groups()
            names, labels = references(metric_expr)
            labels.append((next(iter(names), None), label))
        else:
            names, labels = references(expr)
        if not names:
            out.append(f"no metric in `{expr}`")
        for name in names - known.keys():
            out.append(f"unknown metric `{name}` in `{expr}`")
        allowed = frozenset().union(*(known.get(n, frozenset()) for n in names)) | SCRAPE_LABELS
        for metric, label in labels:
            scope = known.get(metric, allowed) | SCRAPE_LABELS if metric else allowed
            if label not in scope:
                out.append(f"label `{label}` not on {metric or sorted(names)} in `{expr}`")
    return out


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def test_every_metric_and_label_in_the_dashboard_exists(dashboard: dict[str, Any]) -> None:
    exprs = expressions(dashboard)
    assert len(exprs) >= 20
    assert problems(exprs) == []


def test_dashboard_covers_the_required_panels(dashboard: dict[str, Any]) -> None:
    exprs = expressions(dashboard)
    used = set().union(*(references(e)[0] for e in exprs))
    assert {"mcp_server_operation_duration_seconds_bucket", "mcpgate_operations_total",
            "mcpgate_policy_decisions_total"} <= used
    joined = "\n".join(exprs)
    for q in ("0.5", "0.95", "0.99"):
        assert f"histogram_quantile({q}, sum by (target, le) (rate(mcp_server_operation_duration_seconds_bucket" \
            in joined, f"per-tool p{q} latency"
    titles = {p["title"] for p in dashboard["panels"]}
    assert {"Tool call rate by tool", "Tool errors by tool", "Denials by rule", "Denials by caller",
            "Top callers (range)"} <= titles
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for p in dashboard["panels"]:
        if p["type"] != "row":
            assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}


@pytest.mark.parametrize(("expr", "problem"), [
    ('sum(rate(mcpgate_tool_calls_total{job=~"$job"}[5m]))', "unknown metric `mcpgate_tool_calls_total`"),
    ("histogram_quantile(0.9, sum by (le) (rate(mcp_server_operation_duration_seconds[5m])))",
     "unknown metric `mcp_server_operation_duration_seconds`"),
    ('sum by (tool) (rate(mcpgate_operations_total[5m]))', "label `tool` not on"),
    ('mcpgate_policy_decisions_total{decision="deny"}', "label `decision` not on mcpgate_policy_decisions_total"),
    ("label_values(mcpgate_operations_total, tool)", "label `tool` not on mcpgate_operations_total"),
])
def test_the_checker_catches_rot(expr: str, problem: str) -> None:
    found = problems([expr])
    assert any(problem in p for p in found), found


def test_the_checker_accepts_valid_promql() -> None:
    assert problems(['topk(10, sum by (caller) (increase(mcpgate_operations_total{method="tools/call",'
                     'target=~"a|b"}[1h])))',
                     'sum(rate(mcpgate_operations_total{outcome=~"x"}[5m])) / sum(rate(mcpgate_operations_total[5m]))',
                     "label_values(mcpgate_build_info, job)"]) == []
