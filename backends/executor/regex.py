"""Regular expressions in the executor run on RE2 (google-re2): time linear in the text, whatever the pattern, so
an attacker's user agent or command line cannot stall a run (`^(a+)+$` over 100 kB of `a` takes microseconds;
Python's backtracking `re` takes longer than the age of the universe). A pattern RE2 cannot run (look-around,
backreferences, atomic groups, `\\Z`) is refused when the rule is compiled for the executor, with the construct
named, as the KQL backend refuses it (KQL runs RE2 too). docs/semantics.md decision 5 has the differences from
Python `re` and PCRE."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from siemforge.compiler import ir
from siemforge.compiler.diagnostics import Diagnostic, Severity, Span
from siemforge.compiler.lowering import expand_views, span_of
from siemforge.compiler.regex import RegexRefused, compile_re2

__all__ = ["RegexRefused", "check_rule", "compile_re2", "rule_patterns"]

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
    if rule.pipeline.source.union is not None:  # a correlation's base rules
        parts.extend(expand_views(b.pipeline) for b in rule.pipeline.source.union.branches)
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
