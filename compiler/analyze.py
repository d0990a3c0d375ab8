"""Semantic analysis: resolve names against the row schema at each stage, check types and calls, build the IR.

One pass over the AST, stage by stage, carrying the schema (which columns exist, with which types) forward.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from . import ir
from . import syntax as s
from .diagnostics import CompileError, DiagnosticSink, Severity, Span
from .functions import ALIASES, DATETIME_DIFF_UNITS, FUNCTIONS
from .sources import SourceDef
from .types import Type, compatible, parse_type, unify
from .yamlpos import TextOrigin

AGG_FUNCTIONS = {
    "count": ir.AggFn.COUNT,
    "dcount": ir.AggFn.DCOUNT,
    "dc": ir.AggFn.DCOUNT,
    "min": ir.AggFn.MIN,
    "max": ir.AggFn.MAX,
    "sum": ir.AggFn.SUM,
    "avg": ir.AggFn.AVG,
    "stdev": ir.AggFn.STDEV,
    "stdevp": ir.AggFn.STDEVP,
    "values": ir.AggFn.VALUES,
    "make_set": ir.AggFn.VALUES,
    "earliest": ir.AggFn.EARLIEST,
    "latest": ir.AggFn.LATEST,
    "arg_max": ir.AggFn.ARG_MAX,
    "arg_min": ir.AggFn.ARG_MIN,
}


@dataclass(slots=True)
class Schema:
    """The columns of the rows flowing between two stages.

    Open: rows straight from a source, which may carry fields the source does not declare.
    Closed: after summarize/project, exactly `columns`.
    """

    columns: dict[str, Type]
    open: bool
    source: SourceDef | None
    time_column: str | None
    # source fields no longer on the rows (renamed away), with why: an open schema must not read them from the source
    gone: dict[str, str] = field(default_factory=dict)

    def copy(self) -> Schema:
        return Schema(dict(self.columns), self.open, self.source, self.time_column, dict(self.gone))


@dataclass(slots=True)
class LookupDecl:
    name: str
    path: str
    columns: tuple[str, ...]
    types: tuple[Type, ...]
    span: Span | None = None


@dataclass(slots=True)
class Analyzer:
    origin: TextOrigin
    sink: DiagnosticSink
    lookups: dict[str, LookupDecl] = field(default_factory=dict)
    # the side table from IR nodes (by identity) to where the rule wrote them: backends' refusals point there
    spans: list[tuple[object, Span]] = field(default_factory=list)

    # ------------------------------------------------------------------ positions
    def span(self, pos: s.Pos) -> Span:
        end = pos.end_column if pos.end_line == pos.line else None
        return self.origin.span(pos.line, pos.column, end)

    def fail(self, message: str, pos: s.Pos, hint: str | None = None) -> CompileError:
        self.sink.error(message, self.span(pos), hint, code="semantic")
        return CompileError(list(self.sink.items))

    # ------------------------------------------------------------------ stages
    def lower_program(self, program: s.Program, schema: Schema) -> tuple[tuple[ir.Stage, ...], Schema]:
        stages: list[ir.Stage] = []
        for node in program.stages:
            new, schema = self.lower_stage(node, schema)
            where = self.span(node.pos)
            self.spans.extend((st, where) for st in new)
            stages.extend(new)
        return tuple(stages), schema

    def lower_stage(self, node: s.StageNode, schema: Schema) -> tuple[list[ir.Stage], Schema]:
        match node:
            case s.Where(predicate=p):
                pred = self.expr(p, schema)
                self.expect_bool(pred, p)
                return [ir.Filter(pred)], schema
            case s.ExtendStage(assignments=assigns):
                return self.lower_extend(assigns, schema)
            case s.Summarize(aggregations=aggs, by=by):
                by_ir = self.lower_by(by, schema)
                aggs_ir = self.lower_aggs(aggs, schema)
                self.check_unique([a.name for a in by_ir] + [a.name for a in aggs_ir], node.pos)
                cols = {a.name: a.expr.type for a in by_ir}
                cols.update({a.name: a.type for a in aggs_ir})
                return [ir.Aggregate(aggs_ir, by_ir)], Schema(cols, False, schema.source, None)
            case s.Eventstats(aggregations=aggs, by=by):
                by_ir = self.lower_by(by, schema)
                aggs_ir = self.lower_aggs(aggs, schema)
                out = schema.copy()
                for a in aggs_ir:
                    out.columns[a.name] = a.type
                return [ir.EventAggregate(aggs_ir, by_ir)], out
            case s.LookupStage():
                return self.lower_lookup(node, schema)
            case s.RenameStage(renames=renames):
                out = schema.copy()
                pairs: list[tuple[str, str]] = []
                for new, old_node, pos in renames:
                    col = self.expr(old_node, schema)
                    if isinstance(old_node, s.Name) and (not isinstance(col, ir.Column) or col.name != old_node.name):
                        raise self.fail(f"{old_node.name!r} is a derived field of the source, not a column; "
                                        f"use `extend {new} = {old_node.name}`", pos)
                    if not isinstance(col, ir.Column) or col.path:
                        raise self.fail(
                            "rename takes a column name; for a nested path use "
                            f"`extend {new} = {s.node_text(old_node)}`",
                            pos,
                        )
                    t = out.columns.pop(col.name, col.type)
                    out.columns[new] = t
                    out.gone[col.name] = f"renamed to {new!r}"
                    pairs.append((col.name, new))
                return [ir.Rename(tuple(pairs))], out
            case s.ProjectStage(items=items):
                return self.lower_project(items, schema)
            case s.SortStage(keys=keys):
                return [ir.Sort(tuple(ir.SortKey(self.expr(e, schema), d) for e, d in keys))], schema
            case s.TakeStage(count=n):
                return [ir.Limit(n)], schema
            case s.ExpandStage():
                return self.lower_expand(node, schema)
            case s.JoinStage():
                return self.lower_join(node, schema)
        raise AssertionError(node)

    def lower_join(self, node: s.JoinStage, schema: Schema) -> tuple[list[ir.Stage], Schema]:
        """`join kind=K (source | stages…) on a, $left.x == $right.y` (docs/semantics.md decision 70): the right side
        is a pipeline of its own; its columns join the row, a name the left rows have suffixed as KQL does."""
        from .api import compile_view, open_schema  # api compiles rules with this module
        from .sources import builtin_sources

        kinds = {k.value: k for k in ir.JoinKind}
        kind = ir.JoinKind.INNERUNIQUE if node.kind is None else kinds.get(node.kind)
        if kind is None:
            raise self.fail(f"unknown join kind {node.kind!r}", node.kind_pos or node.pos,
                            hint="kinds: " + ", ".join(kinds))
        src = builtin_sources().get(node.source)
        if src is None:
            raise self.fail(f"unknown source {node.source!r}", node.source_pos,
                            hint=_did_you_mean(node.source, builtin_sources()) or "the right side of a join starts "
                            "with the source it reads: `join kind=inner (aws.cloudtrail | where …) on …`")
        if src.view is not None:
            view, cols, view_spans = compile_view(src.name)
            self.spans.extend(view_spans)
            start = Schema(dict(cols), False, src, src.time_column)
            ref = ir.SourceRef(src.name, src.time_column, view)
        else:
            start, ref = open_schema(src), ir.SourceRef(src.name, src.time_column)
        stages, right = self.lower_program(s.Program(node.stages), start)
        keys: list[tuple[ir.Expr, str]] = []
        for left_node, right_name, pos in node.keys:
            left_root = _names_in(left_node)[0].name
            if not self.known(left_root, schema):
                raise self.fail(f"the left side of the join has no column {left_root!r}", pos,
                                hint=_did_you_mean(left_root, schema.columns))
            left = self.expr(left_node, schema)
            if not self.known(right_name, right):
                raise self.fail(f"the right side of the join has no column {right_name!r}", pos,
                                hint=_did_you_mean(right_name, right.columns))
            col = self.expr(s.Name(right_name, pos), right)
            if not isinstance(col, ir.Column) or col.path:
                raise self.fail(f"{right_name!r} is a derived field of the source, not a column: the right side "
                                f"joins on a column; `extend {right_name}_ = {right_name}` there first", pos)
            self.check_comparable(left, col, pos)
            keys.append((left, col.name))
        out = schema.copy()
        outputs: list[tuple[str, str]] = []
        types: list[Type] = []
        if kind in (ir.JoinKind.LEFTSEMI, ir.JoinKind.LEFTANTI) and node.outputs is not None:
            raise self.fail(f"a {kind.value} join keeps the left columns only: it has no `output`", node.pos)
        if kind not in (ir.JoinKind.LEFTSEMI, ir.JoinKind.LEFTANTI):
            if right.open:
                raise self.fail(f"the right side of a {kind.value} join gives the joined rows its columns, so it must "
                                "say which: end it with `project` or `summarize`", node.source_pos)
            chosen: list[tuple[str, str | None]] = [(c, None) for c in right.columns]
            if node.outputs is not None:
                chosen = []
                for o in node.outputs:
                    if o.column not in right.columns:
                        raise self.fail(f"the right side of the join has no column {o.column!r}", o.pos,
                                        hint=_did_you_mean(o.column, right.columns))
                    if o.alias is not None and self.known(o.alias, out):
                        raise self.fail(f"{o.alias!r} is a column of the left rows already", o.pos)
                    chosen.append((o.column, o.alias))
                self.check_unique([a or c for c, a in chosen], node.pos)
            for rcol, given in chosen:
                t = right.columns[rcol]
                alias, n = given or rcol, 0
                while given is None and self.known(alias, out):
                    n += 1
                    alias = f"{rcol}{n}"
                out.columns[alias] = t
                out.gone.pop(alias, None)
                outputs.append((rcol, alias))
                types.append(t)
        right_pipeline = ir.Pipeline(ref, stages, None if right.open else tuple(right.columns.items()))
        return [ir.Join(kind, right_pipeline, tuple(keys), tuple(outputs), tuple(types), node.empty_keys_match)], out

    def lower_expand(self, node: s.ExpandStage, schema: Schema) -> tuple[list[ir.Stage], Schema]:
        """`mv-expand Col` / `mv-expand Name = expr [to typeof(T)]`: the column becomes the array's element."""
        name = node.name
        if name is None:
            if not isinstance(node.expr, s.Name):
                raise self.fail("mv-expand of an expression needs a column name for its elements",
                                _pos(node.expr), hint=f"write `mv-expand x = {s.node_text(node.expr)}`")
            name = node.expr.name
        e = self.expr(node.expr, schema)
        if e.type not in (Type.DYNAMIC, Type.ANY, Type.NULL):
            article = "an" if str(e.type)[:1] in "aeiou" else "a"
            raise self.fail(f"mv-expand expands an array, and this is {article} {e.type}", _pos(node.expr),
                            hint="expand an array: a JSON path of the event, or split(...) of a string")
        ty = Type.DYNAMIC
        if node.type_name is not None:
            found = parse_type(node.type_name)
            if found not in _EXPAND_TYPES:
                raise self.fail(f"mv-expand cannot type its elements as {node.type_name!r}",
                                node.type_pos or node.pos,
                                hint="use one of " + ", ".join(sorted(_EXPAND_TYPES_TEXT)))
            assert found is not None
            ty = found
        out = schema.copy()
        out.columns[name] = ty
        out.gone.pop(name, None)
        if node.limit is not None and node.limit < 1:
            raise self.fail("mv-expand limit needs at least 1 element", node.pos)
        return [ir.Expand(name, e, ty, node.limit)], out

    def lower_extend(self, assigns: tuple[s.Assign, ...], schema: Schema) -> tuple[list[ir.Stage], Schema]:
        out = schema.copy()
        new_names = {a.name for a in assigns}
        result: list[ir.Assignment] = []
        seen: set[str] = set()
        for a in assigns:
            if a.name in seen:
                raise self.fail(f"{a.name!r} is assigned twice in one extend", a.pos)
            seen.add(a.name)
            for ref in _names_in(a.expr):
                if (
                    ref.name in new_names
                    and ref.name in seen
                    and ref.name != a.name
                    and not self.known(ref.name, schema)
                ):
                    raise self.fail(
                        f"{ref.name!r} is assigned in this same extend, and its value is not visible here",
                        ref.pos,
                        hint="extend assigns in parallel (as KQL); split it into two extend stages",
                    )
            e = self.expr(a.expr, schema)
            result.append(ir.Assignment(a.name, e))
        for done in result:
            out.columns[done.name] = done.expr.type
        return [ir.Extend(tuple(result))], out

    def known(self, name: str, schema: Schema) -> bool:
        if name in schema.columns:
            return True
        return schema.open and schema.source is not None and schema.source.field_type(name) is not None

    def lower_by(self, by: tuple[s.ByItem, ...], schema: Schema) -> tuple[ir.Assignment, ...]:
        out: list[ir.Assignment] = []
        for item in by:
            e = self.expr(item.expr, schema)
            name = item.name or _default_name(item.expr)
            if name is None:
                raise self.fail("name this grouping expression: `by name = expression`", item.pos)
            out.append(ir.Assignment(name, e))
        return tuple(out)

    def lower_values_of_each(self, agg: s.AggCall, fn: ir.AggFn,
                             each: tuple[s.Every, tuple[str | int, ...]], schema: Schema) -> ir.Aggregation:
        """`values(a[].b)`: the distinct scalars at `b` of every element of the array `a` (docs/semantics.md 87)."""
        every, path = each
        if fn is not ir.AggFn.VALUES:
            raise self.fail(f"{agg.fn}() of `[]` (every element): only values() reads every element", every.pos)
        if _every_path(every.base) is not None:
            raise self.fail("`[]` inside `[]`: values() reads the elements of one array", every.pos)
        arg = self.expr(every.base, schema)
        if arg.type not in (Type.DYNAMIC, Type.ANY):
            raise self.fail(f"`[]` needs an array, not a {arg.type}", every.pos)
        assert agg.arg is not None
        name = agg.name or f"{agg.fn}_{re.sub(r'[^A-Za-z0-9_]', '_', s.node_text(agg.arg))}"
        return ir.Aggregation(name, fn, arg, Type.DYNAMIC, each=path)

    def lower_aggs(self, aggs: tuple[s.AggCall, ...], schema: Schema) -> tuple[ir.Aggregation, ...]:
        out: list[ir.Aggregation] = []
        for agg in aggs:
            fn = AGG_FUNCTIONS.get(agg.fn)
            if fn is None:
                raise self.fail(
                    f"unknown aggregation {agg.fn!r}",
                    agg.fn_pos,
                    hint=_did_you_mean(agg.fn, AGG_FUNCTIONS) or "aggregations: " + ", ".join(sorted(AGG_FUNCTIONS)),
                )
            if fn in (ir.AggFn.ARG_MAX, ir.AggFn.ARG_MIN):
                out.extend(self.lower_arg_agg(agg, fn, schema))
                continue
            limit = self.values_limit(agg) if fn is ir.AggFn.VALUES else None
            if agg.more and limit is None:
                raise self.fail(f"{agg.fn}() takes 1 argument", agg.more[0].pos)
            each = _every_path(agg.arg) if agg.arg is not None else None
            if each is not None:
                out.append(self.lower_values_of_each(agg, fn, each, schema))
                continue
            arg = self.expr(agg.arg, schema) if agg.arg is not None else None
            if arg is None and fn is not ir.AggFn.COUNT:
                raise self.fail(f"{agg.fn}() needs an argument", agg.fn_pos)
            if (
                fn in (ir.AggFn.SUM, ir.AggFn.AVG, ir.AggFn.STDEV, ir.AggFn.STDEVP)
                and arg is not None
                and arg.type not in (Type.INT, Type.REAL, Type.ANY, Type.DYNAMIC, Type.TIMESPAN)
            ):
                raise self.fail(f"{agg.fn}() needs a number, not {arg.type}", _pos(agg.arg) if agg.arg else agg.pos)
            if fn in (ir.AggFn.STDEV, ir.AggFn.STDEVP) and arg is not None and arg.type is Type.TIMESPAN:
                raise self.fail(f"{agg.fn}() needs a number, not a timespan",
                                _pos(agg.arg) if agg.arg else agg.pos)
            if fn in (ir.AggFn.EARLIEST, ir.AggFn.LATEST) and (
                schema.time_column is None or schema.time_column not in schema.columns and not schema.open
            ):
                raise self.fail(f"{agg.fn}() needs the event time column, which these rows no longer have", agg.pos)
            t = _agg_type(fn, arg)
            default = (
                "count"
                if fn is ir.AggFn.COUNT and arg is None
                else (
                    f"{agg.fn}_{re.sub(r'[^A-Za-z0-9_]', '_', s.node_text(agg.arg))}" if agg.arg is not None else agg.fn
                )
            )
            out.append(ir.Aggregation(agg.name or default, fn, arg, t, limit=limit))
        return tuple(out)

    def values_limit(self, agg: s.AggCall) -> int | None:
        """`values(x, N)` / `make_set(x, N)`: at most N of the distinct values, which N unspecified when there are
        more (docs/semantics.md decision 95). N is a whole-number literal of at least 1."""
        if not agg.more:
            return None
        if len(agg.more) > 1:
            raise self.fail(f"{agg.fn}() takes the expression and at most one limit: {agg.fn}(x, 10)",
                            agg.more[1].pos)
        item = agg.more[0]
        if item.name is not None or not (isinstance(item.expr, s.Lit) and item.expr.kind == "int"):
            raise self.fail(f"the second argument of {agg.fn}() is how many values it keeps at most: a whole "
                            f"number, as in {agg.fn}(x, 10)", item.pos)
        n = item.expr.value
        assert isinstance(n, int)
        if n < 1:
            raise self.fail(f"{agg.fn}() keeps at most {n} values: the limit must be at least 1", item.pos)
        return n

    def lower_arg_agg(self, agg: s.AggCall, fn: ir.AggFn, schema: Schema) -> list[ir.Aggregation]:
        """`arg_max(key, a, n = b)`: the key's own column (named by the aggregation's name, else after the key) and
        one column per further argument, all read from the one row with the largest key (decision 78)."""
        if agg.arg is None or not agg.more:
            raise self.fail(f"{agg.fn}() takes the expression to maximise and at least one column to return: "
                            f"{agg.fn}(_time, eventName)", agg.fn_pos)
        key = self.expr(agg.arg, schema)
        if key.type in (Type.DYNAMIC,):
            raise self.fail(f"{agg.fn}() compares its first argument, and this is a {key.type}", _pos(agg.arg))
        key_name = agg.name or _default_name(agg.arg)
        if key_name is None:
            raise self.fail(f"name the column of {agg.fn}()'s key: `k = {agg.fn}(…)`", _pos(agg.arg))
        out = [ir.Aggregation(key_name, fn, key, key.type, key=key)]
        for item in agg.more:
            value = self.expr(item.expr, schema)
            name = item.name or _default_name(item.expr)
            if name is None:
                raise self.fail(f"name this column of {agg.fn}(): `{agg.fn}(…, n = {s.node_text(item.expr)})`",
                                item.pos)
            out.append(ir.Aggregation(name, fn, value, value.type, key=key))
        return out

    def lower_lookup(self, node: s.LookupStage, schema: Schema) -> tuple[list[ir.Stage], Schema]:
        decl = self.lookups.get(node.table)
        if decl is None:
            hint = (
                f"declared lookups: {', '.join(sorted(self.lookups))}"
                if self.lookups
                else "declare it in the rule: lookups: {" + node.table + ": path/to/table.csv}"
            )
            raise self.fail(f"unknown lookup table {node.table!r}", node.table_pos, hint=hint)
        table = ir.LookupTable(decl.name, decl.path, decl.columns, decl.types)
        keys: list[tuple[ir.Expr, str]] = []
        for k in node.keys:
            row = self.expr(k.row, schema)
            written = k.row.name if isinstance(k.row, s.Name) else None  # `on src`: the name as written
            col = k.table_column or written or (row.name if isinstance(row, ir.Column) and not row.path else None)
            if col is None:
                raise self.fail("say which table column this key matches: `on path = column`", k.pos)
            if col not in decl.columns:
                raise self.fail(
                    f"table {decl.name!r} has no column {col!r}", k.pos, hint="its columns: " + ", ".join(decl.columns)
                )
            keys.append((row, col))
        key_cols = {c for _, c in keys}
        outs: list[tuple[str, str]] = []
        if node.outputs:
            for o in node.outputs:
                if o.column not in decl.columns:
                    raise self.fail(
                        f"table {decl.name!r} has no column {o.column!r}",
                        o.pos,
                        hint="its columns: " + ", ".join(decl.columns),
                    )
                outs.append((o.column, o.alias or o.column))
        else:
            outs = [(c, c) for c in decl.columns if c not in key_cols]
        out = schema.copy()
        types = dict(zip(decl.columns, decl.types))
        for col, alias in outs:
            out.columns[alias] = types[col]
        return [ir.Lookup(table, tuple(keys), tuple(outs))], out

    def lower_project(self, items: tuple[s.ProjectItem, ...], schema: Schema) -> tuple[list[ir.Stage], Schema]:
        computed: list[ir.Assignment] = []
        names: list[str] = []
        cols: dict[str, Type] = {}
        for item in items:
            e = self.expr(item.expr, schema)
            if item.name is None:
                written = item.expr.name if isinstance(item.expr, s.Name) else None
                if isinstance(e, ir.Column) and not e.path and written in (None, e.name):
                    names.append(e.name)
                    cols[e.name] = e.type
                    continue
                name = _default_name(item.expr)
                if name is None:
                    raise self.fail("name this expression: `project name = expression`", item.pos)
            else:
                name = item.name
            computed.append(ir.Assignment(name, e))
            names.append(name)
            cols[name] = e.type
        self.check_unique(names, items[0].pos)
        stages: list[ir.Stage] = []
        if computed:
            stages.append(ir.Extend(tuple(computed)))
        stages.append(ir.Project(tuple(names)))
        time_col = schema.time_column if schema.time_column in cols else None
        return stages, Schema(cols, False, schema.source, time_col)

    def check_unique(self, names: list[str], pos: s.Pos) -> None:
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise self.fail(f"output column {dup[0]!r} is defined twice", pos)

    # ------------------------------------------------------------------ expressions
    def expect_bool(self, e: ir.Expr, node: s.Node) -> None:
        if e.type not in (Type.BOOL, Type.ANY, Type.DYNAMIC):
            raise self.fail(
                f"`where` needs a true/false condition, not a {e.type}",
                _pos(node),
                hint="compare it: `x == …`, or test it: `isnotempty(x)`",
            )

    def expr(self, node: s.Node, schema: Schema) -> ir.Expr:
        e = self._expr(node, schema)
        self.spans.append((e, self.span(_pos(node))))
        return e

    def _expr(self, node: s.Node, schema: Schema) -> ir.Expr:
        match node:
            case s.Lit(kind=k, value=v):
                return ir.Literal(
                    v,  # type: ignore[arg-type]  # the parser makes only literal values
                    {
                        "string": Type.STRING,
                        "int": Type.INT,
                        "real": Type.REAL,
                        "bool": Type.BOOL,
                        "null": Type.NULL,
                        "timespan": Type.TIMESPAN,
                        "datetime": Type.DATETIME,
                    }[k],
                )
            case s.Name() | s.Member() | s.Subscript():
                return self.path(node, schema)
            case s.CallExpr():
                return self.call(node, schema)
            case s.Every():
                raise self.fail("`[]` (the elements of an array) is read only by a test of some element "
                                "(`a[].b == \"x\"`, `a[] in (…)`) or by values(): `values(a[].b)`", node.pos)
            case s.UnaryOp(op="not", operand=o):
                inner = self.expr(o, schema)
                self.expect_bool(inner, o)
                return ir.Not(inner)
            case s.UnaryOp(op="-", operand=o):
                inner = self.expr(o, schema)
                if isinstance(inner, ir.Literal) and isinstance(inner.value, (int, float)):
                    return ir.Literal(-inner.value, inner.type)
                if inner.type not in (Type.INT, Type.REAL, Type.TIMESPAN, Type.ANY, Type.DYNAMIC):
                    raise self.fail(f"cannot negate a {inner.type}", node.pos)
                return ir.Negate(inner, inner.type)
            case s.BinOp(op=op):
                return self.binop(node, schema)
            case s.InOp(op=op, subject=subj, values=vals):
                some = self.some_element(node, schema)
                if some is not None:
                    return some
                subject = self.expr(subj, schema)
                values = tuple(self.expr(v, schema) for v in vals)
                for v in values:
                    self.check_comparable(subject, v, node.op_pos)
                e: ir.Expr = ir.InList(subject, values, case_sensitive="~" not in op)
                return ir.Not(e) if op.startswith("!") else e
        raise AssertionError(node)

    def field_column(self, dotted: str, schema: Schema, span: Span | None | Callable[[], Span | None]) -> ir.Expr:
        """Resolve a Sigma field name (a dotted path) like a path in the pipeline language, positioned at `span`
        (or at what `span()` returns: found only when a diagnostic needs it)."""
        parts = dotted.split(".") if dotted else [dotted]
        pos = s.Pos(1, 1, 1, 1)
        node: s.Node = s.Name(parts[0], pos)
        for p in parts[1:]:
            node = s.Member(node, p, pos)
        before = len(self.sink.items)
        try:
            result = self.path(node, schema)
        except CompileError:
            self._repoint(before, span() if callable(span) else span)
            raise CompileError(list(self.sink.items)) from None
        if len(self.sink.items) > before:
            self._repoint(before, span() if callable(span) else span)
        return result

    def _repoint(self, start: int, span: Span | None) -> None:
        for i in range(start, len(self.sink.items)):
            d = self.sink.items[i]
            self.sink.items[i] = type(d)(d.severity, d.message, span, d.hint, d.code)

    def path(self, node: s.Node, schema: Schema) -> ir.Expr:
        segs = _static_path(node)
        if segs is None:  # indexing into a computed value
            assert isinstance(node, (s.Member, s.Subscript))
            base = self.expr(node.base, schema)
            key: str | int = node.name if isinstance(node, s.Member) else node.key
            if base.type not in (Type.DYNAMIC, Type.ANY):
                raise self.fail(f"cannot index into a {base.type}", node.pos)
            return ir.Index(base, key, Type.ANY)
        # longest dotted prefix of string segments that names a column of the schema
        names = [x for x in segs]
        for i in range(len(names), 0, -1):
            if not all(isinstance(x, str) for x in names[:i]):
                continue
            dotted = ".".join(str(x) for x in names[:i])
            if dotted in schema.columns:
                rest = tuple(names[i:])
                t = schema.columns[dotted]
                if rest:
                    if t not in (Type.DYNAMIC, Type.ANY):
                        raise self.fail(f"{dotted!r} is a {t}; it has no member {_seg_text(rest[0])}", _pos(node))
                    t = self._declared(schema, names) or Type.ANY
                return ir.Column(dotted, rest, t)
        root = names[0]
        assert isinstance(root, str)
        if schema.open and root in schema.gone:
            raise self.fail(f"no column {root!r} here: it was {schema.gone[root]}", _pos(node))
        if schema.open:
            src = schema.source
            if src is None or not src.fields:
                return ir.Column(root, tuple(names[1:]), Type.ANY)
            declared = self._declared(schema, names)
            if declared is None and len(names) == 1 and src.alias_text is not None and root in src.aliases:
                return self.alias(src, root, schema, _pos(node))
            if declared is None:
                dotted = ".".join(str(x) for x in names if isinstance(x, str))
                self.sink.warning(
                    f"unknown field {dotted!r}: source {src.name!r} does not declare it",
                    self.span(_pos(node)),
                    hint=_did_you_mean(root, src.fields),
                    code="unknown-field",
                )
                declared = Type.ANY
            return ir.Column(root, tuple(names[1:]), declared)
        raise self.fail(
            f"no column {root!r} here",
            _pos(node),
            hint=(_did_you_mean(root, schema.columns) or "") + " columns: " + ", ".join(schema.columns),
        )

    def alias(self, src: SourceDef, name: str, schema: Schema, used_at: s.Pos) -> ir.Expr:
        """A source's derived field, expanded where it is named: the IR holds only its expression over the source's
        own fields, so every backend and the executor compute it the same way. Its diagnostics point into the source
        file, and the error's hint names where the rule used it; an alias cannot name another alias."""
        assert src.alias_origin is not None
        outer, self.origin = self.origin, src.alias_origin
        inner = Schema(schema.columns, True, _without_aliases(src), schema.time_column, schema.gone)
        try:
            return self.expr(src.aliases[name], inner)
        except CompileError:
            self.origin = outer
            use = self.span(used_at)
            # the error is in the source file; its hint says where the rule named the derived field
            where = f"in the derived field {name!r} of source {src.name!r}, named at {use.file}:{use.line}:{use.column}"
            items = self.sink.items
            for i in range(len(items) - 1, -1, -1):
                d = items[i]
                if d.severity is Severity.ERROR:
                    items[i] = type(d)(d.severity, d.message, d.span, f"{where}" + (f"; {d.hint}" if d.hint else ""),
                                       d.code)
                    break
            raise CompileError(list(items)) from None
        finally:
            self.origin = outer

    def _declared(self, schema: Schema, names: list[str | int]) -> Type | None:
        if schema.source is None:
            return None
        dotted = ".".join(str(x) for x in names if isinstance(x, str))
        if any(isinstance(x, int) for x in names):
            # typed only up to the first index: below it the JSON is untyped
            first = next(i for i, x in enumerate(names) if isinstance(x, int))
            head = ".".join(str(x) for x in names[:first])
            return Type.ANY if schema.source.field_type(head) is not None else None
        return schema.source.field_type(dotted)

    def check_comparable(self, a: ir.Expr, b: ir.Expr, pos: s.Pos) -> None:
        ta, tb = a.type, b.type
        loose = (Type.ANY, Type.NULL, Type.DYNAMIC)
        if ta in loose or tb in loose or ta is tb or (ta.is_numeric and tb.is_numeric):
            return
        raise self.fail(
            f"cannot compare a {ta} with a {tb}",
            pos,
            hint="convert one side: tostring(…), toint(…), todouble(…), todatetime(…)",
        )

    def some_element(self, node: s.BinOp | s.InOp, schema: Schema) -> ir.Expr | None:
        """`x[] == v`, `x[].b contains v`, `x[] in (…)`: some element of the array x (any expression: a column, a path
        into a computed value) passes the test (ir.AnyElement, docs/semantics.md decisions 28 and 110); None when the
        test's subject is not a `[]` path."""
        subject = node.left if isinstance(node, s.BinOp) else node.subject
        each = _every_path(subject)
        if each is None:
            return None
        every, path = each
        if node.op.startswith("!"):
            positive = {"!=": "==", "!~": "=~"}.get(node.op, node.op[1:])
            raise self.fail(f"`{node.op}` on `[]` (some element): write `not (… {positive} …)` for \"no element\"",
                            node.op_pos)
        if _every_path(every.base) is not None:
            raise self.fail("`[]` inside `[]`: a test reads the elements of one array", every.pos)
        coll = self.expr(every.base, schema)
        if coll.type not in (Type.DYNAMIC, Type.ANY):
            raise self.fail(f"`[]` needs an array, not a {coll.type}", every.pos)
        element: s.Node = s.Name(_ELEMENT, every.pos)
        for seg in path:
            element = (s.Member(element, seg, every.pos) if isinstance(seg, str)
                       else s.Subscript(element, seg, every.pos))
        test = (s.BinOp(node.op, element, node.right, node.pos, node.op_pos) if isinstance(node, s.BinOp)
                else s.InOp(node.op, element, node.values, node.pos, node.op_pos))
        inner = schema.copy()
        inner.columns[_ELEMENT] = Type.DYNAMIC
        pred = self.expr(test, inner)
        if any(isinstance(x, ir.Column) and x.name != _ELEMENT for x in ir.walk(pred)):
            raise self.fail("a test of `[]` (some element) compares each element with literals only", _pos(test))
        return ir.AnyElement(coll, _as_element(pred))

    def binop(self, node: s.BinOp, schema: Schema) -> ir.Expr:
        op = node.op
        if op not in ("and", "or"):
            some = self.some_element(node, schema)
            if some is not None:
                return some
        left = self.expr(node.left, schema)
        right = self.expr(node.right, schema)
        if op in ("and", "or"):
            self.expect_bool(left, node.left)
            self.expect_bool(right, node.right)
            cls = ir.And if op == "and" else ir.Or
            parts: list[ir.Expr] = []
            for x in (left, right):
                parts.extend(x.operands if isinstance(x, cls) else (x,))
            return cls(tuple(parts))
        if op in ("==", "!=", "=~", "!~", "<", "<=", ">", ">="):
            self.check_comparable(left, right, node.op_pos)
            cmp = {
                "==": ir.CmpOp.EQ,
                "=~": ir.CmpOp.EQ,
                "!=": ir.CmpOp.NE,
                "!~": ir.CmpOp.NE,
                "<": ir.CmpOp.LT,
                "<=": ir.CmpOp.LE,
                ">": ir.CmpOp.GT,
                ">=": ir.CmpOp.GE,
            }[op]
            return ir.Compare(cmp, left, right, case_sensitive="~" not in op)
        if op == "matches regex":
            pattern = self.literal_string(right, node.right, "a regex")
            problem = regex_problem(pattern)
            if problem is not None:
                raise self.fail(f"invalid regex: {problem}", _pos(node.right)) from None
            return ir.RegexMatch(left, pattern, frozenset())
        m = re.fullmatch(r"(!?)(contains|startswith|endswith|like)(_cs)?", op)
        if m:
            neg, kind, cs = m.group(1) == "!", m.group(2), m.group(3) is not None
            self.check_stringish(left, node.left)
            e: ir.Expr
            if kind == "like":
                pat = self.literal_string(right, node.right, "a wildcard pattern")
                e = ir.WildcardMatch(left, parse_wildcard(pat), cs)
            else:
                self.check_stringish(right, node.right)
                e = ir.StringMatch(ir.StrOp(kind), left, right, cs)
            return ir.Not(e) if neg else e
        return self.arith(op, left, right, node)

    def check_stringish(self, e: ir.Expr, node: s.Node) -> None:
        if e.type not in (Type.STRING, Type.ANY, Type.DYNAMIC, Type.NULL):
            raise self.fail(f"string match on a {e.type}; convert it with tostring(…)", _pos(node))

    def literal_string(self, e: ir.Expr, node: s.Node, what: str) -> str:
        if not (isinstance(e, ir.Literal) and isinstance(e.value, str)):
            raise self.fail(f"{what} must be a string literal", _pos(node))
        return e.value

    def arith(self, op: str, left: ir.Expr, right: ir.Expr, node: s.BinOp) -> ir.Expr:
        lt, rt = left.type, right.type
        loose = (Type.ANY, Type.DYNAMIC, Type.NULL)
        t: Type | None = None
        if lt.is_numeric and rt.is_numeric:
            t = Type.INT if lt is Type.INT and rt is Type.INT else Type.REAL
        elif op == "-" and lt is Type.DATETIME and rt is Type.DATETIME:
            t = Type.TIMESPAN
        elif op in "+-" and lt is Type.DATETIME and rt in (Type.TIMESPAN,) + loose:
            t = Type.DATETIME
        elif op == "+" and rt is Type.DATETIME and lt in (Type.TIMESPAN,) + loose:
            t = Type.DATETIME
        elif op in "+-" and lt is Type.TIMESPAN and rt is Type.TIMESPAN:
            t = Type.TIMESPAN
        elif op in "*/" and lt is Type.TIMESPAN and rt.is_numeric:
            t = Type.TIMESPAN
        elif op == "/" and lt is Type.TIMESPAN and rt is Type.TIMESPAN:
            t = Type.REAL
        elif lt in loose or rt in loose:
            other = rt if lt in loose else lt
            if other in (Type.STRING, Type.BOOL):
                t = None
            else:
                t = Type.ANY if other in loose else (other if other is not Type.DATETIME else Type.ANY)
        if t is None:
            hint = "use strcat(a, b) to join strings" if Type.STRING in (lt, rt) and op == "+" else None
            raise self.fail(f"cannot apply {op} to a {lt} and a {rt}", node.op_pos, hint=hint)
        return ir.Arith(ir.ArithOp(op), left, right, t)

    def call(self, node: s.CallExpr, schema: Schema) -> ir.Expr:
        name = ALIASES.get(node.name, node.name)
        if name in ("iif", "iff"):
            if len(node.args) != 3:
                raise self.fail(
                    f"{name}() takes 3 arguments (condition, then, else), not {len(node.args)}", node.name_pos
                )
            cond, a, b = (self.expr(x, schema) for x in node.args)
            self.expect_bool(cond, node.args[0])
            return ir.Case(((cond, a),), b, unify(a.type, b.type))
        if name == "case":
            if len(node.args) < 3 or len(node.args) % 2 == 0:
                raise self.fail(
                    "case() takes condition, value pairs and a final default: case(c1, v1, c2, v2, …, default)",
                    node.name_pos,
                )
            parts = [self.expr(x, schema) for x in node.args]
            branches = []
            t = Type.NULL
            for i in range(0, len(parts) - 1, 2):
                self.expect_bool(parts[i], node.args[i])
                branches.append((parts[i], parts[i + 1]))
                t = unify(t, parts[i + 1].type)
            t = unify(t, parts[-1].type)
            return ir.Case(tuple(branches), parts[-1], t)
        if name == "not":
            if len(node.args) != 1:
                raise self.fail("not() takes 1 argument", node.name_pos)
            inner = self.expr(node.args[0], schema)
            self.expect_bool(inner, node.args[0])
            return ir.Not(inner)
        sig = FUNCTIONS.get(name)
        if sig is None:
            if name == "datetime":
                raise self.fail("invalid datetime literal: use ISO-8601, e.g. datetime(2024-01-31T08:00:00Z)", node.pos)
            if name in AGG_FUNCTIONS:
                raise self.fail(f"{name}() is an aggregation: use it in summarize or eventstats", node.name_pos)
            raise self.fail(
                f"unknown function {name!r}", node.name_pos, hint=_did_you_mean(name, list(FUNCTIONS) + ["iif", "case"])
            )
        if not sig.accepts(len(node.args)):
            raise self.fail(
                f"{name}() takes {sig.arity_text()} argument{'s' if sig.arity_text() != '1' else ''}, "
                f"not {len(node.args)}",
                node.name_pos,
            )
        args = tuple(self.expr(a, schema) for a in node.args)
        for i, (a, an) in enumerate(zip(args, node.args)):
            want = sig.param_type(i)
            if not compatible(a.type, want):
                raise self.fail(f"argument {i + 1} of {name}() must be a {want}, not a {a.type}", _pos(an))
            if i in sig.literal_params and not isinstance(a, ir.Literal):
                raise self.fail(f"argument {i + 1} of {name}() must be a literal", _pos(an))
        if name == "datetime_diff":
            unit = args[0]
            assert isinstance(unit, ir.Literal)
            if unit.value not in DATETIME_DIFF_UNITS:
                raise self.fail(
                    f"unknown datetime_diff unit {unit.value!r}",
                    _pos(node.args[0]),
                    hint="units: " + ", ".join(DATETIME_DIFF_UNITS),
                )
        if name == "bag_pack":
            return self.bag_pack(node, args)
        if name == "parse_json" and args[0].type in (Type.DYNAMIC, Type.NULL):
            # KQL: "if json is of type dynamic, its value is used as-is" (docs/semantics.md decision 75); a value of
            # undeclared type keeps the call, which parses it when it is text at run time
            return args[0]
        if name in ("extract", "replace_regex", "indexof_regex"):
            rx = args[0] if name == "extract" else args[1]
            assert isinstance(rx, ir.Literal)
            problem = regex_problem(str(rx.value))
            if problem is not None:
                raise self.fail(f"invalid regex: {problem}", _pos(node.args[0 if name == "extract" else 1])) from None
            groups = regex_groups(str(rx.value))
            asked = None  # a group the call names that the regex does not have: an error now, not at run time
            at = 1 if name == "extract" else 2
            if name == "extract" and isinstance(args[1], ir.Literal) and isinstance(args[1].value, int):
                asked = args[1].value if not 0 <= args[1].value <= groups else None
            if name == "replace_regex" and isinstance(args[2], ir.Literal) and isinstance(args[2].value, str):
                asked = next((int(g) for g in re.findall(r"\\(\d)", args[2].value) if int(g) > groups), None)
            if asked is not None and groups is not None:
                raise self.fail(f"{name}() names group {asked}; the regex has {groups} group(s)", _pos(node.args[at]))
        if name == "bin" and not (args[1].type.is_numeric or args[1].type is Type.TIMESPAN):
            raise self.fail("bin() needs a number or a timespan as the bin size", _pos(node.args[1]))
        if name == "bin" and (width := _literal_width(node.args[1])) is not None:
            # a width the rule wrote as zero or less rounds nothing (KQL: null; SPL would divide by it);
            # a computed one is null at run time (docs/semantics.md, bin)
            raise self.fail(f"bin() needs a bin size above zero, not {width}", _pos(node.args[1]))
        if name == "todatetime" and args[0].type.is_numeric:
            # a number has no time zone and no unit of its own: the IR says which (docs/semantics.md, decision 14)
            return ir.Call("unixtime_seconds_todatetime", args, Type.DATETIME)
        return ir.Call(name, args, sig.result([a.type for a in args]))


    def bag_pack(self, node: s.CallExpr, args: tuple[ir.Expr, ...]) -> ir.Expr:
        """bag_pack(k1, v1, …): keys distinct literal texts; a string value is never null there, as in KQL, where a
        string is never null: `coalesce(v, "")` (docs/semantics.md decision 36)."""
        if len(args) % 2:
            raise self.fail(f"{node.name}() takes key, value pairs: an even number of arguments, not {len(args)}",
                            node.name_pos)
        seen: set[str] = set()
        out: list[ir.Expr] = []
        for i in range(0, len(args), 2):
            key, value = args[i], args[i + 1]
            if not (isinstance(key, ir.Literal) and isinstance(key.value, str)):
                raise self.fail(f"argument {i + 1} of {node.name}() must be a literal text (a key)",
                                _pos(node.args[i]))
            if key.value in seen:
                raise self.fail(f"{node.name}() names the key {key.value!r} twice", _pos(node.args[i]))
            seen.add(key.value)
            if value.type is Type.STRING and not isinstance(value, ir.Literal):
                value = ir.Call("coalesce", (value, ir.Literal("", Type.STRING)), Type.STRING)
            out += [key, value]
        return ir.Call("bag_pack", tuple(out), Type.DYNAMIC)

def parse_wildcard(pattern: str) -> ir.WildcardPattern:
    """`*` any run, `?` one character, `\\*` `\\?` `\\\\` literal."""
    parts: list[str | ir.Wild] = []
    buf: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern) and pattern[i + 1] in "*?\\":
            buf.append(pattern[i + 1])
            i += 2
            continue
        if ch in "*?":
            if buf:
                parts.append("".join(buf))
                buf = []
            parts.append(ir.Wild.ANY if ch == "*" else ir.Wild.ONE)
        else:
            buf.append(ch)
        i += 1
    if buf:
        parts.append("".join(buf))
    return tuple(parts)


def _agg_type(fn: ir.AggFn, arg: ir.Expr | None) -> Type:
    if fn in (ir.AggFn.COUNT, ir.AggFn.DCOUNT):
        return Type.INT
    assert arg is not None
    if fn in (ir.AggFn.AVG, ir.AggFn.STDEV, ir.AggFn.STDEVP):
        return Type.REAL
    if fn is ir.AggFn.VALUES:
        return Type.DYNAMIC
    if fn is ir.AggFn.SUM:
        return arg.type if arg.type in (Type.INT, Type.REAL, Type.TIMESPAN) else Type.ANY
    return arg.type


_ELEMENT = "siemforge element"  # the element a `[]` test reads: a name the language cannot write


def _as_element(e: ir.Expr) -> ir.Expr:
    """The test with the element's placeholder column made the IR's Element (a path into the element being tested)."""
    match e:
        case ir.Column(name=n, path=p, type=t) if n == _ELEMENT:
            return ir.Element(p, t)
        case ir.Column() | ir.Literal() | ir.Element() | ir.Keyword():
            return e
    fields = {}
    for f in dataclasses.fields(e):
        v = getattr(e, f.name)
        if isinstance(v, tuple):
            v = tuple(_as_element(x) if _is_expr(x) else x for x in v)
        elif _is_expr(v):
            v = _as_element(v)
        fields[f.name] = v
    return type(e)(**fields)


def _is_expr(v: object) -> bool:
    return isinstance(v, typing.get_args(ir.Expr))


def _every_path(node: s.Node) -> tuple[s.Every, tuple[str | int, ...]] | None:
    """`a[].b[0]` → (the `a[]` node, ("b", 0)); None when the expression has no `[]` at its head path."""
    path: list[str | int] = []
    while True:
        match node:
            case s.Member(base=b, name=n):
                path.append(n)
                node = b
            case s.Subscript(base=b, key=k):
                path.append(k)
                node = b
            case s.Every():
                return node, tuple(reversed(path))
            case _:
                return None


def _static_path(node: s.Node) -> list[str | int] | None:
    match node:
        case s.Name(name=n):
            return [n]
        case s.Member(base=b, name=n):
            p = _static_path(b)
            return None if p is None else p + [n]
        case s.Subscript(base=b, key=k):
            p = _static_path(b)
            return None if p is None else p + [k]
    return None


def _seg_text(seg: str | int) -> str:
    return f"[{seg}]" if isinstance(seg, int) else repr(seg)


# the element types `mv-expand ... to typeof(T)` takes: those whose JSON form is the value itself (KQL casts, does not
# convert: an element of another type is null); a datetime or timespan in JSON is a string, so it is not offered
_EXPAND_TYPES = (Type.STRING, Type.INT, Type.REAL, Type.BOOL, Type.DYNAMIC)
_EXPAND_TYPES_TEXT = ("string", "long", "int", "real", "double", "bool", "dynamic")


def _default_name(node: s.Node) -> str | None:
    p = _static_path(node)
    if p is not None and all(isinstance(x, str) for x in p):
        return ".".join(str(x) for x in p)
    if isinstance(node, s.CallExpr) and node.args:
        return _default_name(node.args[0])
    return None


def _names_in(node: s.Node) -> list[s.Name]:
    out: list[s.Name] = []
    match node:
        case s.Name():
            out.append(node)
        case s.Member(base=b) | s.Subscript(base=b):
            out.extend(_names_in(b))
        case s.CallExpr(args=args):
            for a in args:
                out.extend(_names_in(a))
        case s.BinOp(left=l, right=r):
            out.extend(_names_in(l))
            out.extend(_names_in(r))
        case s.InOp(subject=x, values=vs):
            out.extend(_names_in(x))
            for v in vs:
                out.extend(_names_in(v))
        case s.UnaryOp(operand=o):
            out.extend(_names_in(o))
    return out


def _literal_width(node: s.Node) -> str | None:
    """A bin size the rule wrote as a literal (or a negated one) that is zero or less, spelled as written; else None."""
    negated = isinstance(node, s.UnaryOp) and node.op == "-"
    if isinstance(node, s.UnaryOp) and negated:
        node = node.operand
    if not isinstance(node, s.Lit) or node.kind not in ("int", "real", "timespan"):
        return None
    v = node.value
    if isinstance(v, timedelta):
        span = -v if negated else v
        if span > timedelta(0):
            return None
        if span == timedelta(0):
            return "0s"
        sign, span = "-", -span
        for unit, size in (("d", timedelta(days=1)), ("h", timedelta(hours=1)), ("m", timedelta(minutes=1)),
                           ("s", timedelta(seconds=1)), ("ms", timedelta(milliseconds=1))):
            if span % size == timedelta(0):
                return f"{sign}{span // size}{unit}"
        return f"{sign}{span // timedelta(microseconds=1)}microsecond"
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return None
    n = -v if negated else v
    return None if n > 0 else repr(n)


def _pos(node: s.Node) -> s.Pos:
    return node.pos


def _did_you_mean(name: str, options: object) -> str | None:
    close = difflib.get_close_matches(name, list(options), n=1)  # type: ignore[call-overload]
    return f"did you mean {close[0]!r}?" if close else None


def _without_aliases(src: SourceDef) -> SourceDef:
    return dataclasses.replace(src, alias_text=None)


def regex_groups(pattern: str) -> int:
    """How many capturing groups the pattern has (RE2's count; Python's `re` for a pattern only PCRE-like engines
    run)."""
    from .regex import RegexRefused, compile_re2

    try:
        return int(compile_re2(pattern).groups)
    except RegexRefused:
        return re.compile(pattern).groups


def regex_problem(pattern: str) -> str | None:
    """Why a pattern is no regex in any dialect we emit, or None. RE2 (KQL, the executor) judges first; a pattern
    only PCRE-like engines run (look-around: Splunk) passes here and is refused by the backends that cannot run it
    (docs/semantics.md, decision 5). Python's `re` stands in for PCRE."""
    import warnings

    from .regex import RegexRefused, compile_re2

    try:
        compile_re2(pattern)
        return None
    except RegexRefused:
        pass
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            re.compile(pattern)
    except re.error as exc:
        return str(exc)
    return None
