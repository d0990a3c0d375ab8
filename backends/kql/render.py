"""KQL tokens: literals, names and durations, each written in one place."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from siemforge.compiler.diagnostics import CompileError, error

_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
KQL_KEYWORDS = frozenset(
    {
        "and",
        "or",
        "not",
        "by",
        "on",
        "in",
        "has",
        "contains",
        "where",
        "extend",
        "project",
        "summarize",
        "let",
        "true",
        "false",
        "null",
        "kind",
        "with",
        "as",
        "asc",
        "desc",
        "take",
        "limit",
        "sort",
        "order",
        "top",
        "join",
        "lookup",
        "union",
        "range",
        "print",
        "datatable",
        "between",
        "to",
        "step",
        "of",
        "typeof",
        "dynamic",
        "datetime",
        "timespan",
        "time",
        "string",
        "int",
        "long",
        "real",
        "bool",
        "guid",
        "decimal",
        "count",
        "distinct",
        "evaluate",
        "parse",
        "render",
        "search",
        "find",
        "facet",
        "fork",
        "invoke",
        "first",
        "last",
        "any",
        "all",
        "from",
        "into",
        "partition",
        "set",
        "table",
        "database",
        "cluster",
        "materialize",
        "serialize",
        "toscalar",
        "totable",
        "declare",
        "pattern",
        "restrict",
        "alias",
        "access",
        "consume",
        "getschema",
        "sample",
        "scan",
        "filter",
        "macro-expand",
        "title",
        "type",
    }
)


def render_name(name: str) -> str:
    """A column name: bare when it is a plain identifier, else bracketed and quoted: ['odd name']."""
    if _PLAIN_NAME.match(name) and name.lower() not in KQL_KEYWORDS:
        return name
    return "['" + name.replace("\\", "\\\\").replace("'", "\\'") + "']"


_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def render_string_literal(s: str) -> str:
    """A KQL string literal meaning exactly `s`. Control characters other than \\n \\r \\t have no escape in
    KQL string literals, so they are a compile error rather than a silent change."""
    out = []
    for ch in s:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 32:
            raise error(f"KQL cannot write the control character U+{ord(ch):04X} in a string literal")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def render_regex_literal(pattern: str) -> str:
    """A verbatim string (@"…", where only " needs doubling) so that regex backslashes stay as written."""
    if "\n" in pattern or "\r" in pattern:
        return render_string_literal(pattern)
    return '@"' + pattern.replace('"', '""') + '"'


def render_timespan(v: timedelta) -> str:
    us = v // timedelta(microseconds=1)
    sign = "-" if us < 0 else ""
    us = abs(us)
    for unit, size in (("d", 86_400_000_000), ("h", 3_600_000_000), ("m", 60_000_000), ("s", 1_000_000), ("ms", 1_000)):
        if us % size == 0 and us >= size:
            return f"{sign}{us // size}{unit}"
    if us == 0:
        return "0s"
    return f"{sign}{us}microsecond"


def render_datetime(v: datetime) -> str:
    v = v.astimezone(UTC)
    text = v.strftime("%Y-%m-%dT%H:%M:%S")
    if v.microsecond:
        text += f".{v.microsecond:06d}".rstrip("0")
    return f"datetime({text}Z)"


def render_real(v: float) -> str:
    if v != v or v in (float("inf"), float("-inf")):
        raise error("KQL has no literal for NaN or infinity")
    text = repr(v)
    return text if any(c in text for c in ".eE") else text + ".0"


_ = CompileError
