"""The pipeline language: valid programs (each stage and expression form) and invalid ones with the exact
file:line:column of the error. Rules are written with the query as a `|` block starting on line 4, indented by 2,
so query line L column C is file line 3 + L, column 2 + C."""

from __future__ import annotations

from pathlib import Path

import pytest

from siemforge.compiler.api import compile_file
from siemforge.compiler.diagnostics import Severity
from siemforge.compiler.irprint import format_rule

HEAD = "title: t\nlogsource: {product: aws, service: cloudtrail}\nquery: |\n"


def write(tmp_path: Path, query: str) -> Path:
    p = tmp_path / "rule.yml"
    p.write_text(HEAD + "".join(f"  {line}\n" for line in query.split("\n")))
    return p


VALID = [
    ('where eventName == "RunInstances"', 'filter (eventName == "RunInstances")'),
    ('where eventName =~ "x" and not(errorCode != "y") or readOnly == true',
     'filter (((eventName ==~i "x") and not (errorCode != "y")) or (readOnly == true))'),
    ("where userIdentity.arn contains_cs 'role/' and userAgent !startswith \"aws\"",
     'filter (contains_cs(userIdentity.arn, "role/") and not startswith_ci(userAgent, "aws"))'),
    ('where eventName in~ ("a", "b") and sourceIPAddress !in ("1.2.3.4")',
     'filter ((eventName in~i ["a", "b"]) and not (sourceIPAddress in ["1.2.3.4"]))'),
    ('where userAgent like "aws-cli/*" and userAgent matches regex @"\\d+\\.\\d+"',
     'filter (wildcard_ci(userAgent, "aws-cli/*") and regex(userAgent, \'\\\\d+\\\\.\\\\d+\'))'),
    ("extend item = responseElements.instancesSet.items[-1], n = toint(item_count) * 2 + 1",
     "extend[parallel] item: any = responseElements.instancesSet.items[-1], n: int = ((toint(item_count) * 2) + 1)"),
    ('extend last = split(userIdentity.arn, "/")[-1], k = requestParameters["odd key"]',
     'extend[parallel] last: any = split(userIdentity.arn, "/")[-1], k: any = requestParameters.odd key'),
    ("extend d = 8h + 30m, t = datetime(2024-01-31T08:00:00Z), x = -1.5e3, b = false, z = null",
     "extend[parallel] d: timespan = (timespan(28800s) + timespan(1800s)), t: datetime = "
     "datetime(2024-01-31T08:00:00Z), x: real = -1500.0, b: bool = false, z: null = null"),
    ("summarize n = count(), c = count(errorCode), d = dcount(sourceIPAddress) by eventName, arn = userIdentity.arn",
     "aggregate n: int = count(), c: int = count(errorCode), d: int = dcount(sourceIPAddress) by[nulls kept] "
     "eventName = eventName, arn = userIdentity.arn"),
    ("summarize by eventSource, bucket = bin(_time, 1h)",
     "aggregate  by[nulls kept] eventSource = eventSource, bucket = bin(_time, timespan(3600s))"),
    ("summarize count() by userIdentity.arn | where `userIdentity.arn` != \"\" and count > 1",
     'filter ((`userIdentity.arn` != "") and (count > 1))'),
    ("eventstats total = sum(toint(requestParameters.maxCount)) by eventName",
     "event_aggregate total: int = sum(toint(requestParameters.maxCount)) by[nulls kept] eventName = eventName"),
    ("rename who = userIdentity | project who, eventName | sort by eventName desc, who | take 3",
     "sort eventName desc, who asc"),
    ("project arn = userIdentity.arn, eventName | limit 10", "project arn, eventName"),
    ("// a comment\nwhere eventName == \"x\" // trailing\n| take 1", "limit 1"),
    ('extend `odd name` = 1 | where `odd name` > 0', "filter (`odd name` > 0)"),
    ("mv-expand item = responseElements.instancesSet.items | where item.instanceType == \"p4d\"",
     "expand[null: one row, empty: none] item: dynamic = responseElements.instancesSet.items[*]"),
    ('extend parts = split(userAgent, "/") | mv-expand parts to typeof(string)',
     "expand[null: one row, empty: none] parts: string = parts[*]"),
    ("mv-expand n = responseElements to typeof(long) | summarize s = sum(n)", "s: int = sum(n)"),
]


@pytest.mark.parametrize("query,fragment", VALID, ids=[v[0][:60] for v in VALID])
def test_valid(query: str, fragment: str, tmp_path: Path) -> None:
    res = compile_file(write(tmp_path, query))
    assert res.rule is not None, [str(d) for d in res.diagnostics]
    assert fragment in format_rule(res.rule)


# (query, expected message fragment, query line, query column)
INVALID = [
    ("mv-expand", "unexpected end of query: in the `mv-expand` stage", 1, 10),
    ("mv-expand x = responseElements to typeof(datetime)", "mv-expand cannot type its elements as 'datetime'", 1, 42),
    ("mv-expand eventName", "mv-expand expands an array, and this is a string", 1, 11),
    ("summarize c = count() | mv-expand c", "mv-expand expands an array, and this is an int", 1, 35),
    ("mv-expand responseElements.items", "mv-expand of an expression needs a column name", 1, 11),
    ("where eventName ==", "unexpected end of query: expected an expression after `==`", 1, 19),
    ("wher eventName == 1", "unexpected 'wher': expected a stage", 1, 1),
    ("where a == 1 | summarize count() by", "expected a field name after `by`", 1, 36),
    ("where (eventName == 1", "unexpected end of query", 1, 22),
    ('where eventName == "a\\qb"', "unknown escape \\q", 1, 20),
    ('where eventName == "a\\ud800b"', "a lone UTF-16 surrogate \\ud800 is not a character", 1, 20),
    ('where eventName == "\\udc00"', "a lone UTF-16 surrogate \\udc00 is not a character", 1, 20),
    ('where eventName == "\\ud83d\\u0041"', "a lone UTF-16 surrogate \\ud83d is not a character", 1, 20),
    ("where eventName == 1 |", "expected a stage", 1, 23),
    ("where n > " + "9" * 5000, "an integer literal has at most 64 bits", 1, 11),
    ("where n > 9223372036854775808", "an integer literal has at most 64 bits", 1, 11),
    ('where eventName == "x" | take ' + "9" * 5000, "an integer literal has at most 64 bits", 1, 31),
    ("where _time > ago(99999999999999d)", "duration '99999999999999d' is out of range", 1, 19),
    ("extend x = datetime(nope)", "invalid datetime literal", 1, 12),
    ('where tolowr(eventName) == "x"', "unknown function 'tolowr'", 1, 7),
    ('where substring(eventName) == "x"', "substring() takes 2 to 3 arguments, not 1", 1, 7),
    ('extend b = pack("a", eventName, "b")', "pack() takes key, value pairs: an even number of arguments, not 3",
     1, 12),
    ("extend b = bag_pack(eventName, 1)", "argument 1 of bag_pack() must be a literal text (a key)", 1, 21),
    ('extend b = bag_pack("a", 1, "a", 2)', "bag_pack() names the key 'a' twice", 1, 29),
    ('extend b = pack("a")', "pack() takes at least 2 arguments, not 1", 1, 12),
    ('where strlen(eventName) == "x"', "cannot compare a int with a string", 1, 25),
    ('where eventName + 1 > 2', "cannot apply + to a string and a int", 1, 7),
    ("where toint(eventName)", "`where` needs a true/false condition, not a int", 1, 7),
    ("summarize n = count() by eventName\n| where sourceIPAddress == \"x\"", "no column 'sourceIPAddress' here",
     2, 9),
    ("summarize n = counts() by eventName", "unknown aggregation 'counts'", 1, 15),
    ("summarize n = sum(eventName)", "sum() needs a number, not string", 1, 19),
    ('extend a = 1, b = a + 1', "'a' is assigned in this same extend", 1, 19),
    ('where userAgent matches regex "(unclosed"', "invalid regex", 1, 31),
    # a group the regex lacks: a compile error (it stopped `siemforge run` with an internal IndexError)
    ('extend x = replace_regex(eventSource, "(ecr)", "\\\\2")', "replace_regex() names group 2; the regex has 1",
     1, 48),
    ('extend y = extract("(a)", 3, eventName)', "extract() names group 3; the regex has 1", 1, 27),
    ('where eventName like eventSource', "a wildcard pattern must be a string literal", 1, 22),
    ('where datetime_diff("fortnight", now(), now()) > 1', "unknown datetime_diff unit 'fortnight'", 1, 21),
    ("lookup nope on eventName", "unknown lookup table 'nope'", 1, 8),
    # a bin width of zero or less rounds nothing: KQL gives null, SPL divides by it (docs/semantics.md, bin)
    ("extend b = bin(_time, 0s)", "bin() needs a bin size above zero, not 0s", 1, 23),
    ("extend b = bin(_time, -1h)", "bin() needs a bin size above zero, not -1h", 1, 23),
    ("summarize count() by bin(toint(eventVersion), 0)", "bin() needs a bin size above zero, not 0", 1, 47),
    ("extend b = bin(toint(eventVersion), -5)", "bin() needs a bin size above zero, not -5", 1, 37),
    ("extend b = bin(todouble(eventVersion), 0.0)", "bin() needs a bin size above zero, not 0.0", 1, 40),
    ("where count() > 1", "count() is an aggregation", 1, 7),
    ("project eventName, eventName", "output column 'eventName' is defined twice", 1, 9),
    # `x[] op v`: some element (docs/semantics.md decision 110)
    ('where resources[].ARN != "x"', '`!=` on `[]` (some element): write `not (… == …)` for "no element"', 1, 23),
    ('where resources[] == eventName', "a test of `[]` (some element) compares each element with literals only",
     1, 7),
    ('where resources[].a[] == "x"', "`[]` inside `[]`: a test reads the elements of one array", 1, 7),
    ('where eventName[] == "x"', "`[]` needs an array, not a string", 1, 7),
    # `[]` not under a test: the message names both forms that read it (it said "only by values()")
    ('where isnull(resources[])', "is read only by a test of some element (`a[].b == \"x\"`, `a[] in (…)`) or by "
     "values()", 1, 14),
]


@pytest.mark.parametrize("query,message,line,column", INVALID, ids=[v[0][:60] for v in INVALID])
def test_invalid(query: str, message: str, line: int, column: int, tmp_path: Path) -> None:
    path = write(tmp_path, query)
    res = compile_file(path)
    assert res.rule is None
    errors = [d for d in res.diagnostics if d.severity is Severity.ERROR]
    assert errors, res.diagnostics
    d = errors[0]
    assert message in d.message, d.message
    assert d.span is not None
    assert (d.span.file, d.span.line, d.span.column) == (str(path), 3 + line, 2 + column), str(d)


def test_unknown_source_field_is_a_warning_not_an_error(tmp_path: Path) -> None:
    res = compile_file(write(tmp_path, 'where eventNme == "x"'))
    assert res.rule is not None
    [w] = [d for d in res.diagnostics if d.severity is Severity.WARNING]
    assert "unknown field 'eventNme'" in w.message and w.hint == "did you mean 'eventName'?"
    assert w.span is not None and (w.span.line, w.span.column) == (4, 9)


def test_yaml_errors_and_missing_keys(tmp_path: Path) -> None:
    p = tmp_path / "bad.yml"
    p.write_text("title: t\nlogsource: {product: aws\nquery: x\n")
    res = compile_file(p)
    assert res.rule is None and res.diagnostics[0].message.startswith("invalid YAML")
    assert res.diagnostics[0].span is not None and res.diagnostics[0].span.line == 3
    p.write_text("logsource: {product: aws}\nquery: |\n  where true\n")
    res = compile_file(p)
    assert res.rule is None and "a rule needs a `title`" in res.diagnostics[0].message
    p.write_text("title: t\nlevel: severe\nlogsource: {product: aws}\nquery: |\n  where true\n")
    res = compile_file(p)
    assert res.rule is None and "unknown level 'severe'" in res.diagnostics[0].message
    assert res.diagnostics[0].span is not None and res.diagnostics[0].span.line == 2


def compile_meta(tmp_path: Path, line: str, title: str = "t"):  # type: ignore[no-untyped-def]
    """A Sigma rule with one metadata line as line 2."""
    p = tmp_path / "meta.yml"
    p.write_text(f"title: {title}\n{line}\nlogsource: {{product: aws, service: cloudtrail}}\n"
                 "detection: {sel: {eventName: X}, condition: sel}\n")
    return compile_file(p)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("id: not-a-uuid", "`id` must be a UUID, not 'not-a-uuid'"),
        ("status: stabel", "unknown status 'stabel'"),
        ("date: 2024-13", "`date` must be a date, YYYY-MM-DD (or YYYY/MM/DD), not '2024-13'"),
        ("date: 2024-13-45", "`date` must be a date, YYYY-MM-DD (or YYYY/MM/DD), not '2024-13-45'"),
        ("date: 2024-01/02", "`date` must be a date"),
        ("modified: yesterday", "`modified` must be a date"),
        ("tags: [foo]", "tag 'foo' needs a namespace"),
        ("related: [{id: nope, type: derived}]", "a `related` item is `{id: <UUID>, type: correlation | derived"),
        ("references: https://example.com", "`references` must be a list"),
        ("falsepositives: none", "`falsepositives` must be a list"),
        ("author: [a, b]", "`author` must be text"),
        ("level: severe", "unknown level 'severe'"),
        ("name: ''", "`name` must not be empty"),
    ],
)
def test_sigma_metadata_errors_point_at_their_key(tmp_path: Path, line: str, message: str) -> None:
    """Metadata is checked by the rule loader (pySigma only parses the detection), so errors have positions."""
    res = compile_meta(tmp_path, line)
    assert res.rule is None
    d = res.diagnostics[0]
    assert message in d.message and d.span is not None and d.span.line == 2, str(d)


@pytest.mark.parametrize("line", ["id: 6b5c1e2a6e0b4b9e8a3f2a1b5b9f0c11", "status: Stable", "level: High",
                                  "date: 2024/1/5", "related: [{id: 6b5c1e2a-6e0b-4b9e-8a3f-2a1b5b9f0c11, type: Derived}]",
                                  "related: [{id: 6b5c1e2a-6e0b-4b9e-8a3f-2a1b5b9f0c11, type: correlation}]",
                                  "status:", "level: null", "author:", "tags:", "falsepositives:", "description:"])
def test_sigma_metadata_that_pysigma_accepts_is_accepted(tmp_path: Path, line: str) -> None:
    res = compile_meta(tmp_path, line)
    assert res.rule is not None, [str(d) for d in res.diagnostics]


def test_a_title_has_at_most_256_characters(tmp_path: Path) -> None:
    res = compile_meta(tmp_path, "", title="x" * 257)
    assert res.rule is None and "a title has at most 256 characters" in res.diagnostics[0].message


def test_a_uuid_has_one_spelling(tmp_path: Path) -> None:
    res = compile_meta(tmp_path, "id: urn:uuid:6B5C1E2A-6E0B-4B9E-8A3F-2A1B5B9F0C11")
    assert res.rule is not None and res.rule.meta.id == "6b5c1e2a-6e0b-4b9e-8a3f-2a1b5b9f0c11"


@pytest.mark.parametrize(("condition", "message"), [
    ("sel and nosuch", "Sigma condition: Detection 'nosuch' not defined"),  # pySigma's error, at the condition
    ("5", "the Sigma `condition` must be text"),  # the loader's check, before pySigma sees it
])
def test_sigma_condition_errors_point_at_the_condition(tmp_path: Path, condition: str, message: str) -> None:
    p = tmp_path / "cond.yml"
    p.write_text("title: t\nlogsource: {product: aws, service: cloudtrail}\n"
                 f"detection:\n  sel: {{eventName: X}}\n  condition: {condition}\n")
    res = compile_file(p)
    assert res.rule is None
    d = res.diagnostics[0]
    assert message in d.message and d.span is not None and d.span.line == 5, str(d)


def test_sigma_rule_loads_unchanged(tmp_path: Path) -> None:
    p = tmp_path / "sigma.yml"
    p.write_text("""title: Sigma only
id: 6b5c1e2a-6e0b-4b9e-8a3f-2a1b5b9f0c11
status: test
logsource: {product: aws, service: cloudtrail}
detection:
    selection:
        eventSource: ec2.amazonaws.com
        eventName|startswith: Run
    filter:
        errorCode|exists: true
    condition: selection and not filter
level: low
""")
    res = compile_file(p)
    assert res.rule is not None
    assert "filter ((eventSource ==~i \"ec2.amazonaws.com\") and startswith_ci(eventName, \"Run\") and not " \
           "isnotnull(errorCode))" in format_rule(res.rule)


@pytest.mark.parametrize("body", ['query: >\n  where eventName == "x" // a comment\n  | take 1\n',
                                  'query: "where eventName ==\n  \\"x\\""\n'])
def test_query_must_be_a_literal_block_when_it_spans_lines(tmp_path: Path, body: str) -> None:
    """A folded or multi-line flow scalar joins lines: positions move, and a `//` comment would swallow the rest."""
    p = tmp_path / "q.yml"
    p.write_text("title: t\nlogsource: {product: aws, service: cloudtrail}\n" + body)
    res = compile_file(p)
    assert res.rule is None
    d = res.diagnostics[0]
    assert "write `query` as a literal block" in d.message and d.span is not None and d.span.line == 3
