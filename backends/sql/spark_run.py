"""Run a rule's Spark SQL over log files in a local Spark session: `siemforge hunt --engine spark` (pyspark is the
optional extra `spark`; Java 17).

As `duckdb_run`: the files are read with the source's DECLARED columns (a schema of strings, booleans and numbers;
a nested object is read as its JSON text, which the query reads with `get_json_object`), NDJSON, JSON arrays and
CloudTrail `{"Records": [...]}` documents, gzipped or not; an NDJSON file with malformed lines is read as DuckDB's
runner reads it (`duckdb_run.readable`: a copy without them, each reported by file and line as the executor does).
The session runs in UTC with ANSI mode off, so that a cast of text that is not a number is null as the IR's `toint`
is (sqlglot writes Spark's `TRY_CAST` as `CAST`). Rows come back shaped as the executor's.
"""

from __future__ import annotations

import csv
import json
import re
import tempfile
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from siemforge.backends.executor.reader import Report
from siemforge.compiler import ir, lowering
from siemforge.compiler.sources import builtin_sources
from siemforge.compiler.types import Type

from .duckdb_run import (
    LogReadError,
    _is_records_document,
    _leaves,
    _lookup_tables,
    _selected_rows_file,
    declared_columns,
    events_counted,  # noqa: F401  # `hunt --engine spark`: the events its logs gave, counted by `readable`
    plain_value,
    readable,
)
from .lower import LOOKUP_ROW, output_kinds, table_name

_SPARK_TYPES = {"VARCHAR": "string", "BOOLEAN": "boolean", "BIGINT": "bigint", "DOUBLE": "double",
                "TIMESTAMP": "timestamp", "JSON": "string"}
_LOOKUP_TYPES = {Type.INT: "bigint", Type.REAL: "double", Type.BOOL: "boolean", Type.DATETIME: "timestamp"}


def _session(memory_limit: str) -> Any:
    """The process's local Spark session (made once: a JVM's memory is fixed when it starts)."""
    from pyspark.sql import SparkSession

    log_config = Path(__file__).with_name("spark-log4j2.properties")  # errors only: no WARN lines at every start
    return (SparkSession.builder.master("local[2]").appName("siemforge")
            .config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile={log_config.as_uri()}")
            .config("spark.driver.memory", memory_limit.replace("GB", "g").replace("MB", "m"))
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.ansi.enabled", "false")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.shuffle.partitions", "4")
            .getOrCreate())


def _ddl(cols: dict[str, str]) -> str:
    return ", ".join(f"`{c}` {_SPARK_TYPES[t]}" for c, t in cols.items())


def _frame(spark: Any, path: Path, cols: dict[str, str]) -> Any:
    if _is_records_document(path):
        doc = spark.read.schema(f"Records array<struct<{_ddl(cols).replace('` ', '`: ')}>>").option(
            "multiLine", "true").json(str(path))
        return doc.selectExpr("explode(Records) AS r").select("r.*")
    with path.open("rb") as fh:
        head = fh.read(1024)
    if path.suffix != ".gz" and head.lstrip()[:1] == b"[":  # a JSON array: one row per element
        return spark.read.schema(_ddl(cols)).option("multiLine", "true").json(str(path))
    return spark.read.schema(_ddl(cols)).option("mode", "DROPMALFORMED").json(str(path))


def run_spark(rule: ir.RuleIR, paths: Sequence[Path], *, memory_limit: str = "2GB",
              now: datetime | None = None, lookups: Mapping[str, Path] | None = None,
              report: Report | None = None) -> list[dict[str, Any]]:
    """The rule's rows over the log files, computed by Spark in local mode (CompileError: what SQL cannot say).
    `report`: told of each malformed NDJSON line that was skipped (file and line)."""
    import duckdb

    bases = sorted({lowering.base_source(leaf.pipeline.source) for leaf in _leaves(rule)})
    for p in paths:
        if not Path(p).is_file():
            raise FileNotFoundError(f"{p}: no such log file")
    query, kinds = output_kinds(rule, "spark", now or datetime.now(UTC))
    spark = _session(memory_limit)
    spark.sparkContext.setLogLevel("ERROR")
    with tempfile.TemporaryDirectory(prefix="siemforge-spark-") as tmp:  # Spark reads lazily: kept until collect()
        try:
            return _run(spark, rule, query, kinds, bases, paths, lookups, Path(tmp), report or (lambda _m: None))
        except (duckdb.IOException, duckdb.InvalidInputException) as exc:  # duckdb_run.is_clean's pass over a log
            raise LogReadError(str(exc).strip().splitlines()[0].strip()) from None


def _run(spark: Any, rule: ir.RuleIR, query: str, kinds: Mapping[str, str], bases: list[str], paths: Sequence[Path],
         lookups: Mapping[str, Path] | None, tmp: Path, report: Report) -> list[dict[str, Any]]:
    """Register each source's rows and the lookup tables, run the query, shape the rows. A source whose rows are
    selected from shared logs (Windows, auditd, Azure) is read as the rows the executor's readers select
    (duckdb_run._selected_rows_file: one definition of which records are rows)."""
    for base in bases:
        cols = declared_columns(base)
        sdef = builtin_sources().get(base)
        files = ([_selected_rows_file(base, paths, tmp, report)] if paths and sdef is not None and sdef.records
                 else [readable(Path(p), report)[0] for p in paths])
        frames = [_frame(spark, f, cols) for f in files]
        if frames:
            df = frames[0]
            for f in frames[1:]:
                df = df.unionByName(f)
        else:
            df = spark.createDataFrame([], _ddl(cols))
        df.createOrReplaceTempView(table_name(base))
    for table in _lookup_tables(rule).values():
        path = Path((lookups or {}).get(table.name, table.path))
        with path.open(newline="", encoding="utf-8") as fh:
            records = list(csv.DictReader(fh))
        types = dict(zip(table.columns, table.types))
        text = spark.createDataFrame([(*(r.get(c) or None for c in table.columns), i) for i, r in enumerate(records)],
                                     ", ".join(f"`{c}` string" for c in table.columns) + f", `{LOOKUP_ROW}` bigint")
        typed = text.selectExpr(*(f"CAST(`{c}` AS {_LOOKUP_TYPES.get(types[c], 'string')}) AS `{c}`"
                                  for c in table.columns), f"`{LOOKUP_ROW}`")
        typed.createOrReplaceTempView(table.name)
    closed = rule.pipeline.columns is not None
    time_col = rule.pipeline.source.time_column
    out = []
    try:
        records = spark.sql(query).collect()
    except Exception as exc:  # Py4JJavaError: only a file Spark could not read is the user's to fix
        failed = _FAILED_READ.search(str(exc))
        if failed is None:
            raise
        raise LogReadError(f"{failed.group(1)}: {failed.group(2)}") from None
    for rec in records:
        row = {}
        for n, v in rec.asDict(recursive=True).items():
            if not closed and (v is None or n == time_col):
                continue
            row[n] = _json_value(v, kinds.get(n, "any"))
        out.append(row)
    return out


# Spark's message for a log it cannot read (a truncated .gz): the file, then the Java cause (`Caused by: …`)
_FAILED_READ = re.compile(r"\[FAILED_READ_FILE[^\]]*\] Encountered error while reading file (?:file://)?(\S+?)\.?\s"
                          r"(?s:.*?)Caused by: (?:[\w.$]+: )?([^\n]+)")


def _json_value(v: Any, kind: str) -> Any:
    if v is None:
        return None
    if kind == "json" and isinstance(v, str):
        try:
            return json.loads(v)
        except ValueError:
            return v  # get_json_object gives a scalar's text itself
    if isinstance(v, datetime):
        return plain_value(v.astimezone(UTC))  # naive: the Python process's local time, as pyspark converts
    if isinstance(v, list):
        return [_json_value(x, "any") for x in v]
    return plain_value(v)
