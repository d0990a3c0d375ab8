"""The tstats head: a rule over a view that Splunk stores as an accelerated data model (CIM `Change`) starts with
`| tstats … from datamodel=… where … by …` when its pipeline starts with filters `search` can say and a summarize
of model fields; the stages after it are lowered as usual.

A detection (filters only) on a binding that declares `summary_by:` (the CIM Endpoint, Network_Traffic and
Network_Resolution datasets) becomes one row per distinct combination of those fields and of every field its
conditions read, with `count`, `firstTime`, `lastTime` (ESCU's form): the conditions `tstats` says exactly go in its
`where`, the rest (regex, field to field, case-sensitive tests) in a `| where` over the grouped fields, which hold
each event's own values. A row exists exactly when a matching event does (docs/semantics.md, decision 27)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from siemforge.compiler import ir
from siemforge.compiler.bindings import computed

from .render import command_field, render_string_literal
from .search import BaseSearch
from .stats import AGG_FUNCTIONS, NULL_KEY, agg_term, restore_null_keys

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
        if a.fn not in fns or a.limit is not None:  # a function tstats has no form of (arg_max, a percentile,
            return None  # values(x, N): its cap is an eval after stats)
        if a.arg is None:
            funcs.append(agg_term(fns[a.fn], None, a.name))
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
    from .lower import computed_inputs, row_terms  # lower imports this module

    binding = low.binding
    assert binding is not None
    search = BaseSearch(binding)
    terms = row_terms(binding)  # the binding's `rows:` (Filesystem.action="created")
    rest: list[ir.Expr] = []
    if predicates:
        own, first_rest = search.split(predicates[0])
        terms += own
        rest = ([first_rest] if first_rest is not None else []) + predicates[1:]
    refuse_shown_missing(low, predicates)
    refuse_stripped(low, predicates)
    keys = [str(k) for k in binding.extra["summary_by"]]
    for p in rest:
        for node in ir.walk(p):
            if isinstance(node, ir.Keyword):
                raise low.fail("a keyword searches the raw event; a data model holds no raw events", node)
            if isinstance(node, ir.Column):
                f = search.plain_field(node)
                spec = computed(binding).get(node.name) if f is None and not node.path else None
                if spec is not None:  # made from model fields (Details: registry_value_type and _data): group by them
                    keys += [k for k in computed_inputs(spec) if k not in keys]
                    continue
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


def refuse_shown_missing(low: SplLowering, predicates: list[ir.Expr]) -> None:
    """A computed field with `missing_for` (DestinationHostname: the model shows Sysmon's `-` and a missing name
    alike) may only be tested by tests false of a missing value and of each of those values, as the executor decides
    them; a test true of one (`isnull`, `contains: '-'`) is refused, since the model cannot tell them apart."""
    from siemforge.backends.executor.compile import Context, compile_expr

    assert low.binding is not None
    specs = {n: s for n, s in computed(low.binding).items() if s.get("missing_for")}
    if not specs:
        return

    def tests(e: ir.Expr) -> list[ir.Expr]:
        if isinstance(e, (ir.And, ir.Or)):
            return [t for o in e.operands for t in tests(o)]
        return tests(e.operand) if isinstance(e, ir.Not) else [e]

    ctx = Context(datetime.now(UTC), None, None)
    for t in (t for p in predicates for t in tests(p)):
        cols = [c for c in ir.walk(t) if isinstance(c, ir.Column)]
        for c in cols:
            spec = specs.get(c.name)
            if spec is None:
                continue
            shown = [None, *spec["missing_for"]]
            if c.path or len({(x.name, x.path) for x in cols}) > 1 or any(
                    compile_expr(t, ctx)({c.name: v}) is True for v in shown):
                raise low.fail(f"field {c.name!r}: the data model shows {' and '.join(repr(v) for v in shown[1:])} "
                               "and a missing value alike; only a test false of all of them has an exact form here", c)


def refuse_stripped(low: SplLowering, predicates: list[ir.Expr]) -> None:
    """A field whose model value is the field with a pattern's matches removed (`strips:`; the Sysmon add-on's
    `file_path` is TargetFilename without an alternate data stream's `:name`): a test whose text holds such a match
    (`endswith: ':Zone.Identifier'`) could never be true of the model's value, and is refused."""
    import re

    assert low.binding is not None
    strips = {str(k): re.compile(str(v)) for k, v in (low.binding.extra.get("strips") or {}).items()}
    if not strips:
        return
    for p in predicates:
        for node in ir.walk(p):
            subject = getattr(node, "subject", None) if not isinstance(node, ir.Compare) else node.left
            if not (isinstance(subject, ir.Column) and subject.name in strips):
                continue
            texts = [x.value for x in ir.walk(node) if isinstance(x, ir.Literal) and isinstance(x.value, str)]
            if isinstance(node, ir.WildcardMatch):
                texts += [x for x in node.pattern if isinstance(x, str)]
            if isinstance(node, ir.RegexMatch):
                texts.append(node.pattern.replace("\\\\", "/"))  # an escaped backslash ends a stream name
            if any(strips[subject.name].search(t) for t in texts):
                raise low.fail(f"field {subject.name!r}: the data model's value has every "
                               f"{strips[subject.name].pattern!r} taken out (an alternate data stream's name); a test "
                               "of that text has no exact form here", subject)
