"""Start-up cost of the `siemforge` command: importing the CLI, `--help`, `targets` (loads every target, reads the
binding files) and `version`. Each is a fresh process, run N times; the minimum and the median wall time are printed
(the minimum is the least disturbed by other load on the machine).

    python benchmarks/startup.py [--runs 15]

It measures the siemforge that `python` imports (the editable checkout, or PYTHONPATH=DIR for an unpacked wheel).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

CASES = {
    "import siemforge.cli.main": [sys.executable, "-c", "import siemforge.cli.main"],
    "siemforge --help": [sys.executable, "-m", "siemforge.cli.main", "--help"],
    "siemforge version": [sys.executable, "-m", "siemforge.cli.main", "version"],
    "siemforge targets": [sys.executable, "-m", "siemforge.cli.main", "targets"],
    "python -c pass (floor)": [sys.executable, "-c", "pass"],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    print(f"{'case':28} {'min ms':>8} {'median ms':>10}  ({args.runs} runs each)")
    for name, cmd in CASES.items():
        times = []
        for _ in range(args.runs):
            t = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True)
            times.append((time.perf_counter() - t) * 1000)
        print(f"{name:28} {min(times):8.0f} {statistics.median(times):10.0f}")


if __name__ == "__main__":
    main()
