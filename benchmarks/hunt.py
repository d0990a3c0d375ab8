"""Hunting at volume, side by side in one run, over a replay of the real CloudTrail events in ../shared/data/cloudtrail
(their lines repeated, in order, until N events; built in a temporary folder, or in --dir, never committed):

- the bar: a Python loop `for line in f: json.loads(line)` plus the rule's two equality checks (in-process time);
- `siemforge run` of the ECR seed rule and of the EC2 aggregate rule, start-up included (goal: >= 3x the loop);
- `siemforge run` on an empty file, the median of --runs (goal: <= 0.3 s);
- `siemforge hunt --engine duckdb` of both (goal: >= 5x the loop), skipped with a message when the engine is not
  importable (it comes with the SQL backend);
- the 57 SigmaHQ AWS rules in one `siemforge hunt` vs 57 separate `siemforge run`s vs pySigma's sqlite backend route
  (convert each rule with pysigma-backend-sqlite, load the events into an SQLite table of flattened columns, run the
  57 queries), over a smaller replay (--sigma-events: 57 separate runs of a large file take long);
- the multi-literal scan `hunt` uses to route lines to rules: pyahocorasick vs hyperscan, over the same lines.

Every command runs in a fresh process; peak memory is its maximum resident set (with its worker processes). Each
time is printed as wall seconds and CPU seconds (user + system, worker processes included): on a shared machine the
wall time says more about the load than about siemforge. Commands run as an installed siemforge runs: with Python's
bytecode cache written (PYTHONDONTWRITEBYTECODE is dropped from their environment) and with the compiled-rule cache
warm (each rule is run once on an empty file first).

    python benchmarks/hunt.py [--events 1000000] [--sigma-events 100000] [--runs 7] [--dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
ECR = ROOT / "rules" / "aws_ecr_upload_outside_business_hours"
EC2 = ROOT / "rules" / "aws_ec2_suspicious_compute_deployments"
SIGMA_AWS = SHARED / "sigma" / "rules" / "cloud" / "aws"
NOW = "2024-06-01T00:00:00Z"

# the first filter of each rule, as the loop checks it
CHECKS = {
    "ECR": ("eventSource", "ecr.amazonaws.com", "eventName", "PutImage"),
    "EC2": ("eventName", "RunInstances", "errorMessage", None),
}

LOOP = r"""
import json, sys, time
path, k1, v1, k2, v2 = sys.argv[1:6]
v2 = None if v2 == "-" else v2
t, c = time.perf_counter(), time.process_time()
n = 0
with open(path, "rb") as f:
    for line in f:
        d = json.loads(line)
        if d.get(k1) == v1 and d.get(k2) == v2:
            n += 1
print(time.perf_counter() - t, n, time.process_time() - c)
"""


# without PYTHONDONTWRITEBYTECODE: with it, every start-up compiles siemforge's modules from source again (~0.2 s)
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def siemforge() -> list[str]:
    script = Path(sys.executable).parent / "siemforge"
    return [str(script)] if script.exists() else [sys.executable, "-m", "siemforge.cli.main"]


def timed(cmd: list[str]) -> tuple[float, float, str, int, float]:
    """(wall seconds, peak RSS in MB, stdout, exit code, CPU seconds: user + system, its workers' included) of a
    command in a fresh process; its stderr is shown when it fails."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=ENV)
        _, status, usage = os.wait4(proc.pid, 0)  # the child's own rusage (its waited-for workers included)
        wall = time.perf_counter() - t
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode()
        if code not in (0, 1):
            print(f"    {' '.join(cmd[-6:])}: exit {code}: {err.read().decode()[-500:]}")
    return wall, usage.ru_maxrss / 1024, stdout, code, usage.ru_utime + usage.ru_stime


def build(path: Path, events: int) -> int:
    lines = [line for f in sorted((SHARED / "cloudtrail").glob("*.ndjson"))
             for line in f.read_bytes().splitlines() if line.strip()]
    with path.open("wb") as out:
        for i in range(events):
            out.write(lines[i % len(lines)] + b"\n")
    return path.stat().st_size


def rows_of(stdout: str) -> int:
    try:
        doc = json.loads(stdout)
    except json.JSONDecodeError:
        return -1
    return len(doc) if isinstance(doc, list) else -1


def line(name: str, seconds: float, bar: float | None = None, extra: str = "", cpu: float | None = None,
         bar_cpu: float | None = None) -> None:
    """One measurement: wall seconds and its ratio to the bar (the bar's time / this one: higher is faster); CPU
    seconds and that ratio too when given (on a loaded machine the wall time says more about the load)."""
    ratio = f"{bar / seconds:6.2f}x" if bar else "       "
    cpu_text = f"cpu {cpu:7.2f} s" + (f" {bar_cpu / cpu:6.2f}x" if bar_cpu else "        ") if cpu is not None else ""
    print(f"  {name:48} {seconds:8.2f} s {ratio}  {cpu_text:23} {extra}", flush=True)


def duckdb_available() -> bool:
    probe = subprocess.run([sys.executable, "-c", "import siemforge.backends.sql.duckdb_run"], capture_output=True)
    return probe.returncode == 0


def sqlite_route(log: Path) -> tuple[float, float, float, int, int] | None:
    """pySigma's route: (convert s, load s, query s, rules converted, rows). None without the backend."""
    try:
        from sigma.backends.sqlite import sqliteBackend
        from sigma.collection import SigmaCollection
    except ImportError:
        return None
    t = time.perf_counter()
    backend = sqliteBackend()
    queries: list[str] = []
    for f in sorted(SIGMA_AWS.rglob("*.yml")):
        try:
            queries.extend(backend.convert(SigmaCollection.from_yaml(f.read_text())))
        except Exception as exc:  # a rule the backend refuses: counted, as a user would see it
            print(f"    pySigma sqlite: {f.name}: {type(exc).__name__}: {str(exc)[:80]}")
    convert = time.perf_counter() - t
    t = time.perf_counter()
    db = sqlite3.connect(":memory:")
    # SQLite has the REGEXP operator but no function behind it (https://www.sqlite.org/lang_expr.html#regexp): a user of
    # this route registers one
    db.create_function("REGEXP", 2, lambda pattern, value: value is not None and re.search(pattern, str(value))
                       is not None, deterministic=True)
    rows: list[dict[str, Any]] = []
    columns: dict[str, str] = {}  # SQLite's column names ignore case: requestId and requestID are one column
    with log.open("rb") as fh:
        for raw in fh:
            flat: dict[str, Any] = {}
            _flatten(json.loads(raw), "", flat)
            rows.append({columns.setdefault(k.lower(), k): v for k, v in flat.items()})
    names = list(columns.values())
    db.execute("CREATE TABLE logs (" + ", ".join(f'"{c}"' for c in names) + ")")
    db.executemany("INSERT INTO logs VALUES (" + ", ".join("?" * len(names)) + ")",
                   ([r.get(c) for c in names] for r in rows))
    load = time.perf_counter() - t
    t = time.perf_counter()
    found = failed = 0
    for q in queries:
        try:
            found += len(db.execute(q).fetchall())
        except sqlite3.Error as exc:  # a field no event has is no column: the query fails
            failed += 1
            print(f"    pySigma sqlite: query failed: {exc}: {q[:80]}")
    return convert, load, time.perf_counter() - t, len(queries) - failed, found


def _flatten(v: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(v, dict):
        for k, x in v.items():
            _flatten(x, f"{prefix}.{k}" if prefix else k, out)
    elif isinstance(v, list):
        out[prefix] = json.dumps(v)
    else:
        out[prefix] = v


def scan_bench(log: Path) -> None:
    """The routing scan over the replay's lines: pyahocorasick (what hunt uses) vs hyperscan."""
    from siemforge.backends.executor.prefilter import needles
    from siemforge.compiler import ir
    from siemforge.compiler.api import compile_rules, discover_rules

    found: set[str] = set()
    for f in discover_rules([SIGMA_AWS]):
        for res in compile_rules(f):
            if res.rule is not None and res.rule.pipeline.stages and isinstance(res.rule.pipeline.stages[0],
                                                                                 ir.Filter):
                found.update(n.lower() for n in needles(res.rule.pipeline.stages[0].predicate,
                                                        res.rule.pipeline.source.time_column) or ())
    lines = log.read_bytes().splitlines()
    print(f"  {len(found)} distinct literals of the 57 rules, {len(lines):,} lines")
    import ahocorasick

    automaton = ahocorasick.Automaton()
    for i, n in enumerate(sorted(found)):
        automaton.add_word(n, i)
    automaton.make_automaton()
    t = time.perf_counter()
    hits_ac = sum(len({i for _, i in automaton.iter(x.lower().decode("latin-1"))}) for x in lines)
    line("pyahocorasick: every literal of every line", time.perf_counter() - t, extra=f"{hits_ac:,} hits")
    try:
        import hyperscan
    except ImportError:
        print("  hyperscan: not installed (pip install 'siemforge[bench]')")
        return
    db = hyperscan.Database()
    pats = sorted(found)
    db.compile(expressions=[re.escape(p).encode() for p in pats],
               ids=list(range(len(pats))), elements=len(pats),
               flags=[hyperscan.HS_FLAG_SINGLEMATCH | hyperscan.HS_FLAG_CASELESS] * len(pats))
    hits: list[int] = [0]

    def on_match(i: int, start: int, end: int, flags: int, context: Any) -> None:
        hits[0] += 1

    t = time.perf_counter()
    for x in lines:
        db.scan(x, match_event_handler=on_match)
    line("hyperscan: every literal of every line", time.perf_counter() - t, extra=f"{hits[0]:,} hits")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--sigma-events", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=7, help="runs of `siemforge run` on an empty file")
    ap.add_argument("--dir", type=Path, help="where to build the replay files (default: a temporary folder)")
    args = ap.parse_args()
    if not (SHARED / "cloudtrail").is_dir():
        raise SystemExit(f"needs {SHARED / 'cloudtrail'} (the project's shared/ data beside the checkout)")
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.dir or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        log = folder / f"cloudtrail-{args.events}.ndjson"
        size = build(log, args.events)
        print(f"replay: {args.events:,} events, {size / 1e6:.0f} MB ({log}); {os.cpu_count()} cores")
        sf = siemforge()
        empty = folder / "empty.ndjson"
        empty.write_bytes(b"")
        for rule in (ECR, EC2):  # warm: Python's bytecode cache and the compiled-rule cache, as after a first run
            timed([*sf, "run", str(rule), str(empty)])
        for name, rule in (("ECR", ECR), ("EC2", EC2)):
            k1, v1, k2, v2 = CHECKS[name]
            out = subprocess.run([sys.executable, "-c", LOOP, str(log), k1, v1, k2, v2 or "-"], capture_output=True,
                                 text=True, check=True).stdout.split()
            bar, bar_cpu = float(out[0]), float(out[2])
            print(f"{name} rule ({rule.name}):")
            line("json.loads loop + two equality checks (the bar)", bar, bar, f"{out[1]} matches", bar_cpu, bar_cpu)
            wall, rss, stdout, rc, cpu = timed([*sf, "run", str(rule), str(log), "--format", "json", "--now", NOW])
            line("siemforge run (start-up included)", wall, bar, f"{rows_of(stdout)} rows, peak {rss:.0f} MB"
                 + (f", exit {rc}" if rc else ""), cpu, bar_cpu)
            if duckdb_available():
                wall, rss, stdout, rc, cpu = timed([*sf, "hunt", str(rule), str(log), "--engine", "duckdb",
                                                    "--format", "json", "--now", NOW])
                line("siemforge hunt --engine duckdb", wall, bar, f"{rows_of(stdout)} rows, peak {rss:.0f} MB"
                     + (f", exit {rc}" if rc else ""), cpu, bar_cpu)
            else:
                print("  siemforge hunt --engine duckdb: skipped (the duckdb engine, from the SQL backend, is not "
                      "importable here)")
        runs = [timed([*sf, "run", str(ECR), str(empty)]) for _ in range(args.runs)]
        times = [r[0] for r in runs]
        cpus = [r[4] for r in runs]
        print(f"siemforge run on an empty file: median {statistics.median(times):.3f} s, min {min(times):.3f} s, "
              f"median cpu {statistics.median(cpus):.3f} s ({args.runs} runs; goal <= 0.3 s)")

        if not SIGMA_AWS.is_dir():
            print(f"SigmaHQ AWS rules: skipped ({SIGMA_AWS} is missing)")
            return
        small = folder / f"cloudtrail-{args.sigma_events}.ndjson"
        build(small, args.sigma_events)
        rules = sorted(SIGMA_AWS.rglob("*.yml"))
        print(f"the {len(rules)} SigmaHQ AWS rules over {args.sigma_events:,} events:")
        wall, rss, stdout, rc, cpu = timed([*sf, "hunt", str(SIGMA_AWS), str(small), "--format", "json", "--now",
                                            NOW])
        one, one_cpu = wall, cpu
        found = sum(len(r["rows"]) for r in json.loads(stdout)) if rc == 0 else -1
        line("one siemforge hunt (python engine)", wall, None, f"{found} rows, peak {rss:.0f} MB", cpu)
        wall = cpu = 0.0
        found = 0
        for r in rules:
            w, _, stdout, _, c = timed([*sf, "run", str(r), str(small), "--format", "json", "--now", NOW])
            wall, cpu = wall + w, cpu + c
            found += max(rows_of(stdout), 0)
        line(f"{len(rules)} separate siemforge runs", wall, None,
             f"{found} rows; one hunt is {wall / one:.1f}x faster (cpu {cpu / one_cpu:.1f}x)", cpu)
        route = sqlite_route(small)
        if route is None:
            print("  pySigma sqlite route: skipped (pip install 'siemforge[bench]' for pysigma-backend-sqlite)")
        else:
            convert, load, query, n, found = route
            line(f"pySigma sqlite: convert + load + query ({n} ran)", convert + load + query, None,
                 f"{found} rows (convert {convert:.2f} s, load {load:.2f} s, query {query:.2f} s, in-process; "
                 "sqlite's = is case-sensitive)")
        print("routing lines to rules:")
        scan_bench(small)


if __name__ == "__main__":
    main()
