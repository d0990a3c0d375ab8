"""The siemforge command line. Library code returns diagnostics; this module renders them and sets exit codes.

Exit codes: 0 success; 1 a rule failed to compile or a test failed; 2 bad usage or input.
"""

from __future__ import annotations

import contextlib
import copy
import sys
import traceback
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer
from rich.table import Table

from siemforge import __version__
from siemforge.backends.registry import targets
from siemforge.compiler.diagnostics import CompileError

from .build import build as build_command
from .console import cell, err, out, print_diagnostics, styled
from .coverage import coverage as coverage_cmd
from .outputs import OutputError, slug, writing_to
from .progress import reading, steps, wanted
from .rules import RuleFiles, SentinelBinding, SourceDirs, compiled_rules, lowered, require_paths, use_sources

if TYPE_CHECKING:
    from siemforge.backends.executor.testing import RuleTestReport
    from siemforge.compiler.api import CompileResult
    from siemforge.compiler.cache import RuleCache
    from siemforge.compiler.ir import LookupTable

# The executor is imported by the commands that run rules (run, test, baseline), not by compile or export, whose
# start-up time counts on large batches; the compiler by the commands that compile, not by --help or version.

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="siemforge: compile detection rules to every SIEM, with proof of what they catch.",
)

_debug = False  # --debug / SIEMFORGE_DEBUG=1: main() shows the traceback of an internal error


@app.callback()
def _options(
    debug: Annotated[
        bool, typer.Option("--debug", envvar="SIEMFORGE_DEBUG", help="show the traceback of an internal error")
    ] = False,
) -> None:
    global _debug
    _debug = debug


class OutFormat(str, Enum):
    text = "text"
    json = "json"


class RunFormat(str, Enum):
    table = "table"
    json = "json"


def _compile_or_exit(rule: Path, sources: list[Path] | None) -> CompileResult:
    """The rule a file defines. A file of several (a Sigma correlation whose base rules also generate queries):
    its last correlation, else its first rule, said on stderr."""
    from siemforge.compiler.api import compile_rules, discover_rules

    if not rule.exists():
        err.print(f"{rule}: error: no such file", style="bold red", markup=False)
        raise typer.Exit(2)
    if rule.is_dir():  # a bundled rule's folder (rules/x/) holds one rule file besides its fixtures
        found = discover_rules([rule])
        if len(found) != 1:
            what = "a folder with no rule files (.yml, .yaml)" if not found else f"a folder of {len(found)} rule files"
            err.print(f"{rule}: error: {what}; name one rule file", style="bold red", markup=False)
            raise typer.Exit(2)
        rule = found[0]
    use_sources(sources, [rule])
    results = compile_rules(rule, rule_cache())
    for r in results:
        print_diagnostics(r.diagnostics)
    if any(r.rule is None for r in results):
        raise typer.Exit(1)
    correlations = [r for r in results if r.rule is not None and r.rule.pipeline.source.union is not None]
    chosen = correlations[-1] if correlations else results[0]
    if len(results) > 1:
        assert chosen.rule is not None
        err.print(f"{rule}: note: the file defines {len(results)} rules; this is {chosen.rule.meta.title!r}",
                  markup=False)
    return chosen


def rule_cache() -> RuleCache | None:
    """The compiled-rule cache (compiler/cache.py) the commands that run one rule share: a hit skips parsing and
    analysis, most of a small run's start-up."""
    from siemforge.compiler.cache import RuleCache, default_dir

    folder = default_dir()
    return RuleCache(folder) if folder is not None else None


def _event_log_kind(path: Path) -> str | None:
    """'.evtx' or 'audit.log' when the file (gzipped or not) is that event log itself, as the reader tells them apart
    (backends/executor/reader.py): never rows exported from a table, which is what `run --binding` reads."""
    import zlib

    from siemforge.backends.executor.auditd import AUDIT_LINE
    from siemforge.backends.executor.windows import EVTX_MAGIC

    try:
        with path.open("rb") as fh:
            head = fh.read(1 << 16)
        if head[:2] == b"\x1f\x8b":
            head = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, 1 << 16)
    except (OSError, zlib.error):
        return None  # the reader reports it
    first = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if head[:8] == EVTX_MAGIC:
        return ".evtx"
    if first not in (b"{", b"[") and AUDIT_LINE.search(head):
        return "audit.log"
    return None


def _parse_now(now: str | None) -> datetime | None:
    if now is None:
        return None
    from siemforge.compiler.parser import parse_datetime_text

    try:
        return parse_datetime_text(now)
    except ValueError:
        err.print(
            f"error: --now {now!r} is not an ISO-8601 time (e.g. 2024-05-01T12:00:00Z)", style="bold red", markup=False
        )
        raise typer.Exit(2) from None


def json_value(v: Any) -> Any:
    from siemforge.backends.executor.values import to_text

    if isinstance(v, dict):
        return {k: json_value(x) for k, x in v.items()}
    if isinstance(v, list):
        return [json_value(x) for x in v]
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    return to_text(v)


@app.command()
def ir(
    rule: Annotated[Path, typer.Argument(help="a rule file, or a folder holding one")], sources: SourceDirs = None
) -> None:
    """Print the typed IR of a rule: what every backend reads."""
    from siemforge.compiler.irprint import format_rule

    result = _compile_or_exit(rule, sources)
    assert result.rule is not None
    out.print(format_rule(result.rule), markup=False, highlight=False)


@app.command()
def run(
    rule: Annotated[Path, typer.Argument(help="a rule file, or a folder holding one")],
    logs: Annotated[list[Path], typer.Argument(
        help="log files: NDJSON, JSON array, CloudTrail Records, .gz; Windows .evtx, evtx-JSON")],
    format: Annotated[
        RunFormat, typer.Option("--format", help="table or json (an array of row objects)")
    ] = RunFormat.table,
    now: Annotated[str | None, typer.Option(help="the time now() returns, ISO-8601 (default: the clock)")] = None,
    explain: Annotated[bool, typer.Option("--explain", help="show how many rows each stage kept")] = False,
    prefilter: Annotated[
        bool | None,
        typer.Option(
            "--prefilter/--no-prefilter",
            help="skip parsing NDJSON lines that hold none of the literals the first filter needs (default: on, "
            "except for Windows, auditd and Azure sources); --no-prefilter parses and checks every line",
            show_default=False,
        ),
    ] = None,
    binding: Annotated[
        str | None,
        typer.Option(
            help="the logs are rows of this physical shape (e.g. sentinel: "
            "AWSCloudTrail rows), read through the binding"
        ),
    ] = None,
    sources: SourceDirs = None,
) -> None:
    """Run a rule over log files with the native executor."""
    from siemforge.backends.executor.engine import run_rule

    result = _compile_or_exit(rule, sources)
    assert result.rule is not None
    missing = [p for p in logs if not p.exists()]
    for p in missing:
        err.print(f"{p}: error: no such file", style="bold red", markup=False)
    if missing:
        raise typer.Exit(2)
    shape = None
    if binding is not None:
        from siemforge.backends.executor.testing import find_binding

        shape = find_binding(result.rule, binding)
        if shape is None:
            err.print(f"error: this rule's source has no binding {binding!r}", style="bold red", markup=False)
            raise typer.Exit(2)
        for p in logs:  # a binding's rows are a table's; the event log itself would match nothing, silently
            kind = _event_log_kind(p)
            if kind is not None:
                err.print(f"{p}: error: --binding {binding} reads rows exported from its table, and this is an "
                          f"{kind} file: run it without --binding", style="bold red", markup=False)
                raise typer.Exit(2)
    try:
        with reading(wanted(format is RunFormat.json), sum(_size(p) for p in logs)) as meter:
            res = run_rule(result.rule, logs, _parse_now(now), prefilter=prefilter, binding=shape, meter=meter)
    except CompileError as exc:  # the executor cannot run this rule (a regex RE2 cannot run)
        print_diagnostics(exc.diagnostics)
        raise typer.Exit(1) from None
    for m in res.malformed[:20]:
        err.print(str(m), style="yellow", markup=False)
    if res.malformed_total > 20:
        err.print(f"… and {res.malformed_total - 20} more malformed lines", style="yellow")
    if res.malformed_total:
        err.print(f"{res.malformed_total} malformed line(s) skipped", style="yellow")
    if format is RunFormat.json:
        sys.stdout.write(orjson.dumps([json_value(r) for r in res.rows], option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        _print_rows(res.rows)
        decision = styled("ALERT", "bold red") if res.fired else styled("no alert", "green")
        thr = result.rule.alert.threshold
        out.print(
            f"{len(res.rows)} row(s) from {res.events_read} event(s):", decision,
            f"(alert when rows {thr.op.value} {thr.value})"
        )
    if explain:
        t = Table(title="explain: rows per stage", show_lines=False)
        t.add_column("#", justify="right")
        t.add_column("stage")
        t.add_column("in", justify="right")
        t.add_column("out", justify="right")
        t.add_column("dropped", justify="right")
        for i, s in enumerate(res.stats, 1):
            t.add_row(str(i), s.label, str(s.rows_in), str(s.rows_out), str(max(s.rows_in - s.rows_out, 0)))
        err.print(t)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _print_rows(rows: list[dict[str, Any]]) -> None:
    from siemforge.backends.executor.values import to_text

    if not rows:
        return
    cols: list[str] = []
    for r in rows:
        for k in r:
            if k not in cols:
                cols.append(k)
    if len(cols) > 12:  # raw events: show them as JSON lines
        for r in rows:
            out.print(orjson.dumps(json_value(r)).decode(), markup=False, highlight=False)
        return
    t = Table()
    for c in cols:
        t.add_column(cell(c), overflow="fold")
    for r in rows:
        t.add_row(*["" if r.get(c) is None else cell(str(to_text(json_value(r.get(c))))) for c in cols])
    out.print(t)


@app.command()
def test(
    paths: Annotated[list[Path] | None, typer.Argument(help="rule files or folders (default: rules/)")] = None,
    junit: Annotated[Path | None, typer.Option("--junit", help="write a JUnit XML report here")] = None,
    sources: SourceDirs = None,
) -> None:
    """Run every rule's tests: its fixtures through the executor, checked against its expectations."""
    from siemforge.backends.executor.testing import run_rule_tests
    from siemforge.compiler.api import discover_rules, rule_root

    from .junit import write_junit

    roots = paths or [Path("rules")]
    require_paths(roots)
    use_sources(sources, roots)
    files = discover_rules(roots)
    reports: list[RuleTestReport] = []
    with steps(wanted()) as progress:
        progress.step("testing rules", len(files))
        for f in files:
            rep = run_rule_tests(f, rule_root(f, roots))
            print_diagnostics(rep.diagnostics)
            reports.append(rep)
            progress.advance()
    table = Table(title="siemforge test")
    table.add_column("rule")
    table.add_column("test")
    table.add_column("result")
    table.add_column("detail", overflow="fold")
    passed = failed = 0
    broken = 0
    untested = 0
    for rep in reports:
        title = rep.compiled.rule.meta.title if rep.compiled.rule else str(rep.path)
        if rep.compiled.rule is None:
            broken += 1
            table.add_row(str(rep.path), "-", styled("ERROR", "bold red"), "does not compile (see above)")
            continue
        if not rep.outcomes:
            untested += 1
            table.add_row(title, "-", styled("NO TESTS", "yellow"), "")
        for o in rep.outcomes:
            if o.passed:
                passed += 1
            else:
                failed += 1
            for m in o.malformed[:5]:
                err.print(str(m), style="yellow", markup=False)
            table.add_row(title, o.name, styled("PASS", "green") if o.passed else styled("FAIL", "bold red"), o.detail)
    out.print(table)
    out.print(
        f"{len(files)} rule(s): {passed} passed, {failed} failed"
        + (f", {broken} rule(s) with errors" if broken else "")
        + (f", {untested} rule(s) without tests" if untested else "")
    )
    if junit is not None:
        write_junit(junit, reports)
        out.print(f"JUnit report: {junit}")
    if failed or broken or not files:
        if not files:
            err.print("error: no rule files found", style="bold red")
        raise typer.Exit(1)


@app.command(name="compile")
def compile_cmd(
    rules: RuleFiles,
    target: Annotated[list[str], typer.Option(
        "--target", "-t", help="target name, several (-t a,b or -t a -t b), or all (see `siemforge targets`)")],
    binding: Annotated[str | None, typer.Option(help="physical schema to compile against")] = None,
    dialect: Annotated[str | None, typer.Option(
        help="-t sql: duckdb (default), spark or trino; a dialect is the SQL target's binding")] = None,
    format: Annotated[
        OutFormat, typer.Option("--format", help="text, or json: [{id, title, target, binding, query}]")
    ] = OutFormat.text,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="write one file per rule into DIR")] = None,
    sources: SourceDirs = None,
) -> None:
    """Compile rules for a target (or `all`). A rule that fails is reported and the batch goes on."""
    from siemforge.compiler.api import discover_rules
    from siemforge.compiler.bindings import builtin_bindings
    from siemforge.compiler.cache import default_dir as default_cache_dir

    require_paths(rules)
    use_sources(sources, rules)
    wanted_targets = list(dict.fromkeys(n.strip() for t in target for n in t.split(",") if n.strip()))
    if dialect is not None:  # the SQL target's bindings are its dialects (backends/sql/__init__.py)
        if wanted_targets != ["sql"] or (binding is not None and binding != dialect):
            err.print("error: --dialect is for a single --target sql (and names its binding)", style="bold red",
                      markup=False)
            raise typer.Exit(2)
        binding = dialect
    for name in wanted_targets:
        if name != "all" and name not in targets():
            err.print(
                f"error: unknown target {name!r}; targets: all, {', '.join(sorted(targets()))}",
                style="bold red",
                markup=False,
            )
            raise typer.Exit(2)
    if "all" in wanted_targets or len(wanted_targets) > 1:
        selected = list(targets().values()) if "all" in wanted_targets else [targets()[n] for n in wanted_targets]
        if binding is not None:
            err.print("error: --binding needs a single --target", style="bold red", markup=False)
            raise typer.Exit(2)
    elif not wanted_targets:
        err.print("error: --target names no target", style="bold red", markup=False)
        raise typer.Exit(2)
    else:
        one = wanted_targets[0]
        tgt = targets()[one]
        names = [*tgt.bindings, *sorted({b.name for b in builtin_bindings().values()  # the user's, too
                                         if b.user and b.target == one and b.name not in tgt.bindings})]
        if binding is not None and binding not in names:
            err.print(
                f"error: target {one!r} has no binding {binding!r}; bindings: {', '.join(names)}",
                style="bold red",
                markup=False,
            )
            raise typer.Exit(2)
        selected = [tgt]
    require_paths(rules)
    from .batch import compile_batch

    items: list[dict[str, Any]] = []
    failures = 0
    written = 0
    refused = 0
    files = discover_rules(rules)
    with contextlib.ExitStack() as stack:
        outdir = stack.enter_context(writing_to(output)) if output is not None else None
        progress = stack.enter_context(steps(wanted(format is OutFormat.json and output is None)))
        progress.step("compiling rules", len(files))
        for res in compile_batch(files, tuple(t.name for t in selected), binding, default_cache_dir(), rules):
            progress.advance()
            print_diagnostics(res.diagnostics)
            failures += res.failures
            if outdir is None:
                items.extend(res.items)
                continue
            for it in res.items:  # written while later rules still compile
                sub = f"{it['target']}/" if len(selected) > 1 else ""
                try:
                    outdir.write(f"{sub}{slug(it['id'])}.{it['ext']}", it["query"] + "\n")
                except OutputError as exc:  # a file of the user's (or a duplicate id): this one, and the batch goes on
                    err.print(f"error: {it['file']}: {exc}", style="bold red", markup=False)
                    refused += 1
                    continue
                written += 1
    if outdir is not None:
        out.print(f"wrote {written} file(s) to {output}")
    elif format is OutFormat.json:
        keep = ("id", "title", "target", "binding", "query")
        sys.stdout.write(
            orjson.dumps([{k: it[k] for k in keep} for it in items], option=orjson.OPT_INDENT_2).decode() + "\n"
        )
    else:
        for it in items:
            out.print(f"// {it['title']} ({it['id']}) [{it['target']}] — {it['file']}", markup=False, highlight=False)
            out.print(it["query"], markup=False, highlight=False)
            out.print()
    if failures:
        err.print(f"{failures} rule(s) failed to compile", style="bold red")
    if refused:
        err.print(f"{refused} file(s) not written", style="bold red")
        raise typer.Exit(2)
    if failures:
        raise typer.Exit(1)


@app.command()
def validate(
    rules: RuleFiles,
    target: Annotated[str, typer.Option("--target", "-t", help="sentinel")] = "sentinel",
    binding: SentinelBinding = None,
    sources: SourceDirs = None,
) -> None:
    """Check compiled queries with the vendor's own analyser (sentinel: Microsoft's Kusto.Language)."""
    if target != "sentinel":
        err.print(
            f"error: validate supports --target sentinel (Kusto.Language); not {target!r}",
            style="bold red",
            markup=False,
        )
        raise typer.Exit(2)
    from siemforge.backends.kql.validate import check_queries

    tgt = targets()["sentinel"]
    results, failures = compiled_rules(rules, sources)
    done, refused = lowered(results, lambda rule: tgt.compile(rule, binding))
    failures += refused
    compiled = [(res.rule.meta.title, query, res.path) for res, query in done if res.rule is not None]
    lookups: list[LookupTable] = [t for res, _ in done if res.rule is not None for t in res.rule.lookups]
    try:
        checked = check_queries([(n, q) for n, q, _ in compiled], lookups)
    except CompileError as exc:
        print_diagnostics(exc.diagnostics)
        raise typer.Exit(2) from None
    bad = 0
    for (name, query, f), diags in zip(compiled, checked):
        errors = [d for d in diags if d.severity == "Error"]
        bad += bool(errors)
        for d in diags:
            line = query.splitlines()[d.line - 1] if d.line - 1 < len(query.splitlines()) else ""
            err.print(
                f"{f}: {name}: query {d.line}:{d.column}: {d.severity.lower()} {d.code}: {d.message}",
                style="bold red" if d.severity == "Error" else "yellow",
                markup=False,
                highlight=False,
            )
            err.print(f"    {line}\n    {' ' * (d.column - 1)}{'^' * max(d.length, 1)}", markup=False, highlight=False)
    out.print(
        f"{len(compiled)} queries checked with Kusto.Language: {len(compiled) - bad} clean, {bad} with errors"
        + (f"; {failures} rule(s) did not compile" if failures else "")
    )
    if bad or failures:
        raise typer.Exit(1)


@app.command()
def baseline(
    rule: Annotated[Path, typer.Argument(help="a rule with a `baselines:` section")],
    logs: Annotated[list[Path], typer.Argument(help="history logs to build the table from")],
    output: Annotated[Path, typer.Option("-o", "--output", help="the CSV to write (not overwritten if not ours)")],
    table: Annotated[str | None, typer.Option(help="which baseline table (default: the only one)")] = None,
    now: Annotated[str | None, typer.Option(help="the time now() returns, ISO-8601")] = None,
    sources: SourceDirs = None,
) -> None:
    """Build a rule's seen-before table from history logs with the executor (what Splunk's baselines compute)."""
    from siemforge.backends.executor.baseline import build_table, table_csv
    from siemforge.backends.executor.engine import default_now

    result = _compile_or_exit(rule, sources)
    assert result.rule is not None
    found = [b for b in result.rule.baselines if table in (None, b.table)]
    if not found:
        err.print(f"error: {rule} has no baseline{' ' + repr(table) if table else ''}", style="bold red", markup=False)
        raise typer.Exit(2)
    if len(found) > 1:
        err.print("error: several baselines: choose one with --table", style="bold red", markup=False)
        raise typer.Exit(2)
    missing = [p for p in logs if not p.exists()]
    if missing:
        err.print(f"{missing[0]}: error: no such file", style="bold red", markup=False)
        raise typer.Exit(2)
    from siemforge.backends.executor.reader import Malformed

    bad: list[Malformed] = []
    rows = build_table(found[0], logs, _parse_now(now) or default_now(), bad)
    for m in bad[:20]:
        err.print(str(m), style="yellow", markup=False)
    with writing_to(output.parent if str(output.parent) else Path(".")) as d:
        d.write(output.name, table_csv(found[0], rows))
    out.print(f"{len(rows)} row(s) of {found[0].table} written to {output}")


@app.command(name="targets")
def targets_cmd() -> None:
    """List the compilation targets and their bindings."""
    for t in targets().values():
        out.print(f"{t.name}: {t.description} (bindings: {', '.join(t.bindings)})", markup=False)


@app.command()
def version() -> None:
    """Print the version."""
    out.print(__version__)


def _register_export() -> None:
    from .export import export_app

    app.add_typer(export_app, name="export")


_register_export()
app.command(name="coverage")(coverage_cmd)


def _register_import() -> None:
    from .importcmd import import_app, translate

    app.add_typer(import_app, name="import")
    app.command(name="translate")(translate)


_register_import()
app.command(name="build")(build_command)


def _register_hunt() -> None:
    from .hunt import hunt

    app.command()(hunt)


_register_hunt()


def _register_tools() -> None:  # the rule author's tools: a formatter and a language server
    from .fmt import fmt

    app.command()(fmt)
    app.command()(lsp)


def lsp() -> None:
    """Run the language server for rule files over stdio: diagnostics, hover, completion (docs/editor.md)."""
    from .lsp import serve  # pygls loads only for this command

    serve()


_register_tools()


def _app_for(args: list[str]) -> typer.Typer:
    """The app to run for these arguments: when they name one of the top-level commands (after the app's own
    --debug), a copy of the app that holds only that command, since typer builds the parameters of every command it
    holds before running one (~0.03 s of start-up); else the whole app (--help, a command group, a typo)."""
    rest = list(args)
    while rest and rest[0] == "--debug":
        rest.pop(0)
    if rest:
        for info in app.registered_commands:
            if info.callback is not None and rest[0] == (info.name or info.callback.__name__.lower().replace("_", "-")):
                only = copy.copy(app)
                only.registered_commands = [info]
                only.registered_groups = []
                return only
    return app


def main() -> None:
    try:
        _app_for(sys.argv[1:])()
    except KeyboardInterrupt:
        err.print("interrupted", style="yellow")
        sys.exit(130)
    except Exception as exc:  # the user sees a traceback only when asking for it
        err.print(f"internal error: {type(exc).__name__}: {exc}", style="bold red", markup=False)
        if _debug:
            sys.stderr.write(traceback.format_exc())
            err.print("this is a siemforge bug; please report it with the rule that caused it and this traceback",
                      markup=False)
        else:
            err.print("this is a siemforge bug; please report it with the rule that caused it (run with --debug, "
                      "or SIEMFORGE_DEBUG=1, to see the traceback)", markup=False)
        sys.exit(70)


if __name__ == "__main__":
    main()
