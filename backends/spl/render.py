"""SPL tokens: string literals, field names and regex text, each written in one place."""

from __future__ import annotations

import re

_PLAIN_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# words that are operators or commands in where/eval and must not stand bare as field names
_RESERVED = frozenset({"AND", "OR", "NOT", "XOR", "LIKE", "IN", "TRUE", "FALSE", "NULL", "BY", "AS", "OVER"})


def render_string_literal(s: str) -> str:
    """An eval/where string literal meaning exactly `s`.

    Inside double quotes SPL reads `\\"` and `\\\\`; everything else is literal, newlines and `|` included. A
    backtick would start macro expansion anywhere in the search text, so each one is spliced in as
    `urldecode("%60")`, which evaluates to a backtick."""
    parts = s.split("`")
    quoted = ['"' + p.replace("\\", "\\\\").replace('"', '\\"') + '"' for p in parts]
    if len(quoted) == 1:
        return quoted[0]
    return "(" + '.urldecode("%60").'.join(quoted) + ")"


def search_literal(s: str) -> str | None:
    """A value for a `search` term (`field="value"`), or None when search cannot say it exactly: `*` is always a
    wildcard there, and backticks and line breaks are unsafe in the search text."""
    if "*" in s or "`" in s or "\n" in s or "\r" in s:
        return None
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_field(name: str) -> str:
    """A field name in where/eval: bare when it is a plain identifier, else single-quoted."""
    if _PLAIN_FIELD.match(name) and name.upper() not in _RESERVED:
        return name
    return "'" + name.replace("\\", "\\\\").replace("'", "\\'") + "'"


def search_field(name: str) -> str:
    """A field name on the left of a search term: quotes are not needed for dotted/brace JSON names."""
    if re.fullmatch(r"[A-Za-z_@][A-Za-z0-9_.{}@-]*", name):
        return name
    return '"' + name.replace('"', '\\"') + '"'


def command_field(name: str) -> str:
    """A field name as an argument of a command (stats by, rename, table, lookup): quoted if it has odd characters."""
    if re.fullmatch(r"[A-Za-z_@][A-Za-z0-9_.{}@]*", name):
        return name
    return '"' + name.replace('"', '\\"') + '"'


def pcre_escape(s: str) -> str:
    """Literal text inside a PCRE pattern."""
    return re.sub(r"([\\^$.|?*+()\[\]{}/#\s-])", r"\\\1", s)


def unwrapped(text: str) -> str:
    """`text` without parentheses around the whole of it, for a place where they change nothing: a `where`
    expression, a function argument (docs/semantics.md decision 46). `(a) OR (b)` keeps its own; parentheses inside
    a string literal or a quoted field name do not count."""
    while text.startswith("(") and text.endswith(")"):
        depth, quote, escaped = 0, "", False
        for i, ch in enumerate(text):
            if quote:
                if escaped:
                    escaped = False
                elif ch == "\\":
                    escaped = True
                elif ch == quote:
                    quote = ""
            elif ch in "\"'":
                quote = ch
            elif ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
                if depth == 0 and i < len(text) - 1:
                    return text  # the first parenthesis closes before the end
        text = text[1:-1]
    return text
