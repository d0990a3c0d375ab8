"""The Splunk Add-on for AWS's `action` and `status` (decision 80): its lookup on eventName and its errorCode, as
derived fields of aws.cloudtrail. The executor's values on real CloudTrail events, and the same rows from the
compiled KQL (duckdb-kql over Sentinel rows) and the compiled SQL (DuckDB)."""

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
from siemforge.compiler.api import compile_file
from siemforge.compiler.bindings import builtin_bindings

import kql_engine
from helpers import shared_path

HEAD = "title: t\nid: 0b9e2d4c-1f3a-4c5e-9d7b-2a6f8e1c3b5d\nlogsource: {product: aws, service: cloudtrail}\n"
RULE = HEAD + "query: |\n  where isnotnull(status) | project eventID, eventName, errorCode, action, status\n"
NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)

# (eventName, errorCode, responseElements) → (action, status), the add-on's table read by hand
CASES = [
    ("ConsoleLogin", None, {"ConsoleLogin": "Success"}, "success", "success"),
    ("ConsoleLogin", None, {"ConsoleLogin": "Failure"}, "failure", "failure"),  # no errorCode: EVAL says failure
    ("DeleteGroup", None, None, "deleted", "success"),
    ("DeleteGroup", "NoSuchEntity", None, "unknown", "failure"),  # its `*` row
    ("DeleteUser", "AccessDenied", None, "deleted", "failure"),  # a row for that code
    ("CreateQueue", "AccessDenied", None, "created", "success"),  # the add-on's table says so
    ("CheckMfa", "AccessDenied", None, None, None),  # only a `success` row: nothing matches
    ("GetCallerIdentity", None, None, None, None),  # not in the table
    ("deletegroup", None, None, None, None),  # a CSV lookup matches case-sensitively
]


@pytest.mark.parametrize(("event", "code", "response", "action", "status"), CASES)
def test_action_and_status_are_the_add_ons_lookup(tmp_path: Path, event: str, code: str | None,
                                                  response: Any, action: str | None, status: str | None) -> None:
    rule = tmp_path / "rule.yml"
    rule.write_text(HEAD + "query: |\n  project action, status\n")
    record: dict[str, Any] = {"eventName": event, "eventTime": "2024-05-01T00:00:00Z"}
    if code is not None:
        record["errorCode"] = code
    if response is not None:
        record["responseElements"] = response
    logs = tmp_path / "e.ndjson"
    logs.write_bytes(orjson.dumps(record) + b"\n")
    compiled = compile_file(rule).rule
    assert compiled is not None
    assert run_rule(compiled, [logs]).rows == [{"action": action, "status": status}]


def test_every_target_reads_them_from_the_record(tmp_path: Path) -> None:
    """No target depends on the add-on being installed: SPL and KQL compute them from the record's fields."""
    rule = tmp_path / "rule.yml"
    rule.write_text(HEAD + 'query: |\n  where status == "failure"\n')
    compiled = compile_file(rule).rule
    assert compiled is not None
    spl = compile_spl(compiled, None)
    assert "spath output=siemforge_path1 path=responseElements.ConsoleLogin" in spl
    assert 'if(siemforge_path1=="Failure", "failure", "success")' in spl and 'in(eventName, "AssumeRole"' not in spl
    kql = compile_kql(compiled, None)
    assert 'iff(tostring(ResponseElementsJson.ConsoleLogin) == "Failure", "failure", "success")' in kql


def real_logs() -> list[Path]:
    return sorted(shared_path("data", "cloudtrail").glob("*.ndjson"))


def test_real_events(tmp_path: Path) -> None:
    rule = tmp_path / "rule.yml"
    rule.write_text(RULE)
    compiled = compile_file(rule).rule
    assert compiled is not None
    rows = run_rule(compiled, real_logs(), NOW).rows
    seen = {(r["eventName"], r["errorCode"] or "", r["action"], r["status"]) for r in rows}
    # panther-analysis: a failed console sign-in (no errorCode; responseElements.ConsoleLogin = Failure), denied
    # AssumeRole calls, an unauthorized RunInstances
    assert ("ConsoleLogin", "", "failure", "failure") in seen
    assert ("AssumeRole", "AccessDenied", "failure", "failure") in seen
    assert ("RunInstances", "Client.UnauthorizedOperation", "created", "failure") in seen
    assert ("ConsoleLogin", "", "success", "success") in seen
    assert len(rows) > 100


@pytest.mark.skipif(kql_engine.duckdb_kql is None, reason="duckdb-kql is not installed")
def test_kql_and_sql_give_the_executors_rows_on_real_events(tmp_path: Path) -> None:
    rule = tmp_path / "rule.yml"
    rule.write_text(RULE)
    compiled = compile_file(rule).rule
    assert compiled is not None
    logs = real_logs()
    expected = run_rule(compiled, logs, NOW).rows
    sentinel = builtin_bindings()[("aws.cloudtrail", "sentinel")]
    got = kql_engine.run(kql_engine.connect(sentinel, logs, {}), compile_kql(compiled, None), NOW)

    def key(r: dict[str, Any]) -> tuple[str, ...]:  # Sentinel's strings are never null: absent is ""
        return tuple(str(r.get(k) or "") for k in ("eventID", "eventName", "errorCode", "action", "status"))

    assert sorted(map(key, got)) == sorted(map(key, expected))
    assert sorted(map(key, run_duckdb(compiled, logs, now=NOW))) == sorted(map(key, expected))
