"""`siemforge hunt` and the one-pass executor (backends/executor/multi.py): many rules over one read of the logs give
each rule the rows it gets alone; the line pre-filter, now on by default, never changes a rule's rows."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from siemforge.backends.executor.engine import run_rule
from siemforge.backends.executor.multi import one_pass, run_rules
from siemforge.backends.executor.parallel import plan
from siemforge.backends.executor.regex import check_rule
from siemforge.compiler import ir
from siemforge.compiler.api import compile_rules, discover_rules

from helpers import ROOT, shared_path

NOW = datetime(2024, 6, 1, tzinfo=UTC)
CMD = [sys.executable, "-m", "siemforge.cli.main"]
ECR = ROOT / "rules" / "aws_ecr_upload_outside_business_hours"


def sf(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CMD, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=300)


def _rules(paths: list[Path]) -> list[ir.RuleIR]:
    out = []
    for f in discover_rules(paths):
        for res in compile_rules(f):
            if res.rule is not None and check_rule(res.rule) is None:
                out.append(res.rule)
    return out


def _cloudtrail_logs() -> list[Path]:
    return sorted(shared_path("data", "cloudtrail").glob("*.ndjson"))


def _cloudtrail_rules() -> list[ir.RuleIR]:
    return _rules([ROOT / "rules", shared_path("data", "sigma", "rules", "cloud", "aws")])


def _alone(rule: ir.RuleIR, logs: list[Path], prefilter: bool) -> list[dict[str, object]]:
    return run_rule(rule, logs, NOW, prefilter=prefilter, workers=1).rows


def test_one_pass_equals_rule_by_rule_on_real_logs() -> None:
    """Every bundled rule and every SigmaHQ AWS rule over the real CloudTrail logs: the one-pass rows (order
    included) are the rows of the rule run alone without the pre-filter."""
    rules = _cloudtrail_rules()
    assert sum(one_pass(r) for r in rules) >= 57  # the AWS rules all run in the pass
    logs = _cloudtrail_logs()
    together = run_rules(rules, logs, NOW, workers=1)
    assert len(together) == len(rules)
    for rule, res in zip(rules, together):
        assert res.rows == _alone(rule, logs, prefilter=False), rule.meta.title
        assert res.events_read == 1042
    assert sum(bool(r.rows) for r in together) >= 25  # the comparison is not between empty results


@pytest.mark.slow
def test_one_pass_per_file_and_over_processes() -> None:
    """The same over each real log file alone, and the pass split over two processes (byte ranges, merged)."""
    rules = _cloudtrail_rules()
    logs = _cloudtrail_logs()
    for chosen in [[f] for f in logs]:
        for rule, res in zip(rules, run_rules(rules, chosen, NOW, workers=1)):
            assert res.rows == _alone(rule, chosen, prefilter=False), (rule.meta.title, chosen)
    aggregating = [r for r in rules if one_pass(r) and getattr(plan(r.pipeline), "aggregate", None) is not None]
    assert len(aggregating) >= 4  # the pass goes over processes only when every rule aggregates
    split = run_rules(aggregating, logs, NOW, workers=2, parallel_min_bytes=0)
    sequential = run_rules(aggregating, logs, NOW, workers=1)
    assert [r.rows for r in split] == [r.rows for r in sequential]
    assert [r.events_read for r in split] == [r.events_read for r in sequential]
    assert any(r.rows for r in split)


def test_prefilter_keeps_every_row_on_real_logs() -> None:
    logs = _cloudtrail_logs()
    for rule in _cloudtrail_rules():
        assert _alone(rule, logs, prefilter=True) == _alone(rule, logs, prefilter=False), rule.meta.title


def test_one_pass_rules_that_write_do_not_disturb_each_other(tmp_path: Path) -> None:
    """A rule that extends or renames works on its copy: the next rule sees the event as read."""
    rules_dir = tmp_path / "r"
    rules_dir.mkdir()
    (rules_dir / "a.yml").write_text("title: a\nlogsource: {product: aws, service: cloudtrail}\nquery: |\n"
                                     "  extend eventName = \"changed\"\n  | rename src = eventSource\n")
    (rules_dir / "b.yml").write_text("title: b\nlogsource: {product: aws, service: cloudtrail}\nquery: |\n"
                                     "  where eventName == \"RunInstances\"\n  | summarize n = count() by eventSource\n")
    log = tmp_path / "ev.ndjson"
    log.write_text('{"eventName": "RunInstances", "eventSource": "ec2.amazonaws.com"}\n' * 3)
    rules = _rules([rules_dir])
    together = run_rules(rules, [log], NOW)
    assert [r.rows for r in together] == [_alone(r, [log], False) for r in rules]
    assert together[1].rows == [{"eventSource": "ec2.amazonaws.com", "n": 3}]
    assert together[0].rows[0]["eventName"] == "changed" and "src" in together[0].rows[0]


def test_prefilter_reports_truncated_lines(tmp_path: Path) -> None:
    """On by default, the pre-filter still parses (and reports) a line that is not a whole object."""
    log = tmp_path / "ev.ndjson"
    log.write_text('{"eventName": "RunInstances"}\n{"eventName": "Describe\n{"eventName": "RunInstances"}\n')
    rule = _rules([ROOT / "rules" / "aws_ec2_suspicious_compute_deployments"])[0]
    res = run_rule(rule, [log], NOW)
    assert [(m.line, "invalid JSON" in m.message) for m in res.malformed] == [(2, True)]
    multi = run_rules([rule, rule], [log], NOW)
    assert [m.line for m in multi[0].malformed] == [2]


# ------------------------------------------------------------------------------------------------- the command


def test_hunt_one_rule_json_is_run_json() -> None:
    logs = _cloudtrail_logs()
    rule = ROOT / "rules" / "aws_secretsmanager_mass_secret_retrieval"
    hunted = sf("hunt", rule, *logs, "--format", "json", "--now", "2024-06-01T00:00:00Z")
    ran = sf("run", rule, *logs, "--format", "json", "--now", "2024-06-01T00:00:00Z")
    assert hunted.returncode == ran.returncode == 0, hunted.stderr + ran.stderr
    assert hunted.stdout == ran.stdout
    assert json.loads(hunted.stdout)  # the rule fires on these logs: a real comparison
    assert "hunt (python): 1 rule(s)" in hunted.stderr


def test_hunt_folders_table_and_summary() -> None:
    logs = _cloudtrail_logs()
    sigma = shared_path("data", "sigma", "rules", "cloud", "aws")
    r = sf("hunt", sigma, "rules/aws_ecr_upload_outside_business_hours", *logs)
    assert r.returncode == 0, r.stderr
    assert "== AWS STS AssumeRole Misuse" in r.stdout
    assert "hunt (python): 58 rule(s) run over 3 log file(s), 1042 event(s)" in r.stdout
    assert "Traceback" not in r.stderr


def test_hunt_bad_rule_is_reported_and_the_hunt_goes_on(tmp_path: Path) -> None:
    (tmp_path / "bad.yml").write_text("title: bad\nlogsource: {product: aws, service: cloudtrail}\n"
                                      "query: |\n  where nosuchfunc(eventName)\n")
    (tmp_path / "good.yml").write_text("title: good\nlogsource: {product: aws, service: cloudtrail}\n"
                                       "detection: {sel: {eventName: RunInstances}, condition: sel}\n")
    log = tmp_path / "ev.ndjson"
    log.write_text('{"eventName": "RunInstances"}\n{"eventName": "Other"}\n')
    r = sf("hunt", tmp_path, log)
    assert r.returncode == 1
    assert f"{tmp_path / 'bad.yml'}:4:" in r.stderr
    assert "== good" in r.stdout and "1 row(s) from 2 event(s)" in r.stdout
    assert "1 rule(s) could not run" in r.stdout
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["rules/aws_ecr_upload_outside_business_hours"], "no log files named"),
    (["x.ndjson"], "no such file"),
    ([], "no rules named"),
])
def test_hunt_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    log = tmp_path / "ev.ndjson"
    log.write_text('{"eventName": "RunInstances"}\n')
    given = [a if a != "x.ndjson" else str(tmp_path / "missing.ndjson") for a in args]
    r = sf("hunt", *given, *([log] if message != "no log files named" else []))
    assert r.returncode == 2
    assert message in r.stderr
    assert "Traceback" not in r.stderr


def test_hunt_folder_without_rules(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "ev.ndjson").write_text("{}\n")
    r = sf("hunt", ECR, logs, logs / "ev.ndjson")
    assert r.returncode == 2
    assert f"{logs}: error: a folder with no rule files" in r.stderr


def test_hunt_without_the_sql_engines_module_is_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An install without the SQL backend's runner (a trimmed build, a broken install): a clear error, exit 2."""
    from typer.testing import CliRunner

    from siemforge.cli.main import app

    monkeypatch.setitem(sys.modules, "siemforge.backends.sql.duckdb_run", None)  # import raises ImportError
    log = tmp_path / "ev.ndjson"
    log.write_text('{"eventName": "RunInstances"}\n')
    r = CliRunner().invoke(app, ["hunt", str(ECR), str(log), "--engine", "duckdb"])
    assert r.exit_code == 2, r.output
    assert "the duckdb engine needs siemforge's SQL backend" in r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)


def test_hunt_duckdb_reads_a_gz_cut_short_as_python_does(tmp_path: Path) -> None:
    """A .gz cut short: its whole lines before the damage are read and the damage is reported by line, on DuckDB as
    on the executor (DuckDB stopped the hunt, exit 2, where the executor read on)."""
    import gzip

    event = json.dumps({"eventSource": "ecr.amazonaws.com", "eventName": "PutImage",
                        "eventTime": "2024-05-04T23:00:00Z", "userIdentity": {"arn": "arn:aws:iam::1:user/u"}})
    log = tmp_path / "cut.ndjson.gz"
    log.write_bytes(gzip.compress(((event + "\n") * 2000).encode())[:300])
    runs = {e: sf("hunt", str(ECR), str(log), "--engine", e, "--format", "json") for e in ("python", "duckdb")}
    for r in runs.values():
        assert r.returncode == 0, r.stderr
        assert f"{log}:259: skipped: read error: Compressed file ended before the end-of-stream marker" in r.stderr
    [row] = json.loads(runs["duckdb"].stdout)
    assert row["count"] == 258 + 1 and json.loads(runs["python"].stdout) == [row]  # 259 whole lines; the error said at the last, as the executor says it


def test_hunt_duckdb_unreadable_log_is_an_error_naming_it(tmp_path: Path) -> None:
    """A log DuckDB cannot read (one pretty-printed document cut short) is a clear error naming the file, exit 2 and
    no traceback: it used to be an internal error (exit 70). (A Records document or a JSON array cut short is read
    as the executor reads it: tests/test_damaged_logs.py.)"""
    from typer.testing import CliRunner

    from siemforge.cli.main import app

    log = tmp_path / "document.json"
    log.write_text('{\n  "eventSource": "ecr.amazonaws.com",\n  "eventName": "PutImage",\n  "eventTi')
    r = CliRunner().invoke(app, ["hunt", str(ECR), str(log), "--engine", "duckdb"])
    assert r.exit_code == 2, r.output
    assert "error: the duckdb engine cannot read the logs:" in r.output
    assert log.name in r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)


@pytest.mark.parametrize("engine", ["python", "duckdb"])
def test_hunt_reports_malformed_lines_by_line_on_both_engines(tmp_path: Path, engine: str) -> None:
    """A text file, and an NDJSON file with a bad line and a line that is JSON but not an object: each bad line is
    said with its file and line, the good events are read, exit 0 (DuckDB's ignore_errors used to make them null rows
    silently, and the non-object line nulled every row of its file)."""
    event = json.dumps({"eventSource": "ecr.amazonaws.com", "eventName": "PutImage",
                        "eventTime": "2024-05-04T23:00:00Z", "userIdentity": {"arn": "arn:aws:iam::1:user/u"}})
    text = tmp_path / "text.ndjson"
    text.write_text("not json at all\n")
    mixed = tmp_path / "mixed.ndjson"
    mixed.write_text(f'{event}\n{{"eventName": \n"a string"\n{event}\n')
    r = sf("hunt", str(ECR), str(text), str(mixed), "--engine", engine, "--format", "json")
    assert r.returncode == 0, r.stderr
    for where in (f"{text}:1:", f"{mixed}:2:", f"{mixed}:3:"):
        assert where in r.stderr
    [row] = json.loads(r.stdout)  # both good events, none of the bad lines, on either engine
    assert row["count"] == 2
    # the engine's own logging says nothing at WARN (Spark's default profile printed hostname/native-library lines)
    assert not [line for line in r.stderr.splitlines() if " WARN " in line or "log level" in line], r.stderr


def test_hunt_duckdb_rows_equal_python() -> None:
    logs = _cloudtrail_logs()
    for rule in ("aws_secretsmanager_mass_secret_retrieval", "aws_ec2_password_data_many_instances"):
        args = ["hunt", f"rules/{rule}", *logs, "--format", "json", "--now", "2024-06-01T00:00:00Z"]
        py = sf(*args)
        duck = sf(*args, "--engine", "duckdb")
        assert py.returncode == duck.returncode == 0, duck.stderr
        key = lambda r: json.dumps(r, sort_keys=True)  # noqa: E731
        assert sorted(json.loads(duck.stdout), key=key) == sorted(json.loads(py.stdout), key=key)


def test_prefilter_blocks_keep_rows_reports_and_line_numbers(tmp_path: Path) -> None:
    """Runs of lines the pre-filter skips block by block (reader._skim): over several blocks with hits, misses,
    escapes, broken and blank lines, the rows, the malformed-line reports (with their line numbers) and the events
    read are those of parsing every line, in one process and split over two. (Every malformed line here is one the
    pre-filter parses: truncated, or holding the literal.)"""
    import random

    from siemforge.backends.executor import reader

    rng = random.Random(7)
    kinds = [
        '{"eventName": "RunInstances", "errorMessage": "", "n": %d, "pad": "%s"}',
        '{"eventName": "runinstances", "n": %d, "pad": "%s"}',
        '{"eventName": "DescribeInstances", "n": %d, "pad": "%s"}',
        '{"eventName": "Run\\u0049nstances", "n": %d, "pad": "%s"}',
        '{"eventName": "DescribeInstances", "n": %d, "pad": "%s"',  # truncated: reported
        '{"eventName": RunInstances, "n": %d, "pad": "%s"}',  # looks whole, broken inside, holds the literal
    ]
    lines = []
    for i in range(30000):
        broken = i < 10000  # the first blocks hold broken and blank lines (read line by line), the others not
        k = rng.choices(range(len(kinds)), weights=[3, 1, 90, 1, int(broken), 1])[0]
        lines.append(kinds[k] % (i, "x" * rng.randrange(0, 200)))
        if broken and rng.random() < 0.001:
            lines.append("")
    log = tmp_path / "ev.ndjson"
    log.write_text("\n".join(lines) + "\n")
    assert log.stat().st_size > 2 * reader.READ_BYTES
    (tmp_path / "r.yml").write_text("title: r\nlogsource: {product: aws, service: cloudtrail}\n"
                                    "query: |\n  where eventName =~ \"RunInstances\"\n  | project n, eventName\n")
    rule = _rules([tmp_path / "r.yml"])[0]
    last_block = log.read_bytes()[-reader.READ_BYTES:]
    last_block = last_block[last_block.index(b"\n") + 1:]
    skim = list(reader._skim_block(last_block, (b"runinstances",)))
    assert any(type(x) is int and x < 0 for x in skim) and any(type(x) is bytes for x in skim)  # runs skipped
    plain = run_rule(rule, [log], NOW, prefilter=False, workers=1)
    assert len(plain.rows) > 1000 and plain.malformed_total > 100
    for workers in (1, 2):
        skimmed = run_rule(rule, [log], NOW, prefilter=True, workers=workers, parallel_min_bytes=0)
        assert skimmed.rows == plain.rows
        assert skimmed.events_read == plain.events_read  # every malformed or blank line here is parsed
        assert [(m.line, m.message) for m in skimmed.malformed] == [(m.line, m.message) for m in plain.malformed]
