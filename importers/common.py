"""What every importer returns: one outcome per input rule (the report of `siemforge import` lists them)."""

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
