"""Executor throughput and peak memory over a large NDJSON file built by repeating the real CloudTrail events,
against the bar of a plain `json.loads`-per-line Python loop over the same file. Each measurement runs in a fresh
process so that its peak RSS is its own (for a run on all cores: the largest of the parent and its workers).

    python benchmarks/executor_throughput.py [--events 200000] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cloudtrail"

FILTER_RULE = """title: bench filter
logsource: {product: aws, service: cloudtrail}
detection: {selection: {eventName: RunInstances}, condition: selection}
"""
AGGREGATE_RULE = """title: bench aggregate
logsource: {product: aws, service: cloudtrail}
query: |
  where eventSource endswith "amazonaws.com"
  | summarize n = count(), first = min(_time), last = max(_time), users = dcount(userIdentity.arn)
      by eventSource, eventName
  | where n > 1
"""

MEASURE = r"""
import json, resource, sys, time
from pathlib import Path
kind, log = sys.argv[1], Path(sys.argv[2])
t = time.perf_counter()
if kind in ("json.loads", "orjson.loads"):
    loads = json.loads if kind == "json.loads" else __import__("orjson").loads
    n = 0
    with log.open("rb") as fh:
        for line in fh:
            loads(line)
            n += 1
    rows = n
else:
    from siemforge.backends.executor.engine import run_rule
    from siemforge.compiler.api import compile_file
    res = compile_file(Path(sys.argv[3]))
    if res.rule is None:
        raise SystemExit("rule does not compile: " + "; ".join(map(str, res.diagnostics)))
    out = run_rule(res.rule, [log], prefilter="+prefilter" in kind, workers=None if "+parallel" in kind else 1)
    n, rows = out.events_read, len(out.rows)
elapsed = time.perf_counter() - t
# the largest process: this one, or the largest worker when the run used several
peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
print(json.dumps({"events": n, "rows": rows, "seconds": elapsed, "rss_mb": peak / 1024}))
"""


def build(out: Path, events: int) -> None:
    lines = []
    for f in sorted(SHARED.glob("*.ndjson")):
        lines += [ln for ln in f.read_text(encoding="utf-8").splitlines() if ln.strip()]
    if not lines:
        raise SystemExit(f"no CloudTrail events under {SHARED}")
    with out.open("w", encoding="utf-8") as fh:
        for i in range(events):
            fh.write(lines[i % len(lines)] + "\n")


def measure(kind: str, log: Path, rule: Path | None = None) -> dict[str, float]:
    cmd = [sys.executable, "-c", MEASURE, kind, str(log)] + ([str(rule)] if rule else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        log = args.out or d / "cloudtrail.ndjson"
        build(log, args.events)
        (d / "filter.yml").write_text(FILTER_RULE)
        (d / "aggregate.yml").write_text(AGGREGATE_RULE)
        size_mb = log.stat().st_size / 1e6
        print(f"{args.events:,} events, {size_mb:.0f} MB of NDJSON (real CloudTrail records repeated)")
        runs = [("json.loads loop (the bar)", measure("json.loads", log)),
                ("orjson.loads loop", measure("orjson.loads", log)),
                ("filter rule, 1 process", measure("rule", log, d / "filter.yml")),
                ("filter rule --prefilter", measure("rule+prefilter", log, d / "filter.yml")),
                ("filter rule, all cores", measure("rule+parallel", log, d / "filter.yml")),
                ("aggregate rule, 1 process", measure("rule", log, d / "aggregate.yml")),
                ("aggregate rule, all cores", measure("rule+parallel", log, d / "aggregate.yml"))]
        bar = runs[0][1]["seconds"]
        print(f"{'measurement':28} {'events':>9} {'rows':>7} {'seconds':>8} {'events/s':>10} {'peak MB':>8} "
              f"{'vs bar':>7}")
        for name, r in runs:
            print(f"{name:28} {int(r['events']):>9,} {int(r['rows']):>7,} {r['seconds']:>8.2f} "
                  f"{r['events'] / r['seconds']:>10,.0f} {r['rss_mb']:>8.0f} {bar / r['seconds']:>6.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
