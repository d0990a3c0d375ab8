"""`siemforge import sentinel|splunk` and `siemforge translate`: vendor detections in, rules (or the other SIEM's
query) out. Exit codes: 0 every input rule imported; 1 some rule was refused (the others are still written);
2 bad usage or input (a missing path, an output folder that cannot be used)."""

from __future__ import annotations

import importlib
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from enum import Enum
from pathlib import Path
from typing import Annotated, cast

import orjson
import typer
from rich.table import Table
from rich.text import Text

from siemforge.importers.common import ImportOutcome

from .console import cell, err, out

import_app = typer.Typer(
    no_args_is_help=True,
    help="Import existing detections (Sentinel KQL, Splunk SPL) as siemforge rules: each imported exactly or refused.",
)


class ReportFormat(str, Enum):
    table = "table"
    json = "json"


class Target(str, Enum):
    splunk = "splunk"
    sentinel = "sentinel"


Inputs = Annotated[list[Path], typer.Argument(help="rule files or folders")]
OutDir = Annotated[Path, typer.Option("-o", "--output", help="folder to write the rules into (one folder per rule)")]
Format = Annotated[ReportFormat, typer.Option("--format", help="table, or json: one object per input rule")]


def _require(paths: Sequence[Path]) -> None:
    for p in paths:
        if not p.exists():
            err.print(f"{p}: error: no such file or folder", style="bold red", markup=False)
            raise typer.Exit(2)


def _run(importer: Callable[[], list[ImportOutcome]], output: Path | None = None) -> list[ImportOutcome]:
    from siemforge.importers.common import InputFileError

    from .outputs import OutputError

    made = output is not None and not output.exists()
    try:
        found = importer()
        if not found and made and output is not None and output.is_dir() and not any(output.iterdir()):
            output.rmdir()  # nothing to import: leave no empty folder behind
        return found
    except OutputError as exc:
        err.print(f"error: {exc}", style="bold red", markup=False)
        raise typer.Exit(2) from None
    except InputFileError as exc:
        err.print(str(exc), style="bold red", markup=False)
        raise typer.Exit(2) from None


def _position(o: ImportOutcome) -> str:
    return f"{o.origin}:{o.line}:{o.column}" if o.line is not None else str(o.origin)


def report(outcomes: list[ImportOutcome], fmt: ReportFormat, paths: Sequence[Path] = ()) -> None:
    """Every input rule: imported (the files written) or refused (the construct and where it is). Inputs with no
    detection in them at all are a usage error (exit 2), as a folder with no rule files is for the rule commands."""
    if not outcomes:
        err.print(f"{', '.join(map(str, paths))}: error: no detections found to import", style="bold red",
                  markup=False)
        raise typer.Exit(2)
    if fmt is ReportFormat.json:
        items = [{"origin": str(o.origin), "name": o.name, "status": o.status, "reason": o.reason, "line": o.line,
                  "column": o.column, "written": [str(p) for p in o.written], "notes": list(o.notes)}
                 for o in outcomes]
        sys.stdout.write(orjson.dumps(items, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        table = Table(show_lines=False)
        for col in ("rule", "status", "where", "reason / written"):
            table.add_column(col, overflow="fold")
        for o in outcomes:
            ok = o.status == "imported"
            detail = ", ".join(str(p) for p in o.written) if ok else o.reason or ""
            if o.notes:
                detail += "".join(f"; no {n.split(':', 1)[0]} query: {n.split(':', 1)[1].strip()}" for n in o.notes)
            table.add_row(cell(o.name), Text(o.status, style="green" if ok else "red"), cell(_position(o)),
                          cell(detail))
        out.print(table)
    imported = sum(o.status == "imported" for o in outcomes)
    err.print(f"{imported} of {len(outcomes)} rule(s) imported, {len(outcomes) - imported} refused", markup=False)
    reasons = Counter(o.reason or "" for o in outcomes if o.status == "refused")
    if fmt is ReportFormat.table and len(reasons) > 1:
        for reason, n in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])):
            err.print(f"  {n} × {reason}", markup=False, highlight=False)
    if imported < len(outcomes):
        raise typer.Exit(1)


@import_app.command()
def sentinel(paths: Inputs, output: OutDir, format: Format = ReportFormat.table) -> None:
    """Azure-Sentinel analytic rules and hunting queries (YAML) and ARM templates (alertRules) → rule files."""
    from siemforge.importers.sentinel import import_sentinel

    _require(paths)
    report(_run(lambda: import_sentinel(paths, output), output), format, paths)


@import_app.command()
def splunk(
    paths: Inputs,
    output: OutDir,
    macros: Annotated[Path | None, typer.Option(help="ESCU macros YAML or macros.conf: a file or a folder")] = None,
    format: Format = ReportFormat.table,
) -> None:
    """ESCU detection YAML and savedsearches.conf stanzas → rule files."""
    _require([*paths, *([macros] if macros else [])])
    import_splunk = _splunk_importer()
    report(_run(lambda: import_splunk(paths, output, [macros] if macros else []), output), format, paths)


def _splunk_importer() -> Callable[[Sequence[Path], Path, Sequence[Path]], list[ImportOutcome]]:
    try:  # imported by name: the Splunk importer is its own module, and may be absent from this build
        module = importlib.import_module("siemforge.importers.splunk")
    except ModuleNotFoundError:
        module = None
    fn = getattr(module, "import_splunk", None)
    if fn is None:
        err.print("error: this siemforge has no Splunk importer (siemforge.importers.splunk.import_splunk)",
                  style="bold red", markup=False)
        raise typer.Exit(2)
    return cast(Callable[[Sequence[Path], Path, Sequence[Path]], list[ImportOutcome]], fn)


def _looks_splunk(path: Path) -> bool:
    if path.suffix == ".conf":
        return True
    try:
        head = path.read_text(encoding="utf-8", errors="replace")[:20000]
    except OSError:
        return False
    return any(line.startswith("search:") for line in head.splitlines())


def translate(
    file: Annotated[Path, typer.Argument(help="a Sentinel rule (YAML, ARM template) or a Splunk search (ESCU YAML, "
                                              "savedsearches.conf)")],
    to: Annotated[Target, typer.Option("--to", help="the target whose query to print")],
    macros: Annotated[Path | None, typer.Option(help="Splunk macros (ESCU YAML or macros.conf), file or folder")]
    = None,
) -> None:
    """Import a rule and compile it for another SIEM, printing the query (import, then compile, in one step)."""
    from siemforge.backends.registry import targets
    from siemforge.compiler.api import compile_file
    from siemforge.compiler.diagnostics import CompileError

    from .console import print_diagnostics

    _require([file, *([macros] if macros else [])])
    with tempfile.TemporaryDirectory(prefix="siemforge-translate-") as tmp:
        outdir = Path(tmp) / "rules"
        if _looks_splunk(file):
            import_splunk = _splunk_importer()
            outcomes = _run(lambda: import_splunk([file], outdir, [macros] if macros else []))
        else:
            from siemforge.importers.sentinel import import_sentinel

            outcomes = _run(lambda: import_sentinel([file], outdir))
        if not outcomes:  # nothing in it to import: said, as `import` says it (it printed nothing, exit 0)
            err.print(f"{file}: error: no detections found to translate", style="bold red", markup=False)
            raise typer.Exit(2)
        failed = False
        for o in outcomes:
            if o.status == "refused":
                failed = True
                named = "" if o.name == Path(o.origin).name else f"{o.name}: "  # a file read as no rule: its name
                err.print(f"{_position(o)}: error: {named}not translated: {o.reason}", style="bold red",
                          markup=False)
                continue
            for path in o.written:
                if path.suffix not in (".yml", ".yaml"):
                    continue
                res = compile_file(path)
                print_diagnostics(res.diagnostics)
                if res.rule is None:
                    failed = True
                    continue
                try:
                    query = targets()[to.value].compile(res.rule, None)
                except CompileError as exc:  # said of the user's file: the imported rule lived in a temporary one
                    failed = True
                    for d in exc.diagnostics:
                        why = d.message.removeprefix(f"{o.name}: ")
                        err.print(f"{o.origin}: error: no {to.value} query for {o.name}: {why}",
                                  style="bold red", markup=False, highlight=False)
                    continue
                if len(outcomes) > 1:
                    out.print(f"// {o.name}", markup=False, highlight=False)
                out.print(query, markup=False, highlight=False)
    if failed:
        raise typer.Exit(1)
