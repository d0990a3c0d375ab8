"""Wall time and peak memory of compiling the SigmaHQ corpus to Splunk SPL: siemforge against sigma-cli, side by
side in one run, each in its own process.

sigma-cli pins pySigma < 2 and cannot share siemforge's environment: install it in its own venv
(`python3 -m venv /tmp/sigvenv && /tmp/sigvenv/bin/pip install sigma-cli==3.1.0 pysigma-backend-splunk`) and pass
its `sigma` with --sigma.

    python benchmarks/vs_sigma_cli.py --sigma /tmp/sigvenv/bin/sigma [--rules DIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sigma" / "rules"


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, int, str]:
    """Wall seconds, peak RSS (MB) of the child, exit code, last line of stderr."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    tail = (proc.stderr.strip().splitlines() or [""])[-1]
    return wall, max(peak, before) / 1024, proc.returncode, tail


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sigma", default=shutil.which("sigma"), help="the sigma-cli executable")
    ap.add_argument("--rules", type=Path, default=DEFAULT)
    args = ap.parse_args()
    if not args.rules.exists():
        print(f"no SigmaHQ corpus at {args.rules}", file=sys.stderr)
        return 2
    siemforge = [sys.executable, "-m", "siemforge.cli.main"]
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        cache = d / "cache"
        cold = dict(os.environ, SIEMFORGE_NO_CACHE="1")
        warm = dict(os.environ, SIEMFORGE_CACHE_DIR=str(cache))
        runs = []
        # siemforge first with an empty cache (the cold run fills it), then the warm run
        runs.append(("siemforge (no cache)", timed([*siemforge, "compile", str(args.rules), "-t", "splunk",
                                                    "-o", str(d / "sf-cold")], cold)))
        timed([*siemforge, "compile", str(args.rules), "-t", "splunk", "-o", str(d / "sf-fill")], warm)
        runs.append(("siemforge (warm cache)", timed([*siemforge, "compile", str(args.rules), "-t", "splunk",
                                                      "-o", str(d / "sf-warm")], warm)))
        if args.sigma:
            runs.append(("sigma-cli 3.1 --without-pipeline", timed([args.sigma, "convert", "-s", "-t", "splunk",
                                                                    "--without-pipeline", str(args.rules),
                                                                    "-o", str(d / "sigma.spl")])))
        else:
            print("sigma-cli not found: pass --sigma (see this script's docstring)")
        compiled = len(list((d / "sf-cold").glob("*.spl")))
        print(f"corpus: {args.rules} — siemforge wrote {compiled} searches")
        print(f"{'run':34} {'wall s':>8} {'peak MB':>8} {'exit':>5}")
        for name, (wall, peak, rc, _) in runs:
            print(f"{name:34} {wall:>8.2f} {peak:>8.0f} {rc:>5}")
        if args.sigma:
            sig = runs[-1][1][0]
            print(f"speed-up vs sigma-cli: {sig / runs[0][1][0]:.2f}x cold, {sig / runs[1][1][0]:.2f}x warm cache")
    return 0


if __name__ == "__main__":
    sys.exit(main())
