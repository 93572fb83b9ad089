"""End-to-end tests: official SDK clients and servers, direct and through mcpgate."""
