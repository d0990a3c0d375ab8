"""Load and lower every SigmaHQ rule to IR (and optionally compile it for a target); print how many lower
cleanly, why the rest do not, wall time, ms per rule and peak memory. Any Python exception escaping the compiler
is a bug and is listed as a crash.

    python benchmarks/sigma_corpus.py [--rules DIR] [--target sentinel] [--cache DIR]
"""

from __future__ import annotations

import argparse
import re
import resource
import sys
import time
from collections import Counter
from pathlib import Path

from siemforge.backends.registry import targets
from siemforge.compiler.api import compile_file, discover_rules
from siemforge.compiler.cache import RuleCache
from siemforge.compiler.diagnostics import CompileError, Severity

DEFAULT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sigma" / "rules"


def reason(message: str) -> str:
    """A failure message with names and numbers blanked, so that the same reason groups together."""
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", message)
    text = re.sub(r"\d+", "N", text)
    return text.split("\n")[0][:140]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rules", type=Path, default=DEFAULT)
    ap.add_argument("--target", help="also compile every lowered rule for this target")
    ap.add_argument("--cache", type=Path, help="use (and fill) a compiled-rule cache in this folder")
    args = ap.parse_args()
    if not args.rules.exists():
        print(f"no SigmaHQ corpus at {args.rules} (it lives in the project's shared/ folder)", file=sys.stderr)
        return 2
    files = discover_rules([args.rules])
    cache = RuleCache(args.cache) if args.cache else None
    target = targets()[args.target] if args.target else None
    failures: Counter[str] = Counter()
    target_failures: Counter[str] = Counter()
    warnings: Counter[str] = Counter()
    crashes: list[tuple[Path, str]] = []
    lowered = compiled = 0
    started = time.perf_counter()
    for f in files:
        try:
            res = compile_file(f, cache)
        except Exception as exc:  # noqa: BLE001 - a crash is what this script exists to find
            crashes.append((f, f"{type(exc).__name__}: {exc}"))
            continue
        for d in res.diagnostics:
            if d.severity is Severity.WARNING:
                warnings[" ".join(d.message.split()[:2])] += 1
        if res.rule is None:
            errs = [d for d in res.diagnostics if d.severity is Severity.ERROR]
            failures[reason(errs[0].message if errs else "no error diagnostic")] += 1
            continue
        lowered += 1
        if target is not None:
            try:
                target.compile(res.rule, None)
                compiled += 1
            except CompileError as exc:
                target_failures[reason(exc.diagnostics[0].message.split(": ", 1)[-1])] += 1
            except Exception as exc:  # noqa: BLE001
                crashes.append((f, f"{args.target}: {type(exc).__name__}: {exc}"))
    wall = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    n = len(files)
    print(f"rules: {n}")
    print(f"lowered to IR: {lowered} ({100 * lowered / max(n, 1):.1f}%)")
    print(f"failed with a diagnostic: {n - lowered - len(crashes)}")
    print(f"crashes (bugs): {len(crashes)}")
    for f, msg in crashes[:20]:
        print(f"  CRASH {f}: {msg}")
    if target is not None:
        print(f"compiled to {args.target}: {compiled} of {lowered}")
        for text, count in target_failures.most_common(20):
            print(f"  {count:5d}  {text}")
    print(f"wall: {wall:.2f} s, {1000 * wall / max(n, 1):.2f} ms/rule, peak RSS {peak_mb:.0f} MB"
          + (" (cache)" if cache else ""))
    if failures:
        print("reasons a rule did not lower:")
        for text, count in failures.most_common(20):
            print(f"  {count:5d}  {text}")
    if warnings:
        print("warnings:")
        for text, count in warnings.most_common(10):
            print(f"  {count:5d}  {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
