"""Sigma `detection:` blocks → IR filter expressions, through pySigma's parser (modifiers already applied).

Sigma string matching is case-insensitive unless `|cased`; regexes are case-sensitive unless `|i`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import sigma.policy as sigma_policy
from sigma import conditions as sc
from sigma import types as st
from sigma.exceptions import SigmaError
from sigma.policy.regex_engine import RE2RegexEngine
from sigma.rule import SigmaDetections

from . import ir
from .analyze import Analyzer, Schema
from .diagnostics import CompileError, Diagnostic, Severity, Span
from .types import Type
from .yamlpos import PositionedYaml


class _QuietRE2(RE2RegexEngine):
    """pySigma's RE2 check of `|re` patterns, without RE2's C++ logger: it printed each refused pattern raw to
    stderr (escape sequences from a rule file included, past the CLI's escaping) under an absl warning. The
    message it raises is text, not bytes."""

    def compile(self, pattern: str, flags: int = 0) -> Any:
        import re

        import re2

        from .regex import RegexRefused, compile_re2

        as_sigma = ((re.IGNORECASE, "i"), (re.MULTILINE, "m"), (re.DOTALL, "s"))
        sigma_flags = {c for f, c in as_sigma if int(flags) & int(f)}
        try:
            return compile_re2(pattern, sigma_flags)
        except RegexRefused as exc:
            raise re2.error(str(exc)) from None


sigma_policy.default_policy = replace(sigma_policy.default_policy, regex_engine=_QuietRE2())

_CMP = {
    "LT": ir.CmpOp.LT,
    "LTE": ir.CmpOp.LE,
    "GT": ir.CmpOp.GT,
    "GTE": ir.CmpOp.GE,
    "NEQ": ir.CmpOp.NE,
}


def sigma_field_path(table: dict[str, Any] | None, field: str) -> str | dict[str, Any]:
    """The source's path for a Sigma field name, through the source's `sigma_fields` table: the name itself, or the
    longest dotted prefix of it, replaced; a `{refuse: why}` entry is returned as it is (the caller refuses)."""
    if not table:
        return field
    parts = field.split(".")
    for i in range(len(parts), 0, -1):
        target = table.get(".".join(parts[:i]))
        if target is None:
            continue
        if not isinstance(target, str):
            return dict(target) if isinstance(target, dict) else {"refuse": "no field of the source holds it"}
        return ".".join([target, *parts[i:]])
    return field


class SigmaUnsupported(Exception):
    pass


@dataclass(slots=True)
class SigmaLowering:
    analyzer: Analyzer
    doc: PositionedYaml
    schema: Schema
    section: str = "detection"  # the key holding the selections and condition (a Sigma filter's is `filter`)
    _field_paths: dict[str, tuple[str | int, ...]] | None = None
    _columns: dict[str, ir.Expr] | None = None  # a field resolves once per rule, however many values it has
    _field_spans: dict[str, Span | None] | None = None  # where each field's first key is written
    # a field whose path crosses arrays (`a[].b[].c`): the paths between them, each read from the element before
    _arrays: dict[str, tuple[tuple[str | int, ...], ...]] | None = None
    _keys: dict[str, tuple[tuple[str, str], ...]] | None = None  # key/value entries: (member, value) to select

    def detection_span(self) -> Span | None:
        return self.doc.span((self.section,))

    def field_span(self, field: str) -> Span | None:
        """Where the first detection key naming `field` (with any modifiers) is written."""
        if self._field_paths is None:
            self._field_paths = {}
            for path in self.doc.key_paths:
                if len(path) >= 3 and path[0] == self.section and isinstance(path[-1], str):
                    self._field_paths.setdefault(path[-1].split("|")[0], path)
        if self._field_spans is None:
            self._field_spans = {}
        if field not in self._field_spans:
            found = self._field_paths.get(field)
            self._field_spans[field] = self.doc.key_span(found) if found is not None else self.detection_span()
        return self._field_spans[field]

    def lower(self, data: dict[str, Any]) -> ir.Expr:
        """The rule's detection as one boolean expression."""
        self.check_modifier_chains()
        try:
            # only the detection: the rule's metadata is checked, with positions, by the rule loader
            detection = SigmaDetections.from_dict({k: v for k, v in data[self.section].items() if k != "rules"})
        except SigmaError as exc:
            raise CompileError(
                [Diagnostic(Severity.ERROR, f"Sigma detection: {exc}", self.detection_span(), code="sigma")]
            ) from None
        except (TypeError, ValueError, AttributeError) as exc:
            # pySigma fails so on some modifier chains it does not refuse itself (its error message cannot print the
            # value): the detection is unreadable, reported as such rather than as a crash
            raise CompileError([Diagnostic(
                Severity.ERROR, f"Sigma detection: pySigma cannot read it ({type(exc).__name__}: {exc})",
                self.detection_span(), hint="check the modifiers of each field: |re may be followed only by "
                "|i, |m or |s", code="sigma")]) from None
        try:
            conditions = [c.parsed for c in detection.parsed_condition]
        except SigmaError as exc:
            span = self.doc.span((self.section, "condition")) or self.detection_span()
            raise CompileError([Diagnostic(Severity.ERROR, f"Sigma condition: {exc}", span, code="sigma")]) from None
        exprs = [self.cond(c) for c in conditions]
        return exprs[0] if len(exprs) == 1 else ir.Or(tuple(exprs))

    def check_modifier_chains(self) -> None:
        """Sigma allows only |i, |m and |s after |re (the specification's modifier table); pySigma applies the rest
        regardless and fails inside its own error message on some of them."""
        for path in self.doc.key_paths:
            if len(path) < 3 or path[0] != self.section or not isinstance(path[-1], str):
                continue
            mods = path[-1].split("|")[1:]
            if "re" in mods:
                after = [m for m in mods[mods.index("re") + 1:] if m not in ("i", "m", "s")]
                if after:
                    raise CompileError([Diagnostic(
                        Severity.ERROR, f"Sigma: |re may be followed only by |i, |m or |s, not |{after[0]}",
                        self.doc.key_span(path), code="sigma")])

    def cond(self, node: Any) -> ir.Expr:
        if isinstance(node, sc.ConditionAND):
            return _flatten(ir.And, [self.cond(a) for a in node.args])
        if isinstance(node, sc.ConditionOR):
            return _flatten(ir.Or, [self.cond(a) for a in node.args])
        if isinstance(node, sc.ConditionNOT):
            return ir.Not(self.cond(node.args[0]))
        if isinstance(node, sc.ConditionFieldEqualsValueExpression):
            return self.field_match(node.field, node.value)
        if isinstance(node, sc.ConditionValueExpression):
            return self.keyword(node.value)
        raise self.unsupported(f"condition node {type(node).__name__}")

    def unsupported(self, what: str, field: str | None = None) -> CompileError:
        span = self.field_span(field) if field else self.detection_span()
        return CompileError([Diagnostic(Severity.ERROR, f"Sigma: {what} is not supported", span, code="sigma")])

    def column(self, field: str) -> ir.Expr:
        """The column a field names; for a path crossing arrays (`properties.targetResources[].type`), the array's
        column (the paths inside its elements are in `_arrays`, and `_field_match` quantifies over the elements)."""
        if self._columns is None:
            self._columns = {}
            self._arrays, self._keys = {}, {}
        found = self._columns.get(field)
        if found is None:
            path = sigma_field_path(self.schema.source.sigma_fields if self.schema.source else None, field)
            keys: tuple[tuple[str, str], ...] = ()
            if isinstance(path, dict) and "entry" in path:
                # an entry of a key/value array ({key, value} pairs): the element whose `where` members have those
                # values, and its `value` member (`additionalDetails.additionalInfo`)
                keys = tuple((str(k), str(v)) for k, v in path.get("where", {}).items())
                path = str(path["entry"]) + "." + str(path["value"])
            if not isinstance(path, str):
                raise CompileError([Diagnostic(Severity.ERROR, f"Sigma field {field!r}: {path['refuse']}",
                                               self.field_span(field), code="sigma-field")])
            head, *inner = path.split("[]")
            found = self._columns[field] = self.analyzer.field_column(
                head, self.schema, lambda: self.field_span(field))
            if inner:
                assert self._arrays is not None and self._keys is not None
                self._arrays[field] = tuple(tuple(x for x in part.split(".") if x) for part in inner)
                self._keys[field] = keys
            self.record(found, field)
        return found

    def any_element(self, field: str, build: Callable[[ir.Expr], ir.Expr]) -> ir.Expr | None:
        """For a field crossing arrays: some element (of some element …) satisfies `build(its value)`; else None."""
        collection = self.column(field)
        paths = (self._arrays or {}).get(field)
        if not paths:
            return None
        if collection.type not in (Type.DYNAMIC, Type.ANY):
            raise CompileError([Diagnostic(
                Severity.ERROR, f"Sigma field {field!r}: `[]` reads the elements of an array, but "
                f"{_dotted(collection)!r} is a {collection.type}", self.field_span(field), code="sigma-field")])
        pred = build(ir.Element(paths[-1], Type.ANY))
        keys = (self._keys or {}).get(field, ())
        if keys:
            pred = ir.And((*(ir.Compare(ir.CmpOp.EQ, ir.Element(tuple(k.split(".")), Type.ANY),
                                        ir.Literal(v, Type.STRING)) for k, v in keys), pred))
        for path in reversed(paths[:-1]):
            pred = ir.AnyElement(ir.Element(path, Type.DYNAMIC), pred)
        return ir.AnyElement(collection, pred)

    def record(self, e: ir.Expr, field: str) -> None:
        """Note where the rule wrote `e` (its field's key), so a backend refusing it can point there."""
        span = self.field_span(field)
        if span is not None:
            self.analyzer.spans.append((e, span))

    def field_match(self, field: str | None, value: Any) -> ir.Expr:
        e = self._field_match(field, value)
        if field is not None:
            self.record(e, field)
        return e

    def _field_match(self, field: str | None, value: Any) -> ir.Expr:
        if field is None:
            return self.keyword(value)
        if isinstance(value, st.SigmaExpansion):
            return _flatten(ir.Or, [self.field_match(field, v) for v in value.values])
        quantified = self.any_element(field, lambda element: self.value_match(field, element, value))
        if quantified is not None:
            return quantified
        return self.value_match(field, self.column(field), value)

    def value_match(self, field: str, subject: ir.Expr, value: Any) -> ir.Expr:
        if isinstance(value, st.SigmaString):  # SigmaCasedString is a subclass
            return self.string_match(subject, value, isinstance(value, st.SigmaCasedString), field)
        if isinstance(value, st.SigmaNull):
            return ir.Call("isnull", (subject,), Type.BOOL)
        if isinstance(value, st.SigmaBool):
            return ir.Compare(ir.CmpOp.EQ, subject, ir.Literal(value.boolean, Type.BOOL))
        if isinstance(value, st.SigmaNumber):
            n = value.number
            return ir.Compare(ir.CmpOp.EQ, subject, ir.Literal(n, Type.INT if isinstance(n, int) else Type.REAL))
        if isinstance(value, st.SigmaCompareExpression):
            n = value.number.number
            op = _CMP[value.op.name]
            return ir.Compare(op, subject, ir.Literal(n, Type.INT if isinstance(n, int) else Type.REAL))
        if isinstance(value, st.SigmaRegularExpression):
            flags = {f.name for f in (value.flags or ())}
            short = frozenset({"IGNORECASE": "i", "MULTILINE": "m", "DOTALL": "s"}[f] for f in flags)
            return ir.RegexMatch(
                subject, value.regexp.to_plain() if hasattr(value.regexp, "to_plain") else str(value.regexp), short
            )
        if isinstance(value, st.SigmaCIDRExpression):
            net = value.network if hasattr(value, "network") else ipaddress.ip_network(value.cidr, strict=False)
            return ir.CidrMatch(subject, (str(net),))
        if isinstance(value, st.SigmaExists):
            return ir.Call("isnotnull" if value.exists else "isnull", (subject,), Type.BOOL)
        if isinstance(value, st.SigmaFieldReference):
            if getattr(value, "starts_with", False) or getattr(value, "ends_with", False):
                raise self.unsupported("fieldref with startswith/endswith", field)
            other = self.column(value.field)
            if isinstance(subject, ir.Element) or (self._arrays or {}).get(value.field):
                raise self.unsupported("|fieldref to or from a field inside an array", field)
            return ir.Compare(ir.CmpOp.EQ, subject, other, case_sensitive=False)
        if isinstance(value, st.SigmaTimestampPart):
            fn: str | None = {"HOUR": "hourofday"}.get(value.timestamp_part.name)
            if fn is None:
                raise self.unsupported(f"timestamp part modifier |{value.timestamp_part.name.lower()}", field)
            return ir.Compare(ir.CmpOp.EQ, ir.Call(fn, (subject,), Type.INT), ir.Literal(value.number, Type.INT))
        raise self.unsupported(f"value type {type(value).__name__}", field)

    def pattern(self, value: st.SigmaString, field: str | None) -> list[str | ir.Wild]:
        """A Sigma string as literal runs and wildcards (adjacent literal runs merged)."""
        parts: list[str | ir.Wild] = []
        for p in value.s:
            if isinstance(p, str):
                if parts and isinstance(parts[-1], str):
                    parts[-1] = parts[-1] + p
                else:
                    parts.append(p)
            elif p is st.SpecialChars.WILDCARD_MULTI:
                parts.append(ir.Wild.ANY)
            elif p is st.SpecialChars.WILDCARD_SINGLE:
                parts.append(ir.Wild.ONE)
            else:
                name = getattr(p, "name", str(p))
                raise self.unsupported(f"placeholder %{name}% (it needs a value list)", field)
        return parts

    def string_match(self, subject: ir.Expr, value: st.SigmaString, cased: bool, field: str | None) -> ir.Expr:
        return string_pattern_to_ir(subject, tuple(self.pattern(value, field)), case_sensitive=cased)

    def keyword(self, value: Any) -> ir.Expr:
        if isinstance(value, st.SigmaExpansion):
            return _flatten(ir.Or, [self.keyword(v) for v in value.values])
        if isinstance(value, st.SigmaString):
            parts = self.pattern(value, None)
            # a keyword matches anywhere in a value: Sigma keywords are implicit contains
            if not parts or parts[0] is not ir.Wild.ANY:
                parts.insert(0, ir.Wild.ANY)
            if parts[-1] is not ir.Wild.ANY:
                parts.append(ir.Wild.ANY)
            return ir.Keyword(tuple(parts), case_sensitive=isinstance(value, st.SigmaCasedString))
        if isinstance(value, st.SigmaNumber):
            return ir.Keyword((ir.Wild.ANY, str(value.number), ir.Wild.ANY))
        raise self.unsupported(f"keyword of type {type(value).__name__}")


def string_pattern_to_ir(subject: ir.Expr, parts: ir.WildcardPattern, case_sensitive: bool) -> ir.Expr:
    """The simplest IR node that means `subject` matches the wildcard pattern."""
    n = len(parts)
    if n == 1 and isinstance(parts[0], str):  # the common shapes first: a value, *value*, value*, *value
        return ir.Compare(ir.CmpOp.EQ, subject, ir.Literal(parts[0], Type.STRING), case_sensitive)
    if n == 3 and parts[0] is ir.Wild.ANY and parts[2] is ir.Wild.ANY and isinstance(parts[1], str):
        return ir.StringMatch(ir.StrOp.CONTAINS, subject, ir.Literal(parts[1], Type.STRING), case_sensitive)
    if n == 2 and isinstance(parts[0], str) and parts[1] is ir.Wild.ANY:
        return ir.StringMatch(ir.StrOp.STARTSWITH, subject, ir.Literal(parts[0], Type.STRING), case_sensitive)
    if n == 2 and parts[0] is ir.Wild.ANY and isinstance(parts[1], str):
        return ir.StringMatch(ir.StrOp.ENDSWITH, subject, ir.Literal(parts[1], Type.STRING), case_sensitive)
    texts = [p for p in parts if isinstance(p, str)]
    wilds = [p for p in parts if not isinstance(p, str)]
    if not wilds:
        return ir.Compare(ir.CmpOp.EQ, subject, ir.Literal("".join(texts), Type.STRING), case_sensitive)
    if len(texts) == 1 and all(w is ir.Wild.ANY for w in wilds):
        lit = ir.Literal(texts[0], Type.STRING)
        if parts == (ir.Wild.ANY, texts[0], ir.Wild.ANY):
            return ir.StringMatch(ir.StrOp.CONTAINS, subject, lit, case_sensitive)
        if parts == (texts[0], ir.Wild.ANY):
            return ir.StringMatch(ir.StrOp.STARTSWITH, subject, lit, case_sensitive)
        if parts == (ir.Wild.ANY, texts[0]):
            return ir.StringMatch(ir.StrOp.ENDSWITH, subject, lit, case_sensitive)
    return ir.WildcardMatch(subject, parts, case_sensitive)


def _dotted(e: ir.Expr) -> str:
    return ".".join([e.name, *(str(p) for p in e.path)]) if isinstance(e, ir.Column) else type(e).__name__


def _flatten(cls: type, items: list[ir.Expr]) -> ir.Expr:
    if len(items) == 1:
        return items[0]
    out: list[ir.Expr] = []
    for x in items:
        out.extend(x.operands if isinstance(x, cls) else (x,))  # type: ignore[union-attr]
    return cls(tuple(out))  # type: ignore[no-any-return]
