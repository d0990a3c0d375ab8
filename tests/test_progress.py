"""Progress bars: drawn on a terminal, never into a pipe or a JSON document (`siemforge build`: tests/test_build.py).

A pipe is what these tests give the command; FORCE_COLOR makes Rich treat it as a terminal, so that the bar is drawn
and shows as the escape code that hides the cursor while it runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import ROOT

CMD = [sys.executable, "-m", "siemforge.cli.main"]
HIDE_CURSOR = "\x1b[?25l"
RULE = "rules/aws_ec2_password_data_many_instances"
LOGS = f"{RULE}/fixtures/stratus_burst.ndjson"


def sf(*args: str, force: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE")}
    if force:
        env["FORCE_COLOR"] = "1"
    return subprocess.run([*CMD, *args], cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)


COMMANDS = [
    ("run", ["run", RULE, LOGS], ["--format", "json"]),
    ("test", ["test", RULE], None),
    ("compile", ["compile", RULE, "--target", "all"], ["--format", "json"]),
    ("hunt", ["hunt", "rules", LOGS], ["--format", "json"]),  # the shared pass's bytes and events
    ("hunt-duckdb", ["hunt", RULE, LOGS, "--engine", "duckdb"], ["--format", "json"]),  # a bar of rules run
]


@pytest.mark.parametrize("args,json_args", [c[1:] for c in COMMANDS], ids=[c[0] for c in COMMANDS])
def test_progress_only_on_a_terminal_and_never_with_json(args: list[str], json_args: list[str] | None) -> None:
    piped = sf(*args, force=False)
    assert piped.returncode == 0, piped.stderr
    assert "\x1b[" not in piped.stderr and "\x1b[" not in piped.stdout
    forced = sf(*args, force=True)
    assert forced.returncode == 0, forced.stderr
    assert HIDE_CURSOR in forced.stderr
    if json_args is not None:
        as_json = sf(*args, *json_args, force=True)
        assert as_json.returncode == 0, as_json.stderr
        assert HIDE_CURSOR not in as_json.stderr and "\x1b[" not in as_json.stdout


def test_the_run_meter_counts_every_byte_and_event(tmp_path: Path) -> None:
    """What `run` shows: the reader's meter is told every byte of the file and every event, gzipped or not, and over
    the parallel byte ranges too."""
    import gzip

    from siemforge.backends.executor.engine import run_rule
    from siemforge.compiler.api import compile_file

    rule = compile_file(ROOT / RULE / "aws_ec2_password_data_many_instances.yml").rule
    assert rule is not None
    plain = ROOT / LOGS
    events = sum(1 for line in plain.read_bytes().splitlines() if line.strip())
    packed = tmp_path / "logs.ndjson.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    for path, workers in ((plain, 1), (packed, 1), (plain, 2)):
        told = [0, 0]

        def meter(n_bytes: int, n_events: int, told: list[int] = told) -> None:
            told[0] += n_bytes
            told[1] += n_events

        res = run_rule(rule, [path], workers=workers, parallel_min_bytes=0, meter=meter)
        assert told[1] == res.events_read == events, (path, workers)
        assert told[0] >= path.stat().st_size, (path, workers)  # the gzip header is read twice (its magic first)
        assert told[0] <= path.stat().st_size + 2, (path, workers)


def test_the_hunt_meter_follows_the_one_shared_read_of_the_logs() -> None:
    """`hunt` of several rules: the meter is told the bytes and events of the shared pass once, not once per rule."""
    from siemforge.backends.executor.multi import run_rules
    from siemforge.compiler.api import compile_file

    rules = [compile_file(ROOT / p).rule for p in (f"{RULE}/aws_ec2_password_data_many_instances.yml",
                                                   "rules/aws_secretsmanager_mass_secret_retrieval/"
                                                   "aws_secretsmanager_mass_secret_retrieval.yml")]
    assert all(r is not None for r in rules)
    plain = ROOT / LOGS
    events = sum(1 for line in plain.read_bytes().splitlines() if line.strip())
    for workers in (1, 2):
        told = [0, 0]

        def meter(n_bytes: int, n_events: int, told: list[int] = told) -> None:
            told[0] += n_bytes
            told[1] += n_events

        results = run_rules(rules, [plain], None, workers=workers, parallel_min_bytes=0,  # type: ignore[arg-type]
                            meter=meter)
        assert told[1] == events == results[0].events_read, workers
        assert plain.stat().st_size <= told[0] <= plain.stat().st_size + 2, workers
