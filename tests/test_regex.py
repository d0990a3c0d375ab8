"""Regexes in the executor run on RE2 (docs/semantics.md, decision 5): a table of what a pattern means where RE2
and Python's `re` differ, Sigma's `|re` flags, the refusals (each naming the construct), and linear time on the
patterns that made the backtracking engine hang."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from test_semantics import keeps, sigma_keeps
from typer.testing import CliRunner

from siemforge.backends.executor.values import wildcard_matcher
from siemforge.cli.main import app
from siemforge.compiler.ir import Wild
from siemforge.compiler.regex import RegexRefused, compile_re2

# (pattern, text, matches in the executor, what Python's `re` said): one row per difference found
DIFFERENCES = [
    ("abc$", "abc\n", False, True),  # RE2 `$` is the end of the text; Python/PCRE also match before a final \n
    (r"^\d+$", "٣٤", False, True),  # RE2 \d is ASCII [0-9] (as PCRE); Python's is any Unicode digit
    (r"^\w+$", "é", False, True),  # \w is ASCII [0-9A-Za-z_]
    (r"\bé", "xé", True, False),  # \b is an ASCII word boundary
    (r"^\s$", "\v", False, True),  # \s is [\t\n\f\r ]: no vertical tab
    (r"^\s$", "\u00a0", False, True),  # nor Unicode spaces
    (r"^[[:alpha:]]+$", "abc", True, False),  # POSIX classes (RE2, PCRE); Python read a nested set
    (r"^\pL+$", "éa", True, None),  # Unicode classes are spelled \pL, \p{Greek} (Python: an error)
    (r"ab\z", "ab", True, None),  # \z is the end of the text (Python 3.11: an error)
    (r"^.$", "😀", True, True),  # `.` is one code point, not one UTF-8 byte
    (r"^.$", "\n", False, False),  # `.` is not a newline unless `s`
]


@pytest.mark.parametrize(("pattern", "text", "expected", "python"), DIFFERENCES)
def test_re2_meaning(tmp_path: Path, pattern: str, text: str, expected: bool, python: bool | None) -> None:
    pattern_text = orjson.dumps(pattern).decode().replace("\\\\", "\\")  # a verbatim @"…" string holds it as is
    assert keeps(tmp_path, f"x matches regex @{pattern_text}", [{"x": text}]) == [expected]


FLAGS = [  # Sigma's |re modifiers → RE2 options
    ("x|re: '^run$'", ["Run", "run"], [False, True]),
    ("x|re|i: '^run$'", ["Run", "RUN"], [True, True]),
    ("x|re|m: '^b$'", ["a\nb\nc", "abc"], [True, False]),
    ("x|re|s: 'a.c'", ["a\nc", "abc"], [True, True]),
    ("x|re: 'a.c'", ["a\nc", "abc"], [False, True]),
    ("x|re|i|m: '^B$'", ["a\nb", "B"], [True, True]),
]


@pytest.mark.parametrize(("item", "texts", "expected"), FLAGS)
def test_sigma_regex_flags(tmp_path: Path, item: str, texts: list[str], expected: list[bool]) -> None:
    detection = "{selection: {" + item + "}, condition: selection}"
    assert sigma_keeps(tmp_path, detection, [{"x": t} for t in texts]) == expected


REFUSED = [
    ("aws-cli(?!/2)", "negative look-ahead"),
    ("(?=x)y", "look-ahead"),
    ("(?<=a)b", "look-behind"),
    ("(?<!a)b", "negative look-behind"),
    (r"(a)\1", "backreference"),
    (r"a\Z", "\\Z"),
    ("(?>a)", "atomic group"),
    ("a++", "possessive"),
]


@pytest.mark.parametrize(("pattern", "construct"), REFUSED)
def test_refusal_names_construct(pattern: str, construct: str) -> None:
    with pytest.raises(RegexRefused, match=construct.replace("\\", "\\\\").replace("(", "\\(")):
        compile_re2(pattern)


def test_run_refuses_with_position(tmp_path: Path) -> None:
    rule = tmp_path / "r.yml"
    rule.write_text(
        "title: look-ahead\nlogsource: {product: aws, service: cloudtrail}\n"
        'query: |\n  where userAgent matches regex "aws-cli(?!/2)"\n'
        "tests:\n  - {name: t, logs: e.ndjson, expect: fires}\n"
    )
    (tmp_path / "e.ndjson").write_text('{"userAgent": "aws-cli/1"}\n')
    res = CliRunner().invoke(app, ["run", str(rule), str(tmp_path / "e.ndjson")])
    assert res.exit_code == 1
    assert f"{rule}:4:34: error: look-ahead: the executor runs regexes on RE2" in res.output
    assert "negative look-ahead" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(app, ["test", str(rule)])
    assert res.exit_code == 1 and "not run:" in res.output
    res = CliRunner().invoke(app, ["compile", str(rule), "--target", "splunk"])
    assert res.exit_code == 0, res.output  # Splunk's PCRE runs it: only the executor (and KQL) refuse


def test_refusal_points_at_the_pattern_not_the_title(tmp_path: Path) -> None:
    from siemforge.backends.executor.regex import check_rule
    from siemforge.compiler.api import compile_file

    rule = tmp_path / "r.yml"  # the title holds the pattern's text too: the error pointed at the title
    rule.write_text('title: "aws-cli(?!/2)"\nlogsource: {product: aws, service: cloudtrail}\n'
                    'query: |\n  where userAgent matches regex "aws-cli(?!/2)"\n')
    compiled = compile_file(rule)
    assert compiled.rule is not None
    d = check_rule(compiled.rule)
    assert d is not None and d.span is not None and (d.span.line, d.span.column) == (4, 34)


def test_redos_pattern_over_100k_attacker_text(tmp_path: Path) -> None:
    # `^(a+)+$` backtracks exponentially in Python's re (40 × a + "!" ran past 30 s); RE2 is linear
    rule = tmp_path / "r.yml"
    rule.write_text(
        "title: redos\nlogsource: {product: aws, service: cloudtrail}\n"
        "detection: {selection: {userAgent|re: '^(a+)+$'}, condition: selection}\n"
    )
    logs = tmp_path / "e.ndjson"
    logs.write_bytes(
        orjson.dumps({"userAgent": "a" * 100_000 + "!"}) + b"\n" + orjson.dumps({"userAgent": "a" * 100_000}) + b"\n"
    )
    res = CliRunner().invoke(app, ["run", str(rule), str(logs), "--format", "json"])
    assert res.exit_code == 0, res.output
    rows = orjson.loads(res.stdout)
    assert [len(r["userAgent"]) for r in rows] == [100_000]


WILDCARDS = [  # the wildcard matcher: a full match, linear in the text
    (("a", Wild.ANY, "b"), True, "aXXb", True),
    (("a", Wild.ANY, "b"), True, "aXXbc", False),
    ((Wild.ANY, "ab", Wild.ANY, "ab", Wild.ANY), True, "xabab", True),
    ((Wild.ANY, "ab", Wild.ANY, "ab", Wild.ANY), True, "xaba", False),
    (("ab", Wild.ANY, "ba"), True, "aba", False),  # prefix and suffix must not overlap
    (("ab", Wild.ANY, "ba"), True, "abba", True),
    (("A", Wild.ONE, "c"), False, "abC", True),
    (("A", Wild.ONE, "c"), False, "abbC", False),
    ((Wild.ANY, "\\POWERSHELL.EXE"), False, "c:\\windows\\powershell.exe", True),
    (("x",), False, "X", True),
    ((Wild.ANY,), True, "", True),
    (("a", Wild.ONE), True, "a\n", True),  # `?` is any one character, a newline too
]


@pytest.mark.parametrize(("pattern", "cs", "text", "expected"), WILDCARDS)
def test_wildcard_matcher(pattern: tuple[object, ...], cs: bool, text: str, expected: bool) -> None:
    assert wildcard_matcher(pattern, cs)(text) is expected


def test_wildcard_over_100k_attacker_text() -> None:
    # `*a*a*a*a*b` as a backtracking regex is polynomial: minutes over 3 kB
    pattern = (Wild.ANY, "a", Wild.ANY, "a", Wild.ANY, "a", Wild.ANY, "a", Wild.ANY, "b")
    assert wildcard_matcher(pattern, False)("a" * 100_000) is False
    assert wildcard_matcher(pattern + (Wild.ONE,), False)("a" * 100_000) is False
