"""Run a RuleIR over events: each stage a generator over rows (filters and extends stream; aggregates,
eventstats and sort hold what they must), with counts per stage for --explain."""

from __future__ import annotations

import csv
import math
import statistics
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from siemforge.compiler import ir
from siemforge.compiler.bindings import Binding
from siemforge.compiler.diagnostics import CompileError
from siemforge.compiler.lowering import base_source, sources_down
from siemforge.compiler.sources import builtin_sources
from siemforge.compiler.types import Type

from .auditd import select_by_field
from .compile import Context, Fn, Row, compile_expr
from .prefilter import line_prefilter
from .reader import Malformed, Meter, Reports, iter_events
from .regex import check_rule
from .shapes import row_selected, row_to_record
from .values import hashable, sort_key, to_datetime, to_number, to_text
from .windows import RecordIndex, select_records


@dataclass(slots=True)
class StageStat:
    label: str
    rows_in: int = 0
    rows_out: int = 0
    reads_events: bool = False  # the first stage of a union's branch: its input is every event read
    fixed_in: int | None = None  # an input counted where it was made (a union: its branches' rows)


@dataclass(slots=True)
class RunResult:
    rows: list[Row]
    fired: bool
    stats: list[StageStat]
    malformed: list[Malformed]  # the first reader.MAX_REPORTS reports
    events_read: int
    malformed_total: int = -1  # every report, counted; -1: len(malformed)

    def __post_init__(self) -> None:
        if self.malformed_total < 0:
            self.malformed_total = len(self.malformed)


@dataclass(slots=True)
class _Counter:
    stat: StageStat

    def count_out(self, rows: Iterable[Row]) -> Iterator[Row]:
        n = 0
        try:
            for r in rows:
                n += 1
                yield r
        finally:
            self.stat.rows_out = n


def stage_label(stage: ir.Stage) -> str:
    from siemforge.compiler.irprint import format_stage

    text = format_stage(stage)
    return text if len(text) <= 90 else text[:87] + "..."


# ------------------------------------------------------------------------------------------ aggregation state


_COLLECTED = (ir.AggFn.PERCENTILE, ir.AggFn.STDEV, ir.AggFn.STDEVP)  # every number kept, the result taken at the end


def _scalars_of_elements(array: Any, path: tuple[str | int, ...]) -> list[Any]:
    """The scalars (text, number, bool) at `path` in each element of `array`; none of what is not an array, and
    nothing of an element without one there (docs/semantics.md decision 87: Splunk's `a{}.b` holds leaf values)."""
    if not isinstance(array, list):
        return []
    out = []
    for v in array:
        for seg in path:
            if isinstance(seg, str) and isinstance(v, dict):
                v = v.get(seg)
            elif isinstance(seg, int) and isinstance(v, list) and -len(v) <= seg < len(v):
                v = v[seg]
            else:
                v = None
                break
        if v is not None and not isinstance(v, (dict, list)):
            out.append(v)
    return out


class _Agg:
    """The running state of one aggregation in one group. `add` is bound once to the function's own method."""

    __slots__ = ("fn", "arg", "time", "n", "acc", "seen", "best", "add", "p", "limit")

    def __init__(self, fn: ir.AggFn, arg: Fn | None, time: Fn | None, p: float | None = None,
                 limit: int | None = None, many: bool = False) -> None:
        self.fn, self.arg, self.time, self.p, self.limit = fn, arg, time, p, limit
        self.n = 0
        self.acc: Any = None
        self.seen: dict[Any, Any] | None = {} if fn in (ir.AggFn.DCOUNT, ir.AggFn.VALUES) else None
        if fn in _COLLECTED:
            self.acc = []
        self.best: Any = None
        if fn is ir.AggFn.COUNT:
            self.add = self._count_rows if arg is None else self._count_values
        elif self.seen is not None:
            self.add = self._distinct_each if many else self._distinct
        elif fn in (ir.AggFn.SUM, ir.AggFn.AVG):
            self.add = self._sum
        elif fn in _COLLECTED:
            self.add = self._collect
        elif fn is ir.AggFn.MIN:
            self.add = self._min
        elif fn is ir.AggFn.MAX:
            self.add = self._max
        elif fn in (ir.AggFn.ARG_MAX, ir.AggFn.ARG_MIN):
            self.add = self._by_key  # `time` is the key's function here
        else:
            self.add = self._by_time

    def _count_rows(self, row: Row) -> None:
        self.n += 1

    def _count_values(self, row: Row) -> None:
        if self.arg(row) is not None:  # type: ignore[misc]
            self.n += 1

    def _distinct(self, row: Row) -> None:
        v = self.arg(row)  # type: ignore[misc]
        if v is not None:
            self.seen.setdefault(hashable(v), v)  # type: ignore[union-attr]

    def _distinct_each(self, row: Row) -> None:
        """values(a[].b): `arg` gives the row's list of values (decision 87)."""
        for v in self.arg(row):  # type: ignore[misc]
            self.seen.setdefault(hashable(v), v)  # type: ignore[union-attr]

    def _sum(self, row: Row) -> None:
        v = self.arg(row)  # type: ignore[misc]
        if v is None:
            return
        x = v if (type(v) is int or type(v) is float or isinstance(v, timedelta)) else to_number(v)
        if x is None:
            return
        self.acc = x if self.acc is None else self.acc + x
        self.n += 1

    def _collect(self, row: Row) -> None:
        v = self.arg(row)  # type: ignore[misc]
        x = v if (type(v) is int or type(v) is float) else to_number(v) if v is not None else None
        if x is not None:
            self.acc.append(x)

    def _min(self, row: Row) -> None:
        v = self.arg(row)  # type: ignore[misc]
        if v is not None and (self.acc is None or _before(v, self.acc)):
            self.acc = v

    def _max(self, row: Row) -> None:
        v = self.arg(row)  # type: ignore[misc]
        if v is not None and (self.acc is None or _before(self.acc, v)):
            self.acc = v

    def _by_time(self, row: Row) -> None:
        v = self.arg(row)  # type: ignore[misc]
        if v is None:
            return
        t = self.time(row)  # type: ignore[misc]
        if t is None:
            return
        if self.best is None or (t < self.best if self.fn is ir.AggFn.EARLIEST else t > self.best):
            self.best, self.acc = t, v

    def _by_key(self, row: Row) -> None:
        """arg_max/arg_min (decision 78): the value at the first row with the largest/smallest non-null key."""
        k = self.time(row)  # type: ignore[misc]
        if k is None:
            return
        if self.best is None or (_before(self.best, k) if self.fn is ir.AggFn.ARG_MAX else _before(k, self.best)):
            self.best, self.acc = k, self.arg(row)  # type: ignore[misc]

    def state(self) -> tuple[int, Any, dict[Any, Any] | None, Any]:
        """The running state, as plain picklable data (to merge partial aggregates from other processes)."""
        return self.n, self.acc, self.seen, self.best

    def merge(self, state: tuple[int, Any, dict[Any, Any] | None, Any]) -> None:
        """Fold in the state of the same aggregation over later rows (order matters only for ties)."""
        n, acc, seen, best = state
        fn = self.fn
        if fn is ir.AggFn.COUNT:
            self.n += n
        elif self.seen is not None and seen is not None:
            for k, v in seen.items():
                self.seen.setdefault(k, v)
        elif fn in _COLLECTED:
            self.acc.extend(acc)
        elif fn in (ir.AggFn.SUM, ir.AggFn.AVG):
            if acc is not None:
                self.acc = acc if self.acc is None else self.acc + acc
                self.n += n
        elif fn is ir.AggFn.MIN:
            if acc is not None and (self.acc is None or _before(acc, self.acc)):
                self.acc = acc
        elif fn is ir.AggFn.MAX:
            if acc is not None and (self.acc is None or _before(self.acc, acc)):
                self.acc = acc
        elif fn in (ir.AggFn.ARG_MAX, ir.AggFn.ARG_MIN):
            if best is not None and (self.best is None or (
                    _before(self.best, best) if fn is ir.AggFn.ARG_MAX else _before(best, self.best))):
                self.best, self.acc = best, acc
        elif best is not None and (
            self.best is None or (best < self.best if fn is ir.AggFn.EARLIEST else best > self.best)
        ):
            self.best, self.acc = best, acc

    def result(self) -> Any:
        fn = self.fn
        if fn is ir.AggFn.COUNT:
            return self.n
        if fn is ir.AggFn.DCOUNT:
            assert self.seen is not None
            return len(self.seen)
        if fn is ir.AggFn.VALUES:
            assert self.seen is not None
            ordered = sorted(self.seen.values(), key=lambda x: to_text(x) or "")
            # values(x, N): the first N in this order (decision 95: which N is the target's; ours, deterministic)
            return ordered if self.limit is None else ordered[:self.limit]
        if fn is ir.AggFn.AVG:
            return None if self.acc is None else self.acc / self.n
        if fn is ir.AggFn.STDEV:  # decision 85: fewer than two numbers have no sample deviation
            return statistics.stdev(self.acc) if len(self.acc) > 1 else None
        if fn is ir.AggFn.STDEVP:
            return statistics.pstdev(self.acc) if self.acc else None
        if fn is ir.AggFn.PERCENTILE:  # nearest rank: the smallest value with at least p% of the values at or below
            if not self.acc:
                return None
            ordered = sorted(self.acc)
            return ordered[max(math.ceil(len(ordered) * (self.p or 0) / 100), 1) - 1]
        return self.acc


# ------------------------------------------------------------------------------------------ stages


@dataclass(slots=True)
class Engine:
    ctx: Context
    lookup_overrides: dict[str, Path] = field(default_factory=dict)
    # the events again, for a Join's right side: the log files read anew, or the events run_pipeline holds
    events: Callable[[], Iterable[Row]] | None = None

    def run_stages(self, stages: tuple[ir.Stage, ...], rows: Iterable[Row], stats: list[StageStat]) -> Iterable[Row]:
        """Chain the stages; each stage's output is counted once (a stage's input is the previous output)."""
        for stage in stages:
            stat = StageStat(stage_label(stage))
            stats.append(stat)
            rows = _Counter(stat).count_out(self.stage(stage, rows))
        return rows

    def stage(self, stage: ir.Stage, rows: Iterable[Row]) -> Iterable[Row]:
        match stage:
            case ir.Filter(predicate=p):
                pred = compile_expr(p, self.ctx)
                return (r for r in rows if pred(r))
            case ir.Extend(assignments=assigns):
                return self.extend(assigns, rows)
            case ir.Aggregate():
                return self.aggregate(stage, rows)
            case ir.EventAggregate():
                return self.event_aggregate(stage, rows)
            case ir.Lookup():
                return self.lookup(stage, rows)
            case ir.Rename(renames=renames):
                return self.rename(renames, rows)
            case ir.Project(columns=cols):
                return self.project(cols, rows)
            case ir.Sort(keys=keys):
                return self.sort(keys, rows)
            case ir.Limit(count=n):
                return self.limit(n, rows)
            case ir.Expand():
                return self.expand(stage, rows)
            case ir.Join():
                return self.join(stage, rows)
        raise NotImplementedError(type(stage).__name__)

    def join(self, stage: ir.Join, rows: Iterable[Row]) -> Iterator[Row]:
        """docs/semantics.md decision 70: the right pipeline over the same events, matched on equal non-null keys."""
        assert self.events is not None, "run_pipeline gives a pipeline with a join its events again"
        right_rows, _ = run_pipeline(stage.right, self.events(), self.ctx.now, self.lookup_overrides)
        index: dict[tuple[Any, ...], list[Row]] = {}
        empty = stage.empty_keys_match
        for r in right_rows:
            key = _join_key(r, [c for _, c in stage.keys], empty)
            if key is not None:
                index.setdefault(key, []).append(r)
        lefts = [compile_expr(e, self.ctx) for e, _ in stage.keys]
        kind = stage.kind
        seen: set[tuple[Any, ...]] = set()
        for row in rows:
            key = _join_key({i: f(row) for i, f in enumerate(lefts)}, list(range(len(lefts))), empty)
            matches = index.get(key, []) if key is not None else []
            if kind is ir.JoinKind.LEFTSEMI:
                if matches:
                    yield row
                continue
            if kind is ir.JoinKind.LEFTANTI:
                if not matches:
                    yield row
                continue
            if kind is ir.JoinKind.INNERUNIQUE and key is not None:
                if key in seen:
                    continue
                seen.add(key)
            if not matches and kind is ir.JoinKind.LEFTOUTER:
                out = dict(row)
                for _, alias in stage.outputs:
                    out[alias] = None
                yield out
            for m in matches:
                out = dict(row)
                for col, alias in stage.outputs:
                    out[alias] = m.get(col)
                yield out

    def expand(self, stage: ir.Expand, rows: Iterable[Row]) -> Iterator[Row]:
        """One row per element (docs/semantics.md decision 62): null gives one row, an empty array none."""
        f = compile_expr(stage.expr, self.ctx)
        name, ty, limit = stage.name, stage.type, stage.limit
        for r in rows:
            elements = expand_value(f(r))
            for element in elements if limit is None else elements[:limit]:
                out = dict(r)
                out[name] = element if ty is Type.DYNAMIC else _element_of_type(element, ty)
                yield out

    def extend(self, assigns: tuple[ir.Assignment, ...], rows: Iterable[Row]) -> Iterator[Row]:
        step = self.extend_step(assigns)
        for r in rows:
            yield step(r)

    def extend_step(self, assigns: tuple[ir.Assignment, ...]) -> Callable[[Row], Row]:
        """Extend one row in place: every assignment reads the row as it was before any of them (parallel)."""
        compiled = [(a.name, compile_expr(a.expr, self.ctx)) for a in assigns]
        if len(compiled) == 1:
            name, f = compiled[0]

            def one(r: Row) -> Row:
                r[name] = f(r)
                return r

            return one

        def several(r: Row) -> Row:
            values = [(name, f(r)) for name, f in compiled]
            for name, v in values:
                r[name] = v
            return r

        return several

    def row_step(self, stage: ir.Stage) -> Callable[[Row], Row | None]:
        """A streaming stage (parallel.STREAMING) as a function of one row: the row it makes (the same dict, changed
        in place, except after project), or None when a filter drops it. Used where events are pushed to many
        rules at once (multi.py); `stage` gives the same rows as generators."""
        match stage:
            case ir.Filter(predicate=p):
                pred = compile_expr(p, self.ctx)
                return lambda r: r if pred(r) else None
            case ir.Extend(assignments=assigns):
                return self.extend_step(assigns)
            case ir.Lookup():
                return self.lookup_step(stage)
            case ir.Rename(renames=renames):
                return self.rename_step(renames)
            case ir.Project(columns=cols):
                return self.project_step(cols)
        raise NotImplementedError(type(stage).__name__)

    def _group_fns(self, by: tuple[ir.Assignment, ...]) -> list[tuple[str, Fn]]:
        return [(a.name, compile_expr(a.expr, self.ctx)) for a in by]

    def _time_fn(self) -> Fn | None:
        col = self.ctx.time_column
        if col is None:
            return None
        return compile_expr(ir.Column(col, (), Type.DATETIME), self.ctx)

    def aggregate(self, stage: ir.Aggregate, rows: Iterable[Row]) -> Iterator[Row]:
        return self.finish_aggregate(stage, self.partial_aggregate(stage, rows))

    def new_aggs(self, stage: ir.Aggregate) -> list[_Agg]:
        time_fn = self._time_fn()
        return [_Agg(a.fn, self._arg_fn(a), self._key_fn(a, time_fn), a.percentile, a.limit, a.each is not None)
                for a in stage.aggregations]

    def _arg_fn(self, a: ir.Aggregation) -> Fn | None:
        """What an aggregation reads of a row; for values(a[].b), the list of the scalars at b of a's elements."""
        if a.arg is None:
            return None
        f = compile_expr(a.arg, self.ctx)
        if a.each is None:
            return f
        path = a.each
        return lambda r: _scalars_of_elements(f(r), path)

    def _key_fn(self, a: ir.Aggregation, time_fn: Fn | None) -> Fn | None:
        """What picks the row of an aggregation that reads one row: arg_max/arg_min's key, else the event time."""
        return compile_expr(a.key, self.ctx) if a.key is not None else time_fn

    def partial_aggregate(
        self, stage: ir.Aggregate, rows: Iterable[Row]
    ) -> dict[tuple[Any, ...], tuple[tuple[Any, ...], list[_Agg]]]:
        """Group key -> (key values, running aggregates), in the order keys were first seen."""
        add, groups = self.aggregator(stage)
        for r in rows:
            add(r)
        return groups

    def aggregator(
        self, stage: ir.Aggregate
    ) -> tuple[Callable[[Row], None], dict[tuple[Any, ...], tuple[tuple[Any, ...], list[_Agg]]]]:
        """A function adding one row to the running aggregates, and the groups it fills (partial_aggregate)."""
        by = self._group_fns(stage.by)
        time_fn = self._time_fn()
        args = [(a, self._arg_fn(a), self._key_fn(a, time_fn)) for a in stage.aggregations]
        groups: dict[tuple[Any, ...], tuple[tuple[Any, ...], list[_Agg]]] = {}
        # string keys (the usual case) are their own dict keys; other keys go through hashable(), which keeps
        # true apart from 1 and makes lists and objects usable as keys
        key_fns = [f if a.expr.type is Type.STRING else _hashed(f) for a, (_, f) in zip(stage.by, by)]
        raw_fns = [f for _, f in by]

        def add(r: Row) -> None:
            key = tuple([f(r) for f in key_fns])
            try:
                g = groups.get(key)
            except TypeError:  # a string-typed field held a list or an object in this event
                key = tuple(hashable(f(r)) for f in raw_fns)
                g = groups.get(key)
            if g is None:
                g = groups[key] = (tuple(f(r) for f in raw_fns),
                                   [_Agg(a.fn, f, k, a.percentile, a.limit, a.each is not None) for a, f, k in args])
            for agg in g[1]:
                agg.add(r)

        return add, groups

    def finish_aggregate(
        self, stage: ir.Aggregate, groups: dict[tuple[Any, ...], tuple[tuple[Any, ...], list[_Agg]]]
    ) -> Iterator[Row]:
        if not groups and not stage.by:  # summarize without by over no rows: one row (count() = 0)
            groups = {(): ((), self.new_aggs(stage))}
        names = [b.name for b in stage.by]
        for keyvals, aggs in groups.values():
            out: Row = dict(zip(names, keyvals))
            for a, agg in zip(stage.aggregations, aggs):
                out[a.name] = agg.result()
            yield out

    def event_aggregate(self, stage: ir.EventAggregate, rows: Iterable[Row]) -> Iterator[Row]:
        by = self._group_fns(stage.by)
        time_fn = self._time_fn()
        args = [(a, self._arg_fn(a), self._key_fn(a, time_fn)) for a in stage.aggregations]
        held: list[tuple[tuple[Any, ...], Row]] = []
        groups: dict[tuple[Any, ...], list[_Agg]] = {}
        for r in rows:
            key = tuple(hashable(f(r)) for _, f in by)
            g = groups.get(key)
            if g is None:
                g = groups[key] = [_Agg(a.fn, f, k, a.percentile, a.limit, a.each is not None) for a, f, k in args]
            for agg in g:
                agg.add(r)
            held.append((key, r))
        results = {k: [agg.result() for agg in g] for k, g in groups.items()}
        for key, r in held:
            for a, v in zip(stage.aggregations, results[key]):
                r[a.name] = v
            yield r

    def lookup(self, stage: ir.Lookup, rows: Iterable[Row]) -> Iterator[Row]:
        step = self.lookup_step(stage)
        for r in rows:
            yield step(r)

    def lookup_step(self, stage: ir.Lookup) -> Callable[[Row], Row]:
        table = stage.table
        path = self.lookup_overrides.get(table.name, Path(table.path))
        types = dict(zip(table.columns, table.types))
        index: dict[tuple[str, ...], dict[str, Any]] = {}
        with path.open(newline="", encoding="utf-8") as fh:
            for rec in csv.DictReader(fh):
                key = tuple(rec.get(col) or "" for _, col in stage.keys)
                index.setdefault(key, rec)
        key_fns = [compile_expr(e, self.ctx) for e, _ in stage.keys]

        def step(r: Row) -> Row:
            key = tuple(to_text(f(r)) or "" for f in key_fns)
            hit = index.get(key) if all(key) else None
            for col, alias in stage.outputs:
                r[alias] = _typed(hit.get(col), types[col]) if hit is not None else None
            return r

        return step

    def rename(self, renames: tuple[tuple[str, str], ...], rows: Iterable[Row]) -> Iterator[Row]:
        step = self.rename_step(renames)
        for r in rows:
            yield step(r)

    def rename_step(self, renames: tuple[tuple[str, str], ...]) -> Callable[[Row], Row]:
        def step(r: Row) -> Row:
            values = [(new, r.pop(old, None)) for old, new in renames]
            for new, v in values:
                r[new] = v
            return r

        return step

    def project(self, cols: tuple[str, ...], rows: Iterable[Row]) -> Iterator[Row]:
        step = self.project_step(cols)
        for r in rows:
            yield step(r)

    def project_step(self, cols: tuple[str, ...]) -> Callable[[Row], Row]:
        getters = [(c, compile_expr(ir.Column(c, (), Type.ANY), self.ctx)) for c in cols]
        return lambda r: {c: g(r) for c, g in getters}

    def sort(self, keys: tuple[ir.SortKey, ...], rows: Iterable[Row]) -> Iterator[Row]:
        data = list(rows)
        for k in reversed(keys):
            f = compile_expr(k.expr, self.ctx)
            data.sort(key=lambda r: sort_key(f(r)), reverse=k.descending)
        yield from data

    def limit(self, n: int, rows: Iterable[Row]) -> Iterator[Row]:
        if n <= 0:
            return
        for i, r in enumerate(rows):
            yield r
            if i + 1 >= n:
                return


def expand_value(v: Any) -> list[Any]:
    """The elements KQL mv-expand makes of one value: an array's elements, an object's members as one-member
    objects, itself for a null or any other value."""
    if isinstance(v, list):
        return v
    if isinstance(v, dict):
        return [{k: x} for k, x in v.items()]
    return [v]


def _element_of_type(v: Any, ty: Type) -> Any:
    """KQL `to typeof(T)` casts without converting: an element that is not a T is null."""
    match ty:
        case Type.STRING:
            return v if isinstance(v, str) else None
        case Type.BOOL:
            return v if isinstance(v, bool) else None
        case Type.INT:
            return v if isinstance(v, int) and not isinstance(v, bool) else None
        case Type.REAL:
            return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None
    return v


def _before(a: Any, b: Any) -> bool:
    """a sorts before b in the IR's total order (values.sort_key), comparing same-typed scalars directly."""
    t = type(a)
    if t is type(b) and t is not bool and t is not dict and t is not list:
        return bool(a < b)
    return sort_key(a) < sort_key(b)


def _hashed(f: Fn) -> Fn:
    return lambda row: hashable(f(row))


def _typed(v: str | None, t: Type) -> Any:
    if v is None or v == "":
        return None
    if t in (Type.INT, Type.REAL):
        n = to_number(v)
        return n if n is not None else v
    if t is Type.DATETIME:
        return to_datetime(v)
    return v


def _join_key(row: dict[Any, Any], columns: list[Any], empty_matches: bool = False) -> tuple[Any, ...] | None:
    """A row's join key: its key columns' values, numbers by value and datetimes as instants; None when one is null
    (a null key matches nothing), unless `empty_matches`: then null and "" are one value."""
    out: list[Any] = []
    for c in columns:
        v = row.get(c)
        if empty_matches and v in (None, ""):
            out.append("")
            continue
        if v is None:
            return None
        if isinstance(v, bool):
            out.append(("\x00bool", v))
        elif isinstance(v, (int, float)):
            out.append(("\x00num", float(v)))
        elif isinstance(v, datetime):
            out.append(("\x00time", to_datetime(v)))
        else:
            out.append(hashable(v))
    return tuple(out)


def threshold_met(threshold: ir.Threshold, n: int) -> bool:
    return {
        ir.CmpOp.GT: n > threshold.value,
        ir.CmpOp.GE: n >= threshold.value,
        ir.CmpOp.LT: n < threshold.value,
        ir.CmpOp.LE: n <= threshold.value,
        ir.CmpOp.EQ: n == threshold.value,
        ir.CmpOp.NE: n != threshold.value,
    }[threshold.op]


def default_now() -> datetime:
    return datetime.now(UTC)


def run_rule(
    rule: ir.RuleIR,
    logs: list[Path],
    now: datetime | None = None,
    lookup_overrides: dict[str, Path] | None = None,
    prefilter: bool | None = None,
    binding: Binding | None = None,
    workers: int | None = None,
    parallel_min_bytes: int | None = None,
    meter: Meter | None = None,
) -> RunResult:
    """Run a rule over log files and decide whether it alerts. CompileError if the executor cannot run it (a
    regex RE2 cannot run: regex.py). `meter`: told the bytes and events read as the run goes (the CLI's progress).

    prefilter: skip parsing NDJSON lines that cannot pass the first filter (see prefilter.py); such lines count
    as read and as dropped by that filter, and are not checked for malformed JSON. None (the default): where it is
    sound by default (prefilter_by_default).
    workers: processes for large plain NDJSON input (parallel.py; default: every core; 1: sequential).
    """
    refused = check_rule(rule)
    if refused is not None:
        raise CompileError([refused])
    if prefilter is None:
        prefilter = prefilter_by_default(rule) and binding is None
    if binding is None and workers != 1 and not _selects_records(rule):
        from .parallel import MIN_BYTES, run_parallel

        done = run_parallel(rule, logs, now or default_now(), lookup_overrides or {}, prefilter, workers,
                            MIN_BYTES if parallel_min_bytes is None else parallel_min_bytes, meter)
        if done is not None:
            return done
    malformed = Reports()
    events_read = 0
    skipped = [0]
    keep = line_prefilter(rule.pipeline) if prefilter and binding is None else None

    def events() -> Iterator[Row]:
        nonlocal events_read
        told = 0
        for p in logs:
            for ev in iter_events(p, malformed, keep, skipped, meter):
                events_read += 1
                if meter is not None and events_read + skipped[0] - told >= 4096:  # lines the pre-filter skipped too
                    meter(0, events_read + skipped[0] - told)
                    told = events_read + skipped[0]
                if binding is None:
                    yield ev
                elif row_selected(ev, binding):
                    yield row_to_record(ev, binding)
        if meter is not None and events_read + skipped[0] > told:
            meter(0, events_read + skipped[0] - told)

    def again() -> Iterator[Row]:  # a join's right side: the logs read again, their reports already counted
        for p in logs:
            for ev in iter_events(p, lambda m: None):
                if binding is None:
                    yield ev
                elif row_selected(ev, binding):
                    yield row_to_record(ev, binding)

    rows, stats = run_pipeline(rule.pipeline, events(), now or default_now(), lookup_overrides or {},
                               reread=again if ir.has_join(rule.pipeline) else None)
    out = list(rows)
    events_read += skipped[0]
    previous = events_read
    for s in stats:
        s.rows_in = s.fixed_in if s.fixed_in is not None else events_read if s.reads_events else previous
        previous = s.rows_out
    return RunResult(out, threshold_met(rule.alert.threshold, len(out)), stats, malformed.kept, events_read,
                     malformed.total)


def prefilter_by_default(rule: ir.RuleIR) -> bool:
    """The line pre-filter is on unless asked otherwise where the raw line holds the values the rule reads as
    they are: not for a source whose records are selected and normalised (Windows, auditd, Azure: `records:`),
    whose rows may carry values the line spells otherwise (docs/semantics.md, decision 60)."""
    return not _selects_records(rule)


def _selects_records(rule: ir.RuleIR) -> bool:
    """A source with `records:` (Windows) reads each record through its selectors, in this process."""
    if rule.pipeline.source.union is not None:  # each branch selects its own records, in this process
        return True
    sdef = builtin_sources().get(base_source(rule.pipeline.source))
    return sdef is not None and bool(sdef.records)


# stages that never write to the rows they read (the others — extend, lookup, rename, eventstats — set or pop keys)
_READ_ONLY_STAGES = (ir.Filter, ir.Aggregate, ir.Project, ir.Sort, ir.Limit)


def run_pipelines(rules: Sequence[ir.RuleIR], events: Sequence[Row], now: datetime,
                  lookup_overrides: dict[str, Path] | None = None) -> list[list[Row]]:
    """Each rule's result rows over the same events, in one process (many rules over one set of logs, as a hunt
    runs them): the rows of each Windows source are selected once, from events grouped by channel and EventID
    (windows.RecordIndex), and shared by every rule of that source; a rule whose stages write to rows reads copies.
    Each rule's rows are those `run_pipeline` gives it alone."""
    index: RecordIndex | None = None
    selected: dict[str, list[Row]] = {}
    out: list[list[Row]] = []
    for rule in rules:
        pipeline = rule.pipeline
        sdef = builtin_sources().get(base_source(pipeline.source))
        rows: Iterable[Row] = events
        if sdef is not None and sdef.records and not any(sel.match or sel.categories for sel in sdef.records):
            if sdef.name not in selected:
                index = index or RecordIndex(events)
                selected[sdef.name] = index.rows_of(sdef)
            rows = selected[sdef.name]
        writes = pipeline.source.view is not None or not all(isinstance(s, _READ_ONLY_STAGES) for s in pipeline.stages)
        if writes:
            rows = (dict(r) for r in rows)
        result, _ = run_pipeline(pipeline, rows, now, lookup_overrides or {}, selected=sdef is not None
                                 and sdef.name in selected)
        out.append(list(result))
    return out


def run_pipeline(
    pipeline: ir.Pipeline, events: Iterable[Row], now: datetime, lookup_overrides: dict[str, Path],
    selected: bool = False, reread: Callable[[], Iterable[Row]] | None = None,
) -> tuple[Iterable[Row], list[StageStat]]:
    """The rows of a pipeline over events. `selected`: the events are already the rows of a source with `records:`
    (Windows), so they are not selected again. `reread`: the same events read again (a join's right side reads
    them a second time; without it they are held in memory)."""
    stats: list[StageStat] = []
    if pipeline.source.union is not None:
        return _run_union(pipeline, events, now, lookup_overrides, stats)
    levels = sources_down(pipeline.source)  # the rule's source, then each one under a view, down to the base
    base = levels[-1][0]
    sdef = builtin_sources().get(base.name)
    ctx = Context(now, base.time_column, sdef.time_from if sdef is not None else None)
    rows: Iterable[Row] = events
    again = reread
    if ir.has_join(pipeline) and again is None:  # the right side reads the same events: hold them, each side copies
        held = list(events)
        rows = (dict(ev) for ev in held)

        def again() -> Iterable[Row]:
            return (dict(ev) for ev in held)
    if sdef is not None and sdef.records and not selected:  # only the records `records:` names (Windows, auditd, Azure)
        if any(sel.match for sel in sdef.records):
            stat = StageStat(f"records of source {sdef.name} (by " +
                             ", ".join(sorted({f for sel in sdef.records for f, _ in sel.match})) + ")")
            rows = select_by_field(sdef.records, rows)
        else:
            by = "category" if any(sel.categories for sel in sdef.records) else "channel, EventID"
            stat = StageStat(f"records of source {sdef.name} (by {by})")
            rows = select_records(sdef, rows)
        stats.append(stat)
        rows = _Counter(stat).count_out(rows)
    for src, view_stages in reversed(levels[:-1]):  # views over views, innermost first
        view_stats: list[StageStat] = []
        rows = Engine(ctx, lookup_overrides).run_stages(view_stages, rows, view_stats)
        for s in view_stats:
            s.label = f"view {src.name}: {s.label}"
        stats.extend(view_stats)
        ctx = Context(now, src.time_column, None)  # the view's rows carry their time column already
    return Engine(ctx, lookup_overrides, again).run_stages(pipeline.stages, rows, stats), stats


def _run_union(pipeline: ir.Pipeline, events: Iterable[Row], now: datetime, lookup_overrides: dict[str, Path],
               stats: list[StageStat]) -> tuple[Iterable[Row], list[StageStat]]:
    """A SourceUnion: every branch over the same events (each reads its own copy of a record: stages change rows in
    place), its rows tagged, branch after branch; then the pipeline's own stages."""
    union = pipeline.source.union
    assert union is not None
    held = list(events)
    rows: list[Row] = []
    for b in union.branches:
        branch_rows, branch_stats = run_pipeline(b.pipeline, (dict(ev) for ev in held), now, lookup_overrides)
        for r in branch_rows:
            r[union.tag_column] = b.tag
            rows.append(r)
        for st in branch_stats:
            st.label = f"rule {b.tag}: {st.label}"
        if branch_stats:
            branch_stats[0].reads_events = True
        stats.extend(branch_stats)
    union_stat = StageStat(f"union: the rows of {len(union.branches)} rule(s), each tagged {union.tag_column}",
                           rows_out=len(rows), fixed_in=len(rows))
    stats.append(union_stat)
    ctx = Context(now, pipeline.source.time_column, None)
    return Engine(ctx, lookup_overrides).run_stages(pipeline.stages, rows, stats), stats
