"""The decision index: rules bucketed by method, exact target or glob head, and principal id/namespace.

At load time the buckets that can apply to each exact (method, target) are merged into one `View` with
their target patterns already checked (targets reached only by globs get theirs on first use, memoised).
A lookup then touches a handful of dict entries however many rules there are; only candidates whose
principal could not be settled by the key are checked further.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Final, TypeVar

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

    def buckets_on(self, target: str) -> Iterator[Bucket]:
        """Buckets of every head that is a prefix of `target`: one dict probe per branching node passed."""
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

SoleDecision = Callable[[Rule, str, str | None], Decision | None]
"""(rule, method, target) → the decision that rule makes alone, or None to build it per request."""


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
                # A bare `{namespace: x}` matcher is settled by the key; anything more is checked per call.
                settled = any(m.namespace_only and m.exact_namespace == ns for m in rule.principals)
                self.by_ns.setdefault(ns, []).append((rule, target, not settled, sole))
            return
        self.generic.append((rule, target, True, sole))

    def entries(self) -> Iterator[Entry]:
        for found in (*self.by_id.values(), *self.by_ns.values(), self.generic):
            yield from found


class View:
    """Every entry that can apply to one (method, target), its target pattern already checked, split by what
    settles the principal. A decision reads one view: a dict probe or two, whatever the number of rules.

    `nothing` is filled by the engine: the decision when no entry applies to the caller, which then depends
    on neither the caller nor the arguments. Entries carry the decision their rule makes alone for this
    target (`sole`), glob and any-target rules included, so a single matching grant needs no assembling.
    """

    __slots__ = ("by_id", "by_ns", "generic", "nothing", "only_id")

    def __init__(self, buckets: Iterable[Bucket], method: str, target: str | None, sole: SoleDecision) -> None:
        by_id: dict[str, list[Entry]] = {}
        by_ns: dict[str, list[Entry]] = {}
        generic: list[Entry] = []

        def keep(found: Iterable[Entry]) -> list[Entry]:
            return [(rule, None, pending, ready if ready is not None else sole(rule, method, target))
                    for rule, pattern, pending, ready in found
                    if pattern is None or (target is not None and pattern.matches(target))]

        # Bucket order is kept within each list: a rule's first entry (whose `ready` decision is used
        # when that rule alone matches) is the same as when the buckets are read one after another.
        for b in buckets:
            for pid, found in b.by_id.items():
                kept = keep(found)
                if kept:
                    by_id.setdefault(pid, []).extend(kept)
            for ns, found in b.by_ns.items():
                kept = keep(found)
                if kept:
                    by_ns.setdefault(ns, []).extend(kept)
            generic.extend(keep(b.generic))
        self.by_id: dict[str, tuple[Entry, ...]] = {k: tuple(v) for k, v in by_id.items()}
        self.by_ns: dict[str, tuple[Entry, ...]] = {k: tuple(v) for k, v in by_ns.items()}
        self.generic: tuple[Entry, ...] = tuple(generic)
        self.only_id = not (by_ns or generic)
        self.nothing: Decision | None = None

    def collect(self, p: PrincipalLike) -> Sequence[Entry]:
        if self.only_id:
            return self.by_id.get(p.id, ())
        out: list[Entry] = []
        if self.by_id:
            found = self.by_id.get(p.id)
            if found:
                out.extend(found)
        if self.by_ns and p.namespace is not None:
            found = self.by_ns.get(p.namespace)
            if found:
                out.extend(found)
        out.extend(self.generic)
        return out


class MethodIndex:
    """Entries for one exact method name, and the views built from them."""

    __slots__ = ("any_target", "exact", "globs", "memo", "views")

    def __init__(self) -> None:
        self.exact: dict[str, Bucket] = {}
        self.globs: _Node | None = None
        self.any_target: Bucket | None = None
        self.views: dict[str | None, View] = {}
        """Built at load time: every exact target any rule names, and no target (None)."""
        self.memo: dict[str, View] = {}
        """Views of other targets (reached by globs or by nothing), built on first use; bounded."""

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

    def buckets(self, target: str | None, common: Sequence[Bucket]) -> list[Bucket]:
        """The buckets that can hold entries for `target`, in the order decisions read them."""
        out: list[Bucket] = []
        if target is not None:
            b = self.exact.get(target)
            if b is not None:
                out.append(b)
            if self.globs is not None:
                out.extend(self.globs.buckets_on(target))
        if self.any_target is not None:
            out.append(self.any_target)
        out.extend(common)
        return out


class RuleIndex:
    """All rules, indexed. Built once per policy revision; afterwards only the bounded memos of views for
    targets and methods no rule names exactly change (a lost or repeated insert there is harmless)."""

    __slots__ = ("_sole_fn", "anything", "glob_methods", "methods", "other_methods", "sole")

    def __init__(self, rules: Iterable[Rule], sole: SoleDecision) -> None:
        self.methods: dict[str, MethodIndex] = {}
        self.glob_methods: list[tuple[Pattern, Bucket]] = []
        self.anything: Bucket | None = None
        self.other_methods: dict[tuple[str, str | None], View] = {}
        self._sole_fn = sole
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
        for method, mi in self.methods.items():
            common = self._common(method)
            for t in (*mi.exact, None):
                mi.views[t] = View(mi.buckets(t, common), method, t, sole)
        self.sole = self._sole_table()

    def _common(self, method: str) -> list[Bucket]:
        """Buckets for every target of `method`: method globs that match it, then rules for anything."""
        out = [bucket for pat, bucket in self.glob_methods if pat.matches(method)]
        if self.anything is not None:
            out.append(self.anything)
        return out

    def _sole_table(self) -> dict[str, Decision]:
        """(method, exact target, exact principal id) → the decision, where one enforced allow rule alone
        decides: the common "this workload may call this tool" grant answered with a single dict probe.

        Why: even one view touches half a dozen objects per decision, and with 10,000 rules spread over
        as many callers those are cache misses. A slot is listed only when its view holds nothing but
        entries for that id, all of one rule, and that rule is enforced, allows, and has no argument schema:
        then no other rule can apply, so the answer is the one the general path would give.
        """
        out: dict[str, Decision] = {}
        for method, mi in self.methods.items():
            for target, view in mi.views.items():
                if target is None or not view.only_id:
                    continue
                for pid, found in view.by_id.items():
                    rule, _, _, ready = found[0]
                    if ready is None or rule.arguments is not None or any(e[0] is not rule for e in found):
                        continue
                    if "\x00" in method or "\x00" in target or "\x00" in pid:
                        continue  # keeps the joined key unambiguous (see `sole_key`)
                    out[sole_key(method, target, pid)] = ready
        return out

    def view(self, method: str, target: str | None) -> View:
        mi = self.methods.get(method)
        if mi is None:  # no rule names this method: only method globs and rules for anything apply
            key = (method, target)
            view = self.other_methods.get(key)
            if view is None:
                view = View(self._common(method), method, target, self._sole_fn)
                _remember(self.other_methods, key, len(method) + len(target or ""), view)
            return view
        view = mi.views.get(target)
        if view is not None:
            return view
        assert target is not None  # the None view is built at load time
        view = mi.memo.get(target)
        if view is None:
            view = View(mi.buckets(target, self._common(method)), method, target, self._sole_fn)
            _remember(mi.memo, target, len(target), view)
        return view

    def candidates(self, method: str, target: str | None, p: PrincipalLike) -> Sequence[Entry]:
        """Entries that may match; the caller still checks each entry's pending principal flag."""
        return self.view(method, target).collect(p)


def sole_key(method: str, target: str, p_id: str) -> str:
    """The key of `RuleIndex.sole`: one string, not a tuple, so a probe touches one key object (the tuple
    and its three strings were cache misses with 10,000 grants). Table keys hold no other NUL, so a
    caller's key with a NUL in a name never equals one."""
    return f"{method}\x00{target}\x00{p_id}"


K = TypeVar("K")
_MEMO_LIMIT: Final = 4096
_MEMO_KEY_LIMIT: Final = 512


def _remember(memo: dict[K, View], key: K, size: int, view: View) -> None:
    # Callers choose these keys (tool names, URIs, methods): keep the memory bounded whatever they send.
    if size > _MEMO_KEY_LIMIT:
        return
    if len(memo) >= _MEMO_LIMIT:
        memo.clear()
    memo[key] = view
