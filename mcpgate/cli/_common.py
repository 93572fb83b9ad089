"""What every command shares: exit codes and the one-line error format."""

from __future__ import annotations

import sys

from mcpgate.errors import ConfigError, McpgateError, PolicyDenied

__all__ = ["EXIT_DENIED", "EXIT_ERROR", "EXIT_INVALID", "EXIT_OK", "exit_code_for", "report_error"]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_DENIED = 2
EXIT_INVALID = 3


def exit_code_for(error: McpgateError) -> int:
    if isinstance(error, ConfigError):
        return EXIT_INVALID
    if isinstance(error, PolicyDenied):
        return EXIT_DENIED
    return EXIT_ERROR


def report_error(error: McpgateError | str) -> None:
    """One line on stderr: `mcpgate: <file>:<line>: <message> (at `key.path`)`."""
    text = str(error).replace("\r", "\\r").replace("\n", "\\n")  # one line, whatever the input held
    print(f"mcpgate: {text}", file=sys.stderr)
