"""Command-line interface: thin commands over the library (serve, config, policy, audit, demo).

Each command lives in its own module exposing `register(subparsers) -> None`; add a module to
`COMMAND_MODULES` to add a command. Exit codes: 0 ok, 1 error, 2 denied, 3 invalid input or config.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from mcpgate import __version__
from mcpgate.cli._common import EXIT_ERROR, EXIT_INVALID, EXIT_OK, exit_code_for, report_error
from mcpgate.errors import McpgateError

__all__ = ["COMMAND_MODULES", "build_parser", "main"]

COMMAND_MODULES: tuple[str, ...] = (
    "mcpgate.cli.serve",
    "mcpgate.cli.config_cmd",
    "mcpgate.cli.audit",
    "mcpgate.cli.policy",
)


class UsageError(Exception):
    """Bad command-line usage: exit 3 rather than argparse's 2, which means "denied" here."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mcpgate", description="An MCP-aware policy sidecar.")
    parser.add_argument("--version", action="version", version=f"mcpgate {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as e:
        report_error(str(e))
        return EXIT_INVALID
    except SystemExit as e:  # --help, --version
        return e.code if isinstance(e.code, int) else EXIT_OK
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return EXIT_INVALID
    try:
        code: int = handler(args)
    except McpgateError as e:
        report_error(e)
        return exit_code_for(e)
    except KeyboardInterrupt:
        return EXIT_ERROR
    except BrokenPipeError:  # `mcpgate config schema | head`: not an error worth a traceback
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115  (keeps the interpreter's final flush quiet)
        return EXIT_ERROR
    return code if code is not None else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
