"""Target idioms a reviewer expects (issue 16; docs/semantics.md decisions 41–43), each as input rule → output, and
run where an engine can run it: duckdb-kql must return the executor's rows."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from siemforge.backends.executor.engine import run_rule
from siemforge.backends.kql.lower import FEATURES as KQL
from siemforge.backends.kql.lower import compile_kql
from siemforge.backends.spl.lower import compile_spl
from siemforge.backends.spl.render import unwrapped
from siemforge.compiler.lowering import base_binding

import kql_engine
from helpers import compile_rule

HEAD = "title: t\nlogsource: {product: aws, service: cloudtrail}\n"
NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)

KQL_ROWS = [
    # a word no JSON serialisation spells differently: the stored string column
    ("word", 'where requestParameters contains "Suspended"',
     'AWSCloudTrail\n| where RequestParameters contains "Suspended"'),
    ("word, case-sensitive", 'where requestParameters contains_cs "Status_x1"',
     'AWSCloudTrail\n| where RequestParameters contains_cs "Status_x1"'),
    # punctuation, a leading escape letter (n: `\n`), a leading digit or hex letter: Kusto's own JSON text
    ("punctuation", 'where requestParameters contains "a.b"',
     'AWSCloudTrail\n| extend RequestParametersJson = parse_json(RequestParameters)\n'
     '| where tostring(RequestParametersJson) contains "a.b"\n| project-away RequestParametersJson'),
    ("escape letter", 'where requestParameters contains "nSuspended"',
     'AWSCloudTrail\n| extend RequestParametersJson = parse_json(RequestParameters)\n'
     '| where tostring(RequestParametersJson) contains "nSuspended"\n| project-away RequestParametersJson'),
    ("hex letter", 'where requestParameters contains "e5"',
     'AWSCloudTrail\n| extend RequestParametersJson = parse_json(RequestParameters)\n'
     '| where tostring(RequestParametersJson) contains "e5"\n| project-away RequestParametersJson'),
    # a whole-table eventstats: one toscalar() over the rows named by a let
    ("toscalar", 'eventstats m = max(_time) | project eventID, m',
     'let siemforge_rows_1 = AWSCloudTrail;\nsiemforge_rows_1\n'
     '| extend m = toscalar(siemforge_rows_1 | summarize max(TimeGenerated))\n| project eventID = AwsEventId, m'),
]


@pytest.mark.parametrize("name,query,expected", KQL_ROWS, ids=[r[0] for r in KQL_ROWS])
def test_kql_idiom(name: str, query: str, expected: str, tmp_path: Path) -> None:
    assert compile_kql(compile_rule(tmp_path, HEAD + f"query: |\n  {query}\n"), None) == expected


SPL_ROWS = [
    # a plain field key groups by itself and is renamed after; only the key that may be null is filled
    ("own field, proven", 'where eventName == "A" | summarize n = count() by signature = eventName, src = sourceIPAddress',
     '`cloudtrail` eventName="A"\n| where eventName=="A"\n'
     '| fillnull value="__siemforge_null__" sourceIPAddress\n'
     '| stats count AS n by eventName sourceIPAddress\n| rename eventName AS signature, sourceIPAddress AS src\n'
     '| eval src=if(src=="__siemforge_null__", null(), src)'),
    # a field an aggregation reads is never filled: the key is eval'd into its own column
    ("read by an aggregation", "summarize n = count(userAgent) by userAgent",
     '`cloudtrail`\n| eval siemforge_key1=userAgent\n| fillnull value="__siemforge_null__" siemforge_key1\n'
     '| stats count(userAgent) AS n by siemforge_key1\n| rename siemforge_key1 AS userAgent\n'
     '| eval userAgent=if(userAgent=="__siemforge_null__", null(), userAgent)'),
    # != on a side an earlier filter proved non-null: no isnull() guard
    ("guard dropped", 'where isnotempty(errorCode) | where errorCode != "Denied"',
     '`cloudtrail`\n| where isnotnull(errorCode) AND errorCode!=""\n'
     '| where errorCode!="Denied"'),
    # decision 46: a declared scalar of the JSON events holds one value at most (no mvcount test); a computed
    # column may hold several (split) and keeps it
    ("isempty of a scalar field", "where isempty(userIdentity.userName)",
     '`cloudtrail`\n| where isnull(\'userIdentity.userName\') OR \'userIdentity.userName\'==""'),
    ("isnotempty of a computed column", 'extend p = split(eventName, ":") | where isnotempty(p)',
     '`cloudtrail`\n| eval p=split(eventName, ":")\n| where isnotnull(p) AND p!="" AND mvcount(p)>0'),
    # tostring of one text value is that value; of a bool (or anything else) it stays
    ("tostring of text", "extend r = tostring(userIdentity.userName), s = tostring(readOnly)",
     "`cloudtrail`\n| eval r='userIdentity.userName', s=tostring(readOnly)"),
    # tostring of a JSON path: spath writes the key itself, no temporary
    ("spath into the column", 'extend r = tostring(requestParameters.repositoryName) | where r == "x"',
     '`cloudtrail`\n| spath output=r path=requestParameters.repositoryName\n| where r=="x"'),
    # ... not when another assignment of the stage reads the old value (the temporary of the sequential rewrite)
    ("spath into a temporary", "extend userAgent = tostring(requestParameters.agent), ua = userAgent",
     '`cloudtrail`\n| spath output=siemforge_tmp1 path=requestParameters.agent\n| eval siemforge_tmp2=userAgent\n'
     '| eval userAgent=siemforge_tmp1, ua=siemforge_tmp2\n| fields - siemforge_tmp1 siemforge_tmp2'),
    # ... nor into a field the events or an earlier stage may hold: Splunk does not say that spath clears it when the
    # path is missing, where the IR's value is null
    ("spath not into a field of the events", "extend userAgent = tostring(requestParameters.agent)",
     '`cloudtrail`\n| spath output=siemforge_path1 path=requestParameters.agent\n| eval userAgent=siemforge_path1\n'
     '| fields - siemforge_path1'),
    ("spath not into a computed column", 'extend r = "none" | where r == "none" '
     "| extend r = tostring(requestParameters.repositoryName)",
     '`cloudtrail`\n| eval r="none"\n| where r=="none"\n'
     '| spath output=siemforge_path1 path=requestParameters.repositoryName\n| eval r=siemforge_path1\n'
     '| fields - siemforge_path1'),
    # count() named count needs no AS; any other name does
    ("count", "summarize n = count(), count = count() by eventName",
     '`cloudtrail`\n| fillnull value="__siemforge_null__" eventName\n| stats count AS n count by eventName\n'
     '| eval eventName=if(eventName=="__siemforge_null__", null(), eventName)'),
    # a literal key is the same in every group: set after stats; unless every key is one (stats with no `by`
    # gives a row over no events)
    ("literal key", 'summarize n = count() by eventName, p = "AWS"',
     '`cloudtrail`\n| fillnull value="__siemforge_null__" eventName\n| stats count AS n by eventName\n'
     '| eval p="AWS"\n| eval eventName=if(eventName=="__siemforge_null__", null(), eventName)'),
    ("only literal keys", 'summarize n = count() by p = "AWS"',
     '`cloudtrail`\n| eval p="AWS"\n| stats count AS n by p'),
    # no parentheses around a whole where expression or in()'s first argument; an operand's own stay
    ("parentheses", 'where (eventName == "A" or eventName == "B") and hourofday(_time) in (1, 2)',
     '`cloudtrail` (eventName="A" OR eventName="B")\n'
     '| where (eventName=="A" OR eventName=="B") AND in((floor(_time / 3600) % 24 + 24) % 24, 1, 2)'),
]


@pytest.mark.parametrize("name,query,expected", SPL_ROWS, ids=[r[0] for r in SPL_ROWS])
def test_spl_idiom(name: str, query: str, expected: str, tmp_path: Path) -> None:
    assert compile_spl(compile_rule(tmp_path, HEAD + f"query: |\n  {query}\n"), None) == expected


RECORDS = [
    {"requestParameters": {"VersioningConfiguration": {"Status": "Suspended"}}},
    {"requestParameters": {"VersioningConfiguration": {"Status": "Enabled"}}},
    {"requestParameters": {"note": "line\nSuspended"}},
    {"requestParameters": {"n": 1e5, "Suspended": True}},
    {},
]


@pytest.mark.skipif(kql_engine.duckdb_kql is None, reason="duckdb-kql is not installed")
@pytest.mark.parametrize("query", ['where requestParameters contains "Suspended"',
                                   'eventstats m = max(_time) | project eventID, m'])
def test_idioms_keep_the_executors_rows(query: str, tmp_path: Path) -> None:
    logs = tmp_path / "e.ndjson"
    logs.write_bytes(b"".join(orjson.dumps({"eventTime": "2024-06-01T11:00:00Z", "eventID": str(i),
                                            "eventName": f"E{i}", **r}) + b"\n" for i, r in enumerate(RECORDS)))
    rule = compile_rule(tmp_path, HEAD + f"query: |\n  {query}\n")
    expected = kql_engine.comparable(run_rule(rule, [logs], NOW).rows, rule, "eventID")
    binding = base_binding(rule, KQL)
    assert binding is not None
    got = kql_engine.run(kql_engine.connect(binding, [logs], {}), compile_kql(rule, None), NOW)
    assert kql_engine.comparable(got, rule, "AwsEventId") == expected
    assert expected  # the case selects rows


@pytest.mark.parametrize("text,expected", [
    ('(a OR b)', 'a OR b'),
    ('((a OR b))', 'a OR b'),
    ('(a) OR (b)', '(a) OR (b)'),
    ('(x=="(") OR (y==")")', '(x=="(") OR (y==")")'),
    ("('f)'==1)", "'f)'==1"),
    ('(match(x, "\\")") AND y)', 'match(x, "\\")") AND y'),
    ('a', 'a'),
])
def test_unwrapped(text: str, expected: str) -> None:
    """Parentheses around the whole text only (decision 46), quotes and escapes read as SPL reads them."""
    assert unwrapped(text) == expected


def _spl_arith(text: str, t: float, truncating: bool) -> float:
    """Evaluate an SPL arithmetic expression over `_time` with `%` taking the sign of the dividend (truncating) or
    of the divisor, as Splunk's documentation leaves open (decision 45)."""
    class N(float):
        def __add__(self, o: float) -> N:
            return N(float(self) + o)
        __radd__ = __add__

        def __truediv__(self, o: float) -> N:
            return N(float(self) / o)

        def __mod__(self, o: float) -> N:
            return N(math.fmod(self, o) if truncating else float(self) % o)

    return float(eval(text, {"floor": lambda x: N(math.floor(x)), "_time": N(t)}))  # noqa: S307 - our own text


@pytest.mark.parametrize("truncating", [True, False])
def test_utc_hour_and_weekday_whatever_the_sign_of_modulo(truncating: bool, tmp_path: Path) -> None:
    """hourofday/dayofweek as emitted give the UTC hour and weekday (0 = Sunday) of times before and after 1970
    under either reading of SPL's `%`."""
    spl = compile_spl(compile_rule(tmp_path, HEAD + "query: |\n  where hourofday(_time) == 1 and dayofweek(_time) == 2\n"),
                      None)
    where = spl.splitlines()[-1].removeprefix("| where ")
    hour, day = (side.rsplit("==", 1)[0] for side in where.split(" AND "))
    for when in [datetime(1969, 12, 27, 23, 59, 59, 500000, tzinfo=UTC), datetime(1900, 3, 4, 0, 0, tzinfo=UTC),
                 datetime(1970, 1, 1, tzinfo=UTC), datetime(2019, 4, 13, 16, 45, tzinfo=UTC),
                 datetime(1965, 7, 1, 5, 30, tzinfo=UTC)]:
        t = when.timestamp()
        assert _spl_arith(hour, t, truncating) == when.hour, (when, hour)
        assert _spl_arith(day, t, truncating) == (when.weekday() + 1) % 7, (when, day)
