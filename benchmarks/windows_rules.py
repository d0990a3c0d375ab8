"""Every SigmaHQ Windows rule over the same Windows logs in one process: siemforge's executor against the pySigma
SQLite backend route as Zircolite runs it. Wall time, rules/s, events/s, peak RSS, and the rule hits each side finds.

    python3 -m venv /tmp/sqlite-venv && /tmp/sqlite-venv/bin/pip install pysigma-backend-sqlite \\
        pysigma-pipeline-sysmon pysigma-pipeline-windows
    python benchmarks/windows_rules.py --sqlite-python /tmp/sqlite-venv/bin/python [--repeat N] [--show N]

The SQLite side needs its own environment: pysigma-backend-sqlite 2.0 requires pySigma 1.x, siemforge pySigma 2.x.

Input: the rules under ../shared/data/sigma/rules/windows (2,407) and the OTRF Security-Datasets host logs
(../shared/data/windows/otrf-security-datasets/**/*.ndjson.gz: 10 simulations, 17,662 events, mostly background
noise of the lab hosts), read `--repeat` times (default 1) as separate events.

- siemforge: each rule compiled (compile time reported apart), the logs read once by the executor's reader into
  canonical rows, then every rule's IR run over them (`run_pipeline`), rules of one source sharing one pass over the
  records of that source (engine.run_pipelines).
- sqlite (Zircolite's approach, zircolite.py / its docs "Internals"): each rule converted by pySigma's SQLite backend
  with the `sysmon` and `windows-logsources` pipelines (Zircolite's "rules_windows_sysmon" ruleset: Sysmon's channel
  and EventID for each category, the channel for each service); the flat NDJSON events loaded into one in-memory
  table `logs` (every field a `TEXT COLLATE NOCASE` column, nested values as JSON text), a Python `regexp` function
  registered (re.search) as Zircolite does; then every query run. A query naming a column no event has fails in
  SQLite ("no such column"): Zircolite skips such a rule, so does this.
Rates are per CPU second of the run phase (process_time), since wall time on a shared machine follows its load;
peak RSS is each child process's own (wait4). Both sides report, per rule file, how many events matched; rules that
fire on one side only are listed with their logsource.

Why the hits differ on the default input (checked by hand, December 2026):
- process_creation rules count 2 events where SQLite counts 1: siemforge reads Security 4688 as process_creation
  too (sources/windows_process_creation.yml `records:`, NewProcessName → Image, …); the `sysmon` pipeline maps the
  category to Sysmon EventID 1 only.
- rules on `Provider_Name` (Security 1102 / System 104 log cleared, Ntfs volume mount) fire only on siemforge: OTRF
  names the provider `SourceName`; siemforge's reader gives OTRF records the canonical `Provider_Name` (as `.evtx`
  has it), Zircolite's flattening keeps the NDJSON's own names.
- the SQLite side cannot run 12 rules (the backend refuses them) and 183 queries fail with "no such column" (a
  field no event has: a rule with `NOT field=…` on such a field could have matched).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import resource
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[1] / "shared"
RULES = SHARED / "data" / "sigma" / "rules" / "windows"
LOGS = SHARED / "data" / "windows" / "otrf-security-datasets"


def rule_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.yml") if p.is_file())


def log_files(given: list[Path]) -> list[Path]:
    out: list[Path] = []
    for p in given or [LOGS]:
        out.extend(sorted(p.rglob("*.ndjson.gz")) if p.is_dir() else [p])
    return out


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ------------------------------------------------------------------------------------------------- siemforge side
def run_siemforge(rules: list[Path], logs: list[Path], repeat: int) -> dict[str, Any]:
    from datetime import UTC, datetime

    from siemforge.backends.executor.engine import run_pipelines
    from siemforge.backends.executor.reader import iter_events
    from siemforge.backends.executor.regex import check_rule
    from siemforge.compiler.api import compile_file

    t0 = time.perf_counter()
    compiled = []
    refused: Counter[str] = Counter()
    for f in rules:
        res = compile_file(f, root=f.parent)
        if res.rule is None:
            refused["does not compile"] += 1
            continue
        why = check_rule(res.rule)
        if why is not None:
            refused["executor refuses (regex RE2 cannot run)"] += 1
            continue
        compiled.append((str(f.relative_to(RULES.parent)), res.rule))
    t_compile = time.perf_counter() - t0
    t0 = time.perf_counter()
    events: list[dict[str, Any]] = []
    bad: list[object] = []
    for _ in range(repeat):
        for p in logs:
            events.extend(iter_events(p, bad.append))
    t_load = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), time.process_time()
    now = datetime(2024, 1, 1, tzinfo=UTC)
    results = run_pipelines([r for _, r in compiled], events, now)
    hits = {name: len(rows) for (name, _), rows in zip(compiled, results, strict=True) if rows}
    t_run, c_run = time.perf_counter() - t0, time.process_time() - c0
    return {"rules": len(rules), "usable": len(compiled), "refused": dict(refused), "events": len(events),
            "malformed": len(bad), "convert_s": t_compile, "load_s": t_load, "run_s": t_run, "run_cpu_s": c_run,
            "hits": hits,
            "rss_mib": _rss_mib()}


# ---------------------------------------------------------------------------------------------------- sqlite side
def run_sqlite(rules: list[Path], logs: list[Path], repeat: int) -> dict[str, Any]:
    import sqlite3
    import warnings

    from sigma.backends.sqlite import sqliteBackend
    from sigma.collection import SigmaCollection
    from sigma.pipelines.sysmon import sysmon_pipeline
    from sigma.pipelines.windows import windows_logsource_pipeline

    warnings.simplefilter("ignore")
    t0 = time.perf_counter()
    backend = sqliteBackend(sysmon_pipeline() + windows_logsource_pipeline())
    queries: list[tuple[str, str]] = []
    refused: Counter[str] = Counter()
    for f in rules:
        try:
            out = backend.convert(SigmaCollection.from_yaml(f.read_text(encoding="utf-8")))
        except Exception as exc:  # noqa: BLE001 - a rule the backend refuses is counted, as sigma-cli would
            refused[f"pySigma: {type(exc).__name__}"] += 1
            continue
        name = str(f.relative_to(RULES.parent))
        queries.extend((name, q) for q in out)
    t_convert = time.perf_counter() - t0

    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []
    for _ in range(repeat):
        for p in logs:
            with gzip.open(p, "rt", encoding="utf-8") as fh:
                for line in fh:
                    if line.strip():
                        rows.append(json.loads(line))
    columns: dict[str, str] = {}  # SQLite column names ignore case: ProcessId and ProcessID are one column
    for r in rows:
        for k in r:
            columns.setdefault(k.lower(), k)
    db = sqlite3.connect(":memory:")

    def regexp(pattern: str, value: Any) -> int:  # Zircolite's udf_regex
        if value is None:
            return 0
        return 1 if re.search(pattern, str(value)) else 0

    db.create_function("regexp", 2, regexp)
    names = list(columns.values())
    quoted = ", ".join(f'"{c}" TEXT COLLATE NOCASE' for c in names)
    db.execute(f"CREATE TABLE logs (row_id INTEGER PRIMARY KEY, {quoted})")
    marks = ", ".join("?" for _ in names)
    insert = f"INSERT INTO logs ({', '.join(chr(34) + c + chr(34) for c in names)}) VALUES ({marks})"

    def cell(v: Any) -> Any:
        return json.dumps(v) if isinstance(v, (dict, list)) else v

    keys = list(columns)

    def values(r: dict[str, Any]) -> list[Any]:
        lower = {k.lower(): v for k, v in r.items()}
        return [cell(lower.get(k)) for k in keys]

    db.executemany(insert, (values(r) for r in rows))
    t_load = time.perf_counter() - t0
    n_events = len(rows)
    del rows

    t0, c0 = time.perf_counter(), time.process_time()
    hits: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    for name, q in queries:
        try:
            n = len(db.execute(q).fetchall())
        except sqlite3.Error as exc:
            failed[re.sub(r":.*", "", str(exc))] += 1
            continue
        if n:
            hits[name] += n
    t_run, c_run = time.perf_counter() - t0, time.process_time() - c0
    return {"rules": len(rules), "usable": len({n for n, _ in queries}), "queries": len(queries),
            "refused": dict(refused), "query_errors": dict(failed), "events": n_events, "malformed": 0,
            "convert_s": t_convert, "load_s": t_load, "run_s": t_run, "run_cpu_s": c_run, "hits": dict(hits),
            "rss_mib": _rss_mib()}


# ---------------------------------------------------------------------------------------------------- the report
def _child(python: str, engine: str, args: argparse.Namespace) -> dict[str, Any] | str:
    cmd = [python, __file__, "--child", engine, "--rules", str(args.rules), "--repeat", str(args.repeat),
           *map(str, args.logs)]
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600,
                          env={**os.environ, "SIEMFORGE_NO_CACHE": "1"})
    if proc.returncode != 0:
        return (proc.stderr.strip().splitlines() or ["failed"])[-1]
    out: dict[str, Any] = json.loads(proc.stdout)
    out["wall_s"] = time.perf_counter() - started
    return out


def _logsource(name: str) -> str:
    try:
        text = (RULES.parent / name).read_text(encoding="utf-8")
    except OSError:
        return "?"
    m = re.search(r"^logsource:\n((?:  .*\n)+)", text, re.M)
    return " ".join(x.strip() for x in m.group(1).splitlines()) if m else "?"


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("logs", nargs="*", type=Path, help="OTRF NDJSON(.gz) files or folders")
    ap.add_argument("--rules", type=Path, default=RULES)
    ap.add_argument("--repeat", type=int, default=1, help="read the logs this many times (default 1)")
    ap.add_argument("--sqlite-python", help="a python with pysigma-backend-sqlite (see above); without it the "
                    "sqlite side is skipped")
    ap.add_argument("--engines", default="siemforge,sqlite")
    ap.add_argument("--show", type=int, default=15, help="rules firing on one side only: how many to list")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    rules, logs = rule_files(args.rules), log_files(args.logs)
    if args.child:
        run = run_siemforge if args.child == "siemforge" else run_sqlite
        print(json.dumps(run(rules, logs, args.repeat)))
        return
    print(f"{len(rules)} rules under {args.rules}; {len(logs)} log file(s) × {args.repeat}")
    results: dict[str, dict[str, Any]] = {}
    for engine in args.engines.split(","):
        python = sys.executable if engine == "siemforge" else args.sqlite_python
        if python is None:
            print(f"{engine}: skipped (no --sqlite-python)")
            continue
        r = _child(python, engine, args)
        if isinstance(r, str):
            print(f"{engine}: failed: {r}")
            continue
        results[engine] = r
    print("\nrates are per CPU second of the run phase (the machine may be shared: wall times vary with its load)")
    print(f"{'engine':<10} {'usable':>6} {'events':>7} {'convert s':>9} {'load s':>7} {'run s':>7} {'run cpu':>7} "
          f"{'wall s':>7} {'rules/s':>8} {'events/s':>9} {'rule×ev/s':>10} {'RSS MiB':>8} {'rules hit':>9} {'hits':>7}")
    for engine, r in results.items():
        run_s = max(r["run_cpu_s"], 1e-9)
        print(f"{engine:<10} {r['usable']:>6} {r['events']:>7} {r['convert_s']:>9.1f} {r['load_s']:>7.1f} "
              f"{r['run_s']:>7.1f} {r['run_cpu_s']:>7.1f} {r['wall_s']:>7.1f} {r['usable'] / run_s:>8.1f} "
              f"{r['events'] / run_s:>9.0f} "
              f"{r['usable'] * r['events'] / run_s:>10.0f} {r['rss_mib']:>8.0f} {len(r['hits']):>9} "
              f"{sum(r['hits'].values()):>7}")
        for k, v in sorted({**r["refused"], **r.get("query_errors", {})}.items()):
            print(f"{'':<10} not run: {k}: {v}")
    if len(results) == 2:
        a, b = results["siemforge"]["hits"], results["sqlite"]["hits"]
        both = set(a) & set(b)
        differ = sorted(n for n in both if a[n] != b[n])
        print(f"\nrules firing on both: {len(both)} ({len(differ)} with different hit counts); "
              f"siemforge only: {len(set(a) - set(b))}; sqlite only: {len(set(b) - set(a))}")
        for title, only, other in (("siemforge only", set(a) - set(b), a), ("sqlite only", set(b) - set(a), b)):
            print(f"\n{title}:")
            for n in sorted(only, key=lambda n: -other[n])[:args.show]:
                print(f"  {other[n]:>6}  {n}  [{_logsource(n)}]")
        print("\ndifferent counts (siemforge / sqlite):")
        for n in sorted(differ, key=lambda n: -abs(a[n] - b[n]))[:args.show]:
            print(f"  {a[n]:>6} / {b[n]:<6} {n}  [{_logsource(n)}]")


if __name__ == "__main__":
    main()
