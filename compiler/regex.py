"""RE2, the regex engine every pattern siemforge evaluates or emits for KQL is judged by: time linear in the text,
whatever the pattern. One place for how a pattern is compiled (Sigma's `i`, `m`, `s` flags, RE2's budget, its C++
logger kept quiet) and for why RE2 refuses one, in words a rule author knows (docs/semantics.md decision 5)."""

from __future__ import annotations

import re
from typing import Any

import re2

# RE2's program-size budget per pattern (its default is 8 MiB); past it, compiling fails and the rule is refused
MAX_PROGRAM_BYTES = 8 << 20

_CONSTRUCTS = (  # RE2's error text → the construct, in words a rule author knows
    ("(?<=", "look-behind `(?<=…)`"),
    ("(?<!", "negative look-behind `(?<!…)`"),
    ("(?=", "look-ahead `(?=…)`"),
    ("(?!", "negative look-ahead `(?!…)`"),
    ("(?>", "atomic group `(?>…)`"),
    ("(?#", "comment group `(?#…)`"),
    ("(?x", "verbose flag `(?x)`"),
    ("++", "possessive quantifier"),
    ("*+", "possessive quantifier"),
    ("?+", "possessive quantifier"),
    ("\\Z", "`\\Z` (RE2 has no \\Z; without the `m` flag `$` already means the end of the text)"),
)
_BACKREF = re.compile(r"invalid escape sequence: \\[1-9]")


class RegexRefused(ValueError):
    """RE2 cannot run this pattern; the message names the construct."""


def options(flags: frozenset[str] | set[str] = frozenset()) -> re2.Options:
    o = re2.Options()
    o.log_errors = False  # RE2 would print parse errors to stderr; we report them ourselves
    o.max_mem = MAX_PROGRAM_BYTES
    o.case_sensitive = "i" not in flags
    o.dot_nl = "s" in flags
    return o


def why_refused(message: str) -> str:
    """RE2's error message in the words of a rule author."""
    if _BACKREF.search(message):
        return "a backreference (`\\1`…) — RE2 runs in linear time and has no backreferences"
    for needle, construct in _CONSTRUCTS:
        if needle in message:
            return f"{construct} — RE2 runs in linear time and has no such construct"
    return message


def compile_re2(pattern: str, flags: frozenset[str] | set[str] = frozenset()) -> Any:
    """The RE2 program of a search pattern with Sigma's flags (`i`, `m`, `s`); RegexRefused if RE2 cannot run it.

    `i` and `s` are RE2 options (case_sensitive=False, dot_nl); `m` is the inline `(?m)` flag (RE2 has no
    multi-line option; `(?m)` makes `^`/`$` match at line starts and ends, as Python's MULTILINE)."""
    text = ("(?m)" if "m" in flags else "") + pattern
    try:
        return re2.compile(text, options(flags))
    except re2.error as exc:
        msg = exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise RegexRefused(why_refused(msg)) from None
