"""Errors are values: every problem the compiler finds is a Diagnostic with a position.

Library code never prints and never exits; it returns or raises diagnostics, and the CLI renders them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Severity(enum.Enum):
    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"


@dataclass(frozen=True, slots=True)
class Span:
    """A position in a source file: 1-based line and column, with an optional end on the same line."""

    file: str
    line: int
    column: int
    end_column: int | None = None

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    severity: Severity
    message: str
    span: Span | None = None
    hint: str | None = None
    code: str = ""

    def __str__(self) -> str:
        """`file:line:column: error: message  [code]`, as mypy shows its codes."""
        where = f"{self.span}: " if self.span else ""
        code = f"  [{self.code}]" if self.code else ""
        return f"{where}{self.severity.value}: {self.message}{code}"

    def in_file(self, path: object) -> Diagnostic:
        """This diagnostic, naming `path` when it has no position of its own (a backend's refusal of a rule)."""
        return self if self.span else Diagnostic(self.severity, f"{path}: {self.message}", None, self.hint, self.code)


class CompileError(Exception):
    """Raised to abandon one rule; carries every diagnostic found so far (at least one error)."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = diagnostics
        super().__init__("; ".join(str(d) for d in diagnostics))


@dataclass(slots=True)
class DiagnosticSink:
    """Collects diagnostics for one compilation unit."""

    items: list[Diagnostic] = field(default_factory=list)

    def error(self, message: str, span: Span | None = None, hint: str | None = None, code: str = "") -> None:
        self.items.append(Diagnostic(Severity.ERROR, message, span, hint, code))

    def warning(self, message: str, span: Span | None = None, hint: str | None = None, code: str = "") -> None:
        self.items.append(Diagnostic(Severity.WARNING, message, span, hint, code))

    def note(self, message: str, span: Span | None = None, hint: str | None = None, code: str = "") -> None:
        self.items.append(Diagnostic(Severity.NOTE, message, span, hint, code))

    @property
    def has_errors(self) -> bool:
        return any(d.severity is Severity.ERROR for d in self.items)

    def raise_if_errors(self) -> None:
        if self.has_errors:
            raise CompileError(list(self.items))


def error(message: str, span: Span | None = None, hint: str | None = None, code: str = "") -> CompileError:
    """Build a CompileError holding a single error diagnostic (for `raise error(...)`)."""
    return CompileError([Diagnostic(Severity.ERROR, message, span, hint, code)])


SHOWN_LINE_CHARS = 160  # of a source line under a diagnostic; a longer line is cut around the caret


def render(diag: Diagnostic, source_lines: list[str] | None = None) -> str:
    """Render a diagnostic as text: `file:line:col: error: message`, the source line, and a caret."""
    out = [str(diag)]
    if diag.span and source_lines and 1 <= diag.span.line <= len(source_lines):
        text = source_lines[diag.span.line - 1].rstrip("\n")
        column = diag.span.column
        width = 1
        if diag.span.end_column and diag.span.end_column > diag.span.column:
            width = diag.span.end_column - diag.span.column
        if len(text) > SHOWN_LINE_CHARS:  # a long line (a hostile rule's 60 kB value): the part around the caret
            start = max(0, min(column - 1 - SHOWN_LINE_CHARS // 3, len(text) - SHOWN_LINE_CHARS))
            shown = text[start:start + SHOWN_LINE_CHARS]
            text = ("…" if start else "") + shown + ("…" if start + SHOWN_LINE_CHARS < len(text) else "")
            column = column - start + (1 if start else 0)
            width = max(1, min(width, len(text) - column + 1))
        out.append(f"  {diag.span.line:>4} | {text}")
        pad = "".join(ch if ch == "\t" else " " for ch in text[: column - 1])
        out.append(f"       | {pad}{'^' * width}")
    if diag.hint:
        out.append(f"  hint: {diag.hint}")
    return "\n".join(out)
