"""Executor semantics, one table row per construct of docs/semantics.md (same names).

Each row: a pipeline (or Sigma detection), the events, and the expected result — either which events a condition
keeps (a list of booleans, one per event) or the exact output rows.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from siemforge.backends.executor.engine import run_rule
from siemforge.backends.executor.functions import IMPLEMENTATIONS
from siemforge.backends.executor.values import to_text
from siemforge.compiler.api import compile_file
from siemforge.compiler.functions import FUNCTIONS

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
M = object()  # marks a missing field in an event template


def ev(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not M}


def run(tmp_path: Path, body: str, events: list[dict[str, Any]], lookups: dict[str, str] | None = None) -> list[
        dict[str, Any]]:
    head = "title: t\nlogsource: {product: aws, service: cloudtrail}\n"
    if lookups:
        head += "lookups: {" + ", ".join(f"{k}: {k}.csv" for k in lookups) + "}\n"
        for k, text in lookups.items():
            (tmp_path / f"{k}.csv").write_text(text)
    rule_file = tmp_path / "rule.yml"
    rule_file.write_text(head + body)
    res = compile_file(rule_file)
    assert res.rule is not None, [str(d) for d in res.diagnostics]
    logs = tmp_path / "events.ndjson"
    logs.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    return run_rule(res.rule, [logs], NOW).rows


def keeps(tmp_path: Path, condition: str, events: list[dict[str, Any]]) -> list[bool]:
    tagged = [dict(e, _i=i) for i, e in enumerate(events)]
    rows = run(tmp_path, f"query: |\n  where {condition}\n", tagged)
    kept = {r["_i"] for r in rows}
    return [i in kept for i in range(len(events))]


def sigma_keeps(tmp_path: Path, detection: str, events: list[dict[str, Any]]) -> list[bool]:
    tagged = [dict(e, _i=i) for i, e in enumerate(events)]
    rows = run(tmp_path, "id: 0e6a5b0c-5a1f-4c43-9c39-2f0f3e7d9a10\ndetection: " + detection + "\n", tagged)
    kept = {r["_i"] for r in rows}
    return [i in kept for i in range(len(events))]


S = [ev(x="Run"), ev(x="run"), ev(x=M), ev(x=None), ev(x="")]  # case, missing, null, empty

# (construct, condition, events, expected kept)
PREDICATES = [
    ("compare_eq", 'x == "Run"', S, [True, False, False, False, False]),
    ("compare_eq", 'x =~ "RUN"', S, [True, True, False, False, False]),
    ("compare_eq", 'n == 5', [ev(n=5), ev(n="05"), ev(n=5.0), ev(n="five"), ev(n=M)], [True, True, True, False, False]),
    ("compare_eq", 'b == true', [ev(b=True), ev(b="true"), ev(b=1), ev(b=False)], [True, True, True, False]),
    ("compare_ne", 'x != "Run"', S, [False, True, True, True, True]),
    ("compare_ne", 'x !~ "RUN"', S, [False, False, True, True, True]),
    ("compare_order", "toint(n) > 5", [ev(n=6), ev(n="7"), ev(n=5), ev(n=M), ev(n="abc")],
     [True, True, False, False, False]),
    ("compare_order", "not(toint(n) > 5)", [ev(n=6), ev(n="7"), ev(n=5), ev(n=M), ev(n="abc")],
     [False, False, True, True, True]),
    ("compare_order", 'x < "b"', [ev(x="a"), ev(x="B"), ev(x="c"), ev(x=M)], [True, True, False, False]),
    ("string_match", 'x contains "UN"', S, [True, True, False, False, False]),
    ("string_match", 'x contains_cs "un"', S, [True, True, False, False, False]),
    ("string_match", 'x contains_cs "Ru"', S, [True, False, False, False, False]),
    ("string_match", 'x !contains "un"', S, [False, False, True, True, True]),
    ("string_match", 'x startswith "r" and x endswith "N"', S, [True, True, False, False, False]),
    ("string_match", 'o contains "\\"k\\":1"', [ev(o={"k": 1}), ev(o={"k": 2})], [True, False]),
    ("wildcard", 'x like "r*"', S, [True, True, False, False, False]),
    ("wildcard", 'x like "*"', S, [True, True, False, False, True]),
    ("wildcard", 'x like_cs "R?n"', S, [True, False, False, False, False]),
    ("wildcard", 'x like "a\\\\*b"', [ev(x="a*b"), ev(x="axxb")], [True, False]),
    ("regex", 'x matches regex "u"', S, [True, True, False, False, False]),
    ("regex", 'x matches regex "^R"', S, [True, False, False, False, False]),
    ("regex", 'x matches regex "^$"', S, [False, False, False, False, True]),
    ("in_list", 'x in ("Run", "Stop")', S, [True, False, False, False, False]),
    ("in_list", 'x in~ ("RUN")', S, [True, True, False, False, False]),
    ("in_list", 'x !in ("Run")', S, [False, True, True, True, True]),
    ("in_list", "n in (1, 2)", [ev(n=1), ev(n="2"), ev(n=3)], [True, True, False]),
    ("not_and_or", 'not(x == "Run") and (x == "run" or isnull(x))', S, [False, True, True, True, False]),
    ("isnull_isempty", "isnull(x)", S + [ev(x=[])], [False, False, True, True, False, False]),
    ("isnull_isempty", "isempty(x)", S + [ev(x=[])], [False, False, True, True, True, True]),
    ("isnull_isempty", "isnotempty(x)", S, [True, True, False, False, False]),
    ("column", 'a.b[-1].c == "z"', [ev(a={"b": [{"c": "y"}, {"c": "z"}]}), ev(a={"b": []}), ev(a="text"),
                                     ev(a=M)], [True, False, False, False]),
    ("column", "isnull(a.b[5])", [ev(a={"b": [1]}), ev(a={"b": [1, 2, 3, 4, 5, 6]})], [True, False]),
    # decision 110: `x[] op v`, some element of any array expression; a scalar, an object, null, [] have none
    ("any_element", 'a[] =~ "run"', [ev(a=["x", "Run"]), ev(a=["runs"]), ev(a="run"), ev(a=[]), ev(a=None), ev(),
                                     ev(a={"k": "run"})], [True, False, False, False, False, False, False]),
    ("any_element", 'not (a[] =~ "run")', [ev(a=["x", "Run"]), ev(a=["runs"]), ev(a="run"), ev(a=[])],
     [False, True, True, True]),
    ("any_element", 'parse_json(s).p[].t contains "ru" or tostring(parse_json(s).p) =~ "run"',
     [ev(s='{"p": [{"t": "x"}, {"t": "RUN"}]}'), ev(s='{"p": "Run"}'), ev(s='{"p": [{"t": "x"}]}'), ev(s="text")],
     [True, True, False, False]),
    ("any_element", 'a[] in~ ("x", "y")', [ev(a=["Y"]), ev(a=["z"]), ev(a="x")], [True, False, False]),
]


@pytest.mark.parametrize("construct,condition,events,expected", PREDICATES,
                         ids=[f"{r[0]}:{r[1]}" for r in PREDICATES])
def test_predicate(construct: str, condition: str, events: list[dict[str, Any]], expected: list[bool],
                   tmp_path: Path) -> None:
    assert keeps(tmp_path, condition, events) == expected


SIGMA = [
    ("cidr", "{sel: {ip|cidr: [10.0.0.0/8, 'fd00::/8']}, condition: sel}",
     [ev(ip="10.1.2.3"), ev(ip="11.0.0.1"), ev(ip="fd00::1"), ev(ip="not an ip"), ev(ip=M)],
     [True, False, True, False, False]),
    ("keyword", "{keywords: [mimi*katz], condition: keywords}",
     [ev(a={"b": ["x MIMIKATZ y"]}), ev(a="mimi-katz"), ev(a="katz")], [True, True, False]),
    ("compare_eq", "{sel: {x: run}, condition: sel}", S, [True, True, False, False, False]),
    ("compare_eq", "{sel: {x|cased: run}, condition: sel}", S, [False, True, False, False, False]),
    ("compare_ne", "{sel: {x: run}, condition: not sel}", S, [False, False, True, True, True]),
    ("isnull_isempty", "{sel: {x: null}, condition: sel}", S, [False, False, True, True, False]),
    ("isnull_isempty", "{sel: {x|exists: true}, condition: sel}", S, [True, True, False, False, True]),
    ("string_match", "{sel: {x|contains|all: [r, n]}, condition: sel}", S, [True, True, False, False, False]),
    ("regex", "{sel: {x|re|i: '^RUN$'}, condition: sel}", S, [True, True, False, False, False]),
    ("compare_order", "{sel: {n|gte: 5}, condition: sel}", [ev(n=5), ev(n="6"), ev(n=4), ev(n=M)],
     [True, True, False, False]),
    # some element: a list whose 2nd element matches; none does; empty list; null; missing; an object (not an array)
    ("any_element", "{sel: {'a[].t|contains': ru}, condition: sel}",
     [ev(a=[{"t": "x"}, {"t": "RUN"}]), ev(a=[{"t": "x"}, {}]), ev(a=[]), ev(a=None), ev(), ev(a={"t": "run"})],
     [True, False, False, False, False, False]),
    ("any_element", "{sel: {'a[].t|contains': ru}, condition: not sel}",
     [ev(a=[{"t": "x"}, {"t": "RUN"}]), ev(a=[{"t": "x"}, {}]), ev(a=[]), ev(a=None), ev(), ev(a={"t": "run"})],
     [False, True, True, True, True, True]),
    # nested arrays: some element of some element's array; each field's test is its own "some element"
    ("any_element", "{sel: {'a[].m[].v': '1', 'a[].m[].k': b}, condition: sel}",
     [ev(a=[{"m": [{"k": "a", "v": "1"}]}, {"m": [{"k": "b", "v": "2"}]}]), ev(a=[{"m": [{"k": "a", "v": "1"}]}]),
      ev(a=[{"m": "not an array"}]), ev(a=[{"m": [{"k": "b", "v": 1}]}])],
     [True, False, False, True]),
    # the whole element: an array of scalars; a scalar is not an array
    ("any_element", "{sel: {'a[]': run}, condition: sel}", [ev(a=["x", "Run"]), ev(a=["runs"]), ev(a="run")],
     [True, False, False]),
]


@pytest.mark.parametrize("construct,detection,events,expected", SIGMA, ids=[f"{r[0]}:{r[1]}" for r in SIGMA])
def test_sigma_predicate(construct: str, detection: str, events: list[dict[str, Any]], expected: list[bool],
                         tmp_path: Path) -> None:
    assert sigma_keeps(tmp_path, detection, events) == expected


T = "2024-01-06T23:30:00-05:00"  # Saturday 23:30 in New York = Sunday 04:30 UTC

# (construct, expression, event, expected value as text — compared through tostring)
VALUES = [
    ("literal", '"a\\tb\\u00e9"', {}, "a\tbé"),
    ("literal", '"\\ud83d\\ude00"', {}, "\U0001F600"),  # a UTF-16 surrogate pair is one character, as in JSON
    ("literal", "8h", {}, "08:00:00"),
    ("literal", "datetime(2024-01-31T08:00:00Z)", {}, "2024-01-31T08:00:00Z"),
    ("literal", '@"C:\\temp"', {}, "C:\\temp"),
    ("arith", "7 / 2", {}, "3"),
    ("arith", "-7 / 2", {}, "-3"),
    ("arith", "-7 % 3", {}, "-1"),
    ("arith", "7.0 / 2", {}, "3.5"),
    ("arith", "1 / 0", {}, None),
    ("arith", "toint(n) + 1", {"n": None}, None),
    ("arith", "todatetime(\"2024-01-02T00:00:00Z\") - todatetime(\"2024-01-01T12:00:00Z\")", {}, "12:00:00"),
    ("case_iif", 'iif(isempty(x), "none", x)', {}, "none"),
    ("case_iif", 'case(n > 10, "big", n > 5, "mid", "small")', {"n": 7}, "mid"),
    ("case_iif", 'case(n > 10, "big", "small")', {}, "small"),
    ("coalesce", "coalesce(a, b, \"c\")", {"b": ""}, ""),
    ("coalesce", "coalesce(a, b)", {}, None),
    ("tostring", "tostring(n)", {"n": 1.5}, "1.5"),
    ("tostring", "tostring(o)", {"o": {"b": 1, "a": [True, None]}}, '{"a":[true,null],"b":1}'),
    ("tostring", "tostring(b)", {"b": False}, "false"),
    ("toint_todouble", 'toint("2.7")', {}, "2"),
    ("toint_todouble", 'toint("-2.7")', {}, "-2"),
    ("toint_todouble", 'toint("x")', {}, None),
    ("toint_todouble", 'todouble("1e3")', {}, "1000"),
    ("tobool_todatetime", 'tobool("TRUE")', {}, "true"),
    ("tobool_todatetime", 'todatetime("2022-11-21 18:06:52")', {}, "2022-11-21T18:06:52Z"),
    ("epoch_to_datetime", "todatetime(1700000000)", {}, "2023-11-14T22:13:20Z"),  # a number is epoch seconds
    ("epoch_to_datetime", "todatetime(1700000000000)", {}, None),  # ~53,900 years: out of range
    ("epoch_to_datetime", "unixtime_seconds_todatetime(1546300800)", {}, "2019-01-01T00:00:00Z"),
    ("epoch_to_datetime", "unixtime_seconds_todatetime(-1.5)", {}, "1969-12-31T23:59:58.500000Z"),
    ("epoch_to_datetime", "unixtime_seconds_todatetime(toint(x))", ev(x="1546300800"), "2019-01-01T00:00:00Z"),
    ("epoch_to_datetime", "unixtime_seconds_todatetime(toint(x))", ev(x="soon"), None),
    ("epoch_to_datetime", "unixtime_milliseconds_todatetime(1700000000123)", {}, "2023-11-14T22:13:20.123000Z"),
    ("epoch_to_datetime", "todatetime(x)", ev(x=1700000000), "2023-11-14T22:13:20Z"),
    ("tobool_todatetime", 'todatetime("redacted")', {}, None),
    ("tolower_toupper_strlen", 'strcat(tolower("ÀB"), toupper("ß"), strlen("héllo"))', {}, "àbSS5"),
    ("substring", 'substring("abcdef", 2, 3)', {}, "cde"),
    ("substring", 'substring("abcdef", 4)', {}, "ef"),
    ("split", 'tostring(split("a/b/c", "/")[-1])', {}, "c"),
    ("split", 'tostring(split("a/b/c", "/")[7])', {}, None),
    ("strcat", 'strcat("a", x, 1)', {}, "a1"),
    ("replace", 'replace_string("a.b.c", ".", "-")', {}, "a-b-c"),
    ("replace", r'replace_regex("user@example.com", @"(\w+)@(.*)", @"\2/\1")', {}, "example.com/user"),
    ("extract", r'extract(@"i-(\w+)", 1, "id i-0abc here")', {}, "0abc"),
    ("extract", r'extract(@"x(\d)", 1, "none")', {}, None),
    ("array_length", "array_length(a)", {"a": [1, 2, 3]}, "3"),
    ("array_length", "array_length(a)", {"a": "text"}, None),
    # decision 75: the JSON value text holds; text that is not JSON is itself; a dynamic value is used as it is
    ("parse_json", 'tostring(parse_json(x).b[1])', ev(x='{"b": [1, 2.5]}'), "2.5"),
    ("parse_json", 'tostring(parse_json(x))', ev(x=' {"b" : true} '), '{"b":true}'),
    ("parse_json", 'tostring(parse_json(x))', ev(x="not json"), "not json"),
    ("parse_json", 'tostring(parse_json(x).b)', ev(x="not json"), None),
    ("parse_json", 'tostring(parse_json(x))', ev(x='"quoted"'), "quoted"),
    ("parse_json", 'tostring(parse_json(x))', ev(x=M), None),
    ("parse_json", 'tostring(parse_json(o).s)', ev(o={"s": '{"not": "parsed"}'}), '{"not": "parsed"}'),
    ("parse_json", 'tostring(parse_json(tostring(o.s)).not)', ev(o={"s": '{"not": "parsed"}'}), "parsed"),
    # decision 76: 0-based, -1 when absent, null on null; code points, not bytes
    ("indexof", 'indexof(x, ":")', ev(x="AROA:alice"), "4"),
    ("indexof", 'indexof(x, ":")', ev(x="alice"), "-1"),
    ("indexof", 'indexof(x, "")', ev(x="alice"), "0"),
    ("indexof", 'indexof(x, ":")', ev(x=M), None),
    ("indexof", 'indexof(x, "b")', ev(x="ébc"), "1"),
    ("indexof", 'indexof_regex(x, @"[0-9]+")', ev(x="ab12c3"), "2"),
    ("indexof", 'indexof_regex(x, @"[0-9]")', ev(x="é-x"), "-1"),
    ("indexof", 'indexof_regex(x, @"c")', ev(x="ébc"), "2"),
    ("indexof", 'indexof_regex(x, @"c")', ev(x=M), None),
    # decision 36: an object of the pairs; a null keeps its key; a string member is never null (KQL's "")
    ("bag_pack", 'bag_pack("n", toint(x), "s", y, "o", o)', ev(x="2", y="a", o={"p": [1]}),
     '{"n":2,"o":{"p":[1]},"s":"a"}'),
    ("bag_pack", 'bag_pack("n", toint(x), "s", tostring(y), "o", o)', ev(x=M, y=M, o=None),
     '{"n":null,"o":null,"s":""}'),
    ("bag_pack", 'pack("t", _time, "d", 1h)', ev(eventTime="2024-01-01T00:00:03Z"),
     '{"d":"01:00:00","t":"2024-01-01T00:00:03Z"}'),
    ("bag_pack", 'tostring(pack_dictionary("a", "x").a)', {}, "x"),
    ("bag_pack", 'pack("t", _time).t + 1h', ev(eventTime="2024-01-01T00:00:03Z"), "2024-01-01T01:00:03Z"),
    ("now_ago", "now()", {}, "2024-06-01T12:00:00Z"),
    ("now_ago", "ago(1d)", {}, "2024-05-31T12:00:00Z"),
    ("bin", "bin(17, 5)", {}, "15"),
    ("bin", 'bin(todatetime("2024-01-01T10:59:59Z"), 1h)', {}, "2024-01-01T10:00:00Z"),
    # a computed bin size of zero or less is null, as x / 0 is (decision 11; KQL's bin: a negative size is null)
    ("bin", "bin(17, toint(x))", ev(x="0"), None),
    ("bin", "bin(17, toint(x))", ev(x="-5"), None),
    ("bin", "bin(17.5, todouble(x))", ev(x="0"), None),
    ("bin", 'bin(todatetime("2024-01-01T10:59:59Z"), todatetime(x) - todatetime(x))', ev(x="2024-01-01T00:00:00Z"),
     None),
    ("bin", 'bin(todatetime(x) - todatetime("2024-01-01T00:00:00Z"), todatetime(x) - todatetime(x))',
     ev(x="2024-01-01T10:00:00Z"), None),
    ("bin", 'bin(todatetime(x) - todatetime("2024-01-01T00:00:00Z"), todatetime("2024-01-01T00:00:00Z") - todatetime(x))',
     ev(x="2024-01-01T10:00:00Z"), None),
    ("hourofday_dayofweek", f'hourofday(todatetime("{T}"))', {}, "4"),
    ("hourofday_dayofweek", f'dayofweek(todatetime("{T}"))', {}, "0"),
    ("hourofday_dayofweek", 'dayofweek(todatetime("2024-01-06T12:00:00Z"))', {}, "6"),
    ("datetime_diff", 'datetime_diff("hour", todatetime("2024-01-01T11:01:00Z"), todatetime("2024-01-01T10:59:00Z"))',
     {}, "1"),
    ("datetime_diff", 'datetime_diff("hour", todatetime("2024-01-01T10:59:00Z"), todatetime("2024-01-01T10:01:00Z"))',
     {}, "0"),
    ("datetime_diff", 'datetime_diff("week", todatetime("2024-01-07T00:00:00Z"), todatetime("2024-01-06T23:59:00Z"))',
     {}, "1"),
    ("datetime_diff", 'datetime_diff("month", todatetime("2024-03-01T00:00:00Z"), todatetime("2024-01-31T00:00:00Z"))',
     {}, "2"),
    ("datetime_diff", 'datetime_diff("day", todatetime("2024-01-01T00:00:00Z"), todatetime("2024-01-03T00:00:00Z"))',
     {}, "-2"),
]


@pytest.mark.parametrize("construct,expression,event,expected", VALUES, ids=[f"{r[0]}:{r[1]}" for r in VALUES])
def test_value(construct: str, expression: str, event: dict[str, Any], expected: str | None, tmp_path: Path) -> None:
    rows = run(tmp_path, f"query: |\n  extend v = {expression}\n  | project v\n", [event])
    assert [to_text(r["v"]) for r in rows] == [expected]


E = [ev(k="a", v=1, t="2024-01-01T00:00:03Z"), ev(k="b", v=5, t="2024-01-01T00:00:01Z"),
     ev(k="a", v=M, t="2024-01-01T00:00:02Z"), ev(k=M, v=3, t="2024-01-01T00:00:00Z"),
     ev(k="a", v="7", t="2024-01-01T00:00:04Z")]
ET = [dict(e, eventTime=e.pop("t")) for e in [dict(x) for x in E]]

# (construct, pipeline, events, expected rows in order, compared through tostring)
EXPAND_EVENTS = [{"k": "arr", "a": [1, "x", {"b": 2}]}, {"k": "null", "a": None}, {"k": "missing"},
                 {"k": "empty", "a": []}, {"k": "scalar", "a": "s"}, {"k": "obj", "a": {"p": 1, "q": "r"}},
                 {"k": "empty_obj", "a": {}}]

EACH_EVENTS = [{"k": "one", "a": [{"b": "x"}, {"b": 1}]}, {"k": "mixed", "a": [{"b": {"c": 2}}, {"b": [3]}, {"d": 4},
                                                                    {"b": "x"}, "s"]},
               {"k": "none"}, {"k": "empty", "a": []}, {"k": "scalar", "a": "s"}, {"k": "two", "a": [{"b": True}]}]

PIPELINES = [
    ("extend", 'extend a = "x" | extend a = "y", b = a | project a, b', [{}], [{"a": "y", "b": "x"}]),
    ("aggregate", "summarize n = count() by k | sort by k", ET,
     [{"k": None, "n": "1"}, {"k": "a", "n": "3"}, {"k": "b", "n": "1"}]),
    ("aggregate", 'where k == "zzz" | summarize n = count()', ET, [{"n": "0"}]),
    ("aggregate", 'where k == "zzz" | summarize n = count() by k', ET, []),
    ("agg_count", "summarize rows = count(), with_v = count(v)", ET, [{"rows": "5", "with_v": "4"}]),
    ("agg_dcount", "summarize d = dcount(k), dv = dcount(tostring(v))", ET, [{"d": "2", "dv": "4"}]),
    ("agg_min_max_sum_avg", 'where k == "a" | summarize lo = min(v), hi = max(v), s = sum(v), m = avg(v)', ET,
     [{"lo": "1", "hi": "7", "s": "8", "m": "4"}]),
    ("agg_min_max_sum_avg", 'where k == "b" | summarize s = sum(toint(x)), lo = min(x)', ET, [{"s": None, "lo": None}]),
    # decision 85: numbers only (numeric text counts), nulls skipped; sample stdev of one number is null
    ("agg_stdev", 'where k == "a" | summarize s = stdev(v), p = stdevp(v)', ET, [{"s": "4.242640687119285", "p": "3"}]),
    ("agg_stdev", 'where k == "b" | summarize s = stdev(v), p = stdevp(v)', ET, [{"s": None, "p": "0"}]),
    ("agg_stdev", 'where k == "zzz" | summarize s = stdev(v), p = stdevp(v)', ET, [{"s": None, "p": None}]),
    ("agg_stdev", "eventstats s = stdevp(v) by k | sort by _time | project k, s", ET,
     [{"k": None, "s": "0"}, {"k": "b", "s": "0"}, {"k": "a", "s": "3"}, {"k": "a", "s": "3"}, {"k": "a", "s": "3"}]),
    ("agg_values", "summarize vs = values(k)", ET, [{"vs": '["a","b"]'}]),
    # decision 95: at most N; the executor keeps the first N by text
    ("agg_values_limit", "summarize vs = values(tostring(v), 2), one = values(k, 1), all = values(k, 5)", ET,
     [{"vs": '["1","3"]', "one": '["a"]', "all": '["a","b"]'}]),
    # decision 87: the scalars at b of every element of every row; no element, no b, an object/array b: no value;
    # every row still counts; an array as a value is kept whole
    ("agg_values_each", "summarize n = count(), bs = values(a[].b), whole = values(a)", EACH_EVENTS,
     [{"n": "6", "bs": '[1,true,"x"]', "whole": '[[],[{"b":"x"},{"b":1}],[{"b":true}],[{"b":{"c":2}},{"b":[3]},'
                                              '{"d":4},{"b":"x"},"s"],"s"]'}]),
    ("agg_values_each", "summarize bs = values(a[].b) by k | sort by k", EACH_EVENTS,
     [{"k": "empty", "bs": "[]"}, {"k": "mixed", "bs": '["x"]'}, {"k": "none", "bs": "[]"},
      {"k": "one", "bs": '[1,"x"]'}, {"k": "scalar", "bs": "[]"}, {"k": "two", "bs": "[true]"}]),
    ("agg_earliest_latest", "summarize e = earliest(v), l = latest(v), first = min(_time)", ET,
     [{"e": "3", "l": "7", "first": "2024-01-01T00:00:00Z"}]),
    # decision 78: every column from the one row with the largest (smallest) key; a null key is no candidate; ties:
    # the first such row; a null value at that row is null (not another row's)
    ("agg_arg_max", "summarize arg_max(_time, v, kk = k) by k | sort by k", ET,
     [{"k": None, "_time": "2024-01-01T00:00:00Z", "v": "3", "kk": None},
      {"k": "a", "_time": "2024-01-01T00:00:04Z", "v": "7", "kk": "a"},
      {"k": "b", "_time": "2024-01-01T00:00:01Z", "v": "5", "kk": "b"}]),
    ("agg_arg_max", 'where k == "a" | summarize first = arg_min(_time, v)', ET,
     [{"first": "2024-01-01T00:00:02Z", "v": None}]),
    ("agg_arg_max", "summarize top = arg_max(toint(v), k) | project top, k", ET, [{"top": "7", "k": "a"}]),
    ("agg_arg_max", "extend t = 1 | summarize arg_max(t, k)", ET, [{"t": "1", "k": "a"}]),
    ("agg_arg_max", "summarize arg_max(toint(nothing), k)", ET, [{"nothing": None, "k": None}]),
    ("event_aggregate", "eventstats total = count() by k | where total > 1 | project v", ET,
     [{"v": "1"}, {"v": None}, {"v": "7"}]),
    ("rename", "rename key = k | project key | take 1", ET, [{"key": "a"}]),
    ("project", "project k, missing_column = nothing_here | take 1", ET, [{"k": "a", "missing_column": None}]),
    ("sort", "sort by k asc, v desc | project k, v", ET,
     [{"k": None, "v": "3"}, {"k": "a", "v": "7"}, {"k": "a", "v": "1"}, {"k": "a", "v": None},
      {"k": "b", "v": "5"}]),
    ("sort", "sort by k desc | project k", ET, [{"k": "b"}, {"k": "a"}, {"k": "a"}, {"k": "a"}, {"k": None}]),
    ("limit", "take 2 | project k", ET, [{"k": "a"}, {"k": "b"}]),
    # decision 62: one row per element; null (or missing) keeps one row, [] none, an object one row per member
    ("expand", "mv-expand a | project k, a", EXPAND_EVENTS,
     [{"k": "arr", "a": "1"}, {"k": "arr", "a": "x"}, {"k": "arr", "a": '{"b":2}'}, {"k": "null", "a": None},
      {"k": "missing", "a": None}, {"k": "scalar", "a": "s"}, {"k": "obj", "a": '{"p":1}'},
      {"k": "obj", "a": '{"q":"r"}'}]),
    ("expand", "mv-expand e = a to typeof(long) | project k, e", EXPAND_EVENTS[:1],
     [{"k": "arr", "e": "1"}, {"k": "arr", "e": None}, {"k": "arr", "e": None}]),
    ("expand", "mv-expand e = a | where e.b == 2 | project k, a", EXPAND_EVENTS[:1],
     [{"k": "arr", "a": '[1,"x",{"b":2}]'}]),
    # decision 77: `limit N` keeps the first N elements of each value
    ("expand", "mv-expand a limit 2 | project k, a", EXPAND_EVENTS,
     [{"k": "arr", "a": "1"}, {"k": "arr", "a": "x"}, {"k": "null", "a": None}, {"k": "missing", "a": None},
      {"k": "scalar", "a": "s"}, {"k": "obj", "a": '{"p":1}'}, {"k": "obj", "a": '{"q":"r"}'}]),
    ("expand", "mv-expand s = parse_json(tostring(d)).Statement | project s", [{"d": '{"Statement": [1, 2]}'}],
     [{"s": "1"}, {"s": "2"}]),
]


@pytest.mark.parametrize("construct,pipeline,events,expected", PIPELINES, ids=[f"{r[0]}:{r[1]}" for r in PIPELINES])
def test_pipeline(construct: str, pipeline: str, events: list[dict[str, Any]], expected: list[dict[str, Any]],
                  tmp_path: Path) -> None:
    rows = run(tmp_path, f"query: |\n  {pipeline}\n", events)
    assert [{k: to_text(v) for k, v in r.items()} for r in rows] == expected


# Sigma correlations (decision 20): (construct, correlation block over the base rules BASES, events, expected rows)
BASES = ("title: run\nname: run\nlogsource: {product: aws, service: cloudtrail}\n"
         "detection: {sel: {eventName: RunInstances}, condition: sel}\n---\n"
         "title: stop\nname: stop\nlogsource: {product: aws, service: cloudtrail}\n"
         "detection: {sel: {eventName: StopInstances}, condition: sel}\n---\n")


def ct(name: str, minute: int, ip: str = "1.2.3.4", n: Any = None) -> dict[str, Any]:
    return {"eventName": name, "eventTime": f"2024-01-01T00:{minute:02d}:00Z", "sourceIPAddress": ip,
            "requestParameters": {"maxCount": n}}


CORRELATIONS = [
    # one event two rules match would be two rows; here each row is one rule's: both rules in one window
    ("union", "{type: temporal, rules: [run, stop], group-by: [sourceIPAddress], timespan: 15m}",
     [ct("RunInstances", 1), ct("StopInstances", 5), ct("RunInstances", 20), ct("StopInstances", 40, "5.6.7.8")],
     [{"_time": "2024-01-01T00:00:00Z", "sourceIPAddress": "1.2.3.4", "rule_count": "2"}]),
    ("union", "{type: event_count, rules: [run, stop], group-by: [sourceIPAddress], timespan: 1h, "
     "condition: {gte: 3}}", [ct("RunInstances", 1), ct("StopInstances", 5), ct("RunInstances", 20)],
     [{"_time": "2024-01-01T00:00:00Z", "sourceIPAddress": "1.2.3.4", "event_count": "3"}]),
    # nearest rank: of 1, 2, 3, 40 the 50th percentile is the 2nd value, the 90th the 4th; nulls are skipped
    ("agg_percentile", "{type: value_percentile, rules: [run], group-by: [sourceIPAddress], timespan: 1h, "
     "condition: {field: requestParameters.maxCount, percentile: 50, gte: 0}}",
     [ct("RunInstances", i, n=n) for i, n in enumerate([40, 1, 3, 2, None])],
     [{"_time": "2024-01-01T00:00:00Z", "sourceIPAddress": "1.2.3.4", "value_percentile": "2"}]),
    ("agg_percentile", "{type: value_percentile, rules: [run], group-by: [sourceIPAddress], timespan: 1h, "
     "condition: {field: requestParameters.maxCount, percentile: 90, gte: 0}}",
     [ct("RunInstances", i, n=n) for i, n in enumerate([40, 1, "3", 2])],
     [{"_time": "2024-01-01T00:00:00Z", "sourceIPAddress": "1.2.3.4", "value_percentile": "40"}]),
]


@pytest.mark.parametrize("construct,correlation,events,expected", CORRELATIONS,
                         ids=[f"{r[0]}:{i}" for i, r in enumerate(CORRELATIONS)])
def test_correlation(construct: str, correlation: str, events: list[dict[str, Any]], expected: list[dict[str, Any]],
                     tmp_path: Path) -> None:
    from siemforge.compiler.api import compile_rules

    rule_file = tmp_path / "rule.yml"
    rule_file.write_text(BASES + "title: t\ncorrelation: " + correlation + "\n")
    (res,) = [r for r in compile_rules(rule_file) if r.rule is None or r.rule.pipeline.source.union is not None]
    assert res.rule is not None, [str(d) for d in res.diagnostics]
    logs = tmp_path / "events.ndjson"
    logs.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    rows = run_rule(res.rule, [logs], NOW).rows
    assert [{k: to_text(v) for k, v in r.items()} for r in rows] == expected


def test_lookup(tmp_path: Path) -> None:
    table = "image_id,owner,seen\nami-1,alice,10\nami-1,shadowed,11\nami-2,bob,\n"
    events = [ev(image="ami-1"), ev(image="AMI-1"), ev(image="ami-2"), ev(image=M), ev(image="ami-3")]
    rows = run(tmp_path, "query: |\n  lookup images on image = image_id output owner, seen\n"
                         "  | project image, owner, seen\n", events, lookups={"images": table})
    assert [(r["image"], r["owner"], r["seen"]) for r in rows] == [
        ("ami-1", "alice", 10), ("AMI-1", None, None), ("ami-2", "bob", None), (None, None, None),
        ("ami-3", None, None)]


def test_every_function_has_an_executor_implementation() -> None:
    assert set(FUNCTIONS) - set(IMPLEMENTATIONS) == {"now", "ago"}  # the clock functions are bound per run
