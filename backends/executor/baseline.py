"""Building a rule's seen-before table from logs with the executor, as Splunk's baseline searches do.

Times are written as epoch seconds, as Splunk's `outputlookup` of `_time` writes them."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from siemforge.compiler import ir

from .engine import run_pipeline
from .reader import Malformed, iter_events
from .values import EPOCH, to_text


def build_table(baseline: ir.Baseline, logs: list[Path], now: datetime,
                report: list[Malformed] | None = None) -> list[dict[str, Any]]:
    def events() -> Iterator[dict[str, Any]]:
        for p in logs:
            yield from iter_events(p, (report if report is not None else []).append)

    rows, _ = run_pipeline(baseline.initial, events(), now, {})
    return list(rows)


def table_csv(baseline: ir.Baseline, rows: list[dict[str, Any]]) -> str:
    columns = [c for c, _ in baseline.initial.columns or ()]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for r in rows:
        writer.writerow([_cell(r.get(c)) for c in columns])
    return buf.getvalue()


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, datetime):
        return str(int((v - EPOCH).total_seconds()))
    return to_text(v) or ""
