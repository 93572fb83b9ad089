"""Command-line interface: thin commands over the library (serve, policy, audit, demo)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    raise SystemExit("mcpgate: the CLI is being built")


if __name__ == "__main__":
    sys.exit(main())
