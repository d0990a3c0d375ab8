"""The base search: the first filter's conjuncts that Splunk's `search` says exactly (case-insensitive terms on the
source's own fields) go in front of the first pipe, where the index can use them; the rest stays in `where`.

It runs before any stage, so a field here is always a source field read through the binding.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from siemforge.compiler import ir
from siemforge.compiler.bindings import SPLIT_DETAILS, Binding, computed, named_field
from siemforge.compiler.types import Type

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
                hint = self.implied(p)
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

    def implied(self, e: ir.Expr) -> str | None:
        """Search text that every event matching `e` matches (a prefilter: the exact test stays in `where`): its
        exact term, else a hint, else for an AND the terms of the conjuncts that have one, for an OR the hints of
        every branch. None when nothing is implied (the search then reads all the source's events)."""
        exact = self.term(e)
        if exact is not None:
            return exact
        if isinstance(e, ir.And):
            parts = [x for x in (self.implied(o) for o in e.operands) if x is not None]
            return None if not parts else parts[0] if len(parts) == 1 else "(" + " ".join(parts) + ")"
        if isinstance(e, ir.Or):
            branches = [self.implied(o) for o in e.operands]
            if any(x is None for x in branches):
                return None
            return "(" + " OR ".join(str(x) for x in branches) + ")"
        return self.prefilter_term(e)

    def prefilter_term(self, e: ir.Expr) -> str | None:
        """A case-insensitive term implied by a case-sensitive equality: it narrows what the index returns, and
        the exact test stays in `where`."""
        hint = self.computed_term(e)
        if hint is not None:
            return hint
        if (isinstance(e, ir.Compare) and e.op is ir.CmpOp.EQ and isinstance(e.left, ir.Column) and not e.left.path
                and self.binding is not None and e.left.name in (self.binding.extra.get("xml_paths") or {})
                and isinstance(e.right, ir.Literal) and isinstance(e.right.value, str) and e.right.value.strip()
                and not any(c in e.right.value for c in "&<>\"'")):  # XML escapes these in the raw event
            # a value spath reads from the XML event (Provider_Name) is text of the raw event: the phrase narrows
            # what the index returns, the exact test stays in `where`
            return search_literal(e.right.value)
        if isinstance(e, ir.Keyword) and not e.case_sensitive:
            # a keyword's text is in the raw event, and so is each word of it: a wildcard term of its longest word
            # (letters, digits, _: no breaker inside, so an indexed token holds it) finds every event the regex in
            # `where` can match
            return _word_term([p for p in e.pattern if isinstance(p, str)])
        if self.binding is not None and self.binding.extra.get("unnamed_data") is not None:
            # classic events' unnamed Data is text of the raw XML event (read by rex): so is each word of a value it
            # must hold (XML escapes no letter or digit)
            data = self.binding.extra["unnamed_data"]
            match e:
                case ir.StringMatch(subject=ir.Column(name=n, path=()), pattern=ir.Literal(value=str() as v)) | \
                        ir.Compare(op=ir.CmpOp.EQ, left=ir.Column(name=n, path=()),
                                   right=ir.Literal(value=str() as v)) if n == data:
                    return _word_term([v])
                case ir.WildcardMatch(subject=ir.Column(name=n, path=()), pattern=pat) if n == data:
                    return _word_term([p for p in pat if isinstance(p, str)])
        if (isinstance(e, ir.RegexMatch) and self.binding is not None and self.binding.extra.get("datamodel")
                and self.plain_field(e.subject) is not None):
            # over a data model (tstats), which has no row terms of its own: a text every match holds, as a wildcard
            # term of the field (tstats ignores case, so it is implied by a case-sensitive regex too)
            lit = search_literal(required_text(e.pattern) or "")
            field = self.plain_field(e.subject)
            return f'{search_field(str(field))}="*{lit[1:-1]}*"' if lit is not None and len(lit) > 4 else None
        if isinstance(e, ir.Compare) and e.op is ir.CmpOp.EQ and e.case_sensitive:
            return self.term(ir.Compare(ir.CmpOp.EQ, e.left, e.right, case_sensitive=False))
        if isinstance(e, ir.InList) and e.case_sensitive:
            return self.term(ir.InList(e.subject, e.values, case_sensitive=False))
        return None

    def computed_term(self, e: ir.Expr) -> str | None:
        """A term on the model fields a computed field is made from, implied by an equality of it with text (a
        prefilter for tstats; the exact test stays in `where`): Details `DWORD (0x1)` holds registry_value_data `0x1`,
        other text is registry_value_data itself; Initiated `true` is direction `outbound`; a DestinationHostname
        that matches is `dest` (tests true of a missing name are refused: tstats.refuse_shown_missing)."""
        if (self.binding is not None and self.binding.extra.get("datamodel")
                and isinstance(e, ir.StringMatch) and not e.case_sensitive and isinstance(e.subject, ir.Column)
                and not e.subject.path and isinstance(e.pattern, ir.Literal) and isinstance(e.pattern.value, str)):
            spec = computed(self.binding).get(e.subject.name)
            lit = search_literal(e.pattern.value) if e.pattern.value else None
            if spec is None or spec["kind"] != "unless_equal" or lit is None:
                return None
            body = lit[1:-1]
            pattern = {ir.StrOp.CONTAINS: f"*{body}*", ir.StrOp.STARTSWITH: f"{body}*",
                       ir.StrOp.ENDSWITH: f"*{body}"}[e.op]
            return f'{search_field(str(spec["column"]))}="{pattern}"'
        if not (self.binding is not None and self.binding.extra.get("datamodel") and isinstance(e, ir.Compare)
                and e.op is ir.CmpOp.EQ and isinstance(e.left, ir.Column) and not e.left.path
                and isinstance(e.right, ir.Literal) and isinstance(e.right.value, (str, bool))):
            return None
        spec = computed(self.binding).get(e.left.name)
        value = str(e.right.value).lower() if isinstance(e.right.value, bool) else e.right.value
        if spec is None or value == "":
            return None
        if spec["kind"] == "split_details":
            m = SPLIT_DETAILS.fullmatch(value)
            lit = search_literal(m.group(2) if m else value)
            return None if lit is None else f"{search_field(str(spec['data']))}={lit}"
        if spec["kind"] == "unless_equal" and isinstance(value, str):
            lit = search_literal(value)
            return None if lit is None else f"{search_field(str(spec['column']))}={lit}"
        if spec["kind"] == "value_map":
            keys = [search_literal(str(k)) for k, v in spec["map"].items() if str(v).lower() == value.lower()]
            if not keys or any(k is None for k in keys):
                return None
            column = search_field(str(spec["column"]))
            return f"{column}={keys[0]}" if len(keys) == 1 else f"{column} IN ({', '.join(str(k) for k in keys)})"
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


def required_text(pattern: str) -> str | None:
    """The longest run of literal characters every match of `pattern` contains, or None: read only from a pattern
    with no alternation and no group (but leading inline flags); a character made optional by `?`, `*` or `{0,` is
    not part of a run."""
    pattern = re.sub(r"^\(\?[ims]+\)", "", pattern)
    runs: list[str] = []
    run = ""
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c in "|()":
            return None
        if c == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            i += 2
            if nxt.isalnum():  # a class (\s, \d), an anchor (\b) or a code: not a literal
                runs.append(run)
                run = ""
                continue
            char = nxt
        elif c == "[":  # a class: skip to its end (a leading `^` and `]`, escapes inside)
            j = i + 1
            j += pattern.startswith("^", j)
            j += pattern.startswith("]", j)
            while j < len(pattern) and pattern[j] != "]":
                j += 2 if pattern[j] == "\\" else 1
            if j >= len(pattern):
                return None
            runs.append(run)
            run = ""
            i = j + 1
            continue
        elif c in ".^$":
            runs.append(run)
            run = ""
            i += 1
            continue
        elif c in "?*+{":  # a quantifier after a class or a break: nothing to take back
            i += 1
            if c == "{":
                end = pattern.find("}", i)
                i = len(pattern) if end < 0 else end + 1
            continue
        else:
            char = c
            i += 1
        quant = pattern[i] if i < len(pattern) else ""
        if quant in ("?", "*") or pattern.startswith(("{0", "{,"), i):
            runs.append(run)  # this character may be absent
            run = ""
        elif quant == "+" or quant == "{":
            runs.append(run + char)
            run = ""
        else:
            run += char
    runs.append(run)
    best = max(runs, key=len)
    return best or None


def _word_term(texts: list[str]) -> str | None:
    """A wildcard term of the longest word (3 or more letters, digits or _) of `texts`, or None."""
    words = [w for t in texts for w in re.findall(r"[A-Za-z0-9_]{3,}", t)]
    return f'"*{max(words, key=len)}*"' if words else None


def _is_int(e: ir.Expr) -> bool:
    """A column of integer (or undeclared) type compared with an integer: its values are written as decimal digits
    (EventCode), which search's term matches as text, as `where` matches them as a number."""
    return isinstance(e, ir.Column) and e.type in (Type.INT, Type.ANY)
