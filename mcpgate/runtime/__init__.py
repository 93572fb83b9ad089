"""Composition root: builds the hooks the data plane calls from config (identity, policy, telemetry, audit)."""
