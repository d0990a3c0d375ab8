"""duckdb-kql as a second engine for the KQL we emit: load Sentinel-shaped rows into DuckDB and run the query."""

from __future__ import annotations

import csv
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from siemforge.backends.executor.reader import iter_events
from siemforge.backends.executor.shapes import record_to_row
from siemforge.backends.executor.values import format_datetime, to_text
from siemforge.compiler import ir
from siemforge.compiler.bindings import Binding

duckdb_kql: Any
try:
    import duckdb_kql
except ImportError:  # pragma: no cover - the test extra installs it
    duckdb_kql = None

DUCK_TYPES = {"string": "VARCHAR", "datetime": "TIMESTAMP", "bool": "BOOLEAN", "int": "INTEGER",
              "long": "BIGINT", "real": "DOUBLE", "dynamic": "JSON"}


def connect(binding: Binding, logs: list[Path], lookups: dict[str, Path]) -> Any:
    rows = [record_to_row(rec, binding) for f in logs for rec in iter_events(f, lambda m: None)]
    return connect_rows(binding, rows, lookups)


def _cell(v: Any, kind: str) -> Any:
    """A row's value as DuckDB takes it: a dynamic column's object or array as JSON text."""
    if kind == "dynamic" and isinstance(v, (dict, list)):
        return orjson.dumps(v).decode()
    if kind == "dynamic" and isinstance(v, str):  # a JSON string value ("..." where an export cut an object)
        try:
            orjson.loads(v)
        except orjson.JSONDecodeError:
            return orjson.dumps(v).decode()
    return v


def connect_rows(binding: Binding, table_rows: list[dict[str, Any]], lookups: dict[str, Path] | None = None) -> Any:
    """A DuckDB connection holding the binding's table (its schema) with these rows, and the lookups as
    watchlists."""
    lookups = lookups or {}
    con = duckdb_kql.connect()
    cols = list(binding.schema.items())
    con.sql(f"CREATE TABLE {binding.table} (" + ", ".join(f'"{c}" {DUCK_TYPES[t]}' for c, t in cols) + ")")
    rows = [[_cell(r.get(c), t) for c, t in cols] for r in table_rows]
    if rows:
        con.executemany(f"INSERT INTO {binding.table} VALUES (" + ",".join("?" * len(cols)) + ")", rows)
    # watchlists: one table of every lookup's rows, all text, with the alias
    columns: list[str] = ["SearchKey"]
    tables: dict[str, list[dict[str, str]]] = {}
    for alias, path in lookups.items():
        with path.open(newline="", encoding="utf-8") as fh:
            tables[alias] = list(csv.DictReader(fh))
        for c in (tables[alias][0].keys() if tables[alias] else []):
            if c not in columns:
                columns.append(c)
    con.sql("CREATE TABLE siemforge_watchlists (watchlist_alias VARCHAR, " +
            ", ".join(f'"{c}" VARCHAR' for c in columns) + ")")
    for alias, recs in tables.items():
        for r in recs:
            con.execute("INSERT INTO siemforge_watchlists VALUES (" + ",".join("?" * (len(columns) + 1)) + ")",
                        [alias, *[r.get(c) for c in columns]])
    return con


def write_rows(binding: Binding, logs: list[Path], out: Path) -> Path:
    """The raw records as the bound table's rows, one JSON object per line."""
    with out.open("wb") as fh:
        for f in logs:
            for rec in iter_events(f, lambda m: None):
                fh.write(orjson.dumps(record_to_row(rec, binding)) + b"\n")
    return out


FUNCTIONS = ["function _GetWatchlist(watchlistAlias:string) "
             "{ siemforge_watchlists | where watchlist_alias == watchlistAlias }"]


def _calls(query: str, name: str) -> list[tuple[int, int, list[str]]]:
    """Each call `name(…)` in the query: start, end and its top-level arguments (strings and nesting respected)."""
    out = []
    for m in re.finditer(rf"\b{name}\(", query):
        depth, i, args, start, quote, verbatim = 1, m.end(), [], m.end(), "", False
        while depth:
            c = query[i]
            if quote:
                if c == "\\" and not verbatim:
                    i += 1
                elif c == quote:
                    quote = ""
            elif c in "\"'":
                quote, verbatim = c, query[i - 1] == "@"
            elif c in "([{":
                depth += 1
            elif c in ")]}":
                depth -= 1
            elif c == "," and depth == 1:
                args.append(query[start:i].strip())
                start = i + 1
            i += 1
        args.append(query[start:i - 1].strip())
        out.append((m.start(), i, args))
    return out


# Functions duckdb-kql 1.1.2 has no mapping for (KqlUnsupportedError), written as their documented equivalents so
# the rest of the query gets a verdict; Kusto.Language checks the query as emitted (tests/test_kql_backend.py).
REWRITES = {
    # https://learn.microsoft.com/kusto/query/unixtime-seconds-todatetime-function
    "unixtime_seconds_todatetime": lambda a: f"(datetime(1970-01-01) + ({a[0]}) * 1s)",
    "unixtime_milliseconds_todatetime": lambda a: f"(datetime(1970-01-01) + ({a[0]}) * 1ms)",
    # https://learn.microsoft.com/kusto/query/make-set-if-aggregation-function: make_set of the rows where the
    # predicate is true; make_set skips nulls; maxSize (a[2]) passed on (duckdb-kql 1.1.2 does not apply it: a
    # test compares only groups with no more values than the cap, decision 95)
    "make_set_if": lambda a: f"make_set(iff({a[1]}, {a[0]}, dynamic(null)){''.join(', ' + x for x in a[2:])})",
    # https://learn.microsoft.com/kusto/query/make-list-if-aggregation-function: make_list of the rows where the
    # predicate is true; make_list skips nulls
    "make_list_if": lambda a: f"make_list(iff({a[1]}, {a[0]}, real(null)))",
}


def portable(query: str) -> str:
    for name, rewrite in REWRITES.items():
        while calls := _calls(query, name):
            start, end, args = calls[-1]  # innermost-last: rewrite from the end so positions stay valid
            query = query[:start] + rewrite(args) + query[end:]
    return query


def construct(exc: Exception) -> str:
    """The KQL construct duckdb-kql names in a KqlUnsupportedError (`function:tohex`), else its message's first
    line."""
    m = re.search(r"construct '([^']+)'", str(exc))
    return m.group(1) if m else (str(exc).splitlines() or [type(exc).__name__])[0]


def run(con: Any, query: str, now: datetime) -> list[dict[str, Any]]:
    rel = duckdb_kql.kql(con, portable(query), query_now=now, functions=FUNCTIONS)
    names = rel.columns
    return [dict(zip(names, row)) for row in rel.fetchall()]


def norm(v: Any) -> Any:
    """A value in a form both engines agree on: datetimes as UTC ISO text, numbers as floats, JSON as text."""
    if isinstance(v, datetime):
        return format_datetime(v if v.tzinfo else v.replace(tzinfo=UTC))
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, (int, float, Decimal)):
        return float(v)
    if isinstance(v, str) and v[:1] in "[{":
        try:
            return to_text(orjson.loads(v))
        except orjson.JSONDecodeError:
            return v
    if isinstance(v, (list, dict)):
        return to_text(v)
    return v


def comparable(rows: list[dict[str, Any]], rule: ir.RuleIR, id_column: str, empty_is_missing: bool = False) -> list[str]:
    """The rows as sorted comparable text. `empty_is_missing`: "" reads as null, as a Sentinel string column holds a
    missing value (decision 2)."""
    if rule.pipeline.columns is None:  # raw events out: compare which events (a missing id is empty on Sentinel)
        return sorted(str(r.get(id_column) or "") for r in rows)
    names = [n for n, _ in rule.pipeline.columns]

    def value(v: Any) -> Any:
        v = norm(v)
        return None if empty_is_missing and v == "" else v
    return sorted(orjson.dumps([value(r.get(n)) for n in names]).decode() for r in rows)
