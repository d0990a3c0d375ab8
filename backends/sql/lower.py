"""IR → a sqlglot expression tree → SQL text per dialect (duckdb, spark, trino).

The query is a chain of CTEs, one per stage, each naming every column the rows hold at that point (the source's
declared fields first), so `extend` is parallel by construction (every expression reads the CTE before it) and a
column is replaced in place. Predicates are made two-valued where SQL's three-valued logic would differ: `not`
reads `COALESCE(p, FALSE)`, and a condition used as a value is coalesced (docs/semantics.md decision 1;
docs/backends/sql.md says what each dialect emits and why).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import sqlglot
from sqlglot import exp

from siemforge.compiler import ir, lowering
from siemforge.compiler.bindings import Binding, bindings_for
from siemforge.compiler.diagnostics import CompileError
from siemforge.compiler.lowering import Features, refusal
from siemforge.compiler.regex import RegexRefused, compile_re2
from siemforge.compiler.sources import builtin_sources
from siemforge.compiler.types import Type

FEATURES = Features("sql", "SQL", "docs/backends/sql.md", binds_views=False, reads_undeclared=True,
                    three_valued_logic=True)
# trino reads Amazon Security Lake through the Splunk `asl` binding's OCSF map (the same columns Athena sees)
TRINO_FEATURES = Features("splunk", "SQL (trino)", "docs/backends/sql.md", binds_views=False,
                          three_valued_logic=True)
TRINO_BINDING = "asl"
# Security Lake's table for CloudTrail management events (source version 2); OCSF `time_dt` is its UTC timestamp
TRINO_TABLES = {"aws.cloudtrail": "amazon_security_lake_table_cloud_trail_mgmt_2_0"}
TRINO_TIME = "time_dt"

ROW_ORDER = "siemforge_order"  # the position a sort gave a row, carried to the final ORDER BY
LOOKUP_ROW = "siemforge_row"  # a lookup table's row number: the first row that matches wins (decision 12)

# the source's declared types as the SQL kinds this module reasons with
_KIND = {Type.STRING: "text", Type.INT: "int", Type.REAL: "real", Type.BOOL: "bool", Type.DATETIME: "time",
         Type.TIMESPAN: "span", Type.DYNAMIC: "json"}
SQL_TYPES = {"text": "VARCHAR", "int": "BIGINT", "real": "DOUBLE", "bool": "BOOLEAN", "time": "TIMESTAMP",
             "json": "JSON"}


# the elements of a JSON value as DuckDB's list, as the IR expands them (decision 62); _EXPAND_ARG stands for the value
_EXPAND_ARG = exp.column("siemforge_expand_arg")
_EXPAND_JSON = sqlglot.parse_one(
    "CASE WHEN siemforge_expand_arg IS NULL OR JSON_TYPE(siemforge_expand_arg) = 'NULL' THEN [CAST(NULL AS JSON)]"
    " WHEN JSON_TYPE(siemforge_expand_arg) = 'ARRAY' THEN CAST(siemforge_expand_arg AS JSON[])"
    " WHEN JSON_TYPE(siemforge_expand_arg) = 'OBJECT' THEN LIST_TRANSFORM(MAP_ENTRIES(CAST(siemforge_expand_arg AS"
    " MAP(VARCHAR, JSON))), m -> JSON_OBJECT(m.key, m.value)) ELSE [siemforge_expand_arg] END", read="duckdb")


def table_name(source: str) -> str:
    """The table a source's raw records are read from on duckdb and spark (`aws.cloudtrail` → aws_cloudtrail)."""
    return re.sub(r"[^A-Za-z0-9_]", "_", source)


@dataclass(frozen=True, slots=True)
class Sql:
    """A lowered expression: its tree and coarse kind (text, int, real, bool, time, span, json, list, null, any);
    `json_of` keeps (column, path) of a JSON extraction so that its text can be read with the scalar form."""

    e: exp.Expr
    kind: str
    json_of: tuple[exp.Expr, str] | None = None
    cond: bool = False  # a condition that may be null (SQL three-valued); `value()` makes it two-valued


def _lit(v: str) -> exp.Literal:
    return exp.Literal.string(v)


def _num(v: int | float) -> exp.Expr:
    if v < 0:
        return exp.Neg(this=exp.Literal.number(-v))
    return exp.Literal.number(v)


def _col(name: str) -> exp.Column:
    return exp.column(name, quoted=True)


def _fn(name: str, *args: exp.Expr) -> exp.Expr:
    return exp.Anonymous(this=name, expressions=list(args))


def _coalesce_false(e: exp.Expr) -> exp.Expr:
    return exp.Coalesce(this=e, expressions=[exp.false()])


def _paren(e: exp.Expr) -> exp.Expr:
    return e if isinstance(e, (exp.Paren, exp.Column, exp.Literal, exp.Func, exp.Anonymous)) else exp.Paren(this=e)


def json_path(path: tuple[str | int, ...], dialect: str) -> str | None:
    """`$.a.b[0]`; None when the dialect's JSON path cannot say it (an index from the end outside DuckDB)."""
    out = "$"
    for seg in path:
        if isinstance(seg, int):
            if seg < 0:
                if dialect != "duckdb":
                    return None
                out += f"[#{seg}]"  # DuckDB: [#-1] is the last element
            else:
                out += f"[{seg}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", seg):
            out += "." + seg
        else:
            if '"' in seg or "\\" in seg:
                return None
            out += f'."{seg}"'
    return out


@dataclass(slots=True)
class SqlLowering:
    rule: ir.RuleIR
    dialect: str
    stages: tuple[ir.Stage, ...]
    binding: Binding | None
    now: datetime | None
    ctes: list[tuple[str, exp.Query]] = field(default_factory=list)
    scope: dict[str, str] = field(default_factory=dict)  # column -> kind, in row order
    declared: dict[str, Type] = field(default_factory=dict)  # the source's fields (dotted) -> type
    from_source: bool = True  # the source's own fields are still the row's (no summarize/project yet)
    computed: set[str] = field(default_factory=set)  # columns the stages made (trino: not read through the binding)
    elements: list[tuple[str, str]] = field(default_factory=list)  # the enclosing AnyElement tests' element names
    ordered: bool = False  # a sort gave the rows an order (ROW_ORDER)
    at_stage: ir.Stage | None = None
    counter: int = 0

    @property
    def features(self) -> Features:
        return TRINO_FEATURES if self.dialect == "trino" else FEATURES

    def fail(self, message: str, *at: object, code: str = "unsupported") -> CompileError:
        return refusal(self.rule, self.features, f"{message} ({self.dialect})", *at, self.at_stage, code=code)

    # ------------------------------------------------------------------ query
    def query(self) -> exp.Expr:
        src = self.rule.pipeline.source
        base = lowering.base_source(src)
        sdef = builtin_sources().get(base)
        if sdef is None:
            raise self.fail(f"source {base!r} declares no fields for SQL to read")
        self.declared = dict(sdef.fields)
        time_col = lowering.sources_down(src)[-1][0].time_column
        first = exp.select()
        if self.binding is None:  # the table holds the declared fields (duckdb_run.declared_columns)
            for name, t in sdef.fields.items():
                root = name.split(".")[0]
                if root not in self.scope:
                    self.scope[root] = _KIND.get(t, "json") if "." not in name else "json"
            first = first.select(exp.Star())
            table: exp.Expr = exp.to_table(table_name(base))
            if time_col is not None and sdef.time_from:
                t_from = self.scope.get(sdef.time_from)
                if t_from is None:
                    raise self.fail(f"source {base!r} reads its time from {sdef.time_from!r}, which it does not "
                                    "declare")
                first = first.select(exp.alias_(self.to_time(Sql(_col(sdef.time_from), t_from)).e, time_col,
                                                quoted=True), append=True)
                self.scope[time_col] = "time"
        else:
            table = exp.to_table(TRINO_TABLES.get(base, table_name(base)))
            cols = [n for n in self.binding.columns if n != time_col and not n.startswith("_")]
            cols += list(self.binding.json_columns)
            for name in cols:
                physical = self.binding.columns.get(name) or self.binding.json_columns[name]
                kind = "json" if name in self.binding.json_columns else _KIND.get(sdef.fields.get(name, Type.ANY),
                                                                                  "json")
                self.scope[name] = kind
                ref = exp.Dot.build([exp.to_identifier(p) for p in physical.split(".")]) if "." in physical \
                    else exp.column(physical)
                first = first.select(exp.alias_(ref, name, quoted=True), append=True)
            if time_col is not None:
                first = first.select(exp.alias_(exp.column(TRINO_TIME), time_col, quoted=True), append=True)
                self.scope[time_col] = "time"
        self.push(first.from_(table))
        self.lower_stages(self.stages)
        return self.final()

    def union(self) -> exp.Expr:
        """A SourceUnion: each branch's CTEs, its last extend's columns tagged with the branch, `UNION ALL` branch
        after branch; then the stages after the union over those columns (ir.SourceUnion)."""
        union = self.rule.pipeline.source.union
        assert union is not None
        parts: list[tuple[SqlLowering, tuple[str, ...], str]] = []
        for b in union.branches:
            if b.pipeline.source.union is not None:
                raise self.fail("a correlation of correlations is not lowered to SQL yet")
            sub = replace(self.rule, pipeline=b.pipeline, baselines=())
            low = _lowering(sub, self.dialect, self.now)
            low.counter = self.counter
            low.query()
            self.counter = low.counter
            self.ctes.extend(low.ctes)
            last = b.pipeline.stages[-1]
            assert isinstance(last, ir.Extend)
            parts.append((low, tuple(a.name for a in last.assignments), b.tag))
        names = list(dict.fromkeys(n for _, ns, _ in parts for n in ns))
        kinds = {n: _common([low.scope.get(n, "null") for low, ns, _ in parts if n in ns]) for n in names}
        kinds = {n: "text" if k in ("null", "any") else k for n, k in kinds.items()}
        selects: list[exp.Query] = []
        for low, ns, tag in parts:
            cols: list[exp.Expr] = []
            for n in names:
                if n not in ns:
                    value: exp.Expr = exp.Null()
                elif kinds[n] == "json":
                    value = _col(n)
                else:
                    value = low.cast(Sql(_col(n), low.scope.get(n, "null")), kinds[n]).e
                cols.append(exp.alias_(value, n, quoted=True))
            cols.append(exp.alias_(_lit(tag), union.tag_column, quoted=True))
            selects.append(exp.select(*cols).from_(exp.to_table(low.ctes[-1][0])))
        body = selects[0]
        for sel in selects[1:]:
            body = exp.union(body, sel, distinct=False)
        self.push(body)
        self.scope = {**kinds, union.tag_column: "text"}
        self.computed = set(self.scope)
        self.from_source = False
        self.lower_stages(self.stages)
        return self.final()

    def name(self) -> str:
        self.counter += 1
        return f"siemforge_{self.counter}"

    def push(self, select: exp.Query) -> None:
        self.ctes.append((self.name(), select))

    def prev(self) -> exp.Expr:
        return exp.to_table(self.ctes[-1][0])

    def final(self) -> exp.Expr:
        if self.ordered:
            out = exp.select(*[_col(c) for c in self.scope if c != ROW_ORDER]).from_(self.prev())
        else:
            out = exp.select(exp.Star()).from_(self.prev())
        if self.ordered:
            out = out.order_by(exp.Ordered(this=_col(ROW_ORDER), nulls_first=True))
        for name, sel in self.ctes:
            out = out.with_(name, as_=sel)
        return out

    def lower_stages(self, stages: tuple[ir.Stage, ...]) -> None:
        for stage in stages:
            self.at_stage = stage
            try:
                self.stage(stage)
            except CompileError as err:
                raise lowering.placed(self.rule, self.features, err, stage) from None

    def keep(self, replaced: dict[str, exp.Expr]) -> list[exp.Expr]:
        """Every column of the rows, the replaced ones with their new value (in place), the new ones after: `*` and
        the new columns; a replaced column by DuckDB's `* REPLACE`, elsewhere by naming every column."""
        new = [exp.alias_(v, c, quoted=True) for c, v in replaced.items() if c not in self.scope]
        again = {c: v for c, v in replaced.items() if c in self.scope}
        if not again:
            return [exp.Star(), *new]
        if self.dialect == "duckdb":
            return [exp.Star(replace=[exp.alias_(v, c, quoted=True) for c, v in again.items()]), *new]
        cols: list[exp.Expr] = [exp.alias_(again[c], c, quoted=True) if c in again else _col(c)
                                      for c in self.scope]
        return [*cols, *new]

    # ------------------------------------------------------------------ stages
    def stage(self, stage: ir.Stage) -> None:
        match stage:
            case ir.Filter(predicate=p):
                self.push(exp.select(exp.Star()).from_(self.prev()).where(self.predicate(p)))
            case ir.Extend(assignments=assigns):
                values = {a.name: self.value(a.expr) for a in assigns}  # parallel: all read the CTE before
                self.push(exp.select(*self.keep({n: v.e for n, v in values.items()})).from_(self.prev()))
                for n, v in values.items():
                    self.scope[n] = v.kind
                    self.computed.add(n)
            case ir.Aggregate():
                self.aggregate(stage)
            case ir.EventAggregate():
                self.event_aggregate(stage)
            case ir.Lookup():
                self.lookup(stage)
            case ir.Rename(renames=renames):
                new = dict(renames)
                if any(o not in self.scope for o, _ in renames):
                    missing = next(o for o, _ in renames if o not in self.scope)
                    raise self.fail(f"rename of {missing!r}, which is not a column of the rows: use extend")
                cols = []
                scope: dict[str, str] = {}
                targets = set(new.values())
                for c, k in self.scope.items():
                    if c in new:
                        cols.append(exp.alias_(_col(c), new[c], quoted=True))
                        scope[new[c]] = k
                    elif c not in targets:
                        cols.append(_col(c))
                        scope[c] = k
                self.push(exp.select(*cols).from_(self.prev()))
                self.scope = scope
                self.computed.update(targets)
            case ir.Project(columns=cols):
                values = {c: self.value(ir.Column(c, (), Type.ANY)) for c in cols}
                keep = [ROW_ORDER] if self.ordered else []
                self.push(exp.select(*[exp.alias_(v.e, c, quoted=True) for c, v in values.items()],
                                     *[_col(k) for k in keep]).from_(self.prev()))
                self.scope = {**{c: v.kind for c, v in values.items()}, **{k: "int" for k in keep}}
                self.from_source = False
            case ir.Sort(keys=keys):
                order = [exp.Ordered(this=self.value(k.expr).e, desc=k.descending, nulls_first=not k.descending)
                         for k in keys]
                if self.ordered:  # stable: ties keep the order an earlier sort gave
                    order.append(exp.Ordered(this=_col(ROW_ORDER)))
                number = exp.Window(this=exp.RowNumber(), order=exp.Order(expressions=order))
                self.push(exp.select(*self.keep({ROW_ORDER: number})).from_(self.prev()))
                self.scope[ROW_ORDER] = "int"
                self.ordered = True
            case ir.Limit(count=n):
                sel = exp.select(exp.Star()).from_(self.prev())
                if self.ordered:
                    sel = sel.order_by(exp.Ordered(this=_col(ROW_ORDER)))
                self.push(sel.limit(n))
            case ir.Expand():
                self.expand(stage)
            case ir.Join():
                self.join(stage)
            case _:
                raise self.fail(f"no SQL for stage {type(stage).__name__}")

    def join(self, stage: ir.Join) -> None:
        """The right pipeline's CTEs, then a JOIN of the rows with its last one (docs/semantics.md decision 72): keys
        compared with `=`, where a NULL matches nothing as in the IR; leftsemi/leftanti as [NOT] EXISTS; innerunique
        keeps one left row of each key first (ROW_NUMBER over the keys)."""
        temps = {f"siemforge_join_{i}": self.value(e) for i, (e, _) in enumerate(stage.keys)}
        for (e, _), v in zip(stage.keys, temps.values()):
            if v.kind == "json":
                raise self.fail("this join key is JSON: SQL joins on scalar values", e)
        self.push(exp.select(exp.Star(), *[exp.alias_(v.e, k, quoted=True) for k, v in temps.items()])
                  .from_(self.prev()))
        left_rows = self.prev()
        sub = replace(self.rule, pipeline=stage.right, baselines=())
        low = _lowering(sub, self.dialect, self.now)
        low.counter = self.counter
        low.query()
        self.counter = low.counter
        self.ctes.extend(low.ctes)
        right = low.ctes[-1][0]
        for _, col in stage.keys:
            if low.scope.get(col, "json") == "json":
                raise self.fail(f"join key {col!r} is JSON on the right side: SQL joins on scalar values")
        left_alias, right_alias = self.name(), self.name()
        if stage.kind is ir.JoinKind.INNERUNIQUE:
            # any row of a key (decision 70); Spark wants the window ordered, so by the keys when nothing else
            order = [_col(ROW_ORDER)] if self.ordered else [_col(k) for k in temps]
            first = exp.Window(this=exp.RowNumber(), partition_by=[_col(k) for k in temps],
                               order=exp.Order(expressions=[exp.Ordered(this=o) for o in order]))
            ranked = exp.select(exp.Star(), exp.alias_(first, "siemforge_first", quoted=True)).from_(left_rows)
            self.push(exp.select(*[_col(c) for c in [*self.scope, *temps]]).from_(ranked.subquery())
                      .where(exp.EQ(this=_col("siemforge_first"), expression=exp.Literal.number(1))))
            left_rows = self.prev()

        def side(name: str, alias: str) -> exp.Expr:
            col = exp.column(name, alias, quoted=True)
            if stage.empty_keys_match:  # null and '' are one key (decision 72): both read as ''
                return exp.Coalesce(this=exp.cast(col, "VARCHAR"), expressions=[_lit("")])
            return col

        on = exp.and_(*[exp.EQ(this=side(temp, left_alias), expression=side(col, right_alias))
                        for temp, (_, col) in zip(temps, stage.keys)])
        left_table = exp.alias_(left_rows, left_alias, table=True)
        if stage.kind in (ir.JoinKind.LEFTSEMI, ir.JoinKind.LEFTANTI):
            probe: exp.Expr = exp.Exists(this=exp.select(exp.Literal.number(1)).from_(
                exp.alias_(exp.to_table(right), right_alias, table=True)).where(on))
            if stage.kind is ir.JoinKind.LEFTANTI:
                probe = exp.Not(this=probe)
            self.push(exp.select(*[exp.column(c, left_alias, quoted=True) for c in self.scope])
                      .from_(left_table).where(probe))
            return
        cols: list[exp.Expr] = [exp.column(c, left_alias, quoted=True) for c in self.scope]
        cols += [exp.alias_(exp.column(c, right_alias, quoted=True), a, quoted=True) for c, a in stage.outputs]
        kind = "left" if stage.kind is ir.JoinKind.LEFTOUTER else "inner"
        self.push(exp.select(*cols).from_(left_table).join(
            exp.alias_(exp.to_table(right), right_alias, table=True), on=on, join_type=kind))
        for c, a in stage.outputs:
            self.scope[a] = low.scope.get(c, "json")
            self.computed.add(a)

    def expand(self, stage: ir.Expand) -> None:
        """UNNEST of a list made to hold what the IR expands (docs/semantics.md decision 62): a null is a list of one
        null (UNNEST of NULL has no row), an object its members as one-member objects, a scalar itself."""
        if self.dialect != "duckdb":
            raise self.fail("mv-expand is lowered for DuckDB only: its list functions decide the row count of a null, "
                            "an object and a scalar as the IR does")
        v = self.value(stage.expr)
        kind = v.kind
        if kind == "json":
            elements = _EXPAND_JSON.transform(lambda n: v.e.copy() if n == _EXPAND_ARG else n)
        elif kind == "list":
            elements, kind = exp.Coalesce(this=v.e, expressions=[exp.Array(expressions=[exp.Null()])]), "text"
        else:
            elements = exp.Array(expressions=[v.e])
        if stage.limit is not None:
            elements = _fn("LIST_SLICE", elements, exp.Literal.number(1), exp.Literal.number(stage.limit))
        value: exp.Expr = exp.Unnest(expressions=[elements])
        self.push(exp.select(*self.keep({stage.name: value})).from_(self.prev()))
        self.scope[stage.name] = kind
        self.computed.add(stage.name)
        if stage.type is not Type.DYNAMIC:  # `to typeof(T)`: an element of another type is null
            typed = self.typed_element(_col(stage.name), kind, stage.type)
            self.push(exp.select(*self.keep({stage.name: typed.e})).from_(self.prev()))
            self.scope[stage.name] = typed.kind

    def typed_element(self, x: exp.Expr, kind: str, ty: Type) -> Sql:
        want = {Type.STRING: ("text", ("VARCHAR",)), Type.INT: ("int", ("BIGINT", "UBIGINT")),
                Type.REAL: ("real", ("BIGINT", "UBIGINT", "DOUBLE")), Type.BOOL: ("bool", ("BOOLEAN",))}[ty]
        out_kind, json_types = want
        if kind == "json":
            test = exp.In(this=_fn("JSON_TYPE", x), expressions=[_lit(j) for j in json_types])
            got = _fn("JSON_EXTRACT_STRING", x, _lit("$")) if ty is Type.STRING else \
                exp.cast(x, SQL_TYPES[out_kind])
            return Sql(exp.Case(ifs=[exp.If(this=test, true=got)]), out_kind)
        if kind == out_kind or (kind == "int" and ty is Type.REAL):
            return Sql(x if kind == out_kind else exp.cast(x, "DOUBLE"), out_kind)
        return Sql(exp.cast(exp.Null(), SQL_TYPES[out_kind]), out_kind)

    def aggregate(self, stage: ir.Aggregate) -> None:
        keys = [(b.name, self.value(b.expr)) for b in stage.by]
        aggs = [(a.name, self.aggregation(a, window=False) if a.key is None else
                  self.arg_aggregation(a, stage.aggregations)) for a in stage.aggregations]
        sel = exp.select(*[exp.alias_(v.e, n, quoted=True) for n, v in keys],
                         *[exp.alias_(v.e, n, quoted=True) for n, v in aggs]).from_(self.prev())
        if keys:
            sel = sel.group_by(*[v.e.copy() for _, v in keys])
        self.push(sel)
        self.scope = {**{n: v.kind for n, v in keys}, **{n: v.kind for n, v in aggs}}
        self.from_source = False
        self.ordered = False

    def event_aggregate(self, stage: ir.EventAggregate) -> None:
        """Window aggregates over the rows' groups (PARTITION BY keeps null keys as a group of their own)."""
        if any(a.key is not None for a in stage.aggregations):
            raise self.fail("arg_max()/arg_min() per group of every row has no window form here", stage)
        part = [self.value(b.expr).e for b in stage.by]
        values = {}
        for a in stage.aggregations:
            agg = self.aggregation(a, window=True)
            values[a.name] = (exp.Window(this=agg.e, partition_by=[p.copy() for p in part]), agg.kind)
        self.push(exp.select(*self.keep({n: v for n, (v, _) in values.items()})).from_(self.prev()))
        for n, (_, k) in values.items():
            self.scope[n] = k
            self.computed.add(n)

    def arg_aggregation(self, a: ir.Aggregation, aggs: tuple[ir.Aggregation, ...]) -> Sql:
        """arg_max/arg_min (decision 78): one struct of every column the same key picks, so that all are read from
        one row (`ARG_MAX({'f0': a, 'f1': b}, key).f1`; MAX_BY on Spark); a null key is no candidate there too."""
        assert a.key is not None and a.arg is not None
        if self.dialect == "trino":
            raise self.fail("arg_max()/arg_min(): Trino's max_by of a row needs the row's field types", a.arg)
        members = [x for x in aggs if x.key is not None and (x.fn, x.key) == (a.fn, a.key)]
        key = self.value(a.key)
        if key.kind in ("json", "list"):
            raise self.fail(f"{a.fn.value}() of a JSON value: SQL orders JSON differently", a.key)
        fields, kind = [], "any"
        for i, x in enumerate(members):
            assert x.arg is not None
            v = self.value(x.arg)
            if x is a:
                kind = v.kind
            fields.append(exp.PropertyEQ(this=exp.to_identifier(f"f{i}"), expression=v.e))
        cls = exp.ArgMax if a.fn is ir.AggFn.ARG_MAX else exp.ArgMin
        picked = cls(this=exp.Struct(expressions=fields), expression=key.e)
        return Sql(exp.Dot(this=picked, expression=exp.to_identifier(f"f{members.index(a)}")), kind)

    def cap(self, values: exp.Expr, limit: int | None) -> exp.Expr:
        """values(x, N) (decision 95): the first N of the sorted distinct values. DuckDB's list_slice(l, begin, end)
        and Spark's and Trino's slice(l, start, length), both 1-based; a shorter list is kept whole."""
        if limit is None:
            return values
        fn = "list_slice" if self.dialect == "duckdb" else "slice"
        return exp.Anonymous(this=fn, expressions=[values, exp.Literal.number(1), exp.Literal.number(limit)])

    def aggregation(self, a: ir.Aggregation, *, window: bool) -> Sql:
        arg = self.value(a.arg) if a.arg is not None else None
        d = self.dialect
        match a.fn:
            case ir.AggFn.COUNT:
                return Sql(exp.Count(this=exp.Star() if arg is None else arg.e), "int")
            case ir.AggFn.DCOUNT:
                assert arg is not None
                if window and d != "duckdb":
                    raise self.fail("a distinct count per group of every row (eventstats dc) has no window form")
                return Sql(exp.Count(this=exp.Distinct(expressions=[arg.e])), "int")
            case ir.AggFn.MIN | ir.AggFn.MAX:
                assert arg is not None
                v = self.text(arg) if arg.kind == "json" else arg
                return Sql((exp.Min if a.fn is ir.AggFn.MIN else exp.Max)(this=v.e), v.kind)
            case ir.AggFn.SUM | ir.AggFn.AVG:
                assert arg is not None
                v = self.number(arg)
                if a.fn is ir.AggFn.AVG:
                    return Sql(exp.Avg(this=v.e), "real")
                return Sql(exp.Sum(this=v.e), v.kind)
            case ir.AggFn.STDEV | ir.AggFn.STDEVP:  # decision 85: NULL below 2 (1) numbers, as the IR says
                assert arg is not None
                v = self.number(arg)
                dev: exp.Expr = exp.StddevSamp(this=v.e) if a.fn is ir.AggFn.STDEV else exp.StddevPop(this=v.e)
                return Sql(dev, "real")
            case ir.AggFn.VALUES if a.each is not None:  # decision 87
                assert arg is not None
                return self.values_of_each(a, arg, window)
            case ir.AggFn.VALUES:
                assert arg is not None
                if window:
                    raise self.fail("values() per group of every row (eventstats values) has no window form")
                v = self.text(arg) if arg.kind not in ("int", "real") else arg
                distinct = exp.Distinct(expressions=[v.e])
                if d == "spark":
                    return Sql(self.cap(exp.ArraySort(this=exp.ArrayUniqueAgg(this=v.e)), a.limit), "list")
                agg: exp.Expr = exp.Filter(this=exp.ArrayAgg(this=distinct),
                                                 expression=exp.Where(this=exp.Not(this=exp.Is(
                                                     this=v.e.copy(), expression=exp.Null()))))
                # no value: the empty list, as Spark's collect_set gives (ARRAY_AGG over nothing is null)
                return Sql(self.cap(exp.Coalesce(this=exp.ArraySort(this=agg), expressions=[exp.Array(expressions=[])]),
                                    a.limit), "list")
            case ir.AggFn.EARLIEST | ir.AggFn.LATEST:
                assert arg is not None
                col = self.rule.pipeline.source.time_column
                if col is None or col not in self.scope:
                    raise self.fail("earliest()/latest() need the event time")
                cls = exp.ArgMin if a.fn is ir.AggFn.EARLIEST else exp.ArgMax
                node = cls(this=arg.e, expression=_col(col))
                if window:
                    raise self.fail("earliest()/latest() per group of every row has no window form here")
                return Sql(node, arg.kind)
            case ir.AggFn.PERCENTILE:  # exact nearest rank: the sorted numbers' element at ceil(n * p / 100)
                assert arg is not None and a.percentile is not None
                if d != "duckdb" or window:
                    raise self.fail("an exact nearest-rank percentile is lowered to SQL on duckdb only (summarize)")
                number = self.number(arg)
                num = number.e
                nums = exp.ArraySort(this=exp.Filter(this=exp.ArrayAgg(this=num), expression=exp.Where(
                    this=exp.Not(this=exp.Is(this=num.copy(), expression=exp.Null())))))
                rank = exp.Greatest(this=exp.cast(_fn("CEIL", exp.Div(
                    this=exp.Mul(this=exp.ArraySize(this=nums.copy()), expression=_num(a.percentile)),
                    expression=exp.Literal.number(100))), "BIGINT"), expressions=[exp.Literal.number(1)])
                return Sql(_fn("LIST_EXTRACT", nums, rank), number.kind)  # the value itself, as the executor
        raise self.fail(f"no SQL for aggregation {a.fn.value}")

    def values_of_each(self, a: ir.Aggregation, arg: Sql, window: bool) -> Sql:
        """values(a[].b) on DuckDB (decision 87): of each row, the scalars at `$.a[*].b` as text; the distinct ones
        of the group, sorted. Spark and Trino refuse (their JSON paths have no `[*]` list of every element)."""
        assert a.each is not None
        if self.dialect != "duckdb" or window:
            raise self.fail("values() of every element is lowered to SQL on duckdb only (summarize)", a.arg)
        member = json_path(a.each, self.dialect)
        if arg.kind != "json" or member is None:
            raise self.fail("values() of every element of a value that is not a path into a JSON column has no SQL "
                            "form", a.arg)
        col, jp = arg.json_of if arg.json_of is not None else (arg.e, "$")  # a JSON column itself
        path = jp + "[*]" + member[1:]
        # JSON_EXTRACT with `[*]` is the list of every match (JSON[]); written as a call, not the `->` that sqlglot
        # makes of it, which gives one JSON value
        every = exp.Anonymous(this="JSON_EXTRACT", expressions=[col.copy(), _lit(path)])
        text = ("COALESCE(LIST_SORT(LIST_DISTINCT(FLATTEN(ARRAY_AGG(LIST_TRANSFORM(LIST_FILTER(siemforge_every, "
                "x -> JSON_TYPE(x) NOT IN ('OBJECT', 'ARRAY', 'NULL')), x -> x ->> '$'))))), [])")
        node = sqlglot.parse_one(text, read="duckdb").transform(
            lambda n: every.copy() if isinstance(n, exp.Column) and n.name == "siemforge_every" else n)
        return Sql(node, "list")

    def lookup(self, stage: ir.Lookup) -> None:
        """A left join with the table (named after the lookup), keys compared as text; of the table rows that match,
        the first (LOOKUP_ROW) wins."""
        t = stage.table
        types = dict(zip(t.columns, t.types))
        alias = self.name()
        temps = {f"siemforge_key_{i}": self.text(self.value(e)).e for i, (e, _) in enumerate(stage.keys)}
        self.push(exp.select(exp.Star(), *[exp.alias_(v, k, quoted=True) for k, v in temps.items()])
                  .from_(self.prev()))
        inner_cols: list[exp.Expr] = [exp.alias_(exp.cast(_col(col), "VARCHAR"), col, quoted=True)
                                            for _, col in stage.keys]
        inner_cols += [_col(c) for c, _ in stage.outputs if c not in {k for _, k in stage.keys}]
        rank = exp.Window(this=exp.RowNumber(), partition_by=[exp.cast(_col(col), "VARCHAR") for _, col in stage.keys],
                          order=exp.Order(expressions=[exp.Ordered(this=_col(LOOKUP_ROW))]))
        ranked = exp.select(*inner_cols, exp.alias_(rank, "siemforge_rank", quoted=True)).from_(exp.to_table(t.name))
        table = exp.select(*[_col(c) for c in dict.fromkeys([*(k for _, k in stage.keys),
                                                             *(c for c, _ in stage.outputs)])]) \
            .from_(ranked.subquery()).where(exp.EQ(this=_col("siemforge_rank"), expression=exp.Literal.number(1)))
        prev_alias = self.name()
        # keys compare as text; an empty key matches nothing (decision 12)
        on = exp.and_(*[exp.and_(exp.EQ(this=exp.column(k, prev_alias, quoted=True),
                                        expression=exp.column(col, alias, quoted=True)),
                                 exp.NEQ(this=exp.column(k, prev_alias, quoted=True), expression=_lit("")))
                        for k, (_, col) in zip(temps, stage.keys)])
        replaced = {out: exp.column(c, alias, quoted=True) for c, out in stage.outputs}
        cols = [exp.alias_(replaced[c], c, quoted=True) if c in replaced else exp.column(c, prev_alias, quoted=True)
                for c in self.scope]
        cols += [exp.alias_(v, c, quoted=True) for c, v in replaced.items() if c not in self.scope]
        sel = exp.select(*cols).from_(exp.alias_(self.prev(), prev_alias, table=True)).join(
            exp.alias_(table.subquery(), alias, table=True), on=on, join_type="left")
        self.push(sel)
        for c, out in stage.outputs:
            self.scope[out] = _KIND.get(types.get(c, Type.STRING), "text")
            self.computed.add(out)

    # ------------------------------------------------------------------ expressions
    def predicate(self, e: ir.Expr) -> exp.Expr:
        """A condition for WHERE/CASE: null there acts as false, so it need not be coalesced."""
        out = self.node(e)
        if out.kind == "bool":
            return out.e
        if out.kind == "json":
            return self.cast(out, "bool").e
        return exp.cast(out.e, "BOOLEAN")

    def value(self, e: ir.Expr) -> Sql:
        out = self.node(e)
        if out.cond:
            return Sql(_coalesce_false(out.e), "bool")
        return out

    def node(self, e: ir.Expr) -> Sql:  # noqa: C901 - one case per node type
        match e:
            case ir.Literal(value=lit):
                return self.literal(lit, e)
            case ir.Column():
                return self.column(e)
            case ir.Index(base=b, key=k):
                return self.index(self.value(b), k, e)
            case ir.Compare():
                return self.compare(e)
            case ir.StringMatch(op=op, subject=s, pattern=p, case_sensitive=cs):
                if not (isinstance(p, ir.Literal) and isinstance(p.value, str)):
                    raise self.fail(f"{op.value} with a computed pattern", e)
                body = re.escape(p.value)
                regex = {ir.StrOp.CONTAINS: body, ir.StrOp.STARTSWITH: r"\A" + body,
                         ir.StrOp.ENDSWITH: body + r"\z"}[op]
                return self.regex(self.text(self.value(s)), ("(?s)" if cs else "(?is)") + regex)
            case ir.WildcardMatch(subject=s, pattern=p, case_sensitive=cs):
                body = lowering.wildcard_body(p, re.escape)
                return self.regex(self.text(self.value(s)), ("(?s)" if cs else "(?is)") + r"\A" + body + r"\z")
            case ir.RegexMatch(subject=s, pattern=p, flags=flags):
                self.check_re2(p, e)
                prefix = "".join(f"(?{f})" for f in sorted(flags))
                return self.regex(self.text(self.value(s)), prefix + p)
            case ir.CidrMatch():
                raise self.fail("CIDR matching needs an address type the dialects do not share", e)
            case ir.InList(subject=s, values=vals, case_sensitive=cs):
                return self.in_list(e, s, vals, cs)
            case ir.Keyword():
                raise self.fail("a keyword search over every field has no SQL form", e)
            case ir.Not(operand=o):
                inner = self.node(o)
                return Sql(exp.Not(this=_paren(_coalesce_false(inner.e) if inner.cond else inner.e)), "bool")
            case ir.And(operands=ops):
                parts = [self.node(o) for o in ops]
                return Sql(exp.Paren(this=exp.and_(*[self.as_cond(p) for p in parts])), "bool",
                           cond=any(p.cond for p in parts))
            case ir.Or(operands=ops):
                parts = [self.node(o) for o in ops]
                return Sql(exp.Paren(this=exp.or_(*[self.as_cond(p) for p in parts])), "bool",
                           cond=any(p.cond for p in parts))
            case ir.Arith():
                return self.arith(e)
            case ir.Negate(operand=o):
                operand = self.value(o)
                num = operand if operand.kind == "span" else self.number(operand)
                return Sql(exp.Neg(this=_paren(num.e)), num.kind)
            case ir.Case(branches=bs, default=d):
                outs = [self.value(x) for _, x in bs] + [self.value(d)]
                kind = _common([x.kind for x in outs])
                outs = [self.cast(x, kind) for x in outs]
                case = exp.Case(ifs=[exp.If(this=self.predicate(c), true=x.e) for (c, _), x in zip(bs, outs)],
                                default=outs[-1].e)
                return Sql(case, kind)
            case ir.Call():
                return self.call(e)
            case ir.AnyElement():
                return self.any_element(e)
            case ir.Element(path=path):
                if not self.elements:
                    raise self.fail("an array element outside an any-element test", e)
                name, kind = self.elements[-1]
                if not path:
                    return Sql(exp.column(name), kind)
                if kind != "json":
                    return Sql(exp.Null(), "null")
                return self.extract(exp.column(name), path, None, e)
        raise self.fail(f"no SQL for {type(e).__name__}", e)

    def any_element(self, e: ir.AnyElement) -> Sql:
        """Some element satisfies the predicate (decision 28), DuckDB: the elements that satisfy it, kept with
        `LIST_FILTER` over the JSON array cast to a list, are not none; a value that is not an array has none."""
        if self.dialect != "duckdb":
            raise self.fail("a test of some element of an array is lowered to SQL on duckdb only", e)
        coll = self.value(e.collection)
        name = f"siemforge_e{len(self.elements) + 1}"
        items: exp.Expr
        if coll.kind == "json":
            items, kind = exp.cast(coll.e, "JSON[]"), "json"
            is_array: exp.Expr = exp.EQ(this=_fn("JSON_TYPE", coll.e.copy()), expression=_lit("ARRAY"))
        elif coll.kind == "list":
            items, kind = coll.e, "text"
            is_array = exp.Not(this=exp.Is(this=coll.e.copy(), expression=exp.Null()))
        else:
            return Sql(exp.false(), "bool")
        self.elements.append((name, kind))
        try:
            pred = _coalesce_false(self.predicate(e.predicate))
        finally:
            self.elements.pop()
        kept = _fn("LIST_FILTER", items, exp.Lambda(this=pred, expressions=[exp.to_identifier(name)]))
        some = exp.GT(this=exp.ArraySize(this=kept), expression=exp.Literal.number(0))
        return Sql(exp.Case(ifs=[exp.If(this=is_array, true=some)], default=exp.false()), "bool")

    def as_cond(self, s: Sql) -> exp.Expr:
        if s.kind == "bool":
            return s.e
        return self.cast(s, "bool").e

    def literal(self, v: object, at: ir.Expr) -> Sql:
        if v is None:
            return Sql(exp.Null(), "null")
        if isinstance(v, bool):
            return Sql(exp.true() if v else exp.false(), "bool")
        if isinstance(v, int):
            return Sql(_num(v), "int")
        if isinstance(v, float):
            return Sql(_num(v), "real")
        if isinstance(v, str):
            return Sql(_lit(v), "text")
        if isinstance(v, datetime):
            text = v.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")
            return Sql(exp.cast(_lit(text), "TIMESTAMP"), "time")
        if isinstance(v, timedelta):
            return Sql(self.interval(v), "span")
        raise self.fail(f"no SQL literal for {v!r}", at)

    def interval(self, v: timedelta) -> exp.Expr:
        seconds = v.total_seconds()
        n: int | float = int(seconds) if seconds == int(seconds) else seconds
        if self.dialect == "duckdb":  # INTERVAL (n) SECOND reads a number; fractions too
            return exp.Interval(this=exp.Paren(this=_num(n)), unit=exp.var("SECOND"))
        return exp.Interval(this=_lit(str(n)), unit=exp.var("SECOND"))

    def bound_column(self, c: ir.Column) -> Sql:
        """trino: a source field read through the binding (`userIdentity.arn` is OCSF `actor.user.uid`)."""
        segs: list[str | int] = [*c.name.split("."), *c.path]
        for i in range(len(segs), 0, -1):
            head = segs[:i]
            if not all(isinstance(x, str) for x in head):
                continue
            dotted = ".".join(str(x) for x in head)
            if dotted in self.scope:
                kind, rest = self.scope[dotted], tuple(segs[i:])
                if not rest:
                    return Sql(_col(dotted), kind)
                if kind != "json":
                    return Sql(exp.Null(), "null")
                full = ".".join(str(x) for x in segs)
                return self.extract(_col(dotted), rest, self.declared.get(full), c)
        assert self.binding is not None
        dotted = ".".join(str(x) for x in segs)
        raise self.fail(f"field {dotted!r} has no column in Security Lake's OCSF table (binding "
                        f"{self.binding.name!r}, {self.binding.file})", c, code="unmapped-field")

    def column(self, c: ir.Column) -> Sql:
        if self.binding is not None and self.from_source and c.name not in self.computed:
            return self.bound_column(c)
        if c.name not in self.scope:
            if self.binding is not None and self.from_source:
                raise self.fail(f"field {c.name!r} has no column in Security Lake's OCSF table "
                                f"(binding {self.binding.name!r}, {self.binding.file})", c, code="unmapped-field")
            if self.from_source and c.name in self.declared:
                return Sql(exp.Null(), "null")
            return Sql(exp.Null(), "null")  # a column the rows do not have is null (missing)
        kind = self.scope[c.name]
        base = _col(c.name)
        if self.binding is not None and self.from_source and c.name not in self.computed:
            return self.bound_column(c)
        if not c.path:
            return Sql(base, kind)
        if kind != "json":
            return Sql(exp.Null(), "null")  # a member of a non-object is null
        dotted = ".".join([c.name, *(str(p) for p in c.path)])
        declared = self.declared.get(dotted) if self.from_source else None
        return self.extract(base, c.path, declared, c)

    def extract(self, base: exp.Expr, path: tuple[str | int, ...], declared: Type | None, at: object) -> Sql:
        jp = json_path(path, self.dialect)
        if jp is None:
            raise self.fail(f"the path {path!r} has no JSON path in this dialect", at)
        if declared is Type.STRING:
            return Sql(exp.JSONExtractScalar(this=base, expression=_lit(jp)), "text")
        if self.dialect == "spark":  # GET_JSON_OBJECT gives a scalar's text and an object's JSON text alike
            return Sql(exp.JSONExtractScalar(this=base, expression=_lit(jp)), "json", (base, jp))
        return Sql(exp.JSONExtract(this=base, expression=_lit(jp)), "json", (base, jp))

    def index(self, base: Sql, key: str | int, at: ir.Expr) -> Sql:
        if base.kind == "json":
            if base.json_of is not None:
                col, jp = base.json_of
                sub = json_path((key,), self.dialect)
                if sub is None:
                    raise self.fail(f"the index {key!r} has no JSON path in this dialect", at)
                node = exp.JSONExtractScalar if self.dialect == "spark" else exp.JSONExtract
                return Sql(node(this=col, expression=_lit(jp + sub[1:])), "json", (col, jp + sub[1:]))
            return self.extract(base.e, (key,), None, at)
        if base.kind == "list" and isinstance(key, int):
            d = self.dialect
            if d == "duckdb":  # 1-based; negative counts from the end; out of range is null
                return Sql(_fn("LIST_EXTRACT", base.e, _num(key + 1 if key >= 0 else key)), "text")
            if d == "spark":
                return Sql(_fn("TRY_ELEMENT_AT", base.e, _num(key + 1 if key >= 0 else key)), "text")
            return Sql(exp.Anonymous(this="ELEMENT_AT", expressions=[base.e, _num(key + 1 if key >= 0 else key)]),
                       "text")
        return Sql(exp.Null(), "null")

    # ------------------------------------------------------------------ conversions
    def text(self, s: Sql) -> Sql:
        """A value as text: strings as they are; JSON scalars as their text, other JSON as JSON text."""
        if s.kind == "text":
            return s
        if s.kind == "json":
            if self.dialect == "spark":  # JSON is text on Spark; get_json_object gives a scalar's own text
                return Sql(s.e, "text")
            if s.json_of is not None:
                col, jp = s.json_of
                return Sql(exp.JSONExtractScalar(this=col, expression=_lit(jp)), "text")
            return Sql(exp.JSONExtractScalar(this=s.e, expression=_lit("$")), "text")
        if s.kind == "null":
            return Sql(exp.cast(exp.Null(), "VARCHAR"), "text")
        if s.kind == "bool":
            return Sql(exp.Case(ifs=[exp.If(this=s.e, true=_lit("true"))],
                                default=exp.Case(ifs=[exp.If(this=exp.Not(this=s.e.copy()), true=_lit("false"))])),
                       "text")
        if s.kind == "time":
            fmt = {"duckdb": "%Y-%m-%dT%H:%M:%SZ", "spark": "yyyy-MM-dd'T'HH:mm:ss'Z'", "trino": "%Y-%m-%dT%H:%i:%sZ"}
            return Sql(exp.TimeToStr(this=s.e, format=_lit(fmt[self.dialect])), "text")
        return Sql(exp.cast(s.e, "VARCHAR"), "text")

    def number(self, s: Sql) -> Sql:
        if s.kind in ("int", "real"):
            return s
        return Sql(exp.TryCast(this=self.text(s).e, to=exp.DataType.build("DOUBLE")), "real")

    def to_time(self, s: Sql) -> Sql:
        """todatetime(): ISO-8601 text (a trailing Z or offset made UTC) or a timestamp; else null."""
        if s.kind == "time":
            return s
        if s.kind in ("int", "real"):  # Unix epoch seconds, or milliseconds past 1e11 (as the executor's values.py)
            x = exp.cast(s.e, "DOUBLE")
            secs = exp.Case(ifs=[exp.If(this=exp.GT(this=exp.Abs(this=x), expression=_num(1e11)),
                                        true=exp.Div(this=x, expression=_num(1000.0)))], default=x)
            if self.dialect == "duckdb":
                tz = _fn("TO_TIMESTAMP", secs)
                return Sql(exp.cast(exp.AtTimeZone(this=tz, zone=_lit("UTC")), "TIMESTAMP"), "time")
            if self.dialect == "spark":
                return Sql(_fn("TIMESTAMP_MICROS", exp.cast(exp.Mul(this=secs, expression=_num(1000000)),
                                                             "BIGINT")), "time")
            return Sql(_fn("FROM_UNIXTIME", secs), "time")
        t = self.text(s).e
        if self.dialect == "duckdb":
            tz = exp.TryCast(this=t, to=exp.DataType.build("TIMESTAMPTZ"))
            return Sql(exp.cast(exp.AtTimeZone(this=tz, zone=_lit("UTC")), "TIMESTAMP"), "time")
        if self.dialect == "spark":
            return Sql(_fn("TRY_TO_TIMESTAMP", t), "time")
        return Sql(_fn("TRY", _fn("FROM_ISO8601_TIMESTAMP", t)), "time")

    def truncate(self, x: exp.Expr) -> exp.Expr:
        """A number's integer part (toward zero): Spark's cast of a double to BIGINT truncates; DuckDB's and Trino's
        round, so they truncate first (TRUNC takes one argument there; Spark's trunc is a date function)."""
        if self.dialect == "spark":
            return exp.cast(x, "BIGINT")
        return exp.cast(_fn("TRUNC", x), "BIGINT")

    def cast(self, s: Sql, kind: str) -> Sql:
        if s.kind == kind or kind in ("any", "json") or s.kind == "null" or (kind == "real" and s.kind == "int"):
            return Sql(s.e, kind if s.kind != "null" else s.kind)
        if kind == "text":
            return self.text(s)
        if kind in ("int", "real"):
            n = self.number(s)
            if kind == "int":
                return Sql(self.truncate(n.e), "int")
            return n
        if kind == "bool":
            t = exp.Lower(this=self.text(s).e)
            return Sql(exp.Case(ifs=[exp.If(this=exp.EQ(this=t, expression=_lit("true")), true=exp.true()),
                                     exp.If(this=exp.EQ(this=t.copy(), expression=_lit("false")), true=exp.false())]),
                       "bool")
        if kind == "time":
            return self.to_time(s)
        raise self.fail(f"no SQL conversion of a {s.kind} value to {kind}")

    # ------------------------------------------------------------------ operators
    def compare(self, e: ir.Compare) -> Sql:
        left, right = self.value(e.left), self.value(e.right)
        kinds = {left.kind, right.kind} - {"null"}
        if not kinds:
            return Sql(exp.false(), "bool")
        if kinds & {"time"}:
            kind = "time"
        elif kinds & {"span"}:
            kind = "span"
        elif kinds & {"int", "real"}:
            kind = "real" if kinds - {"int"} else "int"  # numeric text compares as a number (decision 4)
        elif kinds == {"bool"}:
            kind = "bool"
        else:
            kind = "text"
        lt, rt = self.cast(left, kind).e, self.cast(right, kind).e
        if kind == "text" and not e.case_sensitive:
            lt, rt = exp.Lower(this=lt), exp.Lower(this=rt)
        op = {ir.CmpOp.EQ: exp.EQ, ir.CmpOp.NE: exp.EQ, ir.CmpOp.LT: exp.LT, ir.CmpOp.LE: exp.LTE,
              ir.CmpOp.GT: exp.GT, ir.CmpOp.GE: exp.GTE}[e.op]
        test = op(this=lt, expression=rt)
        if e.op is ir.CmpOp.NE:  # `!=` is `not ==`: true when a side is null (decision 1)
            return Sql(exp.Not(this=exp.Paren(this=_coalesce_false(test))), "bool")
        return Sql(test, "bool", cond=True)

    def in_list(self, e: ir.Expr, s: ir.Expr, vals: tuple[ir.Expr, ...], cs: bool) -> Sql:
        subject = self.value(s)
        outs = [self.value(v) for v in vals]
        kinds = {o.kind for o in outs} - {"null"}
        if kinds <= {"int", "real"} and kinds:
            kind = "real" if "real" in kinds or subject.kind not in ("int",) else "int"
        elif kinds == {"bool"} and subject.kind == "bool":
            kind = "bool"
        else:
            kind = "text"
        sub = self.cast(subject, kind).e
        items = [self.cast(o, kind).e for o in outs if o.kind != "null"]
        if kind == "text" and not cs:
            sub, items = exp.Lower(this=sub), [exp.Lower(this=i) for i in items]
        if not items:
            return Sql(exp.false(), "bool")
        return Sql(exp.In(this=sub, expressions=items), "bool", cond=True)

    def regex(self, subject: Sql, pattern: str) -> Sql:
        """A search of `pattern` (RE2 syntax) in the text: DuckDB runs RE2; Spark (java.util.regex) and Trino (Joni)
        read the same syntax for what the IR emits (docs/backends/sql.md)."""
        return Sql(exp.RegexpLike(this=subject.e, expression=_lit(pattern)), "bool", cond=True)

    def check_re2(self, pattern: str, at: object) -> None:
        try:
            compile_re2(pattern)
        except RegexRefused as exc:
            raise self.fail(f"the regex {pattern!r} is not RE2: {exc}", at) from None

    def arith(self, e: ir.Arith) -> Sql:
        left, right = self.value(e.left), self.value(e.right)
        if {left.kind, right.kind} & {"time", "span"}:
            if e.op is ir.ArithOp.SUB and left.kind == "time" and right.kind == "time":
                raise self.fail("datetime − datetime (a timespan) is not lowered to SQL yet", e)
            cls = {ir.ArithOp.ADD: exp.Add, ir.ArithOp.SUB: exp.Sub}.get(e.op)
            if cls is None:
                raise self.fail(f"{e.op.value} on times has no SQL form", e)
            kind = "time" if "time" in (left.kind, right.kind) else "span"
            return Sql(cls(this=_paren(left.e), expression=_paren(right.e)), kind)
        lt, rt = self.number(left), self.number(right)
        both_int = lt.kind == "int" and rt.kind == "int"
        kind = "int" if both_int else "real"
        a, b = _paren(lt.e), _paren(rt.e)
        if e.op is ir.ArithOp.DIV:
            nonzero = exp.Nullif(this=b, expression=exp.Literal.number(0))
            if both_int:  # truncates toward zero (decision 11); x / 0 is null
                q = exp.Div(this=exp.cast(a, "DOUBLE"), expression=nonzero)
                return Sql(self.truncate(q), "int")
            return Sql(exp.Div(this=exp.cast(a, "DOUBLE"), expression=nonzero), "real")
        if e.op is ir.ArithOp.MOD:  # the sign of the dividend in every dialect; x % 0 is null
            return Sql(exp.Mod(this=a, expression=exp.Nullif(this=b, expression=exp.Literal.number(0))), kind)
        cls = {ir.ArithOp.ADD: exp.Add, ir.ArithOp.SUB: exp.Sub, ir.ArithOp.MUL: exp.Mul}[e.op]
        return Sql(cls(this=a, expression=b), kind)

    # ------------------------------------------------------------------ functions
    def call(self, e: ir.Call) -> Sql:
        lower = FUNCTIONS.get(e.fn)
        if lower is None:
            raise self.fail(UNSUPPORTED.get(e.fn, f"no SQL for function {e.fn}()"), e)
        return lower(self, e, [self.value(a) for a in e.args])

    def now_value(self) -> exp.Expr:
        if self.now is not None:
            return self.literal(self.now, ir.Literal(self.now, Type.DATETIME)).e
        return exp.cast(exp.CurrentTimestamp(), "TIMESTAMP")


def _common(kinds: list[str]) -> str:
    ks = [k for k in kinds if k != "null"]
    if not ks:
        return "null"
    if all(k == ks[0] for k in ks):
        return ks[0]
    if set(ks) <= {"int", "real"}:
        return "real"
    return "text"


# ------------------------------------------------------------------ the function table (compiler/functions.py)
SqlCall = Callable[[SqlLowering, ir.Call, list[Sql]], Sql]


def _isnull(low: SqlLowering, e: ir.Call, a: list[Sql]) -> Sql:
    test: exp.Expr = exp.Is(this=a[0].e, expression=exp.Null())
    null = _json_null(low, a[0])
    if null is not None:  # a JSON null is null (decision 2)
        test = exp.or_(test, null)
    if e.fn == "isnotnull":
        return Sql(exp.Not(this=exp.Paren(this=test)), "bool")
    return Sql(exp.Paren(this=test), "bool")


def _json_null(low: SqlLowering, s: Sql) -> exp.Expr | None:
    """A test that a JSON value is JSON's null: DuckDB's JSON type; Trino's JSON extraction; Spark's
    get_json_object gives SQL NULL for it already."""
    if s.kind != "json":
        return None
    if low.dialect == "duckdb":
        return exp.EQ(this=exp.Upper(this=_fn("JSON_TYPE", s.e)), expression=_lit("NULL"))
    if low.dialect == "trino" and s.json_of is not None:
        return exp.EQ(this=_fn("JSON_FORMAT", s.e), expression=_lit("null"))
    return None


def _isempty(low: SqlLowering, e: ir.Call, a: list[Sql]) -> Sql:
    v = a[0]
    empty: exp.Expr
    if v.kind == "json":
        t = low.text(v).e
        empty = exp.or_(exp.Is(this=t, expression=exp.Null()), exp.EQ(this=t.copy(), expression=_lit("")),
                        exp.EQ(this=t.copy(), expression=_lit("[]")))
    elif v.kind == "list":
        empty = exp.or_(exp.Is(this=v.e, expression=exp.Null()),
                        exp.EQ(this=exp.ArraySize(this=v.e.copy()), expression=exp.Literal.number(0)))
    elif v.kind == "text":
        empty = exp.or_(exp.Is(this=v.e, expression=exp.Null()), exp.EQ(this=v.e.copy(), expression=_lit("")))
    else:
        empty = exp.Is(this=v.e, expression=exp.Null())
    if e.fn == "isnotempty":
        return Sql(exp.Not(this=exp.Paren(this=empty)), "bool")
    return Sql(exp.Paren(this=empty), "bool")


def _coalesce(low: SqlLowering, e: ir.Call, a: list[Sql]) -> Sql:
    kind = _common([x.kind for x in a])
    vals = [low.cast(x, kind) for x in a]
    return Sql(exp.Coalesce(this=vals[0].e, expressions=[v.e for v in vals[1:]]), kind)


def _to(kind: str) -> SqlCall:
    return lambda low, e, a: low.cast(a[0], kind)


def _strcat(low: SqlLowering, e: ir.Call, a: list[Sql]) -> Sql:
    parts = [exp.Coalesce(this=low.text(x).e, expressions=[_lit("")]) for x in a]
    out: exp.Expr = parts[0]
    for p in parts[1:]:
        out = exp.DPipe(this=out, expression=p, safe=True)
    return Sql(out, "text")


def _split(low: SqlLowering, e: ir.Call, a: list[Sql]) -> Sql:
    """sqlglot's Split is a literal delimiter in every dialect (on Spark, whose split reads a regex, it is quoted)."""
    return Sql(exp.Split(this=low.text(a[0]).e, expression=low.text(a[1]).e), "list")


def _substring(low: SqlLowering, e: ir.Call, a: list[Sql]) -> Sql:
    s = low.text(a[0]).e
    start = exp.Add(this=_paren(low.number(a[1]).e), expression=exp.Literal.number(1))
    args = {"this": s, "start": start}
    if len(a) > 2:
        args["length"] = low.number(a[2]).e
    return Sql(exp.Substring(**args), "text")


def _hourofday(low: SqlLowering, e: ir.Call, a: list[Sql]) -> Sql:
    return Sql(exp.Extract(this=exp.var("HOUR"), expression=low.to_time(a[0]).e), "int")


def _dayofweek(low: SqlLowering, e: ir.Call, a: list[Sql]) -> Sql:
    """0 = Sunday … 6 = Saturday (decision 6): DuckDB's dayofweek is that already; Spark's is 1 = Sunday; Trino's
    day_of_week is ISO (1 = Monday … 7 = Sunday)."""
    t = low.to_time(a[0]).e
    if low.dialect == "duckdb":
        return Sql(exp.Extract(this=exp.var("DOW"), expression=t), "int")
    if low.dialect == "spark":
        return Sql(exp.Sub(this=exp.DayOfWeek(this=t), expression=exp.Literal.number(1)), "int")
    return Sql(exp.Mod(this=exp.DayOfWeekIso(this=t), expression=exp.Literal.number(7)), "int")


def _from_epoch(scale: int) -> SqlCall:
    def lower(low: SqlLowering, e: ir.Call, a: list[Sql]) -> Sql:
        n = low.number(a[0]).e
        if scale != 1:
            n = exp.Div(this=_paren(n), expression=exp.Literal.number(scale))
        if low.dialect == "duckdb":
            return Sql(exp.cast(exp.AtTimeZone(this=_fn("TO_TIMESTAMP", n), zone=_lit("UTC")), "TIMESTAMP"), "time")
        if low.dialect == "spark":
            return Sql(_fn("TIMESTAMP_SECONDS", n), "time")
        return Sql(_fn("FROM_UNIXTIME", n), "time")
    return lower


def _bin(low: SqlLowering, e: ir.Call, a: list[Sql]) -> Sql:
    x, size = a
    if x.kind == "time" and isinstance(e.args[1], ir.Literal) and isinstance(e.args[1].value, timedelta):
        secs = e.args[1].value.total_seconds()
        if secs <= 0 or secs != int(secs):
            raise low.fail("bin() of a time by a size that is not a whole number of seconds", e)
        epoch = {"duckdb": _fn("EPOCH", x.e), "spark": _fn("UNIX_SECONDS", x.e),
                 "trino": _fn("TO_UNIXTIME", x.e)}[low.dialect]
        floored = exp.Mul(this=_fn("FLOOR", exp.Div(this=_paren(epoch), expression=_num(int(secs)))),
                          expression=_num(int(secs)))
        return _from_epoch(1)(low, e, [Sql(floored, "real")])
    if x.kind in ("int", "real") and size.kind in ("int", "real"):
        nonzero = exp.Nullif(this=size.e, expression=exp.Literal.number(0))
        out = exp.Mul(this=_fn("FLOOR", exp.Div(this=exp.cast(_paren(x.e), "DOUBLE"), expression=nonzero)),
                      expression=_paren(size.e.copy()))
        return Sql(exp.cast(out, "BIGINT") if x.kind == "int" and size.kind == "int" else out, x.kind)
    raise low.fail("bin() of these types is not lowered to SQL yet", e)


def _array_length(low: SqlLowering, e: ir.Call, a: list[Sql]) -> Sql:
    v = a[0]
    if v.kind == "list":
        return Sql(exp.ArraySize(this=v.e), "int")
    if v.kind == "json":
        if low.dialect == "duckdb":
            return Sql(exp.Case(ifs=[exp.If(this=exp.EQ(this=_fn("JSON_TYPE", v.e), expression=_lit("ARRAY")),
                                            true=_fn("JSON_ARRAY_LENGTH", v.e.copy()))]), "int")
        return Sql(_fn("JSON_ARRAY_LENGTH", low.text(v).e), "int")
    return Sql(exp.cast(exp.Null(), "BIGINT"), "int")


def _case_fn(cls: type[exp.Func]) -> SqlCall:
    return lambda low, e, a: Sql(cls(this=low.text(a[0]).e), "text")


def _strlen(low: SqlLowering, e: ir.Call, a: list[Sql]) -> Sql:
    return Sql(exp.Length(this=low.text(a[0]).e), "int")


def _replace_string(low: SqlLowering, e: ir.Call, a: list[Sql]) -> Sql:
    s, old, new = (low.text(x).e for x in a)
    return Sql(_fn("REPLACE", s, old, new), "text")


def _literal_regex(low: SqlLowering, e: ir.Call, i: int) -> str:
    p = e.args[i]
    assert isinstance(p, ir.Literal)  # compiler/functions.py: a literal parameter
    low.check_re2(str(p.value), e)
    return str(p.value)


def _replace_regex(low: SqlLowering, e: ir.Call, a: list[Sql]) -> Sql:
    pattern = _literal_regex(low, e, 1)
    if low.dialect != "duckdb":
        raise low.fail("replace_regex() group references differ in this dialect ($1, not \\1)", e)
    return Sql(exp.RegexpReplace(this=low.text(a[0]).e, expression=_lit(pattern), replacement=low.text(a[2]).e,
                                 modifiers=_lit("g")), "text")


def _extract(low: SqlLowering, e: ir.Call, a: list[Sql]) -> Sql:
    pattern = _literal_regex(low, e, 0)
    group = e.args[1]
    assert isinstance(group, ir.Literal) and isinstance(group.value, int)
    subject = low.text(a[2]).e
    found = exp.RegexpExtract(this=subject, expression=_lit(pattern), group=exp.Literal.number(group.value))
    # no match is null (the dialects give ""): only where the pattern matches is the group read
    return Sql(exp.Case(ifs=[exp.If(this=exp.RegexpLike(this=subject.copy(), expression=_lit(pattern)),
                                    true=found)]), "text")


def _parse_json(low: SqlLowering, e: ir.Call, a: list[Sql]) -> Sql:
    """KQL's parse_json of text (docs/semantics.md decision 75): the JSON value, else the text as a JSON string.
    DuckDB only: Spark and Trino have no test of JSON text that does not fail the query or give null."""
    if low.dialect != "duckdb":
        raise low.fail("parse_json() of text: this dialect cannot tell text that is not JSON from null", e)
    t = low.text(a[0]).e
    valid = _fn("JSON_VALID", t)
    return Sql(exp.Case(ifs=[exp.If(this=valid, true=exp.cast(t.copy(), "JSON"))],
                        default=_fn("TO_JSON", t.copy())), "json")


def _bag_pack(low: SqlLowering, e: ir.Call, a: list[Sql]) -> Sql:
    """DuckDB's json_object (docs/semantics.md decision 36): a null member is JSON null; a datetime is its ISO text,
    as tostring() spells it. Spark's to_json drops null fields (ignoreNullFields); Trino has no form checked here:
    refused there."""
    if low.dialect == "spark":
        raise low.fail("bag_pack(): Spark's to_json of a struct drops its null members (ignoreNullFields)", e)
    if low.dialect != "duckdb":
        raise low.fail("bag_pack(): no Trino form yet (no Trino engine here to check json_object's members on)", e)
    pairs: list[exp.Expr] = []
    for key, (v, value) in zip(a[::2], zip(e.args[1::2], a[1::2], strict=True), strict=True):
        if value.kind == "span":
            raise low.fail("bag_pack(): no SQL for a timespan member (DuckDB writes an interval's own text)", v)
        out = low.text(value) if value.kind == "time" else value
        pairs.append(exp.JSONKeyValue(this=key.e, expression=out.e))
    return Sql(exp.JSONObject(expressions=pairs), "json")


def _indexof(low: SqlLowering, e: ir.Call, a: list[Sql]) -> Sql:
    """The 1-based position (0 when absent) minus one: -1 when absent; null on null (decision 76)."""
    pos = exp.StrPosition(this=low.text(a[0]).e, substr=low.text(a[1]).e)
    return Sql(exp.Sub(this=pos, expression=exp.Literal.number(1)), "int")


def _indexof_regex(low: SqlLowering, e: ir.Call, a: list[Sql]) -> Sql:
    """The length of the shortest prefix a match follows (decision 76); -1 without a match."""
    pattern = _literal_regex(low, e, 1)
    subject = low.text(a[0]).e
    prefix = exp.RegexpExtract(this=subject.copy(), expression=_lit(f"(?s)^(.*?)(?:{pattern})"),
                               group=exp.Literal.number(1))
    return Sql(exp.Case(ifs=[exp.If(this=exp.RegexpLike(this=subject, expression=_lit(pattern)),
                                    true=exp.Length(this=prefix))],
                        default=exp.Case(ifs=[exp.If(this=exp.Not(this=exp.Is(this=subject.copy(),
                                                                                 expression=exp.Null())),
                                                     true=exp.Literal.number(-1))])), "int")


_UNIT_SECONDS = {"week": 604800, "day": 86400, "hour": 3600, "minute": 60, "second": 1}


def _epoch(low: SqlLowering, t: exp.Expr) -> exp.Expr:
    return {"duckdb": _fn("EPOCH", t), "spark": _fn("UNIX_SECONDS", t), "trino": _fn("TO_UNIXTIME", t)}[low.dialect]


def _datetime_diff(low: SqlLowering, e: ir.Call, a: list[Sql]) -> Sql:
    """Unit boundaries crossed from b to a (decision 7), on UTC: the difference of the units counted from the epoch.
    Weeks start on Sunday (1970-01-01 was a Thursday: 4 days after one). Trino's date_diff counts whole units
    elapsed instead, so no dialect's own function is used."""
    unit = e.args[0]
    assert isinstance(unit, ir.Literal)
    u = str(unit.value)
    size = _UNIT_SECONDS.get(u)
    if size is None:
        raise low.fail(f'datetime_diff("{u}") is not lowered to SQL yet', e)
    shift = 4 * 86400 if u == "week" else 0

    def index(t: exp.Expr) -> exp.Expr:
        secs = _epoch(low, t)
        if shift:
            secs = exp.Add(this=secs, expression=exp.Literal.number(shift))
        return _fn("FLOOR", exp.Div(this=_paren(secs), expression=exp.Literal.number(size)))

    diff = exp.Sub(this=index(low.to_time(a[1]).e), expression=index(low.to_time(a[2]).e))
    return Sql(exp.cast(diff, "BIGINT"), "int")


FUNCTIONS: dict[str, SqlCall] = {
    "isnull": _isnull,
    "isnotnull": _isnull,
    "isempty": _isempty,
    "isnotempty": _isempty,
    "coalesce": _coalesce,
    "tostring": _to("text"),
    "toint": _to("int"),
    "todouble": _to("real"),
    "tobool": _to("bool"),
    "todatetime": _to("time"),
    "unixtime_seconds_todatetime": _from_epoch(1),
    "unixtime_milliseconds_todatetime": _from_epoch(1000),
    "tolower": _case_fn(exp.Lower),
    "toupper": _case_fn(exp.Upper),
    "strlen": _strlen,
    "substring": _substring,
    "split": _split,
    "strcat": _strcat,
    "replace_string": _replace_string,
    "replace_regex": _replace_regex,
    "extract": _extract,
    "array_length": _array_length,
    "parse_json": _parse_json,
    "bag_pack": _bag_pack,
    "indexof": _indexof,
    "indexof_regex": _indexof_regex,
    "now": lambda low, e, a: Sql(low.now_value(), "time"),
    "ago": lambda low, e, a: Sql(exp.Sub(this=low.now_value(), expression=a[0].e), "time"),
    "bin": _bin,
    "hourofday": _hourofday,
    "dayofweek": _dayofweek,
    "datetime_diff": _datetime_diff,
}
UNSUPPORTED: dict[str, str] = {}  # every function has an entry above; some refuse particular uses (say which)


def sql_tree(rule: ir.RuleIR, dialect: str, now: datetime | None = None) -> exp.Expr:
    """The rule's query as one sqlglot tree for `dialect` (CompileError: what SQL cannot say, and where)."""
    return _tree(rule, dialect, now)[0]


def output_kinds(rule: ir.RuleIR, dialect: str, now: datetime | None = None) -> tuple[str, dict[str, str]]:
    """The query's text and the kind of each column it outputs (json: JSON text a runner parses)."""
    tree, low = _tree(rule, dialect, now)
    return tree.sql(dialect=dialect, pretty=True), {c: k for c, k in low.scope.items() if c != ROW_ORDER}


def _tree(rule: ir.RuleIR, dialect: str, now: datetime | None) -> tuple[exp.Expr, SqlLowering]:
    if dialect not in ("duckdb", "spark", "trino"):
        raise refusal(rule, FEATURES, f"no SQL dialect {dialect!r} (duckdb, spark, trino)", code="binding")
    if rule.pipeline.source.union is not None:
        low = SqlLowering(rule, dialect, rule.pipeline.stages, None, now)
        return low.union(), low
    low = _lowering(rule, dialect, now)
    return low.query(), low


def _lowering(rule: ir.RuleIR, dialect: str, now: datetime | None) -> SqlLowering:
    """The lowering of a rule that reads a source (not a union)."""
    if dialect == "trino":
        bound = lowering.bind(rule, TRINO_FEATURES, TRINO_BINDING)
        if bound.binding is None or bound.binding.name != TRINO_BINDING:
            raise refusal(rule, TRINO_FEATURES, "trino reads Amazon Security Lake, which holds only aws.cloudtrail "
                          "here", code="binding")
        if not bindings_for(bound.source, "splunk"):
            raise refusal(rule, TRINO_FEATURES, "no Security Lake binding", code="binding")
        return SqlLowering(rule, dialect, lowering.expand_views(rule.pipeline), bound.binding, now)
    lowering.bind(rule, FEATURES, None)  # refuses a source no target may read as written (no_binding)
    # every view is expanded over the raw records (binds_views=False; bind's stages keep only the rule's own there)
    return SqlLowering(rule, dialect, lowering.expand_views(rule.pipeline), None, now)


def compile_sql(rule: ir.RuleIR, dialect: str, now: datetime | None = None) -> str:
    return sql_tree(rule, dialect, now).sql(dialect=dialect, pretty=True)
