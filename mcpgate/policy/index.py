"""The decision index: rules bucketed by method, exact target or glob head, and principal id/namespace.

A lookup touches a handful of dict entries however many rules there are; only candidates whose target
or principal could not be settled by the key are checked further.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from mcpgate.policy.model import Decision
from mcpgate.policy.patterns import Pattern
from mcpgate.policy.principals import PrincipalLike
from mcpgate.policy.rules import Rule


class _Node:
    """A radix-tree node over glob rules' literal heads: edges are keyed by first character."""

    __slots__ = ("bucket", "children")

    def __init__(self) -> None:
        self.children: dict[str, tuple[str, _Node]] = {}
        self.bucket: Bucket | None = None

    def insert(self, key: str) -> Bucket:
        node, pos = self, 0
        while pos < len(key):
            edge = node.children.get(key[pos])
            if edge is None:
                child = _Node()
                node.children[key[pos]] = (key[pos:], child)
                node, pos = child, len(key)
                break
            label, child = edge
            common = 0
            limit = min(len(label), len(key) - pos)
            while common < limit and label[common] == key[pos + common]:
                common += 1
            if common < len(label):  # split the edge at the divergence point
                middle = _Node()
                middle.children[label[common]] = (label[common:], child)
                node.children[key[pos]] = (label[:common], middle)
                child = middle
            node, pos = child, pos + common
        if node.bucket is None:
            node.bucket = Bucket()
        return node.bucket

    def collect(self, target: str, p: PrincipalLike, out: list[Entry]) -> None:
        """Buckets of every head that is a prefix of `target`: one dict probe per branching node passed."""
        node, pos, size = self, 0, len(target)
        while True:
            if node.bucket is not None:
                node.bucket.collect(p, out)
            if pos >= size:
                return
            edge = node.children.get(target[pos])
            if edge is None:
                return
            label, node = edge
            if not target.startswith(label, pos):
                return
            pos += len(label)

    def buckets_on(self, target: str) -> Iterator[Bucket]:
        """Load-time form of `collect`: every bucket whose head is a prefix of `target`."""
        node, pos, size = self, 0, len(target)
        while True:
            if node.bucket is not None:
                yield node.bucket
            if pos >= size:
                return
            edge = node.children.get(target[pos])
            if edge is None:
                return
            label, node = edge
            if not target.startswith(label, pos):
                return
            pos += len(label)


Entry = tuple[Rule, Pattern | None, bool, Decision | None]
"""(rule, target pattern still to check or None, whether the principal still needs checking, the decision
when this rule alone decides: precomputed for enforced allow rules on an exact target)."""

SoleDecision = Callable[[Rule, str, str], Decision | None]
"""(rule, method, exact target) → the decision that rule makes alone, or None to build it per request."""


class Bucket:
    """Entries for one (method, target) slot, split by what settles the principal."""

    __slots__ = ("by_id", "by_ns", "generic")

    def __init__(self) -> None:
        self.by_id: dict[str, list[Entry]] = {}
        self.by_ns: dict[str, list[Entry]] = {}
        self.generic: list[Entry] = []

    def add(self, rule: Rule, target: Pattern | None, sole: Decision | None = None) -> None:
        if rule.principals is None:
            self.generic.append((rule, target, False, sole))
            return
        ids = [m.exact_id for m in rule.principals]
        if all(i is not None for i in ids):
            for i in dict.fromkeys(ids):
                assert i is not None
                self.by_id.setdefault(i, []).append((rule, target, False, sole))
            return
        namespaces = [m.exact_namespace for m in rule.principals]
        if all(ns is not None for ns in namespaces):
            for ns in dict.fromkeys(namespaces):
                assert ns is not None
                self.by_ns.setdefault(ns, []).append((rule, target, True, sole))
            return
        self.generic.append((rule, target, True, sole))

    def entries(self) -> Iterator[Entry]:
        for found in (*self.by_id.values(), *self.by_ns.values(), self.generic):
            yield from found

    def collect(self, p: PrincipalLike, out: list[Entry]) -> None:
        if self.by_id:
            found = self.by_id.get(p.id)
            if found:
                out.extend(found)
        if self.by_ns and p.namespace is not None:
            found = self.by_ns.get(p.namespace)
            if found:
                out.extend(found)
        if self.generic:
            out.extend(self.generic)


class MethodIndex:
    """Entries for one exact method name."""

    __slots__ = ("any_target", "exact", "globs")

    def __init__(self) -> None:
        self.exact: dict[str, Bucket] = {}
        self.globs: _Node | None = None
        self.any_target: Bucket | None = None

    def add(self, rule: Rule, target: Pattern | None, sole: SoleDecision, method: str) -> None:
        if target is None:
            if self.any_target is None:
                self.any_target = Bucket()
            self.any_target.add(rule, None)
        elif target.literal is not None:
            self.exact.setdefault(target.literal, Bucket()).add(rule, None, sole(rule, method, target.literal))
        else:
            if self.globs is None:
                self.globs = _Node()
            self.globs.insert(target.prefix).add(rule, target)

    def collect(self, target: str | None, p: PrincipalLike, out: list[Entry]) -> None:
        if target is not None:
            b = self.exact.get(target)
            if b is not None:
                b.collect(p, out)
            if self.globs is not None:
                self.globs.collect(target, p, out)
        if self.any_target is not None:
            self.any_target.collect(p, out)


class RuleIndex:
    """All rules, indexed. Built once per policy revision; read-only afterwards."""

    __slots__ = ("anything", "glob_methods", "methods", "sole")

    def __init__(self, rules: Iterable[Rule], sole: SoleDecision) -> None:
        self.methods: dict[str, MethodIndex] = {}
        self.glob_methods: list[tuple[Pattern, Bucket]] = []
        self.anything: Bucket | None = None
        globbed: dict[str, tuple[Pattern, Bucket]] = {}
        for rule in rules:
            if rule.clauses is None:
                if self.anything is None:
                    self.anything = Bucket()
                self.anything.add(rule, None)
                continue
            for clause in rule.clauses:
                if clause.method.literal is None:
                    # Method globs only occur without targets (the loader expands them against target keys).
                    _, bucket = globbed.setdefault(clause.method.text, (clause.method, Bucket()))
                    bucket.add(rule, None)
                    continue
                mi = self.methods.setdefault(clause.method.literal, MethodIndex())
                for target in clause.targets if clause.targets is not None else (None,):
                    mi.add(rule, target, sole, clause.method.literal)
        self.glob_methods = list(globbed.values())
        self.sole = self._sole_table()

    def _sole_table(self) -> dict[tuple[str, str, str], Decision]:
        """(method, exact target, exact principal id) → the decision, where one enforced allow rule alone
        decides: the common "this workload may call this tool" grant answered with a single dict probe.

        Why: walking the buckets touches a dozen objects per decision, and with 10,000 rules spread over
        as many callers those are cache misses (they made the spread benchmark 2-3x slower than 10 rules).
        A slot is listed only when nothing else could reach it: no rule for any target or any method, no
        method glob, no glob target matching it, no namespace or generic entry, one rule for that id, and
        that rule has no argument schema. Everything else takes the general path, so semantics are unchanged.
        """
        out: dict[tuple[str, str, str], Decision] = {}
        if self.anything is not None:
            return out
        for method, mi in self.methods.items():
            if mi.any_target is not None or any(pat.matches(method) for pat, _ in self.glob_methods):
                continue
            for target, bucket in mi.exact.items():
                if bucket.by_ns or bucket.generic:
                    continue
                if mi.globs is not None and any(
                        e[1] is None or e[1].matches(target)
                        for b in mi.globs.buckets_on(target) for e in b.entries()):
                    continue
                for pid, found in bucket.by_id.items():
                    rule, _, _, ready = found[0]
                    if ready is None or rule.arguments is not None or any(e[0] is not rule for e in found):
                        continue
                    out[(method, target, pid)] = ready
        return out

    def candidates(self, method: str, target: str | None, p: PrincipalLike) -> list[Entry]:
        """Entries that may match; the caller still checks each entry's pending target/principal flags."""
        out: list[Entry] = []
        mi = self.methods.get(method)
        if mi is not None:
            mi.collect(target, p, out)
        for pat, bucket in self.glob_methods:
            if pat.matches(method):
                bucket.collect(p, out)
        if self.anything is not None:
            self.anything.collect(p, out)
        return out
