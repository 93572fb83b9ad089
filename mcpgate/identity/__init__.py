"""identity layer."""
