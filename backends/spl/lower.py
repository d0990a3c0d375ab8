"""IR → Splunk SPL. A plain walk over the IR: each node type has one lowering function.

Choices that keep the IR's meaning (docs/backends/splunk.md has each with its Splunk doc):
- the first filter's conjuncts that `search` says exactly (case-insensitive terms on plain fields) go into the
  base search (search.py); the rest go to `where`, where comparisons are case-sensitive and nulls are not true;
- paths into JSON are read with `spath` (1-based `{n}`; negative indexes through `mvindex`);
- `eval` is sequential, so a stage that reads a column it also replaces goes through temporaries
  (compiler/lowering.py: the `sequential_assignment` rewrite);
- `stats by` drops null keys, so keys are filled with a sentinel before and restored after (stats.py);
- a view stored as a data model starts with `tstats` (tstats.py); baseline searches are in baseline.py.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from siemforge.compiler import ir, lowering, nullability
from siemforge.compiler.bindings import Binding, computed, named_field, row_filter
from siemforge.compiler.diagnostics import CompileError, error
from siemforge.compiler.lowering import Drop, Features, Lowered, LoweringStage, bind, preprocess, refusal
from siemforge.compiler.nullability import Facts
from siemforge.compiler.types import Type

from .render import (
    command_field,
    pcre_escape,
    render_field,
    render_string_literal,
    search_field,
    search_literal,
    unwrapped,
)
from .search import BaseSearch
from .stats import AGG_FUNCTIONS, NULL_KEY, PLAIN_NAME, agg_term, restore_null_keys
from .tstats import tstats_head

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SCALARS = frozenset({Type.STRING, Type.INT, Type.REAL, Type.BOOL, Type.DATETIME})
# XML's predefined entities and the character references Windows writes in event text, as SPL expressions, undone in
# this order (`&amp;` last, so that `&amp;lt;` stays `&lt;`); control characters through urldecode, since an SPL string
# literal has no escape for them
XML_ESCAPES = [("&lt;", '"<"'), ("&gt;", '">"'), ("&quot;", '"\\""'), ("&apos;", '"\'"'),
               ("&#xD;", 'urldecode("%0D")'), ("&#xA;", 'urldecode("%0A")'), ("&#x9;", 'urldecode("%09")'),
               ("&amp;", '"&"')]


@dataclass(slots=True)
class SplLowering:
    rule: ir.RuleIR
    binding: Binding | None
    stages: tuple[ir.Stage, ...]  # views the binding does not store expanded in front (compiler.lowering.bind)
    prefix: str
    commands: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)  # spath/eval commands the next stage needs
    computed: dict[str, Type] = field(default_factory=dict)
    from_source: bool = True
    extracted: dict[tuple[str, tuple[str | int, ...]], str] = field(default_factory=dict)
    counter: int = 0
    live: dict[str, None] = field(default_factory=dict)  # temporaries still on the rows, in order of creation
    at_stage: ir.Stage | None = None  # the rule's stage being lowered (where a refusal points by default)
    element: tuple[str, tuple[str | int, ...] | None] | None = None  # AnyElement: the multivalue field, its leaf path
    facts: Facts = Facts()  # what the nullability pass knows of the rows the stage being lowered reads
    json_text: set[str] = field(default_factory=set)  # computed columns holding JSON text (spath output), not mv

    def fresh(self, stem: str) -> str:
        self.counter += 1
        name = f"siemforge_{stem}{self.counter}"
        self.live[name] = None
        return name

    def reassigned(self, name: str) -> None:
        """`name` now holds another value: what spath extracted from its old value is stale."""
        for key in [k for k in self.extracted if k[0] == name]:
            del self.extracted[key]

    def drop(self, names: list[str]) -> None:
        """Remove temporaries from the rows."""
        self.emit("fields - " + " ".join(names))
        for n in names:
            self.live.pop(n, None)

    def fail(self, message: str, *at: object, code: str = "unsupported") -> CompileError:
        """A refusal pointing at the first of `at` the rule wrote, else at the stage being lowered."""
        return refusal(self.rule, FEATURES, message, *at, self.at_stage, code=code)

    # ------------------------------------------------------------------ query
    def query(self) -> str:
        if self.binding is not None and self.binding.extra.get("datamodel"):
            head = tstats_head(self, list(self.stages))
            if head is None:
                raise self.fail("this pipeline cannot start with tstats over the data model (it needs filters on "
                                "model fields, then a summarize of them); compile it with --binding raw")
            if self.live:  # made by the stages after tstats
                self.drop(list(self.live))
            return "\n".join([head, *("| " + c for c in self.commands)])
        stages = list(self.stages)
        terms: list[str] = []
        if stages and isinstance(stages[0], ir.Filter):
            terms, rest = BaseSearch(self.binding).split(stages[0].predicate)
            # the rest is ANDed with the base terms: what the whole filter proves holds wherever the rest decides
            self.facts = nullability.step(self.facts, stages[0])
            stages = stages[1:]
            if rest is not None:
                stages.insert(0, ir.Filter(rest))
        self.lower_stages(stages)
        if self.live:  # temporaries still on the rows (made after the last stats/table, or on the events): they go
            self.drop(list(self.live))
        rows = row_terms(self.binding) if self.binding is not None else []
        head = " ".join(x for x in [self.prefix, *rows, *terms] if x) or "*"
        if not head.startswith("|"):
            head = "search " + head if not self.prefix else head
        return "\n".join([head, *("| " + c for c in self.commands)])

    def emit(self, command: str) -> None:
        self.commands.extend(self.pending)
        self.pending = []
        self.commands.append(command)

    # ------------------------------------------------------------------ stages
    def lower_stages(self, stages: list[ir.Stage]) -> None:
        for stage in stages:
            self.at_stage = stage
            for st in preprocess(stage, FEATURES, lambda: self.fresh("tmp")):
                self.stage(st)
            self.facts = nullability.step(self.facts, stage)

    def stage(self, st: LoweringStage) -> None:
        if isinstance(st, Drop):
            self.drop(list(st.columns))
            for c in st.columns:
                self.computed.pop(c, None)
            return
        match st:
            case ir.Filter(predicate=p):
                self.emit("where " + unwrapped(self.cond(p)))
            case ir.Extend(assignments=assigns):
                self.extend(assigns)
            case ir.Aggregate(aggregations=aggs, by=by):
                self.aggregate("stats", aggs, by)
                self.extracted.clear()  # the rows are new: nothing extracted before is on them
                self.computed = {b.name: b.expr.type for b in by}
                self.json_text = set()
                self.computed.update({a.name: a.type for a in aggs})
                self.from_source = False
            case ir.EventAggregate(aggregations=aggs, by=by):
                self.aggregate("eventstats", aggs, by)
                self.computed.update({a.name: a.type for a in aggs})
            case ir.Lookup():
                self.lookup(st)
            case ir.Rename(renames=renames):
                pairs = []
                for old, new in renames:
                    src = self.value(ir.Column(old, (), Type.ANY))
                    assert src.field is not None  # a column is always a field on the rows
                    pairs.append(f"{command_field(src.field)} AS {command_field(new)}")
                    self.computed[new] = self.computed.pop(old, Type.ANY)
                    self.reassigned(old)
                self.emit("rename " + ", ".join(pairs))
            case ir.Project(columns=cols):
                names = []
                for c in cols:
                    v = self.value(ir.Column(c, (), Type.ANY))
                    if v.field != c:
                        self.emit(f"eval {render_field(c)}={v.text}")
                    names.append(command_field(c))
                self.emit("table " + " ".join(names))
                self.live.clear()  # the rows hold only the named columns
                self.extracted.clear()
                self.computed = {c: self.computed.get(c, Type.ANY) for c in cols}
                self.json_text &= set(cols)
                self.from_source = False
            case ir.Sort(keys=keys):
                parts = []
                for k in keys:
                    v = self.value(k.expr)
                    name = v.field
                    if name is None or not (isinstance(k.expr, ir.Column) and not k.expr.path):
                        name = self.fresh("sort")
                        self.emit(f"eval {name}={v.text}")
                    parts.append(("-" if k.descending else "+") + command_field(name))
                self.emit("sort 0 " + " ".join(parts))
            case ir.Limit(count=n):
                self.emit(f"head {n}")
            case ir.Expand():
                self.expand(st)
            case ir.Join():
                self.join(st)
            case _:
                raise self.fail(f"no SPL for stage {type(st).__name__}")
        for name in ir.assigned_names(st):  # spath results taken from these columns' old values are stale
            self.reassigned(name)
            if not isinstance(st, (ir.Extend, ir.Expand)):
                self.json_text.discard(name)

    def extend(self, assigns: tuple[ir.Assignment, ...]) -> None:
        json = {a.name for a in assigns if isinstance(a.expr, ir.Column) and self.json_location(a.expr) is not None
                or _json_text_value(a.expr)}
        self.json_text = (self.json_text - {a.name for a in assigns}) | json
        direct = {a.name: where for a in assigns if (where := self.spath_into(a, assigns)) is not None}
        # parallel: compiler.lowering.parallel_extend
        values = [(a.name, self.value(a.expr)) for a in assigns if a.name not in direct]
        for name, (src, path) in direct.items():
            inp = f"input={command_field(src)} " if src else ""
            self.emit(f"spath {inp}output={name} path={_spath_path(list(path))}")
        if values:
            self.emit("eval " + ", ".join(f"{render_field(n)}={self.as_value(v)}" for n, v in values))
        for a in assigns:
            self.computed[a.name] = a.expr.type

    def spath_into(self, a: ir.Assignment,
                   assigns: tuple[ir.Assignment, ...]) -> tuple[str | None, tuple[str | int, ...]] | None:
        """(input, path) when `a` is `name = tostring(<a path into JSON>)` that spath can write straight into `name`
        (docs/semantics.md decision 46): a path with no `{}` and no index from the end, into the event or into a
        column holding JSON text, is one value, the JSON text at the path, which tostring leaves as it is. `name`
        must be a plain field that no assignment of the stage reads (spath writes it before the stage's eval runs),
        nor one the events or an earlier stage may already hold, and the path not already extracted."""
        e = a.expr
        if not (isinstance(e, ir.Call) and e.fn == "tostring" and len(e.args) == 1 and e.type is Type.STRING):
            return None
        c = e.args[0]
        where = self.json_location(c) if isinstance(c, ir.Column) else None
        if where is None or not where[1] or (where[0] or "_raw", where[1]) in self.extracted:
            return None
        if where[0] is not None and where[0] not in self.json_text:  # a computed column that may be multivalue
            return None
        if any(s == "{}" or (isinstance(s, int) and s < 0) for s in where[1]):
            return None
        if not PLAIN_NAME.fullmatch(a.name) or render_field(a.name) != a.name or where[0] == a.name:
            return None
        if any(_reads(b.expr, a.name) for b in assigns):
            return None
        if a.name in self.computed or (self.binding is not None and (
                a.name in self.binding.columns.values() or a.name in self.binding.json_columns.values())):
            return None  # the event may hold `name` already: Splunk does not document that spath clears it when the
            # path is missing (the IR's null), so it is written into a fresh field and assigned
        return where

    def single_value(self, e: ir.Expr) -> bool:
        """Whether `e` is a field of the events that holds one value at most on Splunk (docs/semantics.md decision
        46): a field the source declares a scalar, on a binding whose events are JSON (automatic extraction names an
        array's values `a{}`, so a name without `{}` is one value), read as it is."""
        if not isinstance(e, ir.Column) or e.type not in SCALARS or e.name in self.computed or not self.from_source:
            return False
        if self.binding is None or not self.binding.json_columns:
            return False
        ref = self.binding.resolve(e.name, e.path)
        return (ref is not None and not ref.json_text and not ref.path and "{" not in ref.column
                and ref.column in self.binding.columns.values())

    def one_string(self, e: ir.Expr) -> bool:
        """Whether `e` lowers to one text value on Splunk, which tostring() would leave as it is: a string literal,
        an element of split() taken by `mvindex` with one index, a single-valued string field, what spath reads at a
        path into JSON text (the event's, or a column's that holds JSON text), a coalesce() of such values."""
        match e:
            case ir.Literal(value=str()):
                return True
            case ir.Index(base=ir.Call(fn="split"), key=int()):
                return True
            case ir.Call(fn="coalesce", args=args):
                return all(self.one_string(x) for x in args)
            case ir.Column():
                where = self.json_location(e)
                if where is not None and where[1] and (where[0] is None or where[0] in self.json_text):
                    return True
        return e.type is Type.STRING and self.single_value(e)

    def join(self, st: ir.Join) -> None:
        """`join type=inner|left max=0 keys [search …]` (docs/semantics.md decision 71). SPL matches fields of the
        same name: the right side names its keys as the left's and its outputs as the IR does, and keeps no row
        with a null key; innerunique dedups the left first; leftsemi/leftanti join with the right's distinct keys
        (leftanti: a marker field, then the rows without it)."""
        sub = replace(self.rule, pipeline=st.right)
        bound = bind(sub, FEATURES, self.binding.name if self.binding is not None else None)
        prefix = str(bound.binding.extra.get("search", "")) if bound.binding is not None else ""
        semi = st.kind in (ir.JoinKind.LEFTSEMI, ir.JoinKind.LEFTANTI)
        empty = st.empty_keys_match  # null and "" one key: both sides read it as NULL_KEY (decision 71)
        sentinel = render_string_literal(NULL_KEY)

        def key_text(v: Lowered) -> str:
            return f'if(isnull({v.text}) OR {v.text}=="", {sentinel}, {v.text})' if empty else v.text

        lefts: list[str] = []
        for left, _ in st.keys:
            v = self.value(left)
            plain = isinstance(left, ir.Column) and not left.path and v.field == left.name
            if not plain or empty:
                name = self.fresh("key")
                self.emit(f"eval {render_field(name)}={key_text(v)}")
                lefts.append(name)
            else:
                assert v.field is not None
                lefts.append(v.field)
        low = SplLowering(sub, bound.binding, bound.stages, prefix, counter=self.counter)
        text = low.query()
        evals: list[str] = []
        for name, col in zip(lefts, (c for _, c in st.keys)):
            v = low.value(ir.Column(col, (), Type.ANY))
            if v.field != name or empty:
                evals.append(f"{render_field(name)}={key_text(v)}")
        for col, name in st.outputs:
            v = low.value(ir.Column(col, (), Type.ANY))
            if name not in lefts and v.field != name:
                evals.append(f"{render_field(name)}={v.text}")
        self.counter = low.counter
        keys = list(dict.fromkeys(lefts))
        right_cols = [*keys, *(a for _, a in st.outputs if a not in keys)]
        tail = [*low.pending, *(["eval " + ", ".join(evals)] if evals else [])]
        if not empty:
            tail.append("where " + " AND ".join(f"isnotnull({render_field(k)})" for k in keys))
        marker = None
        if semi:
            tail.append("dedup " + " ".join(command_field(k) for k in keys))
            if st.kind is ir.JoinKind.LEFTANTI:
                marker = self.fresh("match")
                self.live.pop(marker, None)
                tail.append(f"eval {render_field(marker)}=1")
                right_cols.append(marker)
        tail.append("table " + " ".join(command_field(c) for c in right_cols))
        if not text.startswith(("search ", "|")):
            text = "search " + text
        body = "\n".join([text, *("| " + c for c in tail)])
        if st.kind is ir.JoinKind.INNERUNIQUE:
            self.emit("dedup " + " ".join(command_field(k) for k in keys))
        kind = "left" if st.kind in (ir.JoinKind.LEFTOUTER, ir.JoinKind.LEFTANTI) else "inner"
        most = 1 if semi else 0
        self.emit(f"join type={kind} max={most} " + " ".join(command_field(k) for k in keys) + "\n    ["
                  + body.replace("\n", "\n     ") + "]")
        if marker is not None:
            self.emit(f"where isnull({render_field(marker)})")
            self.emit(f"fields - {command_field(marker)}")
        for col, alias in st.outputs:
            self.computed[alias] = low.computed.get(col, Type.ANY)

    def expand(self, st: ir.Expand) -> None:
        """One row per element (docs/semantics.md decision 62). `spath a{}` reads the elements as a multivalue field
        and `spath a` the value itself; the row count is decided first (an empty array none, a null or a scalar one),
        and an index is expanded, never a field without a value, which `mvexpand` would leave no event of."""
        if st.type is not Type.DYNAMIC:
            raise self.fail("mv-expand … to typeof(): SPL holds every element as text, so it cannot tell a number "
                            "from numeric text (docs/semantics.md decision 62)", st)
        where = self.json_location(st.expr) if isinstance(st.expr, ir.Column) else None
        if where is None and isinstance(st.expr, ir.Column) and not st.expr.path and st.expr.name in self.json_text:
            where = (st.expr.name, ())  # a computed column holding JSON text (not a multivalue field)
        temps: list[str] = []
        if where is None and _json_text_value(st.expr):  # JSON text computed here (parse_json, a path read from it)
            text = self.fresh("json")
            self.emit(f"eval {text}={self.as_value(self.value(st.expr))}")
            where = (text, ())
            temps.append(text)
        if where is None:
            raise self.fail("mv-expand on SPL reads a JSON array (a path into the event or into a column's JSON "
                            "text); this expression is not one", st.expr)
        src, path = where
        value = self.spath(src, path) if path else src
        elements = self.spath(src, (*path, "{}"))
        count, index = self.fresh("count"), self.fresh("index")
        empty = render_string_literal(r"^\s*(\[\s*\]|\{\s*\})\s*$")  # the JSON text of [] or {}
        self.emit(f"eval {count}=case(isnotnull({elements}), mvcount({elements}), isnull({value}), 1, "
                  f"match({value}, {empty}), 0, true(), 1)")
        if st.limit is not None:
            self.emit(f"eval {count}=min({count}, {st.limit})")
        self.emit(f"where {count}>0")
        self.emit(f"eval {index}=mvrange(0, {count})")
        self.emit(f"mvexpand {index}")
        self.emit(f"eval {render_field(st.name)}=if(isnotnull({elements}), mvindex({elements}, {index}), {value})")
        self.drop([count, index, *temps])
        self.computed[st.name] = Type.DYNAMIC
        self.json_text.add(st.name)

    def aggregate(self, command: str, aggs: tuple[ir.Aggregation, ...], by: tuple[ir.Assignment, ...]) -> None:
        pre: list[str] = []
        arg_temps: list[str] = []  # eventstats keeps every row: its temporaries are dropped after it
        funcs: list[str] = []
        agg_fields: set[str] = set()  # the fields stats reads as they are (a key's fill must not change them)
        ranked: tuple[ir.Aggregation, str] | None = None  # a percentile: the aggregation and its value column
        guards: list[str] = []  # stdev/stdevp: null unless enough numbers (their counts, dropped after)
        counts: list[str] = []
        picks = self.arg_picks(command, aggs)  # arg_max/arg_min: the column each reads from the sorted rows
        for a in aggs:
            if a.name in picks:
                funcs.append(f"first({command_field(picks[a.name])}) AS {command_field(a.name)}")
                agg_fields.add(picks[a.name])
                continue
            if a.fn is ir.AggFn.PERCENTILE:  # docs/semantics.md decision 20: the nearest rank, by ranking the rows
                if command != "stats" or len(aggs) != 1:
                    raise self.fail("a percentile is computed by ranking the rows (perc estimates; exactperc's "
                                    "documentation does not say which percentile it is): it cannot share a stats "
                                    "with other aggregations", a.arg, code="percentile")
                assert a.arg is not None
                value = self.fresh("value")
                pre.append(f"{value}=tonumber({self.as_value(self.value(a.arg))})")
                ranked = (a, value)
                continue
            if a.fn in (ir.AggFn.STDEV, ir.AggFn.STDEVP):  # decision 85: the count guards what Splunk leaves unsaid
                assert a.arg is not None
                value, n = self.fresh("arg"), self.fresh("n")
                pre.append(f"{value}=tonumber({self.as_value(self.value(a.arg))})")
                arg_temps.append(value)
                funcs.append(agg_term(a.fn.value, value, a.name))
                funcs.append(agg_term("count", value, n))
                least = 2 if a.fn is ir.AggFn.STDEV else 1
                guards.append(f"{render_field(a.name)}=if({render_field(n)}>={least}, {render_field(a.name)}, null())")
                counts.append(n)
                agg_fields.add(value)
                continue
            if a.each is not None:  # decision 87: spath's multivalue field of the member of every element
                where = self.json_location(a.arg) if isinstance(a.arg, ir.Column) else None
                if where is None:
                    raise self.fail("values() of every element of a value that is not a path in the event's JSON has "
                                    "no SPL form", a.arg)
                every = self.spath(where[0], (*where[1], "{}", *a.each))
                # spath gives an object or array member as its JSON text; the IR (and Splunk's automatic JSON
                # extraction, which makes fields of leaves only) has none
                values = self.fresh("values")
                self.emit(f"eval {render_field(values)}=mvfilter(NOT (match({render_field(every)}, "
                          f'"^[{{[]") AND json_valid({render_field(every)})))')
                arg_temps.append(values)
                funcs.append(agg_term("values", values, a.name))
                agg_fields.add(values)
                continue
            fn = AGG_FUNCTIONS[a.fn]
            if a.arg is None:
                funcs.append(agg_term(fn, None, a.name))
                continue
            v = self.value(a.arg)
            plain = isinstance(a.arg, ir.Column) and not a.arg.path
            arg = v.field if plain else None
            if arg is None or "'" in arg or "\\" in arg:  # stats arguments: quoted names are not read back
                arg = self.fresh("arg")
                pre.append(f"{arg}={self.as_value(v)}")
                arg_temps.append(arg)
            funcs.append(agg_term(fn, arg, a.name))
            agg_fields.add(arg)
        if command == "stats":
            self.stats_keys(pre, funcs, agg_fields, aggs, by, ranked)
            if guards:
                self.emit("eval " + ", ".join(guards))
                self.drop(counts)
            if picks:
                null = render_string_literal(NULL_KEY)
                self.emit("eval " + ", ".join(f"{render_field(n)}=if({render_field(n)}=={null}, null(), "
                                              f"{render_field(n)})" for n in picks))
            self.cap_values(aggs)
            return
        # eval is sequential: a key written under its own name must not be read by a later key of the same eval;
        # and eventstats keeps every row, so a computed key must not replace (or add) a column: such keys go
        # through temporaries
        keys: list[str] = []
        temps: list[tuple[str, str]] = []  # (temporary, key name)
        restore: list[str] = []
        for i, b in enumerate(by):
            v = self.value(b.expr)
            later = [*(x.expr for x in by[i + 1:]), *(a.arg for a in aggs if a.arg is not None)]
            read_later = any(_reads(e, b.name) for e in later)
            # the key is the row's own field under the same Splunk name (on asl, eventName is 'api.operation': not so)
            own_column = (isinstance(b.expr, ir.Column) and not b.expr.path and b.expr.name == b.name
                          and v.text == render_field(b.name))
            name = b.name
            if read_later or not own_column:
                name = self.fresh("key")
                temps.append((name, b.name))
            if nullability.non_null(b.expr, self.facts):  # decision 40: no group of null keys to keep
                if name != b.name:
                    pre.append(f"{render_field(name)}={self.as_value(v)}")
            else:  # eventstats drops rows whose key is null; the IR keeps them as a group: fill, then restore
                pre.append(f"{render_field(name)}=coalesce({self.as_value(v)}, {render_string_literal(NULL_KEY)})")
                if name == b.name:
                    restore.append(b.name)
            keys.append(command_field(name))
        if pre:
            self.emit("eval " + ", ".join(pre))
        self.emit(f"{command} " + " ".join(funcs) + (" by " + " ".join(keys) if keys else ""))
        if guards:
            self.emit("eval " + ", ".join(guards))
        if temps or arg_temps or counts:
            self.drop([*(t for t, _ in temps), *arg_temps, *counts])
        if restore:
            self.emit(restore_null_keys(restore))
        self.cap_values(aggs)

    def cap_values(self, aggs: tuple[ir.Aggregation, ...]) -> None:
        """values(x, N) (decision 95): Splunk's values() has no limit; its first N values (values() returns them in
        lexicographic order) are kept with mvindex, whose end index is inclusive."""
        capped = [a for a in aggs if a.fn is ir.AggFn.VALUES and a.limit is not None]
        if capped:
            self.emit("eval " + ", ".join(f"{render_field(a.name)}=mvindex({render_field(a.name)}, 0, {a.limit - 1})"
                                          for a in capped if a.limit is not None))

    def arg_picks(self, command: str, aggs: tuple[ir.Aggregation, ...]) -> dict[str, str]:
        """arg_max/arg_min (decision 78): the rows sorted by the key, largest (smallest) first, then each column is
        `first()` of its value on rows that have a key — a null value sent as the null-key sentinel, so that every
        column is read from the same (first) row, and made null again after stats."""
        arg_aggs = [a for a in aggs if a.key is not None]
        if not arg_aggs:
            return {}
        first = arg_aggs[0]
        assert first.key is not None
        if command != "stats":
            raise self.fail("arg_max()/arg_min() in eventstats: the rows would be sorted by their key", first.key)
        if any((a.fn, a.key) != (first.fn, first.key) for a in arg_aggs) or \
                any(a.fn is ir.AggFn.PERCENTILE for a in aggs):
            raise self.fail("one stats sorts its rows by one arg_max()/arg_min() key", first.key)
        if first.key.type not in (Type.INT, Type.REAL, Type.DATETIME, Type.TIMESPAN):
            raise self.fail(f"{first.fn.value}() by a {first.key.type}: Splunk's sort orders numeric text as "
                            "numbers, so only numbers and times are compared as the IR does", first.key)
        key = self.fresh("key")
        null = render_string_literal(NULL_KEY)
        picks: dict[str, str] = {}
        evals = [f"{render_field(key)}=tonumber({self.as_value(self.value(first.key))})"]
        for a in arg_aggs:
            assert a.arg is not None
            pick = self.fresh("pick")
            v = self.as_value(self.value(a.arg))
            evals.append(f"{render_field(pick)}=if(isnull({render_field(key)}), null(), "
                         f"if(isnull({v}), {null}, {v}))")
            picks[a.name] = pick
        self.emit("eval " + ", ".join(evals))
        self.emit(f"sort 0 {'-' if first.fn is ir.AggFn.ARG_MAX else '+'}{command_field(key)}")
        return picks

    def stats_keys(self, pre: list[str], funcs: list[str], agg_fields: set[str], aggs: tuple[ir.Aggregation, ...],
                   by: tuple[ir.Assignment, ...], ranked: tuple[ir.Aggregation, str] | None) -> None:
        """`stats … by` as ESCU writes it: a key that is a plain field of the events groups by that field, renamed
        to the key's name at the end; a computed key is evaluated first. `stats by` drops events whose key is null
        and the IR keeps them as a group (decision 9), so the keys that may be null — only those, decision 40 — are
        filled with a sentinel (`fillnull`) before and made null again after (stats.py). A key that is a literal is
        the same in every group: it is `eval`ed after stats instead of grouped by (decision 46), unless every key is
        one (a stats with no `by` gives a row even over no events)."""
        consts = [b for b in by if isinstance(b.expr, ir.Literal) and b.expr.value is not None]
        if len(consts) == len(by):
            consts = []
        after = [f"{render_field(b.name)}={self.as_value(self.value(b.expr))}" for b in consts]
        by = tuple(b for b in by if b not in consts)
        agg_names = {a.name for a in aggs}
        key_names = [b.name for b in by]
        lowered = [self.value(b.expr) for b in by]
        by_fields: list[str | None] = []
        used: set[str] = set()
        for b, v in zip(by, lowered):
            f = v.field
            ok = (isinstance(b.expr, ir.Column) and not b.expr.path and f is not None and "'" not in f
                  and "\\" not in f and f not in used and (f == b.name or (f not in key_names and f not in agg_names))
                  and not any(_reads(a.arg, b.expr.name) for a in aggs if a.arg is not None)
                  and f not in agg_fields)
            by_fields.append(f if ok else None)
            if ok and f is not None:
                used.add(f)
        evals: list[str] = []
        keys: list[str] = []
        fills: list[str] = []
        renames: list[tuple[str, str]] = []
        restore: list[str] = []
        for i, (b, v, f) in enumerate(zip(by, lowered, by_fields)):
            if f is None:
                later = [*(x.expr for x in by[i + 1:]), *(a.arg for a in aggs if a.arg is not None)]
                read_later = any(_reads(e, b.name) for e in later) or (
                    b.name == "_time" and any(a.fn in (ir.AggFn.EARLIEST, ir.AggFn.LATEST) for a in aggs))
                f = b.name
                if read_later or b.name in used:
                    f = self.fresh("key")
                evals.append(f"{render_field(f)}={self.as_value(v)}")
            if f != b.name:
                renames.append((f, b.name))
            if not nullability.non_null(b.expr, self.facts):
                fills.append(command_field(f))
                restore.append(b.name)
            keys.append(command_field(f))
        pre = [*pre, *evals]
        if pre:
            self.emit("eval " + ", ".join(pre))
        if fills:
            self.emit(f"fillnull value={render_string_literal(NULL_KEY)} " + " ".join(fills))
        if ranked is not None:
            funcs.append(self.nearest_rank(*ranked, keys))
        self.emit("stats " + " ".join(funcs) + (" by " + " ".join(keys) if keys else ""))
        self.live.clear()  # its rows hold only its own columns
        if renames:
            self.emit("rename " + ", ".join(f"{command_field(t)} AS {command_field(n)}" for t, n in renames))
        if after:
            self.emit("eval " + ", ".join(after))
        if restore:
            self.emit(restore_null_keys(restore))

    def nearest_rank(self, a: ir.Aggregation, value: str, keys: list[str]) -> str:
        """The commands that mark, in each group, the row whose value is the nearest-rank percentile (the values in
        ascending order, each numbered within its group; the one numbered ceil(n × p / 100)); the stats function
        that takes it."""
        assert a.percentile is not None
        rank, n, pick = self.fresh("rank"), self.fresh("n"), self.fresh("pick")
        by = (" by " + " ".join(keys)) if keys else ""
        self.emit(f"sort 0 +{command_field(value)}")
        self.emit(f"streamstats count({command_field(value)}) AS {command_field(rank)}{by}")
        self.emit(f"eventstats count({command_field(value)}) AS {command_field(n)}{by}")
        p = f"{a.percentile:g}"
        self.emit(f"eval {render_field(pick)}=if(isnotnull({render_field(value)}) AND {render_field(rank)}=="
                  f"max(ceiling({render_field(n)} * {p} / 100), 1), {render_field(value)}, null())")
        return f"max({command_field(pick)}) AS {command_field(a.name)}"

    def lookup(self, st: ir.Lookup) -> None:
        keys = []
        for expr, col in st.keys:
            v = self.value(expr)
            name = v.field
            if name is None or not isinstance(expr, ir.Column) or expr.path or "'" in name or "\\" in name:
                name = self.fresh("key")
                self.emit(f"eval {name}={self.as_value(v)}")
            keys.append(f"{command_field(col)} AS {command_field(name)}")
        outs = ", ".join(f"{command_field(c)} AS {command_field(a)}" for c, a in st.outputs)
        self.emit(f"lookup {command_field(st.table.name)} {' '.join(keys)} OUTPUT {outs}")
        for _, alias in st.outputs:
            self.computed[alias] = Type.ANY

    # ------------------------------------------------------------------ fields
    def field_name(self, c: ir.Column) -> str:
        if self.binding is None or c.name in self.computed or not self.from_source:
            return c.name
        col = named_field(self.binding, c.name)
        if col is None:
            raise self.fail(f"field {c.name!r} has no Splunk field in binding {self.binding.name!r}", c,
                            code="unmapped-field")
        return col

    def column(self, c: ir.Column) -> Lowered:
        """A column as the Splunk field that holds it (`field`: its name, for commands that take field names)."""
        kind = _kind(c.type)
        if c.name in self.computed or not self.from_source:
            if not c.path:
                return _field(c.name, kind)
            return _field(self.spath(c.name, c.path))
        if self.binding is None:  # an undeclared source: names as written, arrays as Splunk names them
            return _field(".".join([c.name, *(str(p) for p in c.path)]), kind)
        if c.name == self.binding.extra.get("unnamed_data") and not c.path:
            return _field(self.unnamed_data(), kind)
        xml = (self.binding.extra.get("xml_paths") or {}).get(c.name)
        if xml is not None and not c.path:  # a value the add-on does not extract: spath reads it from the XML event
            key = ("_raw", ("xml", str(xml)))
            if key not in self.extracted:
                self.extracted[key] = self.fresh("path")
                self.pending.append(f"spath input=_raw output={self.extracted[key]} path={xml}")
            return _field(self.extracted[key], kind)
        spec = computed(self.binding).get(c.name)
        if spec is not None and not c.path:  # a value the add-on computes from model fields: their expression
            return Lowered(computed_spl(spec, lambda f: _field(f).text), type="string")
        ref = self.binding.resolve(c.name, c.path)
        if ref is None:
            dotted = ".".join([c.name, *(str(p) for p in c.path)])
            raise self.fail(f"field {dotted!r} has no Splunk field in binding {self.binding.name!r} "
                            f"({self.binding.file})", c, code="unmapped-field")
        if ref.json_text:  # inside a JSON object: spath reads exactly the path asked for
            return _field(self.spath(None, (*ref.column.split("."), *ref.path)))
        if ref.path:
            raise self.fail(f"{c.name}: {ref.column} is a scalar; it has no member {ref.path[0]!r}", c)
        return _field(ref.column, "time" if ref.column == "_time" else kind)

    def unnamed_data(self) -> str:
        """Classic events' unnamed `<Data>` elements, which the add-on does not extract (only `<Data Name='…'>`):
        `rex` reads each from the raw XML event, then they are joined by newlines as the executor joins them and the
        XML escapes in their text are undone (docs/backends/splunk.md, Windows)."""
        key = ("_raw", ("unnamed_data",))
        if key not in self.extracted:
            out = self.extracted[key] = self.fresh("data")
            self.pending.append(f"rex field=_raw max_match=0 {render_string_literal(f'<Data>(?<{out}>[^<]*)</Data>')}")
            text = f'mvjoin({out}, urldecode("%0A"))'
            for entity, char in XML_ESCAPES:
                text = f"replace({text}, {render_string_literal(entity)}, {char})"
            self.pending.append(f"eval {out}={text}")
        return self.extracted[key]

    def json_location(self, c: ir.Column) -> tuple[str | None, tuple[str | int, ...]] | None:
        """(spath input field, path) of a column inside JSON, or None for a plain field."""
        if c.name in self.computed or not self.from_source:
            return (c.name, c.path) if c.path else None
        if self.binding is None:
            return None
        ref = self.binding.resolve(c.name, c.path)
        if ref is None or not ref.json_text:
            return None
        return None, (*ref.column.split("."), *ref.path)

    def spath(self, input_field: str | None, path: tuple[str | int, ...]) -> str:
        """A temporary field holding the value at `path` (in `input_field`'s JSON, else the raw event)."""
        key = (input_field or "_raw", path)
        if key in self.extracted:
            return self.extracted[key]
        out = self.fresh("path")
        segs = list(path)
        src = input_field
        while True:
            neg = next((i for i, s in enumerate(segs) if isinstance(s, int) and s < 0), None)
            head, tail = (segs, []) if neg is None else (segs[:neg], segs[neg + 1:])
            spath_path = _spath_path(head)
            target = out if neg is None else self.fresh("arr")
            inp = f"input={command_field(src)} " if src else ""
            if neg is None:
                self.pending.append(f"spath {inp}output={target} path={spath_path}")
                break
            # spath has no index from the end: take every element, then mvindex
            self.pending.append(f"spath {inp}output={target} path={spath_path}{{}}")
            item = self.fresh("item")
            self.pending.append(f"eval {item}=mvindex({target}, {segs[neg]})")
            if not tail:
                self.pending.append(f"eval {out}={item}")
                break
            src, segs = item, tail
        self.extracted[key] = out
        return out

    # ------------------------------------------------------------------ expressions
    def as_value(self, v: Lowered) -> str:
        return f'if({v.text}, "true", "false")' if v.cond else v.text

    def cond(self, e: ir.Expr) -> str:
        v = self.value(e)
        return v.text if v.cond else f'({v.text}=="true" OR {v.text}==1)'

    def value(self, e: ir.Expr) -> Lowered:  # noqa: C901 - one case per node type
        match e:
            case ir.Literal(value=val):
                return literal(val)
            case ir.Column():
                return self.column(e)
            case ir.Index(base=b, key=k):
                base = self.value(b)
                if isinstance(k, int) and b.type is Type.DYNAMIC and isinstance(b, ir.Call) and b.fn == "split":
                    return Lowered(f"mvindex({base.text}, {k})", type="string")
                name = self.fresh("val")
                self.emit(f"eval {name}={self.as_value(base)}")
                return Lowered(self.spath(name, (k,)))
            case ir.Compare():
                return self.compare(e)
            case ir.StringMatch(op=op, subject=s, pattern=p, case_sensitive=cs):
                subject = self.value(s).text
                if isinstance(p, ir.Literal) and isinstance(p.value, str):
                    body = pcre_escape(p.value)
                    rx = {ir.StrOp.CONTAINS: body, ir.StrOp.STARTSWITH: "^" + body,
                          ir.StrOp.ENDSWITH: body + r"\z"}[op]
                    return Lowered(f"match({subject}, {render_string_literal(('' if cs else '(?i)') + rx)})", cond=True)
                raise self.fail("a string match against a non-literal pattern has no SPL form yet", e)
            case ir.WildcardMatch(subject=s, pattern=pat, case_sensitive=cs):
                rx = lowering.wildcard_body(pat, pcre_escape)
                flags = "(?s)" if cs else "(?is)"
                rx = render_string_literal(flags + "^" + rx + chr(92) + "z")
                return Lowered(f"match({self.value(s).text}, {rx})", cond=True)
            case ir.RegexMatch(subject=s, pattern=p, flags=fl):
                prefix = "".join(f"(?{f})" for f in sorted(fl))
                return Lowered(f"match({self.value(s).text}, {render_string_literal(prefix + p)})", cond=True)
            case ir.CidrMatch(subject=s, networks=nets):
                subject = self.value(s).text
                parts = [f"cidrmatch({render_string_literal(str(ipaddress.ip_network(n, strict=False)))}, {subject})"
                         for n in nets]
                return Lowered(parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")", cond=True)
            case ir.InList(subject=s, values=vals, case_sensitive=cs):
                subject = self.value(s).text
                if not cs:
                    subject = f"lower({subject})"
                items = []
                for v in vals:
                    if isinstance(v, ir.Literal) and isinstance(v.value, str) and not cs:
                        items.append(render_string_literal(v.value.lower()))
                    else:
                        items.append(self.as_value(self.value(v)))
                return Lowered(f"in({unwrapped(subject)}, {', '.join(items)})", cond=True)
            case ir.Keyword(pattern=pat, case_sensitive=cs):
                rx = lowering.wildcard_body(pat, pcre_escape)
                return Lowered(f"match(_raw, {render_string_literal(('' if cs else '(?i)') + rx)})", cond=True)
            case ir.Not(operand=o):
                # NOT of a condition that is null (a missing field) is null in SPL, true in the IR
                return Lowered(f"if({self.cond(o)}, 0, 1)==1", cond=True)
            case ir.And(operands=ops):
                return Lowered("(" + " AND ".join(self.cond(o) for o in ops) + ")", cond=True)
            case ir.Or(operands=ops):
                return Lowered("(" + " OR ".join(self.cond(o) for o in ops) + ")", cond=True)
            case ir.Arith(op=op, left=l, right=r):
                lt, rt = self.value(l).text, self.value(r).text
                if op is ir.ArithOp.DIV and l.type is Type.INT and r.type is Type.INT:
                    q = f"({lt} / {rt})"
                    return Lowered(f"if({q}>=0, floor({q}), ceiling({q}))", type="number")
                return Lowered(f"({lt} {op.value} {rt})", type="number")
            case ir.Negate(operand=o):
                return Lowered(f"(0 - {self.value(o).text})", type="number")
            case ir.Case(branches=bs, default=d):
                if len(bs) == 1:
                    c, v = bs[0]
                    test = unwrapped(self.cond(c))
                    then, other = self.as_value(self.value(v)), self.as_value(self.value(d))
                    return Lowered(f"if({test}, {then}, {other})")
                parts = [f"{unwrapped(self.cond(c))}, {self.as_value(self.value(v))}" for c, v in bs]
                return Lowered(f"case({', '.join(parts)}, true(), {self.as_value(self.value(d))})")
            case ir.Call():
                return self.call(e)
            case ir.Element(path=path):
                if self.element is None:
                    raise self.fail("an array element outside an any-element test", e)
                name, leaf = self.element
                if leaf is not None or not path:
                    return _field(name)
                return Lowered(f"spath({render_field(name)}, {render_string_literal(_spath_path(list(path)))})")
            case ir.AnyElement():
                return self.any_element(e)
        raise self.fail(f"no SPL for {type(e).__name__}", e)

    def any_element(self, e: ir.AnyElement) -> Lowered:
        """Some element satisfies the predicate (semantics decision 28). `spath` reads every element of the array (of
        every element's inner array, `a{}.b{}`) as one multivalue field, or, when the predicate reads one member, that
        member of every element (`a{}.b{}.newValue`); `mvfilter` keeps the values that satisfy the predicate. A member
        an element lacks is no value there, so the predicate must be false of a missing value (else: refused)."""
        coll = e.collection
        where = self.json_location(coll) if isinstance(coll, ir.Column) else None
        if where is None:
            raise self.fail("an any-element test over a value that is not a path in the event's JSON has no SPL form",
                            e)
        path: list[str | int] = [*where[1], "{}"]
        pred = e.predicate
        while isinstance(pred, ir.AnyElement):  # some element of some element's array: the arrays flattened
            if not isinstance(pred.collection, ir.Element):
                raise self.fail("an any-element test over a computed array has no SPL form", pred)
            path += [*pred.collection.path, "{}"]
            pred = pred.predicate
        elements = [x for x in ir.walk(pred) if isinstance(x, (ir.Element, ir.AnyElement))]
        if any(isinstance(x, ir.AnyElement) for x in elements):
            raise self.fail("a test on an array element that also tests its inner array has no SPL form (spath "
                            "reads each array as one multivalue field)", e)
        if not _false_on_null(pred):
            raise self.fail("an any-element test whose predicate holds for a missing value has no SPL form (a member "
                            "an element lacks is no value in spath's multivalue field)", e)
        paths = {x.path for x in elements if isinstance(x, ir.Element)}
        leaf = next(iter(paths)) if len(paths) == 1 else None
        name = self.spath(where[0], tuple(path) + (leaf or ()))
        outer, self.element = self.element, (name, leaf)
        try:
            test = self.cond(pred)
        finally:
            self.element = outer
        return Lowered(f"isnotnull(mvfilter({test}))", cond=True)

    def compare(self, e: ir.Compare) -> Lowered:
        left, right = self.value(e.left), self.value(e.right)
        lt, rt = self.as_value(left), self.as_value(right)
        if not e.case_sensitive and e.op in (ir.CmpOp.EQ, ir.CmpOp.NE):
            lt = f"lower({lt})"
            rt = render_string_literal(e.right.value.lower()) if isinstance(e.right, ir.Literal) and isinstance(
                e.right.value, str) else f"lower({rt})"
        if e.op is ir.CmpOp.EQ:
            return Lowered(f"{lt}=={rt}", cond=True)
        if e.op is ir.CmpOp.NE:
            nulls = lowering.null_guards(FEATURES, e, lt, rt, self.facts)
            return Lowered("(" + " OR ".join([*nulls, f"{lt}!={rt}"]) + ")" if nulls else f"{lt}!={rt}", cond=True)
        return Lowered(f"{lt}{e.op.value}{rt}", cond=True)

    def call(self, e: ir.Call) -> Lowered:
        """A function call through the target's table (FUNCTIONS; GENERIC names are SPL's own, same meaning)."""
        if e.fn in UNSUPPORTED:
            raise self.fail(UNSUPPORTED[e.fn], e)
        whole = WHOLE_ARGUMENTS.get(e.fn)
        if whole is not None:
            v = whole(self, e)
            if v is not None:
                return v
        args = [self.value(a) for a in e.args]
        t = [self.as_value(a) for a in args]
        lower = FUNCTIONS.get(e.fn)
        if lower is not None:
            return lower(self, e, args, t)
        if e.fn in GENERIC:
            return Lowered(f"{e.fn}({', '.join(t)})", type=_kind(e.type))
        raise self.fail(f"no SPL for function {e.fn}()", e)


def _json_text_value(e: ir.Expr) -> bool:
    """An expression whose SPL value is JSON text spath can read: parse_json of text, a path read from JSON."""
    match e:
        case ir.Call(fn="parse_json" | "bag_pack"):
            return True
        case ir.Index(base=ir.Call(fn="split")):
            return False
        case ir.Index():
            return True
    return False


def _false_on_null(e: ir.Expr) -> bool:
    """Whether a predicate is false whenever the values it reads are missing (a match, an equality, an order)."""
    match e:
        case ir.StringMatch() | ir.WildcardMatch() | ir.RegexMatch() | ir.CidrMatch() | ir.InList():
            return True
        case ir.Compare(op=op, left=l, right=r):
            return op is not ir.CmpOp.NE and not any(isinstance(x, ir.Literal) and x.value is None for x in (l, r))
        case ir.And(operands=ops):
            return any(_false_on_null(o) for o in ops)
        case ir.Or(operands=ops):
            return all(_false_on_null(o) for o in ops)
    return False


def _field(name: str, kind: str = "any") -> Lowered:
    return Lowered(render_field(name), type=kind, field=name)


def _kind(t: Type) -> str:
    return {Type.STRING: "string", Type.INT: "number", Type.REAL: "number", Type.DATETIME: "time"}.get(t, "any")


def _spath_path(segs: list[str | int]) -> str:
    out = ""
    for s in segs:
        if s == "{}":
            out += "{}"
        elif isinstance(s, int):
            out += f"{{{s + 1}}}"  # spath array indexes are 1-based
        else:
            out += ("." if out else "") + s
    if re.search(r"[\s\"=|]", out):
        return '"' + out.replace('"', '\\"') + '"'
    return out


def literal(v: object) -> Lowered:
    if v is None:
        return Lowered("null()")
    if isinstance(v, bool):  # SPL has no boolean values; CloudTrail booleans are the text true/false there
        return Lowered('"true"' if v else '"false"', type="string")
    if isinstance(v, (int, float)):
        return Lowered(repr(v) if isinstance(v, float) else str(v), type="number")
    if isinstance(v, str):
        return Lowered(render_string_literal(v), type="string")
    if isinstance(v, timedelta):
        secs = v.total_seconds()
        return Lowered(str(int(secs)) if secs.is_integer() else repr(secs), type="number")
    if isinstance(v, datetime):
        secs = (v - EPOCH).total_seconds()
        return Lowered(str(int(secs)) if secs.is_integer() else repr(secs), type="time")
    raise error(f"no SPL literal for {v!r}")


# ------------------------------------------------------------------ functions (compiler/functions.py), by name
SplCall = Callable[[SplLowering, ir.Call, list[Lowered], list[str]], Lowered]


def _rename(name: str, kind: str = "any", cond: bool = False) -> SplCall:
    """SPL's function `name` means the IR's function (sqlglot: rename_func)."""
    return lambda low, e, args, t: Lowered(f"{name}({', '.join(t)})", cond=cond, type=kind)


def _array_length_json(low: SplLowering, e: ir.Call) -> Lowered | None:
    """Every element of a JSON array as a multivalue field: spath reads `path{}`."""
    arg = e.args[0]
    where = low.json_location(arg) if isinstance(arg, ir.Column) else None
    return None if where is None else Lowered(f"mvcount({low.spath(where[0], (*where[1], '{}'))})", type="number")


def _truncate(n: str) -> str:
    return f"if({n}>=0, floor({n}), ceiling({n}))"


def _substring(low: SplLowering, e: ir.Call, args: list[Lowered], t: list[str]) -> Lowered:  # SPL substr is 1-based
    rest = f", {t[2]}" if len(t) > 2 else ""
    return Lowered(f"substr({t[0]}, ({t[1]}) + 1{rest})", type="string")


def _strcat(low: SplLowering, e: ir.Call, args: list[Lowered], t: list[str]) -> Lowered:
    # `.` with a null operand is null; strcat counts null as ""
    return Lowered("(" + ".".join(f'coalesce(tostring({x}), "")' for x in t) + ")", type="string")


def _replace_string(low: SplLowering, e: ir.Call, args: list[Lowered], t: list[str]) -> Lowered:
    pat, rep = e.args[1], e.args[2]
    if not (isinstance(pat, ir.Literal) and isinstance(pat.value, str)):
        raise low.fail("replace_string() needs a literal search text in SPL", e)
    if not (isinstance(rep, ir.Literal) and isinstance(rep.value, str)):
        raise low.fail("replace_string() needs a literal replacement in SPL", e)
    return Lowered(f"replace({t[0]}, {render_string_literal(pcre_escape(pat.value))}, "
             f"{render_string_literal(rep.value.replace(chr(92), chr(92) * 2))})", type="string")


def _extract(low: SplLowering, e: ir.Call, args: list[Lowered], t: list[str]) -> Lowered:
    pat, group = e.args[0], e.args[1]
    assert isinstance(pat, ir.Literal) and isinstance(group, ir.Literal)
    rx = f"(?s)^.*?(?:{pat.value}).*$"
    return Lowered(f"if(match({t[2]}, {t[0]}), replace({t[2]}, {render_string_literal(rx)}, "
             f"{render_string_literal(chr(92) + str(group.value))}), null())", type="string")


def _index_of_match(subject: str, rx: str) -> Lowered:
    """Where the first match of `rx` starts: the length of the shortest prefix a match follows (docs/semantics.md
    decision 76); -1 without a match, null on null."""
    prefix = render_string_literal(f"(?s)^(.*?)(?:{rx}).*$")
    return Lowered(f"case(isnull({subject}), null(), match({subject}, {render_string_literal(rx)}), "
                   f"len(replace({subject}, {prefix}, {render_string_literal(chr(92) + '1')})), true(), -1)",
                   type="number")


def _indexof(low: SplLowering, e: ir.Call, args: list[Lowered], t: list[str]) -> Lowered:
    lookup = e.args[1]
    if not (isinstance(lookup, ir.Literal) and isinstance(lookup.value, str)):
        raise low.fail("indexof() needs a literal text to look up in SPL (it is found with a regex)", e)
    return _index_of_match(f"tostring({t[0]})", pcre_escape(lookup.value))


def _indexof_regex(low: SplLowering, e: ir.Call, args: list[Lowered], t: list[str]) -> Lowered:
    pattern = e.args[1]
    assert isinstance(pattern, ir.Literal)  # compiler/functions.py: a literal parameter
    return _index_of_match(f"tostring({t[0]})", str(pattern.value))


def _parse_json(low: SplLowering, e: ir.Call, args: list[Lowered], t: list[str]) -> Lowered:
    """SPL holds a JSON value as its text, which spath reads paths of: parsing text is the text itself
    (docs/semantics.md decision 75)."""
    return Lowered(t[0], type="any")


def _bag_pack(low: SplLowering, e: ir.Call, args: list[Lowered], t: list[str]) -> Lowered:
    """Splunk's json_object (docs/semantics.md decision 36): a null member is JSON null. SPL holds a JSON value, a
    boolean and an untyped field as text, which json_object would make a JSON string: those are refused. A
    datetime is SPL's epoch seconds, a JSON number."""
    for v in e.args[1::2]:
        if v.type in (Type.DYNAMIC, Type.ANY, Type.BOOL):
            raise low.fail(f"bag_pack(): no SPL for a {v.type} member (SPL holds it as text, which json_object "
                           "makes a JSON string)", v)
    parts = list(t)
    for i, v in enumerate(e.args):
        match v:  # the IR's "" for a null string member, where the string is proven non-null (decision 40)
            case ir.Call(fn="coalesce", args=(inner, ir.Literal(value=""))) if i % 2 and \
                    nullability.non_null(inner, low.facts):
                parts[i] = low.as_value(low.value(inner))
    return Lowered(f"json_object({', '.join(parts)})", type="any")


def _datetime_diff(low: SplLowering, e: ir.Call, args: list[Lowered], t: list[str]) -> Lowered:
    unit = e.args[0]
    assert isinstance(unit, ir.Literal)
    size = {"day": 86400, "hour": 3600, "minute": 60, "second": 1}.get(str(unit.value))
    if size is not None:
        return Lowered(f"(floor({t[1]} / {size}) - floor({t[2]} / {size}))", type="number")
    if unit.value == "week":
        return Lowered(f"(floor((floor({t[1]} / 86400) + 4) / 7) - floor((floor({t[2]} / 86400) + 4) / 7))",
                       type="number")
    raise low.fail(f"datetime_diff in {unit.value}s has no time-zone independent SPL form", e)


def _todatetime(low: SplLowering, e: ir.Call, args: list[Lowered], t: list[str]) -> Lowered:
    if e.args[0].type is Type.DATETIME:
        return args[0]
    raise low.fail("todatetime() of text has no time-zone safe SPL form; keep times in _time", e)


def _bin(low: SplLowering, e: ir.Call, a: list[Lowered], t: list[str]) -> Lowered:
    """A size of zero or less is null in the IR (docs/semantics.md: bin); SPL would divide by it, so a size the
    rule computes is tested first (the analyzer refuses a literal one)."""
    rounded = f"(floor({t[0]} / {t[1]}) * {t[1]})"
    if isinstance(e.args[1], ir.Literal):
        return Lowered(rounded, type=a[0].type)
    return Lowered(f"if({t[1]} > 0, {rounded}, null())", type=a[0].type)


def _isempty(low: SplLowering, e: ir.Call, a: list[Lowered], t: list[str]) -> Lowered:
    """null, "" or no value; a field that holds one value at most has a value whenever it is not null, so its
    `mvcount` test is left out (docs/semantics.md decision 46)."""
    tests = [f"isnull({t[0]})", f'{t[0]}==""'] + ([] if low.single_value(e.args[0]) else [f"mvcount({t[0]})==0"])
    return Lowered("(" + " OR ".join(tests) + ")", cond=True)


def _isnotempty(low: SplLowering, e: ir.Call, a: list[Lowered], t: list[str]) -> Lowered:
    tests = [f"isnotnull({t[0]})", f'{t[0]}!=""'] + ([] if low.single_value(e.args[0]) else [f"mvcount({t[0]})>0"])
    return Lowered("(" + " AND ".join(tests) + ")", cond=True)


def _tostring(low: SplLowering, e: ir.Call, a: list[Lowered], t: list[str]) -> Lowered:
    if low.one_string(e.args[0]) and not a[0].cond:  # already one text value (decision 46)
        return replace(a[0], type="string")
    return Lowered(f"tostring({t[0]})", type="string")


FUNCTIONS: dict[str, SplCall] = {
    "isnull": _rename("isnull", cond=True),
    "isnotnull": _rename("isnotnull", cond=True),
    "isempty": _isempty,
    "isnotempty": _isnotempty,
    "tostring": _tostring,
    "coalesce": _rename("coalesce"),
    "toint": lambda low, e, a, t: Lowered(_truncate(f"tonumber({t[0]})"), type="number"),
    "todouble": _rename("tonumber", "number"),
    "todatetime": _todatetime,
    "tolower": _rename("lower", "string"),
    "toupper": _rename("upper", "string"),
    "strlen": _rename("len", "number"),
    "substring": _substring,
    "split": _rename("split", "mv"),
    "strcat": _strcat,
    "replace_string": _replace_string,
    "replace_regex": _rename("replace", "string"),
    "extract": _extract,
    "array_length": _rename("mvcount", "number"),
    "parse_json": _parse_json,
    "bag_pack": _bag_pack,
    "indexof": _indexof,
    "indexof_regex": _indexof_regex,
    "ago": lambda low, e, a, t: Lowered(f"(now() - {t[0]})", type="time"),
    "bin": _bin,
    # from epoch seconds: UTC whatever the searching user's time zone; `(n % k + k) % k` is n's remainder in 0…k-1
    # whichever sign SPL's `%` gives a negative n (docs/semantics.md decision 45)
    "hourofday": lambda low, e, a, t: Lowered(f"((floor({t[0]} / 3600) % 24 + 24) % 24)", type="number"),
    # 1970-01-01 was a Thursday; 0 = Sunday
    "dayofweek": lambda low, e, a, t: Lowered(f"(((floor({t[0]} / 86400) + 4) % 7 + 7) % 7)", type="number"),
    "datetime_diff": _datetime_diff,
    # SPL times are epoch seconds already
    "unixtime_seconds_todatetime": lambda low, e, a, t: Lowered(f"tonumber({t[0]})", type="time"),
    "unixtime_milliseconds_todatetime": lambda low, e, a, t: Lowered(f"(tonumber({t[0]}) / 1000)", type="time"),
}
# lowerings that read their arguments as IR before they are lowered; None: lower through FUNCTIONS
WHOLE_ARGUMENTS: dict[str, Callable[[SplLowering, ir.Call], Lowered | None]] = {"array_length": _array_length_json}
# SPL's own function of the same name and meaning: `name(arguments)`
GENERIC = frozenset({"now"})
UNSUPPORTED: dict[str, str] = {
    "tobool": "SPL has no boolean values; compare the field instead of tobool()",
}


FEATURES = Features("splunk", "Splunk", "docs/backends/splunk.md", reads_undeclared=True,
                    sequential_assignment=True, three_valued_logic=True, prunes_columns=True)


def computed_inputs(spec: dict[str, object]) -> list[str]:
    """The fields a binding's computed field is made from, on the SPL kinds (computed_spl)."""
    if spec["kind"] == "split_details":
        return [str(spec["data"]), str(spec["type"])]
    if spec["kind"] == "value_map":
        return [str(spec["column"])]
    if spec["kind"] == "unless_equal":
        return [str(spec["column"]), str(spec["other"])]
    raise error(f"computed field kind {spec['kind']!r} has no SPL form", code="binding")


def computed_spl(spec: dict[str, object], render: Callable[[str], str]) -> str:
    """A binding's computed field as an SPL expression over the fields it is made from (`render` names one):
    - split_details: Sysmon's Details again from the Splunk Add-on for Sysmon's registry_value_type (`REG_` and the
      word before the parentheses) and registry_value_data (the text inside them, or the whole text when there is no
      type): `W (X)` (docs/semantics.md, decision 33);
    - value_map: the model field's value renamed (`direction` outbound → Initiated true); any other value is null;
    - unless_equal: the model field's value where it differs from the other's and from the model's fill (`dest` where
      it is neither `dest_ip` nor `unknown`: the host name Sysmon 3 resolved), else null (decision 34)."""
    if spec["kind"] == "split_details":
        data, typ = render(str(spec["data"])), render(str(spec["type"]))
        return f'if(isnull({typ}), {data}, substr({typ}, 5)." (".{data}.")")'
    if spec["kind"] == "value_map":
        col = render(str(spec["column"]))
        pairs = spec["map"]
        assert isinstance(pairs, dict)
        return "case(" + ", ".join(f"{col}=={render_string_literal(str(k))}, {render_string_literal(str(v))}"
                                   for k, v in pairs.items()) + ")"
    if spec["kind"] == "unless_equal":
        col, other = render(str(spec["column"])), render(str(spec["other"]))
        fill = f" OR {col}=={render_string_literal(str(spec['fill']))}" if spec.get("fill") is not None else ""
        return f"if({col}=={other}{fill}, null(), {col})"
    raise error(f"computed field kind {spec['kind']!r} has no SPL form", code="binding")


def row_terms(binding: Binding) -> list[str]:
    """The binding's row filter (which events of the source type are rows of the source) as base-search terms."""
    out = []
    for column, values in row_filter(binding).items():
        lits = [str(v) if isinstance(v, int) and not isinstance(v, bool) else search_literal(str(v)) for v in values]
        if any(x is None for x in lits):
            raise error(f"{binding.file}: row filter {column!r} has a value search cannot say", code="binding")
        out.append(f"{search_field(column)}={lits[0]}" if len(lits) == 1
                   else f"{search_field(column)} IN ({', '.join(str(x) for x in lits)})")
    return out


def splunk_binding(rule: ir.RuleIR, binding_name: str | None) -> Binding | None:
    """The binding a rule's search reads (compiler.lowering.bind): a view's native binding (cim: tstats over the data
    model), else the base source's; None for an undeclared source searched as written. A union's: its first
    branch's."""
    return bind(lowering.first_leaf(rule), FEATURES, binding_name).binding


def compile_spl(rule: ir.RuleIR, binding_name: str | None) -> str:
    if rule.pipeline.source.union is not None:
        return compile_union(rule, binding_name)
    bound = bind(rule, FEATURES, binding_name)
    binding = bound.binding
    prefix = str(binding.extra.get("search", "")) if binding is not None else ""  # a data model binding has none
    return SplLowering(rule, binding, bound.stages, prefix).query()


def _reads(expr: ir.Expr, name: str) -> bool:
    """Whether `expr` reads the field `name` (a column, or a dotted path into one: `userIdentity.arn`)."""
    for n in ir.walk(expr):
        if isinstance(n, ir.Column):
            dotted = n.name
            if dotted == name:
                return True
            for p in n.path:
                if not isinstance(p, str):
                    break
                dotted += "." + p
                if dotted == name:
                    return True
    return False


def compile_union(rule: ir.RuleIR, binding_name: str | None) -> str:
    """A SourceUnion: `| multisearch [search <branch> | eval tag] …` (one branch: that search alone), each branch the
    whole search of its pipeline on its own binding; then the stages after the union over the branches' computed
    columns. multisearch runs its searches side by side and takes streaming commands only (search, where, eval,
    spath, lookup, fields): a base rule on a data model (tstats) is refused."""
    union = rule.pipeline.source.union
    assert union is not None
    searches: list[str] = []
    counter = 0
    computed: dict[str, Type] = {}
    for b in union.branches:
        sub = replace(rule, pipeline=b.pipeline)
        if b.pipeline.source.union is not None:  # a correlation of a correlation: its rows come from stats
            if len(union.branches) > 1:
                raise refusal(rule, FEATURES, f"rule {b.tag!r} is a correlation: its rows come from stats, which "
                              "multisearch cannot run beside another search", b, code="union")
            text = compile_union(sub, binding_name)
            searches.append(text + f"\n| eval {render_field(union.tag_column)}={render_string_literal(b.tag)}")
            computed.update({n: t for n, t in (b.pipeline.columns or ())})
            computed.update({a.name: a.expr.type for st in b.pipeline.stages[-1:] if isinstance(st, ir.Extend)
                             for a in st.assignments})
            continue
        bound = bind(sub, FEATURES, binding_name)
        if bound.binding is not None and bound.binding.extra.get("datamodel"):
            raise refusal(rule, FEATURES, f"rule {b.tag!r} reads the {bound.binding.name!r} data model (tstats), "
                          "which multisearch cannot run: compile the correlation with --binding raw", b, code="union")
        prefix = str(bound.binding.extra.get("search", "")) if bound.binding is not None else ""
        low = SplLowering(sub, bound.binding, bound.stages, prefix, counter=counter)
        text = low.query()
        counter = low.counter
        computed.update(low.computed)
        if not text.startswith("search "):
            text = "search " + text
        searches.append(text + f"\n| eval {render_field(union.tag_column)}="
                        f"{render_string_literal(b.tag)}")
    computed[union.tag_column] = Type.STRING
    post = SplLowering(rule, None, rule.pipeline.stages, "", counter=counter, computed=computed, from_source=False)
    post.lower_stages(list(rule.pipeline.stages))
    if post.live:
        post.drop(list(post.live))
    head = searches[0] if len(searches) == 1 else "| multisearch\n" + "\n".join(
        "    [" + x.replace("\n", "\n     ") + "]" for x in searches)
    return "\n".join([head, *("| " + c for c in post.commands)])
