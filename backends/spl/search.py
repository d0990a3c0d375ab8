"""The base search: the first filter's conjuncts that Splunk's `search` says exactly (case-insensitive terms on the
source's own fields) go in front of the first pipe, where the index can use them; the rest stays in `where`.

It runs before any stage, so a field here is always a source field read through the binding.
"""

from __future__ import annotations

from dataclasses import dataclass

from siemforge.compiler import ir
from siemforge.compiler.types import Type
from siemforge.compiler.bindings import Binding, named_field

from .render import search_field, search_literal


@dataclass(frozen=True, slots=True)
class BaseSearch:
    binding: Binding | None  # None: an undeclared source, field names as written

    def split(self, pred: ir.Expr) -> tuple[list[str], ir.Expr | None]:
        """The first filter's conjuncts as `search` terms (plus prefilter hints), and what is left for `where`."""
        parts = list(pred.operands) if isinstance(pred, ir.And) else [pred]
        terms: list[str] = []
        rest: list[ir.Expr] = []
        for p in parts:
            t = self.term(p)
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
        if not isinstance(e, ir.Column) or e.path:
            return None
        if self.binding is None:
            return e.name
        col = named_field(self.binding, e.name)
        return col if col is not None and col != "_time" else None

    def prefilter_term(self, e: ir.Expr) -> str | None:
        """A case-insensitive term implied by a case-sensitive equality: it narrows what the index returns, and
        the exact test stays in `where`."""
        if isinstance(e, ir.Compare) and e.op is ir.CmpOp.EQ and e.case_sensitive:
            return self.term(ir.Compare(ir.CmpOp.EQ, e.left, e.right, case_sensitive=False))
        if isinstance(e, ir.InList) and e.case_sensitive:
            return self.term(ir.InList(e.subject, e.values, case_sensitive=False))
        return None

    def term(self, e: ir.Expr) -> str | None:
        """`search` text meaning exactly `e`, or None."""
        match e:
            case ir.Compare(op=op, left=l, right=ir.Literal(value=str() as v), case_sensitive=False) if op in (
                    ir.CmpOp.EQ, ir.CmpOp.NE):
                f, lit = self.plain_field(l), search_literal(v)
                if f is None or lit is None or v == "":
                    return None
                term = f"{search_field(f)}={lit}"
                return term if op is ir.CmpOp.EQ else f"NOT {term}"
            case ir.Compare(op=op, left=l, right=ir.Literal(value=int() as v)) if op in (
                    ir.CmpOp.EQ, ir.CmpOp.NE) and not isinstance(v, bool) and _is_int(l):
                # an integer field (EventCode=4688): search's term is the number's text, as the field's value is
                f = self.plain_field(l)
                if f is None:
                    return None
                return f"{search_field(f)}={v}" if op is ir.CmpOp.EQ else f"NOT {search_field(f)}={v}"
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
            case ir.InList(subject=s, values=vals) if vals and _is_int(s) and all(
                    isinstance(v, ir.Literal) and type(v.value) is int for v in vals):
                f = self.plain_field(s)
                if f is None:
                    return None
                return f"{search_field(f)} IN ({', '.join(str(v.value) for v in vals if isinstance(v, ir.Literal))})"
            case ir.InList(subject=s, values=vals, case_sensitive=False):
                f = self.plain_field(s)
                lits = [search_literal(v.value) if isinstance(v, ir.Literal) and isinstance(v.value, str) and v.value
                        else None for v in vals]
                if f is None or any(x is None for x in lits):
                    return None
                return f"{search_field(f)} IN ({', '.join(str(x) for x in lits)})"
            case ir.Not(operand=o):
                inner = self.term(o)
                return None if inner is None else f"NOT ({inner})"
            case ir.And(operands=ops) | ir.Or(operands=ops):
                terms = [self.term(o) for o in ops]
                if any(x is None for x in terms):
                    return None
                joiner = " " if isinstance(e, ir.And) else " OR "
                return "(" + joiner.join(str(x) for x in terms) + ")"  # every group parenthesised
        return None


def _is_int(e: ir.Expr) -> bool:
    """A column of integer type: its values are written as decimal digits, which search's term matches as text."""
    return isinstance(e, ir.Column) and e.type is Type.INT
