"""A sound pre-filter on raw NDJSON lines: skip the JSON parse of a line that cannot satisfy the rule's
first filter because none of the literals the filter needs occurs in the line's text.

Sound means: a skipped line would have been dropped by the filter anyway. Only printable-ASCII literals without
quotes or backslashes are used (JSON writes them verbatim), never numeric-looking text (`"05"` equals 5), and
a line holding any `\\` escape is always parsed. Matching ignores case, so case-insensitive filters stay sound.
Only a line that looks like a whole JSON object (starts with `{`, ends with `}`) is ever skipped: a truncated or
otherwise broken line is parsed, and reported. A line that looks whole but is not JSON inside and holds no needed
literal goes unreported; `run --no-prefilter` parses every line (docs/semantics.md, decision 60).
"""

from __future__ import annotations

from siemforge.compiler import ir

from .values import to_number


def _usable(lit: object) -> bool:
    if not isinstance(lit, str) or len(lit) < 3:
        return False
    if to_number(lit) is not None or lit.lower() in ("true", "false", "null"):
        return False
    return all(32 <= ord(ch) < 127 and ch not in '"\\' for ch in lit)


def needles(e: ir.Expr, time_column: str | None) -> list[str] | None:
    """Literals of which at least one must occur in the raw text for `e` to be true; None if unknown."""
    match e:
        case ir.Compare(op=ir.CmpOp.EQ, left=ir.Column(name=n), right=ir.Literal(value=v)) if n != time_column:
            return [v] if _usable(v) else None  # type: ignore[list-item]
        case ir.StringMatch(subject=ir.Column(name=n), pattern=ir.Literal(value=v)) if n != time_column:
            return [v] if _usable(v) else None  # type: ignore[list-item]
        case ir.InList(subject=ir.Column(name=n), values=vals) if n != time_column:
            lits = [v.value for v in vals if isinstance(v, ir.Literal)]
            return lits if len(lits) == len(vals) and all(_usable(x) for x in lits) else None  # type: ignore[return-value]
        case ir.WildcardMatch(subject=ir.Column(name=n), pattern=p) if n != time_column:
            parts = [x for x in p if isinstance(x, str) and _usable(x)]
            return [max(parts, key=len)] if parts else None
        case ir.And(operands=ops):
            options = [x for x in (needles(o, time_column) for o in ops) if x]
            return min(options, key=lambda xs: (len(xs), -min(len(x) for x in xs))) if options else None
        case ir.Or(operands=ops):
            out: list[str] = []
            for o in ops:
                found = needles(o, time_column)
                if not found:
                    return None
                out.extend(found)
            return out
    return None


def looks_whole(line: bytes) -> bool:
    """The line starts with `{` and ends with `}` (before its newline): the only lines a pre-filter may skip, so that
    a truncated line is always parsed and reported."""
    return line[:1] == b"{" and (line.endswith(b"}\n") or line.endswith(b"}") or line.endswith(b"}\r\n"))


class LineFilter:
    """A pre-filter on raw lines: called with a line, True to parse it. `needles` (lower-cased): a line that looks
    whole, holds no `\\` and holds none of them (compared without case) is one it rejects, so that a reader may
    skip whole runs of such lines without looking at them one by one (reader._skim)."""

    __slots__ = ("needles", "_exact")

    def __init__(self, needles: list[str]) -> None:
        self._exact = [n.encode() for n in needles]
        self.needles = tuple(dict.fromkeys(n.lower().encode() for n in needles))

    def __call__(self, line: bytes) -> bool:
        if not looks_whole(line):
            return True
        for n in self._exact:
            if n in line:
                return True
        if b"\\" in line:
            return True
        low = line.lower()
        return any(n in low for n in self.needles)


def line_prefilter(pipeline: ir.Pipeline) -> LineFilter | None:
    """The pre-filter of a pipeline's raw lines, or None when the pipeline gives nothing to filter on."""
    if pipeline.source.view is not None or not pipeline.stages or not isinstance(pipeline.stages[0], ir.Filter) \
            or ir.has_join(pipeline):  # a join's right side reads the lines the left's filter drops
        return None
    found = needles(pipeline.stages[0].predicate, pipeline.source.time_column)
    if not found:
        return None
    return LineFilter(found)
