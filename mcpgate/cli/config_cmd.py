"""`mcpgate config schema|check|env`: publish the config schema and check a file before deploying it."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from mcpgate.cli._common import EXIT_OK, exit_code_for, report_error
from mcpgate.config import ALIASES, CONFIG_FILE_VAR, bundled_schema, check_config, config_schema, env_var_name
from mcpgate.config.env import schema_keys
from mcpgate.errors import McpgateError

__all__ = ["register"]


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("config", help="print the config schema, check a config file")
    sub = p.add_subparsers(dest="config_command", metavar="SUBCOMMAND", required=True)
    schema = sub.add_parser("schema", help="print the config file's JSON Schema (Draft 2020-12)")
    schema.add_argument("--split", action="store_true",
                        help="print the main schema only, with section schemas as relative $refs")
    schema.set_defaults(handler=_schema)
    check = sub.add_parser("check", help="validate a config file (with the MCPGATE_* environment applied)")
    check.add_argument("file", metavar="FILE")
    check.add_argument("--format", choices=("text", "json"), default="text")
    check.set_defaults(handler=_check)
    env = sub.add_parser("env", help="list every MCPGATE_* environment variable and the key it sets")
    env.set_defaults(handler=_env)


def _schema(args: argparse.Namespace) -> int:
    print(json.dumps(config_schema() if args.split else bundled_schema(), indent=2))
    return EXIT_OK


def _check(args: argparse.Namespace) -> int:
    try:
        config = check_config(file=args.file, env=os.environ)
    except McpgateError as e:
        if args.format == "json":
            print(json.dumps({"ok": False, "error": e.to_dict()}))
        else:
            report_error(e)
        return exit_code_for(e)
    upstream = config.upstream.url if config else None
    if args.format == "json":
        print(json.dumps({"ok": True, "file": args.file, "upstream": upstream}))
    else:
        note = f"upstream {upstream}" if upstream else "no upstream set: pass --upstream or MCPGATE_UPSTREAM"
        print(f"{args.file}: ok ({note})")
    return EXIT_OK


def _env(args: argparse.Namespace) -> int:
    aliases = {path: var for var, path in ALIASES.items()}
    print(f"{CONFIG_FILE_VAR}\tthe config file")
    for path in schema_keys(config_schema(), leaves_only=True):
        alias = f"\t(or {aliases[path]})" if path in aliases else ""
        print(f"{env_var_name(path)}\t{'.'.join(map(str, path))}{alias}")
    return EXIT_OK
