"""IR → KQL for Microsoft Sentinel. A plain walk over the IR: each node type has one lowering function.

Every choice here keeps the IR's meaning on the bound table (docs/semantics.md, docs/backends/sentinel.md):
strings on Sentinel are never null, so a missing string field is the empty string; paths into JSON-text
columns are parsed once per query; parallel `extend` is kept with temporaries; `dcount` is exact below 8,000
distinct values; seen-before tables are computed from the table's history (baseline.py).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from siemforge.compiler import ir, lowering, nullability
from siemforge.compiler.bindings import AUDIT_FIELD_PATTERN, Binding, ColumnRef, computed, row_filter
from siemforge.compiler.diagnostics import CompileError, error
from siemforge.compiler.lowering import Drop, Features, Lowered, LoweringStage, bind, preprocess, refusal
from siemforge.compiler.nullability import Facts
from siemforge.compiler.regex import RegexRefused, compile_re2
from siemforge.compiler.types import Type

from .render import (
    render_datetime,
    render_name,
    render_real,
    render_regex_literal,
    render_string_literal,
    render_timespan,
)

_IR_TO_KQL = {
    Type.STRING: "string",
    Type.INT: "long",
    Type.REAL: "real",
    Type.BOOL: "bool",
    Type.DATETIME: "datetime",
    Type.TIMESPAN: "timespan",
}


@dataclass(frozen=True, slots=True)
class AggLowered:
    """One aggregation of a summarize: its text, the extends to run after it, the temporaries to drop then."""

    text: str
    after: list[str]
    drops: list[str] = field(default_factory=list)


_EXPAND_KQL_TYPES = {Type.DYNAMIC: "dynamic", Type.STRING: "string", Type.INT: "long", Type.REAL: "real",
                     Type.BOOL: "bool"}


@dataclass(slots=True)
class Scope:
    """What the rows are made of at one point of the query."""

    computed: dict[str, str] = field(default_factory=dict)  # columns made by stages -> KQL type
    from_table: bool = True  # table columns are still there (no summarize/project yet)


@dataclass(slots=True)
class KqlLowering:
    rule: ir.RuleIR
    binding: Binding
    stages: tuple[ir.Stage, ...]  # views the table does not store expanded in front (compiler.lowering.bind)
    lets: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    scope: Scope = field(default_factory=Scope)
    parsed_json: dict[str, str] = field(default_factory=dict)  # JSON-text column -> its parsed column
    pending_json: list[str] = field(default_factory=list)
    counter: int = 0
    tables: dict[str, str] = field(default_factory=dict)  # lookup table -> the query's own `let` that computes it
    at_stage: ir.Stage | None = None  # the rule's stage being lowered (where a refusal points by default)
    used_computed: set[str] = field(default_factory=set)  # the binding's computed fields the query reads
    # AnyElement: the mv-apply operators each nesting level needs before its `where`/`summarize`, the element names
    any_levels: list[list[str]] = field(default_factory=list)
    elements: list[str] = field(default_factory=list)
    any_flags: dict[ir.AnyElement, str] = field(default_factory=dict)
    facts: Facts = Facts()  # what the nullability pass knows of the rows the stage being lowered reads

    # ------------------------------------------------------------------ names
    def fresh(self, stem: str) -> str:
        self.counter += 1
        return f"{stem}_{self.counter}"

    def fail(self, message: str, *at: object, code: str = "unsupported") -> CompileError:
        """A refusal pointing at the first of `at` the rule wrote, else at the stage being lowered."""
        return refusal(self.rule, FEATURES, message, *at, self.at_stage, code=code)

    # ------------------------------------------------------------------ query
    def query(self) -> str:
        stages = self.stages
        table = self.binding.table
        if not table:
            raise self.fail(f"binding {self.binding.name!r} names no table")
        self.lines.append(render_name(table))
        for column, values in row_filter(self.binding).items():  # the table holds more than the source's rows
            self.lines.append("| where " + render_name(column) + (
                " == " + kql_literal(values[0]) if len(values) == 1
                else " in (" + ", ".join(kql_literal(v) for v in values) + ")"))
        head = len(self.lines)
        self.refuse_lacking(stages)
        self.refuse_whole_part(stages)
        self.lower_stages(stages)
        if self.scope.from_table and self.parsed_json:
            self.lines.append("| project-away " + ", ".join(sorted(self.parsed_json.values())))
        if self.used_computed:  # before the rule's stages: every stage reads them as the source's fields
            specs = computed(self.binding)
            self.lines.insert(head, "| extend " + ", ".join(
                f"{render_name(n)} = {computed_kql(specs[n])}" for n in sorted(self.used_computed)))
        body = "\n".join(self.lines)
        return "\n".join([*self.lets, body]) if self.lets else body

    def lower_stages(self, stages: tuple[ir.Stage, ...]) -> None:
        for stage in stages:
            self.at_stage = stage
            for st in preprocess(stage, FEATURES, lambda: self.fresh("siemforge_tmp")):
                try:
                    self.stage(st)
                except CompileError as err:
                    raise lowering.placed(self.rule, FEATURES, err, stage) from None
            self.facts = nullability.step(self.facts, stage)

    def refuse_lacking(self, stages: tuple[ir.Stage, ...]) -> None:
        """A computed field the table can only partly fill (`lacks`: Sysmon's Hashes without IMPHASH) is refused where
        the rule compares it with a value naming what is lacking: that comparison could never be true here. A
        `contains_only` field (a list whose order and members depend on the sensor's configuration) is refused
        wherever it is read other than by a substring match: `endswith`, equality or a regex would depend on them."""
        specs = computed(self.binding)
        lacking = {n: [str(t) for t in spec.get("lacks", ())] for n, spec in specs.items()}
        lacking = {n: ts for n, ts in lacking.items() if ts or specs[n].get("contains_only")}
        if not lacking:
            return

        def substring(x: object) -> bool:
            if isinstance(x, ir.StringMatch):
                return x.op is ir.StrOp.CONTAINS
            if isinstance(x, ir.WildcardMatch):
                return len(x.pattern) > 1 and x.pattern[0] is ir.Wild.ANY and x.pattern[-1] is ir.Wild.ANY
            return False

        def texts(x: object) -> list[str]:
            if isinstance(x, str):
                return [x]
            if isinstance(x, (tuple, list)):
                return [t for i in x for t in texts(i)]
            if hasattr(x, "__dataclass_fields__"):
                return [t for f in x.__dataclass_fields__ for t in texts(getattr(x, f))]
            return []

        def walk(x: object) -> None:
            if isinstance(x, (tuple, list)):
                for i in x:
                    walk(i)
                return
            if not hasattr(x, "__dataclass_fields__"):
                return
            fields = [getattr(x, f) for f in x.__dataclass_fields__]
            cols = [f.name for f in fields if isinstance(f, ir.Column) and not f.path and f.name in lacking]
            for name in cols:
                if specs[name].get("contains_only") and not substring(x):
                    raise self.fail(f"field {name!r} can only be matched with contains on the {self.binding.table} "
                                    "table: which hashes it lists, and in which order, differ from Sysmon's",
                                    code="unmapped-field")
                for value in (t for f in fields if not isinstance(f, ir.Column) for t in texts(f)):
                    for token in lacking[name]:
                        if token.lower() in value.lower():
                            raise self.fail(f'field {name!r} compared with "{value}": the {self.binding.table} table '
                                            f"has no {token}", code="unmapped-field")
            for f in fields:
                walk(f)

        walk(stages)

    def refuse_whole_part(self, stages: tuple[ir.Stage, ...]) -> None:
        """A field whose table column holds only its whole part (`whole_part:`; AWSGuardDuty's Severity is
        toint(severity)) is read only where that gives the same answer: `>=` or `<` a whole number (for x >= 0,
        floor(x) >= n exactly when x >= n). Anything else is refused (docs/semantics.md decision 96)."""
        names = set(self.binding.extra.get("whole_part") or ())
        if not names:
            return
        flip = {ir.CmpOp.GE: ir.CmpOp.LE, ir.CmpOp.LT: ir.CmpOp.GT}

        def whole(e: object) -> bool:
            return (isinstance(e, ir.Literal) and not isinstance(e.value, bool) and isinstance(e.value, (int, float))
                    and float(e.value).is_integer())

        def exact(x: ir.Compare) -> bool:
            for col, other, ops in ((x.left, x.right, (ir.CmpOp.GE, ir.CmpOp.LT)),
                                    (x.right, x.left, tuple(flip.values()))):
                if isinstance(col, ir.Column) and not col.path and col.name in names:
                    return x.op in ops and whole(other)
            return False

        def walk(x: object, stage: object) -> None:
            if isinstance(x, (tuple, list)):
                for i in x:
                    walk(i, stage)
                return
            if isinstance(x, ir.Compare) and exact(x):
                return
            if isinstance(x, ir.Column) and not x.path and x.name in names:
                raise self.fail(f"field {x.name!r} is read here other than by >= or < a whole number: the "
                                f"{self.binding.table} table holds only its whole part", x, stage,
                                code="unmapped-field")
            if hasattr(x, "__dataclass_fields__"):
                for f in x.__dataclass_fields__:
                    walk(getattr(x, f), stage)

        for st in stages:
            walk(st, st)

    def emit(self, text: str) -> None:
        """Emit one stage, preceded by the parse_json extends its expressions need."""
        if self.pending_json:
            parts = [f"{self.parsed_json[c]} = parse_json({render_name(c)})" for c in self.pending_json]
            self.lines.append("| extend " + ", ".join(parts))
            self.pending_json = []
        self.lines.append("| " + text)

    def check_names(self, stage: ir.Stage) -> None:
        """On table rows a source field is read from its table column: a column the rule assigns under that
        column's name would replace what later stages read as the source field."""
        physical = {**{v: k for k, v in self.binding.json_columns.items()},
                    **{v: k for k, v in self.binding.columns.items()}}
        for n in ir.assigned_names(stage):
            if n in physical and physical[n] != n:
                raise self.fail(f"the column {n!r} would replace the {self.binding.table} column that holds "
                                f"{physical[n]!r}; give it another name")

    # ------------------------------------------------------------------ stages
    def stage(self, stage: LoweringStage) -> None:
        if isinstance(stage, Drop):
            self.emit("project-away " + ", ".join(render_name(c) for c in stage.columns))
            for c in stage.columns:
                self.scope.computed.pop(c, None)
            return
        if self.scope.from_table:
            self.check_names(stage)
        match stage:
            case ir.Filter(predicate=p):
                if isinstance(p, ir.And) and _has_any(p) and not all(_has_any(o) for o in p.operands):
                    # the conjuncts without arrays first: fewer rows for mv-apply to expand
                    plain = tuple(o for o in p.operands if not _has_any(o))
                    self.emit("where " + self.predicate(plain[0] if len(plain) == 1 else ir.And(plain)))
                    rest = tuple(o for o in p.operands if _has_any(o))
                    p = rest[0] if len(rest) == 1 else ir.And(rest)
                self.any_levels, self.any_flags = [[]], {}
                text = self.predicate(p)
                hoisted = self.any_levels.pop()
                for op in hoisted:
                    self.emit(op)
                self.emit("where " + text)
                if self.any_flags:
                    self.emit("project-away " + ", ".join(self.any_flags.values()))
                self.any_flags = {}
            case ir.Extend(assignments=assigns):
                self.extend(assigns)
            case ir.Aggregate():
                self.aggregate(stage)
            case ir.EventAggregate():
                self.event_aggregate(stage)
            case ir.Lookup():
                self.lookup(stage)
            case ir.Rename(renames=renames):
                olds = [self.value(ir.Column(o, (), Type.ANY)) for o, _ in renames]
                if any(o.field is None for o in olds):  # a path into JSON: there is no column to rename
                    raise self.fail("rename of a field inside a JSON column: use extend")
                self.emit(
                    "project-rename " + ", ".join(f"{render_name(n)} = {o.text}" for (_, n), o in zip(renames, olds))
                )
                for (o, n), out in zip(renames, olds):
                    self.scope.computed.pop(o, None)
                    self.scope.computed[n] = out.type
            case ir.Project(columns=cols):
                types = {c: self.column_type(c) for c in cols}
                self.emit("project " + ", ".join(self.column_ref(c) for c in cols))
                self.scope = Scope(types, from_table=False)
            case ir.Sort(keys=keys):
                self.emit(
                    "sort by "
                    + ", ".join(
                        f"{self.value(k.expr).text} {'desc nulls last' if k.descending else 'asc nulls first'}"
                        for k in keys
                    )
                )
            case ir.Limit(count=n):
                self.emit(f"take {n}")
            case ir.Expand():
                self.expand(stage)
            case ir.Join():
                self.join(stage)
            case _:
                raise self.fail(f"no KQL for stage {type(stage).__name__}")

    def join(self, stage: ir.Join) -> None:
        """`join kind=K (right) on $left.a == $right.b` (docs/semantics.md decision 71). The right side ends with a
        `project` naming its columns as the IR's outputs, so Kusto never renames one itself; a right key that may be
        empty is kept out first (an IR null key matches nothing, an empty Kusto string matches another)."""
        sub = replace(self.rule, pipeline=stage.right)
        try:
            bound = bind(sub, FEATURES, self.binding.name)
        except CompileError:
            bound = bind(sub, FEATURES, None)
        assert bound.binding is not None
        low = KqlLowering(sub, bound.binding, bound.stages, counter=self.counter)
        right = low.query().split("\n")
        self.counter = low.counter
        self.lets.extend(x for x in right if x.startswith("let "))
        body = [x for x in right if not x.startswith("let ")]
        semi = stage.kind in (ir.JoinKind.LEFTSEMI, ir.JoinKind.LEFTANTI)
        out_of = dict(stage.outputs)
        right_keys: list[str] = []
        hidden: dict[str, str] = {}  # a right key that is no output: a temporary, dropped after the join
        for _, col in stage.keys:
            if not semi and col not in out_of and col not in hidden:
                hidden[col] = self.fresh("siemforge_rkey")
            right_keys.append(out_of.get(col) or hidden.get(col) or col)
        types = {c: low.column_type(c) for c in [*(c for c, _ in stage.outputs), *hidden]} if not semi else {}
        if semi:
            keys = list(dict.fromkeys(c for _, c in stage.keys))
            body.append("| project " + ", ".join(low.column_ref(c) for c in keys))
        else:
            physical = set(self.binding.schema) if self.scope.from_table else set()
            for _, alias in stage.outputs:
                if alias in physical:
                    raise self.fail(f"the joined column {alias!r} is also a column of the {self.binding.table} "
                                    "table, which Kusto would rename; give it another name on the right side")
            body.append("| project " + ", ".join(render_name(c) if c == a else f"{render_name(a)} = {render_name(c)}"
                                                 for c, a in [*stage.outputs, *hidden.items()]))
        for (_, col), name in zip(stage.keys, right_keys):
            ty = types.get(col) or low.column_type(col)
            if ty == "dynamic":
                raise self.fail(f"join key {col!r} is dynamic on the right side: Kusto joins on scalar values")
            if stage.empty_keys_match and ty != "string":
                raise self.fail(f"join key {col!r} is a {ty}: an empty key matches itself only among strings here")
            if not stage.empty_keys_match:  # an empty Kusto string matches itself; an IR null matches nothing
                body.append(f"| where isnotempty({render_name(name)})")
        lefts: list[str] = []
        temps: list[str] = []
        for left, _ in stage.keys:
            v = self.value(left)
            if v.type == "dynamic":
                raise self.fail("this join key is dynamic: Kusto joins on scalar values", left)
            if v.field is not None:
                lefts.append(render_name(v.field))
            else:
                temp = self.fresh("siemforge_key")
                self.emit(f"extend {temp} = {v.text}")
                lefts.append(temp)
                temps.append(temp)
        cond = ", ".join(r if l == r else f"$left.{l} == $right.{r}"
                         for l, r in zip(lefts, (render_name(n) for n in right_keys)))
        inner = "\n    ".join(body)
        self.emit(f"join kind={stage.kind.value} (\n    {inner}\n    ) on {cond}")
        if temps or hidden:
            self.emit("project-away " + ", ".join([*temps, *hidden.values()]))
        for col, alias in stage.outputs:
            self.scope.computed[alias] = types[col]

    def expand(self, stage: ir.Expand) -> None:
        """mv-expand keeps a null's row and drops an empty array's, as the IR (docs/semantics.md decision 62); a
        value KQL does not hold as dynamic is one element, as the IR has any non-array value."""
        v = self.value(stage.expr)
        text = v.text if v.type == "dynamic" else f"pack_array({v.text})"
        kql_type = _EXPAND_KQL_TYPES[stage.type]
        typed = "" if kql_type == "dynamic" else f" to typeof({kql_type})"
        limit = "" if stage.limit is None else f" limit {stage.limit}"
        self.emit(f"mv-expand {render_name(stage.name)} = {text}{typed}{limit}")
        self.scope.computed[stage.name] = kql_type

    def column_ref(self, name: str) -> str:
        """A top-level column by its IR name: computed columns by name, table columns through the binding."""
        if name in self.scope.computed or not self.scope.from_table:
            return render_name(name)
        ref = self.resolve(name, ())
        if ref is None:
            raise self.fail(f"field {name!r} has no column in the {self.binding.table} table", code="unmapped-field")
        if ref.column == name:
            return render_name(name)
        text = self.column(ir.Column(name, (), Type.ANY)).text
        declared = _IR_TO_KQL.get(self.source_fields().get(name, Type.ANY))
        if ref.json_text and declared is not None:  # a member of a dynamic column: the field's own type, not dynamic
            text = f"to{declared}({text})"
        return f"{render_name(name)} = {text}"

    def source_fields(self) -> dict[str, Type]:
        from siemforge.compiler.sources import builtin_sources

        src = builtin_sources().get(self.binding.source)
        return dict(src.fields) if src is not None else {}

    def resolve(self, name: str, path: tuple[str | int, ...]) -> ColumnRef | None:
        """The binding's column for a source field; a computed one is extended at the query's head when read."""
        ref = self.binding.resolve(name, path)
        if ref is not None and not ref.json_text and ref.column in computed(self.binding):
            self.used_computed.add(ref.column)
        return ref

    def column_type(self, name: str) -> str:
        if name in self.scope.computed:
            return self.scope.computed[name]
        ref = self.binding.resolve(name, ()) if self.scope.from_table else None
        if ref is not None and ref.json_text:
            return _IR_TO_KQL.get(self.source_fields().get(name, Type.ANY), ref.type)
        return ref.type if ref is not None else "dynamic"

    def extend(self, assigns: tuple[ir.Assignment, ...]) -> None:
        lowered = [(a.name, self.value(a.expr)) for a in assigns]  # parallel: compiler.lowering.parallel_extend
        self.emit("extend " + ", ".join(f"{render_name(n)} = {o.text}" for n, o in lowered))
        for n, o in lowered:
            self.scope.computed[n] = o.type

    def aggregation(self, a: ir.Aggregation) -> AggLowered:
        """`name = agg(...)`, the extends to run after the summarize and the temporaries to drop then."""
        name = render_name(a.name)
        post: list[str] = []
        arg = self.value(a.arg) if a.arg is not None else None
        present = None
        if arg is not None:
            present = f"isnotempty({arg.text})" if arg.type in ("string", "dynamic") else f"isnotnull({arg.text})"
        match a.fn:
            case ir.AggFn.COUNT:
                return AggLowered((f"{name} = count()" if arg is None else f"{name} = countif({present})"), post)
            case ir.AggFn.DCOUNT:  # exact below dcount's error-free range (docs/semantics.md decision 10)
                assert arg is not None and present is not None
                return AggLowered(f"{name} = {distinct_count(arg, present)}", post)
            case ir.AggFn.MIN | ir.AggFn.MAX:
                assert arg is not None
                if arg.type in ("long", "real", "datetime", "timespan", "bool"):  # min/max skip nulls already
                    return AggLowered(f"{name} = {a.fn.value}({arg.text})", post)
                fn = "minif" if a.fn is ir.AggFn.MIN else "maxif"  # an empty string is a missing value
                return AggLowered(f"{name} = {fn}({arg.text}, {present})", post)
            case ir.AggFn.SUM | ir.AggFn.AVG:
                assert arg is not None
                text = arg.text if arg.type in ("long", "real", "timespan") else f"todouble({arg.text})"
                return AggLowered(f"{name} = {a.fn.value}({text})", post)
            case ir.AggFn.STDEV | ir.AggFn.STDEVP:  # decision 85: the count guards what KQL leaves unsaid
                assert arg is not None
                text = arg.text if arg.type in ("long", "real") else f"todouble({arg.text})"
                n = self.fresh("siemforge_n")
                least = 2 if a.fn is ir.AggFn.STDEV else 1
                post.append(f"{name} = iff({n} >= {least}, {name}, real(null))")
                return AggLowered(f"{name} = {a.fn.value}({text}), {n} = countif(isnotnull({text}))", post, [n])
            case ir.AggFn.VALUES if a.each is not None:  # decision 87: the scalars at a path of every element
                assert arg is not None
                e, vals = self.fresh("siemforge_e"), self.fresh("siemforge_values")
                member = e + "".join(f"[{m}]" if isinstance(m, int) else f"[{render_string_literal(m)}]"
                                     for m in a.each)
                # a leading null element: every row gives the subquery a row, so that summarize keeps every row
                # whatever mv-apply does with an empty or missing array; the null is no value
                array = f'array_concat(dynamic([null]), iff(gettype({arg.text}) == "array", {arg.text}, dynamic([])))'
                self.emit(f"mv-apply {e} = {array} to typeof(dynamic) on (summarize {vals} = make_list_if({member}, "
                          f'gettype({member}) !in ("array", "dictionary", "null")))')
                post.append(f"{name} = array_sort_asc({name})")
                return AggLowered(f"{name} = make_set({vals}{_cap(a)})", post)
            case ir.AggFn.VALUES:
                assert arg is not None
                post.append(f"{name} = array_sort_asc({name})")
                if arg.type == "dynamic":  # make_set takes an array's elements (decision 87): the value kept whole
                    return AggLowered(f"{name} = make_set_if(pack_array({arg.text}), {present}{_cap(a)})", post)
                return AggLowered(f"{name} = make_set_if({arg.text}, {present}{_cap(a)})", post)
            case ir.AggFn.PERCENTILE:  # exact nearest rank (percentile() is an estimate): docs/semantics.md 20
                assert arg is not None and a.percentile is not None
                values = self.fresh("siemforge_values")
                text = arg.text if arg.type in ("long", "real") else f"todouble({arg.text})"
                post.append(f"{name} = todouble(array_sort_asc({values})[max_of(toint(ceiling(array_length({values}) "
                            f"* {render_real(a.percentile)} / 100.0)), 1) - 1])")
                return AggLowered(f"{values} = make_list_if({text}, isnotnull({text}))", post, [values])
            case ir.AggFn.EARLIEST | ir.AggFn.LATEST:
                assert arg is not None
                time = self.value(ir.Column(self.time_name(), (), Type.DATETIME)).text
                tmp = self.fresh("siemforge_time")
                fn = "arg_min" if a.fn is ir.AggFn.EARLIEST else "arg_max"
                return AggLowered(f"({tmp}, {name}) = {fn}({time}, {arg.text})", post, [tmp])
        raise self.fail(f"no KQL for aggregation {a.fn.value}")

    def time_name(self) -> str:
        col = self.rule.pipeline.source.time_column
        if col is None:
            raise self.fail("earliest()/latest() need an event time")
        return col

    def by_value(self, expr: ir.Expr) -> tuple[str, str]:
        """A group key's text and KQL type. KQL cannot group by a `dynamic` value (Kusto.Language KS116); a key the
        IR types as a scalar but the table holds in a dynamic column (a WindowsEvent EventData member) is cast to
        that scalar, as the executor compares it."""
        v = self.value(expr)
        kql_type = _IR_TO_KQL.get(expr.type)
        if v.type == "dynamic" and kql_type is not None:
            return f"to{kql_type}({v.text})", kql_type
        if v.type == "dynamic":  # a JSON value of no one type (a member, an object): its text (decision 112)
            return f"tostring({v.text})", "string"
        return v.text, v.type

    def by_list(self, by: tuple[ir.Assignment, ...]) -> list[str]:
        out = []
        for b in by:
            text, _ = self.by_value(b.expr)
            if text == render_name(b.name):
                out.append(text)
            else:
                out.append(f"{render_name(b.name)} = {text}")
        return out

    def aggregations(self, aggs: tuple[ir.Aggregation, ...]) -> list[AggLowered]:
        """Each aggregation lowered; arg_max/arg_min of one key are one call, so that every column they return is
        read from the same row (decision 78): `arg_max(k, a, b)` over columns extended first, renamed after."""
        out: list[AggLowered] = []
        done: set[tuple[ir.AggFn, ir.Expr]] = set()
        for a in aggs:
            if a.key is None:
                out.append(self.aggregation(a))
                continue
            group = (a.fn, a.key)
            if group in done:
                continue
            done.add(group)
            members = [x for x in aggs if x.key is not None and (x.fn, x.key) == group]
            # the key and every value are columns first, and the outputs (named after them) are renamed after: the
            # tuple form `(k, a) = arg_max(…)` names them too, but duckdb-kql keeps the source names there
            key_value = self.value(a.key)
            if key_value.type == "string" and not nullability.non_null(a.key, self.facts):
                raise self.fail(f"{a.fn.value}() by text that may be missing: KQL compares it as \"\", the IR "
                                "skips the row", a.key)
            key = self.fresh("siemforge_key")
            temps = [self.fresh("siemforge_arg") for _ in members]
            # a row without a key gives no value, so that a group without one has none (KQL picks a row there)
            values = [f"{t} = iff(isnull({key_value.text}), {_null_of(v.type)}, {v.text})"
                      for t, x in zip(temps, members) if x.arg is not None for v in [self.value(x.arg)]]
            self.emit("extend " + ", ".join([f"{key} = {key_value.text}", *values]))
            out.append(AggLowered(f"{a.fn.value}({key}, {', '.join(temps)})",
                                  [f"{render_name(x.name)} = {t}" for t, x in zip(temps, members)], [key, *temps]))
        return out

    def aggregate(self, stage: ir.Aggregate) -> None:
        aggs = self.aggregations(stage.aggregations)
        by = self.by_list(stage.by)
        by_types = {b.name: self.by_value(b.expr)[1] for b in stage.by}
        text = "summarize " + ", ".join(a.text for a in aggs)
        if by:
            text += " by " + ", ".join(by)
        self.emit(text)
        for after in _after(aggs):
            self.emit(after)
        self.scope = Scope(
            {**by_types, **{a.name: _IR_TO_KQL.get(a.type, "dynamic") for a in stage.aggregations}}, from_table=False
        )

    def event_aggregate(self, stage: ir.EventAggregate) -> None:
        """KQL has no eventstats: name the rows so far, summarize them, and join the aggregates back."""
        name = self.fresh("siemforge_rows")
        body = "\n".join(self.lines)
        self.lets.append(f"let {name} = {body};")
        self.lines = [name]
        temps = {a.name: self.fresh("siemforge_agg") for a in stage.aggregations}
        if any(a.key is not None for a in stage.aggregations):
            raise self.fail("arg_max()/arg_min() in eventstats: KQL has no per-row form of them here", stage)
        if any(a.each is not None for a in stage.aggregations):
            raise self.fail("values() of every element in eventstats: the elements are read by an mv-apply of the "
                            "rows, which the joined side does not have", stage)
        renamed = tuple(ir.Aggregation(temps[a.name], a.fn, a.arg, a.type) for a in stage.aggregations)
        aggs = [self.aggregation(a) for a in renamed]
        if not stage.by:  # one group, the whole table: each aggregate is one scalar (docs/semantics.md decision 42)
            scalars = []
            for a, agg in zip(stage.aggregations, aggs):
                after = _after([agg])
                steps = ([f"summarize {agg.text}", *after, f"project {temps[a.name]}"] if after
                         else [f"summarize {agg.text.removeprefix(temps[a.name] + ' = ')}"])  # its one column
                scalars.append(f"{render_name(a.name)} = toscalar({name} | {' | '.join(steps)})")
            self.emit("extend " + ", ".join(scalars))
            for a in stage.aggregations:
                self.scope.computed[a.name] = _IR_TO_KQL.get(a.type, "dynamic")
            return
        keys = [self.fresh("siemforge_key") for _ in stage.by] or [self.fresh("siemforge_key")]
        key_values = [self.value(b.expr).text for b in stage.by] or ["1"]
        # both sides get the same key columns; strings are never null in KQL, other keys are made text
        left_keys = ", ".join(f"{k} = tostring({v})" for k, v in zip(keys, key_values))
        right = f"{name} | extend {left_keys} | summarize {', '.join(a.text for a in aggs)} by {', '.join(keys)}"
        right += "".join(" | " + after for after in _after(aggs))
        self.emit(f"extend {left_keys}")
        self.emit(f"join kind=leftouter ({right}) on {', '.join(keys)}")
        self.emit("extend " + ", ".join(f"{render_name(a.name)} = {temps[a.name]}" for a in stage.aggregations))
        drop = [*keys, *(k + "1" for k in keys), *temps.values()]
        self.emit("project-away " + ", ".join(drop))
        for a in stage.aggregations:
            self.scope.computed[a.name] = _IR_TO_KQL.get(a.type, "dynamic")

    def lookup(self, stage: ir.Lookup) -> None:
        """A lookup table is a Sentinel watchlist named after the table; its columns arrive as text."""
        t = stage.table
        types = dict(zip(t.columns, t.types))
        conv = {Type.INT: "tolong", Type.REAL: "todouble", Type.BOOL: "tobool", Type.DATETIME: "todatetime"}
        cols = [c for _, c in stage.keys] + [c for c, _ in stage.outputs if c not in {k for _, k in stage.keys}]
        project = []
        key_names: list[tuple[str, str]] = []
        for expr, col in stage.keys:
            left = self.value(expr)
            right_name = col
            if not (
                isinstance(expr, ir.Column)
                and not expr.path
                and expr.name == col
                and (col in self.scope.computed or not self.scope.from_table)
            ):
                right_name = self.fresh("siemforge_key")
                self.emit(f"extend {right_name} = tostring({left.text})")
                self.scope.computed[right_name] = "string"
            key_names.append((right_name, col))
        for c in cols:
            key_alias = next((k for k, col in key_names if col == c), None)
            out_alias = next((a for col, a in stage.outputs if col == c), None)
            f = conv.get(types.get(c, Type.STRING), "tostring")
            if key_alias is not None:
                project.append(f"{render_name(key_alias)} = tostring({render_name(c)})")
            if out_alias is not None and (key_alias is None or out_alias != key_alias):
                project.append(f"{render_name(out_alias)} = {f}({render_name(c)})")
        rows = self.tables.get(t.name) or f"_GetWatchlist({render_string_literal(t.name)})"
        watchlist = f"{rows} | project {', '.join(project)}"
        self.emit(f"lookup kind=leftouter ({watchlist}) on {', '.join(render_name(k) for k, _ in key_names)}")
        for col, alias in stage.outputs:
            self.scope.computed[alias] = _IR_TO_KQL.get(types.get(col, Type.STRING), "string")

    # ------------------------------------------------------------------ expressions
    def check_mapped_values(self, e: ir.Expr) -> None:
        """A field the binding computes with a value map holds only the map's values: an equality with any other
        value would be false on every row, so the rule is refused rather than compiled to a test that never holds
        (LinuxAuditLog: auditd's EXECVE and PATH records are folded into AUOMS_EXECVE rows, `type` is SYSCALL)."""
        match e:
            case ir.Compare(op=ir.CmpOp.EQ, left=ir.Column(name=n, path=()), right=ir.Literal(value=str() as v)):
                values: tuple[ir.Expr, ...] = (ir.Literal(v, Type.STRING),)
            case ir.InList(subject=ir.Column(name=n, path=()), values=values):
                pass
            case _:
                return
        if not self.scope.from_table or n in self.scope.computed:
            return
        spec = computed(self.binding).get(n)
        if spec is None or spec.get("kind") != "value_map" or self.binding.resolve(n, ()) is None:
            return
        held = {str(x).lower() for x in spec["map"].values()}
        for lit in values:
            if isinstance(lit, ir.Literal) and isinstance(lit.value, str) and lit.value.lower() not in held:
                raise self.fail(f"field {n!r} is never {lit.value!r} in the {self.binding.table} table (binding "
                                f"{self.binding.name!r} computes it from {spec['column']})", e, code="unmapped-value")

    def predicate(self, e: ir.Expr) -> str:
        out = self.value(e)
        return out.text if out.type == "bool" else f"tobool({out.text})"

    def column(self, c: ir.Column) -> Lowered:
        if c.name in self.scope.computed or not self.scope.from_table:
            t = self.scope.computed.get(c.name, "dynamic")
            if c.path:
                return Lowered(render_name(c.name) + _path(c.path), "dynamic")
            return Lowered(render_name(c.name), t, field=c.name)
        ref = self.resolve(c.name, c.path)
        if ref is None:
            dotted = ".".join([c.name, *(str(p) for p in c.path)])
            raise self.fail(f"field {dotted!r} has no column in the {self.binding.table} table "
                            f"(binding {self.binding.name!r}, {self.binding.file})", c, code="unmapped-field")
        if ref.json_text:
            alias = self.parsed_json.get(ref.column)
            if alias is None:
                alias = self.parsed_json[ref.column] = f"{ref.column}Json"
                self.pending_json.append(ref.column)
            return Lowered(alias + _path(ref.path), "dynamic", field=None if ref.path else alias)
        if ref.path and ref.type == "dynamic":  # a path into a dynamic column (SigninLogs' DeviceDetail.trustType)
            return Lowered(render_name(ref.column) + _path(ref.path), "dynamic")
        if ref.path:
            raise self.fail(f"{c.name}: column {ref.column} is a {ref.type}; it has no member {ref.path[0]!r}", c)
        return Lowered(render_name(ref.column), ref.type, field=ref.column)

    def value(self, e: ir.Expr) -> Lowered:
        try:
            return self.node_value(e)
        except CompileError as err:  # a literal KQL cannot spell (render.py) points at the rule's text
            raise lowering.placed(self.rule, FEATURES, err, e) from None

    def node_value(self, e: ir.Expr) -> Lowered:  # noqa: C901 - one case per node type
        self.check_mapped_values(e)
        match e:
            case ir.Literal(value=v, type=t):
                return literal(v, t)
            case ir.Column():
                return self.column(e)
            case ir.Index(base=b, key=k):
                base = self.value(b)
                return Lowered(base.text + _path((k,)), "dynamic")
            case ir.Compare():
                return self.compare(e)
            case ir.StringMatch(op=op, subject=s, pattern=p, case_sensitive=cs):
                stored = self.stored_json_text(s, op, p)
                subject = stored if stored is not None else self.text(s)
                return Lowered(f"{subject} {op.value}{'_cs' if cs else ''} {self.text(p)}", "bool")
            case ir.WildcardMatch(subject=s, pattern=p, case_sensitive=cs):
                # a missing value never matches (IR), but KQL's missing string is "", which `*` matches
                subject = self.text(s)
                if all(x is ir.Wild.ANY for x in p):
                    return Lowered(f"isnotempty({subject})", "bool")
                regex = f"{subject} matches regex {render_regex_literal(wildcard_to_re2(p, cs))}"
                if _matches_empty(p):
                    return Lowered(f"(isnotempty({subject}) and {regex})", "bool")
                return Lowered(regex, "bool")
            case ir.RegexMatch(subject=s, pattern=p, flags=flags):
                check_re2(p, self, e)
                prefix = "".join(f"(?{f})" for f in sorted(flags))
                subject = self.text(s)
                regex = f"{subject} matches regex {render_regex_literal(prefix + p)}"
                if _re_matches_empty(prefix + p):
                    return Lowered(f"(isnotempty({subject}) and {regex})", "bool")
                return Lowered(regex, "bool")
            case ir.CidrMatch(subject=s, networks=nets):
                subject = self.text(s)
                parts = []
                for n in nets:
                    fn = (
                        "ipv6_is_in_range" if ipaddress.ip_network(n, strict=False).version == 6 else "ipv4_is_in_range"
                    )
                    parts.append(f"{fn}({subject}, {render_string_literal(n)})")
                return Lowered(parts[0] if len(parts) == 1 else "(" + " or ".join(parts) + ")", "bool")
            case ir.InList(subject=s, values=vals, case_sensitive=cs):
                return self.in_list(s, vals, cs)
            case ir.Keyword(pattern=p, case_sensitive=cs):
                texts = [x for x in p if isinstance(x, str)]
                if len(texts) != 1 or p != (ir.Wild.ANY, texts[0], ir.Wild.ANY):
                    raise self.fail("a keyword with inner wildcards has no KQL form", e)
                return Lowered(f"* {'contains_cs' if cs else 'contains'} {render_string_literal(texts[0])}", "bool")
            case ir.Not(operand=o):
                return Lowered(self.negate(o), "bool")
            case ir.And(operands=ops):
                return Lowered(join_balanced("and", [self.predicate(o) for o in ops]), "bool")
            case ir.Or(operands=ops):
                return Lowered(join_balanced("or", [self.predicate(o) for o in ops]), "bool")
            case ir.Arith(op=op, left=l, right=r, type=t):
                lo, ro = self.numeric(l), self.numeric(r)
                return Lowered(f"({lo} {op.value} {ro})", _IR_TO_KQL.get(t, "real"))
            case ir.Negate(operand=o):
                return Lowered(f"-{self.numeric(o)}", _IR_TO_KQL.get(e.type, "real"))
            case ir.Case(branches=bs, default=d):
                branch_values = [self.value(v) for _, v in bs] + [self.value(d)]
                kind = _common(branch_values)
                texts = [self.cast(v, kind) for v in branch_values]
                if len(bs) == 1:
                    return Lowered(f"iff({self.predicate(bs[0][0])}, {texts[0]}, {texts[1]})", kind)
                parts = [f"{self.predicate(c)}, {t}" for (c, _), t in zip(bs, texts)]
                return Lowered(f"case({', '.join(parts)}, {texts[-1]})", kind)
            case ir.Call():
                return self.call(e)
            case ir.Element(path=path):
                if not self.elements:
                    raise self.fail("an array element outside an any-element test", e)
                return Lowered(self.elements[-1] + _path(path), "dynamic")
            case ir.AnyElement():
                return self.any_element(e)
        raise self.fail(f"no KQL for {type(e).__name__}", e)

    def any_element(self, e: ir.AnyElement) -> Lowered:
        """Some element satisfies the predicate (semantics decision 28): an `mv-apply` before the `where` counts, row
        by row, the elements that satisfy it. The array is preceded by one null element that is never counted, so the
        subquery sees at least one row whatever the value holds (null, a non-array, an empty array: zero elements)
        and its summarize keeps every row."""
        if not self.any_levels:
            raise self.fail("an any-element test is lowered only in a filter (where) in KQL", e)
        flag = self.any_flags.get(e)
        if flag is not None:
            return Lowered(f"{flag} > 0", "bool")
        coll = self.value(e.collection).text
        element, index, flag = self.fresh("siemforge_elem"), self.fresh("siemforge_index"), self.fresh("siemforge_any")
        self.elements.append(element)
        self.any_levels.append([])
        try:
            pred = self.predicate(e.predicate)
            inner = self.any_levels[-1]
        finally:
            self.any_levels.pop()
            self.elements.pop()
        items = f'array_concat(dynamic([null]), iff(gettype({coll}) == "array", {coll}, dynamic([])))'
        sub = " | ".join([*inner, f"summarize {flag} = countif({index} > 0 and {pred})"])
        self.any_levels[-1].append(f"mv-apply with_itemindex={index} {element} = {items} to typeof(dynamic) on "
                                   f"({sub})")
        if len(self.any_levels) == 1:
            self.any_flags[e] = flag
        return Lowered(f"{flag} > 0", "bool")

    def stored_json_text(self, s: ir.Expr, op: ir.StrOp, p: ir.Expr) -> str | None:
        """The table's own string column for `contains` in a whole JSON value the table stores as text (AWSCloudTrail's
        RequestParameters), where that is the same test as in the value's JSON text (docs/semantics.md decision 43):
        a word that no JSON serialisation splits, escapes or could find in a number; else None."""
        if not (op is ir.StrOp.CONTAINS and isinstance(s, ir.Column) and not s.path and isinstance(p, ir.Literal)
                and isinstance(p.value, str) and JSON_SAFE_WORD.fullmatch(p.value)):
            return None
        if s.name in self.scope.computed or not self.scope.from_table:
            return None
        ref = self.resolve(s.name, s.path)
        if ref is None or not ref.json_text or ref.path:
            return None
        return render_name(ref.column)

    def text(self, e: ir.Expr) -> str:
        """An expression as a string (string matches read text; JSON values are made text first)."""
        o = self.value(e)
        return o.text if o.type == "string" else f"tostring({o.text})"

    def numeric(self, e: ir.Expr) -> str:
        o = self.value(e)
        return o.text if o.type in ("long", "real", "datetime", "timespan") else f"todouble({o.text})"

    def cast(self, o: Lowered, kind: str) -> str:
        if o.type == kind or kind == "dynamic" or (kind == "real" and o.type == "long"):  # long promotes to real
            return o.text
        return {
            "string": f"tostring({o.text})",
            "long": f"tolong({o.text})",
            "real": f"todouble({o.text})",
            "bool": f"tobool({o.text})",
            "datetime": f"todatetime({o.text})",
            "timespan": f"totimespan({o.text})",
        }.get(kind, o.text)

    def compare(self, e: ir.Compare) -> Lowered:
        left, right = self.value(e.left), self.value(e.right)
        kind = _compare_kind(left, right)
        lt, rt = self.cast(left, kind), self.cast(right, kind)
        if kind == "string":
            op = {ir.CmpOp.EQ: "==" if e.case_sensitive else "=~", ir.CmpOp.NE: "!=" if e.case_sensitive else "!~"}.get(
                e.op, e.op.value
            )
            return Lowered(f"{lt} {op} {rt}", "bool")
        if e.op is ir.CmpOp.NE:  # strings are never null in KQL: not guarded
            nulls = lowering.null_guards(FEATURES, e, lt, rt, self.facts)
            return Lowered("(" + " or ".join([*nulls, f"{lt} != {rt}"]) + ")" if nulls else f"{lt} != {rt}", "bool")
        return Lowered(f"{lt} {e.op.value} {rt}", "bool")

    def in_list(self, s: ir.Expr, vals: tuple[ir.Expr, ...], cs: bool, negated: bool = False) -> Lowered:
        subject = self.value(s)
        outs = [self.value(v) for v in vals]
        kind = _common([subject, *outs]) if all(isinstance(v, ir.Literal) for v in vals) else "string"
        if kind == "dynamic":
            kind = "string"
        op = ("!" if negated else "") + ("in" if cs or kind != "string" else "in~")
        return Lowered(f"{self.cast(subject, kind)} {op} ({', '.join(self.cast(o, kind) for o in outs)})", "bool")

    def negate(self, o: ir.Expr) -> str:
        if isinstance(o, ir.StringMatch):
            return f"{self.text(o.subject)} !{o.op.value}{'_cs' if o.case_sensitive else ''} {self.text(o.pattern)}"
        if isinstance(o, ir.InList):
            return self.in_list(o.subject, o.values, o.case_sensitive, negated=True).text
        inner = self.predicate(o)
        if may_be_null(o, self):  # not(null) is null, which `where` drops; the IR's not(false) is true
            return f"not(coalesce({inner}, false))"
        return f"not({inner})"

    def call(self, e: ir.Call) -> Lowered:
        """A function call through the target's table (FUNCTIONS; GENERIC names are KQL's own, same meaning)."""
        outs = [self.value(a) for a in e.args]
        lower = FUNCTIONS.get(e.fn)
        if lower is not None:
            return lower(self, e, outs)
        if e.fn in GENERIC:
            return Lowered(f"{e.fn}({', '.join(o.text for o in outs)})", _IR_TO_KQL.get(e.type, "dynamic"))
        raise self.fail(UNSUPPORTED.get(e.fn, f"no KQL for function {e.fn}()"), e)


# a word whose occurrences in a JSON text lie inside one string (or true/false/null) token, spelled the same in every
# serialisation: letters, digits and `_` only (never escaped, never whitespace or punctuation), starting with a letter
# that cannot continue an escape (`\n`, `\t`, `\uXXXX` …) nor appear in a number (`1e5`)
JSON_SAFE_WORD = re.compile(r"[g-mo-qsv-zG-MO-QSV-Z_][A-Za-z0-9_]*")


def _has_any(e: ir.Expr) -> bool:
    return any(isinstance(x, ir.AnyElement) for x in ir.walk(e))


def _after(aggs: list[AggLowered]) -> list[str]:
    """The stages that finish a summarize's aggregations: their extends, then dropping their temporaries."""
    extends = [p for a in aggs for p in a.after]
    drops = [d for a in aggs for d in a.drops]
    out = [f"extend {', '.join(extends)}"] if extends else []
    return out + ([f"project-away {', '.join(drops)}"] if drops else [])


def may_be_null(e: ir.Expr, low: KqlLowering) -> bool:
    """Can this predicate evaluate to null in KQL (a comparison of a non-string value that may be null: not one the
    nullability pass proves non-null, decision 40)?"""
    match e:
        case ir.Compare(left=l, right=r) | ir.Arith(left=l, right=r):
            return any(not nullability.non_null(x, low.facts) and low.value(x).type not in ("string",)
                       for x in (l, r))
        case ir.InList(subject=s):
            return low.value(s).type not in ("string", "dynamic")
        case ir.And(operands=ops) | ir.Or(operands=ops):
            return any(may_be_null(o, low) for o in ops)
        case ir.Not(operand=o):
            return may_be_null(o, low)
        case ir.Call(fn=fn) if fn in ("tobool",):
            return True
        case ir.Column() | ir.Index() | ir.Case():
            return not nullability.non_null(e, low.facts)
    return False


def _null_of(kql_type: str) -> str:
    """KQL's null of a type (a string has none: "" is its missing value, decision 2)."""
    return '""' if kql_type == "string" else f"{kql_type}(null)"


def literal(v: object, t: Type) -> Lowered:
    if v is None:
        return Lowered("dynamic(null)", "dynamic", null=True)
    if isinstance(v, bool):
        return Lowered("true" if v else "false", "bool")
    if isinstance(v, int):
        return Lowered(str(v), "long")
    if isinstance(v, float):
        return Lowered(render_real(v), "real")
    if isinstance(v, str):
        return Lowered(render_string_literal(v), "string")
    from datetime import datetime, timedelta

    if isinstance(v, datetime):
        return Lowered(render_datetime(v), "datetime")
    if isinstance(v, timedelta):
        return Lowered(render_timespan(v), "timespan")
    raise error(f"no KQL literal for {v!r}")


# dcount() counts exactly up to this many distinct values at this accuracy level, then estimates (HyperLogLog)
# https://learn.microsoft.com/kusto/query/dcount-aggregation-function#estimation-accuracy
DCOUNT_ACCURACY = 2
DCOUNT_EXACT_BELOW = 8000


def distinct_count(arg: Lowered, present: str) -> str:
    """The IR's exact distinct count (docs/semantics.md decision 10): dcount at the accuracy whose documented
    zero-error range is widest; `dcountif(…, isnotempty(x))` for strings, since "" is a missing value on Sentinel.
    A JSON value has no dcount: its distinct set is counted (exact up to make_set's 1,048,576 values)."""
    if arg.type == "string":
        return f"dcountif({arg.text}, {present}, {DCOUNT_ACCURACY})"
    if arg.type == "dynamic":
        return f"array_length(make_set_if({arg.text}, {present}))"
    return f"dcount({arg.text}, {DCOUNT_ACCURACY})"  # dcount skips nulls


def _path(path: tuple[str | int, ...]) -> str:
    out = ""
    for seg in path:
        if isinstance(seg, int):
            out += f"[{seg}]"
        elif re.match(r"[A-Za-z_][A-Za-z0-9_]*\Z", seg):
            out += f".{seg}"
        else:
            out += f"[{render_string_literal(seg)}]"
    return out


def _compare_kind(a: Lowered, b: Lowered) -> str:
    """The type both sides of a comparison are brought to (the IR compares numeric text as a number)."""
    types = {a.type, b.type}
    for k in ("datetime", "timespan", "bool"):
        if k in types:
            return k
    if types & {"long", "real"}:
        return "real" if "real" in types or types - {"long"} else "long"
    return "string"


def _common(outs: list[Lowered]) -> str:
    types = [o.type for o in outs if not o.null]
    if not types:
        return "dynamic"
    if all(t == types[0] for t in types):
        return types[0]
    if set(types) <= {"long", "real"}:
        return "real"
    if "string" in types:
        return "string"
    return "dynamic"


def _matches_empty(pattern: ir.WildcardPattern) -> bool:
    return all(x is ir.Wild.ANY or x == "" for x in pattern)


def _re_matches_empty(pattern: str) -> bool:
    try:
        return re.search(pattern, "") is not None
    except re.error:
        return True


def wildcard_to_re2(pattern: ir.WildcardPattern, case_sensitive: bool) -> str:
    return ("(?s)^" if case_sensitive else "(?is)^") + lowering.wildcard_body(pattern, re.escape) + "$"


def check_re2(pattern: str, low: KqlLowering, at: object = None) -> None:
    """KQL runs RE2: a pattern RE2 cannot compile is a refusal naming the construct, never a silent change (the
    executor's RE2 check, which runs it too)."""
    try:
        compile_re2(pattern)
    except RegexRefused as exc:
        raise low.fail(f"KQL runs RE2, which cannot run the regex {pattern!r}: {exc}", at) from None


# ------------------------------------------------------------------ functions (compiler/functions.py), by name
KqlCall = Callable[[KqlLowering, ir.Call, list[Lowered]], Lowered]


def _null_test(low: KqlLowering, e: ir.Call, outs: list[Lowered]) -> Lowered:
    o = outs[0]
    if o.type in ("string", "dynamic") and (low.binding.empty_is_missing or o.type == "string"):
        # strings are never null in KQL: a missing string field is empty
        return Lowered(f"{'isempty' if e.fn == 'isnull' else 'isnotempty'}({o.text})", "bool")
    return Lowered(f"{e.fn}({o.text})", "bool")


def _coalesce(low: KqlLowering, e: ir.Call, outs: list[Lowered]) -> Lowered:
    kind = _common(outs)
    return Lowered(f"coalesce({', '.join(low.cast(o, kind) for o in outs)})", kind)


def _of_text(name: str, returns: str) -> KqlCall:
    """`name(…)` with every argument made text first (string functions read text; JSON values are made text)."""
    return lambda low, e, outs: Lowered(f"{name}({', '.join(low.text(a) for a in e.args)})", returns)


def _substring(low: KqlLowering, e: ir.Call, outs: list[Lowered]) -> Lowered:
    return Lowered(f"substring({', '.join([low.text(e.args[0]), *(o.text for o in outs[1:])])})", "string")


def _literal_regex(e: ir.Call, i: int, low: KqlLowering) -> str:
    pattern = e.args[i]
    assert isinstance(pattern, ir.Literal)  # compiler/functions.py: a literal parameter
    check_re2(str(pattern.value), low, e)
    return render_regex_literal(str(pattern.value))


def _replace_regex(low: KqlLowering, e: ir.Call, outs: list[Lowered]) -> Lowered:
    return Lowered(f"replace_regex({low.text(e.args[0])}, {_literal_regex(e, 1, low)}, {low.text(e.args[2])})",
                   "string")


def _extract(low: KqlLowering, e: ir.Call, outs: list[Lowered]) -> Lowered:
    return Lowered(f"extract({_literal_regex(e, 0, low)}, {outs[1].text}, {low.text(e.args[2])})", "string")


def _datetime_diff(low: KqlLowering, e: ir.Call, outs: list[Lowered]) -> Lowered:
    unit = e.args[0]
    assert isinstance(unit, ir.Literal)
    return Lowered(f"datetime_diff({render_string_literal(str(unit.value))}, "
               f"{low.cast(outs[1], 'datetime')}, {low.cast(outs[2], 'datetime')})", "long")


def _from_epoch(low: KqlLowering, e: ir.Call, outs: list[Lowered]) -> Lowered:
    """KQL's function of the same name, given a number (a numeric string is made one)."""
    return Lowered(f"{e.fn}({low.cast(outs[0], 'real')})", "datetime")


def _null_if_empty(low: KqlLowering, e: ir.Call, text: str, subjects: tuple[ir.Expr, ...]) -> Lowered:
    """A KQL string is "" where the IR's is null (decision 2): the IR's null in, null out (decision 76)."""
    empty = [f"isempty({low.text(x)})" for x in subjects if not nullability.non_null(x, low.facts)]
    if not empty:
        return Lowered(text, "long")
    return Lowered(f"iff({' or '.join(empty)}, long(null), {text})", "long")


def _indexof(low: KqlLowering, e: ir.Call, outs: list[Lowered]) -> Lowered:
    return _null_if_empty(low, e, f"indexof({low.text(e.args[0])}, {low.text(e.args[1])})", e.args)


def _indexof_regex(low: KqlLowering, e: ir.Call, outs: list[Lowered]) -> Lowered:
    return _null_if_empty(low, e, f"indexof_regex({low.text(e.args[0])}, {_literal_regex(e, 1, low)})",
                          e.args[:1])


def _bag_pack(low: KqlLowering, e: ir.Call, outs: list[Lowered]) -> Lowered:
    """KQL's own bag_pack (docs/semantics.md decision 36). The IR's `coalesce(s, "")` of a string member is `s`: a
    KQL string is never null. A member KQL holds as a string the IR may hold null (an undeclared field on a string
    column) is made null where empty, as decision 2 reads such a column."""
    parts: list[str] = []
    for i in range(0, len(e.args), 2):
        parts.append(outs[i].text)
        v, o = e.args[i + 1], outs[i + 1]
        match v:
            case ir.Call(fn="coalesce", args=(inner, ir.Literal(value=""))) if low.value(inner).type == "string":
                parts.append(low.value(inner).text)
            case _ if o.type == "string" and not nullability.non_null(v, low.facts):
                parts.append(f"iff(isempty({o.text}), dynamic(null), {o.text})")
            case _:
                parts.append(o.text)
    return Lowered(f"bag_pack({', '.join(parts)})", "dynamic")


FUNCTIONS: dict[str, KqlCall] = {
    "bag_pack": _bag_pack,
    "isnull": _null_test,
    "isnotnull": _null_test,
    "coalesce": _coalesce,
    "toint": lambda low, e, outs: Lowered(f"tolong({outs[0].text})", "long"),
    "tolower": _of_text("tolower", "string"),
    "toupper": _of_text("toupper", "string"),
    "strlen": _of_text("strlen", "long"),
    "substring": _substring,
    "split": _of_text("split", "dynamic"),
    "replace_string": _of_text("replace_string", "string"),
    "replace_regex": _replace_regex,
    "extract": _extract,
    "bin": lambda low, e, outs: Lowered(f"bin({outs[0].text}, {outs[1].text})", outs[0].type),
    "hourofday": lambda low, e, outs: Lowered(f"hourofday({low.cast(outs[0], 'datetime')})", "long"),
    # KQL's dayofweek is a timespan since Sunday; the IR's is 0..6
    "dayofweek": lambda low, e, outs: Lowered(f"toint(dayofweek({low.cast(outs[0], 'datetime')}) / 1d)", "long"),
    "datetime_diff": _datetime_diff,
    # KQL's own parse_json of text (docs/semantics.md decision 75); of a dynamic value the IR has no call
    "parse_json": _of_text("parse_json", "dynamic"),
    "indexof": _indexof,
    "indexof_regex": _indexof_regex,
    # documented for epoch numbers (docs/semantics.md decision 14)
    "unixtime_seconds_todatetime": _from_epoch,
    "unixtime_milliseconds_todatetime": _from_epoch,
}
# KQL's own function of the same name and meaning: `name(arguments)`
GENERIC = frozenset({"isempty", "isnotempty", "tostring", "todouble", "tobool", "todatetime", "array_length",
                     "strcat", "now", "ago"})
UNSUPPORTED: dict[str, str] = {}  # every function has a KQL form


FEATURES = Features("sentinel", "Sentinel", "docs/backends/sentinel.md", sequential_assignment=True,
                    three_valued_logic=True, prunes_columns=True)


CHAIN = 64  # operands one `and`/`or` chain holds before it is grouped


def join_balanced(op: str, parts: list[str]) -> str:
    """`(a op b op …)`; a long chain is grouped in parenthesised runs of CHAIN. Kusto.Language parses a chain as a
    nested tree and refuses one deeper than its safe limit (KS245, e.g. a Sigma list of 300 emoji); `and`/`or` are
    associative, so the grouping keeps the meaning."""
    while len(parts) > CHAIN:
        parts = ["(" + f" {op} ".join(parts[i:i + CHAIN]) + ")" for i in range(0, len(parts), CHAIN)]
    return "(" + f" {op} ".join(parts) + ")"


def computed_kql(spec: dict[str, object]) -> str:
    """A binding's computed field as a KQL expression over its columns (compiler.bindings.COMPUTED_KINDS)."""
    if spec["kind"] == "registry_path":
        key, value = render_name(str(spec["key"])), render_name(str(spec["value"]))
        arms = []
        for long, short in spec["hives"]:  # type: ignore[attr-defined]
            arms.append(f"{key} startswith {render_string_literal(long)}, "
                        f"strcat({render_string_literal(short)}, substring({key}, {len(long)}))")
        hive = f"case({', '.join(arms)}, {key})"
        return f'strcat({hive}, iff(isempty({value}), "", strcat("\\\\", {value})))'
    if spec["kind"] == "audit_field":
        pattern = AUDIT_FIELD_PATTERN.format(key=re.escape(str(spec["key"])))
        found = f'extract({render_regex_literal(pattern)}, 1, {render_name(str(spec["column"]))})'
        return "trim(@'\"', replace_regex(" + found + r', @"^\(null\)$", ""))'
    if spec["kind"] == "value_map":
        col = render_name(str(spec["column"]))
        arms = [f"{col} == {render_string_literal(str(k))}, {render_string_literal(str(v))}"
                for k, v in spec["map"].items()]  # type: ignore[attr-defined]
        return f'case({", ".join(arms)}, "")'
    if spec["kind"] == "member":
        text = f"tostring({render_name(str(spec['column']))}.{render_name(str(spec['member']))})"
        prefix = str(spec.get("strip_prefix") or "")
        if not prefix:
            return text
        return f"iff({text} startswith {render_string_literal(prefix)}, substring({text}, {len(prefix)}), {text})"
    if spec["kind"] == "account":
        domain, name = render_name(str(spec["domain"])), render_name(str(spec["name"]))
        return f'iff(isempty({domain}) or isempty({name}), {name}, strcat({domain}, "\\\\", {name}))'
    if spec["kind"] == "hex":
        col = render_name(str(spec["column"]))
        return f'iff(isnull({col}), "", strcat("0x", tohex({col})))'
    if spec["kind"] == "hashes":
        parts = [f'iff(isempty({render_name(col)}), "", strcat({render_string_literal(label + "=")}, '
                 f'toupper({render_name(col)}), ","))' for label, col in spec["algorithms"]]  # type: ignore[attr-defined]
        return f'trim_end(",", strcat({", ".join(parts)}))'
    data, kind = render_name(str(spec["data"])), render_name(str(spec["type"]))
    names = {"Dword": "Dword", "Qword": "Qword", "Binary": "Binary", **dict(spec.get("types") or {})}  # type: ignore[call-overload]
    dword, qword, binary = (render_string_literal(str(names[k])) for k in ("Dword", "Qword", "Binary"))
    return (f'case({kind} =~ {dword}, strcat("DWORD (0x", tohex(tolong({data}), 8), ")"), '
            f'{kind} =~ {qword}, strcat("QWORD (0x", tohex(binary_shift_right(tolong({data}), 32), 8), "-0x", '
            f'tohex(binary_and(tolong({data}), 4294967295), 8), ")"), '
            f'{kind} =~ {binary}, "Binary Data", {data})')


def kql_literal(v: object) -> str:
    """A binding's fixed value (text or a whole number) as a KQL literal."""
    return str(v) if isinstance(v, int) and not isinstance(v, bool) else render_string_literal(str(v))


def sentinel_binding(rule: ir.RuleIR, name: str | None) -> Binding:
    """The Sentinel table binding the rule reads (compiler.lowering.bind); a union's: its first branch's (the tables
    of all its branches are in the query)."""
    rule = lowering.first_leaf(rule)
    bound = bind(rule, FEATURES, name)
    assert bound.binding is not None  # Sentinel reads no undeclared source
    return bound.binding


def compile_kql(rule: ir.RuleIR, binding_name: str | None) -> str:
    if rule.pipeline.source.union is not None:
        return compile_union(rule, binding_name)
    if rule.baselines:  # seen-before tables are computed in the query from the table's history
        from .baseline import compile_with_baselines

        return compile_with_baselines(rule, binding_name)
    bound = bind(rule, FEATURES, binding_name)
    assert bound.binding is not None  # Sentinel reads no undeclared source
    return KqlLowering(rule, bound.binding, bound.stages).query()


def compile_union(rule: ir.RuleIR, binding_name: str | None) -> str:
    """A SourceUnion: `union (branch), (branch), …`, each branch the whole query of its pipeline on its own table (a
    correlation's: its own union query), ending with its tag; then the stages after the union, over the branches'
    computed columns."""
    lets, lines, _, _ = _union_query(rule, binding_name, 0)
    return "\n".join([*lets, *lines])


def _union_query(rule: ir.RuleIR, binding_name: str | None, counter: int) -> tuple[
        list[str], list[str], dict[str, str], int]:
    """The query's `let`s, its other lines, the types of its output columns, and the temporaries' counter."""
    union = rule.pipeline.source.union
    assert union is not None
    lets: list[str] = []
    bodies: list[str] = []
    types: dict[str, str] = {}
    first: Binding | None = None
    for b in union.branches:
        sub = replace(rule, pipeline=b.pipeline)
        if b.pipeline.source.union is not None:  # a correlation of a correlation
            inner_lets, body, computed_types, counter = _union_query(sub, binding_name, counter)
            lets.extend(inner_lets)
        else:
            bound = bind(sub, FEATURES, binding_name)
            assert bound.binding is not None
            first = first or bound.binding
            low = KqlLowering(sub, bound.binding, bound.stages, counter=counter)
            text_lines = low.query().split("\n")
            counter = low.counter
            lets.extend(x for x in text_lines if x.startswith("let "))
            body = [x for x in text_lines if not x.startswith("let ")]
            computed_types = low.scope.computed
        last = b.pipeline.stages[-1]
        assert isinstance(last, ir.Extend)
        casts = []
        for a in last.assignments:
            t = computed_types.get(a.name, "dynamic")
            if t == "dynamic" and a.expr.type in _IR_TO_KQL:  # read from JSON: a group key cannot be dynamic
                t = _IR_TO_KQL[a.expr.type]
                casts.append(f"{render_name(a.name)} = to{t}({render_name(a.name)})")
            if types.setdefault(a.name, t) != t:
                raise refusal(rule, FEATURES, f"column {a.name!r} is {types[a.name]} in one rule's table and {t} in "
                              f"another's: a union would keep them apart", a.expr, code="union-types")
        if casts:
            body.append("| extend " + ", ".join(casts))
        body.append(f"| extend {render_name(union.tag_column)} = {render_string_literal(b.tag)}")
        bodies.append("\n".join(body))
    if first is None:  # every branch is a correlation: the stages after the union read computed columns only
        first = sentinel_binding(rule, binding_name)
    types[union.tag_column] = "string"
    post = KqlLowering(rule, first, rule.pipeline.stages, counter=counter)
    post.scope = Scope(types, from_table=False)
    if len(bodies) == 1:
        post.lines = bodies[0].split("\n")
    else:
        post.lines = ["union"] + [("    (" + "\n    ".join(x.split("\n")) + ")" + ("," if i < len(bodies) - 1 else ""))
                                  for i, x in enumerate(bodies)]
    post.lower_stages(rule.pipeline.stages)
    return [*lets, *post.lets], post.lines, dict(post.scope.computed), post.counter


def _cap(a: ir.Aggregation) -> str:
    """values(x, N): make_set's maxSize, which keeps an undefined N of the values (docs/semantics.md decision 95)."""
    return "" if a.limit is None else f", {a.limit}"
