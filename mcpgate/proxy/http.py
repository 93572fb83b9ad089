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


def count_header(headers: Headers, name: bytes) -> int:
    return sum(1 for k, _ in headers if k == name)


def request_head(method: bytes, target: bytes, headers: Headers, host: bytes, body_len: int | None,
                 extra: Iterable[tuple[bytes, bytes]] = (), drop: frozenset[bytes] = frozenset()) -> bytes:
    """The upstream request head: hop-by-hop removed, Host rewritten, framing re-derived."""
    conn = connection_tokens(headers)
    skip = _REQUEST_DROP | conn | drop if (conn or drop) else _REQUEST_DROP
    parts = [method, b" ", target, b" HTTP/1.1\r\nhost: ", host, b"\r\n"]
    for name, value in headers:
        if name in skip:
            continue
        parts += [name, b": ", value, b"\r\n"]
    for name, value in extra:
        parts += [name, b": ", value, b"\r\n"]
    if body_len is not None:
        parts += [b"content-length: ", str(body_len).encode(), b"\r\n"]
    parts.append(b"\r\n")
    return b"".join(parts)


def response_head(status: int, headers: Headers, *, body_len: int | None, chunked: bool,
                  keep_alive: bool, extra: Iterable[tuple[bytes, bytes]] = ()) -> bytes:
    """The downstream response head: upstream headers minus hop-by-hop, our own framing."""
    conn = connection_tokens(headers)
    skip = _RESPONSE_DROP | conn if conn else _RESPONSE_DROP
    parts = [b"HTTP/1.1 ", str(status).encode(), b" ", REASONS.get(status, b"Status"), b"\r\n"]
    for name, value in headers:
        if name in skip:
            continue
        parts += [name, b": ", value, b"\r\n"]
    for name, value in extra:
        parts += [name, b": ", value, b"\r\n"]
    if body_len is not None:
        parts += [b"content-length: ", str(body_len).encode(), b"\r\n"]
    elif chunked:
        parts.append(b"transfer-encoding: chunked\r\n")
    if not keep_alive:
        parts.append(b"connection: close\r\n")
    parts.append(b"\r\n")
    return b"".join(parts)


def chunk(data: bytes) -> bytes:
    """One HTTP/1.1 chunk; empty input yields nothing (an empty chunk would end the body)."""
    if not data:
        return b""
    return b"%x\r\n%s\r\n" % (len(data), data)


LAST_CHUNK = b"0\r\n\r\n"
