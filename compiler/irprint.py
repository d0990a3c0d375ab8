"""Print the IR as text (`siemforge ir RULE`): one line per stage, expressions in a fully parenthesised form
that shows every decision (case sensitivity, parallel assignment, null-keeping groups)."""

from __future__ import annotations

from datetime import datetime, timedelta

from . import ir


def format_expr(e: ir.Expr) -> str:
    match e:
        case ir.Literal(value=v):
            if v is None:
                return "null"
            if isinstance(v, bool):
                return "true" if v else "false"
            if isinstance(v, str):
                return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
            if isinstance(v, datetime):
                return f"datetime({v.isoformat().replace('+00:00', 'Z')})"
            if isinstance(v, timedelta):
                return f"timespan({v.total_seconds():g}s)"
            return str(v)
        case ir.Column(name=n, path=p):
            out = n if n.isidentifier() else f"`{n}`"
            for seg in p:
                out += f"[{seg}]" if isinstance(seg, int) else f".{seg}"
            return out
        case ir.Index(base=b, key=k):
            return f"{format_expr(b)}[{k!r}]"
        case ir.Compare(op=op, left=l, right=r, case_sensitive=cs):
            suffix = "" if cs or op not in (ir.CmpOp.EQ, ir.CmpOp.NE) else "~i"
            return f"({format_expr(l)} {op.value}{suffix} {format_expr(r)})"
        case ir.StringMatch(op=op, subject=s, pattern=p, case_sensitive=cs):
            return f"{op.value}{'_cs' if cs else '_ci'}({format_expr(s)}, {format_expr(p)})"
        case ir.WildcardMatch(subject=s, pattern=p, case_sensitive=cs):
            return f'wildcard{"_cs" if cs else "_ci"}({format_expr(s)}, "{_pattern(p)}")'
        case ir.RegexMatch(subject=s, pattern=p, flags=f):
            return f"regex({format_expr(s)}, {p!r}{', flags=' + ''.join(sorted(f)) if f else ''})"
        case ir.CidrMatch(subject=s, networks=n):
            return f"cidr({format_expr(s)}, {', '.join(n)})"
        case ir.InList(subject=s, values=vs, case_sensitive=cs):
            return f"({format_expr(s)} in{'' if cs else '~i'} [{', '.join(format_expr(v) for v in vs)}])"
        case ir.Keyword(pattern=p, case_sensitive=cs):
            return f'keyword{"_cs" if cs else "_ci"}("{_pattern(p)}")'
        case ir.Not(operand=o):
            return f"not {format_expr(o)}"
        case ir.And(operands=os):
            return "(" + " and ".join(format_expr(o) for o in os) + ")"
        case ir.Or(operands=os):
            return "(" + " or ".join(format_expr(o) for o in os) + ")"
        case ir.Arith(op=op, left=l, right=r):
            return f"({format_expr(l)} {op.value} {format_expr(r)})"
        case ir.Negate(operand=o):
            return f"-{format_expr(o)}"
        case ir.Case(branches=bs, default=d):
            parts = ", ".join(f"{format_expr(c)} => {format_expr(v)}" for c, v in bs)
            return f"case({parts}, else => {format_expr(d)})"
        case ir.Call(fn=fn, args=args):
            return f"{fn}({', '.join(format_expr(a) for a in args)})"
        case ir.AnyElement(collection=c, predicate=p):
            return f"any({format_expr(c)}[*], {format_expr(p)})"
        case ir.Element(path=p):
            return "elem" + "".join(f"[{seg}]" if isinstance(seg, int) else f".{seg}" for seg in p)
    return repr(e)


def _pattern(p: ir.WildcardPattern) -> str:
    return "".join(x.value if isinstance(x, ir.Wild) else x.replace("*", "\\*").replace("?", "\\?") for x in p)


def _aggs(aggs: tuple[ir.Aggregation, ...]) -> str:
    return ", ".join(f"{a.name}: {a.type} = {a.fn.value}({format_expr(a.key) + ', ' if a.key is not None else ''}"
                     f"{format_expr(a.arg) if a.arg else ''}{_each(a.each)}"
                     f"{'' if a.percentile is None else f', {a.percentile:g}'}"
                     f"{'' if a.limit is None else f', {a.limit}'})" for a in aggs)


def _each(path: tuple[str | int, ...] | None) -> str:
    if path is None:
        return ""
    return "[]" + "".join(f"[{seg}]" if isinstance(seg, int) else f".{seg}" for seg in path)


def _by(by: tuple[ir.Assignment, ...]) -> str:
    return ", ".join(f"{a.name} = {format_expr(a.expr)}" for a in by)


def format_stage(stage: ir.Stage) -> str:
    match stage:
        case ir.Filter(predicate=p):
            return f"filter {format_expr(p)}"
        case ir.Extend(assignments=a):
            return "extend[parallel] " + ", ".join(f"{x.name}: {x.expr.type} = {format_expr(x.expr)}" for x in a)
        case ir.Aggregate(aggregations=a, by=b):
            return f"aggregate {_aggs(a)}" + (f" by[nulls kept] {_by(b)}" if b else "")
        case ir.EventAggregate(aggregations=a, by=b):
            return f"event_aggregate {_aggs(a)}" + (f" by[nulls kept] {_by(b)}" if b else "")
        case ir.Lookup(table=t, keys=k, outputs=o):
            keys = ", ".join(f"{format_expr(e)} == {c}" for e, c in k)
            outs = ", ".join(c if c == a else f"{c} as {a}" for c, a in o)
            return f"lookup[left, exact] {t.name} on {keys} output {outs}"
        case ir.Rename(renames=r):
            return "rename " + ", ".join(f"{o} -> {n}" for o, n in r)
        case ir.Project(columns=c):
            return "project " + ", ".join(c)
        case ir.Sort(keys=k):
            return "sort " + ", ".join(f"{format_expr(x.expr)} {'desc' if x.descending else 'asc'}" for x in k)
        case ir.Limit(count=n):
            return f"limit {n}"
        case ir.Expand(name=n, expr=e, type=ty, limit=lim):
            first = "" if lim is None else f" first {lim}"
            return f"expand[null: one row, empty: none{first}] {n}: {ty} = {format_expr(e)}[*]"
        case ir.Join(kind=k, right=r, keys=keys, outputs=o):
            on = ", ".join(f"{format_expr(a)} == right.{b}" for a, b in keys)
            outs = ", ".join(c if c == a else f"{c} as {a}" for c, a in o)
            right = format_pipeline(r, "    ").replace("\n", "\n  ")
            nulls = "null and empty keys match" if stage.empty_keys_match else "null keys match nothing"
            return f"join[{k.value}, {nulls}] on {on}" + (f" output {outs}" if outs else "") + \
                f"\n  right:\n  {right}"
    return repr(stage)


def format_pipeline(p: ir.Pipeline, indent: str = "") -> str:
    lines = [f"{indent}source {p.source.name}" + (f" (time: {p.source.time_column})" if p.source.time_column else "")]
    if p.source.view is not None:
        lines.append(f"{indent}  view over:")
        lines.append(format_pipeline(p.source.view, indent + "    "))
    if p.source.union is not None:
        for b in p.source.union.branches:
            lines.append(f"{indent}  branch {p.source.union.tag_column} = {b.tag!r}:")
            lines.append(format_pipeline(b.pipeline, indent + "    "))
    for st in p.stages:
        lines.append(f"{indent}| {format_stage(st)}")
    if p.columns is not None:
        lines.append(f"{indent}=> " + ", ".join(f"{n}: {t}" for n, t in p.columns))
    return "\n".join(lines)


def format_rule(r: ir.RuleIR) -> str:
    m = r.meta
    head = [f"rule {m.id}  {m.title!r}"]
    if m.level:
        head.append(f"level {m.level}")
    if r.schedule:
        head.append(f"schedule every {r.schedule.every} lookback {r.schedule.lookback}")
    head.append(
        f"alert when rows {r.alert.threshold.op.value} {r.alert.threshold.value}"
        + (f", suppress {r.alert.suppress}" if r.alert.suppress else "")
    )
    for t in r.lookups:
        head.append(f"table {t.name} ({', '.join(f'{c}: {ty}' for c, ty in zip(t.columns, t.types))}) from {t.path}")
    return "\n".join(head) + "\n" + format_pipeline(r.pipeline)
