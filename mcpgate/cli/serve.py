"""`mcpgate serve`: build the config once, then hand it to the data plane."""

from __future__ import annotations

import argparse
import os
from typing import Any

from mcpgate.config import GatewayConfig, load_config

__all__ = ["config_from_args", "register"]


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "serve", help="run the gateway in front of an MCP server",
        description="Run the gateway. Precedence: defaults < config file < MCPGATE_* environment < flags.")
    p.add_argument("--upstream", metavar="URL", help="the MCP server's endpoint, e.g. http://127.0.0.1:8000/mcp")
    p.add_argument("--listen", metavar="HOST:PORT", help="data-plane address (default 127.0.0.1:4180)")
    p.add_argument("--admin-listen", metavar="HOST:PORT", help="admin-plane address (default 127.0.0.1:9180)")
    p.add_argument("--no-admin", action="store_true", help="do not start the admin plane")
    p.add_argument("--config", metavar="FILE", help="YAML config file (or MCPGATE_CONFIG)")
    p.set_defaults(handler=_serve)


_FLAGS = {  # flag attribute -> (config key path, label for error messages)
    "upstream": ("upstream.url", "--upstream"),
    "listen": ("listen", "--listen"),
    "admin_listen": ("admin.listen", "--admin-listen"),
}


def config_from_args(args: argparse.Namespace) -> GatewayConfig:
    overrides: dict[str, Any] = {}
    labels: dict[str, str] = {}
    for attr, (key, label) in _FLAGS.items():
        value = getattr(args, attr)
        if value is not None:
            overrides[key], labels[key] = value, label
    if args.no_admin:
        overrides["admin.enabled"], labels["admin.enabled"] = False, "--no-admin"
    return load_config(file=args.config, env=os.environ, overrides=overrides, override_labels=labels)


def _serve(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    # Imported only now: config errors are reported (exit 3) without loading the data plane.
    from mcpgate.gateway import run_gateway

    return run_gateway(config)
