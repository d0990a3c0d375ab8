"""Target idioms a reviewer expects (issue 16; docs/semantics.md decisions 41–43), each as input rule → output, and
run where an engine can run it: duckdb-kql must return the executor's rows."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from siemforge.backends.executor.engine import run_rule
from siemforge.backends.kql.lower import FEATURES as KQL
from siemforge.backends.kql.lower import compile_kql
from siemforge.backends.spl.lower import compile_spl
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
     '`cloudtrail`\n| where (isnotnull(errorCode) AND errorCode!="" AND mvcount(errorCode)>0)\n'
     '| where errorCode!="Denied"'),
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
