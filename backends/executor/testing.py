"""Run the `tests:` of rules with the executor and judge each expectation. Returns results; never prints."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from siemforge.compiler import ir
from siemforge.compiler.api import CompileResult, compile_rules
from siemforge.compiler.bindings import Binding
from siemforge.compiler.diagnostics import CompileError, Diagnostic
from siemforge.compiler.lowering import EXECUTOR, bind
from siemforge.compiler.rule import Expectation, TestCase

from .engine import RunResult, run_rule
from .reader import Malformed
from .regex import check_rule
from .values import to_datetime, to_number, to_text


@dataclass(slots=True)
class TestOutcome:
    rule_file: str
    rule_title: str
    name: str
    passed: bool
    detail: str
    seconds: float
    malformed: list[Malformed] = field(default_factory=list)


@dataclass(slots=True)
class RuleTestReport:
    path: Path
    compiled: CompileResult
    outcomes: list[TestOutcome]

    @property
    def diagnostics(self) -> list[Diagnostic]:
        return self.compiled.diagnostics


def run_rule_tests(path: Path, root: Path | None = None) -> RuleTestReport:
    """`root`: the folder of rules the files a rule names must be in (compile_file's default when None). A file of
    several documents (a Sigma correlation with its base rules) runs the tests of each rule it defines."""
    results = compile_rules(path, root=root)
    if len(results) == 1:
        return _run_tests(path, results[0])
    reports = [_run_tests(path, r) for r in results]
    failed = [r for r in reports if r.compiled.rule is None]
    first = (failed or reports)[0].compiled
    merged = CompileResult(path, first.rule, first.doc, [d for r in reports for d in r.compiled.diagnostics])
    return RuleTestReport(path, merged, [o for r in reports for o in r.outcomes])


def _run_tests(path: Path, result: CompileResult) -> RuleTestReport:
    outcomes: list[TestOutcome] = []
    if result.rule is None or result.doc is None:
        return RuleTestReport(path, result, outcomes)
    refused = check_rule(result.rule)
    if refused is not None:  # the rule compiles (Splunk may run it) but the executor cannot prove it
        result.diagnostics.append(refused)
        for case in result.doc.tests:
            outcomes.append(TestOutcome(str(path), result.rule.meta.title, case.name, False,
                                        "not run: the executor cannot run this rule's regex (error above)", 0.0))
        return RuleTestReport(path, result, outcomes)
    for case in result.doc.tests:
        started = time.perf_counter()
        missing = [str(p) for p in case.logs if not p.exists()]
        if missing:
            outcomes.append(TestOutcome(str(path), result.rule.meta.title, case.name, False,
                                        "log file not found: " + ", ".join(missing), 0.0))
            continue
        binding = None
        if case.binding is not None:
            binding = find_binding(result.rule, case.binding)
            if binding is None:
                outcomes.append(
                    TestOutcome(
                        str(path),
                        result.rule.meta.title,
                        case.name,
                        False,
                        f"unknown binding {case.binding!r} for this rule's source",
                        0.0,
                    )
                )
                continue
        lookups = dict(case.lookups)
        with contextlib.ExitStack() as scratch:  # the tables built for this test are removed after it (they were left
            if case.baselines:  # in the temp folder, one folder per test run): build each from its logs, then run
                import tempfile

                from .baseline import build_table, table_csv
                from .engine import default_now

                tmp = Path(scratch.enter_context(tempfile.TemporaryDirectory(prefix="siemforge-baseline-")))
                for b in result.rule.baselines:
                    if b.table in case.baselines:
                        rows = build_table(b, list(case.baselines[b.table]), case.now or default_now())
                        (tmp / f"{b.table}.csv").write_text(table_csv(b, rows), encoding="utf-8")
                        lookups[b.table] = tmp / f"{b.table}.csv"
            run = run_rule(result.rule, list(case.logs), case.now, lookups, binding=binding)
        ok, detail = judge(case.expect, run)
        outcomes.append(
            TestOutcome(
                str(path), result.rule.meta.title, case.name, ok, detail, time.perf_counter() - started, run.malformed
            )
        )
    return RuleTestReport(path, result, outcomes)


def find_binding(rule: ir.RuleIR, name: str) -> Binding | None:
    """The binding `name` of the rule's base source (the source under any view): the shape its fixture rows have."""
    try:
        return bind(rule, EXECUTOR, name).binding
    except CompileError:
        return None


def judge(expect: Expectation, run: RunResult) -> tuple[bool, str]:
    n = len(run.rows)
    summary = f"{n} row{'s' if n != 1 else ''} from {run.events_read} events"
    if expect.kind == "fires":
        return run.fired, f"fired: {summary}" if run.fired else f"expected an alert, got none ({summary})"
    if expect.kind == "silent":
        return (
            not run.fired
        ), "silent" + f" ({summary})" if not run.fired else f"expected silence, but it fired: {summary}"
    if expect.kind == "count":
        ok = n == expect.count
        return ok, summary if ok else f"expected {expect.count} rows, got {summary}"
    # rows: each expected row (a subset of columns) matches a distinct actual row
    if n != len(expect.rows):
        return False, f"expected {len(expect.rows)} rows, got {summary}"
    remaining = list(run.rows)
    for i, want in enumerate(expect.rows):
        hit = next((r for r in remaining if row_matches(want, r)), None)
        if hit is None:
            closest = remaining[0] if remaining else {}
            diffs = [
                f"{k}: expected {v!r}, got {_show(closest.get(k))}"
                for k, v in want.items()
                if not value_matches(v, closest.get(k))
            ]
            return False, f"expected row {i + 1} not found; e.g. " + "; ".join(diffs[:4])
        remaining.remove(hit)
    return True, summary


def row_matches(want: dict[str, Any], row: dict[str, Any]) -> bool:
    return all(k in row and value_matches(v, row[k]) for k, v in want.items())


def value_matches(want: Any, got: Any) -> bool:
    if want is None:
        return got is None
    if isinstance(got, datetime):
        w = to_datetime(want if not isinstance(want, datetime) else want)
        return w is not None and w == got
    if isinstance(want, bool) or isinstance(got, bool):
        return to_text(want) == to_text(got)
    if isinstance(want, (int, float)):
        g = to_number(got)
        return g is not None and g == want
    if isinstance(want, list):
        return isinstance(got, list) and len(want) == len(got) and all(value_matches(a, b) for a, b in zip(want, got))
    return to_text(want) == to_text(got)


def _show(v: Any) -> str:
    return repr(to_text(v)) if isinstance(v, datetime) else repr(v)


_ = TestCase
