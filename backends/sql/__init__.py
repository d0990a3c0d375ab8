"""SQL: one sqlglot expression tree per rule, rendered per dialect (DuckDB, Spark SQL, Trino/Athena).

The target's bindings are its dialects: each dialect reads its own physical schema (DuckDB and Spark: the raw
records' columns, as `duckdb_run.py` and a Spark JSON reader load them; Trino: Amazon Security Lake's OCSF columns
through the `asl` binding's map), so `--binding` and `--dialect` name the same choice (docs/backends/sql.md).
"""

from __future__ import annotations

from siemforge.compiler import ir

from ..registry import Target

DIALECTS = ("duckdb", "spark", "trino")


def _compile(rule: ir.RuleIR, binding: str | None) -> str:
    from .lower import compile_sql

    return compile_sql(rule, binding or DIALECTS[0])


def target() -> Target:
    """The registry's entry point (pyproject: siemforge.targets)."""
    return Target("sql", "SQL via sqlglot: duckdb (the default; raw records, as `hunt` reads log files), spark "
                  "(Spark SQL over the same columns), trino (Amazon Athena over Security Lake's OCSF columns)",
                  "sql", DIALECTS, _compile)
