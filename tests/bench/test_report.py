"""Ratios and the targets table are computed from the measurements, and missing parts stay pending."""

from __future__ import annotations

from typing import Any

from bench import components, payloads, report


def _result(g_rps: float, g_impl: str = "mcpgate") -> dict[str, Any]:
    lat = {"D": {"p50_us": 20.0, "p99_us": 40.0}, "N": {"p50_us": 40.0, "p99_us": 80.0},
           "G": {"p50_us": 50.0, "p99_us": 100.0}}
    return {
        "paths": {"impl": {"G": g_impl}, "not_run": {}},
        "throughput": {"D": {"median_rps": 40000.0}, "N": {"median_rps": 20000.0},
                       "G": {"median_rps": g_rps}, "P": {"median_rps": 250.0}},
        "sequential": lat, "tails": lat,
        "sse": {"big": {"D": {"median_bytes_per_s": 1000.0}, "G": {"median_bytes_per_s": 950.0}},
                "small": {"G": {"events_per_s": 60000}}},
        "memory": {"G_idle_rss_kib": 30 * 1024, "sessions": {"G": {"slope_kib_per_session": 20.0,
                                                                   "sessions_low": 1, "sessions_high": 5}}},
        "components": {},
    }


def test_ratios_and_added_latency() -> None:
    r = report.ratios(_result(12000.0))
    assert r["throughput_G_over_N"] == 0.6
    assert r["throughput_G_over_P"] == 48.0
    assert r["sequential_p50_added_G_us"] == 30.0
    assert r["sequential_p50_added_N_us"] == 20.0
    assert r["sequential_p50_added_G_over_N"] == 1.5
    assert r["sse_big_G_over_D"] == 0.95


def test_targets_pass_fail_and_pending() -> None:
    res = _result(8000.0)
    res["ratios"] = report.ratios(res)
    rows = report.targets(res)
    by_metric = {row["metric"]: row for row in rows}
    assert by_metric["throughput per core G/N"]["status"] == "fail"  # 0.4 < 0.5
    assert by_metric["throughput per core G/P"]["status"] == "pass"  # 32x
    assert by_metric["idle RSS of G"]["status"] == "pass"
    assert next(r for r in rows if r["metric"].startswith("RSS per idle"))["status"] == "fail"
    assert all(r["status"] == "pending" for r in rows if r["id"] in ("P5", "P6", "P7", "P8"))
    res["targets"] = rows
    table = report.markdown(res)
    assert "| P1 | throughput per core G/N | >= 0.5 | 0.40 | fail |" in table


def test_stand_in_is_never_reported_as_pass() -> None:
    res = _result(12000.0, g_impl="STAND-IN: nginx proxy_pass")
    res["ratios"] = report.ratios(res)
    statuses = {r["status"] for r in report.targets(res) if r["id"] in ("P1", "P2", "P3", "P4")}
    assert statuses == {"stand-in"}


def test_payloads_have_the_advertised_sizes() -> None:
    assert len(payloads.call_request()) == 330
    assert len(payloads.call_result()) == 330
    assert payloads.MARKER in payloads.call_result()
    stream = payloads.sse_stream(3, 64 * 1024)
    events = stream.split(b"\n\n")
    assert all(abs(len(e) + 2 - 64 * 1024) < 64 for e in events[:3])
    assert payloads.MARKER.encode() in events[3]


def test_audit_component_headline() -> None:
    text, ok = components.COMPONENTS["audit"].extract(
        {"records_per_s": 2500, "fsync": "group", "records_per_fsync": 40.0, "record_call_us": 3.1,
         "chain_ok": True, "dropped": 0})
    assert ok is True
    assert text.startswith("2,500 calls/s")
    _, slow = components.COMPONENTS["audit"].extract({"records_per_s": 900, "chain_ok": True, "dropped": 0})
    assert slow is False


def test_policy_table_is_read_from_text() -> None:
    text = (f"{'rules':>7} {'compile':>9} {'p50':>9} {'p99':>9} {'allowed':>8}\n"
            "     10     0.01s    0.72µs    1.14µs     84%\n"
            "  10000     4.05s    1.12µs    4.43µs     81%\n"
            "t(10k)/t(10) = 1.56\n")
    data = components.parse_policy_text(text)
    assert data is not None
    assert [r["rules"] for r in data["rows"]] == [10, 10000]
    headline, ok = components.COMPONENTS["policy"].extract(data)
    assert "p50 1.12 us" in headline
    assert ok is False  # 1.12 / 0.72 > 1.5: not flat


def test_policy_tables_are_judged_each_on_its_own() -> None:
    """Two tables (same requests, spread): a ratio compares sizes within one table, never across them."""
    row = "{:>7}     0.01s    {:.2f}µs    1.00µs     80%\n"
    text = (row.format(10, 0.40) + row.format(10000, 0.44) + "t(10k)/t(10) = 1.10\n\n"
            + row.format(10, 0.20) + row.format(10000, 0.50) + "t(10k)/t(10) = 2.50\n")
    data = components.parse_policy_text(text)
    assert data is not None
    headline, ok = components.COMPONENTS["policy"].extract(data)
    assert "same requests:" in headline and "(t ratio 1.10)" in headline
    assert "spread:" in headline and "(t ratio 2.50)" in headline
    assert ok is False  # the spread table is not flat
    flat = text.replace("0.20µs", "0.40µs").replace("0.50µs", "0.44µs")
    assert components.COMPONENTS["policy"].extract(components.parse_policy_text(flat) or {})[1] is True


def test_protocol_output_is_read_from_text() -> None:
    text = ("tools/call body: 290 bytes\n"
            "  decode_body + classify                3.10 µs/call\n"
            "10 MiB base64 argument: 10.0 MiB\n"
            "  msgspec.json.decode (floor)            2100 MiB/s (4.8 ms)\n"
            "  decode_body + classify                  900 MiB/s (11.1 ms)\n"
            "10 MiB escaped text argument: 10.4 MiB\n"
            "  decode_body + classify                  450 MiB/s (23.1 ms)\n")
    data = components.parse_protocol_text(text)
    assert data == {"small_call_us": 3.1, "large_mib_s": {"10 MiB base64 argument": 900.0,
                                                          "10 MiB escaped text argument": 450.0}}
    headline, ok = components.COMPONENTS["protocol"].extract(data)
    assert ok is False  # the slower body is under 500 MiB/s
    assert "900 MiB/s (10 MiB base64 argument)" in headline
