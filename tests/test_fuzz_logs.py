"""The quick profile of benchmarks/fuzz_logs.py: hypothesis-made log files (NDJSON, JSON arrays, Records, gzip;
mutated with invalid UTF-8, NUL bytes, BOMs, CRLF, huge numbers, deep nesting, truncation) always give events and
skip reports, never a traceback; plain NDJSON read in parallel ranges gives what one sequential read gives.
Deterministic (derandomized) and a few seconds; the long run (10,000 cases per kind) is the benchmark."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from helpers import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import fuzz_logs  # noqa: E402


@pytest.mark.parametrize("kind", fuzz_logs.KINDS)
def test_readers_never_raise(kind: str, tmp_path: Path) -> None:
    path = tmp_path / f"case.{kind}"

    @settings(max_examples=75, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(fuzz_logs.inputs(kind))
    def case(data: bytes) -> None:
        path.write_bytes(data)
        fuzz_logs.check(path)

    case()
