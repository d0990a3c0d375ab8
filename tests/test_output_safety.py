"""Output folders shared between runs: two runs writing into one folder at once, and files an import wrote that a
later command writes again (cli/outputs.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from siemforge.cli.outputs import MANIFEST, OutputDir, OutputError

from helpers import ROOT, shared_path

CMD = [sys.executable, "-m", "siemforge.cli.main"]

RULE = """title: t
logsource: {product: aws, service: cloudtrail}
query: |
  where eventName == "RunInstances"
"""
CONFIG = '[build]\ntargets = ["splunk"]\nexports = []\ntests = false\nvalidate = false\n'


def _wait_for(path: Path, text: str, proc: subprocess.Popen[str], seconds: float = 60) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if text in path.read_text(encoding="utf-8"):
            return
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    raise AssertionError(f"{text!r} never printed: {path.read_text(encoding='utf-8')}")


def test_a_build_waits_while_another_run_writes_the_folder_and_then_keeps_its_files(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "r.yml").write_text(RULE)
    (tmp_path / "siemforge.toml").write_text(CONFIG)
    compiled = tmp_path / "out" / "compiled"
    other = OutputDir.open(compiled)  # another run, in the middle of writing this folder
    other.write("splunk/other.spl", "search x\n")
    log = tmp_path / "stderr.txt"
    with log.open("w") as fh:
        proc = subprocess.Popen([*CMD, "build", "--prune", "--format", "json"], cwd=tmp_path, stdout=subprocess.PIPE,
                                stderr=fh, text=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
        try:
            _wait_for(log, f"waiting for another siemforge run writing to {Path('out') / 'compiled'}", proc)
            assert not (compiled / "splunk" / "r.spl").exists()  # it waited before writing anything
            other.write("splunk/r.spl", "search y\n")  # the same file as the build: the build overwrites it after
            other.finish()
            stdout, _ = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, log.read_text()
    assert log.read_text().count("waiting for another") == 1
    # the build ran after the other run, as if one after the other: it read that run's record, so the file both wrote
    # is its own now, and the other run's file that no rule writes is an output of an earlier run, pruned and reported
    assert (compiled / "splunk" / "r.spl").read_text() != "search y\n"
    assert '"pruned"' in stdout and "other.spl" in stdout
    assert not (compiled / "splunk" / "other.spl").exists()
    assert "splunk/r.spl\t" in (compiled / MANIFEST).read_text()


def test_one_process_may_open_a_folder_it_holds_again() -> None:
    # a command writing one folder through two OutputDirs (an import's rules and their lookups) must not wait on itself
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        a = OutputDir.open(Path(tmp))
        b = OutputDir.open(Path(tmp))
        b.write("x.txt", "1\n")
        b.finish()
        a.write("y.txt", "2\n")
        a.finish()
        assert "x.txt\t" in (Path(tmp) / MANIFEST).read_text() and "y.txt\t" in (Path(tmp) / MANIFEST).read_text()


def test_baseline_writes_the_lookup_an_import_wrote(tmp_path: Path) -> None:
    detection = shared_path("data", "migration", "splunk", "detections",
                            "cloud_compute_instance_created_with_previously_unseen_instance_type.yml")
    macros = shared_path("data", "migration", "splunk", "macros")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    r = subprocess.run([*CMD, "import", "splunk", str(detection), "--macros", str(macros), "-o", str(tmp_path / "imp")],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    folder = tmp_path / "imp" / "cloud_compute_instance_created_with_previously_unseen_instance_type"
    csv = folder / "lookups" / "previously_seen_cloud_compute_instance_types.csv"
    assert csv.read_text().count("\n") == 1  # the importer's header-only table
    history = tmp_path / "history.json"
    history.write_text('{"eventName": "RunInstances", "eventSource": "ec2.amazonaws.com", "eventTime": '
                       '"2024-01-01T00:00:00Z", "requestParameters": {"instanceType": "t2.micro"}, '
                       '"userIdentity": {"arn": "a"}, "awsRegion": "us-east-1"}\n')
    r = subprocess.run([*CMD, "baseline", str(folder / f"{folder.name}.yml"), str(history), "--now",
                        "2024-01-02T00:00:00Z", "-o", str(csv)], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "1 row(s)" in r.stdout
    assert csv.read_text().splitlines()[1].startswith("t2.micro,")
    # importing again rewrites the rule and keeps the table's rows (it has the header the rule reads): the rule is
    # imported, the baseline's rows are not replaced by an empty table
    r = subprocess.run([*CMD, "import", "splunk", str(detection), "--macros", str(macros), "-o", str(tmp_path / "imp")],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 of 1 rule(s) imported" in r.stderr
    assert csv.read_text().splitlines()[1].startswith("t2.micro,")


def test_a_file_of_the_users_beside_an_imported_lookup_is_still_refused(tmp_path: Path) -> None:
    imp = OutputDir.open(tmp_path)
    imp.write("rule/lookups/t.csv", "a\n")
    imp.finish()
    (tmp_path / "rule" / "lookups" / "mine.csv").write_text("mine\n")
    d = OutputDir.open(tmp_path / "rule" / "lookups")
    d.write("t.csv", "a\nb\n")
    with pytest.raises(OutputError, match="not written by siemforge"):
        d.write("mine.csv", "x\n")
    d.finish()
    assert (tmp_path / "rule" / "lookups" / "mine.csv").read_text() == "mine\n"
    assert d.stale() == []  # what the import's manifest records is never this folder's to prune
