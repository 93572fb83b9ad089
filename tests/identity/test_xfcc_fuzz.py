"""Property tests for the XFCC parser: Envoy-style quoting round-trips; arbitrary input never escapes as
anything but a typed identity error."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mcpgate.errors import IdentityError
from mcpgate.identity import parse_xfcc

_VALUE = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)


def _quote(value: str) -> str:
    """How Envoy writes a value: quoted (with `\\` escapes) when it holds a separator or a quote."""
    if any(c in value for c in ',;="\\') or value != value.strip() or value == "":
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return value


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_VALUE, _VALUE, st.lists(_VALUE, max_size=3)), min_size=1, max_size=5))
def test_quoted_values_round_trip(elements: list[tuple[str, str, list[str]]]) -> None:
    header = ",".join(
        ";".join([f"By={_quote(by)}", f"Subject={_quote(subject)}", *(f"URI={_quote(u)}" for u in uris)])
        for by, subject, uris in elements)
    parsed = parse_xfcc(header)
    assert [(e.by[0], e.subject, list(e.uri)) for e in parsed] == [(b, s, u) for b, s, u in elements]


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_input_only_raises_identity_errors(value: str) -> None:
    try:
        parse_xfcc(value)
    except IdentityError:
        pass
