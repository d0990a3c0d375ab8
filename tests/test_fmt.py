"""`siemforge fmt`: the canonical layout of rule files, idempotent, and never a change of meaning."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from siemforge.compiler.fmt import FormatError, code_signature, format_text, layout_pipeline

from helpers import ROOT, shared_path

CMD = [sys.executable, "-m", "siemforge.cli.main"]


def sf(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CMD, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


# ------------------------------------------------------------------ the pipeline, one stage per line: input → output
LAYOUT = [
    ("one stage", "where a == 1", "where a == 1\n"),
    ("stages on one line", "where a == 1 | extend b = 2 | take 5", "where a == 1\n| extend b = 2\n| take 5\n"),
    ("indented pipes", "where a\n    | extend b = 1\n  |take 3\n", "where a\n| extend b = 1\n| take 3\n"),
    ("trailing pipes", "where a |\n  extend b = 1 |\n  take 3", "where a\n| extend b = 1\n| take 3\n"),
    ("continuation lines kept", "summarize n = count()\n    by a,\n       b\n| where n > 1",
     "summarize n = count()\n    by a,\n       b\n| where n > 1\n"),
    ("a pipe in a string", 'where a == "x | y" | take 1', 'where a == "x | y"\n| take 1\n'),
    ("a pipe in a single-quoted string", "where a == 'x|y' and b == 1", "where a == 'x|y' and b == 1\n"),
    ("escaped quote", r'where a == "x \" | y" | take 1', 'where a == "x \\" | y"\n| take 1\n'),
    ("verbatim string", r'where a matches regex @"a|b\d" | take 1', 'where a matches regex @"a|b\\d"\n| take 1\n'),
    ("a pipe in a comment", "// a | b\nwhere a // c | d\n| take 1", "// a | b\nwhere a // c | d\n| take 1\n"),
    ("a pipe in a quoted name", "where `a|b` == 1 | take 1", "where `a|b` == 1\n| take 1\n"),
    ("blanks", "\n\nwhere a   \n\n\n| take 1  \n\n", "where a\n\n| take 1\n"),
    ("first stage indented", "   where a\n| take 1", "where a\n| take 1\n"),
    ("comment after a trailing pipe", "where a | // next\ntake 1", "where a  // next\n| take 1\n"),
]


@pytest.mark.parametrize(("text", "expected"), [pytest.param(t, e, id=n) for n, t, e in LAYOUT])
def test_pipeline_layout(text: str, expected: str) -> None:
    assert layout_pipeline(text) == expected
    assert layout_pipeline(expected) == expected  # idempotent
    assert code_signature(expected) == code_signature(text)  # only layout changed


def test_code_signature_sees_a_change_of_code() -> None:
    assert code_signature("where a == 1 | take 1") != code_signature("where a == 2 | take 1")
    assert code_signature('where a == "x  y"') != code_signature('where a == "x y"')  # blanks in a string count
    assert code_signature("where a // c") == code_signature("where a")


# ------------------------------------------------------------------ whole files
RULE = """\
# a comment on the rule
level: high  # how bad
tags: [attack.execution]
title: Example
logsource:
  service: security
  product: windows
alert: {threshold: "> 0"}
status: test
query: |
  where EventID == 4625 | summarize n = count() by TargetUserName
  | where n > 3
detection:
  condition: sel
  sel:
    EventID: 4625
    CommandLine|contains: "C:\\\\Windows"
id: 6f1c8e35-6a8e-4b57-9a4c-0a3f1d0b2c11
"""

EXPECTED = """\
# a comment on the rule
title: Example
id: 6f1c8e35-6a8e-4b57-9a4c-0a3f1d0b2c11
status: test
tags: [attack.execution]
logsource:
  product: windows
  service: security
detection:
  sel:
    EventID: 4625
    CommandLine|contains: 'C:\\Windows'
  condition: sel
level: high  # how bad
query: |
  where EventID == 4625
  | summarize n = count() by TargetUserName
  | where n > 3
alert: {threshold: '> 0'}
"""


def test_format_rule_file() -> None:
    result = format_text(RULE, "rule.yml")
    assert result == EXPECTED
    assert format_text(result, "rule.yml") == result


def test_comments_move_with_the_keys_they_are_about() -> None:
    text = """\
title: c
query: |
  where a
# about the tests
tests:
  - name: x
    logs: a.ndjson
    expect: silent
# about level
level: low
detection:
    condition: sel   # the condition
    # the selection
    sel:
        a: 1  # one
# about the description
description: >-
  folded
# at the end
"""
    expected = """\
title: c
# about the description
description: >-
  folded
detection:
  # the selection
  sel:
    a: 1      # one
  condition: sel     # the condition
# about level
level: low
query: |
  where a
# about the tests
tests:
  - name: x
    logs: a.ndjson
    expect: silent
# at the end
"""
    result = format_text(text, "r.yml")
    assert result == expected
    assert format_text(result, "r.yml") == result


def test_comments_are_indented_as_the_line_below() -> None:
    text = """\
title: t
detection:
    sel:
        a:
            - 1
                    # - 2
            - 3
          # about the condition
    condition: sel
description: |
  # a line of the description, not a comment
      # nor this one
  end
"""
    expected = """\
title: t
description: |
  # a line of the description, not a comment
      # nor this one
  end
detection:
  sel:
    a:
      - 1
      # - 2
      - 3
  # about the condition
  condition: sel
"""
    result = format_text(text, "r.yml")
    assert result == expected
    assert format_text(result, "r.yml") == result


def test_multi_document_file_keeps_every_document() -> None:
    text = """\
title: Base
name: base_rule
logsource: {product: windows, service: security}
detection: {sel: {EventID: 4625}, condition: sel}
---
correlation:
  type: event_count
  rules: [base_rule]
  group-by: [TargetUserName]
  timespan: 10m
  condition: {gte: 5}
title: Many failures  # the correlation
"""
    result = format_text(text, "rules.yml")
    docs = result.split("\n---\n")
    assert len(docs) == 2
    assert docs[0].startswith("title: Base\nname: base_rule\n")
    assert docs[1].startswith("title: Many failures  # the correlation\ncorrelation:\n")
    assert format_text(result, "rules.yml") == result


def test_quoting_needed_by_yaml_1_1_is_kept() -> None:
    # yes/on/0777 read as bool/int under YAML 1.1 (the compiler's reading) but as text under 1.2: quotes stay
    text = "title: t\ndetection: {sel: {a: 'yes', b: \"on\", c: '0777', d: yes}, condition: sel}\n"
    result = format_text(text, "r.yml")
    assert result == "title: t\ndetection: {sel: {a: 'yes', b: 'on', c: '0777', d: yes}, condition: sel}\n"


def test_double_quotes_stay_where_escapes_need_them() -> None:
    text = 'title: "a\\tb"\n'
    assert format_text(text, "r.yml") == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("title: [unclosed\n", "r.yml:2:1: error: invalid YAML", id="syntax"),
        pytest.param("title: a\ntitle: b\n", "r.yml:2:1: error: cannot format: found duplicate key", id="duplicate"),
        pytest.param("title: &a x\nid: *a\n", "r.yml:1:8: error: YAML anchor &a", id="anchor"),
        pytest.param("- a\n- b\n", "r.yml:1:1: error: cannot format: a rule must be a YAML mapping", id="list"),
        pytest.param("title: x\n---\n- a\n", "r.yml:3:1: error: cannot format: a rule must be a YAML mapping",
                     id="list-document"),
        pytest.param("just text\n", "r.yml:1:1: error: cannot format: a rule must be a YAML mapping", id="scalar"),
        # the compiler refuses these; joined on one line they would compile, the `summarize` swallowed by `// c`
        pytest.param('title: q\nquery: "where a == 1 // c\n  | summarize count()"\n',
                     "r.yml:2:8: error: cannot format: write `query` as a literal block", id="query-quoted-lines"),
        pytest.param("title: q\nquery: where a == 1 // c\n  | summarize count()\n",
                     "r.yml:2:8: error: cannot format: write `query` as a literal block", id="query-plain-lines"),
        pytest.param("title: q\nquery: >\n  where a == 1 // c\n  | summarize count()\n",
                     "r.yml:2:8: error: cannot format: write `query` as a literal block", id="query-folded"),
    ],
)
def test_refuses_what_it_cannot_read(text: str, message: str) -> None:
    with pytest.raises(FormatError) as info:
        format_text(text, "r.yml")
    assert str(info.value.diagnostics[0]).startswith(message), str(info.value.diagnostics[0])


# ------------------------------------------------------------------ the command
def test_bundled_rules_are_formatted() -> None:
    r = sf("fmt", "--check", "rules")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 file(s) would be reformatted" in r.stdout


def test_fmt_check_then_fmt(tmp_path: Path) -> None:
    rule = tmp_path / "r.yml"
    rule.write_text(RULE)
    rule.chmod(0o640)
    r = sf("fmt", "--check", str(tmp_path))
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"would reformat {rule}" in r.stdout
    assert rule.read_text() == RULE  # --check writes nothing
    r = sf("fmt", str(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 file(s) reformatted, 0 unchanged" in r.stdout
    assert rule.read_text() == EXPECTED
    assert rule.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.yml"]  # no temporary file left behind
    r = sf("fmt", "--check", str(rule))
    assert r.returncode == 0, r.stdout + r.stderr


def test_fmt_refuses_a_broken_file_and_formats_the_rest(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("title: ok\ndetection:\n  sel: {a: 1\n")
    good = tmp_path / "good.yml"
    good.write_text(RULE)
    r = sf("fmt", str(tmp_path))
    assert r.returncode == 2, r.stdout + r.stderr
    assert f"{bad}:4:1: error: invalid YAML" in r.stderr
    assert "Traceback" not in r.stderr
    assert "1 file(s) reformatted, 0 unchanged, 1 could not be formatted" in r.stderr
    assert bad.read_text() == "title: ok\ndetection:\n  sel: {a: 1\n"
    assert good.read_text() == EXPECTED


def test_fmt_leaves_a_read_only_file_alone(tmp_path: Path) -> None:
    """A file without write permission is not replaced by a rename over it (which would need only a writable folder,
    and which root could always do): it is reported, left as it was, and the others are formatted."""
    ro = tmp_path / "ro.yml"
    ro.write_text(RULE)
    ro.chmod(0o444)
    good = tmp_path / "good.yml"
    good.write_text(RULE)
    r = sf("fmt", str(tmp_path))
    assert r.returncode == 2, r.stdout + r.stderr
    assert f"{ro}: error: cannot write: read-only file" in r.stderr
    assert "1 file(s) reformatted, 0 unchanged, 1 could not be formatted" in r.stderr
    assert ro.read_text() == RULE
    assert ro.stat().st_mode & 0o777 == 0o444
    assert good.read_text() == EXPECTED
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.yml", "ro.yml"]  # no temporary file left behind


def test_fmt_missing_path() -> None:
    r = sf("fmt", "no/such/folder")
    assert r.returncode == 2
    assert "no/such/folder: error: no such file or folder" in r.stderr


# ------------------------------------------------------------------ the SigmaHQ corpus: same IR before and after
def _comparable(results: list) -> list:  # type: ignore[type-arg]
    return [None if r.rule is None else dataclasses.replace(r.rule, file="") for r in results]


@pytest.mark.slow
def test_sigma_corpus_formats_without_a_change_of_meaning(tmp_path: Path) -> None:
    from siemforge.compiler.api import compile_rules, discover_rules

    root = shared_path("data", "sigma", "rules")
    copy = tmp_path / "rules"
    shutil.copytree(root, copy)
    files = discover_rules([copy])
    started = time.perf_counter()
    changed = 0
    for f in files:
        text = f.read_text(encoding="utf-8")
        result = format_text(text, str(f))  # raises for a file it refuses: none in the corpus
        assert format_text(result, str(f)) == result, f"{f}: formatting twice changes it"
        if result != text:
            changed += 1
            f.write_text(result, encoding="utf-8")
    elapsed = time.perf_counter() - started
    print(f"\nformatted {len(files)} SigmaHQ rule files ({changed} changed) twice in {elapsed:.1f} s")
    assert len(files) > 3000
    compiled = 0
    for f in files:
        original = root / f.relative_to(copy)
        before, after = _comparable(compile_rules(original, root=root)), _comparable(compile_rules(f, root=copy))
        assert before == after, f"{original}: the IR changed"
        compiled += sum(r is not None for r in before)
    assert compiled > 3000
