"""Correlation table: exact ids, per-direction id spaces, per-scope cleanup, bounded."""

from __future__ import annotations

from mcpgate.protocol.correlation import Correlator
from mcpgate.protocol.model import Direction

C2S = Direction.CLIENT_TO_SERVER
S2C = Direction.SERVER_TO_CLIENT


def test_int_and_string_ids_are_distinct() -> None:
    table: Correlator[str] = Correlator()
    assert table.add("s", C2S, 1, "int") and table.add("s", C2S, "1", "str")
    assert table.pop("s", C2S, "1") == "str" and table.pop("s", C2S, 1) == "int"
    assert table.pop("s", C2S, 1) is None and len(table) == 0


def test_directions_and_scopes_are_separate_id_spaces() -> None:
    table: Correlator[str] = Correlator()
    assert table.add("a", C2S, 0, "client") and table.add("a", S2C, 0, "server") and table.add("b", C2S, 0, "b")
    assert table.get("a", S2C, 0) == "server"
    assert table.pop("a", C2S, 0) == "client" and table.pop("b", C2S, 0) == "b"


def test_duplicate_in_flight_is_refused_until_answered() -> None:
    table: Correlator[str] = Correlator()
    assert table.add("s", C2S, 7, "first")
    assert not table.add("s", C2S, 7, "second")
    assert table.pop("s", C2S, 7) == "first"
    assert table.add("s", C2S, 7, "third")


def test_bounded() -> None:
    table: Correlator[int] = Correlator(max_entries=2)
    assert table.add("s", C2S, 1, 1) and table.add("s", C2S, 2, 2)
    assert not table.add("s", C2S, 3, 3) and len(table) == 2
    table.pop("s", C2S, 1)
    assert table.add("s", C2S, 3, 3)


def test_drop_scope_returns_pending() -> None:
    table: Correlator[str] = Correlator()
    table.add("s", C2S, 1, "a")
    table.add("s", S2C, 1, "b")
    table.add("t", C2S, 1, "c")
    assert sorted(table.drop_scope("s")) == ["a", "b"]
    assert table.drop_scope("s") == [] and len(table) == 1


def test_expire_uses_the_callers_clock() -> None:
    table: Correlator[int] = Correlator()
    for i in range(5):
        table.add("s", C2S, i, i * 10)  # value = start time
    assert sorted(table.expire(lambda started: started < 25)) == [0, 10, 20]
    assert len(table) == 2 and table.pop("s", C2S, 3) == 30
    assert table.drop_scope("s") == [40]


def test_none_values_are_kept() -> None:
    table: Correlator[None] = Correlator()
    assert table.add("s", C2S, 1, None) and not table.add("s", C2S, 1, None)
    assert table.pop("s", C2S, 1) is None and len(table) == 0
