"""mcpgate: an MCP-aware traffic policy sidecar."""

__version__ = "0.1.0"
