"""Reading `.evtx`: events per second and peak memory, each reader in its own process, on the same files.

    python benchmarks/evtx_read.py [FILE.evtx|DIR ...] [--repeat N] [--max-seconds S] [--readers a,b,…]

The input: by default every real `.evtx` under ../shared/data/windows (124 files, 16.0 MB, 6,766 records: the
omerbenamram baseline samples, the SigmaHQ regression cases, EVTX-ATTACK-SAMPLES), read `--repeat` times (default
30: ~200k records). An `.evtx` file is
chunks with their own string tables, so files cannot honestly be concatenated into one larger file; reading the
same real files several times is the large input (a reader caches nothing between files). A reader stops repeating
after `--max-seconds` (python-evtx is ~500× slower); the rate is over the events it read.

Readers:
- `evtx`: the `evtx` package (Rust, PyPI) alone: each record's JSON text from `records_json()`, not parsed;
- `evtx-json`: the same, each record parsed with orjson (the floor for siemforge's reader);
- `evtx-dump`: "evtx_dump → JSON → json.loads". evtx_dump is the same Rust crate's command-line tool (crates.io),
  which this machine cannot install; its stand-in is the `evtx` package's `records_json()` written one record per
  line to a temporary file (what `evtx_dump -o jsonl` writes), then that file read back with the standard library's
  `json.loads` per line. Both phases are timed (`dump` + `load`), as a user of that route pays both;
- `siemforge`: `iter_events` — evtx-json plus each record normalised to a canonical row (backends/executor/windows.py);
- `python-evtx`: the pure-Python parser (`pip install '.[bench]'`), each record's XML text (turning the XML into
  fields would cost more); skipped if not installed.
Peak RSS is the child process's maximum resident set (getrusage), including the interpreter (the `baseline` line).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT.parent / "shared" / "data" / "windows"
READERS = "baseline,evtx,evtx-json,evtx-dump,siemforge,python-evtx"


def _files(given: list[Path]) -> list[Path]:
    out: list[Path] = []
    for p in given or [DEFAULT]:
        out.extend(sorted(p.rglob("*.evtx")) if p.is_dir() else [p])
    if not out:
        sys.exit("no .evtx files: pass files or folders")
    return out


def _passes(files: list[Path], repeat: int, max_seconds: float, started: float) -> Iterator[Path]:
    """Each file `repeat` times, stopping early once `max_seconds` have passed since `started` (checked per file)."""
    for _ in range(repeat):
        for f in files:
            if time.perf_counter() - started > max_seconds:
                return
            yield f


def _records(f: Path) -> Iterator[dict[str, str]]:
    """The `evtx` package's records of one file, up to a chunk it cannot parse (baseline sysmon.evtx is truncated
    after 358 records: the package raises there; siemforge's reader reports it and goes on to the next file)."""
    from evtx import PyEvtxParser

    try:
        yield from PyEvtxParser(str(f)).records_json()
    except RuntimeError:
        return


def _run(method: str, files: list[Path], repeat: int, max_seconds: float) -> dict[str, float]:
    started = time.perf_counter()
    n = 0
    phases: dict[str, float] = {}
    if method == "baseline" or repeat == 0:
        if method == "siemforge":
            import siemforge.backends.executor.reader  # noqa: F401
        elif method == "python-evtx":
            import Evtx.Evtx  # type: ignore[import-not-found]  # noqa: F401
        elif method != "baseline":
            import evtx  # noqa: F401
        return {"events": 0}
    if method == "evtx":
        for f in _passes(files, repeat, max_seconds, started):
            for _rec in _records(f):
                n += 1
    elif method == "evtx-json":
        import orjson

        for f in _passes(files, repeat, max_seconds, started):
            for rec in _records(f):
                orjson.loads(rec["data"])
                n += 1
    elif method == "evtx-dump":
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "dump.jsonl"
            with out.open("w", encoding="utf-8") as fh:  # evtx_dump -o jsonl: one record per line
                for f in _passes(files, repeat, max_seconds, started):
                    for rec in _records(f):
                        fh.write(rec["data"].replace("\n", " "))
                        fh.write("\n")
            phases["dump"] = time.perf_counter() - started
            t1 = time.perf_counter()
            with out.open(encoding="utf-8") as fh:
                for line in fh:
                    json.loads(line)
                    n += 1
            phases["load"] = time.perf_counter() - t1
            phases["dump_mb"] = out.stat().st_size / 1e6
    elif method == "siemforge":
        from siemforge.backends.executor.reader import iter_events

        bad: list[object] = []
        for f in _passes(files, repeat, max_seconds, started):
            for _row in iter_events(f, bad.append):
                n += 1
    elif method == "python-evtx":
        from Evtx.Evtx import Evtx

        for f in _passes(files, repeat, max_seconds, started):
            try:
                with Evtx(str(f)) as log:
                    for rec in log.records():
                        rec.xml()
                        n += 1
            except Exception:  # noqa: BLE001 - a file python-evtx cannot read is skipped, as a user would
                continue
    return {"events": n, **phases}


def child(method: str, files: list[Path], repeat: int, max_seconds: float) -> None:
    _run(method, files, 0, max_seconds)  # imports outside the timing
    t0 = time.perf_counter()
    r = _run(method, files, repeat, max_seconds)
    dt = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({**r, "seconds": dt, "rss_mib": rss / 1024}))


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("files", nargs="*", type=Path, help="`.evtx` files or folders (default: ../shared/data/windows)")
    ap.add_argument("--repeat", type=int, default=30, help="read the files this many times (default 30)")
    ap.add_argument("--max-seconds", type=float, default=60.0,
                    help="a reader stops repeating after this long (default 60)")
    ap.add_argument("--readers", default=READERS, help=f"comma-separated, of: {READERS}")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    files = _files(args.files)
    if args.child:
        child(args.child, files, args.repeat, args.max_seconds)
        return
    size = sum(f.stat().st_size for f in files)
    print(f"{len(files)} .evtx file(s), {size / 1e6:.1f} MB, read up to {args.repeat}× "
          f"(a reader stops repeating after {args.max_seconds:.0f} s)")
    print(f"{'reader':<12} {'events':>8} {'seconds':>8} {'events/s':>10} {'peak RSS MiB':>13}  notes")
    for method in args.readers.split(","):
        cmd = [sys.executable, __file__, *map(str, files), "--repeat", str(args.repeat),
               "--max-seconds", str(args.max_seconds), "--child", method]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.max_seconds * 4 + 120,
                              env={**os.environ, "PYTHONWARNINGS": "ignore"})
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["failed"])[-1]
            print(f"{method:<12} skipped: {last}")
            continue
        r = json.loads(proc.stdout)
        rate = r["events"] / r["seconds"] if r["seconds"] > 0 and r["events"] else 0.0
        note = ""
        if "dump" in r:
            note = f"dump {r['dump']:.2f} s ({r['dump_mb']:.0f} MB of JSON lines) + json.loads {r['load']:.2f} s"
        print(f"{method:<12} {r['events']:>8} {r['seconds']:>8.2f} {rate:>10.0f} {r['rss_mib']:>13.1f}  {note}")


if __name__ == "__main__":
    main()
