"""docs/dashboards.md stays true: it names every field the API returns, and what it links to exists."""

from __future__ import annotations

import json
import re
from pathlib import Path

from mcpgate.telemetry import Metrics
from mcpgate.telemetry.recent import RecentExchanges
from mcpgate.telemetry.snapshot import DashboardSnapshot
from tests.telemetry.exchanges import DENY, make_exchange

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "dashboards.md").read_text()


def test_every_api_field_is_documented() -> None:
    metrics = Metrics()
    metrics.learn_targets("tool", ["echo"])
    recent = RecentExchanges()
    for ex in (make_exchange(), make_exchange(decision=DENY)):
        metrics.started(ex)
        metrics.finished(ex)
        recent.add(ex)
    snap = json.loads(json.dumps(DashboardSnapshot(metrics, recent, lambda: {}).snapshot()))
    keys = set(snap) | set(snap["totals"]) | set(snap["policy"]) | set(snap["denials"])
    keys |= set(snap["tools"][0]) | set(snap["tools"][0]["latency"]) | set(snap["recent"][0])
    keys |= set(snap["methods"][0])
    missing = sorted(k for k in keys if f'"{k}"' not in DOC)
    assert missing == [], f"fields missing from docs/dashboards.md's example: {missing}"


def test_linked_files_exist_and_screenshot_is_small() -> None:
    for target in re.findall(r"\]\(([^)#]+)\)", DOC):
        if not target.startswith("http"):
            assert (ROOT / "docs" / target).exists(), target
    image = ROOT / "docs" / "img" / "dashboard.png"
    data = image.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and 10_000 < len(data) < 200_000
    assert (ROOT / "examples" / "grafana" / "mcpgate.json").exists()
    assert "http://127.0.0.1:9180/dashboard" in DOC
