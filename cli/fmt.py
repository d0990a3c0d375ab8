"""`siemforge fmt [--check] PATHS…`: rewrite rule files in their canonical layout (compiler/fmt.py).

A file is replaced atomically (a temporary file beside it, renamed over it), keeping its permissions, and only when
its text changes; a file that cannot be read or formatted is reported with its position and left as it is.
Exit codes: 0 nothing to do (or done); 1 `--check` found files to reformat; 2 a file could not be read or formatted.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from siemforge.compiler.diagnostics import CompileError, Diagnostic, Severity, Span
from siemforge.compiler.rule import read_rule_bytes

from .console import err, out, print_diagnostics
from .rules import require_paths


def write_atomically(path: Path, text: str) -> None:
    """Replace `path`'s content with `text` all at once: a reader (or a crash) sees the old file or the new one,
    never half of one. The file keeps its permission bits; a symlink's target is what is replaced. A read-only file
    (no write bit, or not writable by us) is refused with PermissionError, as writing it in place would be."""
    real = path.resolve()
    mode = stat.S_IMODE(real.stat().st_mode)
    if not mode & 0o222 or not os.access(real, os.W_OK):  # renaming over it would bypass its protection (even root's)
        raise PermissionError(errno.EACCES, "read-only file", str(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{real.name}.", suffix=".fmt", dir=real.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(text.encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, real)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def formatted(path: Path) -> tuple[str, str]:
    """A rule file's text and its canonical form; raises FormatError."""
    from siemforge.compiler.fmt import FormatError, format_text

    try:
        text = read_rule_bytes(path).decode("utf-8")
    except CompileError as exc:
        raise FormatError(exc.diagnostics) from None
    except UnicodeDecodeError as exc:
        raise FormatError([Diagnostic(Severity.ERROR, f"not UTF-8 text: {exc.reason}", Span(str(path), 1, 1),
                                      code="rule")]) from None
    return text, format_text(text, str(path))


def fmt(
    paths: Annotated[list[Path] | None, typer.Argument(help="rule files or folders (default: rules/)")] = None,
    check: Annotated[
        bool, typer.Option("--check", help="write nothing; list the files that would change and exit 1 if any")
    ] = False,
) -> None:
    """Format rule files: Sigma's key order, the pipeline one stage per line, stable quoting; comments kept."""
    from siemforge.compiler.api import discover_rules
    from siemforge.compiler.fmt import FormatError  # ruamel.yaml loads only for this command

    roots = paths or [Path("rules")]
    require_paths(roots)
    files = discover_rules(roots)
    changed = unchanged = failed = 0
    for f in files:
        try:
            text, result = formatted(f)
        except FormatError as exc:
            print_diagnostics(exc.diagnostics)
            failed += 1
            continue
        if result == text:
            unchanged += 1
            continue
        changed += 1
        if check:
            out.print(f"would reformat {f}", markup=False, highlight=False)
            continue
        try:
            write_atomically(f, result)
        except OSError as exc:
            err.print(f"{f}: error: cannot write: {exc.strerror or exc}", style="bold red", markup=False)
            changed -= 1
            failed += 1
    verb = "would be reformatted" if check else "reformatted"
    summary = f"{changed} file(s) {verb}, {unchanged} unchanged"
    if failed:
        summary += f", {failed} could not be formatted"
    (err if failed else out).print(summary, markup=False, highlight=False)
    if failed:
        raise typer.Exit(2)
    if check and changed:
        raise typer.Exit(1)
