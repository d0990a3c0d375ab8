"""Log reading: NDJSON, JSON arrays, CloudTrail {"Records": [...]}, pretty-printed objects, gzip; malformed input
is reported by file and line and skipped."""

from __future__ import annotations

import gzip
import json
import zlib
from pathlib import Path

import pytest

from siemforge.backends.executor.reader import Malformed, iter_events

EVENTS = [{"eventName": "A", "n": 1}, {"eventName": "B", "n": 2}]


def read(path: Path) -> tuple[list[dict[str, object]], list[Malformed]]:
    bad: list[Malformed] = []
    return list(iter_events(path, bad.append)), bad


@pytest.mark.parametrize("name,content", [
    ("ndjson", "\n".join(json.dumps(e) for e in EVENTS) + "\n"),
    ("array", json.dumps(EVENTS)),
    ("records", json.dumps({"Records": EVENTS})),
    ("records_pretty", json.dumps({"Records": EVENTS}, indent=2)),
    ("ndjson_blank_lines", "\n" + json.dumps(EVENTS[0]) + "\n\n" + json.dumps(EVENTS[1]) + "\n\n"),
])
def test_shapes(name: str, content: str, tmp_path: Path) -> None:
    plain = tmp_path / f"{name}.json"
    plain.write_text(content)
    packed = tmp_path / f"{name}.json.gz"
    packed.write_bytes(gzip.compress(content.encode()))
    for p in (plain, packed):
        events, bad = read(p)
        assert events == EVENTS and bad == []


def test_malformed_lines_are_reported_and_skipped(tmp_path: Path) -> None:
    p = tmp_path / "x.ndjson"
    p.write_text('{"eventName": "A"}\n{"eventName": \n[1, 2]\n{"eventName": "B"}\n')
    events, bad = read(p)
    assert [e["eventName"] for e in events] == ["A", "B"]
    assert [(m.line, m.message.split(":")[0]) for m in bad] == [(2, "invalid JSON"), (3, "not a JSON object")]
    assert str(bad[0]).startswith(f"{p}:2: skipped: invalid JSON")
    # the column is the line's, not the position in "line 2" of the line and its newline
    assert bad[0].message == "invalid JSON: unexpected end of data at column 14", bad[0].message


@pytest.mark.parametrize("end", ["\n", "\r\n"])
def test_a_line_cut_inside_a_string_is_the_end_of_its_data(tmp_path: Path, end: str) -> None:
    """A line cut short inside a string (a truncated copy) is reported as what it is, with the message the SQL engines
    give: parsed with its newline, orjson called it "unexpected control character in string"."""
    p = tmp_path / "cut.ndjson"
    p.write_text(f'{{"eventName": "A"}}{end}{{"eventName": "Get{end}{{"eventName": "B"}}{end}', newline="")
    events, bad = read(p)
    assert [e["eventName"] for e in events] == ["A", "B"]
    assert [(m.line, m.message) for m in bad] == [(2, "invalid JSON: unexpected end of data at column 19")]


def test_broken_document_and_missing_file(tmp_path: Path) -> None:
    p = tmp_path / "broken.json"
    p.write_text('[{"eventName": "A"}, ')
    events, bad = read(p)  # read as a stream: the records before the break are read
    assert events == [{"eventName": "A"}] and len(bad) == 1
    assert str(bad[0]).startswith(f"{p}: skipped: invalid JSON after record 1: parse error: premature EOF")
    events, bad = read(tmp_path / "nope.json")
    assert events == [] and "cannot open" in bad[0].message


@pytest.mark.parametrize("lines", [100, 100_000])  # inflating to less, and to more, than one read
def test_truncated_gzip_keeps_every_whole_line_before_the_cut(tmp_path: Path, lines: int) -> None:
    text = "".join(json.dumps({"eventName": "A", "n": i}) + "\n" for i in range(lines)).encode()
    data = gzip.compress(text)
    p = tmp_path / "cut.ndjson.gz"
    p.write_bytes(data[: len(data) // 2])
    inflated = zlib.decompressobj(wbits=31).decompress(data[: len(data) // 2])  # all that can be inflated
    whole = inflated.count(b"\n")
    events, bad = read(p)
    assert [e["n"] for e in events] == list(range(whole)) and whole > 0
    assert [(m.line, m.message.split(":")[0]) for m in bad] == [(whole, "read error")]


@pytest.mark.parametrize("records", [100, 30_000])  # inflating to less, and to more, than one read
def test_truncated_gzip_records_document_keeps_the_records_before_the_cut(tmp_path: Path, records: int) -> None:
    """CloudTrail's own delivery files are gzipped Records documents: one cut short gives the records before the
    damage, as NDJSON gives its lines (a read of READ_BYTES dropped all of them in a small file)."""
    doc = {"Records": [{"eventName": "A", "n": i} for i in range(records)]}
    data = gzip.compress(json.dumps(doc).encode())
    p = tmp_path / "cut.json.gz"
    p.write_bytes(data[: len(data) // 2])
    inflated = zlib.decompressobj(wbits=31).decompress(data[: len(data) // 2])
    whole = inflated.count(b"}")  # records complete in what can be inflated
    events, bad = read(p)
    assert [e["n"] for e in events] == list(range(len(events))) and len(events) >= whole - 1 > 0
    [m] = bad
    assert "the rest of the file is not read" in m.message and "ended before the end-of-stream" in m.message


@pytest.mark.parametrize("lines", [200, 100_000])  # the cut in the first block read, and in a later one
def test_truncated_gzip_with_the_prefilter_keeps_the_lines_before_the_cut(tmp_path: Path, lines: int) -> None:
    """The pre-filter reads blocks: a block cut by the damage still gives its whole lines, and the read error is
    reported at the last of them (as without the pre-filter), not at the block's start."""
    from siemforge.backends.executor.prefilter import LineFilter

    text = "".join(json.dumps({"eventName": "A" if i % 2 else "B", "n": i}) + "\n" for i in range(lines)).encode()
    data = gzip.compress(text)
    p = tmp_path / "cut.ndjson.gz"
    p.write_bytes(data[: len(data) // 2])
    whole = zlib.decompressobj(wbits=31).decompress(data[: len(data) // 2]).count(b"\n")
    bad: list[Malformed] = []
    skipped = [0]
    events = list(iter_events(p, bad.append, LineFilter(["B"]), skipped))
    assert [e["n"] for e in events] == [n for n in range(whole) if n % 2 == 0 or n == 0]
    assert len(events) + skipped[0] == whole and whole > 2
    assert [(m.line, m.message.split(":")[0]) for m in bad] == [(whole, "read error")]


def test_records_documents_stream_with_record_numbers(tmp_path: Path) -> None:
    p = tmp_path / "r.json"
    # two Records documents one after the other, a bare value and an array among the records, another key
    p.write_text('{"Records": [{"eventName": "A"}, 5, [1], {"eventName": "B"}], "x": {"y": [1]}}\n'
                 '{"Records": [{"eventName": "C"}]}')
    events, bad = read(p)
    assert [e["eventName"] for e in events] == ["A", "B", "C"]
    assert [str(m) for m in bad] == [f"{p}: record 2: skipped: not a JSON object",
                                     f"{p}: record 3: skipped: not a JSON object"]


def test_bom_and_crlf(tmp_path: Path) -> None:
    p = tmp_path / "bom.ndjson"
    p.write_bytes(b"\xef\xbb\xbf" + b'{"eventName": "A", "n": 1}\r\n{"eventName": "B", "n": 2}\r\n')
    assert read(p) == (EVENTS, [])
    p.write_bytes(b"\xef\xbb\xbf" + json.dumps(EVENTS).encode())
    assert read(p) == (EVENTS, [])


def test_deeply_nested_record_is_skipped(tmp_path: Path) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    p = tmp_path / "deep.json"
    p.write_text(f'[{{"eventName": "A", "n": 1}}, {{"x": {deep}}}, {{"eventName": "B", "n": 2}}]')
    events, bad = read(p)
    assert events == EVENTS and [str(m) for m in bad] == [f"{p}: record 2: skipped: nested deeper than 1024 levels"]
    p = tmp_path / "deep.ndjson"
    p.write_text(json.dumps(EVENTS[0]) + "\n" + deep + "\n" + json.dumps(EVENTS[1]) + "\n")
    events, bad = read(p)
    assert events == EVENTS and len(bad) == 1 and bad[0].line == 2 and "depth limit" in bad[0].message


def test_100mb_line_is_reported_not_read_whole(tmp_path: Path) -> None:
    p = tmp_path / "long.ndjson"
    with p.open("wb") as fh:
        fh.write(json.dumps(EVENTS[0]).encode() + b"\n")
        fh.write(b'{"userAgent": "' + b"a" * 100_000_000 + b'"}\n')
        fh.write(json.dumps(EVENTS[1]).encode() + b"\n")
    events, bad = read(p)
    assert events == EVENTS
    assert [str(m) for m in bad] == [f"{p}:2: skipped: line longer than 16777216 bytes (100000018 bytes)"]


def test_huge_record_in_array_is_skipped(tmp_path: Path) -> None:
    big = {"list": ["x" * 10_000] * 2_000}  # 20 MB of values: skipped while it streams, the rest read
    p = tmp_path / "big.json"
    p.write_text(json.dumps([EVENTS[0], big, EVENTS[1]]))
    events, bad = read(p)
    assert events == EVENTS and [str(m) for m in bad] == [f"{p}: record 2: skipped: record longer than 16777216 bytes"]
    p.write_text(json.dumps([EVENTS[0], {"s": "y" * 20_000_000}, EVENTS[1]]))  # one 20 MB token: the file ends
    events, bad = read(p)
    assert events == EVENTS[:1] and "a JSON token longer than 16777216 bytes in record 2" in bad[0].message


def test_gzip_bomb_line_streams(tmp_path: Path) -> None:
    p = tmp_path / "bomb.gz"
    p.write_bytes(gzip.compress(b"\0" * 50_000_000 + b"\n" + json.dumps(EVENTS[0]).encode() + b"\n"))
    events, bad = read(p)
    assert events == EVENTS[:1] and [m.message for m in bad] == ["line longer than 16777216 bytes (50000001 bytes)"]


def test_reports_are_capped_but_counted(tmp_path: Path) -> None:
    from siemforge.backends.executor.reader import MAX_REPORTS, Reports

    p = tmp_path / "bad.ndjson"
    p.write_text("x\n" * (MAX_REPORTS + 5))
    reports = Reports()
    assert list(iter_events(p, reports)) == []
    assert len(reports.kept) == MAX_REPORTS and reports.total == MAX_REPORTS + 5


def test_integer_beyond_64_bits_in_an_array(tmp_path: Path) -> None:
    # yajl refuses it; the file is read again with ijson's Python parser, past the records already handled
    p = tmp_path / "big.json.gz"
    p.write_bytes(gzip.compress(b'[{"n": 1}, 7, {"n": 123456789012345678901234567890}, {"n": 1e400}, {"n": 2}]'))
    events, bad = read(p)
    assert events == [{"n": 1}, {"n": 123456789012345678901234567890}, {"n": 2}]
    assert [str(m) for m in bad] == [
        f"{p}: record 2: skipped: not a JSON object",
        f"{p}: record 4: skipped: a number out of range: 1e400",
    ]


BIG = b"9" * 4301  # past Python's int limit (sys.get_int_max_str_digits)


# one bad value skips its record, as it skips its line in NDJSON; the records after it are read
@pytest.mark.parametrize("value,why", [
    (b"1e400", "a number out of range: 1e400"),
    (b"-1e400", "a number out of range: -1e400"),
    (BIG, "a number out of range: 9999"),
    (b'"\\udfff"', "a lone UTF-16 surrogate in a string"),
    (b'"x\\ud800y"', "a lone UTF-16 surrogate in a string"),
    (b'{"k": [1, "\\ud800"]}', "a lone UTF-16 surrogate in a string"),
])
@pytest.mark.parametrize("shape", ["array", "records", "ndjson"])
def test_a_bad_value_skips_only_its_record(tmp_path: Path, value: bytes, why: str, shape: str) -> None:
    records = [b'{"eventName": "A", "ok": "\\ud83d\\ude00"}', b'{"eventName": "X", "v": ' + value + b"}",
               b'{"eventName": "B"}']
    p = tmp_path / f"bad.{'ndjson' if shape == 'ndjson' else 'json'}"
    if shape == "ndjson":
        p.write_bytes(b"\n".join(records) + b"\n")
    else:
        body = b"[" + b", ".join(records) + b"]"
        p.write_bytes(body if shape == "array" else b'{"Records": ' + body + b"}")
    events, bad = read(p)
    assert [e["eventName"] for e in events] == ["A", "B"]
    assert events[0]["ok"] == "\U0001f600"
    assert len(bad) == 1
    if shape == "ndjson":
        assert str(bad[0]).startswith(f"{p}:2: skipped: invalid JSON")
    else:
        assert str(bad[0]).startswith(f"{p}: record 2: skipped: {why}"), str(bad[0])
        assert len(str(bad[0])) < len(str(p)) + 200


def test_a_lone_surrogate_key_skips_its_record(tmp_path: Path) -> None:
    p = tmp_path / "key.json"
    p.write_bytes(b'[{"eventName": "A"}, {"\\udc00": 1}, {"eventName": "B"}]')
    events, bad = read(p)
    assert [e["eventName"] for e in events] == ["A", "B"]
    assert [str(m) for m in bad] == [f"{p}: record 2: skipped: a lone UTF-16 surrogate in a string"]


@pytest.mark.parametrize("token", [b"9" * 100_000, b"1" + b"0" * 100_000 + b"e1"])
def test_a_huge_number_skips_its_record_and_is_cut_in_the_report(tmp_path: Path, token: bytes) -> None:
    # an attacker's 10 MB number printed 10 MB of report
    p = tmp_path / "num.json"
    p.write_bytes(b'[{"eventName": "A"}, {"n": ' + token + b'}, {"eventName": "B"}]')
    events, bad = read(p)
    assert events == [{"eventName": "A"}, {"eventName": "B"}] and len(bad) == 1
    assert len(str(bad[0])) < len(str(p)) + 300 and str(bad[0]).startswith(f"{p}: record 2: skipped: a number out")


def test_a_parser_message_quoting_a_huge_token_is_cut(tmp_path: Path) -> None:
    # a syntax error: a stream parser cannot find the next record, so the file stops there, as before
    p = tmp_path / "num.json"
    p.write_bytes(b'[{"eventName": "A"}, {"n": -' + b"x" * 100_000 + b'}, {"eventName": "B"}]')
    events, bad = read(p)
    assert events == [{"eventName": "A"}] and len(bad) == 1
    assert len(str(bad[0])) < len(str(p)) + 300 and str(bad[0]).endswith("; the rest of the file is not read")


class _Chunks:
    """A file that returns `size` bytes per read, so that strings, escapes and numbers cross read boundaries."""

    def __init__(self, data: bytes, size: int) -> None:
        self.data, self.size, self.at = data, size, 0

    def read(self, n: int = -1) -> bytes:
        out = self.data[self.at:self.at + self.size]
        self.at += len(out)
        return out


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 64])
def test_the_slow_pass_number_guard_across_reads(size: int) -> None:
    from siemforge.backends.executor.reader import _NumberGuard

    doc = (b'[{"a\\"1e400": "x\\\\", "n": -12.5e3, "b": "1e400 \\\\\\" 99", "big": 1e400, "c": [0, -7, 2E-3],'
           b' "d": "\\u00e9\\ud83d\\ude00", "e": true, "f": null, "g": ' + b"9" * 4301 + b"}]")
    guard = _NumberGuard(_Chunks(doc, size))  # type: ignore[arg-type]
    out = b""
    while chunk := guard.read(4096):
        out += chunk
    got = json.loads(out)
    assert got == [{"a\"1e400": "x\\", "n": -12500.0, "b": '1e400 \\" 99', "big": "\ud800#0", "c": [0, -7, 0.002],
                    "d": "é\U0001f600", "e": True, "f": None, "g": "\ud800#1"}]
    assert guard.bad == ["1e400", "9" * 4301]


@pytest.mark.parametrize("cut", [1, 3, 6])
def test_a_lone_surrogate_across_a_read_is_seen(tmp_path: Path, cut: int) -> None:
    from siemforge.backends.executor.reader import READ_BYTES

    head = b'[{"eventName": "A", "pad": "'
    second = b'"}, {"eventName": "X", "v": "'
    pad = READ_BYTES - len(head) - len(second) - cut  # the escape \ud800 starts `cut` bytes before a read ends
    p = tmp_path / "cut.json"
    p.write_bytes(head + b"p" * pad + second + b'\\ud800"}, {"eventName": "B"}]')
    events, bad = read(p)
    assert [e["eventName"] for e in events] == ["A", "B"]
    assert [str(m) for m in bad] == [f"{p}: record 2: skipped: a lone UTF-16 surrogate in a string"]


@pytest.mark.parametrize("value", [b'"\\ud800"', b'"\\udfff"', b'"a\\ud800"', b"1e400"])
def test_a_bad_value_in_the_last_record(tmp_path: Path, value: bytes) -> None:
    # the escape is the last thing yajl reads: it must be seen before yajl turns it into "?"
    p = tmp_path / "last.json"
    p.write_bytes(b'[{"eventName": "A", "e": "\\ud83d\\ude00"}, {"v": ' + value + b"}]")
    events, bad = read(p)
    assert events == [{"eventName": "A", "e": "\U0001f600"}]
    assert [str(m).split(": skipped: ")[0] for m in bad] == [f"{p}: record 2"]


@pytest.mark.parametrize("size", [1, 2, 3, 5, 6, 7, 11, 12, 13, 64])
def test_the_fast_pass_sees_lone_surrogates_across_reads_and_only_them(size: int) -> None:
    # a pair split over two reads is no reason to read the file again slowly; a lone half is, wherever it falls
    import io

    from siemforge.backends.executor.reader import _Counted, _SlowPass

    def scan(doc: bytes) -> bool:
        c = _Counted(io.BytesIO(doc), scan=True)
        try:
            while c.read(size):
                pass
        except _SlowPass:
            return True
        return False

    assert not scan(b'[{"e": "\\ud83d\\ude00 \\uD83D\\uDE00 \\u00e9", "f": "\\ud800\\udc00"}]')
    for lone in [b"\\ud800", b"\\udfff", b"\\ud800\\ud800\\udc00", b"\\ud800\\u0041", b"x\\udc00\\ud800"]:
        assert scan(b'[{"e": "\\ud83d\\ude00", "v": "' + lone + b'"}]'), lone


def _skim_by_line(block: bytes, needles: tuple[bytes, ...]) -> list[bytes | int]:
    """reader._skim_block's contract, line by line: a line holding a needle (without case) or `\\` as itself, each run
    of the others as minus its length; every line as itself when one does not look whole."""
    lines = block.splitlines(keepends=True)
    if not all(x.rstrip(b"\n")[:1] == b"{" and x.rstrip(b"\n")[-1:] == b"}" for x in lines):
        return list(lines)
    out: list[bytes | int] = []
    for x in lines:
        if b"\\" in x or any(n in x.lower() for n in needles):
            out.append(x)
        elif out and isinstance(out[-1], int):
            out[-1] -= 1
        else:
            out.append(-1)
    return out


@pytest.mark.parametrize("block", [
    b'{"a": "PutImage"}\n{"b": 1}\n{"c": 2}\n{"d": "putimage putimage"}\n',  # hits first and last, mixed case
    b'{"b": 1}\n{"a": "x\\"y"}\n{"c": "PUTIMAGE"}\n{"d": 4}\n{"e": 5}',  # `\` and an upper-case hit, no last newline
    b'{"b": 1}\n{"c": 2}\n',  # no hit
    b'{"a": "putimage"}',  # one line, a hit, no newline
    b'{"a": 1}\n\n{"b": "putimage"}\n',  # a blank line: every line goes to the reader
    b'{"a": 1}\r\n{"b": 2}\r\n',  # \r\n
    b'{"a": 1}\n{"b": 2\n{"c": 3}\n',  # a truncated line
    b'{"a": "ecr.amazonaws.com"}\n{"x": 0}\n{"b": "PutImage", "c": "ECR.amazonaws.com"}\n',  # both needles, one line
])
def test_skim_block_is_the_line_by_line_contract(block: bytes) -> None:
    from siemforge.backends.executor.reader import _skim_block

    needles = (b"putimage", b"ecr.amazonaws.com")
    assert list(_skim_block(block, needles)) == _skim_by_line(block, needles)
