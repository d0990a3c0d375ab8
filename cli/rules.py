"""The rules named on the command line, compiled and lowered: the steps `compile`, `validate` and every `export`
share. A rule that fails is reported (in its file) and counted, and the batch goes on without it."""

from __future__ import annotations

from collections.abc import Callable
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


def require_paths(paths: list[Path]) -> None:
    """A rule file or folder named on the command line that does not exist is a usage error (exit 2)."""
    for p in paths:
        if not p.exists():
            err.print(f"{p}: error: no such file or folder", style="bold red", markup=False)
            raise typer.Exit(2)


def compiled_rules(paths: list[Path]) -> tuple[list[CompileResult], int]:
    """The rules under `paths` that compile (every diagnostic printed), and how many did not."""
    from siemforge.compiler.api import compile_rules, discover_rules, rule_root

    require_paths(paths)
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


def lowered(results: list[CompileResult], lower: Callable[[ir.RuleIR], T]) -> tuple[list[tuple[CompileResult, T]], int]:
    """Each compiled rule with what `lower` made of it (a query, an artifact), and how many `lower` refused: a
    refusal's diagnostics are printed, naming the rule's file when they carry no position of their own."""
    done: list[tuple[CompileResult, T]] = []
    failures = 0
    for res in results:
        assert res.rule is not None
        try:
            done.append((res, lower(res.rule)))
        except CompileError as exc:
            print_diagnostics([d.in_file(res.path) for d in exc.diagnostics])
            failures += 1
    return done, failures
