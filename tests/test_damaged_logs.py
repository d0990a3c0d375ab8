"""Damaged log files on every engine: the SQL engines (duckdb, spark) read what the executor reads of a file cut
short, corrupt or misnamed, give the same rows, and report the same lines in the same words; `hunt` counts each
skipped line once and says how many events it read on every engine."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from siemforge.backends.executor.engine import run_rule
from siemforge.backends.executor.reader import Malformed, Reports, iter_events
from siemforge.backends.sql.duckdb_run import run_duckdb

from helpers import ROOT, compile_rule

NOW = datetime(2024, 1, 2, tzinfo=UTC)
RULE = """title: t
logsource: {product: aws, service: cloudtrail}
query: |
  where eventName == "RunInstances"
  | summarize n = count() by awsRegion
"""
RECORDS = [{"eventName": "RunInstances" if i % 3 else "Other", "eventSource": "ec2.amazonaws.com",
            "eventTime": f"2024-01-01T00:{i % 60:02d}:00Z", "awsRegion": f"r{i % 4}", "pad": "x" * 40}
           for i in range(60)]
NDJSON = b"".join(json.dumps(r).encode() + b"\n" for r in RECORDS)
DOCUMENT = json.dumps({"Records": RECORDS}).encode()


def _flipped_at_its_last_line() -> bytes:
    """A gzip stream with one byte flipped where the lines that follow are still inflated but wrong, so that the
    last line is invalid JSON and the CRC check at the end fails too: two reports of one line."""
    base = gzip.compress(NDJSON)
    for pos in range(20, len(base) - 8):
        flipped = bytearray(base)
        flipped[pos] ^= 0xFF
        reports = Reports()
        try:
            list(iter_events(_write(bytes(flipped)), reports))
        except Exception:  # noqa: BLE001  # not a case the reader reports
            continue
        lines = [m.line for m in reports.kept]
        if len(lines) != len(set(lines)):
            return bytes(flipped)
    raise AssertionError("no such flip")


_SCRATCH: list[Path] = []


def _write(data: bytes) -> Path:
    path = _SCRATCH[0] / "probe.json.gz"
    path.write_bytes(data)
    return path


@pytest.fixture(autouse=True)
def _scratch(tmp_path: Path) -> None:
    _SCRATCH[:] = [tmp_path]


CASES = {
    "records_gz_cut_short": ("cloudtrail.json.gz", lambda: (z := gzip.compress(DOCUMENT))[: len(z) * 2 // 3]),
    "records_cut_short": ("cloudtrail.json", lambda: DOCUMENT[: len(DOCUMENT) * 2 // 3]),
    "ndjson_named_gz": ("events.json.gz", lambda: NDJSON),
    "empty_named_gz": ("events.json.gz", lambda: b""),  # DuckDB inflated these by their name and failed
    "array_named_gz": ("events.json.gz", lambda: json.dumps(RECORDS).encode()),
    "pretty_document_named_gz": ("event.json.gz", lambda: json.dumps(RECORDS[1], indent=2).encode()),
    "array_cut_short": ("events.json", lambda: (a := json.dumps(RECORDS).encode())[: len(a) * 2 // 3]),
    "ndjson_gz_cut_short": ("events.json.gz", lambda: (z := gzip.compress(NDJSON))[: len(z) // 2]),
    "ndjson_gz_corrupt_from_the_start": ("events.json.gz", lambda: (
        z := bytearray(gzip.compress(NDJSON)), z.__setitem__(len(z) // 2, z[len(z) // 2] ^ 0xFF), bytes(z))[-1]),
    "ndjson_gz_flipped_at_its_last_line": ("events.json.gz", _flipped_at_its_last_line),
}


def _log(tmp_path: Path, case: str) -> Path:
    name, make = CASES[case]
    data = make()
    log = tmp_path / name
    log.write_bytes(data)
    return log


def _sorted(rows: list[dict[str, object]]) -> list[str]:
    return sorted(json.dumps(r, sort_keys=True) for r in rows)


@pytest.mark.parametrize("case", sorted(CASES))
def test_duckdb_reads_a_damaged_log_as_the_executor_does(case: str, tmp_path: Path) -> None:
    log = _log(tmp_path, case)
    rule = compile_rule(tmp_path, RULE)
    ref = run_rule(rule, [log], NOW, workers=1, prefilter=False)  # every line parsed, as a SQL engine does
    said: list[Malformed] = []
    rows = run_duckdb(rule, [log], now=NOW, report=said.append)
    assert _sorted(rows) == _sorted(ref.rows)
    assert list(map(str, said)) == list(map(str, ref.malformed))
    if not case.endswith("_named_gz"):
        assert said  # the damage is reported


def test_a_line_reported_twice_counts_once(tmp_path: Path) -> None:
    log = _log(tmp_path, "ndjson_gz_flipped_at_its_last_line")
    reports = Reports()
    list(iter_events(log, reports))
    assert len(reports.kept) == len({m.line for m in reports.kept}) + 1  # the last line: invalid JSON, then the CRC
    assert reports.total == len({m.line for m in reports.kept})
    assert "CRC check failed" in str(reports.kept[-1])


def _hunt(tmp_path: Path, log: Path, engine: str) -> tuple[str, str]:
    """The summary's events, rows and alerts, and what went to stderr. The python engine without its pre-filter,
    which leaves lines no rule can match unparsed, so unreported (a SQL engine parses every line)."""
    (tmp_path / "r.yml").write_text(RULE)
    more = ["--no-prefilter"] if engine == "python" else []
    r = subprocess.run([sys.executable, "-m", "siemforge.cli.main", "hunt", str(tmp_path / "r.yml"), str(log),
                        "--engine", engine, "--format", "table", *more], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "PYTHONPATH": str(ROOT / "src"), "COLUMNS": "200"})
    assert r.returncode == 0, r.stderr
    summary = next(line for line in r.stdout.splitlines() if line.startswith("hunt ("))
    return summary.split(": ", 1)[1].rsplit(",", 1)[0].split(", ", 1)[1], r.stderr


@pytest.mark.parametrize("case", ["ndjson_gz_flipped_at_its_last_line", "records_gz_cut_short", "ndjson_named_gz",
                                  "empty_named_gz", "pretty_document_named_gz"])
def test_hunt_on_duckdb_says_what_python_says(case: str, tmp_path: Path) -> None:
    log = _log(tmp_path, case)
    python = _hunt(tmp_path, log, "python")
    duckdb = _hunt(tmp_path, log, "duckdb")
    assert "event(s)" in python[0]
    assert duckdb == python  # the events read, the rows, the alerts; the same reports and count of skipped lines


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_spark_reads_a_damaged_log_as_the_executor_does(case: str, tmp_path: Path) -> None:
    from siemforge.backends.sql.spark_run import run_spark

    log = _log(tmp_path, case)
    rule = compile_rule(tmp_path, RULE)
    ref = run_rule(rule, [log], NOW, workers=1, prefilter=False)  # every line parsed, as a SQL engine does
    said: list[Malformed] = []
    rows = run_spark(rule, [log], now=NOW, report=said.append)
    assert _sorted(rows) == _sorted(ref.rows)
    assert list(map(str, said)) == list(map(str, ref.malformed))


@pytest.mark.slow
def test_hunt_on_spark_says_what_python_says(tmp_path: Path) -> None:
    log = _log(tmp_path, "records_gz_cut_short")
    spark, said = _hunt(tmp_path, log, "spark")
    jvm = "WARNING: Using incubator modules"  # the JVM's own line, at start
    assert (spark, "".join(x for x in said.splitlines(keepends=True) if not x.startswith(jvm))) == _hunt(
        tmp_path, log, "python")
