"""Name and URI patterns compiled to regexes once at load time: globs and RFC 6570-style templates.

`*` matches within one `/`-separated segment, `**` across segments, `?` one character (not `/`);
`{var}` matches one segment, `{var*}` / `{+var}` / `{#var}` any text, `{/var}` / `{/var*}` path segments.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

_SEG = r"[^/]"
_TEMPLATE_VAR = re.compile(r"^([+#/.;?&]?)([A-Za-z0-9_.%]+)(\*?)(?:,[A-Za-z0-9_.%]+\*?)*$")


class PatternError(ValueError):
    """A pattern that cannot be compiled; the loader turns this into a located `ConfigError`."""


@dataclass(frozen=True, slots=True)
class Pattern:
    """A compiled pattern. `literal` is set when it contains no wildcard; `prefix` is its literal head."""

    text: str
    regex: re.Pattern[str] | None  # None for a literal (no wildcard): compared as a string
    literal: str | None
    prefix: str

    def matches(self, value: str) -> bool:
        if self.regex is None:
            return value == self.literal
        return self.regex.fullmatch(value) is not None


@functools.lru_cache(maxsize=4096)
def compile_pattern(text: str, *, templates: bool = False) -> Pattern:
    """Compile a glob (and, with `templates`, `{var}` expressions) into an anchored regex."""
    out: list[str] = []
    prefix: list[str] = []
    wild = False
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "*":
            if i + 1 < n and text[i + 1] == "*":
                out.append(".*")
                i += 2
            else:
                out.append(_SEG + "*")
                i += 1
            wild = True
        elif c == "?":
            out.append(_SEG)
            wild = True
            i += 1
        elif c == "{" and templates:
            end = text.find("}", i)
            if end < 0:
                raise PatternError(f"unclosed `{{` in `{text}`")
            out.append(_template_expr(text[i + 1:end], text))
            wild = True
            i = end + 1
        elif c == "}" and templates:
            raise PatternError(f"unbalanced `}}` in `{text}`")
        else:
            out.append(re.escape(c))
            if not wild:
                prefix.append(c)
            i += 1
    if not text:
        raise PatternError("empty pattern")
    if not wild:
        return Pattern(text, None, text, text)
    return Pattern(text, re.compile("".join(out), re.DOTALL), None, "".join(prefix))


def _template_expr(expr: str, text: str) -> str:
    m = _TEMPLATE_VAR.match(expr)
    if m is None:
        raise PatternError(f"invalid template expression `{{{expr}}}` in `{text}`")
    op, explode = m.group(1), m.group(3)
    if op in ("+", "#") or (op == "" and explode):
        return ".+"
    if op == "/":
        return r"(?:/[^/]*)*" if explode else r"/[^/]*"
    if op in ("?", "&"):
        return r"(?:[?&][^#]*)?"
    if op in (".", ";"):
        return re.escape(op) + r"[^/]*"
    return r"[^/]+"


def may_overlap(pattern: Pattern, template: str) -> bool:
    """Whether a resource pattern could match some expansion of a URI template (used for list visibility).

    Exact for literal templates; for templates it is generous (a shared literal head is enough), which
    can only show a template a caller may then be refused, never hide one they may read.
    """
    if "{" not in template:
        return pattern.matches(template)
    if pattern.text == template or pattern.matches(template):
        return True
    head = template.split("{", 1)[0]
    return head.startswith(pattern.prefix) or pattern.prefix.startswith(head)
