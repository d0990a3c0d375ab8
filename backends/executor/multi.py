"""Many rules over the same logs in one pass (`siemforge hunt`): each event is parsed once and pushed to every rule
that can match it. Each rule's rows are those `engine.run_rule` gives it alone (tests/test_hunt.py checks it on the
real logs).

A rule runs in the pass when its pipeline is a streaming prefix (filter, extend, rename, project, lookup) and at most
one aggregate followed by any stages (parallel.plan), over a source without `records:` selectors: the prefix runs row
by row (Engine.row_step), the aggregate's groups fill as events arrive (Engine.aggregator), and the remaining stages
run at the end. A rule whose stages write to rows works on a copy of the event, taken at its first writing stage; the
time a rule caches in the event it reads is taken out again after it (_Pushed.push).
Any other rule (a view, a union, a Windows or auditd source, eventstats before the aggregate) runs on its own.

Which rules can match a line is decided before it is parsed, from the same literals as the single-rule pre-filter
(prefilter.py): one Aho-Corasick automaton (pyahocorasick) over every rule's literals finds, in one scan of the
lower-cased line, every literal it holds, overlapping ones included; the line goes to the rules one of whose literals
it holds and to the rules that have none. A line no rule can match is not parsed. The rules are sound for the same
reasons as the single-rule pre-filter's, and only lines that look like whole objects are skipped (decision 60).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from siemforge.compiler import ir
from siemforge.compiler.sources import builtin_sources

from .compile import Context, Row
from .engine import Engine, RunResult, _selects_records, default_now, run_rule, threshold_met
from .parallel import MIN_BYTES, plain_ndjson, plan, split
from .prefilter import looks_whole, needles
from .reader import Meter, Reports, iter_events, iter_range_events

# stages that set or remove keys of the row they are given (project makes a new row)
_WRITES = (ir.Extend, ir.Rename, ir.Lookup)


@dataclass(slots=True)
class _Pushed:
    """One rule of the pass: its streaming steps, then its aggregate's `add` or its rows."""

    rule: ir.RuleIR
    engine: Engine
    steps: list[Callable[[Row], Row | None]]
    cache: str | None  # the column where reading the time caches it in the row (compile.column_getter)
    add: Callable[[Row], None] | None = None
    groups: dict[tuple[Any, ...], Any] = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)

    def push(self, ev: Row) -> None:
        """Run the event through the rule. The event is shared: the time this rule caches in it is taken out again,
        so that the next rule sees the event as read, and a row that is the event itself is kept as a copy."""
        fresh = self.cache is not None and self.cache not in ev
        r: Row | None = ev
        for step in self.steps:
            r = step(r)  # type: ignore[arg-type]
            if r is None:
                break
        else:
            if self.add is not None:
                self.add(r)  # type: ignore[arg-type]
            else:
                self.rows.append(dict(ev) if r is ev else r)  # type: ignore[arg-type]
        if fresh:
            ev.pop(self.cache, None)  # type: ignore[arg-type]

    def result(self, events_read: int, malformed: Reports) -> RunResult:
        p = plan(self.rule.pipeline)
        assert p is not None
        rows: list[Row]
        if p.aggregate is not None:
            rows = list(self.engine.finish_aggregate(p.aggregate, self.groups))
            rows = list(self.engine.run_stages(p.rest, rows, []))
        else:
            rows = self.rows
        return RunResult(rows, threshold_met(self.rule.alert.threshold, len(rows)), [], malformed.kept, events_read,
                         malformed.total)


def one_pass(rule: ir.RuleIR) -> bool:
    """The rule can run in the shared pass (see the module's docstring)."""
    return rule.pipeline.source.union is None and plan(rule.pipeline) is not None and not _selects_records(rule)


def _pushed(rule: ir.RuleIR, now: datetime, lookup_overrides: dict[str, Path]) -> _Pushed:
    p = plan(rule.pipeline)
    assert p is not None
    src = rule.pipeline.source
    sdef = builtin_sources().get(src.name)
    engine = Engine(Context(now, src.time_column, sdef.time_from if sdef is not None else None), lookup_overrides)
    steps: list[Callable[[Row], Row | None]] = []
    own = False  # the row is this rule's copy
    for st in p.prefix:
        if isinstance(st, _WRITES) and not own:
            steps.append(dict)
            own = True
        steps.append(engine.row_step(st))
        own = own or isinstance(st, ir.Project)
    pushed = _Pushed(rule, engine, steps, engine.ctx.time_column if engine.ctx.time_from is not None else None)
    if p.aggregate is not None:
        pushed.add, pushed.groups = engine.aggregator(p.aggregate)
    return pushed


class _Router:
    """Which rules a raw line can match, from the literals their first filters need."""

    def __init__(self, rules: list[_Pushed]) -> None:
        import ahocorasick

        self.always: list[_Pushed] = []
        by_needle: dict[str, list[int]] = {}
        self.rules = rules
        for i, r in enumerate(rules):
            first = r.rule.pipeline.stages[0] if r.rule.pipeline.stages else None
            found = needles(first.predicate, r.rule.pipeline.source.time_column) if isinstance(
                first, ir.Filter) else None
            if not found:
                self.always.append(r)
                continue
            for n in found:
                by_needle.setdefault(n.lower(), []).append(i)
        self.automaton: Any = None
        if by_needle:
            self.automaton = ahocorasick.Automaton()
            for n, idx in by_needle.items():
                self.automaton.add_word(n, tuple(idx))
            self.automaton.make_automaton()
        self.memo: dict[frozenset[tuple[int, ...]], list[_Pushed]] = {}
        self.current: list[_Pushed] = rules  # the rules the line being read goes to
        # a line holding none of these (and looking whole, without `\\`) goes to no rule: the reader may skip runs
        # of such lines as a block (prefilter.LineFilter, reader._skim); none when some rule takes every line
        self.needles = () if self.always else tuple(n.encode() for n in by_needle)

    def __call__(self, line: bytes) -> bool:
        """The reader's pre-filter: True to parse the line; sets `current` to the rules it can match."""
        if self.automaton is None or not looks_whole(line) or b"\\" in line:
            self.current = self.rules
            return True
        hits = frozenset(idx for _, idx in self.automaton.iter(line.lower().decode("latin-1")))
        targets = self.memo.get(hits)
        if targets is None:
            chosen = {i for idx in hits for i in idx}
            targets = self.memo[hits] = [r for i, r in enumerate(self.rules) if i in chosen or r in self.always]
        self.current = targets
        return bool(targets)


def run_rules(
    rules: Sequence[ir.RuleIR],
    logs: list[Path],
    now: datetime | None = None,
    lookup_overrides: dict[str, Path] | None = None,
    prefilter: bool | None = None,
    workers: int | None = None,
    parallel_min_bytes: int | None = None,
    meter: Meter | None = None,
) -> list[RunResult]:
    """Each rule's run over the logs (as run_rule gives it), the rules that can sharing one read of the logs.
    CompileError if the executor cannot run one of them (check each with regex.check_rule first). prefilter: as
    run_rule's (None: where it is sound by default, which every rule of the shared pass is). workers: processes
    for large plain NDJSON input (as run_rule's; default: every core; 1: this process only)."""
    now = now or default_now()
    overrides = lookup_overrides or {}
    shared_prefilter = prefilter is not False  # the shared pass's rules are all ones it is sound for by default
    results: list[RunResult | None] = [None] * len(rules)
    shared = [i for i, r in enumerate(rules) if one_pass(r)] if len(rules) > 1 else []  # one rule: run_rule's cores
    for i, r in enumerate(rules):  # `meter` (the CLI's progress) follows one read of the logs: the shared pass's,
        if i not in shared:       # or the only rule's
            results[i] = run_rule(r, logs, now, overrides, prefilter=prefilter, workers=workers,
                                  meter=meter if len(rules) == 1 else None)
    if shared:
        chosen = [rules[i] for i in shared]
        done = _run_parallel(chosen, logs, now, overrides, shared_prefilter, workers,
                             MIN_BYTES if parallel_min_bytes is None else parallel_min_bytes, meter)
        if done is None:
            pushed = [_pushed(r, now, overrides) for r in chosen]
            malformed = Reports()
            skipped = [0]
            events_read = _pass(pushed, shared_prefilter,
                                lambda keep: _events(logs, malformed, keep, skipped, meter))
            done = [p.result(events_read + skipped[0], malformed) for p in pushed]
        for i, res in zip(shared, done):
            results[i] = res
    return [r for r in results if r is not None]


def _pass(pushed: list[_Pushed], prefilter: bool,
          events: Callable[[Callable[[bytes], bool] | None], Iterator[Row]]) -> int:
    """Push every event to the rules its line can match; the number of events read."""
    router = _Router(pushed)
    n = 0
    for ev in events(router if prefilter else None):
        n += 1
        for target in router.current if prefilter else pushed:
            target.push(ev)
        router.current = pushed  # an event read without the pre-filter (line 1, arrays, Records)
    return n


def _work(job: tuple[list[ir.RuleIR], str, int, int, int, datetime, dict[str, Path], bool]) -> dict[str, Any]:
    """One process's part of a parallel pass: every rule over a byte range of a file, as partial results."""
    rules, path, start, end, first_line, now, overrides, prefilter = job
    pushed = [_pushed(r, now, overrides) for r in rules]
    malformed = Reports()
    skipped = [0]
    events = _pass(pushed, prefilter,
                   lambda keep: iter_range_events(Path(path), start, end, first_line, malformed, keep, skipped))
    parts: list[Any] = []
    for p in pushed:
        if p.add is not None:
            parts.append([(k, keyvals, [a.state() for a in aggs]) for k, (keyvals, aggs) in p.groups.items()])
        else:
            parts.append(p.rows)
    return {"parts": parts, "events": events + skipped[0], "malformed": malformed.kept,
            "malformed_total": malformed.total}


def _run_parallel(rules: list[ir.RuleIR], logs: list[Path], now: datetime, overrides: dict[str, Path],
                  prefilter: bool, workers: int | None, min_bytes: int,
                  meter: Meter | None = None) -> list[RunResult] | None:
    """The pass split over processes by byte ranges of plain NDJSON files (as parallel.run_parallel splits one
    rule's run), the partial aggregates merged in file order; None when it is not worth it or not possible."""
    workers = workers or os.cpu_count() or 1
    if workers < 2 or not logs or not all(plain_ndjson(f) for f in logs):
        return None
    if sum(f.stat().st_size for f in logs) < min_bytes:
        return None
    # only when every rule aggregates: a rule that returns events would ship each one it matches from a worker to
    # this process, which costs more than parsing it here (the 57 SigmaHQ AWS rules over 200,000 events: 73,894
    # rows, twice the CPU time and twice the wall time of one process; benchmarks/hunt.py)
    if not all(getattr(plan(r.pipeline), "aggregate", None) is not None for r in rules):
        return None
    jobs = [(rules, str(f), a, b, n, now, overrides, prefilter) for f in logs for a, b, n in split(f, workers)]
    ctx = multiprocessing.get_context("fork") if "fork" in multiprocessing.get_all_start_methods() else None
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        results = []
        for job, r in zip(jobs, pool.map(_work, jobs)):  # in file and range order
            results.append(r)
            if meter is not None:
                meter(job[3] - job[2], r["events"])
    reports = Reports()
    for r in results:
        reports.merge(r["malformed"], r["malformed_total"])
    events = sum(r["events"] for r in results)
    out: list[RunResult] = []
    for j, rule in enumerate(rules):
        p = _pushed(rule, now, overrides)
        plan_ = plan(rule.pipeline)
        assert plan_ is not None
        if plan_.aggregate is not None:
            for r in results:
                for key, keyvals, states in r["parts"][j]:
                    g = p.groups.get(key)
                    if g is None:
                        g = p.groups[key] = (keyvals, p.engine.new_aggs(plan_.aggregate))
                    for agg, state in zip(g[1], states):
                        agg.merge(state)
        else:
            p.rows = [row for r in results for row in r["parts"][j]]
        out.append(p.result(events, reports))
    return out


def _events(logs: list[Path], malformed: Reports, keep: Callable[[bytes], bool] | None,
            skipped: list[int], meter: Meter | None = None) -> Iterator[Row]:
    n = told = 0  # events read, and those told to the meter (with the lines the pre-filter skipped)
    for p in logs:
        for ev in iter_events(p, malformed, keep, skipped, meter):
            n += 1
            if meter is not None and n + skipped[0] - told >= 4096:
                meter(0, n + skipped[0] - told)
                told = n + skipped[0]
            yield ev
    if meter is not None and n + skipped[0] > told:
        meter(0, n + skipped[0] - told)
