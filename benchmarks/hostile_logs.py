"""`siemforge run` over hostile log files: wall time, events/s and the child's peak RSS.

Builds, in a temporary folder deleted afterwards, from the real CloudTrail records in ../shared/data/cloudtrail:
  - gzip bombs: a small .gz inflating to --bomb-mb of NUL bytes with no newline (one line, reported and read
    through), and one inflating to --bomb-mb of real records as NDJSON (every event parsed);
  - a `{"Records": [...]}` file of --records-mb (the shape CloudTrail writes to S3, one line), plain;
then runs a seed rule (rules/aws_ec2_password_data_many_instances: a filter and a summarize) over each in a fresh
process and reports its peak RSS (wait4). The target: peak RSS bounded (under 300 MB) whatever the size, time
proportional to the inflated size.

It also times the previous whole-file path (orjson.loads of the whole document, then its records) against the
streaming reader on the same --compare-mb Records file, each in its own process.

    python benchmarks/hostile_logs.py [--bomb-mb 1536] [--records-mb 1024] [--compare-mb 100]
"""

from __future__ import annotations

import argparse
import gzip
import sys
import tempfile
from pathlib import Path

import orjson
from child import measure

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "cloudtrail"
RULE = ROOT / "rules" / "aws_ec2_password_data_many_instances" / "aws_ec2_password_data_many_instances.yml"
SIEMFORGE = Path(sys.executable).with_name("siemforge")
BLOCK = 16 << 20


def real_records() -> list[bytes]:
    out = []
    for f in sorted(SHARED.glob("*.ndjson")):
        for line in f.read_bytes().splitlines():
            if line.strip():
                out.append(orjson.dumps(orjson.loads(line)))
    if not out:
        sys.exit(f"no CloudTrail records under {SHARED}")
    return out


def block_of(records: list[bytes], size: int, sep: bytes) -> bytes:
    parts, n, i = [], 0, 0
    while n < size:
        r = records[i % len(records)]
        parts.append(r)
        n += len(r) + len(sep)
        i += 1
    return sep.join(parts)


def gzip_bomb(path: Path, block: bytes, total: int) -> None:
    """Gzip members of one compressed block, repeated: the file inflates to `total` bytes (a reader sees one
    stream; gzip allows members one after another)."""
    member = gzip.compress(block, 9)
    with path.open("wb") as fh:
        for _ in range(max(1, total // len(block))):
            fh.write(member)


def records_file(path: Path, records: list[bytes], total: int) -> None:
    block = block_of(records, BLOCK, b",")
    with path.open("wb") as fh:
        fh.write(b'{"Records":[')
        written = 0
        while written < total:
            fh.write(block if written == 0 else b"," + block)
            written += len(block) + 1
        fh.write(b"]}")


def run_rule(log: Path) -> None:
    m = measure([str(SIEMFORGE), "run", str(RULE), str(log), "--now", "2024-08-01T00:00:00Z"])
    seconds, peak, out, err = m.seconds, m.peak_mb, m.stdout, m.stderr
    summary = out.decode(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
    events = 0
    for word in summary[0].split("from ")[1:2]:
        events = int(word.split()[0])
    size = log.stat().st_size
    notes = [line for line in err.decode(errors="replace").splitlines() if line.strip()][:2]
    print(f"{log.name:28} {size / 1e6:>9.1f} MB on disk  {seconds:>7.1f} s  {events / seconds:>9.0f} events/s  "
          f"peak RSS {peak:>4.0f} MB  | {summary[0]}")
    for n in notes:
        print(f"{'':30}stderr: {n[:110]}")


WHOLE = """import sys, orjson, time
t = time.perf_counter()
doc = orjson.loads(open(sys.argv[1], 'rb').read())  # the previous reader: the whole document, then its records
n = sum(1 for r in doc['Records'] if isinstance(r, dict))
print(n, time.perf_counter() - t)
"""
STREAM = """import sys, time
from pathlib import Path
from siemforge.backends.executor.reader import iter_events
t = time.perf_counter()
n = sum(1 for _ in iter_events(Path(sys.argv[1]), print))
print(n, time.perf_counter() - t)
"""


def compare(path: Path) -> None:
    for name, code in (("whole-file (orjson.loads)", WHOLE), ("streaming (ijson events)", STREAM)):
        m = measure([sys.executable, "-c", code, str(path)])
        n, inner = m.stdout.decode().split()
        print(f"  {name:28} {int(n):>8} records  {float(inner):>6.2f} s reading  peak RSS {m.peak_mb:>4.0f} MB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bomb-mb", type=int, default=1536, help="inflated size of each gzip bomb")
    ap.add_argument("--records-mb", type=int, default=1024, help="size of the Records file")
    ap.add_argument("--compare-mb", type=int, default=100, help="size of the file for whole-file vs streaming")
    args = ap.parse_args()
    records = real_records()
    with tempfile.TemporaryDirectory(prefix="siemforge-hostile-") as tmp:
        folder = Path(tmp)
        small = folder / f"records_{args.compare_mb}mb.json"
        records_file(small, records, args.compare_mb << 20)
        print(f"whole-file vs streaming, {small.stat().st_size / 1e6:.0f} MB Records file (reading only):")
        compare(small)
        small.unlink()
        print(f"\nsiemforge run {RULE.relative_to(ROOT)} over:")
        zeros = folder / "bomb_zeros.gz"
        gzip_bomb(zeros, b"\0" * BLOCK, args.bomb_mb << 20)
        run_rule(zeros)
        zeros.unlink()
        bomb = folder / "bomb_records.ndjson.gz"
        gzip_bomb(bomb, block_of(records[:8], BLOCK, b"\n") + b"\n", args.bomb_mb << 20)  # 8 records: a 32 kB window
        run_rule(bomb)
        bomb.unlink()
        for mb in sorted({args.records_mb // 4, args.records_mb}):
            big = folder / f"records_{mb}mb.json"
            records_file(big, records, mb << 20)
            run_rule(big)
            big.unlink()


if __name__ == "__main__":
    main()
