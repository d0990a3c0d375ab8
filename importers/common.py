"""What every importer returns: one outcome per input rule, imported (files written) or refused (why, where); and
the error of an input that stops the whole import (a macros file that cannot be read)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal


@dataclass(frozen=True, slots=True)
class ImportOutcome:
    origin: Path                 # the input file
    name: str                    # the input rule's name/title
    status: Literal["imported", "refused"]
    reason: str | None           # why refused (the construct), None when imported
    line: int | None             # 1-based position of the refusing construct in `origin`, when known
    column: int | None
    written: tuple[Path, ...]    # rule files (and fixtures/lookups) written
    notes: tuple[str, ...] = ()  # an imported rule's other targets that cannot say it (target: why)


def formatted(text: str, file: str) -> str:
    """An imported rule's text in `siemforge fmt`'s canonical layout (issue 14: imported rules go through it). A text
    the formatter will not touch is kept as written: it is checked by compiling it either way."""
    from siemforge.compiler.fmt import FormatError, format_text

    try:
        return format_text(text, file)
    except FormatError:
        return text


class InputFileError(Exception):
    """An input file the whole import needs and cannot read: the file, and the line and column where there is one."""

    def __init__(self, file: Path, line: int | None, column: int | None, message: str) -> None:
        super().__init__(message)
        self.file, self.line, self.column, self.message = file, line, column, message

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line is not None else str(self.file)
        return f"{where}: error: {self.message}"
