"""Seen-before tables: a rule's `baselines:` compiles to a pipeline the executor runs over history logs, and to
Splunk's initial and update searches (KV store) — the same decision from the same table."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import lark
import pytest

from siemforge.backends.executor.baseline import build_table, table_csv
from siemforge.backends.spl.app import AppSpec, build_app
from siemforge.backends.spl.baseline import baseline_searches
from siemforge.compiler.api import compile_file

from helpers import ROOT

RULE = ROOT / "rules" / "cloud_instance_created_unseen_image" / "cloud_instance_created_unseen_image.yml"
FIX = RULE.parent / "fixtures"


def rule():  # type: ignore[no-untyped-def]
    r = compile_file(RULE).rule
    assert r is not None
    return r


def test_table_from_history() -> None:
    r = rule()
    [b] = r.baselines
    rows = build_table(b, [FIX / "history_without_one_image.ndjson"], datetime(2025, 1, 1, tzinfo=UTC))
    text = table_csv(b, rows)
    lines = text.splitlines()
    assert lines[0] == "image_id,firstTimeSeen,lastTimeSeen,enough_data"
    assert len(lines) == 1 + 5 and "ami-08038de0f4f90a9f0" not in text
    assert "ami-026b57f3c383c2eec,1666275403,1666275403,1" in lines  # epoch seconds; warmed up


def test_not_enough_history_sets_enough_data_0() -> None:
    [b] = rule().baselines
    rows = build_table(b, [FIX / "runinstances.ndjson"], datetime(2024, 12, 17, tzinfo=UTC))
    # the newest record (2024-12-16) is not a week old, but the oldest (2022-10-14) is: the table is warm
    assert {r["enough_data"] for r in rows} == {1}
    rows = build_table(b, [FIX / "runinstances.ndjson"], datetime(2022, 10, 15, tzinfo=UTC))
    assert {r["enough_data"] for r in rows} == {0}


def test_splunk_initial_and_update_searches_parse() -> None:
    r = rule()
    initial, update = baseline_searches(r, r.baselines[0], None)
    assert initial.startswith("| tstats") and initial.endswith("| outputlookup previously_seen_cloud_compute_images")
    assert "| inputlookup append=t previously_seen_cloud_compute_images" in update
    assert "stats min(firstTimeSeen) AS firstTimeSeen max(lastTimeSeen) AS lastTimeSeen by image_id" in update
    grammar = lark.Lark((ROOT / "grammars" / "spl.lark").read_text(), parser="earley")
    grammar.parse(initial)
    grammar.parse(update)


def test_app_has_baseline_stanzas_and_kvstore() -> None:
    files = build_app([rule()], None, AppSpec())
    saved = files["default/savedsearches.conf"].decode()
    assert "[siemforge - previously_seen_cloud_compute_images - Baseline Initial]" in saved
    assert "[siemforge - previously_seen_cloud_compute_images - Baseline Update]" in saved
    assert "external_type = kvstore" in files["default/transforms.conf"].decode()
    assert "[previously_seen_cloud_compute_images]" in files["default/collections.conf"].decode()
    assert "lookups/previously_seen_cloud_compute_images.csv" not in files


def test_baseline_cli(tmp_path: Path) -> None:
    out = tmp_path / "seen.csv"
    proc = subprocess.run([sys.executable, "-m", "siemforge.cli.main", "baseline", str(RULE),
                           str(FIX / "runinstances.ndjson"), "-o", str(out), "--now", "2025-01-01T00:00:00Z"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert out.read_text().count("\n") == 7


def test_baseline_errors_are_positioned(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("image_id,owner\n")
    p = tmp_path / "r.yml"
    p.write_text("title: t\nlogsource: {product: aws, service: cloudtrail}\nlookups: {t: t.csv}\n"
                 "baselines:\n  nope: {key: image_id}\n  t: {key: eventName}\nquery: |\n  where true\n")
    res = compile_file(p)
    assert res.rule is None
    first = next(d for d in res.diagnostics if d.severity.value == "error")
    assert "baseline 'nope' fills no declared lookup" in first.message and first.span is not None
    assert first.span.line == 5
    p.write_text("title: t\nlogsource: {product: aws, service: cloudtrail}\nlookups: {t: t.csv}\n"
                 "baselines:\n  t: {key: eventName}\nquery: |\n  where true\n")
    res = compile_file(p)
    assert res.rule is None and "needs the columns" in str(res.diagnostics[-1])


def test_a_rules_tests_leave_no_table_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A test with `baselines:` builds its seen-before table in a temporary folder: removed after the test (every
    `siemforge test` and `build` left one folder per such test in the temp folder; a machine here held 1,162)."""
    import tempfile

    from siemforge.backends.executor.testing import run_rule_tests

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    report = run_rule_tests(RULE)
    assert report.outcomes and all(o.passed for o in report.outcomes), [o.detail for o in report.outcomes]
    assert list(tmp_path.iterdir()) == []
