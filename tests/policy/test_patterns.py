import pytest

from mcpgate.policy.patterns import PatternError, compile_pattern, may_overlap


@pytest.mark.parametrize(("pattern", "value", "expected"), [
    ("refund", "refund", True),
    ("refund", "refunds", False),
    ("delete_*", "delete_repo", True),
    ("delete_*", "delete_", True),
    ("delete_*", "undelete_repo", False),
    ("get_?", "get_a", True),
    ("get_?", "get_ab", False),
    ("spiffe://cluster.local/ns/*/sa/billing", "spiffe://cluster.local/ns/payments/sa/billing", True),
    ("spiffe://cluster.local/ns/*/sa/billing", "spiffe://cluster.local/ns/a/b/sa/billing", False),
    ("spiffe://cluster.local/**", "spiffe://cluster.local/ns/a/sa/b", True),
    ("file:///data/*", "file:///data/a/b", False),
    ("file:///data/**", "file:///data/a/b", True),
    ("a.b", "aXb", False),  # regex metacharacters are literal
    ("x+", "xx", False),
])
def test_globs(pattern: str, value: str, expected: bool) -> None:
    assert compile_pattern(pattern).matches(value) is expected


@pytest.mark.parametrize(("pattern", "value", "expected"), [
    ("file:///{path}", "file:///etc", True),
    ("file:///{path}", "file:///etc/passwd", False),  # a simple variable stays within one segment
    ("file:///{path*}", "file:///etc/passwd", True),
    ("file:///{+path}", "file:///etc/passwd", True),
    ("ledger://accounts/{id}/tx", "ledger://accounts/42/tx", True),
    ("ledger://accounts/{id}/tx", "ledger://accounts//tx", False),
    ("repo://{owner}/{repo}", "repo://me/mine", True),
    ("files{/path*}", "files/a/b", True),
    ("files{/path}", "files/a/b", False),
])
def test_templates(pattern: str, value: str, expected: bool) -> None:
    assert compile_pattern(pattern, templates=True).matches(value) is expected


def test_braces_are_literal_outside_templates() -> None:
    p = compile_pattern("a{b}")
    assert p.literal == "a{b}"
    assert p.matches("a{b}")


@pytest.mark.parametrize("bad", ["file:///{path", "file:///}", "x{a b}", ""])
def test_invalid_patterns(bad: str) -> None:
    with pytest.raises(PatternError):
        compile_pattern(bad, templates=True)


def test_literal_prefix() -> None:
    assert compile_pattern("delete_*").prefix == "delete_"
    assert compile_pattern("file:///{x}/a", templates=True).prefix == "file:///"
    assert compile_pattern("refund").literal == "refund"
    assert compile_pattern("*").prefix == ""


def test_template_overlap() -> None:
    assert may_overlap(compile_pattern("file:///data/**"), "file:///data/{path}")
    assert may_overlap(compile_pattern("file:///{path}", templates=True), "file:///{path}")
    assert may_overlap(compile_pattern("file:///data/{x}", templates=True), "file:///{path}")
    assert not may_overlap(compile_pattern("ledger://**"), "file:///{path}")
    assert may_overlap(compile_pattern("file:///a"), "file:///a")
    assert not may_overlap(compile_pattern("file:///a"), "file:///b")
