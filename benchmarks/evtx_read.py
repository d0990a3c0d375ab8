"""Reading `.evtx`: events per second and peak memory, each reader in its own process.

    python benchmarks/evtx_read.py [FILE.evtx] [--repeat N] [--readers evtx-json,siemforge]

Default file: the largest `.evtx` under ../shared/data/windows. Readers:
- `evtx-json`: the `evtx` package (Rust) records as JSON text, each parsed with orjson: the floor for ours;
- `siemforge`: `iter_events` — the same, plus each record normalised to a canonical row (backends/executor/windows.py);
- `python-evtx`: the pure-Python parser (`pip install python-evtx`), each record's XML text; skipped if not installed.
Peak RSS is the child process's maximum resident set (getrusage), including the interpreter (~the `baseline` line).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _largest() -> Path:
    files = sorted((ROOT.parent / "shared" / "data" / "windows").rglob("*.evtx"), key=lambda p: p.stat().st_size)
    if not files:
        sys.exit("no .evtx under ../shared/data/windows: pass a file")
    return files[-1]


def _run(method: str, path: Path, repeat: int) -> int:
    n = 0
    if method == "baseline":
        return 0
    if method == "evtx-json":
        import orjson
        from evtx import PyEvtxParser

        for _ in range(repeat):
            for rec in PyEvtxParser(str(path)).records_json():
                orjson.loads(rec["data"])
                n += 1
    elif method == "siemforge":
        from siemforge.backends.executor.reader import iter_events

        bad: list[object] = []
        for _ in range(repeat):
            for _row in iter_events(path, bad.append):
                n += 1
    elif method == "python-evtx":
        from Evtx.Evtx import Evtx  # type: ignore[import-not-found]

        for _ in range(repeat):
            with Evtx(str(path)) as log:
                for rec in log.records():
                    rec.xml()
                    n += 1
    return n


def child(method: str, path: Path, repeat: int) -> None:
    _run(method, path, 0)  # imports outside the timing
    t0 = time.perf_counter()
    n = _run(method, path, repeat)
    dt = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"events": n, "seconds": dt, "rss_mib": rss / 1024}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file", nargs="?", type=Path)
    ap.add_argument("--repeat", type=int, default=3, help="read the file this many times (default 3)")
    ap.add_argument("--readers", default="baseline,evtx-json,siemforge,python-evtx",
                    help="comma-separated, of: baseline, evtx-json, siemforge, python-evtx")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    path = args.file or _largest()
    if args.child:
        child(args.child, path, args.repeat)
        return
    print(f"{path} ({path.stat().st_size / 1e6:.1f} MB) × {args.repeat}")
    print(f"{'reader':<12} {'events':>8} {'seconds':>8} {'events/s':>10} {'peak RSS MiB':>13}")
    for method in args.readers.split(","):
        proc = subprocess.run([sys.executable, __file__, str(path), "--repeat", str(args.repeat), "--child", method],
                              capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["failed"])[-1]
            print(f"{method:<12} skipped: {last}")
            continue
        r = json.loads(proc.stdout)
        rate = r["events"] / r["seconds"] if r["seconds"] > 0 and r["events"] else 0.0
        print(f"{method:<12} {r['events']:>8} {r['seconds']:>8.2f} {rate:>10.0f} {r['rss_mib']:>13.1f}")


if __name__ == "__main__":
    main()
