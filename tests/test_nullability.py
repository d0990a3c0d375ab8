"""The nullability pass (compiler/nullability.py, docs/semantics.md decision 40): what it proves, that the backends
drop only the guards and fills it proves unnecessary, and that dropping them changes no row.

The property test generates small rules (a filter, a summarize with keys that may or may not be null, a `!=` after
it) and CloudTrail records with fields missing at random, and checks that duckdb-kql returns the executor's rows
from the KQL compiled with the pass and from the KQL compiled without it.
"""

from __future__ import annotations

import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import lark
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from siemforge.backends.executor.engine import run_rule
from siemforge.backends.kql.lower import FEATURES as KQL
from siemforge.backends.kql.lower import compile_kql
from siemforge.backends.spl.lower import FEATURES as SPL
from siemforge.backends.spl.lower import compile_spl
from siemforge.backends.spl.stats import NULL_KEY
from siemforge.compiler import ir, nullability
from siemforge.compiler.api import compile_doc, compile_file, discover_rules
from siemforge.compiler.lowering import base_binding, bind
from siemforge.compiler.nullability import Facts
from siemforge.compiler.rule import load_rule
from siemforge.compiler.types import Type

import kql_engine
from helpers import ROOT

HEAD = "title: t\nlogsource: {product: aws, service: cloudtrail}\n"
SPL_GRAMMAR = lark.Lark((ROOT / "grammars" / "spl.lark").read_text(encoding="utf-8"), parser="earley", lexer="dynamic")
NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def rule_of(folder: Path, query: str) -> ir.RuleIR:
    text = HEAD + "query: |\n  " + query + "\n"
    return compile_doc(load_rule(folder / "r.yml", text, folder))


def col(name: str) -> ir.Column:
    return ir.Column(name, (), Type.STRING)


def lit(v: object) -> ir.Literal:
    return ir.Literal(v, Type.STRING)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------- what the pass proves
# (stages, expression) -> non-null after the stages?
FACT_ROWS: list[tuple[str, list[ir.Stage], ir.Expr, bool]] = [
    ("a literal", [], lit("x"), True),
    ("the null literal", [], lit(None), False),
    ("a column nothing tested", [], col("a"), False),
    ("== a literal", [ir.Filter(ir.Compare(ir.CmpOp.EQ, col("a"), lit("x")))], col("a"), True),
    ("!= is true on null", [ir.Filter(ir.Compare(ir.CmpOp.NE, col("a"), lit("x")))], col("a"), False),
    ("== null", [ir.Filter(ir.Compare(ir.CmpOp.EQ, col("a"), lit(None)))], col("a"), False),
    ("isnotempty", [ir.Filter(ir.Call("isnotempty", (col("a"),), Type.BOOL))], col("a"), True),
    ("not isempty", [ir.Filter(ir.Not(ir.Call("isempty", (col("a"),), Type.BOOL)))], col("a"), True),
    ("a match", [ir.Filter(ir.StringMatch(ir.StrOp.CONTAINS, col("a"), lit("x"), False))], col("a"), True),
    ("both branches of an or", [ir.Filter(ir.Or((ir.Compare(ir.CmpOp.EQ, col("a"), lit("x")),
                                                 ir.InList(col("a"), (lit("y"),), True))))], col("a"), True),
    ("one branch of an or", [ir.Filter(ir.Or((ir.Compare(ir.CmpOp.EQ, col("a"), lit("x")),
                                              ir.Compare(ir.CmpOp.EQ, col("b"), lit("y")))))], col("a"), False),
    ("a not", [ir.Filter(ir.Not(ir.Compare(ir.CmpOp.EQ, col("a"), lit("x"))))], col("a"), False),
    ("coalesce with a literal", [], ir.Call("coalesce", (col("a"), lit("-")), Type.STRING), True),
    ("coalesce of columns", [], ir.Call("coalesce", (col("a"), col("b")), Type.STRING), False),
    ("replaced after the filter", [ir.Filter(ir.Compare(ir.CmpOp.EQ, col("a"), lit("x"))),
                                   ir.Extend((ir.Assignment("a", col("b")),))], col("a"), False),
    ("assigned a literal", [ir.Extend((ir.Assignment("a", lit("x")),))], col("a"), True),
    ("a lookup output", [ir.Filter(ir.Compare(ir.CmpOp.EQ, col("a"), lit("x"))),
                         ir.Lookup(ir.LookupTable("t", "t.csv", ("k", "v"), (Type.STRING, Type.STRING)),
                                   ((col("k"), "k"),), (("v", "a"),))], col("a"), False),
    ("a count", [ir.Aggregate((ir.Aggregation("n", ir.AggFn.COUNT, None, Type.INT),), ())], col("n"), True),
    ("a max", [ir.Aggregate((ir.Aggregation("m", ir.AggFn.MAX, col("a"), Type.STRING),), ())], col("m"), False),
    ("a key non-null before summarize", [ir.Filter(ir.Compare(ir.CmpOp.EQ, col("a"), lit("x"))),
                                         ir.Aggregate((), (ir.Assignment("k", col("a")),))], col("k"), True),
    ("a renamed column", [ir.Filter(ir.Compare(ir.CmpOp.EQ, col("a"), lit("x"))), ir.Rename((("a", "b"),))],
     col("b"), True),
    ("projected away", [ir.Filter(ir.Compare(ir.CmpOp.EQ, col("a"), lit("x"))), ir.Project(("b",))],
     col("a"), False),
]


@pytest.mark.parametrize("why,stages,expr,expected", FACT_ROWS, ids=[r[0] for r in FACT_ROWS])
def test_what_the_pass_proves(why: str, stages: list[ir.Stage], expr: ir.Expr, expected: bool) -> None:
    facts = Facts()
    for s in stages:
        facts = nullability.step(facts, s)
    assert nullability.non_null(expr, facts) is expected


def test_constants() -> None:
    facts = nullability.step(Facts(), ir.Extend((ir.Assignment("p", lit("AWS")), ir.Assignment("q", col("a")))))
    assert nullability.is_constant(col("p"), facts) and not nullability.is_constant(col("q"), facts)


# --------------------------------------------------------------------------------------- bundled rules
def _restored(spl: str) -> set[str]:
    """The keys a search fills with the sentinel and restores after stats (one eval each, or one foreach)."""
    each = set(re.findall(r"(\w+)=if\(\1==" + re.escape(f'"{NULL_KEY}"'), spl))
    for names in re.findall(r"^\| foreach ([\w ]+) \[eval <<FIELD>>=if\('<<FIELD>>'==", spl, flags=re.M):
        each |= set(names.split())
    return each


@pytest.mark.parametrize("rule_file", discover_rules([ROOT / "rules"]), ids=lambda p: p.stem)
def test_no_fill_on_a_key_proven_non_null(rule_file: Path) -> None:
    """No bundled rule, on any Splunk binding, fills (and restores) a stats key the pass proves non-null."""
    rule = compile_file(rule_file).rule
    assert rule is not None
    if rule.pipeline.source.union is not None:
        return
    for name in ("raw", "asl", "wineventlog", "sysmon", "mscs", "okta", "github", "o365", "gcp", None):
        try:
            bound = bind(rule, SPL, name)
            spl = compile_spl(rule, name)
        except Exception:  # noqa: BLE001 - a binding the rule's source does not have
            continue
        facts = Facts()
        proven: set[str] = set()
        for stage in bound.stages:
            if isinstance(stage, ir.Aggregate):
                proven |= {b.name for b in stage.by if nullability.non_null(b.expr, facts)}
            facts = nullability.step(facts, stage)
        assert not proven & _restored(spl), (name, proven & _restored(spl))


def test_ecr_rule_keeps_only_keys_that_may_be_null() -> None:
    rule = compile_file(ROOT / "rules" / "aws_ecr_upload_outside_business_hours"
                        / "aws_ecr_upload_outside_business_hours.yml").rule
    assert rule is not None
    spl = compile_spl(rule, "raw")
    # signature is eventName, which the base search requires; vendor_product is a constant
    assert _restored(spl) == {"user", "user_agent", "src", "vendor_account", "vendor_region", "repository"}
    with nullability.unproven():
        assert "signature" in _restored(compile_spl(rule, "raw"))


# --------------------------------------------------------------------------------------- property: same rows
FIELDS = {"eventName": ["A", "B"], "userAgent": ["ua", "UA"], "sourceIPAddress": ["1.2.3.4", "5.6.7.8"],
          "awsRegion": ["us-east-1", "eu-west-1"], "errorCode": ["Denied"]}
ATOMS = [
    'eventName == "A"', 'eventName =~ "b"', "isnotempty(userAgent)", 'userAgent != "ua"', "isempty(errorCode)",
    'sourceIPAddress startswith "1."', 'awsRegion in ("us-east-1")', 'not(awsRegion == "eu-west-1")',
]
KEYS = ["eventName", "userAgent", "sourceIPAddress", "awsRegion", "errorCode"]

record = st.fixed_dictionaries({}, optional={f: st.sampled_from(v) for f, v in FIELDS.items()})
predicate = st.recursive(st.sampled_from(ATOMS), lambda inner: st.one_of(
    st.builds(lambda a, b: f"({a} and {b})", inner, inner), st.builds(lambda a, b: f"({a} or {b})", inner, inner)),
    max_leaves=4)


@st.composite
def queries(draw: st.DrawFn) -> str:
    parts = [f"where {draw(predicate)}"]
    keys = draw(st.lists(st.sampled_from(KEYS), min_size=1, max_size=3, unique=True))
    parts.append("summarize n = count() by " + ", ".join(f"k{i} = {k}" for i, k in enumerate(keys)))
    after = draw(st.sampled_from(["", "k0 != \"A\"", "n != 2", "k0 == \"ua\" or k0 != \"B\""]))
    if after:
        parts.append("where " + after)
    return " | ".join(parts)


def _same_nulls(rows: list[str]) -> list[str]:
    """KQL has no null string (a missing one is ""): both read as null, as the bundled rules' comparisons do."""
    return sorted(orjson.dumps([None if v == "" else v for v in orjson.loads(r)]).decode() for r in rows)


def _kql_rows(rule: ir.RuleIR, logs: list[Path]) -> list[str]:
    binding = base_binding(rule, KQL)
    assert binding is not None
    con = kql_engine.connect(binding, logs, {})
    return _same_nulls(kql_engine.comparable(kql_engine.run(con, compile_kql(rule, None), NOW), rule, "AwsEventId"))


NEEDS_ENGINE = pytest.mark.skipif(kql_engine.duckdb_kql is None, reason="duckdb-kql is not installed")
CASES = given(query=queries(), records=st.lists(record, min_size=1, max_size=8))


@NEEDS_ENGINE
@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@CASES
def test_dropped_guards_change_no_row(query: str, records: list[dict[str, Any]]) -> None:
    """A few cases in the quick profile; test_dropped_guards_change_no_row_many runs many in CI."""
    same_rows_with_and_without_the_pass(query, records)


@pytest.mark.slow
@NEEDS_ENGINE
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@CASES
def test_dropped_guards_change_no_row_many(query: str, records: list[dict[str, Any]]) -> None:
    same_rows_with_and_without_the_pass(query, records)


def same_rows_with_and_without_the_pass(query: str, records: list[dict[str, Any]]) -> None:
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        logs = folder / "e.ndjson"
        logs.write_bytes(b"".join(orjson.dumps({"eventTime": "2024-06-01T11:00:00Z", "eventID": str(i),
                                                "eventSource": "ec2.amazonaws.com", **r}) + b"\n"
                                  for i, r in enumerate(records)))
        rule = rule_of(folder, query)
        expected = _same_nulls(kql_engine.comparable(run_rule(rule, [logs], NOW).rows, rule, "eventID"))
        assert _kql_rows(rule, [logs]) == expected, compile_kql(rule, None)
        SPL_GRAMMAR.parse(compile_spl(rule, "raw"))  # Splunk cannot run here: its search must at least parse
        with nullability.unproven():
            assert _kql_rows(rule, [logs]) == expected, compile_kql(rule, None)
            SPL_GRAMMAR.parse(compile_spl(rule, "raw"))


def test_null_guards_skip_proven_sides() -> None:
    """`isnull(side) or …` only for a side the pass cannot prove non-null; none on a two-valued target."""
    from siemforge.compiler.lowering import EXECUTOR, null_guards

    facts = nullability.step(Facts(), ir.Filter(ir.Compare(ir.CmpOp.EQ, col("a"), lit("x"))))
    ne = ir.Compare(ir.CmpOp.NE, col("a"), col("b"))
    assert null_guards(SPL, ne, "a", "b", facts) == ["isnull(b)"]
    assert null_guards(SPL, ne, "a", "b") == ["isnull(a)", "isnull(b)"]
    assert null_guards(KQL, ir.Compare(ir.CmpOp.NE, col("a"), lit("y")), "a", '"y"', facts) == []
    assert null_guards(EXECUTOR, ne, "a", "b") == []
