"""Seen-before tables on Sentinel: computed inside the rule's own query from the table's history.

A watchlist exported with the rule would hold the snapshot of export day forever (Sentinel has no scheduled search
that rewrites a watchlist), so every image first used after that day would look unseen. Instead the query names the
table with a `let` over the last `history_window` of the same table — the baseline's IR pipeline (rule.baselines),
windowed — and the rule's own part reads only its lookback; the analytic rule's queryPeriod covers the history.
Microsoft's own "new X seen" analytics rules use the same shape (14-day baseline, 1-day detection window).
docs/backends/sentinel.md, "Seen-before tables".
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from siemforge.compiler import ir
from siemforge.compiler.diagnostics import error
from siemforge.compiler.lowering import bind
from siemforge.compiler.types import Type

from .lower import FEATURES, KqlLowering
from .render import render_name, render_timespan

# the longest queryPeriod a scheduled analytics rule may have (Microsoft.SecurityInsights alertRules, Scheduled)
MAX_QUERY_PERIOD = timedelta(days=14)


def history_window(rule: ir.RuleIR, baseline: ir.Baseline) -> timedelta:
    """How far back the query computes a seen-before table: the baseline's `forget`, at most 14 days. Its `warmup`
    must fit inside, or enough_data could never be 1 and the rule would never fire."""
    window = min(baseline.forget, MAX_QUERY_PERIOD)
    if baseline.warmup >= window:
        raise error(
            f"{rule.meta.title}: baseline {baseline.table!r} needs {render_timespan(baseline.warmup)} of history "
            f"before it has enough data (warmup), but its Sentinel query reads {render_timespan(window)} "
            f"(min of forget and {render_timespan(MAX_QUERY_PERIOD)})",
            hint="shorten `warmup` below the history window (docs/backends/sentinel.md, seen-before tables)",
        )
    return window


def query_period(rule: ir.RuleIR, lookback: timedelta) -> timedelta:
    """The analytic rule's queryPeriod: its lookback, or the longest history a seen-before table reads."""
    return max([lookback, *(history_window(rule, b) for b in rule.baselines)])


def lookback(rule: ir.RuleIR) -> timedelta:
    """The rule's own window, as artifacts.schedule reads it (1 day when the rule has no schedule)."""
    return rule.schedule.lookback if rule.schedule else timedelta(days=1)


def compile_with_baselines(rule: ir.RuleIR, binding_name: str | None) -> str:
    """`let <table> = <history …>;` per seen-before table, then the rule over its own lookback, whose lookups read
    those tables instead of watchlists."""
    lets: list[str] = []
    tables: dict[str, str] = {}
    counter = 0
    declared = {t.name: dict(zip(t.columns, t.types)) for t in rule.lookups}
    for b in rule.baselines:
        history = dataclasses.replace(rule, pipeline=ir.within_last(b.initial, history_window(rule, b)), baselines=())
        bound = bind(history, FEATURES, binding_name)
        assert bound.binding is not None  # Sentinel reads no undeclared source
        low = KqlLowering(history, bound.binding, bound.stages, counter=counter)
        low.query()
        counter = low.counter
        name = f"siemforge_seen_{counter + 1}"
        counter += 1
        body = "\n".join(low.lines)
        # the table as the baseline writes it (backends/executor/baseline.py): times as epoch seconds where the
        # lookup declares a number
        types = declared.get(b.table, {})
        as_seconds = [c for c, t in (b.initial.columns or ())
                      if t is Type.DATETIME and types.get(c, Type.ANY).is_numeric]
        if as_seconds:
            body += "\n| extend " + ", ".join(
                f"{render_name(c)} = tolong(({render_name(c)} - datetime(1970-01-01)) / 1s)" for c in as_seconds)
        lets.extend(low.lets)
        lets.append(f"let {name} = {body};")
        tables[b.table] = name
    main = dataclasses.replace(rule, pipeline=ir.within_last(rule.pipeline, lookback(rule)))
    bound = bind(main, FEATURES, binding_name)
    assert bound.binding is not None
    low = KqlLowering(main, bound.binding, bound.stages, counter=counter, tables=tables)
    return "\n".join([*lets, low.query()])
