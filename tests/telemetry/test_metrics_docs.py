"""docs/metrics.md documents exactly the metrics the registry exposes, with their types and labels."""

from __future__ import annotations

import re
from pathlib import Path

from mcpgate.telemetry import Metrics, catalog
from tests.telemetry.exchanges import ALLOW, DENY, WORKLOAD, WOULD_DENY, make_exchange

DOC = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"
ROW = re.compile(
    r"^\| `(?P<name>[a-z_:][a-z0-9_:]*)` \| (?P<type>counter|gauge|histogram) \| (?P<labels>[^|]*) \|")


def documented() -> dict[str, tuple[str, tuple[str, ...]]]:
    out: dict[str, tuple[str, tuple[str, ...]]] = {}
    for line in DOC.read_text("utf-8").splitlines():
        m = ROW.match(line)
        if m:
            assert m["name"] not in out, f"`{m['name']}` documented twice"
            labels = tuple(re.findall(r"`([a-z_]+)`", m["labels"]))
            out[m["name"]] = (m["type"], labels)
    return out


def registered() -> dict[str, tuple[str, set[str]]]:
    """What the registry exposes after some traffic: name as scraped, type, labels seen on samples."""
    m = Metrics()
    for ex in (make_exchange(principal=WORKLOAD, decision=ALLOW),
               make_exchange(principal=WORKLOAD, decision=DENY),
               make_exchange(principal=WORKLOAD, decision=WOULD_DENY)):
        m.started(make_exchange())
        m.finished(ex)
    m.policy_reloaded(True, "r1")
    m.identity_used("mtls")
    m.upstream_error("timeout")
    out: dict[str, tuple[str, set[str]]] = {}
    for family in m.registry.collect():
        name = family.name + "_total" if family.type == "counter" else family.name
        labels = {k for s in family.samples for k in s.labels if k != "le"}
        out[name] = (family.type, labels)
    return out


def test_every_registered_metric_is_documented_and_vice_versa() -> None:
    docs, reg = documented(), registered()
    assert sorted(set(reg) - set(docs)) == [], "registered but not in docs/metrics.md"
    assert sorted(set(docs) - set(reg)) == [], "in docs/metrics.md but not registered"


def test_documented_types_and_labels_match() -> None:
    docs, reg = documented(), registered()
    for name, (mtype, labels) in reg.items():
        doc_type, doc_labels = docs[name]
        assert doc_type == mtype, name
        assert labels <= set(doc_labels), f"{name}: undocumented labels {labels - set(doc_labels)}"


def test_catalog_matches_docs() -> None:
    docs = documented()
    assert {s.name: (s.type, s.labels) for s in catalog.ALL} == docs


def test_every_config_key_is_documented() -> None:
    text = DOC.read_text("utf-8")
    for key in ("caller_label", "max_label_values", "resource_uri_label"):
        assert f"| `{key}` |" in text, key
