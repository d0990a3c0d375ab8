"""Identity and SaaS sources (docs/sources/saas.md): the Okta System Log, the GitHub audit log, GCP Cloud Audit.

Tables of Sigma rules and the KQL and SPL each gives; the Sigma name no field holds, refused by name; the reader on
the shapes the data has (timestamps in several forms, Okta_CL rows typed by suffix but exported as text); SigmaHQ's
okta and github rules on both targets, and their KQL over the shared events as table rows against the executor.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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
from siemforge.compiler.sources import builtin_sources

from helpers import ROOT, bundled_cases, compile_rule, shared_path

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def rule(logsource: str, *selection: str) -> str:
    return (f"title: t\nlogsource: {{{logsource}}}\ndetection:\n  sel:\n"
            + "".join(f"    {s}\n" for s in selection) + "  condition: sel\n")


OKTA = "product: okta, service: okta"
GITHUB = "product: github, service: audit"
GCP = "product: gcp, service: gcp.audit"

# (rule, binding, KQL on that Sentinel binding, SPL on the default Splunk binding)
CASES: list[tuple[str, str | None, str, str]] = [
    (rule(OKTA, "eventType: policy.lifecycle.delete", "securityContext.isProxy: 'true'",
          "debugContext.debugData.requestUri|contains: /admin"), None,
     'OktaSSO\n| where (eventType_s =~ "policy.lifecycle.delete" and securityContext_isProxy_b == tobool("true") and debugContext_debugData_requestUri_s contains "/admin")',
     '`okta` eventType="policy.lifecycle.delete"\n| where lower(\'securityContext.isProxy\')=="true" AND match(\'debugContext.debugData.requestUri\', "(?i)\\\\/admin")'),
    (rule(OKTA, "eventType: policy.lifecycle.delete", "securityContext.isProxy: 'true'",
          "debugContext.debugData.requestUri|contains: /admin"), "Okta_CL",
     'Okta_CL\n| where (eventType_s =~ "policy.lifecycle.delete" and securityContext_isProxy_b == tobool("true") and debugContext_debugData_requestUri_s contains "/admin")',
     '`okta` eventType="policy.lifecycle.delete"\n| where lower(\'securityContext.isProxy\')=="true" AND match(\'debugContext.debugData.requestUri\', "(?i)\\\\/admin")'),
    (rule(OKTA, "actor.alternateId|re: '^[^@]+$'", "outcome.result: FAILURE", "target|contains: Okta Admin Console"),
     None,
     'OktaSSO\n| extend target_sJson = parse_json(target_s)\n| where (actor_alternateId_s matches regex @"^[^@]+$" and outcome_result_s =~ "FAILURE" and tostring(target_sJson) contains "Okta Admin Console")\n| project-away target_sJson',
     '`okta`\n| spath output=siemforge_path1 path=target\n| where match(\'actor.alternateId\', "^[^@]+$") AND lower(\'outcome.result\')=="failure" AND match(siemforge_path1, "(?i)Okta\\\\ Admin\\\\ Console")\n| fields - siemforge_path1'),
    (rule(GITHUB, "action|startswith: org.", "actor_location.country_code: RU", "actor_is_bot: 'false'"), None,
     'GitHubAuditLogPolling_CL\n| where (action_s startswith "org." and actor_location_country_code_s =~ "RU" and actor_is_bot_b == tobool("false"))',
     '`github_enterprise` action="org.*" actor_is_bot="false"\n| where lower(\'actor_location.country_code\')=="ru"'),
    (rule(GCP, "gcp.audit.method_name|endswith: .SetIamPolicy", "data.protoPayload.serviceName: iam.googleapis.com",
          "protoPayload.requestMetadata.callerIp: 1.2.3.4", "logName|endswith: '%2Factivity'"), None,
     'GCPAuditLogs\n| where (MethodName endswith ".SetIamPolicy" and ServiceName =~ "iam.googleapis.com" and tostring(RequestMetadata.callerIp) =~ "1.2.3.4" and LogName endswith "%2Factivity")',
     '`gcp_pubsub_message` data.logName="*%2Factivity"\n| spath output=siemforge_path1 path=data.protoPayload.requestMetadata.callerIp\n| where match(\'data.protoPayload.methodName\', "(?i)\\\\.SetIamPolicy\\\\z") AND lower(\'data.protoPayload.serviceName\')=="iam.googleapis.com" AND lower(siemforge_path1)=="1.2.3.4"\n| fields - siemforge_path1'),
]


@pytest.mark.parametrize("text,binding,kql,spl", CASES)
def test_rule_to_kql_and_spl(text: str, binding: str | None, kql: str, spl: str, tmp_path: Path) -> None:
    compiled = compile_rule(tmp_path, text)
    assert compile_kql(compiled, binding) == kql
    assert compile_spl(compiled, None) == spl


def test_case_queries_pass_kusto_language_and_spl_grammar() -> None:
    reason = checker_available()
    if reason:
        pytest.skip(f"Kusto.Language unavailable: {reason}")
    results = check_queries([(f"case {i}", k) for i, (_, _, k, _) in enumerate(CASES)], [])
    assert [[d.message for d in r] for r in results] == [[] for _ in CASES]
    parser = lark.Lark((ROOT / "grammars" / "spl.lark").read_text(), parser="earley", lexer="dynamic")
    for _, _, _, spl in CASES:
        parser.parse(spl)


@pytest.mark.parametrize("target,says", [("sentinel", "mv-apply"), ("splunk", "target{}")])
def test_a_member_of_the_target_array_is_some_target(target: str, says: str, tmp_path: Path) -> None:
    """`target` is an array: `target.displayName` means some target's displayName (semantics decision 28)."""
    r = compile_rule(tmp_path, rule(OKTA, "target.displayName: Okta Admin Console"))
    assert says in (compile_kql if target == "sentinel" else compile_spl)(r, None)
    logs = tmp_path / "okta.ndjson"
    events = [{"uuid": "1", "published": "2024-06-01T10:00:00Z",
               "target": [{"displayName": "x"}, {"displayName": "Okta Admin Console"}]},
              {"uuid": "2", "published": "2024-06-01T10:00:00Z", "target": [{"displayName": "x"}]},
              {"uuid": "3", "published": "2024-06-01T10:00:00Z", "target": []}]
    logs.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    rows = run_rule(r, [logs], datetime(2024, 6, 1, 12, tzinfo=UTC), {}).rows
    assert [row["uuid"] for row in rows] == ["1"]


def test_sigma_logsources_pick_the_sources(tmp_path: Path) -> None:
    assert compile_rule(tmp_path, rule(OKTA, "x: 1")).pipeline.source.name == "okta.okta"
    assert compile_rule(tmp_path, rule(GITHUB, "x: 1")).pipeline.source.name == "github.audit"
    assert compile_rule(tmp_path, rule(GCP, "x: 1")).pipeline.source.name == "gcp.audit"


def test_an_authorization_info_member_is_some_entry(tmp_path: Path) -> None:
    r = compile_rule(tmp_path, rule(GCP, "data.protoPayload.authorizationInfo.granted: 'true'"))
    assert "mv-apply" in compile_kql(r, None)
    assert "authorizationInfo{}" in compile_spl(r, None)


def test_generated_sources_and_bindings_are_up_to_date(tmp_path: Path) -> None:
    """sources/{okta,github}_*.yml and their bindings are what tools/gen_saas_sources.py writes."""
    (tmp_path / "bindings").mkdir()
    shared = shared_path("reference", "sentinel").parents[1]
    subprocess.run([sys.executable, str(ROOT / "tools" / "gen_saas_sources.py"), "--shared", str(shared),
                    "--out", str(tmp_path)], check=True)
    for pattern in ("okta_*.yml", "github_*.yml", "gcp_*.yml", "bindings/okta_*.yml", "bindings/github_*.yml",
                    "bindings/gcp_*.yml"):
        made = {p.name: p.read_text(encoding="utf-8") for p in tmp_path.glob(pattern)}
        have = {p.name: p.read_text(encoding="utf-8") for p in (ROOT / "sources").glob(pattern)}
        assert made and made == have, pattern
    bindings = builtin_bindings()
    assert bindings[("okta.okta", "sentinel")].table == "OktaSSO"
    assert bindings[("okta.okta", "Okta_CL")].table == "Okta_CL"
    assert bindings[("okta.okta", "OktaV2_CL")].table == "OktaV2_CL"
    assert bindings[("github.audit", "sentinel")].table == "GitHubAuditLogPolling_CL"
    assert bindings[("gcp.audit", "sentinel")].table == "GCPAuditLogs"


# --- readers ------------------------------------------------------------------------------------------------------

def test_okta_timestamps_as_the_data_has_them(tmp_path: Path) -> None:
    """`published` with a space and no zone, nine fractional digits, ISO with Z; "redacted" is no time."""
    text = f"title: t\nlogsource: {{{OKTA}}}\nquery: 'project t = _time, u = tostring(uuid)'\n"
    log = tmp_path / "log.ndjson"
    log.write_bytes(b"\n".join(orjson.dumps({"uuid": str(i), "eventType": "user.session.start", "published": t})
                               for i, t in enumerate(("2022-03-22 14:21:53.225", "2023-06-12 22:26:01.951000000",
                                                      "2024-01-02T03:04:05.678Z", "redacted"))))
    res = run_rule(compile_rule(tmp_path, text), [log], NOW, {})
    assert [(r["u"], r["t"]) for r in res.rows] == [
        ("0", datetime(2022, 3, 22, 14, 21, 53, 225000, tzinfo=UTC)),
        ("1", datetime(2023, 6, 12, 22, 26, 1, 951000, tzinfo=UTC)),
        ("2", datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)),
        ("3", None)]
    assert res.malformed == []


def test_github_epoch_milliseconds_and_text_times(tmp_path: Path) -> None:
    text = f"title: t\nlogsource: {{{GITHUB}}}\nquery: 'project t = _time, a = action'\n"
    log = tmp_path / "log.ndjson"
    log.write_bytes(b"\n".join(orjson.dumps({"action": str(i), "created_at": t})
                               for i, t in enumerate((1621305118553, "2022-12-11 22:40:20.268",
                                                      "2021-05-28T18:39:50Z"))))
    res = run_rule(compile_rule(tmp_path, text), [log], NOW, {})
    assert [r["t"] for r in res.rows] == [datetime(2021, 5, 18, 2, 31, 58, 553000, tzinfo=UTC),
                                          datetime(2022, 12, 11, 22, 40, 20, 268000, tzinfo=UTC),
                                          datetime(2021, 5, 28, 18, 39, 50, tzinfo=UTC)]


def _hook(events: list[Any], n: int) -> dict[str, Any]:
    """An Okta event hook delivery as Okta POSTs it (developer.okta.com/docs/concepts/event-hooks, sample payload)."""
    return {"eventType": "com.okta.event_hook", "eventTypeVersion": "1.0", "cloudEventsVersion": "0.1",
            "source": "https://example.okta.com/api/v1/eventHooks/who1", "eventId": f"hook-{n}",
            "eventTime": "2023-05-26T20:30:00.000Z", "contentType": "application/json", "data": {"events": events}}


def _hook_files(tmp_path: Path) -> tuple[list[dict[str, Any]], dict[str, Path]]:
    """The bundled push-flood fixture's System Log events, as stored hook request bodies: one delivery a line, a JSON
    array of deliveries, one pretty-printed delivery."""
    events = [orjson.loads(line) for line in (ROOT / "rules" / "okta_mfa_push_flood" / "fixtures" /
                                              "push_flood.ndjson").read_bytes().splitlines() if line.strip()]
    files = {"ndjson": tmp_path / "hooks.ndjson", "array": tmp_path / "hooks.json", "pretty": tmp_path / "body.json"}
    files["ndjson"].write_bytes(b"".join(orjson.dumps(_hook(events[i:i + 4], i)) + b"\n"
                                         for i in range(0, len(events), 4)))
    files["array"].write_bytes(orjson.dumps([_hook(events[:2], 0), _hook(events[2:], 1)]))
    files["pretty"].write_bytes(orjson.dumps(_hook(events, 0), option=orjson.OPT_INDENT_2))
    return events, files


def test_okta_event_hook_deliveries_are_their_events(tmp_path: Path) -> None:
    """Each delivery is its `data.events`, each the System Log event as the API gives it; a delivery whose events are
    not an array of objects is reported by line and read no further, the lines around it read."""
    events, files = _hook_files(tmp_path)
    for shape, path in files.items():
        reports = Reports()
        assert list(iter_events(path, reports)) == events, shape
        assert reports.total == 0, shape
    bad = tmp_path / "bad.ndjson"
    bad.write_bytes(b"\n".join([orjson.dumps(_hook(events[:2], 0)),
                                orjson.dumps({"eventType": "com.okta.event_hook", "data": {"events": "x"}}),
                                orjson.dumps(_hook([events[2], "oops"], 1)),
                                orjson.dumps({"eventType": "com.okta.event_hook", "data": None}),
                                orjson.dumps(_hook(events[3:], 2))]))
    reports = Reports()
    assert list(iter_events(bad, reports)) == events[:2] + events[3:]
    assert [(m.line, m.message) for m in reports.kept] == [
        (2, "Okta event hook delivery: `data.events` is not an array"),
        (3, "Okta event hook delivery: event 2 of `data.events` is not an object"),
        (4, "Okta event hook delivery: `data.events` is not an array")]
    # a System Log event of type event_hook.* (an admin changing a hook) is an event, not a delivery
    admin = tmp_path / "admin.ndjson"
    admin.write_bytes(orjson.dumps({**events[0], "eventType": "event_hook.activated"}) + b"\n")
    assert [e["eventType"] for e in iter_events(admin, Reports())] == ["event_hook.activated"]


def test_okta_event_hook_deliveries_on_duckdb_as_on_the_executor(tmp_path: Path) -> None:
    """The bundled push-flood rule over the deliveries: DuckDB gives the executor's rows on the raw events, for every
    stored shape (its reader copies a file holding deliveries as their events)."""
    pytest.importorskip("duckdb")
    from siemforge.backends.sql.duckdb_run import run_duckdb

    events, files = _hook_files(tmp_path)
    compiled = compile_file(ROOT / "rules" / "okta_mfa_push_flood" / "okta_mfa_push_flood.yml").rule
    assert compiled is not None
    raw = ROOT / "rules" / "okta_mfa_push_flood" / "fixtures" / "push_flood.ndjson"
    expected = run_rule(compiled, [raw], NOW, {}, workers=1).rows
    assert len(expected) == 1 and expected[0]["pushes"] == 6

    def key(r: dict[str, Any]) -> tuple[Any, ...]:
        return (r["user"], r["pushes"], r["denials"], r["ips"])

    for shape, path in files.items():
        assert [key(r) for r in run_rule(compiled, [path], NOW, {}, workers=1).rows] == [key(expected[0])], shape
        assert [key(r) for r in run_duckdb(compiled, [path], now=NOW)] == [key(expected[0])], shape


def test_shared_okta_github_and_gcp_events_read_without_report() -> None:
    reports = Reports()
    okta = list(iter_events(shared_path("data", "identity", "okta", "panther-analysis.ndjson"), reports))
    github = list(iter_events(shared_path("data", "identity", "github", "panther-analysis.ndjson"), reports))
    gcp = list(iter_events(shared_path("data", "identity", "gcp", "panther-analysis.ndjson"), reports))
    assert reports.total == 0 and len(okta) == 19 and len(github) == 59 and len(gcp) == 104
    # Panther's renames and lower-cased exports get the vendor's spelling back
    assert sum("@timestamp" in e for e in github) == 20 and not any("at_sign_timestamp" in e for e in github)
    assert sum(e["protoPayload"].get("@type") == "type.googleapis.com/google.cloud.audit.AuditLog" for e in gcp) == 87
    assert sum(renamed_only(e) for e in gcp) == 0  # (Panther kept both spellings in a few nested objects)
    assert sum("logName" in e for e in gcp) == 74 and not any(("logname" in e and "logName" not in e)
                                                           or ("insertid" in e and "insertId" not in e) for e in gcp)


def renamed_only(value: object) -> int:
    """Objects with `at_sign_type` / `at_type` but no `@type`, at any depth."""
    if isinstance(value, dict):
        own = int(("at_sign_type" in value or "at_type" in value) and "@type" not in value)
        return own + sum(renamed_only(v) for v in value.values())
    if isinstance(value, list):
        return sum(renamed_only(v) for v in value)
    return 0


def test_gcp_log_entry_both_at_type_spellings_and_timestamps(tmp_path: Path) -> None:
    text = (f"title: t\nlogsource: {{{GCP}}}\n"
            "query: 'project t = _time, ty = tostring(protoPayload[\"@type\"]), d = tostring(protoPayload.serviceData[\"@type\"])'\n")
    audit = "type.googleapis.com/google.cloud.audit.AuditLog"
    log = tmp_path / "log.ndjson"
    log.write_bytes(b"\n".join(orjson.dumps(e) for e in [
        {"protoPayload": {"@type": audit, "methodName": "m"}, "timestamp": "2024-02-02 09:44:26.029835000"},
        {"protoPayload": {"at_sign_type": audit, "serviceData": {"at_sign_type": "x.AuditData"}},
         "timestamp": "2022-02-17T22:52:03.190032712Z", "logname": "projects/p/logs/x"},
        {"protoPayload": {"at_type": audit}, "timestamp": "2023-04-10 18:36:30.994"}]))
    res = run_rule(compile_rule(tmp_path, text), [log], NOW, {})
    assert [(r["t"], r["ty"], r["d"]) for r in res.rows] == [
        (datetime(2024, 2, 2, 9, 44, 26, 29835, tzinfo=UTC), audit, None),
        (datetime(2022, 2, 17, 22, 52, 3, 190032, tzinfo=UTC), audit, "x.AuditData"),
        (datetime(2023, 4, 10, 18, 36, 30, 994000, tzinfo=UTC), audit, None)]


def test_real_okta_cl_rows_through_the_binding(tmp_path: Path) -> None:
    """The legacy connector's rows (every value text: "FALSE", "10993", "null"; target_s JSON text with CRLF) read
    back as System Log events with the table's types."""
    text = rule(OKTA, "outcome.result: [CHALLENGE, FAILURE]")
    rows = shared_path("data", "identity", "okta", "sentinel-rows", "Okta_CL.azure-sentinel.ndjson")
    res = run_rule(compile_rule(tmp_path, text), [rows], NOW, {}, binding=builtin_bindings()[("okta.okta", "Okta_CL")])
    assert [r["eventType"] for r in res.rows] == ["policy.evaluate_sign_on", "user.authentication.auth_via_mfa"]
    first = res.rows[0]
    assert first["securityContext"] == {"asNumber": 10993.0, "asOrg": "aerioconnect", "isp": "aerioconnect",
                                        "domain": ".", "isProxy": False}
    assert "geolocation" not in first["client"].get("geographicalContext", {})  # "null" numbers are missing
    assert first["target"][0]["detailEntry"] == {"policyType": "OktaSignOn"}
    assert first["published"] == "2020-05-26T22:15:19.883000Z"


# --- SigmaHQ's okta and github rules ------------------------------------------------------------------------------

def sigma() -> dict[str, list[Path]]:
    return {"okta": discover_rules([shared_path("data", "sigma", "rules", "identity", "okta")]),
            "github": discover_rules([shared_path("data", "sigma", "rules", "application", "github")]),
            "gcp": discover_rules([shared_path("data", "sigma", "rules", "cloud", "gcp", "audit")])}


def test_sigma_rules_on_sentinel_pass_kusto_language() -> None:
    """Compiled on both Okta tables, GitHubAuditLogPolling_CL and GCPAuditLogs with zero Kusto.Language errors; the
    one refusal is okta_new_behaviours_admin_console (debugContext.debugData.behaviors has no column)."""
    reason = checker_available()
    if reason:
        pytest.skip(f"Kusto.Language unavailable: {reason}")
    counts = {}
    refused = set()
    for (vendor, files), binding in [((k, v), b) for k, v in sigma().items() for b in (None, "Okta_CL", "OktaV2_CL")
                                     if b is None or k == "okta"]:
        queries = []
        for f in files:
            res = compile_file(f)
            assert res.rule is not None, f.name
            try:
                queries.append((f.name, compile_kql(res.rule, binding)))
            except CompileError as exc:
                assert "debugContext.debugData.behaviors' has no column" in str(exc), f.name
                refused.add((f.name, binding))
        results = check_queries(queries, [])
        assert [(n, d.message) for (n, _), r in zip(queries, results) for d in r if d.severity == "Error"] == []
        counts[(vendor, binding)] = len(queries)
    assert counts == {("okta", None): 20, ("okta", "Okta_CL"): 20, ("okta", "OktaV2_CL"): 21, ("github", None): 15,
                      ("gcp", None): 16}
    # OktaV2_CL keeps the whole debugData object (DebugData), so behaviors is there
    assert refused == {("okta_new_behaviours_admin_console.yml", None), ("okta_new_behaviours_admin_console.yml",
                                                                         "Okta_CL")}


def test_sigma_rules_on_splunk_are_bound_to_an_add_on_and_parse() -> None:
    parser = lark.Lark((ROOT / "grammars" / "spl.lark").read_text(), parser="earley", lexer="dynamic")
    bound: dict[str, int] = {}
    for f in [f for files in sigma().values() for f in files]:
        res = compile_file(f)
        if res.rule is None:
            continue
        parser.parse(compile_spl(res.rule, None))
        b = bind(res.rule, SPL, None).binding
        assert b is not None, f.name  # none searched as written
        bound[b.name] = bound.get(b.name, 0) + 1
    assert bound == {"okta": 21, "github": 15, "gcp": 16}


def test_sigma_rules_fire_on_the_shared_events() -> None:
    logs = [shared_path("data", "identity", d, "panther-analysis.ndjson") for d in ("okta", "github", "gcp")]
    fired = set()
    for f in [f for files in sigma().values() for f in files]:
        res = compile_file(f)
        if res.rule is not None and run_rule(res.rule, logs, NOW, {}, workers=1).fired:
            fired.add(f.name)
    assert fired == {"okta_password_in_alternateid_field.yml", "okta_api_token_created.yml",
                     "github_disabled_outdated_dependency_or_vulnerability.yml",
                     "github_disable_high_risk_configuration.yml", "github_new_org_member.yml",
                     "github_secret_scanning_feature_disabled.yml", "github_repository_archive_status_changed.yml",
                     "github_repo_or_org_transferred.yml", "gcp_dns_zone_modified_or_deleted.yml",
                     "gcp_firewall_rule_modified_or_deleted.yml", "gcp_bucket_modified_or_deleted.yml"}


@pytest.mark.parametrize("vendor,binding", [("okta", None), ("okta", "Okta_CL"), ("okta", "OktaV2_CL"), ("github", None),
                                            ("gcp", None)])
def test_sigma_rules_kql_on_rows_matches_the_executor(vendor: str, binding: str | None, tmp_path: Path) -> None:
    """The shared events written as rows of the Sentinel table (the binding forwards), then read by duckdb-kql
    running the compiled KQL and by the executor through the binding (backwards): the same rows; and the executor
    gives as many rows on the raw events."""
    import kql_engine

    if kql_engine.duckdb_kql is None:
        pytest.skip("duckdb-kql is not installed")
    raw = shared_path("data", "identity", vendor, "panther-analysis.ndjson")
    source = {"okta": "okta.okta", "github": "github.audit", "gcp": "gcp.audit"}[vendor]
    b = builtin_bindings()[(source, binding or "sentinel")]
    rows = kql_engine.write_rows(b, [raw], tmp_path / "rows.ndjson")
    con = kql_engine.connect(b, [raw], {})
    id_column, id_field = {"okta": ("EventOriginalUid" if binding == "OktaV2_CL" else "uuid_g", "uuid"),
                           "github": ("_document_id_s", "_document_id"), "gcp": ("InsertId", "insertId")}[vendor]
    same = fired = 0
    no_verdict, different = [], []
    for f in sigma()[vendor]:
        r = compile_file(f).rule
        assert r is not None, f.name
        try:
            query = compile_kql(r, binding)
        except CompileError:  # okta_new_behaviours_admin_console: OktaSSO / Okta_CL have no behaviors column
            continue
        expected = run_rule(r, [rows], NOW, {}, binding=b, workers=1)
        assert len(run_rule(r, [raw], NOW, {}, workers=1).rows) == len(expected.rows), f.name
        try:
            got = kql_engine.run(con, query, NOW)
        except kql_engine.duckdb_kql.KqlUnsupportedError as exc:
            no_verdict.append(f"{f.name}: {exc}")
            continue
        if kql_engine.comparable(got, r, id_column) == kql_engine.comparable(expected.rows, r, id_field):
            same, fired = same + 1, fired + expected.fired
        else:
            different.append(f"{f.name}: executor {len(expected.rows)} rows, KQL {len(got)}")
    assert different == []
    # no verdict: the keyword rule (duckdb-kql has no `* contains`), and the authorizationInfo rule (no mv-apply);
    # on OktaV2_CL, whose OriginalTarget is a dynamic array (OktaSSO's target_s is JSON text), the rule on some
    # target's displayName is an mv-apply too
    assert sorted(n.split(":")[0] for n in no_verdict) == (
        ["gcp_access_policy_deleted.yml", "gcp_breakglass_container_workload_deployed.yml"] if vendor == "gcp" else
        ["okta_new_behaviours_admin_console.yml"] if binding == "OktaV2_CL" else [])
    assert (same, fired) == ({"okta": 20, "github": 15, "gcp": 14}[vendor], {"okta": 2, "github": 6, "gcp": 3}[vendor])


def test_sources_are_counted() -> None:
    assert {s for s in builtin_sources() if s.startswith(("okta.", "github."))} == {"okta.okta", "github.audit"}


@pytest.mark.parametrize("rule_file,case", bundled_cases(raw_only=True, source=("okta.", "github.", "gcp.")))
def test_bundled_rules_kql_on_rows_matches_the_executor(rule_file: Path, case: Any, tmp_path: Path) -> None:
    """Each bundled Okta, GitHub and GCP rule's test case: its logs written as rows of the source's Sentinel table,
    read by duckdb-kql running the compiled KQL and by the executor through the binding: the same rows, and the
    executor's rows on the raw logs."""
    _kql_rows_equal_executor(rule_file, case, tmp_path, None, no_verdict_ok=True)


def _kql_rows_equal_executor(rule_file: Path, case: Any, tmp_path: Path, binding: str | None,
                             no_verdict_ok: bool = False) -> None:
    """The case's logs as rows of the binding's table (None: the source's default Sentinel binding): duckdb-kql
    running the compiled KQL and the executor through the binding give the executor's rows on the raw logs. A query
    duckdb-kql cannot run is a skip only where `no_verdict_ok` says one is known."""
    import kql_engine

    if kql_engine.duckdb_kql is None:
        pytest.skip("duckdb-kql is not installed")
    rule = compile_file(rule_file).rule
    assert rule is not None
    b = builtin_bindings()[(rule.pipeline.source.name, binding or "sentinel")]
    now = case.now or NOW
    rows = kql_engine.write_rows(b, list(case.logs), tmp_path / "rows.ndjson")
    expected = run_rule(rule, [rows], now, {}, binding=b, workers=1)
    assert kql_engine.comparable(expected.rows, rule, "") == kql_engine.comparable(
        run_rule(rule, list(case.logs), now, {}, workers=1).rows, rule, "")
    con = kql_engine.connect(b, list(case.logs), {})
    try:
        got = kql_engine.run(con, compile_kql(rule, binding), now)
    except kql_engine.duckdb_kql.KqlUnsupportedError as exc:
        if not no_verdict_ok:
            raise
        pytest.skip(f"no verdict: duckdb-kql cannot run {exc}")
    missing = b.empty_is_missing  # decision 2: a string column is "" where the record has no value
    assert kql_engine.comparable(got, rule, "", missing) == kql_engine.comparable(expected.rows, rule, "", missing)

@pytest.mark.parametrize("rule_file,case", bundled_cases(raw_only=True, source=("okta.",)))
def test_bundled_okta_rules_on_oktav2_cl(rule_file: Path, case: Any, tmp_path: Path) -> None:
    """Each bundled Okta rule's test case on the CCF connector's OktaV2_CL: the logs as its rows, the compiled KQL on
    duckdb-kql and the executor through the binding give the executor's rows on the raw logs."""
    _kql_rows_equal_executor(rule_file, case, tmp_path, "OktaV2_CL")
