"""Baseline searches: the initial search that fills a seen-before table from a long window, and the scheduled update
that merges a new window in, as ESCU's baselines do."""

from __future__ import annotations

import dataclasses

from siemforge.compiler import ir

from .lower import compile_spl
from .render import command_field


def baseline_searches(rule: ir.RuleIR, baseline: ir.Baseline, binding_name: str | None) -> tuple[str, str]:
    """The initial search (fill the table from a long window) and the scheduled update (merge a new window in),
    as ESCU's baselines do: min first sighting, max last sighting, forget old keys, enough_data after a warm-up."""
    table = command_field(baseline.table)
    initial = compile_spl(dataclasses.replace(rule, pipeline=baseline.initial, baselines=()), binding_name)
    k = next(i for i, st in enumerate(baseline.initial.stages) if isinstance(st, ir.Aggregate))
    head = dataclasses.replace(baseline.initial, stages=baseline.initial.stages[: k + 1], columns=None)
    window = compile_spl(dataclasses.replace(rule, pipeline=head, baselines=()), binding_name)
    key = command_field(baseline.key)
    forget = f"-{int(baseline.forget.total_seconds())}s"
    warmup = f"-{int(baseline.warmup.total_seconds())}s"
    update = "\n| ".join([
        window,
        f"inputlookup append=t {table}",
        f"stats min(firstTimeSeen) AS firstTimeSeen max(lastTimeSeen) AS lastTimeSeen by {key}",
        f'where lastTimeSeen > relative_time(now(), "{forget}")',
        "eventstats min(firstTimeSeen) AS globalFirstTime",
        f'eval enough_data=if(globalFirstTime <= relative_time(now(), "{warmup}"), 1, 0)',
        f"table {key} firstTimeSeen lastTimeSeen enough_data",
        f"outputlookup {table}",
    ])
    return initial + f"\n| outputlookup {table}", update
