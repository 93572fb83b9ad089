"""The admin plane: a Starlette app on its own listener for health, readiness, metrics, status and dashboard."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mcpgate.admin.dashboard import DashboardSource, dashboard_routes

StatusFn = Callable[[], dict[str, Any]]
MetricsFn = Callable[[], tuple[bytes, str]]


def build_admin_app(status: StatusFn, metrics: MetricsFn | None = None,
                    dashboard: DashboardSource | None = None) -> Starlette:
    """`status()` returns the gateway's state (mode, upstream, policy revision, warnings, counters);
    `metrics()` the Prometheus exposition; `dashboard.snapshot()` the `/api/dashboard` body (the `/dashboard`
    page answers 404 without it)."""

    async def healthz(request: Request) -> Response:
        # Liveness: the process answers. Warnings (observer mode, audit trouble) are in the body.
        st = status()
        return JSONResponse({"status": "ok", "warnings": st.get("warnings", [])})

    async def readyz(request: Request) -> Response:
        st = status()
        reason = st.get("not_ready")
        if reason:
            return JSONResponse({"status": "not ready", "reason": reason}, status_code=503)
        return JSONResponse({"status": "ready", "warnings": st.get("warnings", [])})

    async def api_status(request: Request) -> Response:
        return JSONResponse(status())

    async def prometheus(request: Request) -> Response:
        if metrics is None:
            return Response("metrics are not enabled\n", status_code=404, media_type="text/plain")
        body, ctype = metrics()
        return Response(body, media_type=ctype)

    return Starlette(routes=[
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/api/status", api_status),
        Route("/metrics", prometheus),
        *dashboard_routes(dashboard),
    ])
