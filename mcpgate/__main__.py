"""`python -m mcpgate` runs the CLI."""

import sys

from mcpgate.cli import main

sys.exit(main())
