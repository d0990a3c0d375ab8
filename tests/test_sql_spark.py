"""Spark rows = executor rows: the SQL target's `spark` dialect run in a local Spark session (pyspark, the `spark`
extra; Java 17) for every bundled rule's test cases and over the real CloudTrail logs, and every SigmaHQ AWS rule over
the real logs.
A Spark session takes seconds to start and each query about a second: every test here is slow."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from test_sql import BUNDLED, NOW, OTHER_BUNDLED, _cases, _other_cases, _real_logs, _rows

from siemforge.backends.executor.engine import run_rule
from siemforge.backends.executor.reader import Malformed
from siemforge.compiler import ir
from siemforge.compiler.api import compile_file
from siemforge.compiler.diagnostics import CompileError

pytest.importorskip("pyspark", reason="pyspark is the optional extra `spark` (pip install -e '.[spark]')")

from siemforge.backends.sql.spark_run import run_spark  # noqa: E402 - only once pyspark is there

pytestmark = pytest.mark.slow


def _same(rule: ir.RuleIR, logs: list[Path], now: datetime, lookups: dict[str, Path] | None = None) -> int:
    spark = _rows(run_spark(rule, logs, now=now, lookups=lookups), rule)
    ref = _rows(run_rule(rule, logs, now, lookup_overrides=lookups, workers=1).rows, rule)
    ordered = any(isinstance(s, ir.Sort) for s in rule.pipeline.stages)
    assert (spark if ordered else sorted(spark)) == (ref if ordered else sorted(ref)), json.dumps(
        sorted(set(spark) ^ set(ref))[:4])
    return len(ref)


@pytest.mark.parametrize("path,case", _cases())
def test_spark_rows_equal_the_executor_rows_on_each_bundled_test_case(path: Path, case: dict[str, Any]) -> None:
    rule = compile_file(path).rule
    assert rule is not None
    logs = [path.parent / p for p in ([case["logs"]] if isinstance(case["logs"], str) else case["logs"])]
    now = case.get("now")
    at = NOW if now is None else (now if isinstance(now, datetime) else datetime.fromisoformat(str(now)))
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    try:
        _same(rule, logs, at, {k: path.parent / v for k, v in (case.get("lookups") or {}).items()})
    except CompileError as exc:  # what the spark dialect refuses is named (docs/backends/sql.md)
        pytest.skip(str(exc))


# bundled rules the spark dialect refuses, and why (docs/backends/sql.md): any other refusal fails the test
SPARK_REFUSES = {"gcp_iam_primitive_role_granted": "mv-expand is lowered for DuckDB only"}


@pytest.mark.parametrize("path", BUNDLED, ids=[p.parent.name for p in BUNDLED])
def test_spark_rows_equal_the_executor_rows_on_the_real_logs(path: Path) -> None:
    rule = compile_file(path).rule
    assert rule is not None
    try:
        _same(rule, _real_logs(), NOW)
    except CompileError as exc:
        if SPARK_REFUSES.get(path.parent.name, "\0") not in str(exc):
            raise
        pytest.skip(str(exc))


def test_spark_rows_equal_the_executor_rows_for_every_sigmahq_aws_rule() -> None:
    from helpers import shared_path

    compared = 0
    for f in sorted(shared_path("data", "sigma", "rules", "cloud", "aws").rglob("*.yml")):
        rule = compile_file(f).rule
        if rule is None:
            continue
        _same(rule, _real_logs(), NOW)
        compared += 1
    assert compared == 57


def test_spark_reads_a_gz_cut_short_as_the_executor_does(tmp_path: Path) -> None:
    """A .gz cut short: the whole lines before the damage are rows, the damage is reported with its file and line
    (the clean-lines pass, duckdb_run.readable, copies what can be read), as the executor does."""
    import gzip

    rule = compile_file(BUNDLED[0]).rule
    assert rule is not None
    event = json.dumps({"eventSource": "ec2.amazonaws.com", "eventName": "RunInstances",
                        "eventTime": "2024-05-04T23:00:00Z"})
    log = tmp_path / "cut.ndjson.gz"
    log.write_bytes(gzip.compress(((event + "\n") * 2000).encode())[:300])
    said: list[Malformed] = []
    run_spark(rule, [log], now=NOW, report=said.append)
    assert [m.message.split(":")[0] for m in said] == ["read error"] and said[0].line > 1
    assert _same(rule, [log], NOW) == len(run_rule(rule, [log], NOW, workers=1).rows)


@pytest.mark.parametrize("path,case", _other_cases())
def test_spark_rows_equal_the_executor_rows_on_every_other_bundled_test_case(path: Path, case: dict[str, Any]) -> None:
    """Windows, auditd, Entra ID, Okta, GitHub: a shared-log source is read as the rows the executor's readers select."""
    test_spark_rows_equal_the_executor_rows_on_each_bundled_test_case(path, case)


@pytest.mark.parametrize("path", OTHER_BUNDLED, ids=[p.parent.name for p in OTHER_BUNDLED])
def test_spark_rows_equal_the_executor_rows_of_every_other_bundled_rule_on_the_real_logs(path: Path) -> None:
    test_spark_rows_equal_the_executor_rows_on_the_real_logs(path)


def test_spark_skips_and_reports_malformed_lines_by_line(tmp_path: Path) -> None:
    """Each kind of malformed line (invalid JSON, JSON that is not an object) is reported by line and skipped; the
    rows are the executor's (a `[1, 2]` line used to be read by Spark as rows)."""
    from test_sql import HEAD, MALFORMED_CASES

    from helpers import compile_rule

    rule = compile_rule(tmp_path, HEAD + "summarize n = count()\n")
    for name, lines in MALFORMED_CASES.items():
        log = tmp_path / f"{name.replace(' ', '_')}.ndjson"
        log.write_text("\n".join(lines) + "\n")
        seen: list[Malformed] = []
        got = run_spark(rule, [log], now=NOW, report=seen.append)
        assert _rows(got, rule) == _rows(run_rule(rule, [log], NOW, workers=1).rows, rule), name
        assert [m.line for m in seen] == [i for i, line in enumerate(lines, 1)
                                          if line.strip() and not line.strip().lstrip('\ufeff').startswith('{"eventName": "')], name


def test_spark_hunt_reads_a_cut_records_gz_as_python_does_with_no_jvm_noise(tmp_path: Path) -> None:
    """`hunt --engine spark` as a user runs it (the JVM writes to the process's stderr): a gzipped Records document cut
    short (CloudTrail's own delivery format) is read up to the damage and the damage reported naming the file, as the
    python engine does (it used to end the hunt, exit 2, after a Java stack trace from Spark's executor); no WARN,
    ERROR or Java stack line on stderr."""
    import gzip
    import subprocess
    import sys

    from helpers import ROOT

    event = {"eventSource": "ecr.amazonaws.com", "eventName": "PutImage", "eventTime": "2024-05-04T23:00:00Z"}
    good = tmp_path / "good.ndjson"
    good.write_text(json.dumps(event) + "\n")
    cut = tmp_path / "cut.json.gz"
    data = gzip.compress(json.dumps({"Records": [event] * 2000}).encode())
    cut.write_bytes(data[: len(data) // 2])
    runs = {engine: subprocess.run([sys.executable, "-m", "siemforge.cli.main", "hunt", str(BUNDLED[0]), str(good),
                                    str(cut), "--engine", engine, "--format", "json"],
                                   cwd=ROOT, capture_output=True, text=True, timeout=300)
            for engine in ("python", "spark")}
    r = runs["spark"]
    assert r.returncode == 0, r.stderr
    assert f"{cut}: skipped: invalid JSON in record" in r.stderr and "end-of-stream marker" in r.stderr
    assert json.loads(r.stdout) == json.loads(runs["python"].stdout)
    assert not [line for line in r.stderr.splitlines()
                if " WARN " in line or " ERROR " in line or line.startswith("\tat ") or "Exception" in line], r.stderr
