"""The IR: a typed, immutable, linear pipeline of stages over typed expressions.

It is the only thing backends read. Its meaning is defined once, here and in docs/semantics.md:
- predicates are two-valued: a comparison or match with a null/missing operand is false, and `!=` is `not ==`;
- every string comparison says whether it is case-sensitive;
- `Extend` assigns in parallel: every expression reads the row as it was before the stage;
- `Aggregate` keeps null group keys as a group of their own.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Union

from .diagnostics import Span
from .types import Type

# ----------------------------------------------------------------------------------------------- expressions


class Wild(enum.Enum):
    """A wildcard inside a WildcardMatch pattern."""

    ANY = "*"  # any run of characters, including none
    ONE = "?"  # exactly one character


WildcardPattern = tuple[Union[str, Wild], ...]


class CmpOp(enum.Enum):
    EQ = "=="
    NE = "!="
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="


class StrOp(enum.Enum):
    CONTAINS = "contains"
    STARTSWITH = "startswith"
    ENDSWITH = "endswith"


class ArithOp(enum.Enum):
    ADD = "+"
    SUB = "-"
    MUL = "*"
    DIV = "/"
    MOD = "%"


@dataclass(frozen=True, slots=True)
class Literal:
    value: None | bool | int | float | str | datetime | timedelta
    type: Type


@dataclass(frozen=True, slots=True)
class Column:
    """A column of the current row, optionally with a path into its JSON value (`items[-1].cpuOptions`)."""

    name: str
    path: tuple[str | int, ...]
    type: Type


@dataclass(frozen=True, slots=True)
class Index:
    """Index into a computed value: `split(arn, "/")[-1]`. A string key reads an object member."""

    base: Expr
    key: str | int
    type: Type


@dataclass(frozen=True, slots=True)
class AnyElement:
    """Some element of the array `collection` satisfies `predicate` (docs/semantics.md decision 28).

    The predicate reads the element through `Element` nodes (the element of the innermost enclosing AnyElement) and
    literals only, never the row's columns. A collection that is null, missing, not an array or an empty array has no
    element: the AnyElement is false, and `Not(AnyElement(...))` ("no element matches") is true."""

    collection: Expr
    predicate: Expr
    type: Type = Type.BOOL


@dataclass(frozen=True, slots=True)
class Element:
    """The element an enclosing AnyElement is testing, optionally with a path into it (`modifiedProperties`)."""

    path: tuple[str | int, ...]
    type: Type


@dataclass(frozen=True, slots=True)
class Compare:
    op: CmpOp
    left: Expr
    right: Expr
    case_sensitive: bool = True
    type: Type = Type.BOOL


@dataclass(frozen=True, slots=True)
class StringMatch:
    op: StrOp
    subject: Expr
    pattern: Expr
    case_sensitive: bool
    type: Type = Type.BOOL


@dataclass(frozen=True, slots=True)
class WildcardMatch:
    """The whole subject matches a pattern of literal text and wildcards (Sigma's `*`/`?`)."""

    subject: Expr
    pattern: WildcardPattern
    case_sensitive: bool
    type: Type = Type.BOOL


@dataclass(frozen=True, slots=True)
class RegexMatch:
    """A search (not a full match) of `pattern` in the subject; flags from {"i", "m", "s"}."""

    subject: Expr
    pattern: str
    flags: frozenset[str] = frozenset()
    type: Type = Type.BOOL


@dataclass(frozen=True, slots=True)
class CidrMatch:
    subject: Expr
    networks: tuple[str, ...]
    type: Type = Type.BOOL


@dataclass(frozen=True, slots=True)
class InList:
    subject: Expr
    values: tuple[Expr, ...]
    case_sensitive: bool
    type: Type = Type.BOOL


@dataclass(frozen=True, slots=True)
class Keyword:
    """Sigma keyword search: some string value anywhere in the event matches the pattern."""

    pattern: WildcardPattern
    case_sensitive: bool = False
    type: Type = Type.BOOL


@dataclass(frozen=True, slots=True)
class Not:
    operand: Expr
    type: Type = Type.BOOL


@dataclass(frozen=True, slots=True)
class And:
    operands: tuple[Expr, ...]
    type: Type = Type.BOOL


@dataclass(frozen=True, slots=True)
class Or:
    operands: tuple[Expr, ...]
    type: Type = Type.BOOL


@dataclass(frozen=True, slots=True)
class Arith:
    op: ArithOp
    left: Expr
    right: Expr
    type: Type


@dataclass(frozen=True, slots=True)
class Negate:
    operand: Expr
    type: Type


@dataclass(frozen=True, slots=True)
class Case:
    """First branch whose condition is true gives the value; otherwise `default`. `iif` is a one-branch Case."""

    branches: tuple[tuple[Expr, Expr], ...]
    default: Expr
    type: Type


@dataclass(frozen=True, slots=True)
class Call:
    """A scalar function from compiler/functions.py (the one table of names, signatures and meanings)."""

    fn: str
    args: tuple[Expr, ...]
    type: Type


Expr = Union[
    Literal,
    Column,
    Index,
    Compare,
    StringMatch,
    WildcardMatch,
    RegexMatch,
    CidrMatch,
    InList,
    Keyword,
    Not,
    And,
    Or,
    Arith,
    Negate,
    Case,
    Call,
    AnyElement,
    Element,
]

# ----------------------------------------------------------------------------------------------- stages


@dataclass(frozen=True, slots=True)
class Assignment:
    name: str
    expr: Expr


class AggFn(enum.Enum):
    COUNT = "count"  # count() rows, or count(x) rows where x is not null
    DCOUNT = "dcount"  # exact number of distinct non-null values
    MIN = "min"
    MAX = "max"
    SUM = "sum"
    AVG = "avg"
    STDEV = "stdev"  # sample standard deviation of the numbers; fewer than 2 → null (docs/semantics.md decision 85)
    STDEVP = "stdevp"  # population standard deviation of the numbers; none → null
    VALUES = "values"  # distinct non-null values, sorted; with Aggregation.limit N, at most N of them (decision 95)
    EARLIEST = "earliest"  # x of the row with the smallest _time
    LATEST = "latest"  # x of the row with the largest _time
    PERCENTILE = "percentile"  # exact nearest-rank percentile of the non-null numbers (Aggregation.percentile)
    ARG_MAX = "arg_max"  # x of the row with the largest `key` (Aggregation.key; docs/semantics.md decision 78)
    ARG_MIN = "arg_min"  # x of the row with the smallest `key`


@dataclass(frozen=True, slots=True)
class Aggregation:
    name: str
    fn: AggFn
    arg: Expr | None
    type: Type
    percentile: float | None = None  # PERCENTILE only: p in (0, 100]
    key: Expr | None = None  # ARG_MAX/ARG_MIN only: the expression whose largest/smallest value picks the row
    # VALUES only: at most this many of the distinct values (N >= 1). Which ones, when a group has more than N, is
    # unspecified (KQL's make_set(x, N) keeps an undefined N of them): docs/semantics.md decision 95
    limit: int | None = None
    # VALUES only: `arg` is an array and the values are, of each of its elements, the scalar at this path (() the
    # element itself): `values(a[].b)`, Splunk's values() of the multivalue field a{}.b (docs/semantics.md 87)
    each: tuple[str | int, ...] | None = None


@dataclass(frozen=True, slots=True)
class Filter:
    predicate: Expr


@dataclass(frozen=True, slots=True)
class Extend:
    """Add or replace columns. Parallel: every expression reads the row from before this stage."""

    assignments: tuple[Assignment, ...]


@dataclass(frozen=True, slots=True)
class Aggregate:
    """One output row per distinct tuple of `by` values (null is a value); columns: by names, then aggregations."""

    aggregations: tuple[Aggregation, ...]
    by: tuple[Assignment, ...]


@dataclass(frozen=True, slots=True)
class EventAggregate:
    """Every row is kept and gains the aggregates of its `by` group (SPL eventstats)."""

    aggregations: tuple[Aggregation, ...]
    by: tuple[Assignment, ...]


@dataclass(frozen=True, slots=True)
class LookupTable:
    name: str
    path: str  # CSV file, relative to the rule library root or absolute
    columns: tuple[str, ...]
    types: tuple[Type, ...]


@dataclass(frozen=True, slots=True)
class Lookup:
    """Left join with a table: rows without a match keep their values and get null outputs.

    Keys compare exactly (case-sensitive) on their string form; the first table row that matches wins.
    """

    table: LookupTable
    keys: tuple[tuple[Expr, str], ...]  # (row expression, table column)
    outputs: tuple[tuple[str, str], ...]  # (table column, output column name)


@dataclass(frozen=True, slots=True)
class Rename:
    renames: tuple[tuple[str, str], ...]  # (old, new)


@dataclass(frozen=True, slots=True)
class Project:
    columns: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SortKey:
    expr: Expr
    descending: bool


@dataclass(frozen=True, slots=True)
class Sort:
    """Stable sort; nulls sort first ascending and last descending."""

    keys: tuple[SortKey, ...]


@dataclass(frozen=True, slots=True)
class Limit:
    count: int


@dataclass(frozen=True, slots=True)
class Expand:
    """One row per element of the array `expr`, each a copy of the input row with column `name` set to the element
    (KQL `mv-expand name = expr`, docs/semantics.md decision 62). A null or missing value gives one row with `name`
    null; an empty array or object gives no row; an object gives one row per member, `{key: value}`; any other
    value (a string, a number, a bool) gives one row with `name` set to that value. `type` is the element's type:
    DYNAMIC, or a scalar type to which an element that is not of that type (no conversion, as KQL
    `to typeof(T)`) gives null. `limit` keeps only the first that many elements of each value (KQL `limit N`; the
    legacy `mvexpand` has 128, docs/semantics.md decision 77)."""

    name: str
    expr: Expr
    type: Type
    limit: int | None = None


class JoinKind(enum.Enum):
    INNER = "inner"  # every pair of a left row and a right row whose keys are equal
    INNERUNIQUE = "innerunique"  # inner, after keeping one left row per key (KQL's default kind)
    LEFTOUTER = "leftouter"  # inner, plus every left row with no match, its right columns null
    LEFTSEMI = "leftsemi"  # the left rows that have a match, once each, with the left columns only
    LEFTANTI = "leftanti"  # the left rows that have no match, with the left columns only


@dataclass(frozen=True, slots=True)
class Join:
    """Rows matched with the rows of another pipeline (KQL `join`, docs/semantics.md decision 70).

    `right` is a whole pipeline (its own source, binding and stages) over the same logs. Keys pair a field of the
    left rows (a column, or a path into one) with a column of the right rows; a pair matches when every key is
    equal — exactly, case-sensitive, as `==` — and a null key matches nothing. `outputs` are the right columns the
    joined row gains, each under its output name, which never names a column of the left rows (KQL: a right column
    whose name the left has is suffixed `1`, `2`, …); empty for leftsemi/leftanti. Output order: left rows in order,
    each followed by its matches in the right's order. innerunique keeps one left row of each key: which one is left
    open (Kusto keeps an arbitrary one; the executor the first).
    `empty_keys_match` (`matchempty=true`): null and "" are one key value, which matches itself — KQL's meaning for
    string keys, since a Kusto string is never null (an import of a KQL join says so)."""

    kind: JoinKind
    right: Pipeline
    keys: tuple[tuple[Expr, str], ...]  # (left row expression: a column or a path into one, right column)
    outputs: tuple[tuple[str, str], ...]  # (right column, output column name)
    types: tuple[Type, ...] = ()  # the outputs' types, one each
    empty_keys_match: bool = False  # a null or empty-string key matches a null or empty-string key (KQL strings)


Stage = Union[Filter, Extend, Aggregate, EventAggregate, Lookup, Rename, Project, Sort, Limit, Expand, Join]


@dataclass(frozen=True, slots=True)
class UnionBranch:
    """One input of a SourceUnion: a whole pipeline (its own source, binding and stages) and the tag its rows carry."""

    tag: str
    pipeline: Pipeline


@dataclass(frozen=True, slots=True)
class SourceUnion:
    """The rows of every branch, branch after branch, each row with column `tag_column` set to its branch's tag.

    An event two branches keep is two rows, one per tag (KQL `union`, SPL `multisearch`, executor concatenation).
    A branch's pipeline ends with an Extend of every column the stages after the union read, so that those stages
    read computed columns only, whatever binding each branch is read through."""

    branches: tuple[UnionBranch, ...]
    tag_column: str


@dataclass(frozen=True, slots=True)
class SourceRef:
    """The logical source a pipeline reads. A view is a source defined by a pipeline over another source; a union
    source reads the rows of several pipelines (Sigma correlations over their base rules)."""

    name: str
    time_column: str | None  # the column holding the event time (`_time`), if the source has one
    view: Pipeline | None = None
    union: SourceUnion | None = None


@dataclass(frozen=True, slots=True)
class Pipeline:
    source: SourceRef
    stages: tuple[Stage, ...]
    columns: tuple[tuple[str, Type], ...] | None = None  # the output schema when it is closed (after summarize/project)


# ----------------------------------------------------------------------------------------------- rules


@dataclass(frozen=True, slots=True)
class Schedule:
    every: timedelta
    lookback: timedelta


@dataclass(frozen=True, slots=True)
class Threshold:
    op: CmpOp
    value: int


@dataclass(frozen=True, slots=True)
class AlertSpec:
    threshold: Threshold
    suppress: timedelta | None


@dataclass(frozen=True, slots=True)
class EntityField:
    identifier: str  # e.g. name, upn_suffix, address
    column: str


@dataclass(frozen=True, slots=True)
class Entity:
    kind: str  # account, ip, host, cloud_application, …
    fields: tuple[EntityField, ...]


@dataclass(frozen=True, slots=True)
class RuleMeta:
    id: str
    title: str
    description: str
    status: str | None
    level: str | None
    author: str | None
    date: str | None
    tags: tuple[str, ...]
    references: tuple[str, ...]
    falsepositives: tuple[str, ...]
    logsource: tuple[tuple[str, str], ...]
    version: str | None = None


@dataclass(frozen=True, slots=True)
class Baseline:
    """A lookup table filled from the rule's own source: when each `key` was first and last seen.

    `initial` computes the table from logs (columns: key, firstTimeSeen, lastTimeSeen, enough_data); a scheduled
    update merges a new window into it (min first, max last), drops keys not seen for `forget`, and sets
    enough_data to 1 once the oldest sighting is at least `warmup` old."""

    table: str
    key: str
    initial: Pipeline
    forget: timedelta
    warmup: timedelta


@dataclass(frozen=True, slots=True)
class RuleIR:
    meta: RuleMeta
    pipeline: Pipeline
    schedule: Schedule | None
    alert: AlertSpec
    entities: tuple[Entity, ...] = ()
    details: tuple[tuple[str, str], ...] = ()
    lookups: tuple[LookupTable, ...] = field(default=())
    file: str = ""
    baselines: tuple[Baseline, ...] = ()
    # IR node -> where the rule wrote it, by identity (pickling keeps identity within a rule): see lowering.span_of
    spans: tuple[tuple[object, Span], ...] = field(default=(), compare=False, repr=False)


def walk(expr: Expr):  # type: ignore[no-untyped-def]
    """Yield `expr` and every sub-expression, parents first."""
    yield expr
    match expr:
        case Index(base=b):
            yield from walk(b)
        case Compare(left=l, right=r) | Arith(left=l, right=r):
            yield from walk(l)
            yield from walk(r)
        case StringMatch(subject=s, pattern=p):
            yield from walk(s)
            yield from walk(p)
        case WildcardMatch(subject=s) | RegexMatch(subject=s) | CidrMatch(subject=s):
            yield from walk(s)
        case InList(subject=s, values=vs):
            yield from walk(s)
            for v in vs:
                yield from walk(v)
        case Not(operand=o) | Negate(operand=o):
            yield from walk(o)
        case And(operands=os) | Or(operands=os):
            for o in os:
                yield from walk(o)
        case Case(branches=bs, default=d):
            for c, v in bs:
                yield from walk(c)
                yield from walk(v)
            yield from walk(d)
        case Call(args=args):
            for a in args:
                yield from walk(a)
        case AnyElement(collection=c, predicate=p):
            yield from walk(c)
            yield from walk(p)
        case _:
            pass


def stage_exprs(stage: Stage) -> tuple[Expr, ...]:
    """The expressions a stage evaluates (not their sub-expressions: `walk` each)."""
    match stage:
        case Filter(predicate=p):
            return (p,)
        case Extend(assignments=a):
            return tuple(x.expr for x in a)
        case Aggregate(aggregations=aggs, by=by) | EventAggregate(aggregations=aggs, by=by):
            return (*(x.expr for x in by), *(a.arg for a in aggs if a.arg is not None),
                    *(a.key for a in aggs if a.key is not None))
        case Lookup(keys=keys):
            return tuple(k for k, _ in keys)
        case Sort(keys=keys):
            return tuple(k.expr for k in keys)
        case Expand(expr=e):
            return (e,)
        case Join(keys=keys):
            return tuple(left for left, _ in keys)
    return ()


def assigned_names(stage: Stage) -> tuple[str, ...]:
    """The columns a stage puts on the rows it keeps (extend, eventstats, lookup outputs, rename targets); summarize
    and project replace the rows instead."""
    match stage:
        case Extend(assignments=a):
            return tuple(x.name for x in a)
        case EventAggregate(aggregations=aggs):
            return tuple(x.name for x in aggs)
        case Lookup(outputs=outs):
            return tuple(alias for _, alias in outs)
        case Rename(renames=rs):
            return tuple(new for _, new in rs)
        case Expand(name=n):
            return (n,)
        case Join(outputs=outs):
            return tuple(alias for _, alias in outs)
    return ()


def has_join(pipeline: Pipeline) -> bool:
    """Whether the pipeline joins another: it reads the logs twice, so its events cannot be streamed once."""
    return any(isinstance(st, Join) for st in pipeline.stages)


def reads_clock(pipeline: Pipeline) -> bool:
    """Whether the pipeline (or a view under its source, views over views too) calls now() or ago(): its result
    depends on when it runs."""
    return any(isinstance(e, Call) and e.fn in ("now", "ago") for st in pipeline.stages for x in stage_exprs(st)
               for e in walk(x)) or (pipeline.source.view is not None and reads_clock(pipeline.source.view)) or any(
        isinstance(st, Join) and reads_clock(st.right) for st in pipeline.stages)


def within_last(pipeline: Pipeline, span: timedelta) -> Pipeline:
    """The pipeline over only the rows whose event time is at most `span` before now (`_time >= ago(span)`),
    as a target's scheduled run sees them: the filter comes first, after the view under the source."""
    col = pipeline.source.time_column
    if col is None:
        raise ValueError(f"source {pipeline.source.name!r} has no event time to window by")
    keep = Compare(CmpOp.GE, Column(col, (), Type.DATETIME),
                   Call("ago", (Literal(span, Type.TIMESPAN),), Type.DATETIME))
    return Pipeline(pipeline.source, (Filter(keep), *pipeline.stages), pipeline.columns)
