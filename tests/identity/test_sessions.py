"""Sessions bound to the principal that created them; bounded with LRU eviction."""

from __future__ import annotations

import pytest

from mcpgate.identity import SessionBindings

ALICE = "spiffe://cluster.local/ns/a/sa/alice"
MALLORY = "spiffe://cluster.local/ns/m/sa/mallory"


def test_other_principal_cannot_use_a_bound_session() -> None:
    s = SessionBindings()
    s.bind("sess-1", ALICE)
    assert s.check("sess-1", ALICE) is True
    assert s.check("sess-1", MALLORY) is False
    assert s.check("unknown", MALLORY) is True   # the upstream decides whether it exists
    s.forget("sess-1")
    assert s.check("sess-1", MALLORY) is True and len(s) == 0
    s.forget("never-bound")


def test_claim_binds_first_presenter() -> None:
    s = SessionBindings()
    assert s.claim("sess-2", ALICE) is True
    assert s.claim("sess-2", MALLORY) is False
    assert s.owner("sess-2") == ALICE


def test_least_recently_used_is_evicted() -> None:
    s = SessionBindings(max_sessions=2)
    s.bind("a", ALICE)
    s.bind("b", ALICE)
    assert s.check("a", ALICE)           # touch a: b is now the oldest
    s.bind("c", ALICE)
    assert (s.owner("a"), s.owner("b"), s.owner("c")) == (ALICE, None, ALICE)
    assert s.evicted == 1 and len(s) == 2
    with pytest.raises(ValueError):
        SessionBindings(max_sessions=0)
