"""Nullability and constancy of IR expressions, stage by stage: which values cannot be null on the rows a stage sees.

A pass any backend can call (docs/semantics.md, decision 40). The IR's predicates are two-valued (decision 1): a
comparison or match with a null side is false, so a row that passed `where x == "a"` (or `isnotempty(x)`, or
`x > 3`, or `x matches regex …`) holds a non-null `x` from then on, until a stage replaces `x`. Backends read the
facts to leave out what only a null could need: SPL's sentinel fill around `stats by` for a key that cannot be null,
the `isnull(x) or` guard of a `!=` whose side cannot be null (`lowering.null_guards`). The executor does not read
them: it is the meaning, and the facts only say where a guard would never fire.

The analysis is conservative: "may be null" is the answer whenever it cannot prove otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from . import ir

Key = tuple[str, tuple[str | int, ...]]  # a column and a path into it


@dataclass(frozen=True, slots=True)
class Facts:
    """What holds on every row reaching a stage: the columns (with paths) that are not null, and the columns that
    hold the same constant on every row."""

    non_null: frozenset[Key] = frozenset()
    constant: frozenset[str] = frozenset()

    def without(self, names: Iterable[str]) -> Facts:
        """The facts once `names` are replaced by values the pass knows nothing of."""
        gone = set(names)
        return Facts(frozenset(k for k in self.non_null if k[0] not in gone), self.constant - gone)


# aggregations that are a number on every group, even one whose values are all null
_NEVER_NULL_AGGS = frozenset({ir.AggFn.COUNT, ir.AggFn.DCOUNT})
# calls that are never null whatever their arguments (compiler/functions.py: predicates on a value, the clock)
_NEVER_NULL_CALLS = frozenset({"isnull", "isnotnull", "isempty", "isnotempty", "strcat", "now", "ago"})


def non_null(e: ir.Expr, facts: Facts) -> bool:
    """Whether `e` is non-null on every row the facts hold for."""
    match e:
        case ir.Literal(value=v):
            return v is not None
        case ir.Column(name=n, path=p):
            return (n, p) in facts.non_null
        case ir.Call(fn="coalesce", args=args):
            return any(non_null(a, facts) for a in args)
        case ir.Call(fn=fn) if fn in _NEVER_NULL_CALLS:
            return True
        case ir.Case(branches=bs, default=d):
            return non_null(d, facts) and all(non_null(v, facts) for _, v in bs)
    return False


def is_constant(e: ir.Expr, facts: Facts) -> bool:
    """Whether `e` has the same value on every row (a literal, a column assigned one, an expression of constants)."""
    match e:
        case ir.Literal():
            return True
        case ir.Column(name=n, path=()):
            return n in facts.constant
        case ir.Call(fn=fn, args=args) if fn not in ("now", "ago"):
            return all(is_constant(a, facts) for a in args)
    return False


def true_implies(e: ir.Expr) -> frozenset[Key]:
    """The columns a row's values of which are non-null whenever predicate `e` is true (two-valued IR)."""
    match e:
        case ir.Compare(op=op, left=l, right=r):
            if op is ir.CmpOp.NE or _null_literal(l) or _null_literal(r):
                return frozenset()  # `x != y` is true when a side is null
            return frozenset(_key(x) for x in (l, r) if _key(x) is not None)  # type: ignore[misc]
        case ir.StringMatch(subject=s) | ir.WildcardMatch(subject=s) | ir.RegexMatch(subject=s) | ir.CidrMatch(
                subject=s) | ir.InList(subject=s):
            k = _key(s)
            return frozenset() if k is None else frozenset({k})
        case ir.AnyElement(collection=c):  # a null collection has no element: false
            k = _key(c)
            return frozenset() if k is None else frozenset({k})
        case ir.Call(fn="isnotempty" | "isnotnull", args=(a,)):
            k = _key(a)
            return frozenset() if k is None else frozenset({k})
        case ir.Not(operand=ir.Call(fn="isempty" | "isnull", args=(a,))):
            k = _key(a)
            return frozenset() if k is None else frozenset({k})
        case ir.And(operands=ops):
            out: frozenset[Key] = frozenset()
            for o in ops:
                out |= true_implies(o)
            return out
        case ir.Or(operands=ops):
            sets = [true_implies(o) for o in ops]
            return frozenset.intersection(*sets) if sets else frozenset()
    return frozenset()


_proving = [True]  # off only inside `unproven()`


@contextmanager
def unproven() -> Iterator[None]:
    """Compile as if the pass proved nothing (every guard and fill kept): how tests/test_nullability.py checks that
    what the pass drops changes no row."""
    _proving.append(False)
    try:
        yield
    finally:
        _proving.pop()


def step(facts: Facts, stage: ir.Stage) -> Facts:
    """The facts on the rows after `stage`, from those before it."""
    if not _proving[-1]:
        return Facts()
    match stage:
        case ir.Filter(predicate=p):
            return Facts(facts.non_null | true_implies(p), facts.constant)
        case ir.Extend(assignments=assigns):  # parallel: every expression reads the row from before the stage
            nn = {a.name for a in assigns if non_null(a.expr, facts)}
            const = {a.name for a in assigns if is_constant(a.expr, facts)}
            kept = facts.without(a.name for a in assigns)
            return Facts(kept.non_null | {(n, ()) for n in nn}, kept.constant | const)
        case ir.Aggregate(aggregations=aggs, by=by):  # new rows: a key is non-null if it was on every input row
            nn = {b.name for b in by if non_null(b.expr, facts)} | {a.name for a in aggs if a.fn in _NEVER_NULL_AGGS}
            const = {b.name for b in by if is_constant(b.expr, facts)}
            return Facts(frozenset((n, ()) for n in nn), frozenset(const))
        case ir.EventAggregate(aggregations=aggs):
            kept = facts.without(a.name for a in aggs)
            return Facts(kept.non_null | {(a.name, ()) for a in aggs if a.fn in _NEVER_NULL_AGGS}, kept.constant)
        case ir.Lookup(outputs=outs):
            return facts.without(alias for _, alias in outs)
        case ir.Rename(renames=renames):
            olds = {o for o, _ in renames}
            kept = facts.without([*olds, *(n for _, n in renames)])
            moved_nn = {(new, k[1]) for old, new in renames for k in facts.non_null if k[0] == old}
            moved_const = {new for old, new in renames if old in facts.constant}
            return Facts(kept.non_null | moved_nn, kept.constant | moved_const)
        case ir.Project(columns=cols):
            keep = set(cols)
            return Facts(frozenset(k for k in facts.non_null if k[0] in keep), facts.constant & keep)
        case ir.Expand(name=n):
            return facts.without((n,))
        case ir.Join(kind=kind, keys=keys, outputs=outs):  # a matched row's keys are not null (decision 70)
            kept = facts.without(alias for _, alias in outs)
            if kind in (ir.JoinKind.LEFTOUTER, ir.JoinKind.LEFTANTI):
                return kept
            return Facts(kept.non_null | {(left.name, left.path) for left, _ in keys if isinstance(left, ir.Column)},
                         kept.constant)
    return facts  # sort, limit: the same rows


def facts_before(stages: Iterable[ir.Stage], start: Facts = Facts()) -> list[Facts]:
    """The facts before each stage, in order (the first is `start`)."""
    out = []
    facts = start
    for st in stages:
        out.append(facts)
        facts = step(facts, st)
    return out


def _key(e: ir.Expr) -> Key | None:
    return (e.name, e.path) if isinstance(e, ir.Column) else None


def _null_literal(e: ir.Expr) -> bool:
    return isinstance(e, ir.Literal) and e.value is None
