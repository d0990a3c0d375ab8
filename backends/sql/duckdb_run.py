"""Run a rule's DuckDB SQL over log files: the embedded engine `siemforge hunt --engine duckdb` uses.

The files are read with the source's DECLARED columns (`read_json(columns=…)`: strings, booleans and numbers as
declared, nested objects as JSON), never by sampling a schema, which guesses wrong on CloudTrail's varied
`requestParameters`. NDJSON, JSON arrays and CloudTrail `{"Records": [...]}` documents, gzipped or not. An NDJSON
file is first checked in one fast pass (`read_json_objects`); a clean one is read by `read_json` at full speed, one
with malformed lines (invalid JSON, or JSON that is not an object) line by line (`read_csv` of one text column, each
object line parsed by `from_json` to the same declared columns), the others skipped and reported by line as the
executor reports them. DuckDB's own `ignore_errors` would turn a malformed line into a row of nulls, and one line
that is JSON but not an object into nulls for every row of the file (DuckDB 2.0). Rows come back shaped as the
executor's (`siemforge run --format json`): the same column names, datetimes as ISO-8601 `Z` text, JSON values
parsed. A row the pipeline did not close (no summarize or project) holds the source's declared fields that are not
null (a missing field and a JSON null are the same, decision 2).
"""

from __future__ import annotations

import csv
import json
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from siemforge.backends.executor.reader import Malformed, Report, Reports
from siemforge.backends.executor.saas import OKTA_HOOK
from siemforge.compiler import ir, lowering
from siemforge.compiler.sources import builtin_sources
from siemforge.compiler.types import Type

from .lower import _KIND, LOOKUP_ROW, SQL_TYPES, compile_sql, table_name

_LOOKUP_TYPES = {Type.INT: "BIGINT", Type.REAL: "DOUBLE", Type.BOOL: "BOOLEAN", Type.DATETIME: "TIMESTAMP"}


def declared_columns(source: str) -> dict[str, str]:
    """The top-level columns a source declares, with their DuckDB types (a dotted field makes its root JSON)."""
    sdef = builtin_sources()[source]
    cols: dict[str, str] = {}
    seen: set[str] = set()  # DuckDB's names ignore case: of `EventID` and `EventId` (Windows), the first declared
    for name, t in sdef.fields.items():
        root = name.split(".")[0]
        if root.lower() not in seen:
            seen.add(root.lower())
            cols[root] = SQL_TYPES.get(_KIND.get(t, "json"), "JSON") if "." not in name else "JSON"
    return cols


def _head(path: Path, size: int) -> bytes | None:
    """The first bytes of the log as the executor's reader sees them: inflated when the file is gzip (by its magic
    bytes, not its name: a plain file named .gz is read as it is); None when even they cannot be read."""
    from siemforge.backends.executor.reader import _READ_ERRORS, READ_BYTES, _open

    try:
        key = _key(path)
    except OSError:
        return None
    if key not in _HEADS:  # once per file, not once per rule of a hunt
        try:
            with _open(path) as fh:  # the reader's own first look (iter_events): one buffer, never past the damage
                _HEADS[key] = fh.peek(READ_BYTES)[:4096]  # type: ignore[attr-defined]
        except _READ_ERRORS:
            _HEADS[key] = None
    head = _HEADS[key]
    return None if head is None else head[:size]


_HEADS: dict[tuple[str, int, int], bytes | None] = {}


def _is_gzip(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            return fh.read(2) == b"\x1f\x8b"
    except OSError:
        return False


def _is_records_document(path: Path) -> bool:
    """A CloudTrail batch file: one object whose records are under `Records`."""
    head = (_head(path, 4096) or b"").decode("utf-8", "replace").lstrip().removeprefix("\ufeff").lstrip()
    return head.startswith("{") and head[1:].lstrip().startswith('"Records"')


def _is_array(path: Path) -> bool:
    return (_head(path, 4096) or b"").removeprefix(b"\xef\xbb\xbf").lstrip()[:1] == b"["


def _sql_string(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _columns_arg(cols: dict[str, str]) -> str:
    return "{" + ", ".join(f"{_sql_string(k)}: {_sql_string(v)}" for k, v in cols.items()) + "}"


def _is_ndjson(path: Path) -> bool:
    """Lines of JSON, as the executor reads them: not a JSON array (`[` first) nor one pretty-printed document (a
    first line that is `{` alone); a first line that is not JSON at all is a malformed NDJSON line."""
    for line in (_head(path, 4096) or b"").splitlines():
        if line.strip():
            return not (line.lstrip().startswith(b"[") or line.strip() == b"{")
    return False


_CLEAN: dict[tuple[str, int, int], bool] = {}  # NDJSON files found clean, by path, size, mtime (a hunt's many rules)
_EVENTS: dict[tuple[str, int, int], int] = {}  # the events each log gives, counted by the pass that checks it


def is_clean(path: Path) -> bool:
    """Every non-blank line of the NDJSON file is a JSON object, and none is an Okta event hook delivery (whose events
    are the rows: `cleaned_copy` unwraps them): one fast pass of DuckDB's JSON parser, which also counts the lines (a
    file it cannot read at all raises duckdb.IOException, which the runners report as LogReadError)."""
    import duckdb

    key = _key(path)
    if key not in _CLEAN:
        con = duckdb.connect()
        try:
            found = con.execute(f"SELECT count(*), count(*) FILTER (WHERE json_type(json) <> 'OBJECT' "
                                f"OR contains(json::VARCHAR, '\"{OKTA_HOOK}\"')) FROM read_json_objects("
                                f"{_sql_string(str(path))}, format = 'newline_delimited')").fetchone()
            _CLEAN[key] = found is not None and found[1] == 0
            if _CLEAN[key] and found is not None:
                _EVENTS[key] = found[0]
        except duckdb.InvalidInputException:  # invalid JSON somewhere
            _CLEAN[key] = False
        finally:
            con.close()
    return _CLEAN[key]


def _records_readable(path: Path, array: bool = False) -> bool:
    """DuckDB reads the whole Records document, or JSON array (`array`), (not cut short, not a damaged gzip stream,
    compressed as its name says): one pass of its parser, which counts the records."""
    import duckdb

    key = _key(path)
    if key not in _CLEAN:
        con = duckdb.connect()
        try:
            count = (f"SELECT count(*) FROM read_json_objects({_sql_string(str(path))}, format = 'array')" if array
                     else f"SELECT sum(json_array_length(json, '$.Records')) FROM read_json_objects("  # ~12 ms/MB
                          f"{_sql_string(str(path))}, format = 'auto', maximum_object_size = 268435456)")
            found = con.execute(count).fetchone()
            _CLEAN[key] = True
            _EVENTS[key] = int(found[0] or 0) if found is not None else 0
        except (duckdb.IOException, duckdb.InvalidInputException):
            _CLEAN[key] = False
        finally:
            con.close()
    return _CLEAN[key]


def events_counted(paths: Sequence[Path]) -> int | None:
    """The events the logs gave, as counted when they were checked or copied for an engine (`readable`); None when
    one of them was not (a source whose rows are selected from shared logs)."""
    try:
        counts = [_EVENTS.get(_key(Path(p))) for p in paths]
    except OSError:
        return None
    return None if any(c is None for c in counts) else sum(c for c in counts if c is not None)


def cleaned_copy(path: Path, folder: Path, report: Report, key: tuple[str, int, int] | None = None) -> Path:
    """The NDJSON file's lines that are JSON objects, written to `folder`; every other non-blank line reported with
    its file and line as the executor's reader reports it (same messages). An Okta event hook delivery is written as
    its events, one a line, as the executor's reader gives them (saas.py)."""
    import orjson

    from siemforge.backends.executor.reader import (
        _READ_ERRORS,
        MAX_LINE_BYTES,
        _bounded_lines,
        _line_json_error,
        _open,
    )
    from siemforge.backends.executor.saas import is_okta_hook, malformed

    name = str(path)
    out = folder / f"clean-{len(list(folder.iterdir()))}.ndjson"
    lineno = events = 0
    with _open(path) as src, out.open("wb") as dst:
        try:
            for raw in _bounded_lines(src):
                lineno += 1
                if isinstance(raw, int):
                    report(Malformed(name, lineno, f"line longer than {MAX_LINE_BYTES} bytes ({raw} bytes)"))
                    continue
                line = raw.strip()
                if lineno == 1:
                    line = line.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte-order mark, as the executor skips it
                if not line:
                    continue
                try:
                    doc = orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    report(Malformed(name, lineno, f"invalid JSON: {_line_json_error(exc, line)}"))
                    continue
                if type(doc) is not dict:
                    report(Malformed(name, lineno, "not a JSON object"))
                    continue
                if "data" in doc and is_okta_hook(doc):
                    why = malformed(doc)
                    if why is not None:
                        report(Malformed(name, lineno, why))
                        continue
                    for event in doc["data"]["events"]:
                        dst.write(orjson.dumps(event) + b"\n")
                        events += 1
                    continue
                dst.write(line + b"\n")
                events += 1
        except _READ_ERRORS as exc:  # a .gz damaged after the clean pass: the lines before it are kept
            report(Malformed(name, lineno, f"read error: {exc}"))
    if key is not None:
        _EVENTS[key] = events
    return out


_COPIES: dict[tuple[str, int, int], tuple[Path, Reports]] = {}  # cleaned copies and their reports, by file
_COPIES_DIR: list[tempfile.TemporaryDirectory[str]] = []  # removed when the process ends


def _key(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return (str(path.resolve()), st.st_size, st.st_mtime_ns)


def _said_of(path: Path, exc: Exception) -> str:
    """DuckDB's message about a log it cannot read, said of the file."""
    first = str(exc).strip().splitlines()[0].strip()
    why = first.split(": ", 1)[1] if first.startswith(("IO Error: ", "Invalid Input Error: ")) else first
    return f"{path}: {why.removesuffix(f': {path}')}"


def readable(path: Path, report: Report) -> tuple[Path, bool]:
    """The file to give an engine for this log, and whether it is NDJSON: a copy without its malformed lines when it
    has any, or with each Okta event hook delivery as its events (made once per process, however many rules read it;
    its reports, the first Reports keeps and a count of the rest, said again to each caller), else the file itself.
    A log DuckDB cannot read whole (a gzip stream cut short or corrupt, a Records document cut short, a plain file
    named .gz) is copied as NDJSON of the records the executor's reader gives, with its reports: the same rows and
    the same reports as the python engine."""
    import duckdb

    if _head(path, 1) is None:  # not even its start can be read (a corrupt gzip stream): the executor says why
        return _events_copy(path, report), True
    if _is_records_document(path):
        return (path, False) if _records_readable(path) else (_events_copy(path, report), True)
    if not _is_ndjson(path):
        if path.suffix == ".gz" and not _is_gzip(path):  # a plain file named .gz (an empty one too): DuckDB would
            return _events_copy(path, report), True  # inflate it by its name and fail
        if _is_array(path) and not _records_readable(path, array=True):  # an array cut short, say
            return _events_copy(path, report), True
        return (_events_copy(path, report), True) if _has_okta_hook(path) else (path, False)
    try:
        clean = is_clean(path)
    except (duckdb.IOException, duckdb.InvalidInputException) as exc:
        if path.suffix == ".gz" or _is_gzip(path):  # cut short or corrupt, or not compressed as named
            return _events_copy(path, report), True
        raise LogReadError(_said_of(path, exc)) from None
    if clean:
        return path, True
    if _is_gzip(path):  # the executor's reader says what is wrong with a gzip stream, and where
        return _events_copy(path, report), True
    key = _key(path)
    if key not in _COPIES:
        if not _COPIES_DIR:
            _COPIES_DIR.append(tempfile.TemporaryDirectory(prefix="siemforge-clean-"))
        reports = Reports()
        _COPIES[key] = (cleaned_copy(path, Path(_COPIES_DIR[0].name), reports, key), reports)
    copy, reports = _COPIES[key]
    _say(path, reports, report, "lines")
    return copy, True


def _say(path: Path, reports: Reports, report: Report, what: str) -> None:
    for m in reports.kept:
        report(m)
    if reports.total > len(reports.kept):
        report(Malformed(str(path), 0, f"{reports.total - len(reports.kept)} more malformed {what}"))


def _has_okta_hook(path: Path) -> bool:
    """A JSON array or pretty-printed document holds an Okta event hook delivery (one pass of DuckDB's parser)."""
    import duckdb

    con = duckdb.connect()
    try:
        found = con.execute(f"SELECT count(*) FROM read_json_objects({_sql_string(str(path))}, format = 'auto') "
                            f"WHERE contains(json::VARCHAR, '\"{OKTA_HOOK}\"')").fetchone()
        return found is not None and found[0] > 0
    except (duckdb.IOException, duckdb.InvalidInputException):  # not JSON DuckDB reads: left to the engine's reader
        return False
    finally:
        con.close()


def _events_copy(path: Path, report: Report) -> Path:
    """The log as NDJSON of the records the executor's reader gives (an Okta event hook delivery its events; what it
    reports, reported; a damaged file the records before the damage), made once per process."""
    import orjson

    from siemforge.backends.executor.reader import iter_events

    key = _key(path)
    if key not in _COPIES:
        if not _COPIES_DIR:
            _COPIES_DIR.append(tempfile.TemporaryDirectory(prefix="siemforge-clean-"))
        folder = Path(_COPIES_DIR[0].name)
        out = folder / f"events-{len(list(folder.iterdir()))}.ndjson"
        reports = Reports()
        n = 0
        with out.open("wb") as fh:
            for event in iter_events(path, reports):
                fh.write(orjson.dumps(event, default=str) + b"\n")
                n += 1
        _COPIES[key] = (out, reports)
        _EVENTS[key] = n
    copy, reports = _COPIES[key]
    _say(path, reports, report, "records")
    return copy


def _reader(path: Path, cols: dict[str, str], ndjson: bool) -> str:
    """A SELECT of the file's records with the declared columns (ignore_errors: a value that does not cast to its
    declared type is null; the file holds no malformed line, see `readable`)."""
    quoted = ", ".join('"' + c.replace('"', '""') + '"' for c in cols)
    if _is_records_document(path):
        struct = "STRUCT(" + ", ".join('"' + c.replace('"', '""') + f'" {t}' for c, t in cols.items()) + ")[]"
        inner = (f"SELECT unnest(\"Records\") AS r FROM read_json({_sql_string(str(path))}, "
                 f"columns = {_columns_arg({'Records': struct})}, format = 'auto', maximum_object_size = 268435456)")
        return f"SELECT {', '.join('r.' + c for c in (quoted.split(', ')))} FROM ({inner})"
    return (f"SELECT {quoted} FROM read_json({_sql_string(str(path))}, columns = {_columns_arg(cols)}, "
            f"format = '{'newline_delimited' if ndjson else 'auto'}', records = true, ignore_errors = true)")


def _leaves(rule: ir.RuleIR) -> list[ir.RuleIR]:
    """The rules that read a source: the rule, or a union's branches (correlations of correlations too), and the
    right side of each join."""
    joined = [leaf for st in rule.pipeline.stages if isinstance(st, ir.Join)
              for leaf in _leaves(replace(rule, pipeline=st.right))]
    if rule.pipeline.source.union is None:
        return [rule, *joined]
    return [leaf for b in lowering.branch_rules(rule) for leaf in _leaves(b)] + joined


def _lookup_tables(rule: ir.RuleIR) -> dict[str, ir.LookupTable]:
    stages = [s for leaf in [rule, *_leaves(rule)] for s in lowering.expand_views(leaf.pipeline)]
    return {s.table.name: s.table for s in stages if isinstance(s, ir.Lookup)}


def _load_lookup(con: Any, table: ir.LookupTable, path: Path) -> None:
    """The CSV as a table of its declared types, with each row's number (the first matching row wins)."""
    with path.open(newline="", encoding="utf-8") as fh:
        records = list(csv.DictReader(fh))
    types = dict(zip(table.columns, table.types))
    cols = ", ".join(f'"{c}" {_LOOKUP_TYPES.get(types[c], "VARCHAR")}' for c in table.columns)
    con.execute(f'CREATE OR REPLACE TEMP TABLE "{table.name}" ({cols}, "{LOOKUP_ROW}" BIGINT)')
    rows = []
    for i, rec in enumerate(records):
        values: list[Any] = []
        for c in table.columns:
            v = rec.get(c)
            values.append(None if v is None or v == "" else v)
        rows.append((*values, i))
    if rows:
        marks = ", ".join("?" for _ in range(len(table.columns) + 1))
        con.executemany(f'INSERT INTO "{table.name}" VALUES ({marks})', rows)


class LogReadError(OSError):
    """DuckDB could not read a log file (a truncated .gz, a file that is not JSON): the first line of its message,
    which names the file."""


def run_duckdb(rule: ir.RuleIR, paths: Sequence[Path], *, memory_limit: str = "2GB",
               now: datetime | None = None, lookups: Mapping[str, Path] | None = None,
               report: Report | None = None) -> list[dict[str, Any]]:
    """The rule's rows over the log files, computed by DuckDB (CompileError: what the SQL target cannot say).
    `lookups`: a lookup table's CSV by name instead of the rule's own (as `siemforge test` gives a test's).
    `report`: told of each malformed NDJSON line that was skipped (file and line)."""
    import duckdb

    bases = sorted({lowering.base_source(leaf.pipeline.source) for leaf in _leaves(rule)})
    query = compile_sql(rule, "duckdb", now or datetime.now(UTC))
    for p in paths:
        if not Path(p).is_file():
            raise FileNotFoundError(f"{p}: no such log file")
    con = duckdb.connect(config={"memory_limit": memory_limit})
    with tempfile.TemporaryDirectory(prefix="siemforge-duckdb-") as tmp:
        try:
            return _run(con, rule, query, bases, paths, lookups, Path(tmp), report or (lambda _m: None))
        except (duckdb.IOException, duckdb.InvalidInputException) as exc:
            raise LogReadError(str(exc).strip().splitlines()[0].strip()) from None
        finally:
            con.close()


def _selected_rows_file(base: str, paths: Sequence[Path], folder: Path, report: Report | None = None) -> Path:
    """The rows of a source whose rows are selected from shared logs (Windows, auditd, Azure: `records:`), as the
    executor's readers and selectors give them, written as NDJSON for DuckDB to read with the declared columns. Which
    records are rows, and how an .evtx or an audit.log becomes records, stays the executor's one definition."""
    import orjson

    from siemforge.backends.executor.auditd import select_by_field
    from siemforge.backends.executor.reader import iter_events
    from siemforge.backends.executor.windows import select_records

    sdef = builtin_sources()[base]
    out = folder / f"{table_name(base)}.ndjson"
    with out.open("wb") as fh:
        for p in paths:
            events = iter_events(Path(p), report or (lambda _m: None))  # malformed records: as the executor says
            rows = (select_by_field(sdef.records, events) if any(sel.match for sel in sdef.records)
                    else select_records(sdef, events))
            for row in rows:
                fh.write(orjson.dumps(row, default=str, option=orjson.OPT_NON_STR_KEYS) + b"\n")
    return out


def _run(con: Any, rule: ir.RuleIR, query: str, bases: list[str], paths: Sequence[Path],
         lookups: Mapping[str, Path] | None, tmp: Path, report: Report) -> list[dict[str, Any]]:
    """Load each source's rows and the lookup tables into `con`, run the query, shape the rows."""
    con.execute("SET TimeZone = 'UTC'")
    given: dict[Path, tuple[Path, bool]] = {}  # each log as an engine can read it, once (a union reads it per source)
    for base in bases:  # each source's records from every file (a union's rules may read several)
        cols = declared_columns(base)
        sdef = builtin_sources().get(base)
        if paths and sdef is not None and sdef.records:
            body = _reader(_selected_rows_file(base, paths, tmp, report), cols, True)
        elif paths:
            for p in paths:
                if Path(p) not in given:
                    given[Path(p)] = readable(Path(p), report)
            body = " UNION ALL ".join(_reader(given[Path(p)][0], cols, given[Path(p)][1]) for p in paths)
        else:
            body = "SELECT " + ", ".join(f'CAST(NULL AS {t}) AS "{c}"' for c, t in cols.items()) + " WHERE false"
        con.execute(f'CREATE OR REPLACE TEMP VIEW "{table_name(base)}" AS {body}')
    for table in _lookup_tables(rule).values():
        _load_lookup(con, table, Path((lookups or {}).get(table.name, table.path)))
    cur = con.execute(query)
    names = [d[0] for d in cur.description]
    kinds = {d[0]: str(d[1]) for d in cur.description}
    closed = rule.pipeline.columns is not None
    out = []
    for rec in cur.fetchall():
        row = {}
        for n, v in zip(names, rec):
            if not closed and (v is None or n == rule.pipeline.source.time_column):
                continue
            row[n] = _json_value(v, kinds[n])
        out.append(row)
    return out


def _json_value(v: Any, kind: str) -> Any:
    """A DuckDB value as the executor's rows print it (`siemforge run --format json`)."""
    if v is None:
        return None
    if kind == "JSON":
        return json.loads(v) if isinstance(v, str) else v
    if isinstance(v, datetime):
        return plain_value(v.replace(tzinfo=UTC) if v.tzinfo is None else v)  # DuckDB's TIMESTAMP: UTC wall time
    if isinstance(v, list):
        return [_json_value(x, kind.removesuffix("[]")) for x in v]
    if isinstance(v, float) and v.is_integer() and kind in ("BIGINT", "INTEGER"):
        return int(v)
    return plain_value(v)


def plain_value(v: Any) -> Any:
    """An engine's datetime (aware), date, timespan or decimal as the executor's rows print it (`run --format json`);
    any other value as it is. Both runners' one definition of those values."""
    if isinstance(v, datetime):
        v = v.astimezone(UTC)
        return v.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if v.microsecond else "%Y-%m-%dT%H:%M:%SZ")
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, timedelta):
        from siemforge.backends.executor.values import format_timespan

        return format_timespan(v)
    if isinstance(v, Decimal):
        return float(v)
    return v
