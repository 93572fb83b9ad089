"""docs/identity.md documents every key of the identity schema and every identity error code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mcpgate.errors import IdentityError, all_error_classes

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "identity.md").read_text("utf-8")


def _keys(schema: dict[str, Any], prefix: str = "") -> list[str]:
    out: list[str] = []
    for name, sub in schema.get("properties", {}).items():
        out.append(prefix + name)
        out.extend(_keys(sub, f"{prefix}{name}."))
    return out


def test_every_schema_key_is_documented() -> None:
    schema = json.loads((ROOT / "mcpgate" / "schemas" / "identity.section.schema.json").read_text("utf-8"))
    missing = [k for k in _keys(schema) if f"`{k}`" not in DOC and f"`{k.split('.')[-1]}`" not in DOC]
    assert missing == []


def test_every_identity_error_code_is_documented() -> None:
    codes = {c.code for c in all_error_classes() if issubclass(c, IdentityError) and c is not IdentityError}
    assert codes and all(f"`{code}`" in DOC for code in codes)
