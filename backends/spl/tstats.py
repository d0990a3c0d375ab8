"""The tstats head: a rule over a view that Splunk stores as an accelerated data model (CIM `Change`) starts with
`| tstats … from datamodel=… where … by …` when its pipeline starts with filters `search` can say and a summarize
of model fields; the stages after it are lowered as usual.

A detection (filters only) on a binding that declares `summary_by:` (the CIM Endpoint, Network_Traffic and
Network_Resolution datasets) becomes one row per distinct combination of those fields and of every field its
conditions read, with `count`, `firstTime`, `lastTime` (ESCU's form): the conditions `tstats` says exactly go in its
`where`, the rest (regex, field to field, case-sensitive tests) in a `| where` over the grouped fields, which hold
each event's own values. A row exists exactly when a matching event does (docs/semantics.md, decision 27)."""

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
    if low.binding.extra.get("summary_by") and all(isinstance(st, ir.Filter) for st in stages):
        return detection_head(low, [st.predicate for st in stages if isinstance(st, ir.Filter)])
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
        if a.fn not in fns:  # a function tstats has no form of (arg_max, a percentile)
            return None
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


def detection_head(low: SplLowering, predicates: list[ir.Expr]) -> str:
    """A detection over a data model: tstats with the sayable conjuncts of its first filter (and the binding's row
    terms) in `where`, grouped by the binding's `summary_by` fields and every field the rest reads; the rest is a
    `where` over the groups, after the fill value for missing fields is made null again."""
    from .lower import row_terms  # lower imports this module

    binding = low.binding
    assert binding is not None
    search = BaseSearch(binding)
    terms = row_terms(binding)  # the binding's `rows:` (Filesystem.action="created")
    rest: list[ir.Expr] = []
    if predicates:
        own, first_rest = search.split(predicates[0])
        terms += own
        rest = ([first_rest] if first_rest is not None else []) + predicates[1:]
    keys = [str(k) for k in binding.extra["summary_by"]]
    for p in rest:
        for node in ir.walk(p):
            if isinstance(node, ir.Keyword):
                raise low.fail("a keyword searches the raw event; a data model holds no raw events", node)
            if isinstance(node, ir.Column):
                f = search.plain_field(node)
                if f is None:
                    low.column(node)  # refuses a field the binding has no model field for, by name
                    raise low.fail(f"field {node.name!r}: tstats can only test the data model's own fields", node)
                if f not in keys:
                    keys.append(f)
    model = binding.extra["datamodel"]
    head = (f"| tstats summariesonly=false allow_old_summaries=true fillnull_value={render_string_literal(NULL_KEY)} "
            f"count AS count min(_time) AS firstTime max(_time) AS lastTime from datamodel={model}")
    if terms:
        head += " where " + " ".join(terms)
    head += " by " + " ".join(command_field(k) for k in keys)
    low.commands.append(restore_null_keys(keys))
    for p in rest:
        low.lower_stages([ir.Filter(p)])
    return head
