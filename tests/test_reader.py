"""Log reading: NDJSON, JSON arrays, CloudTrail {"Records": [...]}, pretty-printed objects, gzip; malformed input
is reported by file and line and skipped."""

from __future__ import annotations

import gzip
import json
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


def test_broken_document_and_missing_file(tmp_path: Path) -> None:
    p = tmp_path / "broken.json"
    p.write_text('[{"eventName": "A"}, ')
    events, bad = read(p)  # read as a stream: the records before the break are read
    assert events == [{"eventName": "A"}] and len(bad) == 1
    assert str(bad[0]).startswith(f"{p}: skipped: invalid JSON after record 1: parse error: premature EOF")
    events, bad = read(tmp_path / "nope.json")
    assert events == [] and "cannot open" in bad[0].message


def test_truncated_gzip_reports_instead_of_crashing(tmp_path: Path) -> None:
    data = gzip.compress(("\n".join(json.dumps(e) for e in EVENTS * 50) + "\n").encode())
    p = tmp_path / "cut.ndjson.gz"
    p.write_bytes(data[: len(data) // 2])
    events, bad = read(p)
    assert len(events) < 100 and bad and ("read error" in bad[-1].message or "cannot read" in bad[-1].message)
