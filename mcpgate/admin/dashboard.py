"""The built-in live dashboard: the `/dashboard` page (package-served HTML/JS/CSS) and its `/api/dashboard` JSON.

No build step, no CDN: three static files shipped in the wheel. Everything from the wire is attacker-chosen
(tool names, principals), so the page renders data only through `textContent`, and a strict CSP forbids
inline script, foreign origins and framing.
"""

from __future__ import annotations

import ipaddress
from importlib import resources
from typing import Any, Final, Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

CSP: Final = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
              "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
_SECURITY_HEADERS: Final = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
    "cross-origin-resource-policy": "same-origin",
}
_ASSETS: Final = {
    "/dashboard": ("dashboard.html", "text/html; charset=utf-8"),
    "/dashboard/app.js": ("dashboard.js", "text/javascript; charset=utf-8"),
    "/dashboard/app.css": ("dashboard.css", "text/css; charset=utf-8"),
}


class DashboardSource(Protocol):
    """Where `/api/dashboard` gets its body (`mcpgate.telemetry.snapshot.DashboardSnapshot` implements it)."""

    def snapshot(self) -> dict[str, Any]: ...


def host_allowed(host: str) -> bool:
    """An IP literal or `localhost` (any port). A DNS name could be rebound to 127.0.0.1 by a web page the
    operator visits, which could then read tool names and principals; IP literals cannot be rebound."""
    if host.startswith("["):
        name = host[1:].partition("]")[0]
    else:
        name = host.rpartition(":")[0] if host.count(":") == 1 else host
    if name.lower() == "localhost":
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _refused(request: Request) -> Response | None:
    host = request.headers.get("host", "")
    if host_allowed(host):
        return None
    return Response(f"host `{host[:100]}` refused: open the dashboard by IP address or localhost "
                    "(DNS rebinding guard)\n", status_code=403, media_type="text/plain")


def _asset(name: str) -> bytes:
    return resources.files("mcpgate.admin").joinpath("static", name).read_bytes()


def dashboard_routes(source: DashboardSource | None) -> list[Route]:
    """Routes for the page, its assets and its JSON. Without a source, each answers 404 saying so."""
    if source is None:
        async def disabled(request: Request) -> Response:
            return Response("dashboard is not enabled\n", status_code=404, media_type="text/plain")

        return [Route(path, disabled) for path in (*_ASSETS, "/api/dashboard")]

    bodies = {path: (_asset(name), ctype) for path, (name, ctype) in _ASSETS.items()}

    async def asset(request: Request) -> Response:
        refused = _refused(request)
        if refused is not None:
            return refused
        body, ctype = bodies[request.url.path]
        return Response(body, headers={**_SECURITY_HEADERS, "content-type": ctype})

    async def api(request: Request) -> Response:
        refused = _refused(request)
        if refused is not None:
            return refused
        return JSONResponse(source.snapshot(), headers=_SECURITY_HEADERS)

    return [*(Route(path, asset) for path in bodies), Route("/api/dashboard", api)]
