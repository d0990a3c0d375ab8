"""Reading auditd's text audit.log: lines per second and peak memory of the reader (backends/executor/auditd.py).

    python benchmarks/auditd_read.py [AUDIT.log] [--copies N]

Without a file: the real lines of ../shared/data/linux/auditd/*.log, repeated N times (default 2,000: ~370k lines,
~70 MB) with each copy's event serials shifted so that every copy is new events, written to a temporary file.
Each measurement runs in its own process (peak RSS is that process's maximum resident set, interpreter included):
- `lines`: the file read line by line and split at `=` (the floor: no parsing);
- `siemforge`: `iter_events` — every record parsed and decoded, events grouped, derived rows made.
"""

from __future__ import annotations

import argparse
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_SERIAL = re.compile(rb"msg=audit\((\d+\.\d+):(\d+)\)")


def make_file(copies: int, out: Path) -> None:
    lines = [line for f in sorted((ROOT.parent / "shared" / "data" / "linux" / "auditd").glob("*.log"))
             for line in f.read_bytes().splitlines(keepends=True)]
    if not lines:
        sys.exit("no audit logs under ../shared/data/linux/auditd: pass a file")
    with out.open("wb") as fh:
        for k in range(copies):
            def renumber(m: re.Match[bytes], shift: int = k * 100_000_000) -> bytes:
                return b"msg=audit(%s:%d)" % (m.group(1), int(m.group(2)) + shift)

            for line in lines:
                fh.write(_SERIAL.sub(renumber, line))


def child(method: str, path: Path) -> None:
    start = time.perf_counter()
    n = 0
    if method == "lines":
        with path.open("rb") as fh:
            for line in fh:
                n += len(line.split(b"="))
    else:
        from siemforge.backends.executor.reader import iter_events

        for _ in iter_events(path, lambda m: None):
            n += 1
    took = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{took:.3f} {n} {rss:.1f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("file", nargs="?", type=Path)
    ap.add_argument("--copies", type=int, default=2000)
    ap.add_argument("--child", default=None)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.file)
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = args.file
        if path is None:
            path = Path(tmp) / "audit.log"
            make_file(args.copies, path)
        size = path.stat().st_size
        with path.open("rb") as fh:
            nlines = sum(1 for _ in fh)
        print(f"file: {path.name}, {nlines:,} lines, {size / 1e6:.1f} MB")
        for method in ("lines", "siemforge"):
            out = subprocess.run([sys.executable, __file__, str(path), "--child", method], capture_output=True,
                                 text=True, check=True).stdout.split()
            took, n, rss = float(out[0]), int(out[1]), float(out[2])
            print(f"{method:10s} {nlines / took:>12,.0f} lines/s  {size / took / 1e6:7.1f} MB/s  "
                  f"{n:>10,} {'rows' if method == 'siemforge' else 'fields'}  peak RSS {rss:.0f} MiB")


if __name__ == "__main__":
    main()
