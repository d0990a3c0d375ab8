"""Fuzz the rule loader with hypothesis: YAML text, pipeline-language text and Sigma detections (strategies in
tests/rule_strategies.py). Invariant: every case gives a rule (then each target compiles or refuses it) or a
positioned CompileError; never another exception, never more than --seconds per case or --memory-mb.

Each kind runs in its own worker process (an address-space limit, a per-case alarm); the summary gives cases,
results, positioned errors, tracebacks (grouped by where they were raised, with the smallest input seen),
hangs, out-of-memory cases, wall time and the worker's peak RSS.

    python benchmarks/fuzz_rules.py [--cases 10000] [--kinds yaml,pipeline,sigma] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import resource
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("yaml", "pipeline", "sigma")


class Hang(Exception):
    pass


def _alarm(signum: int, frame: Any) -> None:
    raise Hang


def worker(kind: str, cases: int, seed: int, seconds: int, memory_mb: int) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT / "tests"))
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hseed
    from rule_strategies import RULE_TEXTS, check_rule_text, make_folder

    resource.setrlimit(resource.RLIMIT_AS, (memory_mb << 20, memory_mb << 20))
    signal.signal(signal.SIGALRM, _alarm)
    tmp = tempfile.TemporaryDirectory(prefix="siemforge-fuzz-")  # removed when the script ends
    folder = make_folder(Path(tmp.name))
    counts: Counter[str] = Counter()
    tracebacks: dict[str, dict[str, Any]] = {}
    slowest = [0.0, ""]

    def record(group: str, text: str, detail: str) -> None:
        seen = tracebacks.setdefault(group, {"count": 0, "example": text, "detail": detail})
        seen["count"] += 1
        if len(text) < len(seen["example"]):
            seen["example"], seen["detail"] = text, detail

    @hseed(seed)
    @settings(max_examples=cases, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(text=RULE_TEXTS[kind])
    def run(text: str) -> None:
        started = time.perf_counter()
        signal.alarm(seconds)
        try:
            outcome = check_rule_text(text, folder)
            counts["results" if outcome == "result" else "errors"] += 1
        except Hang:
            counts["hangs"] += 1
            record("hang", text, f"over {seconds} s")
        except MemoryError:
            counts["out of memory"] += 1
            record("MemoryError", text, f"over {memory_mb} MB")
        except AssertionError as exc:
            counts["unpositioned errors"] += 1
            record("unpositioned error", text, str(exc))
        except Exception as exc:  # the bug this script looks for
            counts["tracebacks"] += 1
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            where = f"{type(exc).__name__} at {Path(frame.filename).name}:{frame.lineno} ({frame.name})"
            record(where, text, "".join(traceback.format_exception(exc))[-1500:])
        finally:
            signal.alarm(0)
        took = time.perf_counter() - started
        if took > slowest[0]:
            slowest[0], slowest[1] = took, text[:300]

    started = time.perf_counter()
    run()
    return {"kind": kind, "cases": sum(counts.values()), **counts, "wall_s": round(time.perf_counter() - started, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "slowest_case_s": round(slowest[0], 3), "slowest_case": slowest[1], "findings": tracebacks}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=10_000, help="cases per kind")
    ap.add_argument("--kinds", default=",".join(KINDS))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--seconds", type=int, default=10, help="time bound per case")
    ap.add_argument("--memory-mb", type=int, default=2048, help="address-space bound of a worker")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.cases, args.seed, args.seconds, args.memory_mb)))
        return 0
    failed = False
    print(f"{'kind':<9} {'cases':>7} {'results':>8} {'errors':>7} {'tracebacks':>10} {'hangs':>6} {'OOM':>4} "
          f"{'wall s':>7} {'peak MB':>8} {'slowest s':>9}")
    for kind in args.kinds.split(","):
        proc = subprocess.run([sys.executable, __file__, "--worker", kind, "--cases", str(args.cases), "--seed",
                               str(args.seed), "--seconds", str(args.seconds), "--memory-mb", str(args.memory_mb)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"{kind}: the worker died (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
            failed = True
            continue
        s = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"{kind:<9} {s['cases']:>7} {s.get('results', 0):>8} {s.get('errors', 0):>7} "
              f"{s.get('tracebacks', 0) + s.get('unpositioned errors', 0):>10} {s.get('hangs', 0):>6} "
              f"{s.get('out of memory', 0):>4} {s['wall_s']:>7} {s['peak_rss_mb']:>8} {s['slowest_case_s']:>9}")
        for where, f in sorted(s["findings"].items(), key=lambda kv: -kv[1]["count"]):
            failed = True
            print(f"  {f['count']} × {where}\n    smallest input: {f['example'][:400]!r}\n"
                  f"    {f['detail'][-600:]}".replace("\n", "\n    "))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
