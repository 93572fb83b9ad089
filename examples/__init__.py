"""The bundled example: a payments/support MCP server (`examples.server`) and `make demo` (`.demo`)."""
