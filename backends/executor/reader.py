"""Read events from log files: NDJSON, a JSON array, CloudTrail `{"Records": [...]}`, each optionally gzipped;
Windows `.evtx` files, evtx-JSON and flat Windows NDJSON, each record normalised to one row (windows.py).

NDJSON is streamed line by line (memory does not grow with the file). A malformed line is reported with its
file and line number, counted, and skipped; the run goes on.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from .windows import EVTX_MAGIC, iter_evtx, normalise_all, split_concatenated


@dataclass(frozen=True, slots=True)
class Malformed:
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: skipped: {self.message}"


Report = Callable[[Malformed], None]


def _open(path: Path) -> IO[bytes]:
    raw = path.open("rb")
    head = raw.read(2)
    raw.seek(0)
    if head == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=raw)  # type: ignore[return-value]
    return raw


def _first_char(fh: IO[bytes]) -> bytes:
    buf = fh.peek(64) if isinstance(fh, io.BufferedReader) else b""  # type: ignore[attr-defined]
    return buf.lstrip()[:1]


def iter_events(
    path: Path, report: Report, prefilter: Callable[[bytes], bool] | None = None, skipped: list[int] | None = None
) -> Iterator[dict[str, Any]]:
    """Yield each event (a JSON object) of a log file. With a prefilter, NDJSON lines it rejects are not parsed
    (they are counted in `skipped[0]`)."""
    name = str(path)
    try:
        fh = _open(path)
    except OSError as exc:
        report(Malformed(name, 0, f"cannot open: {exc.strerror}"))
        return
    with fh:
        reader = io.BufferedReader(fh) if not isinstance(fh, io.BufferedReader) else fh  # type: ignore[arg-type,type-var]
        try:
            first = _first_char(reader)
        except (OSError, EOFError) as exc:
            report(Malformed(name, 0, f"cannot read: {exc}"))
            return
        if reader.peek(8)[:8] == EVTX_MAGIC or (path.suffix.lower() == ".evtx" and first not in (b"{", b"[")):
            yield from iter_evtx(path, report)
            return
        if first == b"[":
            yield from normalise_all(_whole_document(reader, name, report))
            return
        yield from normalise_all(_lines(reader, name, report, prefilter, skipped))


def _whole_document(fh: IO[bytes], name: str, report: Report) -> Iterator[dict[str, Any]]:
    try:
        doc = orjson.loads(fh.read())
    except (orjson.JSONDecodeError, OSError, EOFError) as exc:
        report(Malformed(name, 1, f"invalid JSON document: {exc}"))
        return
    yield from _unwrap(doc, name, 1, report)


def _unwrap(doc: Any, name: str, line: int, report: Report) -> Iterator[dict[str, Any]]:
    if isinstance(doc, dict) and isinstance(doc.get("Records"), list) and "eventName" not in doc:
        doc = doc["Records"]
    if isinstance(doc, dict):
        yield doc
        return
    if isinstance(doc, list):
        for i, item in enumerate(doc):
            if isinstance(item, dict):
                yield item
            else:
                report(Malformed(name, line, f"element {i} is not a JSON object"))
        return
    report(Malformed(name, line, "not a JSON object"))


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

    def lines() -> Iterator[bytes]:
        pos = start
        with path.open("rb") as fh:
            fh.seek(start)
            for raw in fh:
                if pos >= end:
                    return
                pos += len(raw)
                yield raw

    yield from normalise_all(_lines(lines(), str(path), report, prefilter, skipped, first_line))


def _lines(
    fh: Iterable[bytes],
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
    start = 0
    try:
        for raw in fh:
            lineno += 1
            if pending is not None:
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
                    pending, start = [raw], lineno
                    continue
                report(Malformed(name, lineno, f"invalid JSON: {exc}"))
                continue
            if type(doc) is dict:
                if "Records" in doc and "eventName" not in doc and isinstance(doc["Records"], list):
                    yield from _unwrap(doc, name, lineno, report)
                else:
                    yield doc
            else:
                report(Malformed(name, lineno, "not a JSON object"))
    except (OSError, EOFError) as exc:
        report(Malformed(name, lineno, f"read error: {exc}"))
    if pending is not None:
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
