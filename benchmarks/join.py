"""What a join costs: one rule with a join and the same rule's left side alone, over a replay of the real CloudTrail
events in ../shared/data/cloudtrail (their lines repeated, in order, until N events; in a temporary folder).

The executor holds every event of a rule with a join (the right side reads them a second time; docs/semantics.md
decision 70), so its peak memory grows with the logs where the left side alone streams; `hunt --engine duckdb` runs
the SQL JOIN. Each command runs in a fresh process (start-up included); peak memory is its maximum resident set.

    python benchmarks/join.py [--events 200000]
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from child import measure  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
LOGS = ROOT.parent / "shared" / "data" / "cloudtrail"
HEAD = "title: join benchmark\nlogsource: {product: aws, service: cloudtrail}\nquery: |\n  "
LEFT = 'where eventName startswith "Create" | project who = userIdentity.arn, eventName, t = _time'
RIGHT = ('join kind=inner (aws.cloudtrail | where eventName startswith "Attach" '
         '| summarize attaches = count() by who = userIdentity.arn) on who')


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=200_000)
    args = ap.parse_args()
    lines = [x for f in sorted(LOGS.glob("*.ndjson")) for x in f.read_bytes().splitlines() if x.strip()]
    if not lines:
        sys.exit(f"no events in {LOGS}")
    exe = str(Path(sys.executable).with_name("siemforge"))
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        replay = d / "replay.ndjson"
        with replay.open("wb") as out:  # line by line: this process stays small (a child's peak counts its fork)
            for line in itertools.islice(itertools.cycle(lines), args.events):
                out.write(line + b"\n")
        print(f"{args.events:,} events, {replay.stat().st_size / 1e6:.0f} MB")
        for name, query in [("left side alone", LEFT), ("with the join", f"{LEFT}\n  | {RIGHT}")]:
            rule = d / f"{name.replace(' ', '_')}.yml"
            rule.write_text(HEAD + query + "\n")
            for engine in ("run", "hunt --engine duckdb"):
                cmd = [exe, *engine.split(), str(rule), str(replay), "--format", "json"]
                m = measure(cmd)
                print(f"{name:16} {engine:20} {m.seconds:6.2f} s  peak {m.peak_mb:6.0f} MB  exit {m.exit_code}")


if __name__ == "__main__":
    main()
