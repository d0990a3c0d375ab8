"""The CLI's two consoles (results on stdout, diagnostics on stderr) and the printing helpers every command shares.

Both consoles are made by `make_console`, the one place that says how siemforge's terminal output is set up.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from siemforge.compiler.diagnostics import Diagnostic, Severity, render


def make_console(stderr: bool = False) -> Console:
    return Console(stderr=stderr, soft_wrap=True)


out = make_console()
err = make_console(stderr=True)


def _source_lines(path: Path) -> list[str] | None:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None


def print_diagnostics(diags: list[Diagnostic], show_notes: bool = False) -> None:
    cache: dict[str, list[str] | None] = {}
    for d in diags:
        if d.severity is Severity.NOTE and not show_notes:
            continue
        lines = None
        if d.span is not None:
            if d.span.file not in cache:
                cache[d.span.file] = _source_lines(Path(d.span.file))
            lines = cache[d.span.file]
        style = {"error": "bold red", "warning": "yellow", "note": "cyan"}[d.severity.value]
        text = render(d, lines)
        first, _, rest = text.partition("\n")
        err.print(first, style=style, markup=False, highlight=False)
        if rest:
            err.print(rest, markup=False, highlight=False)
