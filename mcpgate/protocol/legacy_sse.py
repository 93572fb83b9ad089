"""2024-11-05 HTTP+SSE helpers: rewrite the `endpoint` event for the gateway's public path, read the
session id from a message POST's query.
"""

from __future__ import annotations

from urllib.parse import unquote, urljoin, urlsplit

__all__ = ["rewrite_endpoint", "session_from_query"]

_SESSION_PARAMS = ("session_id", "sessionId")  # Python SDK, TypeScript SDK


def _prefix(path: str) -> str:
    return path.rstrip("/")


def rewrite_endpoint(data: str, upstream_base_path: str, public_base_path: str) -> str:
    """The path (plus the query, byte for byte) a client should POST to at the gateway.

    `data` may be relative (resolved against `upstream_base_path`, e.g. the upstream SSE path) or an
    absolute URL; the origin is always dropped because SDK clients refuse an endpoint on another origin.
    A path under `upstream_base_path` is moved under `public_base_path`; any other path is kept as is.
    """
    resolved = urlsplit(urljoin(upstream_base_path or "/", data.strip()))
    path = resolved.path or "/"
    upstream, public = _prefix(upstream_base_path), _prefix(public_base_path)
    if upstream in ("", path) or path.startswith(upstream + "/"):
        path = public + path[len(upstream):]
        if not path.startswith("/"):
            path = "/" + path
    query = resolved.query
    return f"{path}?{query}" if query or data.rstrip().endswith("?") else path


def session_from_query(query: str) -> str | None:
    """`session_id` (Python SDK) or `sessionId` (TypeScript SDK); None when absent, empty or ambiguous.

    Ambiguous means repeated, or both spellings with different values: two servers could pick different
    sessions, so the caller must refuse rather than guess.
    """
    seen: dict[str, str] = {}
    for part in query.split("&"):
        name, _, value = part.partition("=")
        name = unquote(name)
        if name in _SESSION_PARAMS:
            if name in seen:
                return None
            seen[name] = unquote(value)
    if len(set(seen.values())) != 1:
        return None
    return next(iter(seen.values())) or None
