"""HTTP/1.1 header handling for the data plane: hop-by-hop rules (RFC 9110 §7.6.1), heads, chunk framing.

Header names are lowercased once, when the two Protocols parse them; everything here compares exactly.
"""

from __future__ import annotations

from collections.abc import Iterable

from mcpgate._types import Headers

# Hop-by-hop headers never cross the proxy (RFC 9110 §7.6.1), plus those the proxy re-derives itself.
HOP_BY_HOP = frozenset({
    b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer", b"transfer-encoding",
    b"upgrade", b"proxy-authenticate", b"proxy-authorization",
})
_REQUEST_DROP = HOP_BY_HOP | {b"host", b"content-length", b"origin", b"expect"}
_RESPONSE_DROP = HOP_BY_HOP | {b"content-length"}

REASONS = {
    200: b"OK", 202: b"Accepted", 204: b"No Content", 400: b"Bad Request", 401: b"Unauthorized",
    403: b"Forbidden", 404: b"Not Found", 405: b"Method Not Allowed", 406: b"Not Acceptable",
    408: b"Request Timeout", 409: b"Conflict", 413: b"Content Too Large", 415: b"Unsupported Media Type",
    421: b"Misdirected Request", 431: b"Request Header Fields Too Large", 500: b"Internal Server Error",
    502: b"Bad Gateway", 503: b"Service Unavailable", 504: b"Gateway Timeout",
}


def connection_tokens(headers: Headers) -> frozenset[bytes]:
    """Header names listed in `Connection` are hop-by-hop for this message too."""
    tokens: set[bytes] = set()
    for name, value in headers:
        if name == b"connection":
            tokens.update(t.strip().lower() for t in value.split(b",") if t.strip())
    return frozenset(tokens)


def get_header(headers: Headers, name: bytes) -> bytes | None:
    """First value of a header (names are stored lowercase)."""
    for k, v in headers:
        if k == name:
            return v
    return None


def _copy_headers(parts: list[bytes], headers: Headers, skip: frozenset[bytes],
                  extra: Iterable[tuple[bytes, bytes]]) -> None:
    """Append `headers` minus `skip` and those named in `Connection` (hop-by-hop), then `extra`."""
    conn = connection_tokens(headers)
    if conn:
        skip = skip | conn
    for name, value in headers:
        if name not in skip:
            parts += [name, b": ", value, b"\r\n"]
    for name, value in extra:
        parts += [name, b": ", value, b"\r\n"]


def request_head(method: bytes, target: bytes, headers: Headers, host: bytes, body_len: int | None,
                 extra: Iterable[tuple[bytes, bytes]] = (), drop: frozenset[bytes] = frozenset()) -> bytes:
    """The upstream request head: hop-by-hop removed, Host rewritten, framing re-derived."""
    parts = [method, b" ", target, b" HTTP/1.1\r\nhost: ", host, b"\r\n"]
    _copy_headers(parts, headers, _REQUEST_DROP | drop if drop else _REQUEST_DROP, extra)
    if body_len is not None:
        parts += [b"content-length: ", str(body_len).encode(), b"\r\n"]
    parts.append(b"\r\n")
    return b"".join(parts)


def response_head(status: int, headers: Headers, *, body_len: int | None, chunked: bool,
                  keep_alive: bool, extra: Iterable[tuple[bytes, bytes]] = ()) -> bytes:
    """The downstream response head: upstream headers minus hop-by-hop, our own framing."""
    parts = [b"HTTP/1.1 ", str(status).encode(), b" ", REASONS.get(status, b"Status"), b"\r\n"]
    _copy_headers(parts, headers, _RESPONSE_DROP, extra)
    if body_len is not None:
        parts += [b"content-length: ", str(body_len).encode(), b"\r\n"]
    elif chunked:
        parts.append(b"transfer-encoding: chunked\r\n")
    if not keep_alive:
        parts.append(b"connection: close\r\n")
    parts.append(b"\r\n")
    return b"".join(parts)


LAST_CHUNK = b"0\r\n\r\n"
