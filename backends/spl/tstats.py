"""The tstats head: a rule over a view that Splunk stores as an accelerated data model (CIM `Change`) starts with
`| tstats … from datamodel=… where … by …` when its pipeline starts with filters `search` can say and a summarize
of model fields; the stages after it are lowered as usual."""

from __future__ import annotations

from typing import TYPE_CHECKING

from siemforge.compiler import ir

from .render import command_field, render_string_literal
from .search import BaseSearch
from .stats import AGG_FUNCTIONS, NULL_KEY, restore_null_keys

if TYPE_CHECKING:
    from .lower import SplLowering


def tstats_head(low: SplLowering, stages: list[ir.Stage]) -> str | None:
    """`| tstats … from datamodel=… where … by …` for leading filters and a summarize over model fields."""
    assert low.binding is not None
    search = BaseSearch(low.binding)
    terms: list[str] = []
    i = 0
    while i < len(stages) and isinstance(stages[i], ir.Filter):
        st = stages[i]
        assert isinstance(st, ir.Filter)
        parts = list(st.predicate.operands) if isinstance(st.predicate, ir.And) else [st.predicate]
        for p in parts:
            t = search.term(p)
            if t is None:
                return None
            terms.append(t)
        i += 1
    if i >= len(stages) or not isinstance(stages[i], ir.Aggregate):
        return None
    agg = stages[i]
    assert isinstance(agg, ir.Aggregate)
    fns = AGG_FUNCTIONS
    funcs = []
    for a in agg.aggregations:
        if a.arg is None:
            funcs.append(f"{fns[a.fn]} AS {command_field(a.name)}")
            continue
        f = search.plain_field(a.arg) if not (isinstance(a.arg, ir.Column) and a.arg.name == "_time") else "_time"
        if f is None:
            return None
        funcs.append(f"{fns[a.fn]}({f}) AS {command_field(a.name)}")
    keys = []
    for b in agg.by:
        f = search.plain_field(b.expr)
        if f is None:
            return None
        keys.append((f, b.name))
    model = low.binding.extra["datamodel"]
    # tstats drops rows with a null key unless it fills them; the IR keeps them as a group
    head = (f"| tstats summariesonly=false fillnull_value={render_string_literal(NULL_KEY)} " + " ".join(funcs)
            + f" from datamodel={model}")
    if terms:
        head += " where " + " ".join(terms)
    if keys:
        head += " by " + " ".join(f for f, _ in keys)
        low.commands.append("rename " + ", ".join(f"{command_field(f)} AS {command_field(n)}" for f, n in keys))
        low.commands.append(restore_null_keys([n for _, n in keys]))
    low.computed = {b.name: b.expr.type for b in agg.by}
    low.computed.update({a.name: a.type for a in agg.aggregations})
    low.from_source = False
    low.lower_stages(stages[i + 1:])
    return head
