"""IR expressions → Python closures, built once per rule (no tree walk per event)."""

from __future__ import annotations

import ipaddress
import operator
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from siemforge.compiler import ir

from .functions import IMPLEMENTATIONS
from .regex import compile_re2
from .values import (
    is_number,
    order_key,
    to_datetime,
    to_number,
    to_text,
    values_equal,
    wildcard_matcher,
)

Row = dict[str, Any]
Fn = Callable[[Row], Any]


@dataclass(frozen=True, slots=True)
class Context:
    now: datetime
    time_column: str | None  # the source's event-time column
    time_from: str | None  # the raw field it is read from


_MISSING = object()


def navigate(v: Any, path: tuple[str | int, ...]) -> Any:
    for seg in path:
        if isinstance(seg, int):
            if isinstance(v, list) and -len(v) <= seg < len(v):
                v = v[seg]
            else:
                return None
        elif isinstance(v, dict):
            v = v.get(seg)
        else:
            return None
        if v is None:
            return None
    return v


def column_getter(col: ir.Column, ctx: Context) -> Fn:
    name, path = col.name, col.path
    if ctx.time_column is not None and name == ctx.time_column and ctx.time_from is not None:
        raw, cache = ctx.time_from, ctx.time_column
        if "." in raw:  # a member of an object (Google Workspace's id.time)
            head, *tail = raw.split(".")
            rest = tuple(tail)

            def get_nested_time(row: Row) -> Any:
                v = row.get(cache, _MISSING)
                if v is _MISSING:
                    v = row[cache] = to_datetime(navigate(row.get(head), rest))
                return v
            return get_nested_time

        def get_time(row: Row) -> Any:
            v = row.get(cache, _MISSING)
            if v is _MISSING:
                v = row[cache] = to_datetime(row.get(raw))
            return v
        return get_time
    if not path:
        return lambda row: row.get(name)
    if len(path) == 1 and isinstance(path[0], str):
        key = path[0]

        def get1(row: Row) -> Any:
            v = row.get(name)
            return v.get(key) if isinstance(v, dict) else None
        return get1
    return lambda row: navigate(row.get(name), path)


def compile_expr(e: ir.Expr, ctx: Context) -> Fn:
    match e:
        case ir.Literal(value=v):
            return lambda row: v
        case ir.Column():
            return column_getter(e, ctx)
        case ir.Index(base=b, key=k):
            fb = compile_expr(b, ctx)
            return lambda row: navigate(fb(row), (k,))
        case ir.Compare():
            return _compile_compare(e, ctx)
        case ir.StringMatch(op=op, subject=subj, pattern=pat, case_sensitive=cs):
            fs, fp = compile_expr(subj, ctx), compile_expr(pat, ctx)
            method: Callable[[str, str], bool] = {
                ir.StrOp.CONTAINS: operator.contains, ir.StrOp.STARTSWITH: str.startswith,
                ir.StrOp.ENDSWITH: str.endswith}[op]  # type: ignore[assignment]
            if isinstance(pat, ir.Literal) and isinstance(pat.value, str):
                lit = pat.value if cs else pat.value.lower()

                def match_lit(row: Row) -> bool:
                    v = fs(row)
                    if v is None:
                        return False
                    t = v if isinstance(v, str) else to_text(v)
                    assert t is not None
                    return bool(method(t if cs else t.lower(), lit))
                return match_lit

            def match_dyn(row: Row) -> bool:
                v, p = to_text(fs(row)), to_text(fp(row))
                if v is None or p is None:
                    return False
                return bool(method(v, p) if cs else method(v.lower(), p.lower()))
            return match_dyn
        case ir.WildcardMatch(subject=subj, pattern=pat, case_sensitive=cs):
            fs = compile_expr(subj, ctx)
            full = wildcard_matcher(pat, cs)

            def wild(row: Row) -> bool:
                t = to_text(fs(row))
                return t is not None and full(t)
            return wild
        case ir.RegexMatch(subject=subj, pattern=pat, flags=flags):
            fs = compile_expr(subj, ctx)
            rx = compile_re2(pat, flags)  # RegexRefused if RE2 cannot run it: run_rule checks every rule first

            def regex(row: Row) -> bool:
                t = to_text(fs(row))
                return t is not None and rx.search(t) is not None
            return regex
        case ir.CidrMatch(subject=subj, networks=nets):
            fs = compile_expr(subj, ctx)
            networks = [ipaddress.ip_network(n, strict=False) for n in nets]

            def cidr(row: Row) -> bool:
                t = to_text(fs(row))
                if not t:
                    return False
                try:
                    addr = ipaddress.ip_address(t.strip())
                except ValueError:
                    return False
                return any(addr.version == n.version and addr in n for n in networks)
            return cidr
        case ir.InList(subject=subj, values=vals, case_sensitive=cs):
            fs = compile_expr(subj, ctx)
            if all(isinstance(v, ir.Literal) and isinstance(v.value, str) for v in vals):
                lits = {v.value if cs else v.value.lower() for v in vals}  # type: ignore[union-attr]
                fvals = [compile_expr(v, ctx) for v in vals]

                def in_str(row: Row) -> bool:
                    x = fs(row)
                    if isinstance(x, str):
                        return (x if cs else x.lower()) in lits
                    return x is not None and any(values_equal(x, f(row), cs) for f in fvals)
                return in_str
            fvals = [compile_expr(v, ctx) for v in vals]

            def in_any(row: Row) -> bool:
                x = fs(row)
                return x is not None and any(values_equal(x, f(row), cs) for f in fvals)
            return in_any
        case ir.Keyword(pattern=pat, case_sensitive=cs):
            full = wildcard_matcher(pat, cs)

            def keyword(row: Row) -> bool:
                return any(full(t) for t in _leaf_texts(row))
            return keyword
        case ir.Not(operand=o):
            f_not = compile_expr(o, ctx)
            return lambda row: not f_not(row)
        case ir.And(operands=ops):
            fs_ = [compile_expr(o, ctx) for o in ops]
            if len(fs_) == 2:
                f_left, f_right = fs_
                return lambda row: bool(f_left(row)) and bool(f_right(row))
            return lambda row: all(f(row) for f in fs_)
        case ir.Or(operands=ops):
            keywords = [o for o in ops if isinstance(o, ir.Keyword)]
            if len(keywords) > 1:  # Sigma keyword lists: one walk over the event's values for all of them
                rest = [o for o in ops if not isinstance(o, ir.Keyword)]
                fs_ = [_keywords(keywords), *(compile_expr(o, ctx) for o in rest)]
            else:
                fs_ = [compile_expr(o, ctx) for o in ops]
            return lambda row: any(f(row) for f in fs_)
        case ir.Arith(op=op, left=l, right=r):
            return _compile_arith(op, compile_expr(l, ctx), compile_expr(r, ctx))
        case ir.Negate(operand=o):
            fo = compile_expr(o, ctx)

            def neg(row: Row) -> Any:
                v = fo(row)
                if isinstance(v, timedelta):
                    return -v
                n = to_number(v)
                return None if n is None else -n
            return neg
        case ir.Case(branches=branches, default=d):
            compiled = [(compile_expr(c, ctx), compile_expr(v, ctx)) for c, v in branches]
            fd = compile_expr(d, ctx)

            def case(row: Row) -> Any:
                for c, v in compiled:
                    if c(row):
                        return v(row)
                return fd(row)
            return case
        case ir.Call(fn=fn, args=args):
            return _compile_call(fn, args, ctx)
        case ir.Element(path=path):
            # inside an AnyElement's predicate the closure is called with the element, not the row (ir.AnyElement)
            return lambda element: navigate(element, path)
        case ir.AnyElement(collection=c, predicate=p):
            f_coll, f_pred = compile_expr(c, ctx), compile_expr(p, ctx)

            def any_element(row: Row) -> bool:
                items = f_coll(row)  # null, missing, a scalar, an object, an empty array: no element
                return isinstance(items, list) and any(f_pred(item) for item in items)
            return any_element
    raise NotImplementedError(f"executor: no lowering for {type(e).__name__}")


def _compile_compare(e: ir.Compare, ctx: Context) -> Fn:
    fl, fr = compile_expr(e.left, ctx), compile_expr(e.right, ctx)
    cs = e.case_sensitive
    if e.op in (ir.CmpOp.EQ, ir.CmpOp.NE):
        negate = e.op is ir.CmpOp.NE
        if isinstance(e.right, ir.Literal) and isinstance(e.right.value, str):
            lit = e.right.value
            low = lit.lower()

            def eq_str(row: Row) -> bool:
                v = fl(row)
                if isinstance(v, str):
                    r = (v == lit) if cs else (v == lit or v.lower() == low)
                else:
                    r = values_equal(v, lit, cs)
                return r != negate
            return eq_str
        return lambda row: values_equal(fl(row), fr(row), cs) != negate
    op = {ir.CmpOp.LT: operator.lt, ir.CmpOp.LE: operator.le, ir.CmpOp.GT: operator.gt,
          ir.CmpOp.GE: operator.ge}[e.op]

    def order(row: Row) -> bool:
        a, b = fl(row), fr(row)
        if is_number(a) and is_number(b):
            return bool(op(a, b))
        pair = order_key(a, b)
        return pair is not None and bool(op(pair[0], pair[1]))
    return order


def _compile_arith(op: ir.ArithOp, fl: Fn, fr: Fn) -> Fn:
    def arith(row: Row) -> Any:
        a, b = fl(row), fr(row)
        if a is None or b is None:
            return None
        if isinstance(a, datetime) or isinstance(b, datetime) or isinstance(a, timedelta) or isinstance(b, timedelta):
            try:
                if op is ir.ArithOp.ADD:
                    return a + b
                if op is ir.ArithOp.SUB:
                    return a - b
                n = to_number(b)
                if op is ir.ArithOp.MUL:
                    return a * n if isinstance(a, timedelta) and n is not None else None
                if op is ir.ArithOp.DIV:
                    if isinstance(a, timedelta) and isinstance(b, timedelta):
                        return a / b if b else None
                    return a / n if isinstance(a, timedelta) and n else None
            except TypeError:
                return None
            return None
        x, y = to_number(a), to_number(b)
        if x is None or y is None:
            return None
        if op is ir.ArithOp.ADD:
            return x + y
        if op is ir.ArithOp.SUB:
            return x - y
        if op is ir.ArithOp.MUL:
            return x * y
        if y == 0:
            return None
        if op is ir.ArithOp.DIV:
            if isinstance(x, int) and isinstance(y, int):
                q = abs(x) // abs(y)
                return q if (x >= 0) == (y >= 0) else -q  # integer division truncates toward zero
            return x / y
        r = abs(x) % abs(y)
        return r if x >= 0 else -r  # remainder takes the sign of the dividend
    return arith


def _now(args: tuple[ir.Expr, ...], ctx: Context) -> Fn:
    now = ctx.now
    return lambda row: now


def _ago(args: tuple[ir.Expr, ...], ctx: Context) -> Fn:
    fa = compile_expr(args[0], ctx)
    now = ctx.now

    def ago(row: Row) -> Any:
        v = fa(row)
        return now - v if isinstance(v, timedelta) else None
    return ago


# the clock functions read the run's `now` (fixed by --now for tests); every other function is in IMPLEMENTATIONS
CLOCK: dict[str, Callable[[tuple[ir.Expr, ...], Context], Fn]] = {"now": _now, "ago": _ago}


def _compile_call(fn: str, args: tuple[ir.Expr, ...], ctx: Context) -> Fn:
    clock = CLOCK.get(fn)
    if clock is not None:
        return clock(args, ctx)
    impl = IMPLEMENTATIONS[fn]
    fargs = [compile_expr(a, ctx) for a in args]
    if len(fargs) == 1:
        (f0,) = fargs
        return lambda row: impl(f0(row))
    if len(fargs) == 2:
        f0, f1 = fargs
        return lambda row: impl(f0(row), f1(row))
    return lambda row: impl(*[f(row) for f in fargs])


def _keywords(keywords: list[ir.Keyword]) -> Callable[[Row], bool]:
    """Any of several keywords anywhere in the event, as `any(keyword)` means, walking the event's values once: each
    value is lowered once for every case-insensitive pattern without `?` (whose matcher lowers the value itself and
    compares it with the lowered pattern: the same test); the others get the value as it is."""
    lowered: list[Callable[[str], bool]] = []
    as_is: list[Callable[[str], bool]] = []
    for k in keywords:
        if not k.case_sensitive and not any(p is ir.Wild.ONE for p in k.pattern):
            lowered.append(wildcard_matcher(tuple(p.lower() if isinstance(p, str) else p for p in k.pattern), True))
        else:
            as_is.append(wildcard_matcher(k.pattern, k.case_sensitive))

    def any_keyword(row: Row) -> bool:
        for t in _leaf_texts(row):
            if as_is and any(m(t) for m in as_is):
                return True
            if lowered:
                low = t.lower()
                if any(m(low) for m in lowered):
                    return True
        return False
    return any_keyword


def _leaf_texts(v: Any):  # type: ignore[no-untyped-def]
    if isinstance(v, dict):
        for x in v.values():
            yield from _leaf_texts(x)
    elif isinstance(v, list):
        for x in v:
            yield from _leaf_texts(x)
    elif v is not None:
        t = to_text(v)
        if t is not None:
            yield t
