"""The SQL engines' clean pass over an NDJSON log (duckdb_run.is_clean): one read of the file by DuckDB's JSON parser
that finds lines which are not JSON objects and, since Okta event hook deliveries are read as their events, lines
holding a delivery. Measured side by side over a replay of the real CloudTrail events in ../shared/data/cloudtrail
(their lines repeated, in order, until N events; built in a temporary folder, never committed):

- the pass as it is (objects test + the delivery test), through `is_clean`;
- the same query without the delivery test (the pass before deliveries were read), for the cost of that test;
- the same file with one delivery line appended: `is_clean` is false, and the copy (`readable`) that unwraps it.

Each is timed in this process, the best of --runs (the first read warms the OS file cache).

    python benchmarks/clean_pass.py [--events 300000] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "cloudtrail"


def replay(out: Path, events: int) -> None:
    lines = [line for p in sorted(SHARED.glob("*.ndjson")) for line in p.read_bytes().splitlines() if line.strip()]
    with out.open("wb") as fh:
        for i in range(events):
            fh.write(lines[i % len(lines)] + b"\n")


def best(runs: int, fn: Callable[[], None]) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    import duckdb

    from siemforge.backends.executor.reader import Reports
    from siemforge.backends.sql import duckdb_run

    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=300_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="siemforge-bench-") as tmp:
        log = Path(tmp) / "cloudtrail.ndjson"
        replay(log, args.events)
        size = log.stat().st_size / 1e6
        print(f"{args.events} events, {size:.0f} MB")

        def objects_only() -> None:
            con = duckdb.connect()
            con.execute(f"SELECT count(*) FROM read_json_objects('{log}', format = 'newline_delimited') "
                        "WHERE json_type(json) <> 'OBJECT'").fetchone()
            con.close()

        def current() -> None:
            duckdb_run._CLEAN.clear()
            assert duckdb_run.is_clean(log)

        print(f"objects test only (before):      {best(args.runs, objects_only):.2f} s")
        print(f"objects + delivery test (is_clean): {best(args.runs, current):.2f} s")
        hook = {"eventType": "com.okta.event_hook", "data": {"events": [{"uuid": "1", "eventType": "x"}]}}
        with log.open("ab") as fh:
            fh.write(json.dumps(hook).encode() + b"\n")
        duckdb_run._CLEAN.clear()
        start = time.perf_counter()
        copy, ndjson = duckdb_run.readable(log, Reports())
        print(f"with one delivery line: is_clean {duckdb_run.is_clean(log)}, copy made in "
              f"{time.perf_counter() - start:.2f} s ({copy.stat().st_size / 1e6:.0f} MB, NDJSON {ndjson})")


if __name__ == "__main__":
    main()
