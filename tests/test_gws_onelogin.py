"""Google Workspace and OneLogin sources (docs/sources/saas.md): the Reports API activity made one row per event, the
SPL each SigmaHQ rule gives on the Splunk Add-on for Google Workspace and the KQL on Sentinel's GoogleWorkspaceReports
and OneLoginEventsV2_CL, the refusals (a parameter on Splunk; OneLogin: no Splunk add-on), SigmaHQ's rules firing and
silent on the shared Panther events, and their KQL over those events as table rows against the executor.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import lark
import orjson
import pytest

from siemforge.backends.executor.engine import run_rule
from siemforge.backends.executor.reader import Reports, iter_events
from siemforge.backends.kql.lower import compile_kql
from siemforge.backends.kql.validate import check_queries, checker_available
from siemforge.backends.spl.lower import FEATURES as SPL
from siemforge.backends.spl.lower import compile_spl
from siemforge.compiler.api import compile_file, discover_rules
from siemforge.compiler.bindings import builtin_bindings
from siemforge.compiler.diagnostics import CompileError
from siemforge.compiler.lowering import bind

from helpers import ROOT, compile_rule, shared_path

NOW = datetime(2030, 1, 1, tzinfo=UTC)
ADMIN = "product: gcp, service: google_workspace.admin"
LOGIN = "product: gcp, service: google_workspace.login"
ONELOGIN = "product: onelogin, service: onelogin.events"
SERVICE = ('if(\'id.applicationName\'=="admin", "admin.googleapis.com", '
           'if(\'id.applicationName\'=="login", "login.googleapis.com", ""))')


def rule(logsource: str, *selection: str) -> str:
    return (f"title: t\nlogsource: {{{logsource}}}\ndetection:\n  sel:\n"
            + "".join(f"    {s}\n" for s in selection) + "  condition: sel\n")


# (rule, SPL on the Splunk Add-on for Google Workspace)
CASES: list[tuple[str, str]] = [
    (rule(ADMIN, "eventService: admin.googleapis.com", "eventName: [DELETE_ROLE, UPDATE_ROLE]"),
     f'`gws_reports_admin` (events{{}}.name="DELETE_ROLE" OR events{{}}.name="UPDATE_ROLE")\n'
     f'| where lower({SERVICE})=="admin.googleapis.com"'),
    (rule(LOGIN, "protoPayload.serviceName: login.googleapis.com",
          "protoPayload.metadata.event.eventName: suspicious_login", "actor.email|endswith: '@example.com'"),
     f'`gws_reports_login` events{{}}.name="suspicious_login"\n'
     f'| where lower({SERVICE})=="login.googleapis.com" AND match(\'actor.email\', "(?i)@example\\\\.com\\\\z")'),
]


@pytest.mark.parametrize("text,spl", CASES)
def test_rule_to_spl(text: str, spl: str, tmp_path: Path) -> None:
    assert compile_spl(compile_rule(tmp_path, text), None) == spl


def test_case_searches_parse_with_the_spl_grammar() -> None:
    parser = lark.Lark((ROOT / "grammars" / "spl.lark").read_text(), parser="earley", lexer="dynamic")
    for _, spl in CASES:
        parser.parse(spl)


GWS_SERVICE = ('iff(IdApplicationName == "admin", "admin.googleapis.com", iff(IdApplicationName == "login", '
               '"login.googleapis.com", ""))')

# (rule, KQL on the default Sentinel binding: GoogleWorkspaceReports, the application's rows; OneLoginEventsV2_CL)
KQL_CASES: list[tuple[str, str]] = [
    (rule(ADMIN, "eventService: admin.googleapis.com", "eventName: [DELETE_ROLE, UPDATE_ROLE]"),
     'GoogleWorkspaceReports\n| where IdApplicationName == "admin"\n'
     f'| where ({GWS_SERVICE} =~ "admin.googleapis.com" and (EventMessage =~ "DELETE_ROLE" or '
     'EventMessage =~ "UPDATE_ROLE"))'),
    # the event's parameters are the columns the connector's transform fills: SETTING_NAME -> ProcessName,
    # NEW_VALUE -> NeqValue (sic), ROLE_NAME -> RoleName
    (rule(ADMIN, "setting_name|startswith: ContextAwareAccess", "new_value: 'false'", "parameters.ROLE_NAME: r"),
     'GoogleWorkspaceReports\n| where IdApplicationName == "admin"\n'
     '| where (ProcessName startswith "ContextAwareAccess" and NeqValue =~ "false" and RoleName =~ "r")'),
    (rule(LOGIN, "protoPayload.metadata.event.eventName: suspicious_login", "actor.email|endswith: '@example.com'",
          "parameters.is_suspicious: 'true'"),
     'GoogleWorkspaceReports\n| where IdApplicationName == "login"\n'
     '| where (EventMessage =~ "suspicious_login" and ActorEmail endswith "@example.com" and '
     'IsSuspicious == tobool("true"))'),
    (rule(ONELOGIN, "event_type_id: [532, 553]", "user_name|contains: Homer"),
     'OneLoginEventsV2_CL\n| where ((EventTypeId == 532 or EventTypeId == 553) and UserName contains "Homer")'),
]


@pytest.mark.parametrize("text,kql", KQL_CASES)
def test_rule_to_kql(text: str, kql: str, tmp_path: Path) -> None:
    assert compile_kql(compile_rule(tmp_path, text), None) == kql


@pytest.mark.parametrize("text,target,says", [
    (rule(ADMIN, "new_value: 'false'"), "splunk", "'parameters.NEW_VALUE' has no Splunk field"),
    # no column holds the activity's ipAddress (the transform reads a stream column `IPAddress`), nor an event
    # parameter the transform does not name
    (rule(ADMIN, "ipAddress: 192.0.2.7"), "sentinel", "field 'ipAddress' has no column in the GoogleWorkspaceReports"),
    (rule(ADMIN, "parameters.IDS: x"), "sentinel", "field 'parameters.IDS' has no column in the GoogleWorkspaceReports"),
    (rule(ONELOGIN, "group_name: admins"), "sentinel", "field 'group_name' has no column in the OneLoginEventsV2_CL"),
    (rule(ONELOGIN, "event_type_id: 3"), "splunk", "no Splunk add-on for OneLogin with a documented sourcetype"),
])
def test_refusals_name_their_reason(text: str, target: str, says: str, tmp_path: Path) -> None:
    r = compile_rule(tmp_path, text)
    with pytest.raises(CompileError) as exc:
        (compile_kql if target == "sentinel" else compile_spl)(r, None)
    assert says in str(exc.value)


def test_sigma_logsources_pick_the_sources(tmp_path: Path) -> None:
    assert compile_rule(tmp_path, rule(ADMIN, "x: 1")).pipeline.source.name == "google_workspace.admin"
    assert compile_rule(tmp_path, rule(LOGIN, "x: 1")).pipeline.source.name == "google_workspace.login"
    assert compile_rule(tmp_path, rule(ONELOGIN, "x: 1")).pipeline.source.name == "onelogin.events"


def test_generated_sources_and_bindings_are_up_to_date(tmp_path: Path) -> None:
    (tmp_path / "bindings").mkdir()
    shared = shared_path("reference", "sentinel").parents[1]
    subprocess.run([sys.executable, str(ROOT / "tools" / "gen_saas_sources.py"), "--shared", str(shared),
                    "--out", str(tmp_path)], check=True)
    for pattern in ("google_workspace_*.yml", "onelogin_*.yml", "bindings/google_workspace_*.yml",
                    "bindings/onelogin_*.yml"):
        made = {p.name: p.read_text(encoding="utf-8") for p in tmp_path.glob(pattern)}
        have = {p.name: p.read_text(encoding="utf-8") for p in (ROOT / "sources").glob(pattern)}
        assert made and made == have, pattern


# --- the reader ---------------------------------------------------------------------------------------------------

ACTIVITY = {"kind": "admin#reports#activity", "etag": "\"e\"",
            "id": {"time": "2024-05-01T10:00:00.123Z", "uniqueQualifier": "-1", "applicationName": "admin",
                   "customerId": "C01"},
            "actor": {"callerType": "USER", "email": "admin@example.com", "profileId": "9"}, "ipAddress": "192.0.2.7",
            "events": [{"type": "SECURITY_SETTINGS", "name": "ENFORCE_STRONG_AUTHENTICATION",
                        "parameters": [{"name": "ORG_UNIT_NAME", "value": "/"},
                                       {"name": "OLD_VALUE", "value": "true"},
                                       {"name": "NEW_VALUE", "value": "false"}]},
                       {"type": "DELEGATED_ADMIN_SETTINGS", "name": "DELETE_ROLE",
                        "parameters": [{"name": "ROLE_NAME", "value": "r"}, {"name": "IDS", "multiValue": ["a", "b"]},
                                       {"name": "N", "intValue": "3"}, {"name": "B", "boolValue": True},
                                       {"name": "M", "messageValue": {"parameter": [{"name": "k", "value": "v"}]}}]}]}


def test_an_activity_is_one_row_per_event(tmp_path: Path) -> None:
    """The API's events[] exploded, each event's parameters[] an object by name (value, multiValue, intValue,
    boolValue, messageValue's parameters); an activities.list page is its items; the time is id.time."""
    log = tmp_path / "activities.ndjson"
    page = {"kind": "admin#reports#activities",
            "items": [{**ACTIVITY, "id": {**ACTIVITY["id"], "time": "2024-05-01T11:00:00Z"},  # type: ignore[dict-item]
                       "events": [{"type": "x", "name": "CREATE_ROLE"}]}]}
    log.write_bytes(orjson.dumps(ACTIVITY) + b"\n" + orjson.dumps(page) + b"\n")
    text = f"title: t\nlogsource: {{{ADMIN}}}\nquery: 'project _time, name, type, eventService, parameters'\n"
    res = run_rule(compile_rule(tmp_path, text), [log], NOW, {})
    assert res.malformed == []
    assert [(r["_time"], r["name"], r["type"], r["eventService"], r["parameters"]) for r in res.rows] == [
        (datetime(2024, 5, 1, 10, 0, 0, 123000, tzinfo=UTC), "ENFORCE_STRONG_AUTHENTICATION", "SECURITY_SETTINGS",
         "admin.googleapis.com", {"ORG_UNIT_NAME": "/", "OLD_VALUE": "true", "NEW_VALUE": "false"}),
        (datetime(2024, 5, 1, 10, 0, 0, 123000, tzinfo=UTC), "DELETE_ROLE", "DELEGATED_ADMIN_SETTINGS",
         "admin.googleapis.com", {"ROLE_NAME": "r", "IDS": ["a", "b"], "N": "3", "B": True, "M": {"k": "v"}}),
        (datetime(2024, 5, 1, 11, tzinfo=UTC), "CREATE_ROLE", "x", "admin.googleapis.com", None)]
    # SigmaHQ's MFA-disabled rule fires on the first event only
    sigma = compile_file(shared_path("data", "sigma", "rules", "cloud", "gcp", "gworkspace", "admin",
                                     "gcp_gworkspace_mfa_disabled.yml")).rule
    assert sigma is not None
    assert [r["name"] for r in run_rule(sigma, [log], NOW, {}).rows] == ["ENFORCE_STRONG_AUTHENTICATION"]


@pytest.mark.parametrize("record,why", [
    ({**ACTIVITY, "events": {"name": "x"}}, "1: skipped: Google Workspace activity: `events` is not an array"),
    ({**ACTIVITY, "events": ["x"]}, "1: skipped: Google Workspace activity: event 1 is not an object"),
    ({**ACTIVITY, "events": [{"name": "x", "parameters": [{"value": "v"}]}]},
     "1: skipped: Google Workspace activity: event 1: parameter 1 is not an object with a `name`"),
    ({**ACTIVITY, "events": [{"name": "x", "parameters": {"a": 1}}]},
     "1: skipped: Google Workspace activity: event 1: `parameters` is not an array"),
    ({"kind": "admin#reports#activities", "items": [ACTIVITY, 3]},
     "1: skipped: item 2 of the activities page: not a JSON object"),
])
def test_a_malformed_activity_is_reported_by_line(record: dict[str, object], why: str, tmp_path: Path) -> None:
    log = tmp_path / "bad.ndjson"
    log.write_bytes(orjson.dumps(record) + b"\n" + orjson.dumps(ACTIVITY) + b"\n")
    reports = Reports()
    rows = list(iter_events(log, reports))
    assert len(rows) == 2  # the good activity's two events
    assert reports.total == 1 and str(reports.kept[0]).endswith(why), reports.kept


def test_a_malformed_activity_in_a_json_array_is_reported_by_record(tmp_path: Path) -> None:
    log = tmp_path / "bad.json"
    log.write_bytes(orjson.dumps([ACTIVITY, {**ACTIVITY, "events": 5}]))
    reports = Reports()
    assert len(list(iter_events(log, reports))) == 2
    assert reports.total == 1 and "`events` is not an array" in str(reports.kept[0])


def test_shared_events_read_without_report() -> None:
    reports = Reports()
    gws = list(iter_events(shared_path("data", "identity", "google-workspace", "panther-analysis.ndjson"), reports))
    one = list(iter_events(shared_path("data", "identity", "onelogin", "panther-analysis.ndjson"), reports))
    assert reports.total == 0 and len(gws) == 83 and len(one) == 17


# --- SigmaHQ's rules ----------------------------------------------------------------------------------------------

def sigma() -> list[Path]:
    return (discover_rules([shared_path("data", "sigma", "rules", "cloud", "gcp", "gworkspace")])
            + discover_rules([shared_path("data", "sigma", "rules", "identity", "onelogin")]))


def test_sigma_rules_on_splunk_bound_or_refused_with_a_reason() -> None:
    """The 10 google_workspace rules compile; 9 bind to the add-on and parse with spl.lark, the one on an event
    parameter (setting_name) is refused by name. The mfa_disabled rule's new_value too: 8 searches. OneLogin's 2 are
    refused: no add-on."""
    parser = lark.Lark((ROOT / "grammars" / "spl.lark").read_text(), parser="earley", lexer="dynamic")
    bound: dict[str, int] = {}
    refused: dict[str, str] = {}
    files = sigma()
    assert len(files) == 12
    for f in files:
        res = compile_file(f)
        assert res.rule is not None, f.name
        try:
            parser.parse(compile_spl(res.rule, None))
        except CompileError as exc:
            refused[f.name] = "no column" if "has no Splunk field" in str(exc) else "no binding"
            continue
        b = bind(res.rule, SPL, None).binding
        assert b is not None, f.name
        bound[b.source] = bound.get(b.source, 0) + 1
    assert bound == {"google_workspace.admin": 5, "google_workspace.login": 3}
    assert refused == {"gcp_gworkspace_application_access_levels_modified.yml": "no column",
                       "gcp_gworkspace_mfa_disabled.yml": "no column",
                       "onelogin_assumed_another_user.yml": "no binding",
                       "onelogin_user_account_locked.yml": "no binding"}


def test_sigma_rules_fire_and_stay_silent_on_the_shared_events() -> None:
    """Panther's events (google-workspace/ line 1 DELETE_ROLE, 2 CREATE_ROLE; 20 email_forwarding_out_of_domain of
    the user_accounts application, 21 of login; 59 "suspicious_login " with a trailing space; onelogin/ 16 and 17
    event_type_id "553" and "551" as text)."""
    logs = [shared_path("data", "identity", d, "panther-analysis.ndjson") for d in ("google-workspace", "onelogin")]
    rows: dict[str, list[object]] = {}
    for f in sigma():
        r = compile_file(f).rule
        assert r is not None
        got = run_rule(r, logs, NOW, {}, workers=1).rows
        if got:
            rows[f.name] = [row.get("name") or row.get("event_type_id") for row in got]
    assert rows == {"gcp_gworkspace_role_modified_or_deleted.yml": ["DELETE_ROLE"],
                    "gcp_gworkspace_out_of_domain_email_forwarding.yml": ["email_forwarding_out_of_domain"],
                    "onelogin_user_account_locked.yml": ["553", "551"]}


@pytest.mark.slow
def test_sigma_rules_and_cases_on_sentinel_pass_kusto_language() -> None:
    """All 12 SigmaHQ rules compile: 7 admin and 3 login rules on GoogleWorkspaceReports, 2 OneLogin rules on
    OneLoginEventsV2_CL; they and the table's cases give zero Kusto.Language diagnostics against the tables' schemas
    (the bindings' `schema:`)."""
    reason = checker_available()
    if reason:
        pytest.skip(f"Kusto.Language unavailable: {reason}")
    queries = [(f"case {i}", kql) for i, (_, kql) in enumerate(KQL_CASES)]
    for f in sigma():
        res = compile_file(f)
        assert res.rule is not None, f.name
        queries.append((f.name, compile_kql(res.rule, None)))
    results = check_queries(queries, [])
    assert [(n, d.message) for (n, _), r in zip(queries, results) for d in r] == []
    tables = sorted(q.split("\n", 1)[0] for n, q in queries if not n.startswith("case"))
    assert tables == ["GoogleWorkspaceReports"] * 10 + ["OneLoginEventsV2_CL"] * 2


@pytest.mark.parametrize("vendor,source,id_column,id_field", [
    ("google-workspace", "google_workspace.admin", "EventMessage", "name"),
    ("google-workspace", "google_workspace.login", "EventMessage", "name"),
    ("onelogin", "onelogin.events", "EventId", "id"),
])
def test_sigma_rules_kql_on_rows_matches_the_executor(vendor: str, source: str, id_column: str, id_field: str,
                                                      tmp_path: Path) -> None:
    """The shared events written as rows of the Sentinel table (the binding forwards), then read by duckdb-kql running
    the compiled KQL and by the executor through the binding (backwards): the same rows. On the raw events the
    executor gives as many: every SigmaHQ Workspace rule tests the application (eventService), which on the table is
    the binding's row filter too."""
    import kql_engine

    if kql_engine.duckdb_kql is None:
        pytest.skip("duckdb-kql is not installed")
    raw = shared_path("data", "identity", vendor, "panther-analysis.ndjson")
    b = builtin_bindings()[(source, "sentinel")]
    rows = kql_engine.write_rows(b, [raw], tmp_path / "rows.ndjson")
    # DuckDB's names are case-insensitive: of the table's OldValue and Oldvalue (KQL tells them
    # apart), DuckDB gets the one the binding maps
    mapped = set(b.columns.values())
    folded = {c.lower() for c in mapped}
    schema = {c: t for c, t in b.schema.items() if c in mapped or c.lower() not in folded}
    con = kql_engine.connect(replace(b, schema=schema), [raw], {})
    files = [f for f in sigma() if (compile_file(f).rule or pytest.fail(f.name)).pipeline.source.name == source]
    fired: dict[str, int] = {}
    different = []
    for f in files:
        r = compile_file(f).rule
        assert r is not None
        expected = run_rule(r, [rows], NOW, {}, binding=b, workers=1)
        assert len(run_rule(r, [raw], NOW, {}, workers=1).rows) == len(expected.rows), f.name
        got = kql_engine.run(con, compile_kql(r, None), NOW)
        if kql_engine.comparable(got, r, id_column) != kql_engine.comparable(expected.rows, r, id_field):
            different.append(f"{f.name}: executor {len(expected.rows)} rows, KQL {len(got)}")
        if expected.rows:
            fired[f.name] = len(expected.rows)
    assert different == []
    assert fired == {"google_workspace.admin": {"gcp_gworkspace_role_modified_or_deleted.yml": 1},
                     "google_workspace.login": {"gcp_gworkspace_out_of_domain_email_forwarding.yml": 1},
                     "onelogin.events": {"onelogin_user_account_locked.yml": 2}}[source]
    assert len(files) == {"google_workspace.admin": 7, "google_workspace.login": 3, "onelogin.events": 2}[source]
