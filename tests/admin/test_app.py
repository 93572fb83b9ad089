"""The admin app's dashboard routes: page and assets from package data, strict headers, JSON, 404 when off."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from mcpgate.admin.app import build_admin_app
from mcpgate.admin.dashboard import CSP, host_allowed
from mcpgate.telemetry import Metrics
from mcpgate.telemetry.recent import RecentExchanges
from mcpgate.telemetry.snapshot import DashboardSnapshot
from tests.telemetry.exchanges import make_exchange


def status() -> dict[str, Any]:
    return {"mode": "observer", "warnings": ["no policy configured"]}


def test_dashboard_page_assets_and_api() -> None:
    metrics = Metrics()
    metrics.learn_targets("tool", ["echo"])
    recent = RecentExchanges()
    ex = make_exchange()
    metrics.started(ex)
    metrics.finished(ex)
    recent.add(ex)
    app = build_admin_app(status, metrics.render, DashboardSnapshot(metrics, recent, status))
    with TestClient(app, base_url="http://127.0.0.1:9180") as client:
        page = client.get("/dashboard")
        assert page.status_code == 200
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert page.headers["content-security-policy"] == CSP
        assert "default-src 'self'" in CSP and "unsafe-inline" not in CSP
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["x-frame-options"] == "DENY"
        assert '<script src="/dashboard/app.js"' in page.text and "<script>" not in page.text
        js = client.get("/dashboard/app.js")
        assert js.headers["content-type"].startswith("text/javascript")
        for sink in (".innerHTML", ".outerHTML", "insertAdjacentHTML", "document.write", "eval(", "Function("):
            assert sink not in js.text, f"the page must not parse wire data as HTML/JS: found {sink}"
        assert client.get("/dashboard/app.css").headers["content-type"].startswith("text/css")

        api = client.get("/api/dashboard")
        assert api.headers["cache-control"] == "no-store"
        body = api.json()
        assert body["status"]["mode"] == "observer"
        assert [(t["tool"], t["calls"]) for t in body["tools"]] == [("echo", 1)]
        assert [r["decision_id"] for r in body["recent"]] == [ex.decision_id]

        # the routes that were there before are untouched
        assert client.get("/healthz").json() == {"status": "ok", "warnings": ["no policy configured"]}
        assert b"mcpgate_operations_total" in client.get("/metrics").content


def test_dashboard_absent_answers_404_and_old_signature_still_works() -> None:
    with TestClient(build_admin_app(status), base_url="http://127.0.0.1:9180") as client:
        for path in ("/dashboard", "/dashboard/app.js", "/api/dashboard"):
            r = client.get(path)
            assert r.status_code == 404
            assert r.text == "dashboard is not enabled\n"
        assert client.get("/api/status").json()["mode"] == "observer"


def test_static_assets_ship_as_package_data() -> None:
    from importlib import resources

    names = {p.name for p in resources.files("mcpgate.admin").joinpath("static").iterdir()}
    assert {"dashboard.html", "dashboard.js", "dashboard.css"} <= names
    html = resources.files("mcpgate.admin").joinpath("static", "dashboard.html").read_text()
    assert "http://" not in html.replace('xmlns="http://www.w3.org', "") and "https://" not in html, \
        "no external resources: clusters without internet must render the page"


@pytest.mark.parametrize(("host", "allowed"), [
    ("127.0.0.1:9180", True), ("localhost:9180", True), ("LOCALHOST", True), ("10.2.3.4:9180", True),
    ("[::1]:9180", True), ("[fe80::1]", True), ("evil.example:9180", False), ("127.0.0.1.nip.io", False),
    ("", False), ("localhost.evil.example", False),
])
def test_host_guard(host: str, allowed: bool) -> None:
    assert host_allowed(host) is allowed


def test_dashboard_refuses_dns_names_against_rebinding() -> None:
    metrics = Metrics()
    app = build_admin_app(status, metrics.render, DashboardSnapshot(metrics))
    with TestClient(app, base_url="http://attacker.example:9180") as client:
        for path in ("/dashboard", "/api/dashboard"):
            r = client.get(path)
            assert r.status_code == 403
            assert "attacker.example" in r.text
        assert client.get("/healthz").status_code == 200, "probes are not affected"
