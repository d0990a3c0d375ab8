"""Reading Azure diagnostic records (Entra ID sign-in/audit, Azure Activity): events per second and peak memory of
`siemforge run` on a sign-in rule, against a plain orjson-per-line loop over the same file, each in a fresh process.

    python benchmarks/azure_read.py [--events 200000]

The file repeats the real Panther Entra ID and Azure Activity events (../shared/data/identity/); written twice: one
record per line (NDJSON), and Event Hub batches of 100 records per line (`{"records": [...]}`), which the reader
unwraps. The rule reads the sign-in source: every record is normalised (azure.py) and selected by its category.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "identity"

RULE = """title: bench signin
logsource: {product: azure, service: signinlogs}
detection:
  selection: {ResultType: 0, AuthenticationRequirement: singleFactorAuthentication}
  condition: selection
"""

MEASURE = r"""
import json, resource, sys, time
from pathlib import Path
kind, log, rule = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
t = time.perf_counter()
if kind == "orjson.loads":
    loads = __import__("orjson").loads
    n = 0
    with log.open("rb") as fh:
        for line in fh:
            doc = loads(line)
            n += len(doc["records"]) if "records" in doc else 1
    rows = 0
else:
    from datetime import UTC, datetime
    from siemforge.compiler.api import compile_file
    from siemforge.backends.executor.engine import run_rule
    res = run_rule(compile_file(rule).rule, [log], datetime(2030, 1, 1, tzinfo=UTC), {}, workers=1)
    n, rows = res.events_read, len(res.rows)
dt = time.perf_counter() - t
print(json.dumps({"events": n, "rows": rows, "seconds": dt,
                  "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=200_000)
    args = ap.parse_args()
    records = [json.loads(line) for name in ("azure-entra", "azure-activity")
               for line in (SHARED / name / "panther-analysis.ndjson").read_text().splitlines()]
    with tempfile.TemporaryDirectory() as d:
        rule = Path(d) / "rule.yml"
        rule.write_text(RULE)
        # written as it goes: this process stays small, and a child's peak RSS (which counts what its parent held
        # when it was started) is its own
        flat, batched = Path(d) / "flat.ndjson", Path(d) / "batched.ndjson"
        texts = [json.dumps(r) for r in records]
        with flat.open("w") as f1, batched.open("w") as f2:
            for i in range(args.events):
                f1.write(texts[i % len(texts)] + "\n")
            for i in range(0, args.events, 100):
                f2.write('{"records": [' + ", ".join(texts[j % len(texts)]
                                                     for j in range(i, min(i + 100, args.events))) + "]}\n")
        print(f"{args.events:,} records ({len(records)} real ones repeated); "
              f"NDJSON {flat.stat().st_size / 2**20:.1f} MiB, batches {batched.stat().st_size / 2**20:.1f} MiB")
        for label, log in (("NDJSON", flat), ("batches", batched)):
            for kind in ("orjson.loads", "siemforge"):
                out = subprocess.run([sys.executable, "-c", MEASURE, kind, str(log), str(rule)], check=True,
                                     capture_output=True, text=True).stdout
                m = json.loads(out)
                print(f"{label:8s} {kind:13s} {m['events'] / m['seconds']:>10,.0f} events/s  "
                      f"{m['peak_mib']:6.1f} MiB peak  ({m['events']:,} events, {m['rows']} rows)")


if __name__ == "__main__":
    main()
