"""Fuzz the log readers with hypothesis: bytes → NDJSON / JSON array / CloudTrail Records / gzip of any of them
(truncated or corrupted too), with invalid UTF-8, NUL bytes, BOMs, CRLF, huge numbers and deep nesting.

The invariant: every input gives events (each a JSON object) and skip reports, never a traceback, within a time
and memory bound per case; for plain NDJSON the parallel reader's byte ranges give the same events and reports
as one sequential read. tests/test_fuzz_logs.py runs a quick deterministic profile of the same strategies.

    python benchmarks/fuzz_logs.py [--cases 10000] [--seconds 5] [--memory-mb 1024]

prints, per input kind: cases, events read, skip reports, tracebacks, hangs (over --seconds), memory failures.
"""

from __future__ import annotations

import argparse
import gzip
import resource
import signal
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from siemforge.backends.executor.parallel import plain_ndjson, split
from siemforge.backends.executor.reader import Malformed, iter_events, iter_range_events

KINDS = ("ndjson", "array", "records", "gz")

_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=30),
)
json_values = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=20)
events = st.lists(st.one_of(st.dictionaries(st.text(max_size=10), json_values, max_size=6), json_values), max_size=8)

# hostile fragments spliced into the serialized text
_fragments = st.sampled_from([
    b"\x00", b"\xff\xfe", b"\xef\xbb\xbf", b"\r\n", b"\n", b"\r", b"\xc3", b"\xed\xa0\x80", b'"', b"\\", b"{", b"[",
    b"]", b"}", b",", b":", b"9" * 400, b"1e400", b"-0", b"NaN", b"\\ud800", b'"Records"', b"[" * 3000,
    b"{\"a\":" * 2000, b" " * 100, b"\t",
])


@st.composite
def _mutated(draw: st.DrawFn, text: bytes) -> bytes:
    for _ in range(draw(st.integers(0, 3))):
        op = draw(st.sampled_from(["insert", "truncate", "flip", "random"]))
        pos = draw(st.integers(0, len(text)))
        if op == "insert":
            text = text[:pos] + draw(_fragments) + text[pos:]
        elif op == "truncate":
            text = text[:pos]
        elif op == "flip" and text:
            i = min(pos, len(text) - 1)
            text = text[:i] + bytes([draw(st.integers(0, 255))]) + text[i + 1:]
        else:
            text = text[:pos] + draw(st.binary(max_size=20)) + text[pos:]
    return text


def _ndjson(evs: list[Any], crlf: bool) -> bytes:
    end = b"\r\n" if crlf else b"\n"
    return b"".join(orjson.dumps(e) + end for e in evs)


@st.composite
def inputs(draw: st.DrawFn, kind: str) -> bytes:
    """A file's bytes of one kind: valid text, then possibly mutated."""
    evs = draw(events)
    if kind == "ndjson":
        text = _ndjson(evs, draw(st.booleans()))
    elif kind == "array":
        text = orjson.dumps(evs, option=orjson.OPT_INDENT_2 if draw(st.booleans()) else 0)
    elif kind == "records":
        text = orjson.dumps({"Records": evs}, option=orjson.OPT_INDENT_2 if draw(st.booleans()) else 0)
    else:
        inner = draw(st.sampled_from(["ndjson", "array", "records"]))
        text = draw(inputs(inner))
        packed = gzip.compress(text)
        cut = draw(st.sampled_from(["whole", "truncated", "corrupt", "trailing"]))
        if cut == "truncated":
            packed = packed[:draw(st.integers(2, max(2, len(packed) - 1)))]
        elif cut == "corrupt":
            i = draw(st.integers(10, max(10, len(packed) - 1)))
            packed = packed[:i] + bytes([draw(st.integers(0, 255))]) + packed[i + 1:]
        elif cut == "trailing":
            packed += draw(st.binary(max_size=30))
        return packed
    if draw(st.booleans()):
        text = draw(_mutated(text))
    if draw(st.integers(0, 9)) == 0:
        text = b"\xef\xbb\xbf" + text
    return text


class Hang(Exception):
    pass


def _alarm(signum: int, frame: Any) -> None:
    raise Hang


def read_file(path: Path) -> tuple[list[Any], list[Malformed]]:
    bad: list[Malformed] = []
    evs = list(iter_events(path, bad.append))
    return evs, bad


def check(path: Path) -> tuple[int, int]:
    """Read a file; assert the invariant; return (events, reports)."""
    evs, bad = read_file(path)
    assert all(type(e) is dict for e in evs)
    assert all(isinstance(m, Malformed) and str(m).startswith(str(path)) for m in bad)
    if plain_ndjson(path):  # the parallel reader's ranges: the same events and reports, in the same order
        got: list[Any] = []
        got_bad: list[Malformed] = []
        for a, b, n in split(path, 3):
            got.extend(iter_range_events(path, a, b, n, got_bad.append))
        assert got == evs and got_bad == bad, (got, evs, got_bad, bad)
    return len(evs), len(bad)


def run(kind: str, cases: int, seconds: float, folder: Path, stats: Counter[str], failures: list[str]) -> None:
    path = folder / f"case.{kind}"

    @settings(max_examples=cases, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck))
    @given(inputs(kind))
    def case(data: bytes) -> None:
        path.write_bytes(data)
        stats["cases"] += 1
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            n, r = check(path)
            stats["events"] += n
            stats["reports"] += r
        except Hang:
            stats["hangs"] += 1
            failures.append(f"{kind}: hang on {data[:200]!r}")
        except MemoryError:
            stats["memory"] += 1
            failures.append(f"{kind}: out of memory on {data[:200]!r}")
        except Exception:  # noqa: BLE001 - counting every traceback is the point
            stats["tracebacks"] += 1
            failures.append(f"{kind}: {traceback.format_exc(limit=3)}\ninput: {data[:200]!r}")
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)

    case()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=10_000, help="cases per input kind")
    ap.add_argument("--seconds", type=float, default=5.0, help="time bound per case")
    ap.add_argument("--memory-mb", type=int, default=1024, help="address-space bound for this process")
    args = ap.parse_args()
    limit = args.memory_mb << 20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    signal.signal(signal.SIGALRM, _alarm)
    failures: list[str] = []
    print(f"{'kind':8} {'cases':>7} {'events':>8} {'reports':>8} {'tracebacks':>10} {'hangs':>6} {'memory':>6} "
          f"{'seconds':>8}")
    with tempfile.TemporaryDirectory(prefix="siemforge-fuzz-") as tmp:
        for kind in KINDS:
            stats: Counter[str] = Counter()
            started = time.perf_counter()
            run(kind, args.cases, args.seconds, Path(tmp), stats, failures)
            print(f"{kind:8} {stats['cases']:>7} {stats['events']:>8} {stats['reports']:>8} {stats['tracebacks']:>10} "
                  f"{stats['hangs']:>6} {stats['memory']:>6} {time.perf_counter() - started:>8.1f}", flush=True)
    for f in failures[:10]:
        print("\n" + f)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
