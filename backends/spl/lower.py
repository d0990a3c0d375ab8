"""IR → Splunk SPL. A plain walk over the IR: each node type has one lowering function.

Choices that keep the IR's meaning (docs/backends/splunk.md has each with its Splunk doc):
- the first filter's conjuncts that `search` says exactly (case-insensitive terms on plain fields) go into the
  base search; the rest go to `where`, where comparisons are case-sensitive and nulls are not true;
- paths into JSON are read with `spath` (1-based `{n}`; negative indexes through `mvindex`);
- `eval` is sequential, so a stage that reads a column it also replaces goes through temporaries;
- `stats by` drops null keys, so keys are filled with a sentinel before and restored after.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from siemforge.compiler import ir
from siemforge.compiler.bindings import Binding, bindings_for
from siemforge.compiler.diagnostics import CompileError, error
from siemforge.compiler.types import Type

from .render import command_field, pcre_escape, render_field, render_string_literal, search_field, search_literal

NULL_KEY = "__siemforge_null__"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(slots=True)
class V:
    """A lowered eval expression and whether it is a condition (SPL keeps conditions and values apart)."""

    text: str
    cond: bool = False
    kind: str = "any"  # string, number, time, mv (multivalue), any


@dataclass(slots=True)
class SplLowering:
    rule: ir.RuleIR
    binding: Binding | None
    prefix: str
    commands: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)  # spath/eval commands the next stage needs
    computed: dict[str, Type] = field(default_factory=dict)
    from_source: bool = True
    extracted: dict[tuple[str, tuple[str | int, ...]], str] = field(default_factory=dict)
    counter: int = 0
    live: dict[str, None] = field(default_factory=dict)  # temporaries still on the rows, in order of creation

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

    def fail(self, message: str) -> CompileError:
        return error(f"{self.rule.meta.title}: {message}", hint="see docs/backends/splunk.md")

    # ------------------------------------------------------------------ query
    def query(self) -> str:
        pipeline = self.rule.pipeline
        if self.binding is not None and self.binding.extra.get("datamodel"):
            head = self.tstats(list(pipeline.stages))
            if head is None:
                raise self.fail("this pipeline cannot start with tstats over the data model (it needs filters on "
                                "model fields, then a summarize of them); compile it with --binding raw")
            if self.live:  # made by the stages after tstats
                self.drop(list(self.live))
            return "\n".join([head, *("| " + c for c in self.commands)])
        stages: list[ir.Stage] = []
        if pipeline.source.view is not None:
            stages.extend(pipeline.source.view.stages)
        stages.extend(pipeline.stages)
        terms: list[str] = []
        if stages and isinstance(stages[0], ir.Filter):
            terms, rest = self.split_search(stages[0].predicate)
            stages = stages[1:]
            if rest is not None:
                stages.insert(0, ir.Filter(rest))
        for st in stages:
            self.stage(st)
        if self.live:  # temporaries still on the rows (made after the last stats/table, or on the events): they go
            self.drop(list(self.live))
        head = " ".join(x for x in [self.prefix, *terms] if x) or "*"
        if not head.startswith("|"):
            head = "search " + head if not self.prefix else head
        return "\n".join([head, *("| " + c for c in self.commands)])

    def tstats(self, stages: list[ir.Stage]) -> str | None:
        """`| tstats … from datamodel=… where … by …` for leading filters and a summarize over model fields."""
        assert self.binding is not None
        terms: list[str] = []
        i = 0
        while i < len(stages) and isinstance(stages[i], ir.Filter):
            st = stages[i]
            assert isinstance(st, ir.Filter)
            parts = list(st.predicate.operands) if isinstance(st.predicate, ir.And) else [st.predicate]
            for p in parts:
                t = self.search_term(p)
                if t is None:
                    return None
                terms.append(t)
            i += 1
        if i >= len(stages) or not isinstance(stages[i], ir.Aggregate):
            return None
        agg = stages[i]
        assert isinstance(agg, ir.Aggregate)
        fns = {ir.AggFn.COUNT: "count", ir.AggFn.DCOUNT: "dc", ir.AggFn.MIN: "min", ir.AggFn.MAX: "max",
               ir.AggFn.SUM: "sum", ir.AggFn.AVG: "avg", ir.AggFn.VALUES: "values", ir.AggFn.EARLIEST: "earliest",
               ir.AggFn.LATEST: "latest"}
        funcs = []
        for a in agg.aggregations:
            if a.arg is None:
                funcs.append(f"{fns[a.fn]} AS {command_field(a.name)}")
                continue
            f = self.plain_field(a.arg) if not (isinstance(a.arg, ir.Column) and a.arg.name == "_time") else "_time"
            if f is None:
                return None
            funcs.append(f"{fns[a.fn]}({f}) AS {command_field(a.name)}")
        keys = []
        for b in agg.by:
            f = self.plain_field(b.expr)
            if f is None:
                return None
            keys.append((f, b.name))
        model = self.binding.extra["datamodel"]
        # tstats drops rows with a null key unless it fills them; the IR keeps them as a group
        head = (f"| tstats summariesonly=false fillnull_value={render_string_literal(NULL_KEY)} " + " ".join(funcs)
                + f" from datamodel={model}")
        if terms:
            head += " where " + " ".join(terms)
        if keys:
            head += " by " + " ".join(f for f, _ in keys)
            self.commands.append("rename " + ", ".join(f"{command_field(f)} AS {command_field(n)}" for f, n in keys))
            self.commands.append("eval " + ", ".join(
                f"{render_field(n)}=if({render_field(n)}=={render_string_literal(NULL_KEY)}, null(), "
                f"{render_field(n)})" for _, n in keys))
        self.computed = {b.name: b.expr.type for b in agg.by}
        self.computed.update({a.name: a.type for a in agg.aggregations})
        self.from_source = False
        for st in stages[i + 1:]:
            self.stage(st)
        return head

    def emit(self, command: str) -> None:
        self.commands.extend(self.pending)
        self.pending = []
        self.commands.append(command)

    # ------------------------------------------------------------------ base search
    def split_search(self, pred: ir.Expr) -> tuple[list[str], ir.Expr | None]:
        parts = list(pred.operands) if isinstance(pred, ir.And) else [pred]
        terms: list[str] = []
        rest: list[ir.Expr] = []
        for p in parts:
            t = self.search_term(p)
            if t is None:
                rest.append(p)
                hint = self.prefilter_term(p)
                if hint is not None:
                    terms.append(hint)
            else:
                terms.append(t)
        if not rest:
            return terms, None
        return terms, rest[0] if len(rest) == 1 else ir.And(tuple(rest))

    def plain_field(self, e: ir.Expr) -> str | None:
        """The Splunk name of a scalar source field that `search` can test, or None."""
        if not isinstance(e, ir.Column) or e.path or e.name in self.computed or not self.from_source:
            return None
        if self.binding is None:
            return e.name
        col = self.binding.columns.get(e.name)
        return col if col is not None and col != "_time" else None

    def prefilter_term(self, e: ir.Expr) -> str | None:
        """A case-insensitive term implied by a case-sensitive equality: it narrows what the index returns, and
        the exact test stays in `where`."""
        if isinstance(e, ir.Compare) and e.op is ir.CmpOp.EQ and e.case_sensitive:
            return self.search_term(ir.Compare(ir.CmpOp.EQ, e.left, e.right, case_sensitive=False))
        if isinstance(e, ir.InList) and e.case_sensitive:
            return self.search_term(ir.InList(e.subject, e.values, case_sensitive=False))
        return None

    def search_term(self, e: ir.Expr) -> str | None:
        """`search` text meaning exactly `e`, or None."""
        match e:
            case ir.Compare(op=op, left=l, right=ir.Literal(value=str() as v), case_sensitive=False) if op in (
                    ir.CmpOp.EQ, ir.CmpOp.NE):
                f, lit = self.plain_field(l), search_literal(v)
                if f is None or lit is None or v == "":
                    return None
                term = f"{search_field(f)}={lit}"
                return term if op is ir.CmpOp.EQ else f"NOT {term}"
            case ir.StringMatch(op=op, subject=s, pattern=ir.Literal(value=str() as v), case_sensitive=False):
                f, lit = self.plain_field(s), search_literal(v)
                if f is None or lit is None or v == "":
                    return None
                body = lit[1:-1]
                pattern = {ir.StrOp.CONTAINS: f"*{body}*", ir.StrOp.STARTSWITH: f"{body}*",
                           ir.StrOp.ENDSWITH: f"*{body}"}[op]
                return f'{search_field(f)}="{pattern}"'
            case ir.WildcardMatch(subject=s, pattern=pat, case_sensitive=False):
                f = self.plain_field(s)
                if f is None or any(p is ir.Wild.ONE for p in pat):
                    return None
                text = ""
                for p in pat:
                    if p is ir.Wild.ANY:
                        text += "*"
                    else:
                        lit = search_literal(str(p))
                        if lit is None:
                            return None
                        text += lit[1:-1]
                return f'{search_field(f)}="{text}"' if text.strip("*") else None
            case ir.InList(subject=s, values=vals, case_sensitive=False):
                f = self.plain_field(s)
                lits = [search_literal(v.value) if isinstance(v, ir.Literal) and isinstance(v.value, str) and v.value
                        else None for v in vals]
                if f is None or any(x is None for x in lits):
                    return None
                return f"{search_field(f)} IN ({', '.join(str(x) for x in lits)})"
            case ir.Not(operand=o):
                inner = self.search_term(o)
                return None if inner is None else f"NOT ({inner})"
            case ir.And(operands=ops) | ir.Or(operands=ops):
                terms = [self.search_term(o) for o in ops]
                if any(x is None for x in terms):
                    return None
                joiner = " " if isinstance(e, ir.And) else " OR "
                return "(" + joiner.join(str(x) for x in terms) + ")"  # every group parenthesised
        return None

    # ------------------------------------------------------------------ stages
    def stage(self, st: ir.Stage) -> None:
        match st:
            case ir.Filter(predicate=p):
                self.emit("where " + self.cond(p))
            case ir.Extend(assignments=assigns):
                self.extend(assigns)
            case ir.Aggregate(aggregations=aggs, by=by):
                self.aggregate("stats", aggs, by)
                self.extracted.clear()  # the rows are new: nothing extracted before is on them
                self.computed = {b.name: b.expr.type for b in by}
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
                    pairs.append(f"{command_field(src.text.strip(chr(39)))} AS {command_field(new)}")
                    self.computed[new] = self.computed.pop(old, Type.ANY)
                    self.reassigned(old)
                self.emit("rename " + ", ".join(pairs))
            case ir.Project(columns=cols):
                names = []
                for c in cols:
                    v = self.value(ir.Column(c, (), Type.ANY))
                    if v.text.strip("'") != c:
                        self.emit(f"eval {render_field(c)}={v.text}")
                    names.append(command_field(c))
                self.emit("table " + " ".join(names))
                self.live.clear()  # the rows hold only the named columns
                self.extracted.clear()
                self.computed = {c: self.computed.get(c, Type.ANY) for c in cols}
                self.from_source = False
            case ir.Sort(keys=keys):
                parts = []
                for k in keys:
                    v = self.value(k.expr)
                    name = v.text.strip("'")
                    if not (isinstance(k.expr, ir.Column) and not k.expr.path):
                        name = self.fresh("sort")
                        self.emit(f"eval {name}={v.text}")
                    parts.append(("-" if k.descending else "+") + command_field(name))
                self.emit("sort 0 " + " ".join(parts))
            case ir.Limit(count=n):
                self.emit(f"head {n}")
            case _:
                raise self.fail(f"no SPL for stage {type(st).__name__}")
        for name in ir.assigned_names(st):  # spath results taken from these columns' old values are stale
            self.reassigned(name)

    def extend(self, assigns: tuple[ir.Assignment, ...]) -> None:
        names = [a.name for a in assigns]
        conflict = any(
            isinstance(node, ir.Column) and node.name in names[:i]
            for i, a in enumerate(assigns) for node in ir.walk(a.expr))
        values = [(a.name, self.value(a.expr)) for a in assigns]
        if not conflict:
            self.emit("eval " + ", ".join(f"{render_field(n)}={self.as_value(v)}" for n, v in values))
        else:  # eval is sequential; the IR's extend reads the row from before the stage
            temps = [(n, self.fresh("tmp"), v) for n, v in values]
            self.emit("eval " + ", ".join(f"{t}={self.as_value(v)}" for _, t, v in temps))
            self.emit("eval " + ", ".join(f"{render_field(n)}={t}" for n, t, _ in temps))
            self.drop([t for _, t, _ in temps])
        for a in assigns:
            self.computed[a.name] = a.expr.type

    def aggregate(self, command: str, aggs: tuple[ir.Aggregation, ...], by: tuple[ir.Assignment, ...]) -> None:
        pre: list[str] = []
        arg_temps: list[str] = []  # eventstats keeps every row: its temporaries are dropped after it
        funcs: list[str] = []
        for a in aggs:
            fn = {ir.AggFn.COUNT: "count", ir.AggFn.DCOUNT: "dc", ir.AggFn.MIN: "min", ir.AggFn.MAX: "max",
                  ir.AggFn.SUM: "sum", ir.AggFn.AVG: "avg", ir.AggFn.VALUES: "values",
                  ir.AggFn.EARLIEST: "earliest", ir.AggFn.LATEST: "latest"}[a.fn]
            if a.arg is None:
                funcs.append(f"{fn} AS {command_field(a.name)}")
                continue
            v = self.value(a.arg)
            plain = isinstance(a.arg, ir.Column) and not a.arg.path
            arg = v.text.strip("'") if plain and v.text == render_field(v.text.strip("'")) else None
            if arg is None or "'" in v.text[1:-1]:
                arg = self.fresh("arg")
                pre.append(f"{arg}={self.as_value(v)}")
                arg_temps.append(arg)
            funcs.append(f"{fn}({command_field(arg)}) AS {command_field(a.name)}")
        # eval is sequential: a key written under its own name must not be read by a later key of the same eval;
        # and eventstats keeps every row, so a computed key must not replace (or add) a column: such keys go
        # through temporaries
        names = [b.name for b in by]
        keys: list[str] = []
        temps: list[tuple[str, str]] = []  # (temporary, key name)
        for i, b in enumerate(by):
            v = self.value(b.expr)
            # read after this eval assigns it: by a later key of the same eval, or by an aggregation (stats runs after;
            # earliest/latest read the event time)
            later = [*(x.expr for x in by[i + 1:]), *(a.arg for a in aggs if a.arg is not None)]
            read_later = any(_reads(e, b.name) for e in later) or (
                b.name == "_time" and any(a.fn in (ir.AggFn.EARLIEST, ir.AggFn.LATEST) for a in aggs))
            # the key is the row's own field under the same Splunk name (on asl, eventName is 'api.operation': not so)
            own_column = (isinstance(b.expr, ir.Column) and not b.expr.path and b.expr.name == b.name
                          and v.text == render_field(b.name))
            name = b.name
            if read_later or (command == "eventstats" and not own_column):
                name = self.fresh("key")
                temps.append((name, b.name))
            # stats drops rows whose key is null; the IR keeps them as a group: fill, then restore
            pre.append(f"{render_field(name)}=coalesce({self.as_value(v)}, {render_string_literal(NULL_KEY)})")
            keys.append(command_field(name))
        if pre:
            self.emit("eval " + ", ".join(pre))
        self.emit(f"{command} " + " ".join(funcs) + (" by " + " ".join(keys) if keys else ""))
        if command == "eventstats":
            if temps or arg_temps:
                self.drop([*(t for t, _ in temps), *arg_temps])
            restore = [b.name for b in by if b.name not in {n for _, n in temps}]
        else:  # stats: its rows hold only its own columns, the temporary keys renamed to theirs
            self.live.clear()
            if temps:
                self.emit("rename " + ", ".join(f"{command_field(t)} AS {command_field(n)}" for t, n in temps))
            restore = names
        if restore:
            self.emit("eval " + ", ".join(
                f"{render_field(n)}=if({render_field(n)}=={render_string_literal(NULL_KEY)}, null(), "
                f"{render_field(n)})" for n in restore))

    def lookup(self, st: ir.Lookup) -> None:
        keys = []
        for expr, col in st.keys:
            v = self.value(expr)
            name = v.text.strip("'")
            if not isinstance(expr, ir.Column) or expr.path or "'" in v.text[1:-1]:
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
        col = self.binding.columns.get(c.name)
        if col is None:
            raise self.fail(f"field {c.name!r} has no Splunk field in binding {self.binding.name!r}")
        return col

    def column(self, c: ir.Column) -> V:
        kind = _kind(c.type)
        if c.name in self.computed or not self.from_source:
            if not c.path:
                return V(render_field(c.name), kind=kind)
            return V(self.spath(c.name, c.path))
        if self.binding is None:  # an undeclared source: names as written, arrays as Splunk names them
            return V(render_field(".".join([c.name, *(str(p) for p in c.path)])), kind=kind)
        ref = self.binding.resolve(c.name, c.path)
        if ref is None:
            dotted = ".".join([c.name, *(str(p) for p in c.path)])
            raise self.fail(f"field {dotted!r} has no Splunk field in binding {self.binding.name!r} "
                            f"({self.binding.file})")
        if ref.json_text:  # inside a JSON object: spath reads exactly the path asked for
            return V(self.spath(None, (*ref.column.split("."), *ref.path)))
        if ref.path:
            raise self.fail(f"{c.name}: {ref.column} is a scalar; it has no member {ref.path[0]!r}")
        return V(render_field(ref.column), kind="time" if ref.column == "_time" else kind)

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
    def as_value(self, v: V) -> str:
        return f'if({v.text}, "true", "false")' if v.cond else v.text

    def cond(self, e: ir.Expr) -> str:
        v = self.value(e)
        return v.text if v.cond else f'({v.text}=="true" OR {v.text}==1)'

    def value(self, e: ir.Expr) -> V:  # noqa: C901 - one case per node type
        match e:
            case ir.Literal(value=val):
                return literal(val)
            case ir.Column():
                return self.column(e)
            case ir.Index(base=b, key=k):
                base = self.value(b)
                if isinstance(k, int) and b.type is Type.DYNAMIC and isinstance(b, ir.Call) and b.fn == "split":
                    return V(f"mvindex({base.text}, {k})", kind="string")
                name = self.fresh("val")
                self.emit(f"eval {name}={self.as_value(base)}")
                return V(self.spath(name, (k,)))
            case ir.Compare():
                return self.compare(e)
            case ir.StringMatch(op=op, subject=s, pattern=p, case_sensitive=cs):
                subject = self.value(s).text
                if isinstance(p, ir.Literal) and isinstance(p.value, str):
                    body = pcre_escape(p.value)
                    rx = {ir.StrOp.CONTAINS: body, ir.StrOp.STARTSWITH: "^" + body,
                          ir.StrOp.ENDSWITH: body + r"\z"}[op]
                    return V(f"match({subject}, {render_string_literal(('' if cs else '(?i)') + rx)})", cond=True)
                raise self.fail("a string match against a non-literal pattern has no SPL form yet")
            case ir.WildcardMatch(subject=s, pattern=pat, case_sensitive=cs):
                rx = "".join(".*" if p is ir.Wild.ANY else "." if p is ir.Wild.ONE else pcre_escape(str(p))
                             for p in pat)
                flags = "(?s)" if cs else "(?is)"
                return V(f"match({self.value(s).text}, {render_string_literal(flags + '^' + rx + chr(92) + 'z')})",
                         cond=True)
            case ir.RegexMatch(subject=s, pattern=p, flags=fl):
                prefix = "".join(f"(?{f})" for f in sorted(fl))
                return V(f"match({self.value(s).text}, {render_string_literal(prefix + p)})", cond=True)
            case ir.CidrMatch(subject=s, networks=nets):
                subject = self.value(s).text
                parts = [f"cidrmatch({render_string_literal(str(ipaddress.ip_network(n, strict=False)))}, {subject})"
                         for n in nets]
                return V(parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")", cond=True)
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
                return V(f"in({subject}, {', '.join(items)})", cond=True)
            case ir.Keyword(pattern=pat, case_sensitive=cs):
                rx = "".join(".*" if p is ir.Wild.ANY else "." if p is ir.Wild.ONE else pcre_escape(str(p))
                             for p in pat)
                return V(f"match(_raw, {render_string_literal(('' if cs else '(?i)') + rx)})", cond=True)
            case ir.Not(operand=o):
                # NOT of a condition that is null (a missing field) is null in SPL, true in the IR
                return V(f"if({self.cond(o)}, 0, 1)==1", cond=True)
            case ir.And(operands=ops):
                return V("(" + " AND ".join(self.cond(o) for o in ops) + ")", cond=True)
            case ir.Or(operands=ops):
                return V("(" + " OR ".join(self.cond(o) for o in ops) + ")", cond=True)
            case ir.Arith(op=op, left=l, right=r):
                a, b = self.value(l).text, self.value(r).text
                if op is ir.ArithOp.DIV and l.type is Type.INT and r.type is Type.INT:
                    q = f"({a} / {b})"
                    return V(f"if({q}>=0, floor({q}), ceiling({q}))", kind="number")
                return V(f"({a} {op.value} {b})", kind="number")
            case ir.Negate(operand=o):
                return V(f"(0 - {self.value(o).text})", kind="number")
            case ir.Case(branches=bs, default=d):
                if len(bs) == 1:
                    c, v = bs[0]
                    return V(f"if({self.cond(c)}, {self.as_value(self.value(v))}, {self.as_value(self.value(d))})")
                parts = [f"{self.cond(c)}, {self.as_value(self.value(v))}" for c, v in bs]
                return V(f"case({', '.join(parts)}, true(), {self.as_value(self.value(d))})")
            case ir.Call():
                return self.call(e)
        raise self.fail(f"no SPL for {type(e).__name__}")

    def compare(self, e: ir.Compare) -> V:
        left, right = self.value(e.left), self.value(e.right)
        lt, rt = self.as_value(left), self.as_value(right)
        if not e.case_sensitive and e.op in (ir.CmpOp.EQ, ir.CmpOp.NE):
            lt = f"lower({lt})"
            rt = render_string_literal(e.right.value.lower()) if isinstance(e.right, ir.Literal) and isinstance(
                e.right.value, str) else f"lower({rt})"
        if e.op is ir.CmpOp.EQ:
            return V(f"{lt}=={rt}", cond=True)
        if e.op is ir.CmpOp.NE:  # two-valued: a null operand makes != true; SPL's != is null there
            nulls = [f"isnull({t})" for t, x in ((lt, e.left), (rt, e.right)) if not isinstance(x, ir.Literal)]
            return V("(" + " OR ".join([*nulls, f"{lt}!={rt}"]) + ")", cond=True)
        return V(f"{lt}{e.op.value}{rt}", cond=True)

    def call(self, e: ir.Call) -> V:  # noqa: C901
        fn = e.fn
        if fn == "array_length" and isinstance(e.args[0], ir.Column):
            where = self.json_location(e.args[0])
            if where is not None:  # every element of the JSON array, as a multivalue field
                return V(f"mvcount({self.spath(where[0], (*where[1], '{}'))})", kind="number")
        args = [self.value(a) for a in e.args]
        t = [self.as_value(a) for a in args]
        match fn:
            case "isnull" | "isnotnull":
                return V(f"{fn}({t[0]})", cond=True)
            case "isempty":
                return V(f'(isnull({t[0]}) OR {t[0]}=="" OR mvcount({t[0]})==0)', cond=True)
            case "isnotempty":
                return V(f'(isnotnull({t[0]}) AND {t[0]}!="" AND mvcount({t[0]})>0)', cond=True)
            case "coalesce":
                return V(f"coalesce({', '.join(t)})")
            case "tostring":
                return V(f"tostring({t[0]})", kind="string")
            case "toint":
                n = f"tonumber({t[0]})"
                return V(f"if({n}>=0, floor({n}), ceiling({n}))", kind="number")
            case "todouble":
                return V(f"tonumber({t[0]})", kind="number")
            case "tolower" | "toupper":
                return V(f"{'lower' if fn == 'tolower' else 'upper'}({t[0]})", kind="string")
            case "strlen":
                return V(f"len({t[0]})", kind="number")
            case "substring":  # SPL substr is 1-based
                rest = f", {t[2]}" if len(t) > 2 else ""
                return V(f"substr({t[0]}, ({t[1]}) + 1{rest})", kind="string")
            case "split":
                return V(f"split({t[0]}, {t[1]})", kind="mv")
            case "strcat":  # `.` with a null operand is null; strcat counts null as ""
                return V("(" + ".".join(f'coalesce(tostring({x}), "")' for x in t) + ")", kind="string")
            case "replace_string":
                pat = e.args[1]
                if not (isinstance(pat, ir.Literal) and isinstance(pat.value, str)):
                    raise self.fail("replace_string() needs a literal search text in SPL")
                rep = e.args[2]
                if not (isinstance(rep, ir.Literal) and isinstance(rep.value, str)):
                    raise self.fail("replace_string() needs a literal replacement in SPL")
                return V(f"replace({t[0]}, {render_string_literal(pcre_escape(pat.value))}, "
                         f"{render_string_literal(rep.value.replace(chr(92), chr(92) * 2))})", kind="string")
            case "replace_regex":
                return V(f"replace({t[0]}, {t[1]}, {t[2]})", kind="string")
            case "extract":
                pat, group = e.args[0], e.args[1]
                assert isinstance(pat, ir.Literal) and isinstance(group, ir.Literal)
                rx = f"(?s)^.*?(?:{pat.value}).*$"
                return V(f"if(match({t[2]}, {t[0]}), replace({t[2]}, {render_string_literal(rx)}, "
                         f"{render_string_literal(chr(92) + str(group.value))}), null())", kind="string")
            case "array_length":
                return V(f"mvcount({t[0]})", kind="number")
            case "now":
                return V("now()", kind="time")
            case "ago":
                return V(f"(now() - {t[0]})", kind="time")
            case "bin":
                return V(f"(floor({t[0]} / {t[1]}) * {t[1]})", kind=args[0].kind)
            case "hourofday":  # from epoch seconds: UTC whatever the searching user's time zone
                return V(f"floor((({t[0]} % 86400) + 86400) % 86400 / 3600)", kind="number")
            case "dayofweek":  # 1970-01-01 was a Thursday; 0 = Sunday
                return V(f"((floor({t[0]} / 86400) + 4) % 7)", kind="number")
            case "datetime_diff":
                unit = e.args[0]
                assert isinstance(unit, ir.Literal)
                size = {"day": 86400, "hour": 3600, "minute": 60, "second": 1}.get(str(unit.value))
                if size is not None:
                    return V(f"(floor({t[1]} / {size}) - floor({t[2]} / {size}))", kind="number")
                if unit.value == "week":
                    return V(f"(floor((floor({t[1]} / 86400) + 4) / 7) - floor((floor({t[2]} / 86400) + 4) / 7))",
                             kind="number")
                raise self.fail(f"datetime_diff in {unit.value}s has no time-zone independent SPL form")
            case "todatetime":
                if e.args[0].type is Type.DATETIME:
                    return args[0]
                raise self.fail("todatetime() of text has no time-zone safe SPL form; keep times in _time")
            case "unixtime_seconds_todatetime":  # SPL times are epoch seconds already
                return V(f"tonumber({t[0]})", kind="time")
            case "unixtime_milliseconds_todatetime":
                return V(f"(tonumber({t[0]}) / 1000)", kind="time")
            case "tobool":
                raise self.fail("SPL has no boolean values; compare the field instead of tobool()")
        raise self.fail(f"no SPL for function {fn}()")


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


def literal(v: object) -> V:
    if v is None:
        return V("null()")
    if isinstance(v, bool):  # SPL has no boolean values; CloudTrail booleans are the text true/false there
        return V('"true"' if v else '"false"', kind="string")
    if isinstance(v, (int, float)):
        return V(repr(v) if isinstance(v, float) else str(v), kind="number")
    if isinstance(v, str):
        return V(render_string_literal(v), kind="string")
    if isinstance(v, timedelta):
        secs = v.total_seconds()
        return V(str(int(secs)) if secs.is_integer() else repr(secs), kind="number")
    if isinstance(v, datetime):
        secs = (v - EPOCH).total_seconds()
        return V(str(int(secs)) if secs.is_integer() else repr(secs), kind="time")
    raise error(f"no SPL literal for {v!r}")


def splunk_binding(rule: ir.RuleIR, binding_name: str | None) -> Binding | None:
    """The binding a rule's search reads: a view's native binding (cim: tstats over the data model) if the target has
    one, else the base source's; None for an undeclared source searched as written."""
    src = rule.pipeline.source
    if src.view is not None:  # a target with the normalized form natively binds to it; else expand the view
        native = [b for b in bindings_for(src.name, "splunk") if binding_name in (None, b.name)]
        if native:
            return native[0]
    base = src.view.source.name if src.view is not None else src.name
    candidates = bindings_for(base, "splunk")
    if candidates:
        found = [b for b in candidates if binding_name in (None, b.name)]
        if not found:
            raise error(f"{rule.meta.title}: source {base!r} has no Splunk binding {binding_name!r}",
                        hint="bindings: " + ", ".join(b.name for b in candidates))
        return found[0]
    if binding_name in (None, "asis") and (base == "generic" or _windows_as_written(base)):
        return None  # an undeclared source: field names as the rule writes them
    raise error(f"{rule.meta.title}: no Splunk binding for source {base!r}")


def _windows_as_written(base: str) -> bool:
    """A Windows source (`records:` in its file) has no Splunk binding yet: it is searched as written, as before it
    was declared (the rule's field names are the events' own; no Channel/EventID terms are added)."""
    from siemforge.compiler.sources import builtin_sources

    src = builtin_sources().get(base)
    return src is not None and bool(src.records)


def compile_spl(rule: ir.RuleIR, binding_name: str | None) -> str:
    binding = splunk_binding(rule, binding_name)
    prefix = str(binding.extra.get("search", "")) if binding is not None else ""  # a data model binding has none
    return SplLowering(rule, binding, prefix).query()


def baseline_searches(rule: ir.RuleIR, baseline: ir.Baseline, binding_name: str | None) -> tuple[str, str]:
    """The initial search (fill the table from a long window) and the scheduled update (merge a new window in),
    as ESCU's baselines do: min first sighting, max last sighting, forget old keys, enough_data after a warm-up."""
    import dataclasses

    table = command_field(baseline.table)
    initial = compile_spl(dataclasses.replace(rule, pipeline=baseline.initial, baselines=()), binding_name)
    k = next(i for i, st in enumerate(baseline.initial.stages) if isinstance(st, ir.Aggregate))
    head = dataclasses.replace(baseline.initial, stages=baseline.initial.stages[: k + 1], columns=None)
    window = compile_spl(dataclasses.replace(rule, pipeline=head, baselines=()), binding_name)
    key = command_field(baseline.key)
    forget = f"-{int(baseline.forget.total_seconds())}s"
    warmup = f"-{int(baseline.warmup.total_seconds())}s"
    update = "\n| ".join([
        window,
        f"inputlookup append=t {table}",
        f"stats min(firstTimeSeen) AS firstTimeSeen max(lastTimeSeen) AS lastTimeSeen by {key}",
        f'where lastTimeSeen > relative_time(now(), "{forget}")',
        "eventstats min(firstTimeSeen) AS globalFirstTime",
        f'eval enough_data=if(globalFirstTime <= relative_time(now(), "{warmup}"), 1, 0)',
        f"table {key} firstTimeSeen lastTimeSeen enough_data",
        f"outputlookup {table}",
    ])
    return initial + f"\n| outputlookup {table}", update


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
