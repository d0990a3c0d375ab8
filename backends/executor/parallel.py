"""Running a rule over large NDJSON files on every core: each process reads a byte range of the files, runs the
streaming stages (filter, extend, rename, project, lookup) and a partial aggregation, and the parent merges the
partial aggregates in file order and runs the remaining stages. The result is the sequential run's, row for row
and in the same order; malformed lines keep their file line numbers.

Used when the pipeline has that shape, every log is plain NDJSON and there is enough data to be worth it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from siemforge.compiler import ir
from siemforge.compiler.sources import builtin_sources

from .compile import Context
from .engine import Engine, RunResult, StageStat, stage_label, threshold_met
from .prefilter import line_prefilter
from .reader import _BOM, _RECORDS_DOC, MAX_LINE_BYTES, Meter, Reports, iter_range_events

STREAMING = (ir.Filter, ir.Extend, ir.Rename, ir.Project, ir.Lookup)
MIN_BYTES = 16 * 1024 * 1024  # below this, starting processes costs more than it saves
BLOCK = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Plan:
    prefix: tuple[ir.Stage, ...]
    aggregate: ir.Aggregate | None
    rest: tuple[ir.Stage, ...]


def plan(pipeline: ir.Pipeline) -> Plan | None:
    if pipeline.source.view is not None or ir.has_join(pipeline):  # a join reads every event a second time
        return None
    prefix: list[ir.Stage] = []
    for i, st in enumerate(pipeline.stages):
        if isinstance(st, STREAMING):
            prefix.append(st)
        elif isinstance(st, ir.Aggregate):
            return Plan(tuple(prefix), st, pipeline.stages[i + 1:])
        else:
            return None
    return Plan(tuple(prefix), None, ())


def plain_ndjson(path: Path) -> bool:
    """Line-oriented JSON we can split at newlines: not gzip, not one array or {"Records"} document."""
    try:
        with path.open("rb") as fh:
            head = fh.read(2)
            if head == b"\x1f\x8b":
                return False
            fh.seek(0)
            first = fh.readline(MAX_LINE_BYTES + 1)
    except OSError:
        return False
    if first.startswith(_BOM) or not first.lstrip().startswith(b"{") or _RECORDS_DOC.match(first):
        return False
    try:
        doc = orjson.loads(first)
    except orjson.JSONDecodeError:
        return False
    return isinstance(doc, dict) and not ("Records" in doc and "eventName" not in doc)


def cuts(path: Path, parts: int) -> list[tuple[int, int]]:
    """(start, end) of `parts` byte ranges that begin at line starts (empty ones left out)."""
    size = path.stat().st_size
    at = [0]
    with path.open("rb") as fh:
        for k in range(1, parts):
            fh.seek(max(size * k // parts, at[-1]))
            while True:  # to the start of the next line, in blocks (a line may be longer than memory allows)
                block = fh.readline(BLOCK)
                if not block or block.endswith(b"\n"):
                    break
            at.append(min(fh.tell(), size))
    at.append(size)
    return [(a, b) for a, b in zip(at, at[1:]) if b > a]


def lines_before(path: Path, starts: list[int]) -> list[int]:
    """The number of lines before each of the (ascending) byte offsets, counted in blocks."""
    out: list[int] = []
    n = pos = 0
    with path.open("rb") as fh:
        for a in starts:
            while pos < a:
                chunk = fh.read(min(BLOCK, a - pos))
                if not chunk:
                    break
                n += chunk.count(b"\n")
                pos += len(chunk)
            out.append(n)
    return out


def split(path: Path, parts: int) -> list[tuple[int, int, int]]:
    """(start, end, lines before start) for `parts` ranges that begin at line starts."""
    ranges = cuts(path, parts)
    return [(a, b, n) for (a, b), n in zip(ranges, lines_before(path, [a for a, _ in ranges]))]


def _context(rule: ir.RuleIR, now: datetime) -> Context:
    src = rule.pipeline.source
    sdef = builtin_sources().get(src.name)
    return Context(now, src.time_column, sdef.time_from if sdef is not None else None)


def _work(job: tuple[ir.RuleIR, str, int, int, int, datetime, dict[str, Path], bool]) -> dict[str, Any]:
    rule, path, start, end, first_line, now, overrides, prefilter = job
    p = plan(rule.pipeline)
    assert p is not None
    malformed = Reports()
    skipped = [0]
    events = 0
    keep = line_prefilter(rule.pipeline) if prefilter else None

    def rows() -> Iterator[dict[str, Any]]:
        nonlocal events
        for ev in iter_range_events(Path(path), start, end, first_line, malformed, keep, skipped):
            events += 1
            yield ev

    engine = Engine(_context(rule, now), overrides)
    stats: list[StageStat] = []
    out = engine.run_stages(p.prefix, rows(), stats)
    result: dict[str, Any] = {}
    if p.aggregate is not None:
        groups = engine.partial_aggregate(p.aggregate, out)
        result["groups"] = [(k, keyvals, [a.state() for a in aggs]) for k, (keyvals, aggs) in groups.items()]
    else:
        result["rows"] = list(out)
    result.update(events=events + skipped[0], malformed=malformed.kept, malformed_total=malformed.total,
                  stats=[s.rows_out for s in stats])
    return result


def run_parallel(rule: ir.RuleIR, logs: list[Path], now: datetime, overrides: dict[str, Path], prefilter: bool,
                 workers: int | None = None, min_bytes: int = MIN_BYTES, meter: Meter | None = None
                 ) -> RunResult | None:
    """The run split over processes, or None when this rule or these files should run sequentially. `meter` is told
    each byte range's bytes and events as its process finishes."""
    p = plan(rule.pipeline)
    workers = workers or os.cpu_count() or 1
    if p is None or workers < 2 or not logs or not all(plain_ndjson(f) for f in logs):
        return None
    if sum(f.stat().st_size for f in logs) < min_bytes:
        return None
    # A range after the first numbers its lines from 2 (its first line is not the file's first, which the reader
    # treats apart); its reports are renumbered below, counting the lines before it only when it has any (the count
    # is a pass over the file before the range, which would otherwise run alone before the workers start).
    jobs = [(rule, str(f), a, b, 0 if a == 0 else 1, now, overrides, prefilter)
            for f in logs for a, b in cuts(f, workers)]
    import multiprocessing  # here, not at the top: a run over small files never starts a process (~0.01 s)
    from concurrent.futures import ProcessPoolExecutor

    ctx = multiprocessing.get_context("fork") if "fork" in multiprocessing.get_all_start_methods() else None
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        results = []
        for job, r in zip(jobs, pool.map(_work, jobs)):  # in file and range order
            results.append(r)
            if meter is not None:
                meter(job[3] - job[2], r["events"])
    engine = Engine(_context(rule, now), overrides)
    stats = [StageStat(stage_label(st)) for st in p.prefix]
    for r in results:
        for s, n in zip(stats, r["stats"]):
            s.rows_out += n
    rows: list[dict[str, Any]]
    if p.aggregate is not None:
        merged: dict[Any, Any] = {}
        for r in results:
            for key, keyvals, states in r["groups"]:
                g = merged.get(key)
                if g is None:
                    g = merged[key] = (keyvals, engine.new_aggs(p.aggregate))
                for agg, state in zip(g[1], states):
                    agg.merge(state)
        agg_stat = StageStat(stage_label(p.aggregate))
        rows = list(engine.finish_aggregate(p.aggregate, merged))
        agg_stat.rows_out = len(rows)
        stats.append(agg_stat)
        rows = list(engine.run_stages(p.rest, rows, stats))
    else:
        rows = [row for r in results for row in r["rows"]]
    events = sum(r["events"] for r in results)
    previous = events
    for s in stats:
        s.rows_in, previous = previous, s.rows_out
    reports = Reports()
    for job, r in zip(jobs, results):
        kept = r["malformed"]
        if job[2] > 0 and any(m.line > 0 for m in kept):
            shift = lines_before(Path(job[1]), [job[2]])[0] - 1
            kept = [replace(m, line=m.line + shift) if m.line > 0 else m for m in kept]
        reports.merge(kept, r["malformed_total"])
    return RunResult(rows, threshold_met(rule.alert.threshold, len(rows)), stats, reports.kept, events, reports.total)
