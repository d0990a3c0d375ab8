"""`siemforge hunt`: many rules over many log files, on one of several engines.

On the command line, a path ending in `.yml` or `.yaml`, or a folder, names rules (a folder: every rule file under
it, as `compile` and `test` find them); any other file is a log. The python engine (the executor) reads the logs
once for all the rules it can run in one pass (backends/executor/multi.py); duckdb and spark run the SQL backend's
query per rule. Their runners are imported only when asked for, so a missing optional engine is a clear error.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .console import err, out, print_diagnostics, styled
from .rules import SourceDirs, use_sources

if TYPE_CHECKING:
    from siemforge.backends.executor.reader import Malformed
    from siemforge.compiler import ir
    from siemforge.compiler.api import CompileResult

RULE_SUFFIXES = (".yml", ".yaml")


class Engine(str, Enum):
    python = "python"
    duckdb = "duckdb"
    spark = "spark"


class HuntFormat(str, Enum):
    table = "table"
    json = "json"


@dataclass(frozen=True, slots=True)
class SqlEngine:
    """An engine that runs a rule's SQL: `function(rule, paths, now=...)` in `module` gives `run --format json`'s
    rows, and tells `report=` each malformed line it skipped. `needs` says what to install when the module is
    missing."""

    module: str
    function: str
    needs: str


SQL_ENGINES = {
    Engine.duckdb: SqlEngine("siemforge.backends.sql.duckdb_run", "run_duckdb", "siemforge's SQL backend"),
    Engine.spark: SqlEngine("siemforge.backends.sql.spark_run", "run_spark",
                            "siemforge's SQL backend and pyspark (pip install 'siemforge[spark]')"),
}


@dataclass(slots=True)
class Outcome:
    """One rule's result: its rows, whether it alerts, and the events read (None: the engine does not say)."""

    result: CompileResult
    rows: list[dict[str, Any]]
    fired: bool
    events_read: int | None


def split_paths(paths: list[Path]) -> tuple[list[Path], list[Path]]:
    """(rule paths, log paths), in the order given. A missing path is a usage error (exit 2)."""
    rules: list[Path] = []
    logs: list[Path] = []
    missing = [p for p in paths if not p.exists()]
    for p in missing:
        err.print(f"{p}: error: no such file or folder", style="bold red", markup=False)
    if missing:
        raise typer.Exit(2)
    for p in paths:
        (rules if p.is_dir() or p.suffix.lower() in RULE_SUFFIXES else logs).append(p)
    if not rules:
        err.print("error: no rules named: give rule files (.yml, .yaml) or folders of rules before the logs",
                  style="bold red", markup=False)
        raise typer.Exit(2)
    if not logs:
        err.print("error: no log files named: every path is a rule (.yml, .yaml) or a folder; name the log files "
                  "one by one", style="bold red", markup=False)
        raise typer.Exit(2)
    return rules, logs


def sql_runner(engine: Engine) -> Callable[..., list[dict[str, Any]]]:
    """The engine's run function, imported now; a missing one is reported (exit 2)."""
    spec = SQL_ENGINES[engine]
    try:
        module = importlib.import_module(spec.module)
        fn: Callable[..., list[dict[str, Any]]] = getattr(module, spec.function)
    except (ImportError, AttributeError) as exc:
        err.print(f"error: the {engine.value} engine needs {spec.needs} ({exc})", style="bold red", markup=False)
        raise typer.Exit(2) from None
    return fn


def hunt(
    paths: Annotated[list[Path], typer.Argument(
        help="rules (.yml/.yaml files, or folders of rules), then log files (NDJSON, JSON array, CloudTrail Records, "
             ".gz; Windows .evtx, evtx-JSON; auditd)", show_default=False, metavar="RULES_THEN_LOGS")],
    engine: Annotated[Engine, typer.Option("--engine", help="python (the executor), duckdb or spark")] = Engine.python,
    format: Annotated[HuntFormat, typer.Option(
        "--format", help="table, or json (one rule: run's JSON array of rows; several: [{id, title, file, fired, "
                         "rows}])")] = HuntFormat.table,
    now: Annotated[str | None, typer.Option(help="the time now() returns, ISO-8601 (default: the clock)")] = None,
    prefilter: Annotated[bool | None, typer.Option(
        "--prefilter/--no-prefilter", help="python engine: skip parsing lines no rule can match (default: as run "
        "does)", show_default=False)] = None,
    sources: SourceDirs = None,
) -> None:
    """Run rules (a file or folders of them) over log files: each rule's rows as `run` prints them, then a summary.
    A rule that does not compile is reported and the hunt goes on (exit 1)."""
    from siemforge.compiler.api import compile_rules, discover_rules, rule_root
    from siemforge.compiler.diagnostics import CompileError

    from .main import _parse_now, _size, rule_cache
    from .progress import reading, steps, wanted

    rule_paths, logs = split_paths(paths)
    use_sources(sources, rule_paths)
    when = _parse_now(now)
    run_sql = sql_runner(engine) if engine is not Engine.python else None
    started = time.perf_counter()
    cache = rule_cache()
    files = discover_rules(rule_paths)
    for p in rule_paths:
        if p.is_dir() and not discover_rules([p]):
            err.print(f"{p}: error: a folder with no rule files (.yml, .yaml); name log files one by one",
                      style="bold red", markup=False)
            raise typer.Exit(2)
    compiled: list[CompileResult] = []
    failures = 0
    for f in files:
        for res in compile_rules(f, cache, root=rule_root(f, rule_paths)):
            print_diagnostics(res.diagnostics)
            if res.rule is None:
                failures += 1
            else:
                compiled.append(res)
    outcomes: list[Outcome] = []
    malformed: list[Malformed] = []
    malformed_total = 0
    if run_sql is not None:
        with steps(wanted(format is HuntFormat.json)) as progress:  # on a terminal only: a bar of rules run
            progress.step(f"hunting ({engine.value})", len(compiled))
            reports: set[Malformed] = set()  # each rule reads the logs again: a line is said once
            for res in compiled:
                assert res.rule is not None
                try:
                    rows = run_sql(res.rule, logs, now=when, report=reports.add)
                except CompileError as exc:  # the engine cannot express this rule: said, and the hunt goes on
                    print_diagnostics([d.in_file(res.path) for d in exc.diagnostics])
                    failures += 1
                    continue
                except OSError as exc:  # a log file the engine cannot read: no rule can run over it
                    err.print(f"error: the {engine.value} engine cannot read the logs: {exc}", style="bold red",
                              markup=False, highlight=False)
                    err.print("  hint: --engine python skips and reports malformed lines, and reads the rest",
                              markup=False, highlight=False)
                    raise typer.Exit(2) from None
                finally:
                    progress.advance()
                outcomes.append(Outcome(res, rows, _fires(res.rule, len(rows)), None))
            # the events the logs gave, where the pass that checked (or cleaned) each log for the engine counted them:
            # never a second read of the logs
            counted = getattr(importlib.import_module(SQL_ENGINES[engine].module), "events_counted", None)
            events_read = counted(logs) if counted is not None else None
            for o in outcomes:
                o.events_read = events_read
            malformed = sorted(reports, key=lambda m: (m.file, m.line, m.record or 0))
            # lines skipped, as the python engine counts them: two reports of one line (its invalid JSON, then a
            # gzip CRC error found at its end) count once
            malformed_total = len({(m.file, m.line, m.record) for m in malformed if m.line or m.record is not None}) \
                + sum(1 for m in malformed if not m.line and m.record is None)
    else:
        from siemforge.backends.executor.multi import run_rules
        from siemforge.backends.executor.regex import check_rule

        runnable: list[CompileResult] = []
        for res in compiled:
            assert res.rule is not None
            refused = check_rule(res.rule)  # a regex the executor cannot run
            if refused is not None:
                print_diagnostics([refused.in_file(res.path)])
                failures += 1
                continue
            runnable.append(res)
        with reading(wanted(format is HuntFormat.json), sum(_size(p) for p in logs)) as meter:  # bytes, events/s
            results = run_rules([r.rule for r in runnable if r.rule is not None], logs, when, prefilter=prefilter,
                                meter=meter)
        seen: set[Malformed] = set()
        for res, rr in zip(runnable, results):
            outcomes.append(Outcome(res, rr.rows, rr.fired, rr.events_read))
            for m in rr.malformed:  # the pass's reports are shared; a rule run on its own has its own copy
                if m not in seen:
                    seen.add(m)
                    malformed.append(m)
            malformed_total = max(malformed_total, rr.malformed_total)
    elapsed = time.perf_counter() - started
    _report_malformed(malformed, malformed_total)
    _print(outcomes, format, len(compiled) + failures)
    total_rows = sum(len(o.rows) for o in outcomes)
    alerts = sum(o.fired for o in outcomes)
    events = max((o.events_read for o in outcomes if o.events_read is not None), default=None)
    summary = (f"hunt ({engine.value}): {len(outcomes)} rule(s) run over {len(logs)} log file(s)"
               + (f", {events} event(s)" if events is not None else "")
               + f": {total_rows} row(s), {alerts} alert(s), {elapsed:.2f} s"
               + (f"; {failures} rule(s) could not run" if failures else ""))
    (out if format is HuntFormat.table else err).print(summary, markup=False, highlight=False)
    if failures:
        raise typer.Exit(1)


def _fires(rule: ir.RuleIR, n: int) -> bool:
    from siemforge.backends.executor.engine import threshold_met

    return threshold_met(rule.alert.threshold, n)


def _report_malformed(malformed: list[Malformed], total: int) -> None:
    for m in malformed[:20]:
        err.print(str(m), style="yellow", markup=False)
    if total > 20:
        err.print(f"… and {total - 20} more malformed lines", style="yellow")
    if total:
        err.print(f"{total} malformed line(s) skipped", style="yellow")


def _print(outcomes: list[Outcome], format: HuntFormat, rules: int) -> None:
    import sys

    import orjson

    from .main import _print_rows, json_value

    if format is HuntFormat.json:
        if rules == 1 and len(outcomes) == 1:  # exactly what `run --format json` prints
            doc: Any = [json_value(r) for r in outcomes[0].rows]
        else:
            doc = [{"id": o.result.rule.meta.id if o.result.rule else None,
                    "title": o.result.rule.meta.title if o.result.rule else None,
                    "file": str(o.result.path), "fired": o.fired,
                    "rows": [json_value(r) for r in o.rows]} for o in outcomes]
        sys.stdout.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    for o in outcomes:
        rule = o.result.rule
        assert rule is not None
        if rules > 1:  # which rule these rows are from
            out.print(f"== {rule.meta.title} ({o.result.path})", markup=False, highlight=False)
        _print_rows(o.rows)
        decision = styled("ALERT", "bold red") if o.fired else styled("no alert", "green")
        thr = rule.alert.threshold
        read = f" from {o.events_read} event(s)" if o.events_read is not None else ""
        out.print(f"{len(o.rows)} row(s){read}:", decision, f"(alert when rows {thr.op.value} {thr.value})")
