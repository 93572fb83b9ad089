"""Policy files → one compiled `Policy`: schema validation, cross-file merging, reference checks, indexing.

Merging (files in the order given): rules keep file order then declaration order; rule ids and group names
are unique across files; each `defaults` key comes from the last file that sets it. The revision is a
content hash of the parsed files, so reformatting comments does not change it but any semantic edit does.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from mcpgate.config.yaml_source import YamlDoc, load_package_schema, load_yaml, load_yaml_file, validate
from mcpgate.errors import ConfigError
from mcpgate.policy.arguments import compile_arguments
from mcpgate.policy.engine import Defaults, Policy
from mcpgate.policy.methods import ARGUMENT_METHODS, DEFAULT_RULE_ID, TARGET_METHODS
from mcpgate.policy.model import Effect
from mcpgate.policy.patterns import Pattern, PatternError, compile_pattern
from mcpgate.policy.principals import PrincipalMatcher
from mcpgate.policy.rules import OpClause, Rule

SCHEMA_NAME = "policy.schema.json"
_GLOB_FIELDS = ("id", "trust_domain", "namespace", "service_account")


def expand_paths(paths: Iterable[str | os.PathLike[str]]) -> list[str]:
    """Files as given; a directory stands for its `*.yaml` / `*.yml` files (not `*.tests.yaml`), sorted."""
    out: list[str] = []
    for path in paths:
        name = os.fspath(path)
        if os.path.isdir(name):
            out.extend(
                os.path.join(name, f) for f in sorted(os.listdir(name))
                if f.endswith((".yaml", ".yml")) and not f.endswith((".tests.yaml", ".tests.yml"))
            )
        else:
            out.append(name)
    return out


def load_policy(paths: Iterable[str | os.PathLike[str]]) -> Policy:
    """Load, validate and compile policy files. Raises `ConfigError` naming file, line and key path."""
    files = expand_paths(paths)
    if not files:
        raise ConfigError("no policy files given")
    return compile_policy([load_yaml_file(f) for f in files])


def load_policy_text(text: str, *, file: str = "<policy>") -> Policy:
    """Compile one policy document given as text (tests, `--policy-text`)."""
    return compile_policy([load_yaml(text, file=file)])


def compile_policy(docs: Sequence[YamlDoc]) -> Policy:
    schema = load_package_schema(SCHEMA_NAME)
    for doc in docs:
        if doc.value is None:
            raise ConfigError("policy file is empty", file=doc.file, line=1)
        validate(doc, schema)
    groups = _compile_groups(docs)
    defaults: dict[str, Any] = {}
    for doc in docs:
        defaults.update(doc.value.get("defaults") or {})
    mode = defaults.get("mode", "enforce")
    rules: list[Rule] = []
    seen: dict[str, tuple[str, int | None]] = {}
    for doc in docs:
        for i, raw in enumerate(doc.value.get("rules") or ()):
            path = ("rules", i)
            rid = raw["id"]
            if rid == DEFAULT_RULE_ID or rid.startswith("builtin"):
                raise doc.error((*path, "id"), f"rule id `{rid}` is reserved")
            if rid in seen:
                f, line = seen[rid]
                raise doc.error((*path, "id"), f"duplicate rule id `{rid}` (first defined in {f}:{line})")
            seen[rid] = (doc.file, doc.line_of((*path, "id")))
            rules.append(_compile_rule(doc, path, raw, index=len(rules), groups=groups,
                                       default_mode=mode))
    merged = Defaults(
        effect=Effect(defaults.get("effect", "deny")),
        audit=mode == "audit",
        hidden_as_unknown=bool(defaults.get("hidden_as_unknown", True)),
    )
    return Policy(rules, merged, revision_of(docs), {k: v[0] for k, v in groups.items()},
                  [d.file for d in docs])


def revision_of(docs: Sequence[YamlDoc]) -> str:
    """Short hex content hash of the parsed documents, in order."""
    blob = json.dumps([d.value for d in docs], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _compile_groups(docs: Sequence[YamlDoc]) -> dict[str, tuple[tuple[PrincipalMatcher, ...], str]]:
    out: dict[str, tuple[tuple[PrincipalMatcher, ...], str]] = {}
    for doc in docs:
        for name, members in (doc.value.get("groups") or {}).items():
            path = ("groups", name)
            if name in out:
                raise doc.error(path, f"group `{name}` is already defined in {out[name][1]}")
            matchers = tuple(_principal(doc, (*path, i), m, {}, group=name) for i, m in enumerate(members))
            out[name] = (tuple(x for ms in matchers for x in ms), doc.file)
    return out


def _pattern(doc: YamlDoc, path: tuple[str | int, ...], text: str, *, templates: bool = False) -> Pattern:
    try:
        return compile_pattern(text, templates=templates)
    except PatternError as e:
        raise doc.error(path, str(e)) from None


def _principal(doc: YamlDoc, path: tuple[str | int, ...], raw: Any,
               groups: Mapping[str, tuple[tuple[PrincipalMatcher, ...], str]],
               group: str | None = None) -> tuple[PrincipalMatcher, ...]:
    if isinstance(raw, str):
        return (PrincipalMatcher(text=raw, id=_pattern(doc, path, raw), via_group=group),)
    if "group" in raw:
        name = raw["group"]
        if name not in groups:
            known = ", ".join(f"`{g}`" for g in sorted(groups)) or "none defined"
            raise doc.error((*path, "group"), f"unknown group `{name}` (groups: {known})")
        return groups[name][0]

    # A list under `id` / `namespace` / ... means any of them: one matcher per combination.
    listed = [k for k in _GLOB_FIELDS if isinstance(raw.get(k), list)]
    if listed:
        combos: list[dict[str, Any]] = [dict(raw)]
        for k in listed:
            combos = [{**c, k: v} for c in combos for v in raw[k]]
        return tuple(m for c in combos for m in _principal(doc, path, c, groups, group))

    def pat(key: str) -> Pattern | None:
        return _pattern(doc, (*path, key), raw[key]) if key in raw else None

    source = raw.get("source")
    claims = tuple(
        (k, tuple(v) if isinstance(v, list) else (v,)) for k, v in (raw.get("claims") or {}).items()
    )
    text = ", ".join(f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in raw.items())
    return (PrincipalMatcher(
        text=text,
        id=pat("id"),
        trust_domain=pat("trust_domain"),
        namespace=pat("namespace"),
        service_account=pat("service_account"),
        sources=None if source is None else frozenset([source] if isinstance(source, str) else source),
        claims=claims,
        scopes=frozenset(raw.get("scopes") or ()),
        groups=frozenset(raw.get("groups") or ()),
        anonymous=raw.get("anonymous"),
        via_group=group,
    ),)


def _as_list(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _compile_rule(doc: YamlDoc, path: tuple[str | int, ...], raw: Mapping[str, Any], *, index: int,
                  groups: Mapping[str, tuple[tuple[PrincipalMatcher, ...], str]],
                  default_mode: str) -> Rule:
    principals: tuple[PrincipalMatcher, ...] | None = None
    if "principals" in raw:
        principals = tuple(
            m for i, p in enumerate(raw["principals"])
            for m in _principal(doc, (*path, "principals", i), p, groups)
        )
    methods = [(_pattern(doc, (*path, "methods"), m), m) for m in _as_list(raw.get("methods", []))]
    clauses: list[OpClause] = []
    covered: set[str] = set()
    for key, implied in TARGET_METHODS.items():
        if key not in raw:
            continue
        targets = tuple(_pattern(doc, (*path, key, i) if isinstance(raw[key], list) else (*path, key), t,
                                 templates=key == "resources")
                        for i, t in enumerate(_as_list(raw[key])))
        chosen = [m for m in implied if not methods or any(p.matches(m) for p, _ in methods)]
        covered.update(chosen)
        clauses.extend(OpClause(compile_pattern(m), targets, key) for m in chosen)
    target_keys = [k for k in TARGET_METHODS if k in raw]
    if target_keys:
        for pat, text in methods:
            if not any(pat.matches(m) for k in target_keys for m in TARGET_METHODS[k]):
                keys = " / ".join(f"`{k}`" for k in target_keys)
                raise doc.error((*path, "methods"), f"method `{text}` does not apply to {keys}: "
                                "it has no tool, prompt or resource target")
    else:
        clauses.extend(OpClause(pat) for pat, _ in methods)
        covered.update(text for _, text in methods)
    if "arguments" in raw and "arguments_schema" in raw:
        raise doc.error((*path, "arguments_schema"), "set `arguments` or `arguments_schema`, not both")
    arg_key = "arguments" if "arguments" in raw else "arguments_schema"
    try:
        arguments = compile_arguments(raw.get("arguments"), raw.get("arguments_schema"))
    except PatternError as e:
        raise doc.error((*path, arg_key), str(e)) from None
    if arguments is not None and clauses and not any(
            c.method.matches(m) for c in clauses for m in ARGUMENT_METHODS):
        raise doc.error((*path, arg_key), "argument constraints apply only to `tools/call` and "
                        "`prompts/get`; add `tools` or `prompts` to this rule")
    return Rule(
        id=raw["id"],
        index=index,
        effect=Effect(raw["effect"]),
        audit=raw.get("mode", default_mode) == "audit",
        principals=principals,
        clauses=tuple(clauses) if (clauses or methods or target_keys) else None,
        arguments=arguments,
        file=doc.file,
        line=doc.line_of(path),
        description=raw.get("description", ""),
    )
