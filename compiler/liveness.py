"""Which columns a pipeline still needs, stage by stage, and the stages without the columns nothing reads.

A view (cim.change over raw CloudTrail) computes every column of its schema; a rule over it reads a few. Expanded
as written, the target query computes, projects and carries columns no later stage reads. Walking the stages
backwards from the pipeline's output, an `extend` assignment or a `project` column that no later stage (nor the
output) reads is left out, and a `project` that keeps every column read after it (before a `summarize` or another
`project` that closes the schema again) is left out whole (docs/semantics.md decision 44). The rows and the output
columns are unchanged: only values nothing reads are not computed. Where the output is the events themselves (no
`project` or `summarize` closes the schema), every column is needed and nothing is left out.
"""

from __future__ import annotations

from . import ir

ALL: frozenset[str] | None = None  # every column is needed (the events are the output)


def reads(stage: ir.Stage, time_column: str | None) -> set[str]:
    """The columns a stage reads."""
    out = {n.name for x in ir.stage_exprs(stage) for n in ir.walk(x) if isinstance(n, ir.Column)}
    if isinstance(stage, (ir.Aggregate, ir.EventAggregate)) and time_column is not None and any(
            a.fn in (ir.AggFn.EARLIEST, ir.AggFn.LATEST) for a in stage.aggregations):
        out.add(time_column)  # the row with the smallest/largest event time
    if isinstance(stage, ir.Rename):
        out |= {old for old, _ in stage.renames}
    if isinstance(stage, ir.Project):
        out |= set(stage.columns)
    return out


def prune(stages: tuple[ir.Stage, ...], time_column: str | None) -> tuple[ir.Stage, ...]:
    """The stages with every `extend` assignment and `project` column that nothing after reads left out."""
    live: set[str] | None = None  # None: all
    out: list[ir.Stage] = []
    for stage in reversed(stages):
        match stage:
            case ir.Extend(assignments=assigns) if live is not None:
                kept = tuple(a for a in assigns if a.name in live)
                if not kept:
                    continue  # nothing after reads what it assigns
                stage = ir.Extend(kept)
                live = (live - {a.name for a in kept}) | reads(stage, time_column)
            case ir.Extend(assignments=assigns):
                pass  # all live: the assignments are part of the output
            case ir.Project(columns=cols):
                if live is not None and live <= set(cols):
                    continue  # every column read after is one it keeps: it changes nothing later stages see
                if live is not None:
                    stage = ir.Project(tuple(c for c in cols if c in live) or cols[:1])
                live = set(reads(stage, time_column))
            case ir.Aggregate():
                live = reads(stage, time_column)
            case ir.Join():  # the joined rows' column names depend on every left column: keep them all
                live = None
            case ir.EventAggregate(aggregations=aggs) if live is not None:
                live = (live - {a.name for a in aggs}) | reads(stage, time_column)
            case ir.Lookup(outputs=outs) if live is not None:
                live = (live - {alias for _, alias in outs}) | reads(stage, time_column)
            case ir.Rename(renames=renames) if live is not None:
                live = (live - {new for _, new in renames}) | reads(stage, time_column)
            case _ if live is not None:
                live |= reads(stage, time_column)
        if any(isinstance(n, ir.Keyword) for x in ir.stage_exprs(stage) for n in ir.walk(x)):
            live = None  # a keyword search reads every value of the row
        out.append(stage)
    return tuple(reversed(out))
