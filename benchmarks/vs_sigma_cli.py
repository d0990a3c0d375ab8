"""Wall time and peak memory of compiling the SigmaHQ corpus to Splunk SPL: siemforge against sigma-cli, side by
side in one run, each in its own process.

sigma-cli pins pySigma < 2 and cannot share siemforge's environment: install it in its own venv
(`python3 -m venv /tmp/sigvenv && /tmp/sigvenv/bin/pip install sigma-cli==3.1.0 pysigma-backend-splunk`) and pass
its `sigma` with --sigma.

    python benchmarks/vs_sigma_cli.py --sigma /tmp/sigvenv/bin/sigma [--rules DIR] [--repeat N]
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from child import measure

SIGMA = "sigma-cli 3.1 --without-pipeline"
DEFAULT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sigma" / "rules"


def timed(cmd: list[str], env: dict[str, str] | None = None, stdout: Path | None = None) -> tuple[float, float, int]:
    """Wall seconds, peak RSS (MB) of this command's process (its own rusage, from wait4), exit code."""
    m = measure(cmd, env, stdout)
    return m.seconds, m.peak_mb, m.exit_code


def precompile() -> None:
    """Byte-compile siemforge's own modules, as a regular (non-editable) pip install does at install time; an
    editable install leaves them as source, and with PYTHONDONTWRITEBYTECODE set every run would compile them."""
    import siemforge.backends
    import siemforge.cli
    import siemforge.compiler

    for pkg in (siemforge.compiler, siemforge.cli, siemforge.backends):
        for folder in pkg.__path__:
            compileall.compile_dir(folder, quiet=1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sigma", default=shutil.which("sigma"), help="the sigma-cli executable")
    ap.add_argument("--rules", type=Path, default=DEFAULT)
    ap.add_argument("--repeat", type=int, default=3, help="rounds (each runs every command once); medians reported")
    args = ap.parse_args()
    if not args.rules.exists():
        print(f"no SigmaHQ corpus at {args.rules}", file=sys.stderr)
        return 2
    precompile()
    siemforge = [sys.executable, "-m", "siemforge.cli.main"]
    results: dict[str, list[tuple[float, float, int]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        cache = d / "cache"
        cold = dict(os.environ, SIEMFORGE_NO_CACHE="1")
        warm = dict(os.environ, SIEMFORGE_CACHE_DIR=str(cache))
        timed([*siemforge, "compile", str(args.rules), "-t", "splunk", "-o", str(d / "sf-fill")], warm)
        commands: list[tuple[str, list[str], dict[str, str] | None, Path | None]] = []
        for r in range(args.repeat):  # interleaved rounds: a slow spell of the machine hits every command alike
            commands = [
                # what sigma-cli writes: every query into one file
                ("siemforge (no cache), one file", [*siemforge, "compile", str(args.rules), "-t", "splunk",
                                                    "--format", "json"], cold, d / f"sf-cold{r}.json"),
                # siemforge's usual output: a file per rule
                ("siemforge (no cache), -o DIR", [*siemforge, "compile", str(args.rules), "-t", "splunk",
                                                  "-o", str(d / f"sf-cold{r}")], cold, None),
                ("siemforge (warm cache), -o DIR", [*siemforge, "compile", str(args.rules), "-t", "splunk",
                                                    "-o", str(d / f"sf-warm{r}")], warm, None),
            ]
            if args.sigma:
                commands.append((SIGMA, [args.sigma, "convert", "-s", "-t", "splunk", "--without-pipeline",
                                         str(args.rules), "-o", str(d / f"sigma{r}.spl")], None, None))
            for name, cmd, env, stdout in commands:
                results.setdefault(name, []).append(timed(cmd, env, stdout))
        if not args.sigma:
            print("sigma-cli not found: pass --sigma (see this script's docstring)")
        compiled = len(list((d / "sf-cold0").glob("*.spl")))
        print(f"corpus: {args.rules} — siemforge wrote {compiled} searches; {args.repeat} interleaved rounds, "
              f"{os.cpu_count()} cores")
        print(f"{'run':34} {'median s':>9} {'min s':>7} {'max s':>7} {'peak MB':>8} {'exit':>5}")
        med = {}
        for name, rs in results.items():
            walls = [w for w, _, _ in rs]
            med[name] = statistics.median(walls)
            print(f"{name:34} {med[name]:>9.2f} {min(walls):>7.2f} {max(walls):>7.2f} "
                  f"{max(p for _, p, _ in rs):>8.0f} {rs[-1][2]:>5}")
        if args.sigma:
            sig = med[SIGMA]
            print("speed-up vs sigma-cli (medians): " + ", ".join(
                f"{sig / m:.2f}x {name.removeprefix('siemforge ')}" for name, m in med.items() if name != SIGMA))
    return 0


if __name__ == "__main__":
    sys.exit(main())
