"""The lowering layer every target shares: which binding a rule reads, which stages that leaves to lower, and the
IR→IR rewrites a target's features call for (after sqlglot's generator flags and `transforms.preprocess`).

A backend asks `bind(rule, FEATURES)` for its binding and stages, then lowers the stages one by one, passing each
through `preprocess(stage, FEATURES, fresh)` first. Decisions that are the same on every target that needs them
live here, once; what is a quirk of one target stays in that target's backend.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from . import ir, liveness
from .bindings import Binding, bindings_for, builtin_bindings
from .diagnostics import CompileError, Span, error
from .nullability import Facts, non_null
from .sources import builtin_sources


@dataclass(frozen=True, slots=True)
class Features:
    """What a target can and cannot do, as flags the shared rewrites read (sqlglot: Generator.SUPPORTS_…)."""

    target: str  # the bindings' `target:` key (sentinel, splunk); "" for the executor, which reads any row shape
    title: str  # the target's name in messages
    docs: str  # where its choices are written down
    binds_views: bool = True  # a view the target stores natively (a binding of the view itself) is read as stored
    reads_undeclared: bool = False  # a source with no binding here is searched with names as written (bind)
    sequential_assignment: bool = False  # one assignment stage sees the values its earlier assignments made
    three_valued_logic: bool = False  # a comparison with a null side is null (so `x != y` is not true): null_guards
    prunes_columns: bool = False  # leave out view columns nothing reads (compiler/liveness.py): bind


# the executor runs the IR as written; its bindings are the row shapes of the base source's records (it runs views)
EXECUTOR = Features("", "executor", "docs/semantics.md", binds_views=False)


@dataclass(frozen=True, slots=True)
class Drop:
    """Remove columns a rewrite added (temporaries). Made only by `preprocess`; never in a rule's IR."""

    columns: tuple[str, ...]


LoweringStage = ir.Stage | Drop


@dataclass(frozen=True, slots=True)
class Lowered:
    """A lowered expression, passed between lowering steps so that none re-parses rendered text: the target's text,
    its coarse type on the target, and the target field it reads as is when it is a plain field reference."""

    text: str
    type: str = "any"  # the target's own coarse types (KQL: string, long, …, dynamic; SPL: string, number, time, mv)
    field: str | None = None  # the field's name on the target when `text` just reads it
    cond: bool = False  # a condition, not a value (SPL keeps the two apart)
    null: bool = False  # the null literal (no type of its own)


@dataclass(frozen=True, slots=True)
class Bound:
    """A rule on one target: the binding it reads (None: names as written) and the stages to lower, with every view
    the binding does not store natively expanded in front of the rule's own stages."""

    binding: Binding | None
    source: str  # the source the binding reads: the base source, or a view the target stores natively
    stages: tuple[ir.Stage, ...]


def sources_down(source: ir.SourceRef) -> list[tuple[ir.SourceRef, tuple[ir.Stage, ...]]]:
    """The rule's source, then each source a view is defined over, down to the base: each with the stages that turn
    the next one down into it (views over views are expanded recursively)."""
    out: list[tuple[ir.SourceRef, tuple[ir.Stage, ...]]] = []
    while source.view is not None:
        out.append((source, source.view.stages))
        source = source.view.source
    out.append((source, ()))
    return out


def base_source(source: ir.SourceRef) -> str:
    """The source under every view: the one whose records the logs hold."""
    return sources_down(source)[-1][0].name


def expand_views(pipeline: ir.Pipeline) -> tuple[ir.Stage, ...]:
    """The pipeline's stages over its base source: each view's stages, innermost first, then its own."""
    return _expand(sources_down(pipeline.source), pipeline.stages)


def _expand(levels: list[tuple[ir.SourceRef, tuple[ir.Stage, ...]]], stages: tuple[ir.Stage, ...]) -> tuple[
        ir.Stage, ...]:
    out: list[ir.Stage] = []
    for _, view_stages in reversed(levels):
        out.extend(view_stages)
    return (*out, *stages)


def bind(rule: ir.RuleIR, features: Features, name: str | None) -> Bound:
    """The binding `name` (None: the default) the rule reads on the target, and the stages left to lower.

    The rule's source is tried first, then each source under it: a target that stores a view natively (Splunk's CIM
    `Change` data model) binds to it, the others expand the view over its base source (DESIGN: sources)."""
    levels = sources_down(rule.pipeline.source)
    if not features.binds_views:
        levels = levels[-1:]
    base = levels[-1][0].name
    for i, (src, _) in enumerate(levels):
        candidates = _bindings(src.name, features.target)
        if not candidates:
            continue
        found = [b for b in candidates if name in (None, b.name)]
        if found:
            return _pruned(Bound(found[0], src.name, _expand(levels[:i], rule.pipeline.stages)), rule, features)
        if src.name == base:
            raise error(f"{rule.meta.title}: source {base!r} has no {features.title} binding {name!r}",
                        hint="bindings: " + ", ".join(b.name for b in candidates), code="binding")
    # a source with no binding here, on a target that can search events as written (Splunk): the rule's field names
    # are taken as the events' own (the undeclared `generic` source; Windows file_access / file_rename, which have
    # no add-on source type)
    sdef = builtin_sources().get(base)
    why = sdef.no_binding if sdef is not None and (
        sdef.no_binding_on is None or features.target in sdef.no_binding_on) else None
    if why is not None:  # a source no target stores as it is written (sources/azure_pim.yml)
        raise error(f"{rule.meta.title}: no {features.title} binding for source {base!r}: {why}", code="binding")
    if features.reads_undeclared and name in (None, "asis"):
        return _pruned(Bound(None, base, _expand(levels[:-1], rule.pipeline.stages)), rule, features)
    every = [b for b in builtin_bindings().values() if b.target == features.target]
    raise error(f"{rule.meta.title}: no {features.title} binding for source {base!r}",
                hint=(f"{features.title} bindings: " + ", ".join(f"{b.source}@{b.name}" for b in every)) if every
                else None, code="binding")


def _pruned(bound: Bound, rule: ir.RuleIR, features: Features) -> Bound:
    """The bound stages without the columns nothing reads, on a target that asks (docs/semantics.md decision 44)."""
    if not features.prunes_columns:
        return bound
    return replace(bound, stages=liveness.prune(bound.stages, rule.pipeline.source.time_column))


def branch_rules(rule: ir.RuleIR) -> tuple[ir.RuleIR, ...]:
    """A union's branches, each as a rule of its own (the rule's metadata and spans, the branch's pipeline): each
    binds and lowers as any rule does, and the target joins them (KQL `union`, SPL `multisearch`)."""
    union = rule.pipeline.source.union
    if union is None:
        return (rule,)
    return tuple(replace(rule, pipeline=b.pipeline, baselines=()) for b in union.branches)


def first_leaf(rule: ir.RuleIR) -> ir.RuleIR:
    """A union's first branch that reads a source (through correlations of correlations), as a rule; else the rule."""
    while rule.pipeline.source.union is not None:
        rule = branch_rules(rule)[0]
    return rule


def base_binding(rule: ir.RuleIR, features: Features) -> Binding | None:
    """The default binding of the rule's base source on the target (the shape its fixture records are written in),
    or None when it has none there."""
    found = _bindings(base_source(rule.pipeline.source), features.target)
    return found[0] if found else None


def _bindings(source: str, target: str) -> list[Binding]:
    if target:
        return bindings_for(source, target)
    return [b for (s, _), b in sorted(builtin_bindings().items()) if s == source]


def wildcard_body(pattern: ir.WildcardPattern, escape: Callable[[str], str]) -> str:
    """A wildcard pattern as regex text, unanchored: `*` any run of characters, `?` one, the rest literal in the
    target's regex dialect (`escape`). Each target adds its own anchors and flags."""
    return "".join(".*" if p is ir.Wild.ANY else "." if p is ir.Wild.ONE else escape(str(p)) for p in pattern)


# ---------------------------------------------------------------------------------------------- refusals
def span_of(rule: ir.RuleIR, *nodes: object) -> Span | None:
    """Where the rule wrote the first of `nodes` that came from it (the analyzer's side table), or None."""
    table = {id(n): span for n, span in reversed(rule.spans)}  # the first recorded place of a node wins
    for n in nodes:
        if n is not None and id(n) in table:
            return table[id(n)]
    return None


def refusal(rule: ir.RuleIR, features: Features, message: str, *at: object, code: str = "unsupported") -> CompileError:
    """A target cannot say this rule: the error points at the construct (the first of `at` the rule wrote)."""
    return error(f"{rule.meta.title}: {message}", span_of(rule, *at), hint=f"see {features.docs}", code=code)


def placed(rule: ir.RuleIR, features: Features, err: CompileError, *at: object) -> CompileError:
    """An error raised with no position (by a renderer that sees only text, such as a string literal's) points at
    the first of `at` the rule wrote, as a refusal; an error that has a position, or nothing to point at, is kept."""
    if len(err.diagnostics) != 1 or err.diagnostics[0].span is not None or span_of(rule, *at) is None:
        return err
    d = err.diagnostics[0]
    return refusal(rule, features, d.message, *at, code=d.code or "unsupported")


def null_guards(features: Features, e: ir.Compare, left: str, right: str, facts: Facts = Facts()) -> list[str]:
    """The IR's `!=` is two-valued: true when a side is null (docs/semantics.md, decision 1). On a target with
    three-valued logic, `x != y` is null there, so each side that may be null is guarded: `isnull(side) or … or
    x != y`; on the others there is nothing to guard. A side the nullability pass proves non-null on these rows (a
    literal, a column an earlier filter compared, …: `facts`, decision 40) needs no guard. `left`/`right` are the
    sides as the target compares them."""
    if not features.three_valued_logic:
        return []
    return [f"isnull({t})" for t, x in ((left, e.left), (right, e.right)) if not non_null(x, facts)]


# ---------------------------------------------------------------------------------------------- IR→IR rewrites
def preprocess(stage: ir.Stage, features: Features, fresh: Callable[[], str]) -> list[LoweringStage]:
    """The stage as the target can run it: the rewrites its features call for (sqlglot: transforms.preprocess).
    `fresh` names a temporary column the way the target does."""
    if features.sequential_assignment and isinstance(stage, ir.Extend) and reads_own_assignment(stage):
        return parallel_extend(stage, fresh)
    return [stage]


def reads_own_assignment(stage: ir.Extend) -> bool:
    """Whether an expression reads a column that an earlier assignment of the same stage replaces."""
    assigns = stage.assignments
    return any(isinstance(node, ir.Column) and node.name in {b.name for b in assigns[:i]}
               for i, a in enumerate(assigns) for node in ir.walk(a.expr))


def parallel_extend(stage: ir.Extend, fresh: Callable[[], str]) -> list[LoweringStage]:
    """IR `extend` is parallel (every expression reads the row from before the stage); on a target that assigns
    one by one, assign to temporaries first, then copy them to their names, then drop them."""
    temps = [(a, fresh()) for a in stage.assignments]
    return [
        ir.Extend(tuple(ir.Assignment(t, a.expr) for a, t in temps)),
        ir.Extend(tuple(ir.Assignment(a.name, ir.Column(t, (), a.expr.type)) for a, t in temps)),
        Drop(tuple(t for _, t in temps)),
    ]
