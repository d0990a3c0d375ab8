"""Regular expressions in the executor run on RE2 (google-re2): time linear in the text, whatever the pattern, so
an attacker's user agent or command line cannot stall a run (`^(a+)+$` over 100 kB of `a` takes microseconds;
Python's backtracking `re` takes longer than the age of the universe). A pattern RE2 cannot run (look-around,
backreferences, atomic groups, `\\Z`) is refused when the rule is compiled for the executor, with the construct
named, as the KQL backend refuses it (KQL runs RE2 too). docs/semantics.md decision 5 has the differences from
Python `re` and PCRE."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import re2

from siemforge.compiler import ir
from siemforge.compiler.diagnostics import Diagnostic, Severity, Span
from siemforge.compiler.lowering import expand_views, span_of

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


def _options(flags: frozenset[str] | set[str] = frozenset()) -> re2.Options:
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
        return re2.compile(text, _options(flags))
    except re2.error as exc:
        msg = exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise RegexRefused(why_refused(msg)) from None


def rule_patterns(e: Any) -> Iterator[tuple[str, frozenset[str]]]:
    """Every regex an IR expression (or stage, or pipeline) evaluates: `matches regex`/Sigma `|re`, and the
    pattern arguments of extract() and replace_regex()."""
    for pattern, flags, _ in _patterns(e):
        yield pattern, flags


def _patterns(e: Any) -> Iterator[tuple[str, frozenset[str], Any]]:
    """rule_patterns, each with the IR node that evaluates it (to find where the rule wrote it)."""
    if isinstance(e, ir.RegexMatch):
        yield e.pattern, e.flags, e
    if isinstance(e, ir.Call) and e.fn in ("extract", "replace_regex"):
        rx = e.args[0] if e.fn == "extract" else e.args[1]
        if isinstance(rx, ir.Literal) and isinstance(rx.value, str):
            yield rx.value, frozenset(), e
    if isinstance(e, (list, tuple)):
        for x in e:
            yield from _patterns(x)
    elif dataclasses.is_dataclass(e) and not isinstance(e, type):
        for f in dataclasses.fields(e):
            yield from _patterns(getattr(e, f.name))


def check_rule(rule: ir.RuleIR) -> Diagnostic | None:
    """The error that stops the executor running this rule (a regex RE2 cannot run), or None. Positioned at the
    first line of the rule file that holds the pattern's text, when one does."""
    parts: list[Any] = [expand_views(rule.pipeline), [b.initial.stages for b in rule.baselines]]  # views' stages too
    for pattern, flags, node in _patterns(parts):
        try:
            compile_re2(pattern, flags)
        except RegexRefused as exc:
            return Diagnostic(
                Severity.ERROR,
                f"{rule.meta.title}: the executor runs regexes on RE2, which cannot run {pattern!r}: {exc}",
                _find(rule.file, pattern, span_of(rule, node)),
                "rewrite the pattern without it (Splunk's PCRE could run it, KQL and the executor cannot); "
                "see docs/semantics.md, decision 5",
                "executor",
            )
    return None


def _find(file: str, pattern: str, near: Span | None = None) -> Span | None:
    """Where the pattern's text is in the rule file: from the line of `near` (where the rule wrote the expression
    that evaluates it, so a title holding the same text is not taken for it), else from the top; else `near`."""
    if not file:
        return near
    try:
        lines = Path(file).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return near
    first = near.line if near is not None and near.file == file else 1
    for needle in (pattern, pattern.replace("\\", "\\\\")):  # as written plain, or in a double-quoted string
        for n, line in enumerate(lines[first - 1:], first):
            col = line.find(needle)
            if col >= 0:
                return Span(file, n, col + 1, col + 1 + len(needle))
    return near or Span(file, 1, 1)
