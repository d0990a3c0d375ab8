"""False positives: every SigmaHQ Windows rule over benign-looking Windows logs, with siemforge's executor. A note,
not a test: it prints how many rules fire and the worst offenders (rule, hits, on which file).

    python benchmarks/windows_false_positives.py [--show N]

Two inputs (../shared/data/windows, provenance in its SOURCES.md):
- `baseline/omerbenamram-evtx-samples/*.evtx`: the evtx parser's sample logs (Security, System, Application, Sysmon of
  ordinary machines; not a curated goodware set, but no attack is known in them). Any hit there is a candidate false
  positive.
- `otrf-security-datasets/**/*.ndjson.gz`: 10 attack simulations, each the full event stream of the lab hosts during
  the simulation, so mostly background noise. A hit there may be the simulated attack; a rule that fires in at least
  `--spread` (default 3) of the simulations, which share only the lab's background, is counted as firing on the
  background.
Rules run as `siemforge hunt` will run them: all rules over each file's events in one process
(engine.run_pipelines). The rule's `level` is shown: a `low`/`informational` rule is expected to be noisy.
"""

from __future__ import annotations

import argparse
import re
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[1] / "shared"
RULES = SHARED / "data" / "sigma" / "rules" / "windows"
WINDOWS = SHARED / "data" / "windows"


def main() -> None:
    from siemforge.backends.executor.engine import run_pipelines
    from siemforge.backends.executor.reader import iter_events
    from siemforge.backends.executor.regex import check_rule
    from siemforge.compiler.api import compile_file

    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--rules", type=Path, default=RULES)
    ap.add_argument("--show", type=int, default=15, help="worst offenders to list per input (default 15)")
    ap.add_argument("--spread", type=int, default=3, help="simulations a rule must fire in to count as firing on "
                    "the OTRF background (default 3)")
    args = ap.parse_args()

    t0 = time.perf_counter()
    rules: list[tuple[str, str, Any]] = []  # (file name, level, IR)
    for f in sorted(args.rules.rglob("*.yml")):
        res = compile_file(f, root=f.parent)
        if res.rule is not None and check_rule(res.rule) is None:
            rules.append((f.name, res.rule.meta.level or "-", res.rule))
    print(f"{len(rules)} of {len(list(args.rules.rglob('*.yml')))} rules compile and run on the executor "
          f"({time.perf_counter() - t0:.0f} s)")
    now = datetime(2024, 1, 1, tzinfo=UTC)
    inputs = {
        "baseline": sorted((WINDOWS / "baseline").rglob("*.evtx")),
        "otrf": sorted((WINDOWS / "otrf-security-datasets").rglob("*.ndjson.gz")),
    }
    for label, files in inputs.items():
        hits: dict[str, dict[str, int]] = defaultdict(dict)  # rule -> file -> hits
        events = 0
        for f in files:
            bad: list[object] = []
            rows = list(iter_events(f, bad.append))
            events += len(rows)
            for (name, _, _), found in zip(rules, run_pipelines([r for _, _, r in rules], rows, now), strict=True):
                if found:
                    hits[name][f.name] = len(found)
        levels = {name: level for name, level, _ in rules}
        total = sum(sum(v.values()) for v in hits.values())
        print(f"\n== {label}: {len(files)} files, {events} events: {len(hits)} rules fire, {total} hits")
        by_level: dict[str, int] = defaultdict(int)
        for name in hits:
            by_level[levels[name]] += 1
        print("   rules firing by level: " + ", ".join(f"{k} {v}" for k, v in sorted(by_level.items())))
        if label == "otrf":
            spread = {n: v for n, v in hits.items() if len(v) >= args.spread}
            print(f"   firing in ≥ {args.spread} of {len(files)} simulations (the lab's background): {len(spread)} "
                  f"rules, {sum(sum(v.values()) for v in spread.values())} hits")
        print("   worst offenders (hits, level, rule, files):")
        for name, per_file in sorted(hits.items(), key=lambda kv: -sum(kv[1].values()))[:args.show]:
            where = ", ".join(f"{re.sub(r'[.](ndjson[.]gz|evtx)$', '', k)}×{v}"
                              for k, v in sorted(per_file.items(), key=lambda kv: -kv[1])[:3])
            more = f" +{len(per_file) - 3} more" if len(per_file) > 3 else ""
            print(f"   {sum(per_file.values()):>6}  {levels[name]:<13} {name}  [{where}{more}]")


if __name__ == "__main__":
    main()
