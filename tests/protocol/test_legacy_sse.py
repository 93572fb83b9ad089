"""2024-11-05 HTTP+SSE: endpoint rewriting and session ids in the query."""

from __future__ import annotations

import pytest

from mcpgate.protocol.legacy_sse import rewrite_endpoint, session_from_query


@pytest.mark.parametrize(("data", "upstream", "public", "expected"), [
    ("/messages/?session_id=abc", "/", "/", "/messages/?session_id=abc"),
    ("/messages/?session_id=abc", "/", "/mcp/github", "/mcp/github/messages/?session_id=abc"),
    ("/messages/?session_id=abc", "/", "/mcp/github/", "/mcp/github/messages/?session_id=abc"),
    ("/api/messages?sessionId=9f", "/api", "/gw", "/gw/messages?sessionId=9f"),
    ("/api/messages?sessionId=9f", "/api/", "/", "/messages?sessionId=9f"),
    ("/other/messages?x=1", "/api", "/gw", "/other/messages?x=1"),
    ("/apix/messages?x=1", "/api", "/gw", "/apix/messages?x=1"),
    ("http://127.0.0.1:9000/messages/?session_id=a%2Fb&x=%20", "/", "/p",
     "/p/messages/?session_id=a%2Fb&x=%20"),
    ("https://elsewhere.example/api/messages?sessionId=1", "/api", "/gw", "/gw/messages?sessionId=1"),
    ("messages?sessionId=1", "/api/sse", "/gw", "/api/messages?sessionId=1"),
    ("messages?sessionId=1", "/api/", "/gw", "/gw/messages?sessionId=1"),
    ("/messages/", "/", "/p", "/p/messages/"),
    ("/m%20x/?q=a+b;c", "/", "/", "/m%20x/?q=a+b;c"),
])
def test_rewrite_endpoint(data: str, upstream: str, public: str, expected: str) -> None:
    assert rewrite_endpoint(data, upstream, public) == expected


@pytest.mark.parametrize(("query", "session"), [
    ("session_id=abc", "abc"), ("sessionId=abc", "abc"), ("x=1&session_id=a%2Fb", "a/b"),
    ("session_id=abc&sessionId=abc", "abc"),
    ("", None), ("session_id=", None), ("session_id", None), ("other=1", None),
    ("session_id=a&session_id=b", None), ("session_id=a&session_id=a", None),
    ("session_id=a&sessionId=b", None), ("SESSION_ID=a", None),
])
def test_session_from_query(query: str, session: str | None) -> None:
    assert session_from_query(query) == session
