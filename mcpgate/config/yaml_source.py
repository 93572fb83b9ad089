"""Strict YAML loading with line marks, and JSON Schema validation that names the file, line and key.

Shared by the gateway config and the policy engine: every file a person writes goes through here.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from mcpgate.config.schema import SCHEMA_BASE_URI, Path, load_package_schema, schema_error, schema_registry
from mcpgate.errors import ConfigError

__all__ = [
    "MAX_FILE_BYTES",
    "SCHEMA_BASE_URI",
    "YamlDoc",
    "format_path",
    "load_package_schema",
    "load_yaml",
    "load_yaml_file",
    "schema_error",
    "schema_registry",
    "validate",
]

MAX_FILE_BYTES = 8 * 1024 * 1024
# Alias expansion budget (billion laughs): a document may expand to this many nodes plus
# _EXPANSION_FACTOR times the nodes it actually spells out, no more.
_EXPANSION_BASE = 10_000
_EXPANSION_FACTOR = 10

_PLAIN = "tag:mcpgate.invalid,2026:plain"
_STR = "tag:yaml.org,2002:str"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"
_ALLOWED_TAGS = frozenset({_PLAIN, _STR, _SEQ, _MAP})

# YAML 1.2 core schema, minus the spellings other parsers read differently.
_NULL = frozenset({"", "~", "null", "Null", "NULL"})
_INT = re.compile(r"[-+]?(?:0|[1-9][0-9]*)\Z")
_INT_HEX = re.compile(r"0x[0-9a-fA-F]+\Z")
_INT_OCT = re.compile(r"0o[0-7]+\Z")
_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?\Z")
# YAML 1.1 booleans (what PyYAML, Go yaml.v2 and many tools produce): reading them as strings would
# silently disagree with those tools, reading them as booleans would surprise `country: no`. Reject.
# (`y`/`n` are YAML 1.1 booleans too, but PyYAML reads them as strings and they are common argument names.)
_AMBIGUOUS_BOOL = frozenset(
    f(w) for w in ("yes", "no", "on", "off", "true", "false") for f in (str.lower, str.capitalize, str.upper)
) - {"true", "false"}
# A plain scalar starting with any other character is a string: skips the checks below for most values.
_SPECIAL_FIRST = frozenset("-+.0123456789~nNtTfFyYoO")
_LEADING_ZERO = re.compile(r"[-+]?0[0-9]+\Z")
_NON_FINITE = re.compile(r"[-+]?\.(?:inf|Inf|INF)\Z|\.(?:nan|NaN|NAN)\Z")

_Loader: type[yaml.SafeLoader]
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # same behaviour, libyaml is ~10x faster


class _MarkingLoader(_Loader):  # type: ignore[misc,valid-type]
    """Composes nodes only; plain scalars keep a marker tag and are resolved by `_scalar` below."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        if kind is yaml.ScalarNode:
            return _PLAIN if implicit[0] else _STR
        if kind is yaml.SequenceNode:
            return _SEQ
        return _MAP


@dataclass(frozen=True, slots=True)
class YamlDoc:
    """A parsed YAML document: plain data plus the line of every node, for error messages."""

    value: Any
    file: str
    lines: Mapping[Path, int] = field(default_factory=dict, repr=False, compare=False)

    def line_of(self, path: Sequence[str | int]) -> int | None:
        """1-based line of the node at `path` (a mapping entry: its key's), else of its nearest ancestor."""
        key = tuple(path)
        while True:
            line = self.lines.get(key)
            if line is not None:
                return line
            if not key:
                return None
            key = key[:-1]

    def error(self, path: Sequence[str | int], message: str) -> ConfigError:
        """A `ConfigError` pointing at `path` in this document."""
        return ConfigError(message, file=self.file, line=self.line_of(path), path=format_path(path))


def format_path(path: Sequence[str | int]) -> str | None:
    """`("a", "b", 2, "c")` -> `a.b[2].c`; keys that are not identifiers are quoted: `a["x.y"]`."""
    out: list[str] = []
    for part in path:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif re.fullmatch(r"[A-Za-z0-9_\-/]+", part):
            out.append(f".{part}" if out else part)
        else:
            out.append(f"[{json.dumps(part)}]")
    return "".join(out) or None


def load_yaml_file(path: str | os.PathLike[str]) -> YamlDoc:
    """Read and parse one YAML file; unreadable, oversized or non-UTF-8 files are `ConfigError`s."""
    name = os.fspath(path)
    try:
        with open(name, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as e:
        raise ConfigError(f"cannot read file: {e.strerror or e}", file=name) from None
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(f"file is larger than {MAX_FILE_BYTES} bytes", file=name)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise ConfigError("file is not valid utf-8", file=name, line=line) from None
    return load_yaml(text, file=name)


def load_yaml(text: str, *, file: str) -> YamlDoc:
    """Parse one YAML document strictly (see docs/configuration.md, "YAML rules")."""
    loader = _MarkingLoader(text)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        problem = e.problem or e.context or "invalid yaml"
        if e.context and "single document" in e.context:
            problem = "expected one document, found a second one (`---`)"
        elif "nesting depth" in problem:  # PyYAML >= 6.0.3 limits depth itself (older: RecursionError)
            problem = "nesting too deep"
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(f"invalid yaml: {problem}", file=file, line=line) from None
    except yaml.YAMLError as e:  # ReaderError: control characters and the like
        raise ConfigError(f"invalid yaml: {e}", file=file) from None
    except RecursionError:
        raise ConfigError("invalid yaml: nesting too deep", file=file) from None
    finally:
        loader.dispose()
    if root is None:
        return YamlDoc(None, file, {(): 1})
    # Without an alias (`*`) nothing can expand: skip counting nodes.
    budget = _EXPANSION_BASE + _EXPANSION_FACTOR * _count_nodes(root) if "*" in text else math.inf
    builder = _Builder(file, budget=budget)
    try:
        value = builder.build(root, ())
    except RecursionError:
        raise ConfigError("nesting too deep", file=file, line=root.start_mark.line + 1) from None
    return YamlDoc(value, file, builder.lines)


def _count_nodes(root: yaml.Node) -> int:
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                stack.extend((k, v))
    return len(seen)


class _Builder:
    """Turns a node graph into plain data, recording lines, rejecting what a person probably didn't mean."""

    def __init__(self, file: str, budget: float) -> None:
        self.file = file
        self.budget = budget
        self.lines: dict[Path, int] = {}
        self._active: set[int] = set()

    def _fail(self, node: yaml.Node, path: Path, message: str) -> ConfigError:
        return ConfigError(message, file=self.file, line=node.start_mark.line + 1, path=format_path(path))

    def build(self, node: yaml.Node, path: Path) -> Any:
        self.budget -= 1
        if self.budget < 0:
            raise self._fail(node, path, "document expands to too many nodes through aliases")
        self.lines.setdefault(path, node.start_mark.line + 1)
        if node.tag not in _ALLOWED_TAGS:
            raise self._fail(node, path, f"tag `{node.tag}` is not allowed; quote the value for a string")
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, path)
        if id(node) in self._active:
            raise self._fail(node, path, "recursive alias")
        self._active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
            return self._mapping(node, path)
        finally:
            self._active.discard(id(node))

    def _mapping(self, node: yaml.Node, path: Path) -> dict[str, Any]:
        out: dict[str, Any] = {}
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise self._fail(key_node, path, "mapping keys must be plain strings")
            if key_node.tag == _PLAIN and key_node.value == "<<":
                raise self._fail(key_node, path, "merge keys (`<<`) are not supported; "
                                 "use an alias for the whole value instead")
            key = self._scalar(key_node, path)
            if not isinstance(key, str):
                raise self._fail(key_node, path, f"mapping key `{key_node.value}` must be a string; "
                                 "quote it")
            line = key_node.start_mark.line + 1
            if key in first_line:
                raise self._fail(key_node, (*path, key),
                                 f"duplicate key `{key}` (first defined on line {first_line[key]})")
            first_line[key] = line
            self.lines[(*path, key)] = line
            out[key] = self.build(value_node, (*path, key))
        return out

    def _scalar(self, node: yaml.Node, path: Path) -> Any:
        text: str = node.value
        if node.tag != _PLAIN or (text and text[0] not in _SPECIAL_FIRST):
            return text
        if text in _NULL:
            return None
        if text == "true":
            return True
        if text == "false":
            return False
        if text in _AMBIGUOUS_BOOL:
            raise self._fail(node, path, f"ambiguous value `{text}`: write `true` or `false` for a "
                             f"boolean, or quote it (\"{text}\") for a string")
        if _INT.match(text):
            return int(text)
        if _INT_HEX.match(text) or _INT_OCT.match(text):
            return int(text, 0)
        if _LEADING_ZERO.match(text):
            raise self._fail(node, path, f"ambiguous number `{text}` (octal in YAML 1.1, decimal in 1.2): "
                             "drop the leading zero, or quote it for a string")
        if _NON_FINITE.match(text):
            raise self._fail(node, path, f"non-finite number `{text}` is not allowed")
        if _FLOAT.match(text):
            value = float(text)
            if not math.isfinite(value):
                raise self._fail(node, path, f"number `{text}` is out of range")
            return value
        return text


def validate(doc: YamlDoc, schema: Mapping[str, Any]) -> None:
    """Check `doc` against a Draft 2020-12 schema; raise `ConfigError` (file, line, path) if invalid."""
    found = schema_error(doc.value, schema)
    if found is not None:
        path, message = found
        raise doc.error(path, message)
