"""The CIM views over CloudTrail (decisions 81-82): cim.authentication (console sign-ins as the Authentication data
model, the AWS add-on's definitions) and cim.change's instance fields. A rule over a view: tstats on Splunk's data
model, the expanded view on every other target; the executor's values on hand-made and real events; duckdb-kql and
DuckDB give the executor's rows."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from siemforge.backends.executor.engine import run_rule
from siemforge.backends.kql.lower import compile_kql
from siemforge.backends.spl.lower import compile_spl
from siemforge.backends.sql.duckdb_run import run_duckdb
from siemforge.compiler.bindings import builtin_bindings

import kql_engine
from helpers import compile_rule, shared_path

ID = "id: 0b9e2d4c-1f3a-4c5e-9d7b-2a6f8e1c3b5d\n"
AUTH = "title: t\n" + ID + "logsource: {product: aws, service: cloudtrail, category: authentication}\n"
CHANGE = "title: t\n" + ID + "logsource: {product: aws, service: cloudtrail, category: change}\n"
NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
T = "2024-05-01T00:00:00Z"


def compiled(tmp_path: Path, text: str) -> Any:
    return compile_rule(tmp_path, text)  # helpers.compile_rule: fails the test with the diagnostics


def run_on(tmp_path: Path, text: str, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    logs = tmp_path / "e.ndjson"
    logs.write_bytes(b"".join(orjson.dumps({"eventTime": T, **e}) + b"\n" for e in events))
    return run_rule(compiled(tmp_path, text), [logs]).rows


TARGETS = [  # rule query over cim.authentication → (Splunk on the data model, start of the KQL)
    ('where action =~ "failure" and app =~ "AwsConsoleSignIn"\n| summarize n = count() by user, src',
     '| tstats summariesonly=false fillnull_value="__siemforge_null__" count AS n from datamodel=Authentication'
     ' where Authentication.action="failure" Authentication.app="AwsConsoleSignIn"'
     " by Authentication.user Authentication.src",
     'AWSCloudTrail\n| where EventName =~ "ConsoleLogin"'),
]


@pytest.mark.parametrize(("query", "spl", "kql"), TARGETS)
def test_a_rule_over_the_authentication_view_in_each_target(tmp_path: Path, query: str, spl: str, kql: str) -> None:
    rule = compiled(tmp_path, AUTH + "query: |\n" + "".join(f"  {line}\n" for line in query.splitlines()))
    assert compile_spl(rule, None).splitlines()[0] == spl
    assert compile_kql(rule, None).startswith(kql)
    raw = compile_spl(rule, "raw")  # over raw CloudTrail: the expanded view
    assert raw.startswith('`cloudtrail` eventName="ConsoleLogin"')


def sign_in(kind: str, **more: Any) -> dict[str, Any]:
    ident: dict[str, Any] = {
        "iam": {"type": "IAMUser", "principalId": "AIDAEXAMPLE", "accountId": "111122223333", "userName": "alice"},
        "role": {"type": "AssumedRole", "principalId": "AROAEXAMPLE:bob@example.com", "accountId": "111122223333",
                 "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLE",
                                                      "userName": "Admins"}}},
        "machine": {"type": "IAMUser", "principalId": "AIDAHOST", "userName": "HOST$"},
    }[kind]
    return {"eventName": "ConsoleLogin", "eventType": "AwsConsoleSignIn", "eventSource": "signin.amazonaws.com",
            "sourceIPAddress": "203.0.113.9", "recipientAccountId": "111122223333", "userIdentity": ident,
            "responseElements": {"ConsoleLogin": "Success"}, **more}


FAIL = {"responseElements": {"ConsoleLogin": "Failure"}, "errorMessage": "Failed authentication"}
LOGIN_TO = {"additionalEventData": {"LoginTo": "https://console.aws.amazon.com/", "MFAUsed": "Yes"}}
COLUMNS = "action, user, user_id, user_type, src_user, dest, authentication_method, reason"
VIEW_ROWS = [  # one ConsoleLogin record → the view's row (the add-on's EVAL arm for it, then CIM's "unknown")
    (sign_in("iam", **LOGIN_TO), ["success", "alice", "AIDAEXAMPLE", "IAMUser", "unknown",
                                  "https://console.aws.amazon.com/", "MFA", None]),
    (sign_in("iam", **FAIL), ["failure", "alice", "AIDAEXAMPLE", "IAMUser", "unknown", "signin.amazonaws.com",
                              None, "Failed authentication"]),
    (sign_in("role", **LOGIN_TO), ["success", "bob@example.com", "AROAEXAMPLE", "AssumedRole", "unknown",
                                   "https://console.aws.amazon.com/", "MFA", None]),
    (sign_in("role"), ["success", "Admins", "AROAEXAMPLE", "Role", "bob@example.com", "signin.amazonaws.com",
                       None, None]),
    (sign_in("machine", **FAIL), ["failure", "HOST$", "AIDAHOST", "IAMUser", "unknown", "signin.amazonaws.com",
                                  None, "Failed authentication"]),
]


@pytest.mark.parametrize(("record", "row"), VIEW_ROWS)
def test_authentication_view_rows(tmp_path: Path, record: dict[str, Any], row: list[Any]) -> None:
    rows = run_on(tmp_path, AUTH + f"query: |\n  project {COLUMNS}\n", [record])
    assert rows == [dict(zip([c.strip() for c in COLUMNS.split(",")], row, strict=True))]


def test_authentication_view_holds_console_sign_ins_but_a_machine_accounts_success(tmp_path: Path) -> None:
    events = [sign_in("machine"), {"eventName": "AssumeRole", "userIdentity": {"type": "IAMUser"}},
              sign_in("iam", eventName="consolelogin")]  # eventtype searches match eventName case-insensitively
    assert run_on(tmp_path, AUTH + "query: |\n  project user, signature\n", events) == [
        {"user": "alice", "signature": "consolelogin"}]


def test_change_view_instance_type_and_user_type(tmp_path: Path) -> None:
    run = {"eventName": "RunInstances", "eventSource": "ec2.amazonaws.com",
           "userIdentity": {"type": "AssumedRole", "arn": "arn:aws:sts::1:assumed-role/ops/jo"},
           "requestParameters": {"instanceType": "p4d.24xlarge"},
           "responseElements": {"instancesSet": {"items": [{"instanceId": "i-1", "imageId": "ami-1"}]}}}
    rows = run_on(tmp_path, CHANGE + "query: |\n  project action, instance_type, user_type, user\n", [run])
    assert rows == [{"action": "created", "instance_type": "p4d.24xlarge", "user_type": "AssumedRole", "user": "jo"}]
    rule = compiled(tmp_path, CHANGE + 'query: |\n  where action =~ "created"\n  | summarize n = count() by '
                                       "instance_type, user_type\n")
    assert "by All_Changes.Instance_Changes.instance_type All_Changes.user_type" in compile_spl(rule, None)


def real_logs() -> list[Path]:
    return sorted(shared_path("data", "cloudtrail").glob("*.ndjson"))


@pytest.mark.skipif(kql_engine.duckdb_kql is None, reason="duckdb-kql is not installed")
@pytest.mark.parametrize("head", [AUTH, CHANGE])
def test_views_give_the_executors_rows_on_kql_and_sql(tmp_path: Path, head: str) -> None:
    """Real CloudTrail (panther-analysis: 24 ConsoleLogin records; EC2 lifecycle calls)."""
    cols = "_time, user, action, src" + (", user_id, dest, user_type, src_user" if head == AUTH else
                                          ", instance_type, user_type, image_id")
    rule = compiled(tmp_path, head + f"query: |\n  project {cols}\n")
    logs = real_logs()
    expected = run_rule(rule, logs, NOW).rows
    assert len(expected) >= (24 if head == AUTH else 5)
    names = [c.strip() for c in cols.split(",")]

    def key(r: dict[str, Any]) -> tuple[str, ...]:  # Sentinel's strings are never null: absent is ""
        return tuple("" if r.get(k) is None else str(kql_engine.norm(r.get(k)))[:19].replace(" ", "T")
                     for k in names)

    sentinel = builtin_bindings()[("aws.cloudtrail", "sentinel")]
    got = kql_engine.run(kql_engine.connect(sentinel, logs, {}), compile_kql(rule, None), NOW)
    assert sorted(map(key, got)) == sorted(map(key, expected))
    assert sorted(map(key, run_duckdb(rule, logs, now=NOW))) == sorted(map(key, expected))
