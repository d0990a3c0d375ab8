"""What `siemforge run`'s progress costs: one rule over a generated NDJSON file (plain and gzipped), sequentially,
with no meter, with a meter that only counts, and with the CLI's Rich bar (drawn into a buffer, as on a terminal).
Best of --repeat runs each.

    python benchmarks/run_meter.py [--events 200000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

RULE = """title: bench
logsource: {product: aws, service: cloudtrail}
query: |
  where eventName == "GetPasswordData"
  | summarize n = dcount(requestParameters.instanceId) by userIdentity.arn
"""


def write_logs(folder: Path, events: int) -> Path:
    rnd = random.Random(1)
    with (folder / "logs.ndjson").open("w") as fh:
        for i in range(events):
            fh.write(json.dumps({
                "eventName": rnd.choice(["GetPasswordData", "RunInstances", "DescribeInstances"]),
                "eventSource": "ec2.amazonaws.com", "eventTime": f"2024-01-01T00:00:{i % 60:02d}Z",
                "userIdentity": {"arn": f"arn:aws:iam::1:user/u{i % 50}"},
                "requestParameters": {"instanceId": f"i-{i}"}, "padding": "x" * 200}) + "\n")
    return folder / "logs.ndjson"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    from rich.console import Console

    from siemforge.backends.executor.engine import run_rule
    from siemforge.cli import progress
    from siemforge.compiler.api import compile_file

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "rule.yml").write_text(RULE)
        rule = compile_file(folder / "rule.yml").rule
        assert rule is not None
        plain = write_logs(folder, args.events)
        packed = folder / "logs.ndjson.gz"
        packed.write_bytes(gzip.compress(plain.read_bytes(), 6))
        progress.err = Console(file=io.StringIO(), force_terminal=True, width=120)  # a terminal nobody reads

        def counting(n_bytes: int, n_events: int) -> None:
            pass

        for path in (plain, packed):
            size = path.stat().st_size
            print(f"{path.name}: {size / 1e6:.1f} MB, {args.events} events")
            meters: list[tuple[str, Callable[[], object]]] = [
                ("no meter", lambda p=path: run_rule(rule, [p], workers=1)),
                ("counting meter", lambda p=path: run_rule(rule, [p], workers=1, meter=counting)),
            ]

            def with_bar(p: Path = path, size: int = size) -> object:
                with progress.reading(True, size) as meter:
                    return run_rule(rule, [p], workers=1, meter=meter)

            meters.append(("Rich bar", with_bar))
            for name, fn in meters:
                best = float("inf")
                for _ in range(args.repeat):
                    t = time.perf_counter()
                    fn()
                    best = min(best, time.perf_counter() - t)
                print(f"  {name:15s} {best:6.2f} s  {args.events / best:10,.0f} events/s")


if __name__ == "__main__":
    main()
