"""The rules named on the command line, compiled and lowered: the steps `compile`, `validate` and every `export`
share. A rule that fails is reported (in its file) and counted, and the batch goes on without it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from siemforge.compiler.diagnostics import CompileError

from .console import err, print_diagnostics

if TYPE_CHECKING:
    from siemforge.compiler import ir
    from siemforge.compiler.api import CompileResult

T = TypeVar("T")

# the parameters the commands that take a batch of rules share
RuleFiles = Annotated[list[Path], typer.Argument(help="rule files or folders")]
SentinelBinding = Annotated[str | None, typer.Option(help="table binding")]
SplunkBinding = Annotated[str | None, typer.Option(help="Splunk binding (default: each source's default)")]
SourceDirs = Annotated[list[Path] | None, typer.Option(
    "--sources", metavar="DIR", help="a folder of your own sources (*.yml) and bindings (bindings/*.yml); "
    "repeatable. A sources/ folder beside your rules is read without it", show_default=False)]


def use_sources(extra: list[Path] | None, rule_paths: Sequence[Path]) -> None:
    """Make the user's sources and bindings part of this command: the `--sources` folders, and the `sources/` folders
    beside the rules named (compiler.api.source_folders). A missing folder is a usage error; a bad source or binding
    file is reported at its line and column, and nothing is compiled (exit 2)."""
    from siemforge.compiler.api import discover_rules, source_folders
    from siemforge.compiler.sources import use_source_dirs

    found: list[Path] = []
    for d in extra or ():
        if not d.is_dir():
            what = "not a folder (name the folder that holds your sources)" if d.exists() else "no such folder"
            err.print(f"{d}: error: --sources: {what}", style="bold red", markup=False)
            raise typer.Exit(2)
        found.append(d)
    seen: set[Path] = set()
    for f in discover_rules([p for p in rule_paths if p.exists()]):
        parent = f.parent
        if parent in seen:  # rules of one folder share their sources folders
            continue
        seen.add(parent)
        found.extend(_shown(d) for d in source_folders(f, rule_paths))
    try:
        use_source_dirs(found)
    except CompileError as exc:
        print_diagnostics(exc.diagnostics)
        raise typer.Exit(2) from None


def require_paths(paths: list[Path]) -> None:
    """A rule file or folder named on the command line that does not exist, or a folder with no rule file in it, is
    a usage error (exit 2): every rule command says so the same way."""
    from siemforge.compiler.api import discover_rules

    for p in paths:
        if not p.exists():
            err.print(f"{p}: error: no such file or folder", style="bold red", markup=False)
            raise typer.Exit(2)
        if p.is_dir() and not discover_rules([p]):
            err.print(f"{p}: error: a folder with no rule files (.yml, .yaml)", style="bold red", markup=False)
            raise typer.Exit(2)


def _shown(folder: Path) -> Path:
    """A folder as messages name it: relative to the working directory when inside it."""
    try:
        return folder.relative_to(Path.cwd())
    except ValueError:
        return folder


def compiled_rules(paths: list[Path], sources: list[Path] | None = None) -> tuple[list[CompileResult], int]:
    """The rules under `paths` that compile (every diagnostic printed), and how many did not. `sources`: the
    `--sources` folders (use_sources)."""
    from siemforge.compiler.api import compile_rules, discover_rules, rule_root

    require_paths(paths)
    use_sources(sources, paths)
    good: list[CompileResult] = []
    failures = 0
    for f in discover_rules(paths):
        for res in compile_rules(f, root=rule_root(f, paths)):
            print_diagnostics(res.diagnostics)
            if res.rule is None:
                failures += 1
                continue
            good.append(res)
    return good, failures


def lowered(results: list[CompileResult], lower: Callable[[ir.RuleIR], T],
            on_refusal: Callable[[CompileResult, CompileError], None] | None = None
            ) -> tuple[list[tuple[CompileResult, T]], int]:
    """Each compiled rule with what `lower` made of it (a query, an artifact), and how many `lower` refused: a
    refusal's diagnostics are printed, naming the rule's file when they carry no position of their own (or given to
    `on_refusal`, which then reports them)."""
    done: list[tuple[CompileResult, T]] = []
    failures = 0
    for res in results:
        assert res.rule is not None
        try:
            done.append((res, lower(res.rule)))
        except CompileError as exc:
            if on_refusal is not None:
                on_refusal(res, exc)
            else:
                print_diagnostics([d.in_file(res.path) for d in exc.diagnostics])
            failures += 1
    return done, failures
