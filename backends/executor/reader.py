"""Read events from log files: NDJSON, a JSON array, CloudTrail `{"Records": [...]}`, each optionally gzipped;
Windows `.evtx` files, evtx-JSON and flat Windows NDJSON, each record normalised to one row (windows.py); auditd's
text audit.log, its records and events as rows (auditd.py).

Everything streams: memory does not grow with the file. NDJSON is read line by line, a line never more than
MAX_LINE_BYTES at a time; a JSON array or a Records document is read record by record (ijson's C parser, yajl2_c,
emits events; `_RecordBuilder` builds one record at a time). Anything malformed — a line that is not JSON or not
an object, a line or record over MAX_LINE_BYTES, a record nested deeper than MAX_DEPTH, a broken gzip stream — is
reported with its file and line (NDJSON) or record number (arrays), counted, and skipped; the run goes on.
docs/limits.md, "Logs", lists the limits.
"""

from __future__ import annotations

import gzip
import io
import re
import sys
import zlib
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path
from typing import IO, Any

import ijson
import orjson

from . import azure, saas, windows
from .auditd import AUDIT_LINE, iter_auditd
from .windows import EVTX_MAGIC, iter_evtx, split_concatenated


def normalise_all(docs: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Each record as its canonical row: Windows records (windows.py), Azure diagnostic records (azure.py), GCP
    LogEntries and GitHub audit events (saas.py)."""
    return saas.normalise_all(azure.normalise_all(windows.normalise_all(docs)))

MAX_LINE_BYTES = 16 << 20  # a longer NDJSON line, or array record, is reported and skipped without being held
MAX_DEPTH = 1024  # nesting of a record (orjson's own limit for NDJSON lines; the same for array records)
MAX_REPORTS = 1000  # malformed-input reports kept per run (the rest are counted)
READ_BYTES = 1 << 20  # read size: the array parser (yajl re-scans a partial token per read: big reads), gzip
SKIM_BYTES = 1 << 18  # the pre-filter's block (_skim): ~10% less CPU than 1 MiB blocks (benchmarks/hunt.py, 2026-12)
_MESSAGE_CHARS = 200  # of a parser's message in a report (it may quote a huge token)
_BOM = b"\xef\xbb\xbf"
_RECORDS_DOC = re.compile(rb'\A\s*\{\s*"[Rr]ecords"\s*:\s*\[')  # CloudTrail; Azure Event Hub / storage
# what a broken file can raise while it is read: gzip (OSError, EOFError, zlib.error), ijson, decoding
_READ_ERRORS = (OSError, EOFError, zlib.error, ijson.JSONError, ValueError)


@dataclass(frozen=True, slots=True)
class Malformed:
    """A skipped piece of input: `line` in a line-oriented file (0: the file itself), or `record` (1-based) in a
    JSON array or Records document, whose records have no line of their own."""

    file: str
    line: int
    message: str
    record: int | None = None

    def __str__(self) -> str:
        if self.record is not None:
            return f"{self.file}: record {self.record}: skipped: {self.message}"
        if self.line == 0:
            return f"{self.file}: skipped: {self.message}"
        return f"{self.file}:{self.line}: skipped: {self.message}"


Report = Callable[[Malformed], None]


class Reports:
    """The malformed-input reports of a run: the first MAX_REPORTS kept, every line they name counted once (a file of
    a billion bad lines must not fill memory with reports)."""

    def __init__(self, keep: int = MAX_REPORTS) -> None:
        self.kept: list[Malformed] = []
        self.total = 0  # lines (records) skipped: a second report of the line just reported is not counted again
        self._keep = keep
        self._last: tuple[str, int, int | None] | None = None

    def __call__(self, m: Malformed) -> None:
        where = (m.file, m.line, m.record)
        if where != self._last or (m.line == 0 and m.record is None):  # a byte-flipped .gz: the line's invalid
            self.total += 1                                               # JSON, then its CRC error: one line
        self._last = where
        if len(self.kept) < self._keep:
            self.kept.append(m)

    def merge(self, kept: list[Malformed], total: int) -> None:
        for m in kept:
            if len(self.kept) < self._keep:
                self.kept.append(m)
        self.total += total


class _Inflated(io.RawIOBase):
    """A gzip stream as a raw file whose every read returns what one step of inflating gives (GzipFile.read1):
    a truncated or corrupt stream raises only once the data before the damage has been returned. (A BufferedReader
    straight over GzipFile fills its whole buffer with GzipFile.read, which raises and drops up to READ_BYTES of
    good lines, all of them in a small file.)"""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._gz = gzip.GzipFile(fileobj=raw)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._gz.read1(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._gz.close()  # does not close the file it was given
        self._raw.close()
        super().close()


Meter = Callable[[int, int], None]  # told (bytes read from disk, events read) as a run goes: its progress


class _Metered(io.RawIOBase):
    """A file whose reads are told to a meter (the bytes on disk: compressed ones for a .gz)."""

    def __init__(self, path: Path, meter: Meter) -> None:
        self._raw = io.FileIO(path, "rb")
        self._meter = meter

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, pos: int, whence: int = 0) -> int:
        return self._raw.seek(pos, whence)

    def tell(self) -> int:
        return self._raw.tell()

    def readinto(self, buffer: Any) -> int:
        n = self._raw.readinto(buffer) or 0
        if n:
            self._meter(n, 0)
        return n

    def close(self) -> None:
        self._raw.close()
        super().close()


def _open(path: Path, meter: Meter | None = None) -> IO[bytes]:
    raw: IO[bytes] = path.open("rb") if meter is None else io.BufferedReader(_Metered(path, meter))
    head = raw.read(2)
    raw.seek(0)
    if head == b"\x1f\x8b":
        return io.BufferedReader(_Inflated(raw), READ_BYTES)
    return raw


def iter_events(
    path: Path, report: Report, prefilter: Callable[[bytes], bool] | None = None, skipped: list[int] | None = None,
    meter: Meter | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield each event (a JSON object) of a log file. With a prefilter, NDJSON lines it rejects are not parsed
    (they are counted in `skipped[0]`). `meter` is told the bytes read from the file (not those of an .evtx file,
    which its parser reads itself)."""
    name = str(path)
    try:
        fh = _open(path, meter)
    except OSError as exc:
        report(Malformed(name, 0, f"cannot open: {exc.strerror}"))
        return
    with fh:
        try:
            head = fh.peek(READ_BYTES)  # type: ignore[attr-defined]
            if head.startswith(_BOM):
                fh.read(len(_BOM))
                head = head[len(_BOM):]
            first = head.lstrip()[:1]
        except _READ_ERRORS as exc:
            report(Malformed(name, 0, f"cannot read: {exc}"))
            return
        if first not in (b"{", b"[") and AUDIT_LINE.search(head, 0, 1 << 16):  # auditd's audit.log (auditd.py)
            yield from iter_auditd(_bounded_lines(fh), name, report)
        elif head[:8] == EVTX_MAGIC or (path.suffix.lower() == ".evtx" and first not in (b"{", b"[")):
            yield from iter_evtx(path, report)
        elif first == b"[" or _RECORDS_DOC.match(head):
            retry = _Retry()
            records_key = first != b"["
            yield from normalise_all(_records(fh, name, report, records_key, retry))
            if retry.needed:
                with _open(path) as again:
                    if again.peek(len(_BOM)).startswith(_BOM):  # type: ignore[attr-defined]
                        again.read(len(_BOM))
                    yield from normalise_all(_records(again, name, report, records_key, None, retry.done))
        else:
            needles = getattr(prefilter, "needles", None)
            lines = _skim(fh, needles) if needles else _bounded_lines(fh)
            yield from normalise_all(_lines(lines, name, report, prefilter, skipped))


def _bounded_lines(fh: IO[bytes], start: int = 0, end: int | None = None) -> Iterator[bytes | int]:
    """The lines of a file (from byte `start`, those that begin before `end`), each as bytes, or as its length when
    it is longer than MAX_LINE_BYTES: such a line is read through in blocks, never held whole."""
    readline = fh.readline
    pos = start
    while end is None or pos < end:
        raw = readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            n = len(raw)
            while True:
                more = readline(READ_BYTES)
                n += len(more)
                if not more or more.endswith(b"\n"):
                    break
            pos += n
            yield n
            continue
        pos += len(raw)
        yield raw


def _skim(fh: IO[bytes], needles: tuple[bytes, ...], start: int = 0, end: int | None = None) -> Iterator[bytes | int]:
    """`_bounded_lines`, for a pre-filter with `needles` (prefilter.LineFilter): a block of lines that all look whole
    is searched for the needles (without case) and for `\\` as a whole; only the lines holding one are yielded, and
    each run of the others as a negative count (-n: n lines the pre-filter rejects, not parsed). A block with a line
    that does not look whole, or the first line (a pretty-printed document starts with `{` alone), goes line by
    line."""
    pos = start
    lines = _bounded_lines(fh, start, end)
    first = next(lines, None)
    if first is None:
        return
    yield first
    if type(first) is int:
        yield from lines
        return
    assert isinstance(first, bytes)
    if first.strip() == b"{":  # a pretty-printed document: _lines joins its lines
        yield from lines
        return
    pos += len(first)
    while end is None or pos < end:
        block, error = _read_block(fh, SKIM_BYTES if end is None else min(SKIM_BYTES, end - pos))
        if error is not None:  # a truncated .gz: its whole lines before the damage, then the error, as unskimmed
            yield from _skim_block(block[: block.rfind(b"\n") + 1], needles)
            raise error
        if not block:
            return
        if not block.endswith(b"\n"):  # complete the last line (one that begins before `end`)
            try:
                tail = fh.readline(MAX_LINE_BYTES + 1)
            except _READ_ERRORS:
                yield from _skim_block(block[: block.rfind(b"\n") + 1], needles)
                raise
            if len(tail) > MAX_LINE_BYTES and not tail.endswith(b"\n"):  # a line too long to hold: its length
                whole = block[: block.rfind(b"\n") + 1]
                yield from whole.splitlines(keepends=True)
                length = len(block) - len(whole) + len(tail)
                while True:
                    more = fh.readline(READ_BYTES)
                    length += len(more)
                    if not more or more.endswith(b"\n"):
                        break
                pos += len(whole) + length
                yield length
                continue
            block += tail
        pos += len(block)
        yield from _skim_block(block, needles)


def _read_block(fh: IO[bytes], size: int) -> tuple[bytes, BaseException | None]:
    """Up to `size` bytes, read in steps (read1), so that a read error leaves the bytes read before it: (bytes,
    the error or None). fh.read(size) on a BufferedReader over a truncated gzip raises and drops them all."""
    read = getattr(fh, "read1", None)
    if read is None:
        try:
            return fh.read(size), None
        except _READ_ERRORS as exc:
            return b"", exc
    parts: list[bytes] = []
    got = 0
    try:
        while got < size:
            chunk = read(size - got)
            if not chunk:
                break
            parts.append(chunk)
            got += len(chunk)
    except _READ_ERRORS as exc:
        return b"".join(parts), exc
    return b"".join(parts), None


def _skim_block(block: bytes, needles: tuple[bytes, ...]) -> Iterator[bytes | int]:
    # every line looks whole when each starts with `{` and ends with `}` (a blank line, \r\n or a line that may be
    # malformed sends every line of the block to the reader). One split gives the lines and where each starts: a
    # needle's hit is placed by bisection, and a run of lines without one is counted by its indices, not by
    # counting newlines again.
    body = block[:-1] if block.endswith(b"\n") else block
    lines = body.split(b"\n")
    for x in lines:
        if x[:1] != b"{" or x[-1:] != b"}":
            yield from block.splitlines(keepends=True)
            return
    starts = list(accumulate([len(x) + 1 for x in lines], initial=0))  # starts[k]: where line k begins
    low = block.lower()
    hits: set[int] = set()
    for needle, text in [(x, low) for x in needles] + [(b"\\", block)]:
        i = text.find(needle)
        while i >= 0:
            k = bisect_right(starts, i) - 1
            hits.add(k)
            i = text.find(needle, starts[k + 1])  # the next line: one hit per line is enough
    done = 0
    for k in sorted(hits):
        if k > done:
            yield done - k
        yield block[starts[k]:starts[k + 1]]
        done = k + 1
    if done < len(lines):
        yield done - len(lines)


def iter_range_events(
    path: Path,
    start: int,
    end: int,
    first_line: int,
    report: Report,
    prefilter: Callable[[bytes], bool] | None = None,
    skipped: list[int] | None = None,
) -> Iterator[dict[str, Any]]:
    """The events of the NDJSON lines that begin in bytes [start, end) of a plain file; `first_line` is the
    number of lines before `start`, so that malformed lines are reported with their line in the whole file."""
    name = str(path)
    try:
        fh = path.open("rb")
    except OSError as exc:
        report(Malformed(name, 0, f"cannot open: {exc.strerror}"))
        return
    with fh:
        fh.seek(start)
        needles = getattr(prefilter, "needles", None)
        lines = _skim(fh, needles, start, end) if needles else _bounded_lines(fh, start, end)
        yield from normalise_all(_lines(lines, name, report, prefilter, skipped, first_line))


def _lines(
    fh: Iterable[bytes | int],
    name: str,
    report: Report,
    prefilter: Callable[[bytes], bool] | None = None,
    skipped: list[int] | None = None,
    first_line: int = 0,
) -> Iterator[dict[str, Any]]:
    loads = orjson.loads
    decode_error = orjson.JSONDecodeError
    lineno = first_line
    pending: list[bytes] | None = None  # a pretty-printed JSON object spanning lines
    pending_bytes = start = 0
    try:
        for raw in fh:
            lineno += 1
            if type(raw) is int:
                if raw < 0:  # lines the pre-filter rejected as a run (_skim)
                    lineno += -raw - 1
                    if skipped is not None:
                        skipped[0] += -raw
                    continue
                report(Malformed(name, lineno, f"line longer than {MAX_LINE_BYTES} bytes ({raw} bytes)"))
                if pending is not None:
                    pending_bytes = MAX_LINE_BYTES + 1
                continue
            assert isinstance(raw, bytes)
            if pending is not None:
                pending_bytes += len(raw)
                if pending_bytes <= MAX_LINE_BYTES:
                    pending.append(raw)
                continue
            if prefilter is not None and lineno > 1 and not prefilter(raw):
                if skipped is not None:
                    skipped[0] += 1
                continue
            try:
                doc = loads(raw)  # orjson ignores the surrounding whitespace and newline
            except decode_error as exc:
                line = raw.strip()
                if not line:
                    continue
                if lineno == 1 and first_line == 0 and line == b"{":
                    pending, start, pending_bytes = [raw], lineno, len(raw)
                    continue
                report(Malformed(name, lineno, f"invalid JSON: {_line_json_error(exc, line)}"))
                continue
            if type(doc) is dict:
                if ("Records" in doc or "records" in doc) and _records_key(doc) is not None:
                    yield from _unwrap(doc, name, lineno, report)
                elif type(doc.get("properties")) is str and (why := azure.malformed(doc)) is not None:
                    report(Malformed(name, lineno, why))
                elif ("events" in doc or "items" in doc or "data" in doc) and (why := saas.malformed(doc)) is not None:
                    report(Malformed(name, lineno, why))
                else:
                    yield doc
            else:
                report(Malformed(name, lineno, "not a JSON object"))
    except _READ_ERRORS as exc:
        report(Malformed(name, lineno, f"read error: {exc}"))
    if pending is not None:
        if pending_bytes > MAX_LINE_BYTES:
            report(Malformed(name, start, f"JSON document longer than {MAX_LINE_BYTES} bytes"))
            return
        text = b"".join(pending)
        try:
            doc = loads(text)
        except orjson.JSONDecodeError as exc:
            several = split_concatenated(text)  # pretty-printed objects one after another (evtx-JSON)
            if several is None:
                report(Malformed(name, start, f"invalid JSON document: {exc}"))
                return
            doc = several
        yield from _unwrap(doc, name, start, report)


def _records_key(doc: dict[str, Any]) -> str | None:
    """The key of a batch document's records: CloudTrail's `{"Records": [...]}`, Azure's `{"records": [...]}`."""
    for key in ("Records", "records"):
        if isinstance(doc.get(key), list) and "eventName" not in doc and "category" not in doc:
            return key
    return None


def _unwrap(doc: Any, name: str, line: int, report: Report) -> Iterator[dict[str, Any]]:
    key = _records_key(doc) if isinstance(doc, dict) else None
    if key is not None:
        doc = doc[key]
    if isinstance(doc, dict):
        yield doc
        return
    for i, item in enumerate(doc, 1):
        if isinstance(item, dict):
            why = azure.malformed(item) if type(item.get("properties")) is str else None
            if why is None and ("events" in item or "items" in item or "data" in item):
                why = saas.malformed(item)
            if why is None:
                yield item
            else:
                report(Malformed(name, line, f"record {i} of the line's records: {why}"))
        else:
            report(Malformed(name, line, f"record {i} of the line's Records is not a JSON object"))


class _TooLong(Exception):
    pass


class _Counted:
    """A file whose reads are counted, so that a record is measured in bytes while the parser reads it; a read
    that takes the parser more than MAX_LINE_BYTES past `mark` (the last record boundary) raises _TooLong, which
    bounds the one thing the parser would hold whole: a single huge token (a 1 GB string)."""

    __slots__ = ("fh", "_read", "pos", "mark", "scan", "tail")

    def __init__(self, fh: IO[bytes], scan: bool = False) -> None:
        self.fh = fh
        # read1: one step of the file per read, so that a .gz cut short raises only once the records before the
        # damage are parsed (read() fills READ_BYTES first and drops them all: every record of a small file)
        self._read = getattr(fh, "read1", fh.read)
        self.pos = self.mark = 0
        self.scan = scan  # raise _SlowPass before yajl sees a lone surrogate escape (it writes "?" or fails)
        self.tail = b""

    def read(self, n: int = -1) -> bytes:
        data = self._read(READ_BYTES if n is None or n < 0 else n)
        self.pos += len(data)
        if self.pos - self.mark > MAX_LINE_BYTES + 2 * READ_BYTES:
            raise _TooLong
        if self.scan:
            if b"\\u" in data or b"\\u" in self.tail + data[:12]:
                window = self.tail + data
                for m in _LONE_SURROGATE_ESCAPE.finditer(window):
                    # judged with its neighbour in sight: a high half that ends the read, or is followed by the
                    # start of a low one, is judged in the next (it is in `tail`; yajl holds an open string back);
                    # a low half at the start of `tail` was judged in the last
                    if m.group("high"):
                        if not data or not _LOW_HALF_START.match(window, m.end()):
                            raise _SlowPass
                    elif m.start() >= 6 and not _HIGH_HALF.fullmatch(window, m.start() - 6, m.start()):
                        raise _SlowPass
            self.tail = data[-12:] if len(data) >= 12 else (self.tail + data)[-12:]
        return data


class _SlowPass(Exception):
    """The fast parser (yajl) cannot read a value here as NDJSON would: read the file again with the slow one."""


# a high half \uD800-\uDBFF not followed by a low one, or a low half \uDC00-\uDFFF (`_Counted.read` checks that a
# high half is not before it: a lookbehind here made the scan slow). An escaped backslash before `u…` text is
# caught too; the slow pass then reads it correctly.
_LONE_SURROGATE_ESCAPE = re.compile(
    rb"\\u[dD](?:(?P<high>[89abAB][0-9a-fA-F]{2})(?!\\u[dD][c-fC-F])|(?P<low>[c-fC-F][0-9a-fA-F]{2}))"
)
_HIGH_HALF = re.compile(rb"\\u[dD][89abAB][0-9a-fA-F]{2}")
_LOW_HALF_START = re.compile(rb"(?:\\(?:u(?:[dD](?:[c-fC-F][0-9a-fA-F]?)?)?)?)?\Z")  # what a read may end in
_SURROGATE = re.compile("[\ud800-\udfff]")
_NUMBER_MARK = "\ud800#"  # a number out of range, as the slow pass's guard rewrites it (a lone surrogate: bad anyway)


class _NumberGuard:
    """The slow pass's file: a number Python cannot hold (past float range, or an integer of more digits than
    int() converts) becomes the string "\\ud800#K", K its index in `bad`, so that its record is reported and
    skipped; ijson's parser would stop the file at it. Strings pass through untouched."""

    __slots__ = ("fh", "carry", "in_string", "bad")

    _STRING_REST = re.compile(rb'(?:[^"\\]|\\.)*"', re.S)
    _NEXT = re.compile(rb'"|-?[0-9][0-9.eE+-]*')

    def __init__(self, fh: _Counted) -> None:
        self.fh = fh
        self.carry = b""
        self.in_string = False
        self.bad: list[str] = []

    def read(self, n: int = -1) -> bytes:
        while True:  # b"" would be the end of the file to the parser: read on while all of it is carried
            text, final = self.step(n)
            if text or final:
                return text

    def step(self, n: int) -> tuple[bytes, bool]:
        data = self.fh.read(n)
        final = not data
        data, self.carry = self.carry + data, b""
        out: list[bytes] = []
        i, end = 0, len(data)
        while i < end:
            if self.in_string:
                m = self._STRING_REST.match(data, i)
                if m is None:  # the string goes on past this read: keep an odd trailing backslash for the next
                    rest = data[i:]
                    odd = (len(rest) - len(rest.rstrip(b"\\"))) % 2
                    out.append(rest[: len(rest) - odd])
                    self.carry = rest[len(rest) - odd:]
                    break
                out.append(m.group())
                i, self.in_string = m.end(), False
                continue
            m = self._NEXT.search(data, i)
            if m is None:
                out.append(data[i:])
                break
            out.append(data[i:m.start()])
            if m.group() == b'"':
                out.append(b'"')
                i, self.in_string = m.end(), True
                continue
            if m.end() == end and not final:  # a number may go on in the next read
                self.carry = data[m.start():]
                break
            out.append(self.number(m.group()))
            i = m.end()
        return b"".join(out), final

    def number(self, token: bytes) -> bytes:
        bad = False
        if any(c in token for c in b".eE"):
            try:
                bad = abs(float(token)) == float("inf")
            except ValueError:
                pass  # not a number: the parser reports it
        else:
            limit = sys.get_int_max_str_digits()
            bad = limit > 0 and len(token.lstrip(b"-")) > limit
        if not bad:
            return token
        self.bad.append(token.decode("ascii", "replace"))
        return b'"\\ud800#%d"' % (len(self.bad) - 1)


class _Retry:
    """Set when yajl stops on an integer beyond 64 bits: the file is read again with ijson's pure-Python parser
    (slower, exact integers), past the records already handled."""

    needed = False
    done = 0


def _records(fh: IO[bytes], name: str, report: Report, records_key: bool, retry: _Retry | None = None,
             skip: int = 0) -> Iterator[dict[str, Any]]:
    """The records of a JSON array (`records_key` False) or of `{"Records": [...]}` documents (several may follow
    one another), one at a time. A record that is not an object, nests deeper than MAX_DEPTH or spans more than
    MAX_LINE_BYTES is reported by its number and skipped; broken JSON ends the file with a report (a stream
    parser cannot find the next record after a syntax error). `retry` given: yajl (C); an integer beyond 64 bits
    sets it and returns; without: ijson's Python parser, not yielding or reporting records up to `skip`."""
    src = _Counted(fh, scan=retry is not None)
    guard = None if retry is not None else _NumberGuard(src)
    parse = ijson.basic_parse if retry is not None else ijson.get_backend("python").basic_parse
    events = parse(src if guard is None else guard, use_float=True, multiple_values=records_key, buf_size=READ_BYTES)
    level = 2 if records_key else 1  # depth of the records' own containers
    depth = 0  # containers open
    in_records = False  # inside the records array
    key: Any = None
    stack: list[Any] = []  # the record being built, outermost first
    number = 0  # records seen
    skip_to: int | None = None  # skipping a bad record: until depth falls back to this
    started = 0  # src.pos when the current record began

    done = 0  # records yielded or reported

    def bad(message: str) -> Malformed:
        nonlocal done
        done = number
        return Malformed(name, 0, message, number)

    def say(m: Malformed) -> None:
        if number > skip:
            report(m)

    documents = 0  # top-level documents of a Records file, and whether the current one has its records array
    has_records = False
    try:
        for ev, value in events:
            if ev == "start_map" or ev == "start_array":
                depth += 1
                if records_key and depth == 1:
                    documents, has_records = documents + 1, False
                if skip_to is not None:
                    src.mark = src.pos
                    continue
                if not in_records:
                    if depth == level and ev == "start_array" and (not records_key or key in ("Records", "records")):
                        in_records = has_records = True
                    elif depth > level - 1 and records_key:  # another key's value: not read
                        skip_to = depth - 1
                    elif depth == level and not records_key:
                        say(bad("the document is not a JSON array"))
                        skip_to = depth - 1
                    continue
                if depth == level + 1:
                    number += 1
                    started = src.mark = src.pos
                    if ev == "start_array":
                        say(bad("not a JSON object"))
                        skip_to = level
                        continue
                    stack = [{}]
                    continue
                if depth - level > MAX_DEPTH:
                    say(bad(f"nested deeper than {MAX_DEPTH} levels"))
                    stack, skip_to = [], level
                    continue
                if src.pos - started > MAX_LINE_BYTES + READ_BYTES:
                    say(bad(f"record longer than {MAX_LINE_BYTES} bytes"))
                    stack, skip_to = [], level
                    continue
                c: Any = {} if ev == "start_map" else []
                top = stack[-1]
                if type(top) is dict:
                    top[key] = c
                else:
                    top.append(c)
                stack.append(c)
            elif ev == "end_map" or ev == "end_array":
                depth -= 1
                if records_key and depth == 0 and not has_records and (skip == 0 or number > skip):
                    # a document among the batches that is not one ({"Records": [...]} / {"records": [...]})
                    report(Malformed(name, 0, f"document {documents} has no Records or records array"))
                if skip_to is not None:
                    src.mark = src.pos
                    if depth <= skip_to:
                        skip_to = None
                    continue
                if not in_records:
                    continue
                if depth == level - 1:  # the records array closed
                    in_records = False
                    continue
                record = stack.pop()
                if depth == level:
                    stack = []
                    src.mark = src.pos
                    done = number
                    if number > skip:
                        why = azure.malformed(record) if type(record.get("properties")) is str else None
                        if why is None and ("events" in record or "items" in record or "data" in record):
                            why = saas.malformed(record)
                        if why is None:
                            yield record
                        else:
                            report(Malformed(name, 0, why, number))
            elif ev == "map_key":
                key = value
                if guard is not None and skip_to is None and stack and _SURROGATE.search(value):
                    say(bad(_bad_string(value, guard)))
                    stack, skip_to = [], level
            elif skip_to is not None:
                src.mark = src.pos
                continue
            elif in_records and depth == level:  # a bare value among the records
                number += 1
                say(bad("not a JSON object"))
            elif stack:
                if src.pos - started > MAX_LINE_BYTES + READ_BYTES:
                    say(bad(f"record longer than {MAX_LINE_BYTES} bytes"))
                    stack, skip_to = [], level
                    continue
                if guard is not None and type(value) is str and _SURROGATE.search(value):
                    say(bad(_bad_string(value, guard)))  # NDJSON reports the line (orjson refuses it)
                    stack, skip_to = [], level
                    continue
                top = stack[-1]
                if type(top) is dict:
                    top[key] = value
                else:
                    top.append(value)
            elif depth == 0 and not records_key:
                say(bad("the document is not a JSON array"))
    except (_TooLong, _SlowPass, *_READ_ERRORS) as exc:
        # what yajl cannot hold (a lone surrogate, a number past 64 bits or past float range) the Python parser
        # reads, past the records already handled; a number even it cannot hold skips only its record
        if retry is not None and (isinstance(exc, _SlowPass) or (isinstance(exc, ijson.JSONError) and (
                "integer overflow" in _first_line(exc) or "floating point) overflow" in _first_line(exc)))):
            retry.needed, retry.done = True, done
            return
        where = f"in record {number}" if stack or skip_to is not None else f"after record {number}"
        if isinstance(exc, _TooLong):
            why = f"a JSON token longer than {MAX_LINE_BYTES} bytes {where}"
        else:
            why = f"invalid JSON {where}: {_first_line(exc)}"
        report(Malformed(name, 0, why + "; the rest of the file is not read"))


def _bad_string(value: str, guard: _NumberGuard) -> str:
    """Why a record holding this string (a key or a value) is skipped."""
    if value.startswith(_NUMBER_MARK) and value[len(_NUMBER_MARK):].isdigit():
        k = int(value[len(_NUMBER_MARK):])
        if k < len(guard.bad):
            return f"a number out of range: {_cut(guard.bad[k])}"
    return "a lone UTF-16 surrogate in a string"


def _cut(text: str, chars: int = 40) -> str:
    if len(text) <= chars:
        return text
    half = chars // 2
    return f"{text[:half]}…({len(text) - 2 * half:,} characters)…{text[-half:]}"


def _line_json_error(exc: ValueError, line: bytes) -> str:
    """The parser's message about one NDJSON line, with the column in that line: orjson counts lines and columns in
    the text it was given, which holds the line's newline (`line 2 column 1` about line 3 of the file). The message
    is the one about the line alone, as the SQL engines give it: parsed with its newline, a line cut inside a string
    read as "unexpected control character in string", not as the end of its data."""
    try:
        orjson.loads(line)
    except orjson.JSONDecodeError as alone:
        exc = alone
    pos = getattr(exc, "pos", None)
    msg = getattr(exc, "msg", None)
    if not isinstance(pos, int) or not isinstance(msg, str):
        return _first_line(exc)
    return f"{msg} at column {min(pos, len(line)) + 1}"


def _first_line(exc: BaseException) -> str:
    """A parser's message on one line (yajl's quotes the input over several lines, as bytes)."""
    arg = exc.args[0] if exc.args else ""
    text = arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(exc)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = lines[0] if lines else type(exc).__name__
    if len(first) > _MESSAGE_CHARS:  # the parser quotes the token it stopped at: a 10 MB number, say
        half = _MESSAGE_CHARS // 2
        first = f"{first[:half]}…({len(first) - 2 * half:,} characters)…{first[-half:]}"
    return first
