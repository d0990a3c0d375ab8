"""Joins (issue 13; docs/semantics.md decision 70): the executor's meaning on hand-made events, each backend's text
as a table (rule → expected output), and duckdb-kql running the emitted KQL to the executor's rows."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from siemforge.backends.executor.engine import run_rule
from siemforge.backends.kql.lower import FEATURES as KQL
from siemforge.backends.kql.lower import compile_kql
from siemforge.backends.spl.lower import compile_spl
from siemforge.compiler import ir
from siemforge.compiler.api import compile_file
from siemforge.compiler.lowering import base_binding
from siemforge.compiler.types import Type

import kql_engine
from helpers import ROOT, compile_rule

HEAD = "title: t\nlogsource: {product: aws, service: cloudtrail}\n"
NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)

# who did what: two CreateUser by alice (duplicate left keys), one by bob, one with no identity (a null key);
# alice and carol attach policies; an AttachUserPolicy with no identity must match nothing
EVENTS = [
    {"eventID": "1", "eventName": "CreateUser", "userIdentity": {"arn": "alice"}, "sourceIPAddress": "10.0.0.1"},
    {"eventID": "2", "eventName": "CreateUser", "userIdentity": {"arn": "alice"}, "sourceIPAddress": "10.0.0.2"},
    {"eventID": "3", "eventName": "CreateUser", "userIdentity": {"arn": "bob"}, "sourceIPAddress": "10.0.0.3"},
    {"eventID": "4", "eventName": "CreateUser", "sourceIPAddress": "10.0.0.4"},
    {"eventID": "5", "eventName": "AttachUserPolicy", "userIdentity": {"arn": "alice"}, "sourceIPAddress": "10.0.0.9"},
    {"eventID": "6", "eventName": "AttachUserPolicy", "userIdentity": {"arn": "alice"}, "sourceIPAddress": "10.0.0.8"},
    {"eventID": "7", "eventName": "AttachUserPolicy", "userIdentity": {"arn": "carol"}, "sourceIPAddress": "10.0.0.7"},
    {"eventID": "8", "eventName": "AttachUserPolicy", "sourceIPAddress": "10.0.0.6"},
]

LEFT = 'where eventName == "CreateUser" | project eventID, who = userIdentity.arn'
RIGHT_OPEN = '(aws.cloudtrail | where eventName == "AttachUserPolicy" | extend who = userIdentity.arn)'
RIGHT = ('(aws.cloudtrail | where eventName == "AttachUserPolicy" '
         '| project eventID, who = userIdentity.arn, ip = sourceIPAddress)')

# (name, query, expected rows as (eventID, who, eventID1, who1) or eventID alone for semi/anti)
EXECUTOR_ROWS = [
    ("inner: every pair", f"{LEFT} | join kind=inner {RIGHT} on who",
     [("1", "alice", "5", "alice"), ("1", "alice", "6", "alice"), ("2", "alice", "5", "alice"),
      ("2", "alice", "6", "alice")]),
    ("innerunique: one left row per key", f"{LEFT} | join {RIGHT} on who",
     [("1", "alice", "5", "alice"), ("1", "alice", "6", "alice")]),
    ("leftouter: unmatched left rows, right columns null", f"{LEFT} | join kind=leftouter {RIGHT} on who",
     [("1", "alice", "5", "alice"), ("1", "alice", "6", "alice"), ("2", "alice", "5", "alice"),
      ("2", "alice", "6", "alice"), ("3", "bob", None, None), ("4", None, None, None)]),
    ("leftsemi: matched left rows once", f"{LEFT} | join kind=leftsemi {RIGHT_OPEN} on who", ["1", "2"]),
    ("leftanti: unmatched left rows, a null key too", f"{LEFT} | join kind=leftanti {RIGHT_OPEN} on who",
     ["3", "4"]),
    ("matchempty: a null key matches a null key (KQL strings)", f"{LEFT} | join kind=inner matchempty=true {RIGHT} on who",
     [("1", "alice", "5", "alice"), ("1", "alice", "6", "alice"), ("2", "alice", "5", "alice"),
      ("2", "alice", "6", "alice"), ("4", None, "8", None)]),
    ("$left.x == $right.y", f"{LEFT} | join kind=inner "
     '(aws.cloudtrail | where eventName == "AttachUserPolicy" | summarize n = count() by actor = userIdentity.arn) '
     "on $left.who == $right.actor", [("1", "alice", "alice", 2), ("2", "alice", "alice", 2)]),
]


def _logs(tmp_path: Path) -> Path:
    logs = tmp_path / "e.ndjson"
    logs.write_bytes(b"".join(orjson.dumps({"eventTime": "2024-06-01T11:00:00Z", **e}) + b"\n" for e in EVENTS))
    return logs


@pytest.mark.parametrize("name,query,expected", EXECUTOR_ROWS, ids=[r[0] for r in EXECUTOR_ROWS])
def test_executor_join(name: str, query: str, expected: list[object], tmp_path: Path) -> None:
    rule = compile_rule(tmp_path, HEAD + f"query: |\n  {query}\n")
    rows = run_rule(rule, [_logs(tmp_path)], NOW, workers=1).rows
    if expected and isinstance(expected[0], str):
        assert [r["eventID"] for r in rows] == expected
        assert all(set(r) == {"eventID", "who"} for r in rows)  # semi/anti: the left columns only
    else:
        names = [n for n, _ in rule.pipeline.columns][:4]
        assert names in (["eventID", "who", "eventID1", "who1"], ["eventID", "who", "actor", "n"])
        assert [tuple(r[n] for n in names) for r in rows] == expected


def test_clashing_right_columns_are_suffixed(tmp_path: Path) -> None:
    rule = compile_rule(tmp_path, HEAD + "query: |\n  project eventID, eventID1 = eventName\n"
                        "  | join kind=inner (aws.cloudtrail | project eventID) on eventID\n")
    assert [n for n, _ in rule.pipeline.columns] == ["eventID", "eventID1", "eventID2"]


@pytest.mark.parametrize("query,message", [
    ("join kind=outer (aws.cloudtrail | project eventID) on eventID", "unknown join kind 'outer'"),
    ("join kind=inner (aws.nothing | project eventID) on eventID", "unknown source 'aws.nothing'"),
    ("join kind=inner (aws.cloudtrail | where eventName == \"A\") on eventID", "must say which"),
    ("join kind=inner (aws.cloudtrail | project x = eventID) on eventID", "the right side of the join has no column"),
])
def test_join_errors_name_the_place(query: str, message: str, tmp_path: Path) -> None:
    path = tmp_path / "rule.yml"
    path.write_text(HEAD + f"query: |\n  {query}\n")
    res = compile_file(path)
    assert res.rule is None
    d = res.diagnostics[0]
    assert message in d.message and d.span is not None and d.span.line == 4


KQL_ROWS = [
    ("inner", f"{LEFT} | join kind=inner {RIGHT} on who",
     'AWSCloudTrail\n| where EventName == "CreateUser"\n| extend who = UserIdentityArn\n'
     '| project eventID = AwsEventId, who\n| join kind=inner (\n    AWSCloudTrail\n'
     '    | where EventName == "AttachUserPolicy"\n    | extend who = UserIdentityArn, ip = SourceIpAddress\n'
     '    | project eventID = AwsEventId, who, ip\n    | project eventID1 = eventID, who1 = who, ip\n'
     '    | where isnotempty(who1)\n    ) on $left.who == $right.who1'),
    ("leftanti, open right side, a table column key", 'where eventName == "CreateUser" '
     '| join kind=leftanti (aws.cloudtrail | where eventName == "DeleteUser") on eventID',
     'AWSCloudTrail\n| where EventName == "CreateUser"\n| join kind=leftanti (\n    AWSCloudTrail\n'
     '    | where EventName == "DeleteUser"\n    | project eventID = AwsEventId\n'
     '    | where isnotempty(eventID)\n    ) on $left.AwsEventId == $right.eventID'),
]


@pytest.mark.parametrize("name,query,expected", KQL_ROWS, ids=[r[0] for r in KQL_ROWS])
def test_kql_join(name: str, query: str, expected: str, tmp_path: Path) -> None:
    assert compile_kql(compile_rule(tmp_path, HEAD + f"query: |\n  {query}\n"), None) == expected


def _empty_strings(rows: list[dict[str, object]], rule: ir.RuleIR) -> list[dict[str, object]]:
    """A null string as Sentinel holds it: the empty string (docs/semantics.md decision 2)."""
    strings = [n for n, t in rule.pipeline.columns or () if t is Type.STRING]
    return [{**r, **{n: r.get(n) or "" for n in strings}} for r in rows]


SPL_LEFT = ('`cloudtrail` eventName="CreateUser"\n| where eventName=="CreateUser"\n| eval who=\'userIdentity.arn\'\n'
            '| table eventID who\n')
SPL_RIGHT = ('    [search `cloudtrail` eventName="AttachUserPolicy"\n     | where eventName=="AttachUserPolicy"\n'
             "     | eval who='userIdentity.arn'\n")
SPL_ROWS = [
    ("inner", f"{LEFT} | join kind=inner {RIGHT} on who",
     SPL_LEFT + "| join type=inner max=0 who\n" + SPL_RIGHT.replace("eval who='userIdentity.arn'", "eval who='userIdentity.arn', ip=sourceIPAddress")
     + "     | table eventID who ip\n     | eval eventID1=eventID, who1=who\n     | where isnotnull(who)\n"
     "     | table who eventID1 who1 ip]"),
    ("innerunique: the left deduplicated first", f"{LEFT} | join {RIGHT} on who",
     SPL_LEFT + "| dedup who\n| join type=inner max=0 who\n" + SPL_RIGHT.replace("eval who='userIdentity.arn'", "eval who='userIdentity.arn', ip=sourceIPAddress")
     + "     | table eventID who ip\n     | eval eventID1=eventID, who1=who\n     | where isnotnull(who)\n"
     "     | table who eventID1 who1 ip]"),
    ("leftouter", f"{LEFT} | join kind=leftouter {RIGHT} on who",
     SPL_LEFT + "| join type=left max=0 who\n" + SPL_RIGHT.replace("eval who='userIdentity.arn'", "eval who='userIdentity.arn', ip=sourceIPAddress")
     + "     | table eventID who ip\n     | eval eventID1=eventID, who1=who\n     | where isnotnull(who)\n"
     "     | table who eventID1 who1 ip]"),
    ("leftsemi: the right's distinct keys", f"{LEFT} | join kind=leftsemi {RIGHT_OPEN} on who",
     SPL_LEFT + "| join type=inner max=1 who\n" + SPL_RIGHT
     + "     | where isnotnull(who)\n     | dedup who\n     | table who]"),
    ("leftanti: a marker, then the rows without it", f"{LEFT} | join kind=leftanti {RIGHT_OPEN} on who",
     SPL_LEFT + "| join type=left max=1 who\n" + SPL_RIGHT
     + "     | where isnotnull(who)\n     | dedup who\n     | eval siemforge_match1=1\n"
     "     | table who siemforge_match1]\n| where isnull(siemforge_match1)\n| fields - siemforge_match1"),
]


@pytest.mark.parametrize("name,query,expected", SPL_ROWS, ids=[r[0] for r in SPL_ROWS])
def test_spl_join(name: str, query: str, expected: str, tmp_path: Path) -> None:
    import lark

    text = compile_spl(compile_rule(tmp_path, HEAD + f"query: |\n  {query}\n"), None)
    assert text == expected
    lark.Lark((ROOT / "grammars" / "spl.lark").read_text(), parser="earley", lexer="dynamic").parse(text)


def _engine_rows(name: str, rows: list[str]) -> list[str]:
    """innerunique keeps one left row of each key, which one the IR leaves open (decision 70): the engines are
    compared on the rows' keys and right columns there."""
    if "innerunique" not in name:
        return rows
    return sorted(orjson.dumps(orjson.loads(r)[1:]).decode() for r in rows)


@pytest.mark.skipif(kql_engine.duckdb_kql is None, reason="duckdb-kql is not installed")
@pytest.mark.parametrize("name,query,expected", EXECUTOR_ROWS, ids=[r[0] for r in EXECUTOR_ROWS])
def test_duckdb_kql_runs_the_join_to_the_executors_rows(name: str, query: str, expected: object,
                                                        tmp_path: Path) -> None:
    logs = _logs(tmp_path)
    rule = compile_rule(tmp_path, HEAD + f"query: |\n  {query}\n")
    want = kql_engine.comparable(_empty_strings(run_rule(rule, [logs], NOW, workers=1).rows, rule), rule, "eventID")
    binding = base_binding(rule, KQL)
    assert binding is not None
    got = kql_engine.run(kql_engine.connect(binding, [logs], {}), compile_kql(rule, None), NOW)
    assert _engine_rows(name, kql_engine.comparable(_empty_strings(got, rule), rule, "AwsEventId")) == \
        _engine_rows(name, want)
    assert want


@pytest.mark.parametrize("name,query,expected", EXECUTOR_ROWS, ids=[r[0] for r in EXECUTOR_ROWS])
def test_duckdb_sql_runs_the_join_to_the_executors_rows(name: str, query: str, expected: object,
                                                        tmp_path: Path) -> None:
    from siemforge.backends.sql.duckdb_run import run_duckdb

    logs = _logs(tmp_path)
    rule = compile_rule(tmp_path, HEAD + f"query: |\n  {query}\n")
    want = kql_engine.comparable(run_rule(rule, [logs], NOW, workers=1).rows, rule, "eventID")
    got = kql_engine.comparable(run_duckdb(rule, [logs], now=NOW), rule, "eventID")
    assert _engine_rows(name, got) == _engine_rows(name, want)


# ------------------------------------------------------------------------------------------ the KQL importer
IMPORT_ROWS = [
    ("materialize, no kind= (innerunique), a clashing right column renamed as Kusto names it",
     "let A = materialize(AWSCloudTrail | where EventName == 'CreateUser' | project EventName, Who = UserIdentityArn);\n"
     "A | join (AWSCloudTrail | summarize N = count() by Who = UserIdentityArn) on Who",
     "where eventName == 'CreateUser'\n| project EventName_ = eventName, Who = userIdentity.arn\n"
     "| join kind=innerunique matchempty=true (aws.cloudtrail\n    | summarize N = count()\n"
     "        by Who = userIdentity.arn\n    | rename Who1 = Who)\n    on $left.Who == $right.Who1"),
    ("$left.x == $right.y, a let by name, time windows kept as filters on each side",
     "let R = AWSCloudTrail | where TimeGenerated >= ago(1d) | distinct Token = UserIdentityAccessKeyId;\n"
     "AWSCloudTrail | where TimeGenerated >= ago(2d) | join kind=leftsemi R on $left.UserIdentityAccessKeyId == "
     "$right.Token",
     "where _time >= ago(2d)\n| join kind=leftsemi matchempty=true (aws.cloudtrail\n    | where _time >= ago(1d)\n"
     "    | summarize by Token = userIdentity.accessKeyId)\n    on $left.userIdentity.accessKeyId == $right.Token"),
    ("project-away of joined columns on the table's rows: the join's output leaves them out",
     "let A = AWSCloudTrail | where EventName == 'AttachUserPolicy' | distinct AwsEventId, UserIdentityArn;\n"
     "AWSCloudTrail | where EventName == 'AttachUserPolicy' | join kind=inner (A) on AwsEventId "
     "| project-away AwsEventId1",
     "where eventName == 'AttachUserPolicy'\n| join kind=inner matchempty=true (aws.cloudtrail\n"
     "    | where eventName == 'AttachUserPolicy'\n"
     "    | summarize by AwsEventId = eventID, UserIdentityArn = userIdentity.arn\n"
     "    | rename AwsEventId1 = AwsEventId, UserIdentityArn1 = UserIdentityArn)\n"
     "    on $left.eventID == $right.AwsEventId1\n    output UserIdentityArn1"),
]


@pytest.mark.parametrize("name,kql,expected", IMPORT_ROWS, ids=[r[0] for r in IMPORT_ROWS])
def test_kql_import_of_a_join(name: str, kql: str, expected: str) -> None:
    from siemforge.importers.kql import translate

    t = translate(kql)
    assert t.body(kql) == expected
    assert t.lookback is None  # a query with a join keeps its windows where they are


@pytest.mark.parametrize("kql,reason", [
    ("AWSCloudTrail | join kind=fullouter (AWSCloudTrail | distinct EventName) on EventName", "join kind=fullouter"),
    ("AWSCloudTrail | join kind=inner (AWSCloudTrail) on EventName", "keeps the table's columns"),
])
def test_kql_import_refuses_a_join_it_cannot_say(kql: str, reason: str) -> None:
    from siemforge.importers.kql import Refusal, translate

    with pytest.raises(Refusal) as exc:
        translate(kql)
    assert reason in exc.value.reason and exc.value.line == 1


@pytest.mark.skipif(kql_engine.duckdb_kql is None, reason="duckdb-kql is not installed")
@pytest.mark.parametrize("name,kql,expected", IMPORT_ROWS, ids=[r[0] for r in IMPORT_ROWS])
def test_imported_join_gives_the_original_kqls_rows(name: str, kql: str, expected: str, tmp_path: Path) -> None:
    """The original KQL and the KQL compiled from its import, both run by duckdb-kql over the same rows."""
    logs = tmp_path / "e.ndjson"
    events = [{**e, "userIdentity": {**e.get("userIdentity", {}), "accessKeyId": f"K{int(e['eventID']) % 3}"}}
              for e in EVENTS]
    logs.write_bytes(b"".join(orjson.dumps({"eventTime": "2024-06-01T11:00:00Z", **e}) + b"\n" for e in events))
    rule = compile_rule(tmp_path, HEAD + "query: |\n  " + expected.replace("\n", "\n  ") + "\n")
    binding = base_binding(rule, KQL)
    assert binding is not None
    con = kql_engine.connect(binding, [logs], {})
    want = kql_engine.run(con, kql, NOW)
    got = kql_engine.run(con, compile_kql(rule, None), NOW)
    assert len(got) == len(want) > 0
    mine = run_rule(rule, [logs], NOW, workers=1).rows
    assert len(mine) == len(want)


@pytest.mark.slow
def test_spark_runs_every_join_to_the_executors_rows(tmp_path: Path) -> None:
    """Spark SQL (local mode, ~40 s for the table): the same rows as the executor for every kind."""
    pytest.importorskip("pyspark")
    from siemforge.backends.sql.spark_run import run_spark

    for i, (name, query, _) in enumerate(EXECUTOR_ROWS):
        folder = tmp_path / str(i)
        folder.mkdir()
        logs = _logs(folder)
        rule = compile_rule(folder, HEAD + f"query: |\n  {query}\n")
        want = kql_engine.comparable(run_rule(rule, [logs], NOW, workers=1).rows, rule, "eventID")
        got = kql_engine.comparable(run_spark(rule, [logs], now=NOW), rule, "eventID")
        assert _engine_rows(name, got) == _engine_rows(name, want), name


def test_join_output_chooses_the_right_columns(tmp_path: Path) -> None:
    rule = compile_rule(tmp_path, HEAD + f"query: |\n  {LEFT} | join kind=inner {RIGHT} on who output ip, eventID as id2\n")
    assert [n for n, _ in rule.pipeline.columns] == ["eventID", "who", "ip", "id2"]
    rows = run_rule(rule, [_logs(tmp_path)], NOW, workers=1).rows
    assert [(r["eventID"], r["id2"], r["ip"]) for r in rows] == [
        ("1", "5", "10.0.0.9"), ("1", "6", "10.0.0.8"), ("2", "5", "10.0.0.9"), ("2", "6", "10.0.0.8")]
    kql = compile_kql(rule, None)
    assert "    | project ip, id2 = eventID, siemforge_rkey_1 = who\n" in kql
    assert kql.endswith("on $left.who == $right.siemforge_rkey_1\n| project-away siemforge_rkey_1")
    if kql_engine.duckdb_kql is not None:
        binding = base_binding(rule, KQL)
        assert binding is not None
        got = kql_engine.run(kql_engine.connect(binding, [tmp_path / "e.ndjson"], {}), kql, NOW)
        assert kql_engine.comparable(got, rule, "") == kql_engine.comparable(rows, rule, "")
