"""Coverage-guided fuzz targets (atheris/libFuzzer) for mcpgate's untrusted-input parsers; see docs/hardening.md."""
