"""Cisco Duo authentication logs (docs/sources/duo.md): the Admin API v2 authentication event made a row of Sentinel's
DuoAuthentication_CL, the KQL each rule gives there, the Splunk refusal (no documented sourcetype), SigmaHQ's
cisco_duo rule firing and silent on hand-made events, and its KQL over those events as table rows against the
executor.

No real Duo events are in shared/data: the events below are hand-made in the shape of Duo's documented example
response (https://duo.com/docs/adminapi#authentication-logs), varied in `reason`, `factor` and `result`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from siemforge.backends.executor.engine import run_rule
from siemforge.backends.executor.shapes import record_to_row
from siemforge.backends.kql.lower import compile_kql
from siemforge.backends.kql.validate import check_queries, checker_available
from siemforge.backends.spl.lower import compile_spl
from siemforge.compiler.api import compile_file
from siemforge.compiler.bindings import builtin_bindings
from siemforge.compiler.diagnostics import CompileError

from helpers import compile_rule, shared_path

NOW = datetime(2030, 1, 1, tzinfo=UTC)
DUO = "product: cisco, service: duo"
SIGMA = ("data", "sigma", "rules", "identity", "cisco_duo", "cisco_duo_mfa_bypass_via_bypass_code.yml")


def rule(*selection: str) -> str:
    return (f"title: t\nlogsource: {{{DUO}}}\ndetection:\n  sel:\n"
            + "".join(f"    {s}\n" for s in selection) + "  condition: sel\n")


def event(txid: str, reason: str, factor: str, result: str = "success", **more: Any) -> dict[str, Any]:
    """One authentication log event as GET /admin/v2/logs/authentication lists it (response.authlogs[])."""
    return {
        "txid": txid, "timestamp": 1591637123, "isotimestamp": "2020-06-08T17:25:23.415493+00:00",
        "event_type": "authentication", "result": result, "reason": reason, "factor": factor,
        "alias": "", "email": "narroway@example.com", "ood_software": None, "trusted_endpoint_status": "not trusted",
        "user": {"key": "DU3KC77WJ06Y5HIV7XKQ", "name": "narroway@example.com",
                 "groups": ["Duo Users", "CorpHQ Users"]},
        "application": {"key": "DIY231J8BR23QK4UKBY8", "name": "Microsoft Azure Active Directory"},
        "auth_device": {"ip": "192.168.225.254", "key": "DP5BJ05HI4WRBVI4Q7JF", "name": "My iPhone X (734-555-2342)",
                        "location": {"city": "Ann Arbor", "country": "United States", "state": "Michigan"}},
        "access_device": {"browser": "Chrome", "browser_version": "86.0.4240.198", "epkey": "EP18JX1A10AB102M2T2X",
                          "flash_version": "uninstalled", "hostname": None, "ip": "192.0.2.10",
                          "is_encryption_enabled": "true", "is_firewall_enabled": "true", "is_password_set": "true",
                          "java_version": "uninstalled", "os": "Windows", "os_version": "10",
                          "location": {"city": "Ann Arbor", "country": "United States", "state": "Michigan"},
                          "security_agents": []},
        "adaptive_trust_assessments": {"more_secure_auth": {"features_version": "3.0", "model_version": "2022.07",
                                                            "policy_enabled": False, "reason": "Normal level",
                                                            "trust_level": "NORMAL"}},
        **more,
    }


EVENTS = [
    event("t1", "user_approved", "duo_push"),
    event("t2", "bypass_user", "bypass_code"),                         # the SigmaHQ rule's event
    event("t3", "bypass_user", "bypass_code", event_type="enrollment"),  # same reason, not an authentication
    event("t4", "user_marked_fraud", "duo_push", result="fraud"),
    event("t5", "deny_unenrolled_user", "not_available", result="denied", access_device={"ip": "198.51.100.7"}),
]


# (rule, KQL on DuoAuthentication_CL)
KQL_CASES: list[tuple[str, str]] = [
    (rule("event_type: authentication", "reason: bypass_user"),
     'DuoAuthentication_CL\n| where (EventType =~ "authentication" and Reason =~ "bypass_user")'),
    (rule("result: [denied, fraud]", "user.name|endswith: '@example.com'"),
     'DuoAuthentication_CL\n| where ((Result =~ "denied" or Result =~ "fraud") and UserName endswith "@example.com")'),
    (rule("access_device.ip|startswith: '198.51.100.'", "application.name|contains: Azure"),
     'DuoAuthentication_CL\n| where (AccessDeviceIp startswith "198.51.100." and ApplicationName contains "Azure")'),
]


@pytest.mark.parametrize("text,kql", KQL_CASES)
def test_rule_to_kql(text: str, kql: str, tmp_path: Path) -> None:
    assert compile_kql(compile_rule(tmp_path, text), None) == kql


@pytest.mark.parametrize("text,target,says", [
    (rule("reason: bypass_user"), "splunk", "no Splunk binding for source 'cisco.duo': no Splunk documentation of a "
                                            "sourcetype for Duo authentication logs"),
    # the transform drops the record's own time fields to datetime/real columns: not the record's text/integer
    (rule("isotimestamp|startswith: '2020-'"), "sentinel", "field 'isotimestamp' has no column in the "
                                                           "DuoAuthentication_CL"),
    (rule("timestamp: 1591637123"), "sentinel", "field 'timestamp' has no column in the DuoAuthentication_CL"),
])
def test_refusals_name_their_reason(text: str, target: str, says: str, tmp_path: Path) -> None:
    r = compile_rule(tmp_path, text)
    with pytest.raises(CompileError) as exc:
        (compile_kql if target == "sentinel" else compile_spl)(r, None)
    assert says in str(exc.value)


def test_sigma_logsource_picks_the_source(tmp_path: Path) -> None:
    assert compile_rule(tmp_path, rule("x: 1")).pipeline.source.name == "cisco.duo"


# (event, the row of DuoAuthentication_CL the binding makes: the columns a rule can name; a dynamic column's
# value as the JSON text the row file holds)
ROW_CASES: list[tuple[dict[str, Any], dict[str, Any]]] = [
    (EVENTS[1], {"TxId": "t2", "EventType": "authentication", "Result": "success", "Reason": "bypass_user",
                 "Factor": "bypass_code", "UserName": "narroway@example.com", "UserKey": "DU3KC77WJ06Y5HIV7XKQ",
                 "UserGroups": '["Duo Users","CorpHQ Users"]', "ApplicationName": "Microsoft Azure Active Directory",
                 "AuthDeviceCity": "Ann Arbor", "AccessDeviceIp": "192.0.2.10", "AccessDeviceOs": "Windows",
                 "AccessDeviceIsEncryptionEnabled": "true"}),
    (EVENTS[4], {"TxId": "t5", "Result": "denied", "AccessDeviceIp": "198.51.100.7", "AccessDeviceOs": ""}),  # tostring() of no member
]


@pytest.mark.parametrize("record,row", ROW_CASES)
def test_an_event_is_a_row_of_the_table(record: dict[str, Any], row: dict[str, Any]) -> None:
    got = record_to_row(record, builtin_bindings()[("cisco.duo", "sentinel")])
    assert {c: got.get(c) for c in row} == row
    assert got["TimeGenerated"] == "2020-06-08T17:25:23.415493Z"  # the transform's todatetime(isotimestamp)


def write(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    return path


def test_sigma_rule_fires_on_the_bypass_code_authentication_only(tmp_path: Path) -> None:
    """SigmaHQ's rule on the events as the API lists them: t2 only (t3 is an enrollment with the same reason)."""
    sigma = compile_file(shared_path(*SIGMA)).rule
    assert sigma is not None and sigma.pipeline.source.name == "cisco.duo"
    res = run_rule(sigma, [write(tmp_path / "authlogs.ndjson", EVENTS)], NOW, {}, workers=1)
    assert res.malformed == []
    assert [r["txid"] for r in res.rows] == ["t2"]
    # the event's time is its isotimestamp
    timed = compile_rule(tmp_path, f"title: t\nlogsource: {{{DUO}}}\nquery: 'where txid == \"t2\" | project _time'\n")
    assert [r["_time"] for r in run_rule(timed, [tmp_path / "authlogs.ndjson"], NOW, {}).rows] == [
        datetime(2020, 6, 8, 17, 25, 23, 415493, tzinfo=UTC)]


def test_sigma_rule_kql_on_rows_matches_the_executor(tmp_path: Path) -> None:
    """The events written as DuoAuthentication_CL rows, the rule's KQL run by duckdb-kql and the executor through
    the binding: the same transaction."""
    import kql_engine

    if kql_engine.duckdb_kql is None:
        pytest.skip("duckdb-kql is not installed")
    raw = write(tmp_path / "authlogs.ndjson", EVENTS)
    b = builtin_bindings()[("cisco.duo", "sentinel")]
    rows = kql_engine.write_rows(b, [raw], tmp_path / "rows.ndjson")
    con = kql_engine.connect(b, [raw], {})
    for text, _ in KQL_CASES:
        r = compile_rule(tmp_path, text)
        expected = [row["txid"] for row in run_rule(r, [rows], NOW, {}, binding=b, workers=1).rows]
        assert expected == [row["txid"] for row in run_rule(r, [raw], NOW, {}, workers=1).rows]
        got = [row["TxId"] for row in kql_engine.run(con, compile_kql(r, None), NOW)]
        assert sorted(got) == sorted(expected), text
    assert [row["TxId"] for row in kql_engine.run(con, KQL_CASES[0][1], NOW)] == ["t2"]


@pytest.mark.slow
def test_sigma_rule_and_cases_on_sentinel_pass_kusto_language() -> None:
    """The SigmaHQ rule and the cases give zero Kusto.Language diagnostics against the binding's `schema:`."""
    reason = checker_available()
    if reason:
        pytest.skip(f"Kusto.Language unavailable: {reason}")
    sigma = compile_file(shared_path(*SIGMA)).rule
    assert sigma is not None
    queries = [(f"case {i}", kql) for i, (_, kql) in enumerate(KQL_CASES)] + [("sigma", compile_kql(sigma, None))]
    results = check_queries(queries, [])
    assert [(n, d.message) for (n, _), r in zip(queries, results) for d in r] == []
