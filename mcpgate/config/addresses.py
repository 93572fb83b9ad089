"""Parsing of the addresses a person writes: `host:port` listeners, the upstream URL, allowed origins."""

from __future__ import annotations

import ipaddress
import re
from typing import NamedTuple
from urllib.parse import urlsplit

__all__ = ["HostPort", "UpstreamUrl", "parse_host_port", "parse_origin", "parse_upstream_url"]

_HOSTNAME = re.compile(r"(?=.{1,253}\Z)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                       r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?\Z")


class HostPort(NamedTuple):
    host: str  # an IPv6 address without brackets, ready for bind()
    port: int


class UpstreamUrl(NamedTuple):
    host: str  # without brackets
    port: int
    path: str
    authority: str  # host[:port] as it goes in a Host header


def _check_host(host: str, what: str) -> str:
    """Returns the problem with `host`, or "" if it is a valid IP literal or DNS name."""
    try:
        ipaddress.ip_address(host)
        return ""
    except ValueError:
        pass
    if _HOSTNAME.match(host) and not host.replace(".", "").isdigit():
        return ""
    return f"`{host}` is not a valid {what} host"


def _port(text: str, original: str) -> int:
    if not text.isdigit() or not text.isascii():
        raise ValueError(f"port `{text}` in `{original}` is not a number")
    port = int(text)
    if port > 65535:
        raise ValueError(f"port {port} in `{original}` is out of range (0-65535)")
    return port


def parse_host_port(text: str) -> HostPort:
    """`127.0.0.1:4180`, `localhost:4180` or `[::1]:4180`; port 0 asks the OS for a free port.

    Raises ValueError with a plain-words message.
    """
    example = "e.g. `127.0.0.1:4180` or `[::1]:4180`"
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or not text[end + 1:].startswith(":"):
            raise ValueError(f"`{text}` is not host:port ({example})")
        host, port_text = text[1:end], text[end + 2:]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"`{host}` in `{text}` is not an IPv6 address") from None
        return HostPort(host, _port(port_text, text))
    host, sep, port_text = text.rpartition(":")
    if not sep:
        raise ValueError(f"`{text}` is not host:port ({example})")
    if ":" in host:
        raise ValueError(f"IPv6 addresses need brackets: `[{host}]:{port_text}`")
    if not host:
        raise ValueError(f"`{text}` has no host; write `0.0.0.0:{port_text}` to listen on every interface")
    problem = _check_host(host, "listen")
    if problem:
        raise ValueError(problem)
    return HostPort(host, _port(port_text, text))


def parse_upstream_url(url: str) -> UpstreamUrl:
    """`http://host[:port]/path`: https, credentials, queries and fragments are refused (ValueError)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "https":
        raise ValueError("https upstreams are not supported yet; use the server's plain http address "
                         "(it normally runs in the same pod, behind the mesh's mTLS)")
    if scheme != "http":
        raise ValueError(f"upstream url `{url}` must start with `http://`")
    if "@" in parts.netloc:
        raise ValueError("credentials in the upstream url are not allowed")
    if parts.query or url.endswith("?"):
        raise ValueError(f"upstream url `{url}` must not have a query string")
    if parts.fragment or "#" in url:
        raise ValueError(f"upstream url `{url}` must not have a fragment")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        raise ValueError(f"upstream url `{url}` has an invalid port") from None
    if not host:
        raise ValueError(f"upstream url `{url}` has no host")
    problem = _check_host(host, "upstream")
    if problem:
        raise ValueError(problem)
    if not parts.path:
        raise ValueError(f"upstream url `{url}` has no path; give the MCP endpoint, "
                         f"e.g. `{url.rstrip('/')}/mcp`")
    shown = f"[{host}]" if ":" in host else host
    authority = shown if port is None else f"{shown}:{port}"
    return UpstreamUrl(host, 80 if port is None else port, parts.path, authority)


def parse_origin(origin: str) -> str:
    """An Origin header value as browsers send it, `scheme://host[:port]` or `null`; else ValueError."""
    if origin == "null":
        return origin
    parts = urlsplit(origin)
    if not parts.scheme or not parts.netloc:
        raise ValueError(f"origin `{origin}` must look like `https://app.example.com`")
    if parts.path or parts.query or parts.fragment or "@" in parts.netloc:
        raise ValueError(f"origin `{origin}` must be scheme://host[:port] only "
                         f"(browsers never send a path or a trailing slash)")
    try:
        _ = parts.port
    except ValueError:
        raise ValueError(f"origin `{origin}` has an invalid port") from None
    if origin != origin.lower():
        raise ValueError(f"origin `{origin}` must be lowercase, as browsers send it: `{origin.lower()}`")
    return origin
