"""Gateway configuration: a strict YAML file with a published JSON Schema, overridable by environment."""
