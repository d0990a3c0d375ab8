"""aws.guardduty (decisions 96-97) and values(x, N) / make_set(x, N) (decision 95).

The findings below are hand-made in the shape of GuardDuty's Finding object (API_Finding, API_Resource, API_Service:
https://docs.aws.amazon.com/guardduty/latest/APIReference/API_Finding.html); no real GuardDuty finding is in
../shared/data. The Sentinel hunting query of the migration corpus that reads AWSGuardDuty is imported, run by the
executor over them, and its original KQL and our compiled KQL are run by duckdb-kql over them shaped as AWSGuardDuty
rows (tests/test_import_sentinel.py compares the other imported rules over CloudTrail events; GuardDuty findings are
its one no-verdict case of this kind).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from siemforge.backends.executor.engine import run_rule
from siemforge.backends.executor.shapes import record_to_row
from siemforge.backends.executor.values import to_text
from siemforge.backends.kql.lower import compile_kql
from siemforge.backends.spl.lower import compile_spl
from siemforge.backends.sql.lower import compile_sql
from siemforge.compiler.api import compile_file
from siemforge.compiler.bindings import builtin_bindings
from siemforge.compiler.diagnostics import CompileError
from siemforge.importers.kql import Refusal, translate
from siemforge.importers.sentinel import import_sentinel

from helpers import compile_rule, shared_path

NOW = datetime(2024, 5, 2, tzinfo=UTC)
GD = "title: t\nlogsource: {product: aws, service: guardduty}\n"
CT = "title: t\nlogsource: {product: aws, service: cloudtrail}\n"


def finding(n: int, account: str, kind: str, severity: float, *, ip: str | None = None, user: str | None = None,
            instance: str | None = None, api: bool = False, created: str = "2024-05-01T10:00:00.000Z") -> dict[str, Any]:
    resource: dict[str, Any] = {"resourceType": "AccessKey" if user else "Instance"}
    if user:
        resource["accessKeyDetails"] = {"accessKeyId": "ASIAEXAMPLE", "principalId": "AIDAEXAMPLE",
                                        "userName": user, "userType": "IAMUser"}
    if instance:
        resource["instanceDetails"] = {"instanceId": instance, "instanceType": "t3.micro"}
    action: dict[str, Any] = {}
    if ip and api:
        action = {"actionType": "AWS_API_CALL", "awsApiCallAction": {
            "api": "ListBuckets", "serviceName": "s3.amazonaws.com", "callerType": "Remote IP",
            "remoteIpDetails": {"ipAddressV4": ip}}}
    elif ip:
        action = {"actionType": "NETWORK_CONNECTION", "networkConnectionAction": {
            "connectionDirection": "OUTBOUND", "blocked": False, "protocol": "TCP",
            "remoteIpDetails": {"ipAddressV4": ip}, "remotePortDetails": {"port": 443}}}
    fid = f"{n:032x}"
    return {"schemaVersion": "2.0", "accountId": account, "region": "us-east-1", "partition": "aws", "id": fid,
            "arn": f"arn:aws:guardduty:us-east-1:{account}:detector/12abc34d567e8fa901bc2d34e56789f0/finding/{fid}",
            "type": kind, "resource": resource, "severity": severity, "createdAt": created,
            "updatedAt": "2024-05-01T11:00:00.000Z", "title": kind.split("/")[-1], "description": "d",
            "service": {"serviceName": "guardduty", "detectorId": "12abc34d567e8fa901bc2d34e56789f0",
                        "action": action, "archived": False, "count": 1, "resourceRole": "TARGET",
                        "eventFirstSeen": created, "eventLastSeen": "2024-05-01T11:00:00.000Z"}}


FINDINGS = [
    finding(1, "111122223333", "UnauthorizedAccess:IAMUser/MaliciousIPCaller.Custom", 8.0, ip="198.51.100.7",
            user="alice", api=True),
    finding(2, "111122223333", "UnauthorizedAccess:IAMUser/TorIPCaller", 8.5, ip="203.0.113.9", user="alice",
            api=True, created="2024-05-01T09:00:00.000Z"),
    finding(3, "111122223333", "Recon:IAMUser/MaliciousIPCaller", 5.0, ip="198.51.100.7", user="alice", api=True),
    finding(4, "111122223333", "CryptoCurrency:EC2/BitcoinTool.B!DNS", 8.0, instance="i-0abc"),
    finding(5, "111122223333", "CryptoCurrency:EC2/BitcoinTool.B", 8.0, instance="i-0abc", ip="192.0.2.44"),
    finding(6, "444455556666", "Backdoor:EC2/C&CActivity.B", 8.0, instance="i-0def", ip="192.0.2.50"),
    finding(7, "444455556666", "Trojan:EC2/BlackholeTraffic", 7.0, instance="i-0def", ip="192.0.2.51"),
    # 6.9 is Medium: not >= 7.0, on Sentinel too, where Severity holds toint(6.9) = 6
    finding(8, "444455556666", "Trojan:EC2/DropPoint", 6.9, instance="i-0def", ip="192.0.2.52"),
]
# the imported hunting query's groups of at least 2 high-severity findings, as the executor gives them
EXPECTED = [
    {"AccountId": "111122223333", "Region": "us-east-1", "ThreatPurpose": "UnauthorizedAccess",
     "ResourceType": "AccessKey", "Actor": "alice", "FindingCount": 2, "DistinctFindingTypes": 2,
     "FindingTypes": ["UnauthorizedAccess:IAMUser/MaliciousIPCaller.Custom", "UnauthorizedAccess:IAMUser/TorIPCaller"],
     "RemoteIps": ["198.51.100.7", "203.0.113.9"]},
    {"AccountId": "111122223333", "Region": "us-east-1", "ThreatPurpose": "CryptoCurrency",
     "ResourceType": "Instance", "Actor": "i-0abc", "FindingCount": 2, "DistinctFindingTypes": 2,
     "FindingTypes": ["CryptoCurrency:EC2/BitcoinTool.B", "CryptoCurrency:EC2/BitcoinTool.B!DNS"],
     "RemoteIps": ["192.0.2.44"]},
]


def _logs(tmp_path: Path) -> Path:
    logs = tmp_path / "findings.ndjson"
    logs.write_bytes(b"".join(orjson.dumps(f) + b"\n" for f in FINDINGS))
    return logs


def _imported(tmp_path: Path) -> Path:
    source = shared_path("data", "migration", "sentinel", "hunting-queries",
                         "AWS_GuardDuty_HighSeverityFindingsCrossAccount.yaml")
    [outcome] = import_sentinel([source], tmp_path / "out")
    assert outcome.status == "imported", outcome.reason
    return outcome.written[0]


def test_the_guardduty_hunting_query_imports_and_runs_on_findings(tmp_path: Path) -> None:
    rule_file = _imported(tmp_path)
    text = rule_file.read_text()
    assert "source: aws.guardduty" in text and "FindingTypes = values(type, 10)" in text
    res = compile_file(rule_file)
    assert res.rule is not None
    rows = run_rule(res.rule, [_logs(tmp_path)]).rows
    keep = ("AccountId", "Region", "ThreatPurpose", "ResourceType", "Actor", "FindingCount", "DistinctFindingTypes",
            "FindingTypes", "RemoteIps")
    assert sorted(({k: r[k] for k in keep} for r in rows), key=str) == sorted(EXPECTED, key=str)
    assert {r["Actor"]: r["FirstSeen"] for r in rows} == {"alice": "2024-05-01T09:00:00.000Z",
                                                          "i-0abc": "2024-05-01T10:00:00.000Z"}


def _norm_row(r: dict[str, Any]) -> dict[str, Any]:
    """duckdb-kql's row in a comparable form. A list drops "": the original's make_set keeps the empty string a
    finding without a remote IP gives (KQL's tostring of a missing member), which on this binding is the missing
    value (empty_is_missing) and values() leaves out (decision 95)."""
    import kql_engine

    out: dict[str, Any] = {}
    for k, v in r.items():
        n = kql_engine.norm(v)
        if isinstance(n, str) and n.startswith("["):
            n = sorted(x for x in orjson.loads(n) if x != "")
        out[k] = n
    return out


def test_original_and_compiled_kql_give_the_executors_rows_on_findings(tmp_path: Path) -> None:
    import yaml

    import kql_engine

    if kql_engine.duckdb_kql is None:
        pytest.skip("duckdb-kql is not installed")
    rule_file = _imported(tmp_path)
    res = compile_file(rule_file)
    assert res.rule is not None
    binding = builtin_bindings()[("aws.guardduty", "sentinel")]
    con = kql_engine.connect(binding, [_logs(tmp_path)], {})
    original = yaml.safe_load(Path(str(rule_file.read_text().split("references:\n  - ")[1].split("\n")[0]))
                              .read_text())["query"]
    ours = compile_kql(res.rule, None)
    want = [_norm_row(r) for r in kql_engine.run(con, original, NOW)]
    got = [_norm_row(r) for r in kql_engine.run(con, ours, NOW)]
    # every group here has at most 10 types and IPs, so make_set(x, 10) keeps all of them on every engine
    assert all(len(r["FindingTypes"]) <= 10 and len(r["RemoteIps"]) <= 10 for r in want)
    assert sorted(want, key=str) == sorted(got, key=str)
    mine = [{k: (sorted(v) if isinstance(v, list) else float(v) if isinstance(v, int) else v)
             for k, v in e.items()} for e in EXPECTED]
    assert sorted(({k: r[k] for k in EXPECTED[0]} for r in want), key=str) == sorted(mine, key=str)


def test_sentinel_severity_is_the_whole_part(tmp_path: Path) -> None:
    """Decision 96: the connector stores toint(severity); shaped rows hold the same."""
    binding = builtin_bindings()[("aws.guardduty", "sentinel")]
    assert [record_to_row(f, binding)["Severity"] for f in FINDINGS[5:]] == [8, 7, 6]
    row = record_to_row(FINDINGS[0], binding)
    assert (row["ActivityType"], row["TimeCreated"], orjson.loads(row["ResourceDetails"])["resourceType"]) == (
        "UnauthorizedAccess:IAMUser/MaliciousIPCaller.Custom", "2024-05-01T10:00:00Z", "AccessKey")


@pytest.mark.parametrize(("query", "kql"), [
    ("where severity >= 7", "| where todouble(Severity) >= 7"),
    ("where severity < 4.0", "| where todouble(Severity) < 4.0"),
    ("where 7 <= severity", "| where 7 <= todouble(Severity)"),
    ("where 9 > severity", "| where 9 > todouble(Severity)"),
    ("where severity > 7", None),  # 7.5 > 7, but its whole part 7 is not
    ("where severity >= 7.5", None),
    ("where severity == 8", None),
    ("summarize n = count() by severity", None),
    ("extend s = severity * 10", None),
])
def test_severity_is_read_only_where_the_whole_part_answers_the_same(tmp_path: Path, query: str,
                                                                     kql: str | None) -> None:
    rule = compile_rule(tmp_path, GD + f"query: |\n  {query}\n")
    if kql is None:
        with pytest.raises(CompileError, match="holds only its whole part"):
            compile_kql(rule, None)
    else:
        assert compile_kql(rule, None).splitlines()[1] == kql


def test_kql_passes_kusto_language(tmp_path: Path) -> None:
    from siemforge.backends.kql.validate import check_queries, checker_available

    if checker_available() is not None:
        pytest.skip(f"Kusto.Language unavailable: {checker_available()}")
    res = compile_file(_imported(tmp_path))
    assert res.rule is not None
    queries = [("hunting", compile_kql(res.rule, None)),
               ("values", compile_kql(compile_rule(tmp_path, GD + "query: |\n  summarize t = values(type, 3) "
                                                   "by a = accountId\n"), None))]
    diags = check_queries(queries, [])
    assert [[(d.code, d.message) for d in ds if d.severity == "Error"] for ds in diags] == [[], []]


def test_no_splunk_binding_says_why(tmp_path: Path) -> None:
    rule = compile_rule(tmp_path, GD + "query: |\n  where severity >= 7\n")
    with pytest.raises(CompileError, match="no Splunk documentation of the Splunk Add-on for AWS's GuardDuty"):
        compile_spl(rule, None)


def test_sql_reads_the_findings_as_the_executor_does(tmp_path: Path) -> None:
    """`no_binding_on: [splunk]`: SQL (DuckDB over the log files) is not refused, and gives the executor's rows."""
    from siemforge.backends.sql.duckdb_run import run_duckdb

    res = compile_file(_imported(tmp_path))
    assert res.rule is not None
    logs = _logs(tmp_path)
    mine = run_rule(res.rule, [logs]).rows
    theirs = run_duckdb(res.rule, [logs])
    norm = [sorted(str(sorted((k, to_text(list(v) if isinstance(v, tuple) else v)) for k, v in r.items()))
                   for r in rows) for rows in (mine, theirs)]
    assert norm[0] == norm[1] and len(mine) == 2


# ------------------------------------------------------------------------------------ values(x, N): decision 95
CAPPED = "query: |\n  summarize names = values(eventName, 2), n = count() by ip = sourceIPAddress\n"
EVENTS = [("C", "1.1.1.1"), ("A", "1.1.1.1"), ("B", "1.1.1.1"), ("B", "2.2.2.2"), ("A", "2.2.2.2")]


def test_values_with_a_limit_on_every_target(tmp_path: Path) -> None:
    rule = compile_rule(tmp_path, CT + CAPPED)
    assert "make_set_if(EventName, isnotempty(EventName), 2)" in compile_kql(rule, None)
    assert "| eval names=mvindex(names, 0, 1)" in compile_spl(rule, None).splitlines()
    flat = {d: re.sub(r"\s+", " ", compile_sql(rule, d)) for d in ("duckdb", "spark")}
    assert ('LIST_SLICE( COALESCE( LIST_SORT(ARRAY_AGG(DISTINCT "eventName") FILTER(WHERE NOT "eventName" IS NULL)), '
            '[] ), 1, 2 ) AS "names"') in flat["duckdb"]
    assert "SLICE(ARRAY_SORT(COLLECT_SET(`eventName`)), 1, 2) AS `names`" in flat["spark"]
    logs = tmp_path / "e.ndjson"
    logs.write_bytes(b"".join(orjson.dumps({"eventTime": f"2024-01-01T00:00:0{i}Z", "eventName": e,
                                            "sourceIPAddress": ip}) + b"\n" for i, (e, ip) in enumerate(EVENTS)))
    rows = {r["ip"]: r["names"] for r in run_rule(rule, [logs]).rows}
    # the executor keeps the first N in its order (by text); which N another target keeps when a group has more
    # than N is its own: only groups with at most N values are compared across engines
    assert rows == {"1.1.1.1": ["A", "B"], "2.2.2.2": ["A", "B"]}


def test_values_with_a_limit_on_duckdb_keeps_the_groups_within_it(tmp_path: Path) -> None:
    from siemforge.backends.sql.duckdb_run import run_duckdb

    rule = compile_rule(tmp_path, CT + CAPPED)
    logs = tmp_path / "e.ndjson"
    logs.write_bytes(b"".join(orjson.dumps({"eventTime": f"2024-01-01T00:00:0{i}Z", "eventName": e,
                                            "sourceIPAddress": ip}) + b"\n" for i, (e, ip) in enumerate(EVENTS)))
    rows = {r["ip"]: list(r["names"]) for r in run_duckdb(rule, [logs])}
    assert rows["2.2.2.2"] == ["A", "B"] and len(rows["1.1.1.1"]) == 2


@pytest.mark.parametrize(("agg", "message"), [
    ("values(eventName, 0)", "the limit must be at least 1"),
    ('values(eventName, "2")', "how many values it keeps at most: a whole number"),
    ("values(eventName, 2.5)", "how many values it keeps at most: a whole number"),
    ("values(eventName, 1, 2)", "at most one limit"),
    ("count(eventName, 2)", "takes 1 argument"),
    ("dcount(eventName, 2)", "takes 1 argument"),
])
def test_values_limit_errors(tmp_path: Path, agg: str, message: str) -> None:
    path = tmp_path / "rule.yml"
    path.write_text(CT + f"query: |\n  summarize v = {agg}\n")
    res = compile_file(path)
    assert res.rule is None
    assert any(message in d.message for d in res.diagnostics), [str(d) for d in res.diagnostics]


def test_make_set_limit_imports_as_values_limit() -> None:
    assert translate("AWSCloudTrail | summarize s = make_set(EventName, 3)").stages == [
        "summarize s = values(eventName, 3)"]
    with pytest.raises(Refusal, match="size limit"):
        translate("AWSCloudTrail | summarize s = make_set(EventName, -1)")
