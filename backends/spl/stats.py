"""What `stats`, `eventstats` and `tstats` share: the aggregation function table and null-group-key handling.

The IR keeps rows whose group key is null as a group (docs/semantics.md, `aggregate`); Splunk's stats-family
commands drop them. So keys are filled with a sentinel before (`coalesce`, or tstats' `fillnull_value`) and made
null again after (`restore_null_keys`).
"""

from __future__ import annotations

import re

from siemforge.compiler import ir

from .render import command_field, render_field, render_string_literal

NULL_KEY = "__siemforge_null__"

# IR aggregation -> the stats-family function of the same meaning
AGG_FUNCTIONS = {
    ir.AggFn.COUNT: "count", ir.AggFn.DCOUNT: "dc", ir.AggFn.MIN: "min", ir.AggFn.MAX: "max", ir.AggFn.SUM: "sum",
    ir.AggFn.AVG: "avg", ir.AggFn.VALUES: "values", ir.AggFn.EARLIEST: "earliest", ir.AggFn.LATEST: "latest",
}


PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def agg_term(fn: str, arg: str | None, name: str) -> str:
    """One aggregation of stats/eventstats/tstats named `name`: `fn(arg) AS name`, or just `count` where that is
    the name `count` gets without an AS (docs/semantics.md decision 46)."""
    if arg is None:
        return fn if fn == "count" and name == "count" else f"{fn} AS {command_field(name)}"
    return f"{fn}({command_field(arg)}) AS {command_field(name)}"


def restore_null_keys(names: list[str]) -> str:
    """The command that turns the sentinel back into null in each key column: for several keys of plain names, one
    `foreach` over them with the eval as its template (docs/semantics.md decision 41), else one eval per key."""
    sentinel = render_string_literal(NULL_KEY)
    if len(names) > 1 and all(PLAIN_NAME.fullmatch(n) for n in names):
        return (f"foreach {' '.join(names)} "
                f"[eval <<FIELD>>=if('<<FIELD>>'=={sentinel}, null(), '<<FIELD>>')]")
    return "eval " + ", ".join(
        f"{render_field(n)}=if({render_field(n)}=={sentinel}, null(), {render_field(n)})" for n in names)
