"""The parallel run (byte ranges on several processes, partial aggregates merged in order) gives the sequential
run's rows, order, counts and malformed-line reports."""

from __future__ import annotations

from pathlib import Path

import pytest

from siemforge.backends.executor.engine import run_rule
from siemforge.backends.executor.parallel import plan, split
from siemforge.compiler.api import compile_file, discover_rules

from helpers import ROOT, shared_path


def same(rule_file: Path, logs: list[Path]) -> bool:
    rule = compile_file(rule_file).rule
    assert rule is not None
    seq = run_rule(rule, logs, workers=1)
    par = run_rule(rule, logs, workers=3, parallel_min_bytes=0)
    assert par.rows == seq.rows
    assert par.events_read == seq.events_read
    assert [(s.rows_in, s.rows_out) for s in par.stats] == [(s.rows_in, s.rows_out) for s in seq.stats]
    assert [(m.file, m.line) for m in par.malformed] == [(m.file, m.line) for m in seq.malformed]
    return plan(rule.pipeline) is not None


def test_split_ranges_cover_the_file_at_line_starts(tmp_path: Path) -> None:
    p = tmp_path / "x.ndjson"
    p.write_bytes(b"".join(b'{"n": %d}\n' % i for i in range(1000)))
    ranges = split(p, 4)
    assert ranges[0][0] == 0 and ranges[-1][1] == p.stat().st_size
    data = p.read_bytes()
    for (a, b, lines), (c, _, _) in zip(ranges, ranges[1:]):
        assert b == c and data[b - 1:b] == b"\n" and data[:a].count(b"\n") == lines


@pytest.mark.slow  # the SigmaHQ corpus: `pytest -m 'not slow'` skips it locally; CI runs it
def test_every_sigma_aws_rule_same_in_parallel(tmp_path: Path) -> None:
    logs = sorted(shared_path("data", "cloudtrail").glob("*.ndjson"))
    # a malformed line in the middle of a file, to check line numbers across ranges
    joined = tmp_path / "all.ndjson"
    lines = b"".join(p.read_bytes() for p in logs).splitlines(keepends=True)
    joined.write_bytes(b"".join(lines[:500]) + b"{not json\n" + b"".join(lines[500:]))
    ran_parallel = 0
    for f in discover_rules([shared_path("data", "sigma", "rules", "cloud", "aws")]):
        ran_parallel += same(f, [joined])
    assert ran_parallel > 50


def test_bundled_rules_same_in_parallel() -> None:
    for f in discover_rules([ROOT / "rules"]):
        res = compile_file(f)
        assert res.doc is not None
        for case in res.doc.tests:
            if not case.lookups and case.now is None:
                same(f, list(case.logs))


def test_malformed_lines_keep_their_numbers_in_every_range(tmp_path: Path) -> None:
    """Each range numbers its own lines and the parent renumbers its reports: a bad line in the first, a middle and the
    last range, and one that opens a range, is reported at its line in the whole file, as the sequential run says."""
    logs = sorted(shared_path("data", "cloudtrail").glob("*.ndjson"))
    lines = b"".join(p.read_bytes() for p in logs).splitlines(keepends=True)[:1200]
    bad = [b"{not json\n", b'{"eventName": "RunInstances", oops}\n', b"[1, 2]\n", b"{truncated\n"]
    places = (3, 400, 801, len(lines) - 5)  # indices into the list as it grows: each bad line is line at + 1
    for at, line in zip(places, bad):
        lines.insert(at, line)
    joined = tmp_path / "bad.ndjson"
    joined.write_bytes(b"".join(lines))
    for k in (2, 3, 4):  # a bad line at the start of a range, whatever the cuts are
        starts = [a for a, _, _ in split(joined, k)]
        assert len(starts) == k
    for rule in ("aws_ec2_suspicious_compute_deployments", "aws_ecr_upload_outside_business_hours"):
        assert same(ROOT / "rules" / rule / f"{rule}.yml", [joined])
    rule = compile_file(ROOT / "rules" / "aws_ec2_suspicious_compute_deployments" /
                        "aws_ec2_suspicious_compute_deployments.yml").rule
    assert rule is not None
    par = run_rule(rule, [joined], workers=3, parallel_min_bytes=0, prefilter=False)
    assert [m.line for m in par.malformed] == [at + 1 for at in places]
