"""Sigma correlation rules and filters → IR (the Sigma correlation and filter specifications; pySigma 2's
sigma.correlations / sigma.filters read them the same way).

A correlation is a windowed aggregation over the rows its base rules match: a SourceUnion of the base rules'
pipelines (each row tagged with its rule), then `summarize … by bin(_time, timespan), group-by…`, then the
condition. Windows are tumbling (docs/semantics.md, decision 20). A filter ANDs its condition into the detection
of each rule it names (pySigma: `(original) and (filter)`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from . import ir
from .diagnostics import CompileError, Diagnostic, Severity, Span, error
from .parser import parse_duration
from .rule import RuleDoc
from .types import Type

TYPES = ("event_count", "value_count", "temporal", "temporal_ordered", "value_sum", "value_avg", "value_percentile")
VALUE_TYPES = ("value_count", "value_sum", "value_avg", "value_percentile")
CONDITION_OPS = {"gt": ir.CmpOp.GT, "gte": ir.CmpOp.GE, "lt": ir.CmpOp.LT, "lte": ir.CmpOp.LE, "eq": ir.CmpOp.EQ,
                 "neq": ir.CmpOp.NE}
TAG_COLUMN = "sigma_rule"  # the union's column naming the base rule a row matched
TIME = "_time"
# the aggregate column each type computes (pySigma's backends name them so too)
RESULT_COLUMN = {"event_count": "event_count", "value_count": "value_count", "temporal": "rule_count",
                 "temporal_ordered": "event_count", "value_sum": "value_sum", "value_avg": "value_avg",
                 "value_percentile": "value_percentile"}


@dataclass(frozen=True, slots=True)
class Correlation:
    """A correlation document, checked: every part with where it is written."""

    type: str
    rules: tuple[tuple[str, Span | None], ...]  # references (id or name) as written
    group_by: tuple[str, ...]
    timespan: timedelta
    conditions: tuple[tuple[ir.CmpOp, int | float], ...]  # ANDed; a temporal correlation's default: all rules seen
    field: str | None
    percentile: float | None
    aliases: dict[str, dict[str, str]]  # alias -> rule name -> that rule's field
    generate: bool
    span: Span | None


def _err(message: str, span: Span | None, hint: str | None = None) -> CompileError:
    return error(message, span, hint, code="sigma-correlation")


def read_correlation(doc: RuleDoc) -> Correlation:
    """The `correlation:` block, shape-checked with positions (the spec's JSON schema, pySigma's checks)."""
    y = doc.yaml
    c = doc.data.get("correlation")
    at = y.span(("correlation",))
    if not isinstance(c, dict):
        raise _err("`correlation` must be a mapping (type:, rules:, group-by:, timespan:, condition:)", at)
    known = {"type", "rules", "group-by", "timespan", "condition", "aliases", "generate"}
    for k in c:
        if k not in known:
            raise _err(f"unknown correlation key {k!r}", y.key_span(("correlation", k)), "keys: " + ", ".join(
                sorted(known)))
    kind = c.get("type")
    if kind not in TYPES:
        raise _err(f"correlation type {kind!r} is not one of " + ", ".join(TYPES), y.span(("correlation", "type")))
    rules = c.get("rules")
    if isinstance(rules, str):
        rules = [rules]
    if not isinstance(rules, list) or not rules or not all(isinstance(r, str) and r for r in rules):
        raise _err("`rules` must list the rules correlated, by id or name", y.span(("correlation", "rules")))
    refs = tuple((r, y.span(("correlation", "rules", i))) for i, r in enumerate(rules))
    group = c.get("group-by", [])
    if isinstance(group, str):
        group = [group]
    if not isinstance(group, list) or not all(isinstance(g, str) and g for g in group):
        raise _err("`group-by` must list field names", y.span(("correlation", "group-by")))
    if "timespan" not in c:
        raise _err("a correlation needs a `timespan` (e.g. 15m)", at)
    try:
        span = parse_duration(str(c["timespan"]).strip())
    except ValueError:
        raise _err(f"invalid timespan {c['timespan']!r}: a number and s, m, h or d (e.g. 90m)",
                   y.span(("correlation", "timespan"))) from None
    if span <= timedelta(0):
        raise _err("the timespan must be longer than zero", y.span(("correlation", "timespan")))
    aliases: dict[str, dict[str, str]] = {}
    raw_aliases = c.get("aliases") or {}
    if not isinstance(raw_aliases, dict) or not all(
            isinstance(v, dict) and all(isinstance(f, str) for f in v.values()) for v in raw_aliases.values()):
        raise _err("`aliases` maps an alias to {rule name: that rule's field}", y.span(("correlation", "aliases")))
    for name, per_rule in raw_aliases.items():
        aliases[str(name)] = {str(k): str(v) for k, v in per_rule.items()}
    generate = c.get("generate", False)
    if not isinstance(generate, bool):
        raise _err("`generate` is true or false", y.span(("correlation", "generate")))
    conditions, field, percentile = _condition(doc, c, str(kind), len(refs))
    return Correlation(str(kind), refs, tuple(group), span, conditions, field, percentile, aliases, generate, at)


def _condition(doc: RuleDoc, c: dict[str, Any], kind: str, n_rules: int) -> tuple[
        tuple[tuple[ir.CmpOp, int | float], ...], str | None, float | None]:
    y = doc.yaml
    cond = c.get("condition")
    at = y.span(("correlation", "condition")) or y.span(("correlation",))
    if cond is None:
        if kind in ("temporal", "temporal_ordered"):  # the spec: every rule's events in the timespan
            return ((ir.CmpOp.GE, n_rules),), None, None
        raise _err(f"a {kind} correlation needs a `condition` (e.g. gte: 10)", at)
    if not isinstance(cond, dict):
        raise _err("the correlation `condition` is a mapping: gt/gte/lt/lte/eq/neq: number (and `field:`)", at)
    ops: list[tuple[ir.CmpOp, int | float]] = []
    field = cond.get("field")
    percentile = cond.get("percentile")
    for k, v in cond.items():
        where = y.span(("correlation", "condition", k))
        if k in ("field", "percentile"):
            continue
        if k not in CONDITION_OPS:
            raise _err(f"unknown condition {k!r}", y.key_span(("correlation", "condition", k)),
                       "conditions: " + ", ".join(CONDITION_OPS) + ", field, percentile")
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise _err(f"condition {k}: must be a number, not {v!r}", where)
        ops.append((CONDITION_OPS[k], v))
    if not ops:
        raise _err("the correlation condition needs a comparison: gt, gte, lt, lte, eq or neq", at)
    if kind in VALUE_TYPES:
        if isinstance(field, list):
            raise _err(f"a {kind} correlation over several fields is not supported: name one `field`",
                       y.span(("correlation", "condition", "field")))
        if not isinstance(field, str) or not field:
            raise _err(f"a {kind} correlation needs `field:` in its condition (the field it aggregates)", at)
    elif field is not None:
        raise _err(f"a {kind} correlation takes no `field`", y.span(("correlation", "condition", "field")))
    if kind == "value_percentile":
        if percentile is None:
            raise _err("a value_percentile correlation needs `percentile:` in its condition (1-100: which "
                       "percentile of the field is compared)", at,
                       "the specification's example names none; pySigma refuses it too (\"Percentile must be "
                       "specified\")")
        if isinstance(percentile, bool) or not isinstance(percentile, (int, float)) or not 0 < percentile <= 100:
            raise _err(f"percentile must be a number in (0, 100], not {percentile!r}",
                       y.span(("correlation", "condition", "percentile")))
    elif percentile is not None:
        raise _err(f"a {kind} correlation takes no `percentile`", y.span(("correlation", "condition", "percentile")))
    if kind == "temporal_ordered" and ops != [(ir.CmpOp.GE, n_rules)]:
        raise _err("a temporal_ordered correlation's condition can only be that every rule matched in order "
                   f"(gte: {n_rules}), which is its default", at)
    return tuple(ops), field if isinstance(field, str) else None, None if percentile is None else float(percentile)


def rule_names(doc: RuleDoc) -> set[str]:
    """The names a correlation or filter may reference a rule by: its id and its `name`."""
    out = {doc.id}
    raw = doc.data.get("id")
    if isinstance(raw, str):
        out.add(raw)
    name = doc.data.get("name")
    if isinstance(name, str):
        out.add(name)
    return out


def tag_of(doc: RuleDoc) -> str:
    name = doc.data.get("name")
    return name if isinstance(name, str) and name else doc.id


# ---------------------------------------------------------------------------------------------- filters
def filter_rules(doc: RuleDoc) -> list[tuple[str, Span | None]] | None:
    """The rules a filter names (None: `any`, every rule of its logsource)."""
    f = doc.data.get("filter")
    if not isinstance(f, dict):
        raise _err("`filter` must be a mapping: rules:, selections, condition:", doc.yaml.span(("filter",)))
    rules = f.get("rules")
    if rules is None:
        raise _err("a filter needs `rules:` (the rules it applies to, by id or name, or `any`)",
                   doc.yaml.span(("filter",)))
    if isinstance(rules, str):
        return None if rules.lower() == "any" else [(rules, doc.yaml.span(("filter", "rules")))]
    if not isinstance(rules, list) or not all(isinstance(r, str) for r in rules):
        raise _err("`rules` must list rules by id or name, or be `any`", doc.yaml.span(("filter", "rules")))
    if not rules:
        return None
    return [(r, doc.yaml.span(("filter", "rules", i))) for i, r in enumerate(rules)]


def filter_applies(flt: RuleDoc, rule: RuleDoc) -> bool:
    """Whether the filter names the rule (by id or name), or names `any` rule and the rule is of its logsource (a
    filter of `any` rule is silent about rules of other logsources; one that names a rule of another logsource is
    reported: logsource_mismatch)."""
    named = filter_rules(flt)
    if named is None:
        return logsource_mismatch(flt, rule) is None
    return any(r in rule_names(rule) for r, _ in named)


def logsource_mismatch(flt: RuleDoc, rule: RuleDoc) -> Diagnostic | None:
    """A filter applies only to rules of its logsource (pySigma: `rule.logsource in filter.logsource`): every key
    the filter's logsource sets must be the rule's. The mismatch, as a warning at the filter's logsource."""
    mine = flt.data.get("logsource")
    theirs = rule.data.get("logsource") or {}
    if not isinstance(mine, dict):
        return Diagnostic(Severity.ERROR, "a Sigma filter needs a `logsource`", flt.yaml.span(()), code="sigma-filter")
    differs = [k for k, v in mine.items() if v is not None and str(theirs.get(k, "")).lower() != str(v).lower()]
    if not differs:
        return None
    text = ", ".join(f"{k}={theirs.get(k)!r}" for k in differs)
    return Diagnostic(Severity.WARNING, f"filter {flt.title!r} names rule {rule.title!r}, but their logsources "
                      f"differ ({text} there): the filter is not applied to it", flt.yaml.span(("logsource",)),
                      code="sigma-filter")


# ---------------------------------------------------------------------------------------------- lowering
def branch(base: ir.RuleIR, tag: str, reads: dict[str, ir.Expr]) -> ir.UnionBranch:
    """A base rule's pipeline as a union branch: its stages, then every column the correlation reads, computed
    under the name the correlation reads it by (so the stages after the union read no source field)."""
    assigns = tuple(ir.Assignment(name, e) for name, e in reads.items())
    return ir.UnionBranch(tag, ir.Pipeline(base.pipeline.source, (*base.pipeline.stages, ir.Extend(assigns)), None))


def correlation_stages(c: Correlation, tags: list[str], types: dict[str, Type]) -> tuple[ir.Stage, ...]:
    """The stages after the union: the windowed aggregation and the condition."""
    time = ir.Column(TIME, (), Type.DATETIME)
    window = ir.Assignment(TIME, ir.Call("bin", (time, ir.Literal(c.timespan, Type.TIMESPAN)), Type.DATETIME))
    by = (window, *(ir.Assignment(g, ir.Column(g, (), types.get(g, Type.ANY))) for g in c.group_by))
    tag = ir.Column(TAG_COLUMN, (), Type.STRING)
    out = RESULT_COLUMN[c.type]
    stages: list[ir.Stage] = []
    value = ir.Column(c.field, (), types.get(c.field, Type.ANY)) if c.field else None
    match c.type:
        case "event_count":
            agg = ir.Aggregation(out, ir.AggFn.COUNT, None, Type.INT)
        case "value_count":
            agg = ir.Aggregation(out, ir.AggFn.DCOUNT, value, Type.INT)
        case "temporal":
            agg = ir.Aggregation(out, ir.AggFn.DCOUNT, tag, Type.INT)
        case "value_sum":
            agg = ir.Aggregation(out, ir.AggFn.SUM, value, Type.REAL)
        case "value_avg":
            agg = ir.Aggregation(out, ir.AggFn.AVG, value, Type.REAL)
        case "value_percentile":
            agg = ir.Aggregation(out, ir.AggFn.PERCENTILE, value, Type.REAL, c.percentile)
        case _:  # temporal_ordered: the earliest event of each rule after the previous rule's (strictly later)
            prev: ir.Expr | None = None
            for i, t in enumerate(tags):
                is_rule = ir.Compare(ir.CmpOp.EQ, tag, ir.Literal(t, Type.STRING))
                cond = is_rule if prev is None else ir.And((is_rule, ir.Compare(ir.CmpOp.GT, time, prev)))
                step = f"siemforge_step{i + 1}"
                stages.append(ir.EventAggregate((ir.Aggregation(
                    step, ir.AggFn.MIN, ir.Case(((cond, time),), ir.Literal(None, Type.DATETIME), Type.DATETIME),
                    Type.DATETIME),), by))
                prev = ir.Column(step, (), Type.DATETIME)
            assert prev is not None
            stages.append(ir.Filter(ir.Call("isnotnull", (prev,), Type.BOOL)))
            # one row per group and window where the sequence completed; event_count: the last rule's events there
            stages.append(ir.Filter(ir.Compare(ir.CmpOp.EQ, tag, ir.Literal(tags[-1], Type.STRING))))
            agg = ir.Aggregation(out, ir.AggFn.COUNT, None, Type.INT)
            stages.append(ir.Aggregate((agg,), by))
            return tuple(stages)
    stages.append(ir.Aggregate((agg,), by))
    result = ir.Column(out, (), agg.type)
    checks: list[ir.Expr] = [ir.Compare(op, result, ir.Literal(v, Type.INT if isinstance(v, int) else Type.REAL))
                             for op, v in c.conditions]
    stages.append(ir.Filter(checks[0] if len(checks) == 1 else ir.And(tuple(checks))))
    return tuple(stages)
