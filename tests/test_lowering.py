"""The shared lowering layer: one function picks a rule's binding and expands the views it does not store."""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

import pytest

from siemforge.backends.executor.regex import check_rule
from siemforge.backends.executor.testing import find_binding
from siemforge.backends.kql.lower import FEATURES as KQL
from siemforge.backends.kql.lower import compile_kql
from siemforge.backends.spl.lower import FEATURES as SPL
from siemforge.backends.spl.lower import compile_spl
from siemforge.compiler import ir, liveness
from siemforge.compiler.api import compile_file
from siemforge.compiler.diagnostics import CompileError
from siemforge.compiler.lowering import (
    EXECUTOR,
    Drop,
    base_binding,
    base_source,
    bind,
    expand_views,
    null_guards,
    preprocess,
    span_of,
)

from helpers import ROOT

VIEW_RULE = ROOT / "rules/cloud_instance_created_unseen_image/cloud_instance_created_unseen_image.yml"


def view_rule() -> ir.RuleIR:
    res = compile_file(VIEW_RULE)
    assert res.rule is not None and res.rule.pipeline.source.view is not None
    return res.rule


def test_a_target_that_stores_the_view_binds_it_and_the_others_expand_it() -> None:
    rule = view_rule()
    view = rule.pipeline.source.view
    assert view is not None
    cim = bind(rule, SPL, None)
    assert (cim.source, cim.binding and cim.binding.name, cim.stages) == ("cim.change", "cim", rule.pipeline.stages)
    raw = bind(rule, SPL, "raw")
    # expanded, without the view columns nothing reads (compiler/liveness.py)
    expanded = liveness.prune((*view.stages, *rule.pipeline.stages), rule.pipeline.source.time_column)
    assert (raw.source, raw.stages) == ("aws.cloudtrail", expanded)
    assert len(expanded) < len(view.stages) + len(rule.pipeline.stages)
    sentinel = bind(rule, KQL, None)
    assert (sentinel.source, sentinel.stages) == ("aws.cloudtrail", raw.stages)
    executor = bind(rule, EXECUTOR, "sentinel")  # the executor runs the view: its bindings are base-record shapes
    assert (executor.source, executor.stages) == ("aws.cloudtrail", rule.pipeline.stages)
    assert find_binding(rule, "cim") is None


def test_views_over_views_expand_recursively() -> None:
    rule = view_rule()
    src = rule.pipeline.source
    assert src.view is not None
    inner = ir.Filter(ir.Call("isnotnull", (ir.Column("user", (), ir.Type.STRING),), ir.Type.BOOL))
    # a view `outer` defined over the cim.change view
    outer_view = ir.Pipeline(src, (inner,))
    nested = dataclasses.replace(rule, pipeline=dataclasses.replace(
        rule.pipeline, source=ir.SourceRef("outer", src.time_column, outer_view)))
    assert base_source(nested.pipeline.source) == "aws.cloudtrail"
    assert expand_views(nested.pipeline) == (*src.view.stages, inner, *rule.pipeline.stages)
    assert bind(nested, SPL, None).stages == (inner, *rule.pipeline.stages)  # cim stored: only `outer` expanded
    assert bind(nested, KQL, None).stages == liveness.prune(expand_views(nested.pipeline), src.time_column)
    # the outer view's filter, then the rule's own window (its seen-before table reads 14 days), then its stages
    # (the view's closing project is left out: nothing after reads a column it drops, so _time is TimeGenerated)
    assert ('| where isnotempty(user)\n| where TimeGenerated >= ago(1d)\n| where action =~ "created"'
            in compile_kql(nested, None))


def test_the_executor_checks_the_regexes_of_every_view_under_the_rule() -> None:
    rule = view_rule()
    src = rule.pipeline.source
    assert src.view is not None
    backref = ir.Filter(ir.RegexMatch(ir.Column("user", (), ir.Type.STRING), "(a)\\1"))
    # `outer` over `middle` over cim.change: the regex RE2 cannot run is two views down
    middle = ir.SourceRef("middle", src.time_column, ir.Pipeline(src, (backref,)))
    outer = ir.SourceRef("outer", src.time_column, ir.Pipeline(middle, ()))
    nested = dataclasses.replace(rule, pipeline=dataclasses.replace(rule.pipeline, source=outer))
    assert check_rule(rule) is None
    refused = check_rule(nested)
    assert refused is not None and "backreference" in refused.message


def test_a_view_two_levels_over_a_windows_source_selects_its_records() -> None:
    from siemforge.backends.executor.engine import _selects_records

    rule = view_rule()
    windows = ir.SourceRef("windows.application", "_time")
    middle = ir.SourceRef("middle", "_time", ir.Pipeline(windows, ()))
    for src in (windows, middle, ir.SourceRef("outer", "_time", ir.Pipeline(middle, ()))):
        assert _selects_records(dataclasses.replace(rule, pipeline=ir.Pipeline(src, ())))
    assert not _selects_records(rule)  # cim.change over aws.cloudtrail: no `records:` section


def test_a_clock_two_views_down_makes_the_rule_depend_on_when_it_runs() -> None:
    base = ir.SourceRef("aws.cloudtrail", "_time")
    clock = ir.Filter(ir.Call("now", (), ir.Type.DATETIME))
    middle = ir.SourceRef("middle", "_time", ir.Pipeline(base, (clock,)))
    outer = ir.SourceRef("outer", "_time", ir.Pipeline(middle, ()))
    assert ir.reads_clock(ir.Pipeline(outer, ()))
    assert not ir.reads_clock(ir.Pipeline(ir.SourceRef("outer", "_time", ir.Pipeline(
        ir.SourceRef("middle", "_time", ir.Pipeline(base, ())), ())), ()))


def test_ne_is_guarded_against_nulls_only_on_targets_with_three_valued_logic() -> None:
    s = ir.Type.STRING
    ne = ir.Compare(ir.CmpOp.NE, ir.Column("a", (), s), ir.Literal("x", s))
    assert null_guards(KQL, ne, "a", '"x"') == ["isnull(a)"]  # a literal is never null
    assert null_guards(EXECUTOR, ne, "a", '"x"') == []  # the IR's own `!=` is two-valued already


def test_the_base_binding_is_the_base_sources_default_under_any_view() -> None:
    rule = view_rule()
    chosen, spl, kql = bind(rule, SPL, None).binding, base_binding(rule, SPL), base_binding(rule, KQL)
    assert chosen is not None and spl is not None and kql is not None
    assert (chosen.name, spl.name, kql.name) == ("cim", "raw", "sentinel")  # Splunk reads the view's data model


def test_an_unknown_binding_is_refused_with_the_choices() -> None:
    with pytest.raises(CompileError) as exc:
        bind(view_rule(), SPL, "nope")
    assert "source 'aws.cloudtrail' has no Splunk binding 'nope'" in str(exc.value)
    assert "raw" in str(exc.value.diagnostics[0].hint)


def test_parallel_extend_is_rewritten_only_for_targets_that_assign_one_by_one() -> None:
    s = ir.Type.STRING
    swap = ir.Extend((ir.Assignment("a", ir.Column("b", (), s)), ir.Assignment("b", ir.Column("a", (), s))))
    names = iter(["t1", "t2"])
    assert preprocess(swap, KQL, lambda: next(names)) == [
        ir.Extend((ir.Assignment("t1", ir.Column("b", (), s)), ir.Assignment("t2", ir.Column("a", (), s)))),
        ir.Extend((ir.Assignment("a", ir.Column("t1", (), s)), ir.Assignment("b", ir.Column("t2", (), s)))),
        Drop(("t1", "t2")),
    ]
    assert preprocess(swap, EXECUTOR, lambda: "unused") == [swap]
    # an expression that reads only columns from before the stage needs no temporaries
    plain = ir.Extend((ir.Assignment("a", ir.Column("a", (), s)), ir.Assignment("b", ir.Column("c", (), s))))
    assert preprocess(plain, SPL, lambda: "unused") == [plain]


REFUSED = """title: refused
logsource: {product: aws, service: cloudtrail}
query: |
  where eventName == "RunInstances"
  | extend ok = tobool(readOnly)
  | where userAgent matches regex "(?=x)"
  | where statusCode == "success"
"""


@pytest.mark.parametrize("target,query_line,expected", [
    ("spl", None, ":5:17: error: refused: SPL has no boolean values"),
    ("kql", None, ":6:11: error: refused: KQL runs RE2"),
    ("spl", 5, ":7:11: error: refused: field 'statusCode' has no Splunk field"),  # without the tobool line
    ("kql", 6, ":7:11: error: refused: field 'statusCode' has no column in the AWSCloudTrail table"),
])
def test_a_refusal_points_at_the_construct(target: str, query_line: int | None, expected: str,
                                           tmp_path: Path) -> None:
    lines = REFUSED.splitlines(keepends=True)
    if query_line is not None:  # blank out the earlier refused line, keeping every position
        lines[query_line - 1] = "  | extend x = 1\n"
    p = tmp_path / "rule.yml"
    p.write_text("".join(lines))
    rule = compile_file(p).rule
    assert rule is not None
    compile_ = {"kql": compile_kql, "spl": compile_spl}[target]
    for r in (rule, pickle.loads(pickle.dumps(rule))):  # the rule cache keeps the side table
        with pytest.raises(CompileError) as exc:
            compile_(r, None)
        (d,) = exc.value.diagnostics
        assert str(d).startswith(str(p) + expected)
        assert str(d).endswith("[unmapped-field]" if "field" in expected else "[unsupported]")


def test_a_views_stages_are_positioned_in_its_source_file() -> None:
    rule = view_rule()
    view = rule.pipeline.source.view
    assert view is not None
    span = span_of(rule, view.stages[0])
    assert span is not None and span.file.endswith("cim_change.yml") and span.line > 1
    assert span_of(rule, rule.pipeline.stages[0]) is not None and span_of(rule, ir.Limit(1)) is None
